//! scp-server: the server side of SCP as one static binary.
//!
//! Entry point: parse argv, pick the invocation mode (sink, source, or the
//! OpenSSH client for a person typing `scp`), run it, map the outcome to an
//! exit status (0 or 1 as OpenSSH; 255 for its fatal invocation errors).

use scp_server::{
    audit, cli, command, confine, doctor, error, limits, policy, protocol, sandbox, sftp, sink,
    source,
};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

use audit::{CommandOrigin, CommandRefusal};
use cli::{AdminArgs, FlagError, ResolverChoice, ScpFlags, SftpServerFlags, SftpWordsFrom};
use command::Request;
use policy::Policy;
use protocol::{MAX_RECORD_LINE, RecordReader};
use scp_server::transfer::{DataPath, RawStdin, RawStdout, Throttle};

const USAGE: &str = "usage: scp-server [-prdv] -t TARGET        (receive; run by sshd as `scp -t`)\n       scp-server [-prv] -f PATH...       (send; run by sshd as `scp -f`)\n       scp-server --sftp [-ehR] [-u UMASK] [-d DIR] [-P|-p REQUESTS]  (serve SFTP)\n       scp-server --help";

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_default();
    let args: Vec<OsString> = argv.collect();
    // `scp-server doctor [USER]` checks a drop-account set-up. Only under
    // the name scp-server: through the /usr/bin/scp link, `scp doctor x` is
    // a local copy and goes to the OpenSSH client.
    if Path::new(&argv0).file_name() == Some(OsStr::new("scp-server"))
        && args.first().is_some_and(|a| a == "doctor")
        && args.len() <= 2
    {
        return exit_code(doctor::run(args.get(1).map(OsString::as_os_str)));
    }
    let (admin_words, scp_words) = cli::split_admin_args(&args);
    let admin =
        AdminArgs::parse_from(std::iter::once(OsString::from("scp-server")).chain(admin_words));
    let status = dispatch(&admin, &argv0, &scp_words);
    audit::session_end(status);
    exit_code(status)
}

/// Picks the invocation mode (DESIGN.md, "Who runs it, and how it is
/// started"): login shell (`-c COMMAND`), ForceCommand (the client's command
/// in SSH_ORIGINAL_COMMAND), sshd running `scp -t/-f` through a user's
/// shell, or a person running the OpenSSH client.
fn dispatch(admin: &AdminArgs, argv0: &OsStr, scp_words: &[OsString]) -> i32 {
    if admin.sftp {
        // The admin's Subsystem line: sftp-server's options may follow.
        let restricted = policy::any_restriction_flag(&admin.policy)
            || std::env::var_os("SSH_ORIGINAL_COMMAND").is_some();
        return match cli::parse_sftp_server_flags(scp_words, SftpWordsFrom::Admin) {
            Ok(flags) => run_sftp(admin, &flags, restricted),
            Err(why) => refuse_on_stderr(&why),
        };
    }
    if let [dash_c, command] = scp_words
        && dash_c == "-c"
    {
        return run_command(admin, CommandOrigin::LoginShell, command.as_bytes());
    }
    // sshd starts a login shell for an interactive session as `-NAME`.
    if scp_words.is_empty() && argv0.as_bytes().starts_with(b"-") {
        return refuse_interactive_login(admin, CommandOrigin::LoginShell);
    }
    let flags = match cli::parse_scp_flags(scp_words) {
        Ok(flags) => flags,
        Err(e) => return report_flag_error(&e),
    };
    let original_command = std::env::var_os("SSH_ORIGINAL_COMMAND");
    if !flags.sink
        && !flags.source
        && let Some(command) = &original_command
    {
        return run_command(admin, CommandOrigin::ForceCommand, command.as_bytes());
    }
    let restricted = policy::any_restriction_flag(&admin.policy) || original_command.is_some();
    match (flags.sink, flags.source) {
        (true, true) => refuse_in_protocol("-t and -f cannot be used together"),
        (false, false) if restricted => {
            refuse_interactive_login(admin, CommandOrigin::ForceCommand)
        }
        (false, false) => run_openssh_client(admin, scp_words),
        (true, false) => run_sink(admin, flags, restricted),
        (false, true) => {
            let operands = flags
                .operands
                .iter()
                .cloned()
                .map(source::Operand::Path)
                .collect();
            run_source(admin, flags, restricted, |_| operands)
        }
    }
}

const INTERACTIVE_REFUSAL: &str =
    "this account is for file transfer with scp only; interactive logins are not allowed";

