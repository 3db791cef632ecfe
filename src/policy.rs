//! The policy: one value that decides what a session may do.
//!
//! Sources, lowest to highest precedence (DESIGN.md, "Policy"): built-in
//! defaults, the config file's global keys, its `[group.NAME]` sections for
//! the process's groups (in file order), its `[user.NAME]` section for the
//! process's user, then the admin's command-line flags. User and groups come
//! from the real uid/gid and the supplementary groups sshd set up, never
//! from anything the client could influence (environment variables).
//!
//! A config file that was asked for but cannot be used fails closed: the
//! policy carries `config_error`, and every transfer must be refused with
//! that sentence, which names the file and, where there is one, the line.

use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Where the config file is looked for without `--config` (inside a
/// chroot jail: the jail's own).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/scp-server.conf";

/// Directory levels allowed below the target without `max-depth`.
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// Largest `max-depth` accepted: deep enough for any real tree, small
/// enough that a recursion per level can never exhaust the stack.
pub const MAX_DEPTH_LIMIT: usize = 4096;

/// Deny patterns in force when neither the config file nor the command line
/// names any: a confined account whose root is its home must not be able to
/// plant keys or shell start-up files (the scponly lesson, PROTOCOL.md §f).
pub const DEFAULT_DENY: &[&str] = &[
    ".ssh/",
    ".profile",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".cshrc",
    ".tcshrc",
    ".login",
    ".logout",
    ".kshrc",
    ".mkshrc",
    ".inputrc",
    ".forward",
    ".rhosts",
    ".shosts",
    ".k5login",
];

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// The admin's policy options. Each one except `--config` is also a key of
/// the config file (the long name without dashes). Boolean flags can only
/// switch a behaviour on; to switch one off for some accounts, use the
/// config file's sections.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct PolicyArgs {
    /// Policy configuration file (TOML) [default: /etc/scp-server.conf]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Confine every transfer beneath DIR (`/x` and `x` both mean DIR/x)
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Refuse uploads (scp -t)
    #[arg(long, conflicts_with = "write_only")]
    pub read_only: bool,

    /// Refuse downloads (scp -f)
    #[arg(long)]
    pub write_only: bool,

    /// Never replace an existing file
    #[arg(long)]
    pub no_overwrite: bool,

    /// Umask for created files and directories, in octal; applies with -p too
    #[arg(long, value_name = "OCTAL", value_parser = parse_umask)]
    pub umask: Option<u32>,

    /// Apply setuid, setgid and sticky bits that the client asks for
    #[arg(long)]
    pub allow_setid: bool,

    /// Refuse every symlink, even one that stays inside the root
    #[arg(long)]
    pub no_symlinks: bool,

    /// Serve SFTP's SYMLINK and hardlink requests in restricted mode (never a link that leads out of the root)
    #[arg(long)]
    pub allow_links: bool,

    /// Largest file accepted, in bytes; suffixes K, M, G, T are powers of 1024
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_file_size: Option<u64>,

    /// Most bytes of file data per session; suffixes K, M, G, T
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_total_bytes: Option<u64>,

    /// Most files per session (directories are not counted)
    #[arg(long, value_name = "N")]
    pub max_files: Option<u64>,

    /// Directory levels allowed below the target, 1 to 4096 [default: 256]
    #[arg(long, value_name = "N", value_parser = parse_max_depth)]
    pub max_depth: Option<usize>,

    /// Flush each uploaded file and its directory to disk before publishing it
    #[arg(long)]
    pub fsync: bool,

    /// Refuse paths matching PATTERN (repeatable; adds to the configured list)
    #[arg(long, value_name = "PATTERN", value_parser = DenyPattern::parse)]
    pub deny: Vec<DenyPattern>,

    /// Audit trail: journald, json:FILE (JSON lines appended to FILE), stderr or none [default: journald when its socket exists]
    #[arg(long, value_name = "SINK", value_parser = LogTarget::parse)]
    pub log: Option<LogTarget>,

    /// Record each file's checksum in its audit event: sha256 or none [default: none]
    #[arg(long, value_name = "ALGORITHM", value_parser = ChecksumKind::parse)]
    pub checksum: Option<ChecksumKind>,
}

/// True if any policy option other than `--config`, `--log` and
/// `--checksum` was given: any of them selects restricted mode (DESIGN.md,
/// "Contract details").
pub fn any_restriction_flag(args: &PolicyArgs) -> bool {
    // Destructured so that a new option cannot be forgotten here.
    let PolicyArgs {
        config: _,
        // The audit settings say what is recorded, not what is allowed: an
        // admin who only asks for a log must not turn a person's `scp` into
        // a confined session.
        log: _,
        checksum: _,
        root,
        read_only,
        write_only,
        no_overwrite,
        umask,
        allow_setid,
        no_symlinks,
        allow_links,
        max_file_size,
        max_total_bytes,
        max_files,
        max_depth,
        fsync,
        deny,
    } = args;
    root.is_some()
        || *read_only
        || *write_only
        || *no_overwrite
        || umask.is_some()
        || *allow_setid
        || *no_symlinks
        || *allow_links
        || max_file_size.is_some()
        || max_total_bytes.is_some()
        || max_files.is_some()
        || max_depth.is_some()
        || *fsync
        || !deny.is_empty()
}

// ---------------------------------------------------------------------------
// Value syntax shared by the command line and the config file
// ---------------------------------------------------------------------------

/// A byte count: digits with an optional K, M, G or T suffix (any case),
/// each a power of 1024. Nothing else: no sign, no fraction, no "KB".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid size '{text}': expected digits with an optional K, M, G or T suffix (powers of 1024)"
        )
    };
    let (digits, shift) = match text.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => (&text[..text.len() - 1], 10),
        Some(b'M') => (&text[..text.len() - 1], 20),
        Some(b'G') => (&text[..text.len() - 1], 30),
        Some(b'T') => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let too_large = || format!("size '{text}' is too large (at most 16 EiB - 1 bytes)");
    let count: u64 = digits.parse().map_err(|_| too_large())?;
    count.checked_mul(1 << shift).ok_or_else(too_large)
}

/// A umask: octal digits only (`027`, `0077`), at most 0777.
pub fn parse_umask(text: &str) -> Result<u32, String> {
    let invalid = || format!("invalid umask '{text}': expected octal digits from 0 to 0777");
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(invalid());
    }
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mask| *mask <= 0o777)
        .ok_or_else(invalid)
}

/// A `max-depth` given as text (the command line).
pub fn parse_max_depth(text: &str) -> Result<usize, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid depth '{text}': expected a number from 1 to {MAX_DEPTH_LIMIT}"
        ));
    }
    // Digits that overflow are simply out of range.
    check_max_depth(text.parse().unwrap_or(i128::MAX))
}

fn check_max_depth(depth: i128) -> Result<usize, String> {
    usize::try_from(depth)
        .ok()
        .filter(|d| (1..=MAX_DEPTH_LIMIT).contains(d))
        .ok_or_else(|| format!("max-depth must be from 1 to {MAX_DEPTH_LIMIT}, not {depth}"))
}

/// Where the audit trail goes (`--log`, `log = "..."`; audit.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// journald's native protocol (skipped when its socket is missing).
    Journald,
    /// One JSON object per line, appended to this file (an absolute path).
    Json(PathBuf),
    /// The same JSON lines on stderr, which reaches the client's terminal:
    /// only for an admin who asks for it.
    Stderr,
    /// No audit trail.
    Off,
}

impl LogTarget {
    pub fn parse(text: &str) -> Result<LogTarget, String> {
        match text {
            "journald" => Ok(LogTarget::Journald),
            "stderr" => Ok(LogTarget::Stderr),
            "none" => Ok(LogTarget::Off),
            // A relative file would depend on the directory sshd started us
            // in (the user's home, which the user controls).
            _ => match text.strip_prefix("json:") {
                Some(path) if path.starts_with('/') => Ok(LogTarget::Json(PathBuf::from(path))),
                _ => Err(format!(
                    "invalid log target '{text}': expected journald, json:FILE (FILE an absolute path), stderr or none"
                )),
            },
        }
    }
}

