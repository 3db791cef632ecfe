//! Confinement (issue 3, "How it is shown"): `scp-server --root DIR` over
//! pipes, with adversarial names, targets, sources, symlinks, special files
//! and policy limits.
//!
//! Every case runs twice, once per resolution back-end (`--resolver openat2`
//! and `--resolver walk`), as `nobody` unless it says otherwise (root
//! bypasses the permission checks that would otherwise hide a write in the
//! wrong place), with its working directory in `outside/` so that a path
//! resolved against the working directory instead of the root shows up as a
//! change outside. Each case checks the exact bytes on stdout, the exit
//! status, that no temporary file is left anywhere, and that nothing outside
//! the root changed; where nothing should change inside either, it checks
//! the whole sandbox.
//!
//! The sandbox (see [`layout`]):
//!
//! ```text
//! etc/passwd        SECRET   <- ROOT/../../etc/passwd
//! outside/secret    SECRET   <- the working directory, and symlink targets
//! jail/x, jail/y    SECRET   <- ROOT/../x, ROOT/x/../../y
//! jail/root/        ROOT
//! ```
//!
//! Every file outside the root holds [`SECRET`], so a download that
//! contains it has read outside the root.

mod common;

use std::time::Duration;

use common::*;

/// The confinement root, relative to the sandbox.
const ROOT: &str = "jail/root";

/// Content of every file outside the root; never seen in a download.
const SECRET: &[u8] = b"OUTSIDE-THE-ROOT 9c41e7d2\n";

/// The resolution back-ends; every case runs with each.
const RESOLVERS: [&str; 2] = ["openat2", "walk"];

/// Enough `00` replies for any download here (the source reads one before
/// each record and after each file; the rest is never read).
const GO: &[u8] = &[0; 64];

/// A FIFO, device or socket must never be opened: a hang would be a bug.
const SPECIAL_TIMEOUT: Duration = Duration::from_secs(5);

const OUTSIDE_MESSAGE: &str = "it leads outside this account's root directory";
const NO_SYMLINKS_MESSAGE: &str = "symlinks are not allowed for this account";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A `01` warning line: `\x01scp: TEXT\n`.
fn warning(text: impl AsRef<[u8]>) -> Vec<u8> {
    cat(&[b"\x01scp: ", text.as_ref(), b"\n"])
}

fn acks(n: usize) -> Vec<u8> {
    vec![0; n]
}

/// One complete file upload: `C` record, data, the sender's `00`.
fn upload(name: &str, content: &[u8]) -> Vec<u8> {
    cat(&[&record(name, content.len()), content, b"\0"])
}

/// A `C` record alone: what a client sends for a file the server then
/// refuses (the client sends no data after a refusal).
fn record(name: &str, size: usize) -> Vec<u8> {
    format!("C0644 {size} {name}\n").into_bytes()
}

/// What the source sends for one regular file.
fn sent_file(mode: u32, name: &str, content: &[u8]) -> Vec<u8> {
    cat(&[
        format!("C{mode:04o} {} {name}\n", content.len()).as_bytes(),
        content,
        b"\0",
    ])
}

/// `ROOT/rel`, relative to the sandbox (for setup and tree checks).
fn inside(rel: &str) -> String {
    format!("{ROOT}/{rel}")
}

fn path_outside(path: &str) -> String {
    format!("{path}: refused: the path leads outside this account's root directory")
}

fn symlink_outside(path: &str, link: &str) -> String {
    format!("{path}: refusing to follow symlink '{link}': {OUTSIDE_MESSAGE}")
}

fn symlink_refused(path: &str, link: &str) -> String {
    format!("{path}: refusing to follow symlink '{link}': {NO_SYMLINKS_MESSAGE}")
}

fn not_regular_target(path: &str) -> String {
    format!("{path}: refused: the existing entry is not a regular file and is never written to")
}

fn denied(path: &str, pattern: &str) -> String {
    format!(
        "{path}: refused: this account may not use this path (it matches the deny pattern '{pattern}')"
    )
}

/// The sandbox every case starts from: a root two levels down, and a file
/// with [`SECRET`] wherever an escape from the root would land.
fn layout(sb: &Sandbox) {
    sb.dir("jail", 0o755)
        .dir(ROOT, 0o755)
        .dir("etc", 0o755)
        .file("etc/passwd", SECRET, 0o644)
        .file("outside/secret", SECRET, 0o644)
        .file("jail/x", SECRET, 0o644)
        .file("jail/y", SECRET, 0o644);
}

/// A case confined to [`ROOT`], working directory `outside/`, with the
/// layout plus `extra` as its starting tree.
fn confined(args: &[&str], extra: impl Fn(&Sandbox) + 'static) -> Case {
    Case::new(args).root(ROOT).cwd("outside").setup(move |sb| {
        layout(sb);
        extra(sb);
    })
}

/// Runs the case once per resolution back-end and applies the same checks.
/// The back-end is printed first, so a failure's output names it. The walk
/// stands for an older kernel (no openat2, and so no linking of unnamed
/// files either): it uploads new files through named temporary files.
fn each_resolver(case: &Case, check: impl Fn(&Observed)) {
    for resolver in RESOLVERS {
        println!("--- resolver {resolver}");
        let server = match resolver {
            "walk" => Server::OursNamedTemp,
            _ => Server::Ours,
        };
        let run = case.clone().admin(&["--resolver", resolver]).run(server);
        check(&run);
    }
}

/// The checks every case ends with: exact stdout and exit status, no
/// temporary file anywhere, no secret in the output, nothing changed
/// outside the root.
fn expect(run: &Observed, stdout: impl AsRef<[u8]>, code: i32) -> &Observed {
    run.stdout(stdout)
        .exit(code)
        .no_temp_files()
        .unchanged_outside(ROOT);
    assert!(
        !contains(&run.outcome.stdout, SECRET),
        "a file from outside the root was sent: {}",
        show(&run.outcome.stdout)
    );
    run
}

/// A case that must change nothing at all, inside the root or out.
fn expect_nothing_changes(case: &Case, stdout: impl AsRef<[u8]>, code: i32) {
    each_resolver(case, |run| {
        expect(run, stdout.as_ref(), code).unchanged();
    });
}

// ---------------------------------------------------------------------------
// Direction: read-only and write-only accounts
// ---------------------------------------------------------------------------

#[test]
fn read_only_refuses_uploads_before_the_first_ack() {
    let case = confined(&["-t", "/"], |_| {})
        .admin(&["--read-only"])
        .stdin(upload("f", b"hello"));
    expect_nothing_changes(
        &case,
        warning("uploads are not allowed for this account"),
        1,
    );
}

