//! The accounts: passwd and group files as sshd and the binary read them,
//! and what an account may do with a file by its mode bits.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::output::io_text;
use crate::policy::Identity;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Account {
    pub(super) name: String,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) home: PathBuf,
    pub(super) shell: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct GroupEntry {
    pub(super) name: String,
    pub(super) gid: u32,
    pub(super) members: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Users {
    pub(super) accounts: Vec<Account>,
    pub(super) groups: Vec<GroupEntry>,
}

impl Users {
    /// The host's databases: passwd must be readable; a missing group file
    /// means no supplementary groups.
    pub(super) fn read(passwd: &Path, group: &Path) -> Result<Users, String> {
        let text = fs::read(passwd)
            .map_err(|e| format!("cannot read {}: {}", passwd.display(), io_text(&e)))?;
        Ok(Users {
            accounts: parse_passwd(&String::from_utf8_lossy(&text)),
            groups: read_groups(group),
        })
    }

    /// A jail's databases, which may well not exist.
    pub(super) fn read_optional(passwd: &Path, group: &Path) -> Users {
        let text = fs::read(passwd).unwrap_or_default();
        Users {
            accounts: parse_passwd(&String::from_utf8_lossy(&text)),
            groups: read_groups(group),
        }
    }

    pub(super) fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The primary group and every group that lists the account as a
    /// member: what sshd's initgroups gives the session.
    pub(super) fn gids_of(&self, account: &Account) -> Vec<u32> {
        let mut gids = vec![account.gid];
        for group in &self.groups {
            if group.members.contains(&account.name) && !gids.contains(&group.gid) {
                gids.push(group.gid);
            }
        }
        gids
    }

    pub(super) fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == gid)
            .map(|g| g.name.as_str())
    }

    /// The names the binary will find for `account` in these databases
    /// (inside a jail, the jail's), as policy sections are matched.
    pub(super) fn identity(&self, account: &Account, gids: &[u32]) -> Identity {
        let user = self
            .accounts
            .iter()
            .find(|a| a.uid == account.uid)
            .map(|a| a.name.clone());
        let mut unnamed_ids = user.is_none();
        let mut groups = Vec::new();
        for gid in gids {
            match self.group_name(*gid) {
                Some(name) if !groups.iter().any(|g| g == name) => groups.push(name.to_owned()),
                Some(_) => {}
                None => unnamed_ids = true,
            }
        }
        Identity {
            user,
            groups,
            unnamed_ids,
        }
    }
}

pub(super) fn read_groups(path: &Path) -> Vec<GroupEntry> {
    let text = fs::read(path).unwrap_or_default();
    parse_group(&String::from_utf8_lossy(&text))
}

pub(super) fn parse_passwd(text: &str) -> Vec<Account> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, uid, gid, _, home, shell] = fields[..] else {
                return None;
            };
            Some(Account {
                name: name.to_owned(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home: home.into(),
                shell: shell.into(),
            })
        })
        .collect()
}

pub(super) fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let [name, _, gid, members] = fields[..] else {
                return None;
            };
            Some(GroupEntry {
                name: name.to_owned(),
                gid: gid.parse().ok()?,
                members: members
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// A shell that can run a ForceCommand (`SHELL -c COMMAND`).
pub(super) fn usable_shell(shell: &Path) -> bool {
    let name = shell.file_name().and_then(OsStr::to_str).unwrap_or("");
    !matches!(
        name,
        "nologin" | "false" | "sync" | "halt" | "shutdown" | ""
    ) && shell.is_absolute()
}

/// Whether `path` names this program: by its name, or as the same file.
pub(super) fn is_scp_server(path: &Path, this_binary: Option<&Path>) -> bool {
    if path.file_name() == Some(OsStr::new("scp-server")) {
        return true;
    }
    let same = |a: &Path, b: &Path| match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    };
    this_binary.is_some_and(|this| same(path, this))
}

/// Whether the account may use `meta` with the `want` bits (`0o1` execute,
/// `0o3` write and search a directory), by its mode bits. Root passes any
/// check but execution of a file nobody may execute.
pub(super) fn permits(meta: &fs::Metadata, uid: u32, gids: &[u32], want: u32) -> bool {
    let mode = meta.mode();
    if uid == 0 {
        return want & 0o1 == 0 || meta.is_dir() || mode & 0o111 != 0;
    }
    let class = if meta.uid() == uid {
        mode >> 6
    } else if gids.contains(&meta.gid()) {
        mode >> 3
    } else {
        mode
    };
    class & want == want
}
