//! The audit trail through journald (issue 5), received as the real
//! native-protocol datagrams that tracing-journald sends.
//!
//! journald's socket has a fixed path, `/run/systemd/journal/socket`. Each
//! test binds a datagram socket of its own and runs the binary in a private
//! mount namespace where that socket is bind-mounted at journald's path
//! (over a tmpfs, so nothing is created on the machine itself); the binary
//! runs as `nobody`, confined to a root, with sshd's `SSH_CONNECTION` set.
//! The last test runs the static binary in a chroot jail whose
//! `run/systemd/journal/socket` is the test's socket, as the admin's bind
//! mount provides it in a real jail.
//!
//! Root is needed (mount namespaces, chroot); without it the tests skip,
//! except under `CI`, where they fail.

mod audit_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use audit_support::{
    BIN, DOWNLOAD_ONE_FILE, Entry, FakeJournal, NOBODY, Run, Scratch, clean_environment, events,
    field, parse_datagram, run, running_as_root, unavailable, upload_stream,
};

/// Puts the socket given as `$1` at journald's path in a fresh mount
/// namespace, then execs the rest of the arguments. The tmpfs goes over the
/// deepest directory of that path that exists, so that the directories
/// below it are created inside the namespace only.
const WITH_PRIVATE_JOURNAL: &str = r#"
set -e
socket=$1; shift
for dir in /run/systemd/journal /run/systemd /run; do
    if [ -d "$dir" ]; then
        mount -t tmpfs -o mode=0755 tmpfs "$dir"
        break
    fi
done
mkdir -p /run/systemd/journal
: > /run/systemd/journal/socket
mount --bind "$socket" /run/systemd/journal/socket
exec "$@"
"#;

/// Returns `Some(())` when mount namespaces can be used here; otherwise
/// says why and skips (a panic under CI).
fn prerequisites() -> Option<()> {
    if !running_as_root() {
        return unavailable("the journald tests need root (mount namespaces, chroot)");
    }
    for tool in ["/usr/bin/unshare", "/usr/bin/setpriv"] {
        if !Path::new(tool).exists() {
            return unavailable(&format!("{tool} is missing (util-linux)"));
        }
    }
    if !Path::new("/run").is_dir() {
        return unavailable("/run is missing");
    }
    let mut probe = Command::new("/usr/bin/unshare");
    probe.args(["--mount", "--propagation", "private", "true"]);
    let outcome = run(probe, b"");
    if outcome.code() != Some(0) {
        return unavailable(&format!(
            "cannot make a private mount namespace: {outcome:?}"
        ));
    }
    Some(())
}

/// A root for the session (owned by nobody, with `incoming/` and a file to
/// download in `files/`) and the test's journal socket.
struct Setup {
    scratch: Scratch,
    journal: FakeJournal,
    root: PathBuf,
}

impl Setup {
    fn new(label: &str) -> Setup {
        let scratch = Scratch::new(label);
        let journal = FakeJournal::bind(&scratch.join("journal.sock"));
        let root = scratch.dir("root", NOBODY);
        scratch.dir("root/incoming", NOBODY);
        scratch.dir("root/files", NOBODY);
        let file = scratch.file("root/files/report.txt", b"quarterly numbers\n", NOBODY);
        fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        Setup {
            scratch,
            journal,
            root,
        }
    }

    fn root_arg(&self) -> String {
        self.root.to_str().unwrap().to_owned()
    }