#[test]
fn read_only_still_allows_downloads() {
    let case = confined(&["-f", "f"], |sb| {
        sb.file(inside("f"), b"hello", 0o644);
    })
    .admin(&["--read-only"])
    .stdin(GO);
    expect_nothing_changes(&case, sent_file(0o644, "f", b"hello"), 0);
}

#[test]
fn write_only_refuses_downloads() {
    let case = confined(&["-f", "f"], |sb| {
        sb.file(inside("f"), b"hello", 0o644);
    })
    .admin(&["--write-only"])
    .stdin(GO);
    expect_nothing_changes(
        &case,
        warning("downloads are not allowed for this account"),
        1,
    );
}

#[test]
fn write_only_still_allows_uploads() {
    let case = confined(&["-t", "/"], |_| {})
        .admin(&["--write-only"])
        .stdin(upload("f", b"hello"));
    each_resolver(&case, |run| {
        expect(run, acks(3), 0).file(inside("f"), b"hello", 0o644);
    });
}

// ---------------------------------------------------------------------------
// Names in C and D records
// ---------------------------------------------------------------------------

/// Names that are not one component end the session: the record could only
/// be meant to climb or to reach somewhere else. `a` and `etc` exist in the
/// root so that a server joining the name naively would succeed.
#[test]
fn names_that_are_not_one_component_end_the_session() {
    for name in ["..", ".", "a/b", "/etc/x", ""] {
        let streams = [
            upload(name, SECRET),
            cat(&[
                format!("D0755 0 {name}\n").as_bytes(),
                &upload("x", SECRET),
                b"E\n",
            ]),
        ];
        for stream in streams {
            println!("=== stream {}", show(&stream));
            let case = confined(&["-r", "-t", "/"], |sb| {
                sb.dir(inside("a"), 0o755).dir(inside("etc"), 0o755);
            })
            .stdin(stream);
            expect_nothing_changes(
                &case,
                cat(&[
                    b"\0",
                    &warning(format!("error: unexpected filename: {name}")),
                ]),
                1,
            );
        }
    }
}

/// `D ..` would put everything after it in the root's parent.
#[test]
fn directory_named_dot_dot_at_the_top_ends_the_session() {
    let stream = cat(&[b"D0755 0 ..\n", &upload("x", SECRET), b"E\n"]);
    let case = confined(&["-r", "-t", "/"], |_| {}).stdin(stream);
    expect_nothing_changes(
        &case,
        cat(&[b"\0", &warning("error: unexpected filename: ..")]),
        1,
    );
}

/// One level down, `D ..` then `D ..` again would leave the root.
#[test]
fn directory_named_dot_dot_inside_a_directory_ends_the_session() {
    let stream = cat(&[
        b"D0755 0 sub\nD0755 0 ..\nD0755 0 ..\n",
        &upload("x", SECRET),
        b"E\nE\nE\n",
    ]);
    let case = confined(&["-r", "-t", "/"], |_| {}).stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[b"\0\0", &warning("error: unexpected filename: ..")]),
            1,
        )
        .node(inside("sub"));
        run.absent(inside("x"));
    });
}

/// A NUL cannot be stored; the item is skipped and the session goes on.
#[test]
fn name_with_nul_is_skipped() {
    let stream = cat(&[b"C0644 3 a\0b\n", &upload("ok", b"ok")]);
    let case = confined(&["-t", "/"], |_| {}).stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[
                b"\0",
                &warning("/a\\x00b: file name contains control characters; skipped"),
                b"\0\0",
            ]),
            1,
        )
        .file(inside("ok"), b"ok", 0o644)
        .absent(inside("a"));
    });
}

/// NAME_MAX bytes are fine, one more is refused and the session goes on.
#[test]
fn name_longer_than_name_max_is_skipped() {
    let longest = String::from_utf8(repeat(b'n', 255)).unwrap();
    let too_long = String::from_utf8(repeat(b'n', 256)).unwrap();
    let stream = cat(&[&record(&too_long, 1), &upload(&longest, b"ok")]);
    let case = confined(&["-t", "/"], |_| {}).stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[
                b"\0",
                &warning(format!("/{too_long}: File name too long")),
                b"\0\0",
            ]),
            1,
        )
        .file(inside(&longest), b"ok", 0o644);
    });
}

/// A newline ends the record line, so a name cannot hold one: the rest,
/// here an escape attempt, is taken as file data, and the byte where the
/// sender's status belongs is not `00`. The session ends and the file the
/// sender never confirmed is not kept; nothing lands anywhere.
#[test]
fn newline_in_name_desynchronises_harmlessly() {
    for stream in [
        &b"C0644 3 a\nb\nxyz\0"[..],
        b"C0644 3 a\n../../y\nOUTSIDE\0",
        b"C0644 3 a\n/../../etc/passwd\0",
    ] {
        println!("=== stream {}", show(stream));
        let case = confined(&["-t", "/"], |_| {}).stdin(stream);
        expect_nothing_changes(&case, acks(2), 1);
    }
}

// ---------------------------------------------------------------------------
// Upload targets
// ---------------------------------------------------------------------------

/// Targets that lead outside are refused before the first ack, never
/// clamped to the root. `x` exists in the root, so `x/../../y` resolves as
/// far as the escape.
#[test]
fn upload_targets_that_leave_the_root_are_refused() {
    for target in [
        "../x",
        "/../../etc/passwd",
        "x/../../y",
        "..",
        "/..",
        "x/../..",
    ] {
        println!("=== target {target}");
        for recursive in [false, true] {
            let args: &[&str] = if recursive {
                &["-r", "-t", target]
            } else {
                &["-t", target]
            };
            let case = confined(args, |sb| {
                sb.dir(inside("x"), 0o755);
            })
            .stdin(upload("passwd", b"owned\n"));
            expect_nothing_changes(&case, warning(path_outside(target)), 1);
        }
    }
}

/// With `x` missing the kernel cannot even walk `x/..`: the path is
/// refused either as leaving the root or as not found, and nothing lands.
#[test]
fn upload_target_escaping_through_a_missing_directory_is_refused() {
    let target = "x/../../y";
    let case = confined(&["-t", target], |_| {}).stdin(record("y", 6));
    each_resolver(&case, |run| {
        run.stdout_one_of(&[
            warning(path_outside(target)),
            cat(&[
                b"\0",
                &warning(format!("{target}: No such file or directory")),
            ]),
        ])
        .exit(1)
        .no_temp_files()
        .unchanged();
    });
}

