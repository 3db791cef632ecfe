//! The installable parts: man pages, systemd files, the Debian package and
//! the RPM spec (packaging/README.md).
//!
//! - The man pages are clean under `mandoc -T lint` at every level.
//! - The units pass `systemd-analyze verify`; sysusers.d and tmpfiles.d
//!   create the groups and the base directory in a scratch root; the
//!   cleanup command removes old temporary upload files and nothing else;
//!   the journal helper binds a socket into a jail and unbinds it.
//! - The .deb builds, has exactly the expected files, passes lintian
//!   without errors, and installs, upgrades, removes and purges in a
//!   debootstrap'd Debian 12 with its real maintainer scripts
//!   (packaging/deb/check-install.sh): the divert of /usr/bin/scp is made
//!   and undone, and `scp` runs OpenSSH's client throughout.
//!
//! The tools (mandoc, lintian, debootstrap, systemd) and root are needed.
//! Outside CI a test without them says why and passes; under `CI` the
//! missing Debian packages are installed (as root), and a test that still
//! cannot run fails.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether `tool` is installed; sbin directories count (debootstrap and
/// chroot live there, and check-install.sh adds them to its PATH).
fn have(tool: &str) -> bool {
    Command::new("sh")
        .args([
            "-c",
            &format!("PATH=$PATH:/usr/sbin:/sbin command -v {tool}"),
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One apt-get at a time: the tests of this file run in parallel.
static APT: Mutex<()> = Mutex::new(());

/// Whether `tools` are all present. Under CI, missing ones are installed
/// from `packages` and their absence afterwards is a failure; elsewhere the
/// test is skipped with the reason.
fn tools(tools: &[&str], packages: &[&str]) -> bool {
    let missing = || tools.iter().filter(|t| !have(t)).count();
    if missing() == 0 {
        return true;
    }
    if !in_ci() {
        eprintln!(
            "skipped: needs {} (Debian packages: {})",
            tools.join(", "),
            packages.join(" ")
        );
        return false;
    }
    assert!(
        is_root(),
        "CI: {} missing and not root to install {}",
        tools.join(", "),
        packages.join(" ")
    );
    let _apt = APT.lock().unwrap_or_else(|e| e.into_inner());
    if missing() > 0 && !apt_install(packages) {
        // A fresh image may have no package lists yet.
        run_ok(Command::new("apt-get").arg("update"));
        assert!(
            apt_install(packages),
            "CI: apt-get install {packages:?} failed"
        );
    }
    assert_eq!(
        missing(),
        0,
        "CI: {tools:?} still missing after installing {packages:?}"
    );
    true
}

fn apt_install(packages: &[&str]) -> bool {
    Command::new("timeout")
        .arg("600")
        .args(["apt-get", "install", "-y", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success())
}

/// Root is needed for ownership, chroot and mounts: skipped outside CI,
/// a failure under it.
fn root_or_skip(why: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(!in_ci(), "CI: must run as root ({why})");
    eprintln!("skipped: needs root ({why})");
    false
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run_ok(command: &mut Command) -> String {
    let out = run(command);
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A private directory, mode 0755, removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "scp-server-packaging-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Man pages
// ---------------------------------------------------------------------------

const MAN_PAGES: &[&str] = &["man/scp-server.8", "man/scp-server.conf.5"];

#[test]
fn man_pages_are_clean_under_mandoc_lint() {
    if !tools(&["mandoc"], &["mandoc"]) {
        return;
    }
    for page in MAN_PAGES {
        // -W all: style messages too; any output at all is a failure.
        let out = run(Command::new("mandoc")
            .args(["-T", "lint", "-W", "all"])
            .arg(repo().join(page)));
        let messages = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success() && messages.is_empty(),
            "{page}:\n{messages}"
        );
    }
}

#[test]
fn man_pages_document_every_option_of_help() {
    let help = run_ok(Command::new(env!("CARGO_BIN_EXE_scp-server")).arg("--help"));
    let page = fs::read_to_string(repo().join("man/scp-server.8")).unwrap();
    let options: Vec<&str> = help
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.trim_end_matches(','))
        .collect();
    assert!(options.len() > 10, "{help}");
    for option in options {
        // roff writes a dash as \-.
        let roff = option.replace('-', "\\-");
        assert!(
            page.contains(&roff),
            "scp-server.8 does not document {option}"
        );
    }
    let conf = fs::read_to_string(repo().join("man/scp-server.conf.5")).unwrap();
    for key in [
        "root",
        "read\\-only",
        "write\\-only",
        "no\\-overwrite",
        "umask",
        "allow\\-setid",
        "no\\-symlinks",
        "max\\-file\\-size",
        "max\\-total\\-bytes",
        "max\\-files",
        "max\\-depth",
        "fsync",
        "deny",
        "log",
        "checksum",
    ] {
        assert!(
            conf.contains(&format!(".BR {key} \"")),
            "scp-server.conf.5 does not document the key {key}"
        );
    }
}

// ---------------------------------------------------------------------------
// systemd files
// ---------------------------------------------------------------------------

/// `systemd-analyze verify` checks that ExecStart programs exist, so the
/// journal unit is verified with its helper's path pointed at the source
/// tree's copy (the installed paths are verified in check-install.sh).
#[test]
fn units_pass_systemd_analyze_verify() {
    if !tools(&["systemd-analyze"], &["systemd"]) {
        return;
    }
    let dir = TempDir::new();
    let system = repo().join("systemd/system");
    let journal = fs::read_to_string(system.join("scp-drop-journal@.service"))
        .unwrap()
        .replace(
            "/usr/libexec/scp-server/scp-drop-journal",
            repo()
                .join("systemd/libexec/scp-drop-journal")
                .to_str()
                .unwrap(),
        );
    fs::write(dir.0.join("scp-drop-journal@.service"), journal).unwrap();
    for unit in ["scp-drop-cleanup.service", "scp-drop-cleanup.timer"] {
        fs::copy(system.join(unit), dir.0.join(unit)).unwrap();
    }
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.0.join("scp-drop-cleanup.service"))
        .arg(dir.0.join("scp-drop-cleanup.timer"))
        .arg(dir.0.join("scp-drop-journal@.service")));
    let messages = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success() && messages.is_empty(), "{messages}");
}

#[test]
fn sysusers_and_tmpfiles_make_the_groups_and_a_chroot_safe_base() {
    if !tools(&["systemd-sysusers", "systemd-tmpfiles"], &["systemd"]) {
        return;
    }
    if !root_or_skip("tmpfiles sets ownership") {
        return;
    }
    let root = TempDir::new();
    fs::create_dir(root.0.join("etc")).unwrap();
    let sysusers = repo().join("systemd/sysusers.d/scp-server.conf");
    let tmpfiles = repo().join("systemd/tmpfiles.d/scp-server.conf");
    run_ok(
        Command::new("systemd-sysusers")
            .arg(format!("--root={}", root.0.display()))
            .arg(&sysusers),
    );
    let group = fs::read_to_string(root.0.join("etc/group")).unwrap();
    for name in ["scp-drop", "scp-drop-fc"] {
        assert!(
            group.lines().any(|l| l.starts_with(&format!("{name}:"))),
            "{group}"
        );
    }
    run_ok(
        Command::new("systemd-tmpfiles")
            .arg(format!("--root={}", root.0.display()))
            .arg("--create")
            .arg(&tmpfiles),
    );
    // sshd's rule for every component of a ChrootDirectory.
    let base = fs::metadata(root.0.join("srv/scp-drop")).unwrap();
    assert!(base.is_dir());
    assert_eq!(
        (base.uid(), base.gid(), base.mode() & 0o7777),
        (0, 0, 0o755)
    );
    // And it puts the mode right if someone loosened it.
    fs::set_permissions(
        root.0.join("srv/scp-drop"),
        fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    run_ok(
        Command::new("systemd-tmpfiles")
            .arg(format!("--root={}", root.0.display()))
            .arg("--create")
            .arg(&tmpfiles),
    );
    let base = fs::metadata(root.0.join("srv/scp-drop")).unwrap();
    assert_eq!(base.mode() & 0o7777, 0o755);
}

/// The cleanup service's own command line, run over a scratch base:
/// temporary upload files unmodified for over a day go, everything else
/// stays.
#[test]
fn cleanup_removes_only_abandoned_temporary_uploads() {
    let unit = fs::read_to_string(repo().join("systemd/system/scp-drop-cleanup.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart in scp-drop-cleanup.service");
    let base = TempDir::new();
    let words: Vec<String> = exec
        .split_whitespace()
        .map(|w| w.replace("/srv/scp-drop", base.0.to_str().unwrap()))
        .collect();

    let incoming = base.0.join("alice/incoming");
    fs::create_dir_all(incoming.join("sub")).unwrap();
    let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    let make = |rel: &str, age: Option<SystemTime>| {
        let path = incoming.join(rel);
        fs::write(&path, b"x").unwrap();
        if let Some(time) = age {
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(time)
                .unwrap();
        }
        path
    };
    let abandoned = make(".scp-server-123-0-0abc.tmp", Some(old));
    let abandoned_deep = make("sub/.scp-server-9-1-ffff.tmp", Some(old));
    let in_progress = make(".scp-server-124-0-0abd.tmp", None);
    let old_upload = make("report.pdf", Some(old));
    let lookalike = make(".scp-server-notes.txt", Some(old));
    // A directory and a symlink with a temp file's name are not files it
    // removes; the symlink's old target outside stays too.
    let outside = base.0.join("outside-target");
    fs::write(&outside, b"keep").unwrap();
    std::os::unix::fs::symlink(&outside, incoming.join(".scp-server-1-1-1.tmp")).unwrap();
    fs::create_dir(incoming.join(".scp-server-2-2-2.tmp")).unwrap();

    run_ok(Command::new(&words[0]).args(&words[1..]));
    assert!(!abandoned.exists() && !abandoned_deep.exists());
    for kept in [&in_progress, &old_upload, &lookalike, &outside] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    assert!(
        incoming
            .join(".scp-server-1-1-1.tmp")
            .symlink_metadata()
            .is_ok()
    );
    assert!(incoming.join(".scp-server-2-2-2.tmp").is_dir());
}

/// scp-drop-journal binds a socket into a jail so that a datagram sent to
/// the jail's path arrives at the host's socket; refuses jails the account
/// could tamper with; unbinds.
#[test]
fn journal_helper_binds_the_socket_into_a_jail() {
    if !root_or_skip("bind mounts") {
        return;
    }
    let base = TempDir::new();
    let jail = base.0.join("alice");
    fs::create_dir(&jail).unwrap();
    fs::set_permissions(&jail, fs::Permissions::from_mode(0o755)).unwrap();
    let host_socket = base.0.join("host-journal");
    let listener = UnixDatagram::bind(&host_socket).unwrap();
    let helper = repo().join("systemd/libexec/scp-drop-journal");
    let helper_run = |action: &str, name: &str| {
        run(Command::new(&helper)
            .args([action, base.0.to_str().unwrap(), name])
            .env("SCP_DROP_JOURNAL_SOCKET", &host_socket))
    };
    let out = helper_run("bind", "alice");
    if !out.status.success() && text(&out.stderr).contains("permission denied") && !in_ci() {
        eprintln!("skipped: mount not permitted here: {}", text(&out.stderr));
        return;
    }
    assert!(out.status.success(), "bind: {}", text(&out.stderr));
    let socket = jail.join("run/systemd/journal/socket");
    let unbind = scopeguard(|| {
        let _ = helper_run("unbind", "alice");
    });
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"hello", &socket)
        .unwrap();
    let mut buf = [0u8; 16];
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    let dir = fs::metadata(jail.join("run/systemd/journal")).unwrap();
    assert_eq!((dir.uid(), dir.mode() & 0o7777), (0, 0o755));
    // Binding again is a no-op.
    assert!(helper_run("bind", "alice").status.success());
    drop(unbind);
    assert!(
        !run(Command::new("mountpoint").arg("-q").arg(&socket))
            .status
            .success()
    );

    // A name with a slash (an unescaped "-" in the unit's instance).
    let out = helper_run("bind", "alice/smith");
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("systemd-escape"),
        "{}",
        text(&out.stderr)
    );
    // A jail the account could write.
    fs::set_permissions(&jail, fs::Permissions::from_mode(0o775)).unwrap();
    let out = helper_run("bind", "alice");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("group- or world-writable"));
}

