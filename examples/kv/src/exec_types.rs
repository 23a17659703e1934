//! Lists, hashes and sets (see `exec.rs` for the conventions).

use crate::cmd::Cmd;
use crate::db::{Db, Hasher, Value, ELEM_OVERHEAD};
use crate::exec::{err, parse_int, Env};
use crate::resp;
use std::collections::{HashMap, HashSet, VecDeque};

/// The slot of `key` if it holds the type `want` makes; `Ok(None)` if
/// absent; `Err` on another type.
fn typed(db: &mut Db, key: &[u8], now: u64, want: fn(&Value) -> bool) -> Result<Option<u32>, ()> {
    match db.lookup(key, now) {
        None => Ok(None),
        Some(i) if want(&db.item(i).val) => Ok(Some(i)),
        Some(_) => Err(()),
    }
}

fn is_list(v: &Value) -> bool {
    matches!(v, Value::List(_))
}
fn is_hash(v: &Value) -> bool {
    matches!(v, Value::Hash(_))
}
fn is_set(v: &Value) -> bool {
    matches!(v, Value::Set(_))
}

/// Runs a collection command.
pub fn exec<A: AsRef<[u8]>>(db: &mut Db, env: &mut Env, cmd: Cmd, args: &[A], out: &mut Vec<u8>) {
    let key = args[1].as_ref();
    let want = match cmd {
        Cmd::Lpush | Cmd::Rpush | Cmd::Lpop | Cmd::Rpop | Cmd::Llen | Cmd::Lrange => is_list,
        Cmd::Hset | Cmd::Hget | Cmd::Hdel | Cmd::Hgetall | Cmd::Hlen => is_hash,
        _ => is_set,
    };
    let Ok(idx) = typed(db, key, env.now, want) else {
        return resp::error(out, err::WRONGTYPE);
    };
    match cmd {
        Cmd::Lpush | Cmd::Rpush | Cmd::Hset | Cmd::Sadd => add(db, env, cmd, idx, args, out),
        Cmd::Lpop | Cmd::Rpop => pop(db, env, cmd, idx, args, out),
        Cmd::Hdel | Cmd::Srem => remove(db, env, cmd, idx, args, out),
        Cmd::Spop => spop(db, env, idx, args, out),
        _ => read(db, cmd, idx, args, out),
    }
}

/// LPUSH, RPUSH, HSET, SADD: create the key if needed, add, count.
fn add<A: AsRef<[u8]>>(
    db: &mut Db,
    env: &mut Env,
    cmd: Cmd,
    idx: Option<u32>,
    args: &[A],
    out: &mut Vec<u8>,
) {
    let key = args[1].as_ref();
    let idx = idx.unwrap_or_else(|| {
        let empty = match cmd {
            Cmd::Lpush | Cmd::Rpush => Value::List(VecDeque::new()),
            Cmd::Hset => Value::Hash(HashMap::with_hasher(Hasher::default())),
            _ => Value::Set(HashSet::with_hasher(Hasher::default())),
        };
        db.insert(key, empty)
    });
    let mut grown = 0;
    let reply = match &mut db.item_mut(idx).val {
        Value::List(l) => {
            for v in &args[2..] {
                let v = v.as_ref().to_vec();
                grown += v.len() + ELEM_OVERHEAD;
                if cmd == Cmd::Lpush {
                    l.push_front(v);
                } else {
                    l.push_back(v);
                }
            }
            l.len()
        }
        Value::Hash(h) => {
            let mut new = 0;
            for pair in args[2..].chunks(2) {
                let (f, v) = (pair[0].as_ref(), pair[1].as_ref());
                grown += v.len();
                match h.insert(f.to_vec(), v.to_vec()) {
                    Some(old) => grown = grown.saturating_sub(old.len()),
                    None => {
                        grown += f.len() + ELEM_OVERHEAD;
                        new += 1;
                    }
                }
            }
            new
        }
        Value::Set(s) => {
            let mut new = 0;
            for m in &args[2..] {
                if s.insert(m.as_ref().to_vec()) {
                    grown += m.as_ref().len() + ELEM_OVERHEAD;
                    new += 1;
                }
            }
            new
        }
        Value::Str(_) => unreachable!("typed() checked"),
    };
    db.used += grown;
    let refs: Vec<&[u8]> = args.iter().map(AsRef::as_ref).collect();
    env.record(&refs);
    resp::int(out, reply as i64);
}

