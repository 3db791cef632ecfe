//! Client requests, decoded from one packet's bytes. Strings borrow from
//! the packet (WRITE data is not copied here).

use super::codes::{ext, packet};
use super::wire::{Attrs, Decoder, WireError};

/// One decoded request. Paths and handles are the client's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    Init {
        version: u32,
    },
    Open {
        path: &'a [u8],
        pflags: u32,
        attrs: Attrs,
    },
    Close {
        handle: &'a [u8],
    },
    Read {
        handle: &'a [u8],
        offset: u64,
        len: u32,
    },
    Write {
        handle: &'a [u8],
        offset: u64,
        data: &'a [u8],
    },
    Lstat {
        path: &'a [u8],
    },
    Fstat {
        handle: &'a [u8],
    },
    Setstat {
        path: &'a [u8],
        attrs: Attrs,
    },
    Fsetstat {
        handle: &'a [u8],
        attrs: Attrs,
    },
    Opendir {
        path: &'a [u8],
    },
    Readdir {
        handle: &'a [u8],
    },
    Remove {
        path: &'a [u8],
    },
    Mkdir {
        path: &'a [u8],
        attrs: Attrs,
    },
    Rmdir {
        path: &'a [u8],
    },
    Realpath {
        path: &'a [u8],
    },
    Stat {
        path: &'a [u8],
    },
    Rename {
        from: &'a [u8],
        to: &'a [u8],
    },
    Readlink {
        path: &'a [u8],
    },
    /// Fields in the order OpenSSH sends them: the link's target first,
    /// then the path of the link to create (the draft says the reverse;
    /// every client follows OpenSSH).
    Symlink {
        target: &'a [u8],
        link: &'a [u8],
    },
    PosixRename {
        from: &'a [u8],
        to: &'a [u8],
    },
    Statvfs {
        path: &'a [u8],
    },
    Fstatvfs {
        handle: &'a [u8],
    },
    Hardlink {
        from: &'a [u8],
        to: &'a [u8],
    },
    Fsync {
        handle: &'a [u8],
    },
    Lsetstat {
        path: &'a [u8],
        attrs: Attrs,
    },
    Limits,
    ExpandPath {
        path: &'a [u8],
    },
    CopyData {
        from: &'a [u8],
        from_offset: u64,
        len: u64,
        to: &'a [u8],
        to_offset: u64,
    },
    HomeDirectory {
        user: &'a [u8],
    },
    UsersGroupsById {
        uids: Vec<u32>,
        gids: Vec<u32>,
    },
    /// An EXTENDED request whose name we do not implement.
    UnknownExtension {
        name: &'a [u8],
    },
    /// A packet type this protocol does not define: OpenSSH sends no reply.
    UnknownType {
        packet_type: u8,
    },
}

impl Request<'_> {
    /// The name sftp-server's request allow/deny lists (`-p`, `-P`) use
    /// (extensions without their `@openssh.com`).
    pub fn list_name(&self) -> &'static str {
        match self {
            Request::Init { .. } => "init",
            Request::Open { .. } => "open",
            Request::Close { .. } => "close",
            Request::Read { .. } => "read",
            Request::Write { .. } => "write",
            Request::Lstat { .. } => "lstat",
            Request::Fstat { .. } => "fstat",
            Request::Setstat { .. } => "setstat",
            Request::Fsetstat { .. } => "fsetstat",
            Request::Opendir { .. } => "opendir",
            Request::Readdir { .. } => "readdir",
            Request::Remove { .. } => "remove",
            Request::Mkdir { .. } => "mkdir",
            Request::Rmdir { .. } => "rmdir",
            Request::Realpath { .. } => "realpath",
            Request::Stat { .. } => "stat",
            Request::Rename { .. } => "rename",
            Request::Readlink { .. } => "readlink",
            Request::Symlink { .. } => "symlink",
            Request::PosixRename { .. } => "posix-rename",
            Request::Statvfs { .. } => "statvfs",
            Request::Fstatvfs { .. } => "fstatvfs",
            Request::Hardlink { .. } => "hardlink",
            Request::Fsync { .. } => "fsync",
            Request::Lsetstat { .. } => "lsetstat",
            Request::Limits => "limits",
            Request::ExpandPath { .. } => "expand-path",
            Request::CopyData { .. } => "copy-data",
            Request::HomeDirectory { .. } => "home-directory",
            Request::UsersGroupsById { .. } => "users-groups-by-id",
            Request::UnknownExtension { .. } | Request::UnknownType { .. } => "unknown",
        }
    }
}

/// A packet's request id (absent only in INIT) and its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub id: u32,
    pub request: Request<'a>,
}

/// Every request name the allow/deny lists may use, in OpenSSH's order.
pub const LIST_NAMES: &[&str] = &[
    "open",
    "close",
    "read",
    "write",
    "lstat",
    "fstat",
    "setstat",
    "fsetstat",
    "opendir",
    "readdir",
    "remove",
    "mkdir",
    "rmdir",
    "realpath",
    "stat",
    "rename",
    "readlink",
    "symlink",
    "posix-rename",
    "statvfs",
    "fstatvfs",
    "hardlink",
    "fsync",
    "lsetstat",
    "limits",
    "expand-path",
    "copy-data",
    "home-directory",
    "users-groups-by-id",
];

