//! `-f`: files and directories become records on the session's stdout
//! (PROTOCOL.md §a.4, §c).
//!
//! The file type is checked before anything is opened, so a FIFO cannot hang
//! the session and a device is never opened (§h.13); what is opened is
//! checked again by descriptor. Directory cycles are detected by (dev, ino)
//! of the directories being sent (§h.3, F23).

use std::borrow::Cow;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::dir::Type;
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

use crate::audit::{self, Checksum, FileAudit};
use crate::confine::{Scope, join_display, join_rel, reopen_dir_readable, split_parent};
use crate::error::{DisplayPath, Error};
use crate::files::download::{
    Opened, file_type, is_dir, is_regular, open_beneath_checked, open_checked,
};
use crate::limits::{Limits, Quota};
use crate::protocol::{
    RecordReader, ReplyWriter, Status, write_dir_record, write_file_record, write_times_record,
};
use crate::transfer::{DataPath, SEND_IN_ONE_WRITE, SessionStream};

/// Longest path OpenSSH's source builds while recursing (PATH_MAX).
const PATH_MAX: usize = 4096;

pub struct SourceOptions {
    pub recursive: bool,
    pub preserve: bool,
    pub verbose: bool,
    pub limits: Limits,
}

/// One path a download was asked for: a path as the client gave it, or,
/// where expanding it failed (a pattern that matches nothing), the error
/// the client is sent in its place.
pub enum Operand {
    Path(Vec<u8>),
    Unusable(Error),
}

/// The peer refused to go on, or is gone: exit 1.
struct PeerStopped;

/// Runs a whole source session; returns the exit status.
pub fn run<R: Read + SessionStream, W: Write + SessionStream>(
    operands: &[Operand],
    scope: Scope,
    opts: SourceOptions,
    reader: RecordReader<R>,
    out: W,
    data: DataPath,
) -> i32 {
    let mut source = Source {
        scope,
        quota: Quota::new(opts.limits),
        opts,
        reader,
        out: ReplyWriter::new(out),
        data,
        errors: 0,
        line: Vec::new(),
    };
    match source.session(operands) {
        Ok(()) if source.errors == 0 => 0,
        _ => 1,
    }
}

struct Source<R, W> {
    scope: Scope,
    quota: Quota,
    opts: SourceOptions,
    reader: RecordReader<R>,
    out: ReplyWriter<W>,
    data: DataPath,
    errors: u32,
    /// The record being sent, reused from record to record.
    line: Vec<u8>,
}

impl<R: Read + SessionStream, W: Write + SessionStream> Source<R, W> {
    fn session(&mut self, operands: &[Operand]) -> Result<(), PeerStopped> {
        // The sink speaks first: one status byte before anything is sent.
        self.await_reply()?;
        for operand in operands {
            match operand {
                Operand::Path(path) => self.send_path(strip_trailing_slashes(path))?,
                Operand::Unusable(e) => self.warn(e.clone())?,
            }
        }
        Ok(())
    }

    fn send_path(&mut self, path: &[u8]) -> Result<(), PeerStopped> {
        let st = match self.stat_path(path) {
            Ok(st) => st,
            Err(e) => return self.warn(e),
        };
        if is_dir(&st) && self.opts.recursive {
            let dir = match self.open_path(path, &st) {
                Ok(dir) => dir,
                Err(e) => return self.warn(e),
            };
            let Some(name) = self.directory_name(path, &dir) else {
                return self.warn(Error::NoNameToSend {
                    path: DisplayPath(path.to_vec()),
                });
            };
            // Entries are resolved beneath the root by this path as the
            // client gave it (the kernel applies `..` after symlinks).
            return self.send_dir(dir, &name, path, path, &mut Vec::new());
        }
        if !is_regular(&st) {
            return self.warn(Error::NotRegularFile {
                path: DisplayPath(path.to_vec()),
            });
        }
        let (_, name) = split_parent(path);
        match self.open_path(path, &st) {
            Ok(file) => self.send_file(file, name, path),
            Err(e) => self.warn(e),
        }
    }

    /// The status of a path the client asked for, following symlinks (only
    /// while inside the root, when confined). Nothing is opened for reading.
    fn stat_path(&self, path: &[u8]) -> Result<FileStat, Error> {
        match &self.scope {
            Scope::Unconfined => fstatat(
                AT_FDCWD,
                std::ffi::OsStr::from_bytes(path),
                AtFlags::empty(),
            )
            .map_err(|e| Error::os(path, e)),
            Scope::Confined(root) => {
                let fd = root
                    .open_beneath(path, OFlag::O_PATH, true)
                    .map_err(|e| e.into_error(path))?;
                fstat(&fd).map_err(|e| Error::os(path, e))
            }
        }
    }