/// Which checksum each file's audit event carries (`--checksum`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChecksumKind {
    #[default]
    Off,
    Sha256,
}

impl ChecksumKind {
    pub fn parse(text: &str) -> Result<ChecksumKind, String> {
        match text {
            "sha256" => Ok(ChecksumKind::Sha256),
            "none" => Ok(ChecksumKind::Off),
            _ => Err(format!(
                "invalid checksum '{text}': expected sha256 or none"
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// Who the session runs as
// ---------------------------------------------------------------------------

/// The account names that select `[user.NAME]` and `[group.NAME]` sections.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: Option<String>,
    pub groups: Vec<String>,
    /// Some of the process's ids have no name (a jail without passwd or
    /// group entries for them): per-user and per-group sections cannot be
    /// matched reliably.
    pub unnamed_ids: bool,
}

impl Identity {
    /// The process's real user, its real group and its supplementary groups
    /// (as sshd's initgroups set them), by name. Names come from the
    /// passwd/group databases (inside a jail, the jail's); an id without a
    /// name selects no section.
    pub fn current() -> Identity {
        use nix::unistd::{Group, User, getgid, getgroups, getuid};
        let user = User::from_uid(getuid()).ok().flatten().map(|u| u.name);
        let mut unnamed_ids = user.is_none();
        let mut gids = vec![getgid()];
        gids.extend(getgroups().unwrap_or_default());
        let mut groups: Vec<String> = Vec::new();
        for gid in gids {
            match Group::from_gid(gid).ok().flatten() {
                Some(group) if !groups.contains(&group.name) => groups.push(group.name),
                Some(_) => {}
                None => unnamed_ids = true,
            }
        }
        Identity {
            user,
            groups,
            unnamed_ids,
        }
    }
}

// ---------------------------------------------------------------------------
// The resolved policy
// ---------------------------------------------------------------------------

/// What a session may do, every source applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The confinement root; `None` leaves the choice to the caller (the
    /// home directory in restricted mode, DESIGN.md).
    pub root: Option<PathBuf>,
    pub read_only: bool,
    pub write_only: bool,
    pub no_overwrite: bool,
    /// `None`: the inherited process umask, applied only without `-p`.
    pub umask: Option<u32>,
    pub allow_setid: bool,
    pub no_symlinks: bool,
    /// SFTP links (SYMLINK, hardlink) in restricted mode.
    pub allow_links: bool,
    /// Limits are inclusive; `None` is unlimited.
    pub max_file_size: Option<u64>,
    pub max_total_bytes: Option<u64>,
    pub max_files: Option<u64>,
    pub max_depth: usize,
    pub fsync: bool,
    pub deny: Vec<DenyPattern>,
    /// `None`: journald when its socket exists, else no audit trail.
    pub log: Option<LogTarget>,
    pub checksum: ChecksumKind,
    /// Set when a config file was asked for (or exists at the default path)
    /// but cannot be used: every transfer must be refused with this
    /// sentence. The other fields then hold the defaults and flags only.
    pub config_error: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            root: None,
            read_only: false,
            write_only: false,
            no_overwrite: false,
            umask: None,
            allow_setid: false,
            no_symlinks: false,
            allow_links: false,
            max_file_size: None,
            max_total_bytes: None,
            max_files: None,
            max_depth: DEFAULT_MAX_DEPTH,
            fsync: false,
            deny: default_deny_patterns(),
            log: None,
            checksum: ChecksumKind::Off,
            config_error: None,
        }
    }
}

fn default_deny_patterns() -> Vec<DenyPattern> {
    DEFAULT_DENY
        .iter()
        .map(|text| DenyPattern::parse(text).expect("built-in deny patterns are valid"))
        .collect()
}

impl Policy {
    /// Resolves the policy for `identity` from the config file (`--config`
    /// or the default path) and the flags.
    pub fn load(args: &PolicyArgs, identity: &Identity) -> Policy {
        Self::load_with_default_path(args, identity, Path::new(DEFAULT_CONFIG_PATH))
    }

    /// `load` with the default config path as a parameter, so tests can
    /// point it at a file of their own.
    fn load_with_default_path(
        args: &PolicyArgs,
        identity: &Identity,
        default_path: &Path,
    ) -> Policy {
        let (path, named) = match &args.config {
            Some(path) => (path.as_path(), true),
            None => (default_path, false),
        };
        let mut policy = Policy::default();
        match read_config_file(path, named) {
            Ok(Some(file)) if file.has_sections() && identity.unnamed_ids => {
                policy.config_error = Some(format!(
                    "configuration file {}: refused: it has per-user or per-group sections, but this account's user or group has no name here (add its passwd and group entries, inside a jail the jail's own)",
                    path.display()
                ));
            }
            Ok(Some(file)) => file.apply_for(identity, &mut policy),
            Ok(None) => {}
            Err(sentence) => policy.config_error = Some(sentence),
        }
        Settings::from_args(args).apply_to(&mut policy);
        policy.deny.extend(args.deny.iter().cloned());
        policy
    }

    /// The text of the first deny pattern matching `rel_path` (relative to
    /// the root, `/`-separated, lexically normalised: no `..`).
    pub fn denied(&self, rel_path: &[u8]) -> Option<&str> {
        self.deny
            .iter()
            .find(|pattern| pattern.matches(rel_path))
            .map(DenyPattern::as_str)
    }

    /// Why this session may not upload (`-t`), if it may not.
    pub fn upload_refusal(&self) -> Option<String> {
        self.config_error.clone().or_else(|| {
            self.read_only
                .then(|| "uploads are not allowed for this account".to_owned())
        })
    }

    /// Why this session may not download (`-f`), if it may not.
    pub fn download_refusal(&self) -> Option<String> {
        self.config_error.clone().or_else(|| {
            self.write_only
                .then(|| "downloads are not allowed for this account".to_owned())
        })
    }
}

// ---------------------------------------------------------------------------
// One layer of settings (the file's global keys, a section, or the flags)
// ---------------------------------------------------------------------------

/// The keys one layer sets; `None` leaves the value of the layers below.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Settings {
    root: Option<PathBuf>,
    read_only: Option<bool>,
    write_only: Option<bool>,
    no_overwrite: Option<bool>,
    umask: Option<u32>,
    allow_setid: Option<bool>,
    no_symlinks: Option<bool>,
    allow_links: Option<bool>,
    max_file_size: Option<u64>,
    max_total_bytes: Option<u64>,
    max_files: Option<u64>,
    max_depth: Option<usize>,
    fsync: Option<bool>,
    /// Replaces the list in force (an empty list removes the defaults).
    deny: Option<Vec<DenyPattern>>,
    log: Option<LogTarget>,
    checksum: Option<ChecksumKind>,
}

impl Settings {
    /// The flags as a layer. A flag can only be given, never "given as
    /// false", so an absent flag leaves the file's value. `--deny` adds to
    /// the list rather than replacing it, so it is left to the caller.
    fn from_args(args: &PolicyArgs) -> Settings {
        Settings {
            root: args.root.clone(),
            read_only: args.read_only.then_some(true),
            write_only: args.write_only.then_some(true),
            no_overwrite: args.no_overwrite.then_some(true),
            umask: args.umask,
            allow_setid: args.allow_setid.then_some(true),
            no_symlinks: args.no_symlinks.then_some(true),
            allow_links: args.allow_links.then_some(true),
            max_file_size: args.max_file_size,
            max_total_bytes: args.max_total_bytes,
            max_files: args.max_files,
            max_depth: args.max_depth,
            fsync: args.fsync.then_some(true),
            deny: None,
            log: args.log.clone(),
            checksum: args.checksum,
        }
    }

