//! Defence in depth (DESIGN.md): once the confinement root is open, the
//! process locks itself in. Path resolution beneath the root (`confine.rs`)
//! is the first wall; this module is the second, enforced by the kernel, so
//! that a bug in our own path logic still cannot reach outside the root.
//!
//! Two irreversible steps, both best effort:
//! - `no_new_privs`, so nothing this process could ever exec gains
//!   privileges (and so that an unprivileged process may use Landlock);
//! - a Landlock ruleset that handles every filesystem right the running
//!   kernel knows and grants some of them beneath the root only.
//!
//! Neither step can fail the session: a kernel without Landlock still gets a
//! working scp-server, and the returned [`SandboxReport`] says what was
//! enforced so the caller can log one line about it.

use std::fmt;
use std::os::fd::BorrowedFd;

use landlock::{
    ABI, Access as _, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, RestrictionStatus,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetError, RulesetStatus, make_bitflags,
};

/// What a session may do beneath its root: `-f` only reads, `-t` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
    /// ReadWrite, and symlinks may be created (SFTP with `allow-links`).
    ReadWriteLinks,
}

/// How much of the Landlock ruleset the running kernel enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::enum_variant_names,
    reason = "the names mirror the landlock crate's RulesetStatus and read as logged"
)]
pub enum LandlockStatus {
    /// Every requested restriction is in force.
    FullyEnforced,
    /// The kernel enforces the rights it knows; newer ones it lacks are not.
    PartiallyEnforced,
    /// Nothing is enforced by Landlock; the reason is a human phrase.
    NotEnforced(String),
}

/// One thing outside the root that the session may still reach once it
/// is confined. Each is as narrow as Landlock can make it.
#[derive(Clone, Copy, Debug)]
pub enum ExtraRule<'a> {
    /// Send datagrams to (or connect to) the Unix socket that this `O_PATH`
    /// descriptor names — the journald socket, which the audit trail
    /// (`audit.rs`) sends to by path with every event. Only Landlock ABI 9's
    /// `ResolveUnix` on that one socket: nothing can be read, written or
    /// created there. Older kernels do not restrict sending to sockets, so
    /// there the rule is not needed and is left out (best effort).
    UnixSocket(BorrowedFd<'a>),
}

impl ExtraRule<'_> {
    fn path_beneath(&self) -> PathBeneath<BorrowedFd<'_>> {
        match self {
            ExtraRule::UnixSocket(socket) => PathBeneath::new(*socket, AccessFs::ResolveUnix),
        }
    }
}

/// The outcome of [`confine_process`], for one log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxReport {
    pub landlock: LandlockStatus,
    pub no_new_privs: bool,
}

impl SandboxReport {
    /// One human line, e.g.
    /// "landlock: not enforced (kernel lacks Landlock); no_new_privs set".
    pub fn summary(&self) -> String {
        let no_new_privs = if self.no_new_privs {
            "no_new_privs set"
        } else {
            "no_new_privs NOT set"
        };
        format!("landlock: {}; {no_new_privs}", self.landlock)
    }
}

impl fmt::Display for LandlockStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LandlockStatus::FullyEnforced => f.write_str("fully enforced"),
            LandlockStatus::PartiallyEnforced => f.write_str(
                "partially enforced (the kernel lacks some newer access rights; \
                 those it knows are enforced)",
            ),
            LandlockStatus::NotEnforced(reason) => write!(f, "not enforced ({reason})"),
        }
    }
}

/// The newest Landlock ABI this module asks for. Asking for all of its
/// rights makes the ruleset handle every right the running kernel knows:
/// best effort silently drops the ones an older kernel lacks. Newer ABIs
/// only add rights we never grant, so they only take more away outside the
/// root (ABI 9's `ResolveUnix`, for instance, stops connecting to Unix
/// sockets out there — see [`confine_process`]).
const NEWEST_KNOWN_ABI: ABI = ABI::V10;

