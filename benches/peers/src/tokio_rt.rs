//! What the tokio-based peers (ractor, kameo) share: the two-worker
//! runtime they run on and a way to run a workload on one of its workers.

use crate::check::{BenchError, Ctx, Result};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Worker threads of the tokio runtime the peers run on: as many as
/// corelet's cross-shard workloads have shards.
pub const WORKERS: usize = 2;

/// A multi-threaded tokio runtime with [`WORKERS`] workers and every
/// driver enabled: the peers' usual home.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .ctx("building a tokio runtime")
}

/// Runs `fut` as a task on a worker of `rt` (not on the calling thread,
/// which `block_on` alone would do) and returns its output.
pub fn run<T, F>(rt: &tokio::runtime::Runtime, fut: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    rt.block_on(rt.spawn(fut)).ctx("workload task")?
}

/// Waits (yielding to the runtime) until `counter` reaches `want`; fails
/// after ten seconds without getting there.
pub async fn wait_for_count(counter: &AtomicU64, want: u64, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter.load(Ordering::SeqCst) < want {
        if Instant::now() > deadline {
            return Err(BenchError(format!(
                "{what}: only {} of {want} after 10 s",
                counter.load(Ordering::SeqCst)
            )));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
