//! The sink state machine over arbitrary stdin, confined to a fresh root.
//! After every input: nothing outside the root changed (a sibling
//! directory stays empty, a file outside keeps its bytes, nothing new
//! appears beside the root) and no temporary upload file is left anywhere.
//!
//! The root holds symlinks that lead outside (relative and absolute), so
//! records naming them exercise the confinement, not just the parser.
#![no_main]

use std::fs;
use std::io::{Cursor, Read, Write};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scp_server::confine::{Backend, Root, Scope};
use scp_server::limits::Limits;
use scp_server::protocol::{MAX_RECORD_LINE, RecordReader};
use scp_server::sink::{self, SinkOptions};
use scp_server::transfer::{DataPath, SessionStream};

const OUTSIDE_BYTES: &[u8] = b"outside the root\n";

fuzz_target!(|data: &[u8]| {
    let Some((&config, stdin)) = data.split_first() else {
        return;
    };
    let run = fresh_run_dir();
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
    open_up(&run);
    check_nothing_escaped(&run);
    let _ = fs::remove_dir_all(&run);
});

/// A directory per process (under /dev/shm when there is one: the target
/// creates and removes a tree per input).
fn base_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let parent = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let base = parent.join(format!("scp-server-fuzz-sink-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).expect("base dir");
        base
    })
}

/// run/{root,sibling,outside.txt}; the root has a subdirectory, a file, and
/// symlinks out of it.
fn fresh_run_dir() -> PathBuf {
    let run = base_dir().join("run");
    open_up(&run);
    let _ = fs::remove_dir_all(&run);
    let root = run.join("root");
    fs::create_dir_all(root.join("sub")).expect("root");
    fs::create_dir(run.join("sibling")).expect("sibling");
    fs::write(run.join("outside.txt"), OUTSIDE_BYTES).expect("outside file");
    fs::write(root.join("file"), b"inside\n").expect("inside file");
    symlink("../sibling", root.join("up")).expect("symlink");
    symlink(run.join("sibling"), root.join("abs")).expect("symlink");
    symlink("../outside.txt", root.join("outfile")).expect("symlink");
    symlink("sub", root.join("in")).expect("symlink");
    run
}

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

/// The invariants that must hold whatever the input was.
fn check_nothing_escaped(run: &Path) {
    let mut beside: Vec<_> = fs::read_dir(run)
        .expect("run dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["outside.txt", "root", "sibling"],
        "new entry beside the root"
    );
    assert_eq!(
        fs::read_dir(run.join("sibling")).expect("sibling").count(),
        0,
        "something was written into the sibling directory"
    );
    assert_eq!(
        fs::read(run.join("outside.txt")).expect("outside"),
        OUTSIDE_BYTES
    );
    assert_no_temp_files(run);
}

/// Inputs can create directories their creator cannot enter (`D0000`).
/// fuzz/run.sh runs the fuzzers as an unprivileged user, so before the tree
/// is inspected or removed, its directories are opened up again. Only real
/// directories are touched: `file_type` does not follow symlinks.
fn open_up(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            open_up(&entry.path());
        }
    }
}

fn assert_no_temp_files(dir: &Path) {
    for entry in fs::read_dir(dir).expect("readable dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        assert!(
            !(name.starts_with(b".scp-server-") && name.ends_with(b".tmp")),
            "temporary file left: {:?}",
            entry.path()
        );
        if entry.file_type().expect("type").is_dir() {
            assert_no_temp_files(&entry.path());
        }
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
