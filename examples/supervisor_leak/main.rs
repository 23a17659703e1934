//! The DPP-84 leak check at scale.
//!
//! ```sh
//! cargo run --release --example supervisor_leak -- --cycles 100000
//! ```
//!
//! Runs `--cycles` start_child + terminate_child + delete_child cycles on a
//! static supervisor, and `--cycles` start + exit cycles on each of two
//! dynamic supervisors (temporary and transient children), with children
//! on every shard, in batches of `--batch`. After each batch it checks
//! that every shard's alive count and every supervisor's child table are
//! back at their starting values and that the process's RSS stays within
//! `--rss-bound-mib` of its value after a warm-up batch. Prints the counts
//! before and after and `N passed, M failed` (one check per batch); exits
//! non-zero on any difference. `--shards` sets the shard count (default:
//! one per core, unpinned).

mod scenario;

use corelet::Runtime;
use scenario::{check, rss_kib, Fixture, PLANNED};
use std::time::Instant;

struct Args {
    cycles: usize,
    batch: usize,
    shards: Option<usize>,
    rss_bound_mib: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        cycles: 100_000,
        batch: 1_000,
        shards: None,
        rss_bound_mib: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--cycles" => a.cycles = value()? as usize,
            "--batch" => a.batch = value()?.max(1) as usize,
            "--shards" => a.shards = Some(value()? as usize),
            "--rss-bound-mib" => a.rss_bound_mib = value()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn quiet_planned_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let planned = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|s| s == PLANNED);
        if !planned {
            default(info);
        }
    }));
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    quiet_planned_panics();
    let mut builder = Runtime::builder().pin(false);
    if let Some(n) = args.shards {
        builder = builder.shards(n);
    }
    let rt = builder.build().expect("runtime");
    let shards = rt.shard_count();
    let fx = Fixture::new(rt).expect("supervisors start");
    let before = fx.counts().expect("counts");
    println!(
        "{} cycles per scenario on {shards} shards, batches of {}",
        args.cycles, args.batch
    );
    // Warm-up: one batch of each, so that slabs, tables and allocator
    // pools reach their working size before RSS is taken as the base.
    fx.static_cycles(0, args.batch).expect("warm-up");
    fx.dynamic_cycles(0, args.batch).expect("warm-up");
    let rss_base = rss_kib();
    let bound = args.rss_bound_mib * 1024;
    println!(
        "before: alive {:?}  static table {:?}  dynamic tables {:?}  rss {:.1} MiB (after warm-up)",
        before.alive,
        before.static_table,
        before.dynamic_tables,
        mib(rss_base)
    );
    let started = Instant::now();
    let (mut passed, mut failed) = (0u64, 0u64);
    let mut last = before.clone();
    let mut done = 0;
    while done < args.cycles {
        let n = args.batch.min(args.cycles - done);
        let first = args.batch + done; // ids continue after the warm-up
        let outcome = fx
            .static_cycles(first, n)
            .and_then(|()| fx.dynamic_cycles(first, n))
            .and_then(|()| check(&fx, &before, rss_base, bound));
        match outcome {
            Ok(counts) => {
                passed += 1;
                last = counts;
            }
            Err(why) => {
                failed += 1;
                eprintln!("batch at cycle {done}: {why}");
            }
        }
        done += n;
    }
    let elapsed = started.elapsed();
    let rss = rss_kib();
    println!(
        "after:  alive {:?}  static table {:?}  dynamic tables {:?}  rss {:.1} MiB",
        last.alive,
        last.static_table,
        last.dynamic_tables,
        mib(rss)
    );
    println!(
        "{} static cycles and {} dynamic cycles (x2) in {:.1} s ({:.1} µs per cycle of the three)",
        done,
        done,
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / done.max(1) as f64
    );
    println!("{passed} passed, {failed} failed");
    fx.into_runtime().shutdown().expect("clean shutdown");
    if failed > 0 {
        std::process::exit(1);
    }
}
