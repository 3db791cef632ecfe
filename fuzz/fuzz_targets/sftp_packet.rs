//! The SFTP wire code over arbitrary input: `PacketReader` framing a byte
//! stream that arrives in irregular reads, with and without streamed
//! WRITEs, and `parse_packet` on every packet.
//!
//! Checked after every input:
//! - the reader's packets are those an independent framer (length field,
//!   then that many bytes) finds, and it ends the same way (clean end,
//!   packet too long, empty packet, truncated);
//! - with streamed WRITEs, each WRITE header followed by its data taken
//!   from the buffer and the stream is byte for byte the packet the plain
//!   reader returned;
//! - a decoded request's ATTRS encode and decode back to themselves, and a
//!   WRITE's header agrees with `parse_write_header`.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use scp_server::protocol::sftp::codes::MAX_PACKET;
use scp_server::protocol::sftp::{
    Attrs, Decoder, Encoder, Frame, PacketReader, Request, WireError, parse_packet,
    parse_write_header,
};

fuzz_target!(|data: &[u8]| {
    let Some((&config, stream)) = data.split_first() else {
        return;
    };
    let expected = frame_independently(stream);
    let plain = frames_of(config, stream, false);
    assert_eq!(
        plain, expected,
        "framing disagrees with the independent framer"
    );
    let streamed = frames_of(config.rotate_left(3), stream, true);
    assert_eq!(streamed, expected, "streamed WRITEs change what arrives");
    let (Ending::Packets(packets) | Ending::Error(packets, _)) = &expected;
    for packet in packets {
        check_decoding(packet);
    }
});

/// What a stream turned out to be: its packets, and how it ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// Whole packets, then a clean end between packets.
    Packets(Vec<Vec<u8>>),
    /// Whole packets, then a framing error.
    Error(Vec<Vec<u8>>, WireError),
}

/// Length field, then that many bytes: the framing the reader must agree
/// with, written without its buffering or streaming.
fn frame_independently(mut rest: &[u8]) -> Ending {
    let mut packets = Vec::new();
    loop {
        if rest.is_empty() {
            return Ending::Packets(packets);
        }
        if rest.len() < 4 {
            let got = rest.len();
            let error = WireError::TruncatedPacket { expected: 4, got };
            return Ending::Error(packets, error);
        }
        let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if length > MAX_PACKET {
            return Ending::Error(packets, WireError::PacketTooLong { length });
        }
        if length == 0 {
            return Ending::Error(packets, WireError::EmptyPacket);
        }
        if rest.len() < 4 + length {
            let error = WireError::TruncatedPacket {
                expected: 4 + length,
                got: rest.len(),
            };
            return Ending::Error(packets, error);
        }
        packets.push(rest[4..4 + length].to_vec());
        rest = &rest[4 + length..];
    }
}

/// The reader's frames over `stream` cut into reads of sizes derived from
/// `seed`; with `stream_writes`, WRITE headers are joined with their data
/// (taken as the server takes them: the buffer first, then the stream).
fn frames_of(seed: u8, stream: &[u8], stream_writes: bool) -> Ending {
    let mut reader = PacketReader::new(Irregular::new(stream, seed));
    let mut packets = Vec::new();
    loop {
        match reader.next_frame(stream_writes) {
            Ok(Some(Frame::Packet(packet))) => packets.push(packet.to_vec()),
            Ok(Some(Frame::WriteHeader(header))) => {
                assert!(stream_writes, "a WRITE header came unasked");
                match join_streamed_write(&mut reader, header) {
                    Ok(packet) => packets.push(packet),
                    // The stream ended inside the data: as a whole packet,
                    // that is a truncated packet.
                    Err(got) => {
                        let (expected, got) = got;
                        let error = WireError::TruncatedPacket { expected, got };
                        return Ending::Error(packets, error);
                    }
                }
            }
            Ok(None) => return Ending::Packets(packets),
            Err(e) => return Ending::Error(packets, e),
        }
    }
}

/// A streamed WRITE's header and data as one packet, or, when the stream
/// ends first, (bytes the packet needed with its length field, bytes
/// there were).
fn join_streamed_write<R: Read>(
    reader: &mut PacketReader<R>,
    header: Vec<u8>,
) -> Result<Vec<u8>, (usize, usize)> {
    let (_, _, _, len) = parse_write_header(&header).expect("a streamed WRITE header parses");
    let len = len as usize;
    let mut packet = header;
    let from_buffer = reader.buffered().len().min(len);
    packet.extend_from_slice(&reader.buffered()[..from_buffer]);
    reader.consume(from_buffer);
    let total = packet.len() + (len - from_buffer);
    while packet.len() < total {
        let mut chunk = vec![0; total - packet.len()];
        match reader.inner_mut().read(&mut chunk) {
            Ok(0) | Err(_) => return Err((4 + total, 4 + packet.len())),
            Ok(n) => packet.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(packet)
}

/// Decoding properties that hold for any packet that decodes.
fn check_decoding(packet: &[u8]) {
    let Ok(decoded) = parse_packet(packet) else {
        return;
    };
    match decoded.request {
        Request::Open { attrs, .. }
        | Request::Setstat { attrs, .. }
        | Request::Fsetstat { attrs, .. }
        | Request::Mkdir { attrs, .. } => check_attrs_round_trip(&attrs),
        Request::Write {
            handle,
            offset,
            data,
        } => {
            let (id, header_handle, header_offset, len) =
                parse_write_header(packet).expect("a WRITE that decodes has a header");
            assert_eq!(id, decoded.id);
            assert_eq!(header_handle, handle);
            assert_eq!(header_offset, offset);
            assert_eq!(len as usize, data.len());
        }
        _ => {}
    }
}

fn check_attrs_round_trip(attrs: &Attrs) {
    let mut bytes = Vec::new();
    Encoder { out: &mut bytes }.attrs(attrs);
    let mut decoder = Decoder::new(&bytes);
    assert_eq!(decoder.attrs().as_ref(), Ok(attrs), "ATTRS round trip");
    assert_eq!(decoder.remaining(), 0, "ATTRS encoding has trailing bytes");
}

/// A stream whose reads return fewer bytes than asked, in a pattern: what
/// a pipe from sshd does.
struct Irregular<'a> {
    rest: &'a [u8],
    seed: u8,
    reads: usize,
}

impl<'a> Irregular<'a> {
    fn new(bytes: &'a [u8], seed: u8) -> Irregular<'a> {
        Irregular {
            rest: bytes,
            seed,
            reads: 0,
        }
    }
}

impl Read for Irregular<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        const SIZES: [usize; 8] = [1, 3, 4, 7, 13, 64, 4096, usize::MAX];
        self.reads += 1;
        let pick = (usize::from(self.seed) + self.reads * 5) % SIZES.len();
        let n = SIZES[pick].min(buf.len()).min(self.rest.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        Ok(n)
    }
}
