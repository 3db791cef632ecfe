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
    let (parent, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(0) => (&b"/"[..], &trimmed[1..]),
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => (&b"."[..], trimmed),
    };
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

/// Whether a symlink with `target`, created as `link` (root-relative,
/// normalised) stays inside the root: no absolute target, and no `..`
/// that climbs above the root from the link's directory.
pub fn link_target_stays_inside(link: &[u8], target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return false;
    }
    let mut depth: i64 = link.split(|&b| b == b'/').filter(|c| !c.is_empty()).count() as i64 - 1;
    for component in target.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => depth += 1,
        }
    }
    true
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
    fn link_targets_that_climb_out_are_caught() {
        assert!(link_target_stays_inside(b"a/link", b"../b"));
        assert!(link_target_stays_inside(b"link", b"b/c"));
        assert!(!link_target_stays_inside(b"link", b"../b"));
        assert!(!link_target_stays_inside(b"a/link", b"../../b"));
        assert!(!link_target_stays_inside(b"a/link", b"/etc/passwd"));
        assert!(link_target_stays_inside(b"a/b/link", b"../x/../../y"));
        assert!(!link_target_stays_inside(b"a/b/link", b"../x/../../../y"));
    }
}