/// Runs `f` when dropped: unmounts even when an assertion fails.
fn scopeguard<F: FnMut()>(f: F) -> impl Drop {
    struct Guard<F: FnMut()>(F);
    impl<F: FnMut()> Drop for Guard<F> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    Guard(f)
}

// ---------------------------------------------------------------------------
// The Debian package
// ---------------------------------------------------------------------------

/// Everything the .deb installs (dpkg-deb -c, without the leading `./`).
const DEB_FILES: &[&str] = &[
    "lib/systemd/system/scp-drop-cleanup.service",
    "lib/systemd/system/scp-drop-cleanup.timer",
    "lib/systemd/system/scp-drop-journal@.service",
    "usr/bin/scp -> scp-server",
    "usr/bin/scp-server",
    "usr/lib/sysusers.d/scp-server.conf",
    "usr/lib/tmpfiles.d/scp-server.conf",
    "usr/libexec/scp-server/scp-drop-journal",
    "usr/share/doc/scp-server/README.md.gz",
    "usr/share/doc/scp-server/changelog.Debian.gz",
    "usr/share/doc/scp-server/copyright",
    "usr/share/doc/scp-server/drop-accounts.md.gz",
    "usr/share/doc/scp-server/examples/scp-drop.conf",
    "usr/share/lintian/overrides/scp-server",
    "usr/share/man/man5/scp-server.conf.5.gz",
    "usr/share/man/man8/scp-server.8.gz",
];

