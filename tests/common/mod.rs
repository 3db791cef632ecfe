//! Pipe-level harness shared by the conformance and differential tests.
//!
//! A test describes one [`Case`]: the argv after the program name, the bytes
//! fed to stdin, the working directory, the umask, the user, and a setup
//! function that builds the starting tree. The harness runs the case in a
//! fresh [`Sandbox`] against OpenSSH's own server side (`/usr/bin/scp -t/-f`)
//! and/or our `scp-server`, and hands back an [`Observed`] result: the exact
//! stdout bytes, stderr, the exit status and a [`Tree`] snapshot of the whole
//! sandbox afterwards.
//!
//! Both servers run with the same relative paths (target `dst`, sources under
//! `src/`), so every path that appears in a protocol message is identical and
//! stdout can be compared byte for byte.
//!
//! The tests must run as root: permission cases only mean something for an
//! unprivileged user (root bypasses every permission check), so the harness
//! switches the child to `nobody` by default and builds the sandbox as that
//! user's property.
//!
//! Set `SCP_CONFORMANCE_OPENSSH_ONLY=1` to check the PROTOCOL.md §g table
//! against OpenSSH alone (the runs of our binary are then skipped).

// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// OpenSSH's scp; its server side is selected by the hidden `-t` / `-f`.
pub const OPENSSH_SCP: &str = "/usr/bin/scp";

/// Account used for every unprivileged run (Debian's `nobody:nogroup`).
pub const NOBODY: (u32, u32) = (65534, 65534);

/// A run that takes longer than this is a hang, which is a failure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Our server names its temporary upload files (§h.1) with this prefix.
pub const TEMP_FILE_PREFIX: &[u8] = b".scp-server-";

/// Environment switch: validate the §g table against OpenSSH only.
const OPENSSH_ONLY_VAR: &str = "SCP_CONFORMANCE_OPENSSH_ONLY";

/// Which server-side implementation runs a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    OpenSsh,
    Ours,
    /// Ours uploading new files through named temporary files, the path a
    /// kernel takes that cannot link an unnamed file (`--named-temp-files`).
    OursNamedTemp,
}

impl Server {
    pub fn program(self) -> &'static str {
        match self {
            Server::OpenSsh => OPENSSH_SCP,
            Server::Ours | Server::OursNamedTemp => env!("CARGO_BIN_EXE_scp-server"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Server::OpenSsh => "OpenSSH",
            Server::Ours => "ours",
            Server::OursNamedTemp => "ours, named temporary files",
        }
    }
}

/// Whether the runs of our binary are wanted (see the module docs).
pub fn ours_enabled() -> bool {
    std::env::var_os(OPENSSH_ONLY_VAR).is_none()
}

/// The account a case runs as. PROTOCOL.md §g runs unprivileged unless a
/// case says "root".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    Root,
    Nobody,
}

impl User {
    pub fn ids(self) -> (u32, u32) {
        match self {
            User::Root => (0, 0),
            User::Nobody => NOBODY,
        }
    }
}

fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the conformance tests must run as root: they build sandboxes owned by \
         nobody and switch to that user, because root bypasses the permission \
         checks several cases are about"
    );
}

// ---------------------------------------------------------------------------
// Sandbox
// ---------------------------------------------------------------------------

static NEXT_SANDBOX: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, holding `dst/`, `src/` and
/// `outside/`, everything owned by the user the case runs as. Removed on drop.
///
/// All setup helpers take paths relative to the sandbox root and give the
/// new entry to the owner before applying the mode (chown clears setuid bits,
/// so the order matters).
pub struct Sandbox {
    root: PathBuf,
    owner: User,
}