    fn apply_to(&self, policy: &mut Policy) {
        set_optional(&mut policy.root, &self.root);
        // Read-only and write-only are one choice of direction: a higher
        // layer's `write-only` replaces a lower layer's `read-only` instead
        // of combining into "nothing allowed".
        if let Some(read_only) = self.read_only {
            policy.read_only = read_only;
            policy.write_only &= !read_only;
        }
        if let Some(write_only) = self.write_only {
            policy.write_only = write_only;
            policy.read_only &= !write_only;
        }
        set(&mut policy.no_overwrite, &self.no_overwrite);
        set_optional(&mut policy.umask, &self.umask);
        set(&mut policy.allow_setid, &self.allow_setid);
        set(&mut policy.no_symlinks, &self.no_symlinks);
        set(&mut policy.allow_links, &self.allow_links);
        set_optional(&mut policy.max_file_size, &self.max_file_size);
        set_optional(&mut policy.max_total_bytes, &self.max_total_bytes);
        set_optional(&mut policy.max_files, &self.max_files);
        set(&mut policy.max_depth, &self.max_depth);
        set(&mut policy.fsync, &self.fsync);
        set(&mut policy.deny, &self.deny);
        set_optional(&mut policy.log, &self.log);
        set(&mut policy.checksum, &self.checksum);
    }
}

/// A value the layer sets replaces the one below; an unset one leaves it.
fn set<T: Clone>(target: &mut T, layer: &Option<T>) {
    if let Some(value) = layer {
        *target = value.clone();
    }
}

/// `set` for a policy value that is itself optional ("unlimited", "the
/// inherited umask"): a layer can set it, not unset it.
fn set_optional<T: Clone>(target: &mut Option<T>, layer: &Option<T>) {
    if layer.is_some() {
        *target = layer.clone();
    }
}

// ---------------------------------------------------------------------------
// The config file
// ---------------------------------------------------------------------------

/// A parsed config file: the global layer and the sections in file order.
#[derive(Debug, Default)]
struct ConfigFile {
    global: Settings,
    groups: Vec<(String, Settings)>,
    users: Vec<(String, Settings)>,
}

impl ConfigFile {
    fn has_sections(&self) -> bool {
        !self.groups.is_empty() || !self.users.is_empty()
    }

    fn apply_for(&self, identity: &Identity, policy: &mut Policy) {
        self.global.apply_to(policy);
        for (name, section) in &self.groups {
            if identity.groups.contains(name) {
                section.apply_to(policy);
            }
        }
        for (name, section) in &self.users {
            if identity.user.as_ref() == Some(name) {
                section.apply_to(policy);
            }
        }
    }
}

/// Something wrong in the file's text, at a byte offset when known.
#[derive(Debug, PartialEq, Eq)]
struct ConfigError {
    offset: Option<usize>,
    message: String,
}

impl ConfigError {
    fn at(offset: usize, message: impl Into<String>) -> Self {
        ConfigError {
            offset: Some(offset),
            message: message.into(),
        }
    }
}

/// Reads and parses the config file. A missing file is no error unless it
/// was named with `--config`; everything else that goes wrong is (fail
/// closed), as a sentence naming the file and, where known, the line.
fn read_config_file(path: &Path, named: bool) -> Result<Option<ConfigFile>, String> {
    let read = std::fs::File::open(path).and_then(|mut file| {
        let meta = file.metadata()?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes)?;
        Ok((meta, bytes))
    });
    let bytes = match read {
        Ok((meta, bytes)) => {
            check_config_ownership(path, &meta)?;
            bytes
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => return Ok(None),
        Err(e) => {
            return Err(format!(
                "configuration file {}: {}",
                path.display(),
                io_error_text(&e)
            ));
        }
    };
    parse_config_bytes(&bytes)
        .map(Some)
        .map_err(|e| describe_config_error(path, &bytes, &e))
}

/// A policy file that the account it restricts could rewrite restricts
/// nothing: it must belong to root and be writable by nobody else (as sshd
/// demands of the directories of a ChrootDirectory).
fn check_config_ownership(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "configuration file {}: refused: it must be owned by root and writable by nobody else",
            path.display()
        ));
    }
    Ok(())
}

/// The system's wording for an I/O error, without Rust's "(os error N)".
fn io_error_text(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => crate::error::strerror(nix::errno::Errno::from_raw(code)).to_owned(),
        None => error.to_string(),
    }
}

fn describe_config_error(path: &Path, text: &[u8], error: &ConfigError) -> String {
    match error.offset {
        Some(offset) => format!(
            "configuration file {}, line {}: {}",
            path.display(),
            line_of(text, offset),
            error.message
        ),
        None => format!("configuration file {}: {}", path.display(), error.message),
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &[u8], offset: usize) -> usize {
    let end = offset.min(text.len());
    text[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

fn parse_config_bytes(bytes: &[u8]) -> Result<ConfigFile, ConfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ConfigError::at(e.valid_up_to(), "not valid UTF-8 (TOML is UTF-8)"))?;
    parse_config(text)
}

fn parse_config(text: &str) -> Result<ConfigFile, ConfigError> {
    let document = DeTable::parse(text).map_err(|e| ConfigError {
        offset: e.span().map(|span| span.start),
        message: e.message().trim_end().to_owned(),
    })?;
    let mut file = ConfigFile::default();
    for (key, value) in in_file_order(document.get_ref()) {
        match key.get_ref().as_ref() {
            "user" => file.users = parse_sections("user", key, value)?,
            "group" => file.groups = parse_sections("group", key, value)?,
            _ => file.global.set_key(key, value, None)?,
        }
    }
    Ok(file)
}

type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;
type Value<'i> = Spanned<DeValue<'i>>;

/// A table's entries in the order they appear in the file (the parser
/// sorts them by name; the order of `[group.*]` sections matters).
fn in_file_order<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Key<'i>, &'t Value<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// The sections under `user` or `group`: each `[KIND.NAME]` a table of keys.
fn parse_sections(
    kind: &str,
    key: &Key<'_>,
    value: &Value<'_>,
) -> Result<Vec<(String, Settings)>, ConfigError> {
    let DeValue::Table(table) = value.get_ref() else {
        return Err(ConfigError::at(
            key.span().start,
            format!("'{kind}' must hold sections written as [{kind}.NAME]"),
        ));
    };
    let mut sections = Vec::new();
    for (name, body) in in_file_order(table) {
        let label = format!("[{kind}.{}]", name.get_ref());
        let DeValue::Table(keys) = body.get_ref() else {
            return Err(ConfigError::at(
                name.span().start,
                format!("{label} must be a section ([{kind}.NAME] followed by keys)"),
            ));
        };
        let mut settings = Settings::default();
        for (key, value) in in_file_order(keys) {
            settings.set_key(key, value, Some(&label))?;
        }
        sections.push((name.get_ref().to_string(), settings));
    }
    Ok(sections)
}

impl Settings {
    /// Applies one `key = value` of the file to this layer.
    fn set_key(
        &mut self,
        key: &Key<'_>,
        value: &Value<'_>,
        section: Option<&str>,
    ) -> Result<(), ConfigError> {
        let name = key.get_ref().as_ref();
        match name {
            "root" => self.root = Some(root_value(name, value)?),
            "read-only" => self.read_only = Some(bool_value(name, value)?),
            "write-only" => self.write_only = Some(bool_value(name, value)?),
            "no-overwrite" => self.no_overwrite = Some(bool_value(name, value)?),
            "umask" => self.umask = Some(umask_value(name, value)?),
            "allow-setid" => self.allow_setid = Some(bool_value(name, value)?),
            "no-symlinks" => self.no_symlinks = Some(bool_value(name, value)?),
            "allow-links" => self.allow_links = Some(bool_value(name, value)?),
            "max-file-size" => self.max_file_size = Some(size_value(name, value)?),
            "max-total-bytes" => self.max_total_bytes = Some(size_value(name, value)?),
            "max-files" => self.max_files = Some(count_value(name, value)?),
            "max-depth" => self.max_depth = Some(depth_value(name, value)?),
            "fsync" => self.fsync = Some(bool_value(name, value)?),
            "deny" => self.deny = Some(deny_value(name, value)?),
            "log" => self.log = Some(log_value(name, value)?),
            "checksum" => self.checksum = Some(checksum_value(name, value)?),
            _ => return Err(unknown_key(name, key, value, section)),
        }
        if self.read_only == Some(true) && self.write_only == Some(true) {
            return Err(ConfigError::at(
                key.span().start,
                "read-only and write-only cannot both be true",
            ));
        }
        Ok(())
    }
}

fn unknown_key(name: &str, key: &Key<'_>, value: &Value<'_>, section: Option<&str>) -> ConfigError {
    let message = match section {
        Some(label) => format!("unknown key '{name}' in {label}"),
        // `[users.bob]` and the like: say which sections exist.
        None if value.get_ref().is_table() => {
            format!("unknown key '{name}' (sections are [user.NAME] and [group.NAME])")
        }
        None => format!("unknown key '{name}'"),
    };
    ConfigError::at(key.span().start, message)
}

fn wrong_type(name: &str, value: &Value<'_>, expected: &str) -> ConfigError {
    ConfigError::at(
        value.span().start,
        format!(
            "'{name}' must be {expected}, not {}",
            value.get_ref().type_str()
        ),
    )
}

fn bool_value(name: &str, value: &Value<'_>) -> Result<bool, ConfigError> {
    value
        .get_ref()
        .as_bool()
        .ok_or_else(|| wrong_type(name, value, "true or false"))
}

fn string_value<'v>(
    name: &str,
    value: &'v Value<'_>,
    expected: &str,
) -> Result<&'v str, ConfigError> {
    value
        .get_ref()
        .as_str()
        .ok_or_else(|| wrong_type(name, value, expected))
}

