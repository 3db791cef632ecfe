//! End-to-end tests: the real OpenSSH client (`scp -O`) talks through a
//! private sshd on 127.0.0.1 to our binary, which the session finds as `scp`.
//!
//! Run with `cargo test --test e2e_sshd` (as root for the tests that need a
//! second, unprivileged account). `SCP_E2E_SERVER=/usr/bin/scp` runs the same
//! tests against OpenSSH's own server side, the behaviour we copy.
//! Without sshd the tests skip, except under `CI`, where they fail.

mod sshd;

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sshd::{PrivateSshd, remote_shell_escape, run_bounded};

/// The program sessions run as `scp`: our binary, unless overridden to
/// compare with another server-side scp.
fn server_program() -> PathBuf {
    match std::env::var_os("SCP_E2E_SERVER") {
        Some(program) => PathBuf::from(program),
        None => PathBuf::from(env!("CARGO_BIN_EXE_scp-server")),
    }
}

/// For tests of behaviour where we deliberately do better than OpenSSH
/// (PROTOCOL.md §h): true, after a note, when another server is under test.
fn baseline_lacks_this_improvement() -> bool {
    let overridden = std::env::var_os("SCP_E2E_SERVER").is_some();
    if overridden {
        eprintln!("SKIPPED: deliberate difference from OpenSSH, not expected of SCP_E2E_SERVER");
    }
    overridden
}

fn start_sshd() -> Option<PrivateSshd> {
    PrivateSshd::start(&server_program())
}

// ---------------------------------------------------------------------------
// Files, modes, times, hashes

/// A fixed point in the past, whole seconds: scp carries seconds only.
fn past_time(hours_after_base: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000_000 + hours_after_base * 3600)
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Sets atime and mtime through a descriptor; works for directories too.
fn set_mtime(path: &Path, time: SystemTime) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_times(FileTimes::new().set_modified(time).set_accessed(time))
        .unwrap_or_else(|e| panic!("set times of {}: {e}", path.display()));
}

fn write_file(path: &Path, content: &[u8], mode: u32) {
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    set_mode(path, mode);
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn mtime_of(path: &Path) -> i64 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .mtime()
}

fn seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .expect("after epoch")
        .as_secs() as i64
}

/// sha256 by the system's `sha256sum`, so the check does not depend on code
/// of ours.
fn sha256(path: &Path) -> String {
    let mut command = Command::new("sha256sum");
    command.arg(path);
    let outcome = run_bounded(command, Duration::from_secs(120));
    assert!(outcome.succeeded(), "sha256sum failed\n{outcome}");
    let text = outcome.stdout_text();
    text.split_whitespace()
        .next()
        .expect("sha256sum output")
        .to_string()
}

/// Deterministic bytes that do not compress or repeat (xorshift64*), so a
/// dropped or duplicated block changes the hash.
fn write_pseudo_random_file(path: &Path, len: usize, seed: u64) {
    let file = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut state = seed | 1;
    let mut remaining = len;
    while remaining > 0 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let word = state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        let n = remaining.min(word.len());
        out.write_all(&word[..n]).expect("write pseudo-random data");
        remaining -= n;
    }
    out.flush().expect("flush pseudo-random data");
}

fn entries_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn make_dir(path: &Path) -> PathBuf {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    path.to_path_buf()
}

// ---------------------------------------------------------------------------
// Trees

/// What a transfer with `-p` must reproduce for one entry: kind and content
/// (by sha256), permission bits and mtime. Atime is left out: reading the
/// source to send it may legitimately move it.
#[derive(Debug, PartialEq, Eq)]
struct EntryState {
    kind_and_content: String,
    mode: u32,
    mtime: i64,
}

/// Every entry below `root` (and `root` itself as ""), by relative path.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, EntryState> {
    let mut states = BTreeMap::new();
    collect(root, Path::new(""), &mut states);
    states
}

