//! The real-client SCP matrix (issue 12): the same upload and download
//! cases with every SCP client a user may point at the server — OpenSSH
//! `scp -O`, PuTTY `pscp -scp`, curl `scp://` (libssh2), paramiko + `scp`,
//! asyncssh and ansible-pylibssh (libssh) — through a private sshd on
//! 127.0.0.1 whose `scp` is this binary, and the same cells against
//! OpenSSH's own `scp` as the server-side program, the reference.
//!
//! What each client cannot do is declared in one table
//! (`tests/clients/mod.rs`, `LIMITS`); those cells are listed as not
//! supported in the summary, not hidden. Every supported cell must pass
//! against ours, and every cell that passes against OpenSSH must pass
//! against ours. The summary (cells passed per client, ours and OpenSSH)
//! is printed on stderr at the end:
//!
//!     cargo test --test scp_clients -- --nocapture
//!
//! A client that is not installed is a skip with its reason, and under
//! `CI` a failure (scripts/test.sh installs them all).

mod clients;
mod sshd;

use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use clients::{CLIENTS, Client, Direction, Transfer};
use sshd::{Account, PrivateSshd, running_in_ci, scp_client, unavailable};

const OUR_SERVER: &str = env!("CARGO_BIN_EXE_scp-server");

/// The mtime every `-p` case gives its sources.
const STAMP: i64 = 1_000_000_000;
const BIG: usize = 64 * 1024 * 1024;

/// The cases, each run as an upload and as a download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    File,
    IntoDirectory,
    SeveralFiles,
    OverwriteLarger,
    PreserveModeAndTime,
    Tree,
    TreePreserve,
    Big,
    Spaces,
    Utf8,
    NoPermission,
    Missing,
    DirectoryWithoutR,
}

const CASES: [Case; 13] = [
    Case::File,
    Case::IntoDirectory,
    Case::SeveralFiles,
    Case::OverwriteLarger,
    Case::PreserveModeAndTime,
    Case::Tree,
    Case::TreePreserve,
    Case::Big,
    Case::Spaces,
    Case::Utf8,
    Case::NoPermission,
    Case::Missing,
    Case::DirectoryWithoutR,
];

const DIRECTIONS: [Direction; 2] = [Direction::Upload, Direction::Download];

/// What happened to one cell.
#[derive(Clone, Debug)]
enum Cell {
    Passed,
    Failed(String),
    /// The client cannot do this (its declared limit).
    NotSupported(&'static str),
}

/// Why a client cannot run a case, from its declared limits.
fn unsupported(client: Client, case: Case, direction: Direction) -> Option<&'static str> {
    let limits = client.limits();
    match case {
        Case::Tree | Case::TreePreserve if !limits.recursive => Some("no -r"),
        Case::PreserveModeAndTime | Case::TreePreserve if !limits.preserve => Some("no -p"),
        Case::SeveralFiles if !limits.several => Some("one file per transfer"),
        Case::SeveralFiles
            if direction == Direction::Download && !limits.several_remote_sources =>
        {
            Some("one remote source per download")
        }
        Case::IntoDirectory if !limits.into_directory => Some("the target names the file"),
        // Copying a directory without -r is refused by the client itself
        // before it talks to the server for uploads; a client without -r
        // still shows what the server says for a download.
        _ => None,
    }
}

/// The servers of the matrix: ours and OpenSSH's scp.
struct Server {
    label: &'static str,
    sshd: PrivateSshd,
    /// Logs in permission checks apply to.
    unprivileged: Account,
    /// The 64 MiB source, made once per server.
    big: OnceLock<PathBuf>,
}

/// A cell's directories: `local/` on the client side, `remote/` on the
/// server side (the same machine), `home/` the client's HOME.
struct Sandbox {
    local: PathBuf,
    remote: PathBuf,
    home: PathBuf,
}

