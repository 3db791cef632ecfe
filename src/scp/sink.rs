//! `-t`: records from the session's stdin become files and directories.
//!
//! The conversation is OpenSSH's (PROTOCOL.md §a.3, §b); what lands on disk
//! follows DESIGN.md's filesystem rules: a new regular file is written to
//! an unnamed file (`O_TMPFILE`) and linked under its name, a replacement
//! to a temporary file beside its target and renamed over it, each only
//! after the last byte and the sender's `\0`, so an interrupted upload
//! never leaves a partial file where a good one stood, nor a partial new
//! one under its name.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat, futimens, mkdirat};

use crate::audit::{self, Checksum, FileAudit};
use crate::confine::{
    DirFd, ResolveError, Scope, check_single_component, check_storable_name, join_display,
    join_rel, normalize_rel, split_parent,
};
use crate::error::{DisplayPath, Error, Refusal};
use crate::files::upload::{
    self, Destination, Finish, NewFileMode, Rules, Target, is_type, timespec,
};
use crate::limits::{Limits, Quota};
use crate::protocol::{
    Line, Record, RecordReader, ReplyWriter, Status, Times, escape_bytes, parse_record,
};
use crate::transfer::{DataPath, Incomplete, SessionStream};

/// The policy's deny patterns as a question: which pattern, if any, does
/// this normalised path beneath the root match?
pub type DenyCheck = Box<dyn Fn(&[u8]) -> Option<String> + Send>;

/// What the invocation asks of the sink.
pub struct SinkOptions {
    pub recursive: bool,
    pub preserve: bool,
    pub target_must_be_dir: bool,
    pub verbose: bool,
    /// Removed from the modes of new files and directories: the inherited
    /// umask without `-p`, the policy's explicit umask (or none) with it.
    pub umask: u32,
    /// The umask the kernel applies to what this process creates (the
    /// inherited one): a new file created with its final mode needs no
    /// chmod when this umask keeps every bit of it.
    pub creation_umask: u32,
    /// Bits a received mode may keep: 0777, or 07777 with `--allow-setid`.
    pub mode_mask: u32,
    /// Directory levels allowed below the target.
    pub max_depth: usize,
    /// Publish only where nothing exists yet, decided by the kernel.
    pub no_overwrite: bool,
    /// fsync each file, then its directory, before and after the rename.
    pub fsync: bool,
    pub limits: Limits,
    /// The policy's deny patterns: the pattern a path beneath the root
    /// matches, if any.
    pub denied: DenyCheck,
}

/// Why a session stopped early.
enum Stop {
    /// Tell the peer why (one `\x01` line), then exit 1.
    Fatal(Error),
    /// Exit 1 without a word: the peer gave up or is gone.
    Silent,
}

/// How one directory level ended.
enum LevelEnd {
    /// An `E` record (already acknowledged).
    EndRecord,
    /// End of stream.
    EndOfStream,
}

/// Where the records of one level go.
enum Level {
    /// Inside this directory: each record's name is an entry in it. `rel`
    /// is the directory beneath the root (confined sessions).
    Into {
        dir: OwnedFd,
        path: Vec<u8>,
        rel: Vec<u8>,
        /// Set when this session created the directory.
        fresh: Option<FreshNames>,
    },
    /// The top level when the target is not a directory: every `C` writes
    /// the target itself and a `D` creates it; record names are ignored
    /// (PROTOCOL.md S110, S38).
    Target {
        parent: Result<OwnedFd, Errno>,
        leaf: Vec<u8>,
        path: Vec<u8>,
        rel: Vec<u8>,
    },
}

/// One entry a record refers to: a name in an open directory.
struct Entry<'a> {
    dir: BorrowedFd<'a>,
    name: &'a [u8],
    /// The path as the client's messages show it.
    path: Vec<u8>,
    /// The entry beneath the root, normalised (for deny patterns).
    rel: Vec<u8>,
    /// Whether the record's own name is used (and so must be storable).
    uses_record_name: bool,
}

