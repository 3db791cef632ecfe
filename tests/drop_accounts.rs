//! End-to-end tests of drop accounts (issue 4): accounts that may only
//! transfer files with scp, through a real sshd and the real OpenSSH client.
//!
//! Two deployments, as DESIGN.md "Who runs it, and how it is started"
//! describes them:
//!
//! - **Login shell in a chroot jail.** The static binary is the account's
//!   login shell; sshd's `ChrootDirectory` jail holds that binary, an
//!   `incoming/` directory and perhaps `etc/scp-server.conf` — no /bin/sh, no
//!   libraries. sshd runs `scp-server -c "COMMAND"` inside the jail. The
//!   accounts' home is `/`, so the jail is their root.
//!   - `scpdrop-rw`: read-write, no configuration file, no `etc/passwd`.
//!   - `scpdrop-wo`: write-only through a `[user.scpdrop-wo]` section, so its
//!     jail carries minimal `etc/passwd` and `etc/group` lines: the binary
//!     finds its own name there.
//!   - `scpdrop-wg`: write-only through a global key, no `etc/passwd`; its
//!     `incoming/` is root's, writable but not listable by the account's
//!     group (mode 0730), and `umask = "0477"` leaves uploads unreadable to
//!     the account: the layout the docs give for a server whose SFTP
//!     subsystem is internal-sftp.
//! - **ForceCommand without a chroot.** `scpdrop-fc` has an ordinary shell;
//!   sshd runs `scp-server --root ROOT --write-only` for every session, with
//!   the client's command in SSH_ORIGINAL_COMMAND.
//!
//! Everything lives in `/srv/scp-server-test/<unique>/` (sshd accepts a
//! chroot only where every path component is root's and writable by nobody
//! else, which rules out /tmp), removed afterwards. The accounts stay, as
//! `useradd` made them. Their login shell exists only inside the jails:
//! sshd 9.2 does not look for the shell outside when ChrootDirectory
//! applies, and an account whose Match block went missing then cannot log
//! in at all (docs/drop-accounts.md recommends exactly that).
//!
//! Each test builds its own area and its own private sshd, and ends by
//! checking that nothing in the area changed except the `incoming/`
//! directories. A few tests run sshd with a global `internal-sftp`
//! subsystem to hold the caveat of docs/drop-accounts.md to the truth. Root is needed (useradd, chroot); without it the tests skip,
//! except under `CI`, where they fail.

mod sshd;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sshd::{
    Account, AccountSpec, Outcome, PrivateSshd, SshdOptions, ensure_account,
    kill_leftover_server_programs, remote_shell_escape, run_bounded, running_as_root, unavailable,
};

/// The login shell's path as the account's passwd entry names it; sshd
/// execs it after chroot, so it exists inside every jail (and nowhere
/// outside).
const LOGIN_SHELL: &str = "/usr/local/libexec/scp-server-test/scp-server";

/// Parent of every test area; root's and closed to others, as sshd's
/// ChrootDirectory check demands of each component.
const TEST_AREA_PARENT: &str = "/srv/scp-server-test";

const READ_WRITE: &str = "scpdrop-rw";
const WRITE_ONLY: &str = "scpdrop-wo";
const WRITE_ONLY_GLOBAL: &str = "scpdrop-wg";
const FORCED: &str = "scpdrop-fc";
const CHROOTED: [&str; 3] = [READ_WRITE, WRITE_ONLY, WRITE_ONLY_GLOBAL];

/// The SFTP subsystem of the standard setup (Debian's default): sshd runs
/// it through the account's shell (or ForceCommand), so an SFTP request
/// reaches the binary, which must refuse it. (With `internal-sftp`, sshd
/// serves SFTP itself and the binary never sees it: see INTERNAL_SFTP.)
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// The static release build can take minutes (LTO).
const BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

// ---------------------------------------------------------------------------
// Prerequisites and the binary under test

/// Returns `Some(())` when this machine can run the tests; otherwise says
/// why and skips (a panic under CI).
fn prerequisites() -> Option<()> {
    if !running_as_root() {
        return unavailable("drop-account tests need root (useradd, sshd ChrootDirectory)");
    }
    for tool in ["/usr/sbin/useradd", "/usr/sbin/usermod", sshd::SSHD] {
        if !Path::new(tool).exists() {
            return unavailable(&format!("{tool} is missing"));
        }
    }
    let srv = fs::metadata("/srv");
    if !srv
        .as_ref()
        .is_ok_and(|m| m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0)
    {
        return unavailable("/srv must be a directory owned by root and writable by nobody else");
    }
    Some(())
}

/// The static release binary, built once per test process by the same
/// script as the release (a dynamically linked binary could not run in a
/// jail without libraries).
fn static_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_static_binary)
}

fn build_static_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = Command::new("bash");
    command
        .arg(root.join("scripts/build-static.sh"))
        .current_dir(root);
    let outcome = run_bounded(command, BUILD_TIMEOUT);
    assert!(outcome.succeeded(), "static build failed\n{outcome}");
    let text = outcome.stdout_text();
    let relative = text.lines().last().expect("build script prints a path");
    root.join(relative.trim())
}

// ---------------------------------------------------------------------------
// Accounts

/// The four test accounts. Home `/`: for the chrooted ones that is the
/// jail, their root; the ForceCommand account gets its root from `--root`.
/// The ForceCommand account needs a real shell, because sshd runs the
/// forced command with `SHELL -c`.
fn ensure_accounts() -> Option<BTreeMap<&'static str, Account>> {
    let mut accounts = BTreeMap::new();
    for name in CHROOTED.into_iter().chain([FORCED]) {
        let shell = if name == FORCED {
            "/bin/sh"
        } else {
            LOGIN_SHELL
        };
        let spec = AccountSpec {
            name,
            shell,
            home: "/",
            create_home: false,
            comment: "scp-server drop-account tests",
        };
        match ensure_account(&spec) {
            Ok(account) => {
                accounts.insert(name, account);
            }
            Err(reason) => return unavailable(&reason),
        }
    }
    Some(accounts)
}

// ---------------------------------------------------------------------------
// The test area: jails, the ForceCommand root, canaries

/// `/srv/scp-server-test/<unique>`, removed with everything in it when
/// dropped (unless `SCP_E2E_KEEP` is set).
struct TestArea {
    path: PathBuf,
}

