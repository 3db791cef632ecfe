//! Shell-less handling of the command string that sshd hands us in the
//! restricted modes: `scp-server -c COMMAND` (the binary is the login
//! shell) and SSH_ORIGINAL_COMMAND (ForceCommand).
//!
//! There is no shell, so nothing a shell would do happens: the string is
//! split into words by POSIX quoting rules (single quotes, double quotes,
//! backslash) and anything a shell would treat specially outside quotes is
//! refused, not interpreted (CVE-2020-15778; the rssh/scponly advisories of
//! PROTOCOL.md §f.2). Only `scp` with the server-side flags is accepted.
//! `~` and `~/x` mean the root; in source mode glob patterns are expanded
//! here, inside the root.

use std::fmt;

use nix::fcntl::OFlag;

use crate::confine::{ResolveError, Root, join_rel};
use crate::error::{DisplayPath, Error};
use crate::policy::ComponentGlob;
use crate::protocol::escape_bytes;
use crate::source::Operand;

/// Characters a shell would act on outside quotes. `#` starts a comment
/// only at the start of a word, and is refused there.
const SHELL_SYNTAX: &[u8] = b";|&$`<>()\n";

/// One word of the command, with what a shell would have expanded in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word after quote removal (a leading `~` removed, see `tilde`).
    pub text: Vec<u8>,
    /// The word began with an unquoted `~` meaning the home (our root).
    pub tilde: bool,
    /// Set when the word has unquoted glob characters: the pattern, with
    /// quoted glob characters escaped by `\`.
    pub pattern: Option<Vec<u8>>,
}

impl Word {
    /// The path this word names beneath the root: `~/x` and `~` become
    /// `/x` and `/`.
    pub fn path(&self) -> Vec<u8> {
        if !self.tilde {
            return self.text.clone();
        }
        let mut path = b"/".to_vec();
        path.extend_from_slice(self.text.strip_prefix(b"/").unwrap_or(&self.text));
        path
    }
}

/// Why a command string is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// An unquoted shell character (or `$`/backquote inside double quotes).
    ShellSyntax(u8),
    UnterminatedQuote(u8),
    /// `~user`: another account's home.
    OtherUsersHome(Vec<u8>),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::ShellSyntax(b'\n') => f.write_str(
                "refusing command: a newline is shell syntax, and this account has no shell",
            ),
            CommandError::ShellSyntax(c) => write!(
                f,
                "refusing command: '{}' is shell syntax, and this account has no shell",
                escape_bytes(&[*c])
            ),
            CommandError::UnterminatedQuote(q) => {
                write!(
                    f,
                    "refusing command: unterminated {} quote",
                    if *q == b'\'' { "single" } else { "double" }
                )
            }
            CommandError::OtherUsersHome(word) => write!(
                f,
                "refusing command: '{}' names another user's home directory",
                escape_bytes(word)
            ),
        }
    }
}

/// What a command string asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `scp ARGS…`: the words after the program name.
    Scp(Vec<Word>),
    /// An SFTP subsystem (OpenSSH ≥ 9 uses SFTP unless `scp -O`): the
    /// words after `internal-sftp` / `sftp-server`.
    Sftp(Vec<Word>),
    /// Any other program, named by its first word.
    Other(Vec<u8>),
    Empty,
}

/// Splits and classifies a command string.
pub fn parse_request(command: &[u8]) -> Result<Request, CommandError> {
    let words = split_words(command)?;
    let Some((program, args)) = words.split_first() else {
        return Ok(Request::Empty);
    };
    let name = program_name(&program.text);
    Ok(match name {
        b"scp" if !program.tilde => Request::Scp(args.to_vec()),
        // sshd's own subsystem names: `internal-sftp`, or a path whose last
        // component is `sftp-server` (DESIGN.md, "SFTP").
        b"sftp-server" | b"internal-sftp" if !program.tilde => Request::Sftp(args.to_vec()),
        // This binary as the global subsystem (`Subsystem sftp
        // /usr/bin/scp-server --sftp`): sshd hands that line to a jailed
        // account's login shell, us. Only `--sftp` itself is taken as the
        // program's; what follows is judged as client words, like the
        // words after `sftp-server` (the policy stays the account's).
        b"scp-server" if !program.tilde && args.first().is_some_and(is_sftp_flag) => {
            Request::Sftp(args[1..].to_vec())
        }
        _ => Request::Other(program.text.clone()),
    })
}

