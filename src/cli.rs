//! Command-line parsing.
//!
//! Two vocabularies share argv. The scp flags that sshd's remote command
//! carries (`scp -pt DIR`) are parsed exactly as OpenSSH's getopt does:
//! clustered letters, attached or separate values, `--`, and no
//! permutation (the first operand ends the options, PROTOCOL.md §a.1, §d).
//! The admin's own long options (`--help`, `--openssh-client`, …), which
//! may stand before them, are clap's.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::Parser;

/// Where Debian's packaging (`packaging/`) diverts OpenSSH's own client.
pub const DEFAULT_OPENSSH_CLIENT: &str = "/usr/bin/scp.openssh";

/// scp-server: the server side of SCP (what sshd runs as `scp -t` and
/// `scp -f`) and of SFTP (`--sftp`), with atomic uploads and symlink-safe
/// file handling.
///
/// Installed as /usr/bin/scp it serves scp sessions; run by a person without
/// -t/-f, it hands the command line to the OpenSSH scp client.
#[derive(Parser, Debug, Default)]
#[command(
    name = "scp-server",
    version,
    disable_help_subcommand = true,
    override_usage = "scp-server [OPTIONS] [-prdv] -t TARGET      (receive; what sshd runs as `scp -t`)\n       scp-server [OPTIONS] [-prv] -f PATH...     (send; what sshd runs as `scp -f`)\n       scp-server [OPTIONS] --sftp [SFTP-SERVER-OPTIONS]  (serve SFTP: sshd's Subsystem line)\n       scp-server [OPTIONS] SCP-CLIENT-ARGUMENTS  (runs the OpenSSH scp client)"
)]
pub struct AdminArgs {
    /// OpenSSH scp client to run when invoked as a client (no -t/-f)
    /// [default: /usr/bin/scp.openssh; env: SCP_SERVER_OPENSSH_CLIENT]
    #[arg(long, value_name = "PATH")]
    pub openssh_client: Option<PathBuf>,

    /// Serve SFTP on stdin and stdout (for sshd's `Subsystem sftp` line);
    /// sftp-server's options -R -u -d -e -l -f -P -p may follow
    #[arg(long)]
    pub sftp: bool,

    #[command(flatten)]
    pub policy: crate::policy::PolicyArgs,

    /// How paths are resolved beneath the root: openat2 (the default where
    /// the kernel has it) or the portable O_NOFOLLOW walk. For tests.
    #[arg(long, hide = true, value_enum)]
    pub resolver: Option<ResolverChoice>,

    /// Upload new files through named temporary files, as on kernels that
    /// cannot link an unnamed file for this user (before 6.10 without
    /// CAP_DAC_READ_SEARCH). For tests.
    #[arg(long, hide = true)]
    pub named_temp_files: bool,

    /// Move file data with read/write only, never splice or sendfile. For
    /// the benchmark, which compares the two end to end.
    #[arg(long, hide = true)]
    pub copy_data: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolverChoice {
    Openat2,
    Walk,
}

/// The scp flags of OpenSSH's option string, as they apply in remote mode.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ScpFlags {
    pub sink: bool,
    pub source: bool,
    pub recursive: bool,
    pub preserve: bool,
    pub target_must_be_dir: bool,
    pub verbose: bool,
    /// `-l`: Kbit/s.
    pub limit_kbits: Option<u64>,
    /// Every flag letter seen, in order (client-only flags are parsed and
    /// ignored in remote mode, as OpenSSH does; restricted modes refuse them).
    pub letters: Vec<char>,
    pub operands: Vec<Vec<u8>>,
}

/// Why the scp flags could not be parsed. Printed on stderr (stdout carries
/// protocol bytes only); nothing reaches the peer's protocol stream.
#[derive(Debug, PartialEq, Eq)]
pub enum FlagError {
    /// `scp: unknown option -- Z` and usage, exit 1.
    UnknownOption(char),
    /// `scp: option requires an argument -- l` and usage, exit 1.
    MissingValue(char),
    /// A value out of range (`-l 0`) or an unsupported letter: usage, exit 1.
    Usage(String),
    /// `-1`: OpenSSH's fatal, exit 255.
    Fatal(String),
}

