//! One test per CVE or advisory of PROTOCOL.md §f.2 that applies to a
//! server-side scp or a restricted scp shell (docs/cve-ledger.md lists
//! them, with what triggered each and how scp-server is immune). Each test
//! replays the trigger against the built binary and checks the effect the
//! original attack had did not happen, so that it fails on a build
//! without the defence.
//!
//! Every case gets its own directory: `root/` (the target or `--root`),
//! `sibling/` beside it (must stay empty), and `outside.txt`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const OUTSIDE_BYTES: &[u8] = b"OUTSIDE-THE-ROOT\n";

struct World {
    dir: PathBuf,
}

struct Outcome {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    code: Option<i32>,
}

impl World {
    fn new() -> World {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "scp-server-cve-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root/sub")).unwrap();
        fs::create_dir(dir.join("sibling")).unwrap();
        fs::write(dir.join("outside.txt"), OUTSIDE_BYTES).unwrap();
        World { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn root_arg(&self) -> String {
        self.root().display().to_string()
    }

    /// Runs the binary in `root/` with a clean environment and no audit
    /// trail (the trail is not what these tests are about).
    fn run(&self, args: &[&str], stdin: &[u8]) -> Outcome {
        self.spawn(Command::new(env!("CARGO_BIN_EXE_scp-server")), args, stdin)
    }

    /// Runs the binary with RLIMIT_FSIZE at 512 bytes (through `sh`'s
    /// `ulimit`, so no unsafe pre-exec hook): a larger write fails, EFBIG.
    /// SIGXFSZ is ignored (inherited across exec), so the write returns
    /// the error instead of killing the process.
    fn run_fsize_limited(&self, args: &[&str], stdin: &[u8]) -> Outcome {
        let mut command = Command::new("/bin/sh");
        command
            .args(["-c", r#"trap '' XFSZ && ulimit -f 1 && exec "$@""#, "sh"])
            .arg(env!("CARGO_BIN_EXE_scp-server"));
        self.spawn(command, args, stdin)
    }

    fn spawn(&self, mut command: Command, args: &[&str], stdin: &[u8]) -> Outcome {
        let mut child = command
            .args(["--log", "none"])
            .args(args)
            .current_dir(self.root())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("LC_ALL", "C")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn scp-server");
        let mut input = child.stdin.take().unwrap();
        let bytes = stdin.to_vec();
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            let _ = input.write_all(&bytes);
        });
        let out = child.wait_with_output().unwrap();
        let _ = feeder.join();
        Outcome {
            stdout: out.stdout,
            stderr: out.stderr,
            code: out.status.code(),
        }
    }

    /// Nothing was added beside the root, the sibling directory is empty
    /// and the file outside keeps its bytes.
    fn assert_outside_untouched(&self) {
        let mut beside: Vec<_> = fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        beside.sort();
        assert_eq!(beside, ["outside.txt", "root", "sibling"]);
        assert_eq!(fs::read_dir(self.path("sibling")).unwrap().count(), 0);
        assert_eq!(fs::read(self.path("outside.txt")).unwrap(), OUTSIDE_BYTES);
    }

    /// The names directly in the root, sorted.
    fn root_entries(&self) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(self.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A restricted-mode refusal: nonzero exit, a `\x01`/`\x02` line to the
/// client or a line on stderr, and nothing created in the root.
fn assert_refused(world: &World, outcome: &Outcome, before: &[String]) {
    assert_eq!(outcome.code, Some(1), "stderr: {}", text(&outcome.stderr));
    let told = contains(&outcome.stdout, b"\x01") || contains(&outcome.stdout, b"\x02");
    assert!(
        told || !outcome.stderr.is_empty(),
        "refused without a word: {:?}",
        text(&outcome.stdout)
    );
    assert_eq!(
        world.root_entries(),
        before,
        "the refused command created files"
    );
    world.assert_outside_untouched();
}

fn refuse_command(command: &str) {
    let world = World::new();
    let before = world.root_entries();
    let outcome = world.run(
        &["--root", &world.root_arg(), "-c", command],
        b"C0644 1 f\nx\0",
    );
    assert_refused(&world, &outcome, &before);
}

// ---------------------------------------------------------------------------
// The sink's names
// ---------------------------------------------------------------------------

/// CVE-2000-0992, CVE-2004-0175: `..` or `/` in a received name wrote
/// outside the target. Unconfined (no `--root`), so only the name check
/// stands between the record and `root/../x`.
#[test]
fn cve_2004_0175_names_with_dot_dot_or_slash_are_refused() {
    for name in ["..", "../x", "sub/../../x", "/tmp/x"] {
        let world = World::new();
        let stream = format!("C0644 1 {name}\nx\0");
        let target = world.root_arg();
        let outcome = world.run(&["-t", &target], stream.as_bytes());
        assert_eq!(outcome.code, Some(1), "{name}");
        // OpenSSH's fatal run_err: one `\x01` line, then the session ends.
        assert!(
            outcome
                .stdout
                .ends_with(format!("unexpected filename: {name}\n").as_bytes()),
            "{name}: {}",
            text(&outcome.stdout)
        );
        world.assert_outside_untouched();
        assert_eq!(world.root_entries(), ["sub"], "{name}");
    }
}

/// The same 2004 fix: a `D` record without `-r` is refused.
#[test]
fn cve_2004_0175_directory_without_r_is_refused() {
    let world = World::new();
    let target = world.root_arg();
    let outcome = world.run(&["-t", &target], b"D0755 0 d\nC0644 1 f\nx\0E\n");
    assert_eq!(outcome.code, Some(1));
    assert_eq!(world.root_entries(), ["sub"]);
}

/// CVE-2018-20685: `D0777 0 .` (or an empty name) made the sink chmod the
/// target directory itself.
#[test]
fn cve_2018_20685_dot_and_empty_names_are_refused() {
    for stream in [&b"D0777 0 .\nE\n"[..], b"D0777 0 \nE\n", b"C0777 1 .\nx\0"] {
        let world = World::new();
        fs::set_permissions(world.root(), fs::Permissions::from_mode(0o755)).unwrap();
        let target = world.root_arg();
        let outcome = world.run(&["-r", "-p", "-t", &target], stream);
        assert_eq!(outcome.code, Some(1), "{}", text(stream));
        assert!(
            contains(&outcome.stdout, b"unexpected filename"),
            "{}",
            text(stream)
        );
        let mode = fs::metadata(world.root()).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "target's mode changed by {}", text(stream));
    }
}

// ---------------------------------------------------------------------------
// What reaches the client's terminal
// ---------------------------------------------------------------------------

const ESC_NAME: &str = "x\x1b[2J\x1b]0;owned\x07";

/// CVE-2019-6109: escape sequences in names reached the client's
/// terminal. Ours escapes them in every message (sink) and never sends
/// such a name (source).
#[test]
fn cve_2019_6109_control_bytes_in_names_never_reach_the_client() {
    let world = World::new();
    let target = world.root_arg();
    let stream = format!("C0644 1 {ESC_NAME}\nx\0D0755 0 a/{ESC_NAME}\n");
    let upload = world.run(&["-r", "-t", &target], stream.as_bytes());
    assert!(!upload.stdout.contains(&0x1b), "{:?}", text(&upload.stdout));
    assert!(
        contains(&upload.stdout, b"\\x1b[2J"),
        "{:?}",
        text(&upload.stdout)
    );

    fs::write(world.root().join(ESC_NAME), b"x").unwrap();
    let path = world.root().join(ESC_NAME).display().to_string();
    let download = world.run(&["-f", &path], &[0; 8]);
    assert!(
        !download.stdout.contains(&0x1b),
        "{:?}",
        text(&download.stdout)
    );
    assert!(!download.stdout.starts_with(b"C"), "the name was sent");
}

/// CVE-2019-6110: the server's stderr could hide what happened. Ours
/// writes nothing to stderr without `-v`, whatever goes wrong.
#[test]
fn cve_2019_6110_stderr_stays_empty_without_v() {
    let world = World::new();
    let target = world.root_arg();
    let stream = format!("C0644 1 {ESC_NAME}\nx\0C0644 1 ../x\nx\0");
    let upload = world.run(&["-r", "-t", &target], stream.as_bytes());
    assert_eq!(upload.code, Some(1));
    assert_eq!(text(&upload.stderr), "");
    let missing = world.root().join(ESC_NAME).display().to_string();
    let download = world.run(&["-f", &missing, "/nonexistent"], &[0; 8]);
    assert_eq!(download.code, Some(1));
    assert_eq!(text(&download.stderr), "");
}

/// CVE-2019-6111: a malicious source sent files that were not asked for.
/// Ours sends exactly the requested file, named by its basename.
#[test]
fn cve_2019_6111_source_sends_only_the_requested_file_by_basename() {
    let world = World::new();
    for name in ["a.txt", "b.txt", ".bashrc"] {
        fs::write(world.root().join("sub").join(name), b"hi").unwrap();
        fs::set_permissions(
            world.root().join("sub").join(name),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let outcome = world.run(&["--root", &world.root_arg(), "-f", "/sub/a.txt"], &[0; 8]);
    assert_eq!(outcome.code, Some(0), "{}", text(&outcome.stdout));
    assert_eq!(text(&outcome.stdout), "C0644 2 a.txt\nhi\0");
}

// ---------------------------------------------------------------------------
// The conversation
// ---------------------------------------------------------------------------

/// CVE-2020-12062: an error after the file was opened (a failing
/// `utimes`) made the sink send two replies for one file, and the
/// desynchronised stream let a server overwrite files. Here the write
/// fails mid-file (EFBIG): the rest of the data is still read, the error
/// replaces the final `\0` (one reply), and the next file lands in sync.
#[test]
fn cve_2020_12062_one_reply_per_record() {
    let world = World::new();
    let target = world.root_arg();
    let mut stream = b"T1 0 1 0\nC0644 2000 big\n".to_vec();
    stream.extend([b'a'; 2000]);
    stream.extend(b"\0T1 0 1 0\nC0644 1 good\ny\0");
    let outcome = world.run_fsize_limited(&["-p", "-t", &target], &stream);
    let replies = split_replies(&outcome.stdout);
    // Start, T, C, the failed data (one warning), T, C, data.
    let shape: Vec<u8> = replies.iter().map(|r| r[0]).collect();
    assert_eq!(shape, [0, 0, 0, 1, 0, 0, 0], "{:?}", text(&outcome.stdout));
    assert_eq!(outcome.code, Some(1));
    assert_eq!(fs::read(world.root().join("good")).unwrap(), b"y");
    assert!(!world.root().join("big").exists());
}

/// `\0` replies, and `\x01`/`\x02` lines, one element each.
fn split_replies(mut out: &[u8]) -> Vec<Vec<u8>> {
    let mut replies = Vec::new();
    while let Some(&first) = out.first() {
        let len = if first == 0 {
            1
        } else {
            out.iter()
                .position(|&b| b == b'\n')
                .map_or(out.len(), |p| p + 1)
        };
        replies.push(out[..len].to_vec());
        out = &out[len..];
    }
    replies
}

// ---------------------------------------------------------------------------
// The command string of the restricted modes
// ---------------------------------------------------------------------------

/// CVE-2020-15778: the remote shell ran backquotes and `$(…)` in the
/// target. Ours has no shell and refuses the syntax, even inside one word.
#[test]
fn cve_2020_15778_shell_syntax_in_the_command_is_refused() {
    for command in [
        "scp -t `touch${IFS}pwned`/dst",
        "scp -t x`id`",
        "scp -t x$(id)",
        "scp -t \"x`id`\"",
        "scp -t x;id",
        "scp -t x|id",
    ] {
        refuse_command(command);
    }
}

/// CVE-2004-1161 (rssh), CVE-2004-1162 (scponly): `scp -S prog` made the
/// allowed scp run any program.
#[test]
fn cve_2004_1161_scp_dash_s_is_refused() {
    refuse_command("scp -S /usr/bin/touch -t x");
}

/// CVE-2005-4533 (scponly): options hidden in getopt clusters.
#[test]
fn cve_2005_4533_clustered_option_values_are_refused() {
    refuse_command("scp -pS/usr/bin/touch -t x");
    refuse_command("scp -rpoProxyCommand=touch -t x");
}

/// CVE-2007-6415 (scponly): `-F` and `-o` ssh options that execute code.
#[test]
fn cve_2007_6415_ssh_config_options_are_refused() {
    refuse_command("scp -F /incoming/cfg -t x");
    refuse_command("scp -o ProxyCommand=touch -t x");
    refuse_command("scp -oLocalCommand=touch -t x");
}

/// CVE-2019-1000018 (rssh): `-o PKCS11Provider=…` and client mode. Ours
/// allows only server flags and requires `-t` or `-f`: a command without
/// them never reaches the client, even one given by `--openssh-client`.
#[test]
fn cve_2019_1000018_client_mode_is_never_reached() {
    refuse_command("scp -o PKCS11Provider=/incoming/x.so -f x");
    let world = World::new();
    let marker = world.path("sibling/ran");
    let client = world.path("client.sh");
    fs::write(&client, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    fs::set_permissions(&client, fs::Permissions::from_mode(0o755)).unwrap();
    let client_arg = client.display().to_string();
    let root = world.root_arg();
    for command in ["scp x host:y", "scp -r x y"] {
        let outcome = world.run(
            &[
                "--openssh-client",
                &client_arg,
                "--root",
                &root,
                "-c",
                command,
            ],
            b"",
        );
        assert_eq!(outcome.code, Some(1), "{command}");
        assert!(!marker.exists(), "{command}: the client ran");
    }
}

/// CVE-2012-2251/2252 (rssh): options hidden after `--` or in
/// `--opt value` form. Ours parses as getopt does: after `--` a word is an
/// operand (here: the file name), never an option.
#[test]
fn cve_2012_2251_words_after_double_dash_are_operands() {
    let world = World::new();
    let root = world.root_arg();
    let command = "scp -t -- -oProxyCommand=touch";
    let outcome = world.run(&["--root", &root, "-c", command], b"C0644 1 f\nx\0");
    assert_eq!(outcome.code, Some(0), "{}", text(&outcome.stdout));
    let written = world.root().join("-oProxyCommand=touch");
    assert_eq!(fs::read(written).unwrap(), b"x");
    world.assert_outside_untouched();
}

/// CVE-2012-3478 (rssh): environment assignments in the command line.
#[test]
fn cve_2012_3478_environment_assignments_are_refused() {
    refuse_command("LD_PRELOAD=/incoming/x.so scp -t x");
    refuse_command("PATH=/incoming scp -t x");
}

/// CVE-2019-3463, CVE-2019-3464 (rssh): rsync argument sanitising. Ours
/// runs no program but itself: rsync is refused outright.
#[test]
fn cve_2019_3463_rsync_is_refused() {
    refuse_command("rsync --server -e 'sh -c touch' . x");
    refuse_command("/usr/bin/rsync --server --daemon .");
}

/// CVE-2002-1469 (scponly): users planted SSH login parameters
/// (`~/.ssh/environment`, `authorized_keys`) next to uploaded programs.
/// Ours refuses writes under `.ssh` in every restricted mode by default.
#[test]
fn cve_2002_1469_uploads_into_dot_ssh_are_refused() {
    let world = World::new();
    let root = world.root_arg();
    let stream = b"D0700 0 .ssh\nC0600 4 environment\nx=1\n\0E\n";
    let upload = world.run(&["--root", &root, "-r", "-t", "/"], stream);
    assert_eq!(upload.code, Some(1));
    assert!(!world.root().join(".ssh/environment").exists());
    let direct = world.run(
        &["--root", &root, "-c", "scp -t .ssh/authorized_keys"],
        b"C0600 4 k\nkey\n\0",
    );
    assert_eq!(direct.code, Some(1));
    assert!(!world.root().join(".ssh/authorized_keys").exists());
}

/// CVE-2005-4532 (scponly): a setuid chroot helper. scp-server has no
/// chroot code (sshd's ChrootDirectory does it) and both packages install
/// it 0755 (the built binary is not set-id either).
#[test]
fn cve_2005_4532_never_setuid_and_no_chroot_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            let code = fs::read_to_string(&path).unwrap();
            assert!(!code.contains("chroot("), "{}", path.display());
        }
    }
    let spec = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/rpm/scp-server.spec"),
    )
    .unwrap();
    assert!(spec.contains("install -D -m 0755 \"$(cat built-binary-path)\""));
    let binary = fs::metadata(env!("CARGO_BIN_EXE_scp-server")).unwrap();
    assert_eq!(binary.mode() & 0o6000, 0);
}