impl Sandbox {
    pub fn new(owner: User) -> Sandbox {
        require_root();
        let id = NEXT_SANDBOX.fetch_add(1, Ordering::SeqCst);
        let root =
            std::env::temp_dir().join(format!("scp-conformance-{}-{id}", std::process::id()));
        remove_tree(&root);
        fs::create_dir(&root).expect("create sandbox root");
        let sandbox = Sandbox { root, owner };
        sandbox.give_to_owner(&sandbox.root);
        sandbox.set_mode(&sandbox.root, 0o755);
        sandbox
            .dir("dst", 0o755)
            .dir("src", 0o755)
            .dir("outside", 0o755);
        sandbox
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn owner(&self) -> User {
        self.owner
    }

    /// Absolute path of `rel` inside the sandbox.
    pub fn path(&self, rel: impl AsRef<OsStr>) -> PathBuf {
        self.root.join(Path::new(rel.as_ref()))
    }

    /// A regular file with exactly these bytes and this mode.
    pub fn file(&self, rel: impl AsRef<OsStr>, content: &[u8], mode: u32) -> &Self {
        let path = self.path(rel);
        fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.give_to_owner(&path);
        self.set_mode(&path, mode);
        self
    }

    pub fn dir(&self, rel: impl AsRef<OsStr>, mode: u32) -> &Self {
        let path = self.path(rel);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        self.give_to_owner(&path);
        self.set_mode(&path, mode);
        self
    }

    /// A symlink at `rel` whose content is `target` (not resolved here).
    pub fn symlink(&self, rel: impl AsRef<OsStr>, target: impl AsRef<OsStr>) -> &Self {
        let path = self.path(rel);
        symlink(Path::new(target.as_ref()), &path)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", path.display()));
        self.give_to_owner(&path);
        self
    }

    /// A second name `rel` for the existing file `existing`.
    pub fn hard_link(&self, rel: impl AsRef<OsStr>, existing: impl AsRef<OsStr>) -> &Self {
        let path = self.path(rel);
        fs::hard_link(self.path(existing), &path)
            .unwrap_or_else(|e| panic!("link {}: {e}", path.display()));
        self
    }

    pub fn fifo(&self, rel: impl AsRef<OsStr>, mode: u32) -> &Self {
        let path = self.path(rel);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(mode))
            .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
        self.give_to_owner(&path);
        self.set_mode(&path, mode);
        self
    }

    /// A character device with the numbers of `/dev/null` (1, 3), for cases
    /// that must show a device is never opened or written.
    pub fn null_device(&self, rel: impl AsRef<OsStr>, mode: u32) -> &Self {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        let path = self.path(rel);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(mode),
            makedev(1, 3),
        )
        .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
        self.give_to_owner(&path);
        self.set_mode(&path, mode);
        self
    }

    /// A Unix socket left behind by a listener that has gone away.
    pub fn socket(&self, rel: impl AsRef<OsStr>) -> &Self {
        let path = self.path(rel);
        drop(
            std::os::unix::net::UnixListener::bind(&path)
                .unwrap_or_else(|e| panic!("bind {}: {e}", path.display())),
        );
        self.give_to_owner(&path);
        self
    }

    /// Sets modification and access time (seconds since the epoch, may be
    /// negative) of a file or directory.
    pub fn times(&self, rel: impl AsRef<OsStr>, mtime: i64, atime: i64) -> &Self {
        let path = self.path(rel);
        let times = fs::FileTimes::new()
            .set_modified(system_time(mtime))
            .set_accessed(system_time(atime));
        let handle =
            fs::File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        handle
            .set_times(times)
            .unwrap_or_else(|e| panic!("set times {}: {e}", path.display()));
        self
    }

    /// Changes the owner of an existing entry, keeping its permission bits.
    pub fn owned_by(&self, rel: impl AsRef<OsStr>, user: User) -> &Self {
        let path = self.path(rel);
        let mode = fs::symlink_metadata(&path)
            .expect("stat before chown")
            .mode()
            & 0o7777;
        let (uid, gid) = user.ids();
        lchown(&path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        if !fs::symlink_metadata(&path)
            .expect("stat after chown")
            .file_type()
            .is_symlink()
        {
            self.set_mode(&path, mode);
        }
        self
    }

    pub fn chmod(&self, rel: impl AsRef<OsStr>, mode: u32) -> &Self {
        self.set_mode(&self.path(rel), mode);
        self
    }

    /// Content of a file in the sandbox (for checks beyond the snapshot).
    pub fn read(&self, rel: impl AsRef<OsStr>) -> Vec<u8> {
        let path = self.path(rel);
        fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    pub fn snapshot(&self) -> Tree {
        Tree::of(&self.root)
    }

    fn give_to_owner(&self, path: &Path) {
        let (uid, gid) = self.owner.ids();
        lchown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }

    fn set_mode(&self, path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        remove_tree(&self.root);
    }
}

/// `rm -rf`, because the standard library's recursive removal keeps one
/// descriptor per level and some cases nest directories ~1800 deep.
fn remove_tree(path: &Path) {
    if fs::symlink_metadata(path).is_ok() {
        let _ = Command::new("rm").arg("-rf").arg("--").arg(path).status();
    }
}

fn system_time(secs: i64) -> SystemTime {
    let offset = Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    }
}