impl Level {
    fn entry<'a>(&'a self, record_name: &'a [u8]) -> Result<Entry<'a>, Error> {
        match self {
            Level::Into { dir, path, rel, .. } => Ok(Entry {
                dir: dir.as_fd(),
                name: record_name,
                path: join_display(path, record_name),
                rel: join_rel(rel, record_name),
                uses_record_name: true,
            }),
            Level::Target {
                parent,
                leaf,
                path,
                rel,
            } => match parent {
                Ok(dir) => Ok(Entry {
                    dir: dir.as_fd(),
                    name: leaf,
                    path: path.clone(),
                    rel: rel.clone(),
                    uses_record_name: false,
                }),
                Err(errno) => Err(Error::os(path, *errno)),
            },
        }
    }

    /// Whether `name` is certainly free in this level's directory: the
    /// session created the directory and has not used the name in it yet.
    /// Records the name either way.
    fn claim_fresh_name(&self, name: &[u8]) -> bool {
        match self {
            Level::Into {
                fresh: Some(fresh), ..
            } => fresh.claim(name),
            _ => false,
        }
    }

    /// Depth of the directories a `D` at this level opens: at the top level
    /// of a missing target the `D` creates the target itself (level 0).
    fn nested_depth(&self, depth: usize) -> usize {
        match self {
            Level::Into { .. } => depth + 1,
            Level::Target { .. } => depth,
        }
    }
}

/// The names used so far in a directory this session created. Until a name
/// is used, nothing can stand under it but what another process put there
/// meanwhile, and a new file is linked without replacing anything (the
/// kernel answers `EEXIST` then), so the look at the target that every
/// other upload starts with can be skipped: one lookup less per file of a
/// recursive upload. Names are kept as 64-bit hashes; a collision only
/// costs that look. Past `FRESH_NAMES_TRACKED` names the directory is
/// treated like any other, which bounds the memory.
#[derive(Default)]
struct FreshNames {
    hashes: RefCell<HashSet<u64>>,
    gave_up: Cell<bool>,
}

const FRESH_NAMES_TRACKED: usize = 1 << 14;

impl FreshNames {
    fn claim(&self, name: &[u8]) -> bool {
        if self.gave_up.get() {
            return false;
        }
        let mut hashes = self.hashes.borrow_mut();
        if hashes.len() >= FRESH_NAMES_TRACKED {
            *hashes = HashSet::new();
            self.gave_up.set(true);
            return false;
        }
        let mut hasher = DefaultHasher::new();
        name.hash(&mut hasher);
        hashes.insert(hasher.finish())
    }
}

/// Runs a whole sink session on the given streams; returns the exit status.
pub fn run<R: Read + SessionStream, W: Write + SessionStream>(
    target: &[u8],
    scope: Scope,
    opts: SinkOptions,
    reader: RecordReader<R>,
    out: W,
    data: DataPath,
) -> i32 {
    let mut sink = Sink {
        quota: Quota::new(opts.limits),
        scope,
        opts,
        reader,
        out: ReplyWriter::new(out),
        data,
        errors: 0,
    };
    sink.session(target)
}

struct Sink<R, W> {
    scope: Scope,
    opts: SinkOptions,
    quota: Quota,
    reader: RecordReader<R>,
    out: ReplyWriter<W>,
    data: DataPath,
    errors: u32,
}

impl<R: Read + SessionStream, W: Write + SessionStream> Sink<R, W> {
    fn session(&mut self, target: &[u8]) -> i32 {
        let level = match self.top_level(target) {
            Ok(level) => level,
            Err(e) => {
                audit::session_error(&e);
                let _ = self.out.warn(&e);
                return 1;
            }
        };
        if self.out.ok().is_err() {
            return 1;
        }
        match self.run_level(&level, 0) {
            Ok(_) if self.errors == 0 => 0,
            Ok(_) | Err(Stop::Silent) => 1,
            Err(Stop::Fatal(e)) => {
                audit::session_error(&e);
                let _ = self.out.warn(&e);
                1
            }
        }
    }

