//! Pipelining, cross-shard multi-key commands, MSET atomicity under a
//! concurrent reader, and many connections at once.

mod common;
use common::{q, start};
use std::io::{BufRead, BufReader, Write as _};
use std::net::TcpStream;

#[test]
fn ten_thousand_pipelined_commands_answered_in_order() {
    let fx = start(4);
    let mut con = fx.client();
    let mut pipe = redis::pipe();
    for i in 0..2500 {
        // Keys on every shard, interleaved with a counter on one shard.
        pipe.cmd("SET").arg(format!("key:{i}")).arg(i);
        pipe.cmd("INCR").arg("counter");
        pipe.cmd("GET").arg(format!("key:{i}"));
        pipe.cmd("PING");
    }
    let replies: Vec<redis::Value> = pipe.query(&mut con).unwrap();
    assert_eq!(replies.len(), 10_000);
    for (i, r) in replies.chunks(4).enumerate() {
        assert_eq!(r[0], redis::Value::Okay, "SET #{i}");
        assert_eq!(r[1], redis::Value::Int(i as i64 + 1), "INCR #{i} in order");
        assert_eq!(
            r[2],
            redis::Value::BulkString(i.to_string().into_bytes()),
            "GET #{i}"
        );
        assert_eq!(r[3], redis::Value::SimpleString("PONG".into()));
    }
}

#[test]
fn multi_key_commands_across_shards() {
    let fx = start(4);
    let mut con = fx.client();
    let mut mset = redis::cmd("MSET");
    for i in 0..100 {
        mset.arg(format!("m{i}")).arg(i * 7);
    }
    let () = mset.query(&mut con).unwrap();
    let mut mget = redis::cmd("MGET");
    for i in 0..100 {
        mget.arg(format!("m{i}"));
    }
    mget.arg("missing");
    let got: Vec<Option<i64>> = mget.query(&mut con).unwrap();
    let want: Vec<Option<i64>> = (0..100).map(|i| Some(i * 7)).chain([None]).collect();
    assert_eq!(got, want);
    // Every shard holds some of them.
    let info: String = q(&mut con, &["INFO", "keyspace"]).unwrap();
    for s in 0..4 {
        assert!(!info.contains(&format!("shard{s}:keys=0,")), "{info}");
    }
    let n: i64 = q(&mut con, &["EXISTS", "m1", "m2", "m3", "missing", "m1"]).unwrap();
    assert_eq!(n, 4);
    let mut del = redis::cmd("DEL");
    for i in 0..50 {
        del.arg(format!("m{i}"));
    }
    assert_eq!(del.query::<i64>(&mut con).unwrap(), 50);
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]), Ok(50));
    assert_eq!(
        q::<Vec<String>>(&mut con, &["KEYS", "m4?"]).unwrap().len(),
        0
    );
    assert_eq!(
        q::<Vec<String>>(&mut con, &["KEYS", "m9?"]).unwrap().len(),
        10
    );
    // Hash tags keep keys together: one shard, no locks.
    let () = redis::cmd("MSET")
        .arg("{u}.a")
        .arg(1)
        .arg("{u}.b")
        .arg(2)
        .query(&mut con)
        .unwrap();
    assert_eq!(
        q::<Vec<i64>>(&mut con, &["MGET", "{u}.a", "{u}.b"]),
        Ok(vec![1, 2])
    );
}

#[test]
fn no_reader_sees_part_of_an_mset() {
    let fx = start(4);
    let keys: Vec<String> = (0..8).map(|i| format!("atomic:{i}")).collect();
    let mut writer = fx.client();
    let mut reader = fx.client();
    let mut single = fx.client();
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            for round in 1..=1500i64 {
                let mut mset = redis::cmd("MSET");
                for k in &keys {
                    mset.arg(k).arg(round);
                }
                let () = mset.query(&mut writer).unwrap();
            }
        });
        let r = s.spawn(|| {
            let mut last = 0;
            let mut reads = 0;
            while last < 1500 {
                let mut mget = redis::cmd("MGET");
                for k in &keys {
                    mget.arg(k);
                }
                let vals: Vec<Option<i64>> = mget.query(&mut reader).unwrap();
                let first = vals[0];
                assert!(vals.iter().all(|v| *v == first), "torn MSET seen: {vals:?}");
                let now = first.unwrap_or(0);
                assert!(now >= last, "time went backwards: {now} after {last}");
                last = now;
                reads += 1;
            }
            reads
        });
        // Single-key readers see rounds in order too (each key on its own).
        let g = s.spawn(|| {
            let mut last = 0;
            while last < 1500 {
                let a: Option<i64> = q(&mut single, &["GET", "atomic:0"]).unwrap();
                let b: Option<i64> = q(&mut single, &["GET", "atomic:7"]).unwrap();
                assert!(
                    b.unwrap_or(0) >= a.unwrap_or(0),
                    "read a later key older: {a:?} {b:?}"
                );
                last = b.unwrap_or(0);
            }
        });
        w.join().unwrap();
        assert!(r.join().unwrap() > 0);
        g.join().unwrap();
    });
}

fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line
}

#[test]
fn a_thousand_concurrent_connections() {
    let fx = start(2);
    let mut conns: Vec<(TcpStream, BufReader<TcpStream>)> = (0..1000)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", fx.port)).unwrap();
            s.set_nodelay(true).unwrap();
            let r = BufReader::new(s.try_clone().unwrap());
            (s, r)
        })
        .collect();
    for (i, (s, _)) in conns.iter_mut().enumerate() {
        s.write_all(format!("SET conn:{i} {i}\r\n").as_bytes())
            .unwrap();
    }
    for (_, r) in conns.iter_mut() {
        assert_eq!(read_line(r), "+OK\r\n");
    }
    let mut con = fx.client();
    let info: String = q(&mut con, &["INFO", "clients"]).unwrap();
    assert!(info.contains("connected_clients:1001"), "{info}");
    for (i, (s, r)) in conns.iter_mut().enumerate() {
        s.write_all(format!("GET conn:{}\r\n", 999 - i).as_bytes())
            .unwrap();
        assert_eq!(
            read_line(r),
            format!("${}\r\n", (999 - i).to_string().len())
        );
        assert_eq!(read_line(r), format!("{}\r\n", 999 - i));
    }
    assert_eq!(q::<i64>(&mut con, &["DBSIZE"]), Ok(1000));
}