// ---------------------------------------------------------------------------
// Running a program
// ---------------------------------------------------------------------------

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed by the harness after the timeout: the program hung.
    TimedOut,
}

/// Everything one run produced.
#[derive(Debug)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Exit,
    pub elapsed: Duration,
}

/// One execution: program, argv, stdin and the process environment.
pub struct Invocation<'a> {
    pub program: &'a OsStr,
    pub args: &'a [OsString],
    pub cwd: &'a Path,
    pub umask: u32,
    pub user: User,
    pub stdin: &'a [u8],
    pub timeout: Duration,
    /// Give the child a stdout pipe whose reading end is already closed
    /// (the peer went away): its first write fails with EPIPE / SIGPIPE.
    pub stdout_closed: bool,
}

impl Invocation<'_> {
    /// Runs the program to completion (or until the timeout kills it).
    ///
    /// The umask is set by a tiny `sh` trampoline that then `exec`s the
    /// program, so the process whose exit status we see is the program
    /// itself and no `unsafe` pre-exec hook is needed.
    pub fn run(&self) -> Outcome {
        let mut command = self.command();
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.program));
        let feeder = feed_stdin(&mut child, self.stdin.to_vec());
        let stdout = child.stdout.take().map(collect_in_background);
        let stderr = collect_in_background(child.stderr.take().expect("stderr is piped"));
        let exit = wait_with_timeout(&mut child, self.timeout);
        let elapsed = started.elapsed();
        let _ = feeder.join();
        Outcome {
            stdout: stdout
                .map(|reader| reader.join().expect("stdout reader"))
                .unwrap_or_default(),
            stderr: stderr.join().expect("stderr reader"),
            exit,
            elapsed,
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"umask "$1" && shift && exec "$@""#)
            .arg("sh")
            .arg(format!("{:04o}", self.umask))
            .arg(self.program)
            .args(self.args)
            .current_dir(self.cwd)
            // A clean environment: no SSH_ORIGINAL_COMMAND (which would put
            // our server in restricted mode) and untranslated strerror texts.
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped());
        if self.stdout_closed {
            let (reader, writer) = std::io::pipe().expect("pipe");
            drop(reader);
            command.stdout(Stdio::from(writer));
        } else {
            command.stdout(Stdio::piped());
        }
        if self.user != User::Root {
            let (uid, gid) = self.user.ids();
            // std drops the supplementary groups when root switches uid.
            command.uid(uid).gid(gid);
        }
        command
    }
}

/// Writes all of stdin and closes it; a child that exits early makes the
/// write fail with EPIPE, which is expected and ignored.
fn feed_stdin(child: &mut Child, bytes: Vec<u8>) -> JoinHandle<()> {
    let mut stdin = child.stdin.take().expect("stdin is piped");
    thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    })
}

fn collect_in_background(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Exit {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return match (status.code(), status.signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(signal)) => Exit::Signal(signal),
                (None, None) => unreachable!("a finished child has a code or a signal"),
            };
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Exit::TimedOut;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// Tree snapshots
// ---------------------------------------------------------------------------

/// File type as far as the tests care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Other,
}

/// A timestamp in a snapshot. Times set by the program under test "now"
/// differ between the OpenSSH run and ours, so anything within the last hour
/// is recorded as `Recent`; explicit times (T records, setup) stay exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    Recent,
    At(i64),
}

impl Stamp {
    fn from_secs(secs: i64) -> Stamp {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs() as i64;
        if (now - secs).abs() < 3600 {
            Stamp::Recent
        } else {
            Stamp::At(secs)
        }
    }
}

