//! Adversarial SFTP confinement tests (issue 13): `..` and absolute paths,
//! symlinks planted in the root that lead out, client-created symlinks,
//! policy keys over SFTP, a session killed mid-upload, and bounds on what
//! one request can make the server hold. Every confinement case runs once
//! per resolution back-end (`--resolver openat2` and `--resolver walk`), as
//! `nobody`, against `dst/` of a sandbox whose `outside/` and `secret` sit
//! beside the root and must never be read or changed.

mod common;
mod sftp_support;

use std::fs;
use std::time::Duration;

use common::{NOBODY, Sandbox, Tree, User};
use sftp_support::{Attrs, Launch, Reply, Server, Session, pflags, status};

const RESOLVERS: [&str; 2] = ["openat2", "walk"];
const SECRET: &[u8] = b"secret bytes outside the root\n";

/// A sandbox with the root `dst/` holding `x`, and beside it `outside/`
/// (with `outside/f`) and the file `secret`.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new(User::Nobody);
    sandbox
        .file("dst/x", b"inside x\n", 0o644)
        .file("outside/f", SECRET, 0o644)
        .file("outside/x", SECRET, 0o644)
        .file("secret", SECRET, 0o644)
        .file("x", SECRET, 0o644);
    sandbox
}

/// What lies beside the root, to compare before and after.
fn beside_root(sandbox: &Sandbox) -> (Tree, Vec<u8>, Vec<u8>) {
    (
        Tree::of(&sandbox.path("outside")),
        fs::read(sandbox.path("secret")).unwrap(),
        fs::read(sandbox.path("x")).unwrap(),
    )
}

fn assert_outside_untouched(sandbox: &Sandbox, before: &(Tree, Vec<u8>, Vec<u8>)) {
    let after = beside_root(sandbox);
    assert!(
        after.0 == before.0,
        "outside/ changed: {}",
        after.0.differences(&before.0, "after", "before")
    );
    assert_eq!(after.1, before.1, "secret changed");
    assert_eq!(after.2, before.2, "x beside the root changed");
}

