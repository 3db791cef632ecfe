//! The SCP clients of the real-client matrix (tests/scp_clients.rs): what
//! each one is, what it cannot do (declared here, in one table), and how
//! one transfer with it is run against a private sshd.
//!
//! Environment knobs:
//! - `SCP_CLIENTS_PYTHON`: the Python of a virtual environment holding
//!   paramiko, scp, asyncssh and ansible-pylibssh (`scripts/test.sh`
//!   creates it under `target/` and sets this). Unset: the Python clients
//!   are unavailable (a skip, or under `CI` a failure).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::sshd::{
    CLIENT_TIMEOUT, Outcome, PrivateSshd, SSH_KEYGEN, remote_shell_escape, run_bounded,
};

/// Every client of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    OpenSsh,
    Pscp,
    Curl,
    Paramiko,
    Asyncssh,
    Pylibssh,
}

pub const CLIENTS: [Client; 6] = [
    Client::OpenSsh,
    Client::Pscp,
    Client::Curl,
    Client::Paramiko,
    Client::Asyncssh,
    Client::Pylibssh,
];

/// What a client can be asked to do. A cell the client cannot do is
/// listed as "not supported" in the summary, never silently dropped.
pub struct Limits {
    pub client: Client,
    pub name: &'static str,
    /// The SSH implementation underneath.
    pub library: &'static str,
    pub recursive: bool,
    pub preserve: bool,
    /// Several sources in one transfer.
    pub several: bool,
    /// Several remote sources in one download.
    pub several_remote_sources: bool,
    /// An upload's or a download's target may be a directory (the file
    /// keeps its name); otherwise the target is always the file's name.
    pub into_directory: bool,
    /// With `-r -p`, sends (upload) or applies (download) the modes and
    /// times of directories.
    pub directory_attributes: bool,
    /// Quotes remote paths for the remote shell itself; otherwise the user
    /// must (as with OpenSSH's `scp -O`), and the matrix does.
    pub quotes_remote_paths: bool,
    /// Why, in one line, for the summary.
    pub note: &'static str,
}

/// The one table of client limits.
pub const LIMITS: [Limits; 6] = [
    Limits {
        client: Client::OpenSsh,
        name: "OpenSSH scp -O",
        library: "OpenSSH",
        recursive: true,
        preserve: true,
        several: true,
        several_remote_sources: true,
        into_directory: true,
        directory_attributes: true,
        quotes_remote_paths: false,
        note: "the reference client",
    },
    Limits {
        client: Client::Pscp,
        name: "PuTTY pscp -scp",
        library: "PuTTY",
        recursive: true,
        preserve: true,
        several: true,
        several_remote_sources: false,
        into_directory: true,
        directory_attributes: false,
        quotes_remote_paths: false,
        note: "one remote source per download; -r -p keeps no directory modes or times",
    },
    Limits {
        client: Client::Curl,
        name: "curl scp://",
        library: "libssh2",
        recursive: false,
        preserve: false,
        several: false,
        several_remote_sources: false,
        into_directory: true,
        directory_attributes: false,
        quotes_remote_paths: true,
        note: "one file per URL, no -r, no -p; sends no status byte after a file's data",
    },
    Limits {
        client: Client::Paramiko,
        name: "paramiko + scp",
        library: "paramiko",
        recursive: true,
        preserve: true,
        several: true,
        several_remote_sources: true,
        into_directory: true,
        directory_attributes: true,
        quotes_remote_paths: true,
        note: "",
    },
    Limits {
        client: Client::Asyncssh,
        name: "asyncssh scp()",
        library: "asyncssh",
        recursive: true,
        preserve: true,
        several: true,
        several_remote_sources: true,
        into_directory: true,
        directory_attributes: true,
        quotes_remote_paths: false,
        note: "remote paths go to the remote shell unquoted (the user quotes, as with scp -O)",
    },
    Limits {
        client: Client::Pylibssh,
        name: "ansible-pylibssh",
        library: "libssh",
        recursive: false,
        preserve: false,
        several: false,
        several_remote_sources: false,
        into_directory: false,
        directory_attributes: false,
        quotes_remote_paths: true,
        note: "one file, named in full, per transfer; no -r, no -p",
    },
];