fn collect(root: &Path, relative: &Path, states: &mut BTreeMap<PathBuf, EntryState>) {
    let path = root.join(relative);
    let meta =
        fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let kind_and_content = if meta.is_dir() {
        "directory".to_string()
    } else if meta.is_file() {
        format!("file {} bytes sha256 {}", meta.len(), sha256(&path))
    } else {
        format!("unexpected file type {:?}", meta.file_type())
    };
    states.insert(
        relative.to_path_buf(),
        EntryState {
            kind_and_content,
            mode: meta.mode() & 0o7777,
            mtime: meta.mtime(),
        },
    );
    if meta.is_dir() {
        for name in entries_of(&path) {
            collect(root, &relative.join(name), states);
        }
    }
}

fn assert_same_tree(expected_root: &Path, actual_root: &Path) {
    let expected = snapshot(expected_root);
    let actual = snapshot(actual_root);
    for (path, state) in &expected {
        assert_eq!(
            actual.get(path),
            Some(state),
            "entry {:?} differs between {} and {}",
            path,
            expected_root.display(),
            actual_root.display()
        );
    }
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "the trees hold different entries"
    );
}

/// A small tree with varied modes, distinct past mtimes, an empty file, an
/// empty directory and a nested directory. Modes and times are set last,
/// deepest first, because creating an entry changes its directory's mtime.
fn build_sample_tree(root: &Path) {
    let sub = root.join("sub");
    let deeper = sub.join("deeper");
    let empty_dir = root.join("empty dir");
    make_dir(&deeper);
    make_dir(&empty_dir);
    write_file(&root.join("top.txt"), b"top level\n", 0o640);
    write_file(&root.join("empty"), b"", 0o600);
    write_pseudo_random_file(&sub.join("data.bin"), 100_000, 7);
    set_mode(&sub.join("data.bin"), 0o604);
    write_file(&sub.join("script.sh"), b"#!/bin/sh\necho hello\n", 0o755);
    write_file(&deeper.join("leaf.txt"), b"leaf\n", 0o444);

    let files = [
        "top.txt",
        "empty",
        "sub/data.bin",
        "sub/script.sh",
        "sub/deeper/leaf.txt",
    ];
    for (hour, file) in files.iter().enumerate() {
        set_mtime(&root.join(file), past_time(hour as u64));
    }
    let dirs = [
        (&deeper, 0o700, 10),
        (&sub, 0o750, 11),
        (&empty_dir, 0o755, 12),
        (&root.to_path_buf(), 0o755, 13),
    ];
    for (dir, mode, hour) in dirs {
        set_mode(dir, mode);
        set_mtime(dir, past_time(hour));
    }
}

// ---------------------------------------------------------------------------
// Single files

#[test]
fn upload_of_one_file_applies_content_and_umask() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let source = sshd.work_dir().join("hello.txt");
    write_file(&source, b"hello, world\n", 0o666);
    let dest = make_dir(&sshd.work_dir().join("dest"));

    let outcome = sshd.scp([source.as_os_str(), &sshd.remote(&user, &dest)]);
    sshd.expect_success(&outcome);

    let arrived = dest.join("hello.txt");
    assert_eq!(fs::read(&arrived).expect("read upload"), b"hello, world\n");
    assert_eq!(sha256(&arrived), sha256(&source));
    // Without -p a new file gets the record's mode under the session umask
    // (022, set for the private sshd).
    assert_eq!(mode_of(&arrived), 0o644);
    assert_eq!(
        entries_of(&dest),
        ["hello.txt"],
        "no temporary file may remain"
    );
}

#[test]
fn upload_to_an_explicit_file_name_with_p_keeps_mode_and_mtime() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let source = sshd.work_dir().join("report.txt");
    write_file(&source, b"quarterly numbers\n", 0o640);
    set_mtime(&source, past_time(42));
    let dest = make_dir(&sshd.work_dir().join("dest")).join("renamed.txt");

    let outcome = sshd.scp([
        "-p".as_ref(),
        source.as_os_str(),
        &sshd.remote(&user, &dest),
    ]);
    sshd.expect_success(&outcome);

    assert_eq!(sha256(&dest), sha256(&source));
    assert_eq!(mode_of(&dest), 0o640);
    assert_eq!(mtime_of(&dest), seconds(past_time(42)));
}

