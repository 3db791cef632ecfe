//! The data path: file bytes between the session's stdin/stdout and files.
//!
//! Record lines stay in `protocol::RecordReader`; the first data bytes of a
//! file may already sit in its buffer and are taken from there first. The
//! rest never passes through user space when the kernel can move it:
//!
//! - sink: `splice(2)` from stdin (a pipe, which sshd gives a session on
//!   Linux, or a socket) into a private relay pipe, and from there into the
//!   file (`splice_via_relay` says why not straight into the file); a small
//!   file from a pipe goes straight in, in one call (`splice_pipe_to`);
//! - source: `sendfile(2)` from the file to stdout (a pipe or a socket);
//!   files up to 16 KiB excepted (`send_small_then_ok`): they are read and
//!   written together with their `\0`, because one wake-up of the peer
//!   per file is worth more than the copy of a few KiB (a zero-copy way to
//!   the same single write -- sendfile into the relay pipe, the `\0`
//!   after it, one splice out -- measured 0.3-0.6 us per file slower).
//!
//! A session pipe is enlarged to 1 MiB (`grow_session_pipe`): with page
//! moves instead of copies, the default 64 KiB pipe made both ends take
//! turns instead of running at once.
//!
//! Whatever these calls refuse (stdin a regular file or a tty, a target that
//! cannot take spliced pages, a pseudo-file without splice support, a
//! non-blocking descriptor) continues with read/write in 256 KiB blocks from
//! exactly where the fast path stopped, so both paths share one set of
//! semantics: write errors are remembered while the stream is drained, and a
//! file that ends early is padded with zeros.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::sendfile::sendfile;
use nix::sys::stat::{SFlag, fstat};

use crate::audit::Checksum;
use crate::protocol::RecordReader;

/// Size of one data block, and the most one splice/sendfile call is asked
/// to move: large enough that per-syscall cost vanishes against the copy,
/// small enough to stay in cache and to keep `-l` pacing smooth.
const BLOCK_SIZE: usize = 256 * 1024;

/// Files up to this size are spliced from a stdin pipe straight into the
/// file (`splice_pipe_to`); larger ones go through the relay.
const SMALL_FILE: u64 = 64 * 1024;

/// Files up to this size are sent with their status byte in one write
/// (`send_small_then_ok`): one wake-up of the peer per file instead of
/// two, for the price of copying a few KiB.
pub const SEND_IN_ONE_WRITE: u64 = 16 * 1024;

/// The capacity asked for the session's pipe: 1 MiB, the most an
/// unprivileged process may set by default (/proc/sys/fs/pipe-max-size).
const SESSION_PIPE_SIZE: usize = 1024 * 1024;

/// Whether a stream is the process's own stdin or stdout — the only
/// streams the data path may hand to splice(2)/sendfile(2) by descriptor.
/// The sink and source are generic so that they can run on any stream;
/// every other stream takes the read/write path.
pub trait SessionStream {
    const IS_SESSION_STREAM: bool = false;
}

impl SessionStream for RawStdin {
    const IS_SESSION_STREAM: bool = true;
}

impl SessionStream for RawStdout {
    const IS_SESSION_STREAM: bool = true;
}

/// A protocol reader whose buffered bytes come before the rest of its
/// stream: what a receive takes file data from (SCP's record reader, SFTP's
/// packet reader).
pub trait BufferedInput {
    type Stream: Read + SessionStream;
    /// Bytes already read from the stream but not yet consumed.
    fn buffered(&self) -> &[u8];
    fn consume(&mut self, n: usize);
    /// The stream itself, once the buffered bytes are taken.
    fn stream(&mut self) -> &mut Self::Stream;
}

impl<R: Read + SessionStream> BufferedInput for RecordReader<R> {
    type Stream = R;

    fn buffered(&self) -> &[u8] {
        RecordReader::buffered(self)
    }

    fn consume(&mut self, n: usize) {
        RecordReader::consume(self, n);
    }

    fn stream(&mut self) -> &mut R {
        self.inner_mut()
    }
}

impl<R: Read + SessionStream> BufferedInput for crate::protocol::sftp::PacketReader<R> {
    type Stream = R;

    fn buffered(&self) -> &[u8] {
        crate::protocol::sftp::PacketReader::buffered(self)
    }