    /// Runs the binary as nobody with `args`, journald's socket being ours.
    fn run(&self, args: &[&str], stdin: &[u8]) -> (Run, Vec<Entry>) {
        let mut command = Command::new("/usr/bin/unshare");
        command
            .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg(WITH_PRIVATE_JOURNAL)
            .arg("sh")
            .arg(&self.journal.path)
            .args(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534"])
            .args(["--clear-groups", BIN])
            .args(args)
            .current_dir(self.scratch.path());
        clean_environment(&mut command);
        let outcome = run(command, stdin);
        assert!(!outcome.timed_out, "{outcome:?}");
        (outcome, self.journal.entries())
    }
}

/// The session's fields, the same in every event it sends.
fn assert_session_fields(entries: &[Entry], direction: &str, root: &str) {
    assert!(!entries.is_empty(), "no journal entries at all");
    let session = field(&entries[0], "SCP_SESSION");
    assert_eq!(session.len(), 16, "{session:?}");
    for entry in entries {
        assert_eq!(field(entry, "SYSLOG_IDENTIFIER"), "scp-server", "{entry:?}");
        assert_eq!(field(entry, "SCP_SESSION"), session);
        assert_eq!(field(entry, "SCP_UID"), "65534");
        assert_eq!(field(entry, "SCP_USER"), "nobody");
        assert_eq!(field(entry, "SCP_CLIENT_IP"), "203.0.113.5");
        assert_eq!(field(entry, "SCP_CLIENT_PORT"), "52144");
        assert_eq!(field(entry, "SCP_DIRECTION"), direction);
        assert_eq!(field(entry, "SCP_ROOT"), root);
        assert!(!field(entry, "MESSAGE").is_empty());
    }
}

/// The events of a session in order: its start, then `files` file events,
/// then its end.
fn assert_shape(entries: &[Entry], files: usize) {
    let kinds: Vec<String> = entries.iter().map(|e| field(e, "SCP_EVENT")).collect();
    let mut expected = vec!["session_start".to_owned()];
    expected.extend(std::iter::repeat_n("file".to_owned(), files));
    expected.push("session_end".to_owned());
    assert_eq!(kinds, expected);
}

fn real_root(setup: &Setup) -> String {
    fs::canonicalize(&setup.root)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn assert_duration(entry: &Entry) {
    let ms = field(entry, "SCP_DURATION_MS");
    assert!(ms.parse::<u64>().is_ok(), "SCP_DURATION_MS {ms:?}");
}

#[test]
fn upload_through_the_default_sink() {
    let Some(()) = prerequisites() else { return };
    let setup = Setup::new("jup");
    let root = setup.root_arg();
    // No --log: journald is the default where its socket exists.
    let (outcome, entries) = setup.run(
        &["--root", &root, "-t", "/incoming"],
        &upload_stream("a.txt", b"hello", 0o640),
    );
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    assert_eq!(outcome.stdout, b"\0\0\0", "{outcome:?}");
    assert!(outcome.stderr.is_empty(), "{outcome:?}");
    assert_eq!(
        fs::read(setup.root.join("incoming/a.txt")).unwrap(),
        b"hello"
    );

    let real = real_root(&setup);
    assert_shape(&entries, 1);
    assert_session_fields(&entries, "upload", &real);
    let start = events(&entries, "session_start")[0];
    assert_eq!(field(start, "PRIORITY"), "5");
    assert!(field(start, "SCP_PID").parse::<u32>().is_ok());

    let file = events(&entries, "file")[0];
    assert_eq!(field(file, "SCP_PATH"), "incoming/a.txt");
    assert_eq!(
        field(file, "SCP_RESOLVED"),
        format!("{real}/incoming/a.txt")
    );
    assert_eq!(field(file, "SCP_SIZE"), "5");
    assert_eq!(field(file, "SCP_BYTES"), "5");
    assert_eq!(field(file, "SCP_MODE"), "0640");
    assert_eq!(field(file, "SCP_RESULT"), "ok");
    assert!(!file.contains_key("SCP_ERROR"), "{file:?}");
    assert_duration(file);
    assert_eq!(field(file, "PRIORITY"), "5");
    assert_eq!(
        field(file, "MESSAGE"),
        "upload ok: incoming/a.txt (5 bytes)"
    );

    let end = events(&entries, "session_end")[0];
    assert_eq!(field(end, "SCP_FILES"), "1");
    assert_eq!(field(end, "SCP_BYTES"), "5");
    assert_eq!(field(end, "SCP_ERRORS"), "0");
    assert_eq!(field(end, "SCP_EXIT_STATUS"), "0");
    assert_eq!(field(end, "SCP_RESULT"), "ok");
    assert_duration(end);
}

#[test]
fn download() {
    let Some(()) = prerequisites() else { return };
    let setup = Setup::new("jdown");
    let root = setup.root_arg();
    let (outcome, entries) = setup.run(
        &[
            "--log",
            "journald",
            "--root",
            &root,
            "-f",
            "/files/report.txt",
        ],
        DOWNLOAD_ONE_FILE,
    );
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    assert_eq!(
        outcome.stdout, b"C0644 18 report.txt\nquarterly numbers\n\0",
        "{outcome:?}"
    );

    let real = real_root(&setup);
    assert_shape(&entries, 1);
    assert_session_fields(&entries, "download", &real);
    let file = events(&entries, "file")[0];
    assert_eq!(field(file, "SCP_PATH"), "files/report.txt");
    assert_eq!(
        field(file, "SCP_RESOLVED"),
        format!("{real}/files/report.txt")
    );
    assert_eq!(field(file, "SCP_SIZE"), "18");
    assert_eq!(field(file, "SCP_BYTES"), "18");
    assert_eq!(field(file, "SCP_MODE"), "0644");
    assert_eq!(field(file, "SCP_RESULT"), "ok");
    assert_duration(file);
    let end = events(&entries, "session_end")[0];
    assert_eq!(
        (field(end, "SCP_FILES"), field(end, "SCP_BYTES")),
        ("1".into(), "18".into())
    );
}

#[test]
fn a_read_only_account_asking_to_upload_is_refused() {
    let Some(()) = prerequisites() else { return };
    let setup = Setup::new("jro");
    let root = setup.root_arg();
    let (outcome, entries) = setup.run(
        &["--read-only", "--root", &root, "-t", "/incoming"],
        &upload_stream("a.txt", b"hello", 0o644),
    );
    assert_eq!(outcome.code(), Some(1), "{outcome:?}");
    assert_eq!(
        outcome.stdout,
        b"\x01scp: uploads are not allowed for this account\n"
    );

    assert_shape(&entries, 0);
    assert_session_fields(&entries, "upload", &real_root(&setup));
    let end = events(&entries, "session_end")[0];
    assert_eq!(field(end, "SCP_RESULT"), "refused");
    assert_eq!(field(end, "SCP_ERROR"), outcome.client_error());
    assert_eq!(field(end, "SCP_EXIT_STATUS"), "1");
    assert_eq!(field(end, "SCP_FILES"), "0");
    assert_eq!(field(end, "PRIORITY"), "4");
}

#[test]
fn a_file_matching_a_deny_pattern_is_refused() {
    let Some(()) = prerequisites() else { return };
    let setup = Setup::new("jdeny");
    let root = setup.root_arg();
    // The sender stops after the refusal of its C record.
    let (outcome, entries) = setup.run(
        &["--deny", "*.php", "--root", &root, "-t", "/incoming"],
        b"C0755 3 shell.php\n",
    );
    assert_eq!(outcome.code(), Some(1), "{outcome:?}");
    let sentence = outcome.client_error();
    assert!(sentence.contains("deny pattern '*.php'"), "{sentence}");
    assert!(!setup.root.join("incoming/shell.php").exists());

    assert_shape(&entries, 1);
    assert_session_fields(&entries, "upload", &real_root(&setup));
    let file = events(&entries, "file")[0];
    assert_eq!(field(file, "SCP_RESULT"), "refused");
    assert_eq!(field(file, "SCP_ERROR"), sentence);
    assert_eq!(field(file, "SCP_PATH"), "incoming/shell.php");
    assert_eq!(field(file, "SCP_SIZE"), "3");
    assert_eq!(field(file, "SCP_BYTES"), "0");
    assert_eq!(field(file, "SCP_MODE"), "0755");
    assert_eq!(field(file, "PRIORITY"), "4");
    let end = events(&entries, "session_end")[0];
    assert_eq!(field(end, "SCP_ERRORS"), "1");
    assert_eq!(field(end, "SCP_RESULT"), "failed");
    assert_eq!(field(end, "SCP_EXIT_STATUS"), "1");
}

#[test]
fn an_upload_cut_short_is_a_failure() {
    let Some(()) = prerequisites() else { return };
    let setup = Setup::new("jcut");
    let root = setup.root_arg();
    let mut stream = b"C0644 100 big.bin\n".to_vec();
    stream.extend_from_slice(&[b'x'; 10]);
    let (outcome, entries) = setup.run(&["--root", &root, "-t", "/incoming"], &stream);
    assert_eq!(outcome.code(), Some(1), "{outcome:?}");
    let sentence = outcome.client_error();
    assert_eq!(
        sentence,
        "/incoming/big.bin: upload incomplete: connection closed after 10 of 100 bytes; file discarded"
    );
    assert!(!setup.root.join("incoming/big.bin").exists());

    assert_shape(&entries, 1);
    let file = events(&entries, "file")[0];
    assert_eq!(field(file, "SCP_RESULT"), "failed");
    assert_eq!(field(file, "SCP_ERROR"), sentence);
    assert_eq!(field(file, "SCP_SIZE"), "100");
    assert_eq!(field(file, "SCP_BYTES"), "10");
    assert_eq!(field(file, "PRIORITY"), "4");
    let end = events(&entries, "session_end")[0];
    assert_eq!(field(end, "SCP_RESULT"), "failed");
    assert_eq!(field(end, "SCP_ERROR"), sentence);
    assert_eq!(field(end, "SCP_FILES"), "0");
    assert_eq!(field(end, "SCP_ERRORS"), "1");
}

/// journald's socket exists but nobody listens (journald stopped): the
/// session goes on exactly as without a log.
#[test]
fn a_dead_journal_socket_changes_nothing() {
    let Some(()) = prerequisites() else { return };
    let setup = Setup::new("jdead");
    let root = setup.root_arg();
    let dead = setup.scratch.join("dead.sock");
    drop(std::os::unix::net::UnixDatagram::bind(&dead).unwrap());
    let mut command = Command::new("/usr/bin/unshare");
    command
        .args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
        .arg(WITH_PRIVATE_JOURNAL)
        .arg("sh")
        .arg(&dead)
        .args([BIN, "--root", &root, "-t", "/incoming"]);
    clean_environment(&mut command);
    let outcome = run(command, &upload_stream("a.txt", b"hello", 0o644));
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    assert_eq!(outcome.stdout, b"\0\0\0");
    assert!(outcome.stderr.is_empty(), "{outcome:?}");
    assert_eq!(
        fs::read(setup.root.join("incoming/a.txt")).unwrap(),
        b"hello"
    );
}

// ---------------------------------------------------------------------------
// Inside a chroot jail

/// The static release binary (a jail has no libraries), built once per
/// test process by the release script.
fn static_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut command = Command::new("bash");
        command
            .arg(root.join("scripts/build-static.sh"))
            .current_dir(root);
        let outcome = audit_support::run_for(command, b"", Duration::from_secs(1800));
        assert_eq!(outcome.code(), Some(0), "static build failed: {outcome:?}");
        let text = String::from_utf8_lossy(&outcome.stdout).into_owned();
        root.join(text.lines().last().expect("a path").trim())
    })
}

