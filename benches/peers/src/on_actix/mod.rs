//! The workloads on actix 0.13: the local ones on the `System` thread;
//! the cross-thread ones (and skynet) on two `Arbiter` threads, the
//! counterpart of two shards, with the `System` thread only waiting for
//! the result. Messages go with `do_send` (fire-and-forget, unbounded)
//! and `send(..).await` (request/reply).

mod savina;

use crate::check::{check_eq, BenchError, Ctx, Result, Timed};
use crate::rss;
use crate::workload::{sum_below, Sizes, Workload};
use actix::prelude::*;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The actix runtime of one round: a system and two arbiter threads.
pub struct Session {
    system: SystemRunner,
    arbiters: Vec<Arbiter>,
}

impl Session {
    /// Starts a `System` on this thread and two `Arbiter` threads.
    pub fn new() -> Result<Session> {
        let system = System::new();
        let arbiters = (0..2)
            .map(|_| Arbiter::try_new().ctx("starting an actix arbiter"))
            .collect::<Result<_>>()?;
        Ok(Session { system, arbiters })
    }

    /// The two arbiter threads.
    fn pair(&self) -> (ArbiterHandle, ArbiterHandle) {
        (self.arbiters[0].handle(), self.arbiters[1].handle())
    }

    /// Runs one workload; the result is in the workload's unit.
    pub fn run(&self, workload: Workload, sizes: &Sizes) -> Result<Option<f64>> {
        let sys = &self.system;
        let ns = |t: Result<Timed>| t.map(|t| Some(t.per_unit()));
        match workload {
            Workload::LocalTell => ns(sys.block_on(local_tell(sizes.local_tell))),
            Workload::LocalAsk => ns(sys.block_on(local_ask(sizes.local_ask))),
            Workload::SpawnExit => ns(sys.block_on(spawn_exit(sizes.spawn_exit))),
            Workload::IdleMemory => sys.block_on(idle_memory(sizes.idle)).map(Some),
            Workload::CrossTell => ns(sys.block_on(cross_tell(self.pair(), sizes.cross_tell))),
            Workload::CrossAsk => ns(sys.block_on(cross_ask(self.pair(), sizes.cross_ask))),
            Workload::PingPong => ns(sys.block_on(savina::ping_pong(sizes.ping_pong))),
            Workload::Counting => ns(sys.block_on(savina::counting(sizes.counting))),
            Workload::ForkJoinThroughput => ns(sys.block_on(savina::fork_join_throughput(
                sizes.fj_workers,
                sizes.fj_messages,
            ))),
            Workload::ForkJoinCreate => ns(sys.block_on(savina::fork_join_create(sizes.fj_create))),
            Workload::ThreadRing => {
                ns(sys.block_on(savina::thread_ring(sizes.ring_actors, sizes.ring_hops)))
            }
            Workload::Big => ns(sys.block_on(savina::big(sizes.big_actors, sizes.big_pings))),
            Workload::Skynet => {
                let (a, b) = self.pair();
                ns(sys.block_on(savina::skynet(vec![a, b], sizes.skynet_leaves)))
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for arbiter in self.arbiters.drain(..) {
            arbiter.stop();
            let _ = arbiter.join();
        }
    }
}

/// Counts (and sums) what it is told.
#[derive(Default)]
pub(crate) struct Counter {
    count: u64,
    sum: u64,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

/// Count one and add the value.
pub(crate) struct Add(pub(crate) u64);
impl Message for Add {
    type Result = ();
}

/// Reply with (count, sum).
pub(crate) struct Get;
impl Message for Get {
    type Result = (u64, u64);
}

/// Count one and reply with the count.
struct Inc;
impl Message for Inc {
    type Result = u64;
}

impl Handler<Add> for Counter {
    type Result = ();
    fn handle(&mut self, Add(v): Add, _ctx: &mut Context<Self>) {
        self.count += 1;
        self.sum += v;
    }
}

impl Handler<Get> for Counter {
    type Result = MessageResult<Get>;
    fn handle(&mut self, _msg: Get, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult((self.count, self.sum))
    }
}

impl Handler<Inc> for Counter {
    type Result = u64;
    fn handle(&mut self, _msg: Inc, _ctx: &mut Context<Self>) -> u64 {
        self.count += 1;
        self.count
    }
}

/// Sends the numbers below `n` to a counter, then asks it for its totals.
pub(crate) struct Sender {
    pub(crate) to: Addr<Counter>,
}

impl Actor for Sender {
    type Context = Context<Self>;
}

/// Send `n` messages and reply with the counter's totals.
pub(crate) struct Run(pub(crate) u64);
impl Message for Run {
    type Result = std::result::Result<(u64, u64), String>;
}

impl Handler<Run> for Sender {
    type Result = ResponseFuture<std::result::Result<(u64, u64), String>>;
    fn handle(&mut self, Run(n): Run, _ctx: &mut Context<Self>) -> Self::Result {
        let to = self.to.clone();
        Box::pin(async move {
            for i in 0..n {
                to.do_send(Add(i));
            }
            to.send(Get).await.map_err(|e| e.to_string())
        })
    }
}

/// Asks a [`Sender`] to run and checks the counter's totals.
pub(crate) async fn run_sender(sender: &Addr<Sender>, n: u64, what: &str) -> Result<()> {
    let (count, sum) = sender.send(Run(n)).await.ctx(what)?.map_err(BenchError)?;
    check_eq(what, count, n)?;
    check_eq(what, sum, sum_below(n))
}

/// Adds its one message to a shared total, stops, and says so when
/// stopped.
pub(crate) struct Once {
    pub(crate) total: Rc<Cell<u64>>,
    pub(crate) exited: Option<oneshot::Sender<()>>,
}

impl Actor for Once {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(exited) = self.exited.take() {
            let _ = exited.send(());
        }
    }
}

/// The one message of [`Once`].
pub(crate) struct Hit(pub(crate) u64);
impl Message for Hit {
    type Result = ();
}

impl Handler<Hit> for Once {
    type Result = ();
    fn handle(&mut self, Hit(v): Hit, ctx: &mut Context<Self>) {
        self.total.set(self.total.get() + v);
        ctx.stop();
    }
}

async fn local_tell(n: u64) -> Result<Timed> {
    let counter = Counter::default().start();
    let started = Instant::now();
    for i in 0..n {
        counter.do_send(Add(i));
    }
    let (count, sum) = counter.send(Get).await.ctx("send")?;
    let elapsed = started.elapsed();
    check_eq("local tell count", count, n)?;
    check_eq("local tell sum", sum, sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

async fn local_ask(n: u64) -> Result<Timed> {
    let counter = Counter::default().start();
    let started = Instant::now();
    let mut last = 0;
    for _ in 0..n {
        last = counter.send(Inc).await.ctx("send")?;
    }
    let elapsed = started.elapsed();
    check_eq("local ask count", last, n)?;
    Ok(Timed::new(elapsed, n))
}

async fn spawn_exit(n: u64) -> Result<Timed> {
    let total = Rc::new(Cell::new(0));
    let started = Instant::now();
    for i in 0..n {
        let (tx, rx) = oneshot::channel();
        let once = Once {
            total: total.clone(),
            exited: Some(tx),
        }
        .start();
        once.do_send(Hit(i));
        rx.await.ctx("waiting for the exit")?;
    }
    let elapsed = started.elapsed();
    check_eq("spawn+exit sum", total.get(), sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// An idle actor: counts itself as started, then waits.
struct Idle {
    started: Rc<Cell<u64>>,
}

impl Actor for Idle {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        self.started.set(self.started.get() + 1);
    }
}

/// Waits until `started` reaches `want`, for at most ten seconds.
async fn wait_started(started: &Cell<u64>, want: u64) -> Result<()> {
    for _ in 0..10_000 {
        if started.get() >= want {
            return Ok(());
        }
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    check_eq("idle actors started", started.get(), want)
}

async fn idle_memory(n: u64) -> Result<f64> {
    let started = Rc::new(Cell::new(0));
    let mut idle = Vec::with_capacity(n as usize);
    let first = Idle {
        started: started.clone(),
    }
    .start();
    wait_started(&started, 1).await?;
    let before = rss::resident_bytes()?;
    for _ in 0..n {
        idle.push(
            Idle {
                started: started.clone(),
            }
            .start(),
        );
    }
    wait_started(&started, n + 1).await?;
    actix_rt::time::sleep(Duration::from_millis(20)).await;
    let after = rss::resident_bytes()?;
    check_eq("idle actors started", started.get(), n + 1)?;
    drop((first, idle));
    Ok(rss::per_item(before, after, n))
}

async fn cross_tell((a, b): (ArbiterHandle, ArbiterHandle), n: u64) -> Result<Timed> {
    let counter = Counter::start_in_arbiter(&b, |_| Counter::default());
    let sender = Sender::start_in_arbiter(&a, move |_| Sender { to: counter });
    let started = Instant::now();
    run_sender(&sender, n, "cross-thread tell").await?;
    Ok(Timed::new(started.elapsed(), n))
}

/// Asks a counter `n` times, one ask at a time, and replies with the last
/// count.
struct Asker {
    to: Addr<Counter>,
}

impl Actor for Asker {
    type Context = Context<Self>;
}

/// Ask `n` times; reply with the last answer.
struct Asks(u64);
impl Message for Asks {
    type Result = std::result::Result<u64, String>;
}

impl Handler<Asks> for Asker {
    type Result = ResponseFuture<std::result::Result<u64, String>>;
    fn handle(&mut self, Asks(n): Asks, _ctx: &mut Context<Self>) -> Self::Result {
        let to = self.to.clone();
        Box::pin(async move {
            let mut last = 0;
            for _ in 0..n {
                last = to.send(Inc).await.map_err(|e| e.to_string())?;
            }
            Ok(last)
        })
    }
}

async fn cross_ask((a, b): (ArbiterHandle, ArbiterHandle), n: u64) -> Result<Timed> {
    let counter = Counter::start_in_arbiter(&b, |_| Counter::default());
    let asker = Asker::start_in_arbiter(&a, move |_| Asker { to: counter });
    let started = Instant::now();
    let last = asker.send(Asks(n)).await.ctx("send")?.map_err(BenchError)?;
    let elapsed = started.elapsed();
    check_eq("cross-thread ask count", last, n)?;
    Ok(Timed::new(elapsed, n))
}