    fn consume(&mut self, n: usize) {
        crate::protocol::sftp::PacketReader::consume(self, n);
    }

    fn stream(&mut self) -> &mut R {
        self.inner_mut()
    }
}

/// The session's stdin, read with read(2) directly (std's `Stdin` would add
/// an 8 KiB buffer that the data path cannot see past).
pub struct RawStdin;

impl Read for RawStdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stdin = io::stdin();
        loop {
            match nix::unistd::read(stdin.as_fd(), buf) {
                Err(Errno::EAGAIN) => wait_until_ready(stdin.as_fd(), PollFlags::POLLIN)?,
                other => return Ok(other?),
            }
        }
    }
}

/// The session's stdout, written with write(2) directly: replies must reach
/// the peer at once, and std's `Stdout` is line-buffered.
pub struct RawStdout;

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let stdout = io::stdout();
        loop {
            match nix::unistd::write(stdout.as_fd(), buf) {
                Err(Errno::EAGAIN) => wait_until_ready(stdout.as_fd(), PollFlags::POLLOUT)?,
                other => return Ok(other?),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Blocks until a non-blocking descriptor is ready. sshd hands a session
/// blocking pipes, but a session started some other way may inherit a
/// descriptor someone set to O_NONBLOCK; waiting beats failing.
fn wait_until_ready(fd: BorrowedFd<'_>, events: PollFlags) -> Result<(), Errno> {
    loop {
        match poll(&mut [PollFd::new(fd, events)], PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            // Readiness, or an error/hang-up that the retried call reports.
            Ok(_) => return Ok(()),
        }
    }
}

/// `-l LIMIT`: OpenSSH's rate limit in Kbit/s (multiplied by 1024), which it
/// honours in remote mode too (PROTOCOL.md §c).
pub struct Throttle {
    bytes_per_sec: f64,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    pub fn from_kbits(kbits: u64) -> Self {
        Throttle {
            bytes_per_sec: (kbits * 1024) as f64 / 8.0,
            started: Instant::now(),
            bytes: 0,
        }
    }

    /// Sleeps until `n` more bytes fit under the rate since the start.
    fn pace(&mut self, n: usize) {
        self.bytes += n as u64;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_sec);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            thread::sleep(wait);
        }
    }
}

/// How receiving one file's bytes went, when the stream stayed intact.
pub struct Received {
    /// The first write error; later bytes were read and dropped so that the
    /// stream stays in step with the sender.
    pub write_error: Option<Errno>,
}

/// The stream ended before all bytes of a file arrived.
pub struct Incomplete {
    pub received: u64,
}

/// Where a file's data ran out while it was being sent.
pub struct Shortfall {
    pub sent: u64,
    /// `None` when the file simply ended (it shrank, or it is a pseudo-file
    /// whose size is a guess).
    pub errno: Option<Errno>,
}

/// What the session's stdin is, which decides how the sink splices.
#[derive(Clone, Copy, PartialEq, Eq)]
enum InputKind {
    /// What sshd gives a session on Linux.
    Pipe,
    /// splice(2) needs a pipe on one side: socket → relay → file.
    Socket,
    /// A regular file, a tty, /dev/null…: read/write only.
    Other,
}

/// One receive in progress.
struct Progress {
    size: u64,
    received: u64,
    write_error: Option<Errno>,
}

impl Progress {
    fn remaining(&self) -> u64 {
        self.size - self.received
    }

    fn done(&self) -> bool {
        self.received >= self.size
    }

    fn incomplete(&self) -> Incomplete {
        Incomplete {
            received: self.received,
        }
    }
}

/// Whether the splice fast path may go on with the current file.
enum Splice {
    /// Keep splicing.
    Continue,
    /// Stop splicing this file; read/write takes over where it stopped.
    Fallback,
}

/// How sending a file with sendfile(2) ended.
enum Sendfile {
    /// All bytes sent.
    Done,
    /// The file ended before its size: the rest goes as zeros.
    FileEnded,
    /// Unsupported, or an error on one of the two sides: read/write goes on
    /// from here and finds out which side it was.
    Fallback,
}

/// A private pipe through which the sink splices stdin into files, created
/// on first use and kept for the session. Empty between calls.
struct Relay {
    read_end: OwnedFd,
    write_end: OwnedFd,
    capacity: usize,
}

