//! Monitors: one `Down` per monitor, with its ref, the pid and the reason;
//! stackable; `NoProcess` at once for nobody; `demonitor` means no `Down`
//! ever (even one already queued); on one shard and across shards.
//!
//! "No (further) Down" is checked with an ask sent from the target's shard
//! after its exit is known: a `Down` travels that same ring (or is pushed
//! at once on the same shard), into the same lane as messages, so the
//! answer covers every `Down` the exit sent.

use corelet::{
    Addr, Context, Down, ExitReason, HandlerResult, MonitorRef, Pid, Process, ReplyTo, Runtime,
    ShardId,
};

const SHARDS: usize = 8;

fn runtime() -> Runtime {
    Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// The monitored process.

struct Target;

enum TargetMsg {
    Ping(ReplyTo<()>),
    Stop,
    Fail,
    Panic,
}

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fail")
    }
}

impl std::error::Error for Failure {}

impl Process for Target {
    type Msg = TargetMsg;

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: TargetMsg) -> HandlerResult {
        match msg {
            TargetMsg::Ping(reply) => reply.send(()),
            TargetMsg::Stop => ctx.stop(),
            TargetMsg::Fail => return Err(Box::new(Failure)),
            TargetMsg::Panic => panic!("boom"),
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
enum Cause {
    Stop,
    Terminate,
    Fail,
    Panic,
    Kill,
}

const CAUSES: [Cause; 5] = [
    Cause::Stop,
    Cause::Terminate,
    Cause::Fail,
    Cause::Panic,
    Cause::Kill,
];

impl Cause {
    fn reason(self) -> ExitReason {
        match self {
            Cause::Stop => ExitReason::Normal,
            Cause::Terminate => ExitReason::Shutdown,
            Cause::Fail => ExitReason::Error("fail".into()),
            Cause::Panic => ExitReason::Panicked("boom".into()),
            Cause::Kill => ExitReason::Killed,
        }
    }

    /// Applies the cause from an outside thread and waits for the exit.
    fn apply(self, rt: &Runtime, t: &Addr<Target>) {
        let exited = rt.watch(t.pid()).unwrap();
        match self {
            Cause::Stop => rt.tell(t, TargetMsg::Stop).unwrap(),
            Cause::Terminate => rt.terminate(t.pid()).unwrap(),
            Cause::Fail => rt.tell(t, TargetMsg::Fail).unwrap(),
            Cause::Panic => rt.tell(t, TargetMsg::Panic).unwrap(),
            Cause::Kill => rt.kill(t.pid()).unwrap(),
        }
        assert_eq!(exited.wait(), Ok(self.reason()));
    }
}

// ---------------------------------------------------------------------------
// The watcher.

#[derive(Default)]
struct Watcher {
    downs: Vec<Down>,
    /// A `DownsWhen` waiting for enough `Down`s.
    waiting: Option<(usize, ReplyTo<Vec<Down>>)>,
    /// Monitored from `init`.
    monitor_in_init: Option<Pid>,
}

enum WatcherMsg {
    /// Monitors any pid (no sync: it may name nobody).
    Monitor(Pid, ReplyTo<MonitorRef>),
    /// Monitors a live target, then pings it: once answered, the target's
    /// side of the monitor is in place (whoever stops the target later).
    MonitorLive(Addr<Target>, ReplyTo<MonitorRef>),
    Demonitor(MonitorRef, ReplyTo<bool>),
    /// Answered once this many `Down`s were handled.
    DownsWhen(usize, ReplyTo<Vec<Down>>),
    /// Monitors the target, terminates it and waits for its exit, all in
    /// one handler (so the `Down` queues up behind it), then demonitors.
    MonitorStopDemonitor(Pid, ReplyTo<(MonitorRef, bool)>),
    Ping(ReplyTo<Pid>),
}

impl Watcher {
    fn answer_waiting(&mut self) {
        if matches!(&self.waiting, Some((n, _)) if self.downs.len() >= *n) {
            let (_, reply) = self.waiting.take().unwrap();
            reply.send(self.downs.clone());
        }
    }
}

impl Process for Watcher {
    type Msg = WatcherMsg;

    fn init(&mut self, ctx: &mut Context<Self>) -> HandlerResult {
        if let Some(pid) = self.monitor_in_init {
            ctx.monitor(pid);
        }
        Ok(())
    }

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: WatcherMsg) -> HandlerResult {
        match msg {
            WatcherMsg::Monitor(pid, reply) => reply.send(ctx.monitor(pid)),
            WatcherMsg::MonitorLive(target, reply) => {
                let m = ctx.monitor(target.pid());
                target.ask(TargetMsg::Ping).await?;
                reply.send(m);
            }
            WatcherMsg::Demonitor(m, reply) => reply.send(ctx.demonitor(m)),
            WatcherMsg::DownsWhen(n, reply) => {
                self.waiting = Some((n, reply));
                self.answer_waiting();
            }
            WatcherMsg::MonitorStopDemonitor(pid, reply) => {
                let m = ctx.monitor(pid);
                let exited = corelet::wait(pid);
                corelet::terminate(pid)?;
                exited.await?;
                reply.send((m, ctx.demonitor(m)));
            }
            WatcherMsg::Ping(reply) => reply.send(ctx.pid()),
        }
        Ok(())
    }

    async fn handle_down(&mut self, _ctx: &mut Context<Self>, down: Down) -> HandlerResult {
        self.downs.push(down);
        self.answer_waiting();
        Ok(())
    }
}

/// `Down`s `watcher` has handled, asked from `from`'s shard (see the module
/// docs).
fn downs_seen_from(rt: &Runtime, from: Pid, watcher: Addr<Watcher>) -> Vec<Down> {
    rt.block_on(from.shard(), move || async move {
        watcher.ask(|r| WatcherMsg::DownsWhen(0, r)).await.unwrap()
    })
    .unwrap()
}

/// Same shard, and two different shards.
const PLACEMENTS: [(ShardId, ShardId); 2] = [(ShardId(3), ShardId(3)), (ShardId(1), ShardId(6))];

// ---------------------------------------------------------------------------

#[test]
fn one_down_per_monitor_with_its_ref_pid_and_reason() {
    let rt = runtime();
    for (ws, ts) in PLACEMENTS {
        for cause in CAUSES {
            let ctx = format!("{cause:?} watcher on {ws}, target on {ts}");
            let w = rt.spawn_on(ws, Watcher::default).unwrap();
            let t = rt.spawn_on(ts, || Target).unwrap();
            let m = rt.ask(&w, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
            assert_eq!((m.watcher(), m.target()), (w.pid(), t.pid()), "{ctx}");
            cause.apply(&rt, &t);
            let expected = vec![Down {
                monitor: m,
                pid: t.pid(),
                reason: cause.reason(),
            }];
            assert_eq!(
                rt.ask(&w, |r| WatcherMsg::DownsWhen(1, r)),
                Ok(expected.clone()),
                "{ctx}"
            );
            // Exactly once; and a monitor never stops the watcher.
            assert_eq!(downs_seen_from(&rt, t.pid(), w), expected, "{ctx}");
            assert_eq!(rt.ask(&w, WatcherMsg::Ping), Ok(w.pid()), "{ctx}");
        }
    }
}

#[test]
fn monitors_stack_each_gets_its_own_down() {
    let rt = runtime();
    for (ws, ts) in PLACEMENTS {
        let w = rt.spawn_on(ws, Watcher::default).unwrap();
        let other = rt.spawn_on(ShardId(7), Watcher::default).unwrap();
        let t = rt.spawn_on(ts, || Target).unwrap();
        let m1 = rt.ask(&w, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
        let m2 = rt.ask(&w, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
        let m3 = rt.ask(&other, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
        assert_ne!(m1, m2);
        Cause::Kill.apply(&rt, &t);
        let downs = rt.ask(&w, |r| WatcherMsg::DownsWhen(2, r)).unwrap();
        let mut refs: Vec<MonitorRef> = downs.iter().map(|d| d.monitor).collect();
        refs.sort_by_key(|m| m == &m2); // m1 first
        assert_eq!(refs, [m1, m2], "{ws} {ts}");
        for d in &downs {
            assert_eq!((d.pid, &d.reason), (t.pid(), &ExitReason::Killed));
        }
        assert_eq!(downs_seen_from(&rt, t.pid(), w).len(), 2, "no third Down");
        assert_eq!(
            rt.ask(&other, |r| WatcherMsg::DownsWhen(1, r)),
            Ok(vec![Down {
                monitor: m3,
                pid: t.pid(),
                reason: ExitReason::Killed,
            }])
        );
    }
}

/// Pids that name nobody: a dead process's (on `shard` and on another), a
/// slot never used, and a shard that does not exist.
fn nobodies(rt: &Runtime, shard: ShardId) -> Vec<Pid> {
    let mut pids = Vec::new();
    for s in [shard, ShardId(5)] {
        let t = rt.spawn_on(s, || Target).unwrap();
        Cause::Terminate.apply(rt, &t);
        pids.push(t.pid());
    }
    pids.push(Pid::from_parts(ShardId(5), 100_000, 0));
    pids.push(Pid::from_parts(ShardId(SHARDS as u16 + 1), 0, 0));
    pids
}

#[test]
fn monitoring_nobody_gives_a_no_process_down_at_once() {
    let rt = runtime();
    let shard = ShardId(2);
    for nobody in nobodies(&rt, shard) {
        let w = rt.spawn_on(shard, Watcher::default).unwrap();
        let m = rt.ask(&w, |r| WatcherMsg::Monitor(nobody, r)).unwrap();
        assert_eq!(
            rt.ask(&w, |r| WatcherMsg::DownsWhen(1, r)),
            Ok(vec![Down {
                monitor: m,
                pid: nobody,
                reason: ExitReason::NoProcess,
            }]),
            "{nobody}"
        );
        // Delivered, so no longer active.
        assert_eq!(rt.ask(&w, |r| WatcherMsg::Demonitor(m, r)), Ok(false));

        // The same from `init`.
        let w = rt
            .spawn_on(shard, move || Watcher {
                monitor_in_init: Some(nobody),
                ..Watcher::default()
            })
            .unwrap();
        let downs = rt.ask(&w, |r| WatcherMsg::DownsWhen(1, r)).unwrap();
        assert_eq!(downs.len(), 1, "{nobody}");
        assert_eq!(downs[0].monitor.watcher(), w.pid());
        assert_eq!(
            (downs[0].pid, &downs[0].reason),
            (nobody, &ExitReason::NoProcess)
        );
    }
}

#[test]
fn demonitor_before_the_exit_means_no_down_ever() {
    let rt = runtime();
    for (ws, ts) in PLACEMENTS {
        let w = rt.spawn_on(ws, Watcher::default).unwrap();
        let t = rt.spawn_on(ts, || Target).unwrap();
        let cancelled = rt.ask(&w, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
        let kept = rt.ask(&w, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
        assert_eq!(
            rt.ask(&w, |r| WatcherMsg::Demonitor(cancelled, r)),
            Ok(true)
        );
        // A second demonitor finds nothing to cancel.
        assert_eq!(
            rt.ask(&w, |r| WatcherMsg::Demonitor(cancelled, r)),
            Ok(false)
        );
        Cause::Panic.apply(&rt, &t);
        // Everything the exit sent has arrived: only the kept monitor's Down.
        let expected = vec![Down {
            monitor: kept,
            pid: t.pid(),
            reason: ExitReason::Panicked("boom".into()),
        }];
        assert_eq!(downs_seen_from(&rt, t.pid(), w), expected, "{ws} {ts}");
        assert_eq!(rt.ask(&w, |r| WatcherMsg::DownsWhen(1, r)), Ok(expected));
    }
}

#[test]
fn a_down_already_queued_is_dropped_by_demonitor() {
    let rt = runtime();
    for (ws, ts) in PLACEMENTS {
        let w = rt.spawn_on(ws, Watcher::default).unwrap();
        let t = rt.spawn_on(ts, || Target).unwrap();
        // The target's exit is known inside the handler: on one shard its
        // Down is queued right behind the handler by then.
        let (m, cancelled) = rt
            .ask(&w, |r| WatcherMsg::MonitorStopDemonitor(t.pid(), r))
            .unwrap();
        assert_eq!(m.target(), t.pid());
        assert!(cancelled, "the Down was not handled yet: still active");
        assert_eq!(downs_seen_from(&rt, t.pid(), w), [], "{ws} {ts}");
        assert_eq!(rt.ask(&w, |r| WatcherMsg::Demonitor(m, r)), Ok(false));
    }
}

#[test]
fn demonitor_after_the_down_returns_false() {
    let rt = runtime();
    for (ws, ts) in PLACEMENTS {
        let w = rt.spawn_on(ws, Watcher::default).unwrap();
        let stranger = rt.spawn_on(ShardId(0), Watcher::default).unwrap();
        let t = rt.spawn_on(ts, || Target).unwrap();
        let m = rt.ask(&w, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
        // Another process cannot cancel our monitor.
        assert_eq!(
            rt.ask(&stranger, |r| WatcherMsg::Demonitor(m, r)),
            Ok(false)
        );
        Cause::Stop.apply(&rt, &t);
        assert_eq!(
            rt.ask(&w, |r| WatcherMsg::DownsWhen(1, r)).unwrap().len(),
            1
        );
        assert_eq!(rt.ask(&w, |r| WatcherMsg::Demonitor(m, r)), Ok(false));
    }
}

#[test]
fn a_down_for_a_dead_watcher_never_reaches_its_slots_next_occupant() {
    let rt = runtime();
    for (ws, ts) in PLACEMENTS {
        let old = rt.spawn_on(ws, Watcher::default).unwrap();
        let t = rt.spawn_on(ts, || Target).unwrap();
        rt.ask(&old, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
        let exited = rt.watch(old.pid()).unwrap();
        rt.terminate(old.pid()).unwrap();
        assert_eq!(exited.wait(), Ok(ExitReason::Shutdown));
        let new = rt.spawn_on(ws, Watcher::default).unwrap();
        assert_eq!(new.pid().slot(), old.pid().slot(), "the slot is reused");
        assert_ne!(new.pid(), old.pid());
        Cause::Fail.apply(&rt, &t);
        assert_eq!(downs_seen_from(&rt, t.pid(), new), [], "{ws} {ts}");
        assert_eq!(rt.ask(&new, WatcherMsg::Ping), Ok(new.pid()));
    }
}

#[test]
fn monitoring_from_every_shard_at_once() {
    // One target per shard, one watcher per shard monitoring every target.
    let rt = runtime();
    let targets: Vec<Addr<Target>> = (0..SHARDS)
        .map(|s| rt.spawn_on(ShardId(s as u16), || Target).unwrap())
        .collect();
    let watchers: Vec<Addr<Watcher>> = (0..SHARDS)
        .map(|s| rt.spawn_on(ShardId(s as u16), Watcher::default).unwrap())
        .collect();
    let refs: Vec<Vec<MonitorRef>> = watchers
        .iter()
        .map(|w| {
            targets
                .iter()
                .map(|t| rt.ask(w, |r| WatcherMsg::MonitorLive(*t, r)).unwrap())
                .collect()
        })
        .collect();
    for t in &targets {
        Cause::Terminate.apply(&rt, t);
    }
    for (i, w) in watchers.iter().enumerate() {
        let mut downs = rt.ask(w, |r| WatcherMsg::DownsWhen(SHARDS, r)).unwrap();
        downs.sort_by_key(|d| d.pid);
        let expected: Vec<Down> = targets
            .iter()
            .zip(&refs[i])
            .map(|(t, m)| Down {
                monitor: *m,
                pid: t.pid(),
                reason: ExitReason::Shutdown,
            })
            .collect();
        assert_eq!(downs, expected, "watcher {i}");
    }
    // And nothing more arrives.
    for t in &targets {
        for w in &watchers {
            assert_eq!(downs_seen_from(&rt, t.pid(), *w).len(), SHARDS);
        }
    }
}

#[test]
fn a_watchers_exit_cancels_its_monitors_on_the_target() {
    const WATCHERS: usize = 50;
    let rt = runtime();
    for (ws, ts) in PLACEMENTS {
        let t = rt.spawn_on(ts, || Target).unwrap();
        for i in 0..WATCHERS {
            let w = rt.spawn_on(ws, Watcher::default).unwrap();
            rt.ask(&w, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
            rt.ask(&w, |r| WatcherMsg::MonitorLive(t, r)).unwrap();
            let exited = rt.watch(w.pid()).unwrap();
            if i % 2 == 0 {
                rt.terminate(w.pid()).unwrap();
            } else {
                rt.kill(w.pid()).unwrap();
            }
            exited.wait().unwrap();
        }
        // The long-lived target exits, stopped from the watchers' shard,
        // so after every cancellation their exits sent. It holds no
        // monitor of a dead watcher: no `Down` goes out, none is counted
        // as a dead letter on the watchers' shard.
        let before = rt.stats().unwrap()[ws.index()].dead_letters;
        let tp = t.pid();
        let reason = rt
            .block_on(ws, move || async move {
                let exited = corelet::wait(tp);
                corelet::terminate(tp).unwrap();
                exited.await
            })
            .unwrap();
        assert_eq!(reason, Ok(ExitReason::Shutdown));
        // An ask from the target's shard to the watchers' shard: it arrives
        // after any `Down` the target's exit sent there.
        let w = rt.spawn_on(ws, Watcher::default).unwrap();
        assert_eq!(downs_seen_from(&rt, tp, w), []);
        let after = rt.stats().unwrap()[ws.index()].dead_letters;
        assert_eq!(after - before, 0, "{ws} {ts}: Downs sent to dead watchers");
    }
}
