//! scp-bench: OpenSSH's server-side scp and scp-server, side by side.
//!
//! Each workload runs both servers in the same process run, alternating
//! (ours, OpenSSH, reference; the next round in reverse order), so that a
//! machine busy with something else slows both alike; the table shows
//! medians and the ratio ours/OpenSSH against the targets of issue 7.
//! Rows 1–4 play the SCP client over pipes so that the measured process is
//! the server alone; row 5 goes through a private sshd with `scp -O`.
//!
//! Usage: scp-bench --dir DIR --ours BIN [--openssh BIN] [--quick]
//!        [--runs N] [--out FILE] [--no-e2e] [--no-pin] [--only 1,2,5a,…] [--note TEXT]...

mod client;
mod measure;
mod report;
mod responder;
mod scenarios;
mod sshd;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use measure::{Program, Sample};
use report::{Metric, Runs, Table, Target};
use scenarios::{Pacing, TreeShape};
use sshd::{PrivateSshd, Side};

struct Options {
    quick: bool,
    runs: usize,
    dir: PathBuf,
    ours: PathBuf,
    openssh: PathBuf,
    scp_client: PathBuf,
    out: Option<PathBuf>,
    e2e: bool,
    /// Run rows 3 and 4 with driver and server on one CPU.
    pin: bool,
    /// Workloads to run: 1–4, 5 (all end-to-end) or 5a–5f; all by default.
    only: Vec<String>,
    notes: Vec<String>,
}

impl Options {
    fn ours(&self) -> Program {
        Program::new(&self.ours)
    }

    fn openssh(&self) -> Program {
        Program::new(&self.openssh)
    }

    /// Whether workload `id` ("1"…"4", "5a"…"5f") was asked for; "5"
    /// stands for all of 5a–5f.
    fn wants(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| id.starts_with(o.as_str()))
    }
}

/// Workload sizes: the issue's in full mode, small ones in quick mode.
struct Sizes {
    big: u64,
    e2e_big: u64,
    tree: TreeShape,
    startups: usize,
}

