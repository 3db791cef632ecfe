//! Load test (issue 8): many concurrent `scp -O` sessions through a private
//! sshd on 127.0.0.1, uploads and downloads of varied sizes mixed, a few
//! clients killed with SIGKILL mid-transfer.
//!
//! Checked: every completed file has the sender's SHA-256; every killed
//! upload's target holds its old content (or is absent if it was new);
//! every server session ends once its client is gone; no temporary upload
//! file is left, except possibly beside a killed upload, and those the
//! shipped systemd cleanup removes. Reported: total time and the peak RSS
//! (VmHWM) of each server session, sampled from /proc while it runs.
//!
//! CI runs 20 sessions. The full size (100) is one command:
//!
//! ```sh
//! SCP_LOAD_SESSIONS=100 cargo test --release --test load -- --nocapture
//! ```
//!
//! `SCP_LOAD_SERVER=PATH` runs another build of the server, e.g. the
//! static one (`SCP_LOAD_SERVER=$(bash scripts/build-static.sh)`), whose
//! peak RSS is the installed product's.

mod cleanup;
mod sshd;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use sha2::{Digest, Sha256};
use sshd::{PrivateSshd, SshdOptions, remote_shell_escape, run_bounded};

/// The server program: `SCP_LOAD_SERVER` (e.g. the static build, whose
/// RSS is the product's), else the binary cargo built for the tests.
const SERVER_VAR: &str = "SCP_LOAD_SERVER";

fn server() -> PathBuf {
    let path = std::env::var_os(SERVER_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_scp-server")));
    fs::canonicalize(&path).unwrap_or(path)
}

/// Number of concurrent sessions: `SCP_LOAD_SESSIONS`, else the CI size.
const SESSIONS_VAR: &str = "SCP_LOAD_SESSIONS";
const CI_SESSIONS: usize = 20;

/// Every client command is killed after this; the whole test ends within
/// about this plus the checks (the private sshd itself dies after 300 s).
const CLIENT_LIMIT: Duration = Duration::from_secs(150);

/// How long server sessions may take to end after their clients did.
const SERVER_EXIT_LIMIT: Duration = Duration::from_secs(30);

/// Rate limit (Kbit/s, scp's `-l`) of the clients that get killed: slow
/// enough that the kill surely lands mid-transfer.
const KILLED_CLIENT_KBITS: &str = "2000";
const KILLED_SIZE: usize = 3 * 1024 * 1024;

/// File sizes, cycled: empty, tiny, around the data path's 64 KiB
/// small-file threshold, up to a few MiB.
const SIZES: [usize; 9] = [
    0, 1, 777, 65_535, 65_537, 300_000, 1_048_576, 2_500_000, 4_000_000,
];

fn sessions() -> usize {
    match std::env::var(SESSIONS_VAR) {
        Ok(n) => n
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SESSIONS_VAR}={n:?} is not a number")),
        Err(_) => CI_SESSIONS,
    }
}

// ---------------------------------------------------------------------------
// What each session does

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Upload,
    Download,
}

/// One session: direction, size, whether the upload replaces a file, and
/// whether its client is killed.
#[derive(Debug)]
struct Plan {
    index: usize,
    direction: Direction,
    size: usize,
    /// An upload over an existing file (its old content must survive a
    /// kill).
    overwrite: bool,
    killed: bool,
}

impl Plan {
    /// Even sessions upload, odd ones download; one in four uploads
    /// replaces a file; three in twenty clients are killed (an overwrite,
    /// a new upload and a download).
    fn new(index: usize) -> Plan {
        let direction = if index.is_multiple_of(2) {
            Direction::Upload
        } else {
            Direction::Download
        };
        let killed = matches!(index % 20, 4 | 8 | 15);
        let base = SIZES[(index / 2) % SIZES.len()];
        let size = match (killed, base) {
            (true, _) => KILLED_SIZE,
            (false, 0) => 0,
            (false, base) => base + (index % 7) * 13,
        };
        Plan {
            index,
            direction,
            size,
            overwrite: direction == Direction::Upload && index.is_multiple_of(4),
            killed,
        }
    }

    fn content(&self) -> Vec<u8> {
        payload(self.size, self.index as u64 + 1)
    }