impl Relay {
    fn new() -> Result<Relay, Errno> {
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        // A larger pipe means fewer splice calls per block. Asking is
        // enough: a user over the pipe-size limits keeps the default.
        let wanted = i32::try_from(BLOCK_SIZE).unwrap_or(i32::MAX);
        let capacity = fcntl(&write_end, FcntlArg::F_SETPIPE_SZ(wanted))
            .or_else(|_| fcntl(&write_end, FcntlArg::F_GETPIPE_SZ))?;
        Ok(Relay {
            read_end,
            write_end,
            capacity: usize::try_from(capacity).unwrap_or(4096).max(4096),
        })
    }
}

/// Moves file data between the session and files; owns the block buffer
/// and the relay pipe so that a recursive transfer sets them up once.
pub struct DataPath {
    block: Vec<u8>,
    throttle: Option<Throttle>,
    /// What stdin is, found out on the first receive.
    input: Option<InputKind>,
    relay: Option<Relay>,
    /// Whether stdout was looked at (and enlarged if a pipe) yet.
    output_prepared: bool,
    /// splice/sendfile allowed (`false`: read/write only, `--copy-data`).
    zero_copy: bool,
}

impl DataPath {
    pub fn new(throttle: Option<Throttle>) -> Self {
        DataPath {
            block: vec![0u8; BLOCK_SIZE],
            throttle,
            input: None,
            relay: None,
            output_prepared: false,
            zero_copy: true,
        }
    }

    /// Moves every byte with read/write, never splice or sendfile: the
    /// hidden `--copy-data`, which the benchmark runs beside the default to
    /// show what zero-copy changes end to end.
    pub fn copying_only(mut self) -> Self {
        self.zero_copy = false;
        self
    }

    fn pace(&mut self, n: usize) {
        if let Some(t) = self.throttle.as_mut() {
            t.pace(n);
        }
    }

    /// Reads exactly `size` data bytes from the session and writes them to
    /// `out` (or drops them when `out` is `None`).
    ///
    /// With a `checksum`, every byte goes through user space to be hashed:
    /// spliced pages never reach it, so the copy path is taken.
    pub fn receive<B: BufferedInput>(
        &mut self,
        reader: &mut B,
        out: Option<BorrowedFd<'_>>,
        size: u64,
        mut checksum: Option<&mut Checksum>,
    ) -> Result<Received, Incomplete> {
        let mut progress = Progress {
            size,
            received: 0,
            write_error: None,
        };
        self.take_buffered(reader, out, &mut progress, checksum.as_deref_mut());
        if B::Stream::IS_SESSION_STREAM {
            // Once per session: a pipe is enlarged for the copy path too.
            self.input_kind(io::stdin().as_fd());
        }
        if let Some(out) = out
            && B::Stream::IS_SESSION_STREAM
            && checksum.is_none()
            && self.zero_copy
        {
            self.splice_from_stdin(out, &mut progress)?;
        }
        self.copy_from(reader.stream(), out, &mut progress, checksum)?;
        Ok(Received {
            write_error: progress.write_error,
        })
    }

    /// Data bytes that arrived with the record line come first.
    fn take_buffered<B: BufferedInput>(
        &mut self,
        reader: &mut B,
        out: Option<BorrowedFd<'_>>,
        progress: &mut Progress,
        checksum: Option<&mut Checksum>,
    ) {
        let buffered = reader.buffered();
        let first = buffered.len().min(remaining_usize(progress.remaining()));
        if first == 0 {
            return;
        }
        if let Some(sum) = checksum {
            sum.update(&buffered[..first]);
        }
        write_or_remember(out, &buffered[..first], &mut progress.write_error);
        reader.consume(first);
        progress.received += first as u64;
        self.pace(first);
    }

    /// The zero-copy part of a receive: moves as much as it can, and leaves
    /// the rest (after a fallback or a write error) to `copy_from`.
    fn splice_from_stdin(
        &mut self,
        out: BorrowedFd<'_>,
        progress: &mut Progress,
    ) -> Result<(), Incomplete> {
        let stdin = io::stdin();
        match self.input_kind(stdin.as_fd()) {
            InputKind::Pipe if progress.remaining() <= SMALL_FILE => {
                self.splice_pipe_to(stdin.as_fd(), out, progress)
            }
            InputKind::Pipe | InputKind::Socket => {
                self.splice_via_relay(stdin.as_fd(), out, progress)
            }
            InputKind::Other => Ok(()),
        }
    }