#[test]
fn upload_over_an_existing_file_replaces_content_and_keeps_its_mode() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let source = sshd.work_dir().join("new.txt");
    write_file(&source, b"new content, longer than the old one\n", 0o644);
    let dest = make_dir(&sshd.work_dir().join("dest")).join("existing.txt");
    write_file(&dest, b"old content\n", 0o600);

    let outcome = sshd.scp([source.as_os_str(), &sshd.remote(&user, &dest)]);
    sshd.expect_success(&outcome);

    assert_eq!(
        fs::read(&dest).expect("read"),
        b"new content, longer than the old one\n"
    );
    assert_eq!(
        mode_of(&dest),
        0o600,
        "without -p an existing file keeps its mode"
    );
    assert_eq!(entries_of(dest.parent().expect("parent")), ["existing.txt"]);
}

#[test]
fn download_of_one_file_with_p_keeps_content_mode_and_mtime() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let remote = make_dir(&sshd.work_dir().join("remote")).join("notes.md");
    write_file(&remote, b"# notes\n\nsome text\n", 0o604);
    set_mtime(&remote, past_time(7));
    let local = make_dir(&sshd.work_dir().join("local"));

    let outcome = sshd.scp([
        "-p".as_ref(),
        sshd.remote(&user, &remote).as_os_str(),
        local.as_os_str(),
    ]);
    sshd.expect_success(&outcome);

    let arrived = local.join("notes.md");
    assert_eq!(sha256(&arrived), sha256(&remote));
    assert_eq!(mode_of(&arrived), 0o604);
    assert_eq!(mtime_of(&arrived), seconds(past_time(7)));
}

#[test]
fn zero_byte_file_round_trips() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let source = sshd.work_dir().join("empty.dat");
    write_file(&source, b"", 0o640);
    set_mtime(&source, past_time(3));
    let remote = make_dir(&sshd.work_dir().join("remote"));
    let local = make_dir(&sshd.work_dir().join("local"));

    let up = sshd.scp([
        "-p".as_ref(),
        source.as_os_str(),
        &sshd.remote(&user, &remote),
    ]);
    sshd.expect_success(&up);
    let uploaded = remote.join("empty.dat");
    assert_eq!(fs::metadata(&uploaded).expect("uploaded").len(), 0);
    assert_eq!(mode_of(&uploaded), 0o640);
    assert_eq!(mtime_of(&uploaded), seconds(past_time(3)));

    let down = sshd.scp([
        "-p".as_ref(),
        sshd.remote(&user, &uploaded).as_os_str(),
        local.as_os_str(),
    ]);
    sshd.expect_success(&down);
    let downloaded = local.join("empty.dat");
    assert_eq!(fs::metadata(&downloaded).expect("downloaded").len(), 0);
    assert_eq!(mode_of(&downloaded), 0o640);
    assert_eq!(mtime_of(&downloaded), seconds(past_time(3)));
}

#[test]
fn large_file_round_trip_keeps_sha256() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let source = sshd.work_dir().join("big.bin");
    write_pseudo_random_file(&source, 64 << 20, 0x5ca1_ab1e);
    let remote = make_dir(&sshd.work_dir().join("remote"));
    let local = make_dir(&sshd.work_dir().join("local"));
    let expected = sha256(&source);

    let up = sshd.scp([source.as_os_str(), &sshd.remote(&user, &remote)]);
    sshd.expect_success(&up);
    let uploaded = remote.join("big.bin");
    assert_eq!(fs::metadata(&uploaded).expect("uploaded").len(), 64 << 20);
    assert_eq!(sha256(&uploaded), expected, "upload corrupted the data");

    let down = sshd.scp([sshd.remote(&user, &uploaded).as_os_str(), local.as_os_str()]);
    sshd.expect_success(&down);
    assert_eq!(
        sha256(&local.join("big.bin")),
        expected,
        "download corrupted the data"
    );
}