/// The restricted modes' command string (`-c`, SSH_ORIGINAL_COMMAND):
/// parsed without a shell, and only scp with server-side flags accepted.
/// Refusals of an scp command go to the client in the protocol; refusals
/// of anything else are one line on stderr.
fn run_command(admin: &AdminArgs, origin: CommandOrigin, command: &[u8]) -> i32 {
    let refusal = CommandRefuser {
        admin,
        origin,
        command: Some(command),
    };
    let refuse = |kind, why: &str| {
        if command::looks_like_scp(command) {
            refusal.in_protocol(kind, why)
        } else {
            refusal.on_stderr(kind, why)
        }
    };
    let words = match command::parse_request(command) {
        Ok(Request::Scp(words)) => words,
        Ok(Request::Empty) => {
            return refusal.on_stderr(
                CommandRefusal::EmptyCommand,
                "empty command; this account is for file transfer with scp only",
            );
        }
        Ok(Request::Sftp(words)) => {
            let texts: Vec<OsString> = words
                .iter()
                .map(|w| OsStr::from_bytes(&w.text).to_owned())
                .collect();
            return match cli::parse_sftp_server_flags(&texts, SftpWordsFrom::Client) {
                Ok(flags) => run_sftp(admin, &flags, true),
                Err(why) => refusal.on_stderr(CommandRefusal::SftpOption, &why),
            };
        }
        Ok(Request::Other(program)) => {
            return refusal.on_stderr(
                CommandRefusal::OtherProgram,
                &format!(
                    "this account is for file transfer with scp only; refusing to run '{}'",
                    protocol::escape_bytes(&program)
                ),
            );
        }
        Err(e) => return refuse(CommandRefusal::MalformedCommand, &e.to_string()),
    };
    let texts: Vec<OsString> = words
        .iter()
        .map(|w| OsStr::from_bytes(&w.text).to_owned())
        .collect();
    let mut flags = match cli::parse_scp_flags(&texts) {
        Ok(flags) => flags,
        Err(FlagError::UnknownOption(c) | FlagError::MissingValue(c)) => {
            return refuse(CommandRefusal::RefusedOption, &option_refusal(c));
        }
        Err(FlagError::Usage(why) | FlagError::Fatal(why)) => {
            return refuse(
                CommandRefusal::MalformedCommand,
                &format!("refusing command: {why}"),
            );
        }
    };
    if let Some(c) = command::disallowed_letter(&flags.letters) {
        return refuse(CommandRefusal::RefusedOption, &option_refusal(c));
    }
    let operand_words = words[words.len() - flags.operands.len()..].to_vec();
    flags.operands = operand_words.iter().map(command::Word::path).collect();
    let malformed = |why: &str| refuse(CommandRefusal::MalformedCommand, why);
    match (flags.sink, flags.source) {
        (true, true) => malformed("-t and -f cannot be used together"),
        (false, false) => malformed("refusing command: scp needs -t or -f here"),
        // Refused here rather than by the sink, so that it is audited
        // like every other malformed command.
        (true, false) if flags.operands.len() != 1 => malformed("ambiguous target"),
        (true, false) => run_sink(admin, flags, true),
        (false, true) => run_source(admin, flags, true, |scope| {
            expand_operands(scope, &operand_words)
        }),
    }
}

/// Turns a restricted mode's command away before any transfer: one line to
/// the client (on stderr, or in the protocol for an scp command) and one
/// audit event (issue 12).
struct CommandRefuser<'a> {
    admin: &'a AdminArgs,
    origin: CommandOrigin,
    /// `None` for an interactive login.
    command: Option<&'a [u8]>,
}

impl CommandRefuser<'_> {
    fn on_stderr(&self, kind: CommandRefusal, why: &str) -> i32 {
        self.audit(kind, why);
        refuse_on_stderr(why)
    }

    fn in_protocol(&self, kind: CommandRefusal, why: &str) -> i32 {
        self.audit(kind, why);
        refuse_in_protocol(why)
    }

    /// The policy is loaded only for its log sink: nothing else of it
    /// applies to a session that never starts.
    fn audit(&self, kind: CommandRefusal, why: &str) {
        let identity = policy::Identity::current();
        let policy = Policy::load(&self.admin.policy, &identity);
        audit::command_refused(&policy, identity.user, self.origin, self.command, kind, why);
    }
}

fn refuse_interactive_login(admin: &AdminArgs, origin: CommandOrigin) -> i32 {
    let refusal = CommandRefuser {
        admin,
        origin,
        command: None,
    };
    refusal.on_stderr(CommandRefusal::InteractiveLogin, INTERACTIVE_REFUSAL)
}