/// One entry of a snapshot.
#[derive(Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Whole content of regular files; empty for everything else.
    pub content: Vec<u8>,
    pub mtime: Stamp,
    pub atime: Stamp,
    /// Target of a symlink.
    pub link: Option<Vec<u8>>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} {:04o} {}:{} mtime {:?} atime {:?}",
            self.kind, self.mode, self.uid, self.gid, self.mtime, self.atime
        )?;
        if self.kind == Kind::File {
            write!(f, " {} bytes {}", self.content.len(), show(&self.content))?;
        }
        if let Some(link) = &self.link {
            write!(f, " -> {}", show(link))?;
        }
        Ok(())
    }
}

/// Everything under a directory, keyed by the relative path's bytes.
/// Symlinks are recorded, never followed; FIFOs are never opened.
#[derive(Clone, PartialEq, Eq)]
pub struct Tree(pub BTreeMap<Vec<u8>, Node>);

impl Tree {
    pub fn of(root: &Path) -> Tree {
        let mut nodes = BTreeMap::new();
        let mut pending = vec![PathBuf::new()];
        while let Some(rel) = pending.pop() {
            let dir = root.join(&rel);
            let entries =
                fs::read_dir(&dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
            for entry in entries {
                let entry = entry.expect("directory entry");
                let child = rel.join(entry.file_name());
                let node = Node::of(&root.join(&child));
                if node.kind == Kind::Dir {
                    pending.push(child.clone());
                }
                nodes.insert(child.as_os_str().as_bytes().to_vec(), node);
            }
        }
        Tree(nodes)
    }

    pub fn get(&self, rel: impl AsRef<[u8]>) -> Option<&Node> {
        self.0.get(rel.as_ref())
    }

    /// The entries that are neither `rel` itself nor beneath it: what lies
    /// outside a confinement root.
    pub fn outside_of(&self, rel: impl AsRef<[u8]>) -> Tree {
        let rel = rel.as_ref();
        let inside = |path: &[u8]| {
            path == rel || (path.starts_with(rel) && path.get(rel.len()) == Some(&b'/'))
        };
        Tree(
            self.0
                .iter()
                .filter(|(path, _)| !inside(path))
                .map(|(path, node)| (path.clone(), node.clone()))
                .collect(),
        )
    }

    /// Names of leftover temporary upload files anywhere in the tree.
    pub fn temp_files(&self) -> Vec<String> {
        self.0
            .keys()
            .filter(|path| {
                let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
                name.starts_with(TEMP_FILE_PREFIX)
            })
            .map(|path| show(path))
            .collect()
    }

    /// Human-readable list of the entries that differ between two trees.
    pub fn differences(&self, other: &Tree, self_label: &str, other_label: &str) -> String {
        let mut report = String::new();
        let keys: std::collections::BTreeSet<&Vec<u8>> =
            self.0.keys().chain(other.0.keys()).collect();
        for key in keys {
            let (left, right) = (self.0.get(key), other.0.get(key));
            if left != right {
                let _ = writeln!(
                    report,
                    "  {}:\n    {self_label}: {left:?}\n    {other_label}: {right:?}",
                    show(key)
                );
            }
        }
        report
    }
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (path, node) in &self.0 {
            writeln!(f, "  {}: {node:?}", show(path))?;
        }
        Ok(())
    }
}

impl Node {
    /// Reads the metadata before the content: reading can move the atime.
    fn of(path: &Path) -> Node {
        let meta =
            fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
        let file_type = meta.file_type();
        let kind = if file_type.is_file() {
            Kind::File
        } else if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_symlink() {
            Kind::Symlink
        } else if std::os::unix::fs::FileTypeExt::is_fifo(&file_type) {
            Kind::Fifo
        } else {
            Kind::Other
        };
        let content = if kind == Kind::File {
            fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        } else {
            Vec::new()
        };
        let link = (kind == Kind::Symlink).then(|| {
            let target = fs::read_link(path).expect("readlink");
            target.as_os_str().as_bytes().to_vec()
        });
        Node {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            content,
            mtime: Stamp::from_secs(meta.mtime()),
            atime: Stamp::from_secs(meta.atime()),
            link,
        }
    }
}

// ---------------------------------------------------------------------------
// Cases and observations
// ---------------------------------------------------------------------------

type Setup = Rc<dyn Fn(&Sandbox)>;

