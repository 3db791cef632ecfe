//! One SFTP session: requests in, filesystem operations through `files/`
//! and the confinement, replies out. Status codes are those OpenSSH 9.2's
//! sftp-server gives in the same situation (its errno mapping, its answers
//! for bad handles and directory handles); policy refusals are
//! PERMISSION_DENIED with the sentence the SCP client would see.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::rc::{Rc, Weak};
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, ftruncate, unlinkat};

use super::exit;
use super::handles::{DirHandle, FileData, FileHandle, Handle, Handles, PendingKey, UploadSlot};
use super::names::{NameCache, attrs_of};
use super::paths::{self, dir_identity, parent_and_name};
use crate::audit;
use crate::confine::{
    DirFd, ResolveError, Scope, canonical_path, chmod_object, chown_object, normalize_rel,
    rename_noreplace_between, set_times_object,
};
use crate::error::{DisplayPath, Error, Refusal, strerror};
use crate::files::download::{is_dir, is_regular, open_beneath_checked};
use crate::files::pending::PendingUpload;
use crate::files::upload::{self, Destination, NewFileMode, Rules, Target};
use crate::limits::{Limits, Quota};
use crate::protocol::sftp::codes::{self, STATVFS_NOSUID, STATVFS_RDONLY, ext, open_flags};
use crate::protocol::sftp::{
    Attrs, Frame, NameEntry, PacketReader, Replies, Request, StatusCode, WireError, parse_packet,
    parse_write_header,
};
use crate::transfer::{self, BufferedInput, DataPath, SessionStream};

/// The policy's deny patterns as a question (see sink::DenyCheck).
pub type DenyCheck = Box<dyn Fn(&[u8]) -> Option<String>>;

/// What the session may do: DESIGN.md's SFTP policy, resolved by main.rs.
pub struct SftpOptions {
    pub read_only: bool,
    pub write_only: bool,
    pub no_overwrite: bool,
    pub no_symlinks: bool,
    /// SYMLINK and hardlink requests are served (always when unrestricted).
    pub allow_links: bool,
    /// Restricted mode (a policy flag, a command string): links need
    /// `allow_links`.
    pub restricted: bool,
    /// The policy's explicit umask, applied to OPEN, MKDIR and SETSTAT
    /// permissions (DESIGN.md "Modes").
    pub explicit_umask: Option<u32>,
    /// The umask the kernel applies to what this process creates.
    pub creation_umask: u32,
    /// 0o777, or 0o7777 with `--allow-setid`.
    pub mode_mask: u32,
    pub fsync: bool,
    pub limits: Limits,
    /// `max-depth`: directory levels a confined session may create below
    /// its root (the root is level 0), as SCP counts below its target.
    pub max_depth: usize,
    pub denied: DenyCheck,
    /// Requests refused by name (sftp-server's `-P`) and the only ones
    /// allowed (`-p`), in sftp-server's request names.
    pub deny_requests: Vec<String>,
    pub allow_requests: Option<Vec<String>>,
    /// The answer to home-directory and `~` (the root when confined).
    pub home: Vec<u8>,
    /// Set when nothing may be served (a broken configuration file): every
    /// request after INIT is refused with this sentence.
    pub refuse_all: Option<String>,
    /// READ data by sendfile(2) where possible (off: `--copy-data`, for
    /// the benchmark).
    pub zero_copy: bool,
}

/// Runs a session until the client closes it or sends something
/// malformed; returns the exit status (OpenSSH's: 0, 11 for an oversized
/// packet, 255 otherwise).
pub fn run<R: Read + SessionStream, W: Write + SessionStream>(
    opts: SftpOptions,
    scope: Scope,
    input: R,
    output: W,
) -> i32 {
    if W::IS_SESSION_STREAM {
        transfer::prepare_session_pipes();
    }
    let mut reader = PacketReader::new(input);
    // Large WRITEs are spliced from stdin into their file; that needs the
    // real stdin and the zero-copy data path.
    let stream_writes = R::IS_SESSION_STREAM && opts.zero_copy;
    let mut data = DataPath::new(None);
    if !opts.zero_copy {
        data = data.copying_only();
    }
    let mut server = Server {
        data,
        out: output,
        peer_gone: false,
        handles: Handles::new(max_handles()),
        quota: Quota::new(opts.limits),
        opts,
        scope,
        replies: Replies::default(),
        pending: HashMap::new(),
        names: NameCache::default(),
        initialized: false,
    };
    let status = loop {
        let handled = match reader.next_frame(stream_writes) {
            Ok(Some(Frame::Packet(packet))) => server.handle_packet(packet),
            Ok(Some(Frame::WriteHeader(header))) => server.streamed_write(&header, &mut reader),
            Ok(None) => break exit::CLEAN,
            Err(e) => break server.fatal(&e),
        };
        if let Err(e) = handled {
            break server.fatal(&e);
        }
        // Replies wait while more requests are already here, so that a
        // pipelined batch is answered with one write.
        if !server.replies.is_empty()
            && (!reader.has_buffered_packet() || server.replies.len() >= FLUSH_AT)
        {
            server.flush();
        }
        if server.peer_gone {
            break exit::CLEAN;
        }
    };
    server.flush();
    server.end_session();
    status
}

/// Replies are written once this much is waiting, even mid-batch.
const FLUSH_AT: usize = 256 * 1024;

fn write_replies<W: Write>(output: &mut W, replies: &mut Replies) -> std::io::Result<()> {
    if replies.is_empty() {
        return Ok(());
    }
    let result = output
        .write_all(replies.pending())
        .and_then(|()| output.flush());
    replies.clear();
    result
}

/// Open handles allowed: as OpenSSH, what the open-file limit leaves after
/// a few for the process itself, and never more than 10,000 (each one may
/// hold an upload's descriptors and buffers).
fn max_handles() -> usize {
    let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    // An upload over an existing file holds two descriptors.
    ((soft.saturating_sub(16)) / 2).clamp(4, 10_000) as usize
}

struct Server<W> {
    /// Moves large WRITEs' data from stdin into files (splice).
    data: DataPath,
    /// Where replies go (stdout, for a real session).
    out: W,
    /// A write to the client failed: the session is over.
    peer_gone: bool,
    opts: SftpOptions,
    scope: Scope,
    handles: Handles,
    quota: Quota,
    replies: Replies,
    /// Uploads not yet published, by the name they will take.
    pending: HashMap<PendingKey, Weak<RefCell<UploadSlot>>>,
    names: NameCache,
    initialized: bool,
}

/// Why a request failed, before it becomes a STATUS reply.
enum Fail {
    /// A system error: OpenSSH's code and message for it.
    Os(Errno),
    /// A code with OpenSSH's message for it.
    Code(StatusCode),
    /// A refusal or error with the sentence the client is sent.
    Said(StatusCode, String),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Os(e)
    }
}

impl Fail {
    fn resolve(path: &[u8], e: ResolveError) -> Fail {
        match e {
            ResolveError::Os(errno) => Fail::Os(errno),
            other => Fail::Said(
                StatusCode::PermissionDenied,
                other.into_error(path).to_string(),
            ),
        }
    }

    fn refused(error: &Error) -> Fail {
        match error {
            Error::Os { errno, .. } => Fail::Os(*errno),
            e => Fail::Said(StatusCode::PermissionDenied, e.to_string()),
        }
    }

    /// The failure in words, for the audit trail.
    fn sentence(&self) -> String {
        match self {
            Fail::Os(errno) => strerror(*errno).to_owned(),
            Fail::Code(code) => code.message().to_owned(),
            Fail::Said(_, sentence) => sentence.clone(),
        }
    }
}

/// OpenSSH's errno_to_portable.
fn status_of(errno: Errno) -> StatusCode {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR | Errno::EBADF | Errno::ELOOP => StatusCode::NoSuchFile,
        Errno::EPERM | Errno::EACCES | Errno::EFAULT => StatusCode::PermissionDenied,
        Errno::ENAMETOOLONG | Errno::EINVAL => StatusCode::BadMessage,
        Errno::ENOSYS => StatusCode::OpUnsupported,
        _ => StatusCode::Failure,
    }
}

type Reply = Result<(), Fail>;

/// Bytes copied per step of copy-data.
const COPY_CHUNK: usize = 64 * 1024;

/// READs of at least this many bytes of a regular file are sent by
/// sendfile(2); smaller ones are copied into the batch of replies, where
/// one write carries many.
const ZERO_COPY_READ: usize = 64 * 1024;

