//! The three ways to stop a process, from an outside thread, from the
//! owner's shard and from another shard:
//!
//! - `terminate`: the signal overtakes queued messages (they are never
//!   handled, they become dead letters); the current handler finishes; the
//!   terminate hook runs once; the reason is `Shutdown`.
//! - `shutdown`: the messages queued before the request are handled, those
//!   sent after it (by the same sender) are not; then the hook runs and the
//!   reason is `Shutdown`.
//! - `kill`: at once, even while a handler (or the terminate hook) awaits;
//!   no hook; the reason is `Killed`.
//!
//! Every combination is idempotent: one exit, one reason, at most one hook
//! run, and one count in the shard's exit counters.

use corelet::{
    Addr, Context, Error, ExitCounts, ExitReason, HandlerResult, Pid, Process, ReplyTo, Runtime,
    ShardId,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SHARDS: usize = 8;
const WORKER_SHARD: ShardId = ShardId(3);
const GATE_SHARD: ShardId = ShardId(6);

fn runtime() -> Runtime {
    Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// A gate: holds the reply handles of its askers until released.

#[derive(Default)]
struct Gate {
    held: Vec<ReplyTo<()>>,
    watchers: Vec<ReplyTo<()>>,
}

enum GateMsg {
    /// Answered at the next `Release`.
    Hold(ReplyTo<()>),
    /// Answered as soon as somebody is held.
    WhenHeld(ReplyTo<()>),
    Release,
}

impl Process for Gate {
    type Msg = GateMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: GateMsg) -> HandlerResult {
        match msg {
            GateMsg::Hold(reply) => {
                self.held.push(reply);
                for w in self.watchers.drain(..) {
                    w.send(());
                }
            }
            GateMsg::WhenHeld(reply) => {
                if self.held.is_empty() {
                    self.watchers.push(reply);
                } else {
                    reply.send(());
                }
            }
            GateMsg::Release => {
                for r in self.held.drain(..) {
                    r.send(());
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The worker under test.

/// What happened to a worker, recorded from its hooks and its `Drop`.
#[derive(Clone, Default)]
struct Log {
    handled: Arc<Mutex<Vec<u32>>>,
    /// Reasons the terminate hook was entered with.
    hooks: Arc<Mutex<Vec<ExitReason>>>,
    /// Terminate hooks that ran to their end.
    hooks_finished: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
    /// `Block` handlers that got past their await.
    unblocked: Arc<AtomicUsize>,
}

impl Log {
    fn handled(&self) -> Vec<u32> {
        self.handled.lock().unwrap().clone()
    }
    fn hooks(&self) -> Vec<ExitReason> {
        self.hooks.lock().unwrap().clone()
    }
    fn drops(&self) -> usize {
        self.drops.load(Ordering::SeqCst)
    }
    fn unblocked(&self) -> usize {
        self.unblocked.load(Ordering::SeqCst)
    }
}

struct Worker {
    log: Log,
    hang_in_terminate: Hang,
}

/// What the terminate hook awaits before it finishes.
#[derive(Clone, Copy)]
enum Hang {
    No,
    /// The gate (which tells `WhenHeld` askers that the hook is waiting).
    AtGate(Addr<Gate>),
    /// Something that never happens.
    Forever,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.log.drops.fetch_add(1, Ordering::SeqCst);
    }
}

enum WorkerMsg {
    /// Awaits the gate inside the handler.
    Block(Addr<Gate>),
    Record(u32),
}

impl Process for Worker {
    type Msg = WorkerMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: WorkerMsg) -> HandlerResult {
        match msg {
            WorkerMsg::Block(gate) => {
                gate.ask(GateMsg::Hold).await?;
                self.log.unblocked.fetch_add(1, Ordering::SeqCst);
            }
            WorkerMsg::Record(n) => self.log.handled.lock().unwrap().push(n),
        }
        Ok(())
    }

    async fn terminate(&mut self, _ctx: &mut Context<Self>, reason: &ExitReason) {
        self.log.hooks.lock().unwrap().push(reason.clone());
        match self.hang_in_terminate {
            Hang::No => {}
            Hang::AtGate(gate) => {
                let _ = gate.ask(GateMsg::Hold).await;
            }
            Hang::Forever => std::future::pending().await,
        }
        self.log.hooks_finished.fetch_add(1, Ordering::SeqCst);
    }
}

fn worker(log: &Log) -> Worker {
    Worker {
        log: log.clone(),
        hang_in_terminate: Hang::No,
    }
}

// ---------------------------------------------------------------------------
// Drivers.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Terminate,
    Shutdown,
    Kill,
}

#[derive(Clone, Copy, Debug)]
enum Driver {
    /// A thread that is not a shard: the blocking `Runtime` calls.
    Outside,
    /// A task on this shard: the async calls.
    Shard(ShardId),
}

/// Every driver: an outside thread, the worker's own shard, another shard.
const DRIVERS: [Driver; 3] = [
    Driver::Outside,
    Driver::Shard(WORKER_SHARD),
    Driver::Shard(ShardId(1)),
];

fn stop_outside(rt: &Runtime, how: Stop, pid: Pid) -> Result<(), Error> {
    match how {
        Stop::Terminate => rt.terminate(pid),
        Stop::Shutdown => rt.shutdown_process(pid),
        Stop::Kill => rt.kill(pid),
    }
}

fn stop_on_shard(how: Stop, pid: Pid) -> Result<(), Error> {
    match how {
        Stop::Terminate => corelet::terminate(pid),
        Stop::Shutdown => corelet::shutdown(pid),
        Stop::Kill => corelet::kill(pid),
    }
}

/// A stop call's outcome: `Ok`, except that once a `Kill` went out the
/// process may already be gone (it dies at once) and later calls may find
/// nobody.
fn check_call(outcome: Result<(), Error>, after_kill: bool, pid: Pid, ctx: &str) {
    match outcome {
        Ok(()) => {}
        Err(Error::NoProcess(p)) if after_kill && p == pid => {}
        other => panic!("{ctx}: unexpected {other:?}"),
    }
}

/// What one run saw.
struct Outcome {
    pid: Pid,
    log: Log,
    reason: ExitReason,
}

/// Spawns a worker on `WORKER_SHARD` and a gate on `GATE_SHARD`; blocks the
/// worker inside a handler at the gate; queues `Record(1..=3)`; applies
/// `stops` in order; queues `Record(4..=6)`; releases the gate; waits for
/// the exit. Everything from `driver`, so each sender's messages and signals
/// reach the worker in the order sent.
fn run(rt: &Runtime, driver: Driver, stops: &'static [Stop]) -> Outcome {
    let log = Log::default();
    let l = log.clone();
    let w = rt.spawn_on(WORKER_SHARD, move || worker(&l)).unwrap();
    let gate = rt.spawn_on(GATE_SHARD, Gate::default).unwrap();
    let pid = w.pid();
    let ctx = format!("{driver:?} {stops:?}");
    let reason = match driver {
        Driver::Outside => {
            rt.tell(&w, WorkerMsg::Block(gate)).unwrap();
            rt.ask(&gate, GateMsg::WhenHeld).unwrap();
            for n in 1..=3 {
                rt.tell(&w, WorkerMsg::Record(n)).unwrap();
            }
            let watch = rt.watch(pid).unwrap();
            let mut killed = false;
            for &how in stops {
                check_call(stop_outside(rt, how, pid), killed, pid, &ctx);
                killed |= how == Stop::Kill;
            }
            for n in 4..=6 {
                rt.tell(&w, WorkerMsg::Record(n)).unwrap();
            }
            rt.tell(&gate, GateMsg::Release).unwrap();
            watch.wait().unwrap()
        }
        Driver::Shard(shard) => rt
            .block_on(shard, move || async move {
                w.tell(WorkerMsg::Block(gate)).unwrap();
                gate.ask(GateMsg::WhenHeld).await.unwrap();
                for n in 1..=3 {
                    w.tell(WorkerMsg::Record(n)).unwrap();
                }
                let exited = corelet::wait(pid);
                let mut killed = false;
                for &how in stops {
                    check_call(stop_on_shard(how, pid), killed, pid, &ctx);
                    killed |= how == Stop::Kill;
                }
                for n in 4..=6 {
                    // A dead local target refuses; a remote one counts it.
                    let _ = w.tell(WorkerMsg::Record(n));
                }
                gate.tell(GateMsg::Release).unwrap();
                exited.await.unwrap()
            })
            .unwrap(),
    };
    // The gate lives on another shard than the worker: stopping it changes
    // none of the worker shard's counters.
    let watch = rt.watch(gate.pid()).unwrap();
    rt.terminate(gate.pid()).unwrap();
    watch.wait().unwrap();
    Outcome { pid, log, reason }
}

fn shard_stats(rt: &Runtime, shard: ShardId) -> corelet::ShardStats {
    rt.stats().unwrap()[shard.index()].clone()
}

fn diff(after: &ExitCounts, before: &ExitCounts) -> ExitCounts {
    ExitCounts {
        normal: after.normal - before.normal,
        shutdown: after.shutdown - before.shutdown,
        killed: after.killed - before.killed,
        panicked: after.panicked - before.panicked,
        error: after.error - before.error,
        linked: after.linked - before.linked,
    }
}

fn one_shutdown() -> ExitCounts {
    ExitCounts {
        shutdown: 1,
        ..ExitCounts::default()
    }
}

fn one_killed() -> ExitCounts {
    ExitCounts {
        killed: 1,
        ..ExitCounts::default()
    }
}

/// After the exit: every way of stopping finds nobody, from anywhere.
fn assert_gone(rt: &Runtime, pid: Pid) {
    for how in [Stop::Terminate, Stop::Shutdown, Stop::Kill] {
        assert_eq!(stop_outside(rt, how, pid), Err(Error::NoProcess(pid)));
    }
    let local = rt
        .block_on(pid.shard(), move || async move {
            [Stop::Terminate, Stop::Shutdown, Stop::Kill].map(|how| stop_on_shard(how, pid))
        })
        .unwrap();
    for outcome in local {
        assert_eq!(outcome, Err(Error::NoProcess(pid)));
    }
    assert_eq!(rt.wait(pid), Err(Error::NoProcess(pid)));
}

/// Checks one run against what its stops must have done.
fn check(
    rt: &Runtime,
    driver: Driver,
    stops: &'static [Stop],
    expect_reason: ExitReason,
    expect_handled: &[u32],
) {
    let before = shard_stats(rt, WORKER_SHARD);
    let Outcome { pid, log, reason } = run(rt, driver, stops);
    let after = shard_stats(rt, WORKER_SHARD);
    let ctx = format!("{driver:?} {stops:?}");
    assert_eq!(reason, expect_reason, "{ctx}");
    assert_eq!(log.handled(), expect_handled, "{ctx}: handled");
    assert_eq!(log.drops(), 1, "{ctx}: state dropped once");
    let killed = expect_reason == ExitReason::Killed;
    if killed {
        assert_eq!(log.hooks(), [], "{ctx}: kill skips the hook");
        assert_eq!(log.unblocked(), 0, "{ctx}: the handler was cut short");
        assert_eq!(diff(&after.exits, &before.exits), one_killed(), "{ctx}");
    } else {
        assert_eq!(log.hooks(), [ExitReason::Shutdown], "{ctx}: one hook run");
        assert_eq!(log.unblocked(), 1, "{ctx}: the current handler finished");
        assert_eq!(diff(&after.exits, &before.exits), one_shutdown(), "{ctx}");
    }
    assert_eq!(after.alive, before.alive, "{ctx}");
    // Every `Record` that was not handled is a dead letter: left in the
    // mailbox at the exit or refused after it. A stop call made after a
    // kill may find the process gone: one refused signal each, counted too.
    let unhandled = (6 - expect_handled.len()) as u64;
    let extra = stops
        .iter()
        .skip_while(|s| **s != Stop::Kill)
        .skip(1)
        .count() as u64;
    let dead = after.dead_letters - before.dead_letters;
    assert!(
        (unhandled..=unhandled + extra).contains(&dead),
        "{ctx}: {dead} dead letters, expected {unhandled} (+ up to {extra})"
    );
    assert_gone(rt, pid);
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn terminate_overtakes_queued_messages_and_runs_the_hook_once() {
    let rt = runtime();
    for driver in DRIVERS {
        check(&rt, driver, &[Stop::Terminate], ExitReason::Shutdown, &[]);
    }
}

#[test]
fn shutdown_handles_what_was_queued_before_it_and_nothing_after() {
    let rt = runtime();
    for driver in DRIVERS {
        check(
            &rt,
            driver,
            &[Stop::Shutdown],
            ExitReason::Shutdown,
            &[1, 2, 3],
        );
    }
}

#[test]
fn shutdown_of_an_idle_process_handles_its_queue_then_stops() {
    let rt = runtime();
    for driver in DRIVERS {
        let log = Log::default();
        let l = log.clone();
        let w = rt.spawn_on(WORKER_SHARD, move || worker(&l)).unwrap();
        let pid = w.pid();
        let reason = match driver {
            Driver::Outside => {
                for n in 1..=50 {
                    rt.tell(&w, WorkerMsg::Record(n)).unwrap();
                }
                let watch = rt.watch(pid).unwrap();
                rt.shutdown_process(pid).unwrap();
                watch.wait().unwrap()
            }
            Driver::Shard(shard) => rt
                .block_on(shard, move || async move {
                    for n in 1..=50 {
                        w.tell(WorkerMsg::Record(n)).unwrap();
                    }
                    let exited = corelet::wait(pid);
                    corelet::shutdown(pid).unwrap();
                    exited.await.unwrap()
                })
                .unwrap(),
        };
        assert_eq!(reason, ExitReason::Shutdown, "{driver:?}");
        assert_eq!(log.handled(), (1..=50).collect::<Vec<_>>(), "{driver:?}");
        assert_eq!(log.hooks(), [ExitReason::Shutdown], "{driver:?}");
        assert_eq!(log.drops(), 1, "{driver:?}");
        assert_gone(&rt, pid);
    }
}

#[test]
fn kill_is_immediate_even_mid_await_and_skips_the_hook() {
    let rt = runtime();
    for driver in DRIVERS {
        check(&rt, driver, &[Stop::Kill], ExitReason::Killed, &[]);
    }
}

#[test]
fn stopping_twice_or_every_way_gives_one_exit() {
    let rt = runtime();
    let cases: [(&'static [Stop], ExitReason, &[u32]); 6] = [
        (
            &[Stop::Terminate, Stop::Terminate],
            ExitReason::Shutdown,
            &[],
        ),
        (
            &[Stop::Shutdown, Stop::Shutdown],
            ExitReason::Shutdown,
            &[1, 2, 3],
        ),
        (&[Stop::Kill, Stop::Kill], ExitReason::Killed, &[]),
        // Terminate overtakes the draining that shutdown asked for.
        (
            &[Stop::Shutdown, Stop::Terminate],
            ExitReason::Shutdown,
            &[],
        ),
        (
            &[Stop::Terminate, Stop::Shutdown, Stop::Kill],
            ExitReason::Killed,
            &[],
        ),
        (
            &[Stop::Kill, Stop::Shutdown, Stop::Terminate],
            ExitReason::Killed,
            &[],
        ),
    ];
    for (stops, reason, handled) in cases {
        for driver in DRIVERS {
            check(&rt, driver, stops, reason.clone(), handled);
        }
    }
}

#[test]
fn kill_interrupts_a_terminate_hook_that_never_finishes() {
    let rt = runtime();
    for driver in DRIVERS {
        let log = Log::default();
        let gate = rt.spawn_on(GATE_SHARD, Gate::default).unwrap();
        let l = log.clone();
        let w = rt
            .spawn_on(WORKER_SHARD, move || Worker {
                log: l,
                hang_in_terminate: Hang::AtGate(gate),
            })
            .unwrap();
        let pid = w.pid();
        let before = shard_stats(&rt, WORKER_SHARD);
        let reason = match driver {
            Driver::Outside => {
                let watch = rt.watch(pid).unwrap();
                rt.terminate(pid).unwrap();
                rt.ask(&gate, GateMsg::WhenHeld).unwrap(); // the hook is waiting
                rt.kill(pid).unwrap();
                watch.wait().unwrap()
            }
            Driver::Shard(shard) => rt
                .block_on(shard, move || async move {
                    let exited = corelet::wait(pid);
                    corelet::terminate(pid).unwrap();
                    gate.ask(GateMsg::WhenHeld).await.unwrap();
                    corelet::kill(pid).unwrap();
                    exited.await.unwrap()
                })
                .unwrap(),
        };
        let after = shard_stats(&rt, WORKER_SHARD);
        assert_eq!(reason, ExitReason::Killed, "{driver:?}");
        assert_eq!(log.hooks(), [ExitReason::Shutdown], "{driver:?}: entered");
        assert_eq!(log.hooks_finished.load(Ordering::SeqCst), 0, "{driver:?}");
        assert_eq!(log.drops(), 1, "{driver:?}");
        assert_eq!(
            diff(&after.exits, &before.exits),
            one_killed(),
            "{driver:?}"
        );
        assert_gone(&rt, pid);
        rt.terminate(gate.pid()).unwrap();
    }
}

#[test]
fn runtime_shutdown_kills_a_process_stuck_in_its_terminate_hook() {
    let mut rt = Runtime::builder()
        .shards(2)
        .pin(false)
        .shutdown_grace(Duration::from_millis(20))
        .build()
        .unwrap();
    let log = Log::default();
    let l = log.clone();
    let w = rt
        .spawn_on(ShardId(1), move || Worker {
            log: l,
            hang_in_terminate: Hang::Forever,
        })
        .unwrap();
    let watch = rt.watch(w.pid()).unwrap();
    rt.shutdown().unwrap(); // returns: the straggler was killed
    assert_eq!(watch.wait(), Ok(ExitReason::Killed));
    assert_eq!(log.hooks_finished.load(Ordering::SeqCst), 0);
    assert_eq!(log.drops(), 1);
}

/// Stops many idle workers on every shard, each one way, from outside
/// threads and from processes' shards; the counters add up by reason.
#[test]
fn exit_counters_count_each_way_of_stopping() {
    const PER_SHARD: usize = 12;
    let rt = runtime();
    let before = rt.stats().unwrap();
    let logs: Vec<Log> = (0..SHARDS * PER_SHARD).map(|_| Log::default()).collect();
    let workers: Vec<Addr<Worker>> = logs
        .iter()
        .enumerate()
        .map(|(i, log)| {
            let l = log.clone();
            rt.spawn_on(ShardId((i % SHARDS) as u16), move || worker(&l))
                .unwrap()
        })
        .collect();
    let how = |i: usize| match (i / SHARDS) % 3 {
        0 => Stop::Terminate,
        1 => Stop::Shutdown,
        _ => Stop::Kill,
    };
    let watches: Vec<_> = workers.iter().map(|w| rt.watch(w.pid()).unwrap()).collect();
    for (i, w) in workers.iter().enumerate() {
        let pid = w.pid();
        if (i / SHARDS) % 2 == 0 {
            stop_outside(&rt, how(i), pid).unwrap();
        } else {
            // From the shard "after" the worker's.
            let from = ShardId(((i + 1) % SHARDS) as u16);
            let h = how(i);
            rt.block_on(from, move || async move { stop_on_shard(h, pid) })
                .unwrap()
                .unwrap();
        }
    }
    for (i, watch) in watches.into_iter().enumerate() {
        let expected = match how(i) {
            Stop::Kill => ExitReason::Killed,
            _ => ExitReason::Shutdown,
        };
        assert_eq!(watch.wait(), Ok(expected), "worker {i}");
        let hooks = if how(i) == Stop::Kill { 0 } else { 1 };
        assert_eq!(logs[i].hooks().len(), hooks, "worker {i}");
        assert_eq!(logs[i].drops(), 1, "worker {i}");
    }
    let after = rt.stats().unwrap();
    for s in 0..SHARDS {
        let d = diff(&after[s].exits, &before[s].exits);
        // Per shard: 12 workers, 4 of each way; terminate and shutdown
        // both exit with `Shutdown`.
        assert_eq!(
            d,
            ExitCounts {
                shutdown: 8,
                killed: 4,
                ..ExitCounts::default()
            },
            "shard {s}"
        );
        assert_eq!(after[s].alive, 0, "shard {s}");
        assert_eq!(after[s].spawned - after[s].exited, after[s].alive);
    }
}
