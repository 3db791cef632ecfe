//! Control records (`C`, `D`, `E`, `T`, and the `\x01`/`\x02` lines a source
//! may send in place of a record): parsing with OpenSSH 9.2's grammar and
//! messages (PROTOCOL.md §a.2), made strict where §h.7/§h.9 say so.

use std::fmt;

use crate::protocol::escape_bytes;

/// One control record as received by a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `C MMMM SIZE NAME`: a regular file follows.
    File { mode: u32, size: u64, name: Vec<u8> },
    /// `D MMMM SIZE NAME`: a directory starts (SIZE is ignored).
    Dir { mode: u32, name: Vec<u8> },
    /// `E`: the current directory ends.
    End,
    /// `T MSEC MUSEC ASEC AUSEC`: times for the next `C` or `D`.
    Times(Times),
    /// `\x01 text`: the source reports a per-file problem.
    Warning(Vec<u8>),
    /// `\x02 text`: the source gives up.
    Fatal(Vec<u8>),
}

/// Modification and access times of a `T` record (mtime first on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub mtime_sec: i64,
    pub mtime_usec: u32,
    pub atime_sec: i64,
    pub atime_usec: u32,
}

/// A record that cannot be accepted. Every variant ends the session, as in
/// OpenSSH; `Display` is the text after `scp: ` that the client prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    UnexpectedNewline,
    LostConnection,
    LineTooLong {
        max: usize,
    },
    BadMode,
    ModeNotDelimited,
    SizeNotPresent,
    SizeNotDelimited,
    SizeOutOfRange,
    TimeField {
        field: TimeField,
        problem: TimeProblem,
    },
    /// An unknown record where a control record was expected.
    ExpectedControlRecord,
    /// An unknown first record: echoed back, since it is usually shell noise
    /// such as `No match.` printed before scp started.
    UnknownFirstRecord(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeField {
    MtimeSec,
    MtimeUsec,
    AtimeSec,
    AtimeUsec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeProblem {
    NotPresent,
    NotDelimited,
    OutOfRange,
}

impl fmt::Display for TimeField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeField::MtimeSec => "mtime.sec",
            TimeField::MtimeUsec => "mtime.usec",
            TimeField::AtimeSec => "atime.sec",
            TimeField::AtimeUsec => "atime.usec",
        })
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::UnexpectedNewline => f.write_str("protocol error: unexpected <newline>"),
            ProtocolError::LostConnection => f.write_str("protocol error: lost connection"),
            ProtocolError::LineTooLong { max } => {
                write!(f, "protocol error: record line longer than {max} bytes")
            }
            ProtocolError::BadMode => f.write_str("protocol error: bad mode"),
            ProtocolError::ModeNotDelimited => f.write_str("protocol error: mode not delimited"),
            ProtocolError::SizeNotPresent => f.write_str("protocol error: size not present"),
            ProtocolError::SizeNotDelimited => f.write_str("protocol error: size not delimited"),
            ProtocolError::SizeOutOfRange => f.write_str("protocol error: size out of range"),
            ProtocolError::TimeField { field, problem } => {
                let problem = match problem {
                    TimeProblem::NotPresent => "not present",
                    TimeProblem::NotDelimited => "not delimited",
                    TimeProblem::OutOfRange => "out of range",
                };
                write!(f, "protocol error: {field} {problem}")
            }
            ProtocolError::ExpectedControlRecord => {
                f.write_str("protocol error: expected control record")
            }
            ProtocolError::UnknownFirstRecord(line) => f.write_str(&escape_bytes(line)),
        }
    }
}