/// One protocol scenario, runnable against either server.
#[derive(Clone)]
pub struct Case {
    args: Vec<OsString>,
    stdin: Vec<u8>,
    cwd: PathBuf,
    umask: u32,
    user: User,
    timeout: Duration,
    stdout_closed: bool,
    setup: Option<Setup>,
    /// Admin options placed before the scp flags (`--no-overwrite`, …).
    admin: Vec<OsString>,
    /// A sandbox directory passed (as an absolute path) with `--root`.
    root: Option<PathBuf>,
    /// Snapshot the sandbox before the run too ([`Observed::before`]).
    watch: bool,
}

impl Case {
    /// A case with these arguments (after the program name), run as nobody
    /// with umask 022 in the sandbox root, empty stdin.
    pub fn new<S: AsRef<OsStr>>(args: &[S]) -> Case {
        Case {
            args: args.iter().map(|arg| arg.as_ref().to_os_string()).collect(),
            stdin: Vec::new(),
            cwd: PathBuf::new(),
            umask: 0o022,
            user: User::Nobody,
            timeout: DEFAULT_TIMEOUT,
            stdout_closed: false,
            setup: None,
            admin: Vec::new(),
            root: None,
            watch: false,
        }
    }

    /// Adds admin options; all of them stand before the scp flags, after
    /// `--root` (see [`Case::root`]), in the order given.
    pub fn admin<S: AsRef<OsStr>>(mut self, words: &[S]) -> Case {
        self.admin
            .extend(words.iter().map(|word| word.as_ref().to_os_string()));
        self
    }

    /// Confines the run to the sandbox directory `rel`: `--root` with its
    /// absolute path comes first. The sandbox is then also snapshotted
    /// before the run ([`Observed::before`]), so that a test can show that
    /// nothing outside the root changed.
    pub fn root(mut self, rel: &str) -> Case {
        self.root = Some(PathBuf::from(rel));
        self.watch()
    }

    /// Snapshots the sandbox before the run as well, so that a test can show
    /// what did not change (implied by [`Case::root`]).
    pub fn watch(mut self) -> Case {
        self.watch = true;
        self
    }

    /// `--root ABS` (if any), the admin options, then the scp arguments.
    fn argv(&self, sandbox: &Sandbox) -> Vec<OsString> {
        let mut argv = Vec::new();
        if let Some(root) = &self.root {
            argv.push(OsString::from("--root"));
            argv.push(sandbox.path(root).into_os_string());
        }
        argv.extend(self.admin.iter().cloned());
        argv.extend(self.args.iter().cloned());
        argv
    }

    pub fn stdin(mut self, bytes: impl AsRef<[u8]>) -> Case {
        self.stdin = bytes.as_ref().to_vec();
        self
    }

    /// Working directory relative to the sandbox root.
    pub fn cwd(mut self, rel: &str) -> Case {
        self.cwd = PathBuf::from(rel);
        self
    }

    pub fn umask(mut self, umask: u32) -> Case {
        self.umask = umask;
        self
    }

