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
    /// The last packet was a large WRITE (a client uploading): the next
    /// read between packets asks for little, so that the next WRITE's data
    /// stay in the stream to be spliced rather than copied in here.
    expect_write: bool,
}

impl<R: Read> PacketReader<R> {
    pub fn new(input: R) -> PacketReader<R> {
        PacketReader {
            input,
            buf: vec![0; READ_CHUNK + 4],
            start: 0,
            end: 0,
            expect_write: false,
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

    /// Bytes read but not yet taken (a streamed WRITE's data come first
    /// from here).
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// The stream itself, for a streamed WRITE's data past the buffer.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.input
    }

    /// The next packet, or — with `stream_writes` — the header of a large
    /// WRITE whose data have mostly not arrived yet: its data then stay in
    /// the stream for the caller to move straight into the file (they must
    /// all be taken, through `buffered`/`consume` and the stream, before
    /// the next call). `None` at a clean end of stream between packets.
    pub fn next_frame(&mut self, stream_writes: bool) -> Result<Option<Frame<'_>>, WireError> {
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
                    let packet = &self.buf[from..from + length];
                    self.expect_write =
                        stream_writes && packet[0] == packet::WRITE && length >= STREAM_WRITE_MIN;
                    return Ok(Some(Frame::Packet(packet)));
                }
                if stream_writes && let Some(header_len) = self.streamable_write(length) {
                    let from = self.start + 4;
                    let header = self.buf[from..from + header_len].to_vec();
                    self.start = from + header_len;
                    self.expect_write = true;
                    return Ok(Some(Frame::WriteHeader(header)));
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

    /// The header length of the buffered start of a WRITE of `length`
    /// bytes, when its data are consistent with the length and most of them
    /// are still to come (at least `STREAM_WRITE_MIN`).
    fn streamable_write(&self, length: usize) -> Option<usize> {
        let packet = &self.buf[self.start + 4..self.end];
        let header_len = write_header_len(packet)?;
        let data_len =
            u32::from_be_bytes(packet[header_len - 4..header_len].try_into().ok()?) as usize;
        let still_to_come = length.checked_sub(packet.len())?;
        (header_len + data_len == length && still_to_come >= STREAM_WRITE_MIN).then_some(header_len)
    }

    /// The next packet's bytes (after its length field), or `None` at a
    /// clean end of stream between packets.
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, WireError> {
        match self.next_frame(false)? {
            Some(Frame::Packet(packet)) => Ok(Some(packet)),
            // Not asked for: every packet arrives whole.
            Some(Frame::WriteHeader(_)) => unreachable!("WRITE headers come only when asked for"),
            None => Ok(None),
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
        // Between packets of an upload, a small read: the next WRITE's
        // header, and its data left in the stream.
        let limit = if self.expect_write && self.start == self.end {
            self.end + HEADER_READ
        } else {
            self.buf.len()
        };
        loop {
            match self.input.read(&mut self.buf[self.end..limit]) {
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

/// What `PacketReader::next_frame` found.
pub enum Frame<'a> {
    /// A whole packet (after its length field).
    Packet(&'a [u8]),
    /// A WRITE's fields before its data (type, id, handle, offset, data
    /// length); the data follow in the stream.
    WriteHeader(Vec<u8>),
}

/// What a read between an upload's packets asks for: a WRITE's header
/// and a little of its data (or several small requests).
const HEADER_READ: usize = 4096;

/// Large WRITEs are streamed from this many bytes still to come: below it,
/// waiting for the whole packet costs less than a second system call.
const STREAM_WRITE_MIN: usize = 64 * 1024;

/// The length of a WRITE's fields before its data, if all of them are in
/// `packet` (type, id, handle of at most 256 bytes, offset, data length).
fn write_header_len(packet: &[u8]) -> Option<usize> {
    if *packet.first()? != packet::WRITE || packet.len() < 9 {
        return None;
    }
    let handle_len = u32::from_be_bytes(packet[5..9].try_into().ok()?) as usize;
    if handle_len > 256 {
        return None;
    }
    let header_len = 9 + handle_len + 8 + 4;
    (packet.len() >= header_len).then_some(header_len)
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
