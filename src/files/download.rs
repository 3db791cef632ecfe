//! Downloads, for both protocols: a file or directory is opened only after
//! its type is known, and the descriptor is checked to be the object that
//! was looked at, so that an entry swapped in between (a FIFO that would
//! hang the session, a device, a symlink out of the root) is never read.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

use crate::confine::{ResolveError, Root};
use crate::error::{DisplayPath, Error};

/// An open file or directory with the status it was opened with.
pub struct Opened {
    pub fd: OwnedFd,
    pub st: FileStat,
}

/// Opens an entry already known (by `fstatat`) to be a regular file or a
/// directory, and checks that the descriptor is that same object: an entry
/// swapped between the two calls is skipped, never sent. `O_NONBLOCK` keeps
/// a FIFO swapped in from hanging the open; `nofollow` keeps a symlink
/// swapped in from being followed (confined sessions).
pub fn open_checked(
    dir: BorrowedFd<'_>,
    name: &[u8],
    expected: &FileStat,
    path: &[u8],
    nofollow: bool,
) -> Result<Opened, Error> {
    let kind = if is_dir(expected) {
        OFlag::O_DIRECTORY
    } else {
        OFlag::O_NONBLOCK
    };
    let mut flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | kind;
    if nofollow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let fd = openat(dir, std::ffi::OsStr::from_bytes(name), flags, Mode::empty())
        .map_err(|e| Error::os(path, e))?;
    verify_same(fd, expected, path)
}

/// Confined counterpart of `open_checked`: opens `rel` beneath the root,
/// following symlinks only while inside, and checks the object is the one
/// looked at.
pub fn open_beneath_checked(
    root: &Root,
    rel: &[u8],
    expected: &FileStat,
    path: &[u8],
) -> Result<Opened, Error> {
    let kind = if is_dir(expected) {
        OFlag::O_DIRECTORY
    } else {
        OFlag::O_NONBLOCK
    };
    let fd = root
        .open_beneath(rel, OFlag::O_RDONLY | kind, true)
        .map_err(|e: ResolveError| e.into_error(path))?;
    verify_same(fd, expected, path)
}

pub fn verify_same(fd: OwnedFd, expected: &FileStat, path: &[u8]) -> Result<Opened, Error> {
    let st = fstat(&fd).map_err(|e| Error::os(path, e))?;
    if (st.st_dev, st.st_ino) != (expected.st_dev, expected.st_ino)
        || file_type(&st) != file_type(expected)
    {
        return Err(Error::ChangedWhileOpening {
            path: DisplayPath(path.to_vec()),
        });
    }
    Ok(Opened { fd, st })
}

pub fn file_type(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

pub fn is_dir(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFDIR
}

pub fn is_regular(st: &FileStat) -> bool {
    file_type(st) == SFlag::S_IFREG
}