/// OpenSSH 9.2's option letters that take a value (`D: F: J: M: P: S: c: i:
/// l: o: X:`), and those that do not.
const VALUE_LETTERS: &str = "DFJMPSciloX";
const FLAG_LETTERS: &str = "12346ABCTdfOpqRrstv";

/// Largest `-l` OpenSSH accepts: 100 Gbit/s in Kbit/s.
const MAX_LIMIT_KBITS: u64 = 100 * 1024 * 1024;

pub fn parse_scp_flags(args: &[OsString]) -> Result<ScpFlags, FlagError> {
    let mut flags = ScpFlags::default();
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_bytes();
        if word == b"--" {
            i += 1;
            break;
        }
        if word.len() < 2 || word[0] != b'-' {
            break;
        }
        let mut j = 1;
        while j < word.len() {
            let letter = word[j] as char;
            j += 1;
            if VALUE_LETTERS.contains(letter) {
                let value = if j < word.len() {
                    word[j..].to_vec()
                } else {
                    i += 1;
                    args.get(i)
                        .ok_or(FlagError::MissingValue(letter))?
                        .as_bytes()
                        .to_vec()
                };
                apply_value(&mut flags, letter, &value)?;
                j = word.len();
            } else if FLAG_LETTERS.contains(letter) {
                apply_flag(&mut flags, letter)?;
            } else {
                return Err(FlagError::UnknownOption(letter));
            }
        }
        i += 1;
    }
    flags.operands = args[i.min(args.len())..]
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    Ok(flags)
}

fn apply_flag(flags: &mut ScpFlags, letter: char) -> Result<(), FlagError> {
    flags.letters.push(letter);
    match letter {
        '1' => {
            return Err(FlagError::Fatal(
                "SSH protocol v.1 is no longer supported".into(),
            ));
        }
        't' => flags.sink = true,
        'f' => flags.source = true,
        'r' => flags.recursive = true,
        'p' => flags.preserve = true,
        'd' => flags.target_must_be_dir = true,
        'v' => flags.verbose = true,
        // Client-side flags (-2 -3 -4 -6 -A -B -C -O -q -R -s -T) have no
        // effect in remote mode.
        _ => {}
    }
    Ok(())
}

fn apply_value(flags: &mut ScpFlags, letter: char, value: &[u8]) -> Result<(), FlagError> {
    flags.letters.push(letter);
    match letter {
        'l' => {
            let kbits = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| (1..=MAX_LIMIT_KBITS).contains(v))
                .ok_or_else(|| {
                    FlagError::Usage(format!(
                        "invalid limit: {}",
                        OsStr::from_bytes(value).to_string_lossy()
                    ))
                })?;
            flags.limit_kbits = Some(kbits);
        }
        // In OpenSSH's option string but never handled: usage.
        'M' => return Err(FlagError::Usage("option -M is not supported".into())),
        // -D -F -J -P -S -c -i -o -X configure the client side; ignored here.
        _ => {}
    }
    Ok(())
}

/// Splits argv (without argv[0]) into the admin's leading long options and
/// the scp words after them. A long option's value may be attached
/// (`--x=v`) or the next word.
pub fn split_admin_args(args: &[OsString]) -> (Vec<OsString>, Vec<OsString>) {
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_bytes();
        if word == b"--" || !word.starts_with(b"--") {
            break;
        }
        let takes_value = !word.contains(&b'=') && admin_option_takes_value(word);
        i += if takes_value { 2 } else { 1 };
    }
    let i = i.min(args.len());
    (args[..i].to_vec(), args[i..].to_vec())
}

fn admin_option_takes_value(word: &[u8]) -> bool {
    let name = String::from_utf8_lossy(&word[2..]).into_owned();
    AdminArgs::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(name.as_str()))
        .is_some_and(|a| a.get_action().takes_values())
}

use clap::CommandFactory;

