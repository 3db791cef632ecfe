//! The SFTP v3 wire protocol (draft-ietf-secsh-filexfer-02) with the
//! OpenSSH extensions its clients use: packet framing, requests, replies,
//! attributes and status codes. Pure code over byte buffers and `Read`.

pub mod codes;
mod frame;
mod request;
mod wire;

pub use codes::StatusCode;
pub use frame::{Frame, NameEntry, PacketReader, Replies};
pub use request::{LIST_NAMES, Packet, Request, parse_packet, parse_write_header};
pub use wire::{Attrs, Decoder, Encoder, WireError};
