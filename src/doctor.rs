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
//! no global internal-sftp that would bypass the binary.
//!
//! Every check is a function of paths and parsed inputs, so the tests below
//! run each one against a deliberately broken set-up in a temporary
//! directory; `run` points them at the real system.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;

use crate::cli::{self, AdminArgs};
use crate::policy::{DEFAULT_CONFIG_PATH, Identity, Policy, PolicyArgs};

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

#[derive(Clone, Debug)]
enum SshdSource {
    /// Ask sshd itself: `sshd -T -C user=NAME,…` (`-f FILE` when given).
    Sshd {
        program: PathBuf,
        config: Option<PathBuf>,
    },
    /// Read sshd_config and its Include files ourselves.
    Files(PathBuf),
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
// Findings and the report
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    /// Something that stops the account from working as intended, or opens
    /// it up: the exit status is 1.
    Problem,
    /// Worth knowing, but the account works as configured.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    severity: Severity,
    what: String,
    fix: String,
}

impl Finding {
    fn problem(what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Problem,
            what: what.into(),
            fix: fix.into(),
        }
    }

    fn warning(what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            what: what.into(),
            fix: fix.into(),
        }
    }
}

/// One check of one account: what was checked, and what is wrong with it.
struct Check {
    label: String,
    findings: Vec<Finding>,
}

impl Check {
    fn new(label: impl Into<String>, findings: Vec<Finding>) -> Check {
        Check {
            label: label.into(),
            findings,
        }
    }
}

#[derive(Default)]
struct Tally {
    problems: usize,
    warnings: usize,
}

impl Tally {
    fn count(&mut self, finding: &Finding) {
        match finding.severity {
            Severity::Problem => self.problems += 1,
            Severity::Warning => self.warnings += 1,
        }
    }
}

fn print_finding(out: &mut dyn Write, label: &str, finding: &Finding) -> io::Result<()> {
    let tag = match finding.severity {
        Severity::Problem => "PROBLEM",
        Severity::Warning => "warning",
    };
    writeln!(out, "  {tag:<8} {label}: {}", finding.what)?;
    writeln!(out, "           fix: {}", finding.fix)
}

