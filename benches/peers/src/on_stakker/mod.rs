//! The workloads on stakker 0.2 (default features): a single-threaded
//! actor runtime with no mailboxes — `call!` queues a closure that runs
//! the method on the actor, and `Stakker::run` runs queued calls until
//! none are left. A request's answer comes back through a `Ret` (a boxed
//! one-shot callback, here `ret_some_to!` into the asker's method or
//! `ret_some_do!` into the driver). One `Stakker` per round, driven on
//! the harness's thread; cross-thread workloads do not apply (stakker
//! runs on one thread; its `PipedThread` and `Channel` are for helper
//! threads, not for actors on other threads).

mod savina;

use crate::check::{check_eq, BenchError, Result, Timed, Window};
use crate::rss;
use crate::workload::{sum_below, Sizes, Workload};
use stakker::{actor, call, ret_nop, ret_some_do, ret_some_to};
use stakker::{Actor, ActorOwn, Ret, Stakker, StopCause, CX};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Instant;

/// The stakker runtime of one round. Stakker's default features allow one
/// `Stakker` in the process at a time.
pub struct Session {
    stakker: RefCell<Stakker>,
}

impl Session {
    /// Makes the round's `Stakker`.
    pub fn new() -> Result<Session> {
        Ok(Session {
            stakker: RefCell::new(Stakker::new(Instant::now())),
        })
    }

    /// Runs one workload; the result is in the workload's unit. The
    /// cross-thread workloads do not apply (`None`).
    pub fn run(&self, workload: Workload, sizes: &Sizes) -> Result<Option<f64>> {
        let s = &mut *self.stakker.borrow_mut();
        let ns = |t: Result<Timed>| t.map(|t| Some(t.per_unit()));
        match workload {
            Workload::LocalTell => ns(local_tell(s, sizes.local_tell, Window::NONE)),
            Workload::LocalAsk => ns(local_ask(s, sizes.local_ask, Window::NONE)),
            Workload::SpawnExit => ns(spawn_exit(s, sizes.spawn_exit, Window::NONE)),
            Workload::IdleMemory => idle_memory(s, sizes.idle).map(Some),
            Workload::CrossTell | Workload::CrossAsk => Ok(None),
            Workload::PingPong => ns(savina::ping_pong(s, sizes.ping_pong)),
            Workload::Counting => ns(savina::counting(s, sizes.counting)),
            Workload::ForkJoinThroughput => ns(savina::fork_join_throughput(
                s,
                sizes.fj_workers,
                sizes.fj_messages,
            )),
            Workload::ForkJoinCreate => ns(savina::fork_join_create(s, sizes.fj_create)),
            Workload::ThreadRing => ns(savina::thread_ring(s, sizes.ring_actors, sizes.ring_hops)),
            Workload::Big => ns(savina::big(s, sizes.big_actors, sizes.big_pings)),
            Workload::Skynet => ns(savina::skynet(s, sizes.skynet_leaves)),
        }
    }
}

/// Runs every queued call (and what they queue) until none are left.
pub(crate) fn run_queue(s: &mut Stakker) {
    s.run(Instant::now(), false);
}

/// A `Ret` for the driver and the slot its answer lands in.
pub(crate) fn answer<T: 'static>() -> (Ret<T>, Rc<Cell<Option<T>>>) {
    let slot = Rc::new(Cell::new(None));
    let into = slot.clone();
    (ret_some_do!(move |v| into.set(Some(v))), slot)
}

/// The answer in `slot`, or an error saying it never came.
pub(crate) fn take<T>(slot: &Cell<Option<T>>, what: &str) -> Result<T> {
    slot.take()
        .ok_or_else(|| BenchError(format!("{what}: no answer")))
}

/// Counts (and sums) what it is told; answers how many so far.
pub(crate) struct Counter {
    count: u64,
    sum: u64,
}

impl Counter {
    pub(crate) fn init(_: CX![]) -> Option<Self> {
        Some(Counter { count: 0, sum: 0 })
    }

    /// Count one and add the value.
    pub(crate) fn add(&mut self, _: CX![], v: u64) {
        self.count += 1;
        self.sum += v;
    }

    /// Reply with (count, sum).
    pub(crate) fn get(&self, _: CX![], ret: Ret<(u64, u64)>) {
        ret.ret((self.count, self.sum));
    }

    /// Count one and reply with the count.
    pub(crate) fn inc(&mut self, _: CX![], ret: Ret<u64>) {
        self.count += 1;
        ret.ret(self.count);
    }
}

/// A fresh counter, initialised.
pub(crate) fn counter(s: &mut Stakker) -> ActorOwn<Counter> {
    let c = actor!(s, Counter::init(), ret_nop!());
    run_queue(s);
    c
}