/// A drop account's jail: the static binary, `incoming/`, and journald's
/// socket at the jail's own `run/systemd/journal/socket` — where the
/// admin's bind mount puts the real one. The binary, as the account's
/// login shell, runs `scp -t /incoming` confined to the jail.
#[test]
fn logs_through_the_socket_at_the_jails_path() {
    let Some(()) = prerequisites() else { return };
    if !Path::new("/usr/sbin/chroot").exists() {
        unavailable::<()>("/usr/sbin/chroot is missing");
        return;
    }
    let jail = Scratch::new("jail");
    let binary = jail.join("scp-server");
    fs::copy(static_binary(), &binary).unwrap();
    jail.dir("incoming", NOBODY);
    let journal = FakeJournal::bind(&jail.join("run/systemd/journal/socket"));
    for dir in ["run", "run/systemd", "run/systemd/journal"] {
        fs::set_permissions(
            jail.join(dir),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }

    let mut command = Command::new("/usr/sbin/chroot");
    command
        .arg("--userspec=65534:65534")
        .arg(jail.path())
        .args(["/scp-server", "-c", "scp -t /incoming"]);
    clean_environment(&mut command);
    command.env("HOME", "/");
    let outcome = run(command, &upload_stream("drop.txt", b"dropped", 0o644));
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    assert_eq!(outcome.stdout, b"\0\0\0", "{outcome:?}");
    assert_eq!(
        fs::read(jail.join("incoming/drop.txt")).unwrap(),
        b"dropped"
    );

    let entries = journal.entries();
    assert_shape(&entries, 1);
    for entry in &entries {
        assert_eq!(field(entry, "SYSLOG_IDENTIFIER"), "scp-server");
        assert_eq!(field(entry, "SCP_UID"), "65534");
        // The jail has no passwd entry to name the account.
        assert!(!entry.contains_key("SCP_USER"), "{entry:?}");
        assert_eq!(field(entry, "SCP_ROOT"), "/");
        assert_eq!(field(entry, "SCP_CLIENT_IP"), "203.0.113.5");
    }
    let file = events(&entries, "file")[0];
    assert_eq!(field(file, "SCP_PATH"), "incoming/drop.txt");
    assert_eq!(field(file, "SCP_RESOLVED"), "/incoming/drop.txt");
    assert_eq!(field(file, "SCP_RESULT"), "ok");
    assert_eq!(field(file, "SCP_BYTES"), "7");
}

#[test]
fn datagram_parser_reads_both_field_forms() {
    let mut datagram = b"PRIORITY=5\nSCP_PATH\n".to_vec();
    datagram.extend_from_slice(&5u64.to_le_bytes());
    datagram.extend_from_slice(b"a\nb=c\n");
    datagram.extend_from_slice(b"MESSAGE=hi there\n");
    let entry = parse_datagram(&datagram).unwrap();
    assert_eq!(field(&entry, "PRIORITY"), "5");
    assert_eq!(entry["SCP_PATH"], b"a\nb=c");
    assert_eq!(field(&entry, "MESSAGE"), "hi there");
    assert!(parse_datagram(b"NAME\n\x05\0\0\0\0\0\0\0ab\n").is_err());
    assert!(parse_datagram(b"NAME=unterminated").is_err());
}