/// Whether the command's first word is the scp program, judged before any
/// parsing: refusals of an scp command go to the client in the protocol,
/// refusals of anything else go to stderr (DESIGN.md, "Contract details").
pub fn looks_like_scp(command: &[u8]) -> bool {
    let first = command
        .split(|b| b.is_ascii_whitespace())
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    program_name(first) == b"scp"
}

fn is_sftp_flag(word: &Word) -> bool {
    word.text == b"--sftp" && !word.tilde
}

fn program_name(word: &[u8]) -> &[u8] {
    word.rsplit(|&b| b == b'/').next().unwrap_or(word)
}

/// POSIX word splitting and quote removal, refusing whatever would make a
/// shell do more than that.
pub fn split_words(command: &[u8]) -> Result<Vec<Word>, CommandError> {
    let mut splitter = Splitter {
        words: Vec::new(),
        current: None,
    };
    let mut i = 0;
    while i < command.len() {
        let c = command[i];
        i += 1;
        match c {
            b' ' | b'\t' => splitter.end_word(),
            b'\'' => {
                let end = find(command, i, b'\'').ok_or(CommandError::UnterminatedQuote(b'\''))?;
                splitter.push_quoted(&command[i..end]);
                i = end + 1;
            }
            b'"' => i = splitter.double_quoted(command, i)?,
            b'\\' => {
                // A backslash quotes the next character; at the very end it
                // quotes nothing and stands for itself.
                match command.get(i) {
                    Some(b'\n') => return Err(CommandError::ShellSyntax(b'\n')),
                    Some(&next) => {
                        splitter.push_quoted(&[next]);
                        i += 1;
                    }
                    None => splitter.push_quoted(b"\\"),
                }
            }
            b'#' if splitter.current.is_none() => return Err(CommandError::ShellSyntax(b'#')),
            b'~' if splitter.current.is_none() => {
                let rest = &command[i..];
                let end = rest
                    .iter()
                    .position(|b| b" \t/".contains(b))
                    .unwrap_or(rest.len());
                if end > 0 {
                    let mut word = b"~".to_vec();
                    word.extend_from_slice(&rest[..end]);
                    return Err(CommandError::OtherUsersHome(word));
                }
                splitter.start_word().tilde = true;
            }
            c if SHELL_SYNTAX.contains(&c) => return Err(CommandError::ShellSyntax(c)),
            c => splitter.push_unquoted(c),
        }
    }
    splitter.end_word();
    Ok(splitter.words)
}

fn find(bytes: &[u8], from: usize, needle: u8) -> Option<usize> {
    bytes[from..]
        .iter()
        .position(|&b| b == needle)
        .map(|p| from + p)
}

struct Splitter {
    words: Vec<Word>,
    current: Option<Word>,
}

impl Splitter {
    fn start_word(&mut self) -> &mut Word {
        self.current.get_or_insert_with(|| Word {
            text: Vec::new(),
            tilde: false,
            pattern: None,
        })
    }

    fn end_word(&mut self) {
        if let Some(word) = self.current.take() {
            self.words.push(word);
        }
    }

    fn push_unquoted(&mut self, c: u8) {
        let word = self.start_word();
        if b"*?[".contains(&c) && word.pattern.is_none() {
            // From here on the word is a pattern; what came before was
            // literal and is escaped into it.
            word.pattern = Some(escape_glob(&word.text));
        }
        word.text.push(c);
        if let Some(pattern) = word.pattern.as_mut() {
            pattern.push(c);
        }
    }