impl Sandbox {
    fn new(server: &Server, name: &str) -> Sandbox {
        let base = server.sshd.work_dir().join(name);
        let sandbox = Sandbox {
            local: base.join("local"),
            remote: base.join("remote"),
            home: base.join("home"),
        };
        for dir in [&sandbox.local, &sandbox.remote, &sandbox.home] {
            fs::create_dir_all(dir).expect("create cell directory");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        sandbox
    }

    /// Where sources are made: the sending side.
    fn sending_side(&self, direction: Direction) -> &Path {
        match direction {
            Direction::Upload => &self.local,
            Direction::Download => &self.remote,
        }
    }

    /// Where files arrive.
    fn receiving_side(&self, direction: Direction) -> &Path {
        match direction {
            Direction::Upload => &self.remote,
            Direction::Download => &self.local,
        }
    }
}

fn write(path: &Path, content: &[u8], mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("mkdir -p");
    }
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn set_mtime(path: &Path, secs: i64) {
    let time = UNIX_EPOCH + Duration::from_secs(secs as u64);
    File::open(path)
        .and_then(|f| f.set_times(fs::FileTimes::new().set_modified(time).set_accessed(time)))
        .unwrap_or_else(|e| panic!("set times of {}: {e}", path.display()));
}

/// Content that differs at every offset, so that a shifted or repeated
/// block cannot pass.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

/// Failures of one cell's checks, collected into one message.
#[derive(Default)]
struct Checks(String);

impl Checks {
    fn file(&mut self, path: &Path, content: &[u8]) {
        match fs::read(path) {
            Ok(found) if found == content => {}
            Ok(found) => {
                let _ = writeln!(
                    self.0,
                    "{}: {} bytes, expected {}{}",
                    path.display(),
                    found.len(),
                    content.len(),
                    if found.len() == content.len() {
                        " (content differs)"
                    } else {
                        ""
                    }
                );
            }
            Err(e) => {
                let _ = writeln!(self.0, "{}: {e}", path.display());
            }
        }
    }

    fn dir(&mut self, path: &Path) {
        if !path.is_dir() {
            let _ = writeln!(self.0, "{}: not a directory", path.display());
        }
    }

    fn absent(&mut self, path: &Path) {
        if path.symlink_metadata().is_ok() {
            let _ = writeln!(self.0, "{}: exists, should not", path.display());
        }
    }

    fn mode(&mut self, path: &Path, mode: u32) {
        match fs::metadata(path) {
            Ok(m) if m.mode() & 0o7777 == mode => {}
            Ok(m) => {
                let _ = writeln!(
                    self.0,
                    "{}: mode {:04o}, expected {mode:04o}",
                    path.display(),
                    m.mode() & 0o7777
                );
            }
            Err(e) => {
                let _ = writeln!(self.0, "{}: {e}", path.display());
            }
        }
    }

    fn mtime(&mut self, path: &Path, secs: i64) {
        match fs::metadata(path) {
            Ok(m) if m.mtime() == secs => {}
            Ok(m) => {
                let _ = writeln!(
                    self.0,
                    "{}: mtime {}, expected {secs}",
                    path.display(),
                    m.mtime()
                );
            }
            Err(e) => {
                let _ = writeln!(self.0, "{}: {e}", path.display());
            }
        }
    }