/// LPOP / RPOP with an optional count.
fn pop<A: AsRef<[u8]>>(
    db: &mut Db,
    env: &mut Env,
    cmd: Cmd,
    idx: Option<u32>,
    args: &[A],
    out: &mut Vec<u8>,
) {
    let count = match args.get(2).map(|c| parse_int(c.as_ref())) {
        None => None,
        Some(Some(n)) if n >= 0 => Some(n as usize),
        Some(_) => return resp::error(out, err::POSITIVE),
    };
    if args.len() > 3 {
        return resp::error(out, err::SYNTAX);
    }
    let Some(idx) = idx else {
        return if count.is_some() {
            resp::nil_array(out)
        } else {
            resp::nil(out)
        };
    };
    let Value::List(l) = &mut db.item_mut(idx).val else {
        unreachable!("typed() checked");
    };
    let n = count.unwrap_or(1).min(l.len());
    let popped: Vec<Vec<u8>> = (0..n)
        .filter_map(|_| {
            if cmd == Cmd::Lpop {
                l.pop_front()
            } else {
                l.pop_back()
            }
        })
        .collect();
    let empty = l.is_empty();
    let shrunk: usize = popped.iter().map(|v| v.len() + ELEM_OVERHEAD).sum();
    db.used = db.used.saturating_sub(shrunk);
    if empty {
        db.remove(idx);
    }
    if n > 0 {
        let name: &[u8] = if cmd == Cmd::Lpop { b"LPOP" } else { b"RPOP" };
        let n_text = itoa::Buffer::new().format(n).to_owned();
        env.record(&[name, args[1].as_ref(), n_text.as_bytes()]);
    }
    match count {
        None => resp::bulk(out, &popped[0]),
        Some(_) => {
            resp::array(out, popped.len());
            for v in &popped {
                resp::bulk(out, v);
            }
        }
    }
}

/// HDEL, SREM.
fn remove<A: AsRef<[u8]>>(
    db: &mut Db,
    env: &mut Env,
    cmd: Cmd,
    idx: Option<u32>,
    args: &[A],
    out: &mut Vec<u8>,
) {
    let Some(idx) = idx else {
        return resp::int(out, 0);
    };
    let mut gone: Vec<&[u8]> = Vec::new();
    let mut shrunk = 0;
    let empty = match &mut db.item_mut(idx).val {
        Value::Hash(h) => {
            for f in &args[2..] {
                if let Some(v) = h.remove(f.as_ref()) {
                    shrunk += f.as_ref().len() + v.len() + ELEM_OVERHEAD;
                    gone.push(f.as_ref());
                }
            }
            h.is_empty()
        }
        Value::Set(s) => {
            for m in &args[2..] {
                if s.remove(m.as_ref()) {
                    shrunk += m.as_ref().len() + ELEM_OVERHEAD;
                    gone.push(m.as_ref());
                }
            }
            s.is_empty()
        }
        _ => unreachable!("typed() checked"),
    };
    db.used = db.used.saturating_sub(shrunk);
    if empty {
        db.remove(idx);
    }
    let n = gone.len();
    if n > 0 {
        let name: &[u8] = if cmd == Cmd::Hdel { b"HDEL" } else { b"SREM" };
        let mut rec = vec![name, args[1].as_ref()];
        rec.extend(gone);
        env.record(&rec);
    }
    resp::int(out, n as i64);
}

