//! The audit trail as JSON lines (issue 5): `--log json:FILE` (and the
//! config file's `log` key), `--log stderr`, concurrent sessions appending
//! to one file, and log files that cannot be used.
//!
//! These run as whoever runs the tests; only the config-file test needs
//! root (a config file must be root's), and skips without it except under
//! `CI`.

mod audit_support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use audit_support::{
    DOWNLOAD_ONE_FILE, Run, Scratch, run, running_as_root, scp_server, unavailable, upload_stream,
};

/// Every line of a JSON log, parsed; a line that is not one whole JSON
/// object fails the test.
fn read_log(path: &Path) -> Vec<BTreeMap<String, Value>> {
    let text =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("read the log {}: {e}", path.display()));
    assert!(text.ends_with('\n'), "the log ends mid-line: {text:?}");
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"))
        })
        .collect()
}

fn text<'a>(event: &'a BTreeMap<String, Value>, name: &str) -> &'a str {
    event
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text field {name:?} in {event:?}"))
}

fn number(event: &BTreeMap<String, Value>, name: &str) -> u64 {
    event
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no number field {name:?} in {event:?}"))
}

fn of_kind<'a>(
    events: &'a [BTreeMap<String, Value>],
    kind: &str,
) -> Vec<&'a BTreeMap<String, Value>> {
    events.iter().filter(|e| text(e, "event") == kind).collect()
}