/// sftp-server's own options, as they may follow `--sftp` on a Subsystem
/// line or `sftp-server` in a command string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SftpServerFlags {
    /// `-R`: read-only.
    pub read_only: bool,
    /// `-u UMASK`: an explicit umask (as `--umask`).
    pub umask: Option<u32>,
    /// `-d DIR`: the starting directory (`%d` home, `%u` user, `%U` uid).
    pub start_dir: Option<Vec<u8>>,
    /// `-P LIST`: requests refused by name.
    pub deny_requests: Vec<String>,
    /// `-p LIST`: the only requests allowed.
    pub allow_requests: Option<Vec<String>>,
    /// `-Q requests`: print the request names and exit.
    pub query_requests: bool,
    /// `-e`, `-l`, `-f`: logging (our audit trail has its own settings).
    pub logging: bool,
}

/// Who wrote the sftp-server words: the admin (after `--sftp`) may use
/// every option; a command string comes from the client, who may only
/// narrow the policy (`-R`) or touch logging (`-e -l -f`), DESIGN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SftpWordsFrom {
    Admin,
    Client,
}

/// Parses sftp-server's options as its getopt does (`d:f:l:P:p:Q:u:cehR`:
/// clusters, attached or separate values); operands are refused.
pub fn parse_sftp_server_flags(
    args: &[OsString],
    from: SftpWordsFrom,
) -> Result<SftpServerFlags, String> {
    const WITH_VALUE: &[u8] = b"dflPpQu";
    const CLIENT_MAY: &[u8] = b"Relf";
    let mut flags = SftpServerFlags::default();
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_bytes();
        i += 1;
        if word == b"--" {
            break;
        }
        if word.len() < 2 || word[0] != b'-' {
            return Err(format!(
                "sftp-server takes no operands ('{}')",
                crate::protocol::escape_bytes(word)
            ));
        }
        // A long option (`--root`) is no sftp-server option; named whole,
        // not as its letter '-'.
        if word[1] == b'-' {
            let word = crate::protocol::escape_bytes(word);
            return Err(match from {
                SftpWordsFrom::Client => format!(
                    "refusing sftp-server option '{word}': a client may only add -R, -e, -l and -f"
                ),
                SftpWordsFrom::Admin => format!("unknown sftp-server option '{word}'"),
            });
        }
        let mut j = 1;
        while j < word.len() {
            let letter = word[j];
            j += 1;
            if from == SftpWordsFrom::Client && !CLIENT_MAY.contains(&letter) {
                return Err(format!(
                    "refusing sftp-server option -{}: a client may only add -R, -e, -l and -f",
                    char::from(letter)
                ));
            }
            let value = if WITH_VALUE.contains(&letter) {
                let value = if j < word.len() {
                    word[j..].to_vec()
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].as_bytes().to_vec()
                } else {
                    return Err(format!(
                        "sftp-server option -{} needs a value",
                        char::from(letter)
                    ));
                };
                j = word.len();
                Some(value)
            } else {
                None
            };
            apply_sftp_flag(&mut flags, letter, value)?;
        }
    }
    if i < args.len() {
        return Err("sftp-server takes no operands".to_owned());
    }
    Ok(flags)
}