/// Entries per READDIR reply (as OpenSSH).
const NAMES_PER_READDIR: usize = 100;

impl<W: Write + SessionStream> Server<W> {
    /// Writes the replies waiting (in order, in one write).
    fn flush(&mut self) {
        if write_replies(&mut self.out, &mut self.replies).is_err() {
            self.peer_gone = true;
        }
    }

    fn fatal(&self, e: &WireError) -> i32 {
        match e {
            // The client went away mid-packet: a lost connection, which
            // OpenSSH's sftp-server ends with status 0 as any end of input.
            WireError::TruncatedPacket { .. } | WireError::ClosedInsideWrite => exit::CLEAN,
            _ => {
                // One line where sshd may show it (a subsystem's stderr
                // usually goes nowhere); stdout stays protocol only.
                eprintln!("scp-server: sftp: {e}; ending the session");
                match e {
                    WireError::PacketTooLong { .. } => exit::BAD_LENGTH,
                    _ => exit::FATAL,
                }
            }
        }
    }

    fn handle_packet(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let packet = parse_packet(bytes)?;
        let id = packet.id;
        match packet.request {
            Request::Init { version } => {
                self.init(version);
                return Ok(());
            }
            _ if !self.initialized => {
                return Err(WireError::NotInitialized {
                    packet_type: bytes[0],
                });
            }
            // OpenSSH answers an unknown packet type with nothing at all.
            Request::UnknownType { .. } => return Ok(()),
            Request::UnknownExtension { .. } => {
                self.status(id, StatusCode::OpUnsupported);
                return Ok(());
            }
            _ if self.opts.refuse_all.is_some() => {
                let sentence = self.opts.refuse_all.clone().unwrap_or_default();
                self.replies
                    .status(id, StatusCode::PermissionDenied, &sentence);
                return Ok(());
            }
            // A read-only account says why, for every request that would
            // change something (OPEN for writing says it from open()).
            ref request
                if self.opts.read_only && WRITING_REQUESTS.contains(&request.list_name()) =>
            {
                if let Err(fail) = self.refuse_writes() {
                    self.fail(id, fail);
                }
                return Ok(());
            }
            ref request if !self.request_permitted(request) => {
                self.status(id, StatusCode::PermissionDenied);
                return Ok(());
            }
            _ => {}
        }
        let result = self.serve(id, packet.request);
        if let Err(fail) = result {
            self.fail(id, fail);
        }
        Ok(())
    }

    fn init(&mut self, version: u32) {
        self.initialized = true;
        self.replies.set_client_version(version);
        let offered: Vec<(&str, &str)> = EXTENSIONS
            .iter()
            .filter(|(name, _)| self.extension_offered(name))
            .copied()
            .collect();
        self.replies.version(&offered);
    }

    /// Extensions are advertised only where they can succeed: not the
    /// writing ones for a read-only account, not hardlink where links are
    /// not allowed, not what the request lists refuse.
    fn extension_offered(&self, name: &str) -> bool {
        let Some(list_name) = list_name_of_extension(name) else {
            return false;
        };
        if self.opts.read_only && WRITING_REQUESTS.contains(&list_name) {
            return false;
        }
        if name == ext::HARDLINK && !self.links_allowed() {
            return false;
        }
        self.listed_permitted(list_name)
    }

    fn links_allowed(&self) -> bool {
        !self.opts.restricted || self.opts.allow_links
    }

    /// sftp-server's `-R`, `-P` and `-p`: refused before anything is done.
    fn request_permitted(&self, request: &Request<'_>) -> bool {
        let name = request.list_name();
        if self.opts.read_only && WRITING_REQUESTS.contains(&name) {
            return false;
        }
        self.listed_permitted(name)
    }

    fn listed_permitted(&self, name: &str) -> bool {
        if self.opts.deny_requests.iter().any(|d| d == name) {
            return false;
        }
        match &self.opts.allow_requests {
            Some(allowed) => allowed.iter().any(|a| a == name),
            None => true,
        }
    }

    fn serve(&mut self, id: u32, request: Request<'_>) -> Reply {
        match request {
            Request::Open {
                path,
                pflags,
                attrs,
            } => self.open(id, path, pflags, &attrs),
            Request::Close { handle } => self.close(id, handle),
            Request::Read {
                handle,
                offset,
                len,
            } => self.read(id, handle, offset, len),
            Request::Write {
                handle,
                offset,
                data,
            } => self.write(id, handle, offset, data),
            Request::Stat { path } => self.stat(id, path, true),
            Request::Lstat { path } => self.stat(id, path, false),
            Request::Fstat { handle } => self.fstat(id, handle),
            Request::Setstat { path, attrs } => self.setstat(id, path, &attrs, true),
            Request::Lsetstat { path, attrs } => self.setstat(id, path, &attrs, false),
            Request::Fsetstat { handle, attrs } => self.fsetstat(id, handle, &attrs),
            Request::Opendir { path } => self.opendir(id, path),
            Request::Readdir { handle } => self.readdir(id, handle),
            Request::Remove { path } => self.remove(id, path),
            Request::Mkdir { path, attrs } => self.mkdir(id, path, &attrs),
            Request::Rmdir { path } => self.rmdir(id, path),
            Request::Realpath { path } => self.realpath(id, path),
            Request::Rename { from, to } => self.rename(id, from, to, false),
            Request::PosixRename { from, to } => self.rename(id, from, to, true),
            Request::Readlink { path } => self.readlink(id, path),
            Request::Symlink { target, link } => self.symlink(id, target, link),
            Request::Hardlink { from, to } => self.hardlink(id, from, to),
            Request::Statvfs { path } => self.statvfs(id, path),
            Request::Fstatvfs { handle } => self.fstatvfs(id, handle),
            Request::Fsync { handle } => self.fsync(id, handle),
            Request::Limits => {
                self.limits(id);
                Ok(())
            }
            Request::ExpandPath { path } => self.expand_path(id, path),
            Request::CopyData {
                from,
                from_offset,
                len,
                to,
                to_offset,
            } => self.copy_data(id, from, from_offset, len, to, to_offset),
            Request::HomeDirectory { user } => self.home_directory(id, user),
            Request::UsersGroupsById { uids, gids } => {
                self.users_groups(id, &uids, &gids);
                Ok(())
            }
            Request::Init { .. }
            | Request::UnknownExtension { .. }
            | Request::UnknownType { .. } => Ok(()),
        }
    }

    // ------------------------------------------------------------------
    // Replies

    fn status(&mut self, id: u32, code: StatusCode) {
        self.replies.status(id, code, code.message());
    }

    fn ok(&mut self, id: u32) -> Reply {
        self.status(id, StatusCode::Ok);
        Ok(())
    }

    fn fail(&mut self, id: u32, fail: Fail) {
        match fail {
            Fail::Os(errno) => self.status(id, status_of(errno)),
            Fail::Code(code) => self.status(id, code),
            Fail::Said(code, sentence) => self.replies.status(id, code, &sentence),
        }
    }

    fn one_name(&mut self, id: u32, name: &[u8]) {
        self.replies.names(
            id,
            &[NameEntry {
                filename: name,
                longname: name,
                attrs: Attrs::default(),
            }],
        );
    }

    // ------------------------------------------------------------------
    // Policy

    fn refuse_writes(&self) -> Result<(), Fail> {
        if self.opts.read_only {
            return Err(Fail::Said(
                StatusCode::PermissionDenied,
                "this account is read-only: nothing may be changed".to_owned(),
            ));
        }
        Ok(())
    }

    fn refuse_reads(&self) -> Result<(), Fail> {
        if self.opts.write_only {
            return Err(Fail::Said(
                StatusCode::PermissionDenied,
                "downloads and listings are not allowed for this account".to_owned(),
            ));
        }
        Ok(())
    }

    /// Deny patterns, for every path a request would change (confined
    /// sessions only: the closure answers nothing otherwise).
    fn check_denied(&self, path: &[u8]) -> Result<(), Fail> {
        let rel = normalize_rel(path);
        match (self.opts.denied)(&rel) {
            Some(pattern) => Err(Fail::Said(
                StatusCode::PermissionDenied,
                Error::Refused {
                    path: DisplayPath(path.to_vec()),
                    why: Refusal::Denied { pattern },
                }
                .to_string(),
            )),
            None => Ok(()),
        }
    }

    fn refuse_overwrite(&self, path: &[u8]) -> Fail {
        Fail::Said(
            StatusCode::PermissionDenied,
            Error::Refused {
                path: DisplayPath(path.to_vec()),
                why: Refusal::WouldOverwrite,
            }
            .to_string(),
        )
    }

