//! The restricted-mode command parser over arbitrary bytes: no panic; a
//! string it accepts has no shell syntax outside quotes (checked by an
//! independent quote tracker); and the words it returns, rendered with
//! POSIX single quotes, split back into the same words.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scp_server::command::{Request, Word, parse_request, split_words};

fuzz_target!(|data: &[u8]| {
    let request = parse_request(data);
    let words = split_words(data);
    assert_eq!(request.is_ok(), words.is_ok());
    let Ok(words) = words else {
        return;
    };
    assert!(
        !has_unquoted_shell_syntax(data),
        "accepted shell syntax: {data:?}"
    );
    let rendered = render(&words);
    let again = split_words(&rendered).expect("a quoted rendering is accepted");
    assert_eq!(texts(&again), texts(&words), "rendering: {rendered:?}");
    if let Ok(Request::Scp(args)) = request {
        assert_eq!(texts(&args), texts(&words[1..]));
    }
});

/// What a word means, minus the glob pattern (quoting every byte makes
/// every glob character literal, so the pattern cannot survive).
fn texts(words: &[Word]) -> Vec<(bool, Vec<u8>)> {
    words.iter().map(|w| (w.tilde, w.text.clone())).collect()
}

/// A minimal POSIX quote tracker, written apart from the parser: whether
/// `s` has a byte a shell would act on outside quotes (or `$`/backquote
/// inside double quotes).
fn has_unquoted_shell_syntax(s: &[u8]) -> bool {
    #[derive(PartialEq)]
    enum Q {
        None,
        Single,
        Double,
    }
    let mut q = Q::None;
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        i += 1;
        match (&q, c) {
            (Q::None | Q::Double, b'\\') => i += 1,
            (Q::None, b'\'') => q = Q::Single,
            (Q::None, b'"') => q = Q::Double,
            (Q::None, c) if b";|&$`<>()\n".contains(&c) => return true,
            (Q::Single, b'\'') | (Q::Double, b'"') => q = Q::None,
            (Q::Double, b'$' | b'`') => return true,
            _ => {}
        }
    }
    false
}

/// Each word in single quotes (`'` as `'\''`); a tilde word as an
/// unquoted `~` or `~/` followed by the quoted rest.
fn render(words: &[Word]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in words {
        if !out.is_empty() {
            out.push(b' ');
        }
        let mut text = &word.text[..];
        if word.tilde {
            out.push(b'~');
            match text.strip_prefix(b"/") {
                Some(rest) => {
                    out.push(b'/');
                    text = rest;
                }
                None => {
                    assert!(text.is_empty(), "tilde word not followed by /");
                    continue;
                }
            }
        }
        single_quote(&mut out, text);
    }
    out
}

fn single_quote(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'\'');
    for &b in text {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
}
