//! How SFTP reaches a drop account: the Subsystem line sshd applies.

use super::jail::PolicyView;
use super::login::Kind;
use super::output::Finding;
use super::sshd::SshdSettings;

/// OpenSSH 9.2 cannot set Subsystem per Match block. A global
/// `Subsystem sftp internal-sftp` serves SFTP to a jailed account without
/// ever running its login shell; a ForceCommand is run for subsystem
/// requests too, so only login-shell accounts are exposed.
pub(super) fn check_sftp(
    settings: &SshdSettings,
    kind: &Kind,
    policy: &PolicyView,
    user: &str,
) -> Vec<Finding> {
    let internal = settings.subsystems.iter().any(|(name, command)| {
        name == "sftp" && command.split_whitespace().next() == Some("internal-sftp")
    });
    if !internal || !matches!(kind, Kind::LoginShell { .. }) {
        return Vec::new();
    }
    let fix = "set `Subsystem sftp /usr/lib/openssh/sftp-server` globally, and give the accounts that need SFTP `ForceCommand internal-sftp` in their own Match block";
    let direction = if policy.write_only {
        Some("write-only")
    } else if policy.read_only {
        Some("read-only")
    } else {
        None
    };
    match direction {
        // The account's one promise is broken: a problem, not a warning.
        Some(direction) => vec![Finding::problem(
            format!(
                "the global `Subsystem sftp internal-sftp` serves SFTP to {user} without running scp-server: the account is not {direction}, and the deny list, limits and log do not apply"
            ),
            fix,
        )],
        None => vec![Finding::warning(
            format!(
                "the global `Subsystem sftp internal-sftp` serves SFTP to {user} without running scp-server: the deny list, limits and log do not apply to it"
            ),
            fix,
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::output::Severity;

    #[test]
    fn global_internal_sftp_beside_a_jailed_account_is_reported() {
        let settings = |command: &str| SshdSettings {
            chroot: Some("/srv/scp-drop/%u".into()),
            subsystems: vec![("sftp".into(), command.into())],
            ..SshdSettings::default()
        };
        let jailed = Kind::LoginShell {
            jail: Some("/srv/scp-drop/alice".into()),
        };
        let write_only = PolicyView {
            write_only: true,
            ..PolicyView::default()
        };
        assert_eq!(
            check_sftp(
                &settings("/usr/lib/openssh/sftp-server"),
                &jailed,
                &write_only,
                "alice"
            ),
            vec![]
        );
        let findings = check_sftp(
            &settings("internal-sftp -u 077"),
            &jailed,
            &write_only,
            "alice",
        );
        assert_eq!(findings[0].severity, Severity::Problem);
        assert!(findings[0].what.contains("not write-only"));
        let findings = check_sftp(
            &settings("internal-sftp"),
            &jailed,
            &PolicyView::default(),
            "alice",
        );
        assert_eq!(findings[0].severity, Severity::Warning);
        // A ForceCommand is run for subsystem requests too.
        let forced = Kind::ForceCommand {
            words: vec!["/usr/bin/scp-server".into()],
            jail: None,
        };
        assert_eq!(
            check_sftp(&settings("internal-sftp"), &forced, &write_only, "alice"),
            vec![]
        );
    }
}
