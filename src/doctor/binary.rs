//! The binary sshd runs: present, root's, executable by the account, and
//! static inside a jail (read from its ELF program headers).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::INSTALLED_BINARY;
use super::accounts::{Account, permits};
use super::output::{Finding, io_text, sh_quote};

/// The program at `path` (on the host): present, a regular file that only
/// root can replace, executable by the account, static when it runs in a
/// jail, and preferably this very binary.
///
/// Inside a jail a symlink is refused: its target would be resolved in the
/// jail by sshd but on the host by this check.
pub(super) fn check_binary(
    path: &Path,
    account: &Account,
    gids: &[u32],
    in_jail: bool,
    this_binary: Option<&Path>,
) -> Vec<Finding> {
    let shown = sh_quote(path);
    let source = this_binary
        .map(sh_quote)
        .unwrap_or_else(|| INSTALLED_BINARY.to_owned());
    let install = format!("install -D -o root -g root -m 0755 {source} {shown}");
    let meta = if in_jail {
        fs::symlink_metadata(path)
    } else {
        fs::metadata(path)
    };
    let meta = match meta {
        Ok(meta) => meta,
        Err(e) => return vec![Finding::problem(io_text(&e), install)],
    };
    if !meta.file_type().is_file() {
        return vec![Finding::problem(
            "not a regular file",
            format!("rm {shown} && {install}"),
        )];
    }
    let mut findings = Vec::new();
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        findings.push(Finding::problem(
            format!(
                "could be replaced by someone other than root (owner uid {}, mode {:04o})",
                meta.uid(),
                meta.mode() & 0o7777
            ),
            format!("chown root:root {shown} && chmod 0755 {shown}"),
        ));
    }
    if !permits(&meta, account.uid, gids, 0o1) {
        findings.push(Finding::problem(
            format!(
                "not executable by {} (mode {:04o})",
                account.name,
                meta.mode() & 0o7777
            ),
            format!("chmod 0755 {shown}"),
        ));
    }
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            findings.push(Finding::problem(io_text(&e), install));
            return findings;
        }
    };
    if in_jail {
        findings.extend(static_finding(&bytes, &install));
    }
    if let Some(this) = this_binary
        && fs::read(this).is_ok_and(|own| own != bytes)
    {
        findings.push(Finding::warning(
            format!(
                "differs from {} (a copy from before an upgrade?)",
                this.display()
            ),
            install,
        ));
    }
    findings
}

/// Inside a jail there is no loader and no library: the binary must have
/// neither an ELF interpreter nor a dynamic section.
pub(super) fn static_finding(bytes: &[u8], install: &str) -> Option<Finding> {
    let why = match elf_linking(bytes) {
        Ok(ElfLinking {
            interp: false,
            dynamic: false,
        }) => return None,
        Ok(ElfLinking { interp: true, .. }) => {
            "has an ELF interpreter (it is dynamically linked)".to_owned()
        }
        Ok(_) => "has a dynamic section (a static-PIE or dynamically linked build)".to_owned(),
        Err(why) => format!("is not an executable this system can run: {why}"),
    };
    Some(Finding::problem(
        format!("it {why}; inside the jail it cannot start"),
        format!("{install} (the packaged binary and scripts/build-static.sh are static)"),
    ))
}

pub(super) const PT_DYNAMIC: u64 = 2;
pub(super) const PT_INTERP: u64 = 3;

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct ElfLinking {
    /// PT_INTERP: the kernel would start a loader first.
    pub(super) interp: bool,
    /// PT_DYNAMIC: relocations or libraries to process at start.
    pub(super) dynamic: bool,
}

