//! Fault injection (issue 8): a client that vanishes, a reader that goes
//! away, the server killed, a full disk, a file-size limit, a directory it
//! may not write and a read-only filesystem.
//!
//! Every case asserts the same three things: the client is told why (one
//! `\x01scp: …` line, where a client is still there to read it), the exit
//! status is not 0, and no destination file is truncated or partial — an
//! existing target keeps its bytes, a new one does not appear, and no
//! temporary upload file is left, except the one a SIGKILL cannot avoid,
//! which the shipped systemd cleanup removes.
//!
//! Cases run unconfined and with `--root` (the two ways paths are opened).
//! They need root: the server runs as `nobody` in sandboxes root builds,
//! and the full-disk and read-only cases mount a small tmpfs. Without root
//! they are skipped with a note, except in CI (`CI` set), where a missing
//! prerequisite fails.

mod cleanup;
mod common;
mod sshd;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{Exit, Invocation, Kind, NOBODY, Outcome, Sandbox, Tree, User, contains, show};

const SERVER: &str = env!("CARGO_BIN_EXE_scp-server");

/// Big enough that the data path's fast paths (splice through the relay
/// pipe) carry most of it, not only the bytes buffered with the record.
const BIG: usize = 3 * 1024 * 1024;

/// What an existing target holds before each upload; it must hold exactly
/// this afterwards.
const OLD: &[u8] = b"old content, must survive byte for byte\n";

// ---------------------------------------------------------------------------
// Prerequisites

/// Root, or a skip (outside CI) / a failure (in CI).
fn have_root() -> bool {
    sshd::running_as_root()
        || sshd::unavailable::<()>(
            "fault injection needs root (sandboxes run as nobody, tmpfs mounts)",
        )
        .is_some()
}