fn apply_sftp_flag(
    flags: &mut SftpServerFlags,
    letter: u8,
    value: Option<Vec<u8>>,
) -> Result<(), String> {
    let text = || String::from_utf8_lossy(value.as_deref().unwrap_or_default()).into_owned();
    let list = |v: String| v.split(',').map(str::to_owned).collect::<Vec<_>>();
    match letter {
        b'R' => flags.read_only = true,
        // `-c`: sftp-server run as a shell ignores what follows.
        b'c' => {}
        b'e' | b'l' | b'f' => flags.logging = true,
        b'd' => flags.start_dir = value,
        b'u' => {
            flags.umask = Some(
                crate::policy::parse_umask(&text())
                    .map_err(|why| format!("sftp-server option -u: {why}"))?,
            )
        }
        b'P' if !flags.deny_requests.is_empty() => return Err("-P given twice".to_owned()),
        b'P' => flags.deny_requests = list(text()),
        b'p' if flags.allow_requests.is_some() => return Err("-p given twice".to_owned()),
        b'p' => flags.allow_requests = Some(list(text())),
        b'Q' if text().eq_ignore_ascii_case("requests") => flags.query_requests = true,
        b'Q' => return Err("invalid query type for -Q (only 'requests')".to_owned()),
        other => {
            return Err(format!(
                "unknown sftp-server option -{}; usage: scp-server --sftp [-ehR] [-d start_directory] [-f log_facility] [-l log_level] [-P denied_requests] [-p allowed_requests] [-u umask]",
                char::from(other)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<ScpFlags, FlagError> {
        let args: Vec<OsString> = words.iter().map(OsString::from).collect();
        parse_scp_flags(&args)
    }

    #[test]
    fn clustered_flags_as_real_clients_send_them() {
        for (words, sink, recursive, preserve) in [
            (&["-t", "dst"][..], true, false, false),
            (&["-pt", "dst"], true, false, true),
            (&["-qt", "dst"], true, false, false),
            (&["-tr", "dst"], true, true, false),
            (&["-prt", "dst"], true, true, true),
            (&["-vt", "dst"], true, false, false),
            (&["-p", "-t", "dst"], true, false, true),
        ] {
            let f = parse(words).unwrap();
            assert_eq!(
                (f.sink, f.recursive, f.preserve),
                (sink, recursive, preserve),
                "{words:?}"
            );
            assert_eq!(f.operands, vec![b"dst".to_vec()]);
        }
    }

    #[test]
    fn values_attached_or_separate() {
        let f = parse(&["-l", "1000", "-t", "dst"]).unwrap();
        assert_eq!(f.limit_kbits, Some(1000));
        let f = parse(&[
            "-l1000",
            "-oFoo=bar",
            "-S",
            "/bin/false",
            "-P",
            "2222",
            "-t",
            "dst",
        ])
        .unwrap();
        assert_eq!(f.limit_kbits, Some(1000));
        assert!(f.sink);
        assert_eq!(f.letters, vec!['l', 'o', 'S', 'P', 't']);
    }

    #[test]
    fn sftp_server_words_of_a_client_only_narrow_or_log() {
        let sftp = |words: &[&str], from| {
            let args: Vec<OsString> = words.iter().map(OsString::from).collect();
            parse_sftp_server_flags(&args, from)
        };
        assert!(sftp(&["-R", "-l", "INFO", "-e"], SftpWordsFrom::Client).is_ok());
        assert_eq!(
            sftp(&["-d", "/etc"], SftpWordsFrom::Client).unwrap_err(),
            "refusing sftp-server option -d: a client may only add -R, -e, -l and -f"
        );
        // A long option of ours is named whole, never taken.
        assert_eq!(
            sftp(&["--root", "/"], SftpWordsFrom::Client).unwrap_err(),
            "refusing sftp-server option '--root': a client may only add -R, -e, -l and -f"
        );
        assert_eq!(
            sftp(&["--read-write"], SftpWordsFrom::Admin).unwrap_err(),
            "unknown sftp-server option '--read-write'"
        );
    }

    #[test]
    fn no_permutation_and_double_dash() {
        let f = parse(&["-t", "dst", "-r"]).unwrap();
        assert!(!f.recursive);
        assert_eq!(f.operands.len(), 2);
        let f = parse(&["-t", "--", "-dash"]).unwrap();
        assert_eq!(f.operands, vec![b"-dash".to_vec()]);
        let f = parse(&["-f", "-"]).unwrap();
        assert_eq!(f.operands, vec![b"-".to_vec()]);
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse(&["-Z", "-t", "dst"]),
            Err(FlagError::UnknownOption('Z'))
        );
        assert_eq!(parse(&["-t", "-l"]), Err(FlagError::MissingValue('l')));
        assert!(matches!(
            parse(&["-1", "-t", "x"]),
            Err(FlagError::Fatal(_))
        ));
        assert!(matches!(
            parse(&["-l", "0", "-t", "x"]),
            Err(FlagError::Usage(_))
        ));
        assert!(matches!(
            parse(&["-M", "x", "-t", "x"]),
            Err(FlagError::Usage(_))
        ));
    }

    #[test]
    fn admin_options_come_first() {
        let args: Vec<OsString> = ["--openssh-client", "/x", "-t", "dst"]
            .iter()
            .map(OsString::from)
            .collect();
        let (admin, rest) = split_admin_args(&args);
        assert_eq!(admin.len(), 2);
        assert_eq!(rest.len(), 2);
        let args: Vec<OsString> = ["--help"].iter().map(OsString::from).collect();
        assert_eq!(split_admin_args(&args).0.len(), 1);
    }
}
