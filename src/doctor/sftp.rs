//! How SFTP reaches a drop account: the Subsystem line sshd applies, and
//! a `ForceCommand internal-sftp` that takes the account away from the
//! binary.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::accounts::{Account, is_scp_server};
use super::jail::PolicyView;
use super::login::{Kind, forced_args};
use super::output::{Finding, io_text, sh_quote};
use super::sshd::{SshdSettings, split_args};
use crate::cli::{self, SftpWordsFrom};
use crate::command::{self, Request};

/// sshd's name for the SFTP server built into it.
pub(super) const INTERNAL_SFTP: &str = "internal-sftp";
/// OpenSSH's external SFTP server (Debian: openssh-sftp-server).
const EXTERNAL_SFTP: &str = "/usr/lib/openssh/sftp-server";
/// This binary as every account's SFTP server.
const OWN_SFTP: &str = "/usr/bin/scp-server --sftp";

// How sshd 9.2 serves a `subsystem sftp` request (session.c,
// session_subsystem_req and do_exec):
// - `internal-sftp`: sshd serves SFTP itself, in the chroot, and never
//   runs the account's login shell;
// - any other command: sshd runs `SHELL -c COMMAND` with the account's
//   login shell (for a jailed drop account: scp-server, which takes
//   COMMAND as an SFTP request by its program's name); a missing program is
//   only logged at debug level, so it shows up as a failing session;
// - a ForceCommand replaces either: it runs with the subsystem's command in
//   SSH_ORIGINAL_COMMAND (`ForceCommand internal-sftp` is sshd's own server
//   again). Subsystem is global: OpenSSH 9.2 cannot set it in a Match block.

/// The SFTP findings of one drop account: how sshd will serve its SFTP
/// sessions, and whether the Subsystem line works at all.
pub(super) fn check_sftp(
    settings: &SshdSettings,
    kind: &Kind,
    policy: &PolicyView,
    user: &str,
    this_binary: Option<&Path>,
) -> Vec<Finding> {
    let Some(command) = sftp_subsystem(settings) else {
        return vec![no_subsystem(user)];
    };
    let words = split_args(command).unwrap_or_default();
    let Some(program) = words.first() else {
        return vec![no_subsystem(user)];
    };
    if program == INTERNAL_SFTP {
        return match kind {
            Kind::LoginShell { .. } | Kind::InternalSftp { .. } => {
                vec![global_internal_sftp(user, policy)]
            }
            // A ForceCommand of scp-server takes "internal-sftp" from
            // SSH_ORIGINAL_COMMAND and serves it under the policy.
            _ => Vec::new(),
        };
    }
    let mut findings: Vec<Finding> = external_program(Path::new(program)).into_iter().collect();
    if is_scp_server(Path::new(program), this_binary) {
        findings.extend(own_subsystem_flags(command, &words));
    }
    if takes_subsystem_command(kind) {
        findings.extend(drop_account_refusal(command, kind, user));
    }
    findings
}

/// The command of the `Subsystem sftp` line, if there is one (sshd refuses
/// a second one).
fn sftp_subsystem(settings: &SshdSettings) -> Option<&str> {
    settings
        .subsystems
        .iter()
        .find(|(name, _)| name == "sftp")
        .map(|(_, command)| command.as_str())
}

/// Without a Subsystem line sshd refuses every SFTP request: the account
/// works for `scp -O` only, which is worth knowing but not broken.
fn no_subsystem(user: &str) -> Finding {
    Finding::warning(
        format!(
            "no `Subsystem sftp` line: sshd refuses SFTP, so `sftp`, WinSCP, FileZilla and OpenSSH 9's `scp` (without -O) cannot reach {user}"
        ),
        format!("add `Subsystem sftp {EXTERNAL_SFTP}` to sshd_config, then reload sshd"),
    )
}

/// internal-sftp runs inside sshd: none of the policy the binary enforces
/// reaches it, whatever the account's configuration says.
fn global_internal_sftp(user: &str, policy: &PolicyView) -> Finding {
    Finding::problem(
        format!(
            "the global `Subsystem sftp internal-sftp` serves SFTP to {user} inside sshd, never running its login shell scp-server: {}",
            bypass(policy)
        ),
        format!(
            "set `Subsystem sftp {EXTERNAL_SFTP}` globally: sshd then runs {user}'s login shell, scp-server, for SFTP too (the jail needs no sftp-server){}",
            own_sftp_alternative()
        ),
    )
}

