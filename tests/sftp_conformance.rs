//! SFTP differential tests (issue 13): the same request scripts through
//! OpenSSH 9.2's `sftp-server` and our `scp-server --sftp`, each in a fresh
//! tree of the same layout, run as `nobody` so that permissions are real.
//! A script's transcript — every reply's type, status code and message,
//! handles' presence, data, names with their attributes and long names,
//! attributes — and the tree it leaves must be the same for both.
//!
//! Paths in replies are shown relative to the tree (`<root>`), and times
//! the servers set "now" are `recent` (as tests/common's snapshots do), so
//! that two runs a second apart compare equal. Where we differ on purpose
//! (README, "SFTP: deliberate differences from OpenSSH 9.2"), the test pins
//! OpenSSH's transcript and ours separately.

mod common;
mod sftp_support;

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Sandbox, Stamp, Tree, User, show};
use sftp_support::{Attrs, Launch, NameEntry, Reply, Server, Session, pflags, put_string};

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

/// A session that writes down, normalized, every reply it gets.
struct Recorder {
    session: Session,
    root: Vec<u8>,
    transcript: String,
}

/// One request through the recorder: `step!(r, open("a", ...))` sends it,
/// records the reply under the request's own text and returns the reply.
macro_rules! step {
    ($r:expr, $name:ident ( $($arg:expr),* $(,)? )) => {{
        let reply = $r.session.$name($($arg),*);
        $r.record(concat!(stringify!($name), "(", stringify!($($arg),*), ")"), &reply);
        reply
    }};
}

impl Recorder {
    fn record(&mut self, request: &str, reply: &Reply) {
        let shown = self.normalize(reply);
        let _ = writeln!(self.transcript, "{request} -> {shown}");
    }

    fn note(&mut self, line: &str) {
        let _ = writeln!(self.transcript, "{line}");
    }

    fn normalize(&self, reply: &Reply) -> String {
        match reply {
            Reply::Status { code, message } => {
                format!("STATUS {} {:?}", sftp_support::status_name(*code), message)
            }
            Reply::Handle(handle) => format!("HANDLE ({} bytes)", handle.len()),
            Reply::Data(data) => format!("DATA {}", show(data)),
            Reply::Name(entries) => {
                let mut shown: Vec<String> = entries.iter().map(|e| self.entry(e)).collect();
                // READDIR order is the directory's; two trees need not agree.
                shown.sort();
                format!("NAME [{}]", shown.join(", "))
            }
            Reply::Attrs(attrs) => format!("ATTRS {}", attrs_text(attrs)),
            Reply::ExtendedReply(body) => format!("EXTENDED_REPLY {}", show(body)),
        }
    }

    fn entry(&self, entry: &NameEntry) -> String {
        let name = self.relative(&entry.name);
        // A long name shows the mtime to the minute: only an old one is
        // the same in both runs.
        let longname = if entry.attrs.mtime.is_some_and(is_recent) {
            "(long name of a recent entry)".to_string()
        } else {
            self.relative(&entry.longname)
        };
        format!("{name} {longname:?} {}", attrs_text(&entry.attrs))
    }

    /// `bytes` with the tree's absolute path written `<root>`.
    fn relative(&self, bytes: &[u8]) -> String {
        let mut out = Vec::with_capacity(bytes.len());
        let mut rest = bytes;
        while !rest.is_empty() {
            if rest.starts_with(&self.root) {
                out.extend_from_slice(b"<root>");
                rest = &rest[self.root.len()..];
            } else {
                out.push(rest[0]);
                rest = &rest[1..];
            }
        }
        show(&out)
    }

    /// A handle from an OPEN or OPENDIR reply, or one no server gave (so
    /// that the script goes on, and the transcripts show the difference).
    fn handle(reply: &Reply) -> Vec<u8> {
        match reply {
            Reply::Handle(handle) => handle.clone(),
            _ => b"\xff\xff\xff\xf0".to_vec(),
        }
    }
}

fn is_recent(secs: u32) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    now.abs_diff(u64::from(secs)) < 3600
}

fn attrs_text(attrs: &Attrs) -> String {
    let mut out = String::new();
    if let Some(size) = attrs.size {
        let _ = write!(out, "size={size} ");
    }
    if let (Some(uid), Some(gid)) = (attrs.uid, attrs.gid) {
        let _ = write!(out, "owner={uid}:{gid} ");
    }
    if let Some(perms) = attrs.permissions {
        let _ = write!(out, "perms={perms:o} ");
    }
    for (label, time) in [("atime", attrs.atime), ("mtime", attrs.mtime)] {
        match time {
            Some(t) if is_recent(t) => {
                let _ = write!(out, "{label}=recent ");
            }
            Some(t) => {
                let _ = write!(out, "{label}={t} ");
            }
            None => {}
        }
    }
    format!("{{{}}}", out.trim_end())
}

/// What one server did with a script.
struct Run {
    transcript: String,
    tree: Tree,
    exit: Option<i32>,
    stderr: String,
}

/// A script: the tree's set-up, then the requests.
struct Script {
    setup: fn(&Sandbox),
    steps: Box<dyn Fn(&mut Recorder)>,
    args: Vec<String>,
    /// Directories in which the script replaces an existing file.
    replaced_in: Vec<&'static str>,
}

