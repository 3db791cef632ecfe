//! The client side of the SCP protocol over the server's stdin/stdout pipes,
//! so that the measured process is the server alone: no ssh, no sshd, and a
//! client that costs as little as possible per record and per byte.

use std::io::{self, Read, Write};
use std::process::{ChildStdin, ChildStdout};

/// Bytes of file data written or read per system call.
pub const DATA_CHUNK: usize = 1 << 20;

/// The server's stdout with a small buffer for record lines and status
/// bytes; bulk data bypasses the buffer.
pub struct Replies {
    inner: ChildStdout,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl Replies {
    pub fn new(inner: ChildStdout) -> Replies {
        Replies {
            inner,
            buf: vec![0; 64 * 1024],
            pos: 0,
            end: 0,
        }
    }

    /// One status byte: `\0` is success, `\x01`/`\x02` carry a message
    /// line, which becomes the error.
    pub fn expect_ok(&mut self, after: &str) -> io::Result<()> {
        match self.byte()? {
            Some(0) => Ok(()),
            Some(code) => {
                let text = self.line()?.unwrap_or_default();
                Err(protocol_error(format!(
                    "after {after}: status {code}: {}",
                    String::from_utf8_lossy(&text).trim_end()
                )))
            }
            None => Err(protocol_error(format!("after {after}: connection closed"))),
        }
    }

    /// A record line without its LF; `None` at a clean end of stream.
    pub fn line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        loop {
            if self.pos == self.end && !self.fill()? {
                return if line.is_empty() {
                    Ok(None)
                } else {
                    Err(protocol_error("connection closed inside a line".into()))
                };
            }
            let available = &self.buf[self.pos..self.end];
            match available.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    line.extend_from_slice(&available[..i]);
                    self.pos += i + 1;
                    return Ok(Some(line));
                }
                None => {
                    line.extend_from_slice(available);
                    self.pos = self.end;
                }
            }
        }
    }

    /// Reads and drops `n` data bytes: what is buffered first, then
    /// straight from the pipe into `scratch`.
    pub fn discard(&mut self, mut n: u64, scratch: &mut [u8]) -> io::Result<()> {
        let buffered = (self.end - self.pos).min(usize::try_from(n).unwrap_or(usize::MAX));
        self.pos += buffered;
        n -= buffered as u64;
        while n > 0 {
            let want = scratch.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let got = self.inner.read(&mut scratch[..want])?;
            if got == 0 {
                return Err(protocol_error(format!("data cut short, {n} bytes missing")));
            }
            n -= got as u64;
        }
        Ok(())
    }

    /// Everything until the server closes its stdout; must be nothing.
    pub fn expect_end(&mut self) -> io::Result<()> {
        let mut rest = self.buf[self.pos..self.end].to_vec();
        self.pos = self.end;
        self.inner.read_to_end(&mut rest)?;
        if rest.is_empty() {
            Ok(())
        } else {
            Err(protocol_error(format!(
                "unexpected bytes at the end: {:?}",
                String::from_utf8_lossy(&rest)
            )))
        }
    }

    fn byte(&mut self) -> io::Result<Option<u8>> {
        if self.pos == self.end && !self.fill()? {
            return Ok(None);
        }
        self.pos += 1;
        Ok(Some(self.buf[self.pos - 1]))
    }

    fn fill(&mut self) -> io::Result<bool> {
        let n = self.inner.read(&mut self.buf)?;
        self.pos = 0;
        self.end = n;
        Ok(n > 0)
    }
}

pub fn protocol_error(message: String) -> io::Error {
    io::Error::other(message)
}

/// Sends `size` bytes cycling through `pattern` (no file read on the client
/// side, so the client costs one copy into the pipe per byte).
pub fn send_pattern(to: &mut ChildStdin, pattern: &[u8], size: u64) -> io::Result<()> {
    let mut left = size;
    while left > 0 {
        let n = pattern
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        to.write_all(&pattern[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Incompressible-looking bytes (xorshift), so that nothing on the way can
/// take a shortcut on zeros.
pub fn pattern(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Parses `C<mode> <size> <name>` and returns the size.
pub fn file_record_size(line: &[u8]) -> io::Result<u64> {
    let text = String::from_utf8_lossy(line);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol_error(format!("bad file record {text:?}")))
}
