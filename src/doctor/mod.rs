//! `scp-server doctor [USER]`: checks the set-up of drop accounts and prints
//! every problem with the command or setting that fixes it.
//!
//! A drop account is one whose login shell is this program (inside a
//! ChrootDirectory jail) or whose ForceCommand runs it. For each, the doctor
//! asks sshd which settings apply (`sshd -T -C user=…`, or reads
//! sshd_config itself where sshd cannot be asked) and checks what sshd and
//! the binary will demand at login: the jail's ownership rule, a static
//! binary at the shell's path, a configuration file that parses, an upload
//! directory the account can write, journald's socket inside the jail, and
//! that SFTP reaches the binary: no internal-sftp that bypasses it, and a
//! Subsystem line whose command works for the account and for everyone else.
//!
//! Every check is a function of paths and parsed inputs, so the tests
//! run each one against a deliberately broken set-up in a temporary
//! directory; `run` points them at the real system.
//!
//! One file per concern: `sshd` (sshd's settings and their reading),
//! `accounts` (passwd and group), `login` (how sshd starts the binary),
//! `jail` (the ChrootDirectory rule and what the jail holds), `binary`
//! (the program sshd runs, static or not), `sftp` (how SFTP reaches the
//! account) and `output` (the findings as printed). This file walks the
//! accounts and runs the checks in the order sshd meets them at login.

mod accounts;
mod binary;
mod jail;
mod login;
mod output;
mod sftp;
mod sshd;
#[cfg(test)]
mod test_support;

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use accounts::{Account, Users, is_scp_server, usable_shell};
use binary::check_binary;
use jail::{PolicyView, check_config, check_jail_path, check_journal, check_upload_dir};
use login::{Kind, check_login, classify, forced_args};
use output::{Check, Tally, plural, print_checks, print_finding};
use sftp::check_sftp;
use sshd::{SshdSettings, SshdSource, sshd_settings, usable_sshd_source};

use crate::policy::{DEFAULT_CONFIG_PATH, PolicyArgs};

/// The login shell of jailed accounts in the shipped example and docs: a
/// path that exists only inside the jails.
const JAIL_SHELL: &str = "/usr/local/libexec/scp-drop/scp-server";
/// Where the packages install the binary.
const INSTALLED_BINARY: &str = "/usr/bin/scp-server";
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";
/// Where scp-drop-journal@.service expects the jails, unless overridden.
const JAIL_BASE: &str = "/srv/scp-drop";

/// Checks USER, or every drop account when `user` is `None`; prints the
/// findings on stdout. Returns the exit status: 0 when no problem was
/// found (warnings allowed), 1 otherwise.
pub fn run(user: Option<&OsStr>) -> i32 {
    let host = Host::system();
    let user = user.map(|u| u.to_string_lossy().into_owned());
    let mut out = io::stdout().lock();
    doctor(&host, user.as_deref(), &mut out)
}

fn doctor(host: &Host, user: Option<&str>, out: &mut dyn Write) -> i32 {
    match examine(host, user, out) {
        Ok(true) => 0,
        Ok(false) | Err(_) => 1,
    }
}

// ---------------------------------------------------------------------------
// Where to look
// ---------------------------------------------------------------------------

/// The files and programs the doctor reads: the real system from
/// `Host::system()`, a temporary tree in the tests.
struct Host {
    passwd: PathBuf,
    group: PathBuf,
    sshd: SshdSource,
    /// Where sshd's ownership rule for ChrootDirectory starts: `/`.
    top: PathBuf,
    /// journald's socket on the host.
    journal_socket: PathBuf,
    /// The configuration file of accounts without a jail.
    default_config: PathBuf,
    /// This program, to compare the jails' copies with.
    this_binary: Option<PathBuf>,
}

