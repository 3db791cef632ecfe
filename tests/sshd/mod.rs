//! A private OpenSSH server on 127.0.0.1 for end-to-end tests.
//!
//! `PrivateSshd::start(program)` builds a throw-away world in a temporary
//! directory — host key, client key, `authorized_keys`, `sshd_config` — and
//! runs `/usr/sbin/sshd -D` on a free loopback port. Sessions find `program`
//! as `scp` first in PATH, exactly as sshd's `$SHELL -c "scp -t …"` would find
//! an installed server-side scp, so the real OpenSSH client (`scp -O`) talks to
//! it through a real sshd. Nothing outside the temporary directory changes,
//! except (as root) the privilege-separation directory sshd insists on and the
//! unprivileged test account, both created the way Debian itself would.
//!
//! Test files use it with `mod sshd;`. Each test binary uses a different
//! subset of these helpers, hence the `dead_code` allowance.
//!
//! Environment knobs:
//! - `SCP_E2E_CLIENT`: the OpenSSH scp client to drive (default `/usr/bin/scp`;
//!   set it to the diverted original once our package replaces `/usr/bin/scp`).
//! - `SCP_E2E_KEEP=1`: keep the temporary directory (keys, config, sshd log)
//!   for inspection; its path is printed.
//! - `CI`: when set, a machine that cannot run these tests is an error, not a
//!   skip, so a broken CI image cannot turn the suite silently green.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SSHD: &str = "/usr/sbin/sshd";
pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
pub const SSH_CLIENT: &str = "/usr/bin/ssh";
pub const DEFAULT_SCP_CLIENT: &str = "/usr/bin/scp";

/// The account used when a test needs a login that permission checks apply
/// to. Root bypasses them, so "unwritable" would not be unwritable for root.
pub const UNPRIVILEGED_USER: &str = "scpsrv-e2e";

/// How long a private sshd may live even if the test that started it hangs or
/// is killed: `timeout(1)` wraps sshd, so this holds without our process.
const SSHD_LIFETIME: Duration = Duration::from_secs(300);

/// Default bound for one client command (scp or ssh).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long sshd gets to report "Server listening" before we give up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Attempts at finding a free port: the port is free when we pick it, but
/// another process may take it before sshd binds.
const PORT_ATTEMPTS: usize = 5;

/// Tests run in parallel threads; picking a port and binding it is one step
/// per process, so two tests of one binary never race for the same port.
static STARTUP_LOCK: Mutex<()> = Mutex::new(());

/// `useradd` must not run twice at once for the same name.
static ACCOUNT_LOCK: Mutex<()> = Mutex::new(());

// ---------------------------------------------------------------------------
// Skipping

/// True when a missing prerequisite must fail the run instead of skipping it.
pub fn running_in_ci() -> bool {
    match std::env::var("CI") {
        Ok(value) => !matches!(value.trim(), "" | "0" | "false" | "no"),
        Err(_) => false,
    }
}

/// Reports that this machine cannot run an end-to-end test: in CI a loud
/// panic, elsewhere a note on stderr and `None`, so the caller returns early.
pub fn unavailable<T>(reason: &str) -> Option<T> {
    if running_in_ci() {
        panic!("end-to-end test cannot run in CI (CI is set): {reason}");
    }
    eprintln!("SKIPPED end-to-end test: {reason}");
    None
}

// ---------------------------------------------------------------------------
// Accounts

/// A local account as `/etc/passwd` describes it.
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// The effective uid of this process, without unsafe code: `/proc/self` is
/// owned by it.
pub fn effective_uid() -> u32 {
    fs::metadata("/proc/self")
        .expect("/proc/self must exist on Linux")
        .uid()
}

pub fn running_as_root() -> bool {
    effective_uid() == 0
}

fn passwd_entries() -> Vec<Account> {
    let text = fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() < 7 {
                return None;
            }
            Some(Account {
                name: fields[0].to_string(),
                uid: fields[2].parse().ok()?,
                gid: fields[3].parse().ok()?,
                home: PathBuf::from(fields[5]),
                shell: PathBuf::from(fields[6]),
            })
        })
        .collect()
}

