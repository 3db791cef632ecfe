//! Fault injection over SFTP (issue 13), as tests/faults.rs does for SCP: a
//! client that vanishes mid-upload, the server killed, a full disk, a
//! file-size limit, a read-only filesystem and a directory it may not
//! write. Each error reaches the client as an SFTP status and the session
//! goes on; no upload is published partial — an existing file keeps its
//! bytes, a new name does not appear.
//!
//! Cases run unconfined (paths relative to the server's directory) and
//! with `--root`, as `nobody` in sandboxes root builds; the full-disk and
//! read-only cases mount a small tmpfs. Without root they are skipped with
//! a note, except in CI, where a missing prerequisite fails.

mod common;
mod sftp_support;
mod sshd;

use std::fs;
use std::time::Duration;

use common::{NOBODY, Sandbox, Tree, User};
use sftp_support::{Attrs, Launch, Reply, Server, Session, pflags, status};

/// What an existing target holds before each upload.
const OLD: &[u8] = b"old content, must survive byte for byte\n";
const BIG: usize = 3 * 1024 * 1024;
const CHUNK: usize = 32 * 1024;

fn have_root() -> bool {
    sshd::running_as_root()
        || sshd::unavailable::<()>(
            "fault injection needs root (sessions run as nobody, tmpfs mounts)",
        )
        .is_some()
}

/// A small tmpfs over a sandbox directory, owned by nobody; unmounted on
/// drop. Declared after the sandbox so it goes first.
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Option<Tmpfs> {
        let (uid, gid) = NOBODY;
        let options = format!("size={size},mode=0755,uid={uid},gid={gid}");
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "scp-server-sftp-faults"])
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

    fn make_read_only(&self) {
        let status = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(status.success(), "remount read-only");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.path)
                .status();
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Unconfined,
    Rooted,
}

const BOTH: [Mode; 2] = [Mode::Unconfined, Mode::Rooted];

impl Mode {
    fn path(self, name: &str) -> String {
        match self {
            Mode::Unconfined => name.to_string(),
            Mode::Rooted => format!("/{name}"),
        }
    }

    fn launch(self, sandbox: &Sandbox) -> Launch {
        let dst = sandbox.path("dst");
        let launch = Launch::new(Server::Ours)
            .user(NOBODY.0, NOBODY.1)
            .cwd(&dst)
            .timeout(Duration::from_secs(30));
        match self {
            Mode::Unconfined => launch,
            Mode::Rooted => launch.args(&[std::ffi::OsStr::new("--root"), dst.as_os_str()]),
        }
    }
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn open_for_upload(s: &mut Session, path: &str) -> Vec<u8> {
    s.open(
        path,
        pflags::WRITE | pflags::CREAT | pflags::TRUNC,
        &Attrs::none(),
    )
    .expect_handle()
}

/// Writes `data` in chunks; the first reply that is not OK, if any.
fn write_all(s: &mut Session, handle: &[u8], data: &[u8]) -> Option<Reply> {
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        let reply = s.write(handle, (i * CHUNK) as u64, chunk);
        if reply.status_code() != Some(status::OK) {
            return Some(reply);
        }
    }
    None
}

fn assert_old_intact_new_absent(sandbox: &Sandbox, what: &str) {
    assert_eq!(fs::read(sandbox.path("dst/f")).unwrap(), OLD, "{what}: f");
    assert!(
        fs::symlink_metadata(sandbox.path("dst/new")).is_err(),
        "{what}: new published"
    );
}

fn no_temp_files(sandbox: &Sandbox, what: &str) {
    let temps = Tree::of(&sandbox.path("dst")).temp_files();
    assert!(temps.is_empty(), "{what}: temporary files left: {temps:?}");
}

fn sandbox_with_old_file() -> Sandbox {
    let sandbox = Sandbox::new(User::Nobody);
    sandbox.file("dst/f", OLD, 0o644);
    sandbox
}

