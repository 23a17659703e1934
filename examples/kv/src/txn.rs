//! Commands that span shards.
//!
//! # Atomic multi-shard commands (MSET, MGET, DEL, EXISTS, FLUSHALL)
//!
//! The connection coordinates. It locks every shard the command touches,
//! one after another **in ascending shard order**, waiting for each lock
//! before asking for the next (`PartMsg::Lock`). A locked partition defers
//! every other message that reads or writes keys, in arrival order. Once
//! all locks are held, the connection sends each shard its part
//! (`PartMsg::Commit`), which runs it and releases that shard's lock.
//!
//! - Atomic: between the moment the last lock is granted and each shard's
//!   commit, no other command runs on any of those shards, so every part
//!   reads or writes the state as of that one moment. A reader (MGET,
//!   GET) either waits behind an MSET or runs entirely before it; no
//!   reader sees part of it.
//! - No deadlock: every coordinator takes locks in the same order, so
//!   whoever holds the highest-numbered lock in a wait chain never waits
//!   (ordered resource acquisition).
//! - No stuck lock: a partition monitors the coordinator holding it and
//!   releases the lock if the coordinator exits.
//!
//! # Fan-outs (DBSIZE, KEYS, SCAN)
//!
//! Asked of every shard (or, for SCAN, of the shard the cursor names) and
//! joined; they see each shard at a slightly different moment, which
//! Redis's own SCAN allows and KEYS/DBSIZE on a busy server cannot tell.

use crate::batch::{Batch, Replies};
use crate::cmd::Cmd;
use crate::partition::{PartMsg, TxId};
use crate::resp;
use crate::route::shard_of;
use crate::server::Shared;
use bytes::Bytes;
use std::collections::BTreeMap;

fn unavailable(out: &mut Vec<u8>, e: impl std::fmt::Display) {
    resp::error(out, &format!("ERR shard unavailable: {e}"));
}

/// Locks `shards` in ascending order, commits each one's batch, and
/// returns the replies by shard (`Err`: a reply to send instead).
///
/// A command that may grow memory is refused as a whole (before anything
/// runs) if any of its shards is past its memory budget.
async fn locked(
    srv: &Shared,
    tx: TxId,
    parts: BTreeMap<usize, Batch>,
    deny_oom: bool,
) -> Result<BTreeMap<usize, Replies>, Vec<u8>> {
    let mut held = Vec::new();
    let mut refuse = None;
    for &s in parts.keys() {
        match srv.parts[s].ask(|reply| PartMsg::Lock { tx, reply }).await {
            Ok(oom) => {
                held.push(s);
                if oom && deny_oom {
                    refuse = Some(crate::exec::err::OOM.to_owned());
                    break;
                }
            }
            Err(e) => {
                refuse = Some(format!("ERR shard unavailable: {e}"));
                break;
            }
        }
    }
    if let Some(msg) = refuse {
        for h in held {
            let _ = srv.parts[h].tell(PartMsg::Unlock(tx));
        }
        let mut out = Vec::new();
        resp::error(&mut out, &msg);
        return Err(out);
    }
    let commits: Vec<_> = parts
        .into_iter()
        .map(|(s, b)| {
            (
                s,
                b.len(),
                srv.parts[s].ask(move |r| PartMsg::Commit(tx, b, r)),
            )
        })
        .collect();
    let mut replies = BTreeMap::new();
    for (s, n, commit) in commits {
        let r = commit
            .await
            .unwrap_or_else(|e| Replies::errors(n, &format!("ERR shard unavailable: {e}")));
        replies.insert(s, r);
    }
    Ok(replies)
}

/// An integer reply's value (0 for anything else).
fn int_of(reply: &[u8]) -> i64 {
    reply
        .strip_prefix(b":")
        .and_then(|r| std::str::from_utf8(r).ok())
        .and_then(|r| r.trim_end().parse().ok())
        .unwrap_or(0)
}

/// A multi-key command whose keys live on several shards.
pub async fn multi(srv: &Shared, tx: TxId, cmd: Cmd, args: &[Bytes], step: usize) -> Vec<u8> {
    let n = srv.parts.len();
    let mut parts: BTreeMap<usize, Batch> = BTreeMap::new();
    // For MGET: where each key's GET sits (shard, index in its batch).
    let mut order = Vec::new();
    match cmd {
        Cmd::Mget => {
            for k in &args[1..] {
                let b = parts.entry(shard_of(k, n)).or_default();
                order.push((shard_of(k, n), b.len()));
                b.push(Cmd::Get, [Bytes::from_static(b"GET"), k.clone()]);
            }
        }
        _ => {
            let mut groups: BTreeMap<usize, Vec<Bytes>> = BTreeMap::new();
            for chunk in args[1..].chunks(step) {
                let g = groups
                    .entry(shard_of(&chunk[0], n))
                    .or_insert_with(|| vec![args[0].clone()]);
                g.extend(chunk.iter().cloned());
            }
            for (s, g) in groups {
                parts.entry(s).or_default().push(cmd, g);
            }
        }
    }
    let replies = match locked(srv, tx, parts, cmd.deny_oom()).await {
        Ok(r) => r,
        Err(out) => return out,
    };
    let mut out = Vec::new();
    if let Some(err) = replies
        .values()
        .flat_map(|r| (0..r.len()).map(|i| r.get(i)))
        .find(|r| r.first() == Some(&b'-') && !r.starts_with(b"-WRONGTYPE"))
    {
        out.extend_from_slice(err);
        return out;
    }
    match cmd {
        Cmd::Mget => {
            resp::array(&mut out, order.len());
            for (s, i) in order {
                let r = replies[&s].get(i);
                if r.first() == Some(&b'$') {
                    out.extend_from_slice(r);
                } else {
                    resp::nil(&mut out); // MGET answers nil for other types
                }
            }
        }
        Cmd::Mset => resp::ok(&mut out),
        _ => {
            let total = replies.values().map(|r| int_of(r.get(0))).sum();
            resp::int(&mut out, total);
        }
    }
    out
}