    fn old_content(&self) -> Vec<u8> {
        payload(1000 + self.index, self.index as u64 + 10_000)
    }

    /// The session's own directory on the server side.
    fn server_dir(&self, world: &World) -> PathBuf {
        world.server.join(format!("s{}", self.index))
    }

    fn server_file(&self, world: &World) -> PathBuf {
        self.server_dir(world).join("file")
    }

    fn client_file(&self, world: &World) -> PathBuf {
        world.client.join(format!("c{}", self.index))
    }

    /// The file the sender reads, written before the clock starts.
    fn prepare(&self, world: &World) {
        fs::create_dir(self.server_dir(world)).expect("session directory");
        let (source, other) = match self.direction {
            Direction::Upload => (self.client_file(world), self.server_file(world)),
            Direction::Download => (self.server_file(world), self.client_file(world)),
        };
        fs::write(&source, self.content()).expect("write source file");
        if self.overwrite {
            fs::write(other, self.old_content()).expect("write old target");
        }
    }

    /// scp's arguments: `[-l N] FROM TO`.
    fn scp_args(&self, world: &World) -> Vec<OsString> {
        let remote = world
            .sshd
            .remote(&world.user, remote_shell_escape(&self.server_file(world)));
        let local = self.client_file(world).into_os_string();
        let mut args: Vec<OsString> = Vec::new();
        if self.killed {
            args.extend(["-l".into(), KILLED_CLIENT_KBITS.into()]);
        }
        match self.direction {
            Direction::Upload => args.extend([local, remote]),
            Direction::Download => args.extend([remote, local]),
        }
        args
    }
}

/// Deterministic pseudo-random bytes (xorshift): no two files, and no two
/// blocks of one file, alike.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn sha256_of(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok().map(|b| Sha256::digest(&b).to_vec())
}

// ---------------------------------------------------------------------------
// The world: the private sshd and the two sides' directories

struct World {
    sshd: PrivateSshd,
    user: String,
    /// The server side's files (what scp-server reads and writes).
    server: PathBuf,
    /// The client side's files.
    client: PathBuf,
}

impl World {
    /// sshd's default MaxStartups (10:30:100) drops unauthenticated
    /// connections beyond 10 at random; all sessions connect at once.
    fn start(sessions: usize) -> Option<World> {
        let options = SshdOptions {
            extra_config: format!("MaxStartups {}\n", 2 * sessions + 10),
            ..SshdOptions::default()
        };
        let sshd = PrivateSshd::start_with(&server(), &options)?;
        let user = sshd.login().name.clone();
        let server = sshd.work_dir().join("server");
        let client = sshd.work_dir().join("client");
        fs::create_dir(&server).expect("server directory");
        fs::create_dir(&client).expect("client directory");
        Some(World {
            sshd,
            user,
            server,
            client,
        })
    }

    /// The program sshd runs for each session (a copy of the binary).
    fn server_program(&self) -> PathBuf {
        self.sshd.bin_dir().join("scp")
    }
}

// ---------------------------------------------------------------------------
// Running the sessions

/// How one session's client ended.
#[derive(Debug)]
enum Ending {
    Finished {
        ok: bool,
        detail: String,
    },
    Killed,
    /// The kill could not be placed mid-transfer.
    NotKilled(String),
}