    fn result(self, outcome: &sshd::Outcome) -> Cell {
        if self.0.is_empty() {
            Cell::Passed
        } else {
            Cell::Failed(format!("{}{outcome}", self.0))
        }
    }
}

/// The tree of the `-r` cases: files with content and of zero bytes, a
/// subdirectory, an empty directory.
fn make_tree(root: &Path, preserve: bool) {
    write(&root.join("a.txt"), b"alpha\n", 0o640);
    write(&root.join("zero"), b"", 0o600);
    write(&root.join("sub/b.txt"), &pattern(100_000, 7), 0o644);
    fs::create_dir_all(root.join("empty")).expect("mkdir");
    if preserve {
        fs::set_permissions(root.join("sub"), fs::Permissions::from_mode(0o750)).unwrap();
        fs::set_permissions(root.join("empty"), fs::Permissions::from_mode(0o700)).unwrap();
        for rel in ["a.txt", "zero", "sub/b.txt", "sub", "empty", ""] {
            set_mtime(&root.join(rel), STAMP);
        }
    }
}

fn check_tree(checks: &mut Checks, root: &Path, preserve: bool, directory_attributes: bool) {
    checks.dir(root);
    checks.file(&root.join("a.txt"), b"alpha\n");
    checks.file(&root.join("zero"), b"");
    checks.file(&root.join("sub/b.txt"), &pattern(100_000, 7));
    checks.dir(&root.join("empty"));
    if preserve {
        checks.mode(&root.join("a.txt"), 0o640);
        checks.mode(&root.join("zero"), 0o600);
        for rel in ["a.txt", "zero", "sub/b.txt"] {
            checks.mtime(&root.join(rel), STAMP);
        }
        if directory_attributes {
            checks.mode(&root.join("sub"), 0o750);
            checks.mode(&root.join("empty"), 0o700);
            for rel in ["sub", "empty", ""] {
                checks.mtime(&root.join(rel), STAMP);
            }
        }
    }
}

fn run_cell(server: &Server, client: Client, case: Case, direction: Direction) -> Cell {
    if let Some(why) = unsupported(client, case, direction) {
        return Cell::NotSupported(why);
    }
    let name = format!("{client:?}-{case:?}-{direction:?}");
    let sandbox = Sandbox::new(server, &name);
    let from = sandbox.sending_side(direction).to_path_buf();
    let to = sandbox.receiving_side(direction).to_path_buf();
    let limits = client.limits();
    let mut user = server.sshd.login().name.clone();
    let mut recursive = false;
    let mut preserve = false;
    let mut expect_failure = false;
    let mut checks = Checks::default();
    let (sources, target): (Vec<PathBuf>, PathBuf) = match case {
        Case::File => {
            write(&from.join("a.txt"), b"hello, world\n", 0o644);
            (vec![from.join("a.txt")], to.join("b.txt"))
        }
        Case::IntoDirectory => {
            write(&from.join("a.txt"), b"into a directory\n", 0o644);
            (vec![from.join("a.txt")], to.clone())
        }
        Case::SeveralFiles => {
            write(&from.join("one"), b"first\n", 0o644);
            write(&from.join("two"), &pattern(40_000, 2), 0o644);
            (vec![from.join("one"), from.join("two")], to.clone())
        }
        Case::OverwriteLarger => {
            write(&from.join("f"), b"short\n", 0o644);
            write(&to.join("f"), &pattern(200_000, 3), 0o644);
            (vec![from.join("f")], to.join("f"))
        }
        Case::PreserveModeAndTime => {
            preserve = true;
            write(&from.join("p.txt"), b"preserved\n", 0o640);
            set_mtime(&from.join("p.txt"), STAMP);
            (vec![from.join("p.txt")], to.join("p.txt"))
        }
        Case::Tree | Case::TreePreserve => {
            recursive = true;
            preserve = case == Case::TreePreserve;
            make_tree(&from.join("tree"), preserve);
            (vec![from.join("tree")], to.clone())
        }
        Case::Big => {
            let big = server.big_source();
            let source = from.join("big.bin");
            fs::hard_link(big, &source).expect("link the big source");
            (vec![source], to.join("big.bin"))
        }
        Case::Spaces => {
            write(&from.join("name with  spaces.txt"), b"spaces\n", 0o644);
            (
                vec![from.join("name with  spaces.txt")],
                to.join("target with spaces.txt"),
            )
        }
        Case::Utf8 => {
            write(&from.join("grüße-日本.txt"), b"utf-8\n", 0o644);
            (vec![from.join("grüße-日本.txt")], to.join("ñandú-ß.txt"))
        }
        Case::NoPermission => {
            user = server.unprivileged.name.clone();
            expect_failure = true;
            match direction {
                // The remote directory is root's, 0755.
                Direction::Upload => {
                    write(&from.join("x.txt"), b"not allowed\n", 0o644);
                    (vec![from.join("x.txt")], to.join("x.txt"))
                }
                // The remote file is root's, 0600.
                Direction::Download => {
                    write(&from.join("secret.txt"), b"secret\n", 0o600);
                    (vec![from.join("secret.txt")], to.join("secret.txt"))
                }
            }
        }
        Case::Missing => {
            expect_failure = true;
            match direction {
                Direction::Upload => {
                    write(&from.join("m.txt"), b"missing target\n", 0o644);
                    (vec![from.join("m.txt")], to.join("no/such/dir/m.txt"))
                }
                Direction::Download => (vec![from.join("nope.txt")], to.join("nope.txt")),
            }
        }
        Case::DirectoryWithoutR => {
            expect_failure = true;
            write(&from.join("d/inside.txt"), b"inside\n", 0o644);
            (vec![from.join("d")], to.clone())
        }
    };
    let transfer = Transfer {
        direction,
        user: &user,
        sources,
        target: target.clone(),
        recursive,
        preserve,
        home: &sandbox.home,
    };
    let outcome = clients::run(client, &server.sshd, &transfer);
    if outcome.timed_out {
        return Cell::Failed(format!("timed out\n{outcome}"));
    }
    if expect_failure == outcome.succeeded() {
        let wanted = if expect_failure {
            "a failure"
        } else {
            "success"
        };
        return Cell::Failed(format!("expected {wanted}\n{outcome}"));
    }
    match case {
        Case::File => checks.file(&target, b"hello, world\n"),
        Case::IntoDirectory => checks.file(&to.join("a.txt"), b"into a directory\n"),
        Case::SeveralFiles => {
            checks.file(&to.join("one"), b"first\n");
            checks.file(&to.join("two"), &pattern(40_000, 2));
        }
        Case::OverwriteLarger => checks.file(&target, b"short\n"),
        Case::PreserveModeAndTime => {
            checks.file(&target, b"preserved\n");
            checks.mode(&target, 0o640);
            checks.mtime(&target, STAMP);
        }
        Case::Tree | Case::TreePreserve => check_tree(
            &mut checks,
            &to.join("tree"),
            preserve,
            limits.directory_attributes,
        ),
        Case::Big => checks.file(&target, &fs::read(server.big_source()).expect("read big")),
        Case::Spaces => checks.file(&target, b"spaces\n"),
        Case::Utf8 => checks.file(&target, b"utf-8\n"),
        Case::NoPermission | Case::Missing => checks.absent(&target),
        Case::DirectoryWithoutR => checks.absent(&to.join("d")),
    }
    checks.result(&outcome)
}

impl Server {
    fn start(label: &'static str, program: &Path) -> Option<Server> {
        let sshd = PrivateSshd::start(program)?;
        let unprivileged = sshd.unprivileged_login()?;
        Some(Server {
            label,
            sshd,
            unprivileged,
            big: OnceLock::new(),
        })
    }

