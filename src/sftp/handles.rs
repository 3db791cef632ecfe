//! Open files and directories by handle: a bounded table, handles sent as
//! four-byte slot numbers (as OpenSSH sends them).

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use crate::error::Error;
use crate::files::pending::PendingUpload;

/// An upload some handles write (or read back) and that is published when
/// the last of them is closed.
pub struct UploadSlot {
    /// `None` once published or discarded.
    pub upload: Option<PendingUpload>,
    /// The path as the client named it when it opened the file.
    pub path: Vec<u8>,
    /// The key under which the session finds the pending name (none for
    /// a file written in place).
    pub key: Option<PendingKey>,
    /// Why the upload may not be published (a refused or failed WRITE).
    pub refused: Option<Error>,
    pub started: std::time::Instant,
}

/// A name in a directory: (device, inode) of the directory and the name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PendingKey {
    pub dir: (u64, u64),
    pub name: Vec<u8>,
}

pub enum FileData {
    /// A file opened for reading only.
    Plain(OwnedFd),
    Upload(Rc<RefCell<UploadSlot>>),
}

pub struct FileHandle {
    pub data: FileData,
    pub readable: bool,
    pub writable: bool,
    pub append: bool,
    pub path: Vec<u8>,
    pub bytes_read: u64,
    /// Whether the file is a regular file (only those are audited).
    pub regular: bool,
    pub started: std::time::Instant,
}

pub struct DirHandle {
    pub entries: nix::dir::OwningIter,
    /// The same directory, for looking at each entry (fstatat).
    pub fd: OwnedFd,
}

pub enum Handle {
    File(FileHandle),
    Dir(DirHandle),
}

/// The open handles; at most `max` at once.
pub struct Handles {
    slots: Vec<Option<Handle>>,
    free: Vec<u32>,
    open: usize,
    max: usize,
}

impl Handles {
    pub fn new(max: usize) -> Handles {
        Handles {
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            max,
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Stores a handle; `None` when the table is full.
    pub fn insert(&mut self, handle: Handle) -> Option<[u8; 4]> {
        if self.open >= self.max {
            return None;
        }
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize] = Some(handle);
                index
            }
            None => {
                self.slots.push(Some(handle));
                (self.slots.len() - 1) as u32
            }
        };
        self.open += 1;
        Some(index.to_be_bytes())
    }

    fn index(&self, handle: &[u8]) -> Option<usize> {
        let bytes: [u8; 4] = handle.try_into().ok()?;
        let index = u32::from_be_bytes(bytes) as usize;
        self.slots.get(index)?.as_ref().map(|_| index)
    }

    pub fn get_mut(&mut self, handle: &[u8]) -> Option<&mut Handle> {
        let index = self.index(handle)?;
        self.slots[index].as_mut()
    }

    pub fn file_mut(&mut self, handle: &[u8]) -> Option<&mut FileHandle> {
        match self.get_mut(handle)? {
            Handle::File(file) => Some(file),
            Handle::Dir(_) => None,
        }
    }

    pub fn remove(&mut self, handle: &[u8]) -> Option<Handle> {
        let index = self.index(handle)?;
        self.open -= 1;
        self.free.push(index as u32);
        self.slots[index].take()
    }

    /// Every handle still open, for the end of the session.
    pub fn drain(&mut self) -> impl Iterator<Item = Handle> + '_ {
        self.open = 0;
        self.free.clear();
        self.slots.drain(..).flatten()
    }
}
