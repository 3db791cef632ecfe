//! A private sshd on 127.0.0.1 for the end-to-end rows, in the manner of
//! tests/sshd: its own host key, config and authorized_keys in a scratch
//! directory, nothing global touched, `-F /dev/null` and throw-away known
//! hosts on the client side so that no ~/.ssh is read or written.
//!
//! One sshd serves both servers under test: each has its own client key,
//! and the key's `environment="PATH=…"` option puts a directory holding
//! that program as `scp` first in the session's PATH — exactly how sshd's
//! `$SHELL -c "scp -t …"` finds an installed server-side scp.
//!
//! sshd runs under `timeout(1)`, so it stops by itself even if this process
//! is killed; dropping `PrivateSshd` stops it at once.

use std::fs::{self, File};
use std::io;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

const SSHD: &str = "/usr/sbin/sshd";
const SSH: &str = "/usr/bin/ssh";
const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// One client command (a whole e2e transfer) may take this long.
const CLIENT_LIMIT: Duration = Duration::from_secs(600);

/// Which server program a session runs as `scp`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ours,
    /// Ours with `--copy-data` (read/write only, no splice or sendfile).
    OursCopying,
    OpenSsh,
}

const SIDES: [Side; 3] = [Side::Ours, Side::OursCopying, Side::OpenSsh];

pub struct PrivateSshd {
    child: Child,
    port: u16,
    dir: PathBuf,
    user: String,
    scp_client: PathBuf,
}

impl PrivateSshd {
    /// Starts sshd in `dir` (created; must not exist; removed when the
    /// server is dropped or fails to start), living at most `lifetime`.
    /// `ours` and `openssh` are the server programs.
    pub fn start(
        dir: &Path,
        ours: &Path,
        openssh: &Path,
        scp_client: &Path,
        lifetime: Duration,
    ) -> io::Result<PrivateSshd> {
        let started = Self::start_in(dir, ours, openssh, scp_client, lifetime);
        if started.is_err() {
            let _ = fs::remove_dir_all(dir);
        }
        started
    }

    fn start_in(
        dir: &Path,
        ours: &Path,
        openssh: &Path,
        scp_client: &Path,
        lifetime: Duration,
    ) -> io::Result<PrivateSshd> {
        for tool in [SSHD, SSH, SSH_KEYGEN] {
            if !Path::new(tool).exists() {
                return Err(io::Error::other(format!("{tool} is missing")));
            }
        }
        let user = current_user()?;
        if fs::metadata("/proc/self")?.uid() == 0 {
            // sshd running as root insists on its privilege-separation
            // directory, which Debian's service unit creates at boot.
            fs::create_dir_all("/run/sshd")?;
        }
        make_dir(dir)?;
        for side in SIDES {
            let bin = dir.join(bin_dir_name(side));
            make_dir(&bin)?;
            match side {
                Side::Ours => {
                    fs::copy(ours, bin.join("scp"))?;
                }
                Side::OpenSsh => {
                    fs::copy(openssh, bin.join("scp"))?;
                }
                // A wrapper that adds the flag in front of the scp words
                // (admin options come first).
                Side::OursCopying => {
                    let ours_copy = dir.join(bin_dir_name(Side::Ours)).join("scp");
                    let script = format!(
                        "#!/bin/sh\nexec '{}' --copy-data \"$@\"\n",
                        ours_copy.display()
                    );
                    fs::write(bin.join("scp"), script)?;
                }
            }
            fs::set_permissions(bin.join("scp"), fs::Permissions::from_mode(0o755))?;
            generate_key(&dir.join(key_name(side)))?;
        }
        generate_key(&dir.join("host_key"))?;
        write_authorized_keys(dir)?;
        let port = free_port()?;
        fs::write(dir.join("sshd_config"), sshd_config(dir, port, &user))?;
        let child = spawn_sshd(dir, lifetime)?;
        let mut sshd = PrivateSshd {
            child,
            port,
            dir: dir.to_path_buf(),
            user,
            scp_client: scp_client.to_path_buf(),
        };
        sshd.wait_until_listening()?;
        for side in SIDES {
            sshd.check_remote_scp(side)?;
        }
        Ok(sshd)
    }

    /// `user@127.0.0.1:PATH` for scp.
    pub fn remote(&self, path: &Path) -> String {
        format!("{}@127.0.0.1:{}", self.user, path.display())
    }

    /// Runs `scp -O [args…]` with `side`'s key; returns its wall time.
    pub fn scp(&self, side: Side, args: &[&str]) -> io::Result<Duration> {
        let mut command = Command::new(&self.scp_client);
        command
            .arg("-O")
            .args(self.client_options(side))
            .arg("-P")
            .arg(self.port.to_string())
            .args(args);
        run_timed(command, Stdio::null(), Stdio::null())
    }

    /// Runs `ssh host REMOTE` with stdin and stdout as given; returns its
    /// wall time.
    pub fn ssh(&self, remote: &str, stdin: Stdio, stdout: Stdio) -> io::Result<Duration> {
        let mut command = Command::new(SSH);
        command
            .args(self.client_options(Side::Ours))
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{}@127.0.0.1", self.user))
            .arg("--")
            .arg(remote);
        run_timed(command, stdin, stdout)
    }

