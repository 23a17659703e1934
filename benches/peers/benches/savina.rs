//! Criterion benches of corelet on the Savina workloads and skynet, using
//! the same (result-checked) implementations as the peer comparison.
//!
//! ```text
//! cargo bench -p corelet-peers --bench savina
//! ```
//! Each sample runs a whole workload at `--quick` sizes; the reported time
//! is per unit (message, process, hop); for skynet it is the whole run.

use corelet_peers::on_corelet::Session;
use corelet_peers::{Sizes, Workload};
use criterion::Criterion;
use std::time::Duration;

/// Runs `workload` `iters` times and adds up the per-unit times.
fn per_unit(session: &Session, workload: Workload, sizes: &Sizes, iters: u64) -> Duration {
    (0..iters)
        .map(|_| {
            let ns = session
                .run(workload, sizes)
                .expect("workload result checked")
                .expect("corelet runs every workload");
            Duration::from_secs_f64(ns / 1e9)
        })
        .sum()
}

/// The Savina micro-benchmarks and skynet on corelet.
fn savina(c: &mut Criterion) {
    let session = Session::new(false).expect("runtimes");
    let sizes = Sizes::quick();
    let mut g = c.benchmark_group("savina");
    g.sample_size(10);
    for (name, workload) in [
        ("ping_pong", Workload::PingPong),
        ("counting", Workload::Counting),
        ("fork_join_throughput", Workload::ForkJoinThroughput),
        ("fork_join_create", Workload::ForkJoinCreate),
        ("thread_ring", Workload::ThreadRing),
        ("big", Workload::Big),
        ("skynet_whole_run", Workload::Skynet),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| per_unit(&session, workload, &sizes, iters))
        });
    }
    g.finish();
}

/// The criterion entry points (the macro's functions carry no docs).
#[allow(missing_docs)]
mod entry {
    use criterion::{criterion_group, Criterion};
    use std::time::Duration;

    criterion_group! {
        name = benches;
        config = Criterion::default()
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(3));
        targets = super::savina
    }
}
criterion::criterion_main!(entry::benches);