/// A TOML integer as written (decimal, hex, octal or binary).
fn integer_value(name: &str, value: &Value<'_>, expected: &str) -> Result<i128, ConfigError> {
    let integer = value
        .get_ref()
        .as_integer()
        .ok_or_else(|| wrong_type(name, value, expected))?;
    i128::from_str_radix(integer.as_str(), integer.radix())
        .map_err(|_| ConfigError::at(value.span().start, format!("'{name}' is out of range")))
}

fn root_value(name: &str, value: &Value<'_>) -> Result<PathBuf, ConfigError> {
    let text = string_value(name, value, "a string (an absolute path)")?;
    // A relative root would depend on the directory sshd started us in.
    if !text.starts_with('/') {
        return Err(ConfigError::at(
            value.span().start,
            format!("'{name}' must be an absolute path, not '{text}'"),
        ));
    }
    Ok(PathBuf::from(text))
}

/// Only a string: a TOML integer such as `umask = 27` is decimal, and
/// reading it as octal would surprise in one direction or the other.
fn umask_value(name: &str, value: &Value<'_>) -> Result<u32, ConfigError> {
    let text = string_value(name, value, "a string of octal digits such as \"027\"")?;
    parse_umask(text).map_err(|e| ConfigError::at(value.span().start, e))
}

/// A string with an optional suffix (`"100M"`) or an integer of bytes.
fn size_value(name: &str, value: &Value<'_>) -> Result<u64, ConfigError> {
    let expected = "a size such as \"100M\" or a number of bytes";
    if let Some(text) = value.get_ref().as_str() {
        return parse_size(text)
            .map_err(|e| ConfigError::at(value.span().start, format!("'{name}': {e}")));
    }
    non_negative(name, value, integer_value(name, value, expected)?)
}

fn count_value(name: &str, value: &Value<'_>) -> Result<u64, ConfigError> {
    non_negative(name, value, integer_value(name, value, "an integer")?)
}

fn non_negative(name: &str, value: &Value<'_>, number: i128) -> Result<u64, ConfigError> {
    u64::try_from(number).map_err(|_| {
        ConfigError::at(
            value.span().start,
            format!("'{name}' must be from 0 to {}, not {number}", u64::MAX),
        )
    })
}

fn depth_value(name: &str, value: &Value<'_>) -> Result<usize, ConfigError> {
    let depth = integer_value(name, value, "an integer")?;
    check_max_depth(depth).map_err(|e| ConfigError::at(value.span().start, e))
}

fn log_value(name: &str, value: &Value<'_>) -> Result<LogTarget, ConfigError> {
    let text = string_value(
        name,
        value,
        "a string such as \"journald\" or \"json:/var/log/scp-server.jsonl\"",
    )?;
    LogTarget::parse(text).map_err(|e| ConfigError::at(value.span().start, e))
}

fn checksum_value(name: &str, value: &Value<'_>) -> Result<ChecksumKind, ConfigError> {
    let text = string_value(name, value, "a string: \"sha256\" or \"none\"")?;
    ChecksumKind::parse(text).map_err(|e| ConfigError::at(value.span().start, e))
}

