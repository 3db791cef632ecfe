//! The abandoned-upload cleanup of `systemd/system/scp-drop-cleanup.service`,
//! run by the tests exactly as systemd would run it, against a directory of
//! the test's choosing instead of `/srv/scp-drop`.
//!
//! The command is read from the unit file, not restated here, so a test
//! that shows "the cleanup removes the stale temporary file" fails when the
//! unit changes in a way that no longer does.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// The unit whose `ExecStart=` is the cleanup.
const UNIT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/systemd/system/scp-drop-cleanup.service"
);

/// The base directory the shipped unit cleans; replaced by the test's.
const SHIPPED_BASE: &str = "/srv/scp-drop";

/// scp-server names its temporary upload files `.scp-server-*.tmp`.
pub const TEMP_PREFIX: &str = ".scp-server-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// The words of the unit's (only, non-empty) `ExecStart=`. systemd splits
/// it at whitespace and passes `*` on unexpanded; the line has no quotes,
/// which this asserts rather than implementing systemd's quoting rules.
fn exec_start_words() -> Vec<String> {
    let unit = fs::read_to_string(UNIT).unwrap_or_else(|e| panic!("read {UNIT}: {e}"));
    let lines: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ExecStart="))
        .filter(|command| !command.is_empty())
        .collect();
    let [command] = lines.as_slice() else {
        panic!("{UNIT}: expected exactly one ExecStart=, found {lines:?}");
    };
    assert!(
        !command.contains(['"', '\'', '\\', '$', '%']),
        "{UNIT}: ExecStart= uses quoting or specifiers this helper does not interpret"
    );
    command.split_whitespace().map(str::to_owned).collect()
}

/// The unit's cleanup command with `base` in place of `/srv/scp-drop`.
pub fn cleanup_command(base: &Path) -> Command {
    let words = exec_start_words();
    assert!(
        words.iter().any(|w| w == SHIPPED_BASE),
        "{UNIT}: ExecStart= no longer names {SHIPPED_BASE}: {words:?}"
    );
    let mut command = Command::new(&words[0]);
    for word in &words[1..] {
        if word == SHIPPED_BASE {
            command.arg(base);
        } else {
            command.arg(word);
        }
    }
    command
}

/// The `-mmin +N` age of the unit: temporary files younger than this are
/// left alone (they may belong to a live upload).
pub fn cleanup_age() -> Duration {
    let words = exec_start_words();
    let minutes = words
        .iter()
        .position(|w| w == "-mmin")
        .and_then(|i| words.get(i + 1))
        .and_then(|n| n.strip_prefix('+'))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{UNIT}: ExecStart= has no -mmin +N: {words:?}"));
    Duration::from_secs(minutes * 60)
}

/// Runs the cleanup against `base` and panics unless it succeeded.
pub fn run_cleanup(base: &Path) {
    let mut command = cleanup_command(base);
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run the cleanup {command:?}: {e}"));
    assert!(
        output.status.success(),
        "cleanup {command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Moves a file's modification time back by more than the cleanup's age,
/// as if it had been abandoned that long ago.
pub fn make_older_than_cleanup_age(path: &Path) {
    let old = SystemTime::now() - cleanup_age() - Duration::from_secs(3600);
    let file = fs::File::options()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_modified(old)
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// Every `.scp-server-*.tmp` file below `dir`, at any depth.
pub fn temp_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else if entry.file_name().to_str().is_some_and(is_temp_name) {
                found.push(path);
            }
        }
    }
    found
}