impl TestArea {
    fn create() -> TestArea {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let parent = Path::new(TEST_AREA_PARENT);
        fs::create_dir_all(parent).expect("create the test area parent");
        set_owner_and_mode(parent, 0, 0, 0o755);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("{}-{n}-{nanos:x}", std::process::id()));
        root_dir(&path);
        TestArea { path }
    }

    fn jail(&self, user: &str) -> PathBuf {
        self.path.join("jails").join(user)
    }

    fn forced_binary(&self) -> PathBuf {
        self.path.join("forced/bin/scp-server")
    }

    fn forced_root(&self) -> PathBuf {
        self.path.join("forced/root")
    }

    /// A directory the ForceCommand account may write by its permissions but
    /// that lies outside its root: only confinement keeps uploads out.
    fn forced_outside(&self) -> PathBuf {
        self.path.join("forced/outside")
    }

    /// Where uploads of `user` land (the only place that may change).
    fn incoming(&self, user: &str) -> PathBuf {
        if user == FORCED {
            self.forced_root().join("incoming")
        } else {
            self.jail(user).join("incoming")
        }
    }

    fn all_incoming(&self) -> Vec<PathBuf> {
        CHROOTED
            .into_iter()
            .chain([FORCED])
            .map(|u| self.incoming(u))
            .collect()
    }
}

impl Drop for TestArea {
    fn drop(&mut self) {
        kill_leftover_server_programs(&self.path);
        if std::env::var_os("SCP_E2E_KEEP").is_some() {
            eprintln!("SCP_E2E_KEEP: leaving {}", self.path.display());
            return;
        }
        if let Err(e) = fs::remove_dir_all(&self.path) {
            eprintln!("warning: cannot remove {}: {e}", self.path.display());
        }
        // Empty now unless another test process is running.
        let _ = fs::remove_dir(TEST_AREA_PARENT);
    }
}

/// How a jail's `incoming/` is set up.
#[derive(Clone, Copy)]
enum Incoming {
    /// The account's own, mode 0755.
    OwnedByAccount,
    /// root's, group the account's, mode 0730: the account may create files
    /// but not list the directory.
    WritableNotReadable,
}

/// What a jail holds besides the login shell and `incoming/`.
struct JailPlan<'a> {
    config: Option<&'a str>,
    /// Minimal `etc/passwd` and `etc/group` lines for the account, which
    /// `[user.NAME]` / `[group.NAME]` sections need.
    passwd: bool,
    incoming: Incoming,
}

/// Builds a jail as an admin would: root-owned directories closed to
/// others, the static binary at the login shell's path, `incoming/`, and
/// optionally the jail's own `/etc/scp-server.conf` and passwd lines. No
/// shell and no libraries.
fn build_jail(jail: &Path, account: &Account, plan: &JailPlan) {
    root_dir(jail);
    let shell_dir = root_dirs_along(jail, Path::new(LOGIN_SHELL).parent().unwrap());
    install_file(static_binary(), &shell_dir.join("scp-server"), 0o755);
    let incoming = jail.join("incoming");
    fs::create_dir(&incoming).expect("create incoming");
    match plan.incoming {
        Incoming::OwnedByAccount => set_owner_and_mode(&incoming, account.uid, account.gid, 0o755),
        Incoming::WritableNotReadable => set_owner_and_mode(&incoming, 0, account.gid, 0o730),
    }
    if plan.config.is_some() || plan.passwd {
        root_dir(&jail.join("etc"));
    }
    if let Some(config) = plan.config {
        root_file(&jail.join("etc/scp-server.conf"), config.as_bytes(), 0o644);
    }
    if plan.passwd {
        let passwd = format!(
            "{}:x:{}:{}::/:{LOGIN_SHELL}\n",
            account.name, account.uid, account.gid
        );
        let group = format!("{}:x:{}:\n", account.name, account.gid);
        root_file(&jail.join("etc/passwd"), passwd.as_bytes(), 0o644);
        root_file(&jail.join("etc/group"), group.as_bytes(), 0o644);
    }
}

/// The ForceCommand account's world: its binary (outside any jail), its
/// root (root's) with `incoming/` (the account's), and a canary directory
/// outside the root that the account could write if it ever got there.
fn build_forced_area(area: &TestArea, account: &Account) {
    root_dir(&area.path.join("forced"));
    root_dir(&area.path.join("forced/bin"));
    install_file(static_binary(), &area.forced_binary(), 0o755);
    root_dir(&area.forced_root());
    let incoming = area.incoming(FORCED);
    fs::create_dir(&incoming).expect("create forced incoming");
    set_owner_and_mode(&incoming, account.uid, account.gid, 0o755);
    let outside = area.forced_outside();
    fs::create_dir(&outside).expect("create forced outside");
    set_owner_and_mode(&outside, account.uid, account.gid, 0o755);
}

/// How a world's private sshd is configured.
#[derive(Clone, Copy)]
struct SshdSetup {
    /// The program of the global `Subsystem sftp` line (`Subsystem` cannot
    /// stand in a Match block in OpenSSH 9.2).
    subsystem: &'static str,
    /// Whether the chrooted accounts get their Match block.
    chroot: bool,
}

/// The deployment under test: an SFTP request runs the external
/// sftp-server through the account's shell or ForceCommand, i.e. it
/// reaches the binary.
const STANDARD: SshdSetup = SshdSetup {
    subsystem: SFTP_SERVER,
    chroot: true,
};

/// The Match blocks under test. `%u` gives each chrooted account its own
/// jail with one block.
fn sshd_additions(area: &TestArea, setup: SshdSetup) -> String {
    let mut config = format!("Subsystem sftp {}\n", setup.subsystem);
    if setup.chroot {
        config += &format!(
            "Match User {}\n    ChrootDirectory {}/%u\n",
            CHROOTED.join(","),
            area.path.join("jails").display()
        );
    }
    config += &format!(
        "Match User {FORCED}\n    ForceCommand {} --root {} --write-only\n",
        area.forced_binary().display(),
        area.forced_root().display()
    );
    config
}

// ---------------------------------------------------------------------------
// The world of one test

/// One test's accounts, area and sshd. Fields drop in order: sshd first
/// (its sessions end), then the area is removed.
struct DropWorld {
    sshd: PrivateSshd,
    area: TestArea,
    accounts: BTreeMap<&'static str, Account>,
    before: Snapshot,
}

/// The configuration of the write-only account's jail: a per-user section.
fn write_only_user_config() -> String {
    format!(
        "# Only this account's section makes it write-only.\n[user.{WRITE_ONLY}]\nwrite-only = true\n"
    )
}