/// A `ForceCommand internal-sftp` (in a Match block or global) on an
/// account whose login shell is scp-server.
pub(super) fn forced_internal_sftp(account: &Account) -> Finding {
    let name = &account.name;
    Finding::problem(
        format!(
            "`ForceCommand internal-sftp` applies to {name}: sshd serves every session of the account itself and never runs its login shell {}, so none of scp-server's policy holds (a write-only account can download and list files)",
            account.shell.display()
        ),
        format!(
            "remove `ForceCommand internal-sftp` from the Match block that applies to {name} (`sshd -T -C user={name}` shows what applies) and set `Subsystem sftp {EXTERNAL_SFTP}` globally: the login shell then serves SFTP too"
        ),
    )
}

/// What the account could do over SFTP that the policy forbids.
fn bypass(policy: &PolicyView) -> &'static str {
    if policy.write_only {
        "the account is write-only, yet could download and list files; the deny list, limits and audit trail do not apply"
    } else if policy.read_only {
        "the account is read-only, yet could upload, overwrite, rename and remove files; the deny list, limits and audit trail do not apply"
    } else {
        "the policy's root, the refusal of links, the deny list, the limits and the audit trail do not apply"
    }
}

/// sshd runs the subsystem's program for every account whose shell is an
/// ordinary one; a drop account's scp-server only looks at its name, so
/// what is missing here breaks SFTP for the others.
fn external_program(program: &Path) -> Option<Finding> {
    if !program.is_absolute() {
        return None; // found through each shell's PATH: nothing to look at here
    }
    let shown = sh_quote(program);
    let install = if program.file_name() == Some(OsStr::new("sftp-server")) {
        format!(
            "apt-get install openssh-sftp-server (Debian's package of {EXTERNAL_SFTP}), or name the sftp-server that is installed in the Subsystem line"
        )
    } else {
        format!("install {shown}, or set `Subsystem sftp {EXTERNAL_SFTP}`")
    };
    let meta = match fs::metadata(program) {
        Ok(meta) => meta,
        Err(e) => {
            return Some(Finding::problem(
                format!(
                    "the `Subsystem sftp` program {}: {}: every account whose login shell runs it gets no SFTP",
                    program.display(),
                    io_text(&e)
                ),
                install,
            ));
        }
    };
    if !meta.is_file() {
        return Some(Finding::problem(
            format!(
                "the `Subsystem sftp` program {} is not a regular file: SFTP sessions fail",
                program.display()
            ),
            install,
        ));
    }
    if meta.mode() & 0o111 == 0 {
        return Some(Finding::problem(
            format!(
                "the `Subsystem sftp` program {} is not executable (mode {:04o}): SFTP sessions fail",
                program.display(),
                meta.mode() & 0o7777
            ),
            format!("chmod 0755 {shown}"),
        ));
    }
    None
}

/// A Subsystem line that names this binary is run as `scp-server WORDS`
/// for ordinary accounts: its words must parse as the binary parses them
/// (the admin's long options, `--sftp`, then sftp-server's options).
fn own_subsystem_flags(command: &str, words: &[String]) -> Vec<Finding> {
    let fix = "correct the Subsystem line: `Subsystem sftp /usr/bin/scp-server --sftp [POLICY OPTIONS] [SFTP-SERVER OPTIONS]` (scp-server --help; sftp-server's -R -u -d -e -l -f -P -p may follow --sftp)";
    let (admin, rest) = match forced_args(words) {
        Ok(parsed) => parsed,
        Err(why) => {
            return vec![Finding::problem(
                format!("the Subsystem line `{command}` does not parse: {why}"),
                fix,
            )];
        }
    };
    if !admin.sftp {
        // Without --sftp the binary takes the session for a person typing
        // scp (or, with a policy option, for a refused interactive login).
        return vec![Finding::problem(
            format!(
                "the Subsystem line `{command}` lacks --sftp: scp-server does not speak SFTP without it, so every SFTP session fails"
            ),
            format!(
                "set `Subsystem sftp {} --sftp{}`",
                words[0],
                words[1..]
                    .iter()
                    .map(|w| format!(" {w}"))
                    .collect::<String>()
            ),
        )];
    }
    match cli::parse_sftp_server_flags(&rest, SftpWordsFrom::Admin) {
        Ok(_) => Vec::new(),
        Err(why) => vec![Finding::problem(
            format!("the Subsystem line `{command}` is refused by scp-server: {why}"),
            fix,
        )],
    }
}

