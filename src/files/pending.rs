//! An upload written at random offsets (SFTP): the bytes go to the file
//! `upload::open_destination` chose, nobody else sees them until `publish`,
//! and `discard` (or a lost session) leaves the old file as it was.
//!
//! Over an existing file opened without TRUNC the new file starts as the
//! old file's content, with the client's writes on top — but only the
//! ranges the client does not overwrite are ever copied, in the kernel
//! (`copy_file_range`, which reflinks where the filesystem can), and only
//! when they are needed: when the client reads them, or at publish. A
//! rewrite from offset 0 copies nothing; a resume copies the old part once.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::stat::{FileStat, Mode, fchmod, fstat};
use nix::sys::uio::{pread, pwrite};
use nix::unistd::{fchown, ftruncate};

use super::upload::{Destination, Finish};
use crate::error::Error;
use crate::protocol::Times;

/// Offsets of a file, as sorted, disjoint, non-adjacent half-open ranges.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// Adds `[start, end)`. Appending after the last range (sequential
    /// writes) costs O(1).
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        if let Some(last) = self.0.last_mut()
            && start >= last.0
        {
            if start <= last.1 {
                last.1 = last.1.max(end);
                return;
            }
            self.0.push((start, end));
            return;
        }
        let first = self.0.partition_point(|r| r.1 < start);
        let mut merged = (start, end);
        let mut last = first;
        while last < self.0.len() && self.0[last].0 <= end {
            merged.0 = merged.0.min(self.0[last].0);
            merged.1 = merged.1.max(self.0[last].1);
            last += 1;
        }
        self.0.splice(first..last, [merged]);
    }

    /// Drops everything at or past `end`.
    pub fn clip(&mut self, end: u64) {
        self.0.retain(|r| r.0 < end);
        if let Some(last) = self.0.last_mut() {
            last.1 = last.1.min(end);
        }
    }

    /// The parts of `[start, end)` not in the set.
    pub fn gaps(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut gaps = Vec::new();
        let mut at = start;
        for &(s, e) in &self.0 {
            if e <= at {
                continue;
            }
            if s >= end {
                break;
            }
            if s > at {
                gaps.push((at, s.min(end)));
            }
            at = at.max(e);
            if at >= end {
                break;
            }
        }
        if at < end {
            gaps.push((at, end));
        }
        gaps
    }
}

/// The old file's content an upload over it still owes: below `len`, every
/// offset not in `written` is the old file's byte at that offset.
struct OldContent {
    file: OwnedFd,
    len: u64,
    written: RangeSet,
    /// The old file's length when the upload began.
    original_len: u64,
}

/// Metadata the client set while the upload was open, applied at publish
/// (after the last copy, which would otherwise move the times again).
#[derive(Default)]
struct Requested {
    mode: Option<u32>,
    times: Option<(u32, u32)>,
    owner: Option<(u32, u32)>,
}

pub struct PendingUpload {
    dest: Destination<'static>,
    old: Option<OldContent>,
    /// The file's length as the client sees it.
    len: u64,
    /// The mode the file is published with unless the client sets one.
    mode: u32,
    requested: Requested,
    /// Bytes the client wrote (for the audit trail).
    written_bytes: u64,
    /// The client read through the handle (READ|WRITE): an access, so the
    /// file does not keep the old access time.
    read_back: bool,
}