#[test]
fn upload_of_several_files_in_one_session() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let names = ["one.txt", "two.txt", "three.txt"];
    let sources: Vec<PathBuf> = names.iter().map(|n| sshd.work_dir().join(n)).collect();
    for (source, name) in sources.iter().zip(names) {
        write_file(source, format!("this is {name}\n").as_bytes(), 0o644);
    }
    let dest = make_dir(&sshd.work_dir().join("dest"));

    let mut args: Vec<std::ffi::OsString> = sources.iter().map(|s| s.clone().into()).collect();
    args.push(sshd.remote(&user, &dest));
    let outcome = sshd.scp(&args);
    sshd.expect_success(&outcome);

    assert_eq!(entries_of(&dest), ["one.txt", "three.txt", "two.txt"]);
    for (source, name) in sources.iter().zip(names) {
        assert_eq!(sha256(&dest.join(name)), sha256(source));
    }
}

#[test]
fn download_of_a_glob_expanded_by_the_remote_shell() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let remote = make_dir(&sshd.work_dir().join("remote"));
    write_file(&remote.join("a.txt"), b"a\n", 0o644);
    write_file(&remote.join("b.txt"), b"b\n", 0o644);
    write_file(&remote.join("c.log"), b"c\n", 0o644);
    let local = make_dir(&sshd.work_dir().join("local"));

    // The `*` is left for the remote shell, which hands `scp -f` two paths.
    let pattern = format!("{}/*.txt", remote.display());
    let outcome = sshd.scp([sshd.remote(&user, &pattern).as_os_str(), local.as_os_str()]);
    sshd.expect_success(&outcome);

    assert_eq!(entries_of(&local), ["a.txt", "b.txt"]);
}

#[test]
fn interrupted_upload_leaves_the_old_file_intact() {
    // OpenSSH writes in place: the old file would be left truncated.
    if baseline_lacks_this_improvement() {
        return;
    }
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let source = sshd.work_dir().join("big.bin");
    write_pseudo_random_file(&source, 16 << 20, 99);
    let dest = make_dir(&sshd.work_dir().join("dest"));
    let target = dest.join("big.bin");
    write_file(&target, b"the good old version\n", 0o644);

    // -l 8000 (kbit/s, about 1 MB/s) keeps the 16 MiB transfer running well
    // past the 2 s after which the client is killed mid-file.
    let command = sshd.scp_command([
        "-l".as_ref(),
        "8000".as_ref(),
        source.as_os_str(),
        &sshd.remote(&user, &dest),
    ]);
    let outcome = run_bounded(command, Duration::from_secs(2));
    assert!(
        outcome.timed_out,
        "the transfer should still have been running\n{outcome}"
    );

    // The server side sees the connection drop and must clean up by itself.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while entries_of(&dest) != ["big.bin"] && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        entries_of(&dest),
        ["big.bin"],
        "a partial or temporary file remained"
    );
    assert_eq!(
        fs::read(&target).expect("read target"),
        b"the good old version\n"
    );
}

// ---------------------------------------------------------------------------
// Trees

#[test]
fn upload_of_a_tree_with_r_p_reproduces_content_modes_and_mtimes() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let tree = sshd.work_dir().join("tree");
    build_sample_tree(&tree);
    let remote = make_dir(&sshd.work_dir().join("remote"));

    let outcome = sshd.scp([
        "-r".as_ref(),
        "-p".as_ref(),
        tree.as_os_str(),
        &sshd.remote(&user, &remote),
    ]);
    sshd.expect_success(&outcome);

    assert_same_tree(&tree, &remote.join("tree"));
    assert_eq!(entries_of(&remote), ["tree"]);
}

