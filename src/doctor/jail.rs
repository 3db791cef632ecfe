//! The jail and what it must hold: sshd's ChrootDirectory ownership rule,
//! the configuration file as the binary will read it, an upload directory
//! the account can write, and journald's socket bound in.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::accounts::{Account, Users, permits};
use super::output::{Finding, io_text, sh_quote};
use super::{JAIL_BASE, JOURNAL_SOCKET};
use crate::policy::{Identity, Policy, PolicyArgs};

// ---------------------------------------------------------------------------
// Check: the jail's path (sshd's ChrootDirectory rule)
// ---------------------------------------------------------------------------

/// sshd refuses a ChrootDirectory unless every component of its path, from
/// `/` down, is a directory owned by root and writable by nobody else
/// (session.c, safely_chroot). Components above `top` are not checked.
pub(super) fn check_jail_path(jail: &Path, top: &Path) -> Vec<Finding> {
    if !jail.is_absolute() {
        return vec![Finding::problem(
            format!("ChrootDirectory {} is not an absolute path", jail.display()),
            "give ChrootDirectory an absolute path, such as /srv/scp-drop/%u",
        )];
    }
    let mut findings = Vec::new();
    let mut dirs: Vec<&Path> = jail.ancestors().filter(|d| d.starts_with(top)).collect();
    dirs.reverse();
    for dir in dirs {
        let shown = sh_quote(dir);
        let meta = match fs::metadata(dir) {
            Ok(meta) => meta,
            Err(e) => {
                findings.push(Finding::problem(
                    format!("{}: {}", dir.display(), io_text(&e)),
                    format!("install -d -o root -g root -m 0755 {shown}"),
                ));
                break;
            }
        };
        if !meta.is_dir() {
            findings.push(Finding::problem(
                format!("{} is not a directory", dir.display()),
                format!(
                    "replace {shown} by a directory: install -d -o root -g root -m 0755 {shown}"
                ),
            ));
            break;
        }
        if meta.uid() != 0 {
            findings.push(Finding::problem(
                format!(
                    "{} belongs to uid {}, not root: sshd refuses to chroot through it",
                    dir.display(),
                    meta.uid()
                ),
                format!("chown root:root {shown}"),
            ));
        }
        if meta.mode() & 0o022 != 0 {
            findings.push(Finding::problem(
                format!(
                    "{} is writable by {} (mode {:04o}): sshd refuses to chroot through it",
                    dir.display(),
                    writable_by(meta.mode()),
                    meta.mode() & 0o7777
                ),
                format!("chmod go-w {shown}"),
            ));
        }
    }
    findings
}

pub(super) fn writable_by(mode: u32) -> &'static str {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and others",
        (true, false) => "its group",
        _ => "others",
    }
}
// ---------------------------------------------------------------------------
// Check: the configuration file
// ---------------------------------------------------------------------------

/// What the rest of the checks need from the policy.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct PolicyView {
    pub(super) root: Option<PathBuf>,
    pub(super) read_only: bool,
    pub(super) write_only: bool,
}

/// Loads the account's policy as the binary will: the file (`args.config`,
/// else `default`, which may be missing) with the account's names, and the
/// ForceCommand's flags on top.
pub(super) fn check_config(
    default: &Path,
    args: &PolicyArgs,
    identity: &Identity,
    account: &Account,
) -> (PolicyView, Vec<Finding>) {
    let named = args.config.is_some();
    let path = args.config.clone().unwrap_or_else(|| default.to_path_buf());
    if !named && fs::symlink_metadata(&path).is_err() {
        // No file: the defaults and the flags. (Policy::load would read
        // the host's default file, which a jailed session never sees.)
        let view = PolicyView {
            root: args.root.clone(),
            read_only: args.read_only,
            write_only: args.write_only,
        };
        return (view, Vec::new());
    }
    let args = PolicyArgs {
        config: Some(path.clone()),
        ..args.clone()
    };
    let policy = Policy::load(&args, identity);
    let view = PolicyView {
        root: policy.root.clone(),
        read_only: policy.read_only,
        write_only: policy.write_only,
    };
    let Some(error) = policy.config_error else {
        return (view, Vec::new());
    };
    let fix = config_fix(&path, &args, identity, account);
    (view, vec![Finding::problem(error, fix)])
}