impl PendingUpload {
    /// Wraps a destination. `old_content`: the existing file opened for
    /// reading, when the upload must start as its content (no TRUNC).
    pub fn new(
        dest: Destination<'static>,
        old_content: Option<OwnedFd>,
        mode: u32,
    ) -> Result<PendingUpload, Errno> {
        let mut upload = PendingUpload {
            dest,
            old: None,
            len: 0,
            mode,
            requested: Requested::default(),
            written_bytes: 0,
            read_back: false,
        };
        match (&upload.dest, old_content) {
            // Written in place: the file's own content is already there.
            (Destination::InPlace { .. }, _) => {
                upload.len = fstat(upload.fd())?.st_size as u64;
            }
            (_, Some(file)) => {
                let len = fstat(&file)?.st_size as u64;
                // The new file has the old one's length from the start (a
                // sparse file: its holes are filled from the old content).
                ftruncate(upload.fd(), len as i64)?;
                upload.len = len;
                upload.old = Some(OldContent {
                    file,
                    len,
                    written: RangeSet::default(),
                    original_len: len,
                });
            }
            (_, None) => {}
        }
        Ok(upload)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dest.data_fd()
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    pub fn is_new(&self) -> bool {
        self.dest.is_new()
    }

    pub fn existing(&self) -> Option<&FileStat> {
        self.dest.existing()
    }

    /// The file as STAT shows it while pending: what it will be once
    /// published. Its length is the client's; a replacement shows the mode
    /// it is published with (the temporary file is 0600 until then) and,
    /// unless the client set times or read it, the old file's access
    /// time, which publishing keeps.
    pub fn stat(&self) -> Result<FileStat, Errno> {
        let mut st = fstat(self.fd())?;
        st.st_size = self.len as i64;
        if let Destination::Atomic {
            existing: Some(old),
            ..
        } = &self.dest
        {
            st.st_mode = (st.st_mode & !0o7777) | (self.mode & 0o7777);
            if self.requested.times.is_none() && !self.read_back {
                st.st_atime = old.st_atime;
                st.st_atime_nsec = old.st_atime_nsec;
            }
        }
        Ok(st)
    }

    /// Writes `data` at `offset` (at the end with `append`).
    pub fn write_at(&mut self, offset: u64, data: &[u8], append: bool) -> Result<(), Errno> {
        let offset = if append { self.len } else { offset };
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        let at = i64::try_from(offset).map_err(|_| Errno::EFBIG)?;
        let mut done = 0;
        while done < data.len() {
            let n = pwrite(self.fd(), &data[done..], at + done as i64)?;
            if n == 0 {
                return Err(Errno::EIO);
            }
            done += n;
        }
        if let Some(old) = &mut self.old {
            old.written.insert(offset.min(old.len), end.min(old.len));
        }
        self.len = self.len.max(end);
        self.written_bytes += data.len() as u64;
        Ok(())
    }

    /// Writes `len` bytes that `write` moves into the file itself (the
    /// SFTP server splices a large WRITE's data from the session straight
    /// in), at `offset` (at the end with `append`): the file position is
    /// set there first, and the written range is recorded as `write_at`
    /// records it.
    pub fn write_with<T>(
        &mut self,
        offset: u64,
        len: u64,
        append: bool,
        write: impl FnOnce(BorrowedFd<'_>) -> T,
    ) -> Result<T, Errno> {
        let offset = if append { self.len } else { offset };
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        let at = i64::try_from(offset).map_err(|_| Errno::EFBIG)?;
        nix::unistd::lseek(self.fd(), at, nix::unistd::Whence::SeekSet)?;
        let result = write(self.fd());
        if let Some(old) = &mut self.old {
            old.written.insert(offset.min(old.len), end.min(old.len));
        }
        self.len = self.len.max(end);
        self.written_bytes += len;
        Ok(result)
    }

    /// Reads what the file holds at `offset`: the client's writes, and the
    /// old content where it wrote nothing.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let end = offset.saturating_add(buf.len() as u64);
        self.read_back = true;
        self.fill_from_old(offset, end)?;
        let at = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        pread(self.fd(), buf, at)
    }

    /// Sets the length (FSETSTAT/SETSTAT size): the old content past it is
    /// no longer owed.
    pub fn set_len(&mut self, len: u64) -> Result<(), Errno> {
        ftruncate(self.fd(), i64::try_from(len).map_err(|_| Errno::EFBIG)?)?;
        if let Some(old) = &mut self.old {
            old.len = old.len.min(len);
            old.written.clip(old.len);
        }
        self.len = len;
        Ok(())
    }

    /// Copies the old content the file still owes in `[start, end)`.
    fn fill_from_old(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        let Some(old) = &mut self.old else {
            return Ok(());
        };
        let data = self.dest.data_fd();
        for (from, to) in old.written.gaps(start, end.min(old.len)) {
            copy_range(old.file.as_fd(), data, from, to - from)?;
            old.written.insert(from, to);
        }
        Ok(())
    }

    /// Applies a permission change now (so that FSTAT shows it) and at
    /// publish.
    pub fn set_mode(&mut self, mode: u32) -> Result<(), Errno> {
        fchmod(self.fd(), Mode::from_bits_truncate(mode))?;
        self.mode = mode;
        self.requested.mode = Some(mode);
        Ok(())
    }

    pub fn set_owner(&mut self, uid: u32, gid: u32) -> Result<(), Errno> {
        fchown(
            self.fd(),
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        )?;
        self.requested.owner = Some((uid, gid));
        Ok(())
    }

    pub fn set_times(&mut self, atime: u32, mtime: u32) -> Result<(), Errno> {
        let times = to_times(atime, mtime);
        crate::files::upload::set_times_fd(self.fd(), times)?;
        self.requested.times = Some((atime, mtime));
        Ok(())
    }

    /// Makes the file complete and gives it its name.
    pub fn publish(mut self, no_overwrite: bool, fsync: bool, path: &[u8]) -> Result<(), Error> {
        if let Some(old) = self.unchanged_old_file() {
            return self.keep_old_file(old, path);
        }
        if let Err(errno) = self.fill_from_old(0, u64::MAX) {
            self.dest.discard();
            return Err(Error::os_step(path, "copy the old content", errno));
        }
        let finish = Finish {
            mode: self.mode,
            // A replacement keeps the old mode (set on the new file here);
            // a file written in place keeps its own unless asked.
            set_mode: !matches!(self.dest, Destination::InPlace { .. })
                || self.requested.mode.is_some(),
            times: self.requested.times.map(|(a, m)| to_times(a, m)),
            size: self.len,
            no_overwrite,
            fsync,
            owner: self.requested.owner,
            keep_atime: !self.read_back,
        };
        self.dest.finish(&finish, path)?;
        Ok(())
    }

    pub fn discard(self) {
        self.dest.discard();
    }

    /// The old file, when the upload changed nothing of its content:
    /// nothing written, the length never changed.
    fn unchanged_old_file(&mut self) -> Option<OwnedFd> {
        let old = self.old.as_ref()?;
        let untouched =
            self.written_bytes == 0 && self.len == old.original_len && old.len == old.original_len;
        if !untouched {
            return None;
        }
        self.old.take().map(|old| old.file)
    }

    /// An upload over a file that changed nothing of it (sshfs's `touch`,
    /// a client that only sets times) leaves the file where it stands, as
    /// OpenSSH's in-place open and close leave it, with the metadata the
    /// client asked for applied to it; nothing is copied, nothing renamed.
    fn keep_old_file(self, old: OwnedFd, path: &[u8]) -> Result<(), Error> {
        let PendingUpload {
            dest, requested, ..
        } = self;
        let mut first_error = None;
        let mut note = |step: &'static str, result: nix::Result<()>| {
            if let Err(errno) = result
                && first_error.is_none()
            {
                first_error = Some(Error::os_step(path, step, errno));
            }
        };
        if let Some(mode) = requested.mode {
            note("set mode", fchmod(&old, Mode::from_bits_truncate(mode)));
        }
        if let Some((atime, mtime)) = requested.times {
            let times = to_times(atime, mtime);
            note(
                "set times",
                crate::files::upload::set_times_fd(old.as_fd(), times),
            );
        }
        if let Some((uid, gid)) = requested.owner {
            let owner = fchown(
                &old,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            );
            note("set owner", owner);
        }
        dest.discard();
        first_error.map_or(Ok(()), Err)
    }
}

