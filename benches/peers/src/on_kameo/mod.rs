//! The workloads on kameo 0.22, on a two-worker tokio runtime. Actors get
//! unbounded mailboxes (`mailbox::unbounded()`), like every other runtime
//! here; messages go with `tell(..).await` and `ask(..).await`.

mod savina;

use crate::check::{check_eq, BenchError, Ctx, Result, Timed};
use crate::rss;
use crate::tokio_rt;
use crate::workload::{sum_below, Sizes, Workload};
use kameo::actor::{ActorRef, Spawn};
use kameo::error::Infallible;
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::Actor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The kameo runtime of one round: a two-worker tokio runtime.
pub struct Session {
    rt: tokio::runtime::Runtime,
}

impl Session {
    /// Builds the tokio runtime.
    pub fn new() -> Result<Session> {
        Ok(Session {
            rt: tokio_rt::runtime()?,
        })
    }

    /// Runs one workload; the result is in the workload's unit.
    pub fn run(&self, workload: Workload, sizes: &Sizes) -> Result<Option<f64>> {
        let rt = &self.rt;
        let ns = |t: Result<Timed>| t.map(|t| Some(t.per_unit()));
        match workload {
            Workload::LocalTell => ns(tokio_rt::run(rt, local_tell(sizes.local_tell))),
            Workload::LocalAsk => ns(tokio_rt::run(rt, asks(sizes.local_ask))),
            Workload::SpawnExit => ns(tokio_rt::run(rt, spawn_exit(sizes.spawn_exit))),
            Workload::IdleMemory => tokio_rt::run(rt, idle_memory(sizes.idle)).map(Some),
            Workload::CrossTell => ns(tokio_rt::run(rt, cross_tell(sizes.cross_tell))),
            Workload::CrossAsk => ns(tokio_rt::run(rt, asks(sizes.cross_ask))),
            Workload::PingPong => ns(tokio_rt::run(rt, savina::ping_pong(sizes.ping_pong))),
            Workload::Counting => ns(tokio_rt::run(rt, savina::counting(sizes.counting))),
            Workload::ForkJoinThroughput => ns(tokio_rt::run(
                rt,
                savina::fork_join_throughput(sizes.fj_workers, sizes.fj_messages),
            )),
            Workload::ForkJoinCreate => {
                ns(tokio_rt::run(rt, savina::fork_join_create(sizes.fj_create)))
            }
            Workload::ThreadRing => ns(tokio_rt::run(
                rt,
                savina::thread_ring(sizes.ring_actors, sizes.ring_hops),
            )),
            Workload::Big => ns(tokio_rt::run(
                rt,
                savina::big(sizes.big_actors, sizes.big_pings),
            )),
            Workload::Skynet => ns(tokio_rt::run(rt, savina::skynet(sizes.skynet_leaves))),
        }
    }
}

/// Spawns `actor` with an unbounded mailbox.
fn spawn<A: Actor<Args = A>>(actor: A) -> ActorRef<A> {
    A::spawn_with_mailbox(actor, mailbox::unbounded())
}

/// Counts (and sums) what it is told.
#[derive(Actor, Default)]
pub(crate) struct Counter {
    count: u64,
    sum: u64,
}

/// Count one and add the value.
pub(crate) struct Add(pub(crate) u64);
/// Reply with [count, sum].
pub(crate) struct Get;
/// Count one and reply with the count.
struct Inc;

impl Message<Add> for Counter {
    type Reply = ();
    async fn handle(&mut self, Add(v): Add, _ctx: &mut Context<Self, ()>) {
        self.count += 1;
        self.sum += v;
    }
}

impl Message<Get> for Counter {
    type Reply = [u64; 2];
    async fn handle(&mut self, _msg: Get, _ctx: &mut Context<Self, [u64; 2]>) -> [u64; 2] {
        [self.count, self.sum]
    }
}

impl Message<Inc> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _msg: Inc, _ctx: &mut Context<Self, u64>) -> u64 {
        self.count += 1;
        self.count
    }
}

/// Sends the numbers below `n` to a counter, then asks it for its totals.
#[derive(Actor)]
pub(crate) struct Sender {
    pub(crate) to: ActorRef<Counter>,
}

