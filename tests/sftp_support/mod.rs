//! A raw SFTP v3 client for the tests: it starts a server on pipes (our
//! binary with `--sftp`, or OpenSSH's `sftp-server`), speaks the protocol
//! byte by byte and hands back each reply parsed, so tests can compare two
//! servers or send packets no real client would.
//!
//! The wire format is written here from draft-ietf-secsh-filexfer-02 and
//! OpenSSH's PROTOCOL file, not taken from the server's own code, so a
//! mistake in the server's encoder cannot hide behind the same mistake here.
//!
//! Every session is bounded: a watchdog kills the child after its timeout,
//! which turns a hung server into a failed read instead of a hung test.

// Each test crate includes this module and uses only part of it.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// OpenSSH's reference server.
pub const OPENSSH_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// A session still running after this long is a hang.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Packet types (draft-ietf-secsh-filexfer-02 §3).
pub mod op {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;
}

/// STATUS codes.
pub mod status {
    pub const OK: u32 = 0;
    pub const EOF: u32 = 1;
    pub const NO_SUCH_FILE: u32 = 2;
    pub const PERMISSION_DENIED: u32 = 3;
    pub const FAILURE: u32 = 4;
    pub const BAD_MESSAGE: u32 = 5;
    pub const OP_UNSUPPORTED: u32 = 8;
}

/// OPEN's pflags.
pub mod pflags {
    pub const READ: u32 = 0x01;
    pub const WRITE: u32 = 0x02;
    pub const APPEND: u32 = 0x04;
    pub const CREAT: u32 = 0x08;
    pub const TRUNC: u32 = 0x10;
    pub const EXCL: u32 = 0x20;
}

const ATTR_SIZE: u32 = 0x01;
const ATTR_UIDGID: u32 = 0x02;
const ATTR_PERMISSIONS: u32 = 0x04;
const ATTR_ACMODTIME: u32 = 0x08;
const ATTR_EXTENDED: u32 = 0x8000_0000;

// ---------------------------------------------------------------------------
// Values on the wire
// ---------------------------------------------------------------------------

/// File attributes; `None` is a field the flags leave out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub permissions: Option<u32>,
    pub atime: Option<u32>,
    pub mtime: Option<u32>,
}

impl Attrs {
    pub fn none() -> Attrs {
        Attrs::default()
    }

    pub fn perms(mode: u32) -> Attrs {
        Attrs {
            permissions: Some(mode),
            ..Attrs::default()
        }
    }

    pub fn size(size: u64) -> Attrs {
        Attrs {
            size: Some(size),
            ..Attrs::default()
        }
    }

    pub fn times(atime: u32, mtime: u32) -> Attrs {
        Attrs {
            atime: Some(atime),
            mtime: Some(mtime),
            ..Attrs::default()
        }
    }

    pub fn owner(uid: u32, gid: u32) -> Attrs {
        Attrs {
            uid: Some(uid),
            gid: Some(gid),
            ..Attrs::default()
        }
    }

    /// The permission bits without the file type.
    pub fn mode(&self) -> Option<u32> {
        self.permissions.map(|p| p & 0o7777)
    }

    /// The file-type bits (`S_IFMT`) of the permissions.
    pub fn file_type(&self) -> Option<u32> {
        self.permissions.map(|p| p & 0o170000)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut flags = 0;
        if self.size.is_some() {
            flags |= ATTR_SIZE;
        }
        if self.uid.is_some() || self.gid.is_some() {
            flags |= ATTR_UIDGID;
        }
        if self.permissions.is_some() {
            flags |= ATTR_PERMISSIONS;
        }
        if self.atime.is_some() || self.mtime.is_some() {
            flags |= ATTR_ACMODTIME;
        }
        put_u32(out, flags);
        if let Some(size) = self.size {
            put_u64(out, size);
        }
        if flags & ATTR_UIDGID != 0 {
            put_u32(out, self.uid.unwrap_or(u32::MAX));
            put_u32(out, self.gid.unwrap_or(u32::MAX));
        }
        if let Some(perms) = self.permissions {
            put_u32(out, perms);
        }
        if flags & ATTR_ACMODTIME != 0 {
            put_u32(out, self.atime.unwrap_or(0));
            put_u32(out, self.mtime.unwrap_or(0));
        }
    }