impl Script {
    fn new(setup: fn(&Sandbox), steps: impl Fn(&mut Recorder) + 'static) -> Script {
        Script {
            setup,
            steps: Box::new(steps),
            args: Vec::new(),
            replaced_in: Vec::new(),
        }
    }

    /// The script writes over existing files in these directories. Our
    /// upload is a new file renamed over the old one (README, "SFTP:
    /// deliberate differences"), which changes the directory's mtime;
    /// OpenSSH writes in place and leaves it. Ours must show the change
    /// (so that the pin fails if the behaviour does); nothing else in
    /// the tree is excused.
    fn replaces_in(mut self, dirs: &[&'static str]) -> Script {
        self.replaced_in = dirs.to_vec();
        self
    }

    fn excuse_replacements(&self, openssh: &Run, ours: &mut Run) {
        for dir in &self.replaced_in {
            let theirs = openssh.tree.get(dir).map(|node| node.mtime);
            let node = ours.tree.0.get_mut(dir.as_bytes());
            let node = node.unwrap_or_else(|| panic!("{dir} is gone from our tree"));
            assert_eq!(
                node.mtime,
                Stamp::Recent,
                "{dir}: a replacement inside should have changed its mtime"
            );
            if let Some(mtime) = theirs {
                node.mtime = mtime;
            }
        }
    }

    /// Server options both programs take (sftp-server's own, which ours
    /// accepts after `--sftp`).
    fn args(mut self, args: &[&str]) -> Script {
        self.args = args.iter().map(|a| a.to_string()).collect();
        self
    }

    fn run(&self, server: Server) -> Run {
        let sandbox = Sandbox::new(User::Nobody);
        (self.setup)(&sandbox);
        let (uid, gid) = User::Nobody.ids();
        let session = Launch::new(server)
            .args(&self.args)
            .user(uid, gid)
            .cwd(sandbox.root())
            .env("HOME", sandbox.root())
            .timeout(Duration::from_secs(30))
            .start();
        let root = sandbox.root().as_os_str().as_encoded_bytes().to_vec();
        let mut recorder = Recorder {
            session,
            root,
            transcript: String::new(),
        };
        (self.steps)(&mut recorder);
        let Recorder {
            session,
            transcript,
            ..
        } = recorder;
        let finished = session.finish();
        assert!(!finished.timed_out, "{}: the server hung", server.label());
        Run {
            transcript,
            tree: sandbox.snapshot(),
            exit: finished.code(),
            stderr: finished.stderr_text(),
        }
    }

    /// Both servers; None when OpenSSH's is missing outside CI.
    fn both(&self) -> Option<(Run, Run)> {
        if !Server::OpenSsh.available() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{} is missing: install openssh-sftp-server",
                Server::OpenSsh.program()
            );
            eprintln!("skipped: {} missing", Server::OpenSsh.program());
            return None;
        }
        Some((self.run(Server::OpenSsh), self.run(Server::Ours)))
    }

    /// Same transcript, same tree, same exit status.
    fn agree(&self) {
        let Some((openssh, mut ours)) = self.both() else {
            return;
        };
        self.excuse_replacements(&openssh, &mut ours);
        assert_same(&openssh, &ours);
    }

    /// The servers differ on purpose: each transcript contains its own
    /// expected lines (and otherwise they agree, line for line).
    fn differ(&self, openssh_lines: &[&str], our_lines: &[&str]) {
        let Some((openssh, ours)) = self.both() else {
            return;
        };
        for line in openssh_lines {
            assert!(
                openssh.transcript.lines().any(|l| l == *line),
                "OpenSSH's transcript lacks {line:?}:\n{}",
                openssh.transcript
            );
        }
        for line in our_lines {
            assert!(
                ours.transcript.lines().any(|l| l == *line),
                "our transcript lacks {line:?}:\n{}",
                ours.transcript
            );
        }
        let strip = |run: &Run, lines: &[&str]| -> Vec<String> {
            run.transcript
                .lines()
                .filter(|l| !lines.contains(l))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            strip(&openssh, openssh_lines),
            strip(&ours, our_lines),
            "beyond the pinned lines, the transcripts differ"
        );
    }
}

fn assert_same(openssh: &Run, ours: &Run) {
    if openssh.transcript != ours.transcript {
        let mut report = String::new();
        for (i, (a, b)) in openssh
            .transcript
            .lines()
            .zip(ours.transcript.lines())
            .enumerate()
        {
            if a != b {
                let _ = writeln!(report, "step {i}:\n  OpenSSH: {a}\n  ours:    {b}");
            }
        }
        panic!(
            "transcripts differ:\n{report}\nOpenSSH:\n{}\nours:\n{}\nours' stderr: {}",
            openssh.transcript, ours.transcript, ours.stderr
        );
    }
    assert!(
        openssh.tree == ours.tree,
        "trees differ:\n{}",
        openssh.tree.differences(&ours.tree, "OpenSSH", "ours")
    );
    assert_eq!(
        openssh.exit, ours.exit,
        "exit status (ours' stderr: {})",
        ours.stderr
    );
}

/// Times for the set-up's entries: old, so that both runs show them exact.
const OLD: i64 = 1_000_000_000;