    fn refuse_links(&self, path: &[u8]) -> Result<(), Fail> {
        if self.opts.no_symlinks || !self.links_allowed() {
            return Err(Fail::Said(
                StatusCode::PermissionDenied,
                format!(
                    "{}: this account may not create links",
                    DisplayPath(path.to_vec())
                ),
            ));
        }
        Ok(())
    }

    /// Permission bits a client may set: setuid, setgid and sticky only
    /// with `--allow-setid`; the explicit umask removes its bits.
    fn allowed_mode(&self, permissions: u32) -> u32 {
        permissions & 0o7777 & self.opts.mode_mask & !self.opts.explicit_umask.unwrap_or(0)
    }

    // ------------------------------------------------------------------
    // Looking things up

    fn resolve(&self, path: &[u8], flags: OFlag, follow: bool) -> Result<OwnedFd, Fail> {
        paths::open(&self.scope, path, flags, follow).map_err(|e| Fail::resolve(path, e))
    }

    fn parent(&self, path: &[u8]) -> Result<(OwnedFd, Vec<u8>), Fail> {
        parent_and_name(&self.scope, path).map_err(|e| Fail::resolve(path, e))
    }

    /// The pending upload that will take `path`'s name, if any.
    fn pending_at(&self, path: &[u8]) -> Option<Rc<RefCell<UploadSlot>>> {
        if self.pending.is_empty() {
            return None;
        }
        let (dir, name) = parent_and_name(&self.scope, path).ok()?;
        let key = PendingKey {
            dir: dir_identity(&dir).ok()?,
            name,
        };
        // A slot whose upload is gone (removed while open) is no file.
        self.pending
            .get(&key)?
            .upgrade()
            .filter(|slot| slot.borrow().upload.is_some())
    }

    // ------------------------------------------------------------------
    // Attributes

    fn stat(&mut self, id: u32, path: &[u8], follow: bool) -> Reply {
        if let Some(slot) = self.pending_at(path) {
            let st = pending_stat(&slot)?;
            self.replies.attrs(id, &attrs_of(&st));
            return Ok(());
        }
        let fd = self.resolve(path, OFlag::O_PATH, follow)?;
        let st = fstat(&fd)?;
        self.replies.attrs(id, &attrs_of(&st));
        Ok(())
    }

    fn fstat(&mut self, id: u32, handle: &[u8]) -> Reply {
        let Some(file) = self.handles.file_mut(handle) else {
            return Err(Fail::Code(StatusCode::Failure));
        };
        let st = match &file.data {
            FileData::Plain(fd) => fstat(fd)?,
            FileData::Upload(slot) => pending_stat(slot)?,
        };
        self.replies.attrs(id, &attrs_of(&st));
        Ok(())
    }

    /// SETSTAT (following a final symlink) and lsetstat (not following).
    /// Each attribute is tried; the reply is the last failure, as OpenSSH's.
    fn setstat(&mut self, id: u32, path: &[u8], attrs: &Attrs, follow: bool) -> Reply {
        self.refuse_writes()?;
        self.check_denied(path)?;
        if !follow && attrs.size.is_some() {
            return Err(Fail::Code(StatusCode::BadMessage));
        }
        if let Some(slot) = self.pending_at(path) {
            let result = self.set_pending_attrs(&slot, attrs);
            audit::sftp_operation("setstat", path, None, result_text(&result));
            return result.and_then(|()| self.ok(id));
        }
        let fd = self.resolve(path, OFlag::O_PATH, follow)?;
        let mut last: Result<(), Fail> = Ok(());
        if let Some(size) = attrs.size
            && let Err(f) = self.truncate_path(path, &fd, size)
        {
            last = Err(f);
        }
        if let Some(permissions) = attrs.permissions
            && let Err(e) = self.chmod_path(path, &fd, self.allowed_mode(permissions))
        {
            last = Err(e);
        }
        if let Some((atime, mtime)) = attrs.times
            && let Err(e) = set_times_object(fd.as_fd(), i64::from(atime), i64::from(mtime))
        {
            last = Err(e.into());
        }
        if let Some((uid, gid)) = attrs.owner
            && let Err(e) = chown_object(fd.as_fd(), uid, gid)
        {
            last = Err(e.into());
        }
        audit::sftp_operation("setstat", path, None, result_text(&last));
        last.and_then(|()| self.ok(id))
    }

    /// SETSTAT of a size: the file itself is truncated (not atomic, as in
    /// OpenSSH) — never an existing file's under `no-overwrite`.
    fn truncate_path(&self, path: &[u8], object: &OwnedFd, size: u64) -> Result<(), Fail> {
        if self.opts.no_overwrite {
            return Err(self.refuse_overwrite(path));
        }
        let expected = fstat(object)?;
        let fd = self.resolve(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK, true)?;
        let st = fstat(&fd)?;
        if (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino) {
            return Err(Fail::Os(Errno::EAGAIN));
        }
        ftruncate(&fd, i64::try_from(size).map_err(|_| Errno::EINVAL)?)?;
        Ok(())
    }

