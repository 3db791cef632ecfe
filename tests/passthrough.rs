//! A person typing `scp` on the server (no -t/-f): the command line goes,
//! unchanged, to the real OpenSSH client.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_scp-server");

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "scp-server-passthrough-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A stand-in client that records its argv[0] and arguments, one per line.
fn fake_client(dir: &Path) -> std::path::PathBuf {
    let script = dir.join("fake-scp");
    let log = dir.join("args");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" > '{}'\nexit 7\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn run(args: &[&str], client: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("SCP_SERVER_OPENSSH_CLIENT", client)
        .output()
        .unwrap()
}

#[test]
fn client_command_lines_are_handed_over_unchanged() {
    let dir = temp_dir("args");
    let client = fake_client(&dir);
    let out = run(&["-r", "-o", "Port=22", "a b", "host:x;y"], &client);
    // The client's own exit status comes back: it replaced our process.
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    let lines: Vec<&str> = args.lines().collect();
    assert_eq!(&lines[1..], &["-r", "-o", "Port=22", "a b", "host:x;y"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn admin_option_names_the_client() {
    let dir = temp_dir("option");
    let client = fake_client(&dir);
    let out = Command::new(BIN)
        .arg("--openssh-client")
        .arg(&client)
        .args(["file", "host:"])
        .env_remove("SCP_SERVER_OPENSSH_CLIENT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let args = std::fs::read_to_string(dir.join("args")).unwrap();
    assert!(args.ends_with("file\nhost:\n"), "{args}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_client_is_explained() {
    let out = run(&["file", "host:"], Path::new("/nonexistent/scp.openssh"));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("OpenSSH scp client is not installed at /nonexistent/scp.openssh"),
        "{err}"
    );
}

#[test]
fn pointing_the_client_at_this_binary_does_not_loop() {
    let out = run(&["file", "host:"], Path::new(BIN));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is this program itself"), "{err}");
}

#[test]
fn help_documents_the_program_and_hides_server_flags() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("server side of SCP"), "{help}");
    assert!(help.contains("--openssh-client"), "{help}");
}
