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
    let mut path = Vec::with_capacity(dir.len() + 1 + name.len());
    path.extend_from_slice(dir);
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

/// A readable descriptor for a directory we hold (perhaps as `O_PATH`):
/// for listing it, or for fsync.
pub fn reopen_dir_readable(dir: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    openat(dir, ".", flags, Mode::empty())
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

/// `open_subdir` without following a final symlink (`ENOTDIR` or `ELOOP`
/// if it is one).
fn open_subdir_nofollow(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    let name = std::ffi::OsStr::from_bytes(name);
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
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
    // getpid once per process, not once per file.
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!(".scp-server-{pid}-{n}-{nanos:08x}.tmp").into_bytes();
        let flags =
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
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

/// A new file in `dir` that has no name yet (`O_TMPFILE`), created with
/// `mode` under the process umask. Nobody can open it, and if the session
/// dies it vanishes with the descriptor: a new file costs no temporary
/// name, no rename and no clean-up. `None` when the filesystem or kernel
/// cannot do it, or when unnamed files cannot be given a name in this
/// process (see `unnamed_files_linkable`); the caller then uses a named
/// temporary file, which reports any real error (such as `EACCES`) itself.
pub fn create_unnamed_file(dir: BorrowedFd<'_>, mode: u32) -> Option<OwnedFd> {
    if LINKABLE.load(Ordering::Relaxed) == LINK_REFUSED {
        return None;
    }
    let flags = OFlag::O_TMPFILE | OFlag::O_RDWR | OFlag::O_CLOEXEC;
    let file = openat(dir, ".", flags, Mode::from_bits_truncate(mode)).ok()?;
    unnamed_files_linkable(&file, dir).then_some(file)
}

/// Gives an unnamed file its name. Never replaces anything: `EEXIST` if
/// the name exists by now, decided by the kernel.
pub fn link_unnamed_file(file: &OwnedFd, dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    nix::unistd::linkat(
        file,
        "",
        dir,
        std::ffi::OsStr::from_bytes(name),
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
}

const LINK_UNKNOWN: u8 = 0;
const LINK_ALLOWED: u8 = 1;
const LINK_REFUSED: u8 = 2;
static LINKABLE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(LINK_UNKNOWN);

/// Makes every new file a named temporary file (tests of the path older
/// kernels take).
pub fn never_link_unnamed_files() {
    LINKABLE.store(LINK_REFUSED, Ordering::Relaxed);
}

/// Whether `linkat(fd, "", ..., AT_EMPTY_PATH)` works for this process:
/// kernels before 6.10 allow it only with `CAP_DAC_READ_SEARCH`. Asked once
/// per process by linking to `.`, which always exists: `EEXIST` means the
/// empty path was accepted, `ENOENT` that it was refused; nothing is
/// created either way.
fn unnamed_files_linkable(file: &OwnedFd, dir: BorrowedFd<'_>) -> bool {
    match LINKABLE.load(Ordering::Relaxed) {
        LINK_ALLOWED => return true,
        LINK_REFUSED => return false,
        _ => {}
    }
    let verdict = match nix::unistd::linkat(file, "", dir, ".", nix::fcntl::AtFlags::AT_EMPTY_PATH)
    {
        Err(Errno::EEXIST) => LINK_ALLOWED,
        _ => LINK_REFUSED,
    };
    LINKABLE.store(verdict, Ordering::Relaxed);
    verdict == LINK_ALLOWED
}

/// Reads the umask the session was started with. Setting it is the only
/// way to read it; it is restored at once, before any file is created, and
/// the process never runs with a zero umask otherwise (PROTOCOL.md §h.6).
pub fn inherited_umask() -> u32 {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o077));
    umask(old);
    old.bits()
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

/// Sets a file's permission bits through any descriptor of it, `O_PATH`
/// included (`fchmodat2` with `AT_EMPTY_PATH`, Linux ≥ 6.6), so that a
/// path-based SETSTAT acts on the object resolution found, never on a
/// name looked up again. `ENOSYS` on older kernels: the caller reopens.
pub fn chmod_object(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: fchmodat2 reads one NUL-terminated string (the empty path, a
    // static literal) and takes a descriptor borrowed for the call; nix and
    // libc offer no wrapper for it.
    let res = unsafe {
        libc::syscall(
            libc::SYS_fchmodat2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode as libc::c_uint,
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::result(res).map(drop)
}

/// Sets access and modification times through any descriptor of a file,
/// `O_PATH` included (`utimensat` with `AT_EMPTY_PATH`), for the same
/// reason as `chmod_object`.
pub fn set_times_object(fd: BorrowedFd<'_>, atime: i64, mtime: i64) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let times = [
        libc::timespec {
            tv_sec: atime as libc::time_t,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: mtime as libc::time_t,
            tv_nsec: 0,
        },
    ];
    // SAFETY: utimensat reads the empty path (a static literal) and two
    // timespecs that live on this stack frame for the whole call; nix's
    // wrapper cannot pass AT_EMPTY_PATH.
    let res = unsafe {
        libc::utimensat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::result(res).map(drop)
}

/// Sets owner and group through any descriptor of a file (`O_PATH`
/// included).
pub fn chown_object(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<(), Errno> {
    nix::unistd::fchownat(
        fd,
        "",
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_EMPTY_PATH,
    )
}

/// The canonical form of a path — no `.`, `..` or symlink left — as the
/// names of the directories walked, for SFTP's REALPATH. Confined, the
/// walk starts at the root and the result is root-relative (`/` is the
/// root): `..` above the root or a symlink out of it is refused, never
/// clamped. Unconfined, it starts at `/` (relative paths at the working
/// directory) and absolute symlinks restart it there. A missing final
/// component is kept as given (as OpenSSH's realpath does), unless the path
/// ends with `/`.
pub fn canonical_path(scope: &Scope, path: &[u8]) -> Result<Vec<u8>, ResolveError> {
    let mut walk = match scope {
        Scope::Confined(root) => CanonicalWalk {
            base: nix::unistd::dup(root.fd())?,
            stack: Vec::new(),
            confined: true,
            no_symlinks: root.no_symlinks,
        },
        Scope::Unconfined => {
            let mut walk = CanonicalWalk {
                base: open_dir_path(b"/")?,
                stack: Vec::new(),
                confined: false,
                no_symlinks: false,
            };
            if !path.starts_with(b"/") {
                let cwd = std::env::current_dir()
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)))?;
                walk.walk(cwd.as_os_str().as_bytes(), false)?;
            }
            walk
        }
    };
    let trailing_slash = path.len() > 1 && path.ends_with(b"/");
    walk.walk(path, trailing_slash)?;
    Ok(walk.joined())
}

struct CanonicalWalk {
    base: OwnedFd,
    /// The directories walked so far below the base, with their names.
    stack: Vec<(OwnedFd, Vec<u8>)>,
    confined: bool,
    no_symlinks: bool,
}

impl CanonicalWalk {
    fn walk(&mut self, path: &[u8], must_exist: bool) -> Result<(), ResolveError> {
        let mut pending: std::collections::VecDeque<Vec<u8>> = components(path).collect();
        let mut hops = 0;
        while let Some(component) = pending.pop_front() {
            if component == b".." {
                if self.stack.pop().is_none() && self.confined {
                    return Err(ResolveError::Escapes { symlink: None });
                }
                continue;
            }
            let current = self
                .stack
                .last()
                .map_or(self.base.as_fd(), |(fd, _)| fd.as_fd());
            let name = std::ffi::OsStr::from_bytes(&component);
            let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let entry = match openat(current, name, flags, Mode::empty()) {
                Err(Errno::ENOENT) if pending.is_empty() && !must_exist => {
                    // A missing last name: kept as given.
                    let placeholder = nix::unistd::dup(current)?;
                    self.stack.push((placeholder, component));
                    return Ok(());
                }
                other => other?,
            };
            let st = nix::sys::stat::fstat(&entry)?;
            let kind = st.st_mode & nix::sys::stat::SFlag::S_IFMT.bits();
            if kind == nix::sys::stat::SFlag::S_IFLNK.bits() {
                if self.no_symlinks {
                    return Err(ResolveError::SymlinkRefused { symlink: component });
                }
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(Errno::ELOOP.into());
                }
                let target = nix::fcntl::readlinkat(&entry, "")?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    if self.confined {
                        return Err(ResolveError::Escapes {
                            symlink: Some(component),
                        });
                    }
                    self.stack.clear();
                }
                for part in components(target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front(part);
                }
                continue;
            }
            if kind != nix::sys::stat::SFlag::S_IFDIR.bits() && !pending.is_empty() {
                return Err(Errno::ENOTDIR.into());
            }
            self.stack.push((entry, component));
        }
        Ok(())
    }

    fn joined(&self) -> Vec<u8> {
        if self.stack.is_empty() {
            return b"/".to_vec();
        }
        let mut path = Vec::new();
        for (_, name) in &self.stack {
            path.push(b'/');
            path.extend_from_slice(name);
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    /// A tree: ROOT/{a/b (file), a/up -> .., a/up2 -> ../.., in -> a,
    /// out -> ../outside, abs -> /etc, l1 <-> l2}, and outside/secret.
    fn tree(tag: &str) -> (PathBuf, PathBuf) {
        let base =
            std::env::temp_dir().join(format!("scp-server-confine-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(root.join("a/b"), b"inside").unwrap();
        std::fs::write(base.join("outside/secret"), b"secret").unwrap();
        symlink("..", root.join("a/up")).unwrap();
        symlink("../..", root.join("a/up2")).unwrap();
        symlink("a", root.join("in")).unwrap();
        symlink("../outside", root.join("out")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("l2", root.join("l1")).unwrap();
        symlink("l1", root.join("l2")).unwrap();
        (base, root)
    }

    fn read_all(fd: OwnedFd) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        std::fs::File::from(fd).read_to_end(&mut out).unwrap();
        out
    }

    fn each_backend(tag: &str, check: impl Fn(&Root, Backend)) {
        for backend in [Backend::Openat2, Backend::Walk] {
            let (base, root_path) = tree(&format!("{tag}-{backend:?}"));
            let root = Root::open(&root_path, backend, false).unwrap();
            check(&root, backend);
            std::fs::remove_dir_all(base).unwrap();
        }
    }

    #[test]
    fn paths_inside_resolve_in_both_backends() {
        each_backend("inside", |root, backend| {
            for path in [
                &b"a/b"[..],
                b"/a/b",
                b"//a/./b",
                b"a/../a/b",
                b"in/b",
                b"a/up/a/b",
            ] {
                let fd = root.open_beneath(path, OFlag::O_RDONLY, true);
                let fd = fd.unwrap_or_else(|e| {
                    panic!("{backend:?} {:?}: {e:?}", String::from_utf8_lossy(path))
                });
                assert_eq!(read_all(fd), b"inside");
            }
            assert!(
                root.open_beneath(b"", OFlag::O_PATH | OFlag::O_DIRECTORY, true)
                    .is_ok()
            );
            assert!(
                root.open_beneath(b"/", OFlag::O_PATH | OFlag::O_DIRECTORY, true)
                    .is_ok()
            );
        });
    }

    #[test]
    fn escapes_are_refused_and_named() {
        each_backend("escape", |root, backend| {
            let cases: [(&[u8], Option<&[u8]>); 6] = [
                (b"..", None),
                (b"../outside/secret", None),
                (b"a/../../outside/secret", None),
                (b"out/secret", Some(b"out")),
                (b"abs/passwd", Some(b"abs")),
                (b"a/up2/outside/secret", Some(b"up2")),
            ];
            for (path, link) in cases {
                let err = root.open_beneath(path, OFlag::O_RDONLY, true).unwrap_err();
                let expected = ResolveError::Escapes {
                    symlink: link.map(<[u8]>::to_vec),
                };
                assert_eq!(
                    err,
                    expected,
                    "{backend:?} {}",
                    String::from_utf8_lossy(path)
                );
            }
        });
    }

    #[test]
    fn loops_and_final_symlinks() {
        each_backend("loops", |root, backend| {
            let err = root.open_beneath(b"l1", OFlag::O_RDONLY, true).unwrap_err();
            assert_eq!(err, ResolveError::Os(Errno::ELOOP), "{backend:?}");
            // Not following the final component: the link itself, even one
            // that points outside, can be looked at (and replaced) safely.
            assert!(
                root.open_beneath(b"out", OFlag::O_PATH, false).is_ok(),
                "{backend:?}"
            );
            let err = root
                .open_beneath(b"out", OFlag::O_RDONLY, false)
                .unwrap_err();
            assert_eq!(err, ResolveError::Os(Errno::ELOOP), "{backend:?}");
        });
    }

    #[test]
    fn no_symlinks_refuses_every_link() {
        for backend in [Backend::Openat2, Backend::Walk] {
            let (base, root_path) = tree(&format!("nosym-{backend:?}"));
            let root = Root::open(&root_path, backend, true).unwrap();
            let err = root
                .open_beneath(b"in/b", OFlag::O_RDONLY, true)
                .unwrap_err();
            assert_eq!(
                err,
                ResolveError::SymlinkRefused {
                    symlink: b"in".to_vec()
                },
                "{backend:?}"
            );
            assert!(root.open_beneath(b"a/b", OFlag::O_RDONLY, true).is_ok());
            std::fs::remove_dir_all(base).unwrap();
        }
    }

    #[test]
    fn an_unnamed_file_is_invisible_until_linked_and_never_replaces() {
        let (base, root) = tree("unnamed");
        let dir = open_dir_path(root.as_os_str().as_bytes()).unwrap();
        let before = std::fs::read_dir(&root).unwrap().count();
        let Some(file) = create_unnamed_file(dir.as_fd(), 0o640) else {
            // Outside CI an old kernel may lack the empty-path link; in CI
            // the path the sink takes by default must be the one tested.
            assert!(
                std::env::var_os("CI").is_none(),
                "no O_TMPFILE or no empty-path link on this machine"
            );
            eprintln!("no O_TMPFILE or no empty-path link here; test not run");
            return;
        };
        nix::unistd::write(&file, b"new").unwrap();
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), before);
        let sub = open_subdir(dir.as_fd(), b"a").unwrap();
        assert_eq!(
            link_unnamed_file(&file, sub.as_fd(), b"b"),
            Err(Errno::EEXIST)
        );
        assert_eq!(std::fs::read(root.join("a/b")).unwrap(), b"inside");
        link_unnamed_file(&file, dir.as_fd(), b"fresh").unwrap();
        assert_eq!(std::fs::read(root.join("fresh")).unwrap(), b"new");
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn rename_noreplace_is_enforced_by_the_kernel() {
        let (base, root_path) = tree("noreplace");
        let dir = open_dir_path(root_path.join("a").as_os_str().as_bytes()).unwrap();
        std::fs::write(root_path.join("a/new"), b"n").unwrap();
        assert_eq!(
            rename_noreplace(dir.as_fd(), b"new", b"b"),
            Err(Errno::EEXIST)
        );
        assert_eq!(std::fs::read(root_path.join("a/b")).unwrap(), b"inside");
        assert_eq!(rename_noreplace(dir.as_fd(), b"new", b"c"), Ok(()));
        std::fs::remove_dir_all(base).unwrap();
    }

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

// ---------------------------------------------------------------------------
// Confined resolution: every client path beneath one root directory.
// ---------------------------------------------------------------------------

/// How paths are resolved beneath the root. Both are always compiled in and
/// tested; `Openat2` is used where the kernel has it (Linux ≥ 5.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: the kernel refuses
    /// every escape, atomically.
    Openat2,
    /// A component-by-component walk with `O_NOFOLLOW`, each symlink read
    /// and resolved by us against the stack of directories walked so far.
    Walk,
}

impl Backend {
    /// openat2 where the kernel has it (Linux ≥ 5.6), else the walk.
    pub fn best_available() -> Backend {
        use nix::fcntl::{OpenHow, ResolveFlag, openat2};
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_BENEATH);
        match openat2(AT_FDCWD, ".", how) {
            Err(Errno::ENOSYS) => Backend::Walk,
            _ => Backend::Openat2,
        }
    }
}

/// Why a path beneath the root could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// An ordinary system error (`ENOENT`, `EACCES`, …).
    Os(Errno),
    /// The path, through `..` or a symlink, leads outside the root.
    Escapes { symlink: Option<Vec<u8>> },
    /// A symlink on the way, and the policy allows none.
    SymlinkRefused { symlink: Vec<u8> },
}

impl From<Errno> for ResolveError {
    fn from(e: Errno) -> Self {
        ResolveError::Os(e)
    }
}

impl ResolveError {
    /// The error the client sees for `path`.
    pub fn into_error(self, path: &[u8]) -> Error {
        let path = DisplayPath(path.to_vec());
        match self {
            ResolveError::Os(errno) => Error::Os {
                path,
                step: None,
                errno,
            },
            ResolveError::Escapes {
                symlink: Some(link),
            } => Error::SymlinkEscapes {
                path,
                link: DisplayPath(link),
            },
            ResolveError::Escapes { symlink: None } => Error::PathEscapes { path },
            ResolveError::SymlinkRefused { symlink } => Error::SymlinkRefused {
                path,
                link: DisplayPath(symlink),
            },
        }
    }
}

/// The confinement root: an open directory and the rules for resolving
/// client paths beneath it. `/x` and `x` both mean ROOT/x; `..` is allowed
/// while the path stays inside; a symlink is followed only while it stays
/// inside (an absolute symlink never does), or never with `no_symlinks`.
pub struct Root {
    fd: OwnedFd,
    backend: Backend,
    no_symlinks: bool,
    /// The root directory's own name, sent for `-r -f` of the root itself.
    name: Vec<u8>,
}

impl Root {
    /// Opens the root directory itself (an admin's path: a symlink here is
    /// resolved once, now).
    pub fn open(
        path: &std::path::Path,
        backend: Backend,
        no_symlinks: bool,
    ) -> Result<Root, Errno> {
        let fd = open_dir_path(path.as_os_str().as_bytes())?;
        let real = std::fs::canonicalize(path)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
        let name = real
            .file_name()
            .map_or_else(|| b"/".to_vec(), |n| n.as_bytes().to_vec());
        Ok(Root {
            fd,
            backend,
            no_symlinks,
            name,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Opens `rel` beneath the root with `flags`. With `follow_final` false
    /// a final symlink is not followed (`O_NOFOLLOW`: `O_PATH` returns the
    /// link itself, other modes fail with `ELOOP`).
    pub fn open_beneath(
        &self,
        rel: &[u8],
        flags: OFlag,
        follow_final: bool,
    ) -> Result<OwnedFd, ResolveError> {
        let rel = relative_to_root(rel);
        #[cfg(feature = "unchecked-paths-for-landlock-test")]
        return self.open_unchecked(&rel, flags, follow_final);
        #[cfg_attr(feature = "unchecked-paths-for-landlock-test", allow(unreachable_code))]
        let result = match self.backend {
            Backend::Openat2 => self.open_openat2(&rel, flags, follow_final),
            Backend::Walk => self.open_walk(&rel, flags, follow_final),
        };
        match result {
            // openat2 says only that something left the root (EXDEV) or hit
            // a symlink (ELOOP under RESOLVE_NO_SYMLINKS); the walk finds
            // which, so that the message can name it.
            Err(ResolveError::Os(e @ Errno::EXDEV)) => Err(self.diagnose(&rel, follow_final, e)),
            Err(ResolveError::Os(e @ Errno::ELOOP)) if self.no_symlinks => {
                Err(self.diagnose(&rel, follow_final, e))
            }
            other => other,
        }
    }

    /// The path checks switched off, so that a test can show that Landlock
    /// alone still stops an escape (tests/landlock_wall.rs). Never in a
    /// release build: see the compile_error! in main.rs.
    #[cfg(feature = "unchecked-paths-for-landlock-test")]
    fn open_unchecked(
        &self,
        rel: &[u8],
        flags: OFlag,
        follow_final: bool,
    ) -> Result<OwnedFd, ResolveError> {
        let mut flags = flags | OFlag::O_CLOEXEC;
        if !follow_final {
            flags |= OFlag::O_NOFOLLOW;
        }
        Ok(openat(
            self.fd.as_fd(),
            std::ffi::OsStr::from_bytes(rel),
            flags,
            Mode::empty(),
        )?)
    }

    /// Re-resolves with the walk after openat2 refused, to say why.
    fn diagnose(&self, rel: &[u8], follow_final: bool, original: Errno) -> ResolveError {
        match self.open_walk(rel, OFlag::O_PATH, follow_final) {
            Err(e) => e,
            // The tree changed between the two resolutions: keep the refusal.
            Ok(_) => ResolveError::Os(original),
        }
    }

    fn open_openat2(
        &self,
        rel: &[u8],
        flags: OFlag,
        follow_final: bool,
    ) -> Result<OwnedFd, ResolveError> {
        use nix::fcntl::{OpenHow, ResolveFlag, openat2};
        let mut resolve = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS;
        if self.no_symlinks {
            resolve |= ResolveFlag::RESOLVE_NO_SYMLINKS;
        }
        let mut flags = flags | OFlag::O_CLOEXEC;
        if !follow_final {
            flags |= OFlag::O_NOFOLLOW;
        }
        let how = OpenHow::new().flags(flags).resolve(resolve);
        Ok(openat2(
            self.fd.as_fd(),
            std::ffi::OsStr::from_bytes(rel),
            how,
        )?)
    }

    /// The portable resolver: one component at a time, never following a
    /// symlink by the kernel. `..` pops the stack of directories walked;
    /// popping past the root is an escape. Symlink targets are spliced into
    /// the remaining components, so they are subject to the same rules.
    fn open_walk(
        &self,
        rel: &[u8],
        flags: OFlag,
        follow_final: bool,
    ) -> Result<OwnedFd, ResolveError> {
        let mut stack: Vec<OwnedFd> = Vec::new();
        // Each pending component remembers the symlink it came from, so
        // that an escape can name the link responsible.
        let mut pending: std::collections::VecDeque<(Vec<u8>, Option<Vec<u8>>)> =
            components(rel).map(|c| (c, None)).collect();
        let mut hops = 0;
        if pending.is_empty() {
            pending.push_back((b".".to_vec(), None));
        }
        while let Some((component, via_link)) = pending.pop_front() {
            let current = stack.last().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            if component == b".." {
                if stack.pop().is_none() {
                    return Err(ResolveError::Escapes { symlink: via_link });
                }
                continue;
            }
            let is_final = pending.is_empty();
            let name = std::ffi::OsStr::from_bytes(&component);
            let entry = openat(
                current,
                name,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let st = nix::sys::stat::fstat(&entry)?;
            let kind = nix::sys::stat::SFlag::from_bits_truncate(
                st.st_mode & nix::sys::stat::SFlag::S_IFMT.bits(),
            );
            if kind == nix::sys::stat::SFlag::S_IFLNK && (follow_final || !is_final) {
                if self.no_symlinks {
                    return Err(ResolveError::SymlinkRefused { symlink: component });
                }
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(Errno::ELOOP.into());
                }
                let target = nix::fcntl::readlinkat(&entry, "")?;
                let target = target.as_bytes();
                if target.starts_with(b"/") {
                    return Err(ResolveError::Escapes {
                        symlink: Some(component),
                    });
                }
                for part in components(target).collect::<Vec<_>>().into_iter().rev() {
                    pending.push_front((part, Some(component.clone())));
                }
                continue;
            }
            if !is_final {
                if kind != nix::sys::stat::SFlag::S_IFDIR {
                    return Err(Errno::ENOTDIR.into());
                }
                stack.push(entry);
                continue;
            }
            return reopen_final(current, name, entry, &st, flags);
        }
        // Only `..` components (or a symlink to them): the directory reached.
        let dir = stack.pop().map_or_else(|| nix::unistd::dup(&self.fd), Ok)?;
        if flags.contains(OFlag::O_PATH) {
            return Ok(dir);
        }
        Ok(openat(&dir, ".", flags | OFlag::O_CLOEXEC, Mode::empty())?)
    }
}

/// Turns the `O_PATH` descriptor of the final component into one opened with
/// the requested flags, from the same parent and without following, and
/// checks it is the same object (an entry swapped in between is refused).
fn reopen_final(
    parent: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    entry: OwnedFd,
    st: &nix::sys::stat::FileStat,
    flags: OFlag,
) -> Result<OwnedFd, ResolveError> {
    if flags.contains(OFlag::O_PATH) {
        let kind = st.st_mode & nix::sys::stat::SFlag::S_IFMT.bits();
        if flags.contains(OFlag::O_DIRECTORY) && kind != nix::sys::stat::SFlag::S_IFDIR.bits() {
            return Err(Errno::ENOTDIR.into());
        }
        return Ok(entry);
    }
    let fd = openat(
        parent,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let again = nix::sys::stat::fstat(&fd)?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Errno::EAGAIN.into());
    }
    Ok(fd)
}

/// `/x`, `x` and `./x` all name ROOT/x; an empty path is the root itself.
fn relative_to_root(path: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
        &path[start..]
    };
    if trimmed.is_empty() {
        b".".to_vec()
    } else {
        trimmed.to_vec()
    }
}

/// The non-empty, non-`.` components of a path.
fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
}

/// Publishes `from` as `to` in `dir` only if `to` does not exist, decided by
/// the kernel at the moment of the rename (`--no-overwrite`).
pub fn rename_noreplace(dir: BorrowedFd<'_>, from: &[u8], to: &[u8]) -> Result<(), Errno> {
    rename_noreplace_between(dir, from, dir, to)
}

/// `rename_noreplace` between two directories (SFTP's RENAME, which never
/// replaces an existing name).
pub fn rename_noreplace_between(
    from_dir: BorrowedFd<'_>,
    from: &[u8],
    to_dir: BorrowedFd<'_>,
    to: &[u8],
) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    let from = std::ffi::CString::new(from).map_err(|_| Errno::EINVAL)?;
    let to = std::ffi::CString::new(to).map_err(|_| Errno::EINVAL)?;
    // SAFETY: renameat2 reads two NUL-terminated strings that outlive the
    // call and takes two directory descriptors borrowed for its duration;
    // nix offers renameat2 only on glibc, so the raw syscall serves musl too.
    let res = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            from_dir.as_raw_fd(),
            from.as_ptr(),
            to_dir.as_raw_fd(),
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    Errno::result(res).map(drop)
}

/// Whether a session's paths are confined, and the operations whose rules
/// differ between the two: where symlinks are followed, and how far.
pub enum Scope {
    /// No root: paths are the client's, symlinks followed as OpenSSH does.
    Unconfined,
    /// Every path beneath the root; final components of uploads are never
    /// followed, and non-regular targets are refused.
    Confined(Root),
}

impl Scope {
    pub fn is_confined(&self) -> bool {
        matches!(self, Scope::Confined(_))
    }

    /// `--no-symlinks`: no symlink is followed, nor replaced by an upload.
    pub fn refuses_symlinks(&self) -> bool {
        matches!(self, Scope::Confined(root) if root.no_symlinks)
    }

    /// Opens `path` as a directory (the session's target, or its parent),
    /// following symlinks: freely without a root, only while inside with one.
    pub fn open_dir(&self, path: &[u8]) -> Result<OwnedFd, ResolveError> {
        match self {
            Scope::Unconfined => Ok(open_dir_path(path)?),
            Scope::Confined(root) => {
                root.open_beneath(path, OFlag::O_PATH | OFlag::O_DIRECTORY, true)
            }
        }
    }

    /// Opens the existing directory a `D` record names: `name` in `dir`,
    /// which is `rel` beneath the root when confined (a symlink there is
    /// followed only while it stays inside the root).
    pub fn open_subdir(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        rel: &[u8],
    ) -> Result<OwnedFd, ResolveError> {
        match self {
            Scope::Unconfined => Ok(open_subdir(dir, name)?),
            Scope::Confined(root) => {
                // A real directory is opened where it stands, so that deep
                // trees never build long paths; only a symlink is resolved
                // from the root, to check where it leads.
                // With O_DIRECTORY a final symlink fails as ENOTDIR, not
                // ELOOP; either way the root decides below.
                match open_subdir_nofollow(dir, name) {
                    Err(Errno::ELOOP | Errno::ENOTDIR) => {}
                    other => return Ok(other?),
                }
                let flags = OFlag::O_DIRECTORY;
                match root.open_beneath(rel, flags | OFlag::O_RDONLY, true) {
                    Err(ResolveError::Os(Errno::EACCES)) => {
                        root.open_beneath(rel, flags | OFlag::O_PATH, true)
                    }
                    other => other,
                }
            }
        }
    }
}

/// `rel` + `/` + `name`, for paths beneath the root.
pub fn join_rel(rel: &[u8], name: &[u8]) -> Vec<u8> {
    if rel.is_empty() || rel == b"." {
        return name.to_vec();
    }
    let mut path = Vec::with_capacity(rel.len() + 1 + name.len());
    path.extend_from_slice(rel);
    path.push(b'/');
    path.extend_from_slice(name);
    path
}

/// A client path as a normalised path beneath the root, for policy
/// decisions (deny patterns): leading `/`, `.` and empty components gone,
/// `..` applied lexically (a path that would leave the root never gets
/// this far: resolution refuses it first).
pub fn normalize_rel(path: &[u8]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join(&b'/')
}