/// `..` is fine while the path stays inside; `/x` and `x` both mean
/// ROOT/x; `/`, `.` and `sub/..` are the root.
#[test]
fn upload_targets_inside_the_root_work() {
    let cases = [
        ("sub/../f", "f"),
        ("/f", "f"),
        ("f", "f"),
        ("//sub/./../f", "f"),
        ("/sub/f", "sub/f"),
        ("/", "up.txt"),
        (".", "up.txt"),
        ("sub/..", "up.txt"),
        ("sub/../sub", "sub/up.txt"),
    ];
    for (target, lands_at) in cases {
        println!("=== target {target}");
        let case = confined(&["-t", target], |sb| {
            sb.dir(inside("sub"), 0o755);
        })
        .stdin(upload("up.txt", b"hello"));
        each_resolver(&case, |run| {
            expect(run, acks(3), 0).file(inside(lands_at), b"hello", 0o644);
        });
    }
}

// ---------------------------------------------------------------------------
// Download sources
// ---------------------------------------------------------------------------

#[test]
fn download_sources_that_leave_the_root_are_refused() {
    for source in [
        "../x",
        "/../../etc/passwd",
        "x/../../y",
        "..",
        "/..",
        "x/../../outside/secret",
    ] {
        println!("=== source {source}");
        for recursive in [false, true] {
            let args: &[&str] = if recursive {
                &["-r", "-f", source]
            } else {
                &["-f", source]
            };
            let case = confined(args, |sb| {
                sb.dir(inside("x"), 0o755);
            })
            .stdin(GO);
            expect_nothing_changes(&case, warning(path_outside(source)), 1);
        }
    }
}

#[test]
fn download_sources_inside_the_root_work() {
    for source in ["sub/../f", "/f", "f", "//sub/./../f", "sub/up/f"] {
        println!("=== source {source}");
        let case = confined(&["-f", source], |sb| {
            sb.file(inside("f"), b"hello", 0o640)
                .dir(inside("sub"), 0o755)
                .symlink(inside("sub/up"), "..");
        })
        .stdin(GO);
        expect_nothing_changes(&case, sent_file(0o640, "f", b"hello"), 0);
    }
}

/// `-r -f` of the root itself sends the root directory's own name.
#[test]
fn downloading_the_root_itself_sends_its_own_name() {
    for source in ["/", ".", "sub/..", "//"] {
        println!("=== source {source}");
        let case = confined(&["-r", "-f", source], |sb| {
            sb.dir(inside("sub"), 0o755)
                .file(inside("sub/f"), b"hello", 0o644);
        })
        .stdin(GO);
        let expected = cat(&[
            b"D0755 0 root\n",
            b"D0755 0 sub\n",
            &sent_file(0o644, "f", b"hello"),
            b"E\nE\n",
        ]);
        expect_nothing_changes(&case, expected, 0);
    }
}

/// `..` after a symlink is the link target's parent, as the kernel walks
/// it, not the lexical parent: `deep -> a/b`, so `deep/..` is `a`, and the
/// directory goes out under that real name.
#[test]
fn dot_dot_after_a_symlink_names_the_real_directory() {
    let case = confined(&["-r", "-f", "deep/.."], |sb| {
        sb.dir(inside("a"), 0o755)
            .dir(inside("a/b"), 0o755)
            .symlink(inside("deep"), "a/b");
    })
    .stdin(GO);
    expect_nothing_changes(&case, b"D0755 0 a\nD0755 0 b\nE\nE\n", 0);
}

// ---------------------------------------------------------------------------
// Symlinks on the upload side
// ---------------------------------------------------------------------------

/// Symlinks of every kind in the root:
/// `in -> sub` (inside), `out -> ../../outside` (relative escape),
/// `abs -> /…/outside` (absolute escape), `fout`/`fabs` the same to the
/// file `outside/secret`, `sub/up -> ..` (the root, inside),
/// `sub/up2 -> ../..` (escape through `..`), `l1 <-> l2` (a loop).
fn links(sb: &Sandbox) {
    let outside = sb.path("outside");
    let secret = sb.path("outside/secret");
    sb.dir(inside("sub"), 0o755)
        .symlink(inside("in"), "sub")
        .symlink(inside("out"), "../../outside")
        .symlink(inside("abs"), &outside)
        .symlink(inside("fout"), "../../outside/secret")
        .symlink(inside("fabs"), &secret)
        .symlink(inside("sub/up"), "..")
        .symlink(inside("sub/up2"), "../..")
        .symlink(inside("l1"), "l2")
        .symlink(inside("l2"), "l1");
}

/// A `C` whose name is an existing symlink replaces the link with the
/// uploaded file; whatever the link pointed to is untouched.
#[test]
fn upload_onto_a_symlink_replaces_the_link() {
    for name in ["out", "abs", "fout", "fabs", "in", "l1"] {
        println!("=== name {name}");
        let case = confined(&["-t", "/"], links).stdin(upload(name, b"new"));
        each_resolver(&case, |run| {
            expect(run, acks(3), 0)
                .file(inside(name), b"new", 0o644)
                .dir(inside("sub"), 0o755);
        });
    }
}

/// The same through the target path itself: `-t l1` names the loop's
/// first link, whose final component is never followed.
#[test]
fn upload_target_naming_a_looping_symlink_replaces_it() {
    let case = confined(&["-t", "l1"], links).stdin(upload("x", b"new"));
    each_resolver(&case, |run| {
        expect(run, acks(3), 0).file(inside("l1"), b"new", 0o644);
    });
}

/// A target that reaches outside through a symlink, anywhere in its path,
/// is refused before the first ack, naming the link.
#[test]
fn upload_targets_through_escaping_symlinks_are_refused() {
    let cases = [
        ("out", "out"),
        ("out/f", "out"),
        ("abs", "abs"),
        ("abs/f", "abs"),
        ("fout", "fout"),
        ("fabs", "fabs"),
        ("sub/up2", "up2"),
        ("sub/up2/outside/f", "up2"),
        ("in/up2/f", "up2"),
        ("/sub/up/out/f", "out"),
    ];
    for (target, link) in cases {
        println!("=== target {target}");
        for recursive in [false, true] {
            let args: &[&str] = if recursive {
                &["-r", "-t", target]
            } else {
                &["-t", target]
            };
            let case = confined(args, links).stdin(upload("secret", b"owned\n"));
            expect_nothing_changes(&case, warning(symlink_outside(target, link)), 1);
        }
    }
}

/// A symlinked directory that stays inside is followed, in the middle of
/// the target path or as the target.
#[test]
fn upload_targets_through_inside_symlinks_work() {
    let cases = [
        ("in/f", "sub/f"),
        ("in", "sub/up.txt"),
        ("sub/up/f", "f"),
        ("sub/up/in/f", "sub/f"),
    ];
    for (target, lands_at) in cases {
        println!("=== target {target}");
        let case = confined(&["-t", target], links).stdin(upload("up.txt", b"hello"));
        each_resolver(&case, |run| {
            expect(run, acks(3), 0).file(inside(lands_at), b"hello", 0o644);
        });
    }
}

