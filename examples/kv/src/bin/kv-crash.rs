//! `kv-crash`: SIGKILLs the server at random moments under concurrent
//! acknowledged writes (`--appendfsync always`), restarts it and checks
//! that nothing acknowledged was lost. Prints `N passed, M failed`.
//!
//! ```sh
//! cargo run --release -p corelet-kv --bin kv-crash -- --cycles 200
//! ```

use clap::Parser;
use corelet_kv::crashtest::{remove, run, temp_dir, CrashConfig};
use std::time::Duration;

/// Crash-test corelet-kv.
#[derive(Parser)]
struct Args {
    /// Kill/restart cycles.
    #[arg(long, default_value_t = 200)]
    cycles: usize,
    /// Shards of the server.
    #[arg(long, default_value_t = 3)]
    shards: usize,
    /// Concurrent client threads.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Longest run before the kill, in milliseconds.
    #[arg(long, default_value_t = 300)]
    max_run_ms: u64,
    /// Random seed (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// The server binary (default: corelet-kv next to this one).
    #[arg(long)]
    server: Option<std::path::PathBuf>,
}

fn main() {
    let args = Args::parse();
    let binary = args.server.unwrap_or_else(|| {
        let me = std::env::current_exe().expect("own path");
        me.with_file_name("corelet-kv")
    });
    if !binary.exists() {
        eprintln!(
            "kv-crash: {} not found: build it first (cargo build --release -p corelet-kv)",
            binary.display()
        );
        std::process::exit(2);
    }
    let seed = args.seed.unwrap_or_else(corelet_kv::now_ms);
    let cfg = CrashConfig {
        binary,
        dir: temp_dir("crash"),
        shards: args.shards,
        clients: args.clients,
        max_run: Duration::from_millis(args.max_run_ms),
        seed,
    };
    println!(
        "kv-crash: {} cycles, {} shards, {} clients, seed {seed}",
        args.cycles, args.shards, args.clients
    );
    let (passed, failed) = run(&cfg, args.cycles, |line| println!("FAILED {line}"));
    remove(&cfg.dir);
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