fn run_session(world: &World, plan: &Plan, start: &Barrier) -> Ending {
    let mut command = world.sshd.scp_command(plan.scp_args(world));
    start.wait();
    if !plan.killed {
        let outcome = run_bounded(command, CLIENT_LIMIT);
        return Ending::Finished {
            ok: outcome.succeeded(),
            detail: outcome.to_string(),
        };
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = command.spawn().expect("start scp");
    kill_mid_transfer(world, plan, &mut child)
}

/// Waits until bytes are moving — the server's temporary file exists
/// (upload) or the client's file has content (download) — then kills the
/// client's process group (scp and its ssh) with SIGKILL.
fn kill_mid_transfer(world: &World, plan: &Plan, child: &mut Child) -> Ending {
    let deadline = Instant::now() + CLIENT_LIMIT;
    let moving = || match plan.direction {
        Direction::Upload => !cleanup::temp_files_under(&plan.server_dir(world)).is_empty(),
        Direction::Download => fs::metadata(plan.client_file(world)).is_ok_and(|m| m.len() > 0),
    };
    let ending = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Ending::NotKilled(format!("client ended first: {status}"));
        }
        if moving() {
            let group = Pid::from_raw(child.id() as i32);
            let _ = killpg(group, Signal::SIGKILL);
            break Ending::Killed;
        }
        if Instant::now() >= deadline {
            break Ending::NotKilled("the transfer never started".into());
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
    ending
}

// ---------------------------------------------------------------------------
// Peak RSS of the server sessions

/// Samples VmHWM (the peak RSS of the process's own image) of every
/// running server session, by pid. Only samples taken once the session
/// has written to its client count: one caught in the instant after exec
/// would report the size of an empty process. A session that starts and
/// ends between two samples is missed; the report says how many were seen.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<HashMap<u32, u64>>,
}

impl RssSampler {
    fn start(program: PathBuf) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut peaks: HashMap<u32, u64> = HashMap::new();
            while !flag.load(Ordering::Relaxed) {
                for pid in server_pids(&program) {
                    if !has_written(pid) {
                        continue;
                    }
                    if let Some(kib) = vm_hwm_kib(pid) {
                        let peak = peaks.entry(pid).or_insert(0);
                        *peak = (*peak).max(kib);
                    }
                }
                thread::sleep(Duration::from_millis(1));
            }
            peaks
        });
        RssSampler { stop, thread }
    }

    /// Peak RSS in KiB of every session seen.
    fn finish(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let peaks = self.thread.join().expect("RSS sampler");
        peaks.into_values().collect()
    }
}

/// Processes running `program` now. The executable is checked on every
/// pass: a session's pid is sshd's, then the shell's, before it execs
/// the server.
fn server_pids(program: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == program))
        .collect()
}

