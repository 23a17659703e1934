//! Every command's behaviour and error replies, through a real client
//! (the `redis` crate), on one shard and on several.

mod common;
use common::{q, start};
use redis::Value;

type R<T> = Result<T, String>;

fn check_strings(con: &mut redis::Connection) {
    assert_eq!(q::<String>(con, &["PING"]), Ok("PONG".into()));
    assert_eq!(q::<String>(con, &["PING", "hi"]), Ok("hi".into()));
    assert_eq!(q::<String>(con, &["ECHO", "x y"]), Ok("x y".into()));
    assert_eq!(q::<String>(con, &["SELECT", "0"]), Ok("OK".into()));
    assert!(q::<String>(con, &["SELECT", "1"])
        .unwrap_err()
        .contains("DB index is out of range"));
    assert_eq!(q::<String>(con, &["SET", "s", "v"]), Ok("OK".into()));
    assert_eq!(q::<String>(con, &["GET", "s"]), Ok("v".into()));
    assert_eq!(q::<Option<String>>(con, &["GET", "nope"]), Ok(None));
    assert_eq!(q::<Option<String>>(con, &["SET", "s", "w", "NX"]), Ok(None));
    assert_eq!(
        q::<Option<String>>(con, &["SET", "new", "w", "XX"]),
        Ok(None)
    );
    assert_eq!(
        q::<Option<String>>(con, &["SET", "s", "w", "XX", "GET"]),
        Ok(Some("v".into()))
    );
    assert_eq!(
        q::<String>(con, &["SET", "px", "v", "PX", "100000"]),
        Ok("OK".into())
    );
    let pttl: i64 = q(con, &["PTTL", "px"]).unwrap();
    assert!(pttl > 0 && pttl <= 100_000);
    assert!(q::<String>(con, &["SET", "s", "v", "EX", "0"])
        .unwrap_err()
        .contains("invalid expire time"));
    assert!(q::<String>(con, &["SET", "s", "v", "EX", "x"])
        .unwrap_err()
        .contains("not an integer"));
    assert!(q::<String>(con, &["SET", "s", "v", "NX", "XX"])
        .unwrap_err()
        .contains("syntax error"));
    assert_eq!(
        q::<Option<String>>(con, &["GETSET", "s", "z"]),
        Ok(Some("w".into()))
    );
    assert_eq!(q::<i64>(con, &["APPEND", "s", "12"]), Ok(3));
    assert_eq!(q::<i64>(con, &["STRLEN", "s"]), Ok(3));
    assert_eq!(q::<i64>(con, &["STRLEN", "nope"]), Ok(0));
    assert_eq!(q::<i64>(con, &["INCR", "n"]), Ok(1));
    assert_eq!(q::<i64>(con, &["INCRBY", "n", "41"]), Ok(42));
    assert_eq!(q::<i64>(con, &["DECR", "n"]), Ok(41));
    assert_eq!(q::<i64>(con, &["DECRBY", "n", "-9"]), Ok(50));
    assert!(q::<i64>(con, &["INCR", "s"])
        .unwrap_err()
        .contains("value is not an integer or out of range"));
    q::<String>(con, &["SET", "big", "9223372036854775807"]).unwrap();
    assert!(q::<i64>(con, &["INCR", "big"])
        .unwrap_err()
        .contains("overflow"));
    assert!(q::<i64>(con, &["INCRBY", "n", "1.5"])
        .unwrap_err()
        .contains("not an integer"));
    assert_eq!(
        q::<String>(con, &["MSET", "a", "1", "b", "2", "c", "3"]),
        Ok("OK".into())
    );
    assert_eq!(
        q::<Vec<Option<String>>>(con, &["MGET", "a", "b", "zz", "c"]),
        Ok(vec![
            Some("1".into()),
            Some("2".into()),
            None,
            Some("3".into())
        ])
    );
    assert!(q::<String>(con, &["MSET", "a", "1", "b"])
        .unwrap_err()
        .contains("wrong number of arguments for 'mset'"));
}