/// A small tmpfs mounted over a sandbox directory, owned by nobody;
/// unmounted when dropped, also when the test fails. Declare it after the
/// sandbox, so that it is dropped (unmounted) before the sandbox is removed.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        let (uid, gid) = NOBODY;
        let options = format!("size={size},mode=0755,uid={uid},gid={gid}");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "scp-server-faults"])
            .arg(path)
            .output()
            .expect("run mount");
        if !output.status.success() {
            let why = String::from_utf8_lossy(&output.stderr);
            return sshd::unavailable(&format!("cannot mount a tmpfs: {why}"));
        }
        Some(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// `mount -o remount,ro`: every write below it now fails with EROFS.
    fn make_read_only(&self) {
        let status = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "remount {} read-only",
            self.path.display()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        // Busy (a server that outlived a failed test): detach it anyway, so
        // the sandbox can go and no mount is left behind.
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

// ---------------------------------------------------------------------------
// Confined or not

/// Each case runs both ways: paths as given, and beneath `--root dst`.
#[derive(Clone, Copy, Debug)]
enum Mode {
    Unconfined,
    Rooted,
}

const BOTH: [Mode; 2] = [Mode::Unconfined, Mode::Rooted];

impl Mode {
    /// Arguments for a run in the sandbox root whose target is `rel`
    /// inside `dst` (`""`: `dst` itself).
    fn args(self, sandbox: &Sandbox, flags: &[&str], rel: &str) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let Mode::Rooted = self {
            args.push("--root".into());
            args.push(sandbox.path("dst").into());
        }
        args.extend(flags.iter().map(OsString::from));
        args.push(self.path(rel).into());
        args
    }

    /// `rel` inside `dst` as the server names it in messages.
    fn path(self, rel: &str) -> String {
        match (self, rel) {
            (Mode::Unconfined, "") => "dst".into(),
            (Mode::Unconfined, rel) => format!("dst/{rel}"),
            (Mode::Rooted, rel) => format!("/{rel}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Running the server

/// Runs the server to completion with `stdin` as the whole client stream.
fn run(sandbox: &Sandbox, program: &str, args: &[OsString], stdin: &[u8]) -> Outcome {
    Invocation {
        program: OsStr::new(program),
        args,
        cwd: sandbox.root(),
        umask: 0o022,
        user: User::Nobody,
        stdin,
        timeout: common::DEFAULT_TIMEOUT,
        stdout_closed: false,
    }
    .run()
}

/// Starts the server as nobody with all three streams piped, for cases
/// that act on it while it runs.
fn spawn(sandbox: &Sandbox, args: &[OsString]) -> Child {
    let (uid, gid) = NOBODY;
    Command::new(SERVER)
        .args(args)
        .current_dir(sandbox.root())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LC_ALL", "C")
        .uid(uid)
        .gid(gid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scp-server")
}

fn wait(child: &mut Child, limit: Duration) -> Exit {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for scp-server") {
            return match (status.code(), status.signal()) {
                (Some(code), _) => Exit::Code(code),
                (_, signal) => Exit::Signal(signal.unwrap_or(0)),
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
// Streams and checks

/// Deterministic bytes that no two offsets of a file share by accident
/// (xorshift), so a misplaced or truncated block cannot look right.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// A `C` record for `name` announcing `size` bytes.
fn c_record(size: usize, name: &str) -> Vec<u8> {
    format!("C0644 {size} {name}\n").into_bytes()
}

/// A complete upload of `data`: record, bytes, the sender's OK.
fn upload(name: &str, data: &[u8]) -> Vec<u8> {
    [c_record(data.len(), name).as_slice(), data, b"\0"].concat()
}

/// The one error line the client must receive.
fn error_line(text: &str) -> Vec<u8> {
    format!("\x01scp: {text}\n").into_bytes()
}

fn context(outcome: &Outcome, tree: &Tree) -> String {
    format!(
        "exit {:?}\nstdout {}\nstderr {}\ntree:\n{tree:?}",
        outcome.exit,
        show(&outcome.stdout),
        show(&outcome.stderr)
    )
}

/// The client was told, the exit status says failure, and nothing was
/// left half-written: the same checks for every case.
#[track_caller]
fn assert_failed_cleanly(outcome: &Outcome, sandbox: &Sandbox, expected_line: &str) -> Tree {
    let tree = sandbox.snapshot();
    let line = error_line(expected_line);
    assert!(
        contains(&outcome.stdout, &line),
        "expected the line {}\n{}",
        show(&line),
        context(outcome, &tree)
    );
    assert_eq!(
        outcome.exit,
        Exit::Code(1),
        "exit status\n{}",
        context(outcome, &tree)
    );
    assert!(
        tree.temp_files().is_empty(),
        "temporary files left: {:?}\n{}",
        tree.temp_files(),
        context(outcome, &tree)
    );
    tree
}

#[track_caller]
fn assert_content(tree: &Tree, rel: &str, expected: &[u8]) {
    let Some(node) = tree.get(rel) else {
        panic!("{rel} is missing\n{tree:?}");
    };
    assert!(
        node.kind == Kind::File && node.content == expected,
        "{rel}: expected {} bytes {}, found {node:?}",
        expected.len(),
        show(&expected[..expected.len().min(64)])
    );
}

#[track_caller]
fn assert_absent(tree: &Tree, rel: &str) {
    assert!(tree.get(rel).is_none(), "{rel} must not exist\n{tree:?}");
}

/// A sandbox whose `dst/` holds `f` with [`OLD`] (writable by nobody).
fn sandbox_with_old_file() -> Sandbox {
    let sandbox = Sandbox::new(User::Nobody);
    sandbox.file("dst/f", OLD, 0o644);
    sandbox
}

// ---------------------------------------------------------------------------
// The client vanishes

/// EOF halfway through a file's data: the upload is discarded and the
/// client (were it still there) is told how much arrived.
#[test]
fn client_vanishes_mid_file() {
    if !have_root() {
        return;
    }
    let data = payload(BIG, 1);
    let half = BIG / 2;
    for mode in BOTH {
        for (name, existing) in [("f", true), ("new", false)] {
            let sandbox = sandbox_with_old_file();
            let stream = [c_record(BIG, name).as_slice(), &data[..half]].concat();
            let outcome = run(&sandbox, SERVER, &mode.args(&sandbox, &["-t"], ""), &stream);
            let message = format!(
                "{}: upload incomplete: connection closed after {half} of {BIG} bytes; file discarded",
                mode.path(name)
            );
            let tree = assert_failed_cleanly(&outcome, &sandbox, &message);
            assert_content(&tree, "dst/f", OLD);
            if !existing {
                assert_absent(&tree, "dst/new");
            }
        }
    }
}

/// EOF inside a `D`: mid-file in the directory's second file, and after a
/// complete file but before the `E`. Whole files stay (they were
/// confirmed), the cut one does not appear, and the truncated tree is an
/// error, not a success.
#[test]
fn client_vanishes_mid_tree() {
    if !have_root() {
        return;
    }
    let data = payload(BIG, 2);
    let first = upload("a", b"hello");
    for mode in BOTH {
        let sandbox = sandbox_with_old_file();
        let cut_in_file = [
            b"D0755 0 sub\n".as_slice(),
            &first,
            &c_record(BIG, "b"),
            &data[..BIG / 3],
        ]
        .concat();
        let args = mode.args(&sandbox, &["-r", "-t"], "");
        let outcome = run(&sandbox, SERVER, &args, &cut_in_file);
        let message = format!(
            "{}: upload incomplete: connection closed after {} of {BIG} bytes; file discarded",
            mode.path("sub/b"),
            BIG / 3
        );
        let tree = assert_failed_cleanly(&outcome, &sandbox, &message);
        assert_content(&tree, "dst/sub/a", b"hello");
        assert_absent(&tree, "dst/sub/b");

        let sandbox = sandbox_with_old_file();
        let no_end = [b"D0755 0 sub\n".as_slice(), &first].concat();
        let args = mode.args(&sandbox, &["-r", "-t"], "");
        let outcome = run(&sandbox, SERVER, &args, &no_end);
        let message = "protocol error: connection closed inside directory 'sub' (no E record)";
        let tree = assert_failed_cleanly(&outcome, &sandbox, message);
        assert_content(&tree, "dst/sub/a", b"hello");
        assert_content(&tree, "dst/f", OLD);
    }
}

// ---------------------------------------------------------------------------
// The reader goes away during a download

/// The client reads the start of a download and closes its end: the
/// server's next write fails with EPIPE (SIGPIPE is ignored), the session
/// ends with exit 1 and nothing on the server side changed.
#[test]
fn reader_closes_stdout_mid_download() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        for (flags, what) in [(&["-f"][..], "big"), (&["-r", "-f"][..], "")] {
            let sandbox = Sandbox::new(User::Nobody);
            sandbox.file("dst/big", &payload(BIG, 3), 0o644);
            sandbox.file("dst/small", b"small\n", 0o644);
            let before = sandbox.snapshot();
            let mut server = spawn(&sandbox, &mode.args(&sandbox, flags, what));
            let mut stdin = server.stdin.take().expect("stdin");
            let stdout = server.stdout.take().expect("stdout");
            // Ready, then an OK for each record (D, C) the source sends
            // before the data; surplus ones are never read.
            stdin
                .write_all(b"\0\0\0\0")
                .expect("client acknowledgements");
            // Far less than the file: the server is mid-file when we go.
            if !read_some(stdout, 64 * 1024) {
                let _ = server.kill();
                panic!("{mode:?} {flags:?}: the download did not start");
            }
            let exit = wait(&mut server, common::DEFAULT_TIMEOUT);
            drop(stdin);
            let mut stderr = String::new();
            let _ = server
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut stderr);
            assert_eq!(
                exit,
                Exit::Code(1),
                "{mode:?} {flags:?}: expected exit 1 after EPIPE (not SIGPIPE); stderr {stderr:?}"
            );
            assert_eq!(stderr, "", "{mode:?}: stderr reaches the user's terminal");
            let after = sandbox.snapshot();
            assert!(
                before == after,
                "{mode:?}: a download changed the server's files:\n{}",
                before.differences(&after, "before", "after")
            );
        }
    }
}

/// Reads `n` bytes of `stdout` and closes it; false if they did not come
/// in time (a thread reads, so a stalled server cannot hang the test).
fn read_some(mut stdout: ChildStdout, n: usize) -> bool {
    let (done, result) = mpsc::channel();
    thread::spawn(move || {
        let mut start = vec![0; n];
        let _ = done.send(stdout.read_exact(&mut start).is_ok());
    });
    result
        .recv_timeout(common::DEFAULT_TIMEOUT)
        .unwrap_or(false)
}

/// A closed stdout before anything was written, for an upload: nothing
/// appears (the first acknowledgement already fails).
#[test]
fn reader_gone_before_an_upload_starts() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        let sandbox = sandbox_with_old_file();
        let args = mode.args(&sandbox, &["-t"], "f");
        let outcome = Invocation {
            program: OsStr::new(SERVER),
            args: &args,
            cwd: sandbox.root(),
            umask: 0o022,
            user: User::Nobody,
            stdin: &upload("f", &payload(BIG, 4)),
            timeout: common::DEFAULT_TIMEOUT,
            stdout_closed: true,
        }
        .run();
        let tree = sandbox.snapshot();
        assert_eq!(outcome.exit, Exit::Code(1), "{}", context(&outcome, &tree));
        assert_content(&tree, "dst/f", OLD);
        assert!(tree.temp_files().is_empty(), "{tree:?}");
    }
}

// ---------------------------------------------------------------------------
// The server is killed

/// The jail layout of a drop account below the cleanup's base directory
/// (`dst` plays `/srv/scp-drop`): the unit only looks two levels down.
const JAIL: &str = "alice";
const INCOMING: &str = "alice/incoming";

/// SIGKILL halfway through an upload: nothing can clean up, so the old
/// file must be intact by construction (the bytes went to a temporary
/// file), exactly one temporary file is left, and the shipped cleanup
/// leaves it while it is young and removes it once it is old.
#[test]
fn sigkill_mid_upload_leaves_the_old_file_and_one_temp_file_for_the_cleanup() {
    if !have_root() {
        return;
    }
    let data = payload(BIG, 5);
    for mode in BOTH {
        let sandbox = Sandbox::new(User::Nobody);
        sandbox
            .dir(format!("dst/{JAIL}"), 0o755)
            .dir(format!("dst/{INCOMING}"), 0o755)
            .file(format!("dst/{INCOMING}/f"), OLD, 0o644);
        let args = match mode {
            Mode::Unconfined => mode.args(&sandbox, &["-t"], &format!("{INCOMING}/f")),
            Mode::Rooted => {
                let root = sandbox.path(format!("dst/{JAIL}"));
                [
                    "--root".into(),
                    root.into(),
                    "-t".into(),
                    "/incoming/f".into(),
                ]
                .to_vec()
            }
        };
        let mut server = spawn(&sandbox, &args);
        let mut stdin = server.stdin.take().expect("stdin");
        let half = BIG / 2;
        stdin.write_all(&c_record(BIG, "f")).expect("record");
        stdin.write_all(&data[..half]).expect("half the data");
        let incoming = sandbox.path(format!("dst/{INCOMING}"));
        let temp = wait_for_temp_file(&incoming, half as u64);
        server.kill().expect("SIGKILL");
        let exit = wait(&mut server, common::DEFAULT_TIMEOUT);
        assert_eq!(exit, Exit::Signal(libc::SIGKILL), "{mode:?}");
        drop(stdin);

        let tree = sandbox.snapshot();
        assert_content(&tree, &format!("dst/{INCOMING}/f"), OLD);
        assert_eq!(tree.temp_files().len(), 1, "{mode:?}: {tree:?}");

        // A young temporary file may belong to a live upload: kept.
        cleanup::run_cleanup(&sandbox.path("dst"));
        assert!(temp.exists(), "{mode:?}: the cleanup removed a young file");
        cleanup::make_older_than_cleanup_age(&temp);
        cleanup::run_cleanup(&sandbox.path("dst"));
        let after = sandbox.snapshot();
        assert!(after.temp_files().is_empty(), "{mode:?}: {after:?}");
        assert_content(&after, &format!("dst/{INCOMING}/f"), OLD);
        assert_eq!(after.0.len(), tree.0.len() - 1, "only the temp file went");
    }
}

/// SIGKILL halfway through the upload of a new file: it was being written
/// to an unnamed file (`O_TMPFILE`), so nothing at all is left behind, not
/// even a temporary file for the cleanup.
#[test]
fn sigkill_mid_upload_of_a_new_file_leaves_nothing() {
    if !have_root() {
        return;
    }
    let data = payload(BIG, 6);
    for mode in BOTH {
        let sandbox = Sandbox::new(User::Nobody);
        sandbox.dir("dst/incoming", 0o755);
        let before = sandbox.snapshot();
        let args = mode.args(&sandbox, &["-t"], "incoming");
        let mut server = spawn(&sandbox, &args);
        let mut stdin = server.stdin.take().expect("stdin");
        let half = BIG / 2;
        stdin.write_all(&c_record(BIG, "new")).expect("record");
        stdin.write_all(&data[..half]).expect("half the data");
        wait_for_unnamed_file(server.id(), half as u64);
        server.kill().expect("SIGKILL");
        let exit = wait(&mut server, common::DEFAULT_TIMEOUT);
        assert_eq!(exit, Exit::Signal(libc::SIGKILL), "{mode:?}");
        drop(stdin);
        let after = sandbox.snapshot();
        assert_eq!(after, before, "{mode:?}: the kill left something behind");
    }
}

/// Waits until process `pid` holds an unnamed file of `size` bytes: an
/// open descriptor whose link in /proc reads "… (deleted)".
fn wait_for_unnamed_file(pid: u32, size: u64) {
    let deadline = Instant::now() + common::DEFAULT_TIMEOUT;
    let fds = PathBuf::from(format!("/proc/{pid}/fd"));
    loop {
        let found = fs::read_dir(&fds)
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| {
                let unnamed = fs::read_link(fd.path())
                    .is_ok_and(|target| target.to_string_lossy().ends_with(" (deleted)"));
                unnamed && fs::metadata(fd.path()).is_ok_and(|m| m.len() == size)
            });
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process {pid} holds no unnamed file of {size} bytes"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Another process creates the name while its upload is under way, in a
/// directory the session created (where the target is not looked at
/// first) and in one that existed: the kernel refuses to link over it,
/// the client is told, and the other process's file keeps its bytes.
#[test]
fn a_name_taken_during_the_upload_is_not_overwritten() {
    if !have_root() {
        return;
    }
    let data = payload(64 * 1024, 7);
    for mode in BOTH {
        for fresh_dir in [true, false] {
            let sandbox = Sandbox::new(User::Nobody);
            sandbox.dir("dst/in", 0o777);
            let flags: &[&str] = if fresh_dir { &["-r", "-t"] } else { &["-t"] };
            let args = mode.args(&sandbox, flags, "in");
            let mut server = spawn(&sandbox, &args);
            let mut stdin = server.stdin.take().expect("stdin");
            let mut stdout = server.stdout.take().expect("stdout");
            let mut expect_ack = |what: &str| {
                let mut byte = [1u8];
                stdout.read_exact(&mut byte).expect(what);
                assert_eq!(byte, [0], "{mode:?}: {what} not acknowledged");
            };
            expect_ack("start");
            let (dir, shown) = if fresh_dir {
                stdin.write_all(b"D0755 0 sub\n").expect("D record");
                expect_ack("D record");
                ("dst/in/sub", format!("{}/sub/f", mode.path("in")))
            } else {
                ("dst/in", format!("{}/f", mode.path("in")))
            };
            stdin.write_all(&c_record(data.len(), "f")).expect("record");
            expect_ack("C record");
            fs::write(sandbox.path(format!("{dir}/f")), OLD).expect("the other process's file");
            stdin.write_all(&data).expect("data");
            stdin.write_all(b"\0").expect("sender's OK");
            drop(stdin);
            let mut rest = Vec::new();
            stdout.read_to_end(&mut rest).expect("replies");
            let exit = wait(&mut server, common::DEFAULT_TIMEOUT);
            let case = format!("{mode:?}, fresh directory {fresh_dir}");
            let expected = error_line(&format!("{shown}: File exists"));
            assert!(
                rest.starts_with(&expected),
                "{case}: replies {} (expected {})",
                show(&rest),
                show(&expected)
            );
            assert_eq!(exit, Exit::Code(1), "{case}");
            let tree = sandbox.snapshot();
            assert_content(&tree, &format!("{dir}/f"), OLD);
            assert!(tree.temp_files().is_empty(), "{case}: {tree:?}");
        }
    }
}

/// Waits until the server has written `size` bytes to its temporary file
/// in `dir` (so the kill lands mid-upload, not before it) and returns it.
fn wait_for_temp_file(dir: &Path, size: u64) -> PathBuf {
    let deadline = Instant::now() + common::DEFAULT_TIMEOUT;
    loop {
        let temps = cleanup::temp_files_under(dir);
        if let [temp] = temps.as_slice()
            && fs::metadata(temp).is_ok_and(|m| m.len() == size)
        {
            return temp.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no temporary file of {size} bytes in {}: {temps:?}",
            dir.display()
        );
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------
// ENOSPC and EFBIG

/// A 1 MiB tmpfs and a 3 MiB upload: `No space left on device`, the old
/// file intact, the new one absent, the temporary file gone (so the space
/// is free again).
#[test]
fn disk_full() {
    if !have_root() {
        return;
    }
    let data = payload(BIG, 6);
    for mode in BOTH {
        for (name, existing) in [("f", true), ("new", false)] {
            let sandbox = Sandbox::new(User::Nobody);
            let Some(_tmpfs) = Tmpfs::mount(&sandbox.path("dst"), "1m") else {
                return;
            };
            sandbox.file("dst/f", OLD, 0o644);
            let outcome = run(
                &sandbox,
                SERVER,
                &mode.args(&sandbox, &["-t"], ""),
                &upload(name, &data),
            );
            let message = format!("{}: No space left on device", mode.path(name));
            let tree = assert_failed_cleanly(&outcome, &sandbox, &message);
            assert_content(&tree, "dst/f", OLD);
            if !existing {
                assert_absent(&tree, "dst/new");
            }
        }
    }
}

/// RLIMIT_FSIZE below the upload's size: the write fails with EFBIG and
/// the client reads `File too large`. The process must not die of
/// SIGXFSZ (whose default action would leave the temporary file behind).
#[test]
fn file_size_limit() {
    if !have_root() {
        return;
    }
    let prlimit = "/usr/bin/prlimit";
    if !Path::new(prlimit).exists()
        && sshd::unavailable::<()>("prlimit (util-linux) is missing").is_none()
    {
        return;
    }
    let data = payload(BIG, 7);
    for mode in BOTH {
        for (name, existing) in [("f", true), ("new", false)] {
            let sandbox = sandbox_with_old_file();
            let mut args: Vec<OsString> =
                vec!["--fsize=1048576".into(), "--".into(), SERVER.into()];
            args.extend(mode.args(&sandbox, &["-t"], ""));
            let outcome = run(&sandbox, prlimit, &args, &upload(name, &data));
            let message = format!("{}: File too large", mode.path(name));
            let tree = assert_failed_cleanly(&outcome, &sandbox, &message);
            assert_content(&tree, "dst/f", OLD);
            if !existing {
                assert_absent(&tree, "dst/new");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// EACCES and EROFS

/// What a client sends for each kind of target before the server's answer
/// stops it: a file over `f`, a new file, a new directory. The refused
/// record is the last thing sent (the client sends no data after `\x01`).
const REFUSED_RECORDS: [(&str, &[u8], &str); 3] = [
    ("-t", b"C0644 5 f\n", "f"),
    ("-t", b"C0644 5 new\n", "new"),
    ("-rt", b"D0755 0 sub\n", "sub"),
];

/// nobody uploading into a directory (and over a file) owned by root:
/// `Permission denied` and nothing written.
#[test]
fn permission_denied_on_the_target() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        for (flags, record, name) in REFUSED_RECORDS {
            let sandbox = sandbox_with_old_file();
            sandbox
                .owned_by("dst/f", User::Root)
                .owned_by("dst", User::Root);
            let before = sandbox.snapshot();
            let outcome = run(&sandbox, SERVER, &mode.args(&sandbox, &[flags], ""), record);
            let message = format!("{}: Permission denied", mode.path(name));
            let tree = assert_failed_cleanly(&outcome, &sandbox, &message);
            assert!(
                before == tree,
                "{mode:?} {name}: changed\n{}",
                before.differences(&tree, "before", "after")
            );
        }
    }
}

/// A read-only filesystem: `Read-only file system` and nothing written.
#[test]
fn read_only_filesystem() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        for (flags, record, name) in REFUSED_RECORDS {
            let sandbox = Sandbox::new(User::Nobody);
            let Some(tmpfs) = Tmpfs::mount(&sandbox.path("dst"), "1m") else {
                return;
            };
            sandbox.file("dst/f", OLD, 0o644);
            tmpfs.make_read_only();
            let before = sandbox.snapshot();
            let outcome = run(&sandbox, SERVER, &mode.args(&sandbox, &[flags], ""), record);
            let message = format!("{}: Read-only file system", mode.path(name));
            let tree = assert_failed_cleanly(&outcome, &sandbox, &message);
            assert!(
                before == tree,
                "{mode:?} {name}: changed\n{}",
                before.differences(&tree, "before", "after")
            );
        }
    }
}
