//! The temporary tree the filesystem targets (sink, sftp_server) run in,
//! and the invariants checked after every input: nothing outside the root
//! changed (a sibling directory stays empty, a file outside keeps its
//! bytes, nothing new appears beside the root) and no temporary upload file
//! is left anywhere.
//!
//! The root holds symlinks that lead outside (relative and absolute), so
//! inputs naming them exercise the confinement, not just the parser.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const OUTSIDE_BYTES: &[u8] = b"outside the root\n";

/// A directory per process (under /dev/shm when there is one: the targets
/// create and remove a tree per input). fuzz/run.sh removes those of
/// processes that are gone.
fn base_dir(target: &str) -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let parent = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let base = parent.join(format!("scp-server-fuzz-{target}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        fs::create_dir_all(&base).expect("base dir");
        base
    })
}

/// run/{root,sibling,outside.txt}; the root has a subdirectory, a file, and
/// symlinks out of it.
pub fn fresh_run_dir(target: &str) -> PathBuf {
    let run = base_dir(target).join("run");
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

/// The invariants that must hold whatever the input was; then the run
/// directory is removed.
pub fn check_nothing_escaped_and_clean(run: &Path) {
    open_up(run);
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
    let _ = fs::remove_dir_all(run);
}

/// Inputs can create directories their creator cannot enter (`D0000`,
/// MKDIR with mode 0). fuzz/run.sh runs the fuzzers as an unprivileged
/// user, so before the tree is inspected or removed, its directories are
/// opened up again. Only real directories are touched: `file_type` does
/// not follow symlinks.
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
