//! The workloads on ractor 0.16, on a two-worker tokio runtime (its usual
//! home). Messages go with `cast` (fire-and-forget, unbounded) and `call`
//! (request/reply through an `RpcReplyPort`).

mod savina;

use crate::check::{check_eq, BenchError, Ctx, Result, Timed};
use crate::rss;
use crate::tokio_rt;
use crate::workload::{sum_below, Sizes, Workload};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The ractor runtime of one round: a two-worker tokio runtime.
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

/// Spawns an unnamed, unsupervised actor.
async fn spawn<A: Actor>(actor: A, args: A::Arguments) -> Result<ActorRef<A::Msg>> {
    let (addr, _handle) = Actor::spawn(None, actor, args).await.ctx("spawn")?;
    Ok(addr)
}

/// A `call` that must succeed.
async fn call<M: ractor::Message, R: Send + 'static>(
    to: &ActorRef<M>,
    make: impl FnOnce(RpcReplyPort<R>) -> M,
) -> Result<R> {
    match to.call(make, None).await.ctx("call")? {
        CallResult::Success(r) => Ok(r),
        CallResult::Timeout => Err(BenchError("call timed out".into())),
        CallResult::SenderError => Err(BenchError("call: no reply".into())),
    }
}

/// Counts (and sums) what it is told.
pub(crate) struct Counter;

/// Messages of [`Counter`].
pub(crate) enum CounterMsg {
    /// Count one and add the value.
    Add(u64),
    /// Reply with (count, sum).
    Get(RpcReplyPort<(u64, u64)>),
    /// Count one and reply with the count.
    Inc(RpcReplyPort<u64>),
}

impl Actor for Counter {
    type Msg = CounterMsg;
    type State = (u64, u64);
    type Arguments = ();

    async fn pre_start(
        &self,
        _me: ActorRef<CounterMsg>,
        _args: (),
    ) -> std::result::Result<(u64, u64), ActorProcessingErr> {
        Ok((0, 0))
    }

    async fn handle(
        &self,
        _me: ActorRef<CounterMsg>,
        msg: CounterMsg,
        state: &mut (u64, u64),
    ) -> std::result::Result<(), ActorProcessingErr> {
        match msg {
            CounterMsg::Add(v) => {
                state.0 += 1;
                state.1 += v;
            }
            CounterMsg::Get(reply) => reply.send(*state)?,
            CounterMsg::Inc(reply) => {
                state.0 += 1;
                reply.send(state.0)?;
            }
        }
        Ok(())
    }
}

/// Sends the numbers below `n` to a counter, then asks it for its totals.
pub(crate) struct Sender;

/// The one message of [`Sender`]: send `n` messages, reply with the
/// counter's totals.
pub(crate) struct Run(
    pub(crate) u64,
    pub(crate) RpcReplyPort<std::result::Result<(u64, u64), String>>,
);

impl Actor for Sender {
    type Msg = Run;
    type State = ActorRef<CounterMsg>;
    type Arguments = ActorRef<CounterMsg>;

    async fn pre_start(
        &self,
        _me: ActorRef<Run>,
        to: ActorRef<CounterMsg>,
    ) -> std::result::Result<ActorRef<CounterMsg>, ActorProcessingErr> {
        Ok(to)
    }

    async fn handle(
        &self,
        _me: ActorRef<Run>,
        Run(n, reply): Run,
        to: &mut ActorRef<CounterMsg>,
    ) -> std::result::Result<(), ActorProcessingErr> {
        for i in 0..n {
            to.cast(CounterMsg::Add(i))?;
        }
        let totals = call(to, CounterMsg::Get).await.map_err(|e| e.0);
        reply.send(totals)?;
        Ok(())
    }
}

/// Asks a [`Sender`] to run and checks the counter's totals.
pub(crate) async fn run_sender(sender: &ActorRef<Run>, n: u64, what: &str) -> Result<()> {
    let (count, sum) = call(sender, |r| Run(n, r)).await?.map_err(BenchError)?;
    check_eq(what, count, n)?;
    check_eq(what, sum, sum_below(n))
}

/// Adds its one message to a shared total and stops.
pub(crate) struct Once;

impl Actor for Once {
    type Msg = u64;
    type State = Arc<AtomicU64>;
    type Arguments = Arc<AtomicU64>;

    async fn pre_start(
        &self,
        _me: ActorRef<u64>,
        total: Arc<AtomicU64>,
    ) -> std::result::Result<Arc<AtomicU64>, ActorProcessingErr> {
        Ok(total)
    }

    async fn handle(
        &self,
        me: ActorRef<u64>,
        v: u64,
        total: &mut Arc<AtomicU64>,
    ) -> std::result::Result<(), ActorProcessingErr> {
        total.fetch_add(v, Ordering::SeqCst);
        me.stop(None);
        Ok(())
    }
}

async fn local_tell(n: u64) -> Result<Timed> {
    let counter = spawn(Counter, ()).await?;
    let started = Instant::now();
    for i in 0..n {
        counter.cast(CounterMsg::Add(i)).ctx("cast")?;
    }
    let (count, sum) = call(&counter, CounterMsg::Get).await?;
    let elapsed = started.elapsed();
    counter.stop(None);
    check_eq("local tell count", count, n)?;
    check_eq("local tell sum", sum, sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// Request/reply: tokio's workers make "local" and "cross-thread" the
/// same code for ractor.
async fn asks(n: u64) -> Result<Timed> {
    let counter = spawn(Counter, ()).await?;
    let started = Instant::now();
    let mut last = 0;
    for _ in 0..n {
        last = call(&counter, CounterMsg::Inc).await?;
    }
    let elapsed = started.elapsed();
    counter.stop(None);
    check_eq("ask count", last, n)?;
    Ok(Timed::new(elapsed, n))
}

async fn spawn_exit(n: u64) -> Result<Timed> {
    let total = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    for i in 0..n {
        let (once, handle) = Actor::spawn(None, Once, total.clone()).await.ctx("spawn")?;
        once.cast(i).ctx("cast")?;
        handle.await.ctx("join")?;
    }
    let elapsed = started.elapsed();
    check_eq("spawn+exit sum", total.load(Ordering::SeqCst), sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// An idle actor: counts itself as started, then waits.
struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = Arc<AtomicU64>;
    type Arguments = Arc<AtomicU64>;

    async fn pre_start(
        &self,
        _me: ActorRef<()>,
        started: Arc<AtomicU64>,
    ) -> std::result::Result<Arc<AtomicU64>, ActorProcessingErr> {
        started.fetch_add(1, Ordering::SeqCst);
        Ok(started)
    }
}

async fn idle_memory(n: u64) -> Result<f64> {
    let started = Arc::new(AtomicU64::new(0));
    let mut idle = Vec::with_capacity(n as usize);
    let first = spawn(Idle, started.clone()).await?;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let before = rss::resident_bytes()?;
    for _ in 0..n {
        idle.push(spawn(Idle, started.clone()).await?);
    }
    tokio_rt::wait_for_count(&started, n + 1, "idle actors started").await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let after = rss::resident_bytes()?;
    for a in idle.iter().chain([&first]) {
        a.stop(None);
    }
    Ok(rss::per_item(before, after, n))
}

async fn cross_tell(n: u64) -> Result<Timed> {
    let counter = spawn(Counter, ()).await?;
    let sender = spawn(Sender, counter.clone()).await?;
    let started = Instant::now();
    run_sender(&sender, n, "cross-thread tell").await?;
    let elapsed = started.elapsed();
    sender.stop(None);
    counter.stop(None);
    Ok(Timed::new(elapsed, n))
}