/// Write-only by a global key, and files the account cannot read back
/// (0644 & !0477 = 0200): the layout for a server whose SFTP subsystem is
/// internal-sftp, where only permissions stand between SFTP and the files.
const WRITE_ONLY_GLOBAL_CONFIG: &str = "write-only = true\numask = \"0477\"\n";

impl DropWorld {
    /// Everything a test needs, or `None` where this machine cannot run it.
    fn start() -> Option<DropWorld> {
        DropWorld::start_configured(STANDARD, |_, _| {})
    }

    /// `start`, with a chance to change the area before sshd starts and the
    /// "before" snapshot is taken.
    fn start_adjusted(
        adjust: impl FnOnce(&TestArea, &BTreeMap<&'static str, Account>),
    ) -> Option<DropWorld> {
        DropWorld::start_configured(STANDARD, adjust)
    }

    /// `start_adjusted` with another sshd configuration.
    fn start_configured(
        setup: SshdSetup,
        adjust: impl FnOnce(&TestArea, &BTreeMap<&'static str, Account>),
    ) -> Option<DropWorld> {
        prerequisites()?;
        let accounts = ensure_accounts()?;
        let area = TestArea::create();
        let per_user = write_only_user_config();
        let plans = [
            (
                READ_WRITE,
                JailPlan {
                    config: None,
                    passwd: false,
                    incoming: Incoming::OwnedByAccount,
                },
            ),
            (
                WRITE_ONLY,
                JailPlan {
                    config: Some(&per_user),
                    passwd: true,
                    incoming: Incoming::OwnedByAccount,
                },
            ),
            (
                WRITE_ONLY_GLOBAL,
                JailPlan {
                    config: Some(WRITE_ONLY_GLOBAL_CONFIG),
                    passwd: false,
                    incoming: Incoming::WritableNotReadable,
                },
            ),
        ];
        root_dir(&area.path.join("jails"));
        for (user, plan) in &plans {
            build_jail(&area.jail(user), &accounts[user], plan);
        }
        build_forced_area(&area, &accounts[FORCED]);
        adjust(&area, &accounts);

        let options = SshdOptions {
            extra_config: sshd_additions(&area, setup),
            extra_users: CHROOTED
                .into_iter()
                .chain([FORCED])
                .map(String::from)
                .collect(),
        };
        let sshd = PrivateSshd::start_with(static_binary(), &options)?;
        let before = snapshot(&area.path, &area.all_incoming());
        Some(DropWorld {
            sshd,
            area,
            accounts,
            before,
        })
    }

    fn account(&self, user: &str) -> &Account {
        &self.accounts[user]
    }

    fn remote(&self, user: &str, path: &str) -> OsString {
        self.sshd.remote(user, path)
    }

    /// A file on the client's side.
    fn local_file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.sshd.work_dir().join(name);
        fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// An empty directory on the client's side.
    fn local_dir(&self, name: &str) -> PathBuf {
        let path = self.sshd.work_dir().join(name);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        path
    }

    /// Puts a file into the account's incoming/ as if it had uploaded it.
    fn put_in_incoming(&self, user: &str, name: &str, content: &[u8]) -> PathBuf {
        let account = self.account(user);
        let path = self.area.incoming(user).join(name);
        fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        set_owner_and_mode(&path, account.uid, account.gid, 0o644);
        path
    }

    /// A directory in the account's incoming/, as if it had made it.
    fn dir_in_incoming(&self, user: &str, name: &str) -> PathBuf {
        let account = self.account(user);
        let path = self.area.incoming(user).join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        set_owner_and_mode(&path, account.uid, account.gid, 0o755);
        path
    }

    /// `scp -O SOURCES… user@host:REMOTE`.
    fn upload(&self, user: &str, sources: &[&Path], remote: &str) -> Outcome {
        let mut args: Vec<OsString> = sources.iter().map(|s| s.as_os_str().to_owned()).collect();
        args.push(self.remote(user, remote));
        self.sshd.scp(&args)
    }

    /// `scp -O [OPTIONS…] user@host:REMOTE LOCAL_DIR`.
    fn download(&self, user: &str, options: &[&str], remote: &str, local: &Path) -> Outcome {
        let mut args: Vec<OsString> = options.iter().map(OsString::from).collect();
        args.push(self.remote(user, remote));
        args.push(local.as_os_str().to_owned());
        self.sshd.scp(&args)
    }

    /// `ssh user@host -- COMMAND`: the raw command reaches the binary as
    /// `-c COMMAND` or SSH_ORIGINAL_COMMAND exactly as typed.
    fn raw(&self, user: &str, command: &str) -> Outcome {
        self.sshd.ssh(user, command)
    }

    /// The final check of every test: nothing in the area changed except
    /// what lies inside the `incoming/` directories.
    fn assert_nothing_written_outside_incoming(&self) {
        let after = snapshot(&self.area.path, &self.area.all_incoming());
        let changes = describe_changes(&self.before, &after);
        assert!(
            changes.is_empty(),
            "the area changed outside incoming/:\n{}",
            changes.join("\n")
        );
        assert!(
            entries_of(&self.area.forced_outside()).is_empty(),
            "something reached the directory outside the ForceCommand root"
        );
    }
}

// ---------------------------------------------------------------------------
// Files as root sets them up

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn set_owner_and_mode(path: &Path, uid: u32, gid: u32, mode: u32) {
    chown(path, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    set_mode(path, mode);
}

/// A directory owned by root, mode 0755 whatever the umask: what sshd's
/// ChrootDirectory check wants of every component.
fn root_dir(path: &Path) {
    fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    set_owner_and_mode(path, 0, 0, 0o755);
}

/// Creates `relative` (absolute, as seen in the jail) below `jail`, one
/// root-owned directory per component; returns the innermost one.
fn root_dirs_along(jail: &Path, relative: &Path) -> PathBuf {
    let mut dir = jail.to_path_buf();
    for component in relative.components().skip(1) {
        dir.push(component);
        root_dir(&dir);
    }
    dir
}

fn root_file(path: &Path, content: &[u8], mode: u32) {
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_owner_and_mode(path, 0, 0, mode);
}

fn install_file(source: &Path, target: &Path, mode: u32) {
    fs::copy(source, target)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", source.display(), target.display()));
    set_owner_and_mode(target, 0, 0, mode);
}

fn entries_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Snapshots: "nothing written outside incoming/"

/// What we compare of one entry. Directory mtimes are included, so even a
/// file created and removed again (a stray temporary file) shows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct EntryFacts {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    len: u64,
    mtime: (i64, i64),
    content: u64,
}

impl std::fmt::Display for EntryFacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:04o} {}:{} {} bytes, mtime {}.{:09}, content {:016x}",
            self.kind,
            self.mode,
            self.uid,
            self.gid,
            self.len,
            self.mtime.0,
            self.mtime.1,
            self.content
        )
    }
}