/// A loop in the middle of the path: the system's own message, per item.
#[test]
fn upload_target_through_a_symlink_loop() {
    let case = confined(&["-t", "l1/f"], links).stdin(record("f", 3));
    expect_nothing_changes(
        &case,
        cat(&[b"\0", &warning("l1/f: Too many levels of symbolic links")]),
        1,
    );
}

/// A hard link to a file outside the root, at the spot the upload writes:
/// replaced by the rename, never written through.
#[test]
fn upload_onto_a_hard_link_to_an_outside_file_replaces_it() {
    for (args, name) in [
        (&["-t", "/"][..], "hl"),
        (&["-t", "hl"], "x"),
        (&["-p", "-t", "/"], "hl"),
    ] {
        println!("=== args {args:?}");
        let case = confined(args, |sb| {
            sb.hard_link(inside("hl"), "outside/secret");
        })
        .stdin(upload(name, b"new"));
        each_resolver(&case, |run| {
            expect(run, acks(3), 0)
                .content(inside("hl"), b"new")
                .content("outside/secret", SECRET);
        });
    }
}

/// Where the directory cannot take a temporary file, an unconfined upload
/// falls back to writing the file in place (as OpenSSH succeeds there). A
/// hard link to an outside file in such a directory must still never be
/// written through: the upload is refused and nothing changes anywhere.
/// The stream carries the data, as a client would send it had the record
/// been accepted (so that a write-through would really happen); after the
/// refusal the server may call the rest of it a protocol error.
#[test]
fn hard_link_to_an_outside_file_in_a_read_only_directory_is_never_written_through() {
    let case = confined(&["-t", "ro/hl"], |sb| {
        sb.dir(inside("ro"), 0o755)
            .hard_link(inside("ro/hl"), "outside/secret")
            .chmod(inside("ro"), 0o555);
    })
    .stdin(upload("hl", b"new"));
    each_resolver(&case, |run| {
        let refusal = warning(
            "ro/hl: refused: the file has other hard links and its directory is not writable, so it cannot be replaced safely",
        );
        run.stdout_starts_with(cat(&[b"\0", &refusal]))
            .exit(1)
            .no_temp_files()
            .unchanged();
    });
}

/// `D` onto a symlink that leads outside: refused, the session goes on
/// (the client skips the directory's contents).
#[test]
fn directory_record_onto_an_escaping_symlink_is_refused() {
    // (target, D name, the link beneath the root, where `ok` lands)
    let cases = [
        ("/", "out", "out", "ok"),
        ("/", "abs", "abs", "ok"),
        ("sub", "up2", "sub/up2", "sub/ok"),
    ];
    for (target, name, link_at, ok_at) in cases {
        println!("=== D {name} in {target}");
        let stream = cat(&[format!("D0755 0 {name}\n").as_bytes(), &upload("ok", b"ok")]);
        let case = confined(&["-r", "-t", target], links).stdin(stream);
        let path = if target == "/" {
            format!("/{name}")
        } else {
            format!("{target}/{name}")
        };
        each_resolver(&case, |run| {
            expect(
                run,
                cat(&[b"\0", &warning(symlink_outside(&path, name)), b"\0\0"]),
                1,
            )
            .file(inside(ok_at), b"ok", 0o644);
            assert_eq!(run.node(inside(link_at)).kind, Kind::Symlink);
        });
    }
}

/// `D` onto a symlink to a directory inside the root is followed.
#[test]
fn directory_record_onto_an_inside_symlink_is_followed() {
    for (target, name, lands_at) in [("/", "in", "sub/f"), ("sub", "up", "f")] {
        println!("=== D {name} in {target}");
        let stream = cat(&[
            format!("D0755 0 {name}\n").as_bytes(),
            &upload("f", b"hello"),
            b"E\n",
        ]);
        let case = confined(&["-r", "-t", target], links).stdin(stream);
        each_resolver(&case, |run| {
            expect(run, acks(5), 0).file(inside(lands_at), b"hello", 0o644);
        });
    }
}

#[test]
fn directory_record_onto_a_symlink_loop_is_refused() {
    let stream = cat(&[b"D0755 0 l1\n", &upload("ok", b"ok")]);
    let case = confined(&["-r", "-t", "/"], links).stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[
                b"\0",
                &warning("/l1: Too many levels of symbolic links"),
                b"\0\0",
            ]),
            1,
        )
        .file(inside("ok"), b"ok", 0o644);
    });
}

/// `--no-symlinks`: every symlink on the way is refused, even one that
/// stays inside, in targets, `D` records and sources.
#[test]
fn no_symlinks_refuses_even_inside_links() {
    let upload_cases = [("in/f", "in"), ("in", "in"), ("sub/up/f", "up")];
    for (target, link) in upload_cases {
        println!("=== -t {target}");
        let case = confined(&["-t", target], links)
            .admin(&["--no-symlinks"])
            .stdin(upload("f", b"new"));
        expect_nothing_changes(&case, warning(symlink_refused(target, link)), 1);
    }
    println!("=== D in");
    let stream = cat(&[b"D0755 0 in\n", &upload("ok", b"ok")]);
    let case = confined(&["-r", "-t", "/"], links)
        .admin(&["--no-symlinks"])
        .stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[b"\0", &warning(symlink_refused("/in", "in")), b"\0\0"]),
            1,
        )
        .file(inside("ok"), b"ok", 0o644);
    });
}

/// `--no-symlinks` and an upload whose own name is a symlink that stays
/// inside the root (to a directory, to a file, in a loop): a `C` is refused
/// by name and the link stays as it was (without the flag it would be
/// replaced, `upload_onto_a_symlink_replaces_the_link`); a `D` is refused
/// by name too, whatever the link points at. The session goes on (issue 12).
#[test]
fn no_symlinks_refuses_an_upload_onto_an_inside_symlink() {
    let with_file_link = |sb: &Sandbox| {
        links(sb);
        sb.file(inside("sub/f"), b"old", 0o644)
            .symlink(inside("flink"), "sub/f");
    };
    for name in ["in", "flink", "l1"] {
        println!("=== C {name}");
        let stream = cat(&[&record(name, 3), &upload("ok", b"ok")]);
        let case = confined(&["-t", "/"], with_file_link)
            .admin(&["--no-symlinks"])
            .stdin(stream);
        let refusal = format!(
            "/{name}: refused: the name is a symlink and symlinks are not allowed for this account; it was left as it is"
        );
        each_resolver(&case, |run| {
            expect(run, cat(&[b"\0", &warning(&refusal), b"\0\0"]), 1)
                .file(inside("ok"), b"ok", 0o644)
                .content(inside("sub/f"), b"old");
            assert_eq!(run.node(inside(name)).kind, Kind::Symlink);
        });
        println!("=== D {name}");
        let stream = cat(&[format!("D0755 0 {name}\n").as_bytes(), &upload("ok", b"ok")]);
        let case = confined(&["-r", "-t", "/"], with_file_link)
            .admin(&["--no-symlinks"])
            .stdin(stream);
        each_resolver(&case, |run| {
            let refusal = symlink_refused(&format!("/{name}"), name);
            expect(run, cat(&[b"\0", &warning(refusal), b"\0\0"]), 1)
                .file(inside("ok"), b"ok", 0o644)
                .content(inside("sub/f"), b"old");
            assert_eq!(run.node(inside(name)).kind, Kind::Symlink);
        });
    }
}

