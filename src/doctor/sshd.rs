//! sshd's settings for an account: asked of `sshd -T`, or read from
//! sshd_config and its Include files (Match blocks evaluated) where sshd
//! cannot be asked.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::accounts::{Account, Users};
use super::output::{Finding, io_text};

#[derive(Clone, Debug)]
pub(super) enum SshdSource {
    /// Ask sshd itself: `sshd -T -C user=NAME,…` (`-f FILE` when given).
    Sshd {
        program: PathBuf,
        config: Option<PathBuf>,
    },
    /// Read sshd_config and its Include files ourselves.
    Files(PathBuf),
}

/// What sshd applies to one account, as far as the doctor cares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct SshdSettings {
    /// ChrootDirectory with its `%` tokens unexpanded; `None` for none.
    pub(super) chroot: Option<String>,
    pub(super) force_command: Option<String>,
    /// Subsystem name and command: global in OpenSSH 9.2.
    pub(super) subsystems: Vec<(String, String)>,
}

/// `sshd -T` needs root (it reads the host keys) and a valid
/// configuration. If it fails, say so and read the files instead.
pub(super) fn usable_sshd_source(source: &SshdSource) -> (SshdSource, Option<Finding>) {
    let SshdSource::Sshd { program, config } = source else {
        return (source.clone(), None);
    };
    let Err(why) = query_sshd(program, config.as_deref(), "root") else {
        return (source.clone(), None);
    };
    let files = SshdSource::Files(
        config
            .clone()
            .unwrap_or_else(|| "/etc/ssh/sshd_config".into()),
    );
    let finding = if nix::unistd::geteuid().is_root() {
        Finding::problem(
            format!("`sshd -T` fails ({why}); sshd will not start with this configuration"),
            "correct the line sshd names, check with `sshd -t`, then reload sshd",
        )
    } else {
        Finding::warning(
            format!("`sshd -T` fails ({why}); reading sshd_config directly instead"),
            "run the doctor as root, so that sshd itself can say which settings apply",
        )
    };
    (files, Some(finding))
}

/// The settings for `account`, and a finding if sshd could not be asked.
pub(super) fn sshd_settings(
    source: &SshdSource,
    account: &Account,
    users: &Users,
) -> (SshdSettings, Option<Finding>) {
    let groups: Vec<String> = users
        .gids_of(account)
        .iter()
        .filter_map(|gid| users.group_name(*gid).map(str::to_owned))
        .collect();
    match source {
        SshdSource::Sshd { program, config } => {
            match query_sshd(program, config.as_deref(), &account.name) {
                Ok(settings) => (settings, None),
                Err(why) => {
                    let files = config
                        .clone()
                        .unwrap_or_else(|| "/etc/ssh/sshd_config".into());
                    let (settings, _) = read_sshd_files(&files, &account.name, &groups);
                    let finding = Finding::problem(
                        format!("`sshd -T` fails for {}: {why}", account.name),
                        "correct sshd's configuration (`sshd -t` names the line)",
                    );
                    (settings, Some(finding))
                }
            }
        }
        SshdSource::Files(path) => read_sshd_files(path, &account.name, &groups),
    }
}

/// Runs `sshd -T` for a connection of `user` from localhost. sshd itself
/// evaluates every Match criterion and resolves the user's groups.
pub(super) fn query_sshd(
    program: &Path,
    config: Option<&Path>,
    user: &str,
) -> Result<SshdSettings, String> {
    let mut command = Command::new(program);
    command
        .arg("-T")
        .arg("-C")
        .arg(format!("user={user},host=localhost,addr=127.0.0.1"));
    if let Some(config) = config {
        command.arg("-f").arg(config);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(stderr.lines().next().unwrap_or("failed").trim().to_owned());
    }
    Ok(parse_sshd_t(&String::from_utf8_lossy(&output.stdout)))
}

/// The lines of `sshd -T` that matter: `chrootdirectory`, `forcecommand`,
/// `subsystem`; `none` means unset.
pub(super) fn parse_sshd_t(text: &str) -> SshdSettings {
    let mut settings = SshdSettings::default();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = value.trim();
        match key {
            "chrootdirectory" => settings.chroot = unless_none(value),
            "forcecommand" => settings.force_command = unless_none(value),
            "subsystem" => {
                let (name, command) = value.split_once(' ').unwrap_or((value, ""));
                settings
                    .subsystems
                    .push((name.to_owned(), command.trim().to_owned()));
            }
            _ => {}
        }
    }
    settings
}

pub(super) fn unless_none(value: &str) -> Option<String> {
    (!value.is_empty() && !value.eq_ignore_ascii_case("none")).then(|| value.to_owned())
}

