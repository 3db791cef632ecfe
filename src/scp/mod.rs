//! The SCP front end: the sink (`-t`) and source (`-f`) conversations,
//! over the filesystem operations of `files/`.

pub mod sink;
pub mod source;