    /// Reads and applies the records of one directory level until its `E`
    /// (or, at the top, the end of the stream).
    fn run_level(&mut self, level: &Level, depth: usize) -> Result<LevelEnd, Stop> {
        let mut pending_times: Option<Times> = None;
        let mut first = true;
        loop {
            let line = match self.reader.read_line() {
                Ok(Line::Record(line)) => line,
                Ok(Line::Eof) => return self.end_of_stream(level, depth),
                Err(e) => return Err(Stop::Fatal(e.into())),
            };
            if self.opts.verbose {
                eprintln!("Sink: {}", escape_bytes(&line));
            }
            let record = parse_record(&line, first).map_err(|e| Stop::Fatal(e.into()))?;
            first = false;
            match record {
                Record::Warning(_) => self.errors += 1,
                Record::Fatal(_) => return Err(Stop::Silent),
                Record::Times(times) => {
                    pending_times = Some(times);
                    self.reply_ok()?;
                }
                Record::End => {
                    self.reply_ok()?;
                    return Ok(LevelEnd::EndRecord);
                }
                Record::File { mode, size, name } => {
                    // A T record belongs to the very next C or D only (§h.7).
                    let times = pending_times.take();
                    self.receive_file(level, mode, size, &name, times)?;
                }
                Record::Dir { mode, name } => {
                    let times = pending_times.take();
                    self.receive_dir(level, depth, mode, &name, times)?;
                }
            }
        }
    }

    /// EOF is the normal end at the top level; inside a directory it means
    /// the transfer was cut short (OpenSSH exits 0 there, §h.5).
    fn end_of_stream(&self, level: &Level, depth: usize) -> Result<LevelEnd, Stop> {
        match level {
            Level::Into { path, .. } if depth > 0 => {
                let (_, name) = split_parent(path);
                Err(Stop::Fatal(Error::ClosedInsideDirectory {
                    name: name.to_vec(),
                }))
            }
            _ => Ok(LevelEnd::EndOfStream),
        }
    }

    fn receive_file(
        &mut self,
        level: &Level,
        mode: u32,
        size: u64,
        name: &[u8],
        times: Option<Times>,
    ) -> Result<(), Stop> {
        check_single_component(name).map_err(Stop::Fatal)?;
        let entry = match level.entry(name) {
            Ok(entry) => entry,
            Err(e) => return self.skip(e),
        };
        let upload = FileAudit::begin(&entry.path, size, mode);
        let certainly_new = level.claim_fresh_name(name);
        if let Err(e) = self.check_entry(&entry, name) {
            return self.skip_file(&upload, 0, e);
        }
        if let Err(e) = self.quota.admit(&entry.path, size) {
            return self.skip_file(&upload, 0, e);
        }
        let opened = if certainly_new {
            self.new_file(
                DirFd::Borrowed(entry.dir),
                entry.name.to_vec(),
                &entry.path,
                mode,
            )
        } else {
            self.open_destination(&entry, mode)
        };
        let dest = match opened {
            Ok(dest) => dest,
            Err(e) => return self.skip_file(&upload, 0, e),
        };
        self.reply_ok()?;
        let mut checksum = Checksum::if_wanted();
        let received = match self.data.receive(
            &mut self.reader,
            Some(dest.data_fd()),
            size,
            checksum.as_mut(),
        ) {
            Ok(received) => received,
            Err(Incomplete { received }) => {
                dest.discard();
                let path = DisplayPath(entry.path.clone());
                let e = Error::UploadIncomplete {
                    path,
                    received,
                    size,
                };
                upload.failed(received, &e);
                return Err(Stop::Fatal(e));
            }
        };
        let sender_end = match self.expect_sender_ok(&entry.path) {
            Ok(end) => end,
            Err(stop) => {
                dest.discard();
                return match stop {
                    Some(e) => self.skip_file(&upload, size, e),
                    None => {
                        upload.interrupted(Some(size));
                        Err(Stop::Silent)
                    }
                };
            }
        };
        if let Some(errno) = received.write_error {
            dest.discard();
            let skipped = self.skip_file(&upload, size, Error::os(&entry.path, errno));
            return sender_end.then_continue(skipped);
        }
        let finish = Finish {
            mode: self.final_file_mode(mode, dest.existing()),
            set_mode: self.opts.preserve || dest.is_new(),
            times,
            size,
            no_overwrite: self.opts.no_overwrite,
            fsync: self.opts.fsync,
            owner: None,
            // OpenSSH's sink writes over the old file in place.
            keep_atime: true,
        };
        match dest.finish(&finish, &entry.path) {
            Ok(()) => {
                self.quota.record(size);
                upload.ok(size, checksum.map(Checksum::finish));
                match sender_end {
                    SenderEnd::Confirmed => self.reply_ok(),
                    // Nobody is left to read a reply (OpenSSH sends none).
                    SenderEnd::ClosedAfterData => Err(Stop::Silent),
                }
            }
            Err(e) => {
                let skipped = self.skip_file(&upload, size, e);
                sender_end.then_continue(skipped)
            }
        }
    }