pub fn account_named(name: &str) -> Option<Account> {
    passwd_entries().into_iter().find(|a| a.name == name)
}

/// The account this test process runs as: sshd started by it can log in as
/// this account whether or not we are root.
pub fn current_account() -> Option<Account> {
    let uid = effective_uid();
    passwd_entries().into_iter().find(|a| a.uid == uid)
}

/// Without PAM, sshd refuses accounts whose shadow password starts with `!`
/// ("locked"), which is what `useradd` writes by default. `*` means "no
/// password can match" but not locked, so key logins work.
fn shadow_password_is_locked(name: &str) -> bool {
    let shadow = fs::read_to_string("/etc/shadow").unwrap_or_default();
    shadow
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(user, _)| *user == name)
        .is_some_and(|(_, rest)| rest.starts_with('!'))
}

/// How a test account should look: what `useradd` is asked for, and what
/// `ensure_account` restores when an earlier run left it different.
#[derive(Clone, Debug)]
pub struct AccountSpec<'a> {
    pub name: &'a str,
    pub shell: &'a str,
    pub home: &'a str,
    /// Create the home directory (only when the account is new).
    pub create_home: bool,
    pub comment: &'a str,
}

/// Creates the account if it is missing (idempotent), gives it the shell
/// and home of `spec` if it has others, and makes sure key logins work.
/// Accounts stay after the run, like any account `useradd` made; creating
/// them again each time would race with other test binaries.
pub fn ensure_account(spec: &AccountSpec) -> Result<Account, String> {
    let _guard = ACCOUNT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if account_named(spec.name).is_none() {
        let outcome = run_bounded(useradd_command(spec), Duration::from_secs(30));
        // Another test binary may have created it meanwhile: look again
        // rather than trusting the exit status.
        if account_named(spec.name).is_none() {
            return Err(format!(
                "cannot create test account {}: {outcome}",
                spec.name
            ));
        }
    }
    let existing = account_named(spec.name).ok_or_else(|| format!("{} vanished", spec.name))?;
    let differs = existing.shell != Path::new(spec.shell) || existing.home != Path::new(spec.home);
    if differs || shadow_password_is_locked(spec.name) {
        let mut fix = Command::new("usermod");
        fix.args(["--shell", spec.shell, "--home", spec.home])
            .args(["--password", "*", spec.name]);
        let outcome = run_bounded(fix, Duration::from_secs(30));
        if !outcome.succeeded() {
            return Err(format!("cannot adjust {}: {outcome}", spec.name));
        }
    }
    account_named(spec.name).ok_or_else(|| format!("{} vanished", spec.name))
}

/// `useradd` with a password of `*`: no password can match, but (unlike
/// useradd's default `!`) the account is not locked, so key logins work
/// without PAM.
fn useradd_command(spec: &AccountSpec) -> Command {
    let mut command = Command::new("useradd");
    command
        .arg(if spec.create_home {
            "--create-home"
        } else {
            "--no-create-home"
        })
        .args(["--home-dir", spec.home, "--shell", spec.shell])
        .args(["--user-group", "--password", "*"])
        .args(["--comment", spec.comment, spec.name]);
    command
}

/// Creates the unprivileged test account if it is missing (idempotent), with
/// a home directory and a plain POSIX shell that reads no start-up files.
fn ensure_unprivileged_account() -> Result<Account, String> {
    let home = format!("/home/{UNPRIVILEGED_USER}");
    ensure_account(&AccountSpec {
        name: UNPRIVILEGED_USER,
        shell: "/bin/sh",
        home: &home,
        create_home: true,
        comment: "scp-server e2e tests",
    })
}

// ---------------------------------------------------------------------------
// Temporary directories

