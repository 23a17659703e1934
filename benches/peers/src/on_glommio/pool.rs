//! The executor threads of the raw glommio peer: each thread owns one
//! glommio `LocalExecutor` for its whole life and runs jobs sent to it,
//! one at a time, each as the executor's main future.
//!
//! Threads live as long as the [`Executors`] (a round of measurements):
//! glommio 0.9 leaks an eventfd per executor dropped (its issue #448, see
//! `shard/src/pool.rs`), so executors are made once per round, not once
//! per workload.

use crate::check::{BenchError, Ctx, Result};
use glommio::{LocalExecutorBuilder, Placement};
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

/// glommio reserves 10 MiB of locked I/O memory per executor by default,
/// more than `ulimit -l` allows two executors on the development machine;
/// the workloads do no storage I/O (corelet's shards use the same size).
const IO_MEMORY: usize = 256 << 10;

/// A job: builds its future on the executor's thread.
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// How idle executors wait for work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// glommio's default: park in the kernel (`io_uring_enter`) at once.
    Park,
    /// Pin executor `i` to CPU `i` (modulo the CPUs) and poll for this
    /// long before parking (`LocalExecutorBuilder::spin_before_park`,
    /// which glommio honours only for pinned executors).
    Spin(Duration),
}

/// A fixed set of glommio executor threads.
pub struct Executors {
    jobs: Vec<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Executors {
    /// Starts `n` executor threads that wait as `idle` says.
    pub fn new(n: usize, idle: Idle) -> Result<Executors> {
        let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
        let mut jobs = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = channel::<Job>();
            let (ready_tx, ready) = channel::<std::result::Result<(), String>>();
            let builder = match idle {
                Idle::Park => LocalExecutorBuilder::new(Placement::Unbound),
                Idle::Spin(spin) => {
                    LocalExecutorBuilder::new(Placement::Fixed(i % cpus)).spin_before_park(spin)
                }
            };
            let builder = builder
                .name(&format!("glommio-peer-{i}"))
                .io_memory(IO_MEMORY);
            let thread = std::thread::Builder::new()
                .name(format!("glommio-peer-{i}"))
                .spawn(move || {
                    let executor = match builder.make() {
                        Ok(ex) => ex,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    while let Ok(job) = rx.recv() {
                        executor.run(job());
                    }
                })
                .ctx("starting a glommio executor thread")?;
            ready
                .recv()
                .ctx("glommio executor thread")?
                .map_err(|e| BenchError(format!("making a glommio executor: {e}")))?;
            jobs.push(tx);
            threads.push(thread);
        }
        Ok(Executors { jobs, threads })
    }

    /// Starts `f()` on executor `i`; the returned receiver gets its result.
    fn submit<T, F, Fut>(&self, i: usize, f: F) -> Result<std::sync::mpsc::Receiver<Result<T>>>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
    {
        let (tx, rx) = channel();
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let _ = tx.send(f().await);
            })
        });
        self.jobs
            .get(i)
            .ctx("no such executor")?
            .send(job)
            .map_err(|_| BenchError("glommio executor thread has exited".into()))?;
        Ok(rx)
    }

    /// Runs `f()` on executor `i` and returns its result.
    pub fn run<T, F, Fut>(&self, i: usize, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
    {
        self.submit(i, f)?.recv().ctx("glommio job (panicked?)")?
    }

    /// Runs `a()` on executor 0 and `b()` on executor 1 at the same time
    /// and returns both results.
    pub fn run_pair<A, B, FA, FB, FutA, FutB>(&self, a: FA, b: FB) -> Result<(A, B)>
    where
        A: Send + 'static,
        B: Send + 'static,
        FA: FnOnce() -> FutA + Send + 'static,
        FB: FnOnce() -> FutB + Send + 'static,
        FutA: Future<Output = Result<A>> + 'static,
        FutB: Future<Output = Result<B>> + 'static,
    {
        let ra = self.submit(0, a)?;
        let rb = self.submit(1, b)?;
        let a = ra.recv().ctx("glommio job on executor 0 (panicked?)");
        let b = rb.recv().ctx("glommio job on executor 1 (panicked?)");
        Ok((a??, b??))
    }
}

impl Drop for Executors {
    fn drop(&mut self) {
        self.jobs.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