fn build_deb() -> PathBuf {
    let stdout = run_ok(
        Command::new("timeout")
            .args(["900", "bash"])
            .arg(repo().join("packaging/deb/build.sh")),
    );
    repo().join(
        stdout
            .lines()
            .last()
            .expect("build.sh prints the package path"),
    )
}

/// The files of the package, directories left out.
fn deb_files(deb: &Path) -> Vec<String> {
    let listing = run_ok(Command::new("dpkg-deb").arg("-c").arg(deb));
    let mut files: Vec<String> = listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_once("./").map(|(_, path)| path.to_owned()))
        .collect();
    files.sort();
    files
}

#[test]
fn deb_builds_passes_lintian_and_installs_in_a_throwaway_debian() {
    if !tools(&["dpkg-deb", "lintian"], &["dpkg", "lintian"]) {
        return;
    }
    let deb = build_deb();
    assert_eq!(deb_files(&deb), DEB_FILES);

    let info = run_ok(Command::new("dpkg-deb").arg("-I").arg(&deb));
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        assert!(
            info.contains(&format!(" {script} ")),
            "no {script}:\n{info}"
        );
    }
    let unpacked = TempDir::new();
    run_ok(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked.0),
    );
    let scp = fs::read_link(unpacked.0.join("usr/bin/scp")).unwrap();
    assert_eq!(scp, Path::new("scp-server"));
    let binary = fs::metadata(unpacked.0.join("usr/bin/scp-server")).unwrap();
    assert_eq!(binary.mode() & 0o7777, 0o755);

    // Errors fail; warnings are shown. (With --show-overrides lintian
    // fails on overridden errors too, so the overrides are listed apart.)
    let out = run(Command::new("timeout")
        .args(["600", "lintian", "--fail-on", "error", "--display-info"])
        .arg(&deb));
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    eprintln!("lintian:\n{report}");
    assert!(out.status.success(), "lintian failed:\n{report}");
    assert!(!report.lines().any(|l| l.starts_with("E: ")), "{report}");
    // Every override is in use: each one is explained in packaging/README.md.
    let out = run(Command::new("timeout")
        .args(["600", "lintian", "--show-overrides"])
        .arg(&deb));
    let overridden = text(&out.stdout);
    for tag in [
        "statically-linked-binary",
        "no-manual-page",
        "maintainer-script-calls-systemctl",
        "initial-upload-closes-no-bugs",
    ] {
        assert!(
            overridden.contains(&format!("O: scp-server: {tag} ")),
            "override {tag} unused:\n{overridden}"
        );
    }

    if !tools(&["debootstrap", "chroot"], &["debootstrap", "coreutils"])
        || !root_or_skip("chroot into a throwaway Debian")
    {
        return;
    }
    let out = run(Command::new("timeout")
        .args(["900", "bash"])
        .arg(repo().join("packaging/deb/check-install.sh"))
        .arg(&deb));
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    eprintln!("check-install:\n{report}");
    assert!(out.status.success(), "install check failed:\n{report}");
    for step in [
        "ok: installed: diversion of /usr/bin/scp to /usr/bin/scp.openssh by scp-server",
        "ok: installed: scp on the server runs OpenSSH's client",
        "ok: reinstalled",
        "ok: openssh-client reinstalled under the diversion",
        "ok: removed: diversion undone",
        "ok: purged",
    ] {
        assert!(report.contains(step), "missing '{step}':\n{report}");
    }
}