impl Sizes {
    fn for_mode(quick: bool) -> Sizes {
        if quick {
            Sizes {
                big: 16 << 20,
                e2e_big: 16 << 20,
                tree: TreeShape {
                    dirs: 4,
                    files_per_dir: 25,
                    file_size: 4096,
                },
                startups: 10,
            }
        } else {
            Sizes {
                big: 1 << 30,
                e2e_big: 512 << 20,
                tree: TreeShape {
                    dirs: 100,
                    files_per_dir: 100,
                    file_size: 4096,
                },
                startups: 200,
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, path] = args.as_slice()
        && flag == "--splice-sink"
    {
        return match responder::splice_sink(path) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("scp-bench --splice-sink: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("--null-server") {
        return match responder::run(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("scp-bench --null-server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let options = match parse_args(args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("scp-bench: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args(args: Vec<String>) -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        runs: 0,
        dir: PathBuf::new(),
        ours: PathBuf::new(),
        openssh: PathBuf::from("/usr/bin/scp"),
        scp_client: PathBuf::from("/usr/bin/scp"),
        out: None,
        e2e: true,
        pin: true,
        only: Vec::new(),
        notes: Vec::new(),
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--no-e2e" => options.e2e = false,
            "--no-pin" => options.pin = false,
            "--runs" => options.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--dir" => options.dir = PathBuf::from(value()?),
            "--ours" => options.ours = PathBuf::from(value()?),
            "--openssh" => options.openssh = PathBuf::from(value()?),
            "--scp-client" => options.scp_client = PathBuf::from(value()?),
            "--out" => options.out = Some(PathBuf::from(value()?)),
            "--note" => options.notes.push(value()?),
            "--only" => {
                let list = value()?;
                options.only.extend(list.split(',').map(str::to_string));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if options.dir.as_os_str().is_empty() || options.ours.as_os_str().is_empty() {
        return Err("--dir and --ours are required".into());
    }
    if options.runs == 0 {
        options.runs = if options.quick { 1 } else { 5 };
    }
    Ok(options)
}

/// One contender of a workload: a name for progress lines and one run.
type Contender<'a> = (&'static str, Box<dyn FnMut() -> io::Result<Sample> + 'a>);

/// Runs every contender `runs` times, alternating, after one untimed
/// warm-up each (page cache, binaries, tmpfs). Odd rounds go in reverse
/// order so that neither side always runs right after the other.
fn alternate(
    workload: &str,
    runs: usize,
    contenders: &mut [Contender<'_>],
) -> io::Result<Vec<Vec<Sample>>> {
    for (name, run) in contenders.iter_mut() {
        run().map_err(|e| io::Error::other(format!("{workload}, {name} (warm-up): {e}")))?;
    }
    let mut samples = vec![Vec::new(); contenders.len()];
    for round in 0..runs {
        let mut order: Vec<usize> = (0..contenders.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (name, run) = &mut contenders[i];
            let sample = run().map_err(|e| io::Error::other(format!("{workload}, {name}: {e}")))?;
            eprintln!(
                "  {workload}: run {}/{runs} {name:<8} {:>9.3} s wall {:>8.3} s cpu",
                round + 1,
                sample.wall.as_secs_f64(),
                sample.cpu.as_secs_f64()
            );
            samples[i].push(sample);
        }
    }
    Ok(samples)
}

fn run(options: &Options) -> io::Result<()> {
    let sizes = Sizes::for_mode(options.quick);
    let dir = &options.dir;
    fs::create_dir_all(dir)?;
    let load_before = scenarios::read_text(Path::new("/proc/loadavg"));
    let pattern = client::pattern(client::DATA_CHUNK);
    let src = dir.join("src");
    fs::create_dir_all(&src)?;
    let big = src.join("big");
    scenarios::make_file(&big, sizes.big, &pattern)?;
    let tree = src.join("tree");
    scenarios::make_tree(&tree, sizes.tree, &pattern)?;

    let mut table = Table::default();
    if options.wants("1") {
        sink_file_rows(options, &sizes, &pattern, &mut table)?;
    }
    if options.wants("2") {
        source_file_rows(options, &sizes, &big, &mut table)?;
    }
    if options.wants("1c") || options.wants("2c") {
        checksum_rows(options, &sizes, &pattern, &big, &mut table)?;
    }
    if options.wants("3") {
        ping_pong(options, || {
            tree_rows(options, &sizes, &tree, &pattern, &mut table)
        })?;
    }
    if options.wants("4") {
        ping_pong(options, || startup_rows(options, &sizes, &mut table))?;
    }
    let mut cipher = None;
    if options.e2e
        && ["5a", "5b", "5c", "5d", "5e", "5f"]
            .iter()
            .any(|id| options.wants(id))
    {
        cipher = Some(e2e_rows(options, &sizes, &pattern, &mut table)?);
    } else {
        eprintln!("end-to-end rows skipped (--no-e2e)");
    }
    let load_after = scenarios::read_text(Path::new("/proc/loadavg"));

    let notes = machine_notes(options, &sizes, &load_before, &load_after, cipher);
    let text = format!("{notes}\n{}", table.markdown());
    println!("{text}");
    if let Some(out) = &options.out {
        fs::write(out, format!("# scp-bench results\n\n{text}"))?;
        eprintln!("written to {}", out.display());
    }
    fs::remove_dir_all(dir.join("src"))?;
    Ok(())
}

/// Runs a workload made of request/reply round trips, on one CPU unless
/// `--no-pin` (see `measure::on_one_cpu`).
fn ping_pong(options: &Options, work: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
    if options.pin {
        measure::on_one_cpu(work)
    } else {
        work()
    }
}

/// (1) sink of one big file, new and existing target, beside dd.
fn sink_file_rows(
    options: &Options,
    sizes: &Sizes,
    pattern: &[u8],
    table: &mut Table,
) -> io::Result<()> {
    let size = sizes.big;
    let label = size_label(size);
    let sink_dir = options.dir.join("sink");
    fs::create_dir_all(&sink_dir)?;
    let new_file = |program: &Program| {
        scenarios::warm_page_pool(&options.dir, size, pattern)?;
        let sample = scenarios::sink_one_file(program, &sink_dir, "big", size, pattern, true)?;
        // Freed outside the measurement, so the next run starts alike.
        fs::remove_file(sink_dir.join("big"))?;
        Ok(sample)
    };
    let splice_sink = Program::with_args(std::env::current_exe()?, &["--splice-sink"]);
    let test = format!("1 sink {label}, new file");
    let s = alternate(
        &test,
        options.runs,
        &mut [
            ("ours", Box::new(|| new_file(&options.ours()))),
            ("OpenSSH", Box::new(|| new_file(&options.openssh()))),
            (
                "dd",
                Box::new(|| {
                    scenarios::warm_page_pool(&options.dir, size, pattern)?;
                    let sample = scenarios::dd_sink(&sink_dir, size, pattern)?;
                    fs::remove_file(sink_dir.join("dd.out"))?;
                    Ok(sample)
                }),
            ),
            (
                "splice",
                Box::new(|| {
                    scenarios::warm_page_pool(&options.dir, size, pattern)?;
                    let sample = scenarios::splice_sink(&splice_sink, &sink_dir, size, pattern)?;
                    fs::remove_file(sink_dir.join("splice.out"))?;
                    Ok(sample)
                }),
            ),
        ],
    )?;
    let runs = Runs::from(&s);
    let (ours, openssh, dd, bare) = (&s[0], &s[1], &s[2], &s[3]);
    let bytes = size;
    table.compare(
        &test,
        "throughput MiB/s (ref: dd bs=1M)",
        Metric::Throughput { bytes },
        &runs,
        Target::AtLeast(1.0),
    );
    table.against(
        &test,
        "throughput, ours / dd",
        Metric::Throughput { bytes },
        ("ours", ours),
        dd,
        Target::AtLeast(1.0),
    );
    table.compare(
        &test,
        "CPU s/GiB (ref: dd)",
        Metric::CpuPerGib { bytes },
        &runs,
        Target::AtMost(0.6),
    );
    for (name, samples) in [("ours", ours), ("OpenSSH", openssh)] {
        table.against(
            &test,
            &format!("CPU s/GiB, {name} / bare splice(2) loop"),
            Metric::CpuPerGib { bytes },
            (name, samples),
            bare,
            Target::Report,
        );
    }
    table.compare(
        &test,
        "peak RSS MiB",
        Metric::PeakRss,
        &runs,
        Target::AtMost(1.0),
    );
    let ours_new = ours.clone();

    // Onto an existing file: OpenSSH overwrites in place; ours writes a new
    // file and renames it over the old one, which is then freed.
    let existing_dir = options.dir.join("existing");
    fs::create_dir_all(&existing_dir)?;
    scenarios::make_file(&existing_dir.join("big"), size, pattern)?;
    let overwrite = |program: &Program| {
        scenarios::warm_page_pool(&options.dir, size, pattern)?;
        scenarios::sink_one_file(program, &existing_dir, "big", size, pattern, false)
    };
    let test = format!("1 sink {label}, existing file");
    let s = alternate(
        &test,
        options.runs,
        &mut [
            ("ours", Box::new(|| overwrite(&options.ours()))),
            ("OpenSSH", Box::new(|| overwrite(&options.openssh()))),
        ],
    )?;
    fs::remove_dir_all(&existing_dir)?;
    let runs = Runs::from(&s);
    table.compare(
        &test,
        "throughput MiB/s",
        Metric::Throughput { bytes },
        &runs,
        Target::Report,
    );
    table.compare(
        &test,
        "CPU s/GiB",
        Metric::CpuPerGib { bytes },
        &runs,
        Target::Report,
    );
    table.against(
        &test,
        "throughput, ours: existing / new file",
        Metric::Throughput { bytes },
        ("ours", runs.ours),
        &ours_new,
        Target::Report,
    );

    Ok(())
}

/// (1c, 2c) what `--checksum sha256` costs: ours with and without it,
/// both logging to a JSON file (the digest goes into the file's event, and
/// without a log there is nothing to put it in). Hashing takes the copy
/// path instead of splice/sendfile, so this is also the price of leaving
/// zero-copy.
fn checksum_rows(
    options: &Options,
    sizes: &Sizes,
    pattern: &[u8],
    big: &Path,
    table: &mut Table,
) -> io::Result<()> {
    let size = sizes.big;
    let bytes = size;
    let label = size_label(size);
    let log = format!("json:{}", options.dir.join("audit.jsonl").display());
    let plain = Program::with_args(&options.ours, &["--log", log.as_str()]);
    let hashed = Program::with_args(
        &options.ours,
        &["--log", log.as_str(), "--checksum", "sha256"],
    );

    let sink_dir = options.dir.join("sink-checksum");
    fs::create_dir_all(&sink_dir)?;
    let new_file = |program: &Program| {
        scenarios::warm_page_pool(&options.dir, size, pattern)?;
        let sample = scenarios::sink_one_file(program, &sink_dir, "big", size, pattern, true)?;
        fs::remove_file(sink_dir.join("big"))?;
        Ok(sample)
    };
    let test = format!("1c sink {label}, --checksum sha256");
    let s = alternate(
        &test,
        options.runs,
        &mut [
            ("ours+sha256", Box::new(|| new_file(&hashed))),
            ("ours", Box::new(|| new_file(&plain))),
        ],
    )?;
    fs::remove_dir_all(&sink_dir)?;
    checksum_table_rows(table, &test, bytes, &s);

    let mut scratch = scenarios::scratch();
    let mut scratch_plain = scenarios::scratch();
    let test = format!("2c source {label}, --checksum sha256");
    let s = alternate(
        &test,
        options.runs,
        &mut [
            (
                "ours+sha256",
                Box::new(|| scenarios::source_one_file(&hashed, big, size, &mut scratch)),
            ),
            (
                "ours",
                Box::new(|| scenarios::source_one_file(&plain, big, size, &mut scratch_plain)),
            ),
        ],
    )?;
    checksum_table_rows(table, &test, bytes, &s);
    Ok(())
}

fn checksum_table_rows(table: &mut Table, test: &str, bytes: u64, s: &[Vec<Sample>]) {
    for (label, metric) in [
        (
            "throughput MiB/s, with / without checksum",
            Metric::Throughput { bytes },
        ),
        (
            "CPU s/GiB, with / without checksum",
            Metric::CpuPerGib { bytes },
        ),
    ] {
        table.against(test, label, metric, ("ours", &s[0]), &s[1], Target::Report);
    }
}

/// (2) source of the big file, beside dd.
fn source_file_rows(
    options: &Options,
    sizes: &Sizes,
    big: &Path,
    table: &mut Table,
) -> io::Result<()> {
    let size = sizes.big;
    let bytes = size;
    let label = size_label(size);
    let mut scratch = scenarios::scratch();
    let mut scratch_dd = scenarios::scratch();
    let test = format!("2 source {label}");
    let mut scratch_openssh = scenarios::scratch();
    let s = alternate(
        &test,
        options.runs,
        &mut [
            (
                "ours",
                Box::new(|| scenarios::source_one_file(&options.ours(), big, size, &mut scratch)),
            ),
            (
                "OpenSSH",
                Box::new(|| {
                    scenarios::source_one_file(&options.openssh(), big, size, &mut scratch_openssh)
                }),
            ),
            (
                "dd",
                Box::new(|| scenarios::dd_source(big, size, &mut scratch_dd)),
            ),
        ],
    )?;
    let runs = Runs::from(&s);
    table.compare(
        &test,
        "throughput MiB/s (ref: dd bs=1M)",
        Metric::Throughput { bytes },
        &runs,
        Target::AtLeast(1.5),
    );
    table.compare(
        &test,
        "CPU s/GiB (ref: dd)",
        Metric::CpuPerGib { bytes },
        &runs,
        Target::AtMost(0.5),
    );
    table.compare(
        &test,
        "peak RSS MiB",
        Metric::PeakRss,
        &runs,
        Target::AtMost(1.0),
    );
    Ok(())
}

/// (3) the small-file tree with -r -p, both directions, beside the null
/// server (the floor set by the protocol's round trips and this client);
/// once with a client that waits for every acknowledgement, as real ones
/// do, and once with one that streams (`scenarios::Pacing`).
fn tree_rows(
    options: &Options,
    sizes: &Sizes,
    tree: &Path,
    pattern: &[u8],
    table: &mut Table,
) -> io::Result<()> {
    for pacing in [Pacing::Lockstep, Pacing::Streamed] {
        tree_sink_rows(options, sizes, pattern, pacing, table)?;
        tree_source_rows(options, sizes, tree, pacing, table)?;
    }
    Ok(())
}

fn tree_label(sizes: &Sizes, pacing: Pacing) -> String {
    let shape = sizes.tree;
    let client = match pacing {
        Pacing::Lockstep => "client waits for each reply",
        Pacing::Streamed => "client streams",
    };
    format!(
        "{} files of {} KiB in {} dirs, -r -p, {client}",
        shape.files(),
        shape.file_size / 1024,
        shape.dirs
    )
}

fn tree_sink_rows(
    options: &Options,
    sizes: &Sizes,
    pattern: &[u8],
    pacing: Pacing,
    table: &mut Table,
) -> io::Result<()> {
    let shape = sizes.tree;
    let files = shape.files();
    let sink_into = |program: &Program, dest: &Path, check: bool| {
        fs::create_dir_all(dest)?;
        let sample = match pacing {
            Pacing::Lockstep => scenarios::sink_tree(program, dest, shape, pattern)?,
            Pacing::Streamed => scenarios::sink_tree_streamed(program, dest, shape, pattern)?,
        };
        if check {
            check_files(&dest.join("tree"), files)?;
        }
        Ok(sample)
    };
    let dest_ours = options.dir.join("tree-sink-ours");
    let dest_openssh = options.dir.join("tree-sink-openssh");
    let dest_null = options.dir.join("tree-sink-null");
    let null_sink = null_server(&["sink"])?;
    let test = format!("3 sink {}", tree_label(sizes, pacing));
    let s = alternate(
        &test,
        options.runs,
        &mut [
            (
                "ours",
                Box::new(|| sink_into(&options.ours(), &dest_ours, true)),
            ),
            (
                "OpenSSH",
                Box::new(|| sink_into(&options.openssh(), &dest_openssh, true)),
            ),
            (
                "null",
                Box::new(|| sink_into(&null_sink, &dest_null, false)),
            ),
        ],
    )?;
    for dest in [&dest_ours, &dest_openssh, &dest_null] {
        fs::remove_dir_all(dest)?;
    }
    tree_table_rows(table, &test, files, &s);
    Ok(())
}

fn tree_source_rows(
    options: &Options,
    sizes: &Sizes,
    tree: &Path,
    pacing: Pacing,
    table: &mut Table,
) -> io::Result<()> {
    let shape = sizes.tree;
    let source = |program: &Program, scratch: &mut [u8]| {
        scenarios::source_tree(program, tree, shape, scratch, pacing)
    };
    let mut scratch = [
        scenarios::scratch(),
        scenarios::scratch(),
        scenarios::scratch(),
    ];
    let [scratch_ours, scratch_openssh, scratch_null] = &mut scratch;
    let shape_args = [shape.dirs, shape.files_per_dir, shape.file_size].map(|n| n.to_string());
    let null_source = null_server(&["source", &shape_args[0], &shape_args[1], &shape_args[2]])?;
    let test = format!("3 source {}", tree_label(sizes, pacing));
    let s = alternate(
        &test,
        options.runs,
        &mut [
            ("ours", Box::new(|| source(&options.ours(), scratch_ours))),
            (
                "OpenSSH",
                Box::new(|| source(&options.openssh(), scratch_openssh)),
            ),
            ("null", Box::new(|| source(&null_source, scratch_null))),
        ],
    )?;
    tree_table_rows(table, &test, shape.files(), &s);
    Ok(())
}

/// This driver as a null server (`responder.rs`).
fn null_server(args: &[&str]) -> io::Result<Program> {
    let mut leading = vec!["--null-server"];
    leading.extend_from_slice(args);
    Ok(Program::with_args(std::env::current_exe()?, &leading))
}

fn tree_table_rows(table: &mut Table, test: &str, files: usize, s: &[Vec<Sample>]) {
    let runs = Runs::from(s);
    let per_second = Metric::PerSecond { items: files };
    table.compare(
        test,
        "files/s (ref: null server)",
        per_second,
        &runs,
        Target::AtLeast(1.5),
    );
    table.above_floor(test, "µs per file above the null server", files, &runs);
    let cpu = Metric::CpuUsPer { items: files };
    table.compare(test, "CPU µs per file", cpu, &runs, Target::Report);
}

/// (4) start-up: sequential zero-byte uploads, one process each.
fn startup_rows(options: &Options, sizes: &Sizes, table: &mut Table) -> io::Result<()> {
    let count = sizes.startups;
    let dir_ours = options.dir.join("startup-ours");
    let dir_openssh = options.dir.join("startup-openssh");
    let test = format!("4 startup: {count} zero-byte uploads");
    let s = alternate(
        &test,
        options.runs,
        &mut [
            (
                "ours",
                Box::new(|| scenarios::startup(&options.ours(), &dir_ours, count)),
            ),
            (
                "OpenSSH",
                Box::new(|| scenarios::startup(&options.openssh(), &dir_openssh, count)),
            ),
        ],
    )?;
    fs::remove_dir_all(&dir_ours)?;
    fs::remove_dir_all(&dir_openssh)?;
    let runs = Runs::from(&s);
    table.compare(
        &test,
        "wall ms per upload",
        Metric::WallMsPer { items: count },
        &runs,
        Target::AtMost(1.0),
    );
    table.compare(
        &test,
        "CPU ms per upload",
        Metric::CpuMsPer { items: count },
        &runs,
        Target::AtMost(1.0),
    );
    table.compare(
        &test,
        "peak RSS MiB",
        Metric::PeakRss,
        &runs,
        Target::AtMost(1.0),
    );
    Ok(())
}

/// (5) end to end through a private sshd with `scp -O`, beside plain
/// `ssh host cat` as the transport ceiling. Returns the cipher in use.
fn e2e_rows(
    options: &Options,
    sizes: &Sizes,
    pattern: &[u8],
    table: &mut Table,
) -> io::Result<String> {
    let base = options.dir.join("e2e");
    fs::create_dir_all(&base)?;
    // Enough for the full run many times over; sshd stops by itself then.
    let lifetime = Duration::from_secs(if options.quick { 600 } else { 3600 });
    // Keys, config and the two `scp` programs live apart from the work
    // directory, which may be mounted noexec (/dev/shm often is).
    let sshd_dir = std::env::temp_dir().join(format!("scp-bench-sshd-{}", std::process::id()));
    let sshd = PrivateSshd::start(
        &sshd_dir,
        &options.ours,
        &options.openssh,
        &options.scp_client,
        lifetime,
    )?;
    let e2e = E2e {
        options,
        pattern,
        sshd: &sshd,
        local: base.join("local"),
        remote: base.join("remote"),
    };
    fs::create_dir_all(&e2e.local)?;
    fs::create_dir_all(&e2e.remote)?;
    if ["5a", "5b", "5c", "5d"].iter().any(|id| options.wants(id)) {
        let big = e2e.local.join("big");
        scenarios::make_file(&big, sizes.e2e_big, pattern)?;
        for (id, into) in [("5a", Into::File), ("5c", Into::DevNull)] {
            if options.wants(id) {
                e2e.upload_big(&big, sizes.e2e_big, into, table)?;
            }
        }
        for (id, into) in [("5b", Into::File), ("5d", Into::DevNull)] {
            if options.wants(id) {
                e2e.download_big(&big, sizes.e2e_big, into, table)?;
            }
        }
        remove_file_if_present(&big)?;
    }
    let tree = options.dir.join("src").join("tree");
    if options.wants("5e") {
        e2e.tree_e2e(&tree, sizes.tree.files(), true, table)?;
    }
    if options.wants("5f") {
        e2e.tree_e2e(&tree, sizes.tree.files(), false, table)?;
    }
    let cipher = sshd.cipher();
    drop(sshd);
    fs::remove_dir_all(&base)?;
    Ok(cipher)
}

/// Where a big end-to-end transfer writes: a file (the whole job), or
/// /dev/null, which leaves out the receiving side's filesystem work so that
/// what remains is the transport and the two scp programs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Into {
    File,
    DevNull,
}

impl Into {
    fn label(self) -> &'static str {
        match self {
            Into::File => "into a file",
            Into::DevNull => "into /dev/null",
        }
    }
}

/// The end-to-end workloads; "remote" paths are on this machine too, reached
/// through sshd.
struct E2e<'a> {
    options: &'a Options,
    pattern: &'a [u8],
    sshd: &'a PrivateSshd,
    local: PathBuf,
    remote: PathBuf,
}

fn wall_only(wall: Duration) -> Sample {
    Sample {
        wall,
        ..Sample::default()
    }
}

impl E2e<'_> {
    /// (5a, 5c) `scp -O BIG host:DEST`, beside `ssh host 'cat >/dev/null'
    /// <BIG`.
    fn upload_big(&self, big: &Path, size: u64, into: Into, table: &mut Table) -> io::Result<()> {
        let target = match into {
            Into::File => self.remote.join("up-big"),
            Into::DevNull => PathBuf::from("/dev/null"),
        };
        let remote_target = self.sshd.remote(&target);
        let upload = |side: Side| {
            if into == Into::File {
                remove_file_if_present(&target)?;
                scenarios::warm_page_pool(&self.options.dir, size, self.pattern)?;
            }
            let wall = self.sshd.scp(side, &[&path_str(big), &remote_target])?;
            Ok(wall_only(wall))
        };
        let ceiling = || {
            let input = Stdio::from(fs::File::open(big)?);
            let wall = self.sshd.ssh("cat >/dev/null", input, Stdio::null())?;
            Ok(wall_only(wall))
        };
        let test = format!("5 e2e upload {} {}", size_label(size), into.label());
        let s = alternate(
            &test,
            self.options.runs,
            &mut [
                ("ours", Box::new(|| upload(Side::Ours))),
                ("OpenSSH", Box::new(|| upload(Side::OpenSsh))),
                ("ceiling", Box::new(ceiling)),
                ("ours-rw", Box::new(|| upload(Side::OursCopying))),
            ],
        )?;
        if into == Into::File {
            remove_file_if_present(&target)?;
        }
        e2e_big_rows(table, &test, "ssh host 'cat >/dev/null'", size, &s);
        Ok(())
    }

    /// (5b, 5d) `scp -O host:BIG DEST`, beside `ssh host 'cat BIG'
    /// >/dev/null`.
    fn download_big(&self, big: &Path, size: u64, into: Into, table: &mut Table) -> io::Result<()> {
        let source = self.remote.join("down-src");
        fs::copy(big, &source)?;
        let remote_source = self.sshd.remote(&source);
        let target = match into {
            Into::File => self.local.join("down-big"),
            Into::DevNull => PathBuf::from("/dev/null"),
        };
        let download = |side: Side| {
            if into == Into::File {
                remove_file_if_present(&target)?;
                scenarios::warm_page_pool(&self.options.dir, size, self.pattern)?;
            }
            let wall = self.sshd.scp(side, &[&remote_source, &path_str(&target)])?;
            Ok(wall_only(wall))
        };
        let ceiling = || {
            let command = format!("cat {}", source.display());
            let output = Stdio::from(fs::File::create("/dev/null")?);
            let wall = self.sshd.ssh(&command, Stdio::null(), output)?;
            Ok(wall_only(wall))
        };
        let test = format!("5 e2e download {} {}", size_label(size), into.label());
        let s = alternate(
            &test,
            self.options.runs,
            &mut [
                ("ours", Box::new(|| download(Side::Ours))),
                ("OpenSSH", Box::new(|| download(Side::OpenSsh))),
                ("ceiling", Box::new(ceiling)),
                ("ours-rw", Box::new(|| download(Side::OursCopying))),
            ],
        )?;
        remove_file_if_present(&source)?;
        if into == Into::File {
            remove_file_if_present(&target)?;
        }
        e2e_big_rows(table, &test, "ssh host 'cat FILE' >/dev/null", size, &s);
        Ok(())
    }

    /// (5e) `scp -O -r -p TREE host:DIR/` and (5f) `scp -O -r -p host:TREE
    /// DIR/`.
    fn tree_e2e(&self, tree: &Path, files: usize, up: bool, table: &mut Table) -> io::Result<()> {
        let transfer = |side: Side| {
            let into = if up { &self.remote } else { &self.local };
            let dest = into.join(side_name(side));
            remove_dir_if_present(&dest)?;
            fs::create_dir(&dest)?;
            let (from, to) = if up {
                (path_str(tree), self.sshd.remote(&dest))
            } else {
                (self.sshd.remote(tree), path_str(&dest))
            };
            let wall = self.sshd.scp(side, &["-r", "-p", &from, &to])?;
            check_files(&dest, files)?;
            Ok(wall_only(wall))
        };
        let direction = if up { "upload" } else { "download" };
        let test = format!("5 e2e {direction} tree of {files} files, -r -p");
        let s = alternate(
            &test,
            self.options.runs,
            &mut [
                ("ours", Box::new(|| transfer(Side::Ours))),
                ("OpenSSH", Box::new(|| transfer(Side::OpenSsh))),
            ],
        )?;
        let files_per_second = Metric::PerSecond { items: files };
        let runs = Runs::from(&s);
        table.compare(&test, "files/s", files_per_second, &runs, Target::Report);
        Ok(())
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Ours => "ours",
        Side::OursCopying => "ours-copying",
        Side::OpenSsh => "openssh",
    }
}

/// Rows of one big e2e transfer: both servers, each against the ceiling,
/// and ours moving the data with read/write only (`--copy-data`; reported).
fn e2e_big_rows(table: &mut Table, test: &str, ceiling: &str, bytes: u64, s: &[Vec<Sample>]) {
    let runs = Runs::from(s);
    let (ours, openssh, top, copying) = (&s[0], &s[1], &s[2], &s[3]);
    let metric = Metric::Throughput { bytes };
    table.compare(
        test,
        &format!("throughput MiB/s (ref: {ceiling})"),
        metric,
        &runs,
        Target::Report,
    );
    table.against(
        test,
        "throughput, ours / ceiling",
        metric,
        ("ours", ours),
        top,
        Target::AtLeast(0.95),
    );
    table.against(
        test,
        "throughput, OpenSSH / ceiling",
        metric,
        ("OpenSSH", openssh),
        top,
        Target::Report,
    );
    table.against(
        test,
        "throughput, ours read/write only / ours (zero-copy)",
        metric,
        ("ours", copying),
        ours,
        Target::Report,
    );
    table.against(
        test,
        "throughput, ours read/write only / OpenSSH",
        metric,
        ("ours", copying),
        openssh,
        Target::Report,
    );
}

fn check_files(dest: &Path, expected: usize) -> io::Result<()> {
    let found = scenarios::count_files(dest)?;
    if found == expected {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{}: {found} files, expected {expected}",
            dest.display()
        )))
    }
}

fn remove_file_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_dir_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn path_str(path: &Path) -> String {
    path.display().to_string()
}

fn size_label(size: u64) -> String {
    if size >= 1 << 30 && size.is_multiple_of(1 << 30) {
        format!("{} GiB", size >> 30)
    } else {
        format!("{} MiB", size >> 20)
    }
}

/// The header of the results: what ran, where, and how busy the machine
/// was.
fn machine_notes(
    options: &Options,
    sizes: &Sizes,
    load_before: &str,
    load_after: &str,
    cipher: Option<String>,
) -> String {
    let cpuinfo = scenarios::read_text(Path::new("/proc/cpuinfo"));
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = scenarios::read_text(Path::new("/proc/sys/kernel/osrelease"));
    let openssh = Command::new("ssh")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
        .unwrap_or_default();
    let date = scenarios::run_quietly(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]))
        .unwrap_or_default();
    let mut notes = String::new();
    let mut line = |k: &str, v: &str| notes.push_str(&format!("- **{k}**: {}\n", v.trim()));
    line("date", &date);
    line(
        "mode",
        if options.quick {
            "quick (small sizes; proves the harness, not the figures)"
        } else {
            "full"
        },
    );
    line(
        "runs",
        &format!(
            "{} per contender, alternating, after one warm-up each; medians shown",
            options.runs
        ),
    );
    line(
        "machine",
        &format!("{nproc} CPUs, {model}, Linux {}", kernel.trim()),
    );
    line("work directory", &filesystem_of(&options.dir));
    line(
        "OpenSSH",
        &format!("{} (server side: {})", openssh, options.openssh.display()),
    );
    line("ours", &repo_relative(&options.ours));
    line(
        "sizes",
        &format!(
            "big file {}, e2e file {}, tree {} files",
            size_label(sizes.big),
            size_label(sizes.e2e_big),
            sizes.tree.files()
        ),
    );
    line(
        "page pool",
        "before each run that allocates file pages (rows 1, 5 into a file) the driver writes and deletes a scratch file of the same size, so that every contender draws on pages the host still backs (see bench/README.md)",
    );
    line(
        "CPU binding",
        if options.pin {
            "rows 3 and 4: driver and both servers on one CPU (cross-CPU wake-ups of an idle VM would dominate otherwise); rows 1, 2, 5 unbound"
        } else {
            "none (--no-pin)"
        },
    );
    if let Some(cipher) = cipher {
        line("ssh cipher (e2e)", &cipher);
    }
    line(
        "load average before / after",
        &format!("{} / {}", load_before.trim(), load_after.trim()),
    );
    for note in &options.notes {
        line("note", note);
    }
    notes
}

/// "tmpfs (size=…)" or whatever filesystem holds `dir`, from /proc/mounts
/// (the longest mount point that is a prefix of it).
/// The binary measured, relative to the repository (run.sh runs from its
/// top), so that results name no path of the machine they came from.
fn repo_relative(path: &Path) -> String {
    let here = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&here)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn filesystem_of(dir: &Path) -> String {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = scenarios::read_text(Path::new("/proc/mounts"));
    let best = mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 3 && dir.starts_with(f[1])).then(|| (f[1].len(), f[1], f[2], f[3]))
        })
        .max_by_key(|m| m.0);
    match best {
        // The filesystem is what matters; the temporary path is not.
        Some((_, _, kind, opts)) => format!("{kind} ({opts})"),
        None => "unknown filesystem".to_string(),
    }
}