/// `sha256sum`'s digest of `bytes`.
fn sha256_of(bytes: &[u8]) -> String {
    let scratch = Scratch::new("sum");
    let path = scratch.file("data", bytes, 0);
    let output = Command::new("sha256sum").arg(&path).output().unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

/// A root with `in/` to upload into and `out/report.txt` to download.
fn root_in(scratch: &Scratch) -> String {
    let me = nix::unistd::getuid().as_raw();
    scratch.dir("root/in", me);
    scratch.dir("root/out", me);
    scratch.file("root/out/report.txt", b"numbers\n", me);
    fs::canonicalize(scratch.join("root"))
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn assert_transfer_ok(outcome: &Run, stdout: &[u8]) {
    assert!(!outcome.timed_out, "{outcome:?}");
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    assert_eq!(outcome.stdout, stdout, "{outcome:?}");
    assert!(outcome.stderr.is_empty(), "{outcome:?}");
}

#[test]
fn json_lines_carry_every_field() {
    let scratch = Scratch::new("jfields");
    let root = root_in(&scratch);
    let log = scratch.join("audit.jsonl");
    let log_arg = format!("json:{}", log.display());
    let content = b"hello, audit\n";

    let upload = run(
        scp_server(&[
            "--log",
            &log_arg,
            "--checksum",
            "sha256",
            "--root",
            &root,
            "-t",
            "/in",
        ]),
        &upload_stream("a.txt", content, 0o600),
    );
    assert_transfer_ok(&upload, b"\0\0\0");
    let download = run(
        scp_server(&[
            "--log",
            &log_arg,
            "--checksum",
            "sha256",
            "--root",
            &root,
            "-f",
            "out/report.txt",
            "missing",
        ]),
        DOWNLOAD_ONE_FILE,
    );
    assert_eq!(download.code(), Some(1), "{download:?}");

    let events = read_log(&log);
    let kinds: Vec<&str> = events.iter().map(|e| text(e, "event")).collect();
    assert_eq!(
        kinds,
        [
            "session_start",
            "file",
            "session_end",
            "session_start",
            "file",
            "file",
            "session_end"
        ]
    );
    for event in &events {
        assert!(event.contains_key("timestamp"), "{event:?}");
        assert_eq!(text(event, "client_ip"), "203.0.113.5");
        assert_eq!(number(event, "client_port"), 52144);
        assert_eq!(
            number(event, "uid"),
            u64::from(nix::unistd::getuid().as_raw())
        );
        assert_eq!(text(event, "root"), root);
        assert_eq!(text(event, "session").len(), 16);
    }
    let (up, down) = events.split_at(3);
    assert!(up.iter().all(|e| text(e, "direction") == "upload"));
    assert!(down.iter().all(|e| text(e, "direction") == "download"));
    assert_ne!(text(&up[0], "session"), text(&down[0], "session"));
    assert_eq!(text(&up[0], "checksum"), "sha256");

    let file = &up[1];
    assert_eq!(text(file, "level"), "INFO");
    assert_eq!(text(file, "path"), "in/a.txt");
    assert_eq!(text(file, "resolved"), format!("{root}/in/a.txt"));
    assert_eq!(number(file, "size"), content.len() as u64);
    assert_eq!(number(file, "bytes"), content.len() as u64);
    assert_eq!(text(file, "mode"), "0600");
    assert_eq!(text(file, "result"), "ok");
    assert!(!file.contains_key("error"));
    number(file, "duration_ms");
    // --checksum sha256: the digest of what arrived, hashed while streaming.
    assert_eq!(text(file, "sha256"), sha256_of(content));

    let sent = &down[1];
    assert_eq!(text(sent, "path"), "out/report.txt");
    assert_eq!(text(sent, "result"), "ok");
    assert_eq!(number(sent, "bytes"), 8);
    let sent_content = std::fs::read(std::path::Path::new(&root).join("out/report.txt")).unwrap();
    assert_eq!(text(sent, "sha256"), sha256_of(&sent_content));
    let missing = &down[2];
    assert_eq!(text(missing, "level"), "WARN");
    assert_eq!(text(missing, "result"), "failed");
    assert_eq!(text(missing, "path"), "missing");
    assert_eq!(text(missing, "error"), download.client_error());
    let end = &down[3];
    assert_eq!(
        (
            number(end, "files"),
            number(end, "bytes"),
            number(end, "errors")
        ),
        (1, 8, 1)
    );
    assert_eq!(number(end, "exit_status"), 1);
    assert_eq!(text(end, "result"), "failed");
}

/// Four sessions upload many files with long names at the same time, all
/// logging to one file: every line is whole, and every event is there.
#[test]
fn concurrent_sessions_never_interleave_lines() {
    const SESSIONS: usize = 4;
    const FILES: usize = 150;
    let scratch = Scratch::new("jconc");
    let root = root_in(&scratch);
    let log = scratch.join("shared.jsonl");
    let log_arg = format!("json:{}", log.display());
    let mut handles = Vec::new();
    for session in 0..SESSIONS {
        let target = format!("/in/s{session}");
        scratch.dir(
            &format!("root/in/s{session}"),
            nix::unistd::getuid().as_raw(),
        );
        let mut stream = Vec::new();
        for file in 0..FILES {
            // Long names make long lines: more room for a torn write.
            let name = format!("{file:04}-{}", "n".repeat(200));
            stream.extend(upload_stream(&name, b"x", 0o644));
        }
        let command = scp_server(&["--log", &log_arg, "--root", &root, "-t", &target]);
        handles.push(std::thread::spawn(move || run(command, &stream)));
    }
    for handle in handles {
        let outcome = handle.join().unwrap();
        assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    }

    let events = read_log(&log);
    assert_eq!(events.len(), SESSIONS * (FILES + 2));
    let mut per_session: BTreeMap<&str, usize> = BTreeMap::new();
    for event in &events {
        *per_session.entry(text(event, "session")).or_default() += 1;
    }
    assert_eq!(per_session.len(), SESSIONS);
    assert!(per_session.values().all(|&n| n == FILES + 2));
    let paths: BTreeSet<&str> = of_kind(&events, "file")
        .iter()
        .map(|e| text(e, "path"))
        .collect();
    assert_eq!(paths.len(), SESSIONS * FILES);
}

/// A log file that cannot be opened, or is not a file, leaves the transfer
/// exactly as it is without a log: same bytes to the client, nothing on
/// stderr, the file in place, no hang.
#[test]
fn an_unusable_log_file_does_not_touch_the_transfer() {
    let scratch = Scratch::new("jbad");
    let root = root_in(&scratch);
    let fifo = scratch.join("fifo.jsonl");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    let dir = scratch.dir("dir.jsonl", 0);
    let elsewhere = scratch.join("elsewhere.jsonl");
    let link = scratch.join("link.jsonl");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let missing_dir = scratch.join("no/such/dir/audit.jsonl");

    for (n, log) in [&missing_dir, &fifo, &dir, &link].into_iter().enumerate() {
        let log_arg = format!("json:{}", log.display());
        let name = format!("f{n}.txt");
        let outcome = run(
            scp_server(&["--log", &log_arg, "--root", &root, "-t", "/in"]),
            &upload_stream(&name, b"kept", 0o644),
        );
        assert_transfer_ok(&outcome, b"\0\0\0");
        assert_eq!(
            fs::read(scratch.join("root/in").join(&name)).unwrap(),
            b"kept",
            "{}",
            log.display()
        );
    }
    // Never through a symlink: the file it points at was not created.
    assert!(!elsewhere.exists());
    assert!(!missing_dir.exists());
}

/// `--log stderr`: the same JSON lines on stderr, and stdout still only the
/// protocol.
#[test]
fn stderr_sink_only_when_asked() {
    let scratch = Scratch::new("jerr");
    let root = root_in(&scratch);
    let quiet = run(
        scp_server(&["--log", "none", "--root", &root, "-t", "/in"]),
        &upload_stream("a.txt", b"abc", 0o644),
    );
    assert_transfer_ok(&quiet, b"\0\0\0");

    let outcome = run(
        scp_server(&["--log", "stderr", "--root", &root, "-t", "/in"]),
        &upload_stream("b.txt", b"abc", 0o644),
    );
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    assert_eq!(outcome.stdout, quiet.stdout);
    let lines: Vec<Value> = outcome
        .stderr_text()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["session_start", "file", "session_end"]);
    assert_eq!(lines[1]["path"], "in/b.txt");
}

/// `log = "json:…"` in the configuration file, as a jail's
/// `etc/scp-server.conf` would say it; `--log` alone does not make a
/// session restricted.
#[test]
fn config_file_names_the_log() {
    if !running_as_root() {
        unavailable::<()>("a configuration file must belong to root");
        return;
    }
    let scratch = Scratch::new("jconf");
    let root = root_in(&scratch);
    let log = scratch.join("from-config.jsonl");
    let config = scratch.file(
        "scp-server.conf",
        format!("log = \"json:{}\"\nchecksum = \"sha256\"\n", log.display()).as_bytes(),
        0,
    );
    let config_arg = config.to_str().unwrap().to_owned();
    let outcome = run(
        scp_server(&["--config", &config_arg, "--root", &root, "-t", "/in"]),
        &upload_stream("c.txt", b"conf", 0o644),
    );
    assert_transfer_ok(&outcome, b"\0\0\0");
    let events = read_log(&log);
    assert_eq!(events.len(), 3);
    assert_eq!(text(&events[0], "checksum"), "sha256");
    assert_eq!(text(&events[1], "path"), "in/c.txt");

    // Only --log: not restricted, so no root; the path is as given.
    let plain = scratch.join("plain.jsonl");
    let log_arg = format!("json:{}", plain.display());
    let mut command = scp_server(&["--log", &log_arg, "-t", "root/in"]);
    command.current_dir(scratch.path());
    let outcome = run(command, &upload_stream("d.txt", b"plain", 0o644));
    assert_transfer_ok(&outcome, b"\0\0\0");
    let events = read_log(&plain);
    assert!(!events[0].contains_key("root"), "{:?}", events[0]);
    assert_eq!(text(&events[1], "path"), "root/in/d.txt");
    assert_eq!(text(&events[1], "resolved"), "root/in/d.txt");
}

/// A directory refused by the default deny list (no file event of its own
/// size or mode: the refusal names the path), then a file whose sender
/// closes the stream right after its data without its OK (libssh2 does
/// that for every file, issue 12): the file is kept and audited as
/// complete; the session ends with exit 1, as OpenSSH's does.
#[test]
fn directory_refusals_and_senders_that_close_after_the_data() {
    let scratch = Scratch::new("jdir");
    let root = root_in(&scratch);
    let log = scratch.join("audit.jsonl");
    let log_arg = format!("json:{}", log.display());
    let mut stream = b"D0700 0 .ssh\n".to_vec();
    stream.extend_from_slice(b"C0644 5 last.txt\nhello");
    let outcome = run(
        scp_server(&["--log", &log_arg, "--root", &root, "-r", "-t", "/in"]),
        &stream,
    );
    assert_eq!(outcome.code(), Some(1), "{outcome:?}");
    assert_eq!(
        fs::read(scratch.join("root/in/last.txt")).unwrap(),
        b"hello"
    );

    let events = read_log(&log);
    let files = of_kind(&events, "file");
    assert_eq!(files.len(), 2, "{events:?}");
    let dir = files[0];
    assert_eq!(text(dir, "result"), "refused");
    assert_eq!(text(dir, "path"), "in/.ssh");
    assert_eq!(text(dir, "error"), outcome.client_error());
    assert!(!dir.contains_key("size") && !dir.contains_key("bytes"));
    let closed = files[1];
    assert_eq!(text(closed, "result"), "ok");
    assert_eq!(text(closed, "path"), "in/last.txt");
    assert_eq!(number(closed, "bytes"), 5);
    assert!(!closed.contains_key("error"), "{closed:?}");
    let end = of_kind(&events, "session_end")[0];
    assert_eq!((number(end, "files"), number(end, "errors")), (1, 1));
    assert_eq!(number(end, "exit_status"), 1);
}

/// A sender that gives up after the data (a `\x02` status instead of its
/// OK): the file is discarded and audited as failed.
#[test]
fn a_sender_that_gives_up_after_the_data_is_audited_as_failed() {
    let scratch = Scratch::new("jgiveup");
    let root = root_in(&scratch);
    let log = scratch.join("audit.jsonl");
    let log_arg = format!("json:{}", log.display());
    let outcome = run(
        scp_server(&["--log", &log_arg, "--root", &root, "-t", "/in"]),
        b"C0644 5 last.txt\nhello\x02gave up\n",
    );
    assert_eq!(outcome.code(), Some(1), "{outcome:?}");
    assert!(!scratch.join("root/in/last.txt").exists());
    let events = read_log(&log);
    let files = of_kind(&events, "file");
    assert_eq!(files.len(), 1, "{events:?}");
    assert_eq!(text(files[0], "result"), "failed");
    assert_eq!(number(files[0], "bytes"), 5);
    let end = of_kind(&events, "session_end")[0];
    assert_eq!(number(end, "files"), 0);
}