    /// chmod of the object resolution found (fchmodat2 on its `O_PATH`
    /// descriptor; before Linux 6.6, a descriptor reopened for reading).
    fn chmod_path(&self, path: &[u8], object: &OwnedFd, mode: u32) -> Result<(), Fail> {
        match chmod_object(object.as_fd(), mode) {
            Err(Errno::ENOSYS) => {
                let fd = self.resolve(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK, true)?;
                let (a, b) = (fstat(&fd)?, fstat(object)?);
                if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
                    return Err(Fail::Os(Errno::EAGAIN));
                }
                Ok(fchmod(&fd, Mode::from_bits_truncate(mode))?)
            }
            other => Ok(other?),
        }
    }

    fn set_pending_attrs(&self, slot: &Rc<RefCell<UploadSlot>>, attrs: &Attrs) -> Result<(), Fail> {
        let mut slot = slot.borrow_mut();
        let Some(upload) = slot.upload.as_mut() else {
            return Err(Fail::Os(Errno::ENOENT));
        };
        let mut last = Ok(());
        if let Some(size) = attrs.size
            && let Err(e) = self.set_upload_len(upload, size)
        {
            last = Err(e);
        }
        if let Some(permissions) = attrs.permissions
            && let Err(e) = upload.set_mode(self.allowed_mode(permissions))
        {
            last = Err(e.into());
        }
        if let Some((atime, mtime)) = attrs.times
            && let Err(e) = upload.set_times(atime, mtime)
        {
            last = Err(e.into());
        }
        if let Some((uid, gid)) = attrs.owner
            && let Err(e) = upload.set_owner(uid, gid)
        {
            last = Err(e.into());
        }
        last
    }

    fn set_upload_len(&self, upload: &mut PendingUpload, size: u64) -> Result<(), Fail> {
        if let Some(max) = self.opts.limits.max_file_size
            && size > max
        {
            return Err(Fail::Said(
                StatusCode::PermissionDenied,
                Refusal::FileTooLarge { size, max }.to_string(),
            ));
        }
        Ok(upload.set_len(size)?)
    }

    fn fsetstat(&mut self, id: u32, handle: &[u8], attrs: &Attrs) -> Reply {
        let (mask, umask) = (self.opts.mode_mask, self.opts.explicit_umask.unwrap_or(0));
        let allowed = |p: u32| p & 0o7777 & mask & !umask;
        let Some(file) = self.handles.file_mut(handle) else {
            return Err(Fail::Code(StatusCode::Failure));
        };
        let slot = match &file.data {
            FileData::Upload(slot) => Rc::clone(slot),
            FileData::Plain(fd) => {
                let mut last: Result<(), Fail> = Ok(());
                if let Some(size) = attrs.size
                    && let Err(e) = ftruncate(fd, size as i64)
                {
                    last = Err(e.into());
                }
                if let Some(permissions) = attrs.permissions
                    && let Err(e) = fchmod(fd, Mode::from_bits_truncate(allowed(permissions)))
                {
                    last = Err(e.into());
                }
                if let Some((atime, mtime)) = attrs.times
                    && let Err(e) = set_times_object(fd.as_fd(), i64::from(atime), i64::from(mtime))
                {
                    last = Err(e.into());
                }
                if let Some((uid, gid)) = attrs.owner
                    && let Err(e) = chown_object(fd.as_fd(), uid, gid)
                {
                    last = Err(e.into());
                }
                return last.and_then(|()| self.ok(id));
            }
        };
        self.set_pending_attrs(&slot, attrs)?;
        self.ok(id)
    }

    // ------------------------------------------------------------------
    // Files

    fn open(&mut self, id: u32, path: &[u8], pflags: u32, attrs: &Attrs) -> Reply {
        let writes = pflags & (open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC) != 0;
        // Neither READ nor WRITE opens for reading, as O_RDONLY is 0.
        let readable = pflags & open_flags::READ != 0 || pflags & open_flags::WRITE == 0;
        let opened = self.open_checked(path, pflags, attrs, writes, readable);
        let handle = match opened {
            Ok(handle) => handle,
            Err(fail) => {
                // A file refused or not opened is a file event too, as in
                // SCP: what an admin of a drop account wants to see.
                let direction = if writes {
                    audit::Direction::Upload
                } else {
                    audit::Direction::Download
                };
                let refused = matches!(fail, Fail::Said(StatusCode::PermissionDenied, _));
                let sentence = fail.sentence();
                let end = audit::SftpFileEnd::NotOpened {
                    refused,
                    sentence: &sentence,
                };
                audit::sftp_file(direction, path, None, None, end);
                return Err(fail);
            }
        };
        let Some(name) = self.handles.insert(handle) else {
            // The table is full: what was opened is closed (an upload
            // discarded) and the client told.
            return Err(Fail::Code(StatusCode::Failure));
        };
        self.replies.handle(id, &name);
        Ok(())
    }

    fn open_checked(
        &mut self,
        path: &[u8],
        pflags: u32,
        attrs: &Attrs,
        writes: bool,
        readable: bool,
    ) -> Result<Handle, Fail> {
        if writes {
            self.refuse_writes()?;
        }
        if readable {
            self.refuse_reads()?;
        }
        if writes {
            self.open_upload(path, pflags, attrs, readable)
        } else {
            self.open_download(path)
        }
    }

    fn open_download(&mut self, path: &[u8]) -> Result<Handle, Fail> {
        if let Some(slot) = self.pending_at(path) {
            return Ok(Handle::File(self.file_handle(
                FileData::Upload(slot),
                path,
                true,
                false,
                false,
                true,
            )));
        }
        let fd = match &self.scope {
            // Confined: looked at first, so that a device or FIFO is never
            // opened; then opened and checked to be what was looked at.
            Scope::Confined(root) => {
                let look = self.resolve(path, OFlag::O_PATH, true)?;
                let st = fstat(&look)?;
                if !is_regular(&st) && !is_dir(&st) {
                    return Err(Fail::Said(
                        StatusCode::PermissionDenied,
                        Error::NotRegularFile {
                            path: DisplayPath(path.to_vec()),
                        }
                        .to_string(),
                    ));
                }
                open_beneath_checked(root, path, &st, path)
                    .map_err(|e| Fail::refused(&e))?
                    .fd
            }
            // Unconfined: the user's own open(2), non-blocking so that a
            // FIFO cannot hang the session.
            Scope::Unconfined => self.resolve(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK, true)?,
        };
        let regular = fstat(&fd).is_ok_and(|st| is_regular(&st));
        Ok(Handle::File(self.file_handle(
            FileData::Plain(fd),
            path,
            true,
            false,
            false,
            regular,
        )))
    }

    fn file_handle(
        &self,
        data: FileData,
        path: &[u8],
        readable: bool,
        writable: bool,
        append: bool,
        regular: bool,
    ) -> FileHandle {
        FileHandle {
            data,
            readable,
            writable,
            append,
            path: path.to_vec(),
            bytes_read: 0,
            regular,
            started: Instant::now(),
        }
    }

    /// Every OPEN that may write: the bytes go to a file nobody else sees
    /// until CLOSE publishes it (DESIGN.md "Atomic uploads").
    fn open_upload(
        &mut self,
        path: &[u8],
        pflags: u32,
        attrs: &Attrs,
        readable: bool,
    ) -> Result<Handle, Fail> {
        self.check_denied(path)?;
        let writable = pflags & open_flags::WRITE != 0;
        let append = pflags & open_flags::APPEND != 0;
        let truncate = pflags & open_flags::TRUNC != 0;
        let exclusive = pflags & open_flags::EXCL != 0 && pflags & open_flags::CREAT != 0;
        if let Some(slot) = self.pending_at(path) {
            if exclusive {
                return Err(Fail::Os(Errno::EEXIST));
            }
            if truncate && let Some(upload) = slot.borrow_mut().upload.as_mut() {
                upload.set_len(0)?;
            }
            return Ok(Handle::File(self.file_handle(
                FileData::Upload(slot),
                path,
                readable,
                writable,
                append,
                true,
            )));
        }
        let (dir, name) = self.parent(path)?;
        let exists = fstatat(
            &dir,
            std::ffi::OsStr::from_bytes(&name),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok();
        if exclusive && exists {
            return Err(Fail::Os(Errno::EEXIST));
        }
        if pflags & open_flags::CREAT == 0 {
            // Without CREAT the file must be there (following a symlink, as
            // open(2) would).
            self.resolve(path, OFlag::O_PATH, true)?;
        }
        let requested = attrs.permissions.unwrap_or(0o666);
        let new_mode = NewFileMode {
            mode: self.allowed_mode(requested) & !self.opts.creation_umask,
            creation_umask: self.opts.creation_umask,
        };
        let rules = Rules {
            confined: self.scope.is_confined(),
            no_overwrite: self.opts.no_overwrite,
            no_symlinks: self.opts.no_symlinks,
            read_back: readable,
        };
        let target = Target {
            dir: DirFd::Owned(dir),
            name: &name,
            path,
        };
        let dest =
            upload::open_destination(target, &rules, new_mode).map_err(|e| Fail::refused(&e))?;
        let (old_content, mode, key) = prepare_destination(&dest, truncate, new_mode.mode)?;
        let upload = PendingUpload::new(dest, old_content, mode)?;
        let slot = Rc::new(RefCell::new(UploadSlot {
            upload: Some(upload),
            path: path.to_vec(),
            key: key.clone(),
            refused: None,
            started: Instant::now(),
        }));
        if let Some(key) = key {
            self.pending.insert(key, Rc::downgrade(&slot));
        }
        Ok(Handle::File(self.file_handle(
            FileData::Upload(slot),
            path,
            readable,
            writable,
            append,
            true,
        )))
    }

    fn read(&mut self, id: u32, handle: &[u8], offset: u64, len: u32) -> Reply {
        let Some(file) = self.handles.file_mut(handle) else {
            return Err(Fail::Code(StatusCode::Failure));
        };
        if !file.readable {
            // What read(2) on a write-only descriptor says (EBADF).
            return Err(Fail::Os(Errno::EBADF));
        }
        let len = len.min(codes::MAX_READ) as usize;
        check_offset(&file.data, offset)?;
        if W::IS_SESSION_STREAM
            && self.opts.zero_copy
            && len >= ZERO_COPY_READ
            && let FileData::Plain(fd) = &file.data
            && let Some(n) = bytes_available(fd, offset, len)
            && n >= ZERO_COPY_READ
        {
            // The header goes out with the replies before it, then the data
            // from the page cache to stdout: no copy through user space.
            file.bytes_read += n as u64;
            self.replies.data_header(id, n as u32);
            if write_replies(&mut self.out, &mut self.replies).is_err()
                || transfer::send_range_to_stdout(fd.as_fd(), offset, n).is_err()
            {
                self.peer_gone = true;
            }
            return Ok(());
        }
        let data = &file.data;
        // A READ of length 0 is answered with empty DATA, even past the end
        // (as OpenSSH); otherwise nothing to read is EOF.
        match self
            .replies
            .data_with(id, len, |buf| read_file(data, offset, buf))?
        {
            0 if len > 0 => Err(Fail::Code(StatusCode::Eof)),
            n => {
                file.bytes_read += n as u64;
                Ok(())
            }
        }
    }

    /// A large WRITE whose data are still in the stream: checked as WRITE
    /// is, then its data spliced from stdin into the upload's file (or read
    /// and dropped, so that the stream stays in step, when it is refused).
    fn streamed_write<B: BufferedInput>(
        &mut self,
        header: &[u8],
        reader: &mut B,
    ) -> Result<(), WireError> {
        let (id, handle, offset, len) = parse_write_header(header)?;
        if !self.initialized {
            return Err(WireError::NotInitialized {
                packet_type: codes::packet::WRITE,
            });
        }
        let len = u64::from(len);
        let target = self.writable_upload(handle, offset, len);
        let outcome = match target {
            Ok((slot, append)) => {
                let mut slot = slot.borrow_mut();
                let slot = &mut *slot;
                let upload = slot.upload.as_mut().expect("checked by writable_upload");
                let data = &mut self.data;
                match upload.write_with(offset, len, append, |fd| {
                    data.receive(reader, Some(fd), len, None)
                }) {
                    Ok(Ok(received)) => match received.write_error {
                        None => Ok(()),
                        Some(errno) => {
                            slot.refused.get_or_insert(Error::os(&slot.path, errno));
                            Err(Fail::Os(errno))
                        }
                    },
                    Ok(Err(_incomplete)) => return Err(WireError::ClosedInsideWrite),
                    Err(errno) => {
                        slot.refused.get_or_insert(Error::os(&slot.path, errno));
                        self.drain(reader, len)?;
                        Err(Fail::Os(errno))
                    }
                }
            }
            Err(fail) => {
                self.drain(reader, len)?;
                Err(fail)
            }
        };
        match outcome {
            Ok(()) => self.status(id, StatusCode::Ok),
            Err(fail) => self.fail(id, fail),
        }
        Ok(())
    }

    /// Reads and drops a refused WRITE's data.
    fn drain<B: BufferedInput>(&mut self, reader: &mut B, len: u64) -> Result<(), WireError> {
        self.data
            .receive(reader, None, len, None)
            .map(drop)
            .map_err(|_| WireError::ClosedInsideWrite)
    }

    /// What a WRITE of `len` bytes at `offset` through `handle` writes to,
    /// after the checks every WRITE passes (the request permitted, a
    /// writable upload, the file-size limit); a refusal that concerns the
    /// upload marks it unpublishable.
    fn writable_upload(
        &mut self,
        handle: &[u8],
        offset: u64,
        len: u64,
    ) -> Result<(Rc<RefCell<UploadSlot>>, bool), Fail> {
        if self.opts.refuse_all.is_some()
            || !self.request_permitted(&Request::Write {
                handle,
                offset,
                data: &[],
            })
        {
            let sentence = self
                .opts
                .refuse_all
                .clone()
                .unwrap_or_else(|| StatusCode::PermissionDenied.message().to_owned());
            return Err(Fail::Said(StatusCode::PermissionDenied, sentence));
        }
        let max = self.opts.limits.max_file_size;
        let (slot, append) = self.upload_of(handle)?;
        {
            let mut guard = slot.borrow_mut();
            let guard = &mut *guard;
            let Some(upload) = guard.upload.as_ref() else {
                return Err(Fail::Os(Errno::EBADF));
            };
            let end = if append { upload.len() } else { offset }.saturating_add(len);
            if let Some(max) = max
                && end > max
            {
                let e = Error::Refused {
                    path: DisplayPath(guard.path.clone()),
                    why: Refusal::FileTooLarge { size: end, max },
                };
                let fail = Fail::refused(&e);
                guard.refused.get_or_insert(e);
                return Err(fail);
            }
        }
        Ok((slot, append))
    }

    /// The upload a handle writes, and whether it appends: FAILURE for an
    /// unknown handle, EBADF (NO_SUCH_FILE) for one not open for writing,
    /// as write(2) on OpenSSH's descriptor would say.
    fn upload_of(&mut self, handle: &[u8]) -> Result<(Rc<RefCell<UploadSlot>>, bool), Fail> {
        let Some(file) = self.handles.file_mut(handle) else {
            return Err(Fail::Code(StatusCode::Failure));
        };
        let FileData::Upload(slot) = &file.data else {
            return Err(Fail::Os(Errno::EBADF));
        };
        if !file.writable {
            return Err(Fail::Os(Errno::EBADF));
        }
        Ok((Rc::clone(slot), file.append))
    }

    fn write(&mut self, id: u32, handle: &[u8], offset: u64, data: &[u8]) -> Reply {
        let (slot, append) = self.writable_upload(handle, offset, data.len() as u64)?;
        write_upload(&slot, offset, data, append, None)?;
        self.ok(id)
    }

    fn close(&mut self, id: u32, handle: &[u8]) -> Reply {
        let Some(handle) = self.handles.remove(handle) else {
            // OpenSSH's handle_close: ENOENT for a handle it does not know.
            return Err(Fail::Os(Errno::ENOENT));
        };
        match handle {
            Handle::Dir(_) => self.ok(id),
            Handle::File(file) => {
                let FileHandle {
                    data,
                    path,
                    bytes_read,
                    regular,
                    started,
                    ..
                } = file;
                match data {
                    FileData::Plain(fd) => {
                        if regular {
                            let size = fstat(&fd).map_or(0, |st| st.st_size as u64);
                            audit::sftp_file(
                                audit::Direction::Download,
                                &path,
                                Some((size, bytes_read)),
                                Some(started.elapsed()),
                                audit::SftpFileEnd::Done,
                            );
                        }
                        drop(fd);
                        self.ok(id)
                    }
                    FileData::Upload(slot) => self.finish_upload(id, slot),
                }
            }
        }
    }

    /// The last handle of an upload closed: publish it whole, or discard
    /// it if a write was refused or a limit says no.
    fn finish_upload(&mut self, id: u32, slot: Rc<RefCell<UploadSlot>>) -> Reply {
        // The name is this upload's no more; a newer upload under the same
        // name keeps its entry.
        if let Some(key) = slot.borrow().key.as_ref()
            && self
                .pending
                .get(key)
                .is_some_and(|entry| entry.ptr_eq(&Rc::downgrade(&slot)))
            && Rc::strong_count(&slot) == 1
        {
            self.pending.remove(key);
        }
        let Ok(slot) = Rc::try_unwrap(slot) else {
            // Another handle still has it open.
            return self.ok(id);
        };
        let UploadSlot {
            upload,
            path,
            refused,
            started,
            ..
        } = slot.into_inner();
        let Some(upload) = upload else {
            return self.ok(id);
        };
        let size = upload.len();
        let written = upload.written_bytes();
        let outcome = match refused {
            Some(e) => {
                upload.discard();
                Err(e)
            }
            None => match self.quota.admit(&path, size) {
                Err(e) => {
                    upload.discard();
                    Err(e)
                }
                Ok(()) => upload.publish(self.opts.no_overwrite, self.opts.fsync, &path),
            },
        };
        let end = match &outcome {
            Ok(()) => audit::SftpFileEnd::Done,
            Err(e) => audit::SftpFileEnd::Discarded(e),
        };
        audit::sftp_file(
            audit::Direction::Upload,
            &path,
            Some((size, written)),
            Some(started.elapsed()),
            end,
        );
        match outcome {
            Ok(()) => {
                self.quota.record(size);
                self.ok(id)
            }
            Err(e) => Err(Fail::refused(&e)),
        }
    }

    // ------------------------------------------------------------------
    // Directories

    fn opendir(&mut self, id: u32, path: &[u8]) -> Reply {
        self.refuse_reads()?;
        let fd = self.resolve(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, true)?;
        let lookup = nix::unistd::dup(&fd)?;
        let dir = nix::dir::Dir::from_fd(fd)?;
        let handle = Handle::Dir(DirHandle {
            entries: dir.into_iter(),
            fd: lookup,
        });
        let Some(name) = self.handles.insert(handle) else {
            return Err(Fail::Code(StatusCode::Failure));
        };
        self.replies.handle(id, &name);
        Ok(())
    }

    /// Up to 100 entries per reply, read from the directory as they are
    /// asked for (a huge directory is never held in memory); entries that
    /// cannot be looked at are skipped, as OpenSSH skips them.
    fn readdir(&mut self, id: u32, handle: &[u8]) -> Reply {
        self.refuse_reads()?;
        let now = now_seconds();
        let Some(Handle::Dir(dir)) = self.handles.get_mut(handle) else {
            return Err(Fail::Code(StatusCode::Failure));
        };
        let mut found: Vec<(Vec<u8>, FileStat)> = Vec::with_capacity(NAMES_PER_READDIR);
        for entry in dir.entries.by_ref() {
            let Ok(entry) = entry else {
                break;
            };
            let name = entry.file_name().to_bytes();
            let Ok(st) = fstatat(
                &dir.fd,
                std::ffi::OsStr::from_bytes(name),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) else {
                continue;
            };
            found.push((name.to_vec(), st));
            if found.len() == NAMES_PER_READDIR {
                break;
            }
        }
        if found.is_empty() {
            return Err(Fail::Code(StatusCode::Eof));
        }
        let longnames: Vec<Vec<u8>> = found
            .iter()
            .map(|(name, st)| self.names.longname(name, st, now))
            .collect();
        let entries: Vec<NameEntry<'_>> = found
            .iter()
            .zip(&longnames)
            .map(|((name, st), longname)| NameEntry {
                filename: name,
                longname,
                attrs: attrs_of(st),
            })
            .collect();
        self.replies.names(id, &entries);
        Ok(())
    }

    fn mkdir(&mut self, id: u32, path: &[u8], attrs: &Attrs) -> Reply {
        self.refuse_writes()?;
        self.check_denied(path)?;
        self.check_depth(path)?;
        let (dir, name) = self.parent(path)?;
        let mode = self.allowed_mode(attrs.permissions.unwrap_or(0o777));
        let result = mkdirat(
            &dir,
            std::ffi::OsStr::from_bytes(&name),
            Mode::from_bits_truncate(mode),
        )
        .map_err(Fail::from);
        audit::sftp_operation("mkdir", path, None, result_text(&result));
        result.and_then(|()| self.ok(id))
    }

    /// A new directory at `path` must be within `max-depth` levels of the
    /// root, counted on its parent's real path (symlinks and `..` resolved).
    fn check_depth(&self, path: &[u8]) -> Result<(), Fail> {
        if !self.scope.is_confined() {
            return Ok(());
        }
        let parent = canonical_path(&self.scope, paths::parent_path(path))
            .map_err(|e| Fail::resolve(path, e))?;
        let depth = parent
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .count()
            + 1;
        if depth > self.opts.max_depth {
            return Err(Fail::Said(
                StatusCode::PermissionDenied,
                format!(
                    "{}: refused: this account may nest directories at most {} levels deep",
                    DisplayPath(path.to_vec()),
                    self.opts.max_depth
                ),
            ));
        }
        Ok(())
    }

    fn rmdir(&mut self, id: u32, path: &[u8]) -> Reply {
        self.refuse_writes()?;
        self.check_denied(path)?;
        let (dir, name) = self.parent(path)?;
        let result = unlinkat(
            &dir,
            std::ffi::OsStr::from_bytes(&name),
            UnlinkatFlags::RemoveDir,
        )
        .map_err(Fail::from);
        audit::sftp_operation("rmdir", path, None, result_text(&result));
        result.and_then(|()| self.ok(id))
    }

    fn remove(&mut self, id: u32, path: &[u8]) -> Reply {
        self.refuse_writes()?;
        self.check_denied(path)?;
        if self.opts.no_overwrite {
            return Err(Fail::Said(
                StatusCode::PermissionDenied,
                format!(
                    "{}: this account may not remove files",
                    DisplayPath(path.to_vec())
                ),
            ));
        }
        // A file removed while it is being written is not published when
        // its handle closes (what remove-while-open means to a client).
        let pending = self
            .pending_at(path)
            .and_then(|slot| slot.borrow_mut().upload.take());
        let was_pending = pending.is_some();
        if let Some(upload) = pending {
            upload.discard();
        }
        let (dir, name) = self.parent(path)?;
        let result = match unlinkat(
            &dir,
            std::ffi::OsStr::from_bytes(&name),
            UnlinkatFlags::NoRemoveDir,
        ) {
            Err(Errno::ENOENT) if was_pending => Ok(()),
            other => other.map_err(Fail::from),
        };
        audit::sftp_operation("remove", path, None, result_text(&result));
        result.and_then(|()| self.ok(id))
    }

    /// RENAME never replaces an existing name (OpenSSH links and unlinks);
    /// posix-rename does, except under `no-overwrite`, where the kernel
    /// refuses (`RENAME_NOREPLACE`).
    fn rename(&mut self, id: u32, from: &[u8], to: &[u8], posix: bool) -> Reply {
        self.refuse_writes()?;
        self.check_denied(from)?;
        self.check_denied(to)?;
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        self.check_moved_link(&from_dir, &from_name, to)?;
        let replace = posix && !self.opts.no_overwrite;
        let result = if replace {
            nix::fcntl::renameat(
                &from_dir,
                std::ffi::OsStr::from_bytes(&from_name),
                &to_dir,
                std::ffi::OsStr::from_bytes(&to_name),
            )
            .map_err(Fail::from)
        } else {
            match rename_noreplace_between(from_dir.as_fd(), &from_name, to_dir.as_fd(), &to_name) {
                Err(Errno::EEXIST) if self.opts.no_overwrite => Err(self.refuse_overwrite(to)),
                other => other.map_err(Fail::from),
            }
        };
        audit::sftp_operation("rename", from, Some(to), result_text(&result));
        result.and_then(|()| self.ok(id))
    }

    fn realpath(&mut self, id: u32, path: &[u8]) -> Reply {
        let path: &[u8] = if path.is_empty() { b"." } else { path };
        let resolved = canonical_path(&self.scope, path).map_err(|e| Fail::resolve(path, e))?;
        self.one_name(id, &resolved);
        Ok(())
    }

    /// expand-path@openssh.com: `~` and `~/x` are the home (the root when
    /// confined); `~user` is refused.
    fn expand_path(&mut self, id: u32, path: &[u8]) -> Reply {
        let expanded: Vec<u8> = if path.is_empty() {
            b".".to_vec()
        } else if path == b"~" {
            self.opts.home.clone()
        } else if let Some(rest) = path.strip_prefix(b"~/") {
            let mut p = self.opts.home.clone();
            if !p.ends_with(b"/") {
                p.push(b'/');
            }
            p.extend_from_slice(rest);
            p
        } else if path.starts_with(b"~") {
            return Err(Fail::Said(
                StatusCode::NoSuchFile,
                "no such user".to_owned(),
            ));
        } else {
            path.to_vec()
        };
        self.realpath(id, &expanded)
    }

    fn readlink(&mut self, id: u32, path: &[u8]) -> Reply {
        let fd = self.resolve(path, OFlag::O_PATH, false)?;
        let target = nix::fcntl::readlinkat(&fd, "").map_err(|errno| {
            // readlinkat(fd, "") on anything but a symlink says ENOENT;
            // readlink(2) of a path says EINVAL, which OpenSSH answers
            // with BAD_MESSAGE.
            match fstat(&fd) {
                Ok(st) if !upload::is_type(&st, SFlag::S_IFLNK) => Errno::EINVAL,
                _ => errno,
            }
        })?;
        self.one_name(id, target.as_bytes());
        Ok(())
    }

    /// SYMLINK, its paths in OpenSSH's order (target first). Restricted:
    /// only with `allow-links`, never with `no-symlinks`, and never a link
    /// that would lead out of the root.
    fn symlink(&mut self, id: u32, target: &[u8], link: &[u8]) -> Reply {
        self.refuse_writes()?;
        self.refuse_links(link)?;
        self.check_denied(link)?;
        self.check_link_target(link, target)?;
        let (dir, name) = self.parent(link)?;
        let result = nix::unistd::symlinkat(
            std::ffi::OsStr::from_bytes(target),
            &dir,
            std::ffi::OsStr::from_bytes(&name),
        )
        .map_err(Fail::from);
        audit::sftp_operation("symlink", link, Some(target), result_text(&result));
        result.and_then(|()| self.ok(id))
    }

    /// In a confined session a symlink the client makes must point
    /// downward from its own directory (paths::target_points_downward) and
    /// not through a symlink that leads out. The resolver never follows a
    /// link out of the root; this keeps the tree free of such links for
    /// whoever else reads it (an unconfined session, the admin's scripts).
    fn check_link_target(&self, link: &[u8], target: &[u8]) -> Result<(), Fail> {
        let Scope::Confined(root) = &self.scope else {
            return Ok(());
        };
        let refusal = || {
            Fail::Said(
                StatusCode::PermissionDenied,
                format!(
                    "{}: a link to {} could lead out of this account's directory \
                     (only a relative target below the link's directory, without \"..\", is allowed)",
                    DisplayPath(link.to_vec()),
                    DisplayPath(target.to_vec())
                ),
            )
        };
        if !paths::target_points_downward(target) {
            return Err(refusal());
        }
        let parent = paths::parent_path(link);
        let mut through =
            canonical_path(&self.scope, parent).map_err(|e| Fail::resolve(link, e))?;
        through.push(b'/');
        through.extend_from_slice(target);
        match root.open_beneath(&through, OFlag::O_PATH, true) {
            Err(ResolveError::Escapes { .. }) => Err(refusal()),
            // A dangling target is allowed, as OpenSSH allows it: whatever
            // appears there later is made beneath the root.
            _ => Ok(()),
        }
    }

    /// RENAME and hardlink give a symlink a new place, which changes what
    /// a relative target means: the target must pass check_link_target
    /// from there. Other files are not looked at.
    fn check_moved_link(
        &self,
        from_dir: &OwnedFd,
        from_name: &[u8],
        to: &[u8],
    ) -> Result<(), Fail> {
        if !self.scope.is_confined() {
            return Ok(());
        }
        let name = std::ffi::OsStr::from_bytes(from_name);
        match nix::fcntl::readlinkat(from_dir, name) {
            Ok(target) => self.check_link_target(to, target.as_bytes()),
            // Not a symlink (EINVAL) or not there: the request itself
            // answers as for any file.
            Err(_) => Ok(()),
        }
    }

    /// hardlink@openssh.com: like link(2), a symlink at `from` is linked
    /// itself, not followed.
    fn hardlink(&mut self, id: u32, from: &[u8], to: &[u8]) -> Reply {
        self.refuse_writes()?;
        self.refuse_links(to)?;
        self.check_denied(from)?;
        self.check_denied(to)?;
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        self.check_moved_link(&from_dir, &from_name, to)?;
        let result = nix::unistd::linkat(
            &from_dir,
            std::ffi::OsStr::from_bytes(&from_name),
            &to_dir,
            std::ffi::OsStr::from_bytes(&to_name),
            AtFlags::empty(),
        )
        .map_err(Fail::from);
        audit::sftp_operation("hardlink", to, Some(from), result_text(&result));
        result.and_then(|()| self.ok(id))
    }

    // ------------------------------------------------------------------
    // Filesystems and limits

    fn statvfs(&mut self, id: u32, path: &[u8]) -> Reply {
        let fd = self.resolve(path, OFlag::O_PATH, true)?;
        let st = nix::sys::statvfs::fstatvfs(&fd)?;
        self.statvfs_reply(id, &st);
        Ok(())
    }

    fn fstatvfs(&mut self, id: u32, handle: &[u8]) -> Reply {
        let Some(file) = self.handles.file_mut(handle) else {
            return Err(Fail::Code(StatusCode::Failure));
        };
        let st = match &file.data {
            FileData::Plain(fd) => nix::sys::statvfs::fstatvfs(fd)?,
            FileData::Upload(slot) => {
                let slot = slot.borrow();
                let upload = slot.upload.as_ref().ok_or(Errno::EBADF)?;
                nix::sys::statvfs::fstatvfs(upload.fd())?
            }
        };
        self.statvfs_reply(id, &st);
        Ok(())
    }

    fn statvfs_reply(&mut self, id: u32, st: &nix::sys::statvfs::Statvfs) {
        use nix::sys::statvfs::FsFlags;
        let mut flag = 0;
        if st.flags().contains(FsFlags::ST_RDONLY) {
            flag |= STATVFS_RDONLY;
        }
        if st.flags().contains(FsFlags::ST_NOSUID) {
            flag |= STATVFS_NOSUID;
        }
        self.replies.extended_reply(id, |e| {
            e.u64(st.block_size())
                .u64(st.fragment_size())
                .u64(st.blocks())
                .u64(st.blocks_free())
                .u64(st.blocks_available())
                .u64(st.files())
                .u64(st.files_free())
                .u64(st.files_available())
                .u64(st.filesystem_id())
                .u64(flag)
                .u64(st.name_max());
        });
    }

    fn fsync(&mut self, id: u32, handle: &[u8]) -> Reply {
        let Some(file) = self.handles.file_mut(handle) else {
            // Directory handles and unknown ones alike (OpenSSH).
            return Err(Fail::Code(StatusCode::NoSuchFile));
        };
        match &file.data {
            FileData::Plain(fd) => nix::unistd::fsync(fd)?,
            FileData::Upload(slot) => {
                let slot = slot.borrow();
                let upload = slot.upload.as_ref().ok_or(Errno::EBADF)?;
                nix::unistd::fsync(upload.fd())?;
            }
        }
        self.ok(id)
    }

    /// limits@openssh.com, truthfully: the packet, READ and WRITE lengths
    /// this server accepts and the handles it will open.
    fn limits(&mut self, id: u32) {
        let handles = self.handles.max() as u64;
        self.replies.extended_reply(id, |e| {
            e.u64(codes::MAX_PACKET as u64)
                .u64(u64::from(codes::MAX_READ))
                .u64(u64::from(codes::MAX_WRITE))
                .u64(handles);
        });
    }

    /// home-directory: the session's own home whatever user is named (as
    /// OpenSSH 9.2 answers), `/` when confined; an unknown user fails.
    fn home_directory(&mut self, id: u32, user: &[u8]) -> Reply {
        let known = std::str::from_utf8(user)
            .ok()
            .and_then(|name| nix::unistd::User::from_name(name).ok().flatten())
            .is_some();
        if !known && !self.scope.is_confined() {
            return Err(Fail::Code(StatusCode::Failure));
        }
        let home = self.opts.home.clone();
        self.one_name(id, &home);
        Ok(())
    }

    fn users_groups(&mut self, id: u32, uids: &[u32], gids: &[u32]) {
        let mut users = Vec::new();
        for &uid in uids {
            let name = self.names.user(uid).unwrap_or("").as_bytes().to_vec();
            push_string(&mut users, &name);
        }
        let mut groups = Vec::new();
        for &gid in gids {
            let name = self.names.group(gid).unwrap_or("").as_bytes().to_vec();
            push_string(&mut groups, &name);
        }
        self.replies.extended_reply(id, |e| {
            e.string(&users).string(&groups);
        });
    }

    /// copy-data: bytes from one open file to another, in chunks, through
    /// the same paths as READ and WRITE (so an upload target stays atomic).
    #[allow(clippy::too_many_arguments)]
    fn copy_data(
        &mut self,
        id: u32,
        from: &[u8],
        from_offset: u64,
        len: u64,
        to: &[u8],
        to_offset: u64,
    ) -> Reply {
        self.refuse_writes()?;
        if from == to {
            return Err(Fail::Code(StatusCode::Failure));
        }
        let max = self.opts.limits.max_file_size;
        let (source, source_path, source_readable) = match self.handles.file_mut(from) {
            Some(file) => (clone_data(&file.data)?, file.path.clone(), file.readable),
            None => return Err(Fail::Code(StatusCode::Failure)),
        };
        match self.handles.file_mut(to) {
            Some(target) if target.path == source_path => {
                return Err(Fail::Code(StatusCode::Failure));
            }
            Some(_) => {}
            None => return Err(Fail::Code(StatusCode::Failure)),
        }
        if !source_readable {
            return Err(Fail::Os(Errno::EBADF));
        }
        let (slot, append) = self.upload_of(to)?;
        match copy_between(&source, from_offset, len, &slot, to_offset, append, max)? {
            CopyEnd::Done => self.ok(id),
            CopyEnd::EndOfSource => Err(Fail::Code(StatusCode::Eof)),
        }
    }

    /// The session is over: uploads still open are discarded (a lost
    /// connection must not publish half a file), downloads audited.
    fn end_session(&mut self) {
        let handles: Vec<Handle> = self.handles.drain().collect();
        for handle in handles {
            if let Handle::File(file) = handle {
                match file.data {
                    FileData::Upload(slot) => {
                        if let Ok(slot) = Rc::try_unwrap(slot) {
                            let slot = slot.into_inner();
                            if let Some(upload) = slot.upload {
                                let size = upload.len();
                                let written = upload.written_bytes();
                                upload.discard();
                                audit::sftp_file(
                                    audit::Direction::Upload,
                                    &slot.path,
                                    Some((size, written)),
                                    Some(slot.started.elapsed()),
                                    audit::SftpFileEnd::Interrupted,
                                );
                            }
                        }
                    }
                    FileData::Plain(fd) if file.regular => {
                        let size = fstat(&fd).map_or(0, |st| st.st_size as u64);
                        audit::sftp_file(
                            audit::Direction::Download,
                            &file.path,
                            Some((size, file.bytes_read)),
                            Some(file.started.elapsed()),
                            audit::SftpFileEnd::Done,
                        );
                    }
                    FileData::Plain(_) => {}
                }
            }
        }
        self.pending.clear();
    }
}

