//! SFTP differential tests (issue 13): the same request scripts through
//! OpenSSH's `sftp-server` and our `scp-server --sftp`, comparing replies
//! and the trees left behind.

mod common;
mod sftp_support;

use sftp_support::{Attrs, Launch, Server, pflags, status};

#[test]
fn smoke_both_servers_answer_init_and_realpath() {
    for server in [Server::OpenSsh, Server::Ours] {
        if !server.available() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{} missing",
                server.program()
            );
            eprintln!("skipped {}: {} missing", server.label(), server.program());
            continue;
        }
        let dir = std::env::temp_dir();
        let mut session = Launch::new(server).cwd(&dir).start();
        assert_eq!(session.version(), Some(3));
        assert!(
            session.offers("posix-rename@openssh.com"),
            "{:?}",
            session.extensions()
        );
        let names = session.realpath(".").expect_name();
        assert_eq!(names.len(), 1);
        assert_eq!(
            names[0].name,
            dir.canonicalize().unwrap().as_os_str().as_encoded_bytes()
        );
        session
            .open("surely-missing-file", pflags::READ, &Attrs::none())
            .expect_status(status::NO_SUCH_FILE);
        let finished = session.finish();
        assert!(!finished.timed_out);
        assert_eq!(
            finished.code(),
            Some(0),
            "{}: {}",
            server.label(),
            finished.stderr_text()
        );
    }
}
