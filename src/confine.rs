//! Directory handles and name rules. Every filesystem operation of a
//! transfer is relative to an open directory descriptor (DESIGN.md,
//! "Filesystem rules"), so no path string is resolved twice.
//!
//! Unconfined sessions (no root) follow symlinks where OpenSSH follows them;
//! the helpers here make that explicit, one descriptor at a time.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::Mode;

use crate::error::{DisplayPath, Error};

/// Longest single name the kernel accepts (NAME_MAX on Linux).
pub const NAME_MAX: usize = 255;

/// How many symlinks one final component may pass through before we give up
/// (the kernel's own limit for a path walk).
const MAX_SYMLINK_HOPS: usize = 40;

/// The rule every `C`/`D` name must pass before anything touches the disk:
/// one component, non-empty, not `.` or `..`, no `/`. Breaking it ends the
/// session, with OpenSSH's message (PROTOCOL.md §f.1).
pub fn check_single_component(name: &[u8]) -> Result<(), Error> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Error::UnexpectedFilename(name.to_vec()));
    }
    Ok(())
}

/// Rules that skip one item but keep the session going: no NUL or control
/// bytes (PROTOCOL.md §h.8), at most NAME_MAX bytes.
pub fn check_storable_name(name: &[u8], path: &[u8]) -> Result<(), Error> {
    if name.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(Error::ControlCharacters {
            path: DisplayPath(path.to_vec()),
        });
    }
    if name.len() > NAME_MAX {
        return Err(Error::os(path, Errno::ENAMETOOLONG));
    }
    Ok(())
}

/// Joins a display path the way OpenSSH builds its messages: `DIR/NAME`,
/// without doubling the slash of the root directory.
pub fn join_display(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut path = dir.to_vec();
    if dir != b"/" {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    path
}

/// Splits `a/b/c` into (`a/b`, `c`); a name without a slash lives in `.`.
pub fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b".", path),
    }
}

/// A directory descriptor that is either borrowed from the caller or owned.
pub enum DirFd<'a> {
    Borrowed(BorrowedFd<'a>),
    Owned(OwnedFd),
}

impl AsFd for DirFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            DirFd::Borrowed(fd) => *fd,
            DirFd::Owned(fd) => fd.as_fd(),
        }
    }
}

/// Opens a directory given as a path (the session's target), following
/// symlinks. `O_PATH` needs no read permission on the directory itself, as
/// OpenSSH needs none to create files in it.
pub fn open_dir_path(path: &[u8]) -> Result<OwnedFd, Errno> {
    let path = if path.is_empty() { b"." as &[u8] } else { path };
    openat(
        AT_FDCWD,
        std::ffi::OsStr::from_bytes(path),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Opens directory `name` in `dir` so that its mode and times can be set by
/// descriptor; falls back to `O_PATH` where it may be searched but not read.
pub fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    let name = std::ffi::OsStr::from_bytes(name);
    let flags = OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    match openat(dir, name, flags | OFlag::O_RDONLY, Mode::empty()) {
        Err(Errno::EACCES) => openat(dir, name, flags | OFlag::O_PATH, Mode::empty()),
        other => other,
    }
}

/// Follows a chain of symlinks at `name` in `dir` to the entry it finally
/// names, as OpenSSH's path-based `open()` would, and returns that entry's
/// directory and name. A dangling link yields the missing entry it points
/// at (OpenSSH creates the file there, PROTOCOL.md S101).
pub fn follow_final_symlinks<'a>(
    dir: BorrowedFd<'a>,
    name: &[u8],
) -> Result<(DirFd<'a>, Vec<u8>), Errno> {
    let mut current = DirFd::Borrowed(dir);
    let mut name = name.to_vec();
    for _ in 0..MAX_SYMLINK_HOPS {
        let link = match nix::fcntl::readlinkat(current.as_fd(), std::ffi::OsStr::from_bytes(&name))
        {
            Ok(link) => link,
            // Not a symlink (EINVAL) or not there at all: this is the entry.
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok((current, name)),
            Err(e) => return Err(e),
        };
        let link = link.as_bytes();
        let (parent, leaf) = split_parent(link);
        let leaf = if leaf.is_empty() { b"." as &[u8] } else { leaf };
        let parent_fd = if link.starts_with(b"/") {
            open_dir_path(parent)?
        } else {
            openat(
                current.as_fd(),
                std::ffi::OsStr::from_bytes(parent),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?
        };
        current = DirFd::Owned(parent_fd);
        name = leaf.to_vec();
    }
    Err(Errno::ELOOP)
}

/// A new, empty, private (0600) file in `dir` under a name no other writer
/// can predict or pre-empt: `O_CREAT|O_EXCL` refuses anything already there,
/// symlinks included. Returns the descriptor and the name.
pub fn create_temp_file(dir: BorrowedFd<'_>) -> Result<(OwnedFd, Vec<u8>), Errno> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(".scp-server-{pid}-{n}-{nanos:08x}.tmp").into_bytes();
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(
            dir,
            std::ffi::OsStr::from_bytes(&name),
            flags,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => return Ok((fd, name)),
            Err(Errno::EEXIST) if n < 10_000 => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes a temporary file; failure is not reportable (the transfer has
/// already failed for a reason the client is told), so it is ignored.
pub fn remove_temp_file(dir: BorrowedFd<'_>, name: &[u8]) {
    let _ = nix::unistd::unlinkat(
        dir,
        std::ffi::OsStr::from_bytes(name),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_component_rule() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/etc", b"x/"] {
            assert!(check_single_component(bad).is_err(), "{bad:?}");
        }
        for good in [&b"a"[..], b"...", b"-x y*", b" x", b"\xff"] {
            assert!(check_single_component(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn storable_names() {
        assert!(check_storable_name(b"crlf\r", b"dst/crlf\r").is_err());
        assert!(check_storable_name(b"a\0b", b"dst/a\0b").is_err());
        assert!(check_storable_name(&[b'n'; 255], b"p").is_ok());
        assert_eq!(
            check_storable_name(&[b'n'; 256], b"dst/n")
                .unwrap_err()
                .to_string(),
            "dst/n: File name too long"
        );
    }

    #[test]
    fn display_paths() {
        assert_eq!(join_display(b"dst", b"a"), b"dst/a");
        assert_eq!(join_display(b"/", b"a"), b"/a");
        assert_eq!(join_display(b"dst/", b"a"), b"dst//a");
        assert_eq!(split_parent(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_parent(b"/x"), (&b"/"[..], &b"x"[..]));
        assert_eq!(split_parent(b"x"), (&b"."[..], &b"x"[..]));
    }
}