/// Restricts the calling process, irreversibly, to `root`: `no_new_privs`,
/// then Landlock allowing only `access` beneath `root`, the narrow
/// exceptions in `extra` (the journald socket), and nothing anywhere else.
/// Best effort: never fails, and reports what was enforced.
///
/// `root` is the open confinement root; an `O_PATH` descriptor is fine (it
/// is what the kernel prefers for a Landlock rule). It is only borrowed:
/// the kernel takes its own reference to the directory.
///
/// What the caller must do first, because afterwards it is impossible:
/// - Read or open everything outside the root that the session still needs:
///   user and group lookups (`/etc/passwd`, `/etc/group`, NSS), the config
///   file, `/etc/localtime` for log timestamps, a JSON log file. Descriptors
///   that are already open (stdin, stdout, a log file) keep working: Landlock
///   checks opens, not reads and writes on open descriptors.
/// - Open the journald socket `O_PATH` and pass it in `extra`: on kernels
///   with Landlock ABI 9 or newer, connecting or sending by path to a Unix
///   socket is refused unless a rule grants `ResolveUnix` on it — also
///   beneath the root (the jail's own `/run/systemd/journal/socket`), since
///   the root's rights never include it. tracing-journald sends by path
///   with every event, so an already connected socket would not help.
/// - Call this before spawning any thread: Landlock and `no_new_privs` bind
///   the calling thread and the threads and processes it creates later, not
///   threads that already exist.
///
/// After it, the process cannot exec anything (no `Execute` right anywhere),
/// which the restricted modes never do anyway. On Landlock ABI 1 kernels a
/// rename or link between two directories is refused even beneath the root
/// (`Refer` arrived with ABI 2); renames within one directory, as the sink's
/// publish step, work everywhere.
pub fn confine_process(
    root: BorrowedFd<'_>,
    access: Access,
    extra: &[ExtraRule<'_>],
) -> SandboxReport {
    // First, and on its own: it is worth having even where Landlock is
    // missing, and Landlock refuses an unprivileged process without it.
    let no_new_privs = nix::sys::prctl::set_no_new_privs().is_ok();
    let landlock = match restrict_to_root(root, access, extra) {
        Ok(status) => landlock_status(status.ruleset, status.landlock),
        Err(err) => LandlockStatus::NotEnforced(format!("setting up Landlock failed: {err}")),
    };
    SandboxReport {
        landlock,
        no_new_privs,
    }
}

/// Builds and applies the ruleset: every known right is handled (so denied
/// by default), `access`'s rights are granted beneath `root`, and each
/// extra rule grants its one right.
fn restrict_to_root(
    root: BorrowedFd<'_>,
    access: Access,
    extra: &[ExtraRule<'_>],
) -> Result<RestrictionStatus, RulesetError> {
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(handled_rights())?
        .create()?
        .add_rule(PathBeneath::new(root, granted_beneath_root(access)))?;
    for rule in extra {
        // An exception that cannot be added is left out: the session loses
        // what it was for (its log lines), never its confinement.
        let _ = (&mut ruleset).add_rule(rule.path_beneath());
    }
    ruleset.restrict_self()
}

/// Everything the ruleset takes away, everywhere, unless a rule gives it back.
fn handled_rights() -> BitFlags<AccessFs> {
    AccessFs::from_all(NEWEST_KNOWN_ABI)
}

/// What the session may still do beneath its root.
fn granted_beneath_root(access: Access) -> BitFlags<AccessFs> {
    // Reading files and listing directories is all `-f` does.
    let read = make_bitflags!(AccessFs::{ReadFile | ReadDir});
    // `-t` creates, replaces (rename over the target, O_TRUNC for in-place
    // writes), makes and removes directories and moves a temporary file
    // between directories (Refer). Symlinks, FIFOs, devices and sockets are
    // never created, nothing is executed, and device ioctls are not needed.
    let write = make_bitflags!(AccessFs::{
        WriteFile | Truncate | MakeReg | MakeDir | RemoveFile | RemoveDir | Refer
    });
    match access {
        Access::ReadOnly => read,
        Access::ReadWrite => read | write,
        Access::ReadWriteLinks => read | write | AccessFs::MakeSym,
    }
}

/// Turns the crate's verdict into ours, naming why nothing is enforced.
fn landlock_status(ruleset: RulesetStatus, kernel: landlock::LandlockStatus) -> LandlockStatus {
    match ruleset {
        RulesetStatus::FullyEnforced => LandlockStatus::FullyEnforced,
        RulesetStatus::PartiallyEnforced => LandlockStatus::PartiallyEnforced,
        RulesetStatus::NotEnforced => LandlockStatus::NotEnforced(why_not_enforced(kernel)),
    }
}

fn why_not_enforced(kernel: landlock::LandlockStatus) -> String {
    match kernel {
        landlock::LandlockStatus::NotImplemented => "kernel lacks Landlock".to_owned(),
        landlock::LandlockStatus::NotEnabled => {
            "Landlock is built into the kernel but not enabled at boot".to_owned()
        }
        landlock::LandlockStatus::Available { effective_abi, .. } => {
            format!("kernel Landlock ABI {effective_abi} supports none of the requested rights")
        }
    }
}

#[cfg(test)]
mod tests {
    //! Landlock binds the calling thread irreversibly, so every check that
    //! applies it runs in a child process: the unit-test binary itself,
    //! re-run on the one ignored test [`sandboxed_child`] with the scenario
    //! in the environment. The parent builds the scratch tree, reads the
    //! child's verdict and checks afterwards that nothing changed outside.

    use super::*;

    use std::fs;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::fs::symlink;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;

    const SCENARIO_VAR: &str = "SCP_SERVER_SANDBOX_TEST_SCENARIO";
    const SCRATCH_VAR: &str = "SCP_SERVER_SANDBOX_TEST_DIR";
    /// Printed by the child at the very end, so the parent knows the checks
    /// really ran (a filter that matched no test would also exit 0).
    const CHILD_DONE: &str = "sandbox child: every check passed";

    const INSIDE_CONTENT: &[u8] = b"inside the root\n";
    const SECRET_CONTENT: &[u8] = b"outside the root\n";

    /// TOP/root is the confinement root; TOP/outside is its sibling with a
    /// secret; symlinks inside the root point at both the secret file and
    /// the outside directory, one absolute and one relative.
    struct Scratch {
        top: PathBuf,
    }

    impl Scratch {
        fn new(label: &str) -> Scratch {
            let top = std::env::temp_dir()
                .join(format!("scp-server-sandbox-{label}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&top);
            let scratch = Scratch { top };
            fs::create_dir_all(scratch.root()).unwrap();
            fs::create_dir_all(scratch.outside()).unwrap();
            fs::write(scratch.secret(), SECRET_CONTENT).unwrap();
            fs::write(scratch.root().join("inside.txt"), INSIDE_CONTENT).unwrap();
            symlink(scratch.secret(), scratch.root().join("escape-file")).unwrap();
            symlink("../outside", scratch.root().join("escape-dir")).unwrap();
            scratch
        }

        fn from_env() -> Scratch {
            let top = std::env::var_os(SCRATCH_VAR).expect("scratch dir from the parent");
            Scratch { top: top.into() }
        }

        fn root(&self) -> PathBuf {
            self.top.join("root")
        }

        fn outside(&self) -> PathBuf {
            self.top.join("outside")
        }

        fn secret(&self) -> PathBuf {
            self.outside().join("secret.txt")
        }

        /// Names in a directory, sorted, to compare before and after.
        fn listing(dir: &Path) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            // Only the parent owns the tree; the child must leave it alone.
            if std::env::var_os(SCENARIO_VAR).is_none() {
                let _ = fs::remove_dir_all(&self.top);
            }
        }
    }

    /// The libtest name of [`sandboxed_child`], without the crate name that
    /// `module_path!` starts with.
    fn child_test_name() -> String {
        let module = module_path!();
        let within_crate = module.split_once("::").map_or(module, |(_, rest)| rest);
        format!("{within_crate}::sandboxed_child")
    }

    /// Re-runs this test binary on the child entry point alone.
    fn run_child(scenario: &str, scratch: &Scratch) -> Output {
        let name = child_test_name();
        Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(SCENARIO_VAR, scenario)
            .env(SCRATCH_VAR, &scratch.top)
            .output()
            .unwrap()
    }

    fn assert_child_passed(output: &Output) {
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains(CHILD_DONE),
            "sandboxed child failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            output.status
        );
    }

    /// The child's side: does nothing in an ordinary test run, runs one
    /// scenario when started by [`run_child`].
    #[test]
    #[ignore = "entry point of the sandboxed child process; run by the other tests"]
    fn sandboxed_child() {
        let scenario = std::env::var(SCENARIO_VAR).expect("scenario from the parent");
        let scratch = Scratch::from_env();
        match scenario.as_str() {
            "read-write" => read_write_checks(&scratch),
            "read-only" => read_only_checks(&scratch),
            "unix-socket" => unix_socket_checks(&scratch),
            other => panic!("unknown sandbox scenario {other:?}"),
        }
        println!("{CHILD_DONE}");
    }

    /// Opens the root as the sessions do (O_PATH) and confines the process.
    fn confine_to(root: &Path, access: Access) -> SandboxReport {
        confine_with(root, access, &[])
    }

    fn confine_with(root: &Path, access: Access, extra: &[ExtraRule<'_>]) -> SandboxReport {
        let root_fd: OwnedFd = open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let report = confine_process(root_fd.as_fd(), access, extra);
        println!("{}", report.summary());
        assert!(
            !matches!(report.landlock, LandlockStatus::NotEnforced(_)),
            "this kernel has Landlock, yet: {}",
            report.summary()
        );
        assert!(report.no_new_privs, "{}", report.summary());
        // Asked of the kernel, not of our own report: /proc is outside the
        // root now, so the prctl is the way to look.
        assert!(nix::sys::prctl::get_no_new_privs().unwrap());
        report
    }

    /// Landlock answers a forbidden open, create, rename or unlink with
    /// EACCES; anything else would mean a different wall stopped it.
    #[track_caller]
    fn assert_denied<T: fmt::Debug>(what: &str, result: std::io::Result<T>) {
        match result {
            Err(err) if err.raw_os_error() == Some(libc::EACCES) => {}
            other => panic!("{what}: expected EACCES from Landlock, got {other:?}"),
        }
    }

    #[track_caller]
    fn assert_denied_nix<T: fmt::Debug>(what: &str, result: nix::Result<T>) {
        assert_denied(what, result.map_err(std::io::Error::from));
    }

    fn hostname_readable_before() -> bool {
        fs::read(Path::new("/etc/hostname")).is_ok()
    }

    /// The checks that are the same for both kinds of access: nothing
    /// outside the root can be read, directly or through a symlink.
    fn outside_is_unreadable(scratch: &Scratch, hostname_was_readable: bool) {
        let root = scratch.root();
        assert_denied("read outside file", fs::read(scratch.secret()));
        assert_denied("list outside dir", fs::read_dir(scratch.outside()));
        if hostname_was_readable {
            assert_denied("read /etc/hostname", fs::read("/etc/hostname"));
        }
        assert_denied(
            "read through absolute symlink",
            fs::read(root.join("escape-file")),
        );
        assert_denied(
            "read through relative dir symlink",
            fs::read(root.join("escape-dir/secret.txt")),
        );
    }

    fn read_write_checks(scratch: &Scratch) {
        let root = scratch.root();
        let hostname_was_readable = hostname_readable_before();
        confine_to(&root, Access::ReadWrite);

        // Everything the sink does beneath the root still works.
        let new_file = root.join("new.txt");
        fs::write(&new_file, b"first").unwrap();
        fs::write(&new_file, b"second, longer, truncated over").unwrap();
        assert_eq!(
            fs::read(&new_file).unwrap(),
            b"second, longer, truncated over"
        );
        fs::create_dir(root.join("sub")).unwrap();
        fs::rename(&new_file, root.join("sub/moved.txt")).unwrap();
        fs::rename(root.join("sub/moved.txt"), root.join("sub/renamed.txt")).unwrap();
        assert!(Scratch::listing(&root).contains(&"sub".to_owned()));
        fs::remove_file(root.join("sub/renamed.txt")).unwrap();
        fs::remove_dir(root.join("sub")).unwrap();

        // Nothing outside can be created, written or moved into.
        assert_denied(
            "create in sibling dir",
            fs::write(scratch.outside().join("new.txt"), b"x"),
        );
        assert_denied(
            "write outside file",
            fs::OpenOptions::new().write(true).open(scratch.secret()),
        );
        assert_denied(
            "move a file out of the root",
            fs::rename(root.join("inside.txt"), scratch.outside().join("moved.txt")),
        );
        assert_denied(
            "write through absolute symlink",
            fs::OpenOptions::new()
                .write(true)
                .open(root.join("escape-file")),
        );
        assert_denied(
            "create through relative dir symlink",
            fs::write(root.join("escape-dir/planted.txt"), b"x"),
        );
        outside_is_unreadable(scratch, hostname_was_readable);

        // Not even beneath the root: special files and execution.
        assert_denied(
            "create a symlink",
            symlink("inside.txt", root.join("new-link")),
        );
        assert_denied_nix(
            "create a FIFO",
            nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o600)),
        );
        let copied_true = root.join("true");
        if copied_true.exists() {
            assert_denied("exec inside the root", Command::new(&copied_true).status());
        }
    }

    fn read_only_checks(scratch: &Scratch) {
        let root = scratch.root();
        let hostname_was_readable = hostname_readable_before();
        confine_to(&root, Access::ReadOnly);

        // What the source does still works.
        assert_eq!(fs::read(root.join("inside.txt")).unwrap(), INSIDE_CONTENT);
        assert!(Scratch::listing(&root).contains(&"inside.txt".to_owned()));

        // Nothing beneath the root can be changed.
        assert_denied("create inside", fs::write(root.join("new.txt"), b"x"));
        assert_denied(
            "open inside file for writing",
            fs::OpenOptions::new()
                .write(true)
                .open(root.join("inside.txt")),
        );
        assert_denied_nix(
            "truncate inside file",
            nix::unistd::truncate(&root.join("inside.txt"), 0),
        );
        assert_denied("mkdir inside", fs::create_dir(root.join("sub")));
        assert_denied(
            "rename inside",
            fs::rename(root.join("inside.txt"), root.join("renamed.txt")),
        );
        assert_denied("unlink inside", fs::remove_file(root.join("inside.txt")));
        outside_is_unreadable(scratch, hostname_was_readable);
    }

    /// Whether the running kernel can restrict sending to Unix sockets by
    /// path (Landlock ABI 9, `ResolveUnix`): asked of the kernel by
    /// demanding that one right and nothing else.
    fn kernel_restricts_unix_sockets() -> bool {
        Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::ResolveUnix)
            .and_then(|ruleset| ruleset.create())
            .is_ok()
    }

    /// The journald exception: a socket outside the root named by an extra
    /// rule can still be sent to; any other socket out there only where the
    /// kernel is too old to restrict it (ABI < 9).
    fn unix_socket_checks(scratch: &Scratch) {
        use std::os::unix::net::UnixDatagram;
        let granted_path = scratch.outside().join("granted.sock");
        let other_path = scratch.outside().join("other.sock");
        let granted = UnixDatagram::bind(&granted_path).unwrap();
        let other = UnixDatagram::bind(&other_path).unwrap();
        let granted_fd: OwnedFd = open(
            &granted_path,
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let restricts = kernel_restricts_unix_sockets();
        let sender = UnixDatagram::unbound().unwrap();

        confine_with(
            &scratch.root(),
            Access::ReadWrite,
            &[ExtraRule::UnixSocket(granted_fd.as_fd())],
        );

        sender.send_to(b"MESSAGE=granted\n", &granted_path).unwrap();
        let mut buf = [0u8; 64];
        let n = granted.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MESSAGE=granted\n");
        let unlisted = sender.send_to(b"MESSAGE=other\n", &other_path);
        if restricts {
            assert_denied("send to a socket without a rule", unlisted);
        } else {
            unlisted.unwrap();
            assert!(other.recv(&mut buf).is_ok());
            println!("kernel Landlock ABI < 9: sockets outside are not restricted");
        }
        // Nothing but sending was granted there.
        assert_denied(
            "read the granted socket's directory",
            fs::read_dir(scratch.outside()),
        );
    }

    /// What the parent checks once the child is done: the outside is as it
    /// was, and so is the root except for what `expected_root` lists.
    fn assert_tree_after(scratch: &Scratch, expected_root: &[&str]) {
        assert_eq!(Scratch::listing(&scratch.outside()), ["secret.txt"]);
        assert_eq!(fs::read(scratch.secret()).unwrap(), SECRET_CONTENT);
        assert_eq!(Scratch::listing(&scratch.root()), expected_root);
        assert_eq!(
            fs::read(scratch.root().join("inside.txt")).unwrap(),
            INSIDE_CONTENT
        );
    }

    /// Copies an executable into the root, but only where it can really run
    /// from there (a noexec /tmp would make the child's exec check vacuous).
    fn plant_runnable_true(scratch: &Scratch) -> bool {
        let planted = scratch.root().join("true");
        let runs = fs::copy("/bin/true", &planted).is_ok()
            && Command::new(&planted).status().is_ok_and(|s| s.success());
        if !runs {
            let _ = fs::remove_file(&planted);
        }
        runs
    }

    #[test]
    fn read_write_confinement_allows_the_root_and_nothing_else() {
        let scratch = Scratch::new("rw");
        let planted_true = plant_runnable_true(&scratch);
        assert_child_passed(&run_child("read-write", &scratch));

        let mut expected = vec!["escape-dir", "escape-file", "inside.txt"];
        if planted_true {
            expected.push("true");
        }
        assert_tree_after(&scratch, &expected);
        // The parent was never confined: the sandbox stays in the child.
        fs::write(scratch.outside().join("parent.txt"), b"free").unwrap();
    }

    #[test]
    fn read_only_confinement_allows_reading_the_root_only() {
        let scratch = Scratch::new("ro");
        assert_child_passed(&run_child("read-only", &scratch));
        assert_tree_after(&scratch, &["escape-dir", "escape-file", "inside.txt"]);
    }

    #[test]
    fn an_extra_rule_reaches_one_socket_outside_the_root() {
        let scratch = Scratch::new("sock");
        assert_child_passed(&run_child("unix-socket", &scratch));
    }

    #[test]
    fn read_only_grants_a_subset_of_read_write() {
        let read_only = granted_beneath_root(Access::ReadOnly);
        let read_write = granted_beneath_root(Access::ReadWrite);
        assert!(read_write.contains(read_only));
        assert_eq!(read_only, AccessFs::ReadFile | AccessFs::ReadDir);
    }

    #[test]
    fn granted_rights_are_all_handled() {
        // A granted right the ruleset does not handle would be refused by
        // the crate; this keeps the two lists consistent.
        for access in [Access::ReadOnly, Access::ReadWrite] {
            assert!(handled_rights().contains(granted_beneath_root(access)));
        }
    }

    #[test]
    fn read_write_never_grants_special_files_or_execution() {
        let read_write = granted_beneath_root(Access::ReadWrite);
        let never = make_bitflags!(AccessFs::{
            Execute | MakeSym | MakeFifo | MakeChar | MakeBlock | MakeSock | IoctlDev
                | ResolveUnix
        });
        assert!(!read_write.intersects(never), "{read_write:?}");
    }

    #[test]
    fn missing_landlock_is_named_in_the_summary() {
        let report = SandboxReport {
            landlock: landlock_status(
                RulesetStatus::NotEnforced,
                landlock::LandlockStatus::NotImplemented,
            ),
            no_new_privs: true,
        };
        assert_eq!(
            report.summary(),
            "landlock: not enforced (kernel lacks Landlock); no_new_privs set"
        );
    }

    #[test]
    fn disabled_landlock_and_missing_no_new_privs_are_named() {
        let report = SandboxReport {
            landlock: landlock_status(
                RulesetStatus::NotEnforced,
                landlock::LandlockStatus::NotEnabled,
            ),
            no_new_privs: false,
        };
        assert_eq!(
            report.summary(),
            "landlock: not enforced (Landlock is built into the kernel but not enabled at \
             boot); no_new_privs NOT set"
        );
    }

    #[test]
    fn enforced_statuses_map_through() {
        let kernel = landlock::LandlockStatus::Available {
            effective_abi: ABI::V7,
            kernel_abi: None,
        };
        assert_eq!(
            landlock_status(RulesetStatus::FullyEnforced, kernel),
            LandlockStatus::FullyEnforced
        );
        assert_eq!(
            landlock_status(RulesetStatus::PartiallyEnforced, kernel),
            LandlockStatus::PartiallyEnforced
        );
        let full = SandboxReport {
            landlock: LandlockStatus::FullyEnforced,
            no_new_privs: true,
        };
        assert_eq!(full.summary(), "landlock: fully enforced; no_new_privs set");
    }

    #[test]
    fn unknown_child_scenario_is_not_a_silent_pass() {
        // Guards the harness itself: a child that does not run its checks
        // must not look like one that passed them.
        let scratch = Scratch::new("bogus");
        let output = run_child("no-such-scenario", &scratch);
        assert!(!output.status.success());
        assert!(!String::from_utf8_lossy(&output.stdout).contains(CHILD_DONE));
    }
}