/// A directory removed with everything in it when dropped (unless
/// `SCP_E2E_KEEP` is set). Std only, so the harness adds no dependency.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(label: &str) -> io::Result<ScratchDir> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("{label}-{}-{n}-{nanos:x}", std::process::id()));
        fs::create_dir(&path)?;
        // Traversable by the unprivileged login, whose authorized_keys and
        // scp binary live in here.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        Ok(ScratchDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::env::var_os("SCP_E2E_KEEP").is_some() {
            eprintln!("SCP_E2E_KEEP: leaving {}", self.path.display());
            return;
        }
        if fs::remove_dir_all(&self.path).is_ok() {
            return;
        }
        // A test may have left a read-only directory behind (that is how a
        // non-root user makes a target unwritable): open everything up and
        // try again.
        make_tree_writable(&self.path);
        if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!("warning: cannot remove {}: {e}", self.path.display());
        }
    }
}

fn make_tree_writable(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                make_tree_writable(&entry.path());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Running commands with a time limit

/// What a finished (or killed) command left behind.
pub struct Outcome {
    pub command: String,
    /// `None` only if the child could not be waited for after a kill.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub timed_out: bool,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        match (self.timed_out, self.status) {
            (true, _) => writeln!(f, "status: killed after time limit")?,
            (false, Some(s)) => writeln!(f, "status: {s}")?,
            (false, None) => writeln!(f, "status: unknown")?,
        }
        writeln!(f, "stdout: {}", self.stdout_text())?;
        write!(f, "stderr: {}", self.stderr)
    }
}

fn drain<R: Read + Send + 'static>(source: Option<R>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut source) = source {
            let _ = source.read_to_end(&mut buf);
        }
        buf
    })
}

/// Sends `signal` to every process of group `pgid` (a child started with
/// `process_group(0)` leads its own group, so scp's ssh child goes too).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{pgid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs `command` with no stdin, capturing stdout and stderr, and kills its
/// whole process group if it outlives `limit`, so a hung transfer fails the
/// test instead of hanging the suite.
pub fn run_bounded(mut command: Command, limit: Duration) -> Outcome {
    let description = describe(&command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => panic!("cannot start {description}: {e}"),
    };
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (Some(status), false),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            // Killed before it is reaped, so the group id cannot have been
            // reused by an unrelated process.
            Ok(None) => {
                signal_group(child.id(), "KILL");
                break (child.wait().ok(), true);
            }
            Err(e) => panic!("cannot wait for {description}: {e}"),
        }
    };
    Outcome {
        command: description,
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned(),
        timed_out,
    }
}

fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

// ---------------------------------------------------------------------------
// Quoting for the remote shell

/// Escapes `path` for the remote login shell with backslashes. `scp -O` puts
/// remote paths into `scp -t PATH` / `scp -f PATH` unquoted, so the user must
/// quote for the remote shell; backslashes (not quotes) are what also pass
/// the OpenSSH client's check that received names match the requested one.
pub fn remote_shell_escape(path: &Path) -> OsString {
    let mut out = Vec::new();
    for &byte in path.as_os_str().as_bytes() {
        let plain = byte.is_ascii_alphanumeric() || b"/._-+,:@%=".contains(&byte) || byte >= 0x80;
        if !plain {
            out.push(b'\\');
        }
        out.push(byte);
    }
    OsStr::from_bytes(&out).to_os_string()
}

// ---------------------------------------------------------------------------
// The private sshd

pub struct PrivateSshd {
    /// `timeout … sshd -D`; leads its own process group.
    child: Child,
    port: u16,
    config_dir: PathBuf,
    bin_dir: PathBuf,
    work_dir: PathBuf,
    client_key: PathBuf,
    log_path: PathBuf,
    login: Account,
    /// Last field: removed after sshd is stopped.
    scratch: ScratchDir,
}

/// What a test may add to the standard private sshd, e.g. a chroot drop
/// account: its name and a `Match User` block.
#[derive(Clone, Debug, Default)]
pub struct SshdOptions {
    /// Lines appended to sshd_config after everything else, so that `Match`
    /// blocks (which run to the end of the file) may be used.
    pub extra_config: String,
    /// Accounts allowed to log in besides the current and the unprivileged
    /// one (sshd_config's `AllowUsers`). All use the same client key.
    pub extra_users: Vec<String>,
}

/// Why one attempt at starting sshd failed.
enum StartFailure {
    PortTaken,
    Other(String),
}

