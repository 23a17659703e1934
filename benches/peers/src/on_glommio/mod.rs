//! The workloads on raw glommio 0.9: what a thread-per-core user writes
//! by hand instead of using an actor runtime. A "process" is a
//! `glommio::spawn_local` task that reads a `local_channel` (unbounded:
//! the counterpart of a mailbox) and stops when every sender is gone; an
//! address is the channel's `LocalSender` (behind an `Rc` where several
//! tasks hold it); an ask is a request carrying a `tokio::sync::oneshot`
//! sender (one allocation, executor-agnostic; glommio has no oneshot of
//! its own). Across threads two executors talk through glommio's
//! `shared_channel` (bounded, one per direction). Every workload checks
//! its answer like the other peers'.

mod pool;
mod savina;

pub use pool::{Executors, Idle};

use crate::check::{check_eq, BenchError, Ctx, Result, Timed, Window};
use crate::rss;
use crate::workload::{sum_below, Sizes, Workload};
use glommio::channels::local_channel::{self, LocalSender};
use glommio::channels::shared_channel;
use glommio::Task;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Capacity of a cross-executor `shared_channel`: the same as corelet's
/// default ring.
pub(crate) const SHARED_CAPACITY: usize = 1024;

/// How long an idle executor polls before parking: corelet's default
/// `spin_before_park`, so cross-thread asks compare like for like.
pub const SPIN: Duration = Duration::from_micros(50);

/// The executors one round of raw glommio measurements uses.
pub struct Session {
    ex: Executors,
}

impl Session {
    /// Starts two executor threads, pinned and spinning for [`SPIN`]
    /// before parking where the machine has two CPUs (glommio spins only
    /// on pinned executors), parking at once otherwise.
    pub fn new() -> Result<Session> {
        Session::with_idle(default_idle())
    }

    /// Starts two executor threads that wait as `idle` says.
    pub fn with_idle(idle: Idle) -> Result<Session> {
        Ok(Session {
            ex: Executors::new(2, idle)?,
        })
    }

    /// The executors.
    pub fn executors(&self) -> &Executors {
        &self.ex
    }

    /// Runs one workload; the result is in the workload's unit.
    pub fn run(&self, workload: Workload, sizes: &Sizes) -> Result<Option<f64>> {
        let ex = &self.ex;
        let ns = |t: Result<Timed>| t.map(|t| Some(t.per_unit()));
        // Owned, so that each job closure copies the sizes it needs.
        let (s, n) = (sizes.clone(), 0);
        match workload {
            Workload::LocalTell => ns(ex.run(n, move || local_tell(s.local_tell, Window::NONE))),
            Workload::LocalAsk => ns(ex.run(n, move || local_ask(s.local_ask, Window::NONE))),
            Workload::SpawnExit => ns(ex.run(n, move || spawn_exit(s.spawn_exit, Window::NONE))),
            Workload::IdleMemory => ex.run(n, move || idle_memory(s.idle)).map(Some),
            Workload::CrossTell => ns(cross_tell(ex, s.cross_tell, Window::NONE)),
            Workload::CrossAsk => ns(cross_ask(ex, s.cross_ask, Window::NONE)),
            Workload::PingPong => ns(ex.run(n, move || savina::ping_pong(s.ping_pong))),
            Workload::Counting => ns(ex.run(n, move || savina::counting(s.counting))),
            Workload::ForkJoinThroughput => {
                let (k, m) = (s.fj_workers, s.fj_messages);
                ns(ex.run(n, move || savina::fork_join_throughput(k, m)))
            }
            Workload::ForkJoinCreate => {
                ns(ex.run(n, move || savina::fork_join_create(s.fj_create)))
            }
            Workload::ThreadRing => {
                let (r, h) = (s.ring_actors, s.ring_hops);
                ns(ex.run(n, move || savina::thread_ring(r, h)))
            }
            Workload::Big => {
                let (a, p) = (s.big_actors, s.big_pings);
                ns(ex.run(n, move || savina::big(a, p)))
            }
            Workload::Skynet => ns(savina::skynet(ex, s.skynet_leaves)),
        }
    }
}

/// Pinned and spinning for [`SPIN`] with two CPUs or more; parking at
/// once on one CPU.
pub fn default_idle() -> Idle {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        Idle::Spin(SPIN)
    } else {
        Idle::Park
    }
}

