//! Property tests (issue 8): the record encoders and parser agree for every
//! record kind, escaping never lets a control byte through, the command
//! splitter undoes POSIX single quoting, and random record streams fed to
//! the sink with a confined root never write outside it.
//!
//! Case counts are kept small so that the whole file runs in seconds; the
//! fuzz targets (fuzz/) explore the same ground for longer.

use std::fs;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use scp_server::command::split_words;
use scp_server::confine::{Backend, Root, Scope};
use scp_server::limits::Limits;
use scp_server::protocol::{
    MAX_RECORD_LINE, Record, RecordReader, Times, encode_dir, encode_file, encode_times,
    escape_bytes, parse_record,
};
use scp_server::sink::{self, SinkOptions};
use scp_server::transfer::{DataPath, SessionStream};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A line as the reader hands it to the parser: without its LF.
fn wire(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").expect("encoded records end in LF")
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn file_record_round_trips(mode in 0u32..0o10000, size in 0..=i64::MAX as u64,
                               name in prop::collection::vec(any::<u8>(), 0..64),
                               first in any::<bool>()) {
        let parsed = parse_record(wire(&encode_file(mode, size, &name)), first);
        // The sticky bit is dropped on the wire, as OpenSSH does.
        prop_assert_eq!(parsed, Ok(Record::File { mode: mode & 0o6777, size, name }));
    }

    #[test]
    fn dir_record_round_trips(mode in 0u32..0o10000,
                              name in prop::collection::vec(any::<u8>(), 0..64),
                              first in any::<bool>()) {
        let parsed = parse_record(wire(&encode_dir(mode, &name)), first);
        prop_assert_eq!(parsed, Ok(Record::Dir { mode: mode & 0o6777, name }));
    }

    #[test]
    fn times_record_round_trips(mtime in any::<i64>(), atime in any::<i64>()) {
        let parsed = parse_record(wire(&encode_times(mtime, atime)), false);
        // Negative times are sent as 0 and microseconds as 0.
        let times = Times { mtime_sec: mtime.max(0), mtime_usec: 0,
                            atime_sec: atime.max(0), atime_usec: 0 };
        prop_assert_eq!(parsed, Ok(Record::Times(times)));
    }

    /// The kinds a source never encodes but a sink must read: `E` (only its
    /// first byte counts) and the `\x01`/`\x02` lines (text kept verbatim).
    #[test]
    fn end_warning_and_fatal_records_parse(text in prop::collection::vec(any::<u8>(), 0..64)) {
        let line = |kind: u8| [&[kind][..], &text].concat();
        prop_assert_eq!(parse_record(&line(b'E'), false), Ok(Record::End));
        prop_assert_eq!(parse_record(&line(1), false), Ok(Record::Warning(text.clone())));
        prop_assert_eq!(parse_record(&line(2), true), Ok(Record::Fatal(text.clone())));
    }

    #[test]
    fn escape_bytes_emits_no_control_characters(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        let escaped = escape_bytes(&bytes);
        prop_assert!(!escaped.chars().any(char::is_control), "{:?}", escaped);
    }

    #[test]
    fn split_words_undoes_single_quoting(
        words in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 0..6)) {
        let split = split_words(&single_quoted(&words)).expect("quoted words are accepted");
        let texts: Vec<_> = split.iter().map(|w| w.text.clone()).collect();
        prop_assert_eq!(texts, words);
        // Quoted, nothing is a home directory or a glob.
        prop_assert!(split.iter().all(|w| !w.tilde && w.pattern.is_none()));
    }
}

/// Each word in POSIX single quotes (a `'` as `'\''`), separated by spaces.
fn single_quoted(words: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in words {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.push(b'\'');
        for &b in word {
            if b == b'\'' {
                out.extend_from_slice(b"'\\''");
            } else {
                out.push(b);
            }
        }
        out.push(b'\'');
    }
    out
}

// ---------------------------------------------------------------------------
// Random record streams against a confined sink
// ---------------------------------------------------------------------------

/// One step of a generated upload stream.
#[derive(Debug, Clone)]
enum Step {
    File {
        mode: u32,
        name: Vec<u8>,
        data: Vec<u8>,
        /// The sender's status after the data: `\0`, or a warning.
        ok: bool,
    },
    Dir {
        mode: u32,
        name: Vec<u8>,
    },
    End,
    Times(i64, i64),
    /// Anything at all, to desynchronise the stream.
    Raw(Vec<u8>),
}

