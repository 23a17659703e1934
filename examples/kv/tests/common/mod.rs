//! Shared test fixtures: a server on an ephemeral loopback port with its
//! own log directory, and a `redis` client for it.
#![allow(dead_code)]

use corelet_kv::{Config, Fsync, Server};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        // Relaxed: a unique number; orders nothing.
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("corelet-kv-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server and its directory.
pub struct Fixture {
    pub server: Option<Server>,
    pub dir: TempDir,
    pub port: u16,
}

impl Fixture {
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    /// Stops the server gracefully (logs synced).
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().unwrap();
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn config(dir: &Path) -> Config {
    let mut cfg = Config::new(dir);
    cfg.fsync = Fsync::No;
    cfg
}

/// A server with `shards` unpinned shards.
pub fn start(shards: usize) -> Fixture {
    let dir = TempDir::new("t");
    let cfg = config(dir.path());
    start_with(shards, cfg, dir)
}

pub fn start_with(shards: usize, cfg: Config, dir: TempDir) -> Fixture {
    let builder = corelet::Runtime::builder().shards(shards).pin(false);
    let server = Server::start(cfg, builder).unwrap();
    let port = server.port();
    Fixture {
        server: Some(server),
        dir,
        port,
    }
}

/// Runs a command, returning the value or the error text.
pub fn q<T: redis::FromRedisValue>(
    con: &mut redis::Connection,
    args: &[&str],
) -> Result<T, String> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).map_err(|e| e.to_string())
}
