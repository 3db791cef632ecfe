//! Packets in and out: length-prefixed frames read in large chunks (many
//! small requests per read system call), and replies collected in one
//! buffer so that a batch of them leaves in one write.

use std::io::{self, Read};

use super::codes::{MAX_PACKET, StatusCode, VERSION, packet};
use super::wire::{Attrs, Encoder, WireError};

/// How much one read asks for: a full packet of the largest size and more,
/// so that pipelined small requests arrive together.
const READ_CHUNK: usize = MAX_PACKET + 64 * 1024;

/// Reads whole packets from a byte stream.
pub struct PacketReader<R> {
    input: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
}

impl<R: Read> PacketReader<R> {
    pub fn new(input: R) -> PacketReader<R> {
        PacketReader {
            input,
            buf: vec![0; READ_CHUNK + 4],
            start: 0,
            end: 0,
        }
    }

    /// The length of the next packet if its length field has arrived.
    fn next_length(&self) -> Option<usize> {
        let unread = &self.buf[self.start..self.end];
        (unread.len() >= 4)
            .then(|| u32::from_be_bytes([unread[0], unread[1], unread[2], unread[3]]) as usize)
    }

    /// Whether a whole packet is already buffered: replies may wait for
    /// it instead of being written now.
    pub fn has_buffered_packet(&self) -> bool {
        self.next_length()
            .is_some_and(|n| n <= MAX_PACKET && self.end - self.start >= 4 + n)
    }

    /// The next packet's bytes (after its length field), or `None` at a
    /// clean end of stream between packets.
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, WireError> {
        loop {
            if let Some(length) = self.next_length() {
                if length > MAX_PACKET {
                    return Err(WireError::PacketTooLong { length });
                }
                if length == 0 {
                    return Err(WireError::EmptyPacket);
                }
                if self.end - self.start >= 4 + length {
                    let from = self.start + 4;
                    self.start = from + length;
                    return Ok(Some(&self.buf[from..from + length]));
                }
            }
            if !self.fill()? {
                let got = self.end - self.start;
                if got == 0 {
                    return Ok(None);
                }
                let expected = self.next_length().map_or(4, |n| n + 4);
                return Err(WireError::TruncatedPacket { expected, got });
            }
        }
    }

    /// Reads more bytes; false at end of stream. A read error is the
    /// stream's end too: the client is gone either way.
    fn fill(&mut self) -> Result<bool, WireError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < READ_CHUNK / 4 {
            // Move the partial packet to the front (at most one packet).
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Ok(false),
            }
        }
    }
}

/// One entry of a NAME reply.
pub struct NameEntry<'a> {
    pub filename: &'a [u8],
    pub longname: &'a [u8],
    pub attrs: Attrs,
}

/// Replies waiting to be written, in the order they were made.
pub struct Replies {
    buf: Vec<u8>,
    /// Below 3, STATUS carries no message and language tag (as OpenSSH).
    client_version: u32,
}

impl Default for Replies {
    fn default() -> Self {
        Replies {
            buf: Vec::with_capacity(64 * 1024),
            client_version: VERSION,
        }
    }
}

impl Replies {
    pub fn set_client_version(&mut self, version: u32) {
        self.client_version = version;
    }

    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Starts a packet of `packet_type`; returns where its length goes.
    fn begin(&mut self, packet_type: u8) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, 0, 0, packet_type]);
        at
    }

    fn finish(&mut self, at: usize) {
        let length = (self.buf.len() - at - 4) as u32;
        self.buf[at..at + 4].copy_from_slice(&length.to_be_bytes());
    }

    fn encoder(&mut self) -> Encoder<'_> {
        Encoder { out: &mut self.buf }
    }

    pub fn version(&mut self, extensions: &[(&str, &str)]) {
        let at = self.begin(packet::VERSION);
        self.encoder().u32(VERSION);
        for (name, data) in extensions {
            self.encoder()
                .string(name.as_bytes())
                .string(data.as_bytes());
        }
        self.finish(at);
    }

    pub fn status(&mut self, id: u32, code: StatusCode, message: &str) {
        let at = self.begin(packet::STATUS);
        self.encoder().u32(id).u32(code as u32);
        if self.client_version >= 3 {
            self.encoder().string(message.as_bytes()).string(b"");
        }
        self.finish(at);
    }

    pub fn handle(&mut self, id: u32, handle: &[u8]) {
        let at = self.begin(packet::HANDLE);
        self.encoder().u32(id).string(handle);
        self.finish(at);
    }

    pub fn data(&mut self, id: u32, data: &[u8]) {
        let at = self.begin(packet::DATA);
        self.encoder().u32(id).string(data);
        self.finish(at);
    }

    /// A DATA reply whose data the caller reads straight into the reply
    /// buffer (no copy): `fill` gets room for `len` bytes and returns how
    /// many it wrote. Nothing is left in the buffer when `fill` fails, or
    /// when it wrote nothing into room for more (the caller then answers
    /// with a STATUS instead, e.g. EOF).
    pub fn data_with<E>(
        &mut self,
        id: u32,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> Result<usize, E>,
    ) -> Result<usize, E> {
        let at = self.begin(packet::DATA);
        self.encoder().u32(id).u32(0);
        let data_at = self.buf.len();
        self.buf.resize(data_at + len, 0);
        match fill(&mut self.buf[data_at..]) {
            Ok(0) if len > 0 => {
                self.buf.truncate(at);
                Ok(0)
            }
            Ok(n) => {
                let n = n.min(len);
                self.buf.truncate(data_at + n);
                self.buf[data_at - 4..data_at].copy_from_slice(&(n as u32).to_be_bytes());
                self.finish(at);
                Ok(n)
            }
            Err(e) => {
                self.buf.truncate(at);
                Err(e)
            }
        }
    }

    /// The header of a DATA reply whose `len` data bytes the caller sends
    /// itself, right after these bytes leave (sendfile).
    pub fn data_header(&mut self, id: u32, len: u32) {
        let length = 1 + 4 + 4 + len;
        self.buf.extend_from_slice(&length.to_be_bytes());
        self.buf.push(packet::DATA);
        self.encoder().u32(id).u32(len);
    }

    pub fn attrs(&mut self, id: u32, attrs: &Attrs) {
        let at = self.begin(packet::ATTRS);
        self.encoder().u32(id).attrs(attrs);
        self.finish(at);
    }

    pub fn names(&mut self, id: u32, entries: &[NameEntry<'_>]) {
        let at = self.begin(packet::NAME);
        self.encoder().u32(id).u32(entries.len() as u32);
        for entry in entries {
            self.encoder()
                .string(entry.filename)
                .string(entry.longname)
                .attrs(&entry.attrs);
        }
        self.finish(at);
    }

    /// An EXTENDED_REPLY whose body the caller writes with the encoder.
    pub fn extended_reply(&mut self, id: u32, body: impl FnOnce(&mut Encoder<'_>)) {
        let at = self.begin(packet::EXTENDED_REPLY);
        let mut encoder = self.encoder();
        encoder.u32(id);
        body(&mut encoder);
        self.finish(at);
    }
}
