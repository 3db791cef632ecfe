//! End-to-end SFTP (issue 13, "real clients"): OpenSSH's `scp` without `-O`
//! (SFTP since OpenSSH 9.0) and `sftp -b` talk through a private sshd on
//! 127.0.0.1 whose `Subsystem sftp` is our binary with `--sftp`; some cases
//! run again with OpenSSH's own sftp-server as the subsystem to compare.
//! Results are checked on the server side's filesystem, byte for byte.
//! Without sshd or the clients the tests skip, except under `CI`.

mod sshd;

use std::collections::BTreeMap;
use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sshd::{PrivateSshd, SshdOptions, unavailable};

fn our_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_scp-server"))
}

/// A private sshd whose `sftp` subsystem is `PROGRAM ARGS`.
fn start_with_subsystem(program: &Path, args: &str) -> Option<PrivateSshd> {
    if !Path::new("/usr/bin/sftp").exists() {
        return unavailable("/usr/bin/sftp is missing (install openssh-client)");
    }
    if !program.exists() {
        return unavailable(&format!("{} is missing", program.display()));
    }
    let options = SshdOptions {
        extra_config: format!("Subsystem sftp {} {args}\n", program.display()),
        ..SshdOptions::default()
    };
    PrivateSshd::start_with(&our_binary(), &options)
}

/// Our binary as the unrestricted SFTP subsystem.
fn start_ours() -> Option<PrivateSshd> {
    start_with_subsystem(&our_binary(), "--sftp")
}

fn past_time(hours: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000_000 + hours * 3600)
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

fn set_mtime(path: &Path, time: SystemTime) {
    let file = File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_times(FileTimes::new().set_modified(time).set_accessed(time))
        .unwrap_or_else(|e| panic!("set times of {}: {e}", path.display()));
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path)
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
    time.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Deterministic non-repeating bytes (xorshift64*).
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn dir(path: PathBuf) -> PathBuf {
    fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    path
}

/// Kind, content, mode (and with `times` mtime) of every entry below `root`.
fn snapshot(root: &Path, times: bool) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, rel: &Path, times: bool, out: &mut BTreeMap<PathBuf, String>) {
        let path = root.join(rel);
        let meta = fs::symlink_metadata(&path).unwrap();
        let kind = if meta.is_dir() {
            "dir".to_string()
        } else if meta.is_file() {
            format!("file {:?}", read(&path))
        } else if meta.file_type().is_symlink() {
            format!("link {:?}", fs::read_link(&path).unwrap())
        } else {
            "other".to_string()
        };
        let mut state = format!("{kind} mode {:o}", meta.mode() & 0o7777);
        if times {
            state.push_str(&format!(" mtime {}", meta.mtime()));
        }
        out.insert(rel.to_path_buf(), state);
        if meta.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for name in names {
                walk(root, &rel.join(name), times, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), times, &mut out);
    out.remove(Path::new(""));
    out
}

/// A tree with an empty directory, a zero-byte file, a nested file, varied
/// modes and past mtimes (set deepest first).
fn build_tree(root: &Path) {
    let sub = dir(root.join("sub"));
    dir(root.join("empty dir"));
    fs::write(root.join("top.txt"), b"top level\n").unwrap();
    fs::write(root.join("zero"), b"").unwrap();
    fs::write(sub.join("data.bin"), pseudo_random(70_000, 3)).unwrap();
    set_mode(&root.join("top.txt"), 0o640);
    set_mode(&root.join("zero"), 0o600);
    set_mode(&sub.join("data.bin"), 0o604);
    for (hour, name) in ["top.txt", "zero", "sub/data.bin"].iter().enumerate() {
        set_mtime(&root.join(name), past_time(hour as u64));
    }
    for (hour, name) in ["sub", "empty dir"].iter().enumerate() {
        set_mode(&root.join(name), 0o750);
        set_mtime(&root.join(name), past_time(10 + hour as u64));
    }
}