fn spop<A: AsRef<[u8]>>(
    db: &mut Db,
    env: &mut Env,
    idx: Option<u32>,
    args: &[A],
    out: &mut Vec<u8>,
) {
    let count = match args.get(2).map(|c| parse_int(c.as_ref())) {
        None => None,
        Some(Some(n)) if n >= 0 => Some(n as usize),
        Some(_) => return resp::error(out, err::POSITIVE),
    };
    if args.len() > 3 {
        return resp::error(out, err::SYNTAX);
    }
    let Some(idx) = idx else {
        return if count.is_some() {
            resp::array(out, 0)
        } else {
            resp::nil(out)
        };
    };
    let Value::Set(s) = &mut db.item_mut(idx).val else {
        unreachable!("typed() checked");
    };
    let n = count.unwrap_or(1).min(s.len());
    let mut popped = Vec::with_capacity(n);
    for _ in 0..n {
        // O(set size) per pick: std's HashSet has no random access.
        let pick = env.rng.usize(..s.len());
        let m = s.iter().nth(pick).cloned().expect("in range");
        s.remove(&m);
        popped.push(m);
    }
    let empty = s.is_empty();
    let shrunk: usize = popped.iter().map(|m| m.len() + ELEM_OVERHEAD).sum();
    db.used = db.used.saturating_sub(shrunk);
    if empty {
        db.remove(idx);
    }
    if !popped.is_empty() {
        let mut rec: Vec<&[u8]> = vec![b"SREM", args[1].as_ref()];
        rec.extend(popped.iter().map(Vec::as_slice));
        env.record(&rec);
    }
    match count {
        None if popped.is_empty() => resp::nil(out),
        None => resp::bulk(out, &popped[0]),
        Some(_) => {
            resp::array(out, popped.len());
            for m in &popped {
                resp::bulk(out, m);
            }
        }
    }
}

/// LLEN, LRANGE, HGET, HGETALL, HLEN, SMEMBERS, SCARD.
fn read<A: AsRef<[u8]>>(db: &mut Db, cmd: Cmd, idx: Option<u32>, args: &[A], out: &mut Vec<u8>) {
    let val = idx.map(|i| &db.item(i).val);
    match (cmd, val) {
        (Cmd::Llen | Cmd::Hlen | Cmd::Scard, None) => resp::int(out, 0),
        (Cmd::Llen, Some(Value::List(l))) => resp::int(out, l.len() as i64),
        (Cmd::Hlen, Some(Value::Hash(h))) => resp::int(out, h.len() as i64),
        (Cmd::Scard, Some(Value::Set(s))) => resp::int(out, s.len() as i64),
        (Cmd::Lrange, v) => {
            let (Some(start), Some(stop)) =
                (parse_int(args[2].as_ref()), parse_int(args[3].as_ref()))
            else {
                return resp::error(out, err::NOT_INT);
            };
            let Some(Value::List(l)) = v else {
                return resp::array(out, 0);
            };
            let len = l.len() as i64;
            let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i };
            let (start, stop) = (norm(start), norm(stop).min(len - 1));
            if start > stop || start >= len {
                return resp::array(out, 0);
            }
            resp::array(out, (stop - start + 1) as usize);
            for v in l.range(start as usize..=stop as usize) {
                resp::bulk(out, v);
            }
        }
        (Cmd::Hget, Some(Value::Hash(h))) => match h.get(args[2].as_ref()) {
            Some(v) => resp::bulk(out, v),
            None => resp::nil(out),
        },
        (Cmd::Hget, None) => resp::nil(out),
        (Cmd::Hgetall, Some(Value::Hash(h))) => {
            resp::array(out, h.len() * 2);
            for (f, v) in h {
                resp::bulk(out, f);
                resp::bulk(out, v);
            }
        }
        (Cmd::Smembers, Some(Value::Set(s))) => {
            resp::array(out, s.len());
            for m in s {
                resp::bulk(out, m);
            }
        }
        (Cmd::Hgetall | Cmd::Smembers, None) => resp::array(out, 0),
        _ => resp::error(out, err::SYNTAX),
    }
}