fn option_refusal(letter: char) -> String {
    format!(
        "refusing option -{letter}: only the server-side scp options -t -f -r -p -d -v -q (and -T, -l N) are allowed"
    )
}

/// Download operands of the shell-less modes: `~` and globs expanded inside
/// the root.
fn expand_operands(scope: &confine::Scope, words: &[command::Word]) -> Vec<source::Operand> {
    match scope {
        confine::Scope::Confined(root) => words
            .iter()
            .flat_map(|w| command::expand_source(root, w))
            .collect(),
        confine::Scope::Unconfined => words
            .iter()
            .map(|w| source::Operand::Path(w.path()))
            .collect(),
    }
}

/// What the session may do and where: the policy (defaults, config file,
/// per-user and per-group sections, flags) and the confinement it implies.
struct Session {
    policy: Policy,
    scope: confine::Scope,
}

/// Resolves the policy, sets up the audit trail and, when the session is
/// confined, opens the root and locks the process to it (Landlock,
/// no_new_privs) before a single record is read. A session is confined
/// when it is restricted (DESIGN.md: restricted mode is always confined)
/// or when the policy names a root.
fn open_session(
    admin: &AdminArgs,
    restricted: bool,
    kind: SessionKind,
    verbose: bool,
) -> Result<Session, String> {
    hold_off_sigxfsz();
    let identity = policy::Identity::current();
    let policy = Policy::load(&admin.policy, &identity);
    let access = kind.access(&policy, restricted);
    // Before the sandbox: the log file and the journald socket lie outside
    // the root, and so do the passwd entries that name the user.
    audit::setup(&policy, identity.user, kind.audit_direction());
    if let SessionKind::Sftp { .. } = kind {
        audit::set_protocol(audit::Protocol::Sftp);
    }
    if let Some(e) = &policy.config_error {
        return Err(e.clone());
    }
    if !restricted && policy.root.is_none() {
        audit::session_start(None);
        return Ok(Session {
            policy,
            scope: confine::Scope::Unconfined,
        });
    }
    let root_path = policy
        .root
        .clone()
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
        .ok_or(
            "no root directory for this account: set --root or root in the configuration file",
        )?;
    let backend = match admin.resolver {
        Some(ResolverChoice::Openat2) => confine::Backend::Openat2,
        Some(ResolverChoice::Walk) => confine::Backend::Walk,
        None => confine::Backend::best_available(),
    };
    let root = confine::Root::open(&root_path, backend, policy.no_symlinks)
        .map_err(|e| format!("{}: {}", root_path.display(), error::strerror(e)))?;
    audit::session_start(Some(&root_path));
    let journald: Vec<_> = audit::journald_socket()
        .map(sandbox::ExtraRule::UnixSocket)
        .into_iter()
        .collect();
    let report = sandbox::confine_process(root.fd(), access, &journald);
    // `-v`: the sandbox's note goes to stderr with the other debug lines.
    if verbose {
        eprintln!("scp-server: {}", report.summary());
    }
    Ok(Session {
        policy,
        scope: confine::Scope::Confined(root),
    })
}

/// A write past RLIMIT_FSIZE raises SIGXFSZ, whose default action kills
/// the process before the write can fail with EFBIG: the temporary file
/// would stay behind and the client would see no reason. Blocked (safe
/// code, unlike ignoring it), the signal stays pending and the write
/// returns EFBIG, which is reported as `File too large` like any other
/// write error. Only the transfer modes block it: the OpenSSH client
/// exec'd in passthrough mode inherits the signal mask and keeps its own
/// behaviour. Threads started later (the sink's) inherit the mask.
fn hold_off_sigxfsz() {
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGXFSZ);
    // Cannot fail for a valid set and SIG_BLOCK; were it to, the limit
    // would only be enforced the old way, by the signal.
    let _ = set.thread_block();
}

/// What a session is for: it decides the sandbox's rights and how the
/// audit trail describes the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionKind {
    Sink,
    Source,
    /// SFTP; `read_only` from sftp-server's `-R`.
    Sftp {
        read_only: bool,
    },
}

impl SessionKind {
    /// Uploads need write access beneath the root; downloads only read;
    /// SFTP writes unless read-only, and creates symlinks only where the
    /// policy allows links.
    fn access(self, policy: &Policy, restricted: bool) -> sandbox::Access {
        match self {
            SessionKind::Sink => sandbox::Access::ReadWrite,
            SessionKind::Source => sandbox::Access::ReadOnly,
            SessionKind::Sftp { read_only } if read_only || policy.read_only => {
                sandbox::Access::ReadOnly
            }
            SessionKind::Sftp { .. } if policy.allow_links || !restricted => {
                sandbox::Access::ReadWriteLinks
            }
            SessionKind::Sftp { .. } => sandbox::Access::ReadWrite,
        }
    }

