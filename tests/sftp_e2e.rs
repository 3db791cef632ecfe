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

use sshd::{Outcome, PrivateSshd, ScratchDir, SshdOptions, unavailable};

const REFERENCE_SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

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

// ---------------------------------------------------------------------------
// sftp -b

/// `sftp -b` with `lcd LOCAL` first, so local names are relative to it.
fn batch(sshd: &PrivateSshd, local: &Path, commands: &str) -> Outcome {
    let user = sshd.login().name.clone();
    sshd.sftp_batch(&user, &format!("lcd \"{}\"\n{commands}", local.display()))
}

#[test]
fn sftp_batch_put_and_get_with_and_without_p_and_overwrite() {
    let Some(sshd) = start_ours() else { return };
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    let r = remote.display();
    fs::write(local.join("a"), pseudo_random(33_333, 4)).unwrap();
    fs::write(local.join("p"), b"preserved up\n").unwrap();
    set_mode(&local.join("p"), 0o710);
    set_mtime(&local.join("p"), past_time(20));
    fs::write(remote.join("b"), b"remote b\n").unwrap();
    fs::write(remote.join("q"), b"preserved down\n").unwrap();
    set_mode(&remote.join("q"), 0o602);
    set_mtime(&remote.join("q"), past_time(21));
    fs::write(remote.join("big"), pseudo_random(40_000, 5)).unwrap();
    fs::write(local.join("small"), b"new\n").unwrap();
    let out = batch(
        &sshd,
        &local,
        &format!("put a {r}/a\nget {r}/b b\nput -p p {r}/p\nget -p {r}/q q\nput small {r}/big\n"),
    );
    sshd.expect_success(&out);
    assert_eq!(read(&remote.join("a")), pseudo_random(33_333, 4));
    assert_eq!(read(&local.join("b")), b"remote b\n");
    assert_eq!(read(&remote.join("p")), b"preserved up\n");
    assert_eq!(mode_of(&remote.join("p")), 0o710);
    assert_eq!(mtime_of(&remote.join("p")), seconds(past_time(20)));
    assert_eq!(read(&local.join("q")), b"preserved down\n");
    assert_eq!(mode_of(&local.join("q")), 0o602);
    assert_eq!(mtime_of(&local.join("q")), seconds(past_time(21)));
    assert_eq!(read(&remote.join("big")), b"new\n");
}

#[test]
fn sftp_batch_put_r_and_get_r_copy_a_tree_both_ways() {
    let Some(sshd) = start_ours() else { return };
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let source = dir(local.join("tree"));
    build_tree(&source);
    let remote = dir(work.join("remote"));
    let back = dir(work.join("back"));
    let r = remote.display();
    let out = batch(
        &sshd,
        &local,
        &format!(
            "put -r -p tree {r}/tree\nlcd {}\nget -r -p {r}/tree tree\n",
            back.display()
        ),
    );
    sshd.expect_success(&out);
    assert_eq!(
        snapshot(&remote.join("tree"), true),
        snapshot(&source, true)
    );
    assert_eq!(snapshot(&back.join("tree"), true), snapshot(&source, true));
}

#[test]
fn sftp_batch_rename_rm_mkdir_rmdir_chmod_symlink_ls_and_df() {
    let Some(sshd) = start_ours() else { return };
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    let r = remote.display();
    fs::write(local.join("one"), b"1\n").unwrap();
    fs::write(local.join("two"), b"2\n").unwrap();
    let out = batch(
        &sshd,
        &local,
        &format!(
            "put one {r}/one\nput two {r}/two\nmkdir {r}/made\nmkdir {r}/gone\nrmdir {r}/gone\n\
             rename {r}/one {r}/made/renamed\nrm {r}/two\nput two {r}/kept\nchmod 640 {r}/kept\n\
             ln -s kept {r}/link\nls -l {r}\nls -l {r}/made\ndf {r}\n"
        ),
    );
    sshd.expect_success(&out);
    assert_eq!(read(&remote.join("made/renamed")), b"1\n");
    assert!(!remote.join("one").exists());
    assert!(!remote.join("two").exists());
    assert!(!remote.join("gone").exists());
    assert!(remote.join("made").is_dir());
    assert_eq!(mode_of(&remote.join("kept")), 0o640);
    assert_eq!(
        fs::read_link(remote.join("link")).unwrap(),
        Path::new("kept")
    );
    let listing = out.stdout_text();
    for name in ["made", "kept", "link", "renamed"] {
        assert!(listing.contains(name), "ls -l lacks {name}\n{out}");
    }
    assert!(
        listing.contains("-rw-r-----"),
        "ls -l lacks kept's mode\n{out}"
    );
    // df prints a header with "Size" and one line of figures (statvfs).
    assert!(
        listing.contains("Size") && listing.contains("Avail"),
        "df\n{out}"
    );
}

#[test]
fn sftp_batch_reput_and_reget_resume_from_the_partial_file() {
    let Some(sshd) = start_ours() else { return };
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    let r = remote.display();
    let up = pseudo_random(200_000, 11);
    let down = pseudo_random(150_000, 12);
    fs::write(local.join("up"), &up).unwrap();
    fs::write(remote.join("up"), &up[..100_000]).unwrap();
    fs::write(remote.join("down"), &down).unwrap();
    fs::write(local.join("down"), &down[..75_000]).unwrap();
    let out = batch(
        &sshd,
        &local,
        &format!("reput up {r}/up\nreget {r}/down down\n"),
    );
    sshd.expect_success(&out);
    assert!(read(&remote.join("up")) == up, "reput result differs");
    assert!(read(&local.join("down")) == down, "reget result differs");
}

// ---------------------------------------------------------------------------
// The same batch against OpenSSH's sftp-server

