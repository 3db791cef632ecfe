//! One run of each measured workload, client side played over pipes. Every
//! function prepares what it needs first (removing the previous run's
//! output), then measures from the server's spawn to its exit, then checks
//! that the transfer really happened.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

use crate::client::{self, DATA_CHUNK};
use crate::measure::{Measured, Program, Sample};

/// The small-file tree: `dirs` directories of `files_per_dir` files.
#[derive(Clone, Copy)]
pub struct TreeShape {
    pub dirs: usize,
    pub files_per_dir: usize,
    pub file_size: usize,
}

impl TreeShape {
    pub fn files(&self) -> usize {
        self.dirs * self.files_per_dir
    }
}

/// Fixed times for `-p`, so both servers apply the same `T` records.
const TIMES_RECORD: &[u8] = b"T1700000000 0 1700000000 0\n";

/// Sends one record line in one write (a line split over writes would cost
/// the server extra reads) and waits for its acknowledgement.
fn record(server: &mut Measured, line: &[u8]) -> io::Result<()> {
    server.input().write_all(line)?;
    server
        .replies
        .expect_ok(String::from_utf8_lossy(line).trim_end())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_tree_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn check_size(path: &Path, size: u64) -> io::Result<()> {
    let found = fs::metadata(path)?.len();
    if found == size {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{}: {found} bytes, expected {size}",
            path.display()
        )))
    }
}

/// Sink, one file: `scp -t DIR` receives `size` bytes as DIR/NAME. With
/// `fresh`, an earlier DIR/NAME is removed first (a new file); otherwise
/// it is overwritten.
pub fn sink_one_file(
    program: &Program,
    dir: &Path,
    name: &str,
    size: u64,
    pattern: &[u8],
    fresh: bool,
) -> io::Result<Sample> {
    let target = dir.join(name);
    if fresh {
        remove_if_present(&target)?;
    }
    let mut server = Measured::start(program, &["-t".as_ref(), dir.as_os_str()])?;
    server.replies.expect_ok("start")?;
    record(&mut server, format!("C0644 {size} {name}\n").as_bytes())?;
    client::send_pattern(server.input(), pattern, size)?;
    server.input().write_all(&[0])?;
    server.replies.expect_ok("file data")?;
    let sample = server.finish()?;
    check_size(&target, size)?;
    Ok(sample)
}

/// The reference for the sink: `dd bs=1M of=FILE` fed the same bytes
/// through the same kind of pipe.
pub fn dd_sink(dir: &Path, size: u64, pattern: &[u8]) -> io::Result<Sample> {
    let target = dir.join("dd.out");
    remove_if_present(&target)?;
    let of = format!("of={}", target.display());
    let mut dd = Measured::start(&Program::new("dd"), &["bs=1M", &of, "status=none"])?;
    client::send_pattern(dd.input(), pattern, size)?;
    let sample = dd.finish()?;
    check_size(&target, size)?;
    Ok(sample)
}

/// The kernel floor of a sink: the driver's own `--splice-sink` (a bare
/// splice loop, `responder::splice_sink`) fed like dd.
pub fn splice_sink(program: &Program, dir: &Path, size: u64, pattern: &[u8]) -> io::Result<Sample> {
    let target = dir.join("splice.out");
    let mut splicer = Measured::start(program, &[target.as_os_str()])?;
    client::send_pattern(splicer.input(), pattern, size)?;
    let sample = splicer.finish()?;
    check_size(&target, size)?;
    Ok(sample)
}

/// Source, one file: `scp -f PATH`, its bytes read and dropped.
pub fn source_one_file(
    program: &Program,
    path: &Path,
    size: u64,
    scratch: &mut [u8],
) -> io::Result<Sample> {
    let mut server = Measured::start(program, &["-f".as_ref(), path.as_os_str()])?;
    server.input().write_all(&[0])?;
    let line = server
        .replies
        .line()?
        .ok_or_else(|| io::Error::other("no file record"))?;
    let announced = client::file_record_size(&line)?;
    if announced != size {
        return Err(io::Error::other(format!(
            "announced {announced}, expected {size}"
        )));
    }
    server.input().write_all(&[0])?;
    server.replies.discard(size, scratch)?;
    server.replies.expect_ok("file data")?;
    // It exits as soon as this last reply arrives.
    server.note_peak_rss();
    server.input().write_all(&[0])?;
    server.finish()
}

/// The reference for the source: `dd if=FILE bs=1M` into the same kind of
/// pipe.
pub fn dd_source(path: &Path, size: u64, scratch: &mut [u8]) -> io::Result<Sample> {
    let input = format!("if={}", path.display());
    let mut dd = Measured::start(
        &Program::new("dd"),
        &[input.as_str(), "bs=1M", "status=none"],
    )?;
    // dd exits at the end of its input: note its peak while the last byte
    // still holds it up.
    dd.replies.discard(size.saturating_sub(1), scratch)?;
    dd.note_peak_rss();
    dd.replies.discard(size.min(1), scratch)?;
    dd.finish()
}

