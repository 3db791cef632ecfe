//! Running the measured process: wall time around it, and its own CPU time
//! and peak RSS from wait4(2), which reports exactly that child (getrusage
//! of all children would mix runs and keep the largest RSS ever seen).

use std::ffi::{OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

use crate::client::Replies;

/// What one run of a measured process cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub wall: Duration,
    /// User plus system CPU time of the process itself.
    pub cpu: Duration,
    pub peak_rss_kib: u64,
}

impl Sample {
    /// Adds another process's figures (sequential processes: times add up,
    /// the peak is the larger one).
    pub fn add(&mut self, other: Sample) {
        self.wall += other.wall;
        self.cpu += other.cpu;
        self.peak_rss_kib = self.peak_rss_kib.max(other.peak_rss_kib);
    }
}

/// A program to measure, with any arguments that go before the scp ones.
#[derive(Clone)]
pub struct Program {
    path: PathBuf,
    leading: Vec<OsString>,
}

impl Program {
    pub fn new(path: impl AsRef<Path>) -> Program {
        Program {
            path: path.as_ref().to_path_buf(),
            leading: Vec::new(),
        }
    }

    pub fn with_args<S: AsRef<OsStr>>(path: impl AsRef<Path>, leading: &[S]) -> Program {
        Program {
            path: path.as_ref().to_path_buf(),
            leading: leading.iter().map(|a| a.as_ref().to_owned()).collect(),
        }
    }
}

/// A measured process with pipes on stdin and stdout, started now.
pub struct Measured {
    child: Child,
    started: Instant,
    /// Peak RSS noted while the process was known to be alive.
    high_water: Option<u64>,
    pub stdin: Option<ChildStdin>,
    pub replies: Replies,
}

impl Measured {
    pub fn start<S: AsRef<OsStr>>(program: &Program, args: &[S]) -> io::Result<Measured> {
        let started = Instant::now();
        let mut child = Command::new(&program.path)
            .args(&program.leading)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout: ChildStdout = child.stdout.take().expect("stdout is piped");
        Ok(Measured {
            child,
            started,
            high_water: None,
            stdin,
            replies: Replies::new(stdout),
        })
    }

    pub fn input(&mut self) -> &mut ChildStdin {
        self.stdin.as_mut().expect("stdin still open")
    }

    /// Notes the peak RSS now. Call it where the process still waits for
    /// us (before the reply that lets it exit) if it would exit before
    /// `finish`; by then the work is done and the figure is final.
    pub fn note_peak_rss(&mut self) {
        self.high_water = peak_rss_of_live_process(self.child.id()).or(self.high_water);
    }

    /// Closes stdin (the end of the session for the server), checks that
    /// nothing more comes, and waits for a successful exit.
    pub fn finish(mut self) -> io::Result<Sample> {
        // A process still waiting for input is alive: read it now.
        let high_water = peak_rss_of_live_process(self.child.id()).or(self.high_water);
        drop(self.stdin.take());
        self.replies.expect_end()?;
        let (status, usage) = wait_with_usage(&self.child)?;
        let wall = self.started.elapsed();
        if !exited_zero(status) {
            return Err(io::Error::other(format!(
                "measured process ended with wait status {status:#x}"
            )));
        }
        Ok(Sample {
            wall,
            cpu: timeval(usage.ru_utime) + timeval(usage.ru_stime),
            peak_rss_kib: high_water.unwrap_or_else(|| u64::try_from(usage.ru_maxrss).unwrap_or(0)),
        })
    }
}

/// VmHWM of a running process: the peak RSS of its own address space
/// since exec. `ru_maxrss` is no substitute: std starts children with
/// vfork, and exec folds the parent's (our) RSS into the child's maximum.
/// `None` once the process has exited (a zombie has no memory figures).
fn peak_rss_of_live_process(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// wait4(2) for one child: its exit status and its own resource usage.
fn wait_with_usage(child: &Child) -> io::Result<(i32, libc::rusage)> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let mut status = 0;
    let mut usage = MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: `status` and `usage` are valid for writes for the whole
        // call; `pid` is our own unreaped child (std's `Child` is never
        // waited for elsewhere), so no other process can be reaped.
        let ret = unsafe { libc::wait4(pid, &mut status, 0, usage.as_mut_ptr()) };
        if ret == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    // SAFETY: wait4 returned the child, so it filled in `usage`; an all-zero
    // rusage (its starting value) is a valid value of this plain C struct.
    Ok((status, unsafe { usage.assume_init() }))
}

fn exited_zero(status: i32) -> bool {
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}

/// Runs `work` with this thread — and so every process it starts — bound
/// to one CPU, then restores the previous binding. Ping-pong workloads
/// (many small files, start-up) measure the server's own cost this way: on
/// two CPUs, each reply is a cross-CPU wake-up, which in a VM whose other
/// CPU has gone idle costs tens of microseconds and would swamp the
/// difference between the servers.
pub fn on_one_cpu<T>(work: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let me = Pid::from_raw(0);
    let previous = sched_getaffinity(me).map_err(io::Error::from)?;
    let last = (0..CpuSet::count())
        .rev()
        .find(|&cpu| previous.is_set(cpu).unwrap_or(false))
        .ok_or_else(|| io::Error::other("no CPU in the affinity mask"))?;
    let mut one = CpuSet::new();
    one.set(last).map_err(io::Error::from)?;
    sched_setaffinity(me, &one).map_err(io::Error::from)?;
    let result = work();
    sched_setaffinity(me, &previous).map_err(io::Error::from)?;
    result
}

/// The median of the samples' values (mean of the middle two for an even
/// count).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}
