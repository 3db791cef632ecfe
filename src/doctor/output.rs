//! How findings are printed: one line per check, `PROBLEM` or `warning`
//! with what is wrong and, under it, the command or setting that fixes it.

use std::io::{self, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Severity {
    /// Something that stops the account from working as intended, or opens
    /// it up: the exit status is 1.
    Problem,
    /// Worth knowing, but the account works as configured.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    pub(super) severity: Severity,
    pub(super) what: String,
    pub(super) fix: String,
}

impl Finding {
    pub(super) fn problem(what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Problem,
            what: what.into(),
            fix: fix.into(),
        }
    }

    pub(super) fn warning(what: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            severity: Severity::Warning,
            what: what.into(),
            fix: fix.into(),
        }
    }
}

/// One check of one account: what was checked, and what is wrong with it.
pub(super) struct Check {
    pub(super) label: String,
    pub(super) findings: Vec<Finding>,
}

impl Check {
    pub(super) fn new(label: impl Into<String>, findings: Vec<Finding>) -> Check {
        Check {
            label: label.into(),
            findings,
        }
    }
}

#[derive(Default)]
pub(super) struct Tally {
    pub(super) problems: usize,
    pub(super) warnings: usize,
}

impl Tally {
    pub(super) fn count(&mut self, finding: &Finding) {
        match finding.severity {
            Severity::Problem => self.problems += 1,
            Severity::Warning => self.warnings += 1,
        }
    }
}

pub(super) fn print_finding(out: &mut dyn Write, label: &str, finding: &Finding) -> io::Result<()> {
    let tag = match finding.severity {
        Severity::Problem => "PROBLEM",
        Severity::Warning => "warning",
    };
    writeln!(out, "  {tag:<8} {label}: {}", finding.what)?;
    writeln!(out, "           fix: {}", finding.fix)
}

pub(super) fn print_checks(
    out: &mut dyn Write,
    checks: &[Check],
    tally: &mut Tally,
) -> io::Result<()> {
    for check in checks {
        if check.findings.is_empty() {
            writeln!(out, "  {:<8} {}", "ok", check.label)?;
        }
        for finding in &check.findings {
            print_finding(out, &check.label, finding)?;
            tally.count(finding);
        }
    }
    Ok(())
}

pub(super) fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A path as a shell word in a printed fix.
pub(super) fn sh_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%=,".contains(&b));
    if plain && !text.is_empty() {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The system's wording of an I/O error, without Rust's "(os error N)".
pub(super) fn io_text(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => crate::error::strerror(nix::errno::Errno::from_raw(code)).to_owned(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_shell_words() {
        assert_eq!(sh_quote(Path::new("/srv/a b")), "'/srv/a b'");
        assert_eq!(sh_quote(Path::new("/srv/scp-drop")), "/srv/scp-drop");
    }
}