impl Client {
    pub fn limits(self) -> &'static Limits {
        LIMITS
            .iter()
            .find(|l| l.client == self)
            .expect("every client is in LIMITS")
    }

    /// `None` when the client is installed; else why not.
    pub fn missing(self) -> Option<String> {
        match self {
            Client::OpenSsh => None,
            Client::Pscp => ["/usr/bin/pscp", "/usr/bin/puttygen"]
                .iter()
                .find(|tool| !Path::new(tool).exists())
                .map(|tool| format!("{tool} is missing (install putty-tools)")),
            Client::Curl => curl_without_scp(),
            Client::Paramiko => python_without(&["paramiko", "scp"]),
            Client::Asyncssh => python_without(&["asyncssh"]),
            Client::Pylibssh => python_without(&["pylibsshext"]),
        }
    }
}

fn curl_without_scp() -> Option<String> {
    let Ok(output) = Command::new("curl").arg("-V").output() else {
        return Some("curl is missing (install curl)".into());
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let has_scp = text
        .lines()
        .find(|l| l.starts_with("Protocols:"))
        .is_some_and(|l| l.split_whitespace().any(|p| p == "scp"));
    (!has_scp).then(|| "curl lists no scp protocol (curl -V); Debian's curl has it".into())
}

fn python() -> Option<PathBuf> {
    std::env::var_os("SCP_CLIENTS_PYTHON").map(PathBuf::from)
}

fn python_without(modules: &[&str]) -> Option<String> {
    let Some(python) = python() else {
        return Some(
            "SCP_CLIENTS_PYTHON is not set (scripts/test.sh creates the virtual environment)"
                .into(),
        );
    };
    let imports = format!("import {}", modules.join(", "));
    match Command::new(&python).args(["-c", &imports]).output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "{} cannot {imports}: {}",
            python.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run {}: {e}", python.display())),
    }
}

/// Which way a transfer goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// One transfer to run: sources and target are local or remote paths
/// according to the direction.
pub struct Transfer<'a> {
    pub direction: Direction,
    pub user: &'a str,
    pub sources: Vec<PathBuf>,
    pub target: PathBuf,
    pub recursive: bool,
    pub preserve: bool,
    /// A private HOME for the client (pscp writes a random seed there).
    pub home: &'a Path,
}

/// Runs one transfer with `client` through `sshd`.
pub fn run(client: Client, sshd: &PrivateSshd, transfer: &Transfer<'_>) -> Outcome {
    let mut command = match client {
        Client::OpenSsh => openssh(sshd, transfer),
        Client::Pscp => pscp(sshd, transfer),
        Client::Curl => curl(sshd, transfer),
        Client::Paramiko => python_client("paramiko", sshd, transfer),
        Client::Asyncssh => python_client("asyncssh", sshd, transfer),
        Client::Pylibssh => python_client("pylibssh", sshd, transfer),
    };
    command.env("HOME", transfer.home);
    run_bounded(command, CLIENT_TIMEOUT)
}

fn client_key(sshd: &PrivateSshd) -> PathBuf {
    sshd.config_dir().join("client_ed25519_key")
}

/// `user@127.0.0.1:PATH`, the path escaped for the remote shell for
/// clients that put it into `scp -t PATH` unquoted (OpenSSH, PuTTY).
fn shell_remote(sshd: &PrivateSshd, user: &str, path: &Path) -> OsString {
    sshd.remote(user, remote_shell_escape(path))
}

/// Sources then target, each remote or local as the direction says.
fn operands(transfer: &Transfer<'_>, remote: impl Fn(&Path) -> OsString) -> Vec<OsString> {
    let mut words = Vec::new();
    for source in &transfer.sources {
        words.push(match transfer.direction {
            Direction::Upload => source.clone().into_os_string(),
            Direction::Download => remote(source),
        });
    }
    words.push(match transfer.direction {
        Direction::Upload => remote(&transfer.target),
        Direction::Download => transfer.target.clone().into_os_string(),
    });
    words
}