    fn push_quoted(&mut self, bytes: &[u8]) {
        let word = self.start_word();
        word.text.extend_from_slice(bytes);
        if let Some(pattern) = word.pattern.as_mut() {
            pattern.extend_from_slice(&escape_glob(bytes));
        }
    }

    /// Inside double quotes only `\` before `$ \` " \ newline` quotes; `$`
    /// and backquote would expand, so they are refused. Returns the index
    /// after the closing quote.
    fn double_quoted(&mut self, command: &[u8], mut i: usize) -> Result<usize, CommandError> {
        self.start_word();
        loop {
            let Some(&c) = command.get(i) else {
                return Err(CommandError::UnterminatedQuote(b'"'));
            };
            i += 1;
            match c {
                b'"' => return Ok(i),
                b'$' | b'`' => return Err(CommandError::ShellSyntax(c)),
                b'\\' if matches!(command.get(i), Some(b'$' | b'`' | b'"' | b'\\')) => {
                    self.push_quoted(&command[i..=i]);
                    i += 1;
                }
                b'\\' if command.get(i) == Some(&b'\n') => {
                    return Err(CommandError::ShellSyntax(b'\n'));
                }
                c => self.push_quoted(&[c]),
            }
        }
    }
}

fn escape_glob(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b"*?[]\\".contains(&b) {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// The scp options a server-side session may carry; everything else
/// (`-S`, `-o`, `-F`, `-i`, `-J`, `-P`, `-c`, `-D`, `-X`, `-3`, …) could
/// make a client run programs and is refused by name.
pub const ALLOWED_LETTERS: &str = "tfrpdvqTl";

/// The first option letter the restricted modes do not allow.
pub fn disallowed_letter(letters: &[char]) -> Option<char> {
    letters
        .iter()
        .copied()
        .find(|c| !ALLOWED_LETTERS.contains(*c))
}

/// Expands a download's operand: `~`, then, if it has unquoted glob
/// characters, every matching path inside the root (sorted; names starting
/// with `.` only where the pattern's component does). A pattern that
/// matches nothing is an error naming it.
pub fn expand_source(root: &Root, word: &Word) -> Vec<Operand> {
    let path = word.path();
    let Some(pattern) = &word.pattern else {
        return vec![Operand::Path(path)];
    };
    let pattern = if word.tilde {
        let mut p = b"/".to_vec();
        p.extend_from_slice(pattern.strip_prefix(b"/").unwrap_or(pattern));
        p
    } else {
        pattern.clone()
    };
    match glob_beneath(root, &pattern) {
        Ok(matches) if !matches.is_empty() => matches.into_iter().map(Operand::Path).collect(),
        Ok(_) => vec![Operand::Unusable(Error::NoMatch {
            pattern: DisplayPath(path),
        })],
        Err(e) => vec![Operand::Unusable(e.into_error(&path))],
    }
}

/// Matches `pattern` (a path with glob components, `\` quoting) against
/// the tree beneath the root, one component at a time.
fn glob_beneath(root: &Root, pattern: &[u8]) -> Result<Vec<Vec<u8>>, ResolveError> {
    let absolute = pattern.starts_with(b"/");
    let mut found: Vec<Vec<u8>> = vec![Vec::new()];
    for component in pattern.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for prefix in &found {
            if !has_glob(component) {
                next.push(join_rel(prefix, &unescape_glob(component)));
                continue;
            }
            let Ok(glob) = ComponentGlob::new(&String::from_utf8_lossy(component)) else {
                continue;
            };
            for name in list_dir(root, prefix)? {
                let hidden = name.starts_with(b".") && !component.starts_with(b".");
                if !hidden && glob.matches(&name) {
                    next.push(join_rel(prefix, &name));
                }
            }
        }
        next.sort();
        found = next;
    }
    Ok(found
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| {
            if absolute {
                [b"/".as_slice(), &p].concat()
            } else {
                p
            }
        })
        .collect())
}

