//! Length fields past 4 GiB, in both directions, without needing the disk
//! space: the sink writes to /dev/null (written in place, as OpenSSH does),
//! the source reads a sparse file.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_scp-server");
const SIZE: u64 = (4 << 30) + 12345; // just past 4 GiB

#[test]
fn sink_accepts_a_file_past_4_gib() {
    let mut child = Command::new(BIN)
        .args(["-t", "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    stdout.read_exact(&mut byte).unwrap();
    assert_eq!(byte, [0], "initial ack");
    writeln!(stdin, "C0644 {SIZE} big").unwrap();
    stdout.read_exact(&mut byte).unwrap();
    assert_eq!(byte, [0], "C record accepted");
    let block = vec![0x5au8; 1 << 20];
    let mut left = SIZE;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        stdin.write_all(&block[..n]).unwrap();
        left -= n as u64;
    }
    stdin.write_all(&[0]).unwrap();
    stdout.read_exact(&mut byte).unwrap();
    assert_eq!(byte, [0], "file complete");
    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(child.wait().unwrap().success());
}

#[test]
fn source_sends_a_sparse_file_past_4_gib() {
    let dir = std::env::temp_dir().join(format!("scp-server-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sparse");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(SIZE).unwrap();
    drop(file);

    let mut child = Command::new(BIN)
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(&[0]).unwrap();
    let mut header = Vec::new();
    let mut byte = [0u8; 1];
    while byte != [b'\n'] {
        stdout.read_exact(&mut byte).unwrap();
        header.push(byte[0]);
    }
    assert_eq!(header, format!("C0644 {SIZE} sparse\n").into_bytes());
    stdin.write_all(&[0]).unwrap();
    let mut block = vec![0u8; 1 << 20];
    let mut left = SIZE;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        stdout.read_exact(&mut block[..n]).unwrap();
        assert!(block[..n].iter().all(|&b| b == 0));
        left -= n as u64;
    }
    stdout.read_exact(&mut byte).unwrap();
    assert_eq!(byte, [0], "source's status after the data");
    stdin.write_all(&[0]).unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}