    /// Opens a path already known to be a regular file or directory.
    fn open_path(&self, path: &[u8], expected: &FileStat) -> Result<Opened, Error> {
        match &self.scope {
            Scope::Unconfined => open_checked(AT_FDCWD, path, expected, path, false),
            Scope::Confined(root) => open_beneath_checked(root, path, expected, path),
        }
    }

    /// The name a directory is sent under: the path's last component, or,
    /// for paths like `.` or `x/..` that OpenSSH would send literally and
    /// that clients reject (§h.12), the directory's real name, found by
    /// descriptor; the root's own name for the root itself. `None` for the
    /// filesystem's `/`, which has no name.
    fn directory_name(&self, path: &[u8], dir: &Opened) -> Option<Vec<u8>> {
        let (_, last) = split_parent(path);
        if last != b"." && last != b".." && !last.is_empty() && last != b"/" {
            return Some(last.to_vec());
        }
        if let Scope::Confined(root) = &self.scope {
            let root_st = fstat(root.fd()).ok()?;
            if (root_st.st_dev, root_st.st_ino) == (dir.st.st_dev, dir.st.st_ino) {
                return Some(root.name().to_vec());
            }
        }
        name_in_parent(dir)
    }

    fn send_file(&mut self, file: Opened, name: &[u8], path: &[u8]) -> Result<(), PeerStopped> {
        let Some(wire_name) = self.name_for_wire(name, path)? else {
            return Ok(());
        };
        if self.opts.preserve && !self.send_times(&file.st)? {
            return Ok(());
        }
        let size = u64::try_from(file.st.st_size).unwrap_or(0);
        let download = FileAudit::begin(path, size, file.st.st_mode);
        if let Err(e) = self.quota.admit(path, size) {
            return self.warn_file(&download, 0, e);
        }
        let mode = file.st.st_mode;
        if !self.send_encoded(|line| write_file_record(line, mode, size, &wire_name))? {
            return Ok(());
        }
        let mut checksum = Checksum::if_wanted();
        let small = size <= SEND_IN_ONE_WRITE;
        let sent = if small {
            self.data.send_small_then_ok(
                file.fd.as_fd(),
                size,
                self.out.inner_mut(),
                checksum.as_mut(),
            )
        } else {
            self.data.send(
                file.fd.as_fd(),
                size,
                self.out.inner_mut(),
                checksum.as_mut(),
            )
        };
        let Ok(shortfall) = sent else {
            download.interrupted(None);
            return Err(PeerStopped);
        };
        match shortfall {
            None => {
                self.quota.record(size);
                download.ok(size, checksum.map(Checksum::finish));
                if !small {
                    self.out.ok().map_err(|_| PeerStopped)?;
                }
            }
            Some(short) => {
                let e = match short.errno {
                    Some(errno) => Error::os(path, errno),
                    None => Error::ShortRead {
                        path: DisplayPath(path.to_vec()),
                        sent: short.sent,
                        size,
                    },
                };
                self.warn_file(&download, short.sent, e)?;
            }
        }
        // A warning here only counts as an error; the session goes on.
        self.await_reply().map(|_| ())
    }

    fn send_dir(
        &mut self,
        dir: Opened,
        name: &[u8],
        path: &[u8],
        rel: &[u8],
        ancestors: &mut Vec<(u64, u64)>,
    ) -> Result<(), PeerStopped> {
        let id = (dir.st.st_dev, dir.st.st_ino);
        if ancestors.contains(&id) {
            return self.warn(Error::DirectoryCycle {
                path: DisplayPath(path.to_vec()),
            });
        }
        let entries = match list_entries(dir.fd.as_fd()) {
            Ok(entries) => entries,
            Err(errno) => return self.warn(Error::os(path, errno)),
        };
        let Some(wire_name) = self.name_for_wire(name, path)? else {
            return Ok(());
        };
        if self.opts.preserve && !self.send_times(&dir.st)? {
            return Ok(());
        }
        let mode = dir.st.st_mode;
        if !self.send_encoded(|line| write_dir_record(line, mode, &wire_name))? {
            return Ok(());
        }
        ancestors.push(id);
        // Each entry's path is this directory's plus its name, built in
        // one buffer reused for every entry.
        let mut entry_path = join_display(path, b"");
        let dir_part = entry_path.len();
        for entry in entries.iter() {
            entry_path.truncate(dir_part);
            entry_path.extend_from_slice(entry.name);
            self.send_entry(dir.fd.as_fd(), entry, &entry_path, rel, ancestors)?;
        }
        ancestors.pop();
        self.send_record(b"E\n")?;
        Ok(())
    }