/// A server for a tree session: `-r -p` and `direction` (`-t` or `-f`).
fn start_tree_session(program: &Program, direction: &str, path: &Path) -> io::Result<Measured> {
    Measured::start(
        program,
        &[
            "-r".as_ref(),
            "-p".as_ref(),
            direction.as_ref(),
            path.as_os_str(),
        ],
    )
}

/// Sink of the small-file tree with `-r -p`: `T`, `D`, then per file `T`,
/// `C`, data and status in one write (as fast as a client can feed it).
/// The caller checks what arrived.
pub fn sink_tree(
    program: &Program,
    dest: &Path,
    shape: TreeShape,
    pattern: &[u8],
) -> io::Result<Sample> {
    remove_tree_if_present(&dest.join("tree"))?;
    let mut data_and_status = pattern[..shape.file_size].to_vec();
    data_and_status.push(0);
    let mut server = start_tree_session(program, "-t", dest)?;
    server.replies.expect_ok("start")?;
    record(&mut server, TIMES_RECORD)?;
    record(&mut server, b"D0755 0 tree\n")?;
    for d in 0..shape.dirs {
        record(&mut server, TIMES_RECORD)?;
        record(&mut server, format!("D0755 0 d{d:03}\n").as_bytes())?;
        for f in 0..shape.files_per_dir {
            record(&mut server, TIMES_RECORD)?;
            let header = format!("C0644 {} f{f:03}\n", shape.file_size);
            record(&mut server, header.as_bytes())?;
            server.input().write_all(&data_and_status)?;
            server.replies.expect_ok("file data")?;
        }
        record(&mut server, b"E\n")?;
    }
    record(&mut server, b"E\n")?;
    server.finish()
}

/// How the client of row 3 paces itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pacing {
    /// Waits for each acknowledgement before the next record, as real
    /// clients do: three round trips per file, so the context switches of
    /// this machine are part of every per-file time.
    Lockstep,
    /// Writes everything without waiting (a writer thread) and checks the
    /// acknowledgements as they come: the server sets the pace. The server
    /// receives and answers exactly the same bytes; only the waiting goes.
    Streamed,
}

/// Acknowledgements a `-r -p` tree session exchanges: the initial one,
/// the top `T` and `D`, per directory its `T`, `D` and `E`, per file its
/// `T`, `C` and data, and the top `E`.
fn tree_acks(shape: TreeShape) -> usize {
    1 + 2 + shape.dirs * (3 + 3 * shape.files_per_dir) + 1
}

/// The whole client stream of a tree upload, as `sink_tree` sends it.
fn tree_upload_stream(shape: TreeShape, pattern: &[u8]) -> Vec<u8> {
    let data = &pattern[..shape.file_size];
    let mut stream = Vec::with_capacity(shape.files() * (shape.file_size + 64));
    stream.extend_from_slice(TIMES_RECORD);
    stream.extend_from_slice(b"D0755 0 tree\n");
    for d in 0..shape.dirs {
        stream.extend_from_slice(TIMES_RECORD);
        stream.extend_from_slice(format!("D0755 0 d{d:03}\n").as_bytes());
        for f in 0..shape.files_per_dir {
            stream.extend_from_slice(TIMES_RECORD);
            stream.extend_from_slice(format!("C0644 {} f{f:03}\n", shape.file_size).as_bytes());
            stream.extend_from_slice(data);
            stream.push(0);
        }
        stream.extend_from_slice(b"E\n");
    }
    stream.extend_from_slice(b"E\n");
    stream
}

/// `sink_tree` with the client streaming (`Pacing::Streamed`).
pub fn sink_tree_streamed(
    program: &Program,
    dest: &Path,
    shape: TreeShape,
    pattern: &[u8],
) -> io::Result<Sample> {
    remove_tree_if_present(&dest.join("tree"))?;
    let stream = tree_upload_stream(shape, pattern);
    let mut server = start_tree_session(program, "-t", dest)?;
    let mut stdin = server.stdin.take().expect("stdin is piped");
    let writer = thread::spawn(move || stdin.write_all(&stream).map(|()| stdin));
    for n in 0..tree_acks(shape) {
        server
            .replies
            .expect_ok(&format!("record {n} of the stream"))?;
    }
    // Everything is acknowledged; the server waits for the end of input.
    server.note_peak_rss();
    let stdin = writer
        .join()
        .map_err(|_| io::Error::other("stream writer panicked"))??;
    drop(stdin);
    server.finish()
}