// ---------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------

/// CVE-2026-35385: a sink running as root without `-p` kept the setuid
/// and setgid bits from the record. Ours strips 07000 without `-p`, and
/// with `-p` unless the policy says `--allow-setid`.
#[test]
fn cve_2026_35385_setid_bits_are_stripped() {
    for args in [&["-r", "-t"][..], &["-r", "-p", "-t"]] {
        let world = World::new();
        let target = world.root_arg();
        let mut argv = args.to_vec();
        argv.push(&target);
        let outcome = world.run(&argv, b"C6755 1 s\nx\0D7777 0 d\nE\n");
        assert_eq!(outcome.code, Some(0), "{args:?}: {}", text(&outcome.stdout));
        let mode = fs::metadata(world.root().join("s")).unwrap().mode();
        assert_eq!(mode & 0o7000, 0, "{args:?}: {mode:o}");
        let mode = fs::metadata(world.root().join("d")).unwrap().mode();
        assert_eq!(mode & 0o7000, 0, "{args:?}: directory {mode:o}");
    }
}

// ---------------------------------------------------------------------------
// Confinement (the newer SCP servers)
// ---------------------------------------------------------------------------

/// CVE-2026-41589 (wish): `../` in received names and in requested paths
/// read, wrote and created directories outside the root.
#[test]
fn cve_2026_41589_dot_dot_stays_inside_the_root() {
    let world = World::new();
    let root = world.root_arg();
    let download = world.run(&["--root", &root, "-f", "../outside.txt"], &[0; 8]);
    assert!(!contains(&download.stdout, OUTSIDE_BYTES));
    assert_eq!(download.code, Some(1));
    let up = world.run(
        &["--root", &root, "-r", "-t", "/"],
        b"D0755 0 ..\nD0755 0 x\nE\nE\n",
    );
    assert_eq!(up.code, Some(1));
    let via_target = world.run(
        &["--root", &root, "-r", "-t", "/sub/../../sibling"],
        b"C0644 1 f\nx\0",
    );
    assert_eq!(via_target.code, Some(1));
    world.assert_outside_untouched();
}