fn launch(sandbox: &Sandbox, resolver: &str, extra: &[&str]) -> Session {
    let root = sandbox.path("dst");
    let mut args: Vec<String> = vec![
        "--root".into(),
        root.display().to_string(),
        "--resolver".into(),
        resolver.into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Launch::new(Server::Ours)
        .args(&args)
        .user(NOBODY.0, NOBODY.1)
        .cwd(sandbox.root())
        .timeout(Duration::from_secs(30))
        .start()
}

/// A reply that must not carry data from outside.
fn assert_no_secret(reply: &Reply, what: &str) {
    let leaked = match reply {
        Reply::Data(bytes) | Reply::ExtendedReply(bytes) => {
            bytes.windows(SECRET.len()).any(|w| w == SECRET)
        }
        _ => false,
    };
    assert!(!leaked, "{what}: outside data in {reply:?}");
}

/// A refusal: any STATUS but OK (what each request gives is checked by the
/// callers where the server's answer is fixed).
fn assert_refused(reply: &Reply, what: &str) {
    match reply {
        Reply::Status { code, .. } if *code != status::OK => {}
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

fn read_file(session: &mut Session, path: &str) -> Vec<u8> {
    let handle = session
        .open(path, pflags::READ, &Attrs::none())
        .expect_handle();
    let data = session.read_all(&handle, 32768).expect("read");
    session.close(&handle).expect_ok();
    data
}

fn end(session: Session, resolver: &str) {
    let finished = session.finish();
    assert!(!finished.timed_out, "{resolver}: session hung");
    assert_eq!(
        finished.code(),
        Some(0),
        "{resolver}: {}",
        finished.stderr_text()
    );
}

/// DESIGN.md "Filesystem rules": under a root `..` is allowed while the path
/// stays inside, and a path that would leave is refused, never clamped.
#[test]
fn dot_dot_leaving_the_root_is_refused_by_every_request_and_inside_works() {
    for resolver in RESOLVERS {
        println!("--- resolver {resolver}");
        let sandbox = sandbox();
        sandbox.dir("dst/sub", 0o755);
        let before = beside_root(&sandbox);
        let mut s = launch(&sandbox, resolver, &[]);

        for path in ["/..", "/../..", "..", "../../..", "/sub/../.."] {
            s.realpath(path).expect_status(status::PERMISSION_DENIED);
        }
        for path in [".", "/", "/sub/..", "sub/../."] {
            let names = s.realpath(path).expect_name();
            assert_eq!(names[0].name, b"/", "{resolver}: REALPATH {path}");
        }
        assert_eq!(read_file(&mut s, "/sub/../x"), b"inside x\n", "{resolver}");
        assert_eq!(read_file(&mut s, "sub/../x"), b"inside x\n", "{resolver}");
        for path in [
            "/../x",
            "../x",
            "/../../x",
            "/../secret",
            "/../outside/f",
            "sub/../../outside/f",
        ] {
            let denied = |reply: Reply, what: &str| {
                assert_no_secret(&reply, what);
                assert_eq!(
                    reply.status_code(),
                    Some(status::PERMISSION_DENIED),
                    "{resolver}: {what} {path}: {reply:?}"
                );
            };
            denied(s.open(path, pflags::READ, &Attrs::none()), "OPEN read");
            denied(
                s.open(
                    path,
                    pflags::WRITE | pflags::CREAT | pflags::TRUNC,
                    &Attrs::none(),
                ),
                "OPEN write",
            );
            denied(s.stat(path), "STAT");
            denied(s.lstat(path), "LSTAT");
            denied(s.setstat(path, &Attrs::perms(0o600)), "SETSTAT");
            denied(s.lsetstat(path, &Attrs::perms(0o600)), "lsetstat");
            denied(s.remove(path), "REMOVE");
            denied(s.readlink(path), "READLINK");
            denied(s.rename(path, "/stolen"), "RENAME from");
            denied(s.rename("/x", path), "RENAME to");
            denied(s.posix_rename(path, "/stolen"), "posix-rename from");
            denied(s.posix_rename("/x", path), "posix-rename to");
            denied(s.hardlink(path, "/stolen"), "hardlink from");
            denied(s.hardlink("/x", path), "hardlink to");
            denied(s.expand_path(path), "expand-path");
            denied(s.realpath(path), "REALPATH");
        }
        for path in ["/../outside", "../outside/", "/sub/../../outside"] {
            for reply in [
                s.opendir(path),
                s.mkdir(format!("{path}/new"), &Attrs::none()),
                s.rmdir(path),
                s.statvfs(path),
            ] {
                assert_eq!(
                    reply.status_code(),
                    Some(status::PERMISSION_DENIED),
                    "{resolver}: {path}: {reply:?}"
                );
            }
        }
        // Writes through a '..' that stays inside land inside the root.
        let handle = s
            .open(
                "/sub/../made.txt",
                pflags::WRITE | pflags::CREAT | pflags::TRUNC,
                &Attrs::none(),
            )
            .expect_handle();
        s.write(&handle, 0, b"written inside\n").expect_ok();
        s.close(&handle).expect_ok();
        assert_eq!(
            fs::read(sandbox.path("dst/made.txt")).unwrap(),
            b"written inside\n"
        );
        s.mkdir("/sub/../made", &Attrs::none()).expect_ok();
        assert!(sandbox.path("dst/made").is_dir(), "{resolver}");
        s.rmdir("sub/../made").expect_ok();
        s.rename("/sub/../x", "sub/../x2").expect_ok();
        s.posix_rename("sub/../x2", "/sub/../x").expect_ok();
        assert!(sandbox.path("dst/x").exists(), "{resolver}");
        s.statvfs("/sub/..").expect_extended();
        s.remove("/sub/../made.txt").expect_ok();
        end(s, resolver);
        assert_outside_untouched(&sandbox, &before);
    }
}

#[test]
fn symlinks_planted_in_the_root_leading_out_are_refused_by_every_request() {
    for resolver in RESOLVERS {
        println!("--- resolver {resolver}");
        let sandbox = sandbox();
        let outside = sandbox.path("outside");
        let secret = sandbox.path("secret");
        sandbox
            .symlink("dst/reldir", "../outside")
            .symlink("dst/absdir", &outside)
            .symlink("dst/relfile", "../secret")
            .symlink("dst/absfile", &secret);
        let before = beside_root(&sandbox);
        let mut s = launch(&sandbox, resolver, &[]);
        for link in ["/reldir", "/absdir"] {
            let file = format!("{link}/f");
            for reply in [
                s.open(&file, pflags::READ, &Attrs::none()),
                s.open(&file, pflags::WRITE | pflags::TRUNC, &Attrs::none()),
                s.open(
                    format!("{link}/new"),
                    pflags::WRITE | pflags::CREAT,
                    &Attrs::none(),
                ),
                s.opendir(link),
                s.opendir(format!("{link}/")),
                s.stat(&file),
                s.lstat(&file),
                s.setstat(&file, &Attrs::perms(0o600)),
                s.lsetstat(&file, &Attrs::perms(0o600)),
                s.remove(&file),
                s.mkdir(format!("{link}/d"), &Attrs::none()),
                s.rmdir(format!("{link}/d")),
                s.rename(&file, "/got"),
                s.rename("/x", format!("{link}/x")),
                s.posix_rename(&file, "/got"),
                s.hardlink(&file, "/got"),
                s.readlink(&file),
            ] {
                assert_no_secret(&reply, &file);
                reply.expect_status(status::PERMISSION_DENIED);
            }
            let reply = s.statvfs(link);
            assert_no_secret(&reply, link);
        }
        for link in ["/relfile", "/absfile"] {
            for reply in [
                s.open(link, pflags::READ, &Attrs::none()),
                s.open(link, pflags::WRITE | pflags::TRUNC, &Attrs::none()),
                s.stat(link),
                s.setstat(link, &Attrs::perms(0o600)),
            ] {
                assert_no_secret(&reply, link);
                reply.expect_status(status::PERMISSION_DENIED);
            }
        }
        assert!(!sandbox.path("dst/got").exists(), "{resolver}");
        end(s, resolver);
        assert_outside_untouched(&sandbox, &before);
    }
}

fn upload(session: &mut Session, path: &str, data: &[u8]) -> Reply {
    let reply = session.open(
        path,
        pflags::WRITE | pflags::CREAT | pflags::TRUNC,
        &Attrs::none(),
    );
    let Reply::Handle(handle) = reply else {
        return reply;
    };
    let written = session.write(&handle, 0, data);
    let closed = session.close(&handle);
    if written.status_code() != Some(status::OK) {
        return written;
    }
    closed
}

#[test]
fn client_symlinks_point_downward_only_and_a_planted_escape_under_a_dangling_link_is_refused() {
    for resolver in RESOLVERS {
        println!("--- resolver {resolver}");
        let sandbox = sandbox();
        let before = beside_root(&sandbox);
        let mut s = launch(&sandbox, resolver, &["--allow-links"]);
        s.symlink("x", "/down").expect_ok();
        assert_eq!(
            fs::read_link(sandbox.path("dst/down")).unwrap().as_os_str(),
            "x"
        );
        assert_eq!(read_file(&mut s, "/down"), b"inside x\n", "{resolver}");
        let absolute = sandbox.path("secret");
        for target in [absolute.to_str().unwrap(), "/x", "../secret", "sub/../x"] {
            let reply = s.symlink(target, "/bad");
            assert_refused(&reply, target);
            assert!(
                fs::symlink_metadata(sandbox.path("dst/bad")).is_err(),
                "{resolver}: {target} made a link"
            );
        }
        // A dangling downward link, then an attacker with filesystem access
        // plants an escaping symlink at its target's first component.
        s.symlink("later/f", "/dangling").expect_ok();
        sandbox.symlink("dst/later", "../outside");
        let reply = s.open("/dangling", pflags::READ, &Attrs::none());
        assert_refused(&reply, "open through the planted link");
        let reply = s.open("/dangling", pflags::WRITE | pflags::TRUNC, &Attrs::none());
        assert_refused(&reply, "write through the planted link");
        let reply = s.stat("/dangling");
        assert_refused(&reply, "stat through the planted link");
        // hardlink of a file outside through an escaping path.
        assert_refused(&s.hardlink("/later/f", "/hl"), "hardlink");
        assert!(!sandbox.path("dst/hl").exists());
        end(s, resolver);
        assert_outside_untouched(&sandbox, &before);

        // Restricted without --allow-links: no client symlinks at all.
        let mut s = launch(&sandbox, resolver, &[]);
        assert_refused(&s.symlink("x", "/down2"), "SYMLINK without --allow-links");
        assert!(fs::symlink_metadata(sandbox.path("dst/down2")).is_err());
        end(s, resolver);
    }
}

#[test]
fn rename_out_onto_a_denied_name_or_of_an_escaping_symlink_is_refused() {
    for resolver in RESOLVERS {
        println!("--- resolver {resolver}");
        let sandbox = sandbox();
        sandbox.symlink("dst/out", "../outside");
        let before = beside_root(&sandbox);
        let mut s = launch(&sandbox, resolver, &["--deny", "*.key"]);
        assert_refused(&s.rename("/x", "/out/x"), "rename into a link out");
        assert_refused(&s.rename("/x", "/a.key"), "rename onto a denied name");
        assert_refused(&s.posix_rename("/x", "/b.key"), "posix-rename denied");
        assert_refused(&upload(&mut s, "/c.key", b"k"), "upload denied");
        // Moving the escaping link itself: it must still not lead out.
        s.mkdir("/deeper", &Attrs::none()).expect_ok();
        // Moving the escaping link itself is refused (it would still lead
        // out from its new place), and the link stays where it was.
        s.rename("/out", "/deeper/out")
            .expect_status(status::PERMISSION_DENIED);
        s.posix_rename("/out", "/deeper/out")
            .expect_status(status::PERMISSION_DENIED);
        assert!(fs::symlink_metadata(sandbox.path("dst/deeper/out")).is_err());
        assert!(fs::symlink_metadata(sandbox.path("dst/out")).is_ok());
        assert_eq!(fs::read(sandbox.path("dst/x")).unwrap(), b"inside x\n");
        for name in ["a.key", "b.key", "c.key"] {
            assert!(!sandbox.path("dst").join(name).exists(), "{name}");
        }
        end(s, resolver);
        assert_outside_untouched(&sandbox, &before);
    }
}

#[test]
fn opening_a_fifo_or_a_socket_for_reading_does_not_hang() {
    for resolver in RESOLVERS {
        println!("--- resolver {resolver}");
        let sandbox = sandbox();
        sandbox.fifo("dst/fifo", 0o644).socket("dst/sock");
        let root = sandbox.path("dst");
        let mut s = Launch::new(Server::Ours)
            .args(&["--root", root.to_str().unwrap(), "--resolver", resolver])
            .user(NOBODY.0, NOBODY.1)
            .timeout(Duration::from_secs(5))
            .start();
        for path in ["/fifo", "/sock"] {
            let reply = s.open(path, pflags::READ, &Attrs::none());
            println!("{resolver}: OPEN {path} -> {reply:?}");
            reply.expect_status(status::PERMISSION_DENIED);
        }
        end(s, resolver);
    }
}

#[test]
fn every_policy_key_applies_over_sftp() {
    for resolver in RESOLVERS {
        println!("--- resolver {resolver}");
        let sandbox = sandbox();
        sandbox.dir("dst/d", 0o755).symlink("dst/lnk", "x");

        let mut s = launch(&sandbox, resolver, &["--read-only"]);
        assert_eq!(read_file(&mut s, "/x"), b"inside x\n");
        for reply in [
            s.open("/x", pflags::WRITE, &Attrs::none()),
            s.open("/n", pflags::WRITE | pflags::CREAT, &Attrs::none()),
            s.remove("/x"),
            s.mkdir("/m", &Attrs::none()),
            s.rmdir("/d"),
            s.rename("/x", "/y"),
            s.setstat("/x", &Attrs::perms(0o600)),
        ] {
            reply.expect_status(status::PERMISSION_DENIED);
        }
        end(s, resolver);
        assert_eq!(fs::read(sandbox.path("dst/x")).unwrap(), b"inside x\n");
        assert!(!sandbox.path("dst/n").exists() && !sandbox.path("dst/m").exists());

        let mut s = launch(&sandbox, resolver, &["--write-only"]);
        s.open("/x", pflags::READ, &Attrs::none())
            .expect_status(status::PERMISSION_DENIED);
        s.opendir("/").expect_status(status::PERMISSION_DENIED);
        upload(&mut s, "/up", b"uploaded\n").expect_ok();
        s.open("/up", pflags::WRITE | pflags::READ, &Attrs::none())
            .expect_status(status::PERMISSION_DENIED);
        let handle = s.open("/up", pflags::WRITE, &Attrs::none()).expect_handle();
        assert_refused(&s.read(&handle, 0, 100), "READ under --write-only");
        s.close(&handle).expect_ok();
        end(s, resolver);
        assert_eq!(fs::read(sandbox.path("dst/up")).unwrap(), b"uploaded\n");

        let mut s = launch(&sandbox, resolver, &["--no-overwrite"]);
        assert_refused(&upload(&mut s, "/x", b"clobber"), "no-overwrite");
        upload(&mut s, "/fresh", b"new\n").expect_ok();
        end(s, resolver);
        assert_eq!(fs::read(sandbox.path("dst/x")).unwrap(), b"inside x\n");

        let mut s = launch(&sandbox, resolver, &["--no-symlinks"]);
        assert_refused(&s.open("/lnk", pflags::READ, &Attrs::none()), "no-symlinks");
        end(s, resolver);

        let mut s = launch(&sandbox, resolver, &["--max-file-size", "10"]);
        let handle = s
            .open(
                "/big",
                pflags::WRITE | pflags::CREAT | pflags::TRUNC,
                &Attrs::none(),
            )
            .expect_handle();
        assert_refused(&s.write(&handle, 0, b"eleven bytes"), "max-file-size");
        let _ = s.close(&handle);
        upload(&mut s, "/small", b"ten bytes.").expect_ok();
        end(s, resolver);
        assert!(
            !sandbox.path("dst/big").exists(),
            "over-size upload published"
        );
        assert_eq!(fs::read(sandbox.path("dst/small")).unwrap(), b"ten bytes.");

        let mut s = launch(&sandbox, resolver, &["--umask", "077"]);
        let handle = s
            .open(
                "/masked",
                pflags::WRITE | pflags::CREAT,
                &Attrs::perms(0o666),
            )
            .expect_handle();
        s.close(&handle).expect_ok();
        s.mkdir("/maskdir", &Attrs::perms(0o777)).expect_ok();
        end(s, resolver);
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &str| fs::metadata(sandbox.path(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("dst/masked"), 0o600, "{resolver}");
        assert_eq!(mode("dst/maskdir"), 0o700, "{resolver}");
    }
}

fn kill_session(session: Session) {
    let pid = nix::unistd::Pid::from_raw(session.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let finished = session.wait_exit();
    assert_eq!(finished.signal(), Some(9), "{}", finished.stderr_text());
}

#[test]
fn a_session_killed_before_close_publishes_nothing() {
    for resolver in RESOLVERS {
        println!("--- resolver {resolver}");
        let sandbox = sandbox();
        let mut s = launch(&sandbox, resolver, &[]);
        let handle = s
            .open("/x", pflags::WRITE | pflags::TRUNC, &Attrs::none())
            .expect_handle();
        s.write(&handle, 0, b"half of a new ver").expect_ok();
        kill_session(s);
        assert_eq!(fs::read(sandbox.path("dst/x")).unwrap(), b"inside x\n");

        let mut s = launch(&sandbox, resolver, &[]);
        let handle = s
            .open("/new", pflags::WRITE | pflags::CREAT, &Attrs::none())
            .expect_handle();
        s.write(&handle, 0, b"partial").expect_ok();
        kill_session(s);
        assert!(
            fs::symlink_metadata(sandbox.path("dst/new")).is_err(),
            "{resolver}: a killed upload left the name"
        );
    }
}

/// The server's peak resident set (VmHWM of /proc/PID/status), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

/// limits@openssh.com: max packet, read, write lengths and open handles.
fn limits(session: &mut Session) -> [u64; 4] {
    let body = session.limits().expect_extended();
    let mut reader = sftp_support::Reader::new(&body);
    [reader.u64(), reader.u64(), reader.u64(), reader.u64()]
}

const MIB: u64 = 1024;

#[test]
fn a_read_of_four_gib_gets_at_most_the_advertised_read_length() {
    for resolver in RESOLVERS {
        let sandbox = sandbox();
        sandbox.file("dst/large", &vec![7u8; 3 << 20], 0o644);
        let mut s = launch(&sandbox, resolver, &[]);
        let [_, max_read, _, _] = limits(&mut s);
        assert!(max_read > 0 && max_read <= 261_120, "max read {max_read}");
        let handle = s
            .open("/large", pflags::READ, &Attrs::none())
            .expect_handle();
        let data = s.read(&handle, 0, u32::MAX).expect_data();
        assert!(
            !data.is_empty() && data.len() as u64 <= max_read,
            "{}",
            data.len()
        );
        s.close(&handle).expect_ok();
        let rss = peak_rss_kib(s.pid());
        println!(
            "{resolver}: READ 0xFFFFFFFF -> {} bytes, peak RSS {rss} KiB",
            data.len()
        );
        assert!(rss < 64 * MIB, "peak RSS {rss} KiB");
        end(s, resolver);
    }
}

#[test]
fn ten_thousand_opens_are_refused_with_a_status_and_the_session_goes_on() {
    let sandbox = sandbox();
    let mut s = launch(&sandbox, "openat2", &[]);
    let [_, _, _, advertised] = limits(&mut s);
    let mut handles = Vec::new();
    let refusal = loop {
        match s.open("/x", pflags::READ, &Attrs::none()) {
            Reply::Handle(h) => handles.push(h),
            other => break other,
        }
        assert!(handles.len() <= 10_000, "10,000 handles open, no refusal");
    };
    println!(
        "open handles before refusal: {} (limits@openssh.com: {advertised}); refusal {refusal:?}",
        handles.len()
    );
    assert_refused(&refusal, "open past the limit");
    if advertised != 0 {
        assert_eq!(handles.len() as u64, advertised);
    }
    s.close(&handles.pop().unwrap()).expect_ok();
    let h = s.open("/x", pflags::READ, &Attrs::none()).expect_handle();
    assert_eq!(s.read_all(&h, 4096).unwrap(), b"inside x\n");
    for h in handles.iter().chain([&h]) {
        s.close(h).expect_ok();
    }
    end(s, "openat2");
}

#[test]
fn listing_a_directory_of_100000_entries_keeps_the_server_small() {
    let sandbox = sandbox();
    sandbox.dir("dst/many", 0o755);
    let dir = sandbox.path("dst/many");
    for i in 0..100_000 {
        fs::File::create(dir.join(format!("entry-{i:06}"))).unwrap();
    }
    let mut s = launch(&sandbox, "openat2", &[]);
    let names = s.list_dir("/many").expect("READDIR to the end");
    let files = names
        .iter()
        .filter(|n| n.name.starts_with(b"entry-"))
        .count();
    assert_eq!(files, 100_000);
    let rss = peak_rss_kib(s.pid());
    println!("100,000-entry listing: peak RSS of the server {rss} KiB");
    assert!(rss < 64 * MIB, "peak RSS {rss} KiB");
    end(s, "openat2");
}

/// tests/confinement_race.rs over SFTP: a thread swaps a directory in the
/// root with a symlink leading out while the session works beneath it.
#[test]
fn swapping_a_directory_for_an_escaping_symlink_never_reaches_outside() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    for resolver in RESOLVERS {
        println!("--- resolver {resolver}");
        let sandbox = sandbox();
        sandbox
            .dir("dst/swap", 0o777)
            .file("dst/swap/f", b"inside f\n", 0o666);
        let before = beside_root(&sandbox);
        let stop = Arc::new(AtomicBool::new(false));
        let swap = sandbox.path("dst/swap");
        let parked = sandbox.path("dst/parked");
        let swapper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut swaps = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    fs::rename(&swap, &parked).unwrap();
                    std::os::unix::fs::symlink("../outside", &swap).unwrap();
                    std::thread::yield_now();
                    fs::remove_file(&swap).unwrap();
                    fs::rename(&parked, &swap).unwrap();
                    swaps += 1;
                }
                swaps
            })
        };
        let mut s = launch(&sandbox, resolver, &[]);
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut rounds = 0;
        let mut inside_reads = 0;
        while std::time::Instant::now() < deadline {
            let reply = s.open("/swap/f", pflags::READ, &Attrs::none());
            if let Reply::Handle(h) = &reply {
                let data = s.read(h, 0, 4096);
                assert_no_secret(&data, "READ under the swap");
                if data == Reply::Data(b"inside f\n".to_vec()) {
                    inside_reads += 1;
                }
                s.close(h).expect_ok();
            }
            let _ = s.stat("/swap/f");
            let _ = upload(&mut s, "/swap/new", b"raced\n");
            let _ = s.setstat("/swap/f", &Attrs::perms(0o600));
            let _ = s.remove("/swap/new");
            rounds += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.join().unwrap();
        println!("{resolver}: {rounds} rounds, {swaps} swaps, {inside_reads} reads inside");
        // Not vacuous: the session did reach the directory between swaps.
        assert!(inside_reads > 0, "{resolver}: never read the file inside");
        end(s, resolver);
        assert_outside_untouched(&sandbox, &before);
    }
}
