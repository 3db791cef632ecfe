//! Refusals of the restricted modes are audited (issue 12): an interactive
//! login, an SFTP request, another program, a refused option and a
//! malformed command string are each one `command_refused` event — user,
//! client address, the command as escaped text, why — in the login-shell
//! mode (`-c COMMAND`) and in the ForceCommand mode
//! (`SSH_ORIGINAL_COMMAND`), also when the configuration file is broken.
//! JSON sink (`--log json:FILE`); runs as whoever runs the tests.

mod audit_support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use audit_support::{Run, Scratch, run, scp_server, upload_stream};

type Event = BTreeMap<String, Value>;

fn read_log(path: &Path) -> Vec<Event> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"))
        })
        .collect()
}

fn text<'a>(event: &'a Event, name: &str) -> &'a str {
    event
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text field {name:?} in {event:?}"))
}

/// The two restricted modes a client's command reaches the binary in.
#[derive(Clone, Copy, Debug)]
enum Mode {
    LoginShell,
    ForceCommand,
}

impl Mode {
    fn origin(self) -> &'static str {
        match self {
            Mode::LoginShell => "login-shell",
            Mode::ForceCommand => "force-command",
        }
    }

    /// The binary as sshd starts it in this mode, with `command` from the
    /// client (`None`: an interactive login, no command at all).
    fn command(self, admin: &[&str], command: Option<&str>) -> Command {
        match (self, command) {
            (Mode::LoginShell, Some(command)) => {
                let mut args = admin.to_vec();
                args.extend(["-c", command]);
                scp_server(&args)
            }
            // sshd starts a login shell as `-NAME` for an interactive login.
            (Mode::LoginShell, None) => {
                let mut command = scp_server(admin);
                command.arg0("-scp-server");
                command
            }
            (Mode::ForceCommand, command) => {
                let mut args = vec!["--root", "/"];
                args.extend_from_slice(admin);
                let mut forced = scp_server(&args);
                if let Some(command) = command {
                    forced.env("SSH_ORIGINAL_COMMAND", command);
                }
                forced
            }
        }
    }
}

const MODES: [Mode; 2] = [Mode::LoginShell, Mode::ForceCommand];

/// The client's command (`None`: interactive login), the refusal kind the
/// event names, and a piece of the sentence the client sees.
const REFUSALS: &[(Option<&str>, &str, &str)] = &[
    (
        None,
        "interactive-login",
        "interactive logins are not allowed",
    ),
    // SFTP is served; only the words a client may not add are refused.
    (
        Some("/usr/lib/openssh/sftp-server -d /"),
        "refused-sftp-option",
        "refusing sftp-server option -d",
    ),
    (
        Some("internal-sftp -P read"),
        "refused-sftp-option",
        "refusing sftp-server option -P",
    ),
    (Some("bash -i"), "other-program", "refusing to run 'bash'"),
    (Some(""), "empty-command", "empty command"),
    (
        Some("scp -S /tmp/evil -t /in"),
        "refused-option",
        "refusing option -S",
    ),
    (
        Some("scp -o ProxyCommand=x -f /f"),
        "refused-option",
        "refusing option -o",
    ),
    (
        Some("scp -t /in; rm -rf /"),
        "malformed-command",
        "refusing command",
    ),
    (
        Some("scp -t \"unterminated"),
        "malformed-command",
        "unterminated double quote",
    ),
    (Some("scp -r /in"), "malformed-command", "needs -t or -f"),
    (Some("scp -t a b"), "malformed-command", "ambiguous target"),
];

/// The one line the client was sent: on stderr, or as a `\x01` protocol
/// line for a command that looks like scp.
fn client_sentence(outcome: &Run) -> String {
    if outcome.stdout.contains(&1) {
        outcome.client_error()
    } else {
        let stderr = outcome.stderr_text();
        let line = stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "one line on stderr: {outcome:?}");
        line.strip_prefix("scp-server: ")
            .unwrap_or_else(|| panic!("stderr line without prefix: {outcome:?}"))
            .to_owned()
    }
}