    fn big_source(&self) -> &Path {
        self.big.get_or_init(|| {
            let path = self.sshd.work_dir().join("big-source.bin");
            write(&path, &pattern(BIG, 64), 0o644);
            path
        })
    }
}

/// Every cell of one client against one server (in order).
fn run_client(server: &Server, client: Client) -> Vec<(Case, Direction, Cell)> {
    let mut cells = Vec::new();
    for case in CASES {
        for direction in DIRECTIONS {
            cells.push((case, direction, run_cell(server, client, case, direction)));
        }
    }
    cells
}

type Results = Vec<(Client, Vec<(Case, Direction, Cell)>)>;

/// All available clients against one server, one thread per client.
fn run_matrix(server: &Server, clients: &[Client]) -> Results {
    thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .map(|&client| (client, scope.spawn(move || run_client(server, client))))
            .collect();
        handles
            .into_iter()
            .map(|(client, handle)| (client, handle.join().expect("matrix thread")))
            .collect()
    })
}

fn passed(cells: &[(Case, Direction, Cell)]) -> usize {
    cells
        .iter()
        .filter(|(_, _, c)| matches!(c, Cell::Passed))
        .count()
}

fn supported(cells: &[(Case, Direction, Cell)]) -> usize {
    cells
        .iter()
        .filter(|(_, _, c)| !matches!(c, Cell::NotSupported(_)))
        .count()
}

