//! Defence in depth (DESIGN.md): with the path checks switched off by the
//! test-only feature `unchecked-paths-for-landlock-test`, an escape that
//! resolution would normally refuse gets through to the filesystem — and
//! Landlock, set once the root is open, still stops it.
//!
//! Run by scripts/test.sh as
//! `cargo test --features unchecked-paths-for-landlock-test --test landlock_wall`
//! (in its own target directory, so the normal binary is not replaced).
#![cfg(feature = "unchecked-paths-for-landlock-test")]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_scp-server");

fn layout(tag: &str) -> PathBuf {
    let base = std::env::temp_dir().join(format!("scp-server-wall-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("root/in")).unwrap();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/secret"), b"outside secret\n").unwrap();
    std::os::unix::fs::symlink("../outside", base.join("root/out")).unwrap();
    base
}

fn run(base: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(base.join("root"))
        .args(args)
        .current_dir(base)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn outside_listing(base: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(base.join("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_upload_through_an_escaping_path_is_stopped_by_landlock() {
    for target in ["../outside", "out"] {
        let base = layout(&format!("up-{}", target.replace('/', "_")));
        let out = run(&base, &["-t", target], b"C0644 6 planted\nPWNED\n\0");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // Resolution let it through (the feature), so the refusal is the
        // kernel's: creating the temporary file outside is denied.
        assert!(stdout.contains("Permission denied"), "{target}: {stdout:?}");
        assert_eq!(out.status.code(), Some(1), "{target}");
        assert_eq!(
            outside_listing(&base),
            vec!["secret".to_string()],
            "{target}"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}

#[test]
fn a_download_through_an_escaping_path_is_stopped_by_landlock() {
    for path in ["../outside/secret", "out/secret"] {
        let base = layout(&format!("down-{}", path.replace('/', "_")));
        let out = run(&base, &["-f", path], b"\0\0\0");
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("outside secret"),
            "{path}: the outside file was sent"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Permission denied"),
            "{path}: {out:?}"
        );
        assert_eq!(out.status.code(), Some(1), "{path}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}

#[test]
fn the_feature_really_switches_the_path_checks_off() {
    // Without Landlock's help the same path would be readable: resolution
    // alone no longer refuses it (stat of the escaping path succeeds, and
    // the error comes from the open, not from the resolver).
    let base = layout("checks-off");
    let out = run(&base, &["-f", "../outside/secret"], b"\0\0\0");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("leads outside"),
        "resolution still refused: {stdout}"
    );
    std::fs::remove_dir_all(&base).unwrap();
}
