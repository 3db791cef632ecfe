//! What the doctor's unit tests share: a jail as docs/drop-accounts.md
//! builds it, the test account, and a fake ELF file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use super::accounts::{Account, Users, parse_group, parse_passwd};
use super::sshd::SshdSource;
use super::{Host, doctor, on_host};

// What nearly every test names.
pub(super) use super::JAIL_SHELL;
pub(super) use super::output::{Finding, Severity};
pub(super) use crate::test_dir::TempDir;

pub(super) const ALICE_UID: u32 = 4242;
pub(super) const ALICE_GID: u32 = 4242;
pub(super) const DROP_GID: u32 = 4243;

pub(super) fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub(super) fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
}

pub(super) fn mkdirs(path: &Path) {
    fs::create_dir_all(path).unwrap();
    set_mode(path, 0o755);
}

/// Ownership is half of what these checks test; a good set-up (files
/// owned by root) can only be made as root, which CI is.
pub(super) fn root_or_skip() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: needs root to give files to root and to the test account");
    }
    root
}

/// A minimal little-endian ELF64 header with program headers of the
/// given types (PT_LOAD = 1).
pub(super) fn fake_elf(types: &[u32]) -> Vec<u8> {
    let mut elf = vec![0u8; 64];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    elf[6] = 1;
    elf[0x10] = 2;
    elf[0x12] = 62;
    elf[0x20] = 64;
    elf[0x36] = 56;
    elf[0x38] = u8::try_from(types.len()).unwrap();
    for t in types {
        let mut header = vec![0u8; 56];
        header[..4].copy_from_slice(&t.to_le_bytes());
        elf.extend(header);
    }
    elf
}

pub(super) fn alice(shell: &str) -> Account {
    Account {
        name: "alice".into(),
        uid: ALICE_UID,
        gid: ALICE_GID,
        home: "/".into(),
        shell: shell.into(),
    }
}

pub(super) fn users() -> Users {
    Users {
        accounts: parse_passwd(&format!(
            "alice:x:{ALICE_UID}:{ALICE_GID}::/:{JAIL_SHELL}\n"
        )),
        groups: parse_group(&format!(
            "alice:x:{ALICE_GID}:\nscp-drop:x:{DROP_GID}:alice\n"
        )),
    }
}

/// A jail as docs/drop-accounts.md builds it, with a bound journal
/// socket; returns the jail and the socket (kept open).
pub(super) struct Setup {
    pub(super) dir: TempDir,
    pub(super) jail: PathBuf,
    pub(super) binary: PathBuf,
    pub(super) _jail_socket: UnixDatagram,
    pub(super) _host_socket: UnixDatagram,
}

pub(super) fn good_setup() -> Setup {
    let dir = TempDir::new("doctor");
    let jail = dir.path("srv/scp-drop/alice");
    mkdirs(&jail.join("usr/local/libexec/scp-drop"));
    for d in ["srv", "srv/scp-drop", "srv/scp-drop/alice"] {
        set_mode(&dir.path(d), 0o755);
    }
    let binary = on_host(Some(&jail), Path::new(JAIL_SHELL));
    fs::write(&binary, fake_elf(&[1, 1])).unwrap();
    set_mode(&binary, 0o755);
    let incoming = jail.join("incoming");
    mkdirs(&incoming);
    chown(&incoming, ALICE_UID, ALICE_GID);
    mkdirs(&jail.join("run/systemd/journal"));
    let jail_socket = UnixDatagram::bind(jail.join("run/systemd/journal/socket")).unwrap();
    let host_socket = UnixDatagram::bind(dir.path("host-journal")).unwrap();
    mkdirs(&dir.path("etc/ssh"));
    // The host's external SFTP server, in the tree so that the tests do not
    // depend on the machine's openssh-sftp-server.
    let sftp_server = dir.path("usr/lib/openssh/sftp-server");
    mkdirs(sftp_server.parent().unwrap());
    fs::write(&sftp_server, b"#!/bin/sh\n").unwrap();
    set_mode(&sftp_server, 0o755);
    fs::write(
        dir.path("etc/passwd"),
        format!("alice:x:{ALICE_UID}:{ALICE_GID}::/:{JAIL_SHELL}\n"),
    )
    .unwrap();
    fs::write(
        dir.path("etc/group"),
        format!("alice:x:{ALICE_GID}:\nscp-drop:x:{DROP_GID}:alice\n"),
    )
    .unwrap();
    fs::write(
        dir.path("etc/ssh/sshd_config"),
        format!(
            "Subsystem sftp {}\nMatch Group scp-drop\n    ChrootDirectory {}/srv/scp-drop/%u\n",
            sftp_server.display(),
            dir.0.display()
        ),
    )
    .unwrap();
    Setup {
        dir,
        jail,
        binary,
        _jail_socket: jail_socket,
        _host_socket: host_socket,
    }
}

pub(super) fn host_for(setup: &Setup) -> Host {
    Host {
        passwd: setup.dir.path("etc/passwd"),
        group: setup.dir.path("etc/group"),
        sshd: SshdSource::Files(setup.dir.path("etc/ssh/sshd_config")),
        top: setup.dir.0.clone(),
        journal_socket: setup.dir.path("host-journal"),
        default_config: setup.dir.path("etc/scp-server.conf"),
        this_binary: Some(setup.binary.clone()),
    }
}

pub(super) fn run_doctor(host: &Host, user: Option<&str>) -> (i32, String) {
    let mut out = Vec::new();
    let status = doctor(host, user, &mut out);
    (status, String::from_utf8(out).unwrap())
}

pub(super) fn problems(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Problem)
        .collect()
}