#[test]
fn no_symlinks_refuses_links_in_downloads() {
    let with_files = |sb: &Sandbox| {
        links(sb);
        sb.file(inside("sub/f"), b"hello", 0o644);
    };
    for (source, link) in [("in/f", "in"), ("in", "in"), ("sub/up/sub/f", "up")] {
        println!("=== -f {source}");
        let case = confined(&["-r", "-f", source], with_files)
            .admin(&["--no-symlinks"])
            .stdin(GO);
        expect_nothing_changes(&case, warning(symlink_refused(source, link)), 1);
    }
}

// ---------------------------------------------------------------------------
// Special files on the upload side
// ---------------------------------------------------------------------------

fn specials(sb: &Sandbox) {
    sb.fifo(inside("fifo"), 0o666)
        .null_device(inside("null"), 0o666)
        .socket(inside("sock"));
}

/// An existing FIFO, device or socket is never written to (a FIFO with no
/// reader would hang a writer); the session goes on.
#[test]
fn upload_onto_a_fifo_device_or_socket_is_refused() {
    for name in ["fifo", "null", "sock"] {
        println!("=== name {name}");
        let stream = cat(&[&record(name, 1), &upload("ok", b"ok")]);
        let case = confined(&["-t", "/"], specials)
            .timeout(SPECIAL_TIMEOUT)
            .stdin(stream);
        each_resolver(&case, |run| {
            expect(
                run,
                cat(&[
                    b"\0",
                    &warning(not_regular_target(&format!("/{name}"))),
                    b"\0\0",
                ]),
                1,
            )
            .file(inside("ok"), b"ok", 0o644);
            assert_ne!(run.node(inside(name)).kind, Kind::File);
        });
    }
}

#[test]
fn upload_target_naming_a_fifo_is_refused() {
    let case = confined(&["-t", "fifo"], specials)
        .timeout(SPECIAL_TIMEOUT)
        .stdin(record("x", 1));
    expect_nothing_changes(
        &case,
        cat(&[b"\0", &warning(not_regular_target("fifo"))]),
        1,
    );
}

// ---------------------------------------------------------------------------
// Symlinks and special files on the download side
// ---------------------------------------------------------------------------

/// A directory holding one of everything: `a` (a file), `abs` and `esc`
/// (symlinks to `outside/secret`, absolute and relative), `dout` (a
/// relative symlink to `outside/`), `fifo`, `in -> a` (inside), `null` (a
/// device) and `sock`.
fn mixed_dir(sb: &Sandbox) {
    let secret = sb.path("outside/secret");
    sb.dir(inside("dir"), 0o755)
        .file(inside("dir/a"), b"A-inside", 0o644)
        .symlink(inside("dir/abs"), &secret)
        .symlink(inside("dir/dout"), "../../../outside")
        .symlink(inside("dir/esc"), "../../../outside/secret")
        .fifo(inside("dir/fifo"), 0o644)
        .symlink(inside("dir/in"), "a")
        .null_device(inside("dir/null"), 0o666)
        .socket(inside("dir/sock"));
}

/// A recursive download sends what is inside and names what it skips;
/// nothing outside is opened, and the FIFO does not hang it.
#[test]
fn recursive_download_skips_escaping_links_and_special_files() {
    let case = confined(&["-r", "-f", "dir"], mixed_dir)
        .timeout(SPECIAL_TIMEOUT)
        .stdin(GO);
    let expected = cat(&[
        b"D0755 0 dir\n",
        &sent_file(0o644, "a", b"A-inside"),
        &warning(symlink_outside("dir/abs", "abs")),
        &warning(symlink_outside("dir/dout", "dout")),
        &warning(symlink_outside("dir/esc", "esc")),
        &warning("dir/fifo: not a regular file"),
        &sent_file(0o644, "in", b"A-inside"),
        &warning("dir/null: not a regular file"),
        &warning("dir/sock: not a regular file"),
        b"E\n",
    ]);
    expect_nothing_changes(&case, expected, 1);
}

/// The same items named one by one, with and without `-r`.
#[test]
fn download_of_single_escaping_links_and_special_files() {
    let cases: [(&str, Vec<u8>); 8] = [
        ("dir/abs", warning(symlink_outside("dir/abs", "abs"))),
        ("dir/esc", warning(symlink_outside("dir/esc", "esc"))),
        ("dir/dout", warning(symlink_outside("dir/dout", "dout"))),
        (
            "dir/dout/secret",
            warning(symlink_outside("dir/dout/secret", "dout")),
        ),
        ("dir/fifo", warning("dir/fifo: not a regular file")),
        ("dir/null", warning("dir/null: not a regular file")),
        ("dir/sock", warning("dir/sock: not a regular file")),
        ("dir/in", sent_file(0o644, "in", b"A-inside")),
    ];
    for (source, expected) in cases {
        println!("=== source {source}");
        let code = if expected.starts_with(b"\x01") { 1 } else { 0 };
        for args in [&["-f", source][..], &["-r", "-f", source]] {
            let case = confined(args, mixed_dir).timeout(SPECIAL_TIMEOUT).stdin(GO);
            expect_nothing_changes(&case, &expected, code);
        }
    }
}

#[test]
fn download_through_a_symlink_loop() {
    let case = confined(&["-f", "l1"], links).stdin(GO);
    expect_nothing_changes(&case, warning("l1: Too many levels of symbolic links"), 1);
}

/// A symlinked directory in the middle of a source path that leads outside,
/// followed by a name that does exist there.
#[test]
fn download_through_escaping_directory_symlinks_is_refused() {
    let cases = [
        ("out/secret", "out"),
        ("abs/secret", "abs"),
        ("sub/up2/outside/secret", "up2"),
        ("in/up2/etc/passwd", "up2"),
    ];
    for (source, link) in cases {
        println!("=== source {source}");
        let case = confined(&["-r", "-f", source], links).stdin(GO);
        expect_nothing_changes(&case, warning(symlink_outside(source, link)), 1);
    }
}