type Snapshot = BTreeMap<PathBuf, EntryFacts>;

/// Every entry below `root`, without following symlinks. An excluded
/// directory is recorded by kind, owner and mode only, and not entered.
fn snapshot(root: &Path, excluded: &[PathBuf]) -> Snapshot {
    let mut facts = Snapshot::new();
    record_tree(root, excluded, &mut facts);
    facts
}

fn record_tree(path: &Path, excluded: &[PathBuf], facts: &mut Snapshot) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    let is_excluded = excluded.iter().any(|e| e == path);
    let kind = kind_of(&meta);
    let content = match kind {
        "file" => digest(&read(path)),
        "symlink" => digest(
            fs::read_link(path)
                .unwrap_or_default()
                .as_os_str()
                .as_encoded_bytes(),
        ),
        _ => 0,
    };
    let varying = !is_excluded;
    facts.insert(
        path.to_path_buf(),
        EntryFacts {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            len: if varying { meta.len() } else { 0 },
            mtime: if varying {
                (meta.mtime(), meta.mtime_nsec())
            } else {
                (0, 0)
            },
            content,
        },
    );
    if kind == "dir" && !is_excluded {
        let mut children: Vec<PathBuf> = fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        children.sort();
        for child in children {
            record_tree(&child, excluded, facts);
        }
    }
}

fn kind_of(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_symlink() {
        "symlink"
    } else if t.is_dir() {
        "dir"
    } else if t.is_file() {
        "file"
    } else {
        "special"
    }
}

fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

fn describe_changes(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut changes = Vec::new();
    for (path, old) in before {
        match after.get(path) {
            None => changes.push(format!("removed: {}", path.display())),
            Some(new) if new != old => {
                changes.push(format!("changed: {}: {old} -> {new}", path.display()))
            }
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        changes.push(format!("added: {}", path.display()));
    }
    changes
}

// ---------------------------------------------------------------------------
// Expectations

/// A transfer the client reports as failed, without hanging.
fn assert_client_failed(outcome: &Outcome) {
    let failed_cleanly = !outcome.timed_out && outcome.exit_code().is_some_and(|c| c != 0);
    assert!(failed_cleanly, "expected the transfer to fail\n{outcome}");
}

fn assert_succeeded(outcome: &Outcome) {
    assert!(outcome.succeeded(), "expected success\n{outcome}");
}

/// An scp command refused before any transfer: one `\x01` protocol line on
/// stdout naming the reason (the word `refusing` and the offending token),
/// exit 1, and nothing the command asked for was run.
fn assert_refused_in_protocol(outcome: &Outcome, token: &str) {
    let text = outcome.stdout_text();
    let one_line = text.ends_with('\n') && text.matches('\n').count() == 1;
    assert!(
        !outcome.timed_out
            && outcome.exit_code() == Some(1)
            && text.starts_with('\u{1}')
            && one_line
            && text.contains("refusing")
            && text.contains(token),
        "expected one protocol line (\\x01 … refusing … {token:?}) and exit 1\n{outcome}"
    );
    assert_nothing_ran(outcome);
}

/// Anything that is not an scp command: one line on stderr starting with
/// `scp-server: `, nothing on stdout (the client would take it for
/// protocol bytes), exit 1.
fn assert_refused_on_stderr(outcome: &Outcome) {
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    assert!(
        !outcome.timed_out
            && outcome.exit_code() == Some(1)
            && outcome.stdout.is_empty()
            && lines.len() == 1
            && lines[0].starts_with("scp-server: "),
        "expected exactly one stderr line `scp-server: …`, empty stdout and exit 1\n{outcome}"
    );
    assert_nothing_ran(outcome);
}

/// The commands the tests smuggle in print these; none may ever appear.
fn assert_nothing_ran(outcome: &Outcome) {
    let everything = format!("{}{}", outcome.stdout_text(), outcome.stderr);
    for sign in ["uid=", "root:x:0:0"] {
        assert!(
            !everything.contains(sign),
            "a smuggled command ran ({sign:?} in the output)\n{outcome}"
        );
    }
}

fn assert_stderr_mentions(outcome: &Outcome, words: &[&str]) {
    for word in words {
        assert!(
            outcome.stderr.contains(word),
            "the client's stderr should mention {word:?}\n{outcome}"
        );
    }
}

// ---------------------------------------------------------------------------
// Checks shared by the login-shell and the ForceCommand account

/// Programs other than scp, an interactive shell, an empty command: each
/// gets one line on stderr.
fn check_other_programs_are_refused(world: &DropWorld, user: &str) {
    let commands = [
        "cat /etc/passwd",
        "id",
        "sh",
        "/bin/sh -c id",
        "bash -i",
        "rsync --server -vlogDtpre.iLsfxC . /incoming",
        // SFTP is served, but not with words a client may not add.
        "sftp-server -d /",
        "/usr/lib/openssh/sftp-server -P read",
        "internal-sftp -u 000",
        "scpx -t /incoming",
        "env scp -t /incoming",
        "exec scp -t /incoming",
        // ssh sends a shell request for an empty command; a blank one is
        // the empty exec request a hand-made client could send.
        " ",
    ];
    for command in commands {
        let outcome = world.raw(user, command);
        assert_refused_on_stderr(&outcome);
    }
}

/// An interactive login without and with a terminal.
fn check_interactive_login_is_refused(world: &DropWorld, user: &str) {
    let plain = world.sshd.ssh_with(user, &["-T"], None);
    assert_refused_on_stderr(&plain);
    // With a terminal, the remote stderr reaches the client's stdout.
    let with_tty = world.sshd.ssh_with(user, &["-tt"], None);
    let text = format!("{}{}", with_tty.stdout_text(), with_tty.stderr);
    assert!(
        !with_tty.timed_out && with_tty.exit_code() == Some(1) && text.contains("scp-server: "),
        "an interactive login with a terminal must be refused with one line\n{with_tty}"
    );
}

/// scp commands carrying shell syntax, the way rssh and scponly were
/// broken: the second command must never run.
fn check_shell_syntax_is_refused(world: &DropWorld, user: &str) {
    let cases = [
        ("scp -t /incoming; id", ";"),
        ("scp -t /incoming;id", ";"),
        ("scp -t /incoming | id", "|"),
        ("scp -t /incoming && id", "&"),
        ("scp -t /incoming & id", "&"),
        ("scp -t /incoming$(id)", "$"),
        ("scp -t /incoming/${HOME}", "$"),
        ("scp -t /incoming`id`", "`"),
        ("scp -t /incoming > /incoming/out", ">"),
        ("scp -f /incoming < /etc/passwd", "<"),
        ("scp -t (id)", "("),
        ("scp -t /incoming )", ")"),
        ("scp -t \"/incoming/$(id)\"", "$"),
        ("scp -t \"/incoming/`id`\"", "`"),
    ];
    for (command, token) in cases {
        let outcome = world.raw(user, command);
        assert_refused_in_protocol(&outcome, token);
    }
    // A newline ends a shell command: the message may name it in words.
    let outcome = world.raw(user, "scp -t /incoming\nid");
    assert_refused_in_protocol(&outcome, "");
}

/// Client-side options of scp, the option-injection tricks against
/// restricted shells: each refused by name.
fn check_client_options_are_refused(world: &DropWorld, user: &str) {
    let cases = [
        ("scp -S /bin/sh -t /incoming", "-S"),
        ("scp -o ProxyCommand=x -f /x", "-o"),
        ("scp -oProxyCommand=x -f /x", "-o"),
        ("scp -F /incoming/cfg -t /incoming", "-F"),
        ("scp -i /incoming/key -t /incoming", "-i"),
        ("scp -J jump -t /incoming", "-J"),
        ("scp -P 2222 -t /incoming", "-P"),
        ("scp -c aes128-ctr -t /incoming", "-c"),
        ("scp -X nrequests=1 -t /incoming", "-X"),
        ("scp -D /bin/sh -t /incoming", "-D"),
        ("scp -3 -t /incoming", "-3"),
        ("scp -rS/bin/sh -t /incoming", "-S"),
        ("/usr/bin/scp -S /bin/sh -f /incoming", "-S"),
    ];
    for (command, option) in cases {
        let outcome = world.raw(user, command);
        assert_refused_in_protocol(&outcome, option);
    }
}

/// A quick upload; returns where it landed.
fn upload_one(world: &DropWorld, user: &str, name: &str, remote: &str) -> PathBuf {
    let content = format!("{name} for {user}\n");
    let source = world.local_file(name, content.as_bytes());
    let outcome = world.upload(user, &[&source], remote);
    assert_succeeded(&outcome);
    let landed = world.area.incoming(user).join(name);
    assert_eq!(read(&landed), content.as_bytes(), "{}", landed.display());
    assert_eq!(
        fs::metadata(&landed).expect("stat upload").uid(),
        world.account(user).uid,
        "the upload must belong to the account"
    );
    landed
}

// ---------------------------------------------------------------------------
// Login-shell accounts in a chroot jail

#[test]
fn upload_lands_in_incoming_of_the_jail() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    upload_one(&world, READ_WRITE, "report.txt", "/incoming/");
    upload_one(&world, READ_WRITE, "relative.txt", "incoming");
    upload_one(&world, READ_WRITE, "named.txt", "/incoming/named.txt");

    // Several sources: the client adds -d.
    let a = world.local_file("a.dat", b"first\n");
    let b = world.local_file("b.dat", b"second\n");
    assert_succeeded(&world.upload(READ_WRITE, &[&a, &b], "/incoming"));
    let incoming = world.area.incoming(READ_WRITE);
    assert_eq!(read(&incoming.join("a.dat")), b"first\n");
    assert_eq!(read(&incoming.join("b.dat")), b"second\n");

    // A tree with -r -p.
    let tree = world.local_dir("tree/sub");
    fs::write(tree.join("leaf.txt"), b"leaf\n").expect("write leaf");
    let outcome = world.sshd.scp([
        "-r".as_ref(),
        "-p".as_ref(),
        world.sshd.work_dir().join("tree").as_os_str(),
        &world.remote(READ_WRITE, "/incoming/"),
    ]);
    assert_succeeded(&outcome);
    assert_eq!(read(&incoming.join("tree/sub/leaf.txt")), b"leaf\n");

    world.assert_nothing_written_outside_incoming();
}