fn to_times(atime: u32, mtime: u32) -> Times {
    Times {
        mtime_sec: i64::from(mtime),
        mtime_usec: 0,
        atime_sec: i64::from(atime),
        atime_usec: 0,
    }
}

/// Copies `len` bytes at `offset` from one file to the same offset of
/// another, in the kernel where it can, else through a buffer.
fn copy_range(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    offset: u64,
    len: u64,
) -> Result<(), Errno> {
    let mut done = 0u64;
    while done < len {
        let mut off_in = (offset + done) as i64;
        let mut off_out = off_in;
        let want = (len - done).min(1 << 30) as usize;
        match nix::fcntl::copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), want) {
            Ok(0) => break, // the old file is shorter now: nothing more to copy
            Ok(n) => done += n as u64,
            Err(Errno::EINTR) => continue,
            Err(Errno::EXDEV | Errno::ENOSYS | Errno::EINVAL | Errno::EOPNOTSUPP) => {
                return copy_range_by_buffer(from, to, offset + done, len - done);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn copy_range_by_buffer(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    offset: u64,
    len: u64,
) -> Result<(), Errno> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while done < len {
        let want = ((len - done) as usize).min(buf.len());
        let at = (offset + done) as i64;
        let n = pread(from, &mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        let mut written = 0;
        while written < n {
            written += pwrite(to, &buf[written..n], at + written as i64)?;
        }
        done += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::RangeSet;

    #[test]
    fn ranges_merge_and_gaps_are_what_is_left() {
        let mut set = RangeSet::default();
        set.insert(0, 10);
        set.insert(10, 20);
        set.insert(30, 40);
        assert_eq!(set.0, vec![(0, 20), (30, 40)]);
        assert_eq!(set.gaps(0, 50), vec![(20, 30), (40, 50)]);
        set.insert(15, 35);
        assert_eq!(set.0, vec![(0, 40)]);
        assert_eq!(set.gaps(5, 45), vec![(40, 45)]);
        set.insert(50, 60);
        set.insert(45, 47);
        assert_eq!(set.0, vec![(0, 40), (45, 47), (50, 60)]);
        set.clip(46);
        assert_eq!(set.0, vec![(0, 40), (45, 46)]);
        assert_eq!(set.gaps(0, 46), vec![(40, 45)]);
    }

    #[test]
    fn an_empty_set_is_one_gap() {
        assert_eq!(RangeSet::default().gaps(3, 9), vec![(3, 9)]);
        assert!(RangeSet::default().gaps(9, 9).is_empty());
    }
}