// ---------------------------------------------------------------------------
// Deny patterns
// ---------------------------------------------------------------------------

/// By default a confined account may not create `.ssh/` or shell start-up
/// files anywhere in its root; the rest of the session goes on.
#[test]
fn default_deny_patterns_refuse_keys_and_shell_files() {
    println!("=== D .ssh");
    let stream = cat(&[b"D0700 0 .ssh\n", &upload("ok", b"ok")]);
    let case = confined(&["-r", "-t", "/"], |_| {}).stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[b"\0", &warning(denied("/.ssh", ".ssh/")), b"\0\0"]),
            1,
        )
        .absent(inside(".ssh"))
        .file(inside("ok"), b"ok", 0o644);
    });
    let shell_files = [
        ".profile",
        ".bashrc",
        ".bash_profile",
        ".bash_login",
        ".zshrc",
        ".cshrc",
        ".login",
    ];
    for name in shell_files {
        println!("=== C {name}");
        let stream = cat(&[&record(name, 1), &upload("ok", b"ok")]);
        let case = confined(&["-t", "/"], |_| {}).stdin(stream);
        each_resolver(&case, |run| {
            expect(
                run,
                cat(&[b"\0", &warning(denied(&format!("/{name}"), name)), b"\0\0"]),
                1,
            )
            .absent(inside(name));
        });
    }
}

/// Deeper in the tree, and through a target naming the directory.
#[test]
fn deny_patterns_apply_anywhere_beneath_the_root() {
    println!("=== sub/.bashrc");
    let stream = cat(&[
        b"D0755 0 sub\n",
        &record(".bashrc", 1),
        &upload("ok", b"ok"),
        b"E\n",
    ]);
    let case = confined(&["-r", "-t", "/"], |_| {}).stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[
                b"\0\0",
                &warning(denied("/sub/.bashrc", ".bashrc")),
                b"\0\0\0",
            ]),
            1,
        )
        .absent(inside("sub/.bashrc"))
        .file(inside("sub/ok"), b"ok", 0o644);
    });
    for target in [".ssh", ".ssh/authorized_keys", "sub/../.ssh"] {
        println!("=== -t {target}");
        let case = confined(&["-t", target], |sb| {
            sb.dir(inside(".ssh"), 0o700).dir(inside("sub"), 0o755);
        })
        .stdin(record("authorized_keys", 1));
        let path = if target.ends_with("authorized_keys") {
            target.to_owned()
        } else {
            format!("{target}/authorized_keys")
        };
        expect_nothing_changes(&case, cat(&[b"\0", &warning(denied(&path, ".ssh/"))]), 1);
    }
}

/// `--deny` adds to the defaults.
#[test]
fn deny_flag_adds_a_pattern() {
    let stream = cat(&[
        &record("x.php", 1),
        &record(".bashrc", 1),
        &upload("ok", b"ok"),
    ]);
    let case = confined(&["-t", "/"], |_| {})
        .admin(&["--deny", "*.php"])
        .stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[
                b"\0",
                &warning(denied("/x.php", "*.php")),
                &warning(denied("/.bashrc", ".bashrc")),
                b"\0\0",
            ]),
            1,
        )
        .absent(inside("x.php"));
    });
}

/// Deny patterns guard uploads only.
#[test]
fn deny_patterns_do_not_apply_to_downloads() {
    let case = confined(&["-f", ".bashrc"], |sb| {
        sb.file(inside(".bashrc"), b"alias\n", 0o644);
    })
    .stdin(GO);
    expect_nothing_changes(&case, sent_file(0o644, ".bashrc", b"alias\n"), 0);
}

// ---------------------------------------------------------------------------
// Modes and umask
// ---------------------------------------------------------------------------

/// Files and directories with setuid, setgid and sticky bits, and 07777.
fn setid_stream() -> Vec<u8> {
    cat(&[
        b"C7777 1 f\nx\0",
        b"D7777 0 d\nE\n",
        b"C4755 1 s\nx\0",
        b"C2755 1 g\nx\0",
        b"D1777 0 t\nE\n",
    ])
}

#[test]
fn setid_and_sticky_bits_are_stripped() {
    let modes = [
        ("f", 0o777),
        ("d", 0o777),
        ("s", 0o755),
        ("g", 0o755),
        ("t", 0o777),
    ];
    let case = confined(&["-r", "-p", "-t", "/"], |_| {}).stdin(setid_stream());
    each_resolver(&case, |run| {
        expect(run, acks(11), 0);
        for (name, mode) in modes {
            run.mode(inside(name), mode);
        }
    });
}

/// Without `-p` the inherited umask applies too.
#[test]
fn setid_bits_are_stripped_without_preserve() {
    let case = confined(&["-t", "/"], |_| {})
        .umask(0o022)
        .stdin(b"C7777 1 f\nx\0");
    each_resolver(&case, |run| {
        expect(run, acks(3), 0).file(inside("f"), b"x", 0o755);
    });
}

/// `--allow-setid` grants them (as root, who may set them all).
#[test]
fn allow_setid_keeps_the_bits() {
    let modes = [
        ("f", 0o7777),
        ("d", 0o7777),
        ("s", 0o4755),
        ("g", 0o2755),
        ("t", 0o1777),
    ];
    let case = confined(&["-r", "-p", "-t", "/"], |_| {})
        .run_as(User::Root)
        .admin(&["--allow-setid"])
        .stdin(setid_stream());
    each_resolver(&case, |run| {
        expect(run, acks(11), 0);
        for (name, mode) in modes {
            run.mode(inside(name), mode);
        }
    });
}

/// An explicit `--umask` applies with `-p` too, and beats the inherited one
/// without it.
#[test]
fn explicit_umask_applies_with_and_without_preserve() {
    let stream = b"C0777 1 f\nx\0D0777 0 d\nE\n";
    for (args, umask) in [
        (&["-r", "-p", "-t", "/"][..], 0o000),
        (&["-r", "-t", "/"], 0o000),
    ] {
        println!("=== args {args:?}");
        let case = confined(args, |_| {})
            .admin(&["--umask", "027"])
            .umask(umask)
            .stdin(stream);
        each_resolver(&case, |run| {
            expect(run, acks(5), 0)
                .file(inside("f"), b"x", 0o750)
                .dir(inside("d"), 0o750);
        });
    }
}