// ---------------------------------------------------------------------------
// scp without -O (SFTP mode)

#[test]
fn scp_sftp_mode_uploads_and_downloads_one_file_byte_for_byte() {
    let Some(sshd) = start_ours() else { return };
    let user = sshd.login().name.clone();
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    let content = pseudo_random(100_001, 1);
    fs::write(local.join("up.bin"), &content).unwrap();
    let out = sshd.scp_over_sftp([
        local.join("up.bin").into_os_string(),
        sshd.remote(&user, remote.join("up.bin")),
    ]);
    sshd.expect_success(&out);
    assert_eq!(read(&remote.join("up.bin")), content);

    fs::write(remote.join("down.txt"), b"from the server\n").unwrap();
    let out = sshd.scp_over_sftp([
        sshd.remote(&user, remote.join("down.txt")),
        local.join("down.txt").into_os_string(),
    ]);
    sshd.expect_success(&out);
    assert_eq!(read(&local.join("down.txt")), b"from the server\n");
}

#[test]
fn scp_sftp_mode_uploads_several_files_into_a_directory() {
    let Some(sshd) = start_ours() else { return };
    let user = sshd.login().name.clone();
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    fs::write(local.join("a.txt"), b"alpha\n").unwrap();
    fs::write(local.join("b.txt"), b"").unwrap();
    fs::write(local.join("c.bin"), pseudo_random(5000, 2)).unwrap();
    let out = sshd.scp_over_sftp([
        local.join("a.txt").into_os_string(),
        local.join("b.txt").into_os_string(),
        local.join("c.bin").into_os_string(),
        sshd.remote(&user, &remote),
    ]);
    sshd.expect_success(&out);
    let mut names: Vec<_> = fs::read_dir(&remote)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "b.txt", "c.bin"]);
    assert_eq!(read(&remote.join("a.txt")), b"alpha\n");
    assert_eq!(read(&remote.join("b.txt")), b"");
    assert_eq!(read(&remote.join("c.bin")), pseudo_random(5000, 2));
}

#[test]
fn scp_sftp_mode_overwrite_of_a_larger_file_leaves_no_tail() {
    let Some(sshd) = start_ours() else { return };
    let user = sshd.login().name.clone();
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    fs::write(remote.join("f"), pseudo_random(50_000, 9)).unwrap();
    fs::write(local.join("f"), b"short\n").unwrap();
    let out = sshd.scp_over_sftp([
        local.join("f").into_os_string(),
        sshd.remote(&user, remote.join("f")),
    ]);
    sshd.expect_success(&out);
    assert_eq!(read(&remote.join("f")), b"short\n");
}

#[test]
fn scp_sftp_mode_p_preserves_mode_and_mtime_both_ways() {
    let Some(sshd) = start_ours() else { return };
    let user = sshd.login().name.clone();
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    fs::write(local.join("up"), b"up\n").unwrap();
    set_mode(&local.join("up"), 0o751);
    set_mtime(&local.join("up"), past_time(5));
    let out = sshd.scp_over_sftp([
        "-p".into(),
        local.join("up").into_os_string(),
        sshd.remote(&user, remote.join("up")),
    ]);
    sshd.expect_success(&out);
    assert_eq!(read(&remote.join("up")), b"up\n");
    assert_eq!(mode_of(&remote.join("up")), 0o751);
    assert_eq!(mtime_of(&remote.join("up")), seconds(past_time(5)));

    fs::write(remote.join("down"), b"down\n").unwrap();
    set_mode(&remote.join("down"), 0o604);
    set_mtime(&remote.join("down"), past_time(7));
    let out = sshd.scp_over_sftp([
        "-p".into(),
        sshd.remote(&user, remote.join("down")),
        local.join("down").into_os_string(),
    ]);
    sshd.expect_success(&out);
    assert_eq!(read(&local.join("down")), b"down\n");
    assert_eq!(mode_of(&local.join("down")), 0o604);
    assert_eq!(mtime_of(&local.join("down")), seconds(past_time(7)));
}