fn deny_value(name: &str, value: &Value<'_>) -> Result<Vec<DenyPattern>, ConfigError> {
    let expected = "a list of strings such as [\".ssh/\", \"*.php\"]";
    let DeValue::Array(items) = value.get_ref() else {
        return Err(wrong_type(name, value, expected));
    };
    items
        .iter()
        .map(|item| {
            let text = string_value(name, item, expected)?;
            DenyPattern::parse(text).map_err(|e| ConfigError::at(item.span().start, e))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Deny patterns
// ---------------------------------------------------------------------------

/// A path pattern whose matches may not be written or read.
///
/// - Without a `/` (`.profile`, `*.php`): matches any one path component
///   anywhere, and so everything beneath a directory of that name.
/// - With a trailing `/` (`.ssh/`): the same; the slash documents that a
///   directory is meant (a file of that name is refused too: safer, and the
///   caller may not know yet what a name will be).
/// - With a leading or inner `/` (`/secret`, `www/*.php`): anchored at the
///   root, component by component, and everything beneath a match.
///
/// Within a component: `*` any run of characters, `?` one character, `[...]`
/// a set (`[a-z]`, `[!0-9]` or `[^0-9]` negated), `\` quotes the next
/// character. `*` never crosses a `/` and matches a leading dot too.
/// Characters are UTF-8; a byte of a name that is not UTF-8 counts as one
/// character of its own, so `?` matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyPattern {
    text: String,
    anchored: bool,
    components: Vec<Vec<GlobToken>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GlobToken {
    Literal(Unit),
    AnyOne,
    AnyRun,
    Set {
        negated: bool,
        ranges: Vec<(Unit, Unit)>,
    },
}

/// One character of a name: a Unicode scalar value, or a byte that is not
/// part of valid UTF-8, kept apart above the Unicode range.
type Unit = u32;
const RAW_BYTE_BASE: Unit = 0x11_0000;

impl DenyPattern {
    pub fn parse(text: &str) -> Result<DenyPattern, String> {
        let invalid = |why: &str| format!("invalid deny pattern '{text}': {why}");
        let body = text.strip_prefix('/').unwrap_or(text);
        let body = body.strip_suffix('/').unwrap_or(body);
        if body.is_empty() {
            return Err(invalid("it names no file"));
        }
        let components = body
            .split('/')
            .map(|component| match component {
                "" => Err(invalid("empty path component")),
                "." | ".." => Err(invalid("'.' and '..' cannot be matched")),
                _ => compile_glob(component).map_err(|why| invalid(&why)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DenyPattern {
            text: text.to_owned(),
            anchored: text.starts_with('/') || components.len() > 1,
            components,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `rel_path` (relative to the root, `/`-separated) or one of
    /// the directories above it matches. Empty and `.` components are
    /// ignored.
    pub fn matches(&self, rel_path: &[u8]) -> bool {
        let names: Vec<Vec<Unit>> = rel_path
            .split(|&b| b == b'/')
            .filter(|name| !name.is_empty() && *name != b".")
            .map(units_of)
            .collect();
        if self.anchored {
            names.len() >= self.components.len()
                && self
                    .components
                    .iter()
                    .zip(&names)
                    .all(|(glob, name)| glob_matches(glob, name))
        } else {
            let glob = &self.components[0];
            names.iter().any(|name| glob_matches(glob, name))
        }
    }
}

/// One path component's glob (`*`, `?`, `[...]`, `\` quoting), as deny
/// patterns use it; also what `-f` operands are expanded with in the
/// shell-less modes (command.rs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentGlob(Vec<GlobToken>);

impl ComponentGlob {
    pub fn new(pattern: &str) -> Result<ComponentGlob, String> {
        compile_glob(pattern).map(ComponentGlob)
    }

    pub fn matches(&self, name: &[u8]) -> bool {
        glob_matches(&self.0, &units_of(name))
    }
}

impl std::fmt::Display for DenyPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn units_of(name: &[u8]) -> Vec<Unit> {
    let mut units = Vec::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        units.extend(chunk.valid().chars().map(Unit::from));
        units.extend(
            chunk
                .invalid()
                .iter()
                .map(|&b| RAW_BYTE_BASE + Unit::from(b)),
        );
    }
    units
}

fn compile_glob(component: &str) -> Result<Vec<GlobToken>, String> {
    let mut chars = component.chars().map(Unit::from).peekable();
    let mut tokens = Vec::new();
    while let Some(c) = chars.next() {
        let token = match char_of(c) {
            '*' => GlobToken::AnyRun,
            '?' => GlobToken::AnyOne,
            '[' => compile_set(&mut chars)?,
            '\\' => GlobToken::Literal(chars.next().ok_or("'\\' at the end quotes nothing")?),
            _ => GlobToken::Literal(c),
        };
        // A run of stars means what one star means.
        if !(token == GlobToken::AnyRun && tokens.last() == Some(&GlobToken::AnyRun)) {
            tokens.push(token);
        }
    }
    Ok(tokens)
}

/// The rest of a `[...]` after its opening bracket. A `]` right after `[`
/// (or after the negation mark) is a member, not the end.
fn compile_set(
    chars: &mut std::iter::Peekable<impl Iterator<Item = Unit>>,
) -> Result<GlobToken, String> {
    let unclosed = || "'[' without a closing ']'".to_owned();
    let negated = chars
        .next_if(|&c| c == '!' as Unit || c == '^' as Unit)
        .is_some();
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let mut low = chars.next().ok_or_else(unclosed)?;
        if low == ']' as Unit && !first {
            break;
        }
        first = false;
        if low == '\\' as Unit {
            low = chars.next().ok_or_else(unclosed)?;
        }
        let mut high = low;
        if chars.next_if(|&c| c == '-' as Unit).is_some() {
            match chars.next().ok_or_else(unclosed)? {
                // `[a-]`: the dash is a member of its own.
                c if c == ']' as Unit => {
                    ranges.push((low, low));
                    ranges.push(('-' as Unit, '-' as Unit));
                    break;
                }
                c if c == '\\' as Unit => high = chars.next().ok_or_else(unclosed)?,
                c => high = c,
            }
            if high < low {
                return Err(format!(
                    "range '{}-{}' runs backwards",
                    char_of(low),
                    char_of(high)
                ));
            }
        }
        ranges.push((low, high));
    }
    Ok(GlobToken::Set { negated, ranges })
}

fn char_of(unit: Unit) -> char {
    char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER)
}

fn token_matches_one(token: &GlobToken, unit: Unit) -> bool {
    match token {
        GlobToken::Literal(c) => *c == unit,
        GlobToken::AnyOne => true,
        GlobToken::AnyRun => false,
        GlobToken::Set { negated, ranges } => {
            ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&unit)) != *negated
        }
    }
}

/// Glob matching with one backtrack point: on a mismatch, the last `*` seen
/// takes one more character and matching resumes after it. Earlier stars
/// never need revisiting, so the work is at most the product of the two
/// lengths, never exponential (names are at most NAME_MAX bytes).
fn glob_matches(glob: &[GlobToken], name: &[Unit]) -> bool {
    let (mut g, mut n) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match glob.get(g) {
            Some(GlobToken::AnyRun) => {
                last_star = Some((g, n));
                g += 1;
            }
            Some(token) if token_matches_one(token, name[n]) => {
                g += 1;
                n += 1;
            }
            _ => match last_star {
                Some((star, taken_to)) => {
                    last_star = Some((star, taken_to + 1));
                    g = star + 1;
                    n = taken_to + 1;
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|token| *token == GlobToken::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A directory of its own under the system temp dir, removed on drop.
    use crate::test_dir::TempDir;

    #[derive(Parser, Debug)]
    struct TestCli {
        #[command(flatten)]
        policy: PolicyArgs,
    }

    fn flags(words: &[&str]) -> PolicyArgs {
        let argv = std::iter::once("scp-server").chain(words.iter().copied());
        TestCli::try_parse_from(argv).unwrap().policy
    }

    fn flag_error(words: &[&str]) -> String {
        let argv = std::iter::once("scp-server").chain(words.iter().copied());
        TestCli::try_parse_from(argv).unwrap_err().to_string()
    }

    fn nobody() -> Identity {
        Identity::default()
    }

    fn identity(user: &str, groups: &[&str]) -> Identity {
        Identity {
            user: Some(user.to_owned()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            unnamed_ids: false,
        }
    }

    /// A write-only section must not silently stop applying because the
    /// account's uid has no name (a jail without etc/passwd): fail closed.
    #[test]
    fn sections_with_unnamed_ids_fail_closed() {
        let text = "[user.drop]\nwrite-only = true\n";
        let unnamed = Identity {
            user: None,
            groups: Vec::new(),
            unnamed_ids: true,
        };
        let policy = policy_from(text, &[], &unnamed);
        let error = policy.config_error.expect("must fail closed");
        assert!(error.contains("has no name here"), "{error}");
        // Without sections, unnamed ids do not matter.
        assert_eq!(
            policy_from("write-only = true\n", &[], &unnamed).config_error,
            None
        );
        // Named, the section applies as usual.
        assert!(policy_from(text, &[], &identity("drop", &[])).write_only);
    }

    /// The policy from config text (written to a file) and flags.
    fn policy_from(text: &str, words: &[&str], who: &Identity) -> Policy {
        let dir = TempDir::new("policy-test");
        let path = dir.write("scp-server.conf", text);
        let mut args = flags(words);
        args.config = Some(path);
        Policy::load(&args, who)
    }

    fn config_error(text: &str) -> String {
        let dir = TempDir::new("policy-test");
        let path = dir.write("bad.conf", text);
        let args = PolicyArgs {
            config: Some(path.clone()),
            ..PolicyArgs::default()
        };
        let error = Policy::load(&args, &nobody())
            .config_error
            .expect("the file must be refused");
        let prefix = format!("configuration file {}", path.display());
        assert!(error.starts_with(&prefix), "{error}");
        error[prefix.len()..].to_owned()
    }

    fn patterns(texts: &[&str]) -> Vec<DenyPattern> {
        texts
            .iter()
            .map(|t| DenyPattern::parse(t).unwrap())
            .collect()
    }

    // --- sizes, umask, depth ---

    #[test]
    fn sizes_with_suffixes_are_powers_of_1024() {
        for (text, bytes) in [
            ("0", 0),
            ("1", 1),
            ("1023", 1023),
            ("1K", 1024),
            ("1k", 1024),
            ("2M", 2 << 20),
            ("2m", 2 << 20),
            ("3G", 3 << 30),
            ("1T", 1 << 40),
            ("1t", 1 << 40),
            ("100M", 100 << 20),
            ("16777215T", 16_777_215 << 40),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn invalid_sizes_are_refused_with_a_reason() {
        for text in [
            "", "1X", "-1", "+1", "1.5M", "1KB", "1KiB", "K", " 1", "1 ", "1P", "0x10",
        ] {
            let error = parse_size(text).unwrap_err();
            assert!(error.contains("K, M, G or T"), "{text}: {error}");
        }
        for text in [
            "16777216T",
            "18446744073709551616",
            "99999999999999999999999K",
        ] {
            let error = parse_size(text).unwrap_err();
            assert!(error.contains("too large"), "{text}: {error}");
        }
    }

    #[test]
    fn umask_is_octal_up_to_0777() {
        for (text, mask) in [
            ("0", 0),
            ("022", 0o022),
            ("027", 0o027),
            ("0077", 0o077),
            ("777", 0o777),
            ("0777", 0o777),
        ] {
            assert_eq!(parse_umask(text), Ok(mask), "{text}");
        }
        for text in ["", "8", "0o22", "1000", "-1", "22 ", "abc", "07777"] {
            assert!(parse_umask(text).is_err(), "{text}");
        }
    }

    #[test]
    fn max_depth_from_1_to_4096() {
        assert_eq!(parse_max_depth("1"), Ok(1));
        assert_eq!(parse_max_depth("4096"), Ok(4096));
        for text in [
            "0",
            "4097",
            "-1",
            "",
            "99999999999999999999999999999999999999999",
        ] {
            assert!(parse_max_depth(text).is_err(), "{text}");
        }
        assert!(parse_max_depth("0").unwrap_err().contains("1 to 4096"));
    }

    // --- command line ---

    #[test]
    fn flags_parse_and_select_restricted_mode() {
        assert!(!any_restriction_flag(&flags(&[])));
        assert!(!any_restriction_flag(&flags(&["--config", "/x.conf"])));
        for words in [
            &["--root", "/srv"][..],
            &["--read-only"],
            &["--write-only"],
            &["--no-overwrite"],
            &["--umask", "027"],
            &["--allow-setid"],
            &["--no-symlinks"],
            &["--max-file-size", "1K"],
            &["--max-total-bytes", "1G"],
            &["--max-files", "3"],
            &["--max-depth", "2"],
            &["--fsync"],
            &["--deny", "*.php"],
        ] {
            assert!(any_restriction_flag(&flags(words)), "{words:?}");
        }
        let args = flags(&[
            "--max-file-size=100m",
            "--umask=0077",
            "--deny",
            "a",
            "--deny=b/",
        ]);
        assert_eq!(args.max_file_size, Some(100 << 20));
        assert_eq!(args.umask, Some(0o077));
        assert_eq!(args.deny, patterns(&["a", "b/"]));
    }

    #[test]
    fn bad_flag_values_are_refused_by_clap() {
        assert!(flag_error(&["--max-file-size", "1X"]).contains("K, M, G or T"));
        assert!(flag_error(&["--umask", "9"]).contains("octal"));
        assert!(flag_error(&["--max-depth", "0"]).contains("1 to 4096"));
        assert!(flag_error(&["--deny", "a/../b"]).contains("'..'"));
        assert!(flag_error(&["--read-only", "--write-only"]).contains("cannot be used with"));
    }

    // --- precedence ---

    const LAYERED: &str = r#"
        max-file-size = "1K"
        max-files = 10
        umask = "022"
        no-overwrite = true

        [group.staff]
        max-file-size = "2K"
        max-files = 20

        [group.drop]
        max-file-size = "3K"

        [user.alice]
        max-file-size = "4K"
        no-overwrite = false
    "#;

    #[test]
    fn precedence_defaults_file_group_user_flags() {
        let p = policy_from("", &[], &nobody());
        assert_eq!(p, Policy::default());

        let p = policy_from(LAYERED, &[], &nobody());
        assert_eq!(
            (p.max_file_size, p.max_files, p.umask, p.no_overwrite),
            (Some(1024), Some(10), Some(0o022), true)
        );

        let p = policy_from(LAYERED, &[], &identity("bob", &["staff"]));
        assert_eq!((p.max_file_size, p.max_files), (Some(2048), Some(20)));

        // Both groups apply, the later section in the file last.
        let p = policy_from(LAYERED, &[], &identity("bob", &["drop", "staff"]));
        assert_eq!((p.max_file_size, p.max_files), (Some(3072), Some(20)));

        let p = policy_from(LAYERED, &[], &identity("alice", &["staff", "drop"]));
        assert_eq!(
            (p.max_file_size, p.max_files, p.no_overwrite),
            (Some(4096), Some(20), false)
        );

        let p = policy_from(
            LAYERED,
            &["--max-file-size", "5K", "--umask", "077", "--no-overwrite"],
            &identity("alice", &["staff"]),
        );
        assert_eq!(
            (p.max_file_size, p.max_files, p.umask, p.no_overwrite),
            (Some(5120), Some(20), Some(0o077), true)
        );
        assert_eq!(p.config_error, None);
    }

    #[test]
    fn group_sections_apply_in_file_order_not_name_order() {
        let text = "[group.zz]\nmax-files = 1\n[group.aa]\nmax-files = 2\n";
        let p = policy_from(text, &[], &identity("u", &["aa", "zz"]));
        assert_eq!(p.max_files, Some(2));
        let text = "[group.aa]\nmax-files = 2\n[group.zz]\nmax-files = 1\n";
        let p = policy_from(text, &[], &identity("u", &["aa", "zz"]));
        assert_eq!(p.max_files, Some(1));
    }

    #[test]
    fn sections_of_other_accounts_do_not_apply() {
        let text = "[user.alice]\nread-only = true\n[group.staff]\nfsync = true\n";
        let p = policy_from(text, &[], &identity("bob", &["users"]));
        assert!(!p.read_only && !p.fsync);
    }

    #[test]
    fn a_higher_layer_chooses_the_direction() {
        let text = "read-only = true\n[user.drop]\nwrite-only = true\n";
        let p = policy_from(text, &[], &identity("drop", &[]));
        assert!(p.write_only && !p.read_only);
        let p = policy_from("write-only = true\n", &["--read-only"], &nobody());
        assert!(p.read_only && !p.write_only);
        assert_eq!(
            p.upload_refusal().as_deref(),
            Some("uploads are not allowed for this account")
        );
        assert_eq!(p.download_refusal(), None);
    }

    #[test]
    fn every_key_of_the_file() {
        let text = r#"
            root = "/srv/drop"
            read-only = true
            no-overwrite = true
            umask = "027"
            allow-setid = true
            no-symlinks = true
            allow-links = true
            max-file-size = "100M"
            max-total-bytes = 1048576
            max-files = 7
            max-depth = 3
            fsync = true
            deny = [".ssh/", "*.php"]
            log = "json:/var/log/scp-server.jsonl"
            checksum = "sha256"
        "#;
        let p = policy_from(text, &[], &nobody());
        let expected = Policy {
            root: Some(PathBuf::from("/srv/drop")),
            read_only: true,
            write_only: false,
            no_overwrite: true,
            umask: Some(0o027),
            allow_setid: true,
            no_symlinks: true,
            allow_links: true,
            max_file_size: Some(100 << 20),
            max_total_bytes: Some(1 << 20),
            max_files: Some(7),
            max_depth: 3,
            fsync: true,
            deny: patterns(&[".ssh/", "*.php"]),
            log: Some(LogTarget::Json(PathBuf::from("/var/log/scp-server.jsonl"))),
            checksum: ChecksumKind::Sha256,
            config_error: None,
        };
        assert_eq!(p, expected);
        let p = policy_from(
            "write-only = true\nmax-total-bytes = \"2g\"",
            &[],
            &nobody(),
        );
        assert!(p.write_only);
        assert_eq!(p.max_total_bytes, Some(2 << 30));
        assert_eq!(
            p.download_refusal().as_deref(),
            Some("downloads are not allowed for this account")
        );
    }

    #[test]
    fn every_flag() {
        let p = policy_from(
            "",
            &[
                "--root",
                "/srv/x",
                "--write-only",
                "--no-overwrite",
                "--umask",
                "0",
                "--allow-setid",
                "--no-symlinks",
                "--max-file-size",
                "1T",
                "--max-total-bytes",
                "12",
                "--max-files",
                "0",
                "--max-depth",
                "4096",
                "--fsync",
            ],
            &nobody(),
        );
        assert_eq!(p.root, Some(PathBuf::from("/srv/x")));
        assert!(p.write_only && p.no_overwrite && p.allow_setid && p.no_symlinks && p.fsync);
        assert_eq!(p.umask, Some(0));
        assert_eq!(
            (p.max_file_size, p.max_total_bytes, p.max_files, p.max_depth),
            (Some(1 << 40), Some(12), Some(0), 4096)
        );
    }

    #[test]
    fn audit_settings_from_flags_file_and_sections() {
        assert_eq!(policy_from("", &[], &nobody()).log, None);
        assert_eq!(policy_from("", &[], &nobody()).checksum, ChecksumKind::Off);

        let text = "log = \"json:/var/log/scp-server.jsonl\"\nchecksum = \"sha256\"\n\
                    [user.quiet]\nlog = \"none\"\nchecksum = \"none\"\n";
        let p = policy_from(text, &[], &nobody());
        assert_eq!(
            p.log,
            Some(LogTarget::Json(PathBuf::from("/var/log/scp-server.jsonl")))
        );
        assert_eq!(p.checksum, ChecksumKind::Sha256);
        let p = policy_from(text, &[], &identity("quiet", &[]));
        assert_eq!(
            (p.log, p.checksum),
            (Some(LogTarget::Off), ChecksumKind::Off)
        );

        // The flags win over the file.
        let p = policy_from(text, &["--log", "stderr"], &identity("quiet", &[]));
        assert_eq!(p.log, Some(LogTarget::Stderr));
        let p = policy_from(
            "",
            &["--log", "journald", "--checksum", "sha256"],
            &nobody(),
        );
        assert_eq!(
            (p.log, p.checksum),
            (Some(LogTarget::Journald), ChecksumKind::Sha256)
        );
    }

    #[test]
    fn audit_flags_alone_are_no_restriction() {
        for words in [
            &["--log", "journald"][..],
            &["--log", "json:/var/log/scp.jsonl"],
            &["--log", "stderr"],
            &["--log", "none"],
            &["--checksum", "sha256"],
            &["--log", "stderr", "--checksum", "none"],
        ] {
            assert!(!any_restriction_flag(&flags(words)), "{words:?}");
        }
        assert!(any_restriction_flag(&flags(&[
            "--log", "stderr", "--fsync"
        ])));
    }

    #[test]
    fn invalid_audit_settings_are_refused() {
        for words in [
            &["--log", "syslog"][..],
            &["--log", "json:relative.jsonl"],
            &["--log", "json:"],
            &["--checksum", "md5"],
        ] {
            let error = flag_error(words);
            assert!(error.contains("invalid"), "{words:?}: {error}");
        }
        for (text, expected) in [
            (
                "log = \"syslog\"\n",
                ", line 1: invalid log target 'syslog': expected journald, json:FILE (FILE an absolute path), stderr or none",
            ),
            (
                "log = true\n",
                ", line 1: 'log' must be a string such as \"journald\" or \"json:/var/log/scp-server.jsonl\", not boolean",
            ),
            (
                "\nchecksum = \"md5\"\n",
                ", line 2: invalid checksum 'md5': expected sha256 or none",
            ),
        ] {
            assert_eq!(config_error(text), expected, "{text:?}");
        }
    }

    #[test]
    fn deny_list_defaults_replacement_and_additions() {
        let defaults = patterns(DEFAULT_DENY);
        assert_eq!(policy_from("", &[], &nobody()).deny, defaults);

        let mut extended = defaults.clone();
        extended.extend(patterns(&["*.php"]));
        assert_eq!(
            policy_from("", &["--deny", "*.php"], &nobody()).deny,
            extended
        );

        assert!(policy_from("deny = []", &[], &nobody()).deny.is_empty());
        assert_eq!(
            policy_from("deny = []", &["--deny", "x"], &nobody()).deny,
            patterns(&["x"])
        );

        let text = "deny = [\"a\"]\n[user.u]\ndeny = [\"b\"]\n";
        assert_eq!(
            policy_from(text, &[], &identity("u", &[])).deny,
            patterns(&["b"])
        );
        assert_eq!(policy_from(text, &[], &nobody()).deny, patterns(&["a"]));
        assert_eq!(
            policy_from("", &[], &nobody()).denied(b".ssh/authorized_keys"),
            Some(".ssh/")
        );
    }

    // --- the default path and fail-closed cases ---

    #[test]
    fn missing_default_file_means_defaults() {
        let dir = TempDir::new("policy-test");
        let absent = dir.0.join("scp-server.conf");
        let p = Policy::load_with_default_path(&PolicyArgs::default(), &nobody(), &absent);
        assert_eq!(p, Policy::default());
        let args = flags(&["--fsync"]);
        let p = Policy::load_with_default_path(&args, &nobody(), &absent);
        assert!(p.fsync);
        assert_eq!(p.config_error, None);
    }

    #[test]
    fn present_default_file_is_read_and_fails_closed() {
        let dir = TempDir::new("policy-test");
        let path = dir.write("scp-server.conf", "max-files = 2\n");
        let p = Policy::load_with_default_path(&PolicyArgs::default(), &nobody(), &path);
        assert_eq!(p.max_files, Some(2));

        let path = dir.write("scp-server.conf", "max-files = 2\nmax-fies = 3\n");
        let p = Policy::load_with_default_path(&flags(&["--fsync"]), &nobody(), &path);
        let expected = format!(
            "configuration file {}, line 2: unknown key 'max-fies'",
            path.display()
        );
        assert_eq!(p.config_error.as_deref(), Some(expected.as_str()));
        assert_eq!(p.upload_refusal(), Some(expected.clone()));
        assert_eq!(p.download_refusal(), Some(expected));
        // The flags still apply; the file's keys do not.
        assert!(p.fsync);
        assert_eq!(p.max_files, None);

        // A directory where the file should be cannot be read.
        let path = dir.0.join("a-directory");
        std::fs::create_dir(&path).unwrap();
        let p = Policy::load_with_default_path(&PolicyArgs::default(), &nobody(), &path);
        assert_eq!(
            p.config_error,
            Some(format!(
                "configuration file {}: Is a directory",
                path.display()
            ))
        );
    }

    #[test]
    fn missing_named_file_fails_closed() {
        let dir = TempDir::new("policy-test");
        let path = dir.0.join("absent.conf");
        let args = PolicyArgs {
            config: Some(path.clone()),
            ..PolicyArgs::default()
        };
        let p = Policy::load(&args, &nobody());
        assert_eq!(
            p.config_error,
            Some(format!(
                "configuration file {}: No such file or directory",
                path.display()
            ))
        );
    }

    #[test]
    fn fail_closed_cases_name_the_line() {
        for (text, expected) in [
            (
                "fsync = true\nmax-fies = 1\n",
                ", line 2: unknown key 'max-fies'",
            ),
            (
                "\n[user.bob]\nfsync = true\nreadonly = true\n",
                ", line 4: unknown key 'readonly' in [user.bob]",
            ),
            (
                "[group.staff]\n\n\nconfig = '/x'\n",
                ", line 4: unknown key 'config' in [group.staff]",
            ),
            (
                "fsync = true\n\n[users.bob]\nfsync = true\n",
                ", line 3: unknown key 'users' (sections are [user.NAME] and [group.NAME])",
            ),
            (
                "[user.bob.extra]\nfsync = true\n",
                ", line 1: unknown key 'extra' in [user.bob]",
            ),
            (
                "user = 3\n",
                ", line 1: 'user' must hold sections written as [user.NAME]",
            ),
            (
                "[user]\nread-only = true\n",
                ", line 2: [user.read-only] must be a section ([user.NAME] followed by keys)",
            ),
            (
                "\n\nread-only = \"yes\"\n",
                ", line 3: 'read-only' must be true or false, not string",
            ),
            (
                "umask = 27\n",
                ", line 1: 'umask' must be a string of octal digits such as \"027\", not integer",
            ),
            (
                "umask = \"0800\"\n",
                ", line 1: invalid umask '0800': expected octal digits from 0 to 0777",
            ),
            (
                "umask = \"1000\"\n",
                ", line 1: invalid umask '1000': expected octal digits from 0 to 0777",
            ),
            (
                "\nmax-file-size = \"1X\"\n",
                ", line 2: 'max-file-size': invalid size '1X': expected digits with an optional K, M, G or T suffix (powers of 1024)",
            ),
            (
                "max-total-bytes = -1\n",
                ", line 1: 'max-total-bytes' must be from 0 to 18446744073709551615, not -1",
            ),
            (
                "max-file-size = 1.5\n",
                ", line 1: 'max-file-size' must be a size such as \"100M\" or a number of bytes, not float",
            ),
            (
                "max-files = \"3\"\n",
                ", line 1: 'max-files' must be an integer, not string",
            ),
            (
                "max-depth = 0\n",
                ", line 1: max-depth must be from 1 to 4096, not 0",
            ),
            (
                "max-depth = 4097\n",
                ", line 1: max-depth must be from 1 to 4096, not 4097",
            ),
            (
                "root = \"srv\"\n",
                ", line 1: 'root' must be an absolute path, not 'srv'",
            ),
            (
                "root = true\n",
                ", line 1: 'root' must be a string (an absolute path), not boolean",
            ),
            (
                "deny = \".ssh/\"\n",
                ", line 1: 'deny' must be a list of strings such as [\".ssh/\", \"*.php\"], not string",
            ),
            (
                "deny = [\n  \"ok\",\n  \"a/../b\",\n]\n",
                ", line 3: invalid deny pattern 'a/../b': '.' and '..' cannot be matched",
            ),
            (
                "read-only = true\nwrite-only = true\n",
                ", line 2: read-only and write-only cannot both be true",
            ),
        ] {
            assert_eq!(config_error(text), expected, "{text:?}");
        }
    }

    #[test]
    fn malformed_toml_names_the_line() {
        for (text, line) in [
            ("fsync = true\nmax-files = \n", 2),
            ("fsync = true\n\n[user.bob\n", 3),
            ("fsync = yes\n", 1),
            ("fsync = true\nfsync = false\n", 2),
            ("a = \"unterminated\n", 1),
        ] {
            let error = config_error(text);
            assert!(
                error.starts_with(&format!(", line {line}: ")),
                "{text:?}: {error}"
            );
        }
        let dir = TempDir::new("policy-test");
        let path = dir.0.join("latin1.conf");
        std::fs::write(&path, b"fsync = true\n# caf\xe9\n").unwrap();
        let args = PolicyArgs {
            config: Some(path.clone()),
            ..PolicyArgs::default()
        };
        assert_eq!(
            Policy::load(&args, &nobody()).config_error,
            Some(format!(
                "configuration file {}, line 2: not valid UTF-8 (TOML is UTF-8)",
                path.display()
            ))
        );
    }

    #[test]
    fn current_identity_names_the_real_user() {
        let me = Identity::current();
        let uid = nix::unistd::getuid();
        let expected = nix::unistd::User::from_uid(uid).unwrap().map(|u| u.name);
        assert_eq!(me.user, expected);
        let primary = nix::unistd::Group::from_gid(nix::unistd::getgid()).unwrap();
        if let Some(group) = primary {
            assert_eq!(me.groups.first(), Some(&group.name));
        }
    }

    // --- deny patterns ---

    #[test]
    fn deny_matcher_table() {
        for (pattern, path, expected) in [
            // A bare name: any component, anywhere, and below it.
            (".profile", &b".profile"[..], true),
            (".profile", b"a/b/.profile", true),
            (".profile", b".profile/x", true),
            (".profile", b"x.profile", false),
            (".profile", b".profile.bak", false),
            (".profile", b"a/.profilex/y", false),
            // A directory pattern: the directory and everything below.
            (".ssh/", b".ssh", true),
            (".ssh/", b".ssh/authorized_keys", true),
            (".ssh/", b"x/.ssh/rc", true),
            (".ssh/", b".sshx/rc", false),
            (".ssh/", b"ssh", false),
            // Anchored at the root.
            ("www/*.php", b"www/index.php", true),
            ("www/*.php", b"www/index.php/extra", true),
            ("www/*.php", b"x/www/index.php", false),
            ("www/*.php", b"www/sub/index.php", false),
            ("www/*.php", b"www", false),
            ("/secret", b"secret", true),
            ("/secret", b"secret/a", true),
            ("/secret", b"a/secret", false),
            ("/top/", b"top/x", true),
            // Globs within one component.
            ("*.php", b"a/b/shell.php", true),
            ("*.php", b".php", true),
            ("*.php", b"a.php.txt", false),
            ("*", b"anything", true),
            ("a*b*c", b"aXbYbZc", true),
            ("a*b*c", b"aXbYbZ", false),
            ("?.txt", b"a.txt", true),
            ("?.txt", b"ab.txt", false),
            ("?.txt", "é.txt".as_bytes(), true),
            ("?.txt", b"\xff.txt", true),
            ("[abc].log", b"b.log", true),
            ("[abc].log", b"d.log", false),
            ("[!abc].log", b"d.log", true),
            ("[^abc].log", b"a.log", false),
            ("[a-c]x", b"bx", true),
            ("[a-c]x", b"dx", false),
            ("[]]", b"]", true),
            ("[a-]", b"-", true),
            ("\\*", b"*", true),
            ("\\*", b"x", false),
            ("**.sh", b"run.sh", true),
            // Normalised separators.
            (".bashrc", b"./a//.bashrc", true),
            ("www/x", b"./www//x", true),
            // Exact bytes: case matters.
            (".Profile", b".profile", false),
        ] {
            let compiled = DenyPattern::parse(pattern).unwrap();
            assert_eq!(
                compiled.matches(path),
                expected,
                "{pattern} vs {}",
                String::from_utf8_lossy(path)
            );
        }
    }

    #[test]
    fn invalid_deny_patterns() {
        for text in [
            "", "/", "//", "a//b", "a/./b", "../x", "..", "[abc", "[", "x\\", "[z-a]",
        ] {
            assert!(DenyPattern::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn default_deny_list_protects_the_home() {
        let p = Policy::default();
        for path in [
            &b".ssh"[..],
            b".ssh/authorized_keys",
            b"sub/.ssh/authorized_keys",
            b".bashrc",
            b".profile",
            b".k5login",
            b".forward",
        ] {
            assert!(
                p.denied(path).is_some(),
                "{}",
                String::from_utf8_lossy(path)
            );
        }
        for path in [&b"incoming/report.pdf"[..], b"ssh/x", b"bashrc"] {
            assert_eq!(p.denied(path), None, "{}", String::from_utf8_lossy(path));
        }
        assert_eq!(p.denied(b"a/.zshrc"), Some(".zshrc"));
    }

    #[test]
    fn star_backtracking_stays_linear() {
        let glob = DenyPattern::parse("*a*a*a*a*a*a*a*a*b").unwrap();
        let name = vec![b'a'; 4000];
        assert!(!glob.matches(&name));
    }

    #[test]
    fn config_files_others_could_rewrite_fail_closed() {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("scp-server-policy-owner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("open.conf");
        std::fs::write(&path, "read-only = true\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let args = PolicyArgs {
            config: Some(path.clone()),
            ..PolicyArgs::default()
        };
        let policy = Policy::load(&args, &Identity::default());
        let error = policy
            .config_error
            .expect("a world-writable config must fail closed");
        assert!(
            error.contains("must be owned by root and writable by nobody else"),
            "{error}"
        );
        if nix::unistd::geteuid().is_root() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(Policy::load(&args, &Identity::default()).config_error, None);
            nix::unistd::chown(&path, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            assert!(
                Policy::load(&args, &Identity::default())
                    .config_error
                    .is_some()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