/// Reading sshd_config without sshd: first value wins, a matching Match
/// block's value wins over the global one, Include follows globs in its
/// last component. Match criteria other than User, Group, Host and Address
/// (and All) are taken as not matching. A file that cannot be read yields
/// the settings gathered so far and a problem.
pub(super) fn read_sshd_files(
    path: &Path,
    user: &str,
    groups: &[String],
) -> (SshdSettings, Option<Finding>) {
    let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut reader = ConfigReader {
        user,
        groups,
        base,
        global: Layer::default(),
        matched: Layer::default(),
        subsystems: Vec::new(),
    };
    let trouble = reader.file(path, Context::Global, 0).err().map(|why| {
        Finding::problem(
            why,
            "correct sshd's configuration (`sshd -t` names the line)",
        )
    });
    let settings = SshdSettings {
        chroot: reader
            .matched
            .chroot
            .or(reader.global.chroot)
            .and_then(|v| unless_none(&v)),
        force_command: reader
            .matched
            .force_command
            .or(reader.global.force_command)
            .and_then(|v| unless_none(&v)),
        subsystems: reader.subsystems,
    };
    (settings, trouble)
}

#[derive(Default)]
pub(super) struct Layer {
    pub(super) chroot: Option<String>,
    pub(super) force_command: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Context {
    Global,
    Matching,
    NotMatching,
}

pub(super) struct ConfigReader<'a> {
    pub(super) user: &'a str,
    pub(super) groups: &'a [String],
    /// Relative Include paths are relative to sshd's directory.
    pub(super) base: PathBuf,
    pub(super) global: Layer,
    pub(super) matched: Layer,
    pub(super) subsystems: Vec<(String, String)>,
}

impl ConfigReader<'_> {
    pub(super) fn file(&mut self, path: &Path, start: Context, depth: usize) -> Result<(), String> {
        if depth > 16 {
            return Err(format!("{}: Include nested too deeply", path.display()));
        }
        let text = fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {}", path.display(), io_text(&e)))?;
        // A Match block inside an included file ends with that file.
        let mut context = start;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let split = line
                .find(|c: char| c.is_whitespace() || c == '=')
                .unwrap_or(line.len());
            let keyword = line[..split].to_ascii_lowercase();
            let rest = line[split..].trim_start_matches(|c: char| c.is_whitespace() || c == '=');
            match keyword.as_str() {
                "include" => {
                    for pattern in split_args(rest)? {
                        for included in self.expand_include(&pattern) {
                            self.file(&included, context, depth + 1)?;
                        }
                    }
                }
                "match" => context = self.matches(rest),
                "chrootdirectory" => {
                    let value = split_args(rest)?.into_iter().next().unwrap_or_default();
                    self.set(context, |layer| &mut layer.chroot, value);
                }
                "forcecommand" => {
                    self.set(context, |layer| &mut layer.force_command, rest.to_owned())
                }
                "subsystem" if context == Context::Global => {
                    let (name, command) =
                        rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                    self.subsystems
                        .push((name.to_owned(), command.trim().to_owned()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// First value wins, within the global settings and within the
    /// matching Match blocks alike.
    pub(super) fn set(
        &mut self,
        context: Context,
        field: fn(&mut Layer) -> &mut Option<String>,
        value: String,
    ) {
        let layer = match context {
            Context::Global => &mut self.global,
            Context::Matching => &mut self.matched,
            Context::NotMatching => return,
        };
        field(layer).get_or_insert(value);
    }

    pub(super) fn expand_include(&self, pattern: &str) -> Vec<PathBuf> {
        let path = self.base.join(pattern);
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(OsStr::to_str))
        else {
            return vec![path];
        };
        if !name.contains(['*', '?']) {
            return vec![path];
        }
        let mut found: Vec<PathBuf> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .is_some_and(|n| wildcard(name.as_bytes(), n.as_bytes()))
            })
            .map(|entry| entry.path())
            .collect();
        found.sort();
        found
    }

    /// Every criterion of the Match line must hold.
    pub(super) fn matches(&self, criteria: &str) -> Context {
        let Ok(words) = split_args(criteria) else {
            return Context::NotMatching;
        };
        let mut words = words.iter();
        while let Some(word) = words.next() {
            let holds = match word.to_ascii_lowercase().as_str() {
                "all" => true,
                "user" => words
                    .next()
                    .is_some_and(|list| pattern_list(self.user, list) == Some(true)),
                "group" => words.next().is_some_and(|list| self.group_matches(list)),
                "host" => words.next().is_some_and(|list| {
                    pattern_list("localhost", &list.to_ascii_lowercase()) == Some(true)
                }),
                "address" => words
                    .next()
                    .is_some_and(|list| pattern_list("127.0.0.1", list) == Some(true)),
                _ => false,
            };
            if !holds {
                return Context::NotMatching;
            }
        }
        Context::Matching
    }

    /// sshd's rule: a negated pattern matching any group defeats the line.
    pub(super) fn group_matches(&self, list: &str) -> bool {
        let results: Vec<Option<bool>> =
            self.groups.iter().map(|g| pattern_list(g, list)).collect();
        !results.contains(&Some(false)) && results.contains(&Some(true))
    }
}

/// sshd's comma-separated pattern list: `Some(true)` if a pattern matches,
/// `Some(false)` if a negated (`!`) one does, `None` if none does.
pub(super) fn pattern_list(name: &str, list: &str) -> Option<bool> {
    let mut matched = None;
    for pattern in list.split(',') {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if wildcard(pattern.as_bytes(), name.as_bytes()) {
            if negated {
                return Some(false);
            }
            matched = Some(true);
        }
    }
    matched
}

/// `*` and `?` wildcards, as sshd's patterns and Include globs use them.
pub(super) fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and how much of the text it has taken.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Words as sshd splits configuration arguments and a shell splits a simple
/// ForceCommand: blanks separate, quotes group, backslash escapes.
pub(super) fn split_args(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err(format!("unterminated quote in '{text}'")),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => current.push(chars.next().unwrap_or('\\')),
                        Some(c) => current.push(c),
                        None => return Err(format!("unterminated quote in '{text}'")),
                    }
                }
            }
            '\\' => word
                .get_or_insert_with(String::new)
                .push(chars.next().unwrap_or('\\')),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// ChrootDirectory's tokens: `%%`, `%h` (home), `%u` (user), `%U` (uid).
