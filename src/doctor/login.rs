//! How sshd starts this program for an account: as its login shell
//! (chrooted or not) or through a ForceCommand, and the checks of that.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Parser;

use super::accounts::{Account, is_scp_server, usable_shell};
use super::output::Finding;
use super::sftp::{INTERNAL_SFTP, forced_internal_sftp};
use super::sshd::{SshdSettings, expand_tokens, split_args};
use super::{JAIL_SHELL, on_host};
use crate::cli::{self, AdminArgs};

/// How sshd will start this program for the account, if it will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// The login shell is scp-server; sshd chroots into `jail` first.
    LoginShell { jail: Option<PathBuf> },
    /// A ForceCommand whose program is scp-server.
    ForceCommand {
        words: Vec<String>,
        jail: Option<PathBuf>,
    },
    /// The login shell is scp-server, but a `ForceCommand internal-sftp`
    /// applies: sshd serves every session itself and never runs the shell.
    /// Kept apart from `Other` because the account is meant to be a drop
    /// account and is wide open; the other checks still run, as they will
    /// matter once the ForceCommand is gone.
    InternalSftp { jail: Option<PathBuf> },
    /// Neither: not a drop account.
    Other,
}

impl Kind {
    pub(super) fn jail(&self) -> Option<&Path> {
        match self {
            Kind::LoginShell { jail }
            | Kind::InternalSftp { jail }
            | Kind::ForceCommand { jail, .. } => jail.as_deref(),
            Kind::Other => None,
        }
    }

    /// The program sshd runs, as a path inside the jail if there is one.
    pub(super) fn program(&self, account: &Account) -> Option<PathBuf> {
        match self {
            Kind::LoginShell { .. } | Kind::InternalSftp { .. } => Some(account.shell.clone()),
            Kind::ForceCommand { words, .. } => words.first().map(PathBuf::from),
            Kind::Other => None,
        }
    }
}

/// sshd runs a ForceCommand whatever the shell, so it decides first.
pub(super) fn classify(
    account: &Account,
    settings: &SshdSettings,
    this_binary: Option<&Path>,
) -> Kind {
    let jail = settings
        .chroot
        .as_deref()
        .map(|c| PathBuf::from(expand_tokens(c, account)));
    if let Some(command) = &settings.force_command {
        let words = split_args(command).unwrap_or_default();
        return match words.first() {
            Some(program) if is_scp_server(Path::new(program), this_binary) => {
                Kind::ForceCommand { words, jail }
            }
            Some(program)
                if program == INTERNAL_SFTP && is_scp_server(&account.shell, this_binary) =>
            {
                Kind::InternalSftp { jail }
            }
            _ => Kind::Other,
        };
    }
    if is_scp_server(&account.shell, this_binary) {
        return Kind::LoginShell { jail };
    }
    Kind::Other
}

/// The admin's options of a ForceCommand, parsed as the binary will, and
/// the words left after them.
pub(super) fn forced_args(words: &[String]) -> Result<(AdminArgs, Vec<OsString>), String> {
    let args: Vec<OsString> = words.iter().skip(1).map(OsString::from).collect();
    let (admin_words, rest) = cli::split_admin_args(&args);
    let admin =
        AdminArgs::try_parse_from(std::iter::once(OsString::from("scp-server")).chain(admin_words))
            .map_err(|e| {
                let text = e.to_string();
                text.lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ")
                    .to_owned()
            })?;
    Ok((admin, rest))
}

pub(super) fn check_login(account: &Account, kind: &Kind) -> Vec<Finding> {
    let name = &account.name;
    match kind {
        Kind::LoginShell { jail: Some(_) } => Vec::new(),
        Kind::LoginShell { jail: None } => vec![Finding::problem(
            format!(
                "the login shell {} is scp-server, but no ChrootDirectory applies to {name}: sshd refuses the login where the shell exists only in a jail, or runs it unjailed",
                account.shell.display()
            ),
            format!(
                "usermod -a -G scp-drop {name} (the example's `Match Group scp-drop` sets `ChrootDirectory /srv/scp-drop/%u`), then reload sshd"
            ),
        )],
        Kind::ForceCommand { words, jail } => check_force_command(account, words, jail.as_deref()),
        Kind::InternalSftp { .. } => vec![forced_internal_sftp(account)],
        Kind::Other => {
            vec![Finding::problem(
                format!(
                    "{name} is not a drop account: its login shell {} is not scp-server and no ForceCommand that runs scp-server applies to it",
                    account.shell.display()
                ),
                format!(
                    "jailed: usermod -a -G scp-drop --home / --shell {JAIL_SHELL} {name}; or ForceCommand: usermod -a -G scp-drop-fc {name} (see /usr/share/doc/scp-server/examples/scp-drop.conf)"
                ),
            )]
        }
    }
}