impl Host {
    fn system() -> Host {
        let sshd = Path::new("/usr/sbin/sshd");
        Host {
            passwd: "/etc/passwd".into(),
            group: "/etc/group".into(),
            sshd: if sshd.is_file() {
                SshdSource::Sshd {
                    program: sshd.into(),
                    config: None,
                }
            } else {
                SshdSource::Files("/etc/ssh/sshd_config".into())
            },
            top: "/".into(),
            journal_socket: JOURNAL_SOCKET.into(),
            default_config: DEFAULT_CONFIG_PATH.into(),
            this_binary: std::env::current_exe().ok(),
        }
    }
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// Prints the report; `Ok(true)` when no problem was found.
fn examine(host: &Host, user: Option<&str>, out: &mut dyn Write) -> io::Result<bool> {
    let mut tally = Tally::default();
    let users = match Users::read(&host.passwd, &host.group) {
        Ok(users) => users,
        Err(why) => {
            writeln!(out, "scp-server doctor: {why}")?;
            return Ok(false);
        }
    };
    let (source, note) = usable_sshd_source(&host.sshd);
    if let Some(finding) = &note {
        print_finding(out, "sshd", finding)?;
        tally.count(finding);
    }
    let accounts = match select_accounts(host, &users, &source, user) {
        Ok(accounts) => accounts,
        Err(why) => {
            writeln!(out, "scp-server doctor: {why}")?;
            return Ok(false);
        }
    };
    for account in &accounts {
        examine_account(host, &users, &source, account, out, &mut tally)?;
    }
    writeln!(
        out,
        "scp-server doctor: {}, {} ({} checked)",
        plural(tally.problems, "problem"),
        plural(tally.warnings, "warning"),
        plural(accounts.len(), "account")
    )?;
    Ok(tally.problems == 0)
}

/// The named account, or every drop account; finding none is an error:
/// whoever runs the doctor expects at least one.
fn select_accounts(
    host: &Host,
    users: &Users,
    source: &SshdSource,
    user: Option<&str>,
) -> Result<Vec<Account>, String> {
    if let Some(name) = user {
        return users
            .account(name)
            .map(|a| vec![a.clone()])
            .ok_or_else(|| format!("no account '{name}' in {}", host.passwd.display()));
    }
    let found = discover(host, users, source);
    if found.is_empty() {
        return Err(
            "no drop accounts found: no login shell is scp-server and no ForceCommand runs it"
                .into(),
        );
    }
    Ok(found)
}

fn examine_account(
    host: &Host,
    users: &Users,
    source: &SshdSource,
    account: &Account,
    out: &mut dyn Write,
    tally: &mut Tally,
) -> io::Result<()> {
    let (settings, trouble) = sshd_settings(source, account, users);
    let kind = classify(account, &settings, host.this_binary.as_deref());
    writeln!(out, "{}", describe(account, &kind))?;
    let mut checks: Vec<Check> = trouble
        .into_iter()
        .map(|f| Check::new("sshd", vec![f]))
        .collect();
    checks.extend(check_account(host, users, account, &settings, &kind));
    print_checks(out, &checks, tally)
}

/// Every account whose login shell is scp-server or whose ForceCommand runs
/// it, in passwd order.
fn discover(host: &Host, users: &Users, source: &SshdSource) -> Vec<Account> {
    let this = host.this_binary.as_deref();
    users
        .accounts
        .iter()
        .filter(|account| {
            if is_scp_server(&account.shell, this) {
                return true;
            }
            // A ForceCommand needs a shell to run it; accounts without one
            // cannot be drop accounts of that kind.
            if !usable_shell(&account.shell) {
                return false;
            }
            let (settings, _) = sshd_settings(source, account, users);
            matches!(
                classify(account, &settings, this),
                Kind::ForceCommand { .. }
            )
        })
        .cloned()
        .collect()
}

fn describe(account: &Account, kind: &Kind) -> String {
    let who = format!("{} (uid {})", account.name, account.uid);
    match kind {
        Kind::LoginShell { jail: Some(jail) } => format!(
            "{who}: login shell {} in the jail {}",
            account.shell.display(),
            jail.display()
        ),
        Kind::LoginShell { jail: None } => {
            format!("{who}: login shell {}, no jail", account.shell.display())
        }
        Kind::ForceCommand { words, jail } => format!(
            "{who}: ForceCommand {}{}",
            words.join(" "),
            jail.as_ref()
                .map(|j| format!(" in the jail {}", j.display()))
                .unwrap_or_default()
        ),
        Kind::InternalSftp { jail } => format!(
            "{who}: ForceCommand internal-sftp (login shell {}){}",
            account.shell.display(),
            jail.as_ref()
                .map(|j| format!(" in the jail {}", j.display()))
                .unwrap_or_default()
        ),
        Kind::Other => format!("{who}: login shell {}", account.shell.display()),
    }
}

/// The checks of one account, in the order sshd meets them at login.
fn check_account(
    host: &Host,
    users: &Users,
    account: &Account,
    settings: &SshdSettings,
    kind: &Kind,
) -> Vec<Check> {
    let mut checks = vec![Check::new("login", check_login(account, kind))];
    // Not a drop account, or a login shell without a jail: nothing sshd
    // would run can be located, so the other checks would only mislead.
    let Some(program) = kind.program(account) else {
        return checks;
    };
    if matches!(
        kind,
        Kind::LoginShell { jail: None } | Kind::InternalSftp { jail: None }
    ) {
        return checks;
    }
    let subject = Subject {
        host,
        users,
        account,
        gids: users.gids_of(account),
        jail: kind.jail(),
    };
    if let Some(jail) = subject.jail {
        checks.push(Check::new(
            format!("jail path {}", jail.display()),
            check_jail_path(jail, &host.top),
        ));
    }
    checks.push(subject.binary_check(&program));
    let Some(args) = policy_args(kind) else {
        return checks; // check_login reported the unparsable ForceCommand
    };
    let (config_check, policy) = subject.config_check(&args);
    checks.push(config_check);
    checks.push(subject.upload_check(&policy));
    checks.push(subject.journal_check());
    checks.push(Check::new(
        "SFTP subsystem",
        check_sftp(
            settings,
            kind,
            &policy,
            &account.name,
            host.this_binary.as_deref(),
        ),
    ));
    checks
}

/// The policy flags the binary gets: a ForceCommand's, or none.
fn policy_args(kind: &Kind) -> Option<PolicyArgs> {
    match kind {
        Kind::ForceCommand { words, .. } => forced_args(words).ok().map(|(a, _)| a.policy),
        _ => Some(PolicyArgs::default()),
    }
}

/// One drop account and where it lives, shared by its checks.
struct Subject<'a> {
    host: &'a Host,
    users: &'a Users,
    account: &'a Account,
    gids: Vec<u32>,
    jail: Option<&'a Path>,
}

