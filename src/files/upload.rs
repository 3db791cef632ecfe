//! Uploads, for both protocols: where an upload's bytes go (an unnamed
//! file, a temporary file beside its target, or the target itself where
//! nothing else is possible), and how a finished upload takes its name
//! (link, rename, `RENAME_NOREPLACE`) or is discarded. The rules are
//! DESIGN.md's "Filesystem rules"; the SCP sink and the SFTP server both
//! call these functions, and neither writes a file any other way.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AtFlags, FcntlArg, OFlag, fcntl, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, futimens};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchown, ftruncate};

use crate::confine::{
    DirFd, create_temp_file, create_unnamed_file, follow_final_symlinks, link_unnamed_file,
    remove_temp_file, rename_noreplace, reopen_dir_readable,
};
use crate::error::{DisplayPath, Error, Refusal};
use crate::protocol::Times;

/// The entry an upload writes: `name` in the open directory `dir`; `path`
/// is how the client's messages show it.
pub struct Target<'a, 'n> {
    pub dir: DirFd<'a>,
    pub name: &'n [u8],
    pub path: &'n [u8],
}

/// The parts of the policy that decide where an upload may go.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rules {
    /// Beneath a root: symlinks at the name are never written through and
    /// only regular files are replaced.
    pub confined: bool,
    /// Publish only where nothing exists, decided by the kernel.
    pub no_overwrite: bool,
    /// A symlink at the name is refused, not replaced.
    pub no_symlinks: bool,
    /// The client may read what it writes (SFTP READ|WRITE): a file
    /// written in place is opened for reading too.
    pub read_back: bool,
}

/// The mode a new file is created with, and the umask the kernel applies
/// to what this process creates (when it keeps every bit of the mode, no
/// chmod is needed later).
#[derive(Clone, Copy, Debug)]
pub struct NewFileMode {
    pub mode: u32,
    pub creation_umask: u32,
}

/// Opens what an upload writes to. An existing regular file must be
/// openable for writing, exactly as OpenSSH requires, before it may be
/// replaced: a rename must not widen what the user could do (§h.4).
/// Confined sessions never write through a symlink (it is replaced) and
/// never write to anything but a regular file.
/// With `no_symlinks`, a symlink at the name is refused instead.
pub fn open_destination<'a>(
    entry: Target<'a, '_>,
    rules: &Rules,
    new_mode: NewFileMode,
) -> Result<Destination<'a>, Error> {
    let access = if rules.read_back {
        OFlag::O_RDWR
    } else {
        OFlag::O_WRONLY
    };
    let flags = access | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let open = |dir: BorrowedFd<'_>, name: &[u8]| {
        openat(dir, std::ffi::OsStr::from_bytes(name), flags, Mode::empty())
    };
    // Unconfined, the open itself tells whether the name is a symlink
    // (ELOOP under O_NOFOLLOW); only then is the chain followed, to
    // where OpenSSH would write. Confined, the entry is looked at
    // before anything is opened (opening a device can have effects).
    let (dir, name, opened) = if rules.confined {
        (entry.dir, entry.name.to_vec(), None)
    } else {
        match open(entry.dir.as_fd(), entry.name) {
            Err(Errno::ELOOP) => {
                let (found, name) = follow_final_symlinks(entry.dir.as_fd(), entry.name)
                    .map_err(|e| Error::os(entry.path, e))?;
                let dir = match found {
                    DirFd::Owned(fd) => DirFd::Owned(fd),
                    DirFd::Borrowed(_) => entry.dir,
                };
                let opened = open(dir.as_fd(), &name);
                (dir, name, Some(opened))
            }
            opened => (entry.dir, entry.name.to_vec(), Some(opened)),
        }
    };
    let os_name = std::ffi::OsStr::from_bytes(&name);
    let refuse = |why| Error::Refused {
        path: DisplayPath(entry.path.to_vec()),
        why,
    };
    if rules.confined {
        match fstatat(dir.as_fd(), os_name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            // --no-symlinks: not even replacing one is allowed.
            Ok(st) if is_type(&st, SFlag::S_IFLNK) && rules.no_symlinks => {
                return Err(refuse(Refusal::SymlinkTarget));
            }
            Ok(_) if rules.no_overwrite => return Err(refuse(Refusal::WouldOverwrite)),
            Ok(st) if is_type(&st, SFlag::S_IFLNK) => {
                return new_atomic(dir, name, entry.path);
            }
            Ok(st) if !is_type(&st, SFlag::S_IFREG) && !is_type(&st, SFlag::S_IFDIR) => {
                return Err(refuse(Refusal::NotRegularTarget));
            }
            _ => {}
        }
    }
    let opened = opened.unwrap_or_else(|| open(dir.as_fd(), &name));
    let fd = match opened {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return new_file(dir, name, entry.path, new_mode),
        // A running executable cannot be opened for writing, but it can
        // be replaced, which is what an upload over it means.
        Err(Errno::ETXTBSY) => return replace_busy_file(dir, name, entry.path),
        Err(Errno::ENXIO) => return Err(explain_enxio(dir.as_fd(), os_name, entry.path)),
        Err(errno) => return Err(Error::os(entry.path, errno)),
    };
    let st = fstat(&fd).map_err(|e| Error::os(entry.path, e))?;
    if rules.no_overwrite {
        return Err(refuse(Refusal::WouldOverwrite));
    }
    if !is_type(&st, SFlag::S_IFREG) {
        if rules.confined {
            return Err(refuse(Refusal::NotRegularTarget));
        }
        // Devices and FIFOs are written in place; the FIFO was opened
        // non-blocking so that a missing reader cannot hang us.
        fcntl(&fd, FcntlArg::F_SETFL(access)).map_err(|e| Error::os(entry.path, e))?;
        return Ok(Destination::InPlace {
            file: fd,
            regular: false,
            existing: st,
        });
    }
    match create_temp_file(dir.as_fd()) {
        Ok((file, temp_name)) => Ok(Destination::Atomic {
            dir,
            temp_name,
            file,
            final_name: name,
            existing: Some(st),
        }),
        // A confined upload never writes through a file that has other
        // hard links: they may lead outside the root.
        Err(Errno::EACCES | Errno::EPERM | Errno::EROFS) if rules.confined && st.st_nlink > 1 => {
            Err(refuse(Refusal::LinkedInPlace))
        }
        // The directory is not writable but the file is: write in place.
        Err(Errno::EACCES | Errno::EPERM | Errno::EROFS) => Ok(Destination::InPlace {
            file: fd,
            regular: true,
            existing: st,
        }),
        Err(errno) => Err(Error::os(entry.path, errno)),
    }
}