/// The session still answers after a fault: STAT of the old file.
fn still_serving(s: &mut Session, mode: Mode) {
    let attrs = s.stat(mode.path("f")).expect_attrs();
    assert_eq!(attrs.size, Some(OLD.len() as u64));
}

#[test]
fn eof_mid_write_leaves_the_old_file_and_no_new_name() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        let sandbox = sandbox_with_old_file();
        let data = payload(BIG);
        for name in ["f", "new"] {
            let mut s = mode.launch(&sandbox).start();
            let handle = open_for_upload(&mut s, &mode.path(name));
            assert!(write_all(&mut s, &handle, &data[..BIG / 2]).is_none());
            s.close_stdin();
            let finished = s.wait_exit();
            assert!(!finished.timed_out, "{mode:?}: hung after EOF");
            assert_old_intact_new_absent(&sandbox, &format!("{mode:?} EOF {name}"));
            no_temp_files(&sandbox, &format!("{mode:?} EOF {name}"));
        }
    }
}

#[test]
fn sigkill_mid_upload_leaves_the_old_file_and_no_new_name() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        let sandbox = sandbox_with_old_file();
        let data = payload(BIG);
        for name in ["f", "new"] {
            let mut s = mode.launch(&sandbox).start();
            let handle = open_for_upload(&mut s, &mode.path(name));
            assert!(write_all(&mut s, &handle, &data[..BIG / 2]).is_none());
            let pid = nix::unistd::Pid::from_raw(s.pid() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
            let finished = s.wait_exit();
            assert_eq!(finished.signal(), Some(9));
            assert_old_intact_new_absent(&sandbox, &format!("{mode:?} KILL {name}"));
        }
    }
}

/// The upload that fails: a WRITE or the CLOSE answers FAILURE with
/// OpenSSH's message for the code (a system error's own text goes to the
/// audit trail, not to the client: src/sftp/server.rs `Fail::Os`); nothing
/// is published and the session goes on.
fn failing_upload(s: &mut Session, mode: Mode, name: &str, data: &[u8], text: &str) {
    let handle = open_for_upload(s, &mode.path(name));
    let failed = write_all(s, &handle, data);
    let closed = s.close(&handle);
    let reply = failed.unwrap_or(closed);
    match &reply {
        Reply::Status { code, message } => {
            assert_eq!(*code, status::FAILURE, "{mode:?} {name}: {reply:?}");
            assert!(message.contains(text), "{mode:?} {name}: {message:?}");
        }
        other => panic!("{mode:?} {name}: expected FAILURE, got {other:?}"),
    }
}

#[test]
fn no_space_left_is_a_failure_status_and_nothing_partial_is_published() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        let sandbox = Sandbox::new(User::Nobody);
        let Some(_tmpfs) = Tmpfs::mount(&sandbox.path("dst"), "1m") else {
            return;
        };
        sandbox.file("dst/f", OLD, 0o644);
        let data = payload(BIG);
        let mut s = mode.launch(&sandbox).start();
        for name in ["f", "new"] {
            failing_upload(&mut s, mode, name, &data, "Failure");
            assert_old_intact_new_absent(&sandbox, &format!("{mode:?} ENOSPC {name}"));
            still_serving(&mut s, mode);
        }
        let finished = s.finish();
        assert_eq!(finished.code(), Some(0), "{}", finished.stderr_text());
        no_temp_files(&sandbox, &format!("{mode:?} ENOSPC"));
    }
}

#[test]
fn file_size_limit_is_a_failure_status_and_sigxfsz_does_not_kill() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        let sandbox = sandbox_with_old_file();
        let data = payload(BIG);
        let mut s = mode.launch(&sandbox).file_size_limit(1 << 20).start();
        for name in ["f", "new"] {
            failing_upload(&mut s, mode, name, &data, "Failure");
            assert_old_intact_new_absent(&sandbox, &format!("{mode:?} EFBIG {name}"));
            still_serving(&mut s, mode);
        }
        let finished = s.finish();
        assert_eq!(finished.code(), Some(0), "{}", finished.stderr_text());
        no_temp_files(&sandbox, &format!("{mode:?} EFBIG"));
    }
}