    fn decode(input: &mut Reader) -> Attrs {
        let flags = input.u32();
        let mut attrs = Attrs::default();
        if flags & ATTR_SIZE != 0 {
            attrs.size = Some(input.u64());
        }
        if flags & ATTR_UIDGID != 0 {
            attrs.uid = Some(input.u32());
            attrs.gid = Some(input.u32());
        }
        if flags & ATTR_PERMISSIONS != 0 {
            attrs.permissions = Some(input.u32());
        }
        if flags & ATTR_ACMODTIME != 0 {
            attrs.atime = Some(input.u32());
            attrs.mtime = Some(input.u32());
        }
        if flags & ATTR_EXTENDED != 0 {
            for _ in 0..input.u32() {
                input.string();
                input.string();
            }
        }
        attrs
    }
}

/// One entry of a NAME reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameEntry {
    pub name: Vec<u8>,
    pub longname: Vec<u8>,
    pub attrs: Attrs,
}

/// A reply, parsed. Variants are named after the packet types
/// (`SSH_FXP_EXTENDED_REPLY` included).
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Status { code: u32, message: String },
    Handle(Vec<u8>),
    Data(Vec<u8>),
    Name(Vec<NameEntry>),
    Attrs(Attrs),
    ExtendedReply(Vec<u8>),
}

impl Reply {
    /// The reply's type and status code, without the variable parts: what
    /// two servers must agree on in any case.
    pub fn shape(&self) -> String {
        match self {
            Reply::Status { code, .. } => format!("STATUS {}", status_name(*code)),
            Reply::Handle(_) => "HANDLE".into(),
            Reply::Data(_) => "DATA".into(),
            Reply::Name(_) => "NAME".into(),
            Reply::Attrs(_) => "ATTRS".into(),
            Reply::ExtendedReply(_) => "EXTENDED_REPLY".into(),
        }
    }

    pub fn status_code(&self) -> Option<u32> {
        match self {
            Reply::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn expect_status(&self, expected: u32) -> &Self {
        assert_eq!(
            self.status_code(),
            Some(expected),
            "expected STATUS {}, got {self:?}",
            status_name(expected)
        );
        self
    }

    pub fn expect_ok(&self) -> &Self {
        self.expect_status(status::OK)
    }

    pub fn expect_handle(&self) -> Vec<u8> {
        match self {
            Reply::Handle(handle) => handle.clone(),
            other => panic!("expected HANDLE, got {other:?}"),
        }
    }

    pub fn expect_data(&self) -> Vec<u8> {
        match self {
            Reply::Data(data) => data.clone(),
            other => panic!("expected DATA, got {other:?}"),
        }
    }

    pub fn expect_name(&self) -> Vec<NameEntry> {
        match self {
            Reply::Name(names) => names.clone(),
            other => panic!("expected NAME, got {other:?}"),
        }
    }

    pub fn expect_attrs(&self) -> Attrs {
        match self {
            Reply::Attrs(attrs) => attrs.clone(),
            other => panic!("expected ATTRS, got {other:?}"),
        }
    }

    pub fn expect_extended(&self) -> Vec<u8> {
        match self {
            Reply::ExtendedReply(body) => body.clone(),
            other => panic!("expected EXTENDED_REPLY, got {other:?}"),
        }
    }
}

pub fn status_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "EOF",
        2 => "NO_SUCH_FILE",
        3 => "PERMISSION_DENIED",
        4 => "FAILURE",
        5 => "BAD_MESSAGE",
        6 => "NO_CONNECTION",
        7 => "CONNECTION_LOST",
        8 => "OP_UNSUPPORTED",
        _ => "UNKNOWN",
    }
}

pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

pub fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, u32::try_from(bytes.len()).expect("string fits a u32"));
    out.extend_from_slice(bytes);
}

