//! The DPP-84 leak check (Cloud Haskell's supervisor leaked a process per
//! start/terminate/delete cycle): cycles of child churn on supervisors
//! whose children live on every shard, checked batch by batch against the
//! counts taken before — every shard's alive count, the supervisors'
//! child tables (and their timers and windows), and the process's RSS
//! within a fixed bound.
//!
//! Shared by `cargo run --release --example supervisor_leak` and the
//! smaller run in `supervisor/tests/leak.rs`.

use corelet_shard::{Context, Error, ExitReason, HandlerResult, Process, Runtime, ShardId};
use corelet_supervisor::{
    self as supervisor, ChildSpec, DynamicRef, DynamicSpec, Placement, Restart, Strategy,
    SupervisorRef, SupervisorSpec,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An idle worker (the static cycles).
pub struct Idle;

impl Process for Idle {
    type Msg = ();
    async fn handle(&mut self, _: &mut Context<Self>, _: ()) -> HandlerResult {
        Ok(())
    }
}

/// How a dynamic child ends, on its first message (sent by its own init).
#[derive(Clone, Copy, Debug)]
pub enum End {
    Normal,
    Shutdown,
    Error,
    Panic,
}

/// A dynamic child's argument: how it ends, and optionally a flag that
/// makes its first incarnation crash (so that it is restarted once, with
/// the same argument, before it ends for good).
#[derive(Clone)]
pub struct Plan {
    pub end: End,
    pub crash_once: Option<Arc<AtomicBool>>,
}

/// The panic message of planned crashes (the example's panic hook keeps
/// them quiet).
pub const PLANNED: &str = "planned crash";

pub struct Job(Plan);

impl Process for Job {
    type Msg = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        ctx.addr()
            .tell_local(())
            .map_err(|_| "cannot reach itself")?;
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, _: ()) -> HandlerResult {
        if let Some(flag) = &self.0.crash_once {
            if !flag.swap(true, Ordering::SeqCst) {
                return Err("first incarnation crashes".into());
            }
        }
        match self.0.end {
            End::Normal => ctx.stop(),
            End::Shutdown => ctx.stop_with(ExitReason::Shutdown),
            End::Error => return Err("done, badly".into()),
            End::Panic => panic!("{PLANNED}"),
        }
        Ok(())
    }
}

/// What is compared before and after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Every shard's live processes.
    pub alive: Vec<u64>,
    /// Entries in the static supervisor's child table, its pending timers
    /// and restart window.
    pub static_table: (usize, usize, usize),
    /// The dynamic supervisors' tables (temporary, transient) and timers.
    pub dynamic_tables: (usize, usize, usize),
}

/// The supervisors under test.
pub struct Fixture {
    pub rt: Runtime,
    shards: usize,
    sup: SupervisorRef,
    temporary: DynamicRef<Plan>,
    transient: DynamicRef<Plan>,
}

fn template() -> ChildSpec<Plan> {
    ChildSpec::template("job", Job).placement(Placement::RoundRobin)
}

impl Fixture {
    /// Starts a static supervisor (with one long-lived child, so its table
    /// is not empty to begin with) on shard 0 and two dynamic supervisors
    /// on the last shard.
    pub fn new(rt: Runtime) -> Result<Self, Error> {
        let shards = rt.shard_count();
        let last = ShardId(shards as u16 - 1);
        let sup = rt.block_on(ShardId(0), move || async move {
            let spec = SupervisorSpec::new(Strategy::OneForOne)
                .child(ChildSpec::worker("resident", || Idle).placement(Placement::Shard(last)));
            supervisor::start(spec).await
        })?;
        let dynamic = |restart: Restart| {
            rt.block_on(last, move || async move {
                let spec = DynamicSpec::new(template().restart(restart))
                    .intensity(u32::MAX, Duration::from_secs(1));
                supervisor::start_dynamic(spec).await
            })
        };
        let temporary = dynamic(Restart::Temporary)?;
        let transient = dynamic(Restart::Transient)?;
        let start_err = |e: supervisor::StartError| Error::Build(e.to_string());
        Ok(Self {
            shards,
            sup: sup.map_err(start_err)?,
            temporary: temporary.map_err(start_err)?,
            transient: transient.map_err(start_err)?,
            rt,
        })
    }