/// The single event of a refused session, checked field by field.
fn assert_one_refusal_event(
    log: &Path,
    mode: Mode,
    command: Option<&str>,
    kind: &str,
    outcome: &Run,
) {
    let events = read_log(log);
    assert_eq!(events.len(), 1, "{mode:?} {command:?}: {events:?}");
    let event = &events[0];
    assert_eq!(text(event, "event"), "command_refused");
    assert_eq!(text(event, "level"), "WARN");
    assert_eq!(text(event, "origin"), mode.origin());
    assert_eq!(text(event, "refusal"), kind, "{command:?}");
    assert_eq!(text(event, "result"), "refused");
    assert_eq!(text(event, "client_ip"), "203.0.113.5");
    assert_eq!(
        event.get("client_port").and_then(Value::as_u64),
        Some(52144)
    );
    assert_eq!(
        event.get("uid").and_then(Value::as_u64),
        Some(u64::from(nix::unistd::getuid().as_raw()))
    );
    assert_eq!(text(event, "error"), client_sentence(outcome));
    match command {
        Some(command) => assert_eq!(text(event, "command"), command),
        None => assert!(!event.contains_key("command"), "{event:?}"),
    }
}

#[test]
fn every_refusal_is_one_audit_event_in_both_modes() {
    for mode in MODES {
        for &(command, kind, sentence) in REFUSALS {
            println!("=== {mode:?} {command:?}");
            let scratch = Scratch::new("refuse");
            let log = scratch.join("audit.jsonl");
            let log_arg = format!("json:{}", log.display());
            let outcome = run(mode.command(&["--log", &log_arg], command), b"");
            assert_eq!(outcome.code(), Some(1), "{outcome:?}");
            assert!(client_sentence(&outcome).contains(sentence), "{outcome:?}");
            assert_one_refusal_event(&log, mode, command, kind, &outcome);
        }
    }
}

/// Control bytes in the command are escaped in the event, as in every
/// other field (the command is the client's, not the admin's).
#[test]
fn the_command_is_escaped_text() {
    for mode in MODES {
        let scratch = Scratch::new("escape");
        let log = scratch.join("audit.jsonl");
        let log_arg = format!("json:{}", log.display());
        let outcome = run(
            mode.command(&["--log", &log_arg], Some("evil\x1b[2J\x07 x")),
            b"",
        );
        assert_eq!(outcome.code(), Some(1), "{outcome:?}");
        let events = read_log(&log);
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(text(&events[0], "command"), "evil\\x1b[2J\\x07 x");
    }
}

/// A named configuration file that does not exist fails closed; a refusal
/// before any transfer is still audited to the sink the flags name.
#[test]
fn a_refusal_is_audited_with_a_broken_configuration_file() {
    for mode in MODES {
        let scratch = Scratch::new("brokencfg");
        let log = scratch.join("audit.jsonl");
        let log_arg = format!("json:{}", log.display());
        let missing = scratch.join("missing.conf");
        let missing = missing.to_str().unwrap();
        let admin = ["--config", missing, "--log", &log_arg];
        let outcome = run(mode.command(&admin, Some("bash")), b"");
        assert_eq!(outcome.code(), Some(1), "{outcome:?}");
        assert_one_refusal_event(&log, mode, Some("bash"), "other-program", &outcome);
    }
}

/// An accepted command has its session events and no refusal event.
#[test]
fn an_accepted_command_has_no_refusal_event() {
    for mode in MODES {
        let scratch = Scratch::new("accepted");
        let me = nix::unistd::getuid().as_raw();
        let root = scratch.dir("root", me);
        scratch.dir("root/in", me);
        let log = scratch.join("audit.jsonl");
        let log_arg = format!("json:{}", log.display());
        let root_text = root.to_str().unwrap();
        let mut command = match mode {
            Mode::LoginShell => scp_server(&["--log", &log_arg, "-c", "scp -t /in"]),
            Mode::ForceCommand => {
                let mut forced = scp_server(&["--log", &log_arg]);
                forced.env("SSH_ORIGINAL_COMMAND", "scp -t /in");
                forced
            }
        };
        command.env("HOME", root_text);
        let outcome = run(command, &upload_stream("a.txt", b"hi", 0o644));
        assert_eq!(outcome.code(), Some(0), "{outcome:?}");
        let kinds: Vec<String> = read_log(&log)
            .iter()
            .map(|e| text(e, "event").to_owned())
            .collect();
        assert_eq!(kinds, ["session_start", "file", "session_end"]);
    }
}
