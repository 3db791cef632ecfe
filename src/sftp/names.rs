//! What READDIR, STAT and users-groups-by-id say about a file: its SFTP
//! attributes, its `ls -l` line (the longname psftp, pscp and curl print),
//! and user and group names, looked up once each per session.

use std::collections::HashMap;

use nix::sys::stat::{FileStat, SFlag};
use nix::unistd::{Gid, Group, Uid, User};

use crate::protocol::sftp::Attrs;

/// The attributes OpenSSH's sftp-server sends for a file: size, owner,
/// the whole mode (type bits included) and the times in seconds.
pub fn attrs_of(st: &FileStat) -> Attrs {
    Attrs {
        size: Some(st.st_size as u64),
        owner: Some((st.st_uid, st.st_gid)),
        permissions: Some(st.st_mode),
        times: Some((st.st_atime as u32, st.st_mtime as u32)),
    }
}

/// Names of users and groups, remembered for the session (a listing of a
/// thousand files by one owner asks the passwd file once). Inside a jail
/// without passwd entries every name is the number.
#[derive(Default)]
pub struct NameCache {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl NameCache {
    pub fn user(&mut self, uid: u32) -> Option<&str> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .as_deref()
    }

    pub fn group(&mut self, gid: u32) -> Option<&str> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                Group::from_gid(Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .as_deref()
    }

    /// The `ls -l` line for `name`, laid out as OpenSSH's sftp-server lays
    /// it out: mode, link count, owner and group padded to 8, size, date
    /// (time of day within the last six months, else the year), name.
    pub fn longname(&mut self, name: &[u8], st: &FileStat, now: i64) -> Vec<u8> {
        let user = self
            .user(st.st_uid)
            .map_or_else(|| st.st_uid.to_string(), str::to_owned);
        let group = self
            .group(st.st_gid)
            .map_or_else(|| st.st_gid.to_string(), str::to_owned);
        let line = format!(
            "{} {:>3} {:<8} {:<8} {:>8} {} ",
            mode_string(st.st_mode),
            st.st_nlink,
            user,
            group,
            st.st_size,
            listing_date(st.st_mtime, now),
        );
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(name);
        bytes
    }
}

/// `drwxr-xr-x ` as strmode(3) writes it (with its trailing space).
pub fn mode_string(mode: u32) -> String {
    let kind = match SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => 'd',
        SFlag::S_IFLNK => 'l',
        SFlag::S_IFCHR => 'c',
        SFlag::S_IFBLK => 'b',
        SFlag::S_IFIFO => 'p',
        SFlag::S_IFSOCK => 's',
        SFlag::S_IFREG => '-',
        _ => '?',
    };
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let special = |exec: bool, set: bool, lower: char, upper: char| match (exec, set) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    };
    let mut s = String::with_capacity(11);
    s.push(kind);
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(mode & 0o100 != 0, mode & 0o4000 != 0, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(mode & 0o010 != 0, mode & 0o2000 != 0, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(mode & 0o001 != 0, mode & 0o1000 != 0, 't', 'T'));
    s.push(' ');
    s
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `%b %e %H:%M` for the last six months, `%b %e  %Y` otherwise, in UTC
/// (a static binary in a jail has no time zone files).
pub fn listing_date(mtime: i64, now: i64) -> String {
    let days = mtime.div_euclid(86_400);
    let secs = mtime.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let month = MONTHS[(month - 1) as usize];
    if now - (365 * 24 * 60 * 60) / 2 < mtime && now >= mtime {
        format!(
            "{month} {day:>2} {:02}:{:02}",
            secs / 3600,
            secs % 3600 / 60
        )
    } else {
        format!("{month} {day:>2}  {year}")
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic
/// Gregorian (Howard Hinnant's days-to-civil algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_ls_shows_them() {
        assert_eq!(mode_string(0o100644), "-rw-r--r-- ");
        assert_eq!(mode_string(0o040755), "drwxr-xr-x ");
        assert_eq!(mode_string(0o104755), "-rwsr-xr-x ");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt ");
        assert_eq!(mode_string(0o102644), "-rw-r-Sr-- ");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx ");
    }

    #[test]
    fn recent_files_show_the_time_older_ones_the_year() {
        // 2026-12-04 05:00:00 UTC.
        let now = 1_796_360_400;
        assert_eq!(listing_date(now - 3600, now), "Dec  4 04:00");
        assert_eq!(listing_date(0, now), "Jan  1  1970");
        // In the future: the year, as ls does.
        assert_eq!(listing_date(now + 86_400 * 400, now), "Jan  8  2028");
    }
}
