//! INFO, COMMAND and CONFIG GET: what redis-cli and redis-benchmark ask on
//! connect, and the server's figures (per shard as well as in total).

use crate::cmd::{Cmd, Route, ALL};
use crate::partition::{PartMsg, PartStats};
use crate::resp;
use crate::server::Shared;
use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// The INFO text (sections: server, clients, memory, persistence, stats,
/// keyspace; `all`/`everything`/none for all of them).
pub async fn info(srv: &Shared, section: Option<&Bytes>) -> String {
    let want = section.map(|s| s.to_ascii_lowercase());
    let show = |name: &str| {
        want.as_deref().is_none_or(|w| {
            w == b"all" || w == b"everything" || w == b"default" || w == name.as_bytes()
        })
    };
    let mut stats = Vec::new();
    for p in &srv.parts {
        stats.push(p.ask(PartMsg::Stats).await.unwrap_or_default());
    }
    let sum = |f: fn(&PartStats) -> u64| stats.iter().map(f).sum::<u64>();
    let mut s = String::new();
    // Relaxed loads: statistics only.
    let clients = srv.clients.load(Ordering::Relaxed);
    if show("server") {
        let _ = write!(
            s,
            "# Server\r\nredis_version:7.0.0\r\ncorelet_kv_version:{}\r\nredis_mode:standalone\r\n\
             os:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\nshards:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            srv.port.load(Ordering::Relaxed),
            srv.started.elapsed().as_secs(),
            srv.parts.len()
        );
    }
    if show("clients") {
        let _ = write!(
            s,
            "# Clients\r\nconnected_clients:{clients}\r\nmaxclients:{}\r\n",
            srv.cfg.maxclients
        );
        for (i, c) in srv.shard_clients.iter().enumerate() {
            let _ = write!(s, "shard{i}_clients:{}\r\n", c.load(Ordering::Relaxed));
        }
        s.push_str("\r\n");
    }
    if show("memory") {
        let _ = write!(
            s,
            "# Memory\r\nused_memory:{}\r\nmaxmemory:{}\r\nmaxmemory_policy:noeviction\r\n",
            sum(|p| p.used),
            srv.cfg.maxmemory
        );
        for (i, p) in stats.iter().enumerate() {
            let _ = write!(s, "shard{i}_used_memory:{}\r\n", p.used);
        }
        s.push_str("\r\n");
    }
    if show("persistence") {
        let err = stats.iter().find_map(|p| p.aof_error.clone());
        let _ = write!(
            s,
            "# Persistence\r\naof_enabled:1\r\nappendfsync:{}\r\naof_rewrite_in_progress:{}\r\n\
             aof_rewrites:{}\r\naof_last_write_status:{}\r\naof_current_size:{}\r\n",
            srv.cfg.fsync.name(),
            u8::from(stats.iter().any(|p| p.rewriting)),
            sum(|p| p.rewrites),
            if err.is_some() { "err" } else { "ok" },
            sum(|p| p.aof_size)
        );
        for (i, p) in stats.iter().enumerate() {
            let _ = write!(
                s,
                "shard{i}_aof_size:{},rewrites={}\r\n",
                p.aof_size, p.rewrites
            );
        }
        s.push_str("\r\n");
    }
    if show("stats") {
        let _ = write!(
            s,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
             rejected_connections:{}\r\nexpired_keys:{}\r\n",
            srv.connections_total.load(Ordering::Relaxed),
            sum(|p| p.commands),
            srv.rejected.load(Ordering::Relaxed),
            sum(|p| p.expired)
        );
        for (i, p) in stats.iter().enumerate() {
            let _ = write!(s, "shard{i}_commands_processed:{}\r\n", p.commands);
        }
        s.push_str("\r\n");
    }
    if show("keyspace") {
        s.push_str("# Keyspace\r\n");
        let keys = sum(|p| p.keys);
        if keys > 0 {
            let _ = write!(
                s,
                "db0:keys={keys},expires={},avg_ttl=0\r\n",
                sum(|p| p.expires)
            );
        }
        for (i, p) in stats.iter().enumerate() {
            let _ = write!(s, "shard{i}:keys={},expires={}\r\n", p.keys, p.expires);
        }
    }
    s
}

fn command_info(out: &mut Vec<u8>, c: Cmd) {
    resp::array(out, 6);
    resp::bulk(out, c.name().as_bytes());
    resp::int(out, i64::from(c.arity()));
    let flags: &[&str] = if c.is_write() {
        &["write"]
    } else {
        &["readonly"]
    };
    resp::array(out, flags.len());
    for f in flags {
        resp::simple(out, f);
    }
    let (first, last, step) = match c.route() {
        Route::Key => (1, 1, 1),
        Route::Keys { step } => (1, -1, step as i64),
        _ => (0, 0, 0),
    };
    resp::int(out, first);
    resp::int(out, last);
    resp::int(out, step);
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name...`, `COMMAND DOCS`.
pub fn command(out: &mut Vec<u8>, args: &[Bytes]) {
    let sub = args.get(1).map(|a| a.to_ascii_uppercase());
    match sub.as_deref() {
        None => {
            resp::array(out, ALL.len());
            for &c in ALL {
                command_info(out, c);
            }
        }
        Some(b"COUNT") => resp::int(out, ALL.len() as i64),
        Some(b"DOCS") => resp::array(out, 0),
        Some(b"INFO") => {
            resp::array(out, args.len() - 2);
            for name in &args[2..] {
                match Cmd::lookup(name) {
                    Some(c) => command_info(out, c),
                    None => resp::nil_array(out),
                }
            }
        }
        Some(_) => resp::error(
            out,
            &format!(
                "ERR unknown subcommand '{}'. Try COMMAND HELP.",
                String::from_utf8_lossy(&args[1])
            ),
        ),
    }
}

/// `CONFIG GET pattern...` over the settings a client may ask about;
/// `CONFIG RESETSTAT`; everything else is refused.
pub fn config(out: &mut Vec<u8>, srv: &Shared, args: &[Bytes]) {
    let sub = args[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"GET" if args.len() >= 3 => {
            let c = &srv.cfg;
            let params: Vec<(&str, String)> = vec![
                ("appendonly", "yes".into()),
                ("appendfsync", c.fsync.name().into()),
                ("save", String::new()),
                ("databases", "1".into()),
                ("maxclients", c.maxclients.to_string()),
                ("maxmemory", c.maxmemory.to_string()),
                ("maxmemory-policy", "noeviction".into()),
                ("port", srv.port.load(Ordering::Relaxed).to_string()),
                ("bind", c.bind.clone()),
                ("dir", c.dir.display().to_string()),
                ("proto-max-bulk-len", c.limits.max_bulk.to_string()),
                ("auto-aof-rewrite-min-size", c.rewrite_min.to_string()),
            ];
            let hits: Vec<_> = params
                .iter()
                .filter(|(name, _)| {
                    args[2..]
                        .iter()
                        .any(|p| crate::db::glob_match(&p.to_ascii_lowercase(), name.as_bytes()))
                })
                .collect();
            resp::array(out, hits.len() * 2);
            for (name, value) in hits {
                resp::bulk(out, name.as_bytes());
                resp::bulk(out, value.as_bytes());
            }
        }
        b"RESETSTAT" => resp::ok(out),
        b"GET" => resp::error(
            out,
            "ERR wrong number of arguments for 'config|get' command",
        ),
        _ => resp::error(
            out,
            &format!(
                "ERR unknown subcommand or unsupported CONFIG operation '{}'",
                String::from_utf8_lossy(&args[1])
            ),
        ),
    }
}
