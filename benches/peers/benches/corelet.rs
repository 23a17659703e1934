//! Criterion benches of corelet: its core paths, the Savina workloads and
//! skynet, using the same result-checked implementations as the peer
//! comparison (a wrong answer panics before a time is reported).
//!
//! ```text
//! cargo bench                    # from the workspace root
//! cargo bench -p corelet-peers --bench corelet -- core
//! ```
//! Each sample runs a whole workload at `--quick` sizes; the reported time
//! is per unit (message, ask, process, hop); for skynet it is the whole run.

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

/// Benches each named workload in one criterion group.
fn group(c: &mut Criterion, group: &str, workloads: &[(&str, Workload)]) {
    let session = Session::new(false).expect("runtimes");
    let sizes = Sizes::quick();
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    for &(name, workload) in workloads {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| per_unit(&session, workload, &sizes, iters))
        });
    }
    g.finish();
}

/// Local tell and ask, spawn + message + exit, cross-shard tell and ask.
fn core(c: &mut Criterion) {
    group(
        c,
        "core",
        &[
            ("local_tell", Workload::LocalTell),
            ("local_ask", Workload::LocalAsk),
            ("spawn_message_exit", Workload::SpawnExit),
            ("cross_shard_tell", Workload::CrossTell),
            ("cross_shard_ask", Workload::CrossAsk),
        ],
    );
}

/// The Savina micro-benchmarks and skynet on corelet.
fn savina(c: &mut Criterion) {
    group(
        c,
        "savina",
        &[
            ("ping_pong", Workload::PingPong),
            ("counting", Workload::Counting),
            ("fork_join_throughput", Workload::ForkJoinThroughput),
            ("fork_join_create", Workload::ForkJoinCreate),
            ("thread_ring", Workload::ThreadRing),
            ("big", Workload::Big),
            ("skynet_whole_run", Workload::Skynet),
        ],
    );
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
        targets = super::core, super::savina
    }
}
criterion::criterion_main!(entry::benches);