    fn send_entry(
        &mut self,
        dir: BorrowedFd<'_>,
        entry: Listed<'_>,
        path: &[u8],
        dir_rel: &[u8],
        ancestors: &mut Vec<(u64, u64)>,
    ) -> Result<(), PeerStopped> {
        let name = entry.name;
        if path.len() >= PATH_MAX {
            return self.warn(Error::os(path, Errno::ENAMETOOLONG));
        }
        // The path beneath the root is needed for directories (their
        // entries' paths) and for symlinks in confined sessions only.
        let rel = || join_rel(dir_rel, name);
        let opened = match self.open_entry(dir, entry, rel, path) {
            Ok(Some(opened)) => opened,
            Ok(None) => {
                return self.warn(Error::NotRegularFile {
                    path: DisplayPath(path.to_vec()),
                });
            }
            Err(e) => return self.warn(e),
        };
        if is_dir(&opened.st) {
            self.send_dir(opened, name, path, &rel(), ancestors)
        } else {
            self.send_file(opened, name, path)
        }
    }

    /// Opens entry `name` of `dir` if it is a regular file or a directory
    /// (`None`: something else, never opened). Symlinks are followed as
    /// OpenSSH follows them when unconfined (cycles are caught by the
    /// ancestor check), and only while they stay inside the root when
    /// confined.
    fn open_entry(
        &self,
        dir: BorrowedFd<'_>,
        entry: Listed<'_>,
        rel: impl Fn() -> Vec<u8>,
        path: &[u8],
    ) -> Result<Option<Opened>, Error> {
        let name = entry.name;
        if let Some(opened) = open_listed(dir, entry, path)? {
            return Ok(Some(opened));
        }
        let os_name = std::ffi::OsStr::from_bytes(name);
        let follow = match self.scope {
            Scope::Unconfined => AtFlags::empty(),
            Scope::Confined(_) => AtFlags::AT_SYMLINK_NOFOLLOW,
        };
        let st = fstatat(dir, os_name, follow).map_err(|e| Error::os(path, e))?;
        if let Scope::Confined(root) = &self.scope
            && file_type(&st) == SFlag::S_IFLNK
        {
            let rel = rel();
            let target = root
                .open_beneath(&rel, OFlag::O_PATH, true)
                .map_err(|e| e.into_error(path))?;
            let st = fstat(&target).map_err(|e| Error::os(path, e))?;
            if !is_dir(&st) && !is_regular(&st) {
                return Ok(None);
            }
            return open_beneath_checked(root, &rel, &st, path).map(Some);
        }
        if !is_dir(&st) && !is_regular(&st) {
            return Ok(None);
        }
        open_checked(dir, name, &st, path, self.scope.is_confined()).map(Some)
    }

    /// The name as it goes on the wire: a newline is encoded as `\^J`, as
    /// OpenSSH does; other control bytes would reach the client's terminal
    /// and are refused (§h.8). `None`: refused and reported.
    fn name_for_wire<'n>(
        &mut self,
        name: &'n [u8],
        path: &[u8],
    ) -> Result<Option<Cow<'n, [u8]>>, PeerStopped> {
        if name.iter().any(|&b| (b < 0x20 && b != b'\n') || b == 0x7f) {
            self.warn(Error::ControlCharacters {
                path: DisplayPath(path.to_vec()),
            })?;
            return Ok(None);
        }
        if !name.contains(&b'\n') {
            return Ok(Some(Cow::Borrowed(name)));
        }
        let mut wire = Vec::with_capacity(name.len() + 2);
        for &b in name {
            if b == b'\n' {
                wire.extend_from_slice(b"\\^J");
            } else {
                wire.push(b);
            }
        }
        Ok(Some(Cow::Owned(wire)))
    }

    fn send_times(&mut self, st: &FileStat) -> Result<bool, PeerStopped> {
        let (mtime, atime) = (st.st_mtime, st.st_atime);
        self.send_encoded(|line| write_times_record(line, mtime, atime))
    }

    /// `send_record` for a record built by `encode` in the reused buffer.
    fn send_encoded(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> Result<bool, PeerStopped> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        encode(&mut line);
        let accepted = self.send_record(&line);
        self.line = line;
        accepted
    }

    /// Sends one record and waits for the peer's verdict: `true` accepted,
    /// `false` refused with a warning (skip this item).
    fn send_record(&mut self, record: &[u8]) -> Result<bool, PeerStopped> {
        if self.opts.verbose {
            eprintln!(
                "Sending file modes: {}",
                crate::protocol::escape_bytes(record.strip_suffix(b"\n").unwrap_or(record))
            );
        }
        self.out.send(record).map_err(|_| PeerStopped)?;
        self.await_reply()
    }

    /// Reads the peer's reply: `\0` → accepted; a warning counts as an error
    /// and refuses the item; anything else ends the session.
    fn await_reply(&mut self) -> Result<bool, PeerStopped> {
        match self.reader.read_status() {
            Ok(Status::Ok) => Ok(true),
            Ok(Status::Warning(_)) => {
                self.errors += 1;
                Ok(false)
            }
            _ => Err(PeerStopped),
        }
    }

    /// A `\x01` line in place of a record; the peer does not reply to it.
    fn warn(&mut self, e: Error) -> Result<(), PeerStopped> {
        audit::problem(&e);
        self.report(e)
    }

    /// `warn` for a file whose audit event carries its size, mode and the
    /// bytes that had been sent.
    fn warn_file(&mut self, file: &FileAudit, bytes: u64, e: Error) -> Result<(), PeerStopped> {
        file.failed(bytes, &e);
        self.report(e)
    }

    fn report(&mut self, e: Error) -> Result<(), PeerStopped> {
        self.errors += 1;
        self.out.warn(&e).map_err(|_| PeerStopped)
    }
}

