//! The audit trail (DESIGN.md "Logging", docs/audit.md): who moved which
//! file, from where, when, and what was refused — one event per file
//! transferred or refused, and one when a session starts and ends.
//!
//! Events are `tracing` events with structured fields, sent to the sink the
//! policy names (`--log`, `log = "..."`):
//! - journald, through tracing-journald's native protocol, with the syslog
//!   identifier `scp-server` and every field as a journal field `SCP_NAME`
//!   (the default, when the journald socket exists);
//! - a JSON-lines file, opened append-only before any transfer;
//! - stderr (the same JSON lines), only when asked for;
//! - nothing.
//!
//! Nothing is ever written to stdout, and the audit trail never changes a
//! transfer: every sink ignores its own errors (a full disk, a journald that
//! went away), nothing here panics, and nothing reaches the client. The
//! sinks are set up before the sandbox closes (`setup`, called by main.rs
//! before `sandbox::confine_process`): the JSON file is opened then, and the
//! journald socket opened `O_PATH` so that the sandbox can grant sending to
//! it ([`journald_socket`]).
//!
//! The protocol code reports outcomes with one call each: a [`FileAudit`]
//! per file (begun when its size and mode are known, concluded with `ok` or
//! `failed`), [`problem`] for a refusal known only by its error (a directory,
//! a path that cannot be looked at), [`session_error`] for the error that
//! ends a session. main.rs opens and closes the session.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::stat::{Mode, SFlag, fstat};
use sha2::{Digest, Sha256};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::confine::normalize_rel;
use crate::error::Error;
use crate::policy::{ChecksumKind, LogTarget, Policy};
use crate::protocol::escape_bytes;

/// Where journald listens for native-protocol datagrams (inside a chroot
/// jail: the jail's own path, which the admin binds the real socket to).
pub const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";

/// `SYSLOG_IDENTIFIER`: `journalctl -t scp-server` finds every event.
const SYSLOG_IDENTIFIER: &str = "scp-server";

/// tracing-journald writes a field `user` as `PREFIX_USER`; this prefix
/// makes the journal fields `SCP_USER`, `SCP_PATH`, … (the event's message
/// stays `MESSAGE`).
const JOURNAL_FIELD_PREFIX: &str = "SCP";

/// Mode of a JSON log file this process creates: the admin's group may
/// read it, nobody else (the umask may narrow it further).
const JSON_FILE_MODE: u32 = 0o640;

// ---------------------------------------------------------------------------
// Setting up
// ---------------------------------------------------------------------------

/// Which way a session moves files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `scp -t`: files arrive.
    Upload,
    /// `scp -f`: files leave.
    Download,
    /// An SFTP session, which may do both: each file event says which.
    Both,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Upload => "upload",
            Direction::Download => "download",
            Direction::Both => "upload and download",
        }
    }
}

/// Which protocol a session speaks: every event names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Scp,
    Sftp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Scp => "scp",
            Protocol::Sftp => "sftp",
        }
    }
}

/// Marks the session as SFTP (after `setup`): its events say so, and its
/// file events carry each file's own direction.
pub fn set_protocol(protocol: Protocol) {
    with_session(|s| s.protocol = protocol);
}

/// The session this process serves; `None` until [`setup`] found a sink
/// (then every function here does nothing).
static SESSION: OnceLock<Mutex<Session>> = OnceLock::new();

/// The journald socket opened `O_PATH` before the sandbox, for its rule.
static JOURNALD_SOCKET_FD: OnceLock<OwnedFd> = OnceLock::new();

/// Sets up the sink the policy names and the session's facts. Must run
/// before the sandbox: it opens the JSON file and the journald socket, and
/// `user` (the account's name, resolved by the caller from the real uid)
/// cannot be looked up once `/etc/passwd` is out of reach.
pub fn setup(policy: &Policy, user: Option<String>, direction: Direction) {
    let Some(sink) = LogSink::open(policy.log.as_ref()) else {
        return;
    };
    if sink.install().is_err() {
        return;
    }
    let session = Session::new(user, direction, policy.checksum);
    let _ = SESSION.set(Mutex::new(session));
}

/// Where a restricted mode's command came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandOrigin {
    /// The binary is the login shell: sshd ran `scp-server -c COMMAND`
    /// (or `-scp-server` with no command for an interactive login).
    LoginShell,
    /// `ForceCommand`: the client's command in `SSH_ORIGINAL_COMMAND`
    /// (none for an interactive login).
    ForceCommand,
}

impl CommandOrigin {
    fn as_str(self) -> &'static str {
        match self {
            CommandOrigin::LoginShell => "login-shell",
            CommandOrigin::ForceCommand => "force-command",
        }
    }
}