fn flags(transfer: &Transfer<'_>) -> Vec<&'static str> {
    let mut flags = Vec::new();
    if transfer.recursive {
        flags.push("-r");
    }
    if transfer.preserve {
        flags.push("-p");
    }
    flags
}

fn openssh(sshd: &PrivateSshd, transfer: &Transfer<'_>) -> Command {
    let mut args: Vec<OsString> = flags(transfer).iter().map(OsString::from).collect();
    args.extend(operands(transfer, |p| shell_remote(sshd, transfer.user, p)));
    sshd.scp_command(args)
}

/// PuTTY's key and the host key's fingerprint, made once per sshd (the
/// sshd's config directory is the cache key).
fn putty_credentials(sshd: &PrivateSshd) -> (PathBuf, String) {
    static MADE: OnceLock<std::sync::Mutex<Vec<(PathBuf, String)>>> = OnceLock::new();
    let made = MADE.get_or_init(Default::default);
    let mut made = made.lock().unwrap_or_else(|e| e.into_inner());
    let ppk = sshd.config_dir().join("client.ppk");
    if let Some((_, fingerprint)) = made.iter().find(|(p, _)| *p == ppk) {
        return (ppk, fingerprint.clone());
    }
    let mut convert = Command::new("/usr/bin/puttygen");
    convert
        .arg(client_key(sshd))
        .args(["-O", "private", "-o"])
        .arg(&ppk);
    let converted = run_bounded(convert, CLIENT_TIMEOUT);
    assert!(converted.succeeded(), "puttygen failed\n{converted}");
    let mut list = Command::new(SSH_KEYGEN);
    list.args(["-l", "-E", "sha256", "-f"])
        .arg(sshd.config_dir().join("host_ed25519_key.pub"));
    let listed = run_bounded(list, CLIENT_TIMEOUT);
    assert!(listed.succeeded(), "ssh-keygen -l failed\n{listed}");
    let fingerprint = listed
        .stdout_text()
        .split_whitespace()
        .nth(1)
        .expect("ssh-keygen -l prints a fingerprint")
        .to_owned();
    made.push((ppk.clone(), fingerprint.clone()));
    (ppk, fingerprint)
}

fn pscp(sshd: &PrivateSshd, transfer: &Transfer<'_>) -> Command {
    let (ppk, fingerprint) = putty_credentials(sshd);
    let mut command = Command::new("/usr/bin/pscp");
    command
        .args(["-scp", "-batch", "-q", "-P"])
        .arg(sshd.port().to_string())
        .arg("-i")
        .arg(ppk)
        .args(["-hostkey", &fingerprint])
        .args(flags(transfer))
        .args(operands(transfer, |p| shell_remote(sshd, transfer.user, p)));
    command
}

/// `scp://user@127.0.0.1:PORT/PATH`, the path percent-encoded (libssh2
/// quotes it for the remote shell itself).
fn curl_url(sshd: &PrivateSshd, user: &str, path: &Path) -> String {
    let mut url = format!("scp://{user}@127.0.0.1:{}", sshd.port());
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || b"/._-~".contains(&byte) {
            url.push(char::from(byte));
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

fn curl(sshd: &PrivateSshd, transfer: &Transfer<'_>) -> Command {
    let key = client_key(sshd);
    let mut command = Command::new("curl");
    command
        .args([
            "--silent",
            "--show-error",
            "--insecure",
            "--max-time",
            "120",
        ])
        .arg("--key")
        .arg(&key)
        .arg("--pubkey")
        .arg(key.with_extension("pub"));
    let [source] = transfer.sources.as_slice() else {
        panic!("curl moves one file per URL; the matrix must not ask for more");
    };
    match transfer.direction {
        Direction::Upload => {
            command.arg("--upload-file").arg(source);
            // A target directory ends in `/`: curl appends the file's name.
            let mut url = curl_url(sshd, transfer.user, &transfer.target);
            if transfer.target.is_dir()
                || transfer
                    .target
                    .as_os_str()
                    .as_encoded_bytes()
                    .ends_with(b"/")
            {
                url.push('/');
            }
            command.arg(url);
        }
        Direction::Download => {
            let local = if transfer.target.is_dir() {
                transfer
                    .target
                    .join(source.file_name().unwrap_or(OsStr::new("")))
            } else {
                transfer.target.clone()
            };
            command
                .arg("--output")
                .arg(local)
                .arg(curl_url(sshd, transfer.user, source));
        }
    }
    command
}

fn python_client(library: &str, sshd: &PrivateSshd, transfer: &Transfer<'_>) -> Command {
    let python = python().expect("checked by Client::missing");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/scp_client.py");
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg(library)
        .args(["--port", &sshd.port().to_string()])
        .args(["--user", transfer.user])
        .arg("--key")
        .arg(client_key(sshd));
    if transfer.recursive {
        command.arg("--recursive");
    }
    if transfer.preserve {
        command.arg("--preserve");
    }
    command.arg(match transfer.direction {
        Direction::Upload => "up",
        Direction::Download => "down",
    });
    // paramiko's scp and libssh quote remote paths for the remote shell
    // themselves; asyncssh does not, so its user has to (LIMITS).
    let quotes = transfer_client_quotes(library);
    command.args(operands(transfer, |p| {
        if quotes {
            p.as_os_str().to_owned()
        } else {
            remote_shell_escape(p)
        }
    }));
    command
}

fn transfer_client_quotes(library: &str) -> bool {
    let client = match library {
        "paramiko" => Client::Paramiko,
        "asyncssh" => Client::Asyncssh,
        _ => Client::Pylibssh,
    };
    client.limits().quotes_remote_paths
}