impl PrivateSshd {
    /// Starts a private sshd whose sessions run `server_program` as `scp`.
    /// Returns `None` (after saying why) where the machine cannot do this and
    /// we are not in CI; panics on anything that looks like a real failure.
    pub fn start(server_program: &Path) -> Option<PrivateSshd> {
        PrivateSshd::start_with(server_program, &SshdOptions::default())
    }

    /// `start` with additions to the configuration.
    pub fn start_with(server_program: &Path, options: &SshdOptions) -> Option<PrivateSshd> {
        for tool in [SSHD, SSH_KEYGEN, SSH_CLIENT, &scp_client()] {
            if !Path::new(tool).exists() {
                return unavailable(&format!(
                    "{tool} is missing (install openssh-server and openssh-client)"
                ));
            }
        }
        if !server_program.exists() {
            panic!(
                "server-side program {} does not exist",
                server_program.display()
            );
        }
        let Some(login) = current_account() else {
            return unavailable(&format!(
                "uid {} has no /etc/passwd entry, sshd cannot log it in",
                effective_uid()
            ));
        };
        if running_as_root() {
            ensure_privilege_separation_dir();
        }

        let scratch = ScratchDir::new("scp-server-e2e").expect("create temporary directory");
        let config_dir = make_dir(scratch.path(), "sshd", 0o755);
        let bin_dir = make_dir(scratch.path(), "bin", 0o755);
        let work_dir = make_dir(scratch.path(), "work", 0o755);
        install_as_scp(server_program, &bin_dir);
        generate_key(&config_dir.join("host_ed25519_key"), "scp-server-e2e host");
        let client_key = config_dir.join("client_ed25519_key");
        generate_key(&client_key, "scp-server-e2e client");
        write_authorized_keys(&config_dir, &client_key, &bin_dir);

        let log_path = config_dir.join("sshd.log");
        let (child, port) = launch_on_free_port(&config_dir, &log_path, &login, options);
        let sshd = PrivateSshd {
            child,
            port,
            config_dir,
            bin_dir,
            work_dir,
            client_key,
            log_path,
            login,
            scratch,
        };
        let login_name = sshd.login.name.clone();
        sshd.assert_scp_is_server_program(&login_name);
        Some(sshd)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A directory for the test's own files, removed with the server;
    /// readable by the unprivileged account.
    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// The account sshd was started as and most tests log in as.
    pub fn login(&self) -> &Account {
        &self.login
    }

    /// The directory first in the sessions' PATH (holds `scp`).
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// An account that permission checks apply to: the current one when we
    /// are not root, else the dedicated test account (created on demand).
    /// `None` (after saying why) where that cannot be arranged.
    pub fn unprivileged_login(&self) -> Option<Account> {
        if !running_as_root() {
            return Some(self.login.clone());
        }
        match ensure_unprivileged_account() {
            Ok(account) => {
                self.assert_scp_is_server_program(&account.name);
                Some(account)
            }
            Err(reason) => unavailable(&reason),
        }
    }

    /// `user@127.0.0.1:path` for scp; `path` is passed as is (see
    /// `remote_shell_escape` for names the remote shell would split).
    pub fn remote(&self, user: &str, path: impl AsRef<OsStr>) -> OsString {
        let mut spec = OsString::from(format!("{user}@127.0.0.1:"));
        spec.push(path.as_ref());
        spec
    }

    /// Options that make a client talk to this server only, with this
    /// server's key only, never asking anything and never reading or writing
    /// the invoking user's ~/.ssh (`-F /dev/null` also stops ssh from creating
    /// it).
    fn client_options(&self) -> Vec<OsString> {
        let mut options: Vec<OsString> = vec!["-F".into(), "/dev/null".into()];
        for option in [
            "BatchMode=yes",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "LogLevel=ERROR",
            "ConnectTimeout=10",
        ] {
            options.push("-o".into());
            options.push(option.into());
        }
        options.push("-i".into());
        options.push(self.client_key.clone().into());
        options
    }

    /// The command `scp -O <options> -P PORT ARGS…` (legacy protocol, the one
    /// our binary serves), for callers that need to adjust it.
    pub fn scp_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(scp_client());
        command
            .arg("-O")
            .args(self.client_options())
            .arg("-P")
            .arg(self.port.to_string())
            .args(args);
        command
    }