/// Parses one record line (without its LF). `first` says whether this is the
/// first record of a directory level, where OpenSSH echoes unknown lines.
pub fn parse_record(line: &[u8], first: bool) -> Result<Record, ProtocolError> {
    let Some((&kind, rest)) = line.split_first() else {
        return Err(ProtocolError::UnexpectedNewline);
    };
    match kind {
        b'C' => {
            let (mode, size, name) = parse_mode_size_name(rest)?;
            Ok(Record::File { mode, size, name })
        }
        b'D' => {
            let (mode, _size, name) = parse_mode_size_name(rest)?;
            Ok(Record::Dir { mode, name })
        }
        // OpenSSH looks only at the first byte of an E line.
        b'E' => Ok(Record::End),
        b'T' => parse_times(rest).map(Record::Times),
        0x01 => Ok(Record::Warning(rest.to_vec())),
        0x02 => Ok(Record::Fatal(rest.to_vec())),
        _ if first => Err(ProtocolError::UnknownFirstRecord(line.to_vec())),
        _ => Err(ProtocolError::ExpectedControlRecord),
    }
}

/// `MMMM SIZE NAME`: exactly four octal digits, a space, a decimal size that
/// starts with a digit and fits in an `off_t`, a space, then the name (every
/// remaining byte; the sink checks it).
fn parse_mode_size_name(rest: &[u8]) -> Result<(u32, u64, Vec<u8>), ProtocolError> {
    let digits = rest.get(..4).ok_or(ProtocolError::BadMode)?;
    let mut mode = 0u32;
    for &d in digits {
        if !(b'0'..=b'7').contains(&d) {
            return Err(ProtocolError::BadMode);
        }
        mode = mode * 8 + u32::from(d - b'0');
    }
    let rest = rest[4..]
        .strip_prefix(b" ")
        .ok_or(ProtocolError::ModeNotDelimited)?;
    let (size, rest) = parse_decimal(rest).ok_or(ProtocolError::SizeNotPresent)?;
    let name = rest
        .strip_prefix(b" ")
        .ok_or(ProtocolError::SizeNotDelimited)?;
    match size {
        Some(size) if size <= i64::MAX as u64 => Ok((mode, size, name.to_vec())),
        _ => Err(ProtocolError::SizeOutOfRange),
    }
}

/// Leading decimal digits of `s`: `None` when there is no digit at all;
/// otherwise the value (`None` inside on overflow) and the rest.
fn parse_decimal(s: &[u8]) -> Option<(Option<u64>, &[u8])> {
    let len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 {
        return None;
    }
    let value = s[..len].iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    });
    Some((value, &s[len..]))
}

/// `T` fields, strictly: seconds and microseconds are plain decimal digits
/// (OpenSSH also accepts blanks and a sign in the usec fields, §h.9), seconds
/// fit in a `time_t`, microseconds are at most 999999.
fn parse_times(rest: &[u8]) -> Result<Times, ProtocolError> {
    let (mtime_sec, rest) = parse_seconds(rest, TimeField::MtimeSec)?;
    let rest = expect_space(rest, TimeField::MtimeSec)?;
    let (mtime_usec, rest) = parse_usec(rest, TimeField::MtimeUsec)?;
    let rest = expect_space(rest, TimeField::MtimeUsec)?;
    let (atime_sec, rest) = parse_seconds(rest, TimeField::AtimeSec)?;
    let rest = expect_space(rest, TimeField::AtimeSec)?;
    let (atime_usec, rest) = parse_usec(rest, TimeField::AtimeUsec)?;
    if !rest.is_empty() {
        return Err(time_error(TimeField::AtimeUsec, TimeProblem::NotDelimited));
    }
    Ok(Times {
        mtime_sec,
        mtime_usec,
        atime_sec,
        atime_usec,
    })
}

fn time_error(field: TimeField, problem: TimeProblem) -> ProtocolError {
    ProtocolError::TimeField { field, problem }
}

fn expect_space(rest: &[u8], after: TimeField) -> Result<&[u8], ProtocolError> {
    rest.strip_prefix(b" ")
        .ok_or(time_error(after, TimeProblem::NotDelimited))
}

fn parse_seconds(s: &[u8], field: TimeField) -> Result<(i64, &[u8]), ProtocolError> {
    let (value, rest) = parse_decimal(s).ok_or(time_error(field, TimeProblem::NotPresent))?;
    let value = value
        .and_then(|v| i64::try_from(v).ok())
        .ok_or(time_error(field, TimeProblem::OutOfRange))?;
    Ok((value, rest))
}

