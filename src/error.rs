//! The one error type. `Display` is the sentence the client sees after
//! `scp: ` (and that logs record); every peer- or filesystem-supplied name in
//! it is escaped so that it cannot drive the client's terminal.

use std::fmt;

use nix::errno::Errno;

use crate::protocol::{ProtocolError, escape_bytes};

/// The system's sentence for an errno, in glibc's wording — what OpenSSH's
/// scp prints on Debian, and what users search for. nix's table follows the
/// kernel headers' comments, which differ for a few common errors; musl's
/// strerror differs again, so the static binary carries its own.
pub fn strerror(errno: Errno) -> &'static str {
    match errno {
        Errno::EIO => "Input/output error",
        Errno::EBADF => "Bad file descriptor",
        Errno::EAGAIN => "Resource temporarily unavailable",
        Errno::ENOMEM => "Cannot allocate memory",
        Errno::EXDEV => "Invalid cross-device link",
        Errno::ENFILE => "Too many open files in system",
        Errno::ENOTTY => "Inappropriate ioctl for device",
        Errno::ERANGE => "Numerical result out of range",
        Errno::EDEADLK => "Resource deadlock avoided",
        Errno::ENOLCK => "No locks available",
        Errno::ELOOP => "Too many levels of symbolic links",
        Errno::EBADMSG => "Bad message",
        Errno::EILSEQ => "Invalid or incomplete multibyte or wide character",
        Errno::EOPNOTSUPP => "Operation not supported",
        Errno::EDQUOT => "Disk quota exceeded",
        Errno::EOVERFLOW => "Value too large for defined data type",
        Errno::ESTALE => "Stale file handle",
        Errno::ENODATA => "No data available",
        other => other.desc(),
    }
}

/// A path as bytes (names need not be UTF-8), displayed escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayPath(pub Vec<u8>);

impl fmt::Display for DisplayPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_bytes(&self.0))
    }
}