    /// The cipher sessions negotiate (for the machine notes).
    pub fn cipher(&self) -> String {
        let output = Command::new(SSH)
            .args(["-G", "-F", "/dev/null", "127.0.0.1"])
            .stdin(Stdio::null())
            .output();
        let text = output
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("ciphers "))
            .and_then(|list| list.split(',').next())
            .unwrap_or("default")
            .to_string()
    }

    fn client_options(&self, side: Side) -> Vec<String> {
        let mut options = vec!["-F".to_string(), "/dev/null".to_string()];
        for option in [
            "BatchMode=yes",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "GlobalKnownHostsFile=/dev/null",
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "LogLevel=ERROR",
            "ConnectTimeout=10",
        ] {
            options.push("-o".into());
            options.push(option.into());
        }
        options.push("-i".into());
        options.push(self.dir.join(key_name(side)).display().to_string());
        options
    }

    fn wait_until_listening(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let log = self.dir.join("sshd.log");
        let ready = format!("Server listening on 127.0.0.1 port {}", self.port);
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!("sshd exited ({status}):\n{text}")));
            }
            if text.contains(&ready) && TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!("sshd did not start:\n{text}")));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Makes sure a session with `side`'s key runs the intended program, so
    /// that the two columns can never silently measure the same binary.
    fn check_remote_scp(&self, side: Side) -> io::Result<()> {
        let mut command = Command::new(SSH);
        command
            .args(self.client_options(side))
            .arg("-p")
            .arg(self.port.to_string())
            .arg(format!("{}@127.0.0.1", self.user))
            .arg("command -v scp");
        let output = command.stdin(Stdio::null()).output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let found = text.lines().last().unwrap_or("").trim();
        let expected = self.dir.join(bin_dir_name(side)).join("scp");
        if Path::new(found) == expected {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "remote scp for this key is {found:?}, expected {}; stderr: {}",
                expected.display(),
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }
}

impl Drop for PrivateSshd {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl PrivateSshd {
    fn stop(&mut self) {
        // Already gone (and reaped): its group id may be someone else's.
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // timeout(1) leads the group; TERM reaches it and sshd.
        signal_group(self.child.id(), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.child.id(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn bin_dir_name(side: Side) -> &'static str {
    match side {
        Side::Ours => "bin-ours",
        Side::OursCopying => "bin-ours-copying",
        Side::OpenSsh => "bin-openssh",
    }
}

fn key_name(side: Side) -> &'static str {
    match side {
        Side::Ours => "key-ours",
        Side::OursCopying => "key-ours-copying",
        Side::OpenSsh => "key-openssh",
    }
}

fn make_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
}

fn generate_key(path: &Path) -> io::Result<()> {
    let status = Command::new(SSH_KEYGEN)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "scp-bench", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("ssh-keygen failed: {status}")))
    }
}

fn write_authorized_keys(dir: &Path) -> io::Result<()> {
    let mut lines = String::new();
    for side in SIDES {
        let public = fs::read_to_string(dir.join(format!("{}.pub", key_name(side))))?;
        let bin = dir.join(bin_dir_name(side));
        lines.push_str(&format!(
            "environment=\"PATH={}:/usr/local/bin:/usr/bin:/bin\" {}\n",
            bin.display(),
            public.trim()
        ));
    }
    let path = dir.join("authorized_keys");
    fs::write(&path, lines)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
}

fn sshd_config(dir: &Path, port: u16, user: &str) -> String {
    let dir = dir.display();
    format!(
        "# Private sshd of scp-bench; nothing here is global.\n\
         ListenAddress 127.0.0.1\n\
         Port {port}\n\
         HostKey {dir}/host_key\n\
         PidFile {dir}/sshd.pid\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         AllowUsers {user}\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PermitRootLogin prohibit-password\n\
         UsePAM no\n\
         StrictModes no\n\
         PermitUserEnvironment PATH\n\
         PermitUserRC no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         AllowTcpForwarding no\n\
         AllowAgentForwarding no\n\
         PermitTunnel no\n\
         LogLevel ERROR\n"
    )
}

fn spawn_sshd(dir: &Path, lifetime: Duration) -> io::Result<Child> {
    let log = File::create(dir.join("sshd.log"))?;
    Command::new("timeout")
        .args(["--signal=TERM", "--kill-after=10"])
        .arg(format!("{}s", lifetime.as_secs().max(1)))
        .args([SSHD, "-D", "-e", "-o", "LogLevel=INFO", "-f"])
        .arg(dir.join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The login name of the effective uid, from /etc/passwd.
fn current_user() -> io::Result<String> {
    let uid = fs::metadata("/proc/self")?.uid().to_string();
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[2] == uid)
        .map(|f| f[0].to_string())
        .ok_or_else(|| io::Error::other(format!("uid {uid} has no /etc/passwd entry")))
}

/// Runs a client command in its own process group and returns its wall
/// time; a command over the limit is killed with its group (scp's ssh).
fn run_timed(mut command: Command, stdin: Stdio, stdout: Stdio) -> io::Result<Duration> {
    let started = Instant::now();
    let mut child = command
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let stderr = child.stderr.take();
    let collector = thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut e) = stderr {
            let _ = io::Read::read_to_string(&mut e, &mut text);
        }
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > CLIENT_LIMIT {
            signal_group(child.id(), Signal::SIGKILL);
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "{command:?}: killed after {CLIENT_LIMIT:?}"
            )));
        }
        thread::sleep(Duration::from_micros(500));
    };
    let elapsed = started.elapsed();
    let stderr = collector.join().unwrap_or_default();
    if status.success() {
        Ok(elapsed)
    } else {
        Err(io::Error::other(format!("{command:?}: {status}: {stderr}")))
    }
}

fn signal_group(pgid: u32, signal: Signal) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    // The group our own child leads; not yet reaped, so not reused.
    let _ = killpg(Pid::from_raw(pgid), signal);
}
