//! Descriptors: a connection's socket is deregistered and closed when it
//! exits, and the readiness driver holds no descriptors that grow. A file
//! of its own, so that no other test's sockets are open meanwhile.

mod common;
use common::{q, start};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Sends `bytes`, half-closes, and returns everything the server wrote
/// before closing; fails if the server does not close its end (a socket
/// still open somewhere in the server).
fn exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    if let Err(e) = s.read_to_end(&mut out) {
        panic!("the server did not close the connection ({e}); read {out:?}");
    }
    out
}

/// Open descriptors of this process (the server runs in it).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn closed_connections_leave_no_descriptors_behind() {
    let fx = start(2);
    let mut healthy = fx.client();
    assert_eq!(q::<String>(&mut healthy, &["PING"]), Ok("PONG".into()));
    let before = open_fds();
    for i in 0..200 {
        // `exchange` returns once the server has closed its end: the
        // connection has exited and its socket is closed.
        let input: &[u8] = if i % 2 == 0 {
            b"PING\r\n"
        } else {
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nQUIT\r\n"
        };
        let got = exchange(fx.port, input);
        assert!(
            got.starts_with(b"+PONG") || got.starts_with(b"$-1"),
            "{got:?}"
        );
    }
    assert_eq!(q::<String>(&mut healthy, &["PING"]), Ok("PONG".into()));
    let after = open_fds();
    // Slack for the descriptor a parked readiness driver holds (a
    // duplicate of its epoll instance's) and the test harness's own.
    assert!(
        after <= before + 4,
        "descriptors before {before}, after 200 connections {after}"
    );
}
