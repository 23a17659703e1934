//! The workloads on corelet: local ones on a one-shard runtime, cross-shard
//! ones (and skynet) on two shards.
//!
//! Each function runs its job inside `Runtime::block_on` on shard 0 and
//! times it there with `Instant`, so runtime start-up is never measured.
//! Processes are stopped (terminate, then wait) before a function returns.

mod savina;

pub use savina::skynet;

use crate::check::{check_eq, BenchError, Ctx, Result, Timed, Window};
use crate::rss;
use crate::workload::{sum_below, Sizes, Workload};
use corelet::{
    Addr, AskError, Context, ExitReason, Handled, HandlerResult, Pid, Process, ReplyTo, Runtime,
    SendError, ShardId,
};
use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The runtimes one round of corelet measurements uses.
pub struct Session {
    one: Runtime,
    two: Runtime,
}

impl Session {
    /// Builds a one-shard and a two-shard runtime. `pin` pins shard
    /// threads to cores (it needs as many cores as shards).
    pub fn new(pin: bool) -> Result<Session> {
        Ok(Session {
            one: build(1, pin)?,
            two: build(2, pin)?,
        })
    }

    /// Runs one workload; the result is in the workload's unit.
    pub fn run(&self, workload: Workload, sizes: &Sizes) -> Result<Option<f64>> {
        let ns = |t: Result<Timed>| t.map(|t| Some(t.per_unit()));
        match workload {
            Workload::LocalTell => ns(local_tell(&self.one, sizes.local_tell)),
            Workload::LocalAsk => ns(local_ask(&self.one, sizes.local_ask)),
            Workload::SpawnExit => ns(spawn_exit(&self.one, sizes.spawn_exit)),
            Workload::IdleMemory => idle_memory(&self.one, sizes.idle).map(Some),
            Workload::CrossTell => ns(cross_tell(&self.two, sizes.cross_tell)),
            Workload::CrossAsk => ns(cross_ask(&self.two, sizes.cross_ask)),
            Workload::PingPong => ns(savina::ping_pong(&self.one, sizes.ping_pong)),
            Workload::Counting => ns(savina::counting(&self.one, sizes.counting)),
            Workload::ForkJoinThroughput => ns(savina::fork_join_throughput(
                &self.one,
                sizes.fj_workers,
                sizes.fj_messages,
            )),
            Workload::ForkJoinCreate => ns(savina::fork_join_create(&self.one, sizes.fj_create)),
            Workload::ThreadRing => ns(savina::thread_ring(
                &self.one,
                sizes.ring_actors,
                sizes.ring_hops,
            )),
            Workload::Big => ns(savina::big(&self.one, sizes.big_actors, sizes.big_pings)),
            Workload::Skynet => ns(skynet(&self.two, sizes.skynet_leaves)),
        }
    }
}

/// A runtime of `shards` shards, pinned or not.
pub fn build(shards: usize, pin: bool) -> Result<Runtime> {
    Runtime::builder()
        .name(format!("bench-{shards}"))
        .shards(shards)
        .pin(pin)
        .build()
        .ctx("building a corelet runtime")
}