/// The tree most scripts start from (relative to the sandbox root, which
/// also holds tests/common's empty dst/, src/ and outside/).
fn standard_tree(sb: &Sandbox) {
    sb.file("src/a.txt", b"hello\n", 0o644)
        .file("src/empty", b"", 0o600)
        .file("src/big", &pattern(300_000), 0o644)
        .dir("src/dir", 0o755)
        .file("src/dir/x", b"x\n", 0o644)
        .file("src/dir/y", b"yy\n", 0o640)
        .symlink("src/link", "a.txt")
        .symlink("src/dangling", "nowhere")
        .file("src/secret", b"secret\n", 0o000)
        .dir("src/locked", 0o755)
        .file("src/locked/f", b"f\n", 0o644)
        .chmod("src/locked", 0o000)
        .dir("ro", 0o755)
        .file("ro/f", b"read only\n", 0o644)
        .chmod("ro", 0o555)
        .file("rootfile", b"root's\n", 0o666)
        .owned_by("rootfile", User::Root);
    for rel in [
        "src/a.txt",
        "src/empty",
        "src/big",
        "src/dir/x",
        "src/dir/y",
        "src/secret",
        "ro/f",
        "rootfile",
        "src/dir",
    ] {
        sb.times(rel, OLD, OLD + 1);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

const READ: u32 = pflags::READ;
const WRITE: u32 = pflags::WRITE;
const APPEND: u32 = pflags::APPEND;
const CREAT: u32 = pflags::CREAT;
const TRUNC: u32 = pflags::TRUNC;
const EXCL: u32 = pflags::EXCL;

fn none() -> Attrs {
    Attrs::none()
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

#[test]
fn reading_a_file_in_pieces_to_eof_then_closing_twice() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, open("src/a.txt", READ, &none())));
        step!(r, read(&h, 0, 3));
        step!(r, read(&h, 3, 100));
        step!(r, read(&h, 6, 100));
        step!(r, read(&h, 1 << 40, 1));
        step!(r, fstat(&h));
        step!(r, close(&h));
        step!(r, close(&h));
        step!(r, read(&h, 0, 1));
    })
    .agree();
}

#[test]
fn a_read_longer_than_the_limit_and_a_zero_length_read() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, open("src/big", READ, &none())));
        let reply = r.session.read(&h, 0, u32::MAX);
        let len = match &reply {
            Reply::Data(data) => data.len().to_string(),
            other => r.normalize(other),
        };
        r.note(&format!("read(&h, 0, u32::MAX) -> {len} bytes"));
        step!(r, read(&h, 0, 0));
        step!(r, read(&h, 299_999, 10));
        let reply = r.session.read(&h, 0, 300_000);
        let len = match &reply {
            Reply::Data(data) => data.len().to_string(),
            other => r.normalize(other),
        };
        r.note(&format!("read(&h, 0, 300000) -> {len} bytes"));
        step!(r, close(&h));
        let h = Recorder::handle(&step!(r, open("src/empty", READ, &none())));
        step!(r, read(&h, 0, 10));
        step!(r, read(&h, 0, 0));
        step!(r, close(&h));
    })
    .agree();
}

#[test]
fn opening_what_cannot_be_read() {
    Script::new(standard_tree, |r| {
        step!(r, open("src/missing", READ, &none()));
        step!(r, open("src/secret", READ, &none()));
        step!(r, open("src/locked/f", READ, &none()));
        step!(r, open("src/a.txt/x", READ, &none()));
        step!(r, open("src/dangling", READ, &none()));
        step!(r, open("src/link", READ, &none()));
        step!(r, open("", READ, &none()));
        step!(r, open("src/a.txt", 0, &none()));
    })
    .agree();
}

#[test]
fn a_directory_opened_as_a_file_fails_at_read() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, open("src/dir", READ, &none())));
        step!(r, read(&h, 0, 10));
        step!(r, fstat(&h));
        step!(r, close(&h));
    })
    .agree();
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

#[test]
fn creating_a_file_with_a_hole_and_a_mode() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(
            r,
            open("dst/new", WRITE | CREAT | TRUNC, &Attrs::perms(0o640))
        ));
        step!(r, write(&h, 0, b"head"));
        step!(r, write(&h, 10, b"tail"));
        step!(r, fstat(&h));
        step!(r, close(&h));
        step!(r, stat("dst/new"));
    })
    .agree();
}

#[test]
fn overwriting_a_larger_file_as_openssh_scp_does() {
    // OpenSSH 9's scp: WRITE|CREAT without TRUNC, data from 0, then the
    // size by FSETSTAT.
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, open("src/big", WRITE | CREAT, &none())));
        step!(r, write(&h, 0, b"short"));
        step!(r, fsetstat(&h, &Attrs::size(5)));
        step!(r, fstat(&h));
        step!(r, close(&h));
        step!(r, stat("src/big"));
    })
    .agree();
}

#[test]
fn append_read_write_and_exclusive_opens() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, open("src/a.txt", WRITE | APPEND, &none())));
        step!(r, write(&h, 0, b"more\n"));
        step!(r, close(&h));
        let h = Recorder::handle(&step!(r, open("src/dir/x", READ | WRITE, &none())));
        step!(r, write(&h, 1, b"yz"));
        step!(r, read(&h, 0, 100));
        step!(r, close(&h));
        step!(r, open("src/dir/y", WRITE | CREAT | EXCL, &none()));
        let h = Recorder::handle(&step!(r, open("dst/excl", WRITE | CREAT | EXCL, &none())));
        step!(r, close(&h));
        step!(r, open("dst/nocreat", WRITE, &none()));
    })
    .replaces_in(&["src/dir"])
    .agree();
}

