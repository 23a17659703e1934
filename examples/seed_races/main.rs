//! The seed races as a regression suite.
//!
//! ```text
//! cargo run --release --example seed_races -- --iterations 100000 [--storm 64]
//! valgrind --fair-sched=yes target/release/examples/seed_races --iterations 20 --never-park
//! ```
//!
//! Runs every scenario of `scenarios.rs` `--iterations` times on one runtime
//! (default shards; at least two), checks each outcome, and ends with the
//! line `N passed, M failed` (N + M = iterations; an iteration passes when
//! all its scenarios do). Exits non-zero if anything failed.

mod scenarios;

use corelet::Runtime;
use scenarios::{Fixture, SCENARIOS};
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, got {v:?}"))
        })
        .unwrap_or(default)
}

fn main() {
    let iterations = arg("--iterations", 1000);
    let storm = arg("--storm", 64);
    let mut builder = Runtime::builder().name("seed-races");
    if std::env::args().any(|a| a == "--never-park") {
        // For valgrind: a shard that parks blocks in io_uring_enter, which
        // valgrind cannot schedule around (glommio issue #582), so keep
        // every shard polling instead.
        builder = builder.spin_before_park(std::time::Duration::from_secs(24 * 3600));
    }
    if std::env::var_os("CORELET_SHARDS").is_none()
        && std::thread::available_parallelism().map_or(1, |n| n.get()) < 2
    {
        builder = builder.shards(2).pin(false);
    }
    let rt = builder.build().expect("runtime");
    let shards = rt.shard_count();
    let mut fx = Fixture::new(rt, storm).expect("fixture");
    let mut failures = vec![0usize; SCENARIOS.len()];
    let mut spent = vec![std::time::Duration::ZERO; SCENARIOS.len()];
    let (mut passed, mut failed) = (0usize, 0usize);
    let started = Instant::now();
    for i in 0..iterations {
        let mut ok = true;
        for (s, (name, scenario)) in SCENARIOS.iter().enumerate() {
            let t = Instant::now();
            let outcome = scenario(&mut fx);
            spent[s] += t.elapsed();
            if let Err(why) = outcome {
                ok = false;
                failures[s] += 1;
                if failures[s] <= 5 {
                    eprintln!("iteration {i}: {name}: {why}");
                }
            }
        }
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{iterations} iterations of {} scenarios on {shards} shards (storm of {storm}) in {:.1} s",
        SCENARIOS.len(),
        elapsed.as_secs_f64()
    );
    for (((name, _), f), t) in SCENARIOS.iter().zip(&failures).zip(&spent) {
        eprintln!(
            "  {name}: {f} failed, {:.1} µs per run",
            t.as_secs_f64() * 1e6 / iterations.max(1) as f64
        );
    }
    let mut rt = fx.into_runtime();
    if let Err(e) = rt.shutdown() {
        eprintln!("shutdown: {e}");
        failed += usize::from(passed > 0);
        passed = passed.saturating_sub(1);
    }
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
