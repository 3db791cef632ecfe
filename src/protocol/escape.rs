//! Escaping of peer-supplied bytes before they reach a message, a log line or
//! a terminal (PROTOCOL.md §h.8, CVE-2019-6109/6110).

use std::fmt::Write as _;

/// Renders `bytes` so that it cannot carry terminal control sequences:
/// control bytes (C0, DEL, C1) and bytes that are not valid UTF-8 become
/// `\xNN`, a backslash becomes `\\`, everything else is kept as UTF-8.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char_escaped(&mut out, c);
        }
        for b in chunk.invalid() {
            push_hex(&mut out, *b);
        }
    }
    out
}

fn push_char_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        c if c.is_control() => {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                push_hex(out, b);
            }
        }
        c => out.push(c),
    }
}

fn push_hex(out: &mut String, b: u8) {
    let _ = write!(out, "\\x{b:02x}");
}

#[cfg(test)]
mod tests {
    use super::escape_bytes;

    #[test]
    fn plain_names_are_unchanged() {
        assert_eq!(escape_bytes(b"a b-c*.txt"), "a b-c*.txt");
        assert_eq!(escape_bytes("grüße".as_bytes()), "grüße");
    }

    #[test]
    fn control_bytes_and_backslash_are_escaped() {
        assert_eq!(escape_bytes(b"\x1b[31mred\r\n"), "\\x1b[31mred\\x0d\\x0a");
        assert_eq!(escape_bytes(b"a\\b\x7f\0"), "a\\\\b\\x7f\\x00");
    }

    #[test]
    fn c1_controls_and_invalid_utf8_are_escaped() {
        assert_eq!(escape_bytes("\u{9b}2J".as_bytes()), "\\xc2\\x9b2J");
        assert_eq!(escape_bytes(b"\xff\xfeok"), "\\xff\\xfeok");
    }
}