#[test]
fn download_works_for_the_read_write_account() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    world.put_in_incoming(READ_WRITE, "notes.txt", b"to be fetched\n");
    let local = world.local_dir("local");

    let outcome = world.download(READ_WRITE, &[], "/incoming/notes.txt", &local);
    assert_succeeded(&outcome);
    assert_eq!(read(&local.join("notes.txt")), b"to be fetched\n");

    // -r of the whole incoming directory.
    let outcome = world.download(READ_WRITE, &["-r"], "/incoming", &local.join("all"));
    assert_succeeded(&outcome);
    assert_eq!(read(&local.join("all/notes.txt")), b"to be fetched\n");

    world.assert_nothing_written_outside_incoming();
}

#[test]
fn write_only_account_uploads_but_cannot_download() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    upload_one(&world, WRITE_ONLY, "drop.txt", "/incoming/");
    let local = world.local_dir("local");

    let outcome = world.download(WRITE_ONLY, &[], "/incoming/drop.txt", &local);
    assert_client_failed(&outcome);
    assert_stderr_mentions(&outcome, &["downloads are not allowed for this account"]);
    assert!(entries_of(&local).is_empty(), "nothing may be downloaded");

    world.assert_nothing_written_outside_incoming();
}

#[test]
fn write_only_by_a_global_key_needs_no_passwd_in_the_jail() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    // incoming/ is root's, mode 0730: the binary must upload into a
    // directory it cannot list.
    let content = b"dropped into an unreadable directory\n";
    let source = world.local_file("blind.txt", content);
    assert_succeeded(&world.upload(WRITE_ONLY_GLOBAL, &[&source], "/incoming/"));
    let landed = world.area.incoming(WRITE_ONLY_GLOBAL).join("blind.txt");
    assert_eq!(read(&landed), content);
    assert_eq!(mode_of(&landed), 0o200, "umask 0477 of the jail's config");

    let local = world.local_dir("local");
    let outcome = world.download(WRITE_ONLY_GLOBAL, &[], "/incoming/blind.txt", &local);
    assert_client_failed(&outcome);
    assert_stderr_mentions(&outcome, &["downloads are not allowed for this account"]);
    assert!(entries_of(&local).is_empty(), "nothing may be downloaded");

    world.assert_nothing_written_outside_incoming();
}

