//! Writing replies and records. Every write goes straight to the stream:
//! the peer waits for each reply before it sends more, so nothing may sit in
//! a buffer, and stdout carries protocol bytes only.

use std::fmt::Display;
use std::io::{self, Write};

pub struct ReplyWriter<W> {
    inner: W,
}

impl<W: Write> ReplyWriter<W> {
    pub fn new(inner: W) -> Self {
        ReplyWriter { inner }
    }

    /// The `\0` status: record accepted / file complete.
    pub fn ok(&mut self) -> io::Result<()> {
        self.send(b"\0")
    }

    /// A `\x01scp: MESSAGE\n` line: a warning for one record (the peer skips
    /// that item and goes on) or, before we exit, the reason for stopping.
    /// The message must already be escaped (`escape_bytes`).
    pub fn warn(&mut self, message: &dyn Display) -> io::Result<()> {
        let line = format!("\x01scp: {message}\n");
        self.send(line.as_bytes())
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.inner.flush()
    }

    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}
