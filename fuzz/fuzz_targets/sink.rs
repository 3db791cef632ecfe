//! The sink state machine over arbitrary stdin, confined to a fresh root.
//! After every input, the invariants of shared/tree.rs: nothing outside
//! the root changed, no temporary upload file left.
#![no_main]

use std::io::{Cursor, Read, Write};

use libfuzzer_sys::fuzz_target;
use scp_server::confine::{Backend, Root, Scope};
use scp_server::limits::Limits;
use scp_server::protocol::{MAX_RECORD_LINE, RecordReader};
use scp_server::sink::{self, SinkOptions};
use scp_server::transfer::{DataPath, SessionStream};

#[path = "shared/tree.rs"]
mod tree;

fuzz_target!(|data: &[u8]| {
    let Some((&config, stdin)) = data.split_first() else {
        return;
    };
    let run = tree::fresh_run_dir("sink");
    let root = Root::open(&run.join("root"), backend(config), config & 0x40 != 0)
        .expect("the fresh root opens");
    let reader = RecordReader::new(Input(Cursor::new(stdin.to_vec())), MAX_RECORD_LINE);
    sink::run(
        target(config),
        Scope::Confined(root),
        options(config),
        reader,
        Output(Vec::new()),
        DataPath::new(None),
    );
    tree::check_nothing_escaped_and_clean(&run);
});

fn backend(config: u8) -> Backend {
    if config & 0x80 != 0 {
        Backend::Walk
    } else {
        Backend::Openat2
    }
}

/// The `-t` target, picked by the low bits of the first byte.
fn target(config: u8) -> &'static [u8] {
    const TARGETS: [&[u8]; 8] = [
        b"/",
        b".",
        b"sub",
        b"/new",
        b"file",
        b"up",
        b"../sibling",
        b"outfile",
    ];
    TARGETS[usize::from(config & 7)]
}

/// Small limits keep each input fast; the flag bits vary the rest.
fn options(config: u8) -> SinkOptions {
    SinkOptions {
        recursive: config & 0x08 == 0,
        preserve: config & 0x10 != 0,
        target_must_be_dir: config & 0x20 != 0,
        verbose: false,
        umask: 0o022,
        creation_umask: scp_server::confine::inherited_umask(),
        mode_mask: 0o777,
        max_depth: 6,
        no_overwrite: config & 0x21 == 0x21,
        fsync: false,
        limits: Limits {
            max_file_size: Some(4096),
            max_total_bytes: Some(16 * 1024),
            max_files: Some(32),
        },
        denied: Box::new(|rel| rel.ends_with(b"denied").then(|| "*denied".to_string())),
    }
}

/// stdin: the fuzz input. Not the session's real stdin, so the data path
/// copies instead of splicing.
struct Input(Cursor<Vec<u8>>);

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl SessionStream for Input {}

/// stdout: the replies, kept in memory and dropped.
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