/// A `[user.NAME]` section needs the account's name, which inside a jail
/// only the jail's own `etc/passwd` gives. Without it, the section that
/// makes the account write-only cannot apply — and must not be silently
/// skipped, which would turn a write-only account into a read-write one.
#[test]
fn per_user_section_without_passwd_in_the_jail_does_not_grant_downloads() {
    let Some(world) = DropWorld::start_adjusted(|area, _| {
        let etc = area.jail(WRITE_ONLY).join("etc");
        fs::remove_file(etc.join("passwd")).expect("remove jail passwd");
        fs::remove_file(etc.join("group")).expect("remove jail group");
    }) else {
        return;
    };
    world.put_in_incoming(WRITE_ONLY, "secret.txt", b"not for download\n");
    let local = world.local_dir("local");

    let outcome = world.download(WRITE_ONLY, &[], "/incoming/secret.txt", &local);
    assert_client_failed(&outcome);
    assert!(
        entries_of(&local).is_empty(),
        "nothing may be downloaded\n{outcome}"
    );

    world.assert_nothing_written_outside_incoming();
}

#[test]
fn interactive_login_is_refused_with_one_line() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    check_interactive_login_is_refused(&world, READ_WRITE);
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn other_programs_are_refused_on_stderr() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    check_other_programs_are_refused(&world, READ_WRITE);
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn shell_syntax_in_an_scp_command_is_refused_in_the_protocol() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    check_shell_syntax_is_refused(&world, READ_WRITE);
    assert!(entries_of(&world.area.incoming(READ_WRITE)).is_empty());
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn client_side_options_are_refused_by_name() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    check_client_options_are_refused(&world, READ_WRITE);
    assert!(entries_of(&world.area.incoming(READ_WRITE)).is_empty());
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn upload_that_leaves_the_root_is_refused() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    let source = world.local_file("escape.txt", b"should not land\n");
    for target in [
        "../../etc/",
        "/incoming/../../etc/",
        "/../etc/passwd",
        "../x",
    ] {
        let outcome = world.upload(READ_WRITE, &[&source], target);
        assert_client_failed(&outcome);
        assert_stderr_mentions(&outcome, &["outside"]);
    }
    assert!(entries_of(&world.area.incoming(READ_WRITE)).is_empty());
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn names_with_spaces_and_quoted_targets() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    let incoming = world.area.incoming(READ_WRITE);
    // A name with a space travels in the C record.
    upload_one(&world, READ_WRITE, "a b.txt", "/incoming/");

    // Targets quoted for the (absent) shell, as users quote them for scp -O.
    world.dir_in_incoming(READ_WRITE, "sub dir");
    world.dir_in_incoming(READ_WRITE, "odd;dir");
    let source = world.local_file("q.txt", b"quoted\n");
    for target in [
        "/incoming/sub\\ dir/",
        "'/incoming/sub dir/'",
        "\"/incoming/sub dir/\"",
        "'/incoming/odd;dir/'",
    ] {
        let outcome = world.upload(READ_WRITE, &[&source], target);
        assert_succeeded(&outcome);
    }
    assert_eq!(read(&incoming.join("sub dir/q.txt")), b"quoted\n");
    assert_eq!(read(&incoming.join("odd;dir/q.txt")), b"quoted\n");

    // Downloads: backslashes, which also pass the client's check that the
    // names it receives match what it asked for.
    let local = world.local_dir("local");
    let remote = remote_shell_escape(Path::new("/incoming/a b.txt"));
    let outcome = world.download(READ_WRITE, &[], remote.to_str().unwrap(), &local);
    assert_succeeded(&outcome);
    assert_eq!(read(&local.join("a b.txt")), b"a b.txt for scpdrop-rw\n");

    world.assert_nothing_written_outside_incoming();
}

#[test]
fn tilde_means_the_root() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    upload_one(&world, READ_WRITE, "tilde.txt", "~/incoming/");
    let local = world.local_dir("local");
    let outcome = world.download(READ_WRITE, &[], "~/incoming/tilde.txt", &local);
    assert_succeeded(&outcome);
    assert_eq!(
        read(&local.join("tilde.txt")),
        b"tilde.txt for scpdrop-rw\n"
    );

    // `~user` would mean another account's home: refused.
    let source = world.local_file("other.txt", b"other\n");
    for target in ["~root/", "~scpdrop-rw/incoming/"] {
        let outcome = world.upload(READ_WRITE, &[&source], target);
        assert_client_failed(&outcome);
        let user = target.trim_end_matches('/').split('/').next().unwrap();
        assert_stderr_mentions(&outcome, &["refusing", user]);
    }
    assert!(!world.area.incoming(READ_WRITE).join("other.txt").exists());

    world.assert_nothing_written_outside_incoming();
}

#[test]
fn glob_download_is_expanded_inside_the_root() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    for name in ["a.txt", "b.txt", "c.log", "d d.txt"] {
        world.put_in_incoming(READ_WRITE, name, format!("{name}\n").as_bytes());
    }
    let cases: [(&str, &[&str]); 4] = [
        ("/incoming/*.txt", &["a.txt", "b.txt", "d d.txt"]),
        ("/incoming/?.txt", &["a.txt", "b.txt"]),
        ("/incoming/[ac].*", &["a.txt", "c.log"]),
        ("~/incoming/*.log", &["c.log"]),
    ];
    for (n, (pattern, expected)) in cases.iter().enumerate() {
        let local = world.local_dir(&format!("local{n}"));
        let outcome = world.download(READ_WRITE, &[], pattern, &local);
        assert_succeeded(&outcome);
        assert_eq!(&entries_of(&local), expected, "pattern {pattern}");
    }

    // A pattern that matches nothing is an error naming it.
    let local = world.local_dir("none");
    let outcome = world.download(READ_WRITE, &[], "/incoming/*.none", &local);
    assert_client_failed(&outcome);
    assert_stderr_mentions(&outcome, &["*.none"]);
    // Patterns cannot reach outside the root.
    let outcome = world.download(READ_WRITE, &[], "/incoming/../../*", &local);
    assert_client_failed(&outcome);
    assert!(entries_of(&local).is_empty());

    world.assert_nothing_written_outside_incoming();
}