impl Subject<'_> {
    fn binary_check(&self, program: &Path) -> Check {
        let binary = on_host(self.jail, program);
        let findings = check_binary(
            &binary,
            self.account,
            &self.gids,
            self.jail.is_some(),
            self.host.this_binary.as_deref(),
        );
        Check::new(format!("binary {}", binary.display()), findings)
    }

    /// The configuration file as the binary will read it: the jail's own,
    /// with the names the jail's passwd and group give the account; or the
    /// host's (or the ForceCommand's --config).
    fn config_check(&self, args: &PolicyArgs) -> (Check, PolicyView) {
        let (default, names) = match self.jail {
            Some(jail) => (
                on_host(Some(jail), Path::new(DEFAULT_CONFIG_PATH)),
                Users::read_optional(&jail.join("etc/passwd"), &jail.join("etc/group")),
            ),
            None => (self.host.default_config.clone(), self.users.clone()),
        };
        let identity = names.identity(self.account, &self.gids);
        let (policy, findings) = check_config(&default, args, &identity, self.account);
        let path = args.config.clone().unwrap_or(default);
        let label = if args.config.is_none() && fs::symlink_metadata(&path).is_err() {
            format!(
                "configuration {} (absent: built-in defaults)",
                path.display()
            )
        } else {
            format!("configuration {}", path.display())
        };
        (Check::new(label, findings), policy)
    }

    fn upload_check(&self, policy: &PolicyView) -> Check {
        let inside = policy.root.as_ref().unwrap_or(&self.account.home);
        let root = on_host(self.jail, inside);
        let findings = check_upload_dir(
            &root,
            self.account,
            &self.gids,
            policy.read_only,
            self.users,
        );
        let note = if policy.read_only {
            " (uploads not allowed)"
        } else {
            ""
        };
        Check::new(
            format!("upload directory under {}{note}", root.display()),
            findings,
        )
    }

    /// Inside a jail the socket must be bound in; without one the session
    /// sees the host's.
    fn journal_check(&self) -> Check {
        let socket = match self.jail {
            Some(jail) => on_host(Some(jail), Path::new(JOURNAL_SOCKET)),
            None => self.host.journal_socket.clone(),
        };
        let findings = check_journal(
            &socket,
            &self.host.journal_socket,
            self.jail,
            &self.account.name,
        );
        Check::new(format!("journald socket {}", socket.display()), findings)
    }
}

