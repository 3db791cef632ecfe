//! A null server: speaks just enough SCP to answer the driver and touches
//! no file. It measures the floor of the small-file workload — what the
//! protocol's round trips and this client cost on this machine — so that
//! the table shows how much of a server's per-file time is its own.
//!
//! Invoked as `scp-bench --null-server sink` or
//! `scp-bench --null-server source DIRS FILES_PER_DIR FILE_SIZE`.

use std::io::{self, BufRead, BufReader, Write};

pub fn run(args: &[String]) -> io::Result<()> {
    let stdin = io::stdin();
    let mut input = BufReader::with_capacity(64 * 1024, stdin.lock());
    let mut output = io::stdout().lock();
    // The scp arguments that follow (`-r -p -t DEST`) are ignored.
    match args {
        [role, ..] if role == "sink" => sink(&mut input, &mut output),
        [role, dirs, files, size, ..] if role == "source" => {
            let number = |s: &String| s.parse::<usize>().map_err(io::Error::other);
            let shape = (number(dirs)?, number(files)?, number(size)?);
            source(&mut input, &mut output, shape)
        }
        _ => Err(io::Error::other(
            "usage: --null-server sink | source DIRS FILES SIZE",
        )),
    }
}

fn ack(output: &mut impl Write) -> io::Result<()> {
    output.write_all(&[0])?;
    output.flush()
}

/// Acknowledges every record; reads and drops each file's data and status.
fn sink(input: &mut impl BufRead, output: &mut impl Write) -> io::Result<()> {
    ack(output)?;
    let mut line = Vec::new();
    let mut data = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        if line.first() == Some(&b'C') {
            let size: usize = crate::client::file_record_size(&line)?
                .try_into()
                .map_err(io::Error::other)?;
            ack(output)?;
            data.resize(size + 1, 0);
            input.read_exact(&mut data)?;
        }
        ack(output)?;
    }
}

/// Sends the tree's records and data (zeros), waiting for each reply.
fn source(
    input: &mut impl BufRead,
    output: &mut impl Write,
    (dirs, files, size): (usize, usize, usize),
) -> io::Result<()> {
    let mut reply = [0u8; 1];
    input.read_exact(&mut reply)?;
    let mut send = |bytes: &[u8]| -> io::Result<()> {
        output.write_all(bytes)?;
        output.flush()?;
        input.read_exact(&mut reply)?;
        match reply {
            [0] => Ok(()),
            _ => Err(io::Error::other("refused")),
        }
    };
    let times = b"T1700000000 0 1700000000 0\n";
    let mut data = vec![0u8; size + 1];
    data[size] = 0;
    send(times)?;
    send(b"D0755 0 tree\n")?;
    for d in 0..dirs {
        send(times)?;
        send(format!("D0755 0 d{d:03}\n").as_bytes())?;
        for f in 0..files {
            send(times)?;
            send(format!("C0644 {size} f{f:03}\n").as_bytes())?;
            send(&data)?;
        }
        send(b"E\n")?;
    }
    send(b"E\n")
}

/// The kernel's share of a sink and nothing else: `splice(2)` from stdin
/// (grown to 1 MiB, as the server grows it) into a new `path` until the
/// end of input. No protocol, no metadata, no rename: the least CPU a sink
/// can spend per byte on this machine (row 1's "bare splice loop").
pub fn splice_sink(path: &str) -> io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{FcntlArg, SpliceFFlags, fcntl, splice};
    use std::os::fd::AsFd;

    let file = std::fs::File::create(path)?;
    let stdin = io::stdin();
    let _ = fcntl(stdin.as_fd(), FcntlArg::F_SETPIPE_SZ(1 << 20));
    loop {
        match splice(
            stdin.as_fd(),
            None,
            file.as_fd(),
            None,
            1 << 20,
            SpliceFFlags::empty(),
        ) {
            Ok(0) => return Ok(()),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
