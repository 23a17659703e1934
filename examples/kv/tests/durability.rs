//! The log: replay after a graceful stop, a torn tail dropped with a
//! warning, corruption in the middle refused with the file and offset, a
//! crash in the middle of a rewrite, rewrites that shrink the log without
//! losing anything, expiry (lazy, active, durable), and the graceful stop
//! of the binary (SHUTDOWN, SIGTERM) finishing what was in flight.

mod common;
use common::{config, q, start_with, TempDir};
use corelet_kv::{Fsync, Server};
use std::io::{Read, Write};
use std::time::Duration;

fn restart(dir: TempDir, shards: usize, fsync: Fsync) -> common::Fixture {
    let mut cfg = config(dir.path());
    cfg.fsync = fsync;
    start_with(shards, cfg, dir)
}

fn fill(con: &mut redis::Connection, n: usize) {
    for i in 0..n {
        let () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(format!("v{i}"))
            .query(con)
            .unwrap();
    }
    let () = redis::cmd("RPUSH")
        .arg("list")
        .arg("a")
        .arg("b")
        .query(con)
        .unwrap();
    let () = redis::cmd("HSET")
        .arg("hash")
        .arg("f")
        .arg("1")
        .query(con)
        .unwrap();
    let () = redis::cmd("SADD").arg("set").arg("m").query(con).unwrap();
}

fn check(con: &mut redis::Connection, n: usize) {
    for i in 0..n {
        assert_eq!(
            q::<String>(con, &["GET", &format!("k{i}")]),
            Ok(format!("v{i}"))
        );
    }
    assert_eq!(
        q::<Vec<String>>(con, &["LRANGE", "list", "0", "-1"]),
        Ok(vec!["a".into(), "b".into()])
    );
    assert_eq!(q::<String>(con, &["HGET", "hash", "f"]), Ok("1".into()));
    assert_eq!(
        q::<Vec<String>>(con, &["SMEMBERS", "set"]),
        Ok(vec!["m".into()])
    );
}

fn stop(mut fx: common::Fixture) -> TempDir {
    fx.stop();
    std::mem::replace(&mut fx.dir, TempDir::new("spent"))
}

#[test]
fn everything_survives_a_restart_in_every_fsync_mode() {
    for fsync in [Fsync::Always, Fsync::Everysec, Fsync::No] {
        let fx = restart(TempDir::new("modes"), 2, fsync);
        fill(&mut fx.client(), 50);
        let fx = restart(stop(fx), 2, fsync);
        check(&mut fx.client(), 50);
    }
}

#[test]
fn a_torn_tail_is_dropped_and_writing_goes_on() {
    let fx = restart(TempDir::new("torn"), 1, Fsync::Always);
    fill(&mut fx.client(), 10);
    let dir = stop(fx);
    // Half a record at the end, as a crash mid-write leaves it.
    let path = dir.path().join("shard-0.aof");
    let mut data = std::fs::read(&path).unwrap();
    let end = data.iter().rposition(|&b| b != 0).unwrap() + 1;
    data.truncate(end);
    let mut record = Vec::new();
    corelet_kv::aof::append_record(&mut record, &[b"SET", b"torn", b"value"]);
    data.extend_from_slice(&record[..record.len() - 3]);
    std::fs::write(&path, &data).unwrap();
    let fx = restart(dir, 1, Fsync::Always);
    assert!(
        fx.server().load_report[0].contains("torn tail"),
        "{:?}",
        fx.server().load_report
    );
    let mut con = fx.client();
    check(&mut con, 10);
    assert_eq!(q::<Option<String>>(&mut con, &["GET", "torn"]), Ok(None));
    assert_eq!(
        q::<String>(&mut con, &["SET", "after", "x"]),
        Ok("OK".into())
    );
    let fx = restart(stop(fx), 1, Fsync::Always);
    let mut con = fx.client();
    check(&mut con, 10);
    assert_eq!(
        q::<String>(&mut con, &["GET", "after"]),
        Ok("x".into()),
        "written over the torn tail"
    );
}

