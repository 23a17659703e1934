//! The measured side of `--instructions`: one core path on one runtime at
//! one size, run in this process (started by the driver under callgrind).
//!
//! The path runs twice at the same size: once to warm up (first-use
//! costs, allocator growth), then again with callgrind counting only its
//! timed part. How each runtime is kept from sleeping in the kernel (which
//! hangs valgrind) without counting idle polling is in the parent
//! module's docs.

use super::callgrind;
use crate::check::{BenchError, Result, Window};
use crate::on_glommio::{self, Idle};
use crate::workload::{Kind, Workload};
use crate::{on_corelet, on_stakker};
use std::time::Duration;

/// Spin this long before parking: never, within a run. A glommio executor
/// that parks blocks in `io_uring_enter`, which valgrind does not treat as
/// a blocking call, so it would hold valgrind's lock and hang every other
/// thread (glommio issue #582; see `examples/seed_races`).
const NEVER_PARK: Duration = Duration::from_secs(24 * 3600);

/// corelet's spin before parking on the same-shard paths: long enough
/// that the shard is still awake when this process's main thread hands it
/// the job, short enough to wait out before the counted run.
const SETTLE: Duration = Duration::from_millis(100);

/// The `--instructions-child` job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// corelet, glommio or stakker.
    pub kind: Kind,
    /// One of [`super::PATHS`].
    pub path: Workload,
    /// Operations in the measured run.
    pub n: u64,
}

impl Job {
    /// The arguments after `--instructions-child`.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            self.kind.name().to_owned(),
            self.path.name().to_owned(),
            self.n.to_string(),
        ]
    }

    /// Parses [`Job::to_args`].
    pub fn from_args(args: &[String]) -> Result<Job> {
        let bad = || BenchError(format!("bad --instructions-child arguments: {args:?}"));
        let [kind, path, n] = args else {
            return Err(bad());
        };
        Ok(Job {
            kind: Kind::parse(kind).ok_or_else(bad)?,
            path: Workload::parse(path).ok_or_else(bad)?,
            n: n.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?,
        })
    }

    /// Runs the job: a warm-up run, then the counted run.
    pub fn run_here(&self) -> Result<()> {
        if !super::PATHS.contains(&self.path) || !super::counts(self.kind, self.path) {
            return Err(BenchError(format!(
                "no instruction count of {} on {}",
                self.path, self.kind
            )));
        }
        match self.kind {
            Kind::Corelet => self.corelet(),
            Kind::Glommio => self.glommio(),
            Kind::Stakker => self.stakker(),
            other => Err(BenchError(format!("no instruction count for {other}"))),
        }
    }

    fn corelet(&self) -> Result<()> {
        let (path, n) = (self.path, self.n);
        let cross = matches!(path, Workload::CrossTell | Workload::CrossAsk);
        let rt = corelet::Runtime::builder()
            .name("instructions")
            .shards(if cross { 2 } else { 1 })
            .pin(false)
            .spin_before_park(if cross { NEVER_PARK } else { SETTLE })
            .build()
            .map_err(|e| BenchError(format!("building a corelet runtime: {e}")))?;
        if cross {
            // Shard 1 hands over on every pass before shard 0 starts.
            rt.block_on(corelet::ShardId(1), || async {
                glommio::spawn_local(hand_over()).detach();
            })
            .map_err(|e| BenchError(format!("starting shard 1's hand-over: {e}")))?;
        }
        let run = move |window| async move {
            match path {
                Workload::LocalTell => on_corelet::local_tell_here(n, window).await,
                Workload::LocalAsk => on_corelet::local_ask_here(n, window).await,
                Workload::SpawnExit => on_corelet::spawn_exit_here(n, window).await,
                Workload::CrossTell => on_corelet::cross_tell_here(n, window).await,
                _ => on_corelet::cross_ask_here(n, window).await,
            }
        };
        // Everything happens on shard 0, which also ends the process: once
        // the job is done the shard would sleep in the kernel, and valgrind
        // would never let this thread run again to see the answer.
        let _ = rt.block_on(corelet::ShardId(0), move || async move {
            if cross {
                glommio::spawn_local(hand_over()).detach();
            }
            let outcome = async {
                run(Window::NONE).await?;
                if !cross {
                    // Past the pump's spin: it sleeps through the counted run,
                    // as it does natively during a long same-shard workload.
                    glommio::timer::sleep(SETTLE * 3).await;
                }
                run(COUNTED).await
            }
            .await;
            exit_with(outcome.map(drop))
        });
        Err(BenchError("the counted run did not end the process".into()))
    }

    fn glommio(&self) -> Result<()> {
        let session = on_glommio::Session::with_idle(Idle::Spin(NEVER_PARK))?;
        let ex = session.executors();
        let n = self.n;
        let run = |window| match self.path {
            Workload::LocalTell => ex.run(0, move || on_glommio::local_tell(n, window)),
            Workload::LocalAsk => ex.run(0, move || on_glommio::local_ask(n, window)),
            Workload::SpawnExit => ex.run(0, move || on_glommio::spawn_exit(n, window)),
            Workload::CrossTell => on_glommio::cross_tell(ex, n, window),
            _ => on_glommio::cross_ask(ex, n, window),
        };
        run(Window::NONE)?;
        run(COUNTED).map(drop)
    }

    fn stakker(&self) -> Result<()> {
        let mut s = stakker::Stakker::new(std::time::Instant::now());
        let mut run = |window| match self.path {
            Workload::LocalTell => on_stakker::local_tell(&mut s, self.n, window),
            Workload::LocalAsk => on_stakker::local_ask(&mut s, self.n, window),
            _ => on_stakker::spawn_exit(&mut s, self.n, window),
        };
        run(Window::NONE)?;
        run(COUNTED).map(drop)
    }
}

/// A task that, on every pass of its executor's queue, gives the CPU to
/// the other threads (under valgrind: hands over valgrind's lock, which
/// it otherwise keeps for a long quantum) and stays runnable, so that the
/// executor never sleeps in the kernel. Its cost is counted, one task
/// poll per pass (see the parent module's docs).
pub async fn hand_over() {
    loop {
        std::thread::yield_now();
        glommio::executor().yield_now().await;
    }
}

/// Counts the timed part of a workload.
const COUNTED: Window = Window {
    open: callgrind::start,
    close: callgrind::stop,
};

/// Ends the process: status 0, or 2 with the error on stderr.
fn exit_with(outcome: Result<()>) -> ! {
    match outcome {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("corelet-peers instructions child: {e}");
            std::process::exit(2)
        }
    }
}