/// Without `--umask`, the inherited umask applies only without `-p`.
#[test]
fn inherited_umask_applies_only_without_preserve() {
    let stream = b"C0644 1 f\nx\0D0755 0 d\nE\n";
    for (args, file_mode, dir_mode) in [
        (&["-r", "-p", "-t", "/"][..], 0o644, 0o755),
        (&["-r", "-t", "/"], 0o600, 0o700),
    ] {
        println!("=== args {args:?}");
        let case = confined(args, |_| {}).umask(0o077).stdin(stream);
        each_resolver(&case, |run| {
            expect(run, acks(5), 0)
                .file(inside("f"), b"x", file_mode)
                .dir(inside("d"), dir_mode);
        });
    }
}

// ---------------------------------------------------------------------------
// --no-overwrite
// ---------------------------------------------------------------------------

#[test]
fn no_overwrite_keeps_existing_files() {
    let stream = cat(&[&record("f", 3), &record("link", 3), &upload("g", b"new")]);
    let case = confined(&["-t", "/"], |sb| {
        sb.file(inside("f"), b"old", 0o644)
            .symlink(inside("link"), "../../outside/secret");
    })
    .admin(&["--no-overwrite"])
    .stdin(stream);
    let exists = "refused: the file exists and this account may not overwrite files";
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[
                b"\0",
                &warning(format!("/f: {exists}")),
                &warning(format!("/link: {exists}")),
                b"\0\0",
            ]),
            1,
        )
        .file(inside("f"), b"old", 0o644)
        .file(inside("g"), b"new", 0o644);
        assert_eq!(run.node(inside("link")).kind, Kind::Symlink);
    });
}

#[test]
fn no_overwrite_with_the_file_as_target() {
    let case = confined(&["-t", "f"], |sb| {
        sb.file(inside("f"), b"old", 0o644);
    })
    .admin(&["--no-overwrite"])
    .stdin(record("anything", 3));
    expect_nothing_changes(
        &case,
        cat(&[
            b"\0",
            &warning("f: refused: the file exists and this account may not overwrite files"),
        ]),
        1,
    );
}

// ---------------------------------------------------------------------------
// Limits: inclusive, counting accepted files only
// ---------------------------------------------------------------------------

#[test]
fn max_file_size_accepts_the_limit_and_refuses_one_byte_more() {
    let cases = [("5", 5), ("1K", 1024)];
    for (limit, bytes) in cases {
        println!("=== --max-file-size {limit}");
        let stream = cat(&[
            &upload("at", &repeat(b'a', bytes)),
            &record("over", bytes + 1),
            &upload("after", b"x"),
        ]);
        let case = confined(&["-t", "/"], |_| {})
            .admin(&["--max-file-size", limit])
            .stdin(stream);
        let refusal = format!(
            "/over: refused: the file has {} bytes; this account's limit is {bytes} bytes per file",
            bytes + 1
        );
        each_resolver(&case, |run| {
            expect(run, cat(&[b"\0\0\0", &warning(&refusal), b"\0\0"]), 1)
                .file(inside("at"), repeat(b'a', bytes), 0o644)
                .absent(inside("over"))
                .file(inside("after"), b"x", 0o644);
        });
    }
}

/// Exactly the total is accepted; a refused file does not count.
#[test]
fn max_total_bytes_is_inclusive_and_counts_accepted_files_only() {
    let stream = cat(&[
        &upload("a", b"four"),
        &record("b", 7),
        &upload("c", b"sixsix"),
        &record("d", 1),
        &upload("e", b""),
    ]);
    let case = confined(&["-t", "/"], |_| {})
        .admin(&["--max-total-bytes", "10"])
        .stdin(stream);
    let over = |name: &str, size: u64| {
        warning(format!(
            "/{name}: refused: {size} more bytes would exceed this account's limit of 10 bytes per session"
        ))
    };
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[b"\0\0\0", &over("b", 7), b"\0\0", &over("d", 1), b"\0\0"]),
            1,
        )
        .file(inside("c"), b"sixsix", 0o644)
        .file(inside("e"), b"", 0o644)
        .absent(inside("b"))
        .absent(inside("d"));
    });
}

#[test]
fn max_total_bytes_takes_a_suffix() {
    let stream = cat(&[
        &upload("a", &repeat(b'a', 1000)),
        &upload("b", &repeat(b'b', 24)),
        &record("c", 1),
    ]);
    let case = confined(&["-t", "/"], |_| {})
        .admin(&["--max-total-bytes", "1k"])
        .stdin(stream);
    let refusal =
        "/c: refused: 1 more bytes would exceed this account's limit of 1024 bytes per session";
    each_resolver(&case, |run| {
        expect(run, cat(&[b"\0\0\0\0\0", &warning(refusal)]), 1).absent(inside("c"));
    });
}

/// Directories and refused files do not count; the file after the limit is
/// refused.
#[test]
fn max_files_counts_accepted_files_only() {
    let stream = cat(&[
        &upload("a", b"a"),
        &record("big", 4),
        b"D0755 0 d\n",
        &upload("b", b"b"),
        b"E\n",
        &record("c", 1),
    ]);
    let case = confined(&["-r", "-t", "/"], |_| {})
        .admin(&["--max-files", "2", "--max-file-size", "3"])
        .stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[
                b"\0\0\0",
                &warning(
                    "/big: refused: the file has 4 bytes; this account's limit is 3 bytes per file",
                ),
                b"\0\0\0\0",
                &warning("/c: refused: this account may transfer at most 2 files per session"),
            ]),
            1,
        )
        .file(inside("a"), b"a", 0o644)
        .file(inside("d/b"), b"b", 0o644)
        .absent(inside("c"))
        .absent(inside("big"));
    });
}

/// The same limits on the download side, checked before the `C` record.
#[test]
fn download_limits() {
    let files = |sb: &Sandbox| {
        sb.file(inside("a"), b"12345", 0o644)
            .file(inside("big"), b"123456", 0o644)
            .file(inside("b"), b"1", 0o644)
            .file(inside("c"), b"2", 0o644);
    };
    println!("=== --max-file-size 5");
    let case = confined(&["-f", "a", "big"], files)
        .admin(&["--max-file-size", "5"])
        .stdin(GO);
    expect_nothing_changes(
        &case,
        cat(&[
            &sent_file(0o644, "a", b"12345"),
            &warning(
                "big: refused: the file has 6 bytes; this account's limit is 5 bytes per file",
            ),
        ]),
        1,
    );
    println!("=== --max-files 2");
    let case = confined(&["-f", "a", "b", "c"], files)
        .admin(&["--max-files", "2"])
        .stdin(GO);
    expect_nothing_changes(
        &case,
        cat(&[
            &sent_file(0o644, "a", b"12345"),
            &sent_file(0o644, "b", b"1"),
            &warning("c: refused: this account may transfer at most 2 files per session"),
        ]),
        1,
    );
}