/// Why the account's policy refuses one file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    FileTooLarge { size: u64, max: u64 },
    TotalTooLarge { size: u64, max: u64 },
    TooManyFiles { max: u64 },
    Denied { pattern: String },
    WouldOverwrite,
    NotRegularTarget,
    LinkedInPlace,
    SymlinkTarget,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::FileTooLarge { size, max } => write!(
                f,
                "the file has {size} bytes; this account's limit is {max} bytes per file"
            ),
            Refusal::TotalTooLarge { size, max } => write!(
                f,
                "{size} more bytes would exceed this account's limit of {max} bytes per session"
            ),
            Refusal::TooManyFiles { max } => {
                write!(
                    f,
                    "this account may transfer at most {max} files per session"
                )
            }
            Refusal::Denied { pattern } => write!(
                f,
                "this account may not use this path (it matches the deny pattern '{}')",
                escape_bytes(pattern.as_bytes())
            ),
            Refusal::WouldOverwrite => {
                f.write_str("the file exists and this account may not overwrite files")
            }
            Refusal::LinkedInPlace => f.write_str(
                "the file has other hard links and its directory is not writable, so it cannot be replaced safely",
            ),
            Refusal::NotRegularTarget => {
                f.write_str("the existing entry is not a regular file and is never written to")
            }
            Refusal::SymlinkTarget => f.write_str(
                "the name is a symlink and symlinks are not allowed for this account; it was left as it is",
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Error {
    // --- fatal: the session ends with exit status 1 ---
    Protocol(ProtocolError),
    /// Empty, `.`, `..` or a name with `/` (OpenSSH's wording, kept because
    /// users and client authors know it).
    UnexpectedFilename(Vec<u8>),
    DirectoryWithoutRecursion,
    TooDeep {
        max: usize,
    },
    ClosedInsideDirectory {
        name: Vec<u8>,
    },
    UploadIncomplete {
        path: DisplayPath,
        received: u64,
        size: u64,
    },

    // --- per item: reported, counted, and the session goes on ---
    /// A system call failed: `PATH: strerror` or `PATH: step: strerror`.
    Os {
        path: DisplayPath,
        step: Option<&'static str>,
        errno: Errno,
    },
    ControlCharacters {
        path: DisplayPath,
    },
    FifoWithoutReader {
        path: DisplayPath,
    },
    SenderDisowned {
        path: DisplayPath,
        message: Vec<u8>,
    },
    NotRegularFile {
        path: DisplayPath,
    },
    DirectoryCycle {
        path: DisplayPath,
    },
    NoNameToSend {
        path: DisplayPath,
    },
    ChangedWhileOpening {
        path: DisplayPath,
    },
    /// The account's policy says no.
    Refused {
        path: DisplayPath,
        why: Refusal,
    },
    /// A download pattern (shell-less modes) that matches nothing.
    NoMatch {
        pattern: DisplayPath,
    },
    PathEscapes {
        path: DisplayPath,
    },
    SymlinkEscapes {
        path: DisplayPath,
        link: DisplayPath,
    },
    SymlinkRefused {
        path: DisplayPath,
        link: DisplayPath,
    },
    ShortRead {
        path: DisplayPath,
        sent: u64,
        size: u64,
    },
}

impl Error {
    pub fn os(path: &[u8], errno: Errno) -> Self {
        Error::Os {
            path: DisplayPath(path.to_vec()),
            step: None,
            errno,
        }
    }

    pub fn os_step(path: &[u8], step: &'static str, errno: Errno) -> Self {
        Error::Os {
            path: DisplayPath(path.to_vec()),
            step: Some(step),
            errno,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => e.fmt(f),
            Error::UnexpectedFilename(name) => {
                write!(f, "error: unexpected filename: {}", escape_bytes(name))
            }
            Error::DirectoryWithoutRecursion => {
                f.write_str("protocol error: received directory without -r")
            }
            Error::TooDeep { max } => {
                write!(
                    f,
                    "protocol error: directories nested deeper than {max} levels"
                )
            }
            Error::ClosedInsideDirectory { name } => write!(
                f,
                "protocol error: connection closed inside directory '{}' (no E record)",
                escape_bytes(name)
            ),
            Error::UploadIncomplete {
                path,
                received,
                size,
            } => write!(
                f,
                "{path}: upload incomplete: connection closed after {received} of {size} bytes; file discarded"
            ),
            Error::Os {
                path,
                step: None,
                errno,
            } => write!(f, "{path}: {}", strerror(*errno)),
            Error::Os {
                path,
                step: Some(step),
                errno,
            } => {
                write!(f, "{path}: {step}: {}", strerror(*errno))
            }
            Error::ControlCharacters { path } => {
                write!(f, "{path}: file name contains control characters; skipped")
            }
            Error::FifoWithoutReader { path } => {
                write!(f, "{path}: no process has the FIFO open for reading")
            }
            Error::SenderDisowned { path, message } => write!(
                f,
                "{path}: upload discarded: the sender reported an error: {}",
                escape_bytes(message)
            ),
            Error::NotRegularFile { path } => write!(f, "{path}: not a regular file"),
            Error::DirectoryCycle { path } => {
                write!(f, "{path}: directory cycle: already being sent; skipped")
            }
            Error::NoNameToSend { path } => {
                write!(f, "{path}: the directory has no name to send it under")
            }
            Error::ChangedWhileOpening { path } => {
                write!(f, "{path}: changed while being opened; skipped")
            }
            Error::Refused { path, why } => write!(f, "{path}: refused: {why}"),
            Error::NoMatch { pattern } => write!(f, "{pattern}: no files match this pattern"),
            Error::PathEscapes { path } => {
                write!(
                    f,
                    "{path}: refused: the path leads outside this account's root directory"
                )
            }
            Error::SymlinkEscapes { path, link } => write!(
                f,
                "{path}: refusing to follow symlink '{link}': it leads outside this account's root directory"
            ),
            Error::SymlinkRefused { path, link } => write!(
                f,
                "{path}: refusing to follow symlink '{link}': symlinks are not allowed for this account"
            ),
            Error::ShortRead { path, sent, size } => write!(
                f,
                "{path}: file ended after {sent} of {size} bytes while being sent; the rest was sent as zero bytes"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_like_openssh() {
        let e = Error::os(b"dst/a", Errno::EACCES);
        assert_eq!(e.to_string(), "dst/a: Permission denied");
        let e = Error::os_step(b"/dev/null", "set times", Errno::EPERM);
        assert_eq!(
            e.to_string(),
            "/dev/null: set times: Operation not permitted"
        );
        assert_eq!(
            Error::os(b"x", Errno::ENAMETOOLONG).to_string(),
            "x: File name too long"
        );
        assert_eq!(
            Error::os(b"x", Errno::ENOSPC).to_string(),
            "x: No space left on device"
        );
    }

    #[test]
    fn errno_sentences_use_glibc_wording() {
        assert_eq!(strerror(Errno::ELOOP), "Too many levels of symbolic links");
        assert_eq!(strerror(Errno::EIO), "Input/output error");
        assert_eq!(strerror(Errno::EDQUOT), "Disk quota exceeded");
        assert_eq!(strerror(Errno::EACCES), "Permission denied");
    }

    #[test]
    fn names_are_escaped() {
        let e = Error::ControlCharacters {
            path: DisplayPath(b"dst/\x1b[31m".to_vec()),
        };
        assert_eq!(
            e.to_string(),
            "dst/\\x1b[31m: file name contains control characters; skipped"
        );
    }
}