    /// Name and policy checks for an entry a record would create or write.
    fn check_entry(&self, entry: &Entry<'_>, record_name: &[u8]) -> Result<(), Error> {
        if entry.uses_record_name {
            check_storable_name(record_name, &entry.path)?;
        }
        // `entry.rel` is normalised already: a level's `rel` is, and the
        // name joined to it is a single plain component.
        if let Some(pattern) = (self.opts.denied)(&entry.rel) {
            return Err(Error::Refused {
                path: DisplayPath(entry.path.clone()),
                why: Refusal::Denied { pattern },
            });
        }
        Ok(())
    }

    /// Reads the sender's status after the data. `Err(Some(e))`: the sender
    /// disowned the file (reply with `e` and go on); `Err(None)`: it gave up
    /// (stop). A `\0` publishes the file (§h.2), and so does the end of the
    /// stream right here, after every announced byte: libssh2 (curl's
    /// `scp://`, PHP's ssh2, ...) never sends that `\0` and closes the channel
    /// instead, and OpenSSH's sink keeps such a file. Nothing was disowned and
    /// nothing is missing, so discarding it would lose every libssh2 upload.
    fn expect_sender_ok(&mut self, path: &[u8]) -> Result<SenderEnd, Option<Error>> {
        match self.reader.read_status() {
            Ok(Status::Ok) => Ok(SenderEnd::Confirmed),
            Ok(Status::Eof) => Ok(SenderEnd::ClosedAfterData),
            Ok(Status::Warning(message)) => Err(Some(Error::SenderDisowned {
                path: DisplayPath(path.to_vec()),
                message,
            })),
            _ => Err(None),
        }
    }

    fn receive_dir(
        &mut self,
        level: &Level,
        depth: usize,
        mode: u32,
        name: &[u8],
        times: Option<Times>,
    ) -> Result<(), Stop> {
        check_single_component(name).map_err(Stop::Fatal)?;
        if !self.opts.recursive {
            return Err(Stop::Fatal(Error::DirectoryWithoutRecursion));
        }
        let nested_depth = level.nested_depth(depth);
        if nested_depth > self.opts.max_depth {
            return Err(Stop::Fatal(Error::TooDeep {
                max: self.opts.max_depth,
            }));
        }
        let entry = match level.entry(name) {
            Ok(entry) => entry,
            Err(e) => return self.skip(e),
        };
        // The name is taken from here on, whatever the D leads to.
        level.claim_fresh_name(name);
        if let Err(e) = self.check_entry(&entry, name) {
            return self.skip(e);
        }
        let final_mode = self.final_dir_mode(mode);
        let (dir, created) = match self.open_or_create_dir(&entry, final_mode) {
            Ok(found) => found,
            Err(e) => return self.skip(e),
        };
        if self.opts.preserve && !created {
            // OpenSSH sets an existing directory's mode before filling it
            // too, so that a mode granting write access takes effect first.
            let _ = fchmod(&dir, Mode::from_bits_truncate(final_mode));
        }
        self.reply_ok()?;
        let nested = Level::Into {
            dir,
            path: entry.path,
            rel: entry.rel,
            fresh: created.then(FreshNames::default),
        };
        if let LevelEnd::EndOfStream = self.run_level(&nested, nested_depth)? {
            return Ok(());
        }
        let Level::Into { dir, .. } = &nested else {
            unreachable!()
        };
        // Directory metadata errors are ignored, as in OpenSSH (S93).
        if let Some(times) = times {
            let _ = futimens(
                dir,
                &timespec(times.atime_sec, times.atime_usec),
                &timespec(times.mtime_sec, times.mtime_usec),
            );
        }
        if created || self.opts.preserve {
            let _ = fchmod(dir, Mode::from_bits_truncate(final_mode));
        }
        Ok(())
    }