/// What a restricted mode refused, before any transfer began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandRefusal {
    /// No command: a shell was asked for.
    InteractiveLogin,
    /// An SFTP subsystem with an sftp-server option a client may not add.
    SftpOption,
    /// A program other than scp.
    OtherProgram,
    /// An empty command string.
    EmptyCommand,
    /// An scp option the restricted modes do not allow (`-S`, `-o`, …).
    RefusedOption,
    /// A command string that cannot be parsed or is no valid scp server
    /// invocation (shell syntax, bad quoting, neither or both of -t/-f, …).
    MalformedCommand,
}

impl CommandRefusal {
    fn as_str(self) -> &'static str {
        match self {
            CommandRefusal::InteractiveLogin => "interactive-login",
            CommandRefusal::SftpOption => "refused-sftp-option",
            CommandRefusal::OtherProgram => "other-program",
            CommandRefusal::EmptyCommand => "empty-command",
            CommandRefusal::RefusedOption => "refused-option",
            CommandRefusal::MalformedCommand => "malformed-command",
        }
    }
}

/// One event for a restricted session turned away before a transfer could
/// begin (issue 12): who, from where, the command (escaped; absent for an
/// interactive login), where it came from, what kind of refusal and the
/// sentence the client was sent. No session events follow: the session
/// never started. `policy` is only asked for its log sink (loaded the usual
/// way, so a broken configuration file still leaves the flags' or the
/// default sink).
pub fn command_refused(
    policy: &Policy,
    user: Option<String>,
    origin: CommandOrigin,
    command: Option<&[u8]>,
    kind: CommandRefusal,
    sentence: &str,
) {
    if SESSION.get().is_some() {
        return;
    }
    let Some(sink) = LogSink::open(policy.log.as_ref()) else {
        return;
    };
    if sink.install().is_err() {
        return;
    }
    let client = Client::from_environment();
    let user = user.map(|name| escape_bytes(name.as_bytes()));
    let command = command.map(escape_bytes);
    let message = format!(
        "command refused ({}, {}) for {} from {}: {sentence}",
        origin.as_str(),
        kind.as_str(),
        user.as_deref().unwrap_or("an unnamed user"),
        client
            .as_ref()
            .map_or_else(|| "a local process".to_owned(), Client::describe),
    );
    tracing::warn!(
        event = "command_refused",
        uid = nix::unistd::getuid().as_raw(),
        user = user.as_deref(),
        client_ip = client.as_ref().map(|c| c.ip.as_str()),
        client_port = client.as_ref().map(|c| c.port),
        origin = origin.as_str(),
        command = command.as_deref(),
        refusal = kind.as_str(),
        result = Outcome::Refused.as_str(),
        error = sentence,
        "{message}"
    );
}

/// The journald socket for [`crate::sandbox::ExtraRule::UnixSocket`], when
/// events go there.
pub fn journald_socket() -> Option<BorrowedFd<'static>> {
    JOURNALD_SOCKET_FD.get().map(AsFd::as_fd)
}

/// The sink chosen and opened.
enum LogSink {
    Journald(tracing_journald::Layer),
    JsonLines(LineSink),
}

impl LogSink {
    /// Opens the sink; `None` when there is none (`none`, or journald
    /// without its socket, or a JSON file that cannot be opened — the
    /// transfer goes on unlogged rather than not at all).
    fn open(target: Option<&LogTarget>) -> Option<LogSink> {
        match target {
            None | Some(LogTarget::Journald) => open_journald().map(LogSink::Journald),
            Some(LogTarget::Json(path)) => {
                open_json_file(path).map(|fd| LogSink::JsonLines(LineSink::File(fd)))
            }
            Some(LogTarget::Stderr) => Some(LogSink::JsonLines(LineSink::Stderr)),
            Some(LogTarget::Off) => None,
        }
    }

    /// Makes this sink the process's tracing subscriber.
    fn install(self) -> Result<(), tracing::subscriber::SetGlobalDefaultError> {
        let (journald, json) = match self {
            LogSink::Journald(layer) => (Some(layer), None),
            LogSink::JsonLines(lines) => (None, Some(JsonLines(lines))),
        };
        let subscriber = tracing_subscriber::registry().with(journald).with(json);
        tracing::subscriber::set_global_default(subscriber)
    }
}

/// tracing-journald's layer, or `None` when journald is not there: its
/// constructor sends an empty datagram, which fails without a listener.
fn open_journald() -> Option<tracing_journald::Layer> {
    let layer = tracing_journald::Layer::new()
        .ok()?
        .with_syslog_identifier(SYSLOG_IDENTIFIER.to_owned())
        .with_field_prefix(Some(JOURNAL_FIELD_PREFIX.to_owned()));
    // Kept for the sandbox's rule; without it the events still flow on
    // kernels that do not restrict sending to sockets (Landlock ABI < 9).
    if let Ok(fd) = open(
        JOURNALD_SOCKET,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        let _ = JOURNALD_SOCKET_FD.set(fd);
    }
    Some(layer)
}