    /// Runs as this user (and builds the sandbox as that user's).
    pub fn run_as(mut self, user: User) -> Case {
        self.user = user;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Case {
        self.timeout = timeout;
        self
    }

    /// The peer has closed its reading side before the program starts.
    pub fn stdout_closed(mut self) -> Case {
        self.stdout_closed = true;
        self
    }

    /// Builds the starting tree of each fresh sandbox.
    pub fn setup(mut self, setup: impl Fn(&Sandbox) + 'static) -> Case {
        self.setup = Some(Rc::new(setup));
        self
    }

    /// Runs the case in a fresh sandbox and snapshots the result.
    pub fn run(&self, server: Server) -> Observed {
        let sandbox = Sandbox::new(self.user);
        if let Some(setup) = &self.setup {
            setup(&sandbox);
        }
        let cwd = sandbox.path(&self.cwd);
        let program = OsString::from(server.program());
        let before = self.watch.then(|| sandbox.snapshot());
        let mut args = self.argv(&sandbox);
        if server == Server::OursNamedTemp {
            args.insert(0, OsString::from("--named-temp-files"));
        }
        let outcome = Invocation {
            program: &program,
            args: &args,
            cwd: &cwd,
            umask: self.umask,
            user: self.user,
            stdin: &self.stdin,
            timeout: self.timeout,
            stdout_closed: self.stdout_closed,
        }
        .run();
        let tree = sandbox.snapshot();
        Observed {
            server,
            outcome,
            tree,
            before,
            sandbox,
        }
    }

    /// Runs our binary, unless only OpenSSH is being validated.
    pub fn run_ours(&self) -> Option<Observed> {
        ours_enabled().then(|| self.run(Server::Ours))
    }

    /// Runs the case against OpenSSH and ours, in identical sandboxes; a
    /// sink case runs ours a second time with named temporary files, and
    /// every check applies to both of our runs.
    pub fn differential(&self) -> Differential {
        let named_temp = ours_enabled() && self.is_sink();
        Differential {
            openssh: self.run(Server::OpenSsh),
            ours: self.run_ours(),
            ours_named_temp: named_temp.then(|| self.run(Server::OursNamedTemp)),
        }
    }

    /// Whether the scp flags include `-t` (alone or clustered).
    fn is_sink(&self) -> bool {
        self.args.iter().map(|a| a.as_bytes()).any(|word| {
            word.len() > 1 && word[0] == b'-' && word[1] != b'-' && word.contains(&b't')
        })
    }
}

/// The result of one run, with assertions that name the server on failure.
pub struct Observed {
    pub server: Server,
    pub outcome: Outcome,
    pub tree: Tree,
    /// The sandbox just before the run, for watched cases ([`Case::watch`]).
    pub before: Option<Tree>,
    /// Kept alive so that a test can look at more than the snapshot.
    pub sandbox: Sandbox,
}

impl Observed {
    fn label(&self) -> &'static str {
        self.server.label()
    }

    fn context(&self) -> String {
        format!(
            "[{}] exit {:?}, stdout {}, stderr {}\ntree:\n{:?}",
            self.label(),
            self.outcome.exit,
            show(&self.outcome.stdout),
            show(&self.outcome.stderr),
            self.tree
        )
    }

    /// The exact bytes written to stdout.
    pub fn stdout(&self, expected: impl AsRef<[u8]>) -> &Self {
        let expected = expected.as_ref();
        let actual = &self.outcome.stdout;
        assert!(
            actual == expected,
            "[{}] stdout differs at byte {}\n  expected {}\n  actual   {}\n{}",
            self.label(),
            first_difference(expected, actual),
            show(expected),
            show(actual),
            self.context()
        );
        self
    }

    /// Stdout equals one of several acceptable byte strings (for outputs in
    /// directory-listing order, which the filesystem chooses).
    pub fn stdout_one_of(&self, choices: &[Vec<u8>]) -> &Self {
        assert!(
            choices.contains(&self.outcome.stdout),
            "[{}] stdout is none of\n{}\n  actual {}\n{}",
            self.label(),
            choices
                .iter()
                .map(|c| format!("  {}\n", show(c)))
                .collect::<String>(),
            show(&self.outcome.stdout),
            self.context()
        );
        self
    }

    pub fn stdout_starts_with(&self, prefix: impl AsRef<[u8]>) -> &Self {
        let prefix = prefix.as_ref();
        assert!(
            self.outcome.stdout.starts_with(prefix),
            "[{}] stdout does not start with {}\n{}",
            self.label(),
            show(prefix),
            self.context()
        );
        self
    }

    pub fn exit(&self, code: i32) -> &Self {
        self.exit_is(Exit::Code(code))
    }

    pub fn exit_is(&self, expected: Exit) -> &Self {
        assert!(
            self.outcome.exit == expected,
            "[{}] expected exit {expected:?}, got {:?}\n{}",
            self.label(),
            self.outcome.exit,
            self.context()
        );
        self
    }

