//! The legacy SCP wire protocol: record lines, status bytes and their
//! encoding.

mod reader;
mod record;
mod writer;

pub use reader::{Line, RecordReader, Status};
pub use record::{
    ProtocolError, Record, Times, encode_dir, encode_file, encode_times, parse_record,
    write_dir_record, write_file_record, write_times_record,
};
pub use writer::ReplyWriter;

/// Longest record line accepted, counting the terminating LF (DESIGN.md:
/// "record line 4096 bytes"). OpenSSH silently cuts lines at 2047 bytes and
/// parses the rest as the next record (PROTOCOL.md §h.9); we refuse instead.
pub const MAX_RECORD_LINE: usize = 4096;