/// Whether the account's scp-server receives the subsystem's command: as
/// `-c COMMAND` from the login shell, or in SSH_ORIGINAL_COMMAND from a
/// ForceCommand (unless that ForceCommand serves SFTP itself, `--sftp`).
fn takes_subsystem_command(kind: &Kind) -> bool {
    match kind {
        Kind::LoginShell { .. } => true,
        Kind::ForceCommand { words, .. } => forced_args(words).is_ok_and(|(admin, rest)| {
            !admin.sftp && rest.is_empty() // words after the options: warned about in login
        }),
        Kind::InternalSftp { .. } | Kind::Other => false,
    }
}

/// Why the account's scp-server would refuse `command` as an SFTP request,
/// decided by the binary's own parsers (command::parse_request and
/// sftp-server's options as a client may give them): `None` if it serves it.
fn refusal(command: &str) -> Option<String> {
    let words = match command::parse_request(command.as_bytes()) {
        Ok(Request::Sftp(words)) => words,
        Ok(Request::Other(program)) => {
            return Some(format!(
                "it serves SFTP only for `internal-sftp` or a program named `sftp-server`, and refuses to run '{}'",
                String::from_utf8_lossy(&program)
            ));
        }
        Ok(Request::Scp(_) | Request::Empty) => {
            return Some("the command is not an SFTP server".to_owned());
        }
        Err(e) => return Some(e.to_string()),
    };
    let texts: Vec<OsString> = words
        .iter()
        .map(|w| OsStr::from_bytes(&w.text).to_owned())
        .collect();
    cli::parse_sftp_server_flags(&texts, SftpWordsFrom::Client).err()
}

/// A drop account whose scp-server refuses the subsystem's command gets no
/// SFTP at all.
fn drop_account_refusal(command: &str, kind: &Kind, user: &str) -> Option<Finding> {
    let why = refusal(command)?;
    let how = match kind {
        Kind::ForceCommand { .. } => "its ForceCommand, with the command in SSH_ORIGINAL_COMMAND",
        _ => "its login shell, as `scp-server -c COMMAND`",
    };
    Some(Finding::problem(
        format!(
            "sshd hands {user}'s SFTP sessions to {how}, and scp-server refuses `{command}`: {why}; every SFTP session of {user} fails"
        ),
        format!(
            "set `Subsystem sftp {EXTERNAL_SFTP}` (scp-server accepts a program named sftp-server, or `scp-server --sftp`, followed by no option but -R, -e, -l and -f){}",
            own_sftp_alternative()
        ),
    ))
}