/// Source of the small-file tree with `-r -p`: every record acknowledged,
/// every file's data read and dropped. Streamed, every acknowledgement but
/// the last is written up front (by a writer thread, so that a full pipe
/// cannot stall both sides); the last one, which lets the server exit,
/// follows the final `E` once its peak RSS is noted.
pub fn source_tree(
    program: &Program,
    tree: &Path,
    shape: TreeShape,
    scratch: &mut [u8],
    pacing: Pacing,
) -> io::Result<Sample> {
    let mut server = start_tree_session(program, "-f", tree)?;
    let lockstep = pacing == Pacing::Lockstep;
    let mut writer = None;
    if lockstep {
        server.input().write_all(&[0])?;
    } else {
        let acks = vec![0u8; tree_acks(shape) - 1];
        let mut stdin = server.stdin.take().expect("stdin is piped");
        writer = Some(thread::spawn(move || {
            stdin.write_all(&acks).map(|()| stdin)
        }));
    }
    let mut files = 0;
    let mut depth = 0usize;
    while let Some(line) = server.replies.line()? {
        match line.first() {
            Some(b'T') => {}
            Some(b'D') => depth += 1,
            Some(b'E') => depth = depth.saturating_sub(1),
            Some(b'C') => {
                let size = client::file_record_size(&line)?;
                if lockstep {
                    server.input().write_all(&[0])?;
                }
                server.replies.discard(size, scratch)?;
                server.replies.expect_ok("file data")?;
                files += 1;
            }
            _ => {
                return Err(io::Error::other(format!(
                    "source tree: unexpected {:?}",
                    String::from_utf8_lossy(&line)
                )));
            }
        }
        let last = line.first() == Some(&b'E') && depth == 0;
        if last {
            // The server exits once this record is acknowledged.
            server.note_peak_rss();
        }
        if last && let Some(writer) = writer.take() {
            let stdin = writer
                .join()
                .map_err(|_| io::Error::other("acknowledgement writer panicked"))??;
            server.stdin = Some(stdin);
        }
        if lockstep || last {
            server.input().write_all(&[0])?;
        }
    }
    let sample = server.finish()?;
    if files != shape.files() {
        return Err(io::Error::other(format!(
            "source tree: {files} files, expected {}",
            shape.files()
        )));
    }
    Ok(sample)
}

/// `count` sequential zero-byte uploads, each its own server process: the
/// cost of starting up and of one tiny session. Figures are summed (peak
/// RSS: the largest).
pub fn startup(program: &Program, dir: &Path, count: usize) -> io::Result<Sample> {
    remove_tree_if_present(dir)?;
    fs::create_dir(dir)?;
    let mut total = Sample::default();
    for i in 0..count {
        let mut server = Measured::start(program, &["-t".as_ref(), dir.as_os_str()])?;
        server.replies.expect_ok("start")?;
        record(&mut server, format!("C0644 0 e{i:04}\n").as_bytes())?;
        server.input().write_all(&[0])?;
        server.replies.expect_ok("empty file")?;
        total.add(server.finish()?);
    }
    let found = fs::read_dir(dir)?.count();
    if found != count {
        return Err(io::Error::other(format!(
            "startup: {found} files, expected {count}"
        )));
    }
    Ok(total)
}

/// Writes and deletes a scratch file of `size` bytes in `dir`, so that the
/// next run's new file pages come from memory just freed. In a VM whose
/// balloon reports free pages to the host (free page reporting), memory
/// freed a few seconds earlier has been handed back, and touching it again
/// costs a host page fault per page: which contender met such pages would
/// decide the figures. Outside the measurement, and the same for all.
pub fn warm_page_pool(dir: &Path, size: u64, pattern: &[u8]) -> io::Result<()> {
    let scratch = dir.join("page-pool-scratch");
    make_file(&scratch, size, pattern)?;
    fs::remove_file(&scratch)
}

/// Writes the source tree once: `tree/dNNN/fNNN`.
pub fn make_tree(root: &Path, shape: TreeShape, pattern: &[u8]) -> io::Result<()> {
    remove_tree_if_present(root)?;
    fs::create_dir_all(root)?;
    for d in 0..shape.dirs {
        let dir = root.join(format!("d{d:03}"));
        fs::create_dir(&dir)?;
        for f in 0..shape.files_per_dir {
            fs::write(dir.join(format!("f{f:03}")), &pattern[..shape.file_size])?;
        }
    }
    Ok(())
}

/// Writes the big source file from the pattern.
pub fn make_file(path: &Path, size: u64, pattern: &[u8]) -> io::Result<()> {
    let mut file = fs::File::create(path)?;
    let mut left = size;
    while left > 0 {
        let n = pattern
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        file.write_all(&pattern[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// Regular files below `root`.
pub fn count_files(root: &Path) -> io::Result<usize> {
    let mut count = 0;
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            count += count_files(&entry.path())?;
        } else if kind.is_file() {
            count += 1;
        }
    }
    Ok(count)
}

/// A scratch buffer for data that is read and dropped.
pub fn scratch() -> Vec<u8> {
    vec![0u8; DATA_CHUNK]
}

/// Runs a command to completion with output discarded; for set-up steps.
pub fn run_quietly(command: &mut Command) -> io::Result<String> {
    let output = command.stdin(Stdio::null()).output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(text)
}

/// Reads a whole small file as text, empty if unreadable.
pub fn read_text(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}