/// Opens the JSON log for appending: created `0640` if missing, never
/// through a symlink (the admin named a file, not whatever a link there
/// points at), and only a regular file (`O_NONBLOCK` keeps a FIFO from
/// hanging the session before it is turned away).
fn open_json_file(path: &Path) -> Option<OwnedFd> {
    let flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_CREAT
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_CLOEXEC;
    let fd = open(path, flags, Mode::from_bits_truncate(JSON_FILE_MODE)).ok()?;
    let st = fstat(&fd).ok()?;
    let regular = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG;
    regular.then_some(fd)
}

/// Where JSON lines go.
enum LineSink {
    /// The admin's file, opened `O_APPEND`.
    File(OwnedFd),
    Stderr,
}

impl LineSink {
    /// Writes one whole line with one write(2): to an `O_APPEND` file it
    /// lands in one piece at the end, so concurrent sessions appending to
    /// the same log never interleave their lines (a buffered writer could
    /// split a line into several writes). Only a short write (a full disk)
    /// needs a second call for the rest.
    fn write_line(&self, mut line: &[u8]) -> Result<(), Errno> {
        while !line.is_empty() {
            let written = match self {
                LineSink::File(fd) => nix::unistd::write(fd, line),
                LineSink::Stderr => nix::unistd::write(io::stderr(), line),
            };
            match written {
                Ok(0) => return Err(Errno::EIO),
                Ok(n) => line = &line[n..],
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The JSON-lines sink as a tracing layer: each event becomes one object
/// on one line, `timestamp` (UTC, RFC 3339) and `level` first, then the
/// event's fields as tracing hands them over (`message` first, the rest in
/// the order they are written). Written here rather than with
/// tracing-subscriber's JSON formatter, which would bring serde and add
/// about a tenth to the binary.
struct JsonLines(LineSink);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for JsonLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut object = JsonObject::new();
        object.text("timestamp", &rfc3339_utc(SystemTime::now()));
        object.text("level", event.metadata().level().as_str());
        event.record(&mut object);
        // A line that cannot be written is lost; the transfer goes on.
        let _ = self.0.write_line(object.finish().as_bytes());
    }
}

/// A JSON object being written, one member after the other.
struct JsonObject(String);

impl JsonObject {
    fn new() -> JsonObject {
        JsonObject(String::from("{"))
    }

    fn key(&mut self, name: &str) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        push_json_string(&mut self.0, name);
        self.0.push(':');
    }

    fn text(&mut self, name: &str, value: &str) {
        self.key(name);
        push_json_string(&mut self.0, value);
    }

    fn raw(&mut self, name: &str, value: fmt::Arguments<'_>) {
        self.key(name);
        let _ = fmt::Write::write_fmt(&mut self.0, value);
    }

    /// The object closed, with the line's newline.
    fn finish(mut self) -> String {
        self.0.push_str("}\n");
        self.0
    }
}

impl Visit for JsonObject {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field.name(), value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field.name(), format_args!("{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field.name(), format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field.name(), format_args!("{value}"));
    }

    /// Everything else as text; the message arrives here as its
    /// `format_args!`, whose Debug form is the formatted text.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field.name(), &format!("{value:?}"));
    }
}