#[test]
fn writing_through_a_read_only_handle_and_reading_a_write_only_one() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, open("src/a.txt", READ, &none())));
        step!(r, write(&h, 0, b"x"));
        step!(r, close(&h));
        let h = Recorder::handle(&step!(r, open("src/dir/x", WRITE, &none())));
        step!(r, read(&h, 0, 10));
        step!(r, close(&h));
    })
    .replaces_in(&["src/dir"])
    .agree();
}

#[test]
fn writing_where_permissions_forbid_it() {
    Script::new(standard_tree, |r| {
        step!(r, open("ro/new", WRITE | CREAT, &none()));
        step!(r, open("src/secret", WRITE, &none()));
        step!(r, remove("ro/f"));
        step!(r, mkdir("ro/d", &none()));
        step!(r, rename("ro/f", "dst/f"));
        step!(r, setstat("rootfile", &Attrs::perms(0o600)));
        step!(
            r,
            setstat("rootfile", &Attrs::times(OLD as u32, OLD as u32))
        );
    })
    .agree();
}

/// root's file, writable by all, in a directory nobody owns. OpenSSH
/// writes into it in place: it stays root's, and SETSTAT of it is refused
/// while the upload is open. Ours is a new file renamed over it: while
/// open, SETSTAT of the name applies to the pending upload (DESIGN:
/// "the pending name answers STAT/LSTAT/SETSTAT/OPEN as if it existed"),
/// and the published file is the uploader's, who cannot give it root's
/// ownership (the uploader could delete and recreate it anyway).
#[test]
fn replacing_a_file_another_user_owns() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, open("rootfile", WRITE | TRUNC, &none())));
        step!(r, write(&h, 0, b"mine\n"));
        step!(r, setstat("rootfile", &Attrs::perms(0o640)));
        step!(r, close(&h));
        step!(r, stat("rootfile"));
    })
    .differ(
        &[
            r#"setstat("rootfile", &Attrs::perms(0o640)) -> STATUS PERMISSION_DENIED "Permission denied""#,
            r#"stat("rootfile") -> ATTRS {size=5 owner=0:0 perms=100666 atime=1000000001 mtime=recent}"#,
        ],
        &[
            r#"setstat("rootfile", &Attrs::perms(0o640)) -> STATUS OK "Success""#,
            r#"stat("rootfile") -> ATTRS {size=5 owner=65534:65534 perms=100640 atime=1000000001 mtime=recent}"#,
        ],
    );
}

/// An upload is published at CLOSE: until then READDIR does not show a
/// new name (OpenSSH's file exists, empty, from the OPEN on).
#[test]
fn a_new_upload_is_listed_once_closed() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, open("dst/new", WRITE | CREAT, &none())));
        step!(r, write(&h, 0, b"new\n"));
        let before = listed(r, "dst");
        r.note(&format!("dst while open: {before:?}"));
        step!(r, close(&h));
        let after = listed(r, "dst");
        r.note(&format!("dst once closed: {after:?}"));
    })
    .differ(
        &[r#"dst while open: ["b'.'", "b'..'", "b'new'"]"#],
        &[r#"dst while open: ["b'.'", "b'..'"]"#],
    );
}

/// The names in a directory, sorted, as the transcript shows them.
fn listed(r: &mut Recorder, dir: &str) -> Vec<String> {
    let names = r.session.list_dir(dir).expect("the directory lists");
    let mut shown: Vec<String> = names.iter().map(|e| r.relative(&e.name)).collect();
    shown.sort();
    shown
}

/// A session that ends with uploads open: OpenSSH leaves what it wrote
/// (a new file with part of its content, an old one truncated and
/// partly rewritten); ours publishes nothing and the old file stays whole.
#[test]
fn a_session_ending_with_uploads_open_loses_nothing() {
    let Some((openssh, ours)) = Script::new(standard_tree, |r| {
        let new = Recorder::handle(&step!(r, open("dst/new", WRITE | CREAT | TRUNC, &none())));
        step!(r, write(&new, 0, b"part"));
        let old = Recorder::handle(&step!(r, open("src/a.txt", WRITE | TRUNC, &none())));
        step!(r, write(&old, 0, b"x"));
    })
    .both() else {
        return;
    };
    assert_eq!(openssh.transcript, ours.transcript);
    let content = |run: &Run, rel: &str| run.tree.get(rel).map(|node| node.content.clone());
    assert_eq!(content(&openssh, "dst/new"), Some(b"part".to_vec()));
    assert_eq!(content(&openssh, "src/a.txt"), Some(b"x".to_vec()));
    assert_eq!(content(&ours, "dst/new"), None);
    assert_eq!(content(&ours, "src/a.txt"), Some(b"hello\n".to_vec()));
    assert!(
        ours.tree.temp_files().is_empty(),
        "{:?}",
        ours.tree.temp_files()
    );
}

/// The standard tree, with `src/hl` a second name of `src/a.txt`.
fn tree_with_a_hard_link(sb: &Sandbox) {
    standard_tree(sb);
    sb.hard_link("src/hl", "src/a.txt");
}

/// Writing over a file that has another name: OpenSSH writes the inode
/// both names share; ours renames a new file over one name and the other
/// keeps the old content.
#[test]
fn writing_over_a_file_with_another_hard_link() {
    Script::new(tree_with_a_hard_link, |r| {
        let h = Recorder::handle(&step!(r, open("src/a.txt", WRITE | TRUNC, &none())));
        step!(r, write(&h, 0, b"new\n"));
        step!(r, close(&h));
        let h = Recorder::handle(&step!(r, open("src/hl", READ, &none())));
        step!(r, read(&h, 0, 100));
        step!(r, close(&h));
    })
    .differ(
        &[r#"read(&h, 0, 100) -> DATA b'new\n'"#],
        &[r#"read(&h, 0, 100) -> DATA b'hello\n'"#],
    );
}

/// Times set on an open upload are applied when it is published, after
/// the content is final, so a later size change or write does not move
/// them; OpenSSH sets them at once and the truncate moves the mtime.
#[test]
fn times_set_before_a_size_change_survive_it() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, open("src/dir/x", READ | WRITE, &none())));
        step!(r, fsetstat(&h, &Attrs::times(1_000_000_100, 1_000_000_200)));
        step!(r, fsetstat(&h, &Attrs::size(100)));
        step!(r, close(&h));
        step!(r, stat("src/dir/x"));
    })
    .differ(
        &[
            r#"stat("src/dir/x") -> ATTRS {size=100 owner=65534:65534 perms=100644 atime=1000000100 mtime=recent}"#,
        ],
        &[
            r#"stat("src/dir/x") -> ATTRS {size=100 owner=65534:65534 perms=100644 atime=1000000100 mtime=1000000200}"#,
        ],
    );
}

