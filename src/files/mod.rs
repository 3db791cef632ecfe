//! What both protocols do to the filesystem under the policy (DESIGN.md,
//! "Layout"): each rule of "Filesystem rules" is implemented here once.

pub mod download;
pub mod pending;
pub mod upload;
