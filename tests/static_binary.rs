//! The release binary must run inside a jail that holds nothing else: no
//! ELF interpreter (PT_INTERP) and no dynamic section (PT_DYNAMIC).

use std::path::{Path, PathBuf};
use std::process::Command;

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;

fn build_static_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/build-static.sh"))
        .current_dir(root)
        .output()
        .expect("run scripts/build-static.sh");
    assert!(
        out.status.success(),
        "static build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    root.join(
        stdout
            .lines()
            .last()
            .expect("build script prints the binary path"),
    )
}

/// Program header types of a little-endian ELF64 file.
fn program_header_types(elf: &[u8]) -> Vec<u32> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not ELF64");
    assert_eq!(elf[5], 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).map(|i| u32_at(phoff + i * phentsize)).collect()
}

#[test]
fn release_binary_is_fully_static() {
    let binary = build_static_binary();
    let elf = std::fs::read(&binary).unwrap();
    let types = program_header_types(&elf);
    assert!(!types.is_empty());
    assert!(
        !types.contains(&PT_INTERP),
        "{} has an ELF interpreter",
        binary.display()
    );
    assert!(
        !types.contains(&PT_DYNAMIC),
        "{} has a dynamic section",
        binary.display()
    );
    // And it runs: --version needs nothing from the filesystem.
    let out = Command::new(&binary).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("scp-server "));
}

#[test]
fn dynamic_binaries_are_recognised() {
    // The check itself must be able to fail: /bin/sh is dynamically linked.
    let elf = std::fs::read("/bin/sh").unwrap();
    let types = program_header_types(&elf);
    assert!(types.contains(&PT_INTERP) && types.contains(&PT_DYNAMIC));
}