    /// Runs the real OpenSSH `scp -O` client against this server.
    pub fn scp<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_bounded(self.scp_command(args), CLIENT_TIMEOUT)
    }

    /// Runs `ssh user@127.0.0.1 REMOTE_COMMAND` against this server.
    pub fn ssh(&self, user: &str, remote_command: &str) -> Outcome {
        let mut command = Command::new(SSH_CLIENT);
        command
            .args(self.client_options())
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{user}@127.0.0.1"))
            .arg("--")
            .arg(remote_command);
        run_bounded(command, CLIENT_TIMEOUT)
    }

    /// Runs `ssh [CLIENT_ARGS…] user@127.0.0.1 [-- REMOTE_COMMAND]`. Without a
    /// command ssh asks for a login shell, which is how an interactive login
    /// reaches the account's shell (`-T`: without a terminal, `-tt`: with one).
    pub fn ssh_with(
        &self,
        user: &str,
        client_args: &[&str],
        remote_command: Option<&str>,
    ) -> Outcome {
        let mut command = Command::new(SSH_CLIENT);
        command
            .args(self.client_options())
            .args(client_args)
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{user}@127.0.0.1"));
        if let Some(remote_command) = remote_command {
            command.arg("--").arg(remote_command);
        }
        run_bounded(command, CLIENT_TIMEOUT)
    }

    /// Runs the OpenSSH client as a user would type it, without `-O`: since
    /// OpenSSH 9.0 that speaks SFTP, an `sftp` subsystem request.
    pub fn scp_over_sftp<I, S>(&self, args: I) -> Outcome
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(scp_client());
        command
            .args(self.client_options())
            .arg("-P")
            .arg(self.port.to_string())
            .args(args);
        run_bounded(command, CLIENT_TIMEOUT)
    }

    /// Runs `sftp -b BATCH user@127.0.0.1`, one sftp command per line of
    /// `commands`; sftp stops at the first command that fails.
    pub fn sftp_batch(&self, user: &str, commands: &str) -> Outcome {
        static BATCHES: AtomicUsize = AtomicUsize::new(0);
        let n = BATCHES.fetch_add(1, Ordering::Relaxed);
        let batch = self.config_dir.join(format!("sftp-batch-{n}"));
        fs::write(&batch, commands).expect("write sftp batch file");
        let mut command = Command::new("/usr/bin/sftp");
        command
            .args(self.client_options())
            .arg("-P")
            .arg(self.port.to_string())
            .arg("-b")
            .arg(&batch)
            .arg(format!("{user}@127.0.0.1"));
        run_bounded(command, CLIENT_TIMEOUT)
    }

    /// The sshd log so far (`sshd -e` writes it to stderr, which we redirect).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Panics with the outcome unless it succeeded (`Drop` then prints the
    /// sshd log, as it does for every failing test).
    pub fn expect_success(&self, outcome: &Outcome) {
        if !outcome.succeeded() {
            panic!("expected success\n{outcome}");
        }
    }

    /// Panics unless the command failed normally (nonzero exit, not a hang).
    pub fn expect_failure(&self, outcome: &Outcome) {
        let failed_cleanly = !outcome.timed_out && outcome.exit_code().is_some_and(|c| c != 0);
        if !failed_cleanly {
            panic!("expected a clean failure\n{outcome}");
        }
    }

    /// Checks, through a real session, that `scp` in the remote PATH is the
    /// program under test; otherwise the tests would silently exercise
    /// OpenSSH's own scp.
    fn assert_scp_is_server_program(&self, user: &str) {
        let outcome = self.ssh(user, "command -v scp");
        self.expect_success(&outcome);
        let expected = self.bin_dir.join("scp");
        let found = outcome.stdout_text();
        // Start-up files of the login shell may print; the answer is the
        // last line.
        let last = found.lines().last().unwrap_or("").trim();
        assert_eq!(
            Path::new(last),
            expected,
            "remote PATH for {user} does not find the program under test first\n{outcome}"
        );
    }
}

