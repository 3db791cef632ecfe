//! Client paths to descriptors, through the session's confinement: beneath
//! the root (openat2 or the walk, `confine::Root`) when confined, as the
//! user's own paths (relative to the working directory) otherwise.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::Mode;

use crate::confine::{ResolveError, Scope, open_dir_path};

/// Opens `path` with `flags`; `follow` decides about a final symlink.
pub fn open(
    scope: &Scope,
    path: &[u8],
    flags: OFlag,
    follow: bool,
) -> Result<OwnedFd, ResolveError> {
    if path.is_empty() {
        // open("") fails with ENOENT: the same answer beneath a root.
        return Err(Errno::ENOENT.into());
    }
    match scope {
        Scope::Confined(root) => root.open_beneath(path, flags, follow),
        Scope::Unconfined => {
            let mut flags = flags | OFlag::O_CLOEXEC;
            if !follow {
                flags |= OFlag::O_NOFOLLOW;
            }
            Ok(openat(
                AT_FDCWD,
                std::ffi::OsStr::from_bytes(path),
                flags,
                Mode::empty(),
            )?)
        }
    }
}

/// The directory an entry is in (opened `O_PATH`) and the entry's name:
/// what MKDIR, REMOVE, RENAME, links and uploads act on. Trailing slashes
/// are dropped (`mkdir dir/` makes `dir`). A last component `.` or `..`
/// is passed to the kernel as a name (it answers as for the path), after
/// the whole path was checked not to leave the root.
pub fn parent_and_name(scope: &Scope, path: &[u8]) -> Result<(OwnedFd, Vec<u8>), ResolveError> {
    if path.is_empty() {
        return Err(Errno::ENOENT.into());
    }
    let trimmed = trim_trailing_slashes(path);
    let (parent, name) = split_parent(trimmed);
    let name: &[u8] = if name.is_empty() { b"." } else { name };
    if name == b".."
        && let Scope::Confined(root) = scope
    {
        root.open_beneath(trimmed, OFlag::O_PATH, true)?;
    }
    let dir = match scope {
        Scope::Confined(root) => {
            root.open_beneath(parent, OFlag::O_PATH | OFlag::O_DIRECTORY, true)?
        }
        Scope::Unconfined => open_dir_path(parent)?,
    };
    Ok((dir, name.to_vec()))
}

fn trim_trailing_slashes(path: &[u8]) -> &[u8] {
    let end = path
        .iter()
        .rposition(|&b| b != b'/')
        .map_or(1.min(path.len()), |i| i + 1);
    &path[..end]
}

/// (device, inode) of an open directory: with a name, the key of a pending
/// upload.
pub fn dir_identity(dir: &OwnedFd) -> Result<(u64, u64), Errno> {
    let st = nix::sys::stat::fstat(dir.as_fd())?;
    Ok((st.st_dev, st.st_ino))
}

/// Whether a symlink target points downward from the link's directory: a
/// relative path with no `..` component. A `..` that stays inside the root
/// where the link is made leads out once the link is renamed higher up, or
/// its directory moved, so a confined session allows none.
pub fn target_points_downward(target: &[u8]) -> bool {
    !target.is_empty()
        && !target.starts_with(b"/")
        && !target.split(|&b| b == b'/').any(|c| c == b"..")
}

/// The directory part of a path (`.` for a bare name, `/` at the top),
/// trailing slashes dropped first.
pub fn parent_path(path: &[u8]) -> &[u8] {
    split_parent(trim_trailing_slashes(path)).0
}

fn split_parent(trimmed: &[u8]) -> (&[u8], &[u8]) {
    match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => (&b"/"[..], &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (&b"."[..], trimmed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slashes_go_but_the_root_stays() {
        assert_eq!(trim_trailing_slashes(b"dir/"), b"dir");
        assert_eq!(trim_trailing_slashes(b"a/b//"), b"a/b");
        assert_eq!(trim_trailing_slashes(b"/"), b"/");
        assert_eq!(trim_trailing_slashes(b"///"), b"/");
        assert_eq!(trim_trailing_slashes(b"x"), b"x");
    }

    #[test]
    fn only_downward_link_targets_pass() {
        assert!(target_points_downward(b"b/c"));
        assert!(target_points_downward(b"./b"));
        assert!(target_points_downward(b"a..b"));
        assert!(!target_points_downward(b"../b"));
        assert!(!target_points_downward(b"a/../b"));
        assert!(!target_points_downward(b"a/.."));
        assert!(!target_points_downward(b"/etc/passwd"));
        assert!(!target_points_downward(b""));
    }

    #[test]
    fn parents_of_paths() {
        assert_eq!(parent_path(b"a/b/c"), b"a/b");
        assert_eq!(parent_path(b"/c"), b"/");
        assert_eq!(parent_path(b"c"), b".");
        assert_eq!(parent_path(b"a/b/"), b"a");
    }
}