/// Where a new file's bytes go: an unnamed file linked at the end where
/// the kernel and filesystem allow it (created with its final mode, so
/// mostly without a chmod), else a named temporary file renamed.
pub fn new_file<'a>(
    dir: DirFd<'a>,
    name: Vec<u8>,
    path: &[u8],
    new_mode: NewFileMode,
) -> Result<Destination<'a>, Error> {
    let mode = new_mode.mode;
    match create_unnamed_file(dir.as_fd(), mode) {
        Some(file) => Ok(Destination::Unnamed {
            dir,
            file,
            final_name: name,
            mode_applied: mode & new_mode.creation_umask == 0,
        }),
        None => new_atomic(dir, name, path),
    }
}

pub fn is_type(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == kind
}

pub fn timespec(sec: i64, usec: u32) -> TimeSpec {
    TimeSpec::new(sec, i64::from(usec) * 1000)
}

/// Where an upload's bytes go.
pub enum Destination<'a> {
    /// A temporary file renamed over the target at the end.
    Atomic {
        dir: DirFd<'a>,
        temp_name: Vec<u8>,
        file: OwnedFd,
        final_name: Vec<u8>,
        existing: Option<FileStat>,
    },
    /// A new file without a name (`O_TMPFILE`) until it is complete, then
    /// linked under its name, never over anything. A failed upload leaves
    /// nothing behind, even when the process is killed.
    Unnamed {
        dir: DirFd<'a>,
        file: OwnedFd,
        final_name: Vec<u8>,
        /// Created with its final mode and the umask kept every bit of it:
        /// no chmod needed.
        mode_applied: bool,
    },
    /// Written where it stands: a device or FIFO, or a regular file whose
    /// directory we may not write (OpenSSH succeeds there, S108; this path
    /// is not atomic, and documented so).
    InPlace {
        file: OwnedFd,
        regular: bool,
        existing: FileStat,
    },
}

/// What to apply to a finished file.
pub struct Finish {
    pub mode: u32,
    pub set_mode: bool,
    pub times: Option<Times>,
    pub size: u64,
    pub no_overwrite: bool,
    pub fsync: bool,
    /// The owner the client asked for (SFTP); otherwise a replacement
    /// keeps the old file's where the process may set it.
    pub owner: Option<(u32, u32)>,
    /// A replacement takes the old file's access time when no times are
    /// set (see keep_access_time); false when the new content was read
    /// back, which is an access.
    pub keep_atime: bool,
}

