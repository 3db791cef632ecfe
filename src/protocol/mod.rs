//! Wire formats only: SCP records (`scp`) and SFTP packets (`sftp`), and
//! the escaping of bytes for messages. Pure code over `Read`/`Write` and
//! byte slices; nothing here touches the filesystem (DESIGN.md, "Layout").
#![forbid(unsafe_code)]

mod escape;
pub mod scp;
pub mod sftp;

pub use escape::escape_bytes;
// The SCP names are used throughout the SCP front end; they stay reachable
// as `protocol::X` so that `protocol::scp::X` and the short form agree.
pub use scp::*;
