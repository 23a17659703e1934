//! The DPP-84 leak check (examples/supervisor_leak) at a small cycle
//! count, on two and four unpinned shards: start/terminate/delete cycles
//! on a static supervisor and start/exit cycles of temporary and transient
//! children on dynamic supervisors leave every shard's alive count and
//! every child table where they started. The full run is
//! `cargo run --release --example supervisor_leak -- --cycles 100000`.

#[path = "../../examples/supervisor_leak/scenario.rs"]
#[allow(dead_code)]
mod scenario;

use corelet_shard::Runtime;
use scenario::{check, rss_kib, Fixture};

fn run(shards: usize, batches: usize, batch: usize) {
    let rt = Runtime::builder()
        .shards(shards)
        .pin(false)
        .build()
        .unwrap();
    let fx = Fixture::new(rt).unwrap();
    let before = fx.counts().unwrap();
    assert_eq!(before.static_table, (1, 0, 0), "the resident child only");
    assert_eq!(before.dynamic_tables, (0, 0, 0));
    for b in 0..batches {
        fx.static_cycles(b * batch, batch).unwrap();
        fx.dynamic_cycles(b * batch, batch).unwrap();
        // RSS is not checked here (the test harness runs other tests in
        // the same process); the example checks it.
        if let Err(why) = check(&fx, &before, rss_kib(), u64::MAX / 2) {
            panic!("batch {b} on {shards} shards: {why}");
        }
    }
    fx.into_runtime().shutdown().unwrap();
}

#[test]
fn churn_leaves_nothing_behind_on_two_shards() {
    run(2, 4, 250);
}

#[test]
fn churn_leaves_nothing_behind_on_four_shards() {
    run(4, 2, 250);
}