fn strip_trailing_slashes(path: &[u8]) -> &[u8] {
    let mut end = path.len();
    while end > 1 && path[end - 1] == b'/' {
        end -= 1;
    }
    &path[..end]
}

/// A directory's own name: the entry of its parent (`..`, by descriptor)
/// that is the same (dev, ino). `None` at the filesystem's root, whose
/// parent is itself.
fn name_in_parent(dir: &Opened) -> Option<Vec<u8>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let parent = openat(&dir.fd, "..", flags, Mode::empty()).ok()?;
    let parent_st = fstat(&parent).ok()?;
    if (parent_st.st_dev, parent_st.st_ino) == (dir.st.st_dev, dir.st.st_ino) {
        return None;
    }
    let id = (dir.st.st_dev, dir.st.st_ino);
    let listing = list_entries(parent.as_fd()).ok()?;
    let found = listing.iter().map(|entry| entry.name).find(|name| {
        fstatat(
            &parent,
            std::ffi::OsStr::from_bytes(name),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok_and(|st| (st.st_dev, st.st_ino) == id)
    });
    found.map(<[u8]>::to_vec)
}

/// A directory entry with the type the listing gave for it, if any.
#[derive(Clone, Copy)]
struct Listed<'a> {
    name: &'a [u8],
    kind: Option<Type>,
}

/// The entries of a directory: their names side by side in one buffer
/// (one allocation per directory, not one per entry).
struct Listing {
    names: Vec<u8>,
    /// Start and length in `names`, and the type from the listing.
    entries: Vec<(usize, usize, Option<Type>)>,
}

impl Listing {
    fn iter(&self) -> impl Iterator<Item = Listed<'_>> {
        self.entries.iter().map(|&(start, len, kind)| Listed {
            name: &self.names[start..start + len],
            kind,
        })
    }
}

/// The entries of a directory, sorted bytewise so that transfers are
/// reproducible (OpenSSH sends raw readdir order; clients do not care).
fn list_entries(dir: BorrowedFd<'_>) -> Result<Listing, Errno> {
    let mut listing = nix::dir::Dir::from_fd(reopen_dir_readable(dir)?)?;
    let mut names = Vec::new();
    let mut entries = Vec::new();
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            entries.push((names.len(), name.len(), entry.file_type()));
            names.extend_from_slice(name);
        }
    }
    let name = |&(start, len, _): &(usize, usize, Option<Type>)| &names[start..start + len];
    entries.sort_unstable_by(|a, b| name(a).cmp(name(b)));
    Ok(Listing { names, entries })
}

/// Opens an entry the listing reported as a regular file or a directory
/// without looking at it first: the listing's type (`d_type`) already rules
/// out a symlink, a FIFO and a device, and the open refuses to follow a
/// symlink (`O_NOFOLLOW`) should the entry have been replaced since.
/// `Ok(None)`: the listing gave no such type, or the entry is a symlink by
/// now; the caller then takes the long way (look, then open). An object of
/// another type than listed is skipped, as a swap between look and open is.
fn open_listed(
    dir: BorrowedFd<'_>,
    entry: Listed<'_>,
    path: &[u8],
) -> Result<Option<Opened>, Error> {
    let kind = match entry.kind {
        Some(Type::File) => OFlag::O_NONBLOCK,
        Some(Type::Directory) => OFlag::O_DIRECTORY,
        _ => return Ok(None),
    };
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | kind;
    let fd = match openat(
        dir,
        std::ffi::OsStr::from_bytes(entry.name),
        flags,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ELOOP | Errno::ENOTDIR) => return Ok(None),
        Err(errno) => return Err(Error::os(path, errno)),
    };
    let st = fstat(&fd).map_err(|e| Error::os(path, e))?;
    let as_listed = match entry.kind {
        Some(Type::Directory) => is_dir(&st),
        _ => is_regular(&st),
    };
    if !as_listed {
        return Err(Error::ChangedWhileOpening {
            path: DisplayPath(path.to_vec()),
        });
    }
    Ok(Some(Opened { fd, st }))
}