/// What to do about a file that fails closed: names for the account inside
/// the jail, ownership, or the file's text.
pub(super) fn config_fix(
    path: &Path,
    args: &PolicyArgs,
    identity: &Identity,
    account: &Account,
) -> String {
    let shown = sh_quote(path);
    let named = Identity {
        unnamed_ids: false,
        ..identity.clone()
    };
    if identity.unnamed_ids && Policy::load(args, &named).config_error.is_none() {
        let etc = path.parent().unwrap_or(Path::new("/etc"));
        return format!(
            "give the account's ids names where the binary looks them up: printf '{}:x:{}:{}::{}:{}\\n' >> {}; and a line per group in {} (root-owned, mode 0644)",
            account.name,
            account.uid,
            account.gid,
            account.home.display(),
            account.shell.display(),
            sh_quote(&etc.join("passwd")),
            sh_quote(&etc.join("group")),
        );
    }
    match fs::metadata(path) {
        Ok(meta) if meta.uid() != 0 || meta.mode() & 0o022 != 0 => {
            format!("chown root:root {shown} && chmod 0644 {shown}")
        }
        _ => format!("correct {shown} as the message says (keys and syntax: scp-server.conf(5))"),
    }
}

// ---------------------------------------------------------------------------
// Check: the upload directory
// ---------------------------------------------------------------------------

/// Uploads need a directory the account can write and search: `incoming/`
/// in its root, as the docs lay jails out, or the root itself.
pub(super) fn check_upload_dir(
    root: &Path,
    account: &Account,
    gids: &[u32],
    read_only: bool,
    users: &Users,
) -> Vec<Finding> {
    if read_only {
        return Vec::new();
    }
    let incoming = root.join("incoming");
    let group = users
        .group_name(account.gid)
        .map(str::to_owned)
        .unwrap_or_else(|| account.gid.to_string());
    let create = format!(
        "install -d -o {} -g {group} -m 0755 {}",
        account.name,
        sh_quote(&incoming)
    );
    let root_meta = match fs::metadata(root) {
        Ok(meta) if meta.is_dir() => meta,
        Ok(_) => {
            return vec![Finding::problem(
                format!("the account's root {} is not a directory", root.display()),
                format!(
                    "install -d -o root -g root -m 0755 {} && {create}",
                    sh_quote(root)
                ),
            )];
        }
        Err(e) => {
            return vec![Finding::problem(
                format!("the account's root {}: {}", root.display(), io_text(&e)),
                format!(
                    "install -d -o root -g root -m 0755 {} && {create}",
                    sh_quote(root)
                ),
            )];
        }
    };
    match fs::metadata(&incoming) {
        Ok(meta) if meta.is_dir() && permits(&meta, account.uid, gids, 0o3) => Vec::new(),
        Ok(meta) if meta.is_dir() => vec![Finding::problem(
            format!(
                "{} cannot write {} (owner uid {}, group {}, mode {:04o})",
                account.name,
                incoming.display(),
                meta.uid(),
                meta.gid(),
                meta.mode() & 0o7777
            ),
            format!(
                "chown {}:{group} {} && chmod 0755 {}",
                account.name,
                sh_quote(&incoming),
                sh_quote(&incoming)
            ),
        )],
        _ if permits(&root_meta, account.uid, gids, 0o3) => Vec::new(),
        _ => vec![Finding::problem(
            format!(
                "{} can write neither {} nor {}: every upload will be refused",
                account.name,
                incoming.display(),
                root.display()
            ),
            create,
        )],
    }
}

// ---------------------------------------------------------------------------
// Check: journald's socket
// ---------------------------------------------------------------------------

/// scp-server logs to journald through its socket; inside a jail only if
/// the socket is bound in at JAIL/run/systemd/journal/socket.
pub(super) fn check_journal(
    socket: &Path,
    host_socket: &Path,
    jail: Option<&Path>,
    user: &str,
) -> Vec<Finding> {
    if !is_socket(host_socket) {
        return vec![Finding::warning(
            format!(
                "{} does not exist: this host runs no journald, so scp-server keeps no audit trail there",
                host_socket.display()
            ),
            "nothing to bind without journald; run systemd-journald for an audit trail",
        )];
    }
    let Some(jail) = jail else {
        // Without a jail the session sees the host's socket itself.
        return Vec::new();
    };
    let fix = journal_fix(jail, user);
    match fs::symlink_metadata(socket) {
        Err(e) => vec![Finding::problem(
            format!(
                "{}: {}: scp-server in the jail cannot log",
                socket.display(),
                io_text(&e)
            ),
            fix,
        )],
        Ok(meta) if !meta.file_type().is_socket() => vec![Finding::problem(
            format!(
                "{} is not a socket (the binding is gone?): scp-server in the jail cannot log",
                socket.display()
            ),
            fix,
        )],
        Ok(_) => {
            match std::os::unix::net::UnixDatagram::unbound().and_then(|s| s.connect(socket)) {
                Ok(()) => Vec::new(),
                Err(e) => vec![Finding::problem(
                    format!(
                        "cannot connect to {}: {} (a stale binding?)",
                        socket.display(),
                        io_text(&e)
                    ),
                    fix.replace("enable --now", "restart"),
                )],
            }
        }
    }
}