impl Destination<'_> {
    pub fn data_fd(&self) -> BorrowedFd<'_> {
        match self {
            Destination::Atomic { file, .. }
            | Destination::Unnamed { file, .. }
            | Destination::InPlace { file, .. } => file.as_fd(),
        }
    }

    pub fn existing(&self) -> Option<&FileStat> {
        match self {
            Destination::Atomic { existing, .. } => existing.as_ref(),
            Destination::Unnamed { .. } => None,
            Destination::InPlace { existing, .. } => Some(existing),
        }
    }

    pub fn is_new(&self) -> bool {
        self.existing().is_none()
    }

    /// Drops a failed upload: the temporary file goes (an unnamed one with
    /// its descriptor), the target stays.
    pub fn discard(self) {
        if let Destination::Atomic { dir, temp_name, .. } = self {
            remove_temp_file(dir.as_fd(), &temp_name);
        }
    }

    /// Applies mode and times by descriptor and publishes the file. As in
    /// OpenSSH, only the first metadata error is reported (one reply per
    /// file, CVE-2020-12062); a metadata error does not undo the upload.
    pub fn finish(self, finish: &Finish, path: &[u8]) -> Result<(), Error> {
        match self {
            Destination::Atomic {
                dir,
                temp_name,
                file,
                final_name,
                existing,
            } => {
                let mut first_error = None;
                match (finish.owner, &existing) {
                    (Some((uid, gid)), _) => {
                        let owner =
                            fchown(&file, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
                        note(&mut first_error, path, "set owner", owner);
                    }
                    (None, Some(old)) => keep_owner(&file, old),
                    (None, None) => {}
                }
                apply_mode_and_times(&file, finish, true, path, &mut first_error);
                if let (None, true, Some(old)) = (finish.times, finish.keep_atime, &existing) {
                    keep_access_time(&file, old);
                }
                if finish.fsync
                    && let Err(errno) = nix::unistd::fsync(&file)
                {
                    remove_temp_file(dir.as_fd(), &temp_name);
                    return Err(Error::os_step(path, "fsync", errno));
                }
                drop(file);
                if let Err(e) = publish(
                    dir.as_fd(),
                    &temp_name,
                    &final_name,
                    finish.no_overwrite,
                    path,
                ) {
                    remove_temp_file(dir.as_fd(), &temp_name);
                    return Err(e);
                }
                published(dir.as_fd(), finish, path, first_error)
            }
            Destination::Unnamed {
                dir,
                file,
                final_name,
                mode_applied,
            } => {
                let mut first_error = None;
                apply_mode_and_times(&file, finish, !mode_applied, path, &mut first_error);
                if finish.fsync
                    && let Err(errno) = nix::unistd::fsync(&file)
                {
                    return Err(Error::os_step(path, "fsync", errno));
                }
                link_unnamed_file(&file, dir.as_fd(), &final_name).map_err(|errno| {
                    match errno {
                        Errno::EEXIST if finish.no_overwrite => Error::Refused {
                            path: DisplayPath(path.to_vec()),
                            why: Refusal::WouldOverwrite,
                        },
                        // Another process created the name during the
                        // upload: theirs stays.
                        errno => Error::os(path, errno),
                    }
                })?;
                published(dir.as_fd(), finish, path, first_error)
            }
            Destination::InPlace { file, regular, .. } => {
                let mut first_error = None;
                if regular {
                    let size = i64::try_from(finish.size).unwrap_or(i64::MAX);
                    note(&mut first_error, path, "truncate", ftruncate(&file, size));
                }
                apply_mode_and_times(&file, finish, finish.set_mode, path, &mut first_error);
                first_error.map_or(Ok(()), Err)
            }
        }
    }
}

/// Renames the finished temporary file over its target: with
/// `no_overwrite` the kernel refuses if anything exists there by then
/// (`RENAME_NOREPLACE`), not an earlier check.
fn publish(
    dir: BorrowedFd<'_>,
    temp: &[u8],
    target: &[u8],
    no_overwrite: bool,
    path: &[u8],
) -> Result<(), Error> {
    if no_overwrite {
        return rename_noreplace(dir, temp, target).map_err(|errno| match errno {
            Errno::EEXIST => Error::Refused {
                path: DisplayPath(path.to_vec()),
                why: Refusal::WouldOverwrite,
            },
            errno => Error::os(path, errno),
        });
    }
    let from = std::ffi::OsStr::from_bytes(temp);
    let to = std::ffi::OsStr::from_bytes(target);
    renameat(dir, from, dir, to).map_err(|e| Error::os(path, e))
}