/// Commands that address the whole keyspace.
pub async fn all(srv: &Shared, tx: TxId, cmd: Cmd, args: &[Bytes]) -> Vec<u8> {
    let n = srv.parts.len();
    let mut out = Vec::new();
    match cmd {
        Cmd::Flushall | Cmd::Flushdb => {
            if args.len() > 2
                || args.get(1).is_some_and(|a| {
                    !a.eq_ignore_ascii_case(b"ASYNC") && !a.eq_ignore_ascii_case(b"SYNC")
                })
            {
                resp::error(&mut out, crate::exec::err::SYNTAX);
                return out;
            }
            let parts = (0..n)
                .map(|s| {
                    let mut b = Batch::default();
                    b.push(Cmd::Flushall, [Bytes::from_static(b"FLUSHALL")]);
                    (s, b)
                })
                .collect();
            match locked(srv, tx, parts, false).await {
                Ok(_) => resp::ok(&mut out),
                Err(e) => return e,
            }
        }
        Cmd::Scan => return scan(srv, args).await,
        _ => {
            // DBSIZE, KEYS: every shard, joined.
            let asks: Vec<_> = (0..n)
                .map(|s| {
                    let mut b = Batch::default();
                    b.push(cmd, args.iter().cloned());
                    srv.parts[s].ask(move |r| PartMsg::Exec(b, r))
                })
                .collect();
            let mut total = 0;
            let mut count = 0;
            let mut bodies = Vec::new();
            for ask in asks {
                match ask.await {
                    Ok(r) => {
                        let r = r.get(0);
                        if cmd == Cmd::Dbsize {
                            total += int_of(r);
                        } else if let Some((k, body)) = split_array(r) {
                            count += k;
                            bodies.extend_from_slice(body);
                        }
                    }
                    Err(e) => {
                        unavailable(&mut out, e);
                        return out;
                    }
                }
            }
            if cmd == Cmd::Dbsize {
                resp::int(&mut out, total);
            } else {
                resp::array(&mut out, count);
                out.extend_from_slice(&bodies);
            }
        }
    }
    out
}

/// An array reply's length and body.
fn split_array(r: &[u8]) -> Option<(usize, &[u8])> {
    let rest = r.strip_prefix(b"*")?;
    let eol = rest.windows(2).position(|w| w == b"\r\n")?;
    let n = std::str::from_utf8(&rest[..eol]).ok()?.parse().ok()?;
    Some((n, &rest[eol + 2..]))
}

/// `SCAN cursor [MATCH p] [COUNT n] [TYPE t]`: the cursor names a shard
/// (`cursor % shards`) and a slot in it (`cursor / shards`).
async fn scan(srv: &Shared, args: &[Bytes]) -> Vec<u8> {
    let n = srv.parts.len();
    let mut out = Vec::new();
    let Some(cursor) = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
    else {
        resp::error(&mut out, "ERR invalid cursor");
        return out;
    };
    let (mut pattern, mut count, mut kind) = (None, 10usize, None);
    let mut i = 2;
    while i < args.len() {
        let value = args.get(i + 1);
        match (args[i].to_ascii_uppercase().as_slice(), value) {
            (b"MATCH", Some(v)) => pattern = Some(v.clone()),
            (b"TYPE", Some(v)) => kind = Some(v.clone()),
            (b"COUNT", Some(v)) => match crate::exec::parse_int(v) {
                Some(c) if c > 0 => count = c as usize,
                Some(_) => {
                    resp::error(&mut out, crate::exec::err::SYNTAX);
                    return out;
                }
                None => {
                    resp::error(&mut out, crate::exec::err::NOT_INT);
                    return out;
                }
            },
            _ => {
                resp::error(&mut out, crate::exec::err::SYNTAX);
                return out;
            }
        }
        i += 2;
    }
    let shard = (cursor % n as u64) as usize;
    let slot = (cursor / n as u64) as usize;
    let (next, keys) = match srv.parts[shard]
        .ask(|r| PartMsg::Scan(slot, count, pattern, kind, r))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            unavailable(&mut out, e);
            return out;
        }
    };
    let next = if next != 0 {
        next as u64 * n as u64 + shard as u64
    } else if shard + 1 < n {
        shard as u64 + 1
    } else {
        0
    };
    resp::array(&mut out, 2);
    resp::bulk(&mut out, next.to_string().as_bytes());
    resp::array(&mut out, keys.len());
    for k in keys {
        resp::bulk(&mut out, &k);
    }
    out
}