/// Reads big-endian fields from a reply body; a short body is a failed test.
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes }
    }

    pub fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(
            self.bytes.len() >= n,
            "reply too short: wanted {n} more bytes, {} left",
            self.bytes.len()
        );
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        head
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take(8).try_into().unwrap())
    }

    pub fn string(&mut self) -> &'a [u8] {
        let len = self.u32() as usize;
        self.take(len)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }
}

fn parse_reply(kind: u8, body: &mut Reader) -> Reply {
    match kind {
        op::STATUS => {
            let code = body.u32();
            // A client below version 3 gets neither message nor language.
            let message = if body.is_empty() {
                String::new()
            } else {
                let message = String::from_utf8_lossy(body.string()).into_owned();
                body.string();
                message
            };
            Reply::Status { code, message }
        }
        op::HANDLE => Reply::Handle(body.string().to_vec()),
        op::DATA => Reply::Data(body.string().to_vec()),
        op::NAME => {
            let count = body.u32();
            let names = (0..count)
                .map(|_| NameEntry {
                    name: body.string().to_vec(),
                    longname: body.string().to_vec(),
                    attrs: Attrs::decode(body),
                })
                .collect();
            Reply::Name(names)
        }
        op::ATTRS => Reply::Attrs(Attrs::decode(body)),
        op::EXTENDED_REPLY => Reply::ExtendedReply(body.rest().to_vec()),
        other => panic!("unknown reply type {other}"),
    }
}

// ---------------------------------------------------------------------------
// Starting a server
// ---------------------------------------------------------------------------

/// Which server a session talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// Our binary, `scp-server --sftp ARGS`.
    Ours,
    /// OpenSSH's `sftp-server ARGS`.
    OpenSsh,
}

impl Server {
    pub fn label(self) -> &'static str {
        match self {
            Server::Ours => "ours",
            Server::OpenSsh => "OpenSSH",
        }
    }

    pub fn program(self) -> &'static str {
        match self {
            Server::Ours => env!("CARGO_BIN_EXE_scp-server"),
            Server::OpenSsh => OPENSSH_SFTP_SERVER,
        }
    }

    /// Whether the server can run here (OpenSSH's may be missing).
    pub fn available(self) -> bool {
        Path::new(self.program()).exists()
    }
}

/// How to start a session: server, its extra arguments, user, directory,
/// environment and time bound.
pub struct Launch {
    server: Server,
    args: Vec<OsString>,
    ids: Option<(u32, u32)>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
    file_size_limit: Option<u64>,
}