/// Messages of a counter task.
pub(crate) enum CounterMsg {
    /// Count one and add the value.
    Add(u64),
    /// Reply with (count, sum).
    Get(oneshot::Sender<(u64, u64)>),
    /// Count one and reply with the count.
    Inc(oneshot::Sender<u64>),
}

/// Spawns a counter task: counts (and sums) what it is told until its
/// sender is dropped.
pub(crate) fn spawn_counter() -> (LocalSender<CounterMsg>, Task<()>) {
    let (tx, rx) = local_channel::new_unbounded();
    let task = glommio::spawn_local(async move {
        let (mut count, mut sum) = (0u64, 0u64);
        while let Some(msg) = rx.recv().await {
            match msg {
                CounterMsg::Add(v) => {
                    count += 1;
                    sum += v;
                }
                CounterMsg::Get(reply) => {
                    let _ = reply.send((count, sum));
                }
                CounterMsg::Inc(reply) => {
                    count += 1;
                    let _ = reply.send(count);
                }
            }
        }
    });
    (tx, task)
}

/// Sends `msg` to a task's unbounded channel.
pub(crate) fn tell<T>(to: &LocalSender<T>, msg: T) -> Result<()> {
    to.try_send(msg)
        .map_err(|_| BenchError("send to a task that has stopped".into()))
}

/// Asks a counter: sends the request made from a fresh oneshot and waits
/// for the reply.
pub(crate) async fn ask<R>(
    to: &LocalSender<CounterMsg>,
    make: impl FnOnce(oneshot::Sender<R>) -> CounterMsg,
) -> Result<R> {
    let (reply, answer) = oneshot::channel();
    tell(to, make(reply))?;
    answer.await.ctx("ask: the task dropped the request")
}