/// A path as sshd sees it inside the jail, on the host.
fn on_host(jail: Option<&Path>, path: &Path) -> PathBuf {
    match jail {
        Some(jail) => match path.strip_prefix("/") {
            Ok(rel) if rel.as_os_str().is_empty() => jail.to_path_buf(),
            Ok(rel) => jail.join(rel),
            Err(_) => jail.join(path),
        },
        None => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::test_support::*;

    #[test]
    fn a_good_jail_passes_and_a_broken_one_fails() {
        if !root_or_skip() {
            return;
        }
        let setup = good_setup();
        let host = host_for(&setup);
        let (status, out) = run_doctor(&host, Some("alice"));
        assert_eq!(status, 0, "{out}");
        assert!(
            out.contains("0 problems, 0 warnings (1 account checked)"),
            "{out}"
        );
        // Without a name, the account is found by its shell.
        let (status, out) = run_doctor(&host, None);
        assert_eq!(status, 0, "{out}");
        assert!(out.starts_with("alice (uid 4242): login shell"), "{out}");

        set_mode(&setup.dir.path("srv"), 0o777);
        set_mode(&setup.binary, 0o700);
        let (status, out) = run_doctor(&host, Some("alice"));
        assert_eq!(status, 1, "{out}");
        assert!(out.contains("fix: chmod go-w "), "{out}");
        assert!(out.contains("2 problems"), "{out}");

        let (status, out) = run_doctor(&host, Some("nobody-here"));
        assert_eq!(status, 1);
        assert!(out.contains("no account 'nobody-here'"));
    }

    #[test]
    fn sftp_that_bypasses_the_binary_fails_the_run() {
        if !root_or_skip() {
            return;
        }
        let setup = good_setup();
        let host = host_for(&setup);
        let config = setup.dir.path("etc/ssh/sshd_config");
        let good = fs::read_to_string(&config).unwrap();

        // The jail's Match block serves the account with internal-sftp.
        fs::write(&config, format!("{good}    ForceCommand internal-sftp\n")).unwrap();
        let (status, out) = run_doctor(&host, None);
        assert_eq!(status, 1, "{out}");
        assert!(
            out.starts_with("alice (uid 4242): ForceCommand internal-sftp (login shell "),
            "{out}"
        );
        assert!(
            out.contains("PROBLEM  login: `ForceCommand internal-sftp` applies to alice"),
            "{out}"
        );
        // The rest is still checked, for when the ForceCommand is gone.
        assert!(out.contains("ok       upload directory"), "{out}");
        assert!(out.contains("1 problem, 0 warnings"), "{out}");

        // The global subsystem is sshd's own.
        let internal = good.replace(
            &format!(
                "Subsystem sftp {}",
                setup.dir.path("usr/lib/openssh/sftp-server").display()
            ),
            "Subsystem sftp internal-sftp",
        );
        assert_ne!(internal, good);
        fs::write(&config, internal).unwrap();
        let (status, out) = run_doctor(&host, Some("alice"));
        assert_eq!(status, 1, "{out}");
        assert!(
            out.contains("PROBLEM  SFTP subsystem: the global `Subsystem sftp internal-sftp`"),
            "{out}"
        );
    }

    #[test]
    fn force_command_accounts_are_found_and_checked() {
        if !root_or_skip() {
            return;
        }
        let setup = good_setup();
        let home = setup.dir.path("home/bob");
        mkdirs(&home);
        chown(&home, 4250, 4250);
        let mut passwd = fs::read_to_string(setup.dir.path("etc/passwd")).unwrap();
        passwd.push_str(&format!("bob:x:4250:4250::{}:/bin/sh\n", home.display()));
        passwd.push_str("carol:x:4251:4251::/home/carol:/bin/sh\n");
        fs::write(setup.dir.path("etc/passwd"), passwd).unwrap();
        let mut config = fs::read_to_string(setup.dir.path("etc/ssh/sshd_config")).unwrap();
        config.push_str(&format!(
            "Match User bob\n    ForceCommand {} --write-only\n",
            setup.binary.display()
        ));
        fs::write(setup.dir.path("etc/ssh/sshd_config"), config).unwrap();
        let host = host_for(&setup);

        let (status, out) = run_doctor(&host, None);
        assert_eq!(status, 0, "{out}");
        assert!(out.contains("bob (uid 4250): ForceCommand "), "{out}");
        assert!(out.contains("2 accounts checked"), "{out}");
        assert!(!out.contains("carol"), "{out}");

        // The home is the root: bob must be able to write it or incoming/.
        chown(&home, 0, 0);
        let (status, out) = run_doctor(&host, Some("bob"));
        assert_eq!(status, 1, "{out}");
        assert!(out.contains("bob can write neither"), "{out}");

        // carol is not a drop account at all.
        let (status, out) = run_doctor(&host, Some("carol"));
        assert_eq!(status, 1, "{out}");
        assert!(out.contains("carol is not a drop account"), "{out}");
    }

    #[test]
    fn sshd_itself_is_asked_when_it_can_be() {
        let sshd = Path::new("/usr/sbin/sshd");
        let key = Path::new("/etc/ssh/ssh_host_ed25519_key");
        if !root_or_skip() || !sshd.exists() || !key.exists() {
            eprintln!("skipped: needs root, sshd and its host key");
            return;
        }
        let setup = good_setup();
        // sshd resolves groups itself, from the real group database, which
        // has no test account: match by user name.
        fs::write(
            setup.dir.path("etc/ssh/sshd_config"),
            format!(
                "HostKey {}\nSubsystem sftp internal-sftp\nMatch User alice\n    ChrootDirectory {}/srv/scp-drop/%u\n",
                key.display(),
                setup.dir.0.display()
            ),
        )
        .unwrap();
        let host = Host {
            sshd: SshdSource::Sshd {
                program: sshd.into(),
                config: Some(setup.dir.path("etc/ssh/sshd_config")),
            },
            ..host_for(&setup)
        };
        let (status, out) = run_doctor(&host, Some("alice"));
        // The internal-sftp finding shows sshd's own answer was used.
        assert_eq!(status, 1, "{out}");
        assert!(out.contains("PROBLEM  SFTP subsystem"), "{out}");
        assert!(out.contains("1 problem, 0 warnings"), "{out}");

        fs::write(setup.dir.path("etc/ssh/sshd_config"), "NoSuchKeyword yes\n").unwrap();
        let (status, out) = run_doctor(&host, Some("alice"));
        assert_eq!(status, 1, "{out}");
        assert!(out.contains("`sshd -T` fails"), "{out}");
    }
}