    pub fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            contains(&self.outcome.stderr, needle.as_bytes()),
            "[{}] stderr does not contain {needle:?}\n{}",
            self.label(),
            self.context()
        );
        self
    }

    pub fn stderr_not_empty(&self) -> &Self {
        assert!(
            !self.outcome.stderr.is_empty(),
            "[{}] stderr is empty\n{}",
            self.label(),
            self.context()
        );
        self
    }

    pub fn stderr_empty(&self) -> &Self {
        assert!(
            self.outcome.stderr.is_empty(),
            "[{}] stderr is not empty\n{}",
            self.label(),
            self.context()
        );
        self
    }

    /// The snapshot entry at `rel`, which must exist.
    pub fn node(&self, rel: impl AsRef<[u8]>) -> &Node {
        let rel = rel.as_ref();
        self.tree.get(rel).unwrap_or_else(|| {
            panic!(
                "[{}] {} is missing\n{}",
                self.label(),
                show(rel),
                self.context()
            )
        })
    }

    /// A regular file with exactly this content and mode.
    pub fn file(&self, rel: impl AsRef<[u8]>, content: impl AsRef<[u8]>, mode: u32) -> &Self {
        let rel = rel.as_ref();
        let node = self.node(rel);
        let wanted = Node {
            kind: Kind::File,
            mode,
            content: content.as_ref().to_vec(),
            ..node.clone()
        };
        assert!(
            *node == wanted,
            "[{}] {}:\n  expected {wanted:?}\n  actual   {node:?}",
            self.label(),
            show(rel)
        );
        self
    }

    /// A regular file with this content, whatever its mode.
    pub fn content(&self, rel: impl AsRef<[u8]>, content: impl AsRef<[u8]>) -> &Self {
        let node = self.node(rel.as_ref());
        let mode = node.mode;
        self.file(rel, content, mode)
    }

    pub fn dir(&self, rel: impl AsRef<[u8]>, mode: u32) -> &Self {
        let rel = rel.as_ref();
        let node = self.node(rel);
        assert!(
            node.kind == Kind::Dir && node.mode == mode,
            "[{}] {}: expected a directory {mode:04o}, got {node:?}",
            self.label(),
            show(rel)
        );
        self
    }

    pub fn mode(&self, rel: impl AsRef<[u8]>, mode: u32) -> &Self {
        let rel = rel.as_ref();
        let node = self.node(rel);
        assert!(
            node.mode == mode,
            "[{}] {}: expected mode {mode:04o}, got {node:?}",
            self.label(),
            show(rel)
        );
        self
    }

    pub fn mtime(&self, rel: impl AsRef<[u8]>, expected: Stamp) -> &Self {
        let rel = rel.as_ref();
        let node = self.node(rel);
        assert!(
            node.mtime == expected,
            "[{}] {}: expected mtime {expected:?}, got {node:?}",
            self.label(),
            show(rel)
        );
        self
    }

    pub fn atime(&self, rel: impl AsRef<[u8]>, expected: Stamp) -> &Self {
        let rel = rel.as_ref();
        let node = self.node(rel);
        assert!(
            node.atime == expected,
            "[{}] {}: expected atime {expected:?}, got {node:?}",
            self.label(),
            show(rel)
        );
        self
    }

    pub fn absent(&self, rel: impl AsRef<[u8]>) -> &Self {
        let rel = rel.as_ref();
        assert!(
            self.tree.get(rel).is_none(),
            "[{}] {} should not exist\n{}",
            self.label(),
            show(rel),
            self.context()
        );
        self
    }

    /// No `.scp-server-*.tmp` file anywhere in the sandbox.
    pub fn no_temp_files(&self) -> &Self {
        let leftovers = self.tree.temp_files();
        assert!(
            leftovers.is_empty(),
            "[{}] temporary files left behind: {leftovers:?}",
            self.label()
        );
        self
    }

    /// Nothing changed outside the sandbox directory `root`: no entry
    /// appeared, vanished or differs (type, mode, owner, content, symlink
    /// target). Needs a watched case ([`Case::root`], [`Case::watch`]).
    pub fn unchanged_outside(&self, root: &str) -> &Self {
        let before = self.before_run().outside_of(root);
        let after = self.tree.outside_of(root);
        assert!(
            before == after,
            "[{}] something changed outside {root}:\n{}\n{}",
            self.label(),
            before.differences(&after, "before", "after"),
            self.context()
        );
        self
    }

    /// Nothing changed anywhere in the sandbox, inside the root or out.
    pub fn unchanged(&self) -> &Self {
        let before = self.before_run();
        assert!(
            *before == self.tree,
            "[{}] the sandbox changed:\n{}\n{}",
            self.label(),
            before.differences(&self.tree, "before", "after"),
            self.context()
        );
        self
    }

    fn before_run(&self) -> &Tree {
        self.before
            .as_ref()
            .expect("no snapshot before the run: use Case::root or Case::watch")
    }

    /// The tree equals another run's tree.
    pub fn same_tree_as(&self, other: &Observed) -> &Self {
        assert!(
            self.tree == other.tree,
            "trees differ:\n{}",
            self.tree
                .differences(&other.tree, self.label(), other.label())
        );
        self
    }
}