/// The extensions this server implements, as OpenSSH 9.2 advertises them
/// (name, version).
const EXTENSIONS: &[(&str, &str)] = &[
    (ext::POSIX_RENAME, "1"),
    (ext::STATVFS, "2"),
    (ext::FSTATVFS, "2"),
    (ext::HARDLINK, "1"),
    (ext::FSYNC, "1"),
    (ext::LSETSTAT, "1"),
    (ext::LIMITS, "1"),
    (ext::EXPAND_PATH, "1"),
    (ext::COPY_DATA, "1"),
    (ext::HOME_DIRECTORY, "1"),
    (ext::USERS_GROUPS_BY_ID, "1"),
];

/// Requests a read-only session refuses by name (sftp-server's `-R`;
/// OPEN is judged by its flags).
const WRITING_REQUESTS: &[&str] = &[
    "write",
    "setstat",
    "fsetstat",
    "remove",
    "mkdir",
    "rmdir",
    "rename",
    "symlink",
    "posix-rename",
    "hardlink",
    "fsync",
    "lsetstat",
    "copy-data",
];

fn list_name_of_extension(name: &str) -> Option<&'static str> {
    Some(match name {
        ext::POSIX_RENAME => "posix-rename",
        ext::STATVFS => "statvfs",
        ext::FSTATVFS => "fstatvfs",
        ext::HARDLINK => "hardlink",
        ext::FSYNC => "fsync",
        ext::LSETSTAT => "lsetstat",
        ext::LIMITS => "limits",
        ext::EXPAND_PATH => "expand-path",
        ext::COPY_DATA => "copy-data",
        ext::HOME_DIRECTORY => "home-directory",
        ext::USERS_GROUPS_BY_ID => "users-groups-by-id",
        _ => return None,
    })
}