/// Runs one batch in a fresh sshd with the given subsystem, in a remote tree
/// seeded with one file; returns the exit code and the resulting tree (local
/// and remote, modes left out: they follow the process umask of each server).
fn run_case(program: &Path, args: &str, commands: &str) -> Option<(Option<i32>, String)> {
    let sshd = start_with_subsystem(program, args)?;
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    fs::write(local.join("up.txt"), b"uploaded\n").unwrap();
    fs::write(remote.join("seed.txt"), b"seed\n").unwrap();
    let commands = commands.replace("REMOTE", &remote.display().to_string());
    let out = batch(&sshd, &local, &commands);
    assert!(!out.timed_out, "{out}");
    let mut listing = out
        .stdout_text()
        .replace(&remote.display().to_string(), "REMOTE")
        .replace(&local.display().to_string(), "LOCAL");
    // `ls -1` prints names only, so owners and dates are not compared.
    listing.retain(|c| c != '\r');
    let strip = |m: BTreeMap<PathBuf, String>| -> String {
        m.into_iter()
            .map(|(k, v)| format!("{} {}\n", k.display(), v.split(" mode ").next().unwrap()))
            .collect()
    };
    Some((
        out.exit_code(),
        format!(
            "remote:\n{}local:\n{}stdout:\n{listing}",
            strip(snapshot(&remote, false)),
            strip(snapshot(&local, false))
        ),
    ))
}

#[test]
fn sftp_batch_gives_the_same_outcome_as_openssh_sftp_server() {
    let cases = [
        "put up.txt REMOTE/up.txt\nget REMOTE/seed.txt got.txt\nls -1 REMOTE\n",
        "mkdir REMOTE/d\nrename REMOTE/seed.txt REMOTE/d/moved.txt\nls -1 REMOTE/d\n",
        "rm REMOTE/seed.txt\nls -1 REMOTE\n",
        "put up.txt REMOTE/no/such/dir/up.txt\nls -1 REMOTE\n",
        "-get REMOTE/missing got\n-rm REMOTE/missing\nmkdir REMOTE/seed.txt\n",
        "rename REMOTE/seed.txt REMOTE/d/x\n",
    ];
    if !Path::new(REFERENCE_SFTP_SERVER).exists() {
        unavailable::<()>("OpenSSH's sftp-server is missing (install openssh-server)");
        return;
    }
    let mut failures = 0;
    for case in cases {
        let Some(ours) = run_case(&our_binary(), "--sftp", case) else {
            return;
        };
        let Some(reference) = run_case(Path::new(REFERENCE_SFTP_SERVER), "", case) else {
            return;
        };
        assert_eq!(ours, reference, "batch:\n{case}");
        if ours.0 != Some(0) {
            failures += 1;
        }
    }
    // The last three batches each end in a failing command.
    assert_eq!(failures, 3, "failing batches compared");
}

// ---------------------------------------------------------------------------
// Restricted subsystems

#[test]
fn sftp_write_only_root_accepts_put_and_refuses_get_and_ls() {
    let root = ScratchDir::new("sftp-e2e-root").unwrap();
    let args = format!("--sftp --root {} --write-only", root.path().display());
    let Some(sshd) = start_with_subsystem(&our_binary(), &args) else {
        return;
    };
    let local = dir(sshd.work_dir().join("local"));
    fs::write(local.join("up"), b"write only\n").unwrap();
    fs::write(root.path().join("secret"), b"not readable\n").unwrap();
    let out = batch(&sshd, &local, "put up /up\n");
    sshd.expect_success(&out);
    // "/" is the root: the file lands inside it, proving the subsystem is
    // ours with its flags.
    assert_eq!(read(&root.path().join("up")), b"write only\n");

    let out = batch(&sshd, &local, "get /secret got\n");
    sshd.expect_failure(&out);
    assert!(!local.join("got").exists());
    let out = batch(&sshd, &local, "ls /\n");
    sshd.expect_failure(&out);
    assert!(!out.stdout_text().contains("secret"), "{out}");
}

#[test]
fn sftp_read_only_root_allows_get_and_refuses_put_creating_nothing() {
    let root = ScratchDir::new("sftp-e2e-root").unwrap();
    let args = format!("--sftp --root {} --read-only", root.path().display());
    let Some(sshd) = start_with_subsystem(&our_binary(), &args) else {
        return;
    };
    let local = dir(sshd.work_dir().join("local"));
    fs::write(local.join("up"), b"refused\n").unwrap();
    fs::write(root.path().join("file"), b"readable\n").unwrap();
    let before = snapshot(root.path(), true);
    let out = batch(&sshd, &local, "get /file got\nls /\n");
    sshd.expect_success(&out);
    assert_eq!(read(&local.join("got")), b"readable\n");
    assert!(out.stdout_text().contains("file"), "{out}");
    for command in ["put up /up", "mkdir /d", "rm /file", "rename /file /moved"] {
        let out = batch(&sshd, &local, &format!("{command}\n"));
        sshd.expect_failure(&out);
    }
    assert_eq!(snapshot(root.path(), true), before);
}

/// Control for every scp case above: without a Subsystem line the same
/// client command fails, so those cases did go through SFTP, not `scp -t`.
#[test]
fn scp_without_o_needs_the_sftp_subsystem() {
    let Some(sshd) = PrivateSshd::start(&our_binary()) else {
        return;
    };
    let user = sshd.login().name.clone();
    let work = sshd.work_dir();
    let local = dir(work.join("local"));
    let remote = dir(work.join("remote"));
    fs::write(local.join("f"), b"x\n").unwrap();
    let out = sshd.scp_over_sftp([
        local.join("f").into_os_string(),
        sshd.remote(&user, remote.join("f")),
    ]);
    sshd.expect_failure(&out);
    assert!(!remote.join("f").exists());
}