impl Drop for PrivateSshd {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- private sshd log ({}) ---\n{}",
                self.log_path.display(),
                self.log()
            );
        }
        // TERM lets timeout(1) pass the signal on to sshd; KILL if that did
        // not end it.
        signal_group(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.child.id(), "KILL");
            let _ = self.child.wait();
        }
        kill_leftover_server_programs(&self.bin_dir);
    }
}

/// sshd does not end a session's command when the connection drops, so a
/// server-side scp that hung (the bug a timed-out test reports) would outlive
/// the test. Every process running from a private directory of the test
/// (`bin_dir`; a jail) is ours: its executable, or for a script its
/// interpreter's argument, lies there. sshd gives each session its own
/// process group, so killing that group also ends whatever the program
/// started.
pub fn kill_leftover_server_programs(bin_dir: &Path) {
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    let own_group = process_group_of(Path::new("/proc/self"));
    for entry in entries.flatten() {
        let is_process = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.parse::<u32>().is_ok());
        if !is_process || !runs_from(&entry.path(), bin_dir) {
            continue;
        }
        if let Some(group) = process_group_of(&entry.path()).filter(|g| Some(*g) != own_group) {
            signal_group(group, "KILL");
        }
    }
}

/// Field 5 of /proc/PID/stat; the command name before it may hold spaces
/// and parentheses, so parse from the last `)`.
fn process_group_of(proc_dir: &Path) -> Option<u32> {
    let stat = fs::read_to_string(proc_dir.join("stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(2)?.parse().ok()
}

fn runs_from(proc_dir: &Path, bin_dir: &Path) -> bool {
    let exe_inside = fs::read_link(proc_dir.join("exe")).is_ok_and(|exe| exe.starts_with(bin_dir));
    let argument_inside = fs::read(proc_dir.join("cmdline")).is_ok_and(|cmdline| {
        cmdline
            .split(|&b| b == 0)
            .any(|arg| Path::new(OsStr::from_bytes(arg)).starts_with(bin_dir))
    });
    exe_inside || argument_inside
}

/// The OpenSSH scp client to drive.
pub fn scp_client() -> String {
    std::env::var("SCP_E2E_CLIENT").unwrap_or_else(|_| DEFAULT_SCP_CLIENT.to_string())
}

/// sshd running as root refuses to start without /run/sshd (Debian's service
/// unit creates it at boot); create it the same way when it is missing.
pub fn ensure_privilege_separation_dir() {
    let dir = Path::new("/run/sshd");
    if !dir.is_dir() {
        fs::create_dir_all(dir).expect("create /run/sshd");
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod /run/sshd");
    }
}

fn make_dir(parent: &Path, name: &str, mode: u32) -> PathBuf {
    let dir = parent.join(name);
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).expect("chmod");
    dir
}

/// Puts the program under test into `bin_dir` as `scp`. A copy, not a
/// symlink: the unprivileged account can run it even where the build
/// directory is closed to it, and a rebuild during the run cannot change it.
fn install_as_scp(program: &Path, bin_dir: &Path) {
    let target = bin_dir.join("scp");
    fs::copy(program, &target)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", program.display(), target.display()));
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).expect("chmod scp");
}

fn generate_key(path: &Path, comment: &str) {
    let mut command = Command::new(SSH_KEYGEN);
    command
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path);
    let outcome = run_bounded(command, Duration::from_secs(30));
    assert!(outcome.succeeded(), "ssh-keygen failed\n{outcome}");
}

/// One key line for every login, with the PATH that makes the program under
/// test the session's `scp` (sshd applies `environment=` because the config
/// permits exactly PATH). sshd reads this file as the logging-in user, hence
/// mode 0644.
fn write_authorized_keys(config_dir: &Path, client_key: &Path, bin_dir: &Path) {
    let public =
        fs::read_to_string(client_key.with_extension("pub")).expect("read client public key");
    let line = format!(
        "environment=\"PATH={}:/usr/local/bin:/usr/bin:/bin\" {}\n",
        bin_dir.display(),
        public.trim()
    );
    let path = config_dir.join("authorized_keys");
    fs::write(&path, line).expect("write authorized_keys");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod authorized_keys");
}