/// What an open file reads from: the descriptor, or the upload's file
/// (which fills in the old content it still owes first).
fn read_file(data: &FileData, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    match data {
        FileData::Plain(fd) => {
            let at = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
            loop {
                match nix::sys::uio::pread(fd, buf, at) {
                    Err(Errno::EINTR) => continue,
                    other => return other,
                }
            }
        }
        FileData::Upload(slot) => {
            let mut slot = slot.borrow_mut();
            let upload = slot.upload.as_mut().ok_or(Errno::EBADF)?;
            upload.read_at(offset, buf)
        }
    }
}

/// OpenSSH seeks before it reads: an offset the file cannot have fails
/// with the kernel's answer (EINVAL past the filesystem's largest file).
/// Only far offsets are asked about, so an ordinary READ costs no lseek.
fn check_offset(data: &FileData, offset: u64) -> Result<(), Fail> {
    const FAR: u64 = 1 << 40;
    if offset < FAR {
        return Ok(());
    }
    let at = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
    let fd: BorrowedFd<'_> = match data {
        FileData::Plain(fd) => fd.as_fd(),
        FileData::Upload(_) => return Ok(()),
    };
    nix::unistd::lseek(fd, at, nix::unistd::Whence::SeekSet)?;
    Ok(())
}

/// How many of `len` bytes a regular file has at `offset` (`None` for
/// anything else: its READs take the copy path).
fn bytes_available(fd: &OwnedFd, offset: u64, len: usize) -> Option<usize> {
    let st = fstat(fd).ok()?;
    if !is_regular(&st) {
        return None;
    }
    let available = (st.st_size as u64).saturating_sub(offset);
    Some(available.min(len as u64) as usize)
}