// ---------------------------------------------------------------------------
// The RPM spec
// ---------------------------------------------------------------------------

/// rpmbuild is not in CI; the spec is held to installing what the .deb
/// installs (less the divert), and parsed where rpmspec exists.
#[test]
fn rpm_spec_installs_the_same_files_without_replacing_scp() {
    let spec = fs::read_to_string(repo().join("packaging/rpm/scp-server.spec")).unwrap();
    for source in [
        "man/scp-server.8",
        "man/scp-server.conf.5",
        "systemd/sysusers.d/scp-server.conf",
        "systemd/tmpfiles.d/scp-server.conf",
        "systemd/system/scp-drop-cleanup.service",
        "systemd/system/scp-drop-cleanup.timer",
        "systemd/system/scp-drop-journal@.service",
        "systemd/libexec/scp-drop-journal",
        "packaging/sshd_config.d/scp-drop.conf",
        "scripts/build-static.sh",
    ] {
        assert!(spec.contains(source), "the spec does not install {source}");
        assert!(repo().join(source).exists(), "{source} does not exist");
    }
    for line in [
        "%{_bindir}/scp-server\n",
        "%{_unitdir}/scp-drop-journal@.service\n",
        "%{_pkgdocdir}/examples/scp-drop.conf\n",
    ] {
        assert!(spec.contains(line), "%files lacks {line}");
    }
    let commands = spec.lines().filter(|l| !l.trim_start().starts_with('#'));
    assert!(commands.clone().all(|l| !l.contains("dpkg-divert")));
    assert!(
        !spec.contains("%{_bindir}/scp\n"),
        "the RPM must not own /usr/bin/scp"
    );
    if have("rpmspec") {
        run_ok(
            Command::new("rpmspec")
                .arg("-P")
                .arg(repo().join("packaging/rpm/scp-server.spec")),
        );
    }
}