pub(super) fn expand_tokens(value: &str, account: &Account) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('h') => out.push_str(&account.home.to_string_lossy()),
            Some('u') => out.push_str(&account.name),
            Some('U') => out.push_str(&account.uid.to_string()),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::test_support::*;

    #[test]
    fn sshd_config_files_without_sshd() {
        let dir = TempDir::new("doctor");
        mkdirs(&dir.path("sshd_config.d"));
        fs::write(
            dir.path("sshd_config"),
            "Include sshd_config.d/*.conf\nSubsystem\tsftp internal-sftp\nChrootDirectory /global\nForceCommand=/bin/true\n",
        )
        .unwrap();
        fs::write(
            dir.path("sshd_config.d/10-drop.conf"),
            "Match Group scp-drop,!wheel\n  ChrootDirectory \"/srv/scp drop/%u\"\n  ChrootDirectory /second\nMatch User bob\n  ForceCommand /usr/bin/scp-server --write-only\n",
        )
        .unwrap();
        fs::write(dir.path("sshd_config.d/20-fc.conf"), "Match User b*,!root Address 127.0.0.*\n  ForceCommand /usr/bin/scp-server --read-only\n").unwrap();
        fs::write(
            dir.path("sshd_config.d/ignored.txt"),
            "ChrootDirectory /wrong\n",
        )
        .unwrap();
        let read = |user: &str, groups: &[&str]| {
            let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            read_sshd_files(&dir.path("sshd_config"), user, &groups).0
        };
        let alice = read("alice", &["alice", "scp-drop"]);
        assert_eq!(alice.chroot.as_deref(), Some("/srv/scp drop/%u"));
        assert_eq!(alice.force_command.as_deref(), Some("/bin/true"));
        assert_eq!(
            alice.subsystems,
            vec![("sftp".to_owned(), "internal-sftp".to_owned())]
        );
        // A negated group defeats the Match line.
        assert_eq!(
            read("carol", &["scp-drop", "wheel"]).chroot.as_deref(),
            Some("/global")
        );
        // The first matching block's value wins.
        let bob = read("bob", &["bob"]);
        assert_eq!(
            bob.force_command.as_deref(),
            Some("/usr/bin/scp-server --write-only")
        );
        assert_eq!(
            read("bert", &[]).force_command.as_deref(),
            Some("/usr/bin/scp-server --read-only")
        );

        let (_, trouble) = read_sshd_files(&dir.path("absent"), "alice", &[]);
        assert!(trouble.unwrap().what.contains("cannot read"));
    }

    #[test]
    fn sshd_t_output() {
        let text = "port 22\nchrootdirectory /srv/scp-drop/%u\nforcecommand none\nsubsystem sftp /usr/lib/openssh/sftp-server -l INFO\n";
        assert_eq!(
            parse_sshd_t(text),
            SshdSettings {
                chroot: Some("/srv/scp-drop/%u".into()),
                force_command: None,
                subsystems: vec![("sftp".into(), "/usr/lib/openssh/sftp-server -l INFO".into())],
            }
        );
    }

    #[test]
    fn words_patterns_and_tokens() {
        assert_eq!(
            split_args(r#"a "b c" 'd e' f\ g "h\"i""#).unwrap(),
            vec!["a", "b c", "d e", "f g", "h\"i"]
        );
        assert!(split_args("'open").is_err());
        assert!(wildcard(b"*.conf", b"10-drop.conf"));
        assert!(!wildcard(b"*.conf", b"drop.conf.bak"));
        assert!(wildcard(b"a?c*", b"abcdef"));
        assert_eq!(pattern_list("alice", "bob,al*"), Some(true));
        assert_eq!(pattern_list("alice", "*,!alice"), Some(false));
        assert_eq!(pattern_list("alice", "bob"), None);
        let account = alice(JAIL_SHELL);
        assert_eq!(
            expand_tokens("/j/%u/%U/%%/%h", &account),
            "/j/alice/4242/%//"
        );
    }
}