/// A JSON string literal: quotes and backslashes escaped, and control
/// characters as `\u00XX` (names are escaped before they get here, but a
/// line must stay one line whatever a value holds).
fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = fmt::Write::write_fmt(out, format_args!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `2025-06-02T09:14:03.512877Z`: UTC, so that no time zone file is
/// needed (a jail has none, and the sandbox would hide the host's).
fn rfc3339_utc(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_date(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_micros()
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01. Counts in 400-year
/// eras starting on 1 March (the leap day then ends a year instead of
/// falling inside it): the era, the year within it, the day within that
/// year, and from that the month by the 153-days-per-5-months rule.
fn civil_date(days: u64) -> (u64, u64, u64) {
    const DAYS_PER_ERA: u64 = 146_097;
    // 1970-01-01 is day 719_468 counted from 0000-03-01.
    let days = days + 719_468;
    let era = days / DAYS_PER_ERA;
    let day_of_era = days % DAYS_PER_ERA;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------

/// What every event says about the session, and its running totals.
struct Session {
    id: String,
    uid: u32,
    user: Option<String>,
    client: Option<Client>,
    direction: Direction,
    protocol: Protocol,
    checksum: ChecksumKind,
    /// The confinement root, absolute, once the session is confined.
    root: Option<Vec<u8>>,
    started: Instant,
    start_sent: bool,
    end_sent: bool,
    /// Files transferred completely, and their bytes.
    files: u64,
    bytes: u64,
    /// Files and directories refused or failed (a refusal or error of the
    /// session as a whole is its `ending`).
    errors: u64,
    /// Why the session ended early, if it did.
    ending: Option<(Outcome, String)>,
}

impl Session {
    fn new(user: Option<String>, direction: Direction, checksum: ChecksumKind) -> Session {
        Session {
            id: new_session_id(),
            uid: nix::unistd::getuid().as_raw(),
            // A passwd entry is the admin's, but a jail's is the jail's:
            // no control bytes in a message either way.
            user: user.map(|name| escape_bytes(name.as_bytes())),
            client: Client::from_environment(),
            direction,
            protocol: Protocol::Scp,
            checksum,
            root: None,
            started: Instant::now(),
            start_sent: false,
            end_sent: false,
            files: 0,
            bytes: 0,
            errors: 0,
            ending: None,
        }
    }

    /// A file's path twice: as the account sees it (relative to the root
    /// when confined; as given otherwise) and where it is on this machine
    /// (the root's absolute path joined with it when confined; as given
    /// otherwise, relative paths meaning the user's working directory).
    fn paths(&self, path: &[u8]) -> (String, String) {
        let Some(root) = &self.root else {
            let given = escape_bytes(path);
            return (given.clone(), given);
        };
        let rel = normalize_rel(path);
        let mut resolved = root.clone();
        if !rel.is_empty() {
            if !resolved.ends_with(b"/") {
                resolved.push(b'/');
            }
            resolved.extend_from_slice(&rel);
        }
        (escape_bytes(&rel), escape_bytes(&resolved))
    }
}

/// Runs `f` on the session, if there is one. A poisoned lock (a panic
/// elsewhere while logging) still holds usable totals.
fn with_session(f: impl FnOnce(&mut Session)) {
    if let Some(session) = SESSION.get() {
        f(&mut session.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// 64 random bits (std's hasher keys come from the kernel's random source)
/// mixed with the pid and the time: unique across sessions without a
/// random-number crate or a device file (a jail has no /dev/urandom).
fn new_session_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    format!("{:016x}", hasher.finish())
}

/// The client's address and port as sshd reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Client {
    ip: String,
    port: u16,
}

impl Client {
    fn from_environment() -> Option<Client> {
        ["SSH_CONNECTION", "SSH_CLIENT"]
            .iter()
            .find_map(|name| Client::parse(&std::env::var(name).ok()?))
    }

    /// `SSH_CONNECTION` is "client_ip client_port server_ip server_port",
    /// `SSH_CLIENT` "client_ip client_port server_port": the first two words
    /// either way. Anything that is not an address and a port is ignored.
    fn parse(text: &str) -> Option<Client> {
        let mut words = text.split_ascii_whitespace();
        let ip = words.next()?;
        let port = words.next()?.parse().ok()?;
        // An IPv6 link-local address may carry a zone (`fe80::1%eth0`).
        let address = ip.split_once('%').map_or(ip, |(address, _)| address);
        let zone_ok = ip[address.len()..]
            .bytes()
            .all(|b| b == b'%' || b.is_ascii_alphanumeric() || b"._-".contains(&b));
        (address.parse::<IpAddr>().is_ok() && zone_ok).then(|| Client {
            ip: ip.to_owned(),
            port,
        })
    }
}

/// Sends the session's start event: who, from where, which way, and the
/// root (absolute) when the session is confined. Call it once the root is
/// open, before the sandbox (the root's real path is looked up here).
pub fn session_start(root: Option<&Path>) {
    with_session(|s| {
        s.root = root.map(|root| {
            let real = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
            real.as_os_str().as_bytes().to_vec()
        });
        send_start(s);
    });
}

/// The session was refused as a whole (a broken configuration file, a
/// read-only account asking to upload, a target outside the root): the
/// end event says so with the sentence the client was sent.
pub fn session_refused(sentence: &str) {
    with_session(|s| {
        if s.ending.is_none() {
            s.ending = Some((Outcome::Refused, sentence.to_owned()));
        }
    });
}

/// The error that ends a session early (a target outside the root, a
/// protocol error, an upload cut short), with the sentence the client was
/// sent.
pub fn session_error(error: &Error) {
    with_session(|s| {
        if s.ending.is_none() {
            s.ending = Some((Outcome::of(error), error.to_string()));
        }
    });
}

/// Sends the session's end event with its totals; once, whatever calls it
/// again.
pub fn session_end(exit_status: i32) {
    with_session(|s| {
        if !s.start_sent {
            send_start(s);
        }
        if !s.end_sent {
            s.end_sent = true;
            send_end(s, exit_status);
        }
    });
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// How a file (or a session) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    /// The account's policy or the confinement said no.
    Refused,
    /// Something went wrong: the filesystem, the peer, the stream.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    /// Whether an error is the policy or the confinement saying no, rather
    /// than something going wrong. Every variant is named, so that a new
    /// one has to be placed here.
    fn of(error: &Error) -> Outcome {
        match error {
            Error::Refused { .. }
            | Error::PathEscapes { .. }
            | Error::SymlinkEscapes { .. }
            | Error::SymlinkRefused { .. }
            | Error::ControlCharacters { .. }
            | Error::NotRegularFile { .. } => Outcome::Refused,
            Error::Protocol(_)
            | Error::UnexpectedFilename(_)
            | Error::DirectoryWithoutRecursion
            | Error::TooDeep { .. }
            | Error::ClosedInsideDirectory { .. }
            | Error::UploadIncomplete { .. }
            | Error::Os { .. }
            | Error::FifoWithoutReader { .. }
            | Error::SenderDisowned { .. }
            | Error::DirectoryCycle { .. }
            | Error::NoNameToSend { .. }
            | Error::ChangedWhileOpening { .. }
            | Error::NoMatch { .. }
            | Error::ShortRead { .. } => Outcome::Failed,
        }
    }
}

/// The path an error is about, as the client named it; `None` for errors
/// about the session rather than a path.
fn path_in(error: &Error) -> Option<&[u8]> {
    match error {
        Error::UploadIncomplete { path, .. }
        | Error::Os { path, .. }
        | Error::ControlCharacters { path }
        | Error::FifoWithoutReader { path }
        | Error::SenderDisowned { path, .. }
        | Error::NotRegularFile { path }
        | Error::DirectoryCycle { path }
        | Error::NoNameToSend { path }
        | Error::ChangedWhileOpening { path }
        | Error::Refused { path, .. }
        | Error::PathEscapes { path }
        | Error::SymlinkEscapes { path, .. }
        | Error::SymlinkRefused { path, .. }
        | Error::ShortRead { path, .. } => Some(&path.0),
        Error::NoMatch { pattern } => Some(&pattern.0),
        Error::Protocol(_)
        | Error::UnexpectedFilename(_)
        | Error::DirectoryWithoutRecursion
        | Error::TooDeep { .. }
        | Error::ClosedInsideDirectory { .. } => None,
    }
}

/// One file being transferred, as its audit event will describe it: begun
/// once its size and mode are known, concluded by exactly one of `ok`,
/// `failed` or `interrupted`.
pub struct FileAudit<'a> {
    path: &'a [u8],
    size: u64,
    mode: u32,
    started: Instant,
}

impl<'p> FileAudit<'p> {
    /// `path` as the client's messages show it; `mode` as in the `C`
    /// record (permission bits are kept, the file type is dropped).
    pub fn begin(path: &'p [u8], size: u64, mode: u32) -> FileAudit<'p> {
        FileAudit {
            path,
            size,
            mode: mode & 0o7777,
            started: Instant::now(),
        }
    }

    /// All `bytes` moved and the file is where it belongs. `sha256` is the
    /// checksum of exactly those bytes, when the session computes one.
    pub fn ok(&self, bytes: u64, sha256: Option<String>) {
        with_session(|s| {
            s.files += 1;
            s.bytes = s.bytes.saturating_add(bytes);
            let record = self.record(Outcome::Ok, bytes, None, sha256);
            send_file(s, &record);
        });
    }

    /// Refused or failed with `error` (the sentence the client was sent)
    /// after `bytes` had moved.
    pub fn failed(&self, bytes: u64, error: &Error) {
        let sentence = error.to_string();
        with_session(|s| {
            s.errors += 1;
            let record = self.record(Outcome::of(error), bytes, Some(&sentence), None);
            send_file(s, &record);
        });
    }

    /// The connection broke while the file was moving (or before the
    /// sender confirmed it): the client was told nothing. `bytes`: how many
    /// had moved, where that is known.
    pub fn interrupted(&self, bytes: Option<u64>) {
        with_session(|s| {
            s.errors += 1;
            let mut record = self.record(Outcome::Failed, 0, Some(CONNECTION_LOST), None);
            record.bytes = bytes;
            send_file(s, &record);
        });
    }

    fn record<'a>(
        &'a self,
        outcome: Outcome,
        bytes: u64,
        error: Option<&'a str>,
        sha256: Option<String>,
    ) -> FileRecord<'a> {
        FileRecord {
            direction: None,
            path: Some(self.path),
            size: Some(self.size),
            bytes: Some(bytes),
            mode: Some(self.mode),
            outcome,
            error,
            duration: Some(self.started.elapsed()),
            sha256,
        }
    }
}

const CONNECTION_LOST: &str = "the connection closed during the transfer";

/// A refusal or failure known only by its error: a directory record, a
/// path that could not be looked at or opened, a name that cannot be sent.
pub fn problem(error: &Error) {
    let sentence = error.to_string();
    with_session(|s| {
        s.errors += 1;
        let record = FileRecord {
            direction: None,
            path: path_in(error),
            size: None,
            bytes: None,
            mode: None,
            outcome: Outcome::of(error),
            error: Some(&sentence),
            duration: None,
            sha256: None,
        };
        send_file(s, &record);
    });
}

/// Everything a file event carries besides the session's fields.
struct FileRecord<'a> {
    /// The file's own direction where the session's does not say (SFTP).
    direction: Option<Direction>,
    path: Option<&'a [u8]>,
    size: Option<u64>,
    bytes: Option<u64>,
    mode: Option<u32>,
    outcome: Outcome,
    error: Option<&'a str>,
    duration: Option<Duration>,
    sha256: Option<String>,
}

// ---------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------

/// A SHA-256 computed while a file's bytes stream past (`--checksum
/// sha256`), so that a recipient can prove what arrived.
#[derive(Default)]
pub struct Checksum(Sha256);

impl Checksum {
    pub fn new() -> Checksum {
        Checksum(Sha256::new())
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest as 64 lowercase hex digits, as `sha256sum` prints it.
    pub fn finish(self) -> String {
        self.0
            .finalize()
            .iter()
            .fold(String::with_capacity(64), |mut hex, byte| {
                use fmt::Write as _;
                let _ = write!(hex, "{byte:02x}");
                hex
            })
    }

    /// A fresh checksum when the session's policy asks for one.
    pub fn if_wanted() -> Option<Checksum> {
        let mut wanted = false;
        with_session(|s| wanted = s.checksum == ChecksumKind::Sha256);
        wanted.then(Checksum::new)
    }
}

// ---------------------------------------------------------------------------
// The events
// ---------------------------------------------------------------------------

/// Sends one event of kind `$event` at INFO (ok: journald priority 5,
/// notice) or WARN (refused or failed: priority 4), the session's fields
/// after the kind and before the event's own. tracing fixes an event's
/// level where it is written, hence the two arms.
macro_rules! audit_event {
    ($warn:expr, $event:literal, $s:expr, direction = $direction:expr, $($fields:tt)+) => {{
        let s: &Session = $s;
        let direction: &str = $direction;
        let client_ip = s.client.as_ref().map(|c| c.ip.as_str());
        let client_port = s.client.as_ref().map(|c| c.port);
        let root = s.root.as_deref().map(escape_bytes);
        if $warn {
            tracing::warn!(
                event = $event,
                session = s.id.as_str(),
                uid = s.uid,
                user = s.user.as_deref(),
                client_ip,
                client_port,
                direction,
                protocol = s.protocol.as_str(),
                root = root.as_deref(),
                $($fields)+
            );
        } else {
            tracing::info!(
                event = $event,
                session = s.id.as_str(),
                uid = s.uid,
                user = s.user.as_deref(),
                client_ip,
                client_port,
                direction,
                protocol = s.protocol.as_str(),
                root = root.as_deref(),
                $($fields)+
            );
        }
    }};
    ($warn:expr, $event:literal, $s:expr, $($fields:tt)+) => {
        audit_event!($warn, $event, $s, direction = $s.direction.as_str(), $($fields)+)
    };
}

fn send_start(s: &mut Session) {
    s.start_sent = true;
    let checksum = (s.checksum == ChecksumKind::Sha256).then_some("sha256");
    let message = format!(
        "{} session started by {} from {}",
        s.direction.as_str(),
        describe_user(s),
        describe_client(s)
    );
    audit_event!(
        false,
        "session_start",
        s,
        pid = std::process::id(),
        checksum,
        "{message}"
    );
}

fn send_file(s: &Session, record: &FileRecord<'_>) {
    let (path, resolved) = match record.path {
        Some(path) => {
            let (path, resolved) = s.paths(path);
            (Some(path), Some(resolved))
        }
        None => (None, None),
    };
    let direction = record.direction.unwrap_or(s.direction).as_str();
    let what = format!("{direction} {}", record.outcome.as_str());
    let message = match (record.error, &path) {
        (Some(error), _) => format!("{what}: {error}"),
        (None, Some(path)) => format!("{what}: {path} ({} bytes)", record.bytes.unwrap_or(0)),
        (None, None) => what,
    };
    let mode = record.mode.map(|mode| format!("{mode:04o}"));
    audit_event!(
        record.outcome != Outcome::Ok,
        "file",
        s,
        direction = direction,
        path = path.as_deref(),
        resolved = resolved.as_deref(),
        size = record.size,
        bytes = record.bytes,
        mode = mode.as_deref(),
        result = record.outcome.as_str(),
        error = record.error,
        duration_ms = record.duration.map(millis),
        sha256 = record.sha256.as_deref(),
        "{message}"
    );
}

fn send_end(s: &Session, exit_status: i32) {
    let (outcome, error) = match &s.ending {
        Some((outcome, sentence)) => (*outcome, Some(sentence.as_str())),
        None if exit_status == 0 => (Outcome::Ok, None),
        None => (Outcome::Failed, None),
    };
    let message = format!(
        "{} session ended: {} files, {} bytes, {} errors, exit status {exit_status}{}",
        s.direction.as_str(),
        s.files,
        s.bytes,
        s.errors,
        error.map(|e| format!(": {e}")).unwrap_or_default()
    );
    audit_event!(
        outcome != Outcome::Ok,
        "session_end",
        s,
        files = s.files,
        bytes = s.bytes,
        errors = s.errors,
        exit_status,
        result = outcome.as_str(),
        error,
        duration_ms = millis(s.started.elapsed()),
        "{message}"
    );
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn describe_user(s: &Session) -> String {
    match &s.user {
        Some(name) => format!("{name} (uid {})", s.uid),
        None => format!("uid {}", s.uid),
    }
}

fn describe_client(s: &Session) -> String {
    match &s.client {
        Some(client) => client.describe(),
        None => "a local process".to_owned(),
    }
}

// ---------------------------------------------------------------------------
// SFTP
// ---------------------------------------------------------------------------

/// How an SFTP file ended, for its one file event.
pub enum SftpFileEnd<'e> {
    /// Closed: a download read, an upload published.
    Done,
    /// An upload discarded at CLOSE (a refused WRITE, a limit, a failed
    /// publish).
    Discarded(&'e Error),
    /// The session ended with the file still open (an upload: discarded).
    Interrupted,
    /// The OPEN itself was refused (by the policy or the confinement) or
    /// failed, with the sentence the client was sent.
    NotOpened { refused: bool, sentence: &'e str },
}

/// One SFTP file: `size` and `bytes` where known, `direction` the file's.
pub fn sftp_file(
    direction: Direction,
    path: &[u8],
    size_and_bytes: Option<(u64, u64)>,
    duration: Option<Duration>,
    end: SftpFileEnd<'_>,
) {
    let discarded = match &end {
        SftpFileEnd::Discarded(e) => Some(e.to_string()),
        _ => None,
    };
    let (outcome, error) = match &end {
        SftpFileEnd::Done => (Outcome::Ok, None),
        SftpFileEnd::Discarded(e) => (Outcome::of(e), discarded.as_deref()),
        SftpFileEnd::Interrupted => (Outcome::Failed, Some(CONNECTION_LOST)),
        SftpFileEnd::NotOpened { refused, sentence } => (
            if *refused {
                Outcome::Refused
            } else {
                Outcome::Failed
            },
            Some(*sentence),
        ),
    };
    with_session(|s| {
        if outcome == Outcome::Ok {
            s.files += 1;
            s.bytes = s
                .bytes
                .saturating_add(size_and_bytes.map_or(0, |(_, bytes)| bytes));
        } else {
            s.errors += 1;
        }
        let record = FileRecord {
            direction: Some(direction),
            path: Some(path),
            size: size_and_bytes.map(|(size, _)| size),
            bytes: size_and_bytes.map(|(_, bytes)| bytes),
            mode: None,
            outcome,
            error,
            duration,
            sha256: None,
        };
        send_file(s, &record);
    });
}

/// One SFTP request that changes the tree (REMOVE, RENAME, MKDIR, RMDIR,
/// SETSTAT, a link): `target` is the second path (rename's new name, a
/// link's target), `error` the failure in words.
pub fn sftp_operation(operation: &str, path: &[u8], target: Option<&[u8]>, error: Option<String>) {
    with_session(|s| {
        let outcome = if error.is_some() {
            s.errors += 1;
            Outcome::Failed
        } else {
            Outcome::Ok
        };
        let (path, resolved) = s.paths(path);
        let target = target.map(|t| s.paths(t).0);
        let message = match (&error, &target) {
            (Some(e), _) => format!("{operation} {}: {e}", outcome.as_str()),
            (None, Some(t)) => format!("{operation}: {path} -> {t}"),
            (None, None) => format!("{operation}: {path}"),
        };
        audit_event!(
            outcome != Outcome::Ok,
            "operation",
            s,
            operation,
            path = path.as_str(),
            resolved = resolved.as_str(),
            target = target.as_deref(),
            result = outcome.as_str(),
            error = error.as_deref(),
            "{message}"
        );
    });
}

impl Client {
    /// `203.0.113.5:52144`, `[2001:db8::1]:52144`.
    fn describe(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::error::{DisplayPath, Refusal};

    #[test]
    fn sha256_of_known_inputs() {
        assert_eq!(
            Checksum::new().finish(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut checksum = Checksum::new();
        checksum.update(b"hello ");
        checksum.update(b"world\n");
        // `printf 'hello world\n' | sha256sum`
        assert_eq!(
            checksum.finish(),
            "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
        );
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let at = |secs: u64, micros: u64| {
            rfc3339_utc(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 1), "2000-02-29T00:00:00.000001Z");
        assert_eq!(at(951_868_799, 0), "2000-02-29T23:59:59.000000Z");
        assert_eq!(at(1_700_000_000, 512_877), "2023-11-14T22:13:20.512877Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23:59:59.000000Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
        // Every day of four centuries against a day-by-day count.
        let (mut year, mut month, mut day) = (1970, 1, 1);
        for days in 0..146_097 {
            assert_eq!(civil_date(days), (year, month, day), "day {days}");
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
            let month_length = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > month_length {
                (day, month) = (1, month + 1);
            }
            if month > 12 {
                (month, year) = (1, year + 1);
            }
        }
    }

    #[test]
    fn json_objects_are_one_line_and_parse() {
        let mut object = JsonObject::new();
        object.text("path", "a \"quoted\" \\ name\nwith\ttabs\u{1b}[31m and é");
        object.raw("size", format_args!("{}", u64::MAX));
        object.raw("ok", format_args!("{}", true));
        let line = object.finish();
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with("}\n"));
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            parsed["path"],
            "a \"quoted\" \\ name\nwith\ttabs\u{1b}[31m and é"
        );
        assert_eq!(parsed["size"], u64::MAX);
        assert_eq!(parsed["ok"], true);
        assert_eq!(JsonObject::new().finish(), "{}\n");
    }

    #[test]
    fn client_from_ssh_connection_and_ssh_client() {
        let client = |ip: &str, port| {
            Some(Client {
                ip: ip.to_owned(),
                port,
            })
        };
        assert_eq!(
            Client::parse("203.0.113.7 52144 192.0.2.1 22"),
            client("203.0.113.7", 52144)
        );
        assert_eq!(
            Client::parse("2001:db8::5 40000 22"),
            client("2001:db8::5", 40000)
        );
        assert_eq!(
            Client::parse("fe80::1%eth0 1 fe80::2%eth0 22"),
            client("fe80::1%eth0", 1)
        );
        for bad in [
            "",
            "203.0.113.7",
            "203.0.113.7 port 22",
            "203.0.113.7 70000 22",
            "evil\x1b[31m 22 1.2.3.4 22",
            "fe80::1%eth0;rm 1 2",
        ] {
            assert_eq!(Client::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn session_ids_differ() {
        let ids: std::collections::HashSet<String> = (0..100).map(|_| new_session_id()).collect();
        assert_eq!(ids.len(), 100);
        assert!(ids.iter().all(|id| id.len() == 16));
    }

    fn session(root: Option<&[u8]>) -> Session {
        let mut s = Session::new(Some("alice".into()), Direction::Upload, ChecksumKind::Off);
        s.root = root.map(<[u8]>::to_vec);
        s
    }

    #[test]
    fn paths_relative_to_the_root_and_resolved() {
        let confined = session(Some(b"/srv/drop"));
        assert_eq!(
            confined.paths(b"/incoming/./a.txt"),
            ("incoming/a.txt".into(), "/srv/drop/incoming/a.txt".into())
        );
        assert_eq!(
            confined.paths(b"x/../y"),
            ("y".into(), "/srv/drop/y".into())
        );
        assert_eq!(confined.paths(b"/"), (String::new(), "/srv/drop".into()));
        let jail = session(Some(b"/"));
        assert_eq!(
            jail.paths(b"/incoming/a"),
            ("incoming/a".into(), "/incoming/a".into())
        );
        let unconfined = session(None);
        assert_eq!(
            unconfined.paths(b"dst/a\x1b.txt"),
            ("dst/a\\x1b.txt".into(), "dst/a\\x1b.txt".into())
        );
    }

    #[test]
    fn refusals_and_failures_are_told_apart() {
        let path = || DisplayPath(b"x".to_vec());
        let denied = Error::Refused {
            path: path(),
            why: Refusal::WouldOverwrite,
        };
        assert_eq!(Outcome::of(&denied), Outcome::Refused);
        assert_eq!(path_in(&denied), Some(&b"x"[..]));
        let escape = Error::PathEscapes { path: path() };
        assert_eq!(Outcome::of(&escape), Outcome::Refused);
        let os = Error::os(b"y", nix::errno::Errno::ENOSPC);
        assert_eq!(Outcome::of(&os), Outcome::Failed);
        assert_eq!(path_in(&os), Some(&b"y"[..]));
        assert_eq!(path_in(&Error::DirectoryWithoutRecursion), None);
    }

    #[test]
    fn modes_are_octal_permission_bits() {
        let file = FileAudit::begin(b"a", 3, 0o100644);
        assert_eq!(file.mode, 0o644);
        assert_eq!(
            format!("{:04o}", FileAudit::begin(b"a", 3, 0o4755).mode),
            "4755"
        );
    }

    #[test]
    fn without_setup_every_call_is_a_no_op() {
        // The unit-test process never calls `setup`.
        let file = FileAudit::begin(b"a", 1, 0o644);
        file.ok(1, None);
        file.failed(0, &Error::DirectoryWithoutRecursion);
        file.interrupted(None);
        problem(&Error::os(b"b", nix::errno::Errno::EACCES));
        session_start(Some(Path::new("/")));
        session_refused("no");
        session_end(1);
        assert!(SESSION.get().is_none());
        assert!(Checksum::if_wanted().is_none());
    }
}