/// `wchar` of /proc/PID/io is 2 or more: the server has answered the
/// first record (a sink's first byte is its bare "ready"; it writes nothing
/// but protocol bytes with write(2)), so its buffers are in place.
fn has_written(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/io")).is_ok_and(|io| {
        io.lines()
            .find_map(|line| line.strip_prefix("wchar:"))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .is_some_and(|n| n >= 2)
    })
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Waits until no server session runs any more: a client's death reaches
/// its server as EOF or EPIPE, which must end it.
fn wait_for_servers_to_end(program: &Path) -> Result<(), String> {
    let deadline = Instant::now() + SERVER_EXIT_LIMIT;
    loop {
        let left = server_pids(program);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "server sessions still running {SERVER_EXIT_LIMIT:?} after their clients ended: pids {left:?}"
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// Checks

/// Everything wrong with one session's result (empty: all well).
fn check_session(world: &World, plan: &Plan, ending: &Ending) -> Vec<String> {
    let name = format!(
        "session {} ({:?}, {} bytes)",
        plan.index, plan.direction, plan.size
    );
    let mut problems = Vec::new();
    match ending {
        Ending::Finished { ok: false, detail } => {
            problems.push(format!("{name}: client failed\n{detail}"));
        }
        Ending::NotKilled(why) => problems.push(format!("{name}: not killed mid-transfer: {why}")),
        Ending::Finished { ok: true, .. } => {
            let expected = Some(Sha256::digest(plan.content()).to_vec());
            let (from, to) = match plan.direction {
                Direction::Upload => (plan.client_file(world), plan.server_file(world)),
                Direction::Download => (plan.server_file(world), plan.client_file(world)),
            };
            if sha256_of(&from) != expected || sha256_of(&to) != expected {
                problems.push(format!("{name}: SHA-256 of {} differs", to.display()));
            }
        }
        Ending::Killed => {
            let target = plan.server_file(world);
            let expected = match (plan.direction, plan.overwrite) {
                (Direction::Upload, true) => Some(Sha256::digest(plan.old_content()).to_vec()),
                (Direction::Upload, false) => None,
                (Direction::Download, _) => Some(Sha256::digest(plan.content()).to_vec()),
            };
            if sha256_of(&target) != expected {
                problems.push(format!(
                    "{name}: killed, and {} is neither intact nor absent",
                    target.display()
                ));
            }
        }
    }
    problems.extend(stray_entries(world, plan, ending));
    problems
}

/// Anything in the session's server directory besides its file, except a
/// temporary file of a killed session (the cleanup's business).
fn stray_entries(world: &World, plan: &Plan, ending: &Ending) -> Vec<String> {
    let Ok(entries) = fs::read_dir(plan.server_dir(world)) else {
        return vec![format!("session {}: directory unreadable", plan.index)];
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name != "file")
        .filter(|name| !(matches!(ending, Ending::Killed) && cleanup::is_temp_name(name)))
        .map(|name| format!("session {}: left behind: {name}", plan.index))
        .collect()
}

/// Temporary files left by killed sessions: the shipped cleanup removes
/// them once they are old enough. Returns how many there were.
fn clean_up_killed_sessions(world: &World) -> Result<usize, String> {
    let leftovers = cleanup::temp_files_under(&world.server);
    for temp in &leftovers {
        cleanup::make_older_than_cleanup_age(temp);
    }
    cleanup::run_cleanup(&world.server);
    let remaining = cleanup::temp_files_under(&world.server);
    if remaining.is_empty() {
        Ok(leftovers.len())
    } else {
        Err(format!("the cleanup left {remaining:?}"))
    }
}

// ---------------------------------------------------------------------------
// Report

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn report(plans: &[Plan], elapsed: Duration, peaks: &mut [u64], temps: usize) {
    let uploads = plans
        .iter()
        .filter(|p| p.direction == Direction::Upload)
        .count();
    let killed = plans.iter().filter(|p| p.killed).count();
    let bytes: usize = plans.iter().filter(|p| !p.killed).map(|p| p.size).sum();
    println!(
        "load: {} concurrent scp -O sessions ({uploads} uploads, {} downloads, {killed} clients killed mid-transfer)",
        plans.len(),
        plans.len() - uploads
    );
    println!("load: server program {}", server().display());
    println!(
        "load: total time {:.2} s for {:.1} MiB in completed files",
        elapsed.as_secs_f64(),
        bytes as f64 / 1048576.0
    );
    peaks.sort_unstable();
    if let (Some(min), Some(max)) = (peaks.first(), peaks.last()) {
        println!(
            "load: peak RSS per server session (VmHWM, {} of {} sessions sampled): min {:.2} MiB, median {:.2} MiB, max {:.2} MiB",
            peaks.len(),
            plans.len(),
            mib(*min),
            mib(peaks[peaks.len() / 2]),
            mib(*max)
        );
    } else {
        println!("load: no server session was sampled for its RSS");
    }
    println!("load: temporary files left by killed sessions, removed by the cleanup: {temps}");
}

// ---------------------------------------------------------------------------

#[test]
fn concurrent_sessions_with_clients_killed_midway() {
    let count = sessions();
    let Some(world) = World::start(count) else {
        return;
    };
    let plans: Vec<Plan> = (0..count).map(Plan::new).collect();
    for plan in &plans {
        plan.prepare(&world);
    }
    let sampler = RssSampler::start(world.server_program());
    let start = Barrier::new(count + 1);
    let (endings, elapsed) = thread::scope(|s| {
        let (world, start) = (&world, &start);
        let handles: Vec<_> = plans
            .iter()
            .map(|plan| s.spawn(move || run_session(world, plan, start)))
            .collect();
        start.wait();
        let started = Instant::now();
        let endings: Vec<Ending> = handles
            .into_iter()
            .map(|h| h.join().expect("session thread"))
            .collect();
        (endings, started.elapsed())
    });
    let mut problems: Vec<String> = Vec::new();
    if let Err(e) = wait_for_servers_to_end(&world.server_program()) {
        problems.push(e);
    }
    let mut peaks = sampler.finish();
    for (plan, ending) in plans.iter().zip(&endings) {
        problems.extend(check_session(&world, plan, ending));
    }
    let temps = clean_up_killed_sessions(&world).unwrap_or_else(|e| {
        problems.push(e);
        0
    });
    report(&plans, elapsed, &mut peaks, temps);
    println!("load: failures: {}", problems.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