    fn audit_direction(self) -> audit::Direction {
        match self {
            SessionKind::Sink => audit::Direction::Upload,
            SessionKind::Source => audit::Direction::Download,
            SessionKind::Sftp { .. } => audit::Direction::Both,
        }
    }
}

fn run_sink(admin: &AdminArgs, flags: ScpFlags, restricted: bool) -> i32 {
    if admin.named_temp_files {
        confine::never_link_unnamed_files();
    }
    let [target] = flags.operands.as_slice() else {
        return refuse_in_protocol("ambiguous target");
    };
    let Session { policy, scope } =
        match open_session(admin, restricted, SessionKind::Sink, flags.verbose) {
            Ok(session) => session,
            Err(why) => return refuse_in_protocol(&why),
        };
    if let Some(why) = policy.upload_refusal() {
        return refuse_in_protocol(&why);
    }
    let opts = sink::SinkOptions {
        recursive: flags.recursive,
        preserve: flags.preserve,
        target_must_be_dir: flags.target_must_be_dir,
        verbose: flags.verbose,
        umask: effective_umask(&policy, flags.preserve),
        creation_umask: confine::inherited_umask(),
        mode_mask: if policy.allow_setid { 0o7777 } else { 0o777 },
        max_depth: policy.max_depth,
        no_overwrite: policy.no_overwrite,
        fsync: policy.fsync,
        limits: limits_of(&policy),
        denied: deny_check(&policy, &scope),
    };
    let reader = RecordReader::new(RawStdin, MAX_RECORD_LINE);
    let data = data_path(&flags, admin);
    // Each directory level is a stack frame of the sink; give the session
    // a stack that fits the deepest tree the policy allows.
    let stack = 1024 * 1024 + policy.max_depth * STACK_PER_DIRECTORY_LEVEL;
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("sink".into())
            .stack_size(stack)
            .spawn_scoped(s, || {
                sink::run(target, scope, opts, reader, RawStdout, data)
            })
            .map_or(1, |t| t.join().unwrap_or(1))
    })
}

/// An SFTP session: the policy and confinement of every other session,
/// sftp-server's own options on top (`-R` and `-u` narrow it; `-d` starts
/// an unconfined session elsewhere; `-P`/`-p` refuse requests by name).
fn run_sftp(admin: &AdminArgs, flags: &SftpServerFlags, restricted: bool) -> i32 {
    if flags.query_requests {
        for name in protocol::sftp::LIST_NAMES {
            println!("{name}");
        }
        return 0;
    }
    if admin.named_temp_files {
        confine::never_link_unnamed_files();
    }
    let kind = SessionKind::Sftp {
        read_only: flags.read_only,
    };
    let session = match open_session(admin, restricted, kind, false) {
        Ok(session) => session,
        // Nothing is served: every request gets this sentence (a broken
        // configuration file fails closed), INIT excepted.
        Err(why) => {
            audit::session_refused(&why);
            let opts = sftp_options(
                &Policy::default(),
                flags,
                restricted,
                false,
                Some(why),
                false,
            );
            return sftp::run(opts, confine::Scope::Unconfined, RawStdin, RawStdout);
        }
    };
    let Session { policy, scope } = session;
    if let Some(dir) = &flags.start_dir {
        if scope.is_confined() {
            let why = "sftp-server's -d cannot be combined with a confined session: the root is where it starts";
            return refuse_on_stderr(why);
        }
        let dir = expand_start_dir(dir);
        if let Err(e) = std::env::set_current_dir(OsStr::from_bytes(&dir)) {
            eprintln!(
                "scp-server: chdir to \"{}\" failed: {e}",
                protocol::escape_bytes(&dir)
            );
        }
    }
    let confined = scope.is_confined();
    let opts = sftp_options(&policy, flags, restricted, confined, None, !admin.copy_data);
    sftp::run(opts, scope, RawStdin, RawStdout)
}