// ---------------------------------------------------------------------------
// Attributes
// ---------------------------------------------------------------------------

#[test]
fn stat_and_lstat_of_links_files_and_what_is_missing() {
    Script::new(standard_tree, |r| {
        step!(r, stat("src/a.txt"));
        step!(r, lstat("src/link"));
        step!(r, stat("src/link"));
        step!(r, stat("src/dangling"));
        step!(r, lstat("src/dangling"));
        step!(r, stat("src/missing"));
        step!(r, stat("src/a.txt/"));
        step!(r, stat("src/locked/f"));
        step!(r, stat("src/dir"));
        step!(r, stat(""));
    })
    .agree();
}

#[test]
fn setstat_and_fsetstat_modes_times_sizes() {
    Script::new(standard_tree, |r| {
        step!(r, setstat("src/a.txt", &Attrs::perms(0o4751)));
        step!(
            r,
            setstat("src/a.txt", &Attrs::times(1_200_000_000, 1_100_000_000))
        );
        step!(r, setstat("src/a.txt", &Attrs::size(2)));
        step!(r, stat("src/a.txt"));
        step!(r, setstat("src/missing", &Attrs::perms(0o600)));
        step!(r, setstat("src/dir", &Attrs::size(0)));
        step!(r, setstat("src/link", &Attrs::perms(0o600)));
        let h = Recorder::handle(&step!(r, open("src/dir/x", READ | WRITE, &none())));
        step!(r, fsetstat(&h, &Attrs::perms(0o700)));
        step!(r, fsetstat(&h, &Attrs::size(100)));
        step!(r, fsetstat(&h, &Attrs::times(1_000_000_100, 1_000_000_200)));
        step!(r, fstat(&h));
        step!(r, fsetstat(&h, &Attrs::owner(0, 0)));
        step!(r, close(&h));
        step!(
            r,
            lsetstat("src/link", &Attrs::times(1_000_000_300, 1_000_000_400))
        );
        step!(r, lstat("src/link"));
        step!(r, lsetstat("src/link", &Attrs::perms(0o600)));
    })
    .replaces_in(&["src/dir"])
    .agree();
}

// ---------------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------------

#[test]
fn listing_directories_and_what_is_not_one() {
    Script::new(standard_tree, |r| {
        let h = Recorder::handle(&step!(r, opendir("src")));
        step!(r, readdir(&h));
        step!(r, readdir(&h));
        step!(r, close(&h));
        step!(r, readdir(&h));
        step!(r, opendir("src/missing"));
        step!(r, opendir("src/a.txt"));
        step!(r, opendir("src/locked"));
        let f = Recorder::handle(&step!(r, open("src/a.txt", READ, &none())));
        step!(r, readdir(&f));
        step!(r, close(&f));
        let d = Recorder::handle(&step!(r, opendir("src/dir")));
        step!(r, read(&d, 0, 10));
        step!(r, fstat(&d));
        step!(r, close(&d));
    })
    .agree();
}

#[test]
fn a_directory_of_250_entries_is_listed_whole() {
    Script::new(
        |sb| {
            standard_tree(sb);
            for i in 0..250 {
                sb.file(format!("dst/f{i:03}"), b"", 0o644);
                sb.times(format!("dst/f{i:03}"), OLD, OLD);
            }
            sb.times("dst", OLD, OLD);
        },
        |r| {
            let names = r.session.list_dir("dst").expect("dst lists");
            let mut shown: Vec<String> = names.iter().map(|e| r.entry(e)).collect();
            shown.sort();
            r.note(&format!("{} entries", shown.len()));
            for line in shown {
                r.note(&line);
            }
        },
    )
    .agree();
}