/// Reads the program header table of an ELF file (32 or 64 bit, either byte
/// order) for PT_INTERP and PT_DYNAMIC.
pub(super) fn elf_linking(bytes: &[u8]) -> Result<ElfLinking, String> {
    if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err("not an ELF file".into());
    }
    let wide = match bytes.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err("unknown ELF class".into()),
    };
    let little = match bytes.get(5) {
        Some(1) => true,
        Some(2) => false,
        _ => return Err("unknown ELF byte order".into()),
    };
    let field = |offset: usize, size: usize| -> Result<u64, String> {
        let raw = offset
            .checked_add(size)
            .and_then(|end| bytes.get(offset..end))
            .ok_or("truncated ELF file")?;
        let fold = |acc: u64, b: &u8| (acc << 8) | u64::from(*b);
        Ok(if little {
            raw.iter().rev().fold(0, fold)
        } else {
            raw.iter().fold(0, fold)
        })
    };
    let (phoff, entsize, count) = if wide {
        (field(0x20, 8)?, field(0x36, 2)?, field(0x38, 2)?)
    } else {
        (field(0x1c, 4)?, field(0x2a, 2)?, field(0x2c, 2)?)
    };
    let mut linking = ElfLinking::default();
    for i in 0..count {
        let at = i
            .checked_mul(entsize)
            .and_then(|o| o.checked_add(phoff))
            .and_then(|o| usize::try_from(o).ok())
            .ok_or("program header table out of range")?;
        match field(at, 4)? {
            PT_INTERP => linking.interp = true,
            PT_DYNAMIC => linking.dynamic = true,
            _ => {}
        }
    }
    Ok(linking)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::test_support::*;

    #[test]
    fn binary_must_be_present_static_executable_and_roots() {
        if !root_or_skip() {
            return;
        }
        let setup = good_setup();
        let account = alice(JAIL_SHELL);
        let gids = [ALICE_GID, DROP_GID];
        let this = Some(setup.binary.as_path());
        let check = |path: &Path| check_binary(path, &account, &gids, true, this);
        assert_eq!(check(&setup.binary), vec![]);

        // Dynamically linked: the real /bin/sh.
        let dynamic = setup.dir.path("dynamic");
        fs::copy("/bin/sh", &dynamic).unwrap();
        set_mode(&dynamic, 0o755);
        let findings = check(&dynamic);
        assert_eq!(problems(&findings).len(), 1, "{findings:?}");
        assert!(
            findings[0].what.contains("has an ELF interpreter"),
            "{findings:?}"
        );
        // A static-PIE: a dynamic section without an interpreter.
        fs::write(&dynamic, fake_elf(&[1, 2])).unwrap();
        assert!(check(&dynamic)[0].what.contains("has a dynamic section"));
        // Not ELF at all.
        fs::write(&dynamic, b"#!/bin/sh\n").unwrap();
        assert!(check(&dynamic)[0].what.contains("not an ELF file"));

        // Not executable by the account.
        set_mode(&setup.binary, 0o744);
        let findings = check(&setup.binary);
        assert!(
            findings[0].what.contains("not executable by alice"),
            "{findings:?}"
        );
        assert!(findings[0].fix.starts_with("chmod 0755 "));
        // Replaceable by others.
        set_mode(&setup.binary, 0o775);
        assert!(check(&setup.binary)[0].what.contains("could be replaced"));
        set_mode(&setup.binary, 0o755);

        // Missing.
        let missing = setup.jail.join("usr/bin/nothing");
        let findings = check(&missing);
        assert!(findings[0].what.contains("No such file or directory"));
        assert!(
            findings[0]
                .fix
                .starts_with("install -D -o root -g root -m 0755 ")
        );

        // A different build than the running one: a warning only.
        let other = setup.dir.path("other");
        fs::write(&other, fake_elf(&[1])).unwrap();
        set_mode(&other, 0o755);
        let findings = check(&other);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].severity, Severity::Warning);
        assert!(findings[0].what.contains("differs from"));

        // Without a jail a dynamic binary is fine.
        let findings = check_binary(Path::new("/bin/sh"), &account, &gids, false, None);
        assert_eq!(findings, vec![]);
    }

    #[test]
    fn elf_program_headers() {
        assert_eq!(elf_linking(&fake_elf(&[1, 1])), Ok(ElfLinking::default()));
        assert_eq!(
            elf_linking(&fake_elf(&[6, 3, 1, 2])),
            Ok(ElfLinking {
                interp: true,
                dynamic: true
            })
        );
        let sh = elf_linking(&fs::read("/bin/sh").unwrap()).unwrap();
        assert!(sh.interp && sh.dynamic);
        // Truncated tables and nonsense are errors, never panics.
        let mut cut = fake_elf(&[1, 3]);
        cut.truncate(70);
        assert!(elf_linking(&cut).is_err());
        assert!(elf_linking(b"\x7fELF").is_err());
        assert!(elf_linking(b"MZ").is_err());
        let mut huge = fake_elf(&[1]);
        huge[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(elf_linking(&huge).is_err());
        // Big-endian ELF32 with a PT_INTERP.
        let mut be = vec![0u8; 52 + 32];
        be[..4].copy_from_slice(b"\x7fELF");
        be[4] = 1;
        be[5] = 2;
        be[0x1f] = 52;
        be[0x2b] = 32;
        be[0x2d] = 1;
        be[52 + 3] = 3;
        assert_eq!(
            elf_linking(&be),
            Ok(ElfLinking {
                interp: true,
                dynamic: false
            })
        );
    }
}