#[test]
fn download_of_a_tree_with_r_p_reproduces_content_modes_and_mtimes() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let tree = make_dir(&sshd.work_dir().join("remote")).join("tree");
    build_sample_tree(&tree);
    let local = make_dir(&sshd.work_dir().join("local"));

    let outcome = sshd.scp([
        "-r".as_ref(),
        "-p".as_ref(),
        sshd.remote(&user, &tree).as_os_str(),
        local.as_os_str(),
    ]);
    sshd.expect_success(&outcome);

    assert_same_tree(&tree, &local.join("tree"));
}

// ---------------------------------------------------------------------------
// Names the remote shell would split

#[test]
fn names_with_spaces_round_trip() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let source = sshd.work_dir().join("a file with spaces.txt");
    write_file(&source, b"spaced out\n", 0o644);
    let remote = make_dir(&sshd.work_dir().join("remote dir"));
    let local = make_dir(&sshd.work_dir().join("local"));

    // scp -O hands remote paths to the remote shell unquoted: escape them.
    let up = sshd.scp([
        source.as_os_str(),
        &sshd.remote(&user, remote_shell_escape(&remote)),
    ]);
    sshd.expect_success(&up);
    let uploaded = remote.join("a file with spaces.txt");
    assert_eq!(
        fs::read(&uploaded).expect("uploaded file with spaces"),
        b"spaced out\n"
    );

    let down = sshd.scp([
        sshd.remote(&user, remote_shell_escape(&uploaded))
            .as_os_str(),
        local.as_os_str(),
    ]);
    sshd.expect_success(&down);
    assert_eq!(
        sha256(&local.join("a file with spaces.txt")),
        sha256(&source)
    );
}

#[test]
fn tree_with_spaces_in_names_round_trips() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let tree = sshd.work_dir().join("my tree");
    make_dir(&tree.join("sub dir"));
    write_file(&tree.join("sub dir").join("x y.txt"), b"x and y\n", 0o644);
    write_file(&tree.join(" leading space"), b"lead\n", 0o644);
    let remote = make_dir(&sshd.work_dir().join("remote"));
    let local = make_dir(&sshd.work_dir().join("local"));

    let up = sshd.scp([
        "-r".as_ref(),
        "-p".as_ref(),
        tree.as_os_str(),
        &sshd.remote(&user, &remote),
    ]);
    sshd.expect_success(&up);
    assert_same_tree(&tree, &remote.join("my tree"));

    let down = sshd.scp([
        "-r".as_ref(),
        "-p".as_ref(),
        sshd.remote(&user, remote_shell_escape(&remote.join("my tree")))
            .as_os_str(),
        local.as_os_str(),
    ]);
    sshd.expect_success(&down);
    assert_same_tree(&tree, &local.join("my tree"));
}

// ---------------------------------------------------------------------------
// Errors

#[test]
fn download_of_a_missing_file_fails_cleanly_naming_it() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let missing = sshd.work_dir().join("does-not-exist.txt");
    let local = make_dir(&sshd.work_dir().join("local"));

    let outcome = sshd.scp([sshd.remote(&user, &missing).as_os_str(), local.as_os_str()]);
    sshd.expect_failure(&outcome);

    let expected = format!("{}: No such file or directory", missing.display());
    assert!(
        outcome.stderr.contains(&expected),
        "scp's stderr should say {expected:?}\n{outcome}"
    );
    assert!(
        entries_of(&local).is_empty(),
        "nothing may be created locally"
    );
}