fn summary(ours: &Results, openssh: &Results, skipped: &[(Client, String)]) -> String {
    let mut out = String::from("\nSCP client matrix (cells passed / cells the client supports)\n");
    let _ = writeln!(
        out,
        "{:<18} {:<9} {:>9} {:>9}  declared limits",
        "client", "library", "ours", "OpenSSH"
    );
    for (client, cells) in ours {
        let reference = openssh
            .iter()
            .find(|(c, _)| c == client)
            .map(|(_, cells)| format!("{}/{}", passed(cells), supported(cells)))
            .unwrap_or_else(|| "-".into());
        let limits = client.limits();
        let _ = writeln!(
            out,
            "{:<18} {:<9} {:>9} {:>9}  {}",
            limits.name,
            limits.library,
            format!("{}/{}", passed(cells), supported(cells)),
            reference,
            limits.note
        );
    }
    for (client, cells) in ours {
        let not_supported: Vec<String> = cells
            .iter()
            .filter_map(|(case, direction, cell)| match cell {
                Cell::NotSupported(why) => Some(format!("{case:?} {direction:?} ({why})")),
                _ => None,
            })
            .collect();
        if !not_supported.is_empty() {
            let _ = writeln!(
                out,
                "{} does not support: {}",
                client.limits().name,
                not_supported.join(", ")
            );
        }
    }
    for (client, why) in skipped {
        let _ = writeln!(out, "{:<18} skipped: {why}", client.limits().name);
    }
    out
}

/// Cells that passed against OpenSSH but not against ours, and supported
/// cells that failed against ours.
fn failures(ours: &Results, openssh: &Results) -> Vec<String> {
    let mut failed = Vec::new();
    for (client, cells) in ours {
        let reference = openssh.iter().find(|(c, _)| c == client).map(|(_, r)| r);
        for (i, (case, direction, cell)) in cells.iter().enumerate() {
            let Cell::Failed(why) = cell else { continue };
            let openssh_passed = reference.is_some_and(|r| matches!(r[i].2, Cell::Passed));
            failed.push(format!(
                "{} {case:?} {direction:?} (OpenSSH's scp as the server: {}):\n{why}",
                client.limits().name,
                if openssh_passed {
                    "passed"
                } else {
                    "failed too"
                }
            ));
        }
    }
    failed
}

#[test]
fn every_client_against_ours_and_against_openssh() {
    let mut available = Vec::new();
    let mut skipped = Vec::new();
    for client in CLIENTS {
        match client.missing() {
            None => available.push(client),
            Some(why) if running_in_ci() => {
                panic!(
                    "{}: {why} (CI is set: every client must be installed)",
                    client.limits().name
                )
            }
            Some(why) => {
                eprintln!("SKIPPED {}: {why}", client.limits().name);
                skipped.push((client, why));
            }
        }
    }
    if available.is_empty() {
        return unavailable::<()>("no SCP client is installed").unwrap_or(());
    }
    let Some(ours) = Server::start("ours", Path::new(OUR_SERVER)) else {
        return;
    };
    let Some(openssh) = Server::start("OpenSSH", Path::new(&scp_client())) else {
        return;
    };
    let (our_results, openssh_results) = thread::scope(|scope| {
        let reference = scope.spawn(|| run_matrix(&openssh, &available));
        let mine = run_matrix(&ours, &available);
        (mine, reference.join().expect("reference matrix"))
    });
    eprintln!("{}", summary(&our_results, &openssh_results, &skipped));
    let _ = (ours.label, openssh.label);
    let failed = failures(&our_results, &openssh_results);
    assert!(
        failed.is_empty(),
        "{} cell(s) failed against scp-server:\n\n{}",
        failed.len(),
        failed.join("\n\n")
    );
}