/// The end of a file that has its name: with `fsync`, the directory entry
/// is made durable too; then the first metadata error, if any, is the
/// file's one reply.
fn published(
    dir: BorrowedFd<'_>,
    finish: &Finish,
    path: &[u8],
    mut first_error: Option<Error>,
) -> Result<(), Error> {
    if finish.fsync {
        note(&mut first_error, path, "fsync directory", fsync_dir(dir));
    }
    first_error.map_or(Ok(()), Err)
}

/// fsync of a directory needs a descriptor opened for reading (ours may be
/// `O_PATH`).
fn fsync_dir(dir: BorrowedFd<'_>) -> nix::Result<()> {
    nix::unistd::fsync(reopen_dir_readable(dir)?)
}

/// Mode and times by descriptor; the first failure is noted for the one
/// reply the file gets.
fn apply_mode_and_times(
    file: &OwnedFd,
    finish: &Finish,
    set_mode: bool,
    path: &[u8],
    first_error: &mut Option<Error>,
) {
    if set_mode {
        let mode = Mode::from_bits_truncate(finish.mode);
        note(first_error, path, "set mode", fchmod(file, mode));
    }
    if let Some(t) = finish.times {
        note(first_error, path, "set times", set_times(file, t));
    }
}

fn note(first: &mut Option<Error>, path: &[u8], step: &'static str, result: nix::Result<()>) {
    if let Err(errno) = result
        && first.is_none()
    {
        *first = Some(Error::os_step(path, step, errno));
    }
}

fn set_times(fd: &OwnedFd, t: Times) -> nix::Result<()> {
    set_times_fd(fd.as_fd(), t)
}

/// Access and modification times by descriptor.
pub fn set_times_fd(fd: BorrowedFd<'_>, t: Times) -> nix::Result<()> {
    futimens(
        fd,
        &timespec(t.atime_sec, t.atime_usec),
        &timespec(t.mtime_sec, t.mtime_usec),
    )
}

/// The replacement keeps the old file's owner and group where the process
/// may set them (root; or a group the user belongs to). Failure is normal
/// for an ordinary user and leaves the uploader as owner.
fn keep_owner(file: &OwnedFd, old: &FileStat) {
    let _ = fchown(
        file,
        Some(Uid::from_raw(old.st_uid)),
        Some(Gid::from_raw(old.st_gid)),
    );
}

/// The replacement keeps the old file's access time when the client sets
/// no times: OpenSSH writes over a file in place, which leaves its atime,
/// and the replacement should look the same afterwards. The mtime stays
/// the new file's own (its last write). Best effort: the content is
/// published either way.
fn keep_access_time(file: &OwnedFd, old: &FileStat) {
    let atime = TimeSpec::new(old.st_atime, old.st_atime_nsec);
    let _ = futimens(file, &atime, &TimeSpec::UTIME_OMIT);
}

/// A new temporary file for an entry that does not exist yet (or is a
/// symlink the upload replaces).
fn new_atomic<'a>(dir: DirFd<'a>, name: Vec<u8>, path: &[u8]) -> Result<Destination<'a>, Error> {
    let (file, temp_name) = create_temp_file(dir.as_fd()).map_err(|e| Error::os(path, e))?;
    Ok(Destination::Atomic {
        dir,
        temp_name,
        file,
        final_name: name,
        existing: None,
    })
}

fn replace_busy_file<'a>(
    dir: DirFd<'a>,
    name: Vec<u8>,
    path: &[u8],
) -> Result<Destination<'a>, Error> {
    let st = fstatat(
        dir.as_fd(),
        std::ffi::OsStr::from_bytes(&name),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::os(path, e))?;
    let (file, temp_name) = create_temp_file(dir.as_fd()).map_err(|e| Error::os(path, e))?;
    Ok(Destination::Atomic {
        dir,
        temp_name,
        file,
        final_name: name,
        existing: Some(st),
    })
}

/// ENXIO from a non-blocking open: a FIFO nobody reads, or a socket.
fn explain_enxio(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, path: &[u8]) -> Error {
    match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if is_type(&st, SFlag::S_IFIFO) => Error::FifoWithoutReader {
            path: DisplayPath(path.to_vec()),
        },
        _ => Error::os(path, Errno::ENXIO),
    }
}