/// A workload of `n` calls to one counter, then one ask for its totals.
pub fn local_tell(s: &mut Stakker, n: u64, window: Window) -> Result<Timed> {
    let c = counter(s);
    let started = Instant::now();
    (window.open)();
    for i in 0..n {
        call!([c], add(i));
    }
    let (ret, totals) = answer();
    call!([c], get(ret));
    run_queue(s);
    (window.close)();
    let elapsed = started.elapsed();
    drop(c);
    run_queue(s);
    let (count, sum) = take(&totals, "local tell")?;
    check_eq("local tell count", count, n)?;
    check_eq("local tell sum", sum, sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// Asks a counter `n` times, one ask at a time, and reports the last
/// answer.
struct Asker {
    to: Actor<Counter>,
    left: u64,
    last: u64,
    done: Option<Ret<u64>>,
}

impl Asker {
    fn init(_: CX![], to: Actor<Counter>) -> Option<Self> {
        Some(Asker {
            to,
            left: 0,
            last: 0,
            done: None,
        })
    }

    fn start(&mut self, cx: CX![], n: u64, done: Ret<u64>) {
        self.left = n;
        self.done = Some(done);
        self.next(cx);
    }

    fn next(&mut self, cx: CX![]) {
        if self.left == 0 {
            if let Some(done) = self.done.take() {
                done.ret(self.last);
            }
            return;
        }
        self.left -= 1;
        let ret = ret_some_to!([cx], got() as (u64));
        call!([self.to], inc(ret));
    }

    fn got(&mut self, cx: CX![], v: u64) {
        self.last = v;
        self.next(cx);
    }
}

/// `n` asks, one at a time, from an asker actor to a counter.
pub fn local_ask(s: &mut Stakker, n: u64, window: Window) -> Result<Timed> {
    let c = counter(s);
    let asker = actor!(s, Asker::init(c.clone()), ret_nop!());
    run_queue(s);
    let (done, last) = answer();
    let started = Instant::now();
    (window.open)();
    call!([asker], start(n, done));
    run_queue(s);
    (window.close)();
    let elapsed = started.elapsed();
    drop((asker, c));
    run_queue(s);
    check_eq("local ask count", take(&last, "local ask")?, n)?;
    Ok(Timed::new(elapsed, n))
}

/// Adds its one message to a shared total and stops.
pub(crate) struct Once {
    total: Rc<Cell<u64>>,
}

impl Once {
    pub(crate) fn init(_: CX![], total: Rc<Cell<u64>>) -> Option<Self> {
        Some(Once { total })
    }

    pub(crate) fn hit(&mut self, cx: CX![], v: u64) {
        self.total.set(self.total.get() + v);
        cx.stop();
    }
}

/// Spawns a `Once`, sends it a value, and spawns the next when it has
/// stopped, `n` times.
struct Spawner {
    next: u64,
    n: u64,
    total: Rc<Cell<u64>>,
    current: Option<ActorOwn<Once>>,
    done: Option<Ret<std::result::Result<(), String>>>,
}

impl Spawner {
    fn init(_: CX![], n: u64, total: Rc<Cell<u64>>) -> Option<Self> {
        Some(Spawner {
            next: 0,
            n,
            total,
            current: None,
            done: None,
        })
    }

    fn start(&mut self, cx: CX![], done: Ret<std::result::Result<(), String>>) {
        self.done = Some(done);
        self.spawn_one(cx);
    }

    fn spawn_one(&mut self, cx: CX![]) {
        if self.next == self.n {
            if let Some(done) = self.done.take() {
                done.ret(Ok(()));
            }
            return;
        }
        let once = actor!(
            cx,
            Once::init(self.total.clone()),
            ret_some_to!([cx], exited() as (StopCause))
        );
        call!([once], hit(self.next));
        self.next += 1;
        self.current = Some(once);
    }

    fn exited(&mut self, cx: CX![], cause: StopCause) {
        self.current = None;
        match cause {
            StopCause::Stopped => self.spawn_one(cx),
            other => {
                if let Some(done) = self.done.take() {
                    done.ret(Err(format!("spawn+exit: stopped with {other}")));
                }
            }
        }
    }
}

/// `n` times, one at a time: spawn an actor, send it one message, wait for
/// it to stop (its notify `Ret`).
pub fn spawn_exit(s: &mut Stakker, n: u64, window: Window) -> Result<Timed> {
    let total = Rc::new(Cell::new(0));
    let spawner = actor!(s, Spawner::init(n, total.clone()), ret_nop!());
    run_queue(s);
    let (done, outcome) = answer();
    let started = Instant::now();
    (window.open)();
    call!([spawner], start(done));
    run_queue(s);
    (window.close)();
    let elapsed = started.elapsed();
    drop(spawner);
    run_queue(s);
    take(&outcome, "spawn+exit")?.map_err(BenchError)?;
    check_eq("spawn+exit sum", total.get(), sum_below(n))?;
    Ok(Timed::new(elapsed, n))
}

/// An idle actor: counts itself as started, then does nothing.
struct Idle;

impl Idle {
    fn init(_: CX![], started: Rc<Cell<u64>>) -> Option<Self> {
        started.set(started.get() + 1);
        Some(Idle)
    }
}

fn idle_memory(s: &mut Stakker, n: u64) -> Result<f64> {
    let started = Rc::new(Cell::new(0));
    let first = actor!(s, Idle::init(started.clone()), ret_nop!());
    run_queue(s);
    let mut idle = Vec::with_capacity(n as usize);
    let before = rss::resident_bytes()?;
    for _ in 0..n {
        idle.push(actor!(s, Idle::init(started.clone()), ret_nop!()));
    }
    run_queue(s);
    let after = rss::resident_bytes()?;
    check_eq("idle actors started", started.get(), n + 1)?;
    drop((first, idle));
    run_queue(s);
    Ok(rss::per_item(before, after, n))
}