    fn input_kind(&mut self, stdin: BorrowedFd<'_>) -> InputKind {
        *self.input.get_or_insert_with(|| prepare_input(stdin))
    }

    /// A small file from a pipe: one splice straight into the file. It is
    /// usually in the pipe whole already, so holding the pipe's lock while
    /// writing it (see `splice_via_relay`) costs the sender nothing, and the
    /// relay would cost a second call per file. Never takes more than the
    /// file's remaining bytes: the sender's status byte stays in the pipe.
    fn splice_pipe_to(
        &mut self,
        stdin: BorrowedFd<'_>,
        out: BorrowedFd<'_>,
        progress: &mut Progress,
    ) -> Result<(), Incomplete> {
        while !progress.done() {
            let want = block_len(progress.remaining());
            match splice(stdin, None, out, None, want, SpliceFFlags::empty()) {
                // No writer left and the pipe is empty: the sender is gone.
                Ok(0) => return Err(progress.incomplete()),
                Ok(n) => {
                    progress.received += n as u64;
                    self.pace(n);
                }
                Err(Errno::EINTR) => continue,
                // Nothing was taken from the pipe; read/write goes on.
                Err(e) if cannot_splice(e) => return Ok(()),
                // The pipe side cannot fail, so this is the file's error.
                // Nothing was consumed; `copy_from` drains the rest.
                Err(e) => {
                    progress.write_error = Some(e);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Splices stdin into the relay pipe, then the relay into the file, one
    /// relay-full at a time; bytes in the relay count as received, and the
    /// relay is always emptied before the next round.
    ///
    /// Also for a pipe on stdin, where splicing straight into the file
    /// would work: that call holds the session pipe's lock while it writes
    /// the file, so the sender could not refill the pipe meanwhile, and
    /// moving data turned into taking turns (measured: 2.5 times slower into
    /// tmpfs than read/write). Pipe to pipe moves page references only; the
    /// file write then holds just the relay's lock.
    fn splice_via_relay(
        &mut self,
        stdin: BorrowedFd<'_>,
        out: BorrowedFd<'_>,
        progress: &mut Progress,
    ) -> Result<(), Incomplete> {
        if self.relay.is_none() {
            match Relay::new() {
                Ok(relay) => self.relay = Some(relay),
                Err(_) => return Ok(()),
            }
        }
        while !progress.done() {
            let n = match self.splice_stdin_to_relay(stdin, progress.remaining()) {
                // No writer left and nothing buffered: the sender is gone.
                Ok(0) => return Err(progress.incomplete()),
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                // Nothing was taken; read/write goes on from here.
                Err(e) if cannot_splice(e) => return Ok(()),
                // A receive error on a socket: the connection is gone.
                Err(_) => return Err(progress.incomplete()),
            };
            progress.received += n as u64;
            self.pace(n);
            if let Splice::Fallback = self.empty_relay_into(out, n, &mut progress.write_error) {
                return Ok(());
            }
            if progress.write_error.is_some() {
                // `copy_from` drains the rest of the file's bytes.
                return Ok(());
            }
        }
        Ok(())
    }

    fn splice_stdin_to_relay(&self, stdin: BorrowedFd<'_>, remaining: u64) -> Result<usize, Errno> {
        let relay = self.relay.as_ref().ok_or(Errno::EINVAL)?;
        let want = block_len(remaining).min(relay.capacity);
        splice(
            stdin,
            None,
            &relay.write_end,
            None,
            want,
            SpliceFFlags::empty(),
        )
    }

    /// Moves the `n` bytes in the relay into `out`. If `out` cannot take
    /// spliced pages they are copied instead, and the file continues with
    /// read/write; on a write error they are read and dropped.
    fn empty_relay_into(
        &mut self,
        out: BorrowedFd<'_>,
        n: usize,
        write_error: &mut Option<Errno>,
    ) -> Splice {
        let Some(relay) = self.relay.as_ref() else {
            return Splice::Fallback;
        };
        let mut left = n;
        while left > 0 {
            match splice(
                &relay.read_end,
                None,
                out,
                None,
                left,
                SpliceFFlags::empty(),
            ) {
                Ok(0) => {
                    // Cannot happen with bytes in the pipe; treat as an I/O
                    // error rather than loop.
                    *write_error = Some(Errno::EIO);
                    break;
                }
                Ok(m) => left -= m,
                Err(Errno::EINTR) => continue,
                Err(e) if cannot_splice(e) => {
                    copy_pipe_bytes(
                        relay.read_end.as_fd(),
                        Some(out),
                        left,
                        &mut self.block,
                        write_error,
                    );
                    return Splice::Fallback;
                }
                Err(e) => {
                    *write_error = Some(e);
                    break;
                }
            }
        }
        if left > 0 {
            copy_pipe_bytes(
                relay.read_end.as_fd(),
                None,
                left,
                &mut self.block,
                write_error,
            );
        }
        Splice::Continue
    }

    /// read/write through the block buffer: the fallback, the drain after a
    /// write error, and the path for streams that are not the session's.
    fn copy_from<R: Read>(
        &mut self,
        input: &mut R,
        out: Option<BorrowedFd<'_>>,
        progress: &mut Progress,
        mut checksum: Option<&mut Checksum>,
    ) -> Result<(), Incomplete> {
        while !progress.done() {
            let want = block_len(progress.remaining());
            let n = match input.read(&mut self.block[..want]) {
                Ok(0) => return Err(progress.incomplete()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err(progress.incomplete()),
            };
            if let Some(sum) = checksum.as_deref_mut() {
                sum.update(&self.block[..n]);
            }
            write_or_remember(out, &self.block[..n], &mut progress.write_error);
            progress.received += n as u64;
            self.pace(n);
        }
        Ok(())
    }

    /// Sends exactly `size` bytes of `file` to the session. If the file ends
    /// early or a read fails, the rest is sent as zero bytes (as OpenSSH
    /// does, so the stream stays in step) and the shortfall is returned.
    /// An `Err` means the peer is gone.
    ///
    /// With a `checksum`, the bytes sent are hashed, so the copy path is
    /// taken (sendfile's pages never reach user space).
    pub fn send<W: Write + SessionStream>(
        &mut self,
        file: BorrowedFd<'_>,
        size: u64,
        out: &mut W,
        checksum: Option<&mut Checksum>,
    ) -> io::Result<Option<Shortfall>> {
        let mut sent = 0u64;
        let mut shortfall = None;
        if W::IS_SESSION_STREAM {
            self.prepare_output();
        }
        if W::IS_SESSION_STREAM && checksum.is_none() && self.zero_copy {
            match self.sendfile_to_stdout(file, size, &mut sent)? {
                Sendfile::Done => return Ok(None),
                Sendfile::FileEnded => shortfall = Some(Shortfall { sent, errno: None }),
                Sendfile::Fallback => {}
            }
        }
        self.copy_to(file, size, sent, shortfall, out, checksum)
    }

    /// Sends a file of at most `SEND_IN_ONE_WRITE` bytes and, when all of
    /// it could be read, the `\0` that ends it, in one write: a reader
    /// woken by the data would otherwise find the status byte missing and
    /// sleep again (and ssh would send two packets). A file that ends early
    /// or fails to read is padded with zeros as in `send`, without the
    /// `\0`; the shortfall is returned for the caller's error line.
    pub fn send_small_then_ok<W: Write>(
        &mut self,
        file: BorrowedFd<'_>,
        size: u64,
        out: &mut W,
        checksum: Option<&mut Checksum>,
    ) -> io::Result<Option<Shortfall>> {
        let size = usize::try_from(size.min(SEND_IN_ONE_WRITE)).unwrap_or(0);
        let mut filled = 0;
        let mut shortfall = None;
        while filled < size {
            match read_retrying(file, &mut self.block[filled..size]) {
                Ok(0) => shortfall = Some(None),
                Ok(n) => filled += n,
                Err(errno) => shortfall = Some(Some(errno)),
            }
            if shortfall.is_some() {
                break;
            }
        }
        self.block[filled..size].fill(0);
        if let Some(sum) = checksum {
            sum.update(&self.block[..size]);
        }
        let end = match shortfall {
            None => {
                self.block[size] = 0;
                size + 1
            }
            Some(_) => size,
        };
        out.write_all(&self.block[..end])?;
        self.pace(size);
        Ok(shortfall.map(|errno| Shortfall {
            sent: filled as u64,
            errno,
        }))
    }

    /// Looks at stdout once per session; a pipe is enlarged (for the copy
    /// path too: 256 KiB blocks into a 64 KiB pipe would wait on the
    /// reader four times per block).
    fn prepare_output(&mut self) {
        if !self.output_prepared {
            self.output_prepared = true;
            let stdout = io::stdout();
            if file_kind(stdout.as_fd()) == Some(SFlag::S_IFIFO) {
                grow_session_pipe(stdout.as_fd());
            }
        }
    }

    /// The zero-copy part of a send. sendfile(2) takes the file's pages
    /// straight into the pipe or socket and advances the file offset, so a
    /// fallback continues at the right place.
    fn sendfile_to_stdout(
        &mut self,
        file: BorrowedFd<'_>,
        size: u64,
        sent: &mut u64,
    ) -> io::Result<Sendfile> {
        let stdout = io::stdout();
        while *sent < size {
            let want = block_len(size - *sent);
            match sendfile(stdout.as_fd(), file, None, want) {
                Ok(0) => return Ok(Sendfile::FileEnded),
                Ok(n) => {
                    *sent += n as u64;
                    self.pace(n);
                }
                Err(Errno::EINTR) => continue,
                // Only stdout can be non-blocking: regular files ignore it.
                Err(Errno::EAGAIN) => wait_until_ready(stdout.as_fd(), PollFlags::POLLOUT)?,
                // Unsupported (EINVAL, ENOSYS), or an error of the file or
                // of the peer: read/write repeats the step and tells which.
                Err(_) => return Ok(Sendfile::Fallback),
            }
        }
        Ok(Sendfile::Done)
    }

    /// read/write through the block buffer from byte `sent` on; zeros once
    /// the file has run out.
    fn copy_to<W: Write>(
        &mut self,
        file: BorrowedFd<'_>,
        size: u64,
        mut sent: u64,
        mut shortfall: Option<Shortfall>,
        out: &mut W,
        mut checksum: Option<&mut Checksum>,
    ) -> io::Result<Option<Shortfall>> {
        while sent < size {
            let want = block_len(size - sent);
            let n = if shortfall.is_some() {
                self.block[..want].fill(0);
                want
            } else {
                match read_retrying(file, &mut self.block[..want]) {
                    Ok(0) => {
                        shortfall = Some(Shortfall { sent, errno: None });
                        continue;
                    }
                    Ok(n) => n,
                    Err(errno) => {
                        shortfall = Some(Shortfall {
                            sent,
                            errno: Some(errno),
                        });
                        continue;
                    }
                }
            };
            if let Some(sum) = checksum.as_deref_mut() {
                sum.update(&self.block[..n]);
            }
            out.write_all(&self.block[..n])?;
            sent += n as u64;
            self.pace(n);
        }
        Ok(shortfall)
    }
}

/// Looks at stdin once per session; a pipe is also enlarged.
fn prepare_input(stdin: BorrowedFd<'_>) -> InputKind {
    match file_kind(stdin) {
        Some(SFlag::S_IFIFO) => {
            grow_session_pipe(stdin);
            InputKind::Pipe
        }
        Some(SFlag::S_IFSOCK) => InputKind::Socket,
        _ => InputKind::Other,
    }
}

fn file_kind(fd: BorrowedFd<'_>) -> Option<SFlag> {
    let st = fstat(fd).ok()?;
    Some(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()))
}

/// Asks for a larger session pipe, once, and never shrinks one. With the
/// default 64 KiB, zero-copy turns a transfer into taking turns: one
/// splice/sendfile fills or empties the whole pipe at once, then waits for
/// the peer to do the same, a context switch per 64 KiB. A larger pipe
/// lets both sides run at once (measured: source 2–3 times faster).
///
/// The pages count against the user's pipe allowance
/// (/proc/sys/fs/pipe-user-pages-soft, 64 MiB by default): a user past it
/// is refused (EPERM), and then keeps the default size, which is fine.
fn grow_session_pipe(pipe: BorrowedFd<'_>) {
    let Ok(current) = fcntl(pipe, FcntlArg::F_GETPIPE_SZ) else {
        return;
    };
    for size in [SESSION_PIPE_SIZE, BLOCK_SIZE] {
        let size = i32::try_from(size).unwrap_or(i32::MAX);
        if current >= size || fcntl(pipe, FcntlArg::F_SETPIPE_SZ(size)).is_ok() {
            return;
        }
    }
}

/// Errors with which splice(2) says "not with these descriptors" (a target
/// opened O_APPEND or without splice support, a socket type that cannot
/// splice) or "not now" (a non-blocking descriptor), having moved nothing:
/// read/write can do the same job.
fn cannot_splice(e: Errno) -> bool {
    matches!(
        e,
        Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP | Errno::EAGAIN | Errno::EBADF
    )
}

/// Reads `n` bytes known to be in a pipe and writes them to `out` (or
/// drops them), so that the pipe is empty again.
fn copy_pipe_bytes(
    pipe: BorrowedFd<'_>,
    out: Option<BorrowedFd<'_>>,
    mut n: usize,
    block: &mut [u8],
    write_error: &mut Option<Errno>,
) {
    while n > 0 {
        let want = n.min(block.len());
        match read_retrying(pipe, &mut block[..want]) {
            Ok(0) | Err(_) => return,
            Ok(got) => {
                write_or_remember(out, &block[..got], write_error);
                n -= got;
            }
        }
    }
}

/// The next block's length: `remaining`, at most one block.
fn block_len(remaining: u64) -> usize {
    remaining_usize(remaining).min(BLOCK_SIZE)
}

fn remaining_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Writes `bytes` unless there is nowhere to write or a write already
/// failed; the first failure is kept for the reply after the data.
fn write_or_remember(out: Option<BorrowedFd<'_>>, bytes: &[u8], write_error: &mut Option<Errno>) {
    let Some(fd) = out else { return };
    if write_error.is_some() {
        return;
    }
    if let Err(e) = write_all_fd(fd, bytes) {
        *write_error = Some(e);
    }
}

pub fn write_all_fd(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => wait_until_ready(fd, PollFlags::POLLOUT)?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_retrying(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

// ---------------------------------------------------------------------------
// SFTP: READ replies whose data leave without passing through user space
// ---------------------------------------------------------------------------

/// Enlarges the session's pipes once (stdin and stdout, where they are
/// pipes), for the same reason as for SCP: page moves take turns with a
/// 64 KiB pipe.
pub fn prepare_session_pipes() {
    for fd in [io::stdin().as_fd(), io::stdout().as_fd()] {
        if file_kind(fd) == Some(SFlag::S_IFIFO) {
            grow_session_pipe(fd);
        }
    }
}

/// Sends exactly `len` bytes of `file` from `offset` to stdout, after the
/// caller has written the DATA header that announces them: by sendfile(2)
/// where the kernel can, else read/write from where it stopped; a file
/// that became shorter meanwhile is padded with zeros so that the stream
/// stays in step. `Err` means the peer is gone.
pub fn send_range_to_stdout(file: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<()> {
    let stdout = io::stdout();
    let mut at = i64::try_from(offset).map_err(|_| io::Error::from(ErrorKind::InvalidInput))?;
    let mut left = len;
    while left > 0 {
        match sendfile(stdout.as_fd(), file, Some(&mut at), left) {
            Ok(0) => break,
            Ok(n) => left -= n,
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => wait_until_ready(stdout.as_fd(), PollFlags::POLLOUT)?,
            Err(Errno::EPIPE) => return Err(ErrorKind::BrokenPipe.into()),
            Err(_) => break,
        }
    }
    copy_range_to_stdout(file, at, left)
}

/// The read/write end of `send_range_to_stdout`.
fn copy_range_to_stdout(file: BorrowedFd<'_>, mut at: i64, mut left: usize) -> io::Result<()> {
    if left == 0 {
        return Ok(());
    }
    let mut out = RawStdout;
    let mut block = vec![0u8; left.min(BLOCK_SIZE)];
    let mut file_ended = false;
    while left > 0 {
        let want = left.min(block.len());
        let n = if file_ended {
            0
        } else {
            match nix::sys::uio::pread(file, &mut block[..want], at) {
                Err(Errno::EINTR) => continue,
                Ok(n) => n,
                Err(_) => 0,
            }
        };
        let n = if n == 0 {
            file_ended = true;
            block[..want].fill(0);
            want
        } else {
            n
        };
        out.write_all(&block[..n])?;
        at += n as i64;
        left -= n;
    }
    Ok(())
}
