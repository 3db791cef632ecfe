//! The SFTP server (`--sftp`, and `internal-sftp`/`sftp-server` command
//! strings in the restricted modes): SFTP v3 requests turned into the same
//! filesystem operations the SCP sink and source use (`files/`), under the
//! same policy and confinement (DESIGN.md, "SFTP").
//!
//! The conversation is one request, one reply, in order. Requests are
//! read in large chunks and the replies to a batch of them leave in one
//! write, so that a pipelining client costs few system calls.

mod handles;
mod names;
mod paths;
mod server;

pub use server::{DenyCheck, SftpOptions, run};

/// Exit statuses as OpenSSH's sftp-server has them.
pub mod exit {
    /// The client closed the session.
    pub const CLEAN: i32 = 0;
    /// A packet longer than the protocol allows.
    pub const BAD_LENGTH: i32 = 11;
    /// Any other malformed input.
    pub const FATAL: i32 = 255;
}