#[test]
fn making_and_removing_directories_and_files() {
    Script::new(standard_tree, |r| {
        step!(r, mkdir("dst/d", &Attrs::perms(0o700)));
        step!(r, mkdir("dst/d", &none()));
        step!(r, mkdir("dst/missing/d", &none()));
        step!(r, mkdir("dst/e", &none()));
        step!(r, stat("dst/d"));
        step!(r, stat("dst/e"));
        step!(r, rmdir("src/dir"));
        step!(r, rmdir("src/missing"));
        step!(r, rmdir("src/a.txt"));
        step!(r, rmdir("dst/e"));
        step!(r, remove("src/dir"));
        step!(r, remove("src/missing"));
        step!(r, remove("src/link"));
        step!(r, remove("src/dir/x"));
        step!(r, remove("src/locked/f"));
    })
    .agree();
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

#[test]
fn realpath_of_relative_absolute_missing_and_linked_names() {
    Script::new(standard_tree, |r| {
        step!(r, realpath("."));
        step!(r, realpath(""));
        step!(r, realpath("src/../src/./a.txt"));
        step!(r, realpath("src/link"));
        step!(r, realpath("src/missing"));
        step!(r, realpath("src/missing/deeper"));
        step!(r, realpath("src/dangling"));
        step!(r, realpath("src/a.txt/x"));
    })
    .agree();
}

#[test]
fn rename_and_posix_rename_onto_free_and_taken_names() {
    Script::new(standard_tree, |r| {
        step!(r, rename("src/a.txt", "dst/a.txt"));
        step!(r, rename("src/dir/x", "src/dir/y"));
        step!(r, posix_rename("src/dir/x", "src/dir/y"));
        step!(r, rename("src/missing", "dst/m"));
        step!(r, rename("src/dir", "src/dir/sub"));
        step!(r, rename("src/link", "dst/link"));
        step!(r, posix_rename("src/empty", "dst"));
        step!(r, rename("src/big", "src/missing/big"));
    })
    .agree();
}

#[test]
fn symlinks_and_hard_links_made_and_read() {
    Script::new(standard_tree, |r| {
        step!(r, readlink("src/link"));
        step!(r, readlink("src/dangling"));
        step!(r, readlink("src/a.txt"));
        step!(r, readlink("src/missing"));
        step!(r, symlink("dst/new-link", "../src/a.txt"));
        step!(r, symlink("dst/new-link", "anything"));
        step!(r, readlink("dst/new-link"));
        step!(r, hardlink("src/a.txt", "dst/hard"));
        step!(r, hardlink("src/a.txt", "dst/hard"));
        step!(r, hardlink("src/missing", "dst/hard2"));
        step!(r, hardlink("src/dir", "dst/hard3"));
        step!(r, stat("dst/hard"));
    })
    .agree();
}

#[test]
fn odd_names_spaces_utf8_newline_long() {
    Script::new(standard_tree, |r| {
        for name in [
            "dst/with space",
            "dst/été ✓",
            "dst/new\nline",
            "dst/tab\there",
            "dst/-dash",
        ] {
            let h = Recorder::handle(&step!(r, open(name, WRITE | CREAT, &none())));
            step!(r, write(&h, 0, name.as_bytes()));
            step!(r, close(&h));
        }
        let long = format!("dst/{}", "n".repeat(255));
        let h = Recorder::handle(&step!(r, open(&long, WRITE | CREAT, &none())));
        step!(r, close(&h));
        let too_long = format!("dst/{}", "n".repeat(256));
        step!(r, open(&too_long, WRITE | CREAT, &none()));
        step!(r, stat(&too_long));
        step!(r, mkdir(&too_long, &none()));
        let h = Recorder::handle(&step!(
            r,
            open(b"dst/\xff\xfe".as_slice(), WRITE | CREAT, &none())
        ));
        step!(r, close(&h));
        let shown = listed(r, "dst");
        r.note(&format!("dst: {shown:?}"));
    })
    .agree();
}

// ---------------------------------------------------------------------------
// Extensions
// ---------------------------------------------------------------------------

#[test]
fn the_extensions_offered_are_openssh_s_less_none() {
    let Some((openssh, ours)) = Script::new(standard_tree, |r| {
        let names: Vec<String> = r
            .session
            .extensions()
            .iter()
            .map(|(name, data)| format!("{name}={}", show(data)))
            .collect();
        r.note(&names.join("\n"));
    })
    .both() else {
        return;
    };
    assert_eq!(openssh.transcript, ours.transcript);
}

#[test]
fn statvfs_fstatvfs_fsync_and_limits() {
    Script::new(standard_tree, |r| {
        let reply = r.session.statvfs(".");
        r.note(&format!("statvfs(.) -> {}", statvfs_text(&reply)));
        step!(r, statvfs("src/missing"));
        let h = Recorder::handle(&step!(r, open("src/dir/x", READ | WRITE, &none())));
        let reply = r.session.fstatvfs(&h);
        r.note(&format!("fstatvfs -> {}", statvfs_text(&reply)));
        step!(r, fsync(&h));
        step!(r, close(&h));
        step!(r, fsync(&h));
        let d = Recorder::handle(&step!(r, opendir("src")));
        step!(r, fsync(&d));
        step!(r, fstatvfs(&d));
        step!(r, close(&d));
    })
    .replaces_in(&["src/dir"])
    .agree();
}

/// statvfs's fixed fields (block size, fragment size, blocks, file
/// system id, flags, name length); the free counts move between runs.
fn statvfs_text(reply: &Reply) -> String {
    let Reply::ExtendedReply(body) = reply else {
        return format!("{reply:?}");
    };
    let fields: Vec<u64> = body
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().expect("8 bytes")))
        .collect();
    match fields.as_slice() {
        [
            bsize,
            frsize,
            blocks,
            _bfree,
            _bavail,
            files,
            _ffree,
            _favail,
            fsid,
            flag,
            namemax,
        ] => {
            format!(
                "bsize={bsize} frsize={frsize} blocks={blocks} files={files} fsid={fsid} flag={flag} namemax={namemax}"
            )
        }
        _ => format!("malformed statvfs reply {}", show(body)),
    }
}