/// The entries of a directory beneath the root; a prefix that is not a
/// directory (or does not exist) simply has none.
fn list_dir(root: &Root, rel: &[u8]) -> Result<Vec<Vec<u8>>, ResolveError> {
    let dir = match root.open_beneath(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, true) {
        Ok(dir) => dir,
        Err(ResolveError::Os(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut listing = nix::dir::Dir::from_fd(dir).map_err(ResolveError::Os)?;
    Ok(listing
        .iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_bytes().to_vec())
        .filter(|n| n != b"." && n != b"..")
        .collect())
}

fn has_glob(component: &[u8]) -> bool {
    let mut escaped = false;
    for &b in component {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
    }
    false
}

fn unescape_glob(component: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(component.len());
    let mut escaped = false;
    for &b in component {
        if b == b'\\' && !escaped {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn texts(command: &str) -> Vec<String> {
        split_words(command.as_bytes())
            .unwrap()
            .iter()
            .map(|w| String::from_utf8_lossy(&w.path()).into_owned())
            .collect()
    }

    fn refused(command: &[u8]) -> CommandError {
        split_words(command).unwrap_err()
    }

    fn request(command: &str) -> Request {
        parse_request(command.as_bytes()).unwrap()
    }

    /// Accepted command strings and the words they split into.
    #[test]
    fn accepted_commands() {
        let cases: &[(&str, &[&str])] = &[
            ("scp -t /incoming", &["scp", "-t", "/incoming"]),
            ("scp -t -- /incoming", &["scp", "-t", "--", "/incoming"]),
            ("/usr/bin/scp -pt .", &["/usr/bin/scp", "-pt", "."]),
            ("scp -f 'a b.txt'", &["scp", "-f", "a b.txt"]),
            ("scp -f \"a b.txt\"", &["scp", "-f", "a b.txt"]),
            ("scp -f a\\ b.txt", &["scp", "-f", "a b.txt"]),
            ("scp  -r\t-t   dir", &["scp", "-r", "-t", "dir"]),
            ("scp -t ~", &["scp", "-t", "/"]),
            ("scp -t ~/incoming", &["scp", "-t", "/incoming"]),
            ("scp -t '~/x'", &["scp", "-t", "~/x"]),
            ("scp -t a~b", &["scp", "-t", "a~b"]),
            ("scp -f 'it''s'", &["scp", "-f", "its"]),
            ("scp -f \"it's\"", &["scp", "-f", "it's"]),
            ("scp -f 'a;b|c&d$e`f'", &["scp", "-f", "a;b|c&d$e`f"]),
            (
                "scp -f \"a;b|c&d<e>f(g)\"",
                &["scp", "-f", "a;b|c&d<e>f(g)"],
            ),
            ("scp -f \"a\\\"b\\\\c\"", &["scp", "-f", "a\"b\\c"]),
            ("scp -f \"a\\nb\"", &["scp", "-f", "a\\nb"]),
            ("scp -f a#b", &["scp", "-f", "a#b"]),
            ("scp -f ''", &["scp", "-f", ""]),
            ("scp -t x\\", &["scp", "-t", "x\\"]),
            ("scp -pt 'dir/'", &["scp", "-pt", "dir/"]),
            ("scp -qtr easyssh", &["scp", "-qtr", "easyssh"]),
            ("scp -l 1000 -t x", &["scp", "-l", "1000", "-t", "x"]),
            ("  scp -t x  ", &["scp", "-t", "x"]),
        ];
        for (command, words) in cases {
            assert_eq!(texts(command), *words, "{command}");
        }
    }

    /// Refused command strings: shell syntax outside quotes, expansions
    /// inside double quotes, unterminated quotes, other users' homes.
    #[test]
    fn refused_commands() {
        let cases: &[(&[u8], CommandError)] = &[
            (b"scp -t /incoming; id", CommandError::ShellSyntax(b';')),
            (b"scp -t /incoming && sh", CommandError::ShellSyntax(b'&')),
            (b"scp -t /incoming | sh", CommandError::ShellSyntax(b'|')),
            (
                b"scp -t `touch /tmp/x`/dst",
                CommandError::ShellSyntax(b'`'),
            ),
            (b"scp -t $(id)", CommandError::ShellSyntax(b'$')),
            (b"scp -t $HOME", CommandError::ShellSyntax(b'$')),
            (b"scp -t \"$HOME\"", CommandError::ShellSyntax(b'$')),
            (b"scp -t \"`id`\"", CommandError::ShellSyntax(b'`')),
            (b"scp -t x > /etc/passwd", CommandError::ShellSyntax(b'>')),
            (b"scp -t x < /etc/shadow", CommandError::ShellSyntax(b'<')),
            (b"scp -t (x)", CommandError::ShellSyntax(b'(')),
            (b"scp -t x\nid", CommandError::ShellSyntax(b'\n')),
            (b"scp -t x\\\nid", CommandError::ShellSyntax(b'\n')),
            (b"scp -t x #comment", CommandError::ShellSyntax(b'#')),
            (b"scp -t 'x", CommandError::UnterminatedQuote(b'\'')),
            (b"scp -t \"x", CommandError::UnterminatedQuote(b'"')),
            (
                b"scp -t ~root/.ssh",
                CommandError::OtherUsersHome(b"~root".to_vec()),
            ),
            (
                b"scp -f ~bob",
                CommandError::OtherUsersHome(b"~bob".to_vec()),
            ),
            (b"scp -t x &", CommandError::ShellSyntax(b'&')),
            (b"scp -t x;", CommandError::ShellSyntax(b';')),
        ];
        for (command, error) in cases {
            assert_eq!(
                refused(command),
                *error,
                "{}",
                String::from_utf8_lossy(command)
            );
        }
    }

    /// Published rssh/scponly exploit strings: each is refused, either by
    /// the splitter or by the option allow-list.
    #[test]
    fn rssh_and_scponly_exploit_strings_are_refused() {
        let exploits = [
            "scp -S /tmp/evil -f x",                     // CVE-2004-1161/1162: -S program
            "scp -oProxyCommand=/tmp/evil -f x",         // CVE-2007-6415: -o
            "scp -o ProxyCommand=/tmp/evil -f x",        // same, separate value
            "scp -F /incoming/cfg -t /incoming",         // CVE-2007-6415, CVE-2019-1000018: -F
            "scp -pS/tmp/evil -t x",                     // CVE-2005-4533: clustered value
            "scp -o PKCS11Provider=/incoming/x.so -f x", // CVE-2019-1000018
            "scp -i /incoming/key -f x",
            "scp -J evil -f x",
            "scp -P 22 -f x",
            "scp -c aes128-ctr -f x",
            "scp -D /incoming/sftp-server -f x",
            "scp -X buffer=1 -f x",
            "scp -3 -f x",
        ];
        for exploit in exploits {
            let Request::Scp(args) = request(exploit) else {
                panic!("{exploit}: not classified as scp");
            };
            let words: Vec<std::ffi::OsString> = args
                .iter()
                .map(|w| std::ffi::OsStr::from_bytes(&w.text).to_owned())
                .collect();
            let flags = crate::cli::parse_scp_flags(&words).unwrap();
            assert!(
                disallowed_letter(&flags.letters).is_some(),
                "{exploit}: allowed"
            );
        }
        for injected in [
            "scp -t /incoming; /incoming/evil",
            "FOO=bar scp -t x",
            "LD_PRELOAD=/incoming/x.so scp -t x",
        ] {
            let outcome = parse_request(injected.as_bytes());
            assert!(
                !matches!(outcome, Ok(Request::Scp(_))),
                "{injected}: accepted"
            );
        }
    }

    #[test]
    fn programs_are_classified() {
        assert!(matches!(request("scp -t x"), Request::Scp(_)));
        assert!(matches!(request("/usr/bin/scp -t x"), Request::Scp(_)));
        assert_eq!(
            request("/usr/lib/openssh/sftp-server"),
            Request::Sftp(vec![])
        );
        assert_eq!(request("internal-sftp"), Request::Sftp(vec![]));
        assert!(
            matches!(request("sftp-server -R -l INFO"), Request::Sftp(words) if words.len() == 3)
        );
        assert_eq!(request("/usr/bin/scp-server --sftp"), Request::Sftp(vec![]));
        assert!(
            matches!(request("scp-server --sftp -R"), Request::Sftp(words) if words.len() == 1)
        );
        // Our own name without --sftp first is not a transfer.
        assert_eq!(
            request("/usr/bin/scp-server --root / --sftp"),
            Request::Other(b"/usr/bin/scp-server".to_vec())
        );
        assert_eq!(
            request("scp-server -t x"),
            Request::Other(b"scp-server".to_vec())
        );
        // Only sshd's own names: a program called sftp is something else.
        assert_eq!(request("sftp"), Request::Other(b"sftp".to_vec()));
        assert_eq!(request("cat /etc/passwd"), Request::Other(b"cat".to_vec()));
        assert_eq!(request("sh"), Request::Other(b"sh".to_vec()));
        assert_eq!(
            request("rsync --server -e.LsfxC . x"),
            Request::Other(b"rsync".to_vec())
        );
        assert_eq!(request("scpx -t x"), Request::Other(b"scpx".to_vec()));
        assert_eq!(request(""), Request::Empty);
        assert_eq!(request("   "), Request::Empty);
        assert!(looks_like_scp(b"scp -t x; id"));
        assert!(looks_like_scp(b"/usr/bin/scp -t x"));
        assert!(!looks_like_scp(b"sh -c 'scp -t x'"));
    }

    #[test]
    fn allowed_letters() {
        assert_eq!(
            disallowed_letter(&['t', 'r', 'p', 'd', 'v', 'q', 'f', 'T', 'l']),
            None
        );
        assert_eq!(disallowed_letter(&['p', 'S', 't']), Some('S'));
    }

    #[test]
    fn glob_patterns_keep_quoted_characters_literal() {
        let words = split_words(b"scp -f '*.txt' *.log \"a?\"b* ~/x*").unwrap();
        assert_eq!(words[2].pattern, None);
        assert_eq!(words[3].pattern.as_deref(), Some(&b"*.log"[..]));
        assert_eq!(words[4].pattern.as_deref(), Some(&b"a\\?b*"[..]));
        assert!(words[5].tilde);
        assert_eq!(words[5].pattern.as_deref(), Some(&b"/x*"[..]));
    }

    #[test]
    fn globs_expand_inside_the_root_only() {
        let base = std::env::temp_dir().join(format!("scp-server-glob-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("root/dir")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        for f in [
            "root/a.txt",
            "root/b.txt",
            "root/.hidden.txt",
            "root/c.log",
            "root/dir/d.txt",
            "outside/e.txt",
        ] {
            std::fs::write(base.join(f), b"x").unwrap();
        }
        for backend in [
            crate::confine::Backend::Openat2,
            crate::confine::Backend::Walk,
        ] {
            let root = Root::open(&base.join("root"), backend, false).unwrap();
            let expand = |command: &str| -> Vec<String> {
                let words = split_words(command.as_bytes()).unwrap();
                expand_source(&root, &words[0])
                    .into_iter()
                    .map(|o| match o {
                        Operand::Path(p) => String::from_utf8_lossy(&p).into_owned(),
                        Operand::Unusable(e) => format!("error: {e}"),
                    })
                    .collect()
            };
            assert_eq!(expand("*.txt"), ["a.txt", "b.txt"]);
            assert_eq!(expand("/*.txt"), ["/a.txt", "/b.txt"]);
            assert_eq!(expand("~/*.txt"), ["/a.txt", "/b.txt"]);
            assert_eq!(expand(".*.txt"), [".hidden.txt"]);
            assert_eq!(expand("*/*.txt"), ["dir/d.txt"]);
            assert_eq!(expand("'*.txt'"), ["*.txt"]);
            assert_eq!(
                expand("*.none"),
                ["error: *.none: no files match this pattern"]
            );
            assert_eq!(
                expand("../outside/*.txt")[0],
                "error: ../outside/*.txt: refused: the path leads outside this account's root directory"
            );
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