/// Plain `scp` (SFTP since OpenSSH 9.0) sends an `sftp` subsystem request,
/// which sshd runs through the account's shell (or, under ForceCommand,
/// hands over in SSH_ORIGINAL_COMMAND). The binary serves it under the
/// account's policy: uploads land in `incoming/`, the write-only account's
/// downloads are refused, and words a client adds to widen the policy are
/// refused on stderr.
#[test]
fn sftp_requests_are_served_under_the_accounts_policy() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    let source = world.local_file("sftp.txt", b"via sftp\n");
    let local = world.local_dir("local");
    for user in [READ_WRITE, FORCED] {
        let remote = world.remote(user, "/incoming/");
        let up = world
            .sshd
            .scp_over_sftp([source.as_os_str(), remote.as_os_str()]);
        assert_succeeded(&up);
        let landed = world.area.incoming(user).join("sftp.txt");
        assert_eq!(fs::read(&landed).unwrap(), b"via sftp\n", "{user}");

        let exec = world.raw(user, &format!("{SFTP_SERVER} -d /"));
        assert_refused_on_stderr(&exec);
        assert_stderr_mentions(&exec, &["-d"]);
    }
    world.put_in_incoming(READ_WRITE, "fetch.txt", b"over sftp\n");
    let remote = world.remote(READ_WRITE, "/incoming/fetch.txt");
    let down = world
        .sshd
        .scp_over_sftp([remote.as_os_str(), local.as_os_str()]);
    assert_succeeded(&down);
    assert_eq!(fs::read(local.join("fetch.txt")).unwrap(), b"over sftp\n");

    world.put_in_incoming(FORCED, "secret.txt", b"stays here\n");
    let remote = world.remote(FORCED, "/incoming/secret.txt");
    let down = world
        .sshd
        .scp_over_sftp([remote.as_os_str(), local.as_os_str()]);
    assert_client_failed(&down);
    assert!(!local.join("secret.txt").exists());
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn config_file_others_could_rewrite_fails_closed() {
    let Some(world) = DropWorld::start_adjusted(|area, accounts| {
        // Read-write account, a harmless config, but owned by the account:
        // whoever may rewrite the policy is not restricted by it.
        let etc = area.jail(READ_WRITE).join("etc");
        root_dir(&etc);
        let config = etc.join("scp-server.conf");
        root_file(&config, b"max-file-size = \"1M\"\n", 0o644);
        let owner = &accounts[READ_WRITE];
        set_owner_and_mode(&config, owner.uid, owner.gid, 0o644);
        // World-writable for the write-only-by-global-key account.
        set_mode(
            &area.jail(WRITE_ONLY_GLOBAL).join("etc/scp-server.conf"),
            0o666,
        );
    }) else {
        return;
    };
    let source = world.local_file("closed.txt", b"refused\n");
    for user in [READ_WRITE, WRITE_ONLY_GLOBAL] {
        let outcome = world.upload(user, &[&source], "/incoming/");
        assert_client_failed(&outcome);
        assert_stderr_mentions(&outcome, &["/etc/scp-server.conf"]);
        assert!(!world.area.incoming(user).join("closed.txt").exists());
    }
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn default_deny_list_keeps_uploads_out_of_start_up_files() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    let profile = world.local_file(".profile", b"exec /bin/sh\n");
    let outcome = world.upload(READ_WRITE, &[&profile], "/incoming/");
    assert_client_failed(&outcome);
    assert_stderr_mentions(&outcome, &["deny", ".profile"]);

    let ssh_dir = world.local_dir(".ssh");
    fs::write(
        ssh_dir.join("authorized_keys"),
        b"ssh-ed25519 AAAA attacker\n",
    )
    .expect("write");
    let outcome = world.sshd.scp([
        "-r".as_ref(),
        ssh_dir.as_os_str(),
        &world.remote(READ_WRITE, "/incoming/"),
    ]);
    assert_client_failed(&outcome);
    assert_stderr_mentions(&outcome, &["deny", ".ssh"]);
    let incoming = world.area.incoming(READ_WRITE);
    assert!(!incoming.join(".profile").exists());
    assert!(!incoming.join(".ssh/authorized_keys").exists());
    world.assert_nothing_written_outside_incoming();
}

// ---------------------------------------------------------------------------
// The ForceCommand account (no chroot, --root --write-only)

#[test]
fn forced_command_upload_lands_under_its_root() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    upload_one(&world, FORCED, "forced.txt", "/incoming/");
    upload_one(&world, FORCED, "relative.txt", "incoming/");
    upload_one(&world, FORCED, "tilde.txt", "~/incoming/");
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn forced_command_write_only_refuses_downloads() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    world.put_in_incoming(FORCED, "kept.txt", b"stays here\n");
    let local = world.local_dir("local");
    for remote in ["/incoming/kept.txt", "/incoming/*.txt", "/etc/passwd"] {
        let outcome = world.download(FORCED, &[], remote, &local);
        assert_client_failed(&outcome);
        assert_stderr_mentions(&outcome, &["downloads are not allowed for this account"]);
    }
    assert!(entries_of(&local).is_empty());
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn forced_command_interactive_login_is_refused() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    check_interactive_login_is_refused(&world, FORCED);
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn forced_command_other_programs_are_refused() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    check_other_programs_are_refused(&world, FORCED);
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn forced_command_shell_syntax_and_client_options_are_refused() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    check_shell_syntax_is_refused(&world, FORCED);
    check_client_options_are_refused(&world, FORCED);
    assert!(entries_of(&world.area.incoming(FORCED)).is_empty());
    world.assert_nothing_written_outside_incoming();
}

#[test]
fn forced_command_upload_outside_its_root_is_refused() {
    let Some(world) = DropWorld::start() else {
        return;
    };
    let source = world.local_file("escape.txt", b"should not land\n");
    // `outside` sits next to the root and belongs to the account: only the
    // confinement stands between the upload and it.
    let outside = world.area.forced_outside();
    let absolute = format!("{}/", outside.display());
    for target in [
        "../outside/",
        "/incoming/../../outside/",
        "/../outside/escape.txt",
    ] {
        let outcome = world.upload(FORCED, &[&source], target);
        assert_client_failed(&outcome);
        assert_stderr_mentions(&outcome, &["outside"]);
    }
    // An absolute path means a path beneath the root, where it does not
    // exist: the outside directory is not reached that way either.
    let outcome = world.upload(FORCED, &[&source], &absolute);
    assert_client_failed(&outcome);
    assert!(entries_of(&world.area.incoming(FORCED)).is_empty());
    world.assert_nothing_written_outside_incoming();
}

// ---------------------------------------------------------------------------
// A global internal-sftp subsystem: the caveat the docs warn about