    /// The mode a received file ends with: with `-p` the record's mode; a
    /// new file without `-p` the record's mode under the umask; a replaced
    /// file without `-p` keeps its old mode. Setuid, setgid and sticky are
    /// never granted unless the policy allows them (§h.6).
    fn final_file_mode(&self, record_mode: u32, existing: Option<&FileStat>) -> u32 {
        let mode = match existing {
            _ if self.opts.preserve => record_mode & !self.opts.umask,
            Some(old) => old.st_mode & 0o7777,
            None => record_mode & !self.opts.umask,
        };
        mode & self.opts.mode_mask
    }

    fn final_dir_mode(&self, record_mode: u32) -> u32 {
        // With -p the umask is the policy's explicit one (or none).
        let mode = record_mode & !self.opts.umask;
        mode & self.opts.mode_mask
    }

    /// One look at the target decides, for the whole session, whether
    /// records land inside it or replace it (as OpenSSH's one `stat()`,
    /// S102). `-d` requires a directory. A target that leaves the root is
    /// refused here, before the first `\0`.
    fn top_level(&self, target: &[u8]) -> Result<Level, Error> {
        let path = target.to_vec();
        let rel = normalize_rel(target);
        let refused = |e: ResolveError| e.into_error(target);
        match self.scope.open_dir(target) {
            Ok(dir) => {
                return Ok(Level::Into {
                    dir,
                    path,
                    rel,
                    fresh: None,
                });
            }
            Err(e @ (ResolveError::Escapes { .. } | ResolveError::SymlinkRefused { .. })) => {
                return Err(refused(e));
            }
            Err(ResolveError::Os(errno)) if self.opts.target_must_be_dir => {
                return Err(Error::os(target, errno));
            }
            Err(_) => {}
        }
        let (parent, leaf) = split_parent(target);
        let parent = match self.scope.open_dir(parent) {
            Ok(fd) => Ok(fd),
            Err(ResolveError::Os(errno)) => Err(errno),
            Err(e) => return Err(refused(e)),
        };
        Ok(Level::Target {
            parent,
            leaf: leaf.to_vec(),
            path,
            rel,
        })
    }