/// Send `n` messages and reply with the counter's totals (`None` if
/// sending failed).
pub(crate) struct Run(pub(crate) u64);

impl Message<Run> for Sender {
    type Reply = Option<[u64; 2]>;
    async fn handle(&mut self, Run(n): Run, _ctx: &mut Context<Self, Self::Reply>) -> Self::Reply {
        for i in 0..n {
            self.to.tell(Add(i)).await.ok()?;
        }
        self.to.ask(Get).await.ok()
    }
}

/// Asks a [`Sender`] to run and checks the counter's totals.
pub(crate) async fn run_sender(sender: &ActorRef<Sender>, n: u64, what: &str) -> Result<()> {
    let [count, sum] = sender
        .ask(Run(n))
        .await
        .ctx(what)?
        .ok_or_else(|| BenchError(format!("{what}: the sender failed")))?;
    check_eq(what, count, n)?;
    check_eq(what, sum, sum_below(n))
}

/// Adds its one message to a shared total and stops.
#[derive(Actor)]
pub(crate) struct Once {
    pub(crate) total: Arc<AtomicU64>,
}

/// The one message of [`Once`].
pub(crate) struct Hit(pub(crate) u64);

impl Message<Hit> for Once {
    type Reply = ();
    async fn handle(&mut self, Hit(v): Hit, ctx: &mut Context<Self, ()>) {
        self.total.fetch_add(v, Ordering::SeqCst);
        ctx.stop();
    }
}

async fn local_tell(n: u64) -> Result<Timed> {
    let counter = spawn(Counter::default());
    let started = Instant::now();
    for i in 0..n {
        counter.tell(Add(i)).await.ctx("tell")?;
    }
    let [count, sum] = counter.ask(Get).await.ctx("ask")?;
    let elapsed = started.elapsed();
    counter.kill();
    check_eq("local tell count", count, n)?;
    check_eq("local tell sum", sum, sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// Request/reply: tokio's workers make "local" and "cross-thread" the
/// same code for kameo.
async fn asks(n: u64) -> Result<Timed> {
    let counter = spawn(Counter::default());
    let started = Instant::now();
    let mut last = 0;
    for _ in 0..n {
        last = counter.ask(Inc).await.ctx("ask")?;
    }
    let elapsed = started.elapsed();
    counter.kill();
    check_eq("ask count", last, n)?;
    Ok(Timed::new(elapsed, n))
}

async fn spawn_exit(n: u64) -> Result<Timed> {
    let total = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    for i in 0..n {
        let once = spawn(Once {
            total: total.clone(),
        });
        once.tell(Hit(i)).await.ctx("tell")?;
        once.wait_for_shutdown().await;
    }
    let elapsed = started.elapsed();
    check_eq("spawn+exit sum", total.load(Ordering::SeqCst), sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// An idle actor: counts itself as started, then waits.
struct Idle {
    started: Arc<AtomicU64>,
}

impl Actor for Idle {
    type Args = Self;
    type Error = Infallible;

    async fn on_start(idle: Self, _me: ActorRef<Self>) -> std::result::Result<Self, Infallible> {
        idle.started.fetch_add(1, Ordering::SeqCst);
        Ok(idle)
    }
}

async fn idle_memory(n: u64) -> Result<f64> {
    let started = Arc::new(AtomicU64::new(0));
    let mut idle = Vec::with_capacity(n as usize);
    let first = spawn(Idle {
        started: started.clone(),
    });
    tokio_rt::wait_for_count(&started, 1, "first idle actor").await?;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let before = rss::resident_bytes()?;
    for _ in 0..n {
        idle.push(spawn(Idle {
            started: started.clone(),
        }));
    }
    tokio_rt::wait_for_count(&started, n + 1, "idle actors started").await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after = rss::resident_bytes()?;
    for a in idle.iter().chain([&first]) {
        a.kill();
    }
    Ok(rss::per_item(before, after, n))
}

async fn cross_tell(n: u64) -> Result<Timed> {
    let counter = spawn(Counter::default());
    let sender = spawn(Sender {
        to: counter.clone(),
    });
    let started = Instant::now();
    run_sender(&sender, n, "cross-thread tell").await?;
    let elapsed = started.elapsed();
    sender.kill();
    counter.kill();
    Ok(Timed::new(elapsed, n))
}
