//! Shared by the audit-trail tests (`audit_journald.rs`, `audit_json.rs`):
//! scratch directories, a bounded run of the binary with protocol bytes on
//! stdin, a receiver of journald native-protocol datagrams, and the rule
//! for missing prerequisites (skip with a reason; under `CI`, fail).

// Each test crate uses only part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_scp-server");

/// Longest any one run may take; more is a hang, which is a failure.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// The client address every test session claims to come from (sshd's
/// `SSH_CONNECTION`: client ip, client port, server ip, server port).
pub const SSH_CONNECTION: &str = "203.0.113.5 52144 192.0.2.1 22";

/// Debian's `nobody`: the tests' sessions run unprivileged where they can.
pub const NOBODY: u32 = 65534;

// ---------------------------------------------------------------------------
// Prerequisites

pub fn running_in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Skips a test whose prerequisite is missing, saying why; in CI a missing
/// prerequisite is a failure, so that a green run cannot hide untested code.
pub fn unavailable<T>(reason: &str) -> Option<T> {
    if running_in_ci() {
        panic!("audit test cannot run in CI (CI is set): {reason}");
    }
    eprintln!("SKIPPED audit test: {reason}");
    None
}

pub fn running_as_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

// ---------------------------------------------------------------------------
// Scratch directories

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, removed on drop. Short
/// names: a Unix socket path must fit in 108 bytes.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("scpa-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).expect("create scratch dir");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    /// A directory (with parents) owned by `uid` when running as root.
    pub fn dir(&self, rel: &str, uid: u32) -> PathBuf {
        let path = self.join(rel);
        fs::create_dir_all(&path).unwrap();
        give_to(&path, uid);
        path
    }

    pub fn file(&self, rel: &str, content: &[u8], uid: u32) -> PathBuf {
        let path = self.join(rel);
        fs::write(&path, content).unwrap();
        give_to(&path, uid);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn give_to(path: &Path, uid: u32) {
    if running_as_root() {
        std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Running the binary

/// What one run produced.
pub struct Run {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: Option<ExitStatus>,
    pub timed_out: bool,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The `\x01` line the client was sent, without `\x01scp: ` and LF.
    pub fn client_error(&self) -> String {
        let start = self
            .stdout
            .iter()
            .position(|&b| b == 1)
            .expect("a \\x01 line on stdout");
        let rest = &self.stdout[start + 1..];
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        let text = String::from_utf8_lossy(line).into_owned();
        text.strip_prefix("scp: ").unwrap_or(&text).to_owned()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {:?}{}, stdout {:?}, stderr {:?}",
            self.status,
            if self.timed_out { " (timed out)" } else { "" },
            String::from_utf8_lossy(&self.stdout),
            self.stderr_text()
        )
    }
}

/// Runs `command` with `stdin` fed to it for at most [`RUN_TIMEOUT`].
pub fn run(command: Command, stdin: &[u8]) -> Run {
    run_for(command, stdin, RUN_TIMEOUT)
}

/// Runs `command` with `stdin` fed to it for at most `limit`; a run that
/// takes longer is killed (with its process group) and marked `timed_out`.
pub fn run_for(mut command: Command, stdin: &[u8], limit: Duration) -> Run {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let feeder = thread::spawn(move || {
        // A child that stops reading early makes this fail: expected.
        let _ = input.write_all(&bytes);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let stderr = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let (status, timed_out) = loop {
        match child.try_wait().expect("wait for the child") {
            Some(status) => break (Some(status), false),
            None if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            None => {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                break (child.wait().ok(), true);
            }
        }
    };
    let _ = feeder.join();
    Run {
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        status,
        timed_out,
    }
}

/// The binary with `args`, in `cwd`, with only PATH, LC_ALL and sshd's
/// SSH_CONNECTION in its environment.
pub fn scp_server(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command.args(args);
    clean_environment(&mut command);
    command
}

pub fn clean_environment(command: &mut Command) {
    command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .env("SSH_CONNECTION", SSH_CONNECTION);
}

// ---------------------------------------------------------------------------
// The SCP streams the tests send

/// One file uploaded to `scp -t`: the `C` record, its bytes, the sender's OK.
pub fn upload_stream(name: &str, content: &[u8], mode: u32) -> Vec<u8> {
    let mut stream = format!("C{mode:04o} {} {name}\n", content.len()).into_bytes();
    stream.extend_from_slice(content);
    stream.push(0);
    stream
}

/// What `scp -f` of one file reads from its client: ready, OK after the
/// `C` record, OK after the data.
pub const DOWNLOAD_ONE_FILE: &[u8] = b"\0\0\0";

// ---------------------------------------------------------------------------
// journald's native protocol

/// One journal entry: field name → value (values may be binary).
pub type Entry = BTreeMap<String, Vec<u8>>;

/// Reads the value of `field` as text ("" when it is missing).
pub fn field(entry: &Entry, name: &str) -> String {
    entry
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// Parses one datagram of journald's native protocol
/// (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): fields one after the
/// other, each either `NAME=VALUE\n` (a value without newlines) or
/// `NAME\n` followed by the value's length as a little-endian u64, the
/// value, and `\n` (any bytes). A repeated name keeps its last value.
pub fn parse_datagram(mut bytes: &[u8]) -> Result<Entry, String> {
    let mut entry = Entry::new();
    while !bytes.is_empty() {
        let end = bytes
            .iter()
            .position(|&b| b == b'=' || b == b'\n')
            .ok_or("a field name without '=' or newline")?;
        let name = String::from_utf8(bytes[..end].to_vec()).map_err(|e| e.to_string())?;
        if name.is_empty() {
            return Err("an empty field name".into());
        }
        if bytes[end] == b'=' {
            let rest = &bytes[end + 1..];
            let value_end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or_else(|| format!("{name}: value without a terminating newline"))?;
            entry.insert(name, rest[..value_end].to_vec());
            bytes = &rest[value_end + 1..];
        } else {
            let rest = &bytes[end + 1..];
            let size: [u8; 8] = rest
                .get(..8)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| format!("{name}: truncated length"))?;
            let size = usize::try_from(u64::from_le_bytes(size)).map_err(|e| e.to_string())?;
            let value = rest
                .get(8..8 + size)
                .ok_or_else(|| format!("{name}: value shorter than its length"))?;
            if rest.get(8 + size) != Some(&b'\n') {
                return Err(format!("{name}: binary value not followed by a newline"));
            }
            entry.insert(name, value.to_vec());
            bytes = &rest[8 + size + 1..];
        }
    }
    Ok(entry)
}

/// A datagram socket standing in for journald's, bound at `path` and open
/// to every user (sessions run as nobody).
pub struct FakeJournal {
    socket: UnixDatagram,
    pub path: PathBuf,
}

impl FakeJournal {
    pub fn bind(path: &Path) -> FakeJournal {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        let socket =
            UnixDatagram::bind(path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        fs::set_permissions(path, fs::Permissions::from_mode(0o666)).unwrap();
        socket.set_nonblocking(true).unwrap();
        FakeJournal {
            socket,
            path: path.to_owned(),
        }
    }

    /// Every entry received so far; the empty datagram tracing-journald
    /// sends to probe the socket is skipped. Waits briefly for stragglers:
    /// the session has exited, but datagrams are queued, never delayed.
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let quiet_until = Instant::now() + Duration::from_millis(200);
        loop {
            match self.socket.recv(&mut buf) {
                Ok(0) => {}
                Ok(n) => entries.push(parse_datagram(&buf[..n]).unwrap_or_else(|e| {
                    panic!(
                        "malformed datagram ({e}): {:?}",
                        String::from_utf8_lossy(&buf[..n])
                    )
                })),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= quiet_until {
                        return entries;
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("receiving from the test journal: {e}"),
            }
        }
    }
}

/// The entries of one kind (`SCP_EVENT`).
pub fn events<'a>(entries: &'a [Entry], kind: &str) -> Vec<&'a Entry> {
    entries
        .iter()
        .filter(|e| field(e, "SCP_EVENT") == kind)
        .collect()
}