/// Decodes one packet (its bytes after the length field). Bytes after the
/// last field are ignored, as OpenSSH ignores them.
pub fn parse_packet(bytes: &[u8]) -> Result<Packet<'_>, WireError> {
    let mut d = Decoder::new(bytes);
    let packet_type = d.u8("packet type").map_err(|_| WireError::EmptyPacket)?;
    if packet_type == packet::INIT {
        let version = d.u32("version")?;
        return Ok(Packet {
            id: 0,
            request: Request::Init { version },
        });
    }
    let id = d.u32("request id")?;
    let request = match packet_type {
        packet::OPEN => Request::Open {
            path: d.cstring("path")?,
            pflags: d.u32("open flags")?,
            attrs: d.attrs()?,
        },
        packet::CLOSE => Request::Close {
            handle: d.string("handle")?,
        },
        packet::READ => Request::Read {
            handle: d.string("handle")?,
            offset: d.u64("offset")?,
            len: d.u32("length")?,
        },
        packet::WRITE => Request::Write {
            handle: d.string("handle")?,
            offset: d.u64("offset")?,
            data: d.string("data")?,
        },
        packet::LSTAT => Request::Lstat {
            path: d.cstring("path")?,
        },
        packet::FSTAT => Request::Fstat {
            handle: d.string("handle")?,
        },
        packet::SETSTAT => Request::Setstat {
            path: d.cstring("path")?,
            attrs: d.attrs()?,
        },
        packet::FSETSTAT => Request::Fsetstat {
            handle: d.string("handle")?,
            attrs: d.attrs()?,
        },
        packet::OPENDIR => Request::Opendir {
            path: d.cstring("path")?,
        },
        packet::READDIR => Request::Readdir {
            handle: d.string("handle")?,
        },
        packet::REMOVE => Request::Remove {
            path: d.cstring("path")?,
        },
        packet::MKDIR => Request::Mkdir {
            path: d.cstring("path")?,
            attrs: d.attrs()?,
        },
        packet::RMDIR => Request::Rmdir {
            path: d.cstring("path")?,
        },
        packet::REALPATH => Request::Realpath {
            path: d.cstring("path")?,
        },
        packet::STAT => Request::Stat {
            path: d.cstring("path")?,
        },
        packet::RENAME => Request::Rename {
            from: d.cstring("old path")?,
            to: d.cstring("new path")?,
        },
        packet::READLINK => Request::Readlink {
            path: d.cstring("path")?,
        },
        packet::SYMLINK => Request::Symlink {
            target: d.cstring("link target")?,
            link: d.cstring("link path")?,
        },
        packet::EXTENDED => parse_extended(&mut d)?,
        packet_type => Request::UnknownType { packet_type },
    };
    Ok(Packet { id, request })
}

fn parse_extended<'a>(d: &mut Decoder<'a>) -> Result<Request<'a>, WireError> {
    let name = d.cstring("extension name")?;
    let Ok(text) = std::str::from_utf8(name) else {
        return Ok(Request::UnknownExtension { name });
    };
    Ok(match text {
        ext::POSIX_RENAME => Request::PosixRename {
            from: d.cstring("old path")?,
            to: d.cstring("new path")?,
        },
        ext::STATVFS => Request::Statvfs {
            path: d.cstring("path")?,
        },
        ext::FSTATVFS => Request::Fstatvfs {
            handle: d.string("handle")?,
        },
        ext::HARDLINK => Request::Hardlink {
            from: d.cstring("old path")?,
            to: d.cstring("new path")?,
        },
        ext::FSYNC => Request::Fsync {
            handle: d.string("handle")?,
        },
        ext::LSETSTAT => Request::Lsetstat {
            path: d.cstring("path")?,
            attrs: d.attrs()?,
        },
        ext::LIMITS => Request::Limits,
        ext::EXPAND_PATH => Request::ExpandPath {
            path: d.cstring("path")?,
        },
        ext::COPY_DATA => Request::CopyData {
            from: d.string("read handle")?,
            from_offset: d.u64("read offset")?,
            len: d.u64("read length")?,
            to: d.string("write handle")?,
            to_offset: d.u64("write offset")?,
        },
        ext::HOME_DIRECTORY => Request::HomeDirectory {
            user: d.cstring("user name")?,
        },
        ext::USERS_GROUPS_BY_ID => {
            let uids = id_list(d.string("uid list")?, "uid list")?;
            let gids = id_list(d.string("gid list")?, "gid list")?;
            Request::UsersGroupsById { uids, gids }
        }
        _ => Request::UnknownExtension { name },
    })
}

/// users-groups-by-id sends each list as one string of uint32s.
fn id_list(bytes: &[u8], field: &'static str) -> Result<Vec<u32>, WireError> {
    let mut d = Decoder::new(bytes);
    let mut ids = Vec::with_capacity(bytes.len() / 4);
    while d.remaining() > 0 {
        ids.push(d.u32(field)?);
    }
    Ok(ids)
}

/// A streamed WRITE's fields (`Frame::WriteHeader`): id, handle, offset and
/// the length of the data that follow.
pub fn parse_write_header(header: &[u8]) -> Result<(u32, &[u8], u64, u32), WireError> {
    let mut d = Decoder::new(header);
    d.u8("packet type")?;
    let id = d.u32("request id")?;
    let handle = d.string("handle")?;
    let offset = d.u64("offset")?;
    let len = d.u32("data length")?;
    Ok((id, handle, offset, len))
}
