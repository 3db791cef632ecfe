//! scp-server as a library: the modules the binary (src/main.rs) is made
//! of, public so that the fuzz targets (fuzz/) and property tests can drive
//! the protocol parser, the command parser and the sink directly. The
//! binary is the product; this crate has no stable API.

// The feature that switches path checks off exists for one test only.
#[cfg(all(feature = "unchecked-paths-for-landlock-test", not(debug_assertions)))]
compile_error!(
    "unchecked-paths-for-landlock-test is a test-only feature; never build a release with it"
);

pub mod audit;
pub mod cli;
pub mod command;
pub mod confine;
pub mod doctor;
pub mod error;
pub mod files;
pub mod limits;
pub mod policy;
pub mod protocol;
pub mod sandbox;
pub mod scp;
pub mod sftp;
// The SCP conversations keep their short paths (fuzz targets, tests).
pub use scp::{sink, source};
#[cfg(test)]
mod test_dir;
pub mod transfer;