fn parse_usec(s: &[u8], field: TimeField) -> Result<(u32, &[u8]), ProtocolError> {
    // OpenSSH reports every usec problem as "not delimited"; so do we.
    let bad = time_error(field, TimeProblem::NotDelimited);
    let (value, rest) = parse_decimal(s).ok_or(bad.clone())?;
    match value {
        Some(v) if v <= 999_999 => Ok((v as u32, rest)),
        _ => Err(bad),
    }
}

/// `C%04o %llu %name\n`.
pub fn encode_file(mode: u32, size: u64, name: &[u8]) -> Vec<u8> {
    let mut line = Vec::new();
    write_file_record(&mut line, mode, size, name);
    line
}

/// `D%04o 0 %name\n`.
pub fn encode_dir(mode: u32, name: &[u8]) -> Vec<u8> {
    let mut line = Vec::new();
    write_dir_record(&mut line, mode, name);
    line
}

/// `T<mtime> 0 <atime> 0\n`; negative times are sent as 0, as OpenSSH does.
pub fn encode_times(mtime_sec: i64, atime_sec: i64) -> Vec<u8> {
    let mut line = Vec::new();
    write_times_record(&mut line, mtime_sec, atime_sec);
    line
}

/// `encode_file`, appended to `line` (a buffer reused from file to file).
pub fn write_file_record(line: &mut Vec<u8>, mode: u32, size: u64, name: &[u8]) {
    write_mode_size_name(line, b'C', mode, size, name);
}

/// `encode_dir`, appended to `line`.
pub fn write_dir_record(line: &mut Vec<u8>, mode: u32, name: &[u8]) {
    write_mode_size_name(line, b'D', mode, 0, name);
}

/// `encode_times`, appended to `line`.
pub fn write_times_record(line: &mut Vec<u8>, mtime_sec: i64, atime_sec: i64) {
    line.reserve(2 * 20 + 8);
    line.push(b'T');
    push_decimal(line, mtime_sec.max(0).unsigned_abs());
    push_bytes(line, b" 0 ");
    push_decimal(line, atime_sec.max(0).unsigned_abs());
    push_bytes(line, b" 0\n");
}

// These lines go out once per file, so they are built byte by byte into a
// reused buffer: format!, a fresh allocation per line and a libc memcpy per
// fragment were together a visible share of a small file's cost.
fn write_mode_size_name(line: &mut Vec<u8>, kind: u8, mode: u32, size: u64, name: &[u8]) {
    line.reserve(1 + 4 + 1 + 20 + 1 + name.len() + 1);
    line.push(kind);
    push_mode(line, mode & 0o6777);
    line.push(b' ');
    push_decimal(line, size);
    line.push(b' ');
    line.extend_from_slice(name);
    line.push(b'\n');
}

/// A few bytes, one at a time: cheaper than a call to memcpy at this size.
fn push_bytes(line: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        line.push(b);
    }
}

/// At least four octal digits, as `%04o`.
fn push_mode(line: &mut Vec<u8>, mode: u32) {
    let mut digits = [b'0'; 11];
    let mut at = digits.len();
    let mut rest = mode;
    while rest > 0 || digits.len() - at < 4 {
        at -= 1;
        // The remainder is below 8.
        digits[at] = b'0' + (rest % 8) as u8;
        rest /= 8;
    }
    push_bytes(line, &digits[at..]);
}