fn clone_data(data: &FileData) -> Result<FileData, Errno> {
    Ok(match data {
        FileData::Plain(fd) => FileData::Plain(nix::unistd::dup(fd)?),
        FileData::Upload(slot) => FileData::Upload(Rc::clone(slot)),
    })
}

/// The pending upload as STAT shows it (PendingUpload::stat).
fn pending_stat(slot: &Rc<RefCell<UploadSlot>>) -> Result<FileStat, Fail> {
    let slot = slot.borrow();
    let upload = slot.upload.as_ref().ok_or(Errno::ENOENT)?;
    Ok(upload.stat()?)
}

/// What an upload over an existing file needs besides its destination:
/// the old content to start from (without TRUNC), the mode to publish with
/// (the old file's for a replacement, else the new file's), and the key
/// under which the session finds the pending name.
fn prepare_destination(
    dest: &Destination<'static>,
    truncate: bool,
    new_mode: u32,
) -> Result<(Option<OwnedFd>, u32, Option<PendingKey>), Fail> {
    match dest {
        Destination::Atomic {
            dir,
            final_name,
            existing,
            ..
        } => {
            let key = PendingKey {
                dir: dir_identity_of(dir.as_fd())?,
                name: final_name.clone(),
            };
            match existing {
                Some(old) => {
                    let mode = old.st_mode & 0o7777;
                    let content = if truncate {
                        None
                    } else {
                        Some(open_old_content(dir.as_fd(), final_name, old)?)
                    };
                    Ok((content, mode, Some(key)))
                }
                None => Ok((None, new_mode, Some(key))),
            }
        }
        Destination::Unnamed {
            dir, final_name, ..
        } => Ok((
            None,
            new_mode,
            Some(PendingKey {
                dir: dir_identity_of(dir.as_fd())?,
                name: final_name.clone(),
            }),
        )),
        Destination::InPlace { file, existing, .. } => {
            if truncate && is_regular(existing) {
                ftruncate(file, 0)?;
            }
            // Written where it stands: nothing is pending under its name.
            Ok((None, existing.st_mode & 0o7777, None))
        }
    }
}

