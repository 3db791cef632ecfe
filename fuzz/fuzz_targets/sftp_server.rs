//! The SFTP server loop over arbitrary requests, confined to a fresh root
//! (shared/tree.rs: symlinks out of it, a sibling directory and a file
//! beside it). After every input: no panic, nothing outside the root
//! changed, no temporary upload file left (an upload not closed when the
//! input ends is discarded), and the replies are well framed, one per
//! request, with the request's id.
//!
//! Input: one byte of policy flags, then requests. So that mutations reach
//! the server rather than the framing, each request is a 16-bit length and
//! that many bytes, and the target adds the 32-bit length fields and an
//! INIT in front; with the "raw" flag the bytes go in as they are (framing
//! errors, a missing INIT). Handles are four-byte slot numbers, so inputs
//! can name the handles earlier requests were given.
#![no_main]

use std::io::{Cursor, Read, Write};

use libfuzzer_sys::fuzz_target;
use scp_server::confine::{self, Backend, Root, Scope};
use scp_server::limits::Limits;
use scp_server::protocol::sftp::codes::packet;
use scp_server::sftp::{self, SftpOptions};
use scp_server::transfer::SessionStream;

#[path = "shared/tree.rs"]
mod tree;

/// Flags of the first byte.
const READ_ONLY: u8 = 0x01;
const WRITE_ONLY: u8 = 0x02;
const NO_OVERWRITE: u8 = 0x04;
const ALLOW_LINKS: u8 = 0x08;
const RAW: u8 = 0x10;
const EXPLICIT_UMASK: u8 = 0x20;
const NO_SYMLINKS: u8 = 0x40;
const WALK_RESOLVER: u8 = 0x80;

fuzz_target!(|data: &[u8]| {
    let Some((&config, requests)) = data.split_first() else {
        return;
    };
    let run = tree::fresh_run_dir("sftp_server");
    let backend = if config & WALK_RESOLVER != 0 {
        Backend::Walk
    } else {
        Backend::Openat2
    };
    let root = Root::open(&run.join("root"), backend, config & NO_SYMLINKS != 0)
        .expect("the fresh root opens");
    let input = if config & RAW != 0 {
        requests.to_vec()
    } else {
        framed_session(requests)
    };
    let mut replies = Vec::new();
    let status = sftp::run(
        options(config),
        Scope::Confined(root),
        Input(Cursor::new(input.clone())),
        Output(&mut replies),
    );
    if config & RAW == 0 {
        check_replies(&input, &replies, status == sftp::exit::CLEAN);
    }
    tree::check_nothing_escaped_and_clean(&run);
});

/// INIT, then each 16-bit-length-prefixed chunk of `requests` as one
/// packet (a chunk cut short by the end of the input is what is left).
fn framed_session(mut requests: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(requests.len() + 64);
    push_packet(&mut out, &[packet::INIT, 0, 0, 0, 3]);
    while requests.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([requests[0], requests[1]]));
        let body = &requests[2..];
        let body = &body[..len.min(body.len())];
        if !body.is_empty() {
            push_packet(&mut out, body);
        }
        requests = &requests[2 + body.len()..];
    }
    out
}

fn push_packet(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
}

/// Every reply is a whole packet, and the replies answer, in order, the
/// requests of a known type: VERSION for INIT (also a repeated one, as
/// OpenSSH answers it), one reply with the request's id for every other
/// (an unknown packet type gets none, as from OpenSSH). The server stops at
/// the first malformed request, so the replies may be fewer, never more;
/// after a clean end, as many.
fn check_replies(input: &[u8], replies: &[u8], clean_end: bool) {
    let answered: Vec<&[u8]> = packets(input)
        .into_iter()
        .filter(|request| is_known_type(request[0]))
        .collect();
    let replies = packets(replies);
    assert!(
        replies.len() <= answered.len(),
        "{} replies to {} requests",
        replies.len(),
        answered.len()
    );
    if clean_end {
        assert_eq!(replies.len(), answered.len(), "not one reply per request");
    }
    for (reply, request) in replies.iter().zip(&answered) {
        if request[0] == packet::INIT {
            assert_eq!(reply[0], packet::VERSION, "INIT not answered by VERSION");
            continue;
        }
        assert!(reply.len() >= 5, "reply without an id");
        assert_ne!(reply[0], packet::VERSION, "VERSION to a request");
        if request.len() >= 5 {
            assert_eq!(reply[1..5], request[1..5], "reply to another request id");
        }
    }
}

fn is_known_type(packet_type: u8) -> bool {
    packet_type == packet::INIT
        || (packet::OPEN..=packet::SYMLINK).contains(&packet_type)
        || packet_type == packet::EXTENDED
}

/// The packets of a well-framed stream (the last one may be cut short by
/// the end of the server's output only if it crashed, which fails above).
fn packets(mut stream: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        assert!(stream.len() >= 4, "a length field cut short");
        let len = u32::from_be_bytes([stream[0], stream[1], stream[2], stream[3]]) as usize;
        assert!(len >= 1 && stream.len() >= 4 + len, "a packet cut short");
        out.push(&stream[4..4 + len]);
        stream = &stream[4 + len..];
    }
    out
}

/// Small limits keep each input fast; the flag bits vary the policy.
fn options(config: u8) -> SftpOptions {
    SftpOptions {
        read_only: config & READ_ONLY != 0,
        write_only: config & WRITE_ONLY != 0,
        no_overwrite: config & NO_OVERWRITE != 0,
        no_symlinks: config & NO_SYMLINKS != 0,
        allow_links: config & ALLOW_LINKS != 0,
        restricted: true,
        explicit_umask: (config & EXPLICIT_UMASK != 0).then_some(0o027),
        creation_umask: confine::inherited_umask(),
        mode_mask: 0o777,
        fsync: false,
        limits: Limits {
            max_file_size: Some(4096),
            max_total_bytes: Some(16 * 1024),
            max_files: Some(32),
        },
        max_depth: 6,
        denied: Box::new(|rel| rel.ends_with(b"denied").then(|| "*denied".to_string())),
        deny_requests: Vec::new(),
        allow_requests: None,
        home: b"/".to_vec(),
        refuse_all: None,
        zero_copy: true,
    }
}

/// stdin: the fuzz input. Not the session's real stdin, so nothing is
/// spliced.
struct Input(Cursor<Vec<u8>>);

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl SessionStream for Input {}

/// stdout: the replies, kept for the checks.
struct Output<'a>(&'a mut Vec<u8>);

impl Write for Output<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SessionStream for Output<'_> {}