#[test]
fn corruption_in_the_middle_stops_the_start_naming_file_and_offset() {
    let fx = restart(TempDir::new("corrupt"), 1, Fsync::Always);
    fill(&mut fx.client(), 20);
    let dir = stop(fx);
    let path = dir.path().join("shard-0.aof");
    let mut data = std::fs::read(&path).unwrap();
    let end = data.iter().rposition(|&b| b != 0).unwrap();
    let at = end / 2;
    data[at] ^= 0x55;
    std::fs::write(&path, &data).unwrap();
    let err = Server::start(
        config(dir.path()),
        corelet::Runtime::builder().shards(1).pin(false),
    )
    .err()
    .expect("a corrupt log refuses to start");
    assert!(
        err.contains("shard-0.aof") && err.contains("offset"),
        "{err}"
    );
    // Nothing was changed by the refusal.
    assert_eq!(std::fs::read(&path).unwrap(), data);
}

#[test]
fn a_log_written_by_other_shards_is_refused() {
    let fx = restart(TempDir::new("shards"), 2, Fsync::No);
    fill(&mut fx.client(), 5);
    let dir = stop(fx);
    for shards in [1, 3] {
        let err = Server::start(
            config(dir.path()),
            corelet::Runtime::builder().shards(shards).pin(false),
        )
        .err()
        .expect("refused");
        assert!(err.contains("shards"), "{err}");
    }
    let fx = restart(dir, 2, Fsync::No);
    check(&mut fx.client(), 5);
}

fn info_field(con: &mut redis::Connection, field: &str) -> u64 {
    let info: String = q(con, &["INFO", "persistence"]).unwrap();
    let line = info.lines().find(|l| l.starts_with(field)).unwrap();
    line.split(':').nth(1).unwrap().parse().unwrap()
}

#[test]
fn rewrites_shrink_the_log_while_serving_and_lose_nothing() {
    let dir = TempDir::new("rewrite");
    let mut cfg = config(dir.path());
    cfg.fsync = Fsync::Always;
    cfg.rewrite_min = 64 << 10;
    let fx = start_with(2, cfg.clone(), dir);
    let mut con = fx.client();
    // Overwrite a few keys many times: the log grows, the data does not.
    let mut pipe = redis::pipe();
    for round in 0..400 {
        for k in 0..20 {
            pipe.cmd("SET")
                .arg(format!("k{k}"))
                .arg(format!("{round}-{}", "p".repeat(50)))
                .ignore();
        }
        pipe.cmd("INCR").arg("rounds").ignore();
    }
    let () = pipe.query(&mut con).unwrap();
    let mut rewrites = 0;
    for _ in 0..2000 {
        rewrites = info_field(&mut con, "aof_rewrites:");
        if rewrites > 0 && info_field(&mut con, "aof_rewrite_in_progress:") == 0 {
            break;
        }
        // A rewrite starts after a log write completes; a command makes one.
        let _: i64 = q(&mut con, &["INCR", "poke"]).unwrap();
    }
    assert!(rewrites > 0, "the log was rewritten");
    let size = info_field(&mut con, "aof_current_size:");
    assert!(size < 400 * 20 * 60, "rewritten log is small: {size}");
    let dir = stop(fx);
    assert!(!dir.path().join("shard-0.aof.rewrite").exists());
    let fx = start_with(2, cfg, dir);
    let mut con = fx.client();
    for k in 0..20 {
        assert_eq!(
            q::<String>(&mut con, &["GET", &format!("k{k}")]),
            Ok(format!("399-{}", "p".repeat(50)))
        );
    }
    assert_eq!(q::<i64>(&mut con, &["GET", "rounds"]), Ok(400));
}