fn dir_identity_of(dir: BorrowedFd<'_>) -> Result<(u64, u64), Errno> {
    let st = fstat(dir)?;
    Ok((st.st_dev, st.st_ino))
}

/// The file an upload replaces, opened for reading its content, and
/// checked to be the file that was looked at.
fn open_old_content(
    dir: BorrowedFd<'_>,
    name: &[u8],
    expected: &FileStat,
) -> Result<OwnedFd, Fail> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let fd = openat(dir, std::ffi::OsStr::from_bytes(name), flags, Mode::empty())?;
    let st = fstat(&fd)?;
    if (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino) {
        return Err(Fail::Os(Errno::EAGAIN));
    }
    Ok(fd)
}

fn push_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A request's outcome for its audit event: `None` when it succeeded.
fn result_text(result: &Result<(), Fail>) -> Option<String> {
    result.as_ref().err().map(Fail::sentence)
}

/// One WRITE into an upload. A write the policy or the filesystem refuses
/// also marks the upload: it will not be published.
fn write_upload(
    slot: &Rc<RefCell<UploadSlot>>,
    offset: u64,
    data: &[u8],
    append: bool,
    max_file_size: Option<u64>,
) -> Result<(), Fail> {
    let mut slot = slot.borrow_mut();
    let slot = &mut *slot;
    let Some(upload) = slot.upload.as_mut() else {
        return Err(Fail::Os(Errno::EBADF));
    };
    let end = if append { upload.len() } else { offset }.saturating_add(data.len() as u64);
    if let Some(max) = max_file_size
        && end > max
    {
        let e = Error::Refused {
            path: DisplayPath(slot.path.clone()),
            why: Refusal::FileTooLarge { size: end, max },
        };
        let fail = Fail::refused(&e);
        slot.refused.get_or_insert(e);
        return Err(fail);
    }
    if let Err(errno) = upload.write_at(offset, data, append) {
        slot.refused.get_or_insert(Error::os(&slot.path, errno));
        return Err(errno.into());
    }
    Ok(())
}

enum CopyEnd {
    Done,
    /// The source ended before the length asked for.
    EndOfSource,
}

/// copy-data's loop: chunks read as READ reads them, written as WRITE
/// writes them. A length of 0 copies to the end of the source.
fn copy_between(
    source: &FileData,
    from_offset: u64,
    len: u64,
    target: &Rc<RefCell<UploadSlot>>,
    to_offset: u64,
    append: bool,
    max_file_size: Option<u64>,
) -> Result<CopyEnd, Fail> {
    let until_eof = len == 0;
    let mut remaining = if until_eof {
        u64::MAX - from_offset
    } else {
        len
    };
    let mut buf = vec![0u8; COPY_CHUNK];
    let (mut read_at, mut write_at) = (from_offset, to_offset);
    while remaining > 0 {
        let want = remaining.min(COPY_CHUNK as u64) as usize;
        let n = read_file(source, read_at, &mut buf[..want])?;
        if n == 0 {
            return Ok(if until_eof {
                CopyEnd::Done
            } else {
                CopyEnd::EndOfSource
            });
        }
        write_upload(target, write_at, &buf[..n], append, max_file_size)?;
        read_at += n as u64;
        write_at += n as u64;
        remaining -= n as u64;
    }
    Ok(CopyEnd::Done)
}