#[test]
fn scp_sftp_mode_r_p_copies_a_tree_up_and_down_with_empty_dir_and_zero_byte_file() {
    let Some(sshd) = start_ours() else { return };
    let user = sshd.login().name.clone();
    let work = sshd.work_dir();
    let source = dir(work.join("source"));
    build_tree(&source);
    let remote = dir(work.join("remote"));
    let out = sshd.scp_over_sftp([
        "-r".into(),
        "-p".into(),
        source.clone().into_os_string(),
        sshd.remote(&user, remote.join("tree")),
    ]);
    sshd.expect_success(&out);
    assert_eq!(
        snapshot(&remote.join("tree"), true),
        snapshot(&source, true)
    );

    let back = dir(work.join("back"));
    let out = sshd.scp_over_sftp([
        "-r".into(),
        "-p".into(),
        sshd.remote(&user, remote.join("tree")),
        back.join("tree").into_os_string(),
    ]);
    sshd.expect_success(&out);
    assert_eq!(snapshot(&back.join("tree"), true), snapshot(&source, true));

    // Without -p: content and structure still arrive.
    let out = sshd.scp_over_sftp([
        "-r".into(),
        source.clone().into_os_string(),
        sshd.remote(&user, remote.join("plain")),
    ]);
    sshd.expect_success(&out);
    let strip = |m: BTreeMap<PathBuf, String>| -> Vec<(PathBuf, String)> {
        m.into_iter()
            .map(|(k, v)| (k, v.split(" mode ").next().unwrap().to_string()))
            .collect()
    };
    assert_eq!(
        strip(snapshot(&remote.join("plain"), false)),
        strip(snapshot(&source, false))
    );
}

#[test]
fn scp_sftp_mode_handles_names_with_spaces_and_utf8() {
    let Some(sshd) = start_ours() else { return };
    let user = sshd.login().name.clone();
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    for name in ["with space.txt", "grüße ☃.txt"] {
        fs::write(local.join(name), name.as_bytes()).unwrap();
        let out = sshd.scp_over_sftp([
            local.join(name).into_os_string(),
            sshd.remote(&user, remote.join(name)),
        ]);
        sshd.expect_success(&out);
        assert_eq!(read(&remote.join(name)), name.as_bytes());
        let back = local.join(format!("back {name}"));
        let out = sshd.scp_over_sftp([
            sshd.remote(&user, remote.join(name)),
            back.clone().into_os_string(),
        ]);
        sshd.expect_success(&out);
        assert_eq!(read(&back), name.as_bytes());
    }
}

#[test]
fn scp_sftp_mode_missing_remote_file_fails_with_a_clear_message() {
    let Some(sshd) = start_ours() else { return };
    let user = sshd.login().name.clone();
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let out = sshd.scp_over_sftp([
        sshd.remote(&user, work.join("no-such-file")),
        local.join("x").into_os_string(),
    ]);
    sshd.expect_failure(&out);
    assert!(
        out.stderr.contains("No such file"),
        "unclear message\n{out}"
    );
    assert!(!local.join("x").exists());
}

#[test]
fn scp_sftp_mode_64_mib_file_round_trips_unchanged() {
    let Some(sshd) = start_ours() else { return };
    let user = sshd.login().name.clone();
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    let content = pseudo_random(64 << 20, 64);
    fs::write(local.join("big"), &content).unwrap();
    let out = sshd.scp_over_sftp([
        local.join("big").into_os_string(),
        sshd.remote(&user, remote.join("big")),
    ]);
    sshd.expect_success(&out);
    assert!(read(&remote.join("big")) == content, "upload differs");
    let out = sshd.scp_over_sftp([
        sshd.remote(&user, remote.join("big")),
        local.join("back").into_os_string(),
    ]);
    sshd.expect_success(&out);
    assert!(read(&local.join("back")) == content, "download differs");
}