/// A ForceCommand must parse as the binary's options, and the account's
/// shell must be able to run it: sshd starts it as `SHELL -c COMMAND`.
pub(super) fn check_force_command(
    account: &Account,
    words: &[String],
    jail: Option<&Path>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    match forced_args(words) {
        Err(why) => findings.push(Finding::problem(
            format!("the ForceCommand `{}` does not parse: {why}", words.join(" ")),
            "correct the ForceCommand line in sshd_config (options: scp-server --help)",
        )),
        Ok((_, rest)) if !rest.is_empty() => findings.push(Finding::warning(
            format!(
                "the ForceCommand `{}` has words after the options ({}); with -t or -f among them the client's command is ignored",
                words.join(" "),
                rest.iter().map(|w| w.to_string_lossy()).collect::<Vec<_>>().join(" ")
            ),
            "give only scp-server's --options in a ForceCommand; the client's command arrives in SSH_ORIGINAL_COMMAND",
        )),
        Ok(_) => {}
    }
    let shell = on_host(jail, &account.shell);
    if !usable_shell(&account.shell) || !shell.is_file() {
        findings.push(Finding::problem(
            format!(
                "sshd runs a ForceCommand through the login shell (SHELL -c COMMAND), and {}'s shell {} cannot do that",
                account.name,
                shell.display()
            ),
            format!("usermod --shell /bin/sh {}", account.name),
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::test_support::*;

    #[test]
    fn login_shell_or_force_command_must_run_scp_server() {
        let jailed = SshdSettings {
            chroot: Some("/srv/scp-drop/%u".into()),
            ..SshdSettings::default()
        };
        let account = alice(JAIL_SHELL);
        let kind = classify(&account, &jailed, None);
        assert_eq!(
            kind,
            Kind::LoginShell {
                jail: Some("/srv/scp-drop/alice".into())
            }
        );
        assert_eq!(check_login(&account, &kind), vec![]);

        // The shell without a chroot.
        let kind = classify(&account, &SshdSettings::default(), None);
        let findings = check_login(&account, &kind);
        assert!(
            findings[0].what.contains("no ChrootDirectory applies"),
            "{findings:?}"
        );
        assert!(findings[0].fix.contains("usermod -a -G scp-drop alice"));

        // Neither the shell nor a ForceCommand.
        let bash = alice("/bin/bash");
        let kind = classify(&bash, &jailed, None);
        assert_eq!(kind, Kind::Other);
        assert!(
            check_login(&bash, &kind)[0]
                .what
                .contains("is not a drop account")
        );

        // A good ForceCommand, with /bin/sh to run it.
        let forced = |command: &str| SshdSettings {
            force_command: Some(command.into()),
            ..SshdSettings::default()
        };
        let sh = alice("/bin/sh");
        let kind = classify(
            &sh,
            &forced("/usr/bin/scp-server --write-only --max-files 10"),
            None,
        );
        assert!(matches!(kind, Kind::ForceCommand { jail: None, .. }));
        assert_eq!(check_login(&sh, &kind), vec![]);

        // A shell that cannot run it.
        let nologin = alice("/usr/sbin/nologin");
        let kind = classify(&nologin, &forced("/usr/bin/scp-server --write-only"), None);
        let findings = check_login(&nologin, &kind);
        assert!(findings[0].what.contains("cannot do that"), "{findings:?}");
        assert_eq!(findings[0].fix, "usermod --shell /bin/sh alice");

        // An option the binary does not know.
        let kind = classify(&sh, &forced("/usr/bin/scp-server --write-olny"), None);
        let findings = check_login(&sh, &kind);
        assert!(findings[0].what.contains("does not parse"), "{findings:?}");
        assert!(findings[0].what.contains("--write-olny"), "{findings:?}");

        // A ForceCommand running something else decides, whatever the shell
        // (internal-sftp over an scp-server shell is its own case: sftp.rs).
        let kind = classify(&account, &forced("/usr/bin/rsync --server"), None);
        assert_eq!(kind, Kind::Other);
        let kind = classify(&account, &forced("internal-sftp"), None);
        assert_eq!(kind, Kind::InternalSftp { jail: None });
    }
}
