//! Buffered reading of record lines and status replies. Data bytes that
//! arrive in the same read as a record stay in the buffer; the data path
//! (`transfer.rs`) takes them from `buffered()` before reading the stream.

use std::io::{ErrorKind, Read};

use super::record::ProtocolError;

const BUFFER_SIZE: usize = 64 * 1024;

/// One record line, or the clean end of the stream before its first byte.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Record(Vec<u8>),
    Eof,
}

/// A status reply: `\0`, `\x01 text`, `\x02 text`, or anything else (which
/// OpenSSH reads as the start of a message and treats as fatal).
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warning(Vec<u8>),
    Fatal(Vec<u8>),
    Garbage(Vec<u8>),
    Eof,
}

pub struct RecordReader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    max_line: usize,
}

impl<R: Read> RecordReader<R> {
    pub fn new(inner: R, max_line: usize) -> Self {
        RecordReader {
            inner,
            buf: vec![0u8; BUFFER_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            max_line,
        }
    }

    /// Reads one record line without its LF. EOF before the first byte is a
    /// normal end of session; EOF inside a line is a lost connection.
    pub fn read_line(&mut self) -> Result<Line, ProtocolError> {
        let Some(first) = self.read_byte()? else {
            return Ok(Line::Eof);
        };
        if first == b'\n' {
            return Err(ProtocolError::UnexpectedNewline);
        }
        let mut line = vec![first];
        self.read_until_newline(&mut line)?;
        Ok(Line::Record(line))
    }

    /// Reads the peer's reply to something we sent.
    pub fn read_status(&mut self) -> Result<Status, ProtocolError> {
        let Some(first) = self.read_byte()? else {
            return Ok(Status::Eof);
        };
        if first == 0 {
            return Ok(Status::Ok);
        }
        let mut text = Vec::new();
        if first != 1 && first != 2 {
            text.push(first);
        }
        if first != b'\n' {
            self.read_until_newline(&mut text)?;
        }
        Ok(match first {
            1 => Status::Warning(text),
            2 => Status::Fatal(text),
            _ => Status::Garbage(text),
        })
    }

    /// Bytes already read from the stream but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// The underlying stream, for bulk data once `buffered()` is drained.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn read_until_newline(&mut self, line: &mut Vec<u8>) -> Result<(), ProtocolError> {
        loop {
            if self.pos == self.end && !self.fill()? {
                return Err(ProtocolError::LostConnection);
            }
            let available = &self.buf[self.pos..self.end];
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.unwrap_or(available.len());
            // +1 for the LF that terminates the line on the wire.
            if line.len() + take + 1 > self.max_line {
                return Err(ProtocolError::LineTooLong { max: self.max_line });
            }
            line.extend_from_slice(&available[..take]);
            match newline {
                Some(_) => {
                    self.pos += take + 1;
                    return Ok(());
                }
                None => self.pos = self.end,
            }
        }
    }

    fn read_byte(&mut self) -> Result<Option<u8>, ProtocolError> {
        if self.pos == self.end && !self.fill()? {
            return Ok(None);
        }
        let byte = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(byte))
    }

    /// Refills the empty buffer; `false` at end of stream. A read error on
    /// the session's stdin means the connection is gone.
    fn fill(&mut self) -> Result<bool, ProtocolError> {
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.pos = 0;
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err(ProtocolError::LostConnection),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: &[u8]) -> RecordReader<&[u8]> {
        RecordReader::new(bytes, 16)
    }

    #[test]
    fn lines_and_data_share_the_buffer() {
        let mut r = reader(b"C0644 5 a\nhello\0");
        assert_eq!(r.read_line().unwrap(), Line::Record(b"C0644 5 a".to_vec()));
        assert_eq!(r.buffered(), b"hello\0");
        r.consume(5);
        assert_eq!(r.read_status().unwrap(), Status::Ok);
        assert_eq!(r.read_line().unwrap(), Line::Eof);
    }

    #[test]
    fn line_errors() {
        assert_eq!(
            reader(b"\n").read_line(),
            Err(ProtocolError::UnexpectedNewline)
        );
        assert_eq!(
            reader(b"C0644 5 x").read_line(),
            Err(ProtocolError::LostConnection)
        );
        // 15 bytes + LF fit in 16; 16 bytes + LF do not.
        assert!(reader(b"123456789012345\n").read_line().is_ok());
        assert_eq!(
            reader(b"1234567890123456\n").read_line(),
            Err(ProtocolError::LineTooLong { max: 16 })
        );
    }

    #[test]
    fn statuses() {
        let mut r = reader(b"\x01no thanks\n\x02fatal\nXgarbage\n");
        assert_eq!(
            r.read_status().unwrap(),
            Status::Warning(b"no thanks".to_vec())
        );
        assert_eq!(r.read_status().unwrap(), Status::Fatal(b"fatal".to_vec()));
        assert_eq!(
            r.read_status().unwrap(),
            Status::Garbage(b"Xgarbage".to_vec())
        );
        assert_eq!(r.read_status().unwrap(), Status::Eof);
    }
}