/// A workload of `n` fire-and-forget messages to one counter task, then
/// one ask for its totals.
pub async fn local_tell(n: u64, window: Window) -> Result<Timed> {
    let (counter, task) = spawn_counter();
    let started = Instant::now();
    (window.open)();
    for i in 0..n {
        tell(&counter, CounterMsg::Add(i))?;
    }
    let (count, sum) = ask(&counter, CounterMsg::Get).await?;
    (window.close)();
    let elapsed = started.elapsed();
    drop(counter);
    task.await;
    check_eq("local tell count", count, n)?;
    check_eq("local tell sum", sum, sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// `n` asks, one at a time, to a counter task on the same executor.
pub async fn local_ask(n: u64, window: Window) -> Result<Timed> {
    let (counter, task) = spawn_counter();
    let started = Instant::now();
    (window.open)();
    let mut last = 0;
    for _ in 0..n {
        last = ask(&counter, CounterMsg::Inc).await?;
    }
    (window.close)();
    let elapsed = started.elapsed();
    drop(counter);
    task.await;
    check_eq("local ask count", last, n)?;
    Ok(Timed::new(elapsed, n))
}

/// Spawns a task that adds the one message it gets to `total` and exits.
pub(crate) fn spawn_once(total: &Rc<Cell<u64>>) -> (LocalSender<u64>, Task<()>) {
    let (tx, rx) = local_channel::new_unbounded();
    let total = total.clone();
    let task = glommio::spawn_local(async move {
        if let Some(v) = rx.recv().await {
            total.set(total.get() + v);
        }
    });
    (tx, task)
}

/// `n` times, one at a time: spawn a task, send it one message, wait for
/// it to finish.
pub async fn spawn_exit(n: u64, window: Window) -> Result<Timed> {
    let total = Rc::new(Cell::new(0));
    let started = Instant::now();
    (window.open)();
    for i in 0..n {
        let (tx, task) = spawn_once(&total);
        tell(&tx, i)?;
        task.await;
    }
    (window.close)();
    let elapsed = started.elapsed();
    check_eq("spawn+exit sum", total.get(), sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// Spawns an idle task: counts itself as started, then waits for messages
/// that never come.
fn spawn_idle(started: &Rc<Cell<u64>>) -> (LocalSender<()>, Task<()>) {
    let (tx, rx) = local_channel::new_unbounded::<()>();
    let started = started.clone();
    let task = glommio::spawn_local(async move {
        started.set(started.get() + 1);
        while rx.recv().await.is_some() {}
    });
    (tx, task)
}

async fn idle_memory(n: u64) -> Result<f64> {
    let started = Rc::new(Cell::new(0));
    let mut idle = Vec::with_capacity(n as usize);
    let first = spawn_idle(&started);
    glommio::timer::sleep(Duration::from_millis(10)).await;
    let before = rss::resident_bytes()?;
    for _ in 0..n {
        idle.push(spawn_idle(&started));
    }
    // Let every task reach its first await (its channel's recv).
    glommio::timer::sleep(Duration::from_millis(20)).await;
    let after = rss::resident_bytes()?;
    check_eq("idle tasks started", started.get(), n + 1)?;
    let (senders, tasks): (Vec<_>, Vec<_>) = idle.into_iter().chain([first]).unzip();
    drop(senders);
    for t in tasks {
        t.await;
    }
    Ok(rss::per_item(before, after, n))
}

/// A message across executors to a counter.
enum Cross {
    /// Count one and add the value.
    Add(u64),
    /// Reply (count, sum) on the reply channel.
    Get,
    /// Count one and reply with the count on the reply channel.
    Inc,
}

/// The counter on executor 1: serves `Cross` messages until the sender
/// disconnects; replies go back on their own channel.
async fn cross_counter(
    requests: shared_channel::SharedReceiver<Cross>,
    replies: shared_channel::SharedSender<(u64, u64)>,
) -> Result<()> {
    let requests = requests.connect().await;
    let replies = replies.connect().await;
    let (mut count, mut sum) = (0u64, 0u64);
    while let Some(msg) = requests.recv().await {
        let reply = match msg {
            Cross::Add(v) => {
                count += 1;
                sum += v;
                continue;
            }
            Cross::Get => (count, sum),
            Cross::Inc => {
                count += 1;
                (count, count)
            }
        };
        replies
            .send(reply)
            .await
            .map_err(|_| BenchError("cross-thread reply: asker gone".into()))?;
    }
    Ok(())
}

/// A sender task on executor 0 sends `n` messages to a counter task on
/// executor 1 (waiting for room when the channel is full), then asks for
/// its totals.
pub fn cross_tell(ex: &Executors, n: u64, window: Window) -> Result<Timed> {
    let (to_counter, requests) = shared_channel::new_bounded(SHARED_CAPACITY);
    let (reply_tx, reply_rx) = shared_channel::new_bounded::<(u64, u64)>(1);
    let (timed, ()) = ex.run_pair(
        move || async move {
            let to = to_counter.connect().await;
            let replies = reply_rx.connect().await;
            let started = Instant::now();
            (window.open)();
            for i in 0..n {
                to.send(Cross::Add(i))
                    .await
                    .map_err(|_| BenchError("cross-thread tell: counter gone".into()))?;
            }
            to.send(Cross::Get)
                .await
                .map_err(|_| BenchError("cross-thread tell: counter gone".into()))?;
            let (count, sum) = replies.recv().await.ctx("cross-thread tell reply")?;
            (window.close)();
            let elapsed = started.elapsed();
            check_eq("cross-thread tell count", count, n)?;
            check_eq("cross-thread tell sum", sum, sum_below(n))?;
            Ok(Timed::new(elapsed, n))
        },
        move || cross_counter(requests, reply_tx),
    )?;
    Ok(timed)
}

/// `n` asks, one at a time, from a task on executor 0 to a counter task on
/// executor 1.
pub fn cross_ask(ex: &Executors, n: u64, window: Window) -> Result<Timed> {
    let (to_counter, requests) = shared_channel::new_bounded(SHARED_CAPACITY);
    let (reply_tx, reply_rx) = shared_channel::new_bounded::<(u64, u64)>(1);
    let (timed, ()) = ex.run_pair(
        move || async move {
            let to = to_counter.connect().await;
            let replies = reply_rx.connect().await;
            let started = Instant::now();
            (window.open)();
            let mut last = 0;
            for _ in 0..n {
                to.send(Cross::Inc)
                    .await
                    .map_err(|_| BenchError("cross-thread ask: counter gone".into()))?;
                last = replies.recv().await.ctx("cross-thread ask reply")?.0;
            }
            (window.close)();
            let elapsed = started.elapsed();
            check_eq("cross-thread ask count", last, n)?;
            Ok(Timed::new(elapsed, n))
        },
        move || cross_counter(requests, reply_tx),
    )?;
    Ok(timed)
}
