//! Starting and stopping the server: one runtime, a partition and an
//! acceptor per shard, and the graceful stop.

use crate::acceptor::Acceptor;
use crate::config::Config;
use crate::partition::{PartMsg, Partition};
use corelet::{Addr, Builder, Runtime, ShardId};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

/// What every shard of one server shares: settings, the partitions'
/// addresses (plain data), and counters. No map, no lock.
pub struct Shared {
    /// Settings.
    pub cfg: Config,
    /// The partition of each shard.
    pub parts: Vec<Addr<Partition>>,
    /// Connected clients.
    pub clients: AtomicUsize,
    /// Connected clients per shard.
    pub shard_clients: Vec<AtomicUsize>,
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections refused by `--maxclients`.
    pub rejected: AtomicU64,
    /// Asks the host thread to stop the server (SHUTDOWN, signals).
    pub stop: Sender<()>,
    /// The port bound.
    pub port: AtomicU16,
    /// When the server started.
    pub started: Instant,
}

/// A running server.
pub struct Server {
    rt: Runtime,
    shared: Arc<Shared>,
    acceptors: Vec<Addr<Acceptor>>,
    stop_rx: Receiver<()>,
    port: u16,
    /// One line per shard about its log replay.
    pub load_report: Vec<String>,
}

impl Server {
    /// Replays every shard's log, then starts accepting on `cfg.port`
    /// (0: a free port, the same on every shard).
    pub fn start(cfg: Config, builder: Builder) -> Result<Server, String> {
        std::fs::create_dir_all(&cfg.dir).map_err(|e| format!("{}: {e}", cfg.dir.display()))?;
        let mut rt = builder.build().map_err(|e| format!("runtime: {e}"))?;
        let n = rt.shard_count();
        check_dir(&cfg, n)?;
        let parts: Vec<Addr<Partition>> = (0..n)
            .map(|i| {
                let sc = cfg.shard(i, n);
                rt.spawn_on(ShardId(i as u16), move || Partition::new(sc))
            })
            .collect::<Result<_, _>>()
            .map_err(|e| format!("partition: {e}"))?;
        let loads: Vec<Result<String, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = parts
                .iter()
                .map(|p| {
                    let rt = &rt;
                    s.spawn(move || {
                        rt.ask(p, PartMsg::Load)
                            .map_err(|e| e.to_string())
                            .and_then(|r| r)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err("load panicked".into())))
                .collect()
        });
        let mut load_report = Vec::new();
        for l in loads {
            match l {
                Ok(line) => load_report.push(line),
                Err(e) => {
                    let _ = rt.shutdown();
                    return Err(e);
                }
            }
        }
        let (stop, stop_rx) = channel();
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            parts,
            clients: AtomicUsize::new(0),
            shard_clients: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            connections_total: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            stop,
            port: AtomicU16::new(cfg.port),
            started: Instant::now(),
        });
        let mut acceptors = Vec::new();
        let mut port = cfg.port;
        for i in 0..n {
            let srv = shared.clone();
            let started = rt.spawn_on(ShardId(i as u16), move || Acceptor::new(srv, i, port));
            let acc = match started {
                Ok(a) => a,
                Err(e) => {
                    let _ = rt.shutdown();
                    return Err(format!("listen on {}:{port}: {e}", cfg.bind));
                }
            };
            if i == 0 {
                // Relaxed: stored by the acceptor's init, which the spawn
                // waited for.
                port = shared.port.load(std::sync::atomic::Ordering::Relaxed);
            }
            acceptors.push(acc);
        }
        Ok(Server {
            rt,
            shared,
            acceptors,
            stop_rx,
            port,
            load_report,
        })
    }

    /// The port every shard listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The runtime (for embedding: `block_on`, asks from the host thread).
    pub fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// What the shards share (addresses of the partitions, counters).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A handle that asks the server to stop (what SIGINT/SIGTERM and the
    /// SHUTDOWN command use).
    pub fn stopper(&self) -> Sender<()> {
        self.shared.stop.clone()
    }

    /// Blocks until a stop is requested.
    pub fn wait_for_stop(&self) {
        let _ = self.stop_rx.recv();
    }

    /// The graceful stop: stop accepting, let every connection finish the
    /// commands it is running and write their replies, write and sync
    /// every shard's log, stop the runtime.
    pub fn shutdown(mut self) -> Result<(), String> {
        let mut first_error = None;
        let watches: Vec<_> = self
            .acceptors
            .iter()
            .filter_map(|a| self.rt.watch(a.pid()).ok())
            .collect();
        for a in &self.acceptors {
            let _ = self.rt.terminate(a.pid());
        }
        for w in watches {
            let _ = w.wait();
        }
        for (i, p) in self.shared.parts.iter().enumerate() {
            match self.rt.ask(p, PartMsg::Sync) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(format!("shard {i}: log sync failed: {e}"));
                }
                Err(e) => {
                    first_error.get_or_insert(format!("shard {i}: {e}"));
                }
            }
        }
        if let Err(e) = self.rt.shutdown() {
            first_error.get_or_insert(format!("runtime: {e}"));
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Refuses a log directory written with more shards than now: their keys
/// would silently go missing.
fn check_dir(cfg: &Config, shards: usize) -> Result<(), String> {
    for i in 0..shards {
        let path = crate::aof::log_path(&cfg.dir, i);
        match crate::aof::header_shards(&path) {
            Some(n) if n != shards => {
                return Err(format!(
                    "{} was written by {n} shards, but this server has {shards}: \
                     start with CORELET_SHARDS={n} (or --shards {n})",
                    path.display()
                ))
            }
            _ => {}
        }
    }
    let extra = crate::aof::log_path(&cfg.dir, shards);
    if extra.exists() {
        return Err(format!(
            "{} exists: the data in {} was written by more than {shards} shards; \
             start with as many shards (CORELET_SHARDS) as wrote it",
            extra.display(),
            cfg.dir.display()
        ));
    }
    Ok(())
}