/// Runs `f()` on shard `shard` of `rt` and returns its result.
fn on<T, F, Fut>(rt: &Runtime, shard: u16, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T>> + 'static,
{
    rt.block_on(ShardId(shard), f).ctx("corelet block_on")?
}

/// Terminates every process in `pids` and waits until all have exited.
pub async fn stop_all(pids: impl IntoIterator<Item = Pid>) -> Result<()> {
    let mut waits = Vec::new();
    for pid in pids {
        // Register the waiter first: `wait` on a pid that is gone is an
        // error, and `terminate` may complete before we look again.
        waits.push(corelet::wait(pid));
        corelet::terminate(pid).ctx("terminate")?;
    }
    for w in waits {
        w.await.ctx("wait")?;
    }
    Ok(())
}

/// Counts (and sums) what it is told; answers how many so far.
#[derive(Default)]
pub(crate) struct Counter {
    count: u64,
    sum: u64,
}

/// Messages of [`Counter`].
pub(crate) enum CounterMsg {
    /// Count one and add the value.
    Add(u64),
    /// Reply with (count, sum).
    Get(ReplyTo<(u64, u64)>),
    /// Count one and reply with the count.
    Inc(ReplyTo<u64>),
}

impl Process for Counter {
    type Msg = CounterMsg;

    // Nothing here awaits, so everything is handled at once (no future);
    // `handle` is not needed.
    fn handle_now(&mut self, _ctx: &mut Context<Self>, msg: CounterMsg) -> Handled<CounterMsg> {
        match msg {
            CounterMsg::Add(v) => {
                self.count += 1;
                self.sum += v;
            }
            CounterMsg::Get(reply) => reply.send((self.count, self.sum)),
            CounterMsg::Inc(reply) => {
                self.count += 1;
                reply.send(self.count);
            }
        }
        Handled::Done(Ok(()))
    }
}

/// Sends the numbers below `n` to a counter, then asks it for its totals.
pub(crate) struct Sender {
    to: Addr<Counter>,
    /// `send().await` (waits out cross-shard back-pressure) instead of
    /// `tell`.
    wait_for_room: bool,
}

/// The one message of [`Sender`]: send `n` messages and report the
/// counter's (count, sum).
pub(crate) struct Run(u64, ReplyTo<std::result::Result<(u64, u64), String>>);

impl Process for Sender {
    type Msg = Run;

    async fn handle(&mut self, _ctx: &mut Context<Self>, Run(n, reply): Run) -> HandlerResult {
        for i in 0..n {
            if self.wait_for_room {
                self.to.send(CounterMsg::Add(i)).await?;
            } else {
                self.to.tell(CounterMsg::Add(i))?;
            }
        }
        let totals = ask_waiting(self.to, CounterMsg::Get).await;
        reply.send(totals.map_err(|e| e.to_string()));
        Ok(())
    }
}

/// An `ask` that waits out cross-shard back-pressure, as `send().await`
/// does for `tell`: `ask` itself fails at once with a `Full` send error
/// while the ring and overflow queue towards the target are full (which a
/// sender that has just sent millions of messages can meet).
pub(crate) async fn ask_waiting<P, R>(
    to: Addr<P>,
    make: impl Fn(ReplyTo<R>) -> P::Msg,
) -> std::result::Result<R, AskError>
where
    P: Process,
    P::Msg: Send,
    R: Send + 'static,
{
    let full = AskError::from(SendError::Full(()));
    loop {
        match to.ask(&make).await {
            Err(e) if e == full => glommio::executor().yield_now().await,
            other => return other,
        }
    }
}

/// Asks a [`Sender`] to run and checks the counter's totals.
async fn run_sender(sender: Addr<Sender>, n: u64, what: &str) -> Result<()> {
    let (count, sum) = ask_waiting(sender, |r| Run(n, r))
        .await
        .ctx(what)?
        .map_err(BenchError)?;
    check_eq(what, count, n)?;
    check_eq(what, sum, sum_below(n))
}

/// Adds its one message to a shared total and stops.
pub(crate) struct Once {
    total: Rc<Cell<u64>>,
}

impl Process for Once {
    type Msg = u64;

    fn handle_now(&mut self, ctx: &mut Context<Self>, v: u64) -> Handled<u64> {
        self.total.set(self.total.get() + v);
        ctx.stop();
        Handled::Done(Ok(()))
    }
}

/// `n` tells to a counter on the same shard, then one ask for its totals.
pub fn local_tell(rt: &Runtime, n: u64) -> Result<Timed> {
    on(rt, 0, move || local_tell_here(n, Window::NONE))
}

/// [`local_tell`] on the calling shard, with `window` around the timed part.
pub async fn local_tell_here(n: u64, window: Window) -> Result<Timed> {
    let counter = corelet::spawn(Counter::default()).ctx("spawn")?;
    let started = Instant::now();
    (window.open)();
    for i in 0..n {
        counter.tell(CounterMsg::Add(i)).ctx("tell")?;
    }
    let (count, sum) = counter.ask(CounterMsg::Get).await.ctx("ask")?;
    (window.close)();
    let elapsed = started.elapsed();
    stop_all([counter.pid()]).await?;
    check_eq("local tell count", count, n)?;
    check_eq("local tell sum", sum, sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// `n` asks, one at a time, to a counter on the same shard.
pub fn local_ask(rt: &Runtime, n: u64) -> Result<Timed> {
    on(rt, 0, move || local_ask_here(n, Window::NONE))
}

/// [`local_ask`] on the calling shard, with `window` around the timed part.
pub async fn local_ask_here(n: u64, window: Window) -> Result<Timed> {
    let counter = corelet::spawn(Counter::default()).ctx("spawn")?;
    let started = Instant::now();
    (window.open)();
    let mut last = 0;
    for _ in 0..n {
        last = counter.ask(CounterMsg::Inc).await.ctx("ask")?;
    }
    (window.close)();
    let elapsed = started.elapsed();
    stop_all([counter.pid()]).await?;
    check_eq("local ask count", last, n)?;
    Ok(Timed::new(elapsed, n))
}

/// `n` times, one at a time: spawn, send one message, wait for the exit.
pub fn spawn_exit(rt: &Runtime, n: u64) -> Result<Timed> {
    on(rt, 0, move || spawn_exit_here(n, Window::NONE))
}

/// [`spawn_exit`] on the calling shard, with `window` around the timed part.
pub async fn spawn_exit_here(n: u64, window: Window) -> Result<Timed> {
    let total = Rc::new(Cell::new(0));
    let started = Instant::now();
    (window.open)();
    for i in 0..n {
        let once = corelet::spawn(Once {
            total: total.clone(),
        })
        .ctx("spawn")?;
        once.tell(i).ctx("tell")?;
        let reason = corelet::wait(once.pid()).await.ctx("wait")?;
        if reason != ExitReason::Normal {
            return Err(BenchError(format!("spawn+exit: exited with {reason}")));
        }
    }
    (window.close)();
    let elapsed = started.elapsed();
    check_eq("spawn+exit sum", total.get(), sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// An idle process: counts itself as started, then waits for messages
/// that never come.
struct Idle {
    started: Rc<Cell<u64>>,
}

impl Process for Idle {
    type Msg = ();

    fn init(&mut self, _ctx: &mut Context<Self>) -> HandlerResult {
        self.started.set(self.started.get() + 1);
        Ok(())
    }

    async fn handle(&mut self, _ctx: &mut Context<Self>, _msg: ()) -> HandlerResult {
        Ok(())
    }
}

fn idle_memory(rt: &Runtime, n: u64) -> Result<f64> {
    on(rt, 0, move || async move {
        let started = Rc::new(Cell::new(0));
        let mut idle = Vec::with_capacity(n as usize);
        // One process first, so that tables and queues exist before the
        // baseline is taken.
        let first = corelet::spawn(Idle {
            started: started.clone(),
        })
        .ctx("spawn")?;
        glommio::timer::sleep(Duration::from_millis(10)).await;
        let before = rss::resident_bytes()?;
        for _ in 0..n {
            idle.push(
                corelet::spawn(Idle {
                    started: started.clone(),
                })
                .ctx("spawn")?,
            );
        }
        // Let every process reach its first await (its mailbox wait).
        glommio::timer::sleep(Duration::from_millis(20)).await;
        let after = rss::resident_bytes()?;
        check_eq("idle processes started", started.get(), n + 1)?;
        let alive = corelet::local_stats().ctx("local stats")?.alive;
        check_eq("idle processes alive", alive as u64, n + 1)?;
        stop_all(idle.iter().map(|a| a.pid()).chain([first.pid()])).await?;
        Ok(rss::per_item(before, after, n))
    })
}

/// A sender on shard 0 sends `n` messages to a counter on shard 1, then
/// asks for its totals.
pub fn cross_tell(rt: &Runtime, n: u64) -> Result<Timed> {
    on(rt, 0, move || cross_tell_here(n, Window::NONE))
}

/// [`cross_tell`] on the calling shard, with `window` around the timed part.
pub async fn cross_tell_here(n: u64, window: Window) -> Result<Timed> {
    let counter = corelet::spawn_on(ShardId(1), Counter::default)
        .await
        .ctx("spawn_on")?;
    let sender = corelet::spawn(Sender {
        to: counter,
        wait_for_room: true,
    })
    .ctx("spawn")?;
    let started = Instant::now();
    (window.open)();
    run_sender(sender, n, "cross-shard tell").await?;
    (window.close)();
    let elapsed = started.elapsed();
    stop_all([sender.pid(), counter.pid()]).await?;
    Ok(Timed::new(elapsed, n))
}

/// `n` asks, one at a time, from shard 0 to a counter on shard 1.
pub fn cross_ask(rt: &Runtime, n: u64) -> Result<Timed> {
    on(rt, 0, move || cross_ask_here(n, Window::NONE))
}

/// [`cross_ask`] on the calling shard, with `window` around the timed part.
pub async fn cross_ask_here(n: u64, window: Window) -> Result<Timed> {
    let counter = corelet::spawn_on(ShardId(1), Counter::default)
        .await
        .ctx("spawn_on")?;
    let started = Instant::now();
    (window.open)();
    let mut last = 0;
    for _ in 0..n {
        last = counter.ask(CounterMsg::Inc).await.ctx("ask")?;
    }
    (window.close)();
    let elapsed = started.elapsed();
    stop_all([counter.pid()]).await?;
    check_eq("cross-shard ask count", last, n)?;
    Ok(Timed::new(elapsed, n))
}

/// Scaling: for each route `(from, to)` a sender on shard `from` sends
/// `per_sender` messages (`send().await`) to a counter on shard `to`, all
/// routes at once. Units: all messages of all senders.
pub fn cross_tell_routes(
    rt: &Runtime,
    routes: &[(usize, usize)],
    per_sender: u64,
) -> Result<Timed> {
    let routes = routes.to_vec();
    on(rt, 0, move || async move {
        let mut senders = Vec::with_capacity(routes.len());
        let mut pids = Vec::new();
        for &(from, to) in &routes {
            let counter = corelet::spawn_on(ShardId(to as u16), Counter::default)
                .await
                .ctx("spawn_on")?;
            let sender = corelet::spawn_on(ShardId(from as u16), move || Sender {
                to: counter,
                wait_for_room: true,
            })
            .await
            .ctx("spawn_on")?;
            pids.extend([sender.pid(), counter.pid()]);
            senders.push(sender);
        }
        let started = Instant::now();
        // `ask` sends at once, so all senders run together (nothing has
        // been sent yet, so no ring is full).
        let runs: Vec<_> = senders
            .iter()
            .map(|s| s.ask(|r| Run(per_sender, r)))
            .collect();
        for run in runs {
            let (count, sum) = run.await.ctx("scaling ask")?.map_err(BenchError)?;
            check_eq("scaling cross-shard count", count, per_sender)?;
            check_eq("scaling cross-shard sum", sum, sum_below(per_sender))?;
        }
        let elapsed = started.elapsed();
        stop_all(pids).await?;
        Ok(Timed::new(elapsed, per_sender * routes.len() as u64))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny ring and overflow queue: the senders meet back-pressure on
    /// every message and their final asks must wait it out.
    #[test]
    fn cross_tell_survives_back_pressure() {
        let rt = Runtime::builder()
            .shards(2)
            .pin(false)
            .ring_capacity(2)
            .overflow_limit(1)
            .build()
            .unwrap();
        for routes in [vec![(0, 1)], vec![(0, 1), (1, 0)]] {
            let t = cross_tell_routes(&rt, &routes, 5_000).unwrap();
            assert_eq!(t.units, 5_000 * routes.len() as u64);
        }
    }
}
