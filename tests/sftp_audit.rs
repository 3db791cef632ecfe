//! The audit trail of SFTP sessions (issue 13): the same sinks and session
//! events as SCP, `protocol` `sftp`, one `file` event per file closed (its
//! own direction), one `operation` event per change to the tree. Driven by
//! OpenSSH's own `sftp` client, connected straight to the binary (`sftp -D`).

mod audit_support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use audit_support::{BIN, Run, SSH_CONNECTION, Scratch, run, unavailable};

const SFTP_CLIENT: &str = "/usr/bin/sftp";

type Event = BTreeMap<String, Value>;

fn read_log(path: &Path) -> Vec<Event> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn text<'a>(event: &'a Event, name: &str) -> &'a str {
    event.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Runs `commands` as an `sftp -b` batch against `scp-server --sftp ARGS`
/// in `cwd`; `-` before a command lets the batch go on when it fails.
fn sftp_batch(cwd: &Path, server_args: &str, commands: &str) -> Option<Run> {
    if !Path::new(SFTP_CLIENT).exists() {
        return unavailable("OpenSSH's sftp client is missing (install openssh-client)");
    }
    let batch = cwd.join("batch");
    fs::write(&batch, commands).unwrap();
    let mut command = Command::new(SFTP_CLIENT);
    command
        .current_dir(cwd)
        .env("SSH_CONNECTION", SSH_CONNECTION)
        .arg("-D")
        .arg(format!("{BIN} --sftp {server_args}"))
        .arg("-b")
        .arg(&batch);
    Some(run(command, b""))
}

#[test]
fn each_file_and_each_change_is_one_event_naming_sftp() {
    let scratch = Scratch::new("sftp-audit");
    let me = nix::unistd::getuid().as_raw();
    let root = scratch.dir("root", me);
    scratch.file("root/report.txt", b"numbers\n", me);
    let local = scratch.dir("local", me);
    fs::write(local.join("up.txt"), b"uploaded\n").unwrap();
    let log = scratch.join("audit.jsonl");
    let args = format!("--root {} --log json:{}", root.display(), log.display());
    let commands = "put up.txt /up.txt\nget /report.txt got.txt\nmkdir /made\nrename /up.txt /made/up.txt\nrm /report.txt\n-put up.txt /.ssh/authorized_keys\n";
    let Some(outcome) = sftp_batch(&local, &args, commands) else {
        return;
    };
    assert!(!outcome.timed_out, "{outcome:?}");
    assert_eq!(fs::read(root.join("made/up.txt")).unwrap(), b"uploaded\n");
    assert_eq!(fs::read(local.join("got.txt")).unwrap(), b"numbers\n");
    assert!(!root.join(".ssh").exists());

    let events = read_log(&log);
    for event in &events {
        assert_eq!(text(event, "protocol"), "sftp", "{event:?}");
    }
    let kinds: Vec<&str> = events.iter().map(|e| text(e, "event")).collect();
    assert_eq!(kinds.first(), Some(&"session_start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"session_end"), "{kinds:?}");
    assert_eq!(text(&events[0], "direction"), "upload and download");

    let files: Vec<&Event> = events
        .iter()
        .filter(|e| text(e, "event") == "file")
        .collect();
    let file = |direction: &str, path: &str| {
        files
            .iter()
            .find(|e| text(e, "direction") == direction && text(e, "path") == path)
            .unwrap_or_else(|| panic!("no {direction} event for {path} in {files:?}"))
    };
    let up = file("upload", "up.txt");
    assert_eq!(text(up, "result"), "ok");
    assert_eq!(up.get("bytes").and_then(Value::as_u64), Some(9));
    assert_eq!(text(file("download", "report.txt"), "result"), "ok");
    // The default deny pattern refuses the OPEN itself: a refused upload.
    let refused = file("upload", ".ssh/authorized_keys");
    assert_eq!(text(refused, "result"), "refused");
    assert!(
        text(refused, "error").contains("deny pattern"),
        "{refused:?}"
    );

    let operations: Vec<(&str, &str, &str)> = events
        .iter()
        .filter(|e| text(e, "event") == "operation")
        .map(|e| (text(e, "operation"), text(e, "path"), text(e, "result")))
        .collect();
    assert_eq!(
        operations,
        vec![
            ("mkdir", "made", "ok"),
            ("rename", "up.txt", "ok"),
            ("remove", "report.txt", "ok"),
        ]
    );
    let rename = events
        .iter()
        .find(|e| text(e, "operation") == "rename")
        .unwrap();
    assert_eq!(text(rename, "target"), "made/up.txt");
    assert_eq!(text(rename, "client_ip"), "203.0.113.5");
}

#[test]
fn an_upload_still_open_at_the_end_is_audited_as_discarded() {
    let scratch = Scratch::new("sftp-audit-cut");
    let me = nix::unistd::getuid().as_raw();
    let root = scratch.dir("root", me);
    let log = scratch.join("audit.jsonl");
    // INIT, then OPEN "cut.txt" for WRITE|CREAT|TRUNC and one WRITE, then
    // the stream ends: the upload must be discarded and say so.
    let mut stream = packet(&[&[1], &3u32.to_be_bytes()]);
    stream.extend(packet(&[
        &[3],
        &1u32.to_be_bytes(),
        &string(b"cut.txt"),
        &(0x02u32 | 0x08 | 0x10).to_be_bytes(),
        &0u32.to_be_bytes(),
    ]));
    stream.extend(packet(&[
        &[6],
        &2u32.to_be_bytes(),
        &string(&0u32.to_be_bytes()),
        &0u64.to_be_bytes(),
        &string(b"partial"),
    ]));
    let mut command = Command::new(BIN);
    command
        .args(["--sftp", "--root"])
        .arg(&root)
        .arg("--log")
        .arg(format!("json:{}", log.display()));
    let outcome = run(command, &stream);
    assert_eq!(outcome.code(), Some(0), "{outcome:?}");
    assert!(!root.join("cut.txt").exists());
    let events = read_log(&log);
    let file = events
        .iter()
        .find(|e| text(e, "event") == "file")
        .expect("a file event");
    assert_eq!(text(file, "direction"), "upload");
    assert_eq!(text(file, "result"), "failed");
    assert_eq!(file.get("bytes").and_then(Value::as_u64), Some(7));
}

fn string(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

fn packet(fields: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = fields.concat();
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend(body);
    out
}
