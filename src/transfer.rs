//! The data path: file bytes between the session's stdin/stdout and files,
//! in large blocks, without going through std's small line buffers. Record
//! lines stay in `protocol::RecordReader`; the first data bytes may already
//! sit in its buffer and are taken from there first.

use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::protocol::RecordReader;

/// Size of one data block. Large enough that per-syscall cost vanishes
/// against the copy itself; small enough to stay in cache.
const BLOCK_SIZE: usize = 256 * 1024;

/// The session's stdin, read with read(2) directly (std's `Stdin` would add
/// an 8 KiB buffer that the data path cannot see past).
pub struct RawStdin;

impl Read for RawStdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(nix::unistd::read(io::stdin().as_fd(), buf)?)
    }
}

/// The session's stdout, written with write(2) directly: replies must reach
/// the peer at once, and std's `Stdout` is line-buffered.
pub struct RawStdout;

impl Write for RawStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(nix::unistd::write(io::stdout().as_fd(), buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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

/// Moves file data between the session and files; owns the block buffer so
/// that a recursive transfer allocates it once.
pub struct DataPath {
    block: Vec<u8>,
    throttle: Option<Throttle>,
}

impl DataPath {
    pub fn new(throttle: Option<Throttle>) -> Self {
        DataPath {
            block: vec![0u8; BLOCK_SIZE],
            throttle,
        }
    }

    fn pace(&mut self, n: usize) {
        if let Some(t) = self.throttle.as_mut() {
            t.pace(n);
        }
    }

    /// Reads exactly `size` data bytes from the session and writes them to
    /// `out` (or drops them when `out` is `None`).
    pub fn receive<R: Read>(
        &mut self,
        reader: &mut RecordReader<R>,
        out: Option<BorrowedFd<'_>>,
        size: u64,
    ) -> Result<Received, Incomplete> {
        let mut state = Received { write_error: None };
        let mut received = 0u64;
        let buffered = reader.buffered();
        let first = buffered.len().min(remaining_usize(size));
        if first > 0 {
            write_or_remember(out, &buffered[..first], &mut state);
            reader.consume(first);
            received += first as u64;
            self.pace(first);
        }
        while received < size {
            let want = remaining_usize(size - received).min(self.block.len());
            let n = match reader.inner_mut().read(&mut self.block[..want]) {
                Ok(0) => return Err(Incomplete { received }),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err(Incomplete { received }),
            };
            write_or_remember(out, &self.block[..n], &mut state);
            received += n as u64;
            self.pace(n);
        }
        Ok(state)
    }

    /// Sends exactly `size` bytes of `file` to the session. If the file ends
    /// early or a read fails, the rest is sent as zero bytes (as OpenSSH
    /// does, so the stream stays in step) and the shortfall is returned.
    /// An `Err` means the peer is gone.
    pub fn send<W: Write>(
        &mut self,
        file: BorrowedFd<'_>,
        size: u64,
        out: &mut W,
    ) -> io::Result<Option<Shortfall>> {
        let mut sent = 0u64;
        let mut shortfall = None;
        while sent < size {
            let want = remaining_usize(size - sent).min(self.block.len());
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
            out.write_all(&self.block[..n])?;
            sent += n as u64;
            self.pace(n);
        }
        Ok(shortfall)
    }
}

/// Where a file's data ran out while it was being sent.
pub struct Shortfall {
    pub sent: u64,
    /// `None` when the file simply ended (it shrank, or it is a pseudo-file
    /// whose size is a guess).
    pub errno: Option<Errno>,
}

fn remaining_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn write_or_remember(out: Option<BorrowedFd<'_>>, bytes: &[u8], state: &mut Received) {
    let Some(fd) = out else { return };
    if state.write_error.is_some() {
        return;
    }
    if let Err(e) = write_all_fd(fd, bytes) {
        state.write_error = Some(e);
    }
}

pub fn write_all_fd(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
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