impl Launch {
    pub fn new(server: Server) -> Launch {
        Launch {
            server,
            args: Vec::new(),
            ids: None,
            cwd: None,
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            file_size_limit: None,
        }
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: &[S]) -> Launch {
        self.args
            .extend(args.iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Run the server as this uid and gid (std drops the supplementary groups).
    pub fn user(mut self, uid: u32, gid: u32) -> Launch {
        self.ids = Some((uid, gid));
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Launch {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Launch {
        self.env
            .push((name.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Launch {
        self.timeout = timeout;
        self
    }

    /// RLIMIT_FSIZE for the server (soft and hard), set in the child
    /// before exec: a write past it fails with EFBIG (and raises SIGXFSZ).
    pub fn file_size_limit(mut self, bytes: u64) -> Launch {
        self.file_size_limit = Some(bytes);
        self
    }

    /// Starts the server without saying anything to it.
    pub fn spawn(self) -> Session {
        let mut command = Command::new(self.server.program());
        if self.server == Server::Ours {
            command.arg("--sftp");
        }
        command
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        if let Some((uid, gid)) = self.ids {
            // std drops the supplementary groups when root sets a uid.
            command.uid(uid).gid(gid);
        }
        if let Some(limit) = self.file_size_limit {
            // SAFETY: setrlimit is async-signal-safe and touches nothing
            // shared with the parent.
            unsafe {
                command.pre_exec(move || {
                    nix::sys::resource::setrlimit(
                        nix::sys::resource::Resource::RLIMIT_FSIZE,
                        limit,
                        limit,
                    )
                    .map_err(std::io::Error::from)
                });
            }
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.server.program()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stderr.read_to_end(&mut bytes);
            bytes
        });
        let (stop, watchdog) = watchdog(child.id(), self.timeout);
        Session {
            server: self.server,
            child,
            stdin,
            stdout,
            stderr: Some(stderr),
            stop: Some(stop),
            watchdog: Some(watchdog),
            next_id: 1,
            version: None,
            extensions: Vec::new(),
        }
    }

    /// Starts the server and completes INIT / VERSION (version 3).
    pub fn start(self) -> Session {
        let mut session = self.spawn();
        session.init(3);
        session
    }
}

/// Kills `pid` after `timeout` unless told to stop first. The session joins
/// it before reaping the child, so the pid cannot have been reused.
fn watchdog(pid: u32, timeout: Duration) -> (Sender<()>, JoinHandle<bool>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let handle = thread::spawn(move || match stopped.recv_timeout(timeout) {
        Ok(()) | Err(RecvTimeoutError::Disconnected) => false,
        Err(RecvTimeoutError::Timeout) => {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            true
        }
    });
    (stop, handle)
}

/// How a session ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stderr: Vec<u8>,
    /// The watchdog killed it: the server hung.
    pub timed_out: bool,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

// ---------------------------------------------------------------------------
// A session
// ---------------------------------------------------------------------------

/// A running server and the client side of its pipes.
pub struct Session {
    server: Server,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<Vec<u8>>>,
    stop: Option<Sender<()>>,
    watchdog: Option<JoinHandle<bool>>,
    next_id: u32,
    version: Option<u32>,
    extensions: Vec<(String, Vec<u8>)>,
}

/// What a raw read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A reply with its request id.
    Reply(u32, Reply),
    /// A VERSION packet.
    Version(u32),
    /// The server closed its stdout.
    Closed,
}

impl Session {
    pub fn server(&self) -> Server {
        self.server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The version the server answered, once INIT was sent.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// The extensions VERSION offered, in order, with their data.
    pub fn extensions(&self) -> &[(String, Vec<u8>)] {
        &self.extensions
    }

    pub fn offers(&self, name: &str) -> bool {
        self.extensions.iter().any(|(n, _)| n == name)
    }

    /// Sends INIT and reads VERSION, recording the extensions.
    pub fn init(&mut self, version: u32) -> u32 {
        let mut body = vec![op::INIT];
        put_u32(&mut body, version);
        self.send_packet(&body);
        let (kind, payload) = self
            .read_packet()
            .expect("VERSION, not the end of the session");
        assert_eq!(kind, op::VERSION, "expected VERSION, got type {kind}");
        let mut reader = Reader::new(&payload);
        let version = reader.u32();
        self.extensions.clear();
        while !reader.is_empty() {
            let name = String::from_utf8_lossy(reader.string()).into_owned();
            let data = reader.string().to_vec();
            self.extensions.push((name, data));
        }
        self.version = Some(version);
        version
    }

    /// Sends `bytes` exactly as given (length field and all): for
    /// malformed packets.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.stdin.as_mut() {
            Some(stdin) => stdin.write_all(bytes).and_then(|()| stdin.flush()),
            None => Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)),
        }
    }

    /// Sends one packet: the length field, then `body` (type byte first).
    /// A server that already left is not an error here; the read says so.
    pub fn send_packet(&mut self, body: &[u8]) {
        let mut packet = Vec::with_capacity(body.len() + 4);
        put_u32(&mut packet, u32::try_from(body.len()).unwrap());
        packet.extend_from_slice(body);
        let _ = self.send_raw(&packet);
    }

    /// Closes our side of stdin: the server sees the end of the session.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn read_packet(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut length = [0u8; 4];
        if self.stdout.read_exact(&mut length).is_err() {
            return None;
        }
        let length = u32::from_be_bytes(length) as usize;
        assert!(length >= 1, "empty reply packet");
        let mut body = vec![0u8; length];
        if self.stdout.read_exact(&mut body).is_err() {
            panic!("{}: reply cut short", self.server.label());
        }
        let payload = body.split_off(1);
        Some((body[0], payload))
    }

    /// Reads whatever comes next.
    pub fn receive(&mut self) -> Received {
        let Some((kind, payload)) = self.read_packet() else {
            return Received::Closed;
        };
        let mut reader = Reader::new(&payload);
        if kind == op::VERSION {
            return Received::Version(reader.u32());
        }
        let id = reader.u32();
        Received::Reply(id, parse_reply(kind, &mut reader))
    }

    /// A fresh request id.
    pub fn next_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends request `kind` with a fresh id and `fields` after the id;
    /// returns the id.
    pub fn send_request(&mut self, kind: u8, fields: &[u8]) -> u32 {
        let id = self.next_id();
        let mut body = vec![kind];
        put_u32(&mut body, id);
        body.extend_from_slice(fields);
        self.send_packet(&body);
        id
    }

    /// The reply to request `id`; the session ending first is a failure.
    pub fn reply_to(&mut self, id: u32) -> Reply {
        match self.receive() {
            Received::Reply(got, reply) => {
                assert_eq!(
                    got,
                    id,
                    "{}: reply for id {got}, wanted {id}",
                    self.server.label()
                );
                reply
            }
            other => panic!(
                "{}: wanted the reply to {id}, got {other:?}",
                self.server.label()
            ),
        }
    }

    /// One request and its reply.
    pub fn request(&mut self, kind: u8, fields: &[u8]) -> Reply {
        let id = self.send_request(kind, fields);
        self.reply_to(id)
    }

    fn path_request(&mut self, kind: u8, path: &[u8]) -> Reply {
        let mut fields = Vec::new();
        put_string(&mut fields, path);
        self.request(kind, &fields)
    }

    fn handle_request(&mut self, kind: u8, handle: &[u8]) -> Reply {
        self.path_request(kind, handle)
    }

    fn two_paths(&mut self, kind: u8, first: &[u8], second: &[u8]) -> Reply {
        let mut fields = Vec::new();
        put_string(&mut fields, first);
        put_string(&mut fields, second);
        self.request(kind, &fields)
    }

    fn path_attrs(&mut self, kind: u8, path: &[u8], attrs: &Attrs) -> Reply {
        let mut fields = Vec::new();
        put_string(&mut fields, path);
        attrs.encode(&mut fields);
        self.request(kind, &fields)
    }

    // --- the requests of version 3 -------------------------------------

    pub fn open(&mut self, path: impl AsRef<[u8]>, pflags: u32, attrs: &Attrs) -> Reply {
        let mut fields = Vec::new();
        put_string(&mut fields, path.as_ref());
        put_u32(&mut fields, pflags);
        attrs.encode(&mut fields);
        self.request(op::OPEN, &fields)
    }

    pub fn close(&mut self, handle: &[u8]) -> Reply {
        self.handle_request(op::CLOSE, handle)
    }

    pub fn read(&mut self, handle: &[u8], offset: u64, len: u32) -> Reply {
        let mut fields = Vec::new();
        put_string(&mut fields, handle);
        put_u64(&mut fields, offset);
        put_u32(&mut fields, len);
        self.request(op::READ, &fields)
    }

    pub fn write(&mut self, handle: &[u8], offset: u64, data: &[u8]) -> Reply {
        let mut fields = Vec::new();
        put_string(&mut fields, handle);
        put_u64(&mut fields, offset);
        put_string(&mut fields, data);
        self.request(op::WRITE, &fields)
    }

    pub fn lstat(&mut self, path: impl AsRef<[u8]>) -> Reply {
        self.path_request(op::LSTAT, path.as_ref())
    }

    pub fn stat(&mut self, path: impl AsRef<[u8]>) -> Reply {
        self.path_request(op::STAT, path.as_ref())
    }

    pub fn fstat(&mut self, handle: &[u8]) -> Reply {
        self.handle_request(op::FSTAT, handle)
    }

    pub fn setstat(&mut self, path: impl AsRef<[u8]>, attrs: &Attrs) -> Reply {
        self.path_attrs(op::SETSTAT, path.as_ref(), attrs)
    }

    pub fn fsetstat(&mut self, handle: &[u8], attrs: &Attrs) -> Reply {
        self.path_attrs(op::FSETSTAT, handle, attrs)
    }

    pub fn opendir(&mut self, path: impl AsRef<[u8]>) -> Reply {
        self.path_request(op::OPENDIR, path.as_ref())
    }

    pub fn readdir(&mut self, handle: &[u8]) -> Reply {
        self.handle_request(op::READDIR, handle)
    }

    pub fn remove(&mut self, path: impl AsRef<[u8]>) -> Reply {
        self.path_request(op::REMOVE, path.as_ref())
    }

    pub fn mkdir(&mut self, path: impl AsRef<[u8]>, attrs: &Attrs) -> Reply {
        self.path_attrs(op::MKDIR, path.as_ref(), attrs)
    }

    pub fn rmdir(&mut self, path: impl AsRef<[u8]>) -> Reply {
        self.path_request(op::RMDIR, path.as_ref())
    }

    pub fn realpath(&mut self, path: impl AsRef<[u8]>) -> Reply {
        self.path_request(op::REALPATH, path.as_ref())
    }

    pub fn rename(&mut self, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) -> Reply {
        self.two_paths(op::RENAME, from.as_ref(), to.as_ref())
    }

    pub fn readlink(&mut self, path: impl AsRef<[u8]>) -> Reply {
        self.path_request(op::READLINK, path.as_ref())
    }

    /// SYMLINK in OpenSSH's order, which every client follows: the link's
    /// target first, then the new link's path.
    pub fn symlink(&mut self, target: impl AsRef<[u8]>, link: impl AsRef<[u8]>) -> Reply {
        self.two_paths(op::SYMLINK, target.as_ref(), link.as_ref())
    }

    /// Reads a whole directory: READDIR until EOF, then CLOSE.
    pub fn list_dir(&mut self, path: impl AsRef<[u8]>) -> Result<Vec<NameEntry>, Reply> {
        let handle = match self.opendir(path) {
            Reply::Handle(handle) => handle,
            other => return Err(other),
        };
        let mut names = Vec::new();
        loop {
            match self.readdir(&handle) {
                Reply::Name(batch) => names.extend(batch),
                Reply::Status {
                    code: status::EOF, ..
                } => break,
                other => return Err(other),
            }
        }
        self.close(&handle).expect_ok();
        Ok(names)
    }

    /// Reads a whole file from `handle` in `chunk`-sized READs until EOF.
    pub fn read_all(&mut self, handle: &[u8], chunk: u32) -> Result<Vec<u8>, Reply> {
        let mut data = Vec::new();
        loop {
            match self.read(handle, data.len() as u64, chunk) {
                Reply::Data(bytes) => data.extend(bytes),
                Reply::Status {
                    code: status::EOF, ..
                } => return Ok(data),
                other => return Err(other),
            }
        }
    }

    // --- extensions ---------------------------------------------------

    /// EXTENDED `name` with `fields` after the name.
    pub fn extended(&mut self, name: &str, fields: &[u8]) -> Reply {
        let mut body = Vec::new();
        put_string(&mut body, name.as_bytes());
        body.extend_from_slice(fields);
        self.request(op::EXTENDED, &body)
    }

    fn extended_strings(&mut self, name: &str, strings: &[&[u8]]) -> Reply {
        let mut fields = Vec::new();
        for s in strings {
            put_string(&mut fields, s);
        }
        self.extended(name, &fields)
    }

    pub fn posix_rename(&mut self, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) -> Reply {
        self.extended_strings("posix-rename@openssh.com", &[from.as_ref(), to.as_ref()])
    }

    pub fn statvfs(&mut self, path: impl AsRef<[u8]>) -> Reply {
        self.extended_strings("statvfs@openssh.com", &[path.as_ref()])
    }

    pub fn fstatvfs(&mut self, handle: &[u8]) -> Reply {
        self.extended_strings("fstatvfs@openssh.com", &[handle])
    }

    /// hardlink@openssh.com: the existing file first, then the new name.
    pub fn hardlink(&mut self, existing: impl AsRef<[u8]>, link: impl AsRef<[u8]>) -> Reply {
        self.extended_strings("hardlink@openssh.com", &[existing.as_ref(), link.as_ref()])
    }

    pub fn fsync(&mut self, handle: &[u8]) -> Reply {
        self.extended_strings("fsync@openssh.com", &[handle])
    }

    pub fn lsetstat(&mut self, path: impl AsRef<[u8]>, attrs: &Attrs) -> Reply {
        let mut fields = Vec::new();
        put_string(&mut fields, path.as_ref());
        attrs.encode(&mut fields);
        self.extended("lsetstat@openssh.com", &fields)
    }

    pub fn limits(&mut self) -> Reply {
        self.extended("limits@openssh.com", &[])
    }

    pub fn expand_path(&mut self, path: impl AsRef<[u8]>) -> Reply {
        self.extended_strings("expand-path@openssh.com", &[path.as_ref()])
    }

    /// copy-data: read `len` bytes (0: to EOF) of `from` at `from_offset`,
    /// write them to `to` at `to_offset`.
    pub fn copy_data(
        &mut self,
        from: &[u8],
        from_offset: u64,
        len: u64,
        to: &[u8],
        to_offset: u64,
    ) -> Reply {
        let mut fields = Vec::new();
        put_string(&mut fields, from);
        put_u64(&mut fields, from_offset);
        put_u64(&mut fields, len);
        put_string(&mut fields, to);
        put_u64(&mut fields, to_offset);
        self.extended("copy-data", &fields)
    }

    pub fn home_directory(&mut self, user: impl AsRef<[u8]>) -> Reply {
        self.extended_strings("home-directory", &[user.as_ref()])
    }

    /// users-groups-by-id@openssh.com: two lists of ids, each a string of
    /// u32s.
    pub fn users_groups_by_id(&mut self, uids: &[u32], gids: &[u32]) -> Reply {
        let list = |ids: &[u32]| {
            let mut out = Vec::new();
            for id in ids {
                put_u32(&mut out, *id);
            }
            out
        };
        self.extended_strings(
            "users-groups-by-id@openssh.com",
            &[&list(uids), &list(gids)],
        )
    }

    // --- the end --------------------------------------------------------

    /// Closes stdin, waits for the server to exit (bounded by the
    /// watchdog) and collects its stderr.
    pub fn finish(mut self) -> Finished {
        self.close_stdin();
        self.reap()
    }

    /// Waits for the server to exit by itself, stdin left open (for a
    /// server expected to leave on its own). Bounded by the watchdog.
    pub fn wait_exit(mut self) -> Finished {
        self.reap()
    }

    fn reap(&mut self) -> Finished {
        // Drain stdout so a server blocked writing can finish; the watchdog
        // bounds this read (a killed server closes its stdout).
        let mut rest = Vec::new();
        let _ = self.stdout.read_to_end(&mut rest);
        // Stop the watchdog before reaping: until `wait` the pid is ours,
        // so its kill can never reach a reused pid.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let timed_out = self
            .watchdog
            .take()
            .map(|w| w.join().unwrap_or(false))
            .unwrap_or(false);
        let status = self.wait_bounded(Duration::from_secs(5));
        let stderr = self
            .stderr
            .take()
            .map(|s| s.join().unwrap_or_default())
            .unwrap_or_default();
        Finished {
            status,
            stderr,
            timed_out,
        }
    }

    /// Waits for the exit; a server that closed stdout but lingers is
    /// killed after `grace`.
    fn wait_bounded(&mut self, grace: Duration) -> ExitStatus {
        let deadline = std::time::Instant::now() + grace;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait for the server");
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.watchdog.is_some() {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(watchdog) = self.watchdog.take() {
                let _ = watchdog.join();
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