#[test]
fn limits_tell_the_same_packet_read_and_write_lengths() {
    Script::new(standard_tree, |r| {
        let reply = r.session.limits();
        let Reply::ExtendedReply(body) = &reply else {
            r.note(&format!("limits -> {reply:?}"));
            return;
        };
        let fields: Vec<u64> = body
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
            .collect();
        // The handle limit follows the descriptor limit in both servers;
        // its value is checked in tests/sftp_confinement.rs.
        r.note(&format!(
            "packet={} read={} write={} handles>0={}",
            fields[0],
            fields[1],
            fields[2],
            fields[3] > 0
        ));
    })
    .agree();
}

#[test]
fn copy_data_within_and_between_files() {
    Script::new(standard_tree, |r| {
        let from = Recorder::handle(&step!(r, open("src/big", READ, &none())));
        let to = Recorder::handle(&step!(r, open("dst/copy", WRITE | CREAT, &none())));
        step!(r, copy_data(&from, 10, 1000, &to, 0));
        step!(r, copy_data(&from, 0, 0, &to, 5000));
        step!(r, copy_data(&from, 400_000, 10, &to, 0));
        step!(r, copy_data(&to, 0, 10, &from, 0));
        step!(r, copy_data(&from, 299_995, 100_000, &to, 0));
        step!(r, copy_data(&from, 0, 10, &from, 20));
        step!(r, close(&to));
        let to = Recorder::handle(&step!(r, open("dst/copy", READ | WRITE, &none())));
        step!(r, copy_data(&to, 0, 10, &to, 20));
        step!(r, copy_data(&to, 0, 100, &to, 50));
        step!(r, close(&to));
        step!(r, close(&from));
        step!(r, stat("dst/copy"));
    })
    // OpenSSH counts a chunk (64 KiB) as copied before reading it: a
    // source that ends while the last chunk is being read (here with 5
    // bytes of 100,000 copied), or a read that fails, is answered OK. Ours answers EOF for a short source and the
    // read's error (EBADF: NO_SUCH_FILE, as READ of a write-only handle).
    .differ(
        &[
            r#"copy_data(&from, 400_000, 10, &to, 0) -> STATUS OK "Success""#,
            r#"copy_data(&to, 0, 10, &from, 0) -> STATUS OK "Success""#,
            r#"copy_data(&from, 299_995, 100_000, &to, 0) -> STATUS OK "Success""#,
        ],
        &[
            r#"copy_data(&from, 400_000, 10, &to, 0) -> STATUS EOF "End of file""#,
            r#"copy_data(&to, 0, 10, &from, 0) -> STATUS NO_SUCH_FILE "No such file""#,
            r#"copy_data(&from, 299_995, 100_000, &to, 0) -> STATUS EOF "End of file""#,
        ],
    );
}

#[test]
fn expand_path_home_directory_and_users_groups_by_id() {
    Script::new(standard_tree, |r| {
        step!(r, expand_path("~"));
        step!(r, expand_path("~/src"));
        step!(r, expand_path("src/../dst"));
        step!(r, expand_path("~nobody-such-user/x"));
        step!(r, home_directory("nobody-such-user"));
        step!(
            r,
            users_groups_by_id(&[0, 4_000_000_000], &[0, 4_000_000_000])
        );
    })
    .agree();
}

#[test]
fn an_unknown_extension_is_unsupported_and_the_session_goes_on() {
    Script::new(standard_tree, |r| {
        step!(r, extended("no-such@example.com", b"whatever"));
        step!(r, stat("src/a.txt"));
    })
    .agree();
}

// ---------------------------------------------------------------------------
// Bad handles and malformed packets
// ---------------------------------------------------------------------------

#[test]
fn handles_no_server_gave() {
    Script::new(standard_tree, |r| {
        for handle in [
            &b""[..],
            b"\0\0\0\x07",
            b"\0\0\0\0\0",
            b"xyzzy",
            b"\xff\xff\xff\xff",
        ] {
            step!(r, read(handle, 0, 1));
            step!(r, write(handle, 0, b"x"));
            step!(r, fstat(handle));
            step!(r, readdir(handle));
            step!(r, close(handle));
        }
    })
    .agree();
}

/// A session ended by a malformed packet: both servers give no reply to
/// it and leave with the same exit status.
fn ends_the_session(packet: &'static [u8]) {
    Script::new(standard_tree, move |r| {
        let _ = r.session.send_raw(packet);
        let next = r.session.receive();
        r.note(&format!("after the packet: {next:?}"));
    })
    .agree();
}