#[test]
fn a_crash_during_a_rewrite_loses_nothing() {
    // A rewrite interrupted before its rename leaves a partial
    // `.rewrite` file next to the intact old log.
    let fx = restart(TempDir::new("midrewrite"), 1, Fsync::Always);
    fill(&mut fx.client(), 30);
    let dir = stop(fx);
    let partial = dir.path().join("shard-0.aof.rewrite");
    let log = std::fs::read(dir.path().join("shard-0.aof")).unwrap();
    std::fs::write(&partial, &log[..log.len() / 3]).unwrap();
    let fx = restart(dir, 1, Fsync::Always);
    check(&mut fx.client(), 30);
    assert!(
        !fx.dir.path().join("shard-0.aof.rewrite").exists(),
        "leftover removed"
    );
    // Interrupted after the rename: the new log is complete by itself
    // (covered by the crash test's small rewrite threshold as well).
}

#[test]
fn expiry_is_lazy_active_and_durable() {
    let fx = restart(TempDir::new("expiry"), 2, Fsync::Always);
    let mut con = fx.client();
    let now = corelet_kv::now_ms();
    // In the past: gone at once.
    let () = redis::cmd("SET")
        .arg("past")
        .arg("v")
        .query(&mut con)
        .unwrap();
    assert_eq!(
        q::<i64>(&mut con, &["PEXPIREAT", "past", &(now - 1).to_string()]),
        Ok(1)
    );
    assert_eq!(q::<i64>(&mut con, &["EXISTS", "past"]), Ok(0));
    // Short expiries: the active cycle removes them without any access.
    for i in 0..50 {
        let () = redis::cmd("SET")
            .arg(format!("e{i}"))
            .arg("v")
            .arg("PX")
            .arg(20)
            .query(&mut con)
            .unwrap();
    }
    let () = redis::cmd("SET")
        .arg("lazy")
        .arg("v")
        .arg("PX")
        .arg(20)
        .query(&mut con)
        .unwrap();
    let () = redis::cmd("SET")
        .arg("stays")
        .arg("v")
        .query(&mut con)
        .unwrap();
    let mut expired = 0;
    for _ in 0..500 {
        let info: String = q(&mut con, &["INFO", "stats"]).unwrap();
        expired = info
            .lines()
            .find_map(|l| l.strip_prefix("expired_keys:"))
            .unwrap()
            .parse()
            .unwrap();
        if expired >= 50 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10)); // time has to pass for keys to expire
    }
    assert!(expired >= 50, "active expiry removed the keys ({expired})");
    assert_eq!(q::<Option<String>>(&mut con, &["GET", "lazy"]), Ok(None));
    let fx = restart(stop(fx), 2, Fsync::Always);
    let mut con = fx.client();
    assert_eq!(
        q::<i64>(&mut con, &["DBSIZE"]),
        Ok(1),
        "expired keys stay expired"
    );
    assert_eq!(q::<String>(&mut con, &["GET", "stays"]), Ok("v".into()));
}

/// Starts the binary; returns the child and its port.
fn spawn_binary(dir: &std::path::Path) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_corelet-kv"))
        .args([
            "--port",
            &port.to_string(),
            "--appendfsync",
            "always",
            "--shards",
            "2",
        ])
        .arg("--dir")
        .arg(dir)
        .env("CORELET_PIN", "0")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..3000 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, port);
        }
        std::thread::sleep(Duration::from_millis(5)); // waiting for a child process to listen
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not start");
}

#[test]
fn shutdown_command_and_sigterm_finish_in_flight_work_and_exit_zero() {
    let dir = TempDir::new("shutdown");
    let (mut child, port) = spawn_binary(dir.path());
    // A pipeline ending in SHUTDOWN: every SET before it is answered.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = Vec::new();
    for i in 0..500 {
        req.extend(corelet_kv::resp::encode_request(&[
            b"SET",
            format!("s{i}").as_bytes(),
            b"v",
        ]));
    }
    req.extend(corelet_kv::resp::encode_request(&[b"SHUTDOWN"]));
    s.write_all(&req).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert_eq!(
        out,
        b"+OK\r\n".repeat(500),
        "every command before SHUTDOWN answered"
    );
    assert!(child.wait().unwrap().success(), "SHUTDOWN exits 0");
    let (mut child, port) = spawn_binary(dir.path());
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]), Ok(500));
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    assert!(child.wait().unwrap().success(), "SIGTERM exits 0");
}