    /// Opens what a `C` record writes to (files::upload decides how).
    fn open_destination<'a>(
        &self,
        entry: &Entry<'a>,
        record_mode: u32,
    ) -> Result<Destination<'a>, Error> {
        let target = Target {
            dir: DirFd::Borrowed(entry.dir),
            name: entry.name,
            path: &entry.path,
        };
        upload::open_destination(
            target,
            &self.upload_rules(),
            self.new_file_mode(record_mode),
        )
    }

    /// A destination for a name known to be free.
    fn new_file<'a>(
        &self,
        dir: DirFd<'a>,
        name: Vec<u8>,
        path: &[u8],
        record_mode: u32,
    ) -> Result<Destination<'a>, Error> {
        upload::new_file(dir, name, path, self.new_file_mode(record_mode))
    }

    fn upload_rules(&self) -> Rules {
        Rules {
            confined: self.scope.is_confined(),
            no_overwrite: self.opts.no_overwrite,
            no_symlinks: self.scope.refuses_symlinks(),
            read_back: false,
        }
    }

    fn new_file_mode(&self, record_mode: u32) -> NewFileMode {
        NewFileMode {
            mode: self.final_file_mode(record_mode, None),
            creation_umask: self.opts.creation_umask,
        }
    }

    /// Opens the directory a `D` record names, creating it when it is
    /// missing with its mode plus owner rwx (so that it can be filled; the
    /// exact mode is set after its `E`), as OpenSSH does. Returns the
    /// descriptor and whether it was created.
    fn open_or_create_dir(&self, entry: &Entry<'_>, mode: u32) -> Result<(OwnedFd, bool), Error> {
        if self.scope.refuses_symlinks() {
            refuse_symlink_name(entry)?;
        }
        match self.scope.open_subdir(entry.dir, entry.name, &entry.rel) {
            Ok(fd) => return Ok((fd, false)),
            Err(ResolveError::Os(Errno::ENOENT)) => {}
            Err(e) => return Err(e.into_error(&entry.path)),
        }
        let name = std::ffi::OsStr::from_bytes(entry.name);
        // A dangling symlink at the name makes mkdir fail, as in OpenSSH.
        mkdirat(entry.dir, name, Mode::from_bits_truncate(mode | 0o700))
            .map_err(|e| Error::os(&entry.path, e))?;
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd =
            openat(entry.dir, name, flags, Mode::empty()).map_err(|e| Error::os(&entry.path, e))?;
        Ok((fd, true))
    }

    fn reply_ok(&mut self) -> Result<(), Stop> {
        self.out.ok().map_err(|_| Stop::Silent)
    }

    /// Reports a per-item problem with one `\x01` line and goes on.
    fn skip(&mut self, e: Error) -> Result<(), Stop> {
        audit::problem(&e);
        self.report(e)
    }

    /// `skip` for a file whose audit event carries its size, mode and the
    /// bytes that had arrived.
    fn skip_file(&mut self, file: &FileAudit, bytes: u64, e: Error) -> Result<(), Stop> {
        file.failed(bytes, &e);
        self.report(e)
    }

    fn report(&mut self, e: Error) -> Result<(), Stop> {
        self.errors += 1;
        self.out.warn(&e).map_err(|_| Stop::Silent)
    }
}

/// How the sender ended a file whose data all arrived.
#[derive(Clone, Copy)]
enum SenderEnd {
    /// The `\0` status: reply and read the next record.
    Confirmed,
    /// The stream ended instead of the status (libssh2). The file is kept,
    /// but nobody is left to reply to and no record can follow: the session
    /// ends with exit 1, as OpenSSH's sink ends it (its `response()` sees
    /// the lost connection and exits 1 after the file is written). The
    /// status byte of the protocol never came, so the session did not end
    /// as the protocol says, and the exit status tells sshd's log and any
    /// wrapper the same as OpenSSH's would.
    ClosedAfterData,
}

impl SenderEnd {
    /// What comes after a file's error line: the next record, or, when the
    /// sender is gone, the end of the session.
    fn then_continue(self, after_file: Result<(), Stop>) -> Result<(), Stop> {
        match self {
            SenderEnd::Confirmed => after_file,
            SenderEnd::ClosedAfterData => Err(Stop::Silent),
        }
    }
}

/// `--no-symlinks` for a `D` record: its own name being a symlink (to a
/// directory, a file, or nothing) is refused by name, with the message of
/// every other symlink on the way, before anything follows it or trips
/// over it (`Not a directory`, `File exists`).
fn refuse_symlink_name(entry: &Entry<'_>) -> Result<(), Error> {
    let name = std::ffi::OsStr::from_bytes(entry.name);
    match fstatat(entry.dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if is_type(&st, SFlag::S_IFLNK) => Err(Error::SymlinkRefused {
            path: DisplayPath(entry.path.clone()),
            link: DisplayPath(entry.name.to_vec()),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_name_is_certain_once() {
        let fresh = FreshNames::default();
        assert!(fresh.claim(b"a"));
        assert!(fresh.claim(b"b"));
        assert!(!fresh.claim(b"a"), "a name used before must be looked at");
    }

    #[test]
    fn past_the_bound_every_name_is_looked_at() {
        let fresh = FreshNames::default();
        for n in 0..FRESH_NAMES_TRACKED {
            assert!(fresh.claim(format!("f{n}").as_bytes()));
        }
        assert!(!fresh.claim(b"one more"));
        assert!(!fresh.claim(b"and another"));
        assert!(fresh.hashes.borrow().is_empty(), "the hashes are let go");
    }
}
