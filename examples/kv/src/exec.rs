//! Running one command against a shard's partition: string and key
//! commands here, collections in `exec_types.rs`.
//!
//! Every command writes its RESP reply into `out` and, when it changed the
//! keyspace, appends the effect to the shard's log as a deterministic
//! record (`SET k v PXAT t` for a `SET k v EX s`, `SREM` for an `SPOP`,
//! `SET k n KEEPTTL` for an `INCR`), so that replaying the log rebuilds the
//! same partition. Replay runs the records through this same function with
//! logging off.

use crate::aof::append_record;
use crate::cmd::Cmd;
use crate::db::{Db, Value};
use crate::resp;

/// Redis's error texts.
pub mod err {
    /// Wrong type.
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    /// Not an integer.
    pub const NOT_INT: &str = "ERR value is not an integer or out of range";
    /// Bad option.
    pub const SYNTAX: &str = "ERR syntax error";
    /// Integer overflow.
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    /// Past `--maxmemory`.
    pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
    /// Negative count.
    pub const POSITIVE: &str = "ERR value is out of range, must be positive";
}

/// What a command runs with.
pub struct Env<'a> {
    /// Wall-clock time in Unix milliseconds.
    pub now: u64,
    /// Where effects are logged; `None` while replaying.
    pub log: Option<&'a mut Vec<u8>>,
    /// Memory is past the shard's budget: refuse commands that grow it.
    pub oom: bool,
    /// For SPOP.
    pub rng: &'a mut fastrand::Rng,
}

impl Env<'_> {
    /// Logs one effect.
    pub fn record(&mut self, args: &[&[u8]]) {
        if let Some(log) = self.log.as_deref_mut() {
            append_record(log, args);
        }
    }
}

/// Parses a strict Redis integer (no spaces, no `+`, no leading zeros).
pub fn parse_int(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.is_empty() || s.len() > 20 || s.starts_with('+') || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    if s.starts_with("-0") {
        return None;
    }
    s.parse().ok()
}

/// Runs `cmd` (arguments after the name in `args[1..]`).
pub fn exec<A: AsRef<[u8]>>(db: &mut Db, env: &mut Env, cmd: Cmd, args: &[A], out: &mut Vec<u8>) {
    if env.oom && cmd.deny_oom() {
        return resp::error(out, err::OOM);
    }
    let a = |i: usize| args[i].as_ref();
    match cmd {
        Cmd::Get => match string_at(db, a(1), env.now) {
            Ok(Some(v)) => resp::bulk(out, v),
            Ok(None) => resp::nil(out),
            Err(e) => resp::error(out, e),
        },
        Cmd::Set => set(db, env, args, out),
        Cmd::Getset => {
            let old = match string_at(db, a(1), env.now) {
                Ok(v) => v.map(<[u8]>::to_vec),
                Err(e) => return resp::error(out, e),
            };
            put(db, a(1), a(2).to_vec(), 0, env.now);
            env.record(&[b"SET", a(1), a(2)]);
            match old {
                Some(v) => resp::bulk(out, &v),
                None => resp::nil(out),
            }
        }
        Cmd::Append => append(db, env, a(1), a(2), out),
        Cmd::Strlen => match string_at(db, a(1), env.now) {
            Ok(v) => resp::int(out, v.map_or(0, |v| v.len() as i64)),
            Err(e) => resp::error(out, e),
        },
        Cmd::Incr | Cmd::Decr | Cmd::Incrby | Cmd::Decrby => {
            let by = match cmd {
                Cmd::Incr => Some(1),
                Cmd::Decr => Some(-1),
                Cmd::Incrby => parse_int(a(2)),
                _ => parse_int(a(2)).and_then(i64::checked_neg),
            };
            match by {
                Some(by) => incr(db, env, a(1), by, out),
                None => resp::error(out, err::NOT_INT),
            }
        }
        Cmd::Mget => {
            resp::array(out, args.len() - 1);
            for k in &args[1..] {
                match string_at(db, k.as_ref(), env.now) {
                    Ok(Some(v)) => resp::bulk(out, v),
                    _ => resp::nil(out),
                }
            }
        }
        Cmd::Mset => {
            for pair in args[1..].chunks(2) {
                put(db, pair[0].as_ref(), pair[1].as_ref().to_vec(), 0, env.now);
            }
            let refs: Vec<&[u8]> = args.iter().map(AsRef::as_ref).collect();
            env.record(&refs);
            resp::ok(out);
        }
        Cmd::Del => {
            let mut n = 0;
            for k in &args[1..] {
                if db.delete(k.as_ref(), env.now) {
                    env.record(&[b"DEL", k.as_ref()]);
                    n += 1;
                }
            }
            resp::int(out, n);
        }
        Cmd::Exists => {
            let n = args[1..]
                .iter()
                .filter(|k| db.lookup(k.as_ref(), env.now).is_some())
                .count();
            resp::int(out, n as i64);
        }
        Cmd::Expire | Cmd::Pexpire | Cmd::Expireat | Cmd::Pexpireat => {
            expire(db, env, cmd, args, out)
        }
        Cmd::Ttl | Cmd::Pttl => match db.lookup(a(1), env.now) {
            None => resp::int(out, -2),
            Some(i) if db.item(i).exp == 0 => resp::int(out, -1),
            Some(i) => {
                let ms = db.item(i).exp.saturating_sub(env.now) as i64;
                resp::int(
                    out,
                    if cmd == Cmd::Ttl {
                        (ms + 500) / 1000
                    } else {
                        ms
                    },
                )
            }
        },
        Cmd::Persist => match db.lookup(a(1), env.now) {
            Some(i) if db.item(i).exp != 0 => {
                db.set_expire(i, 0);
                env.record(&[b"PERSIST", a(1)]);
                resp::int(out, 1);
            }
            _ => resp::int(out, 0),
        },
        Cmd::Type => match db.lookup(a(1), env.now) {
            Some(i) => resp::simple(out, db.item(i).val.type_name()),
            None => resp::simple(out, "none"),
        },
        Cmd::Flushall | Cmd::Flushdb => {
            db.clear();
            env.record(&[b"FLUSHALL"]);
            resp::ok(out);
        }
        Cmd::Dbsize => resp::int(out, db.len() as i64),
        Cmd::Keys => {
            let keys: Vec<&[u8]> = db
                .iter()
                .filter(|it| it.exp == 0 || it.exp > env.now)
                .map(|it| &*it.key)
                .filter(|k| crate::db::glob_match(a(1), k))
                .collect();
            resp::array(out, keys.len());
            for k in keys {
                resp::bulk(out, k);
            }
        }
        _ => crate::exec_types::exec(db, env, cmd, args, out),
    }
}