/// `Subsystem sftp /usr/bin/scp-server --sftp` as a second fix, offered
/// only while drop accounts' scp-server accepts that command: advice that
/// breaks the account is no advice.
fn own_sftp_alternative() -> String {
    match refusal(OWN_SFTP) {
        None => format!("; or `Subsystem sftp {OWN_SFTP}` for every account"),
        Some(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::login::{check_login, classify};
    use crate::doctor::test_support::*;
    use std::os::unix::fs::PermissionsExt;

    /// A programs directory in the test's tree: an executable
    /// `sftp-server` and `scp-server` (the Subsystem lines name them).
    struct Programs {
        dir: TempDir,
    }

    impl Programs {
        fn new() -> Programs {
            let dir = TempDir::new("doctor-sftp");
            for name in ["sftp-server", "scp-server"] {
                fs::write(dir.path(name), b"#!/bin/sh\n").unwrap();
                fs::set_permissions(dir.path(name), fs::Permissions::from_mode(0o755)).unwrap();
            }
            Programs { dir }
        }

        /// `NAME ARGS` with NAME's path in the tree.
        fn command(&self, name: &str, args: &str) -> String {
            format!("{} {args}", self.dir.path(name).display())
                .trim_end()
                .to_owned()
        }
    }

    fn subsystem(command: &str) -> SshdSettings {
        SshdSettings {
            chroot: Some("/srv/scp-drop/%u".into()),
            subsystems: vec![("sftp".into(), command.into())],
            ..SshdSettings::default()
        }
    }

    fn jailed() -> Kind {
        Kind::LoginShell {
            jail: Some("/srv/scp-drop/alice".into()),
        }
    }

    fn forced(words: &[&str]) -> Kind {
        Kind::ForceCommand {
            words: words.iter().map(|w| w.to_string()).collect(),
            jail: None,
        }
    }

    fn write_only() -> PolicyView {
        PolicyView {
            write_only: true,
            ..PolicyView::default()
        }
    }

    fn check(command: &str, kind: &Kind) -> Vec<Finding> {
        check_sftp(&subsystem(command), kind, &write_only(), "alice", None)
    }

    #[test]
    fn global_internal_sftp_beside_a_jailed_account_is_reported() {
        let programs = Programs::new();
        assert_eq!(
            check(&programs.command("sftp-server", ""), &jailed()),
            vec![]
        );
        let findings = check("internal-sftp -u 077", &jailed());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Problem);
        assert!(
            findings[0]
                .what
                .contains("inside sshd, never running its login shell scp-server"),
            "{findings:?}"
        );
        assert!(
            findings[0].what.contains("write-only, yet could download"),
            "{findings:?}"
        );
        assert!(
            findings[0]
                .fix
                .starts_with("set `Subsystem sftp /usr/lib/openssh/sftp-server` globally"),
            "{findings:?}"
        );
        // Without a direction to break it is still an error: the policy's
        // root, the link rule, the limits and the audit trail are bypassed.
        let findings = check_sftp(
            &subsystem("internal-sftp"),
            &jailed(),
            &PolicyView::default(),
            "alice",
            None,
        );
        assert_eq!(findings[0].severity, Severity::Problem);
        assert!(findings[0].what.contains("the audit trail do not apply"));
        // A ForceCommand is run for subsystem requests too: scp-server
        // serves "internal-sftp" from SSH_ORIGINAL_COMMAND.
        let findings = check(
            "internal-sftp",
            &forced(&["/usr/bin/scp-server", "--write-only"]),
        );
        assert_eq!(findings, vec![]);
    }

    #[test]
    fn forced_internal_sftp_on_a_drop_account_is_reported() {
        let settings = SshdSettings {
            chroot: Some("/srv/scp-drop/%u".into()),
            force_command: Some("internal-sftp -R".into()),
            ..SshdSettings::default()
        };
        let account = alice(JAIL_SHELL);
        let kind = classify(&account, &settings, None);
        assert_eq!(
            kind,
            Kind::InternalSftp {
                jail: Some("/srv/scp-drop/alice".into())
            }
        );
        let findings = check_login(&account, &kind);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Problem);
        assert!(
            findings[0]
                .what
                .starts_with("`ForceCommand internal-sftp` applies to alice"),
            "{findings:?}"
        );
        assert!(
            findings[0]
                .fix
                .starts_with("remove `ForceCommand internal-sftp` from the Match block"),
            "{findings:?}"
        );
        // An ordinary SFTP-only account (a real shell) is no drop account
        // and is left alone.
        let sh = alice("/bin/sh");
        assert_eq!(classify(&sh, &settings, None), Kind::Other);
        // Without the ForceCommand the login shell serves the account.
        let plain = SshdSettings {
            force_command: None,
            ..settings
        };
        let kind = classify(&account, &plain, None);
        assert!(matches!(kind, Kind::LoginShell { .. }));
        assert_eq!(check_login(&account, &kind), vec![]);
    }

    #[test]
    fn no_sftp_subsystem_is_a_warning() {
        let none = SshdSettings {
            subsystems: vec![("other".into(), "/bin/true".into())],
            ..SshdSettings::default()
        };
        let findings = check_sftp(&none, &jailed(), &write_only(), "alice", None);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(
            findings[0].what.starts_with("no `Subsystem sftp` line"),
            "{findings:?}"
        );
        assert_eq!(
            findings[0].fix,
            "add `Subsystem sftp /usr/lib/openssh/sftp-server` to sshd_config, then reload sshd"
        );
        let programs = Programs::new();
        let findings = check(&programs.command("sftp-server", ""), &jailed());
        assert_eq!(findings, vec![]);
    }

    #[test]
    fn missing_or_unusable_external_subsystem_is_reported() {
        let programs = Programs::new();
        let missing = programs.dir.path("openssh/sftp-server");
        let findings = check(&missing.display().to_string(), &jailed());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Problem);
        assert!(
            findings[0]
                .what
                .contains("sftp-server: No such file or directory: every account whose login shell runs it gets no SFTP"),
            "{findings:?}"
        );
        assert!(
            findings[0]
                .fix
                .starts_with("apt-get install openssh-sftp-server"),
            "{findings:?}"
        );
        // Present but not executable.
        let server = programs.dir.path("sftp-server");
        fs::set_permissions(&server, fs::Permissions::from_mode(0o644)).unwrap();
        let findings = check(&programs.command("sftp-server", "-l INFO"), &jailed());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0].what.contains("is not executable (mode 0644)"),
            "{findings:?}"
        );
        assert_eq!(findings[0].fix, format!("chmod 0755 {}", server.display()));
        // A directory where the program should be.
        let dir = programs.dir.path("bin/sftp-server");
        fs::create_dir_all(&dir).unwrap();
        let findings = check(&dir.display().to_string(), &jailed());
        assert!(
            findings[0].what.contains("is not a regular file"),
            "{findings:?}"
        );
        // Executable again: nothing to report.
        fs::set_permissions(&server, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            check(&programs.command("sftp-server", "-l INFO"), &jailed()),
            vec![]
        );
    }

    #[test]
    fn subsystem_naming_this_binary_is_checked_for_its_flags() {
        let programs = Programs::new();
        let own = |args: &str| {
            let command = programs.command("scp-server", args);
            let words = split_args(&command).unwrap();
            own_subsystem_flags(&command, &words)
        };
        // sftp-server's options and the admin's long options are fine.
        assert_eq!(own("--sftp"), vec![]);
        assert_eq!(own("--write-only --sftp -u 077 -l INFO -P remove"), vec![]);

        let findings = own("-u 077");
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].what.contains("lacks --sftp"), "{findings:?}");
        assert!(
            findings[0].fix.ends_with("scp-server --sftp -u 077`"),
            "{findings:?}"
        );
        let findings = own("--sftp --write-olny");
        assert!(findings[0].what.contains("does not parse"), "{findings:?}");
        assert!(findings[0].what.contains("--write-olny"), "{findings:?}");
        let findings = own("--sftp -X");
        assert!(
            findings[0].what.contains("unknown sftp-server option -X"),
            "{findings:?}"
        );
        let findings = own("--sftp extra");
        assert!(
            findings[0].what.contains("sftp-server takes no operands"),
            "{findings:?}"
        );

        // Wired into the check, for whatever account: here a ForceCommand
        // that serves SFTP itself and so ignores the command.
        let own_kind = forced(&["/usr/bin/scp-server", "--sftp", "--write-only"]);
        let findings = check(&programs.command("scp-server", "--sftpp"), &own_kind);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(findings[0].what.contains("--sftpp"), "{findings:?}");
        assert_eq!(
            check(&programs.command("scp-server", "--sftp -R"), &own_kind),
            vec![]
        );
    }

    #[test]
    fn subsystem_command_a_drop_account_refuses_is_reported() {
        let programs = Programs::new();
        // Options a client could not give: refused by the login shell.
        let findings = check(&programs.command("sftp-server", "-u 077"), &jailed());
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].severity, Severity::Problem);
        assert!(
            findings[0].what.contains(
                "sshd hands alice's SFTP sessions to its login shell, as `scp-server -c COMMAND`"
            ),
            "{findings:?}"
        );
        assert!(
            findings[0].what.contains("refusing sftp-server option -u"),
            "{findings:?}"
        );
        assert!(
            findings[0]
                .fix
                .starts_with("set `Subsystem sftp /usr/lib/openssh/sftp-server`"),
            "{findings:?}"
        );
        // This binary as the subsystem: the login shell serves it under
        // the account's policy, but policy words in the line would be a
        // client's widening words there, and are refused.
        assert_eq!(
            check(&programs.command("scp-server", "--sftp"), &jailed()),
            vec![]
        );
        let findings = check(
            &programs.command("scp-server", "--sftp --write-only"),
            &jailed(),
        );
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0]
                .what
                .contains("refusing sftp-server option '--write-only'"),
            "{findings:?}"
        );
        // The same through a ForceCommand.
        let fc = forced(&["/usr/bin/scp-server", "--write-only"]);
        let findings = check(&programs.command("sftp-server", "-d /x"), &fc);
        assert!(
            findings[0].what.contains("to its ForceCommand"),
            "{findings:?}"
        );
        // What a client may add is fine, and so is a plain sftp-server.
        assert_eq!(
            check(
                &programs.command("sftp-server", "-l INFO -f AUTH -R"),
                &jailed()
            ),
            vec![]
        );
        assert_eq!(check(&programs.command("sftp-server", ""), &fc), vec![]);
    }

    #[test]
    fn fixes_name_only_commands_a_drop_account_accepts() {
        assert_eq!(refusal(EXTERNAL_SFTP), None);
        assert_eq!(refusal(INTERNAL_SFTP), None);
        // The second fix appears exactly when the binary would serve it.
        let finding = global_internal_sftp("alice", &write_only());
        assert_eq!(
            finding.fix.contains(OWN_SFTP),
            refusal(OWN_SFTP).is_none(),
            "{finding:?}"
        );
    }
}