#[test]
fn upload_into_a_missing_directory_fails_cleanly_naming_it() {
    let Some(sshd) = start_sshd() else { return };
    let user = sshd.login().name.clone();
    let source = sshd.work_dir().join("file.txt");
    write_file(&source, b"content\n", 0o644);
    let target = sshd.work_dir().join("no-such-dir").join("file.txt");

    let outcome = sshd.scp([source.as_os_str(), &sshd.remote(&user, &target)]);
    sshd.expect_failure(&outcome);

    let expected = format!("{}: No such file or directory", target.display());
    assert!(
        outcome.stderr.contains(&expected),
        "scp's stderr should say {expected:?}\n{outcome}"
    );
    assert!(
        !sshd.work_dir().join("no-such-dir").exists(),
        "the directory must not be created"
    );
}

#[test]
fn upload_into_an_unwritable_directory_is_permission_denied() {
    let Some(sshd) = start_sshd() else { return };
    let Some(account) = sshd.unprivileged_login() else {
        return;
    };
    let source = sshd.work_dir().join("payload.txt");
    write_file(&source, b"payload\n", 0o644);
    // Owned by the test process, r-x for everyone else: the login cannot
    // create anything in it (nor can its owner when that is not root).
    let locked = make_dir(&sshd.work_dir().join("locked"));
    set_mode(&locked, 0o555);

    let outcome = sshd.scp([source.as_os_str(), &sshd.remote(&account.name, &locked)]);
    sshd.expect_failure(&outcome);

    assert!(
        outcome.stderr.contains("Permission denied"),
        "scp's stderr should say Permission denied\n{outcome}"
    );
    assert!(
        outcome.stderr.contains("payload.txt"),
        "the message should name the file\n{outcome}"
    );
    assert!(
        entries_of(&locked).is_empty(),
        "nothing may be created, not even a temporary file"
    );
    set_mode(&locked, 0o755);
}

#[test]
fn upload_over_a_file_the_login_cannot_write_is_permission_denied() {
    let Some(sshd) = start_sshd() else { return };
    let Some(account) = sshd.unprivileged_login() else {
        return;
    };
    let source = sshd.work_dir().join("protected.txt");
    write_file(&source, b"attempted replacement\n", 0o644);
    // The directory belongs to the login, so only the file's own permission
    // stands in the way: replacing it by rename must not sidestep that.
    let drop_dir = make_dir(&sshd.work_dir().join("drop"));
    let target = drop_dir.join("protected.txt");
    write_file(&target, b"original\n", 0o444);
    std::os::unix::fs::chown(&drop_dir, Some(account.uid), Some(account.gid))
        .expect("chown drop dir");

    let outcome = sshd.scp([source.as_os_str(), &sshd.remote(&account.name, &drop_dir)]);
    sshd.expect_failure(&outcome);

    assert!(
        outcome.stderr.contains("Permission denied"),
        "scp's stderr should say Permission denied\n{outcome}"
    );
    assert_eq!(
        fs::read(&target).expect("read target"),
        b"original\n",
        "the old file must stay as it was"
    );
    assert_eq!(mode_of(&target), 0o444);
    assert_eq!(
        entries_of(&drop_dir),
        ["protected.txt"],
        "no temporary file may remain"
    );
}

#[test]
fn download_of_an_unreadable_file_is_permission_denied() {
    let Some(sshd) = start_sshd() else { return };
    let Some(account) = sshd.unprivileged_login() else {
        return;
    };
    let secret = make_dir(&sshd.work_dir().join("remote")).join("secret.txt");
    write_file(&secret, b"not for you\n", 0o600);
    if account.uid == sshd::effective_uid() {
        // Not root: make it unreadable for its owner too.
        set_mode(&secret, 0o000);
    }
    let local = make_dir(&sshd.work_dir().join("local"));

    let outcome = sshd.scp([
        sshd.remote(&account.name, &secret).as_os_str(),
        local.as_os_str(),
    ]);
    sshd.expect_failure(&outcome);

    let expected = format!("{}: Permission denied", secret.display());
    assert!(
        outcome.stderr.contains(&expected),
        "scp's stderr should say {expected:?}\n{outcome}"
    );
    assert!(
        entries_of(&local).is_empty(),
        "nothing may be created locally"
    );
}
