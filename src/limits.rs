//! Per-session limits (DESIGN.md "Contract details"): inclusive, counted
//! over files accepted — not refused ones, and not directories — and checked
//! from the size in the record, before any byte is accepted.

use crate::error::{DisplayPath, Error, Refusal};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_file_size: Option<u64>,
    pub max_total_bytes: Option<u64>,
    pub max_files: Option<u64>,
}

/// What a session has used of its limits so far.
#[derive(Debug, Default)]
pub struct Quota {
    limits: Limits,
    files: u64,
    bytes: u64,
}

impl Quota {
    pub fn new(limits: Limits) -> Self {
        Quota {
            limits,
            files: 0,
            bytes: 0,
        }
    }

    /// May a file of `size` bytes be transferred now?
    pub fn admit(&self, path: &[u8], size: u64) -> Result<(), Error> {
        let refuse = |why| Error::Refused {
            path: DisplayPath(path.to_vec()),
            why,
        };
        if let Some(max) = self.limits.max_file_size
            && size > max
        {
            return Err(refuse(Refusal::FileTooLarge { size, max }));
        }
        if let Some(max) = self.limits.max_files
            && self.files >= max
        {
            return Err(refuse(Refusal::TooManyFiles { max }));
        }
        if let Some(max) = self.limits.max_total_bytes
            && self.bytes.saturating_add(size) > max
        {
            return Err(refuse(Refusal::TotalTooLarge { size, max }));
        }
        Ok(())
    }

    /// Counts a file that was transferred completely.
    pub fn record(&mut self, size: u64) {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_inclusive() {
        let limits = Limits {
            max_file_size: Some(10),
            max_total_bytes: Some(15),
            max_files: Some(2),
        };
        let mut quota = Quota::new(limits);
        assert!(quota.admit(b"a", 10).is_ok());
        assert!(quota.admit(b"a", 11).is_err());
        quota.record(10);
        assert!(quota.admit(b"b", 5).is_ok());
        assert!(quota.admit(b"b", 6).is_err());
        quota.record(5);
        let err = quota.admit(b"c", 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "c: refused: this account may transfer at most 2 files per session"
        );
    }

    #[test]
    fn no_limits_admit_everything() {
        let quota = Quota::new(Limits::default());
        assert!(quota.admit(b"x", u64::MAX).is_ok());
    }
}