fn check_keys(con: &mut redis::Connection) {
    assert_eq!(q::<i64>(con, &["EXISTS", "a", "b", "nope", "a"]), Ok(3));
    assert_eq!(q::<i64>(con, &["DEL", "a", "b", "nope"]), Ok(2));
    assert_eq!(q::<i64>(con, &["EXISTS", "a"]), Ok(0));
    assert_eq!(q::<i64>(con, &["TTL", "c"]), Ok(-1));
    assert_eq!(q::<i64>(con, &["TTL", "nope"]), Ok(-2));
    assert_eq!(q::<i64>(con, &["EXPIRE", "c", "100"]), Ok(1));
    assert_eq!(q::<i64>(con, &["TTL", "c"]), Ok(100));
    assert_eq!(q::<i64>(con, &["EXPIRE", "c", "50", "GT"]), Ok(0));
    assert_eq!(q::<i64>(con, &["PEXPIRE", "c", "500000", "GT"]), Ok(1));
    assert_eq!(q::<i64>(con, &["EXPIRE", "nope", "10"]), Ok(0));
    assert_eq!(q::<i64>(con, &["PERSIST", "c"]), Ok(1));
    assert_eq!(q::<i64>(con, &["PERSIST", "c"]), Ok(0));
    assert!(q::<i64>(con, &["EXPIRE", "c", "x"])
        .unwrap_err()
        .contains("not an integer"));
    assert_eq!(q::<i64>(con, &["EXPIRE", "c", "-1"]), Ok(1));
    assert_eq!(
        q::<i64>(con, &["EXISTS", "c"]),
        Ok(0),
        "a past expiry deletes"
    );
    assert_eq!(q::<String>(con, &["TYPE", "s"]), Ok("string".into()));
    assert_eq!(q::<String>(con, &["TYPE", "nope"]), Ok("none".into()));
    q::<String>(con, &["FLUSHALL"]).unwrap();
    for k in ["k1", "k2", "k3", "other"] {
        q::<String>(con, &["SET", k, "v"]).unwrap();
    }
    let mut keys: Vec<String> = q(con, &["KEYS", "k*"]).unwrap();
    keys.sort();
    assert_eq!(keys, vec!["k1", "k2", "k3"]);
    assert_eq!(q::<i64>(con, &["DBSIZE"]), Ok(4));
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    loop {
        let (next, batch): (String, Vec<String>) =
            q(con, &["SCAN", &cursor, "COUNT", "1"]).unwrap();
        seen.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    seen.sort();
    assert_eq!(seen, vec!["k1", "k2", "k3", "other"]);
    let (_, matched): (String, Vec<String>) =
        q(con, &["SCAN", "0", "MATCH", "zzz*", "COUNT", "1000"]).unwrap();
    assert!(matched.is_empty());
    assert!(q::<Value>(con, &["SCAN", "x"])
        .unwrap_err()
        .contains("invalid cursor"));
    assert_eq!(q::<String>(con, &["FLUSHDB"]), Ok("OK".into()));
    assert_eq!(q::<i64>(con, &["DBSIZE"]), Ok(0));
}

fn check_collections(con: &mut redis::Connection) {
    assert_eq!(q::<i64>(con, &["RPUSH", "l", "a", "b"]), Ok(2));
    assert_eq!(q::<i64>(con, &["LPUSH", "l", "z"]), Ok(3));
    assert_eq!(
        q::<Vec<String>>(con, &["LRANGE", "l", "0", "-1"]),
        Ok(vec!["z".into(), "a".into(), "b".into()])
    );
    assert_eq!(
        q::<Vec<String>>(con, &["LRANGE", "l", "-2", "10"]),
        Ok(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        q::<Vec<String>>(con, &["LRANGE", "l", "5", "10"]),
        Ok(vec![])
    );
    assert_eq!(q::<i64>(con, &["LLEN", "l"]), Ok(3));
    assert_eq!(q::<String>(con, &["LPOP", "l"]), Ok("z".into()));
    assert_eq!(
        q::<Vec<String>>(con, &["RPOP", "l", "5"]),
        Ok(vec!["b".into(), "a".into()])
    );
    assert_eq!(
        q::<i64>(con, &["EXISTS", "l"]),
        Ok(0),
        "an emptied list is gone"
    );
    assert_eq!(q::<Option<String>>(con, &["LPOP", "l"]), Ok(None));
    assert!(q::<Value>(con, &["LPOP", "l", "-1"])
        .unwrap_err()
        .contains("must be positive"));
    assert_eq!(q::<i64>(con, &["HSET", "h", "f", "1", "g", "2"]), Ok(2));
    assert_eq!(q::<i64>(con, &["HSET", "h", "f", "3"]), Ok(0));
    assert_eq!(q::<String>(con, &["HGET", "h", "f"]), Ok("3".into()));
    assert_eq!(q::<Option<String>>(con, &["HGET", "h", "x"]), Ok(None));
    assert_eq!(q::<i64>(con, &["HLEN", "h"]), Ok(2));
    let mut all: Vec<String> = q(con, &["HGETALL", "h"]).unwrap();
    all.sort();
    assert_eq!(all, vec!["2", "3", "f", "g"]);
    assert_eq!(q::<i64>(con, &["HDEL", "h", "f", "x"]), Ok(1));
    assert!(q::<i64>(con, &["HSET", "h", "f"])
        .unwrap_err()
        .contains("wrong number of arguments for 'hset'"));
    assert_eq!(q::<i64>(con, &["SADD", "st", "a", "b", "a"]), Ok(2));
    assert_eq!(q::<i64>(con, &["SCARD", "st"]), Ok(2));
    let mut m: Vec<String> = q(con, &["SMEMBERS", "st"]).unwrap();
    m.sort();
    assert_eq!(m, vec!["a", "b"]);
    assert_eq!(q::<i64>(con, &["SREM", "st", "a", "zz"]), Ok(1));
    assert_eq!(q::<String>(con, &["SPOP", "st"]), Ok("b".into()));
    assert_eq!(q::<Option<String>>(con, &["SPOP", "st"]), Ok(None));
    q::<i64>(con, &["SADD", "st", "x", "y", "z"]).unwrap();
    assert_eq!(
        q::<Vec<String>>(con, &["SPOP", "st", "5"]).unwrap().len(),
        3
    );
    // Wrong types, everywhere.
    q::<String>(con, &["SET", "str", "v"]).unwrap();
    for args in [
        &["LPUSH", "str", "x"][..],
        &["HGET", "str", "f"],
        &["SADD", "str", "m"],
        &["LRANGE", "str", "0", "1"],
        &["SMEMBERS", "str"],
    ] {
        let e = q::<Value>(con, args).unwrap_err();
        assert!(
            e.contains("WRONGTYPE")
                && e.contains("Operation against a key holding the wrong kind of value"),
            "{args:?}: {e}"
        );
    }
    q::<i64>(con, &["RPUSH", "list", "x"]).unwrap();
    assert!(q::<Value>(con, &["GET", "list"])
        .unwrap_err()
        .contains("WRONGTYPE"));
    assert_eq!(
        q::<Vec<Option<String>>>(con, &["MGET", "list", "str"]),
        Ok(vec![None, Some("v".into())])
    );
}

fn check_connection(con: &mut redis::Connection) {
    let e = q::<Value>(con, &["NOSUCH", "a", "b"]).unwrap_err();
    assert!(
        e.contains("unknown command 'NOSUCH', with args beginning with: 'a' 'b'"),
        "{e}"
    );
    assert!(q::<Value>(con, &["GET"])
        .unwrap_err()
        .contains("wrong number of arguments for 'get' command"));
    assert_eq!(
        q::<String>(con, &["CLIENT", "SETNAME", "me"]),
        Ok("OK".into())
    );
    assert_eq!(q::<String>(con, &["CLIENT", "GETNAME"]), Ok("me".into()));
    assert!(q::<Value>(con, &["CLIENT", "NOPE"])
        .unwrap_err()
        .contains("unknown subcommand"));
    let cfg: Vec<String> = q(con, &["CONFIG", "GET", "save"]).unwrap();
    assert_eq!(cfg, vec!["save", ""]);
    let cfg: Vec<String> = q(con, &["CONFIG", "GET", "appendfs*"]).unwrap();
    assert_eq!(cfg[0], "appendfsync");
    assert!(q::<i64>(con, &["COMMAND", "COUNT"]).unwrap() >= 50);
    let docs: Vec<Value> = q(con, &["COMMAND", "DOCS"]).unwrap();
    assert!(docs.is_empty());
    let info: String = q(con, &["INFO"]).unwrap();
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Keyspace",
        "shard0:keys=",
    ] {
        assert!(info.contains(section), "INFO lacks {section}");
    }
    let info: String = q(con, &["INFO", "keyspace"]).unwrap();
    assert!(!info.contains("# Server"));
}

fn all_commands(shards: usize) {
    let fx = start(shards);
    let mut con = fx.client();
    check_strings(&mut con);
    check_keys(&mut con);
    check_collections(&mut con);
    check_connection(&mut con);
    let _: R<String> = q(&mut con, &["FLUSHALL"]);
}

#[test]
fn commands_on_one_shard() {
    all_commands(1);
}

#[test]
fn commands_on_four_shards() {
    all_commands(4);
}
