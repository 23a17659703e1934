//! corelet-kv: a sharded, durable Redis-protocol (RESP2) server built on
//! corelet. See `docs/kv.md` in the repository for the design: who owns
//! which key, how a cross-shard command travels, how MSET stays atomic,
//! the log format, recovery and rewrite.

pub mod acceptor;
pub mod aof;
pub mod batch;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod crashtest;
pub mod db;
pub mod exec;
mod exec_types;
mod info;
pub mod log;
pub mod partition;
pub mod readiness;
pub mod resp;
pub mod route;
pub mod server;
mod txn;

pub use config::{Args, Config, Fsync};
pub use server::Server;

/// Wall-clock time in Unix milliseconds (expiry times are absolute, so
/// that a key that expired before a restart stays expired).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