pub(super) fn is_socket(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The command that binds the socket into this jail with the shipped
/// scp-drop-journal@.service.
pub(super) fn journal_fix(jail: &Path, user: &str) -> String {
    let unit = format!("scp-drop-journal@{}.service", systemd_escape(user));
    let enable = format!("systemctl enable --now '{unit}'");
    match (jail.parent(), jail.file_name()) {
        (Some(base), Some(name)) if name == OsStr::new(user) && base == Path::new(JAIL_BASE) => {
            enable
        }
        (Some(base), Some(name)) if name == OsStr::new(user) => format!(
            "systemctl edit scp-drop-journal@.service and set Environment=SCP_DROP_BASE={}, then {enable}",
            base.display()
        ),
        _ => format!(
            "bind-mount {JOURNAL_SOCKET} read-only at {} (scp-drop-journal@.service does this for jails named BASE/USER)",
            jail.join("run/systemd/journal/socket").display()
        ),
    }
}

/// systemd's escaping of a unit instance name (as `systemd-escape`).
pub(super) fn systemd_escape(name: &str) -> String {
    let mut out = String::new();
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b':' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::test_support::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn jail_path_components_must_be_roots_and_not_writable() {
        if !root_or_skip() {
            return;
        }
        let setup = good_setup();
        let top = &setup.dir.0;
        assert_eq!(check_jail_path(&setup.jail, top), vec![]);

        let base = setup.dir.path("srv/scp-drop");
        set_mode(&base, 0o775);
        let findings = check_jail_path(&setup.jail, top);
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert!(
            findings[0]
                .what
                .contains("writable by its group (mode 0775)"),
            "{findings:?}"
        );
        assert_eq!(findings[0].fix, format!("chmod go-w {}", base.display()));
        set_mode(&base, 0o755);

        chown(&setup.jail, ALICE_UID, ALICE_GID);
        let findings = check_jail_path(&setup.jail, top);
        assert!(
            findings[0].what.contains("belongs to uid 4242"),
            "{findings:?}"
        );
        assert_eq!(
            findings[0].fix,
            format!("chown root:root {}", setup.jail.display())
        );
        chown(&setup.jail, 0, 0);

        let missing = setup.dir.path("srv/scp-drop/bob");
        let findings = check_jail_path(&missing, top);
        assert!(
            findings[0].what.contains("No such file or directory"),
            "{findings:?}"
        );
        assert!(
            findings[0]
                .fix
                .starts_with("install -d -o root -g root -m 0755 ")
        );

        let findings = check_jail_path(Path::new("srv/x"), top);
        assert!(findings[0].what.contains("not an absolute path"));
    }

    #[test]
    fn configuration_file_must_parse_for_the_account() {
        if !root_or_skip() {
            return;
        }
        let setup = good_setup();
        let account = alice(JAIL_SHELL);
        let path = setup.jail.join("etc/scp-server.conf");
        mkdirs(&setup.jail.join("etc"));
        let gids = [ALICE_GID, DROP_GID];
        let jail_users = || {
            Users::read_optional(
                &setup.jail.join("etc/passwd"),
                &setup.jail.join("etc/group"),
            )
        };
        let identity = || jail_users().identity(&account, &gids);
        let check = || check_config(&path, &PolicyArgs::default(), &identity(), &account);

        // No file: defaults.
        assert_eq!(check(), (PolicyView::default(), vec![]));

        fs::write(&path, "write-only = true\nmax-file-size = \"2G\"\n").unwrap();
        set_mode(&path, 0o644);
        let (view, findings) = check();
        assert_eq!(findings, vec![]);
        assert!(view.write_only);

        // Malformed: the binary's own sentence, with the line.
        fs::write(&path, "write-only = true\nmax-fies = 3\n").unwrap();
        let (_, findings) = check();
        assert!(
            findings[0].what.contains("line 2: unknown key 'max-fies'"),
            "{findings:?}"
        );
        assert!(findings[0].fix.contains("scp-server.conf(5)"));

        // Writable by others: fails closed.
        fs::write(&path, "write-only = true\n").unwrap();
        set_mode(&path, 0o666);
        let (_, findings) = check();
        assert!(
            findings[0].what.contains("writable by nobody else"),
            "{findings:?}"
        );
        assert!(findings[0].fix.starts_with("chown root:root "));
        set_mode(&path, 0o644);

        // Sections, but the jail has no names for the account's ids.
        fs::write(&path, "[user.alice]\nwrite-only = true\n").unwrap();
        let (_, findings) = check();
        assert!(
            findings[0].what.contains("has no name here"),
            "{findings:?}"
        );
        assert!(
            findings[0].fix.contains("alice:x:4242:4242::/:"),
            "{findings:?}"
        );
        // With the jail's passwd and group lines, the section applies.
        fs::write(
            setup.jail.join("etc/passwd"),
            format!("alice:x:{ALICE_UID}:{ALICE_GID}::/:{JAIL_SHELL}\n"),
        )
        .unwrap();
        fs::write(
            setup.jail.join("etc/group"),
            format!("alice:x:{ALICE_GID}:\nscp-drop:x:{DROP_GID}:alice\n"),
        )
        .unwrap();
        let (view, findings) = check();
        assert_eq!(findings, vec![]);
        assert!(view.write_only);

        // A ForceCommand's --config that does not exist fails closed.
        let args = PolicyArgs {
            config: Some(setup.dir.path("absent.conf")),
            ..PolicyArgs::default()
        };
        let (_, findings) = check_config(&path, &args, &identity(), &account);
        assert!(
            findings[0].what.contains("No such file or directory"),
            "{findings:?}"
        );
    }

    #[test]
    fn upload_directory_must_be_writable_by_the_account() {
        if !root_or_skip() {
            return;
        }
        let setup = good_setup();
        let account = alice(JAIL_SHELL);
        let gids = [ALICE_GID, DROP_GID];
        let users = users();
        let check = |read_only| check_upload_dir(&setup.jail, &account, &gids, read_only, &users);
        assert_eq!(check(false), vec![]);

        let incoming = setup.jail.join("incoming");
        chown(&incoming, 0, 0);
        let findings = check(false);
        assert!(
            findings[0].what.contains("alice cannot write"),
            "{findings:?}"
        );
        assert_eq!(
            findings[0].fix,
            format!(
                "chown alice:alice {0} && chmod 0755 {0}",
                incoming.display()
            )
        );
        // Read-only accounts need no upload directory.
        assert_eq!(check(true), vec![]);
        // root:alice 0730, as the docs suggest beside internal-sftp.
        chown(&incoming, 0, ALICE_GID);
        set_mode(&incoming, 0o730);
        assert_eq!(check(false), vec![]);

        fs::remove_dir(&incoming).unwrap();
        let findings = check(false);
        assert!(
            findings[0].what.contains("can write neither"),
            "{findings:?}"
        );
        assert!(
            findings[0]
                .fix
                .starts_with("install -d -o alice -g alice -m 0755 ")
        );

        let findings =
            check_upload_dir(&setup.jail.join("nowhere"), &account, &gids, false, &users);
        assert!(findings[0].what.contains("No such file or directory"));
    }

    #[test]
    fn journald_socket_must_be_reachable_in_the_jail() {
        let dir = TempDir::new("doctor");
        let host = dir.path("host-socket");
        let _host = UnixDatagram::bind(&host).unwrap();
        let jail = dir.path("alice");
        let socket = jail.join("run/systemd/journal/socket");
        mkdirs(socket.parent().unwrap());
        let check = || check_journal(&socket, &host, Some(&jail), "alice");

        let findings = check();
        assert!(
            findings[0].what.contains("No such file or directory"),
            "{findings:?}"
        );
        assert!(
            findings[0].fix.contains("Environment=SCP_DROP_BASE="),
            "{findings:?}"
        );

        // The empty file a bind mount covers, without the mount.
        fs::write(&socket, b"").unwrap();
        assert!(check()[0].what.contains("is not a socket"));
        fs::remove_file(&socket).unwrap();

        // A socket nobody listens on any more.
        drop(UnixDatagram::bind(&socket).unwrap());
        let findings = check();
        assert!(findings[0].what.contains("cannot connect"), "{findings:?}");
        fs::remove_file(&socket).unwrap();

        let _bound = UnixDatagram::bind(&socket).unwrap();
        assert_eq!(check(), vec![]);

        // No journald on the host: a warning, whatever the jail has.
        let findings = check_journal(&socket, &dir.path("absent"), Some(&jail), "alice");
        assert_eq!(findings[0].severity, Severity::Warning);

        assert_eq!(
            journal_fix(Path::new("/srv/scp-drop/alice-smith"), "alice-smith"),
            "systemctl enable --now 'scp-drop-journal@alice\\x2dsmith.service'"
        );
    }

    #[test]
    fn unit_names_escaped_as_systemd_does() {
        assert_eq!(systemd_escape(".x-y"), "\\x2ex\\x2dy");
    }
}
