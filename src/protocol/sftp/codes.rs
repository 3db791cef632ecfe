//! Numbers of SFTP v3 (draft-ietf-secsh-filexfer-02) and OpenSSH's
//! extensions, by name.

/// The version this server speaks, whatever a client asks for (OpenSSH's
/// sftp-server does the same).
pub const VERSION: u32 = 3;

/// Longest packet accepted, its length field not counted (OpenSSH's
/// `SFTP_MAX_MSG_LENGTH`, 256 KiB): anything longer ends the session.
pub const MAX_PACKET: usize = 256 * 1024;

/// Longest READ answered and WRITE advertised (OpenSSH's limits reply:
/// the packet limit less room for headers).
pub const MAX_READ: u32 = 261_120;
pub const MAX_WRITE: u32 = 261_120;

/// Packet types.
pub mod packet {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;
}

/// STATUS codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum StatusCode {
    Ok = 0,
    Eof = 1,
    NoSuchFile = 2,
    PermissionDenied = 3,
    Failure = 4,
    BadMessage = 5,
    NoConnection = 6,
    ConnectionLost = 7,
    OpUnsupported = 8,
}

impl StatusCode {
    /// The message OpenSSH's sftp-server sends with each code.
    pub fn message(self) -> &'static str {
        match self {
            StatusCode::Ok => "Success",
            StatusCode::Eof => "End of file",
            StatusCode::NoSuchFile => "No such file",
            StatusCode::PermissionDenied => "Permission denied",
            StatusCode::Failure => "Failure",
            StatusCode::BadMessage => "Bad message",
            StatusCode::NoConnection => "No connection",
            StatusCode::ConnectionLost => "Connection lost",
            StatusCode::OpUnsupported => "Operation unsupported",
        }
    }

    pub fn from_u32(code: u32) -> Option<StatusCode> {
        use StatusCode::*;
        [
            Ok,
            Eof,
            NoSuchFile,
            PermissionDenied,
            Failure,
            BadMessage,
            NoConnection,
            ConnectionLost,
            OpUnsupported,
        ]
        .into_iter()
        .find(|c| *c as u32 == code)
    }
}

/// OPEN's pflags.
pub mod open_flags {
    pub const READ: u32 = 0x01;
    pub const WRITE: u32 = 0x02;
    pub const APPEND: u32 = 0x04;
    pub const CREAT: u32 = 0x08;
    pub const TRUNC: u32 = 0x10;
    pub const EXCL: u32 = 0x20;
}

/// Which fields an ATTRS structure carries.
pub mod attr_flags {
    pub const SIZE: u32 = 0x01;
    pub const UIDGID: u32 = 0x02;
    pub const PERMISSIONS: u32 = 0x04;
    pub const ACMODTIME: u32 = 0x08;
    pub const EXTENDED: u32 = 0x8000_0000;
}

/// Extension names, as OpenSSH spells them.
pub mod ext {
    pub const POSIX_RENAME: &str = "posix-rename@openssh.com";
    pub const STATVFS: &str = "statvfs@openssh.com";
    pub const FSTATVFS: &str = "fstatvfs@openssh.com";
    pub const HARDLINK: &str = "hardlink@openssh.com";
    pub const FSYNC: &str = "fsync@openssh.com";
    pub const LSETSTAT: &str = "lsetstat@openssh.com";
    pub const LIMITS: &str = "limits@openssh.com";
    pub const EXPAND_PATH: &str = "expand-path@openssh.com";
    pub const COPY_DATA: &str = "copy-data";
    pub const HOME_DIRECTORY: &str = "home-directory";
    pub const USERS_GROUPS_BY_ID: &str = "users-groups-by-id@openssh.com";
}

/// statvfs@openssh.com's flag bits.
pub const STATVFS_RDONLY: u64 = 0x1;
pub const STATVFS_NOSUID: u64 = 0x2;