/// The SFTP server's options from the policy and sftp-server's flags.
fn sftp_options(
    policy: &Policy,
    flags: &SftpServerFlags,
    restricted: bool,
    confined: bool,
    refuse_all: Option<String>,
    zero_copy: bool,
) -> sftp::SftpOptions {
    let home = if confined {
        b"/".to_vec()
    } else {
        std::env::var_os("HOME")
            .map(|h| h.as_bytes().to_vec())
            .unwrap_or_else(|| b"/".to_vec())
    };
    let denied: sftp::DenyCheck = if confined {
        let policy = policy.clone();
        Box::new(move |rel| policy.denied(rel).map(str::to_owned))
    } else {
        Box::new(|_| None)
    };
    sftp::SftpOptions {
        read_only: policy.read_only || flags.read_only,
        write_only: policy.write_only,
        no_overwrite: policy.no_overwrite,
        no_symlinks: policy.no_symlinks,
        allow_links: policy.allow_links,
        restricted,
        explicit_umask: flags.umask.or(policy.umask),
        creation_umask: confine::inherited_umask(),
        mode_mask: if policy.allow_setid { 0o7777 } else { 0o777 },
        fsync: policy.fsync,
        limits: limits_of(policy),
        max_depth: policy.max_depth,
        denied,
        deny_requests: flags.deny_requests.clone(),
        allow_requests: flags.allow_requests.clone(),
        home,
        refuse_all,
        zero_copy,
    }
}

/// sftp-server's `-d`: `%d` the home, `%u` the user, `%U` the uid, `%%`.
fn expand_start_dir(dir: &[u8]) -> Vec<u8> {
    let identity = policy::Identity::current();
    let home = std::env::var_os("HOME").map_or_else(Vec::new, |h| h.as_bytes().to_vec());
    let user = identity.user.unwrap_or_default().into_bytes();
    let uid = nix::unistd::getuid().as_raw().to_string().into_bytes();
    let mut out = Vec::with_capacity(dir.len());
    let mut bytes = dir.iter().copied();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'd') => out.extend_from_slice(&home),
            Some(b'u') => out.extend_from_slice(&user),
            Some(b'U') => out.extend_from_slice(&uid),
            Some(other) => out.push(other),
            None => out.push(b'%'),
        }
    }
    out
}

/// Stack reserved per directory level of a received tree (address space,
/// not memory: only what a deep tree really uses is ever touched).
const STACK_PER_DIRECTORY_LEVEL: usize = 32 * 1024;

fn run_source(
    admin: &AdminArgs,
    flags: ScpFlags,
    restricted: bool,
    operands: impl FnOnce(&confine::Scope) -> Vec<source::Operand>,
) -> i32 {
    let Session { policy, scope } =
        match open_session(admin, restricted, SessionKind::Source, flags.verbose) {
            Ok(session) => session,
            Err(why) => return refuse_in_protocol(&why),
        };
    if let Some(why) = policy.download_refusal() {
        return refuse_in_protocol(&why);
    }
    let opts = source::SourceOptions {
        recursive: flags.recursive,
        preserve: flags.preserve,
        verbose: flags.verbose,
        limits: limits_of(&policy),
    };
    let reader = RecordReader::new(RawStdin, MAX_RECORD_LINE);
    let operands = operands(&scope);
    source::run(
        &operands,
        scope,
        opts,
        reader,
        RawStdout,
        data_path(&flags, admin),
    )
}

/// The umask applied to received modes: an explicit policy umask always;
/// the inherited one only without `-p` (as OpenSSH, which sets it to 0
/// for `-p`; we never change the process umask).
fn effective_umask(policy: &Policy, preserve: bool) -> u32 {
    match policy.umask {
        Some(explicit) => explicit,
        None if preserve => 0,
        None => confine::inherited_umask(),
    }
}

fn limits_of(policy: &Policy) -> limits::Limits {
    limits::Limits {
        max_file_size: policy.max_file_size,
        max_total_bytes: policy.max_total_bytes,
        max_files: policy.max_files,
    }
}

/// Deny patterns guard what a confined account may write; unconfined
/// sessions are the user's own shell-equivalent and get none.
fn deny_check(policy: &Policy, scope: &confine::Scope) -> sink::DenyCheck {
    if !scope.is_confined() {
        return Box::new(|_| None);
    }
    let policy = policy.clone();
    Box::new(move |rel| policy.denied(rel).map(str::to_owned))
}

fn data_path(flags: &ScpFlags, admin: &AdminArgs) -> DataPath {
    let data = DataPath::new(flags.limit_kbits.map(Throttle::from_kbits));
    if admin.copy_data {
        data.copying_only()
    } else {
        data
    }
}

/// A refusal of something that is not an scp transfer: one line on stderr.
fn refuse_on_stderr(message: &str) -> i32 {
    eprintln!("scp-server: {message}");
    1
}

/// A refusal the client must see: one `\x01` line on the protocol stream.
fn refuse_in_protocol(message: &str) -> i32 {
    audit::session_refused(message);
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