/// Requests that change the tree, each refused with `expected` and
/// OpenSSH's message for it; the tree unchanged and the session still serving.
fn refused_changes(s: &mut Session, mode: Mode, expected: u32, text: &str) {
    for (what, reply) in [
        (
            "OPEN f",
            s.open(
                mode.path("f"),
                pflags::WRITE | pflags::TRUNC,
                &Attrs::none(),
            ),
        ),
        (
            "OPEN new",
            s.open(
                mode.path("new"),
                pflags::WRITE | pflags::CREAT,
                &Attrs::none(),
            ),
        ),
        ("MKDIR", s.mkdir(mode.path("sub"), &Attrs::none())),
        ("REMOVE", s.remove(mode.path("f"))),
        ("RENAME", s.rename(mode.path("f"), mode.path("g"))),
    ] {
        match &reply {
            Reply::Status { code, message } => {
                assert_eq!(*code, expected, "{mode:?} {what}: {reply:?}");
                assert!(message.contains(text), "{mode:?} {what}: {message:?}");
            }
            other => panic!("{mode:?} {what}: expected a status, got {other:?}"),
        }
        still_serving(s, mode);
    }
}

/// The client gets OpenSSH's generic message; the audit trail keeps the
/// system's own reason.
#[test]
fn the_audit_trail_names_the_reason_of_a_full_disk() {
    if !have_root() {
        return;
    }
    let sandbox = Sandbox::new(User::Nobody);
    let Some(_tmpfs) = Tmpfs::mount(&sandbox.path("dst"), "1m") else {
        return;
    };
    sandbox.file("dst/f", OLD, 0o644);
    let log = sandbox.path("audit.jsonl");
    let dst = sandbox.path("dst");
    let mut s = Launch::new(Server::Ours)
        .args(&[
            std::ffi::OsString::from("--root"),
            dst.clone().into_os_string(),
            "--log".into(),
            format!("json:{}", log.display()).into(),
        ])
        .user(NOBODY.0, NOBODY.1)
        .cwd(sandbox.root())
        .timeout(Duration::from_secs(30))
        .start();
    failing_upload(&mut s, Mode::Rooted, "new", &payload(BIG), "Failure");
    let finished = s.finish();
    assert_eq!(finished.code(), Some(0), "{}", finished.stderr_text());
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("No space left on device"),
        "audit log lacks the reason:\n{text}"
    );
    assert_old_intact_new_absent(&sandbox, "audit ENOSPC");
}

#[test]
fn read_only_filesystem_is_a_status_and_the_session_goes_on() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        let sandbox = Sandbox::new(User::Nobody);
        let Some(tmpfs) = Tmpfs::mount(&sandbox.path("dst"), "1m") else {
            return;
        };
        sandbox.file("dst/f", OLD, 0o644);
        tmpfs.make_read_only();
        let before = sandbox.snapshot();
        let mut s = mode.launch(&sandbox).start();
        refused_changes(&mut s, mode, status::FAILURE, "Failure");
        s.finish();
        let after = sandbox.snapshot();
        assert!(
            before == after,
            "{}",
            before.differences(&after, "before", "after")
        );
    }
}

#[test]
fn permission_denied_is_a_status_and_the_session_goes_on() {
    if !have_root() {
        return;
    }
    for mode in BOTH {
        let sandbox = sandbox_with_old_file();
        sandbox
            .owned_by("dst/f", User::Root)
            .owned_by("dst", User::Root);
        let before = sandbox.snapshot();
        let mut s = mode.launch(&sandbox).start();
        refused_changes(&mut s, mode, status::PERMISSION_DENIED, "Permission denied");
        s.finish();
        let after = sandbox.snapshot();
        assert!(
            before == after,
            "{}",
            before.differences(&after, "before", "after")
        );
    }
}
