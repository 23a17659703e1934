//! Bad input and limits: protocol errors close only the offending
//! connection, random bytes never crash the server or disturb others,
//! oversized lengths are refused before they are buffered, `--maxclients`,
//! `--maxmemory`, and a slow reader does not make the server buffer
//! without bound.

mod common;
use common::{config, q, start, start_with, TempDir};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Sends `bytes`, half-closes, and returns everything the server wrote
/// before closing.
fn exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn protocol_errors_answer_and_close() {
    let mut cfg;
    let dir = TempDir::new("proto");
    cfg = config(dir.path());
    cfg.limits.max_bulk = 1024;
    let fx = start_with(2, cfg, dir);
    let cases: &[(&[u8], &str)] = &[
        (
            b"*1\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$99999999999\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$2000\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2000000\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"GET \"unclosed\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        // Commands before the bad frame are answered first.
        (
            b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n",
            "+PONG\r\n+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n",
        ),
    ];
    for (input, want) in cases {
        let got = exchange(fx.port, input);
        assert_eq!(
            String::from_utf8_lossy(&got),
            *want,
            "for {:?}",
            String::from_utf8_lossy(input)
        );
    }
    // An inline request with no end, past 64 KiB.
    let got = exchange(fx.port, &vec![b'a'; 70 << 10]);
    assert_eq!(got, b"-ERR Protocol error: too big inline request\r\n");
    let mut con = fx.client();
    assert_eq!(q::<String>(&mut con, &["PING"]), Ok("PONG".into()));
}

#[test]
fn random_and_truncated_input_never_disturbs_other_clients() {
    let fx = start(2);
    let mut healthy = fx.client();
    let mut rng = fastrand::Rng::with_seed(42);
    let frames: Vec<Vec<u8>> = vec![
        corelet_kv::resp::encode_request(&[b"SET", b"k", b"v"]),
        corelet_kv::resp::encode_request(&[b"MSET", b"a", b"1", b"b", b"2"]),
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1000000000\r\n".to_vec(),
    ];
    for round in 0..300 {
        let junk: Vec<u8> = match round % 3 {
            // Random bytes from a protocol-ish alphabet and from anywhere.
            0 => (0..rng.usize(1..200))
                .map(|_| {
                    *rng.choice(b"*$:+-\r\n0123456789 \"'abcSETGET".iter())
                        .unwrap()
                })
                .collect(),
            1 => (0..rng.usize(1..200)).map(|_| rng.u8(..)).collect(),
            // A valid frame cut short.
            _ => {
                let f = &frames[rng.usize(..frames.len())];
                f[..rng.usize(1..f.len())].to_vec()
            }
        };
        exchange(fx.port, &junk);
        let key = format!("h{round}");
        assert_eq!(
            q::<String>(&mut healthy, &["SET", &key, "ok"]),
            Ok("OK".into())
        );
        assert_eq!(q::<String>(&mut healthy, &["GET", &key]), Ok("ok".into()));
    }
    let info: String = q(&mut healthy, &["INFO", "clients"]).unwrap();
    assert!(
        info.contains("connected_clients:1\r\n"),
        "every junk connection was closed: {info}"
    );
}

#[test]
fn maxclients_refuses_the_extra_connection() {
    let dir = TempDir::new("maxclients");
    let mut cfg = config(dir.path());
    cfg.maxclients = 3;
    let fx = start_with(2, cfg, dir);
    let mut held: Vec<_> = (0..3).map(|_| fx.client()).collect();
    for c in &mut held {
        assert_eq!(q::<String>(c, &["PING"]), Ok("PONG".into()));
    }
    let got = exchange(fx.port, b"PING\r\n");
    assert_eq!(got, b"-ERR max number of clients reached\r\n");
    drop(held.pop());
    // The slot frees once the server has seen the close; retry until then.
    let mut answer = Vec::new();
    for _ in 0..1000 {
        answer = exchange(fx.port, b"PING\r\n");
        if answer == b"+PONG\r\n" {
            break;
        }
    }
    assert_eq!(answer, b"+PONG\r\n");
}

#[test]
fn maxmemory_refuses_writes_with_the_oom_error() {
    let dir = TempDir::new("maxmemory");
    let mut cfg = config(dir.path());
    cfg.maxmemory = 256 << 10;
    let fx = start_with(2, cfg, dir);
    let mut con = fx.client();
    let value = "x".repeat(1000);
    let mut refused_at = None;
    for i in 0..10_000 {
        if let Err(e) = q::<String>(&mut con, &["SET", &format!("k{i}"), &value]) {
            assert!(
                e.contains("OOM")
                    && e.contains("command not allowed when used memory > 'maxmemory'"),
                "{e}"
            );
            refused_at = Some(i);
            break;
        }
    }
    let n = refused_at.expect("writes are refused past maxmemory");
    assert!(n > 50 && n < 1000, "refused after {n} writes");
    assert_eq!(
        q::<String>(&mut con, &["GET", "k0"]),
        Ok(value.clone()),
        "reads still work"
    );
    assert!(q::<i64>(&mut con, &["RPUSH", "l", "x"])
        .unwrap_err()
        .contains("OOM"));
    let mut mset = vec!["MSET"];
    let pairs: Vec<String> = (0..20).map(|i| format!("new{i}")).collect();
    for p in &pairs {
        mset.push(p);
        mset.push("v");
    }
    assert!(q::<String>(&mut con, &mset).unwrap_err().contains("OOM"));
    assert_eq!(
        q::<i64>(&mut con, &["EXISTS", "new0", "new1", "new2"]),
        Ok(0),
        "a refused MSET wrote nothing"
    );
    let mut del = redis::cmd("DEL");
    for i in 0..n {
        del.arg(format!("k{i}"));
    }
    assert_eq!(del.query::<i64>(&mut con).unwrap(), n as i64);
    assert_eq!(
        q::<String>(&mut con, &["SET", "again", "v"]),
        Ok("OK".into())
    );
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_slow_reader_does_not_make_the_server_buffer_without_bound() {
    let fx = start(2);
    let mut con = fx.client();
    let big = "v".repeat(256 << 10);
    assert_eq!(
        q::<String>(&mut con, &["SET", "big", &big]),
        Ok("OK".into())
    );
    let before = rss_kib();
    // 2,000 replies of 256 KiB: 500 MiB if the server buffered them.
    let mut slow = TcpStream::connect(("127.0.0.1", fx.port)).unwrap();
    let request = "GET big\r\n".repeat(2000);
    slow.write_all(request.as_bytes()).unwrap();
    // While the slow client reads nothing, others are served.
    for i in 0..200 {
        assert_eq!(q::<i64>(&mut con, &["INCR", "n"]), Ok(i + 1));
    }
    let during = rss_kib();
    assert!(
        during < before + (64 << 10),
        "server grew by {} KiB for a slow reader",
        during.saturating_sub(before)
    );
    // Reading eventually gets every reply, in order and intact.
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let want = 2000 * (big.len() + "$262144\r\n\r\n".len());
    while total < want {
        let n = slow.read(&mut buf).unwrap();
        assert!(n > 0);
        total += n;
    }
    assert_eq!(total, want);
}