    /// Stops the supervisors and hands the runtime back.
    pub fn into_runtime(self) -> Runtime {
        let (sup, t1, t2) = (self.sup, self.temporary, self.transient);
        let _ = self.rt.block_on(ShardId(0), move || async move {
            let _ = t1.stop().await;
            let _ = t2.stop().await;
            let _ = sup.stop().await;
        });
        self.rt
    }

    pub fn counts(&self) -> Result<Counts, String> {
        let alive = self
            .rt
            .stats()
            .map_err(|e| e.to_string())?
            .iter()
            .map(|s| s.alive)
            .collect();
        let (sup, t1, t2) = (self.sup, self.temporary, self.transient);
        let tables = self.rt.block_on(ShardId(0), move || async move {
            let s = sup.stats().await?;
            let a = t1.stats().await?;
            let b = t2.stats().await?;
            Ok::<_, supervisor::ChildError>((
                (s.table, s.pending_timers, s.window),
                (a.table, b.table, a.pending_timers + b.pending_timers),
            ))
        });
        let (static_table, dynamic_tables) = tables
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(Counts {
            alive,
            static_table,
            dynamic_tables,
        })
    }

    /// `n` cycles of start_child + terminate_child + delete_child on the
    /// static supervisor, children placed on every shard in turn.
    pub fn static_cycles(&self, first: usize, n: usize) -> Result<(), String> {
        let (sup, shards) = (self.sup, self.shards);
        self.rt
            .block_on(ShardId(0), move || async move {
                for i in first..first + n {
                    let id = format!("cycle-{i}");
                    let shard = ShardId((i % shards) as u16);
                    let spec =
                        ChildSpec::worker(id.clone(), || Idle).placement(Placement::Shard(shard));
                    let pid = sup
                        .start_child(spec)
                        .await
                        .map_err(|e| format!("start {id}: {e}"))?;
                    if pid.map(|p| p.shard()) != Some(shard) {
                        return Err(format!("{id} started as {pid:?}, not on {shard}"));
                    }
                    sup.terminate_child(&id)
                        .await
                        .map_err(|e| format!("terminate {id}: {e}"))?;
                    sup.delete_child(&id)
                        .await
                        .map_err(|e| format!("delete {id}: {e}"))?;
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?
    }

    /// `n` start + exit cycles on each dynamic supervisor: temporary
    /// children end every way; transient children end normally, a quarter
    /// of them after one crash and restart. Waits until both tables are
    /// empty again.
    pub fn dynamic_cycles(&self, first: usize, n: usize) -> Result<(), String> {
        let (temporary, transient) = (self.temporary, self.transient);
        self.rt
            .block_on(ShardId(0), move || async move {
                const ENDS: [End; 4] = [End::Normal, End::Shutdown, End::Error, End::Panic];
                for i in first..first + n {
                    let plan = Plan {
                        end: ENDS[i % 4],
                        crash_once: None,
                    };
                    temporary
                        .start_child(plan)
                        .await
                        .map_err(|e| format!("temporary {i}: {e}"))?;
                    let crash_once = (i % 4 == 0).then(|| Arc::new(AtomicBool::new(false)));
                    let plan = Plan {
                        end: ENDS[i % 2],
                        crash_once,
                    };
                    transient
                        .start_child(plan)
                        .await
                        .map_err(|e| format!("transient {i}: {e}"))?;
                }
                // Every child exits by itself; wait until both supervisors
                // have handled every exit (each check is a round trip).
                for _ in 0..1_000_000 {
                    let a = temporary
                        .count_children()
                        .await
                        .map_err(|e| e.to_string())?;
                    let b = transient
                        .count_children()
                        .await
                        .map_err(|e| e.to_string())?;
                    if a.specs == 0 && b.specs == 0 {
                        return Ok(());
                    }
                    futures_lite::future::yield_now().await;
                }
                Err("dynamic children never all exited".to_owned())
            })
            .map_err(|e| e.to_string())?
    }
}

/// The process's resident set size in KiB.
pub fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// One batch's verdict: `Ok` if the counts match and RSS is within
/// `bound_kib` of `rss_base`.
pub fn check(fx: &Fixture, base: &Counts, rss_base: u64, bound_kib: u64) -> Result<Counts, String> {
    let now = fx.counts()?;
    if now != *base {
        return Err(format!("counts changed: {base:?} -> {now:?}"));
    }
    let rss = rss_kib();
    if rss > rss_base + bound_kib {
        return Err(format!(
            "RSS grew from {rss_base} KiB to {rss} KiB (bound {bound_kib} KiB)"
        ));
    }
    Ok(now)
}