/// The string at `key`: `Ok(None)` if absent, `Err` if another type.
pub fn string_at<'d>(
    db: &'d mut Db,
    key: &[u8],
    now: u64,
) -> Result<Option<&'d [u8]>, &'static str> {
    match db.lookup(key, now) {
        None => Ok(None),
        Some(i) => match &db.item(i).val {
            Value::Str(s) => Ok(Some(s)),
            _ => Err(err::WRONGTYPE),
        },
    }
}

/// Stores a string at `key` with expiry `exp` (0: none; already past:
/// the key is removed instead).
fn put(db: &mut Db, key: &[u8], val: Vec<u8>, exp: u64, now: u64) {
    let idx = match db.lookup(key, now) {
        Some(i) => {
            db.replace(i, Value::Str(val));
            i
        }
        None => db.insert(key, Value::Str(val)),
    };
    if exp != 0 && exp <= now {
        db.remove(idx);
    } else {
        db.set_expire(idx, exp);
    }
}

/// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
fn set<A: AsRef<[u8]>>(db: &mut Db, env: &mut Env, args: &[A], out: &mut Vec<u8>) {
    let (key, val) = (args[1].as_ref(), args[2].as_ref());
    let (mut nx, mut xx, mut get, mut keep) = (false, false, false, false);
    let mut exp: Option<u64> = None;
    let mut i = 3;
    while i < args.len() {
        let opt = args[i].as_ref().to_ascii_uppercase();
        let unit = match opt.as_slice() {
            b"NX" if !xx => {
                nx = true;
                None
            }
            b"XX" if !nx => {
                xx = true;
                None
            }
            b"GET" => {
                get = true;
                None
            }
            b"KEEPTTL" if exp.is_none() => {
                keep = true;
                None
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if !keep && exp.is_none() => Some(opt),
            _ => return resp::error(out, err::SYNTAX),
        };
        if let Some(unit) = unit {
            i += 1;
            let Some(n) = args.get(i).and_then(|v| parse_int(v.as_ref())) else {
                return resp::error(
                    out,
                    if i < args.len() {
                        err::NOT_INT
                    } else {
                        err::SYNTAX
                    },
                );
            };
            let at = match unit.as_slice() {
                b"EX" => n
                    .checked_mul(1000)
                    .and_then(|ms| ms.checked_add(env.now as i64)),
                b"PX" => n.checked_add(env.now as i64),
                b"EXAT" => n.checked_mul(1000),
                _ => Some(n),
            };
            match at {
                Some(at) if n > 0 => exp = Some(at as u64),
                _ => return resp::error(out, "ERR invalid expire time in 'set' command"),
            }
        }
        i += 1;
    }
    let current = db.lookup(key, env.now);
    let old = match (get, current) {
        (true, Some(c)) => match &db.item(c).val {
            Value::Str(s) => Some(s.clone()),
            _ => return resp::error(out, err::WRONGTYPE),
        },
        _ => None,
    };
    let proceed = !(nx && current.is_some() || xx && current.is_none());
    if proceed {
        let exp = match (exp, keep, current) {
            (Some(e), _, _) => e,
            (None, true, Some(c)) => db.item(c).exp,
            _ => 0,
        };
        put(db, key, val.to_vec(), exp, env.now);
        let at = itoa::Buffer::new().format(exp).to_owned();
        if exp != 0 {
            env.record(&[b"SET", key, val, b"PXAT", at.as_bytes()]);
        } else {
            env.record(&[b"SET", key, val]);
        }
    }
    match (get, old, proceed) {
        (true, Some(v), _) => resp::bulk(out, &v),
        (true, None, _) | (false, _, false) => resp::nil(out),
        (false, _, true) => resp::ok(out),
    }
}

fn append(db: &mut Db, env: &mut Env, key: &[u8], val: &[u8], out: &mut Vec<u8>) {
    let len = match db.lookup(key, env.now) {
        None => {
            db.insert(key, Value::Str(val.to_vec()));
            val.len()
        }
        Some(i) => {
            let before = db.item(i).val.mem();
            let Value::Str(s) = &mut db.item_mut(i).val else {
                return resp::error(out, err::WRONGTYPE);
            };
            s.extend_from_slice(val);
            let (len, after) = (s.len(), s.capacity());
            db.used = (db.used + after).saturating_sub(before);
            len
        }
    };
    env.record(&[b"APPEND", key, val]);
    resp::int(out, len as i64);
}

fn incr(db: &mut Db, env: &mut Env, key: &[u8], by: i64, out: &mut Vec<u8>) {
    let (current, idx) = match db.lookup(key, env.now) {
        None => (0, None),
        Some(i) => match &db.item(i).val {
            Value::Str(s) => match parse_int(s) {
                Some(n) => (n, Some(i)),
                None => return resp::error(out, err::NOT_INT),
            },
            _ => return resp::error(out, err::WRONGTYPE),
        },
    };
    let Some(next) = current.checked_add(by) else {
        return resp::error(out, err::OVERFLOW);
    };
    let text = itoa::Buffer::new().format(next).as_bytes().to_vec();
    match idx {
        Some(i) => {
            db.replace(i, Value::Str(text.clone()));
        }
        None => {
            db.insert(key, Value::Str(text.clone()));
        }
    }
    env.record(&[b"SET", key, &text, b"KEEPTTL"]);
    resp::int(out, next);
}

fn expire<A: AsRef<[u8]>>(db: &mut Db, env: &mut Env, cmd: Cmd, args: &[A], out: &mut Vec<u8>) {
    let key = args[1].as_ref();
    let Some(n) = parse_int(args[2].as_ref()) else {
        return resp::error(out, err::NOT_INT);
    };
    let at = match cmd {
        Cmd::Expire => n
            .checked_mul(1000)
            .and_then(|ms| ms.checked_add(env.now as i64)),
        Cmd::Pexpire => n.checked_add(env.now as i64),
        Cmd::Expireat => n.checked_mul(1000),
        _ => Some(n),
    };
    let Some(at) = at else {
        let msg = format!("ERR invalid expire time in '{}' command", cmd.name());
        return resp::error(out, &msg);
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        match opt.as_ref().to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => {
                return resp::error(
                    out,
                    &format!(
                        "ERR Unsupported option {}",
                        String::from_utf8_lossy(opt.as_ref())
                    ),
                )
            }
        }
    }
    if nx && (xx || gt || lt) || gt && lt {
        return resp::error(
            out,
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        );
    }
    let Some(i) = db.lookup(key, env.now) else {
        return resp::int(out, 0);
    };
    let cur = db.item(i).exp;
    // A key without expiry counts as infinite for GT/LT.
    let skip = (nx && cur != 0)
        || (xx && cur == 0)
        || (gt && (cur == 0 || at <= cur as i64))
        || (lt && cur != 0 && at >= cur as i64);
    if skip {
        return resp::int(out, 0);
    }
    if at <= env.now as i64 {
        db.remove(i);
        env.record(&[b"DEL", key]);
    } else {
        db.set_expire(i, at as u64);
        let t = itoa::Buffer::new().format(at).to_owned();
        env.record(&[b"PEXPIREAT", key, t.as_bytes()]);
    }
    resp::int(out, 1);
}