/// The target is level 0: `--max-depth 2` allows `a/b` below it.
#[test]
fn max_depth_at_the_limit_is_accepted() {
    let stream = cat(&[b"D0755 0 a\nD0755 0 b\n", &upload("f", b"deep"), b"E\nE\n"]);
    let case = confined(&["-r", "-t", "/"], |_| {})
        .admin(&["--max-depth", "2"])
        .stdin(stream);
    each_resolver(&case, |run| {
        expect(run, acks(7), 0).file(inside("a/b/f"), b"deep", 0o644);
    });
}

#[test]
fn max_depth_exceeded_ends_the_session() {
    let stream = cat(&[
        b"D0755 0 a\nD0755 0 b\nD0755 0 c\n",
        &upload("f", b"deep"),
        b"E\nE\nE\n",
    ]);
    let case = confined(&["-r", "-t", "/"], |_| {})
        .admin(&["--max-depth", "2"])
        .stdin(stream);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[
                b"\0\0\0",
                &warning("protocol error: directories nested deeper than 2 levels"),
            ]),
            1,
        )
        .node(inside("a/b"));
        run.absent(inside("a/b/c"));
    });
}

/// A missing target is created by the first `D` as level 0 itself.
#[test]
fn max_depth_counts_a_created_target_as_level_zero() {
    let at_limit = b"D0755 0 x\nD0755 0 y\nE\nE\n".to_vec();
    let case = confined(&["-r", "-t", "new"], |_| {})
        .admin(&["--max-depth", "1"])
        .stdin(at_limit);
    each_resolver(&case, |run| {
        expect(run, acks(5), 0).node(inside("new/y"));
    });
    let beyond = b"D0755 0 x\nD0755 0 y\nD0755 0 z\nE\nE\nE\n".to_vec();
    let case = confined(&["-r", "-t", "new"], |_| {})
        .admin(&["--max-depth", "1"])
        .stdin(beyond);
    each_resolver(&case, |run| {
        expect(
            run,
            cat(&[
                b"\0\0\0",
                &warning("protocol error: directories nested deeper than 1 levels"),
            ]),
            1,
        )
        .absent(inside("new/y/z"));
    });
}

// ---------------------------------------------------------------------------
// Configuration file: fails closed
// ---------------------------------------------------------------------------

/// A config file in `outside/` (the working directory), named relatively,
/// owned by root (a file the account could rewrite is refused outright).
fn config(text: &'static str) -> impl Fn(&Sandbox) + 'static {
    move |sb| {
        write_config(sb, text.as_bytes());
    }
}

fn write_config(sb: &Sandbox, text: &[u8]) {
    sb.file("outside/cfg.toml", text, 0o644)
        .owned_by("outside/cfg.toml", User::Root);
}

#[test]
fn missing_config_file_refuses_every_transfer() {
    let refusal = warning("configuration file nope.toml: No such file or directory");
    for args in [&["-t", "/"][..], &["-f", "f"]] {
        println!("=== args {args:?}");
        let case = confined(args, |sb| {
            sb.file(inside("f"), b"hello", 0o644);
        })
        .admin(&["--config", "nope.toml"])
        .stdin(cat(&[b"\0", &upload("up", b"x")]));
        expect_nothing_changes(&case, &refusal, 1);
    }
}

#[test]
fn config_file_with_an_unknown_key_refuses_every_transfer() {
    let refusal = warning("configuration file cfg.toml, line 2: unknown key 'frobnicate'");
    for args in [&["-t", "/"][..], &["-f", "f"]] {
        println!("=== args {args:?}");
        let case = confined(args, config("max-files = 5\nfrobnicate = true\n"))
            .admin(&["--config", "cfg.toml"])
            .stdin(cat(&[b"\0", &upload("up", b"x")]));
        expect_nothing_changes(&case, &refusal, 1);
    }
}

/// A config file the restricted account itself could rewrite restricts
/// nothing: refused, whatever it says.
#[test]
fn config_file_the_account_could_rewrite_refuses_every_transfer() {
    let refusal = warning(
        "configuration file cfg.toml: refused: it must be owned by root and writable by nobody else",
    );
    let case = confined(&["-t", "/"], |sb| {
        sb.file("outside/cfg.toml", b"max-files = 5\n", 0o644);
    })
    .admin(&["--config", "cfg.toml"])
    .stdin(upload("up", b"x"));
    expect_nothing_changes(&case, &refusal, 1);
}

/// The parser's own wording is not ours to pin; the file and line are.
#[test]
fn malformed_config_file_refuses_every_transfer() {
    for args in [&["-t", "/"][..], &["-f", "f"]] {
        println!("=== args {args:?}");
        let case = confined(args, config("max-files = 5\nmax-depth = = 3\n"))
            .admin(&["--config", "cfg.toml"])
            .stdin(cat(&[b"\0", &upload("up", b"x")]));
        each_resolver(&case, |run| {
            run.stdout_starts_with(b"\x01scp: configuration file cfg.toml, line 2: ")
                .exit(1)
                .unchanged();
            let out = &run.outcome.stdout;
            assert!(
                out.ends_with(b"\n") && count(out, b"\n") == 1,
                "one line: {}",
                show(out)
            );
        });
    }
}

/// Restricted mode with no root anywhere (no flag, no config key, no HOME)
/// must refuse, never run unconfined.
#[test]
fn restricted_mode_without_any_root_refuses() {
    let case = Case::new(&["--read-only", "-f", "../outside/secret"])
        .cwd("jail")
        .watch()
        .setup(layout)
        .stdin(GO);
    each_resolver(&case, |run| {
        run.stdout_starts_with(b"\x01scp: ").exit(1).unchanged();
        assert!(!contains(&run.outcome.stdout, b"\0"), "no transfer started");
        assert!(!contains(&run.outcome.stdout, SECRET));
    });
}

/// The config file's `root` confines a session that has no `--root` (and
/// no other policy flag).
#[test]
fn config_root_confines_the_session() {
    let with_config_root = |sb: &Sandbox| {
        layout(sb);
        sb.file(inside("f"), b"hello", 0o644);
        let text = format!("root = \"{}\"\n", sb.path(ROOT).display());
        write_config(sb, text.as_bytes());
    };
    let cases: [(&[&str], Vec<u8>, i32); 3] = [
        (&["-f", "/f"], sent_file(0o644, "f", b"hello"), 0),
        (&["-f", "../x"], warning(path_outside("../x")), 1),
        (&["-t", "../x"], warning(path_outside("../x")), 1),
    ];
    for (args, expected, code) in cases {
        println!("=== args {args:?}");
        let case = Case::new(args)
            .admin(&["--config", "cfg.toml"])
            .cwd("outside")
            .watch()
            .setup(with_config_root)
            .stdin(cat(&[GO, &upload("x", b"owned\n")]));
        expect_nothing_changes(&case, &expected, code);
    }
}