fn sshd_config(config_dir: &Path, port: u16, login: &Account, options: &SshdOptions) -> String {
    let dir = config_dir.display();
    let mut users = vec![login.name.as_str(), UNPRIVILEGED_USER];
    users.extend(options.extra_users.iter().map(String::as_str));
    let base = format!(
        "# Private sshd for scp-server end-to-end tests; nothing here is global.\n\
         ListenAddress 127.0.0.1\n\
         Port {port}\n\
         HostKey {dir}/host_ed25519_key\n\
         PidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         AllowUsers {users}\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         UsePAM no\n\
         # The key files live in a temporary directory, not in ~/.ssh.\n\
         StrictModes no\n\
         # Only PATH, so an account's own ~/.ssh/environment changes nothing else.\n\
         PermitUserEnvironment PATH\n\
         PermitUserRC no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         AllowTcpForwarding no\n\
         AllowAgentForwarding no\n\
         PermitTunnel no\n\
         LogLevel VERBOSE\n\
         # No Subsystem line: no SFTP, so only the legacy protocol (scp -O) works.\n",
        users = users.join(" "),
    );
    format!("{base}{}\n", options.extra_config)
}

/// Asks the kernel for a free loopback port. Free now; sshd binds it a few
/// milliseconds later, and `launch_on_free_port` retries if it was lost.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

fn launch_on_free_port(
    config_dir: &Path,
    log_path: &Path,
    login: &Account,
    options: &SshdOptions,
) -> (Child, u16) {
    let _guard = STARTUP_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let config_path = config_dir.join("sshd_config");
    let mut last_log = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        fs::write(&config_path, sshd_config(config_dir, port, login, options))
            .expect("write sshd_config");
        let mut child = spawn_sshd(&config_path, log_path);
        match wait_until_listening(&mut child, port, log_path) {
            Ok(()) => return (child, port),
            Err(StartFailure::PortTaken) => {
                last_log = fs::read_to_string(log_path).unwrap_or_default();
                continue;
            }
            Err(StartFailure::Other(reason)) => panic!("private sshd did not start: {reason}"),
        }
    }
    panic!("private sshd found no free port in {PORT_ATTEMPTS} attempts; last log:\n{last_log}");
}

/// Starts `sshd -D -e -f CONFIG` under `timeout(1)` (the watchdog that
/// survives us), with umask 022 so that modes of files created without `-p`
/// do not depend on whoever runs the tests. sshd wants an absolute path for
/// its re-exec, which it gets.
fn spawn_sshd(config_path: &Path, log_path: &Path) -> Child {
    let log = File::create(log_path).expect("create sshd log");
    let log_for_stderr = log.try_clone().expect("clone log handle");
    Command::new("/bin/sh")
        .args(["-c", "umask 022 && exec \"$@\"", "sh", "timeout"])
        .args(["--signal=TERM", "--kill-after=10"])
        .arg(format!("{}s", SSHD_LIFETIME.as_secs()))
        .args([SSHD, "-D", "-e", "-f"])
        .arg(config_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr)
        .process_group(0)
        .spawn()
        .expect("start sshd")
}

/// Waits for our sshd's own "Server listening" line: a connect test alone
/// could be answered by whichever process grabbed the port.
fn wait_until_listening(child: &mut Child, port: u16, log_path: &Path) -> Result<(), StartFailure> {
    let ready = format!("Server listening on 127.0.0.1 port {port}");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        let log = fs::read_to_string(log_path).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            return Err(if log.contains("Address already in use") {
                StartFailure::PortTaken
            } else {
                StartFailure::Other(format!("sshd exited with {status}; log:\n{log}"))
            });
        }
        if log.contains(&ready) {
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            if TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok() {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            signal_group(child.id(), "KILL");
            let _ = child.wait();
            return Err(StartFailure::Other(format!(
                "sshd not listening after {STARTUP_TIMEOUT:?}; log:\n{log}"
            )));
        }
        thread::sleep(Duration::from_millis(20));
    }
}
