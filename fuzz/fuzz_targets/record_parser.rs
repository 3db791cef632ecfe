//! The record parser and the line/status reader over arbitrary bytes: no
//! panic, every accepted record survives encode → parse, and the reader
//! never hands out a line longer than its limit or one holding an LF.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use scp_server::protocol::{
    Line, Record, RecordReader, Status, encode_dir, encode_file, encode_times, parse_record,
};

fuzz_target!(|data: &[u8]| {
    check_parse(data, true);
    check_parse(data, false);
    if let Some((&control, stream)) = data.split_first() {
        check_reader(control, stream);
    }
});

/// Parses `line` as a record; an accepted one must parse the same after
/// being encoded again (for the kinds a source can encode).
fn check_parse(line: &[u8], first: bool) {
    let Ok(record) = parse_record(line, first) else {
        return;
    };
    let Some(encoded) = encode(&record) else {
        return;
    };
    let wire = encoded
        .strip_suffix(b"\n")
        .expect("encoded records end in LF");
    let again = parse_record(wire, first).expect("an encoded record parses");
    assert_eq!(again, expected_after_round_trip(record));
}

/// The line a source would send for `record`, if it is a kind it sends.
fn encode(record: &Record) -> Option<Vec<u8>> {
    match record {
        Record::File { mode, size, name } => Some(encode_file(*mode, *size, name)),
        Record::Dir { mode, name } => Some(encode_dir(*mode, name)),
        Record::Times(t) => Some(encode_times(t.mtime_sec, t.atime_sec)),
        _ => None,
    }
}

/// What encoding loses on purpose: the sticky bit (OpenSSH masks modes
/// with 06777) and the microseconds (a source sends 0).
fn expected_after_round_trip(record: Record) -> Record {
    match record {
        Record::File { mode, size, name } => Record::File {
            mode: mode & 0o6777,
            size,
            name,
        },
        Record::Dir { mode, name } => Record::Dir {
            mode: mode & 0o6777,
            name,
        },
        Record::Times(mut t) => {
            t.mtime_usec = 0;
            t.atime_usec = 0;
            Record::Times(t)
        }
        other => other,
    }
}

/// Reads `stream` with lines and statuses interleaved as `control`'s bits
/// say, through reads of irregular sizes, until the end or an error.
fn check_reader(control: u8, stream: &[u8]) {
    let max_line = 2 + usize::from(control & 0x3f);
    let chunks = Chunked {
        data: stream,
        step: 1 + usize::from(control >> 6) * 7,
    };
    let mut reader = RecordReader::new(chunks, max_line);
    for turn in 0.. {
        let go_on = if (control >> (turn % 8)) & 1 == 0 {
            check_line(&mut reader, max_line)
        } else {
            check_status(&mut reader, max_line)
        };
        if !go_on {
            break;
        }
    }
}

fn check_line(reader: &mut RecordReader<Chunked<'_>>, max_line: usize) -> bool {
    match reader.read_line() {
        Ok(Line::Record(line)) => {
            assert!(!line.is_empty() && !line.contains(&b'\n'));
            assert!(line.len() < max_line);
            true
        }
        Ok(Line::Eof) | Err(_) => false,
    }
}

fn check_status(reader: &mut RecordReader<Chunked<'_>>, max_line: usize) -> bool {
    match reader.read_status() {
        Ok(Status::Ok) => true,
        // A bare LF is garbage whose text is that LF (OpenSSH prints it).
        Ok(Status::Garbage(t)) if t == b"\n" => true,
        Ok(Status::Warning(t) | Status::Fatal(t) | Status::Garbage(t)) => {
            assert!(!t.contains(&b'\n'));
            assert!(t.len() < max_line);
            true
        }
        Ok(Status::Eof) | Err(_) => false,
    }
}

/// A stream that returns at most `step` bytes per read, so that lines
/// straddle buffer refills.
struct Chunked<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}