/// One case run against both servers.
pub struct Differential {
    pub openssh: Observed,
    /// `None` when only OpenSSH is being validated.
    pub ours: Option<Observed>,
    /// Sink cases: ours again with `--named-temp-files`.
    pub ours_named_temp: Option<Observed>,
}

impl Differential {
    fn each(&self, check: impl Fn(&Observed)) -> &Self {
        check(&self.openssh);
        self.each_of_ours(check)
    }

    fn each_of_ours(&self, check: impl Fn(&Observed)) -> &Self {
        for ours in self.ours.iter().chain(&self.ours_named_temp) {
            check(ours);
        }
        self
    }

    /// Both servers wrote exactly these bytes (OpenSSH is checked first, so
    /// a failure naming OpenSSH means the §g table itself is wrong).
    pub fn stdout(&self, expected: impl AsRef<[u8]>) -> &Self {
        self.each(|run| {
            run.stdout(expected.as_ref());
        })
    }

    pub fn exit(&self, code: i32) -> &Self {
        self.each(|run| {
            run.exit(code);
        })
    }

    /// Both resulting sandboxes are identical (types, modes, owners,
    /// contents, explicit times, symlink targets).
    pub fn same_trees(&self) -> &Self {
        self.each_of_ours(|ours| {
            self.openssh.same_tree_as(ours);
        })
    }

    /// Stdout, exit status and trees all agree, and where OpenSSH kept
    /// stderr silent ours did too (stderr reaches the user's terminal,
    /// CVE-2019-6110); the usual ending of a differential test after its §g
    /// expectations.
    pub fn agree(&self) -> &Self {
        self.each_of_ours(|ours| {
            ours.stdout(&self.openssh.outcome.stdout)
                .exit_is(self.openssh.outcome.exit);
            if self.openssh.outcome.stderr.is_empty() {
                ours.stderr_empty();
            }
        });
        self.same_trees()
    }

    /// Further checks on both trees.
    pub fn both(&self, check: impl Fn(&Observed)) -> &Self {
        self.each(check)
    }
}

// ---------------------------------------------------------------------------
// Byte helpers
// ---------------------------------------------------------------------------

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

pub fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Python-style rendering of bytes, the notation PROTOCOL.md uses, with long
/// runs of one byte folded (`b'n'*2039`) so that failures stay readable.
pub fn show(bytes: &[u8]) -> String {
    const FOLD_RUNS_FROM: usize = 12;
    let mut parts: Vec<String> = Vec::new();
    let mut literal = String::new();
    let mut rest = bytes;
    while let Some(&first) = rest.first() {
        let run = rest.iter().take_while(|&&b| b == first).count();
        if run >= FOLD_RUNS_FROM {
            if !literal.is_empty() {
                parts.push(format!("b'{}'", std::mem::take(&mut literal)));
            }
            parts.push(format!("b'{}'*{run}", escape_byte(first)));
            rest = &rest[run..];
        } else {
            literal.push_str(&escape_byte(first));
            rest = &rest[1..];
        }
    }
    if !literal.is_empty() || parts.is_empty() {
        parts.push(format!("b'{literal}'"));
    }
    parts.join(" + ")
}

fn escape_byte(byte: u8) -> String {
    match byte {
        b'\n' => "\\n".into(),
        b'\r' => "\\r".into(),
        b'\t' => "\\t".into(),
        b'\\' => "\\\\".into(),
        b'\'' => "\\'".into(),
        0x20..=0x7e => (byte as char).to_string(),
        _ => format!("\\x{byte:02x}"),
    }
}

/// `n` copies of one byte, for long names and payloads.
pub fn repeat(byte: u8, n: usize) -> Vec<u8> {
    vec![byte; n]
}

/// Concatenates byte pieces: `cat(&[b"C0644 1 ", &name, b"\n"])`.
pub fn cat(pieces: &[&[u8]]) -> Vec<u8> {
    pieces.concat()
}