#[test]
fn a_packet_longer_than_256_kib_ends_the_session() {
    ends_the_session(b"\x00\x04\x00\x01\x11\x00\x00\x00\x01");
}

#[test]
fn a_string_running_past_its_packet_ends_the_session() {
    ends_the_session(b"\x00\x00\x00\x0a\x11\x00\x00\x00\x01\x00\x00\x00\x09a");
}

#[test]
fn a_packet_without_a_request_id_ends_the_session() {
    ends_the_session(b"\x00\x00\x00\x03\x11\x00\x00");
}

#[test]
fn an_unknown_packet_type_gets_no_answer() {
    Script::new(standard_tree, |r| {
        r.session.send_packet(b"\x63\x00\x00\x00\x05");
        // OpenSSH's sftp-server handles one message per wakeup of its poll
        // loop: had the next request arrived in the same read as this
        // unanswered one, it would wait for more input forever. A pause
        // lets it read this packet alone.
        std::thread::sleep(Duration::from_secs(1));
        step!(r, stat("src/a.txt"));
    })
    .agree();
}

#[test]
fn a_request_before_init_ends_the_session() {
    let run = |server: Server| {
        let sandbox = Sandbox::new(User::Nobody);
        let (uid, gid) = User::Nobody.ids();
        let mut session = Launch::new(server)
            .user(uid, gid)
            .cwd(sandbox.root())
            .spawn();
        let mut fields = Vec::new();
        put_string(&mut fields, b".");
        session.send_request(sftp_support::op::STAT, &fields);
        let next = format!("{:?}", session.receive());
        (next, session.finish().code())
    };
    if !Server::OpenSsh.available() {
        assert!(std::env::var_os("CI").is_none(), "sftp-server missing");
        return;
    }
    assert_eq!(run(Server::OpenSsh), run(Server::Ours));
}

#[test]
fn a_nul_byte_in_a_path() {
    Script::new(standard_tree, |r| {
        let mut fields = Vec::new();
        put_string(&mut fields, b"src/a.txt\0junk");
        r.session.send_request(sftp_support::op::STAT, &fields);
        let next = r.session.receive();
        r.note(&format!("STAT of a path holding a NUL: {next:?}"));
    })
    .agree();
}

#[test]
fn requests_refused_by_name_with_dash_capital_p() {
    Script::new(standard_tree, |r| {
        step!(r, stat("src/a.txt"));
        step!(r, remove("src/a.txt"));
        step!(r, mkdir("dst/d", &none()));
    })
    .args(&["-P", "remove,mkdir"])
    .agree();
}

#[test]
fn read_only_mode_dash_capital_r() {
    Script::new(standard_tree, |r| {
        step!(r, open("src/a.txt", WRITE, &none()));
        step!(r, open("src/a.txt", READ, &none()));
        step!(r, remove("src/a.txt"));
        step!(r, setstat("src/a.txt", &Attrs::perms(0o600)));
        step!(r, symlink("dst/l", "x"));
        step!(r, posix_rename("src/a.txt", "dst/a"));
    })
    .args(&["-R"])
    // Same codes; ours says why in every refusal.
    .differ(
        &[
            r#"open("src/a.txt", WRITE, &none()) -> STATUS PERMISSION_DENIED "Permission denied""#,
            r#"remove("src/a.txt") -> STATUS PERMISSION_DENIED "Permission denied""#,
            r#"setstat("src/a.txt", &Attrs::perms(0o600)) -> STATUS PERMISSION_DENIED "Permission denied""#,
            r#"symlink("dst/l", "x") -> STATUS PERMISSION_DENIED "Permission denied""#,
            r#"posix_rename("src/a.txt", "dst/a") -> STATUS PERMISSION_DENIED "Permission denied""#,
        ],
        &[
            r#"open("src/a.txt", WRITE, &none()) -> STATUS PERMISSION_DENIED "this account is read-only: nothing may be changed""#,
            r#"remove("src/a.txt") -> STATUS PERMISSION_DENIED "this account is read-only: nothing may be changed""#,
            r#"setstat("src/a.txt", &Attrs::perms(0o600)) -> STATUS PERMISSION_DENIED "this account is read-only: nothing may be changed""#,
            r#"symlink("dst/l", "x") -> STATUS PERMISSION_DENIED "this account is read-only: nothing may be changed""#,
            r#"posix_rename("src/a.txt", "dst/a") -> STATUS PERMISSION_DENIED "this account is read-only: nothing may be changed""#,
        ],
    );
}

#[test]
fn protocol_version_2_statuses_carry_no_message() {
    let run = |server: Server| {
        let sandbox = Sandbox::new(User::Nobody);
        standard_tree(&sandbox);
        let (uid, gid) = User::Nobody.ids();
        let mut session = Launch::new(server)
            .user(uid, gid)
            .cwd(sandbox.root())
            .spawn();
        let version = session.init(2);
        let reply = session.stat("src/missing");
        (version, format!("{reply:?}"), session.extensions().len())
    };
    if !Server::OpenSsh.available() {
        assert!(std::env::var_os("CI").is_none(), "sftp-server missing");
        return;
    }
    assert_eq!(run(Server::OpenSsh), run(Server::Ours));
}