/// CVE-2026-54591 (AsyncSSH): SCP path traversal to an arbitrary file
/// write. Ours resolves every target beneath the root, symlinks included.
#[test]
fn cve_2026_54591_targets_and_symlinks_cannot_leave_the_root() {
    let world = World::new();
    symlink("../sibling", world.root().join("up")).unwrap();
    symlink(world.path("sibling"), world.root().join("abs")).unwrap();
    symlink("../outside.txt", world.root().join("out")).unwrap();
    let root = world.root_arg();
    for target in ["/up", "/abs", "/out", "/up/f", "../outside.txt"] {
        let outcome = world.run(&["--root", &root, "-r", "-t", target], b"C0644 1 f\nx\0");
        assert_eq!(outcome.code, Some(1), "{target}");
    }
    let into = world.run(
        &["--root", &root, "-r", "-t", "/"],
        b"D0755 0 up\nC0644 1 f\nx\0E\n",
    );
    assert_eq!(into.code, Some(1));
    world.assert_outside_untouched();
}

/// SFTPGo GHSA-x8qh-7475-c5mp: paths normalised differently by the
/// permission check and the filesystem let a client past a rule. Ours
/// checks deny patterns against the one normalised path beneath the root;
/// an anchored pattern (`/private`) is the one a spelling could dodge.
#[test]
fn ghsa_x8qh_7475_c5mp_deny_patterns_see_the_normalised_path() {
    let world = World::new();
    fs::create_dir(world.root().join("private")).unwrap();
    let root = world.root_arg();
    let deny = ["--root", &root, "--deny", "/private"];
    for target in [
        "/sub/../private/f",
        "//./private/f",
        "sub/./../private/f",
        "./private//f",
    ] {
        let outcome = world.run(&[&deny[..], &["-t", target]].concat(), b"C0644 1 f\nx\0");
        assert_eq!(outcome.code, Some(1), "{target}: {}", text(&outcome.stdout));
    }
    let stream = b"D0755 0 private\nC0644 1 f\nx\0E\n";
    let nested = world.run(&[&deny[..], &["-r", "-t", "/sub/.."]].concat(), stream);
    assert_eq!(nested.code, Some(1), "{}", text(&nested.stdout));
    assert_eq!(
        fs::read_dir(world.root().join("private")).unwrap().count(),
        0
    );
}

/// CVE-2006-0225: the OpenSSH client passed names through `system()`, so
/// shell metacharacters in them ran. A person typing `scp` on the server
/// gets the OpenSSH client from us: exec'd with an argv, never a shell
/// string (here `/bin/echo` stands in for the client).
#[test]
fn cve_2006_0225_client_mode_execs_an_argv_not_a_shell() {
    let world = World::new();
    let marker = world.path("sibling/ran");
    let evil = format!("$(touch {})", marker.display());
    let other = format!("a;touch {}", marker.display());
    let outcome = world.run(&["--openssh-client", "/bin/echo", &evil, &other], b"");
    assert_eq!(outcome.code, Some(0), "{}", text(&outcome.stderr));
    assert_eq!(text(&outcome.stdout), format!("{evil} {other}\n"));
    assert!(!marker.exists(), "a shell ran the arguments");
}