/// `n` in decimal, as `%llu`.
fn push_decimal(line: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        // The remainder is below 10.
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    push_bytes(line, &digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &[u8]) -> String {
        parse_record(line, false).unwrap_err().to_string()
    }

    #[test]
    fn encoded_records_match_printf() {
        for (mode, size) in [
            (0o644, 0),
            (0o7, 5),
            (0o4755, 4096),
            (0o6777, u64::MAX),
            (0o100644, 123_456_789),
        ] {
            let expected = format!("C{:04o} {size} n a\n", mode & 0o6777);
            assert_eq!(encode_file(mode, size, b"n a"), expected.as_bytes());
        }
        assert_eq!(encode_dir(0o40755, b"d"), b"D0755 0 d\n");
        for (m, a) in [(0, 0), (1_700_000_000, 9), (-5, i64::MAX), (i64::MIN, 10)] {
            let expected = format!("T{} 0 {} 0\n", m.max(0), a.max(0));
            assert_eq!(encode_times(m, a), expected.as_bytes());
        }
    }

    #[test]
    fn file_record_keeps_every_name_byte() {
        let rec = parse_record(b"C0644 010 -x y*\r", false).unwrap();
        assert_eq!(
            rec,
            Record::File {
                mode: 0o644,
                size: 10,
                name: b"-x y*\r".to_vec()
            }
        );
    }

    #[test]
    fn mode_and_size_errors_use_openssh_messages() {
        assert_eq!(err(b"C9999 1 x"), "protocol error: bad mode");
        assert_eq!(err(b"C644 1 x"), "protocol error: bad mode");
        assert_eq!(err(b"C00644 1 x"), "protocol error: mode not delimited");
        assert_eq!(err(b"C0644 -1 x"), "protocol error: size not present");
        assert_eq!(err(b"C0644 +1 x"), "protocol error: size not present");
        assert_eq!(err(b"C0644 1x x"), "protocol error: size not delimited");
        assert_eq!(
            err(b"C0644 9223372036854775808 x"),
            "protocol error: size out of range"
        );
        assert_eq!(
            err(b"C0644 18446744073709551616 x"),
            "protocol error: size out of range"
        );
    }

    #[test]
    fn largest_size_is_accepted() {
        let rec = parse_record(b"C0644 9223372036854775807 big", false).unwrap();
        assert!(matches!(rec, Record::File { size, .. } if size == i64::MAX as u64));
    }

    #[test]
    fn times_are_strict() {
        let rec = parse_record(b"T1234567890 0 1234567000 999999", false).unwrap();
        assert_eq!(
            rec,
            Record::Times(Times {
                mtime_sec: 1234567890,
                mtime_usec: 0,
                atime_sec: 1234567000,
                atime_usec: 999_999
            })
        );
        assert_eq!(
            err(b"T1 1000000 2 0"),
            "protocol error: mtime.usec not delimited"
        );
        assert_eq!(err(b"T-1 0 2 0"), "protocol error: mtime.sec not present");
        assert_eq!(
            err(b"T1 0 2 0 x"),
            "protocol error: atime.usec not delimited"
        );
        assert_eq!(err(b"T1 0 2"), "protocol error: atime.sec not delimited");
        assert_eq!(
            err(b"T1 0 2  +5"),
            "protocol error: atime.usec not delimited"
        );
        assert_eq!(
            err(b"T9223372036854775808 0 1000 0"),
            "protocol error: mtime.sec out of range"
        );
    }

    #[test]
    fn unknown_records_depend_on_position() {
        assert_eq!(
            parse_record(b"No match.", true).unwrap_err().to_string(),
            "No match."
        );
        assert_eq!(err(b"Xhello"), "protocol error: expected control record");
        assert_eq!(parse_record(b"Ejunk", false).unwrap(), Record::End);
    }

    #[test]
    fn encoding_matches_openssh_formats() {
        assert_eq!(encode_file(0o100644, 5, b"a b"), b"C0644 5 a b\n");
        assert_eq!(encode_file(0o7755, 1, b"s"), b"C6755 1 s\n");
        assert_eq!(encode_dir(0o750, b"dir"), b"D0750 0 dir\n");
        assert_eq!(encode_times(-100, 7), b"T0 0 7 0\n");
    }

    #[test]
    fn encoded_records_parse_back() {
        for (mode, size, name) in [(0o644, 0u64, &b"x"[..]), (0o6755, 1 << 40, b"n a m e")] {
            let line = encode_file(mode, size, name);
            let parsed = parse_record(&line[..line.len() - 1], false).unwrap();
            assert_eq!(
                parsed,
                Record::File {
                    mode,
                    size,
                    name: name.to_vec()
                }
            );
        }
    }
}
