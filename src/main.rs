//! scp-server: the server side of SCP as one static binary.
//!
//! Entry point: parse argv, pick the invocation mode (sink, source, or the
//! OpenSSH client for a person typing `scp`), run it, map the outcome to an
//! exit status (0 or 1 as OpenSSH; 255 for its fatal invocation errors).

mod cli;
mod confine;
mod error;
mod limits;
mod protocol;
mod sink;
mod source;
mod transfer;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use cli::{AdminArgs, FlagError, ScpFlags};
use protocol::{MAX_RECORD_LINE, RecordReader};
use transfer::{DataPath, RawStdin, RawStdout, Throttle};

/// Directory levels a sink accepts below its target (DESIGN.md default).
const DEFAULT_MAX_DEPTH: usize = 256;

const USAGE: &str = "usage: scp-server [-prdv] -t TARGET        (receive; run by sshd as `scp -t`)\n       scp-server [-prv] -f PATH...       (send; run by sshd as `scp -f`)\n       scp-server --help";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let (admin_words, scp_words) = cli::split_admin_args(&args);
    let admin =
        AdminArgs::parse_from(std::iter::once(OsString::from("scp-server")).chain(admin_words));
    let flags = match cli::parse_scp_flags(&scp_words) {
        Ok(flags) => flags,
        Err(e) => return exit_code(report_flag_error(&e)),
    };
    exit_code(run(&admin, flags, &scp_words))
}

fn run(admin: &AdminArgs, flags: ScpFlags, scp_words: &[OsString]) -> i32 {
    match (flags.sink, flags.source) {
        (true, true) => refuse_in_protocol("-t and -f cannot be used together"),
        (false, false) => run_openssh_client(admin, scp_words),
        (true, false) => run_sink(flags),
        (false, true) => run_source(flags),
    }
}

fn run_sink(flags: ScpFlags) -> i32 {
    let [target] = flags.operands.as_slice() else {
        return refuse_in_protocol("ambiguous target");
    };
    let opts = sink::SinkOptions {
        recursive: flags.recursive,
        preserve: flags.preserve,
        target_must_be_dir: flags.target_must_be_dir,
        verbose: flags.verbose,
        umask: inherited_umask(),
        mode_mask: 0o777,
        max_depth: DEFAULT_MAX_DEPTH,
        no_overwrite: false,
        fsync: false,
        limits: limits::Limits::default(),
        denied: Box::new(|_| None),
    };
    let reader = RecordReader::new(RawStdin, MAX_RECORD_LINE);
    let scope = confine::Scope::Unconfined;
    sink::run(target, scope, opts, reader, RawStdout, data_path(&flags))
}

fn run_source(flags: ScpFlags) -> i32 {
    let opts = source::SourceOptions {
        recursive: flags.recursive,
        preserve: flags.preserve,
        verbose: flags.verbose,
        limits: limits::Limits::default(),
    };
    let reader = RecordReader::new(RawStdin, MAX_RECORD_LINE);
    let scope = confine::Scope::Unconfined;
    source::run(&flags.operands, scope, opts, reader, RawStdout, data_path(&flags))
}

fn data_path(flags: &ScpFlags) -> DataPath {
    DataPath::new(flags.limit_kbits.map(Throttle::from_kbits))
}

/// Reads the umask the session was started with. Setting it is the only
/// way to read it; it is restored at once, before any file is created, and
/// the process never runs with a zero umask otherwise (PROTOCOL.md §h.6).
fn inherited_umask() -> u32 {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o077));
    umask(old);
    old.bits()
}

/// A refusal the client must see: one `\x01` line on the protocol stream.
fn refuse_in_protocol(message: &str) -> i32 {
    let line = format!("\x01scp: {message}\n");
    let _ = RawStdout.write_all(line.as_bytes());
    1
}

fn report_flag_error(e: &FlagError) -> i32 {
    match e {
        FlagError::UnknownOption(c) => eprintln!("scp: unknown option -- {c}\n{USAGE}"),
        FlagError::MissingValue(c) => eprintln!("scp: option requires an argument -- {c}\n{USAGE}"),
        FlagError::Usage(why) => eprintln!("scp: {why}\n{USAGE}"),
        FlagError::Fatal(why) => {
            eprintln!("{why}");
            return 255;
        }
    }
    1
}

/// A person ran `scp` on the server: hand the command line, unchanged, to
/// the real OpenSSH client (exec with an argv, never through a shell).
fn run_openssh_client(admin: &AdminArgs, scp_words: &[OsString]) -> i32 {
    let client = admin
        .openssh_client
        .clone()
        .or_else(|| std::env::var_os("SCP_SERVER_OPENSSH_CLIENT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(cli::DEFAULT_OPENSSH_CLIENT));
    if is_this_binary(&client) {
        eprintln!(
            "scp-server: {} is this program itself, not the OpenSSH scp client; point --openssh-client or SCP_SERVER_OPENSSH_CLIENT at OpenSSH's scp",
            client.display()
        );
        return 1;
    }
    // std's exec restores the default SIGPIPE disposition in the new image.
    let err = std::process::Command::new(&client)
        .arg0("scp")
        .args(scp_words)
        .exec();
    if err.kind() == std::io::ErrorKind::NotFound {
        eprintln!(
            "scp-server: the OpenSSH scp client is not installed at {} (this program is the server side of scp); install openssh-client or set SCP_SERVER_OPENSSH_CLIENT",
            client.display()
        );
    } else {
        eprintln!(
            "scp-server: cannot run the OpenSSH scp client {}: {err}",
            client.display()
        );
    }
    1
}

fn is_this_binary(client: &Path) -> bool {
    let same =
        |a: std::fs::Metadata, b: std::fs::Metadata| (a.dev(), a.ino()) == (b.dev(), b.ino());
    match (
        std::fs::metadata(client),
        std::env::current_exe().and_then(std::fs::metadata),
    ) {
        (Ok(a), Ok(b)) => same(a, b),
        _ => false,
    }
}

fn exit_code(status: i32) -> ExitCode {
    ExitCode::from(u8::try_from(status).unwrap_or(1))
}
