//! Settings: the command line and what each shard is given.

use crate::resp::Limits;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;

/// When the log is synced (Redis's `appendfsync`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Fsync {
    /// Every write is synced before it is acknowledged (group commit).
    Always,
    /// Synced once a second; a crash may lose the last second.
    Everysec,
    /// Written but never synced (the device decides).
    No,
}

impl Fsync {
    /// The name Redis uses.
    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Everysec => "everysec",
            Fsync::No => "no",
        }
    }
}

/// corelet-kv: a sharded, durable Redis-protocol (RESP2) server on corelet.
///
/// Every shard accepts connections on the same port and owns a partition
/// of the keyspace and its append-only log. The shard count comes from
/// CORELET_SHARDS (default: one per CPU, or one per CPU given to --cores);
/// CORELET_PIN=0/1 turns pinning off or on.
#[derive(Parser, Debug, Clone)]
#[command(name = "corelet-kv", version)]
pub struct Args {
    /// TCP port to listen on (every shard accepts on it, SO_REUSEPORT).
    #[arg(long, default_value_t = 6380)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// Directory of the per-shard logs (shard-N.aof); created if missing.
    #[arg(long, default_value = "./kv-data")]
    pub dir: PathBuf,
    /// When logs are synced: always (before each reply, group commit),
    /// everysec (once a second), no (never).
    #[arg(long, value_enum, default_value_t = Fsync::Everysec)]
    pub appendfsync: Fsync,
    /// Most client connections at once; more are refused with an error.
    #[arg(long, default_value_t = 10000)]
    pub maxclients: usize,
    /// Memory limit for data (bytes; k/kb/m/mb/g/gb suffixes). Past it,
    /// commands that may grow memory fail with Redis's OOM error (no
    /// eviction). 0: no limit. Split evenly between shards.
    #[arg(long, default_value = "0", value_parser = parse_size)]
    pub maxmemory: u64,
    /// CPUs to run shards on, e.g. "0,1" or "2-5": shard i is pinned to
    /// the i-th CPU (round robin), and the host keeps the others.
    #[arg(long, value_parser = parse_cpus)]
    pub cores: Option<CpuList>,
    /// Number of shards (overrides CORELET_SHARDS).
    #[arg(long)]
    pub shards: Option<usize>,
    /// A log is rewritten once it is past this size and twice the live
    /// data (k/m/g suffixes).
    #[arg(long, default_value = "64mb", value_parser = parse_size)]
    pub aof_rewrite_min_size: u64,
    /// Longest bulk string accepted (Redis's proto-max-bulk-len); longer
    /// ones are refused before they are read.
    #[arg(long, default_value = "512mb", value_parser = parse_size)]
    pub proto_max_bulk_len: u64,
}

/// A list of CPU ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// Parses `"0,1"`, `"2-5"`, `"0,2-3"`.
pub fn parse_cpus(s: &str) -> Result<CpuList, String> {
    let mut cpus = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("bad CPU id {t:?}"))
        };
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(num(a)?..=num(b)?),
            None => cpus.push(num(part)?),
        }
    }
    if cpus.is_empty() {
        return Err("empty CPU list".into());
    }
    Ok(CpuList(cpus))
}

/// Parses a size with an optional k/kb/m/mb/g/gb suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mul = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return Err(format!("bad size unit in {s:?}")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("size {s:?} too large"))
}

/// Server settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Port (0: any free port, the same on every shard).
    pub port: u16,
    /// Bind address.
    pub bind: String,
    /// Log directory.
    pub dir: PathBuf,
    /// Sync policy.
    pub fsync: Fsync,
    /// Connection limit.
    pub maxclients: usize,
    /// Memory limit (0: none).
    pub maxmemory: u64,
    /// Rewrite threshold.
    pub rewrite_min: u64,
    /// Request limits.
    pub limits: Limits,
}

impl Config {
    /// Settings with defaults, logging to `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            port: 0,
            bind: "127.0.0.1".into(),
            dir: dir.into(),
            fsync: Fsync::Everysec,
            maxclients: 10000,
            maxmemory: 0,
            rewrite_min: 64 << 20,
            limits: Limits::default(),
        }
    }

    /// Settings from the command line.
    pub fn from_args(a: &Args) -> Self {
        Self {
            port: a.port,
            bind: a.bind.clone(),
            dir: a.dir.clone(),
            fsync: a.appendfsync,
            maxclients: a.maxclients,
            maxmemory: a.maxmemory,
            rewrite_min: a.aof_rewrite_min_size,
            limits: Limits {
                max_bulk: a.proto_max_bulk_len.min(usize::MAX as u64) as usize,
                ..Limits::default()
            },
        }
    }

    /// What shard `shard` of `shards` is given.
    pub fn shard(&self, shard: usize, shards: usize) -> ShardConfig {
        ShardConfig {
            shard,
            shards,
            dir: self.dir.clone(),
            fsync: self.fsync,
            budget: self.maxmemory / shards as u64,
            rewrite_min: self.rewrite_min,
        }
    }
}

/// One shard's settings.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// This shard.
    pub shard: usize,
    /// How many there are.
    pub shards: usize,
    /// Log directory.
    pub dir: PathBuf,
    /// Sync policy.
    pub fsync: Fsync,
    /// This shard's share of `--maxmemory` (0: none).
    pub budget: u64,
    /// Rewrite threshold.
    pub rewrite_min: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_cpus() {
        assert_eq!(parse_size("64mb"), Ok(64 << 20));
        assert_eq!(parse_size("10"), Ok(10));
        assert!(parse_size("1x").is_err());
        assert_eq!(parse_cpus("0,2-4"), Ok(CpuList(vec![0, 2, 3, 4])));
        assert!(parse_cpus("a").is_err());
    }

    #[test]
    fn help_documents_every_flag() {
        use clap::CommandFactory;
        let help = Args::command().render_long_help().to_string();
        for flag in [
            "--port",
            "--bind",
            "--dir",
            "--appendfsync",
            "--maxclients",
            "--maxmemory",
            "--cores",
            "--shards",
            "--aof-rewrite-min-size",
            "--proto-max-bulk-len",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
    }
}