/// Names that matter for confinement (the fixture's symlinks, `..`, `/`),
/// and arbitrary short ones.
fn name() -> impl Strategy<Value = Vec<u8>> {
    let special: Vec<&[u8]> = vec![
        b"..",
        b".",
        b"",
        b"a",
        b"sub",
        b"up",
        b"abs",
        b"outfile",
        b"in",
        b"../x",
        b"a/b",
        b"/etc",
        b"x\ny",
        b".scp-server-1-1-0.tmp",
    ];
    prop_oneof![
        3 => prop::sample::select(special).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..8),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u32..0o10000, name(), prop::collection::vec(any::<u8>(), 0..64), any::<bool>())
            .prop_map(|(mode, name, data, ok)| Step::File { mode, name, data, ok }),
        3 => (0u32..0o10000, name()).prop_map(|(mode, name)| Step::Dir { mode, name }),
        2 => Just(Step::End),
        1 => (any::<i64>(), any::<i64>()).prop_map(|(m, a)| Step::Times(m, a)),
        1 => prop::collection::vec(any::<u8>(), 0..16).prop_map(Step::Raw),
    ]
}

fn encode_steps(steps: &[Step]) -> Vec<u8> {
    let mut out = Vec::new();
    for step in steps {
        match step {
            Step::File {
                mode,
                name,
                data,
                ok,
            } => {
                out.extend(encode_file(*mode, data.len() as u64, name));
                out.extend(data);
                out.extend_from_slice(if *ok { b"\0" } else { b"\x01oops\n" });
            }
            Step::Dir { mode, name } => out.extend(encode_dir(*mode, name)),
            Step::End => out.extend_from_slice(b"E\n"),
            Step::Times(m, a) => out.extend(encode_times(*m, *a)),
            Step::Raw(bytes) => out.extend(bytes),
        }
    }
    out
}

const OUTSIDE_BYTES: &[u8] = b"outside the root\n";
const TARGETS: [&str; 6] = ["/", "sub", "/new", "file", "up", "../sibling"];

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn random_record_streams_never_write_outside_the_root(
        steps in prop::collection::vec(step(), 0..12),
        target in prop::sample::select(&TARGETS[..]),
        walk in any::<bool>(), preserve in any::<bool>(), recursive in prop::bool::weighted(0.8)) {
        let run = Fixture::new();
        let backend = if walk { Backend::Walk } else { Backend::Openat2 };
        let root = Root::open(&run.path.join("root"), backend, false).expect("root");
        sink::run(
            target.as_bytes(),
            Scope::Confined(root),
            options(recursive, preserve),
            RecordReader::new(Input(Cursor::new(encode_steps(&steps))), MAX_RECORD_LINE),
            Output(Vec::new()),
            DataPath::new(None),
        );
        run.assert_nothing_escaped();
    }
}

fn options(recursive: bool, preserve: bool) -> SinkOptions {
    SinkOptions {
        recursive,
        preserve,
        target_must_be_dir: false,
        verbose: false,
        umask: 0o022,
        creation_umask: scp_server::confine::inherited_umask(),
        mode_mask: 0o777,
        max_depth: 8,
        no_overwrite: false,
        fsync: false,
        limits: Limits::default(),
        denied: Box::new(|_| None),
    }
}

/// run/{root/{sub/,file,up→../sibling,abs→run/sibling,outfile→../outside.txt,
/// in→sub},sibling/,outside.txt}: a fresh one per case, removed on drop.
struct Fixture {
    path: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "scp-server-properties-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let root = path.join("root");
        fs::create_dir_all(root.join("sub")).expect("root");
        fs::create_dir(path.join("sibling")).expect("sibling");
        fs::write(path.join("outside.txt"), OUTSIDE_BYTES).expect("outside");
        fs::write(root.join("file"), b"inside\n").expect("file");
        symlink("../sibling", root.join("up")).expect("symlink");
        symlink(path.join("sibling"), root.join("abs")).expect("symlink");
        symlink("../outside.txt", root.join("outfile")).expect("symlink");
        symlink("sub", root.join("in")).expect("symlink");
        Fixture { path }
    }

    fn assert_nothing_escaped(&self) {
        let mut beside: Vec<_> = fs::read_dir(&self.path)
            .expect("fixture")
            .map(|e| e.expect("entry").file_name())
            .collect();
        beside.sort();
        assert_eq!(beside, ["outside.txt", "root", "sibling"]);
        let sibling = fs::read_dir(self.path.join("sibling")).expect("sibling");
        assert_eq!(sibling.count(), 0, "written into the sibling directory");
        let outside = fs::read(self.path.join("outside.txt")).expect("outside");
        assert_eq!(outside, OUTSIDE_BYTES);
        assert_no_temp_files(&self.path);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

fn assert_no_temp_files(dir: &Path) {
    for entry in fs::read_dir(dir).expect("dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        let temp = name.starts_with(b".scp-server-") && name.ends_with(b".tmp");
        // The generator may name a file like a temp file on purpose; the
        // sink's own temp files have a different (pid-based) name.
        assert!(
            !temp || name == b".scp-server-1-1-0.tmp",
            "temporary file left: {:?}",
            entry.path()
        );
        if entry.file_type().expect("type").is_dir() {
            assert_no_temp_files(&entry.path());
        }
    }
}

/// The generated stream as the session's stdin (copied, not spliced).
struct Input(Cursor<Vec<u8>>);

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl SessionStream for Input {}

struct Output(Vec<u8>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SessionStream for Output {}