/// sshd serves SFTP itself, in-process, and never runs the account's shell
/// or forced command's program for it... except under ForceCommand.
const INTERNAL_SFTP: SshdSetup = SshdSetup {
    subsystem: "internal-sftp",
    chroot: true,
};

/// With `Subsystem sftp internal-sftp`, sshd serves SFTP itself inside a
/// chrooted account's jail and never runs its login shell: the write-only
/// rule of scp-server is not asked. This is why the sshd example keeps the
/// external sftp-server (which runs through the shell) and the docs say so.
#[test]
fn global_internal_sftp_bypasses_a_login_shell_account() {
    let Some(world) = DropWorld::start_configured(INTERNAL_SFTP, |_, _| {}) else {
        return;
    };
    world.put_in_incoming(WRITE_ONLY, "exposed.txt", b"read over sftp\n");
    let local = world.local_dir("local");
    let remote = world.remote(WRITE_ONLY, "/incoming/exposed.txt");
    let outcome = world
        .sshd
        .scp_over_sftp([remote.as_os_str(), local.as_os_str()]);
    assert_succeeded(&outcome);
    assert_eq!(read(&local.join("exposed.txt")), b"read over sftp\n");
    world.assert_nothing_written_outside_incoming();
}

/// ForceCommand also governs subsystem requests: sshd runs the forced
/// command for them, so the ForceCommand account stays write-only even
/// with a global internal-sftp.
#[test]
fn global_internal_sftp_does_not_open_a_forced_command_account() {
    let Some(world) = DropWorld::start_configured(INTERNAL_SFTP, |_, _| {}) else {
        return;
    };
    world.put_in_incoming(FORCED, "kept.txt", b"stays here\n");
    let local = world.local_dir("local");
    let remote = world.remote(FORCED, "/incoming/kept.txt");
    let down = world
        .sshd
        .scp_over_sftp([remote.as_os_str(), local.as_os_str()]);
    assert_client_failed(&down);
    let listing = world.sshd.sftp_batch(FORCED, "ls /incoming\n");
    assert_client_failed(&listing);
    assert!(entries_of(&local).is_empty());
    world.assert_nothing_written_outside_incoming();
}

/// Where internal-sftp must stay global, permissions are what is left: an
/// `incoming/` the account may write but not list (root's, 0730 for its
/// group) and uploads it cannot read (umask 0477). SFTP then neither lists
/// nor reads them — but the account owns the files and may chmod them over
/// SFTP, the remaining hole the docs name.
#[test]
fn with_global_internal_sftp_permissions_narrow_what_sftp_reads() {
    let Some(world) = DropWorld::start_configured(INTERNAL_SFTP, |_, _| {}) else {
        return;
    };
    let source = world.local_file("drop.txt", b"dropped\n");
    assert_succeeded(&world.upload(WRITE_ONLY_GLOBAL, &[&source], "/incoming/"));
    let landed = world.area.incoming(WRITE_ONLY_GLOBAL).join("drop.txt");
    assert_eq!(mode_of(&landed), 0o200);

    let local = world.local_dir("local");
    let fetched = local.join("drop.txt");
    let listing = world.sshd.sftp_batch(WRITE_ONLY_GLOBAL, "ls /incoming\n");
    assert_client_failed(&listing);
    let get = format!("get /incoming/drop.txt {}\n", fetched.display());
    assert_client_failed(&world.sshd.sftp_batch(WRITE_ONLY_GLOBAL, &get));
    assert!(!fetched.exists());

    let chmod_then_get = format!("chmod 600 /incoming/drop.txt\n{get}");
    let outcome = world.sshd.sftp_batch(WRITE_ONLY_GLOBAL, &chmod_then_get);
    assert_succeeded(&outcome);
    assert_eq!(read(&fetched), b"dropped\n", "the hole the docs describe");
    world.assert_nothing_written_outside_incoming();
}

// ---------------------------------------------------------------------------
// A jail account without its Match block

/// The shell path exists only inside the jails. If the Match block with
/// ChrootDirectory goes missing, sshd finds no such shell on the host and
/// refuses the login, instead of running the binary unchrooted with the
/// host's `/` as the account's root (the reason docs/drop-accounts.md gives
/// for keeping the binary out of that path on the host).
#[test]
fn without_its_match_block_a_jail_account_cannot_log_in() {
    let no_chroot = SshdSetup {
        subsystem: SFTP_SERVER,
        chroot: false,
    };
    let Some(world) = DropWorld::start_configured(no_chroot, |_, _| {}) else {
        return;
    };
    assert!(
        !Path::new(LOGIN_SHELL).exists(),
        "{LOGIN_SHELL} exists on the host; this test needs it absent"
    );
    let source = world.local_file("unjailed.txt", b"nowhere\n");
    let outcome = world.upload(READ_WRITE, &[&source], "/tmp/");
    assert_client_failed(&outcome);
    // The login itself is refused, before any session.
    assert_stderr_mentions(&outcome, &["Permission denied"]);
    assert!(
        world.sshd.log().contains("does not exist"),
        "sshd should refuse the missing shell\n{}",
        world.sshd.log()
    );
    assert!(!Path::new("/tmp/unjailed.txt").exists());
    world.assert_nothing_written_outside_incoming();
}

// ---------------------------------------------------------------------------
// The shipped sshd_config example

/// `packaging/sshd_config.d/scp-drop.conf` must be something sshd accepts:
/// `sshd -t` on a configuration made of a host key and the example.
#[test]
fn packaged_sshd_example_passes_sshd_syntax_check() {
    if prerequisites().is_none() {
        return;
    }
    let example_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sshd_config.d/scp-drop.conf");
    let example = fs::read_to_string(&example_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", example_path.display()));
    let scratch = sshd::ScratchDir::new("scp-drop-example").expect("scratch dir");
    let key = scratch.path().join("host_key");
    let mut keygen = Command::new(sshd::SSH_KEYGEN);
    keygen
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key);
    assert!(run_bounded(keygen, Duration::from_secs(30)).succeeded());
    let config = scratch.path().join("sshd_config");
    let text = format!("HostKey {}\nUsePAM no\n{example}", key.display());
    fs::write(&config, text).expect("write config");
    sshd::ensure_privilege_separation_dir();

    let mut check = Command::new(sshd::SSHD);
    check.arg("-t").arg("-f").arg(&config);
    let outcome = run_bounded(check, Duration::from_secs(30));
    assert!(outcome.succeeded(), "sshd rejects the example\n{outcome}");
}