fn print_checks(out: &mut dyn Write, checks: &[Check], tally: &mut Tally) -> io::Result<()> {
    for check in checks {
        if check.findings.is_empty() {
            writeln!(out, "  {:<8} {}", "ok", check.label)?;
        }
        for finding in &check.findings {
            print_finding(out, &check.label, finding)?;
            tally.count(finding);
        }
    }
    Ok(())
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
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
    if matches!(kind, Kind::LoginShell { jail: None }) {
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
        check_sftp(settings, kind, &policy, &account.name),
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

// ---------------------------------------------------------------------------
// Accounts: passwd and group files
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
struct Account {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    shell: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

#[derive(Clone, Debug, Default)]
struct Users {
    accounts: Vec<Account>,
    groups: Vec<GroupEntry>,
}

impl Users {
    /// The host's databases: passwd must be readable; a missing group file
    /// means no supplementary groups.
    fn read(passwd: &Path, group: &Path) -> Result<Users, String> {
        let text = fs::read(passwd)
            .map_err(|e| format!("cannot read {}: {}", passwd.display(), io_text(&e)))?;
        Ok(Users {
            accounts: parse_passwd(&String::from_utf8_lossy(&text)),
            groups: read_groups(group),
        })
    }

    /// A jail's databases, which may well not exist.
    fn read_optional(passwd: &Path, group: &Path) -> Users {
        let text = fs::read(passwd).unwrap_or_default();
        Users {
            accounts: parse_passwd(&String::from_utf8_lossy(&text)),
            groups: read_groups(group),
        }
    }

    fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The primary group and every group that lists the account as a
    /// member: what sshd's initgroups gives the session.
    fn gids_of(&self, account: &Account) -> Vec<u32> {
        let mut gids = vec![account.gid];
        for group in &self.groups {
            if group.members.contains(&account.name) && !gids.contains(&group.gid) {
                gids.push(group.gid);
            }
        }
        gids
    }

    fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == gid)
            .map(|g| g.name.as_str())
    }

    /// The names the binary will find for `account` in these databases
    /// (inside a jail, the jail's), as policy sections are matched.
    fn identity(&self, account: &Account, gids: &[u32]) -> Identity {
        let user = self
            .accounts
            .iter()
            .find(|a| a.uid == account.uid)
            .map(|a| a.name.clone());
        let mut unnamed_ids = user.is_none();
        let mut groups = Vec::new();
        for gid in gids {
            match self.group_name(*gid) {
                Some(name) if !groups.iter().any(|g| g == name) => groups.push(name.to_owned()),
                Some(_) => {}
                None => unnamed_ids = true,
            }
        }
        Identity {
            user,
            groups,
            unnamed_ids,
        }
    }
}

fn read_groups(path: &Path) -> Vec<GroupEntry> {
    let text = fs::read(path).unwrap_or_default();
    parse_group(&String::from_utf8_lossy(&text))
}

fn parse_passwd(text: &str) -> Vec<Account> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, uid, gid, _, home, shell] = fields[..] else {
                return None;
            };
            Some(Account {
                name: name.to_owned(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: home.into(),
                shell: shell.into(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, gid, members] = fields[..] else {
                return None;
            };
            Some(GroupEntry {
                name: name.to_owned(),
                gid: gid.parse().ok()?,
                members: members
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// A shell that can run a ForceCommand (`SHELL -c COMMAND`).
fn usable_shell(shell: &Path) -> bool {
    let name = shell.file_name().and_then(OsStr::to_str).unwrap_or("");
    !matches!(
        name,
        "nologin" | "false" | "sync" | "halt" | "shutdown" | ""
    ) && shell.is_absolute()
}

/// Whether `path` names this program: by its name, or as the same file.
fn is_scp_server(path: &Path, this_binary: Option<&Path>) -> bool {
    if path.file_name() == Some(OsStr::new("scp-server")) {
        return true;
    }
    let same = |a: &Path, b: &Path| match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    };
    this_binary.is_some_and(|this| same(path, this))
}

// ---------------------------------------------------------------------------
// sshd's settings for an account
// ---------------------------------------------------------------------------

/// What sshd applies to one account, as far as the doctor cares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct SshdSettings {
    /// ChrootDirectory with its `%` tokens unexpanded; `None` for none.
    chroot: Option<String>,
    force_command: Option<String>,
    /// Subsystem name and command: global in OpenSSH 9.2.
    subsystems: Vec<(String, String)>,
}

/// `sshd -T` needs root (it reads the host keys) and a valid
/// configuration. If it fails, say so and read the files instead.
fn usable_sshd_source(source: &SshdSource) -> (SshdSource, Option<Finding>) {
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
fn sshd_settings(
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
fn query_sshd(program: &Path, config: Option<&Path>, user: &str) -> Result<SshdSettings, String> {
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
fn parse_sshd_t(text: &str) -> SshdSettings {
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

fn unless_none(value: &str) -> Option<String> {
    (!value.is_empty() && !value.eq_ignore_ascii_case("none")).then(|| value.to_owned())
}

/// Reading sshd_config without sshd: first value wins, a matching Match
/// block's value wins over the global one, Include follows globs in its
/// last component. Match criteria other than User, Group, Host and Address
/// (and All) are taken as not matching. A file that cannot be read yields
/// the settings gathered so far and a problem.
fn read_sshd_files(path: &Path, user: &str, groups: &[String]) -> (SshdSettings, Option<Finding>) {
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
struct Layer {
    chroot: Option<String>,
    force_command: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Global,
    Matching,
    NotMatching,
}

struct ConfigReader<'a> {
    user: &'a str,
    groups: &'a [String],
    /// Relative Include paths are relative to sshd's directory.
    base: PathBuf,
    global: Layer,
    matched: Layer,
    subsystems: Vec<(String, String)>,
}

impl ConfigReader<'_> {
    fn file(&mut self, path: &Path, start: Context, depth: usize) -> Result<(), String> {
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
    fn set(
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

    fn expand_include(&self, pattern: &str) -> Vec<PathBuf> {
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
    fn matches(&self, criteria: &str) -> Context {
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
    fn group_matches(&self, list: &str) -> bool {
        let results: Vec<Option<bool>> =
            self.groups.iter().map(|g| pattern_list(g, list)).collect();
        !results.contains(&Some(false)) && results.contains(&Some(true))
    }
}

/// sshd's comma-separated pattern list: `Some(true)` if a pattern matches,
/// `Some(false)` if a negated (`!`) one does, `None` if none does.
fn pattern_list(name: &str, list: &str) -> Option<bool> {
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
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
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
fn split_args(text: &str) -> Result<Vec<String>, String> {
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
fn expand_tokens(value: &str, account: &Account) -> String {
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

// ---------------------------------------------------------------------------
// Check: the login shell or the ForceCommand
// ---------------------------------------------------------------------------

/// How sshd will start this program for the account, if it will.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// The login shell is scp-server; sshd chroots into `jail` first.
    LoginShell { jail: Option<PathBuf> },
    /// A ForceCommand whose program is scp-server.
    ForceCommand {
        words: Vec<String>,
        jail: Option<PathBuf>,
    },
    /// Neither: not a drop account.
    Other,
}

impl Kind {
    fn jail(&self) -> Option<&Path> {
        match self {
            Kind::LoginShell { jail } | Kind::ForceCommand { jail, .. } => jail.as_deref(),
            Kind::Other => None,
        }
    }

    /// The program sshd runs, as a path inside the jail if there is one.
    fn program(&self, account: &Account) -> Option<PathBuf> {
        match self {
            Kind::LoginShell { .. } => Some(account.shell.clone()),
            Kind::ForceCommand { words, .. } => words.first().map(PathBuf::from),
            Kind::Other => None,
        }
    }
}

/// sshd runs a ForceCommand whatever the shell, so it decides first.
fn classify(account: &Account, settings: &SshdSettings, this_binary: Option<&Path>) -> Kind {
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
fn forced_args(words: &[String]) -> Result<(AdminArgs, Vec<OsString>), String> {
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

fn check_login(account: &Account, kind: &Kind) -> Vec<Finding> {
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
fn check_force_command(account: &Account, words: &[String], jail: Option<&Path>) -> Vec<Finding> {
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

// ---------------------------------------------------------------------------
// Check: the jail's path (sshd's ChrootDirectory rule)
// ---------------------------------------------------------------------------

/// sshd refuses a ChrootDirectory unless every component of its path, from
/// `/` down, is a directory owned by root and writable by nobody else
/// (session.c, safely_chroot). Components above `top` are not checked.
fn check_jail_path(jail: &Path, top: &Path) -> Vec<Finding> {
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

fn writable_by(mode: u32) -> &'static str {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and others",
        (true, false) => "its group",
        _ => "others",
    }
}

// ---------------------------------------------------------------------------
// Check: the binary sshd runs
// ---------------------------------------------------------------------------

/// The program at `path` (on the host): present, a regular file that only
/// root can replace, executable by the account, static when it runs in a
/// jail, and preferably this very binary.
///
/// Inside a jail a symlink is refused: its target would be resolved in the
/// jail by sshd but on the host by this check.
fn check_binary(
    path: &Path,
    account: &Account,
    gids: &[u32],
    in_jail: bool,
    this_binary: Option<&Path>,
) -> Vec<Finding> {
    let shown = sh_quote(path);
    let source = this_binary
        .map(sh_quote)
        .unwrap_or_else(|| INSTALLED_BINARY.to_owned());
    let install = format!("install -D -o root -g root -m 0755 {source} {shown}");
    let meta = if in_jail {
        fs::symlink_metadata(path)
    } else {
        fs::metadata(path)
    };
    let meta = match meta {
        Ok(meta) => meta,
        Err(e) => return vec![Finding::problem(io_text(&e), install)],
    };
    if !meta.file_type().is_file() {
        return vec![Finding::problem(
            "not a regular file",
            format!("rm {shown} && {install}"),
        )];
    }
    let mut findings = Vec::new();
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        findings.push(Finding::problem(
            format!(
                "could be replaced by someone other than root (owner uid {}, mode {:04o})",
                meta.uid(),
                meta.mode() & 0o7777
            ),
            format!("chown root:root {shown} && chmod 0755 {shown}"),
        ));
    }
    if !permits(&meta, account.uid, gids, 0o1) {
        findings.push(Finding::problem(
            format!(
                "not executable by {} (mode {:04o})",
                account.name,
                meta.mode() & 0o7777
            ),
            format!("chmod 0755 {shown}"),
        ));
    }
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            findings.push(Finding::problem(io_text(&e), install));
            return findings;
        }
    };
    if in_jail {
        findings.extend(static_finding(&bytes, &install));
    }
    if let Some(this) = this_binary
        && fs::read(this).is_ok_and(|own| own != bytes)
    {
        findings.push(Finding::warning(
            format!(
                "differs from {} (a copy from before an upgrade?)",
                this.display()
            ),
            install,
        ));
    }
    findings
}

/// Inside a jail there is no loader and no library: the binary must have
/// neither an ELF interpreter nor a dynamic section.
fn static_finding(bytes: &[u8], install: &str) -> Option<Finding> {
    let why = match elf_linking(bytes) {
        Ok(ElfLinking {
            interp: false,
            dynamic: false,
        }) => return None,
        Ok(ElfLinking { interp: true, .. }) => {
            "has an ELF interpreter (it is dynamically linked)".to_owned()
        }
        Ok(_) => "has a dynamic section (a static-PIE or dynamically linked build)".to_owned(),
        Err(why) => format!("is not an executable this system can run: {why}"),
    };
    Some(Finding::problem(
        format!("it {why}; inside the jail it cannot start"),
        format!("{install} (the packaged binary and scripts/build-static.sh are static)"),
    ))
}

const PT_DYNAMIC: u64 = 2;
const PT_INTERP: u64 = 3;

#[derive(Debug, Default, PartialEq, Eq)]
struct ElfLinking {
    /// PT_INTERP: the kernel would start a loader first.
    interp: bool,
    /// PT_DYNAMIC: relocations or libraries to process at start.
    dynamic: bool,
}

/// Reads the program header table of an ELF file (32 or 64 bit, either byte
/// order) for PT_INTERP and PT_DYNAMIC.
fn elf_linking(bytes: &[u8]) -> Result<ElfLinking, String> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file".into());
    }
    let wide = match bytes.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF class".into()),
    };
    let little = match bytes.get(5) {
        Some(1) => true,
        Some(2) => false,
        _ => return Err("unknown ELF byte order".into()),
    };
    let field = |offset: usize, size: usize| -> Result<u64, String> {
        let raw = offset
            .checked_add(size)
            .and_then(|end| bytes.get(offset..end))
            .ok_or("truncated ELF file")?;
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        Ok(if little {
            raw.iter().rev().fold(0, fold)
        } else {
            raw.iter().fold(0, fold)
        })
    };
    let (phoff, entsize, count) = if wide {
        (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?)
    } else {
        (field(0x1c, 4)?, field(0x2a, 2)?, field(0x2c, 2)?)
    };
    let mut linking = ElfLinking::default();
    for i in 0..count {
        let at = i
            .checked_mul(entsize)
            .and_then(|o| o.checked_add(phoff))
            .and_then(|o| usize::try_from(o).ok())
            .ok_or("program header table out of range")?;
        match field(at, 4)? {
            PT_INTERP => linking.interp = true,
            PT_DYNAMIC => linking.dynamic = true,
            _ => {}
        }
    }
    Ok(linking)
}

/// Whether the account may use `meta` with the `want` bits (`0o1` execute,
/// `0o3` write and search a directory), by its mode bits. Root passes any
/// check but execution of a file nobody may execute.
fn permits(meta: &fs::Metadata, uid: u32, gids: &[u32], want: u32) -> bool {
    let mode = meta.mode();
    if uid == 0 {
        return want & 0o1 == 0 || meta.is_dir() || mode & 0o111 != 0;
    }
    let class = if meta.uid() == uid {
        mode >> 6
    } else if gids.contains(&meta.gid()) {
        mode >> 3
    } else {
        mode
    };
    class & want == want
}

// ---------------------------------------------------------------------------
// Check: the configuration file
// ---------------------------------------------------------------------------

/// What the rest of the checks need from the policy.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct PolicyView {
    root: Option<PathBuf>,
    read_only: bool,
    write_only: bool,
}

/// Loads the account's policy as the binary will: the file (`args.config`,
/// else `default`, which may be missing) with the account's names, and the
/// ForceCommand's flags on top.
fn check_config(
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
fn config_fix(path: &Path, args: &PolicyArgs, identity: &Identity, account: &Account) -> String {
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
fn check_upload_dir(
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
fn check_journal(
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

fn is_socket(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// The command that binds the socket into this jail with the shipped
/// scp-drop-journal@.service.
fn journal_fix(jail: &Path, user: &str) -> String {
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
fn systemd_escape(name: &str) -> String {
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

// ---------------------------------------------------------------------------
// Check: a global internal-sftp
// ---------------------------------------------------------------------------

/// OpenSSH 9.2 cannot set Subsystem per Match block. A global
/// `Subsystem sftp internal-sftp` serves SFTP to a jailed account without
/// ever running its login shell; a ForceCommand is run for subsystem
/// requests too, so only login-shell accounts are exposed.
fn check_sftp(
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

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// A path as a shell word in a printed fix.
fn sh_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%=,".contains(&b));
    if plain && !text.is_empty() {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The system's wording of an I/O error, without Rust's "(os error N)".
fn io_text(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => crate::error::strerror(nix::errno::Errno::from_raw(code)).to_owned(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixDatagram;

    const ALICE_UID: u32 = 4242;
    const ALICE_GID: u32 = 4242;
    const DROP_GID: u32 = 4243;

    /// A private directory, mode 0755, removed at the end of the test.
    use crate::test_dir::TempDir;

    fn set_mode(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn chown(path: &Path, uid: u32, gid: u32) {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }

    fn mkdirs(path: &Path) {
        fs::create_dir_all(path).unwrap();
        set_mode(path, 0o755);
    }

    /// Ownership is half of what these checks test; a good set-up (files
    /// owned by root) can only be made as root, which CI is.
    fn root_or_skip() -> bool {
        let root = nix::unistd::geteuid().is_root();
        if !root {
            eprintln!("skipped: needs root to give files to root and to the test account");
        }
        root
    }

    /// A minimal little-endian ELF64 header with program headers of the
    /// given types (PT_LOAD = 1).
    fn fake_elf(types: &[u32]) -> Vec<u8> {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[6] = 1;
        elf[0x10] = 2;
        elf[0x12] = 62;
        elf[0x20] = 64;
        elf[0x36] = 56;
        elf[0x38] = u8::try_from(types.len()).unwrap();
        for t in types {
            let mut header = vec![0u8; 56];
            header[..4].copy_from_slice(&t.to_le_bytes());
            elf.extend(header);
        }
        elf
    }

    fn alice(shell: &str) -> Account {
        Account {
            name: "alice".into(),
            uid: ALICE_UID,
            gid: ALICE_GID,
            home: "/".into(),
            shell: shell.into(),
        }
    }

    fn users() -> Users {
        Users {
            accounts: parse_passwd(&format!(
                "alice:x:{ALICE_UID}:{ALICE_GID}::/:{JAIL_SHELL}\n"
            )),
            groups: parse_group(&format!(
                "alice:x:{ALICE_GID}:\nscp-drop:x:{DROP_GID}:alice\n"
            )),
        }
    }

    /// A jail as docs/drop-accounts.md builds it, with a bound journal
    /// socket; returns the jail and the socket (kept open).
    struct Setup {
        dir: TempDir,
        jail: PathBuf,
        binary: PathBuf,
        _jail_socket: UnixDatagram,
        _host_socket: UnixDatagram,
    }

    fn good_setup() -> Setup {
        let dir = TempDir::new("doctor");
        let jail = dir.path("srv/scp-drop/alice");
        mkdirs(&jail.join("usr/local/libexec/scp-drop"));
        for d in ["srv", "srv/scp-drop", "srv/scp-drop/alice"] {
            set_mode(&dir.path(d), 0o755);
        }
        let binary = on_host(Some(&jail), Path::new(JAIL_SHELL));
        fs::write(&binary, fake_elf(&[1, 1])).unwrap();
        set_mode(&binary, 0o755);
        let incoming = jail.join("incoming");
        mkdirs(&incoming);
        chown(&incoming, ALICE_UID, ALICE_GID);
        mkdirs(&jail.join("run/systemd/journal"));
        let jail_socket = UnixDatagram::bind(jail.join("run/systemd/journal/socket")).unwrap();
        let host_socket = UnixDatagram::bind(dir.path("host-journal")).unwrap();
        mkdirs(&dir.path("etc/ssh"));
        fs::write(
            dir.path("etc/passwd"),
            format!("alice:x:{ALICE_UID}:{ALICE_GID}::/:{JAIL_SHELL}\n"),
        )
        .unwrap();
        fs::write(
            dir.path("etc/group"),
            format!("alice:x:{ALICE_GID}:\nscp-drop:x:{DROP_GID}:alice\n"),
        )
        .unwrap();
        fs::write(
            dir.path("etc/ssh/sshd_config"),
            format!(
                "Subsystem sftp /usr/lib/openssh/sftp-server\nMatch Group scp-drop\n    ChrootDirectory {}/srv/scp-drop/%u\n",
                dir.0.display()
            ),
        )
        .unwrap();
        Setup {
            dir,
            jail,
            binary,
            _jail_socket: jail_socket,
            _host_socket: host_socket,
        }
    }

    fn host_for(setup: &Setup) -> Host {
        Host {
            passwd: setup.dir.path("etc/passwd"),
            group: setup.dir.path("etc/group"),
            sshd: SshdSource::Files(setup.dir.path("etc/ssh/sshd_config")),
            top: setup.dir.0.clone(),
            journal_socket: setup.dir.path("host-journal"),
            default_config: setup.dir.path("etc/scp-server.conf"),
            this_binary: Some(setup.binary.clone()),
        }
    }

    fn run_doctor(host: &Host, user: Option<&str>) -> (i32, String) {
        let mut out = Vec::new();
        let status = doctor(host, user, &mut out);
        (status, String::from_utf8(out).unwrap())
    }

    fn problems(findings: &[Finding]) -> Vec<&Finding> {
        findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .collect()
    }

    // --- one test per check, each against a good and a broken set-up ---

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
    fn binary_must_be_present_static_executable_and_roots() {
        if !root_or_skip() {
            return;
        }
        let setup = good_setup();
        let account = alice(JAIL_SHELL);
        let gids = [ALICE_GID, DROP_GID];
        let this = Some(setup.binary.as_path());
        let check = |path: &Path| check_binary(path, &account, &gids, true, this);
        assert_eq!(check(&setup.binary), vec![]);

        // Dynamically linked: the real /bin/sh.
        let dynamic = setup.dir.path("dynamic");
        fs::copy("/bin/sh", &dynamic).unwrap();
        set_mode(&dynamic, 0o755);
        let findings = check(&dynamic);
        assert_eq!(problems(&findings).len(), 1, "{findings:?}");
        assert!(
            findings[0].what.contains("has an ELF interpreter"),
            "{findings:?}"
        );
        // A static-PIE: a dynamic section without an interpreter.
        fs::write(&dynamic, fake_elf(&[1, 2])).unwrap();
        assert!(check(&dynamic)[0].what.contains("has a dynamic section"));
        // Not ELF at all.
        fs::write(&dynamic, b"#!/bin/sh\n").unwrap();
        assert!(check(&dynamic)[0].what.contains("not an ELF file"));

        // Not executable by the account.
        set_mode(&setup.binary, 0o744);
        let findings = check(&setup.binary);
        assert!(
            findings[0].what.contains("not executable by alice"),
            "{findings:?}"
        );
        assert!(findings[0].fix.starts_with("chmod 0755 "));
        // Replaceable by others.
        set_mode(&setup.binary, 0o775);
        assert!(check(&setup.binary)[0].what.contains("could be replaced"));
        set_mode(&setup.binary, 0o755);

        // Missing.
        let missing = setup.jail.join("usr/bin/nothing");
        let findings = check(&missing);
        assert!(findings[0].what.contains("No such file or directory"));
        assert!(
            findings[0]
                .fix
                .starts_with("install -D -o root -g root -m 0755 ")
        );

        // A different build than the running one: a warning only.
        let other = setup.dir.path("other");
        fs::write(&other, fake_elf(&[1])).unwrap();
        set_mode(&other, 0o755);
        let findings = check(&other);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(findings[0].what.contains("differs from"));

        // Without a jail a dynamic binary is fine.
        let findings = check_binary(Path::new("/bin/sh"), &account, &gids, false, None);
        assert_eq!(findings, vec![]);
    }

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

        // A ForceCommand running something else decides, whatever the shell.
        let kind = classify(&account, &forced("internal-sftp"), None);
        assert_eq!(kind, Kind::Other);
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

    // --- the parts the checks stand on ---

    #[test]
    fn elf_program_headers() {
        assert_eq!(elf_linking(&fake_elf(&[1, 1])), Ok(ElfLinking::default()));
        assert_eq!(
            elf_linking(&fake_elf(&[6, 3, 1, 2])),
            Ok(ElfLinking {
                interp: true,
                dynamic: true
            })
        );
        let sh = elf_linking(&fs::read("/bin/sh").unwrap()).unwrap();
        assert!(sh.interp && sh.dynamic);
        // Truncated tables and nonsense are errors, never panics.
        let mut cut = fake_elf(&[1, 3]);
        cut.truncate(70);
        assert!(elf_linking(&cut).is_err());
        assert!(elf_linking(b"\x7fELF").is_err());
        assert!(elf_linking(b"MZ").is_err());
        let mut huge = fake_elf(&[1]);
        huge[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(elf_linking(&huge).is_err());
        // Big-endian ELF32 with a PT_INTERP.
        let mut be = vec![0u8; 52 + 32];
        be[..4].copy_from_slice(b"\x7fELF");
        be[4] = 1;
        be[5] = 2;
        be[0x1f] = 52;
        be[0x2b] = 32;
        be[0x2d] = 1;
        be[52 + 3] = 3;
        assert_eq!(
            elf_linking(&be),
            Ok(ElfLinking {
                interp: true,
                dynamic: false
            })
        );
    }

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
        assert_eq!(sh_quote(Path::new("/srv/a b")), "'/srv/a b'");
        assert_eq!(sh_quote(Path::new("/srv/scp-drop")), "/srv/scp-drop");
        assert_eq!(systemd_escape(".x-y"), "\\x2ex\\x2dy");
    }

    // --- the whole run ---

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
        // The internal-sftp warning shows sshd's own answer was used.
        assert_eq!(status, 0, "{out}");
        assert!(out.contains("warning  SFTP subsystem"), "{out}");

        fs::write(setup.dir.path("etc/ssh/sshd_config"), "NoSuchKeyword yes\n").unwrap();
        let (status, out) = run_doctor(&host, Some("alice"));
        assert_eq!(status, 1, "{out}");
        assert!(out.contains("`sshd -T` fails"), "{out}");
    }
}
