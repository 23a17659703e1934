//! Process-owned timers: `send_after` (once), `send_self_after` (non-`Send`
//! messages), `send_interval` (until cancelled), `cancel_timer`, and the
//! owner's exit cancelling everything it armed.
//!
//! Timers use short real delays, but nothing here depends on how long
//! anything takes. "Never arrives" is checked with a *marker*: a
//! `send_after` with a longer delay, armed later, on the owner's shard. A
//! message the cancelled timer would have sent fires earlier on the same
//! shard and travels the same ring, so it would reach the sink first.

use corelet::{
    Addr, Context, ExitReason, HandlerResult, Pid, Process, ReplyTo, Runtime, ShardId, TimerRef,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

const SHARDS: usize = 8;

fn runtime() -> Runtime {
    Runtime::builder()
        .shards(SHARDS)
        .pin(false)
        .build()
        .unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Owner and sink on one shard, and on two.
const PLACEMENTS: [(ShardId, ShardId); 2] = [(ShardId(2), ShardId(2)), (ShardId(1), ShardId(6))];

// ---------------------------------------------------------------------------
// The sink: records ticks.

#[derive(Default)]
struct Sink {
    ticks: Vec<u32>,
    waiting: Option<(usize, ReplyTo<Vec<u32>>)>,
}

enum SinkMsg {
    Tick(u32),
    /// Answered with the ticks so far (sent by a marker timer).
    Marker(ReplyTo<Vec<u32>>),
    /// Answered once this many ticks came in.
    TicksWhen(usize, ReplyTo<Vec<u32>>),
}

impl Sink {
    fn answer(&mut self) {
        if matches!(&self.waiting, Some((n, _)) if self.ticks.len() >= *n) {
            let (_, reply) = self.waiting.take().unwrap();
            reply.send(self.ticks.clone());
        }
    }
}

impl Process for Sink {
    type Msg = SinkMsg;

    async fn handle(&mut self, _ctx: &mut Context<Self>, msg: SinkMsg) -> HandlerResult {
        match msg {
            SinkMsg::Tick(n) => {
                self.ticks.push(n);
                self.answer();
            }
            SinkMsg::Marker(reply) => reply.send(self.ticks.clone()),
            SinkMsg::TicksWhen(n, reply) => {
                self.waiting = Some((n, reply));
                self.answer();
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The owner: arms timers on request.

#[derive(Default)]
struct Owner {
    timers: HashMap<u32, TimerRef>,
}

enum OwnerMsg {
    /// `send_after(to, Tick(tick), after)`; answers `pending_timers()`.
    After(Addr<Sink>, u32, Duration, ReplyTo<usize>),
    /// `send_interval(to, every, || Tick(tick))`; answers `pending_timers()`.
    Interval(Addr<Sink>, u32, Duration, ReplyTo<usize>),
    /// Arms `send_after(to, Tick(tick), after)` and cancels it in the same
    /// handler; answers (pending after arming, cancel's result, pending
    /// after cancelling).
    ArmAndCancel(Addr<Sink>, u32, Duration, ReplyTo<(usize, bool, usize)>),
    Cancel(u32, ReplyTo<bool>),
    /// Cancels, then asks the sink for its ticks (that ask travels behind
    /// every tick sent before the cancel).
    CancelThenTicks(u32, Addr<Sink>, ReplyTo<(bool, Vec<u32>)>),
    Pending(ReplyTo<usize>),
    /// `send_after(to, Marker(reply), after)`.
    MarkerAfter(Addr<Sink>, Duration, ReplyTo<Vec<u32>>),
    /// Arms a `send_after` and a `send_interval` to `to`, then stops.
    ArmThenStop(Addr<Sink>),
}

impl Process for Owner {
    type Msg = OwnerMsg;

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: OwnerMsg) -> HandlerResult {
        match msg {
            OwnerMsg::After(to, tick, after, reply) => {
                let t = ctx.send_after(to, SinkMsg::Tick(tick), after);
                self.timers.insert(tick, t);
                reply.send(ctx.pending_timers());
            }
            OwnerMsg::Interval(to, tick, every, reply) => {
                let t = ctx.send_interval(to, every, move || SinkMsg::Tick(tick));
                self.timers.insert(tick, t);
                reply.send(ctx.pending_timers());
            }
            OwnerMsg::ArmAndCancel(to, tick, after, reply) => {
                let t = ctx.send_after(to, SinkMsg::Tick(tick), after);
                let armed = ctx.pending_timers();
                let cancelled = ctx.cancel_timer(t);
                reply.send((armed, cancelled, ctx.pending_timers()));
                self.timers.insert(tick, t);
            }
            OwnerMsg::Cancel(tick, reply) => reply.send(ctx.cancel_timer(self.timers[&tick])),
            OwnerMsg::CancelThenTicks(tick, sink, reply) => {
                let cancelled = ctx.cancel_timer(self.timers[&tick]);
                let ticks = sink.ask(|r| SinkMsg::TicksWhen(0, r)).await?;
                reply.send((cancelled, ticks));
            }
            OwnerMsg::Pending(reply) => reply.send(ctx.pending_timers()),
            OwnerMsg::MarkerAfter(to, after, reply) => {
                ctx.send_after(to, SinkMsg::Marker(reply), after);
            }
            OwnerMsg::ArmThenStop(to) => {
                ctx.send_after(to, SinkMsg::Tick(1), ms(1));
                ctx.send_interval(to, ms(1), || SinkMsg::Tick(2));
                assert_eq!(ctx.pending_timers(), 2);
                ctx.stop();
            }
        }
        Ok(())
    }
}

/// The sink's ticks once a marker armed now on `owner` (after `after`)
/// arrives.
fn marker(rt: &Runtime, owner: &Addr<Owner>, sink: Addr<Sink>, after: Duration) -> Vec<u32> {
    rt.ask(owner, |r| OwnerMsg::MarkerAfter(sink, after, r))
        .unwrap()
}

// ---------------------------------------------------------------------------

#[test]
fn send_after_delivers_once() {
    let rt = runtime();
    for (os, ss) in PLACEMENTS {
        let owner = rt.spawn_on(os, Owner::default).unwrap();
        let sink = rt.spawn_on(ss, Sink::default).unwrap();
        assert_eq!(rt.ask(&owner, OwnerMsg::Pending), Ok(0));
        assert_eq!(
            rt.ask(&owner, |r| OwnerMsg::After(sink, 7, ms(2), r)),
            Ok(1)
        );
        assert_eq!(rt.ask(&sink, |r| SinkMsg::TicksWhen(1, r)), Ok(vec![7]));
        // Fired, so finished: nothing pending, nothing to cancel.
        assert_eq!(rt.ask(&owner, OwnerMsg::Pending), Ok(0));
        assert_eq!(rt.ask(&owner, |r| OwnerMsg::Cancel(7, r)), Ok(false));
        // Once: still one tick when a later marker arrives.
        assert_eq!(marker(&rt, &owner, sink, ms(10)), [7], "{os} {ss}");
    }
}

/// A process whose messages are not `Send`.
#[derive(Default)]
struct Local {
    waiting: Option<ReplyTo<String>>,
}

enum LocalMsg {
    /// Arms `send_self_after(Fired(..))`; answered when it arrives.
    Arm(ReplyTo<String>),
    Fired(Rc<RefCell<String>>),
}

impl Process for Local {
    type Msg = LocalMsg;

    async fn handle(&mut self, ctx: &mut Context<Self>, msg: LocalMsg) -> HandlerResult {
        match msg {
            LocalMsg::Arm(reply) => {
                self.waiting = Some(reply);
                let payload = Rc::new(RefCell::new(String::from("hello")));
                ctx.send_self_after(LocalMsg::Fired(payload), ms(2));
            }
            LocalMsg::Fired(payload) => {
                payload.borrow_mut().push_str(" from myself");
                let text = payload.borrow().clone();
                self.waiting.take().unwrap().send(text);
            }
        }
        Ok(())
    }
}

#[test]
fn send_self_after_carries_a_non_send_message() {
    let rt = runtime();
    let got = rt
        .block_on(ShardId(3), || async {
            let p = corelet::spawn(Local::default()).unwrap();
            let first = p.ask_local(LocalMsg::Arm).await.unwrap();
            let second = p.ask_local(LocalMsg::Arm).await.unwrap();
            (first, second)
        })
        .unwrap();
    assert_eq!(got.0, "hello from myself");
    assert_eq!(got.1, "hello from myself");
}

#[test]
fn send_interval_repeats_until_cancelled() {
    let rt = runtime();
    for (os, ss) in PLACEMENTS {
        let owner = rt.spawn_on(os, Owner::default).unwrap();
        let sink = rt.spawn_on(ss, Sink::default).unwrap();
        assert_eq!(
            rt.ask(&owner, |r| OwnerMsg::Interval(sink, 5, ms(2), r)),
            Ok(1)
        );
        let ticks = rt.ask(&sink, |r| SinkMsg::TicksWhen(3, r)).unwrap();
        assert!(ticks.len() >= 3 && ticks.iter().all(|t| *t == 5));
        assert_eq!(rt.ask(&owner, OwnerMsg::Pending), Ok(1), "still running");
        let (cancelled, at_cancel) = rt
            .ask(&owner, |r| OwnerMsg::CancelThenTicks(5, sink, r))
            .unwrap();
        assert!(cancelled, "an interval is pending until cancelled");
        assert!(at_cancel.len() >= 3);
        assert_eq!(rt.ask(&owner, OwnerMsg::Pending), Ok(0));
        // A marker several intervals later: no tick since the cancel.
        assert_eq!(marker(&rt, &owner, sink, ms(12)), at_cancel, "{os} {ss}");
        assert_eq!(rt.ask(&owner, |r| OwnerMsg::Cancel(5, r)), Ok(false));
    }
}

#[test]
fn a_timer_cancelled_before_it_fires_never_sends() {
    let rt = runtime();
    for (os, ss) in PLACEMENTS {
        let owner = rt.spawn_on(os, Owner::default).unwrap();
        let sink = rt.spawn_on(ss, Sink::default).unwrap();
        assert_eq!(
            rt.ask(&owner, |r| OwnerMsg::ArmAndCancel(sink, 9, ms(3), r)),
            Ok((1, true, 0))
        );
        assert_eq!(rt.ask(&owner, |r| OwnerMsg::Cancel(9, r)), Ok(false));
        // And one left running next to a cancelled one still fires.
        rt.ask(&owner, |r| OwnerMsg::After(sink, 10, ms(3), r))
            .unwrap();
        assert_eq!(marker(&rt, &owner, sink, ms(15)), [10], "{os} {ss}");
    }
}

#[test]
fn an_owners_timers_die_with_it() {
    let rt = runtime();
    for (os, ss) in PLACEMENTS {
        let sink = rt.spawn_on(ss, Sink::default).unwrap();
        // Stopping in the handler that armed them: nothing ever fires.
        let owner = rt.spawn_on(os, Owner::default).unwrap();
        let exited = rt.watch(owner.pid()).unwrap();
        rt.tell(&owner, OwnerMsg::ArmThenStop(sink)).unwrap();
        assert_eq!(exited.wait(), Ok(ExitReason::Normal));
        let witness = rt.spawn_on(os, Owner::default).unwrap();
        assert_eq!(marker(&rt, &witness, sink, ms(10)), [], "{os} {ss}");

        // Killed while an interval runs: no tick after the kill. The
        // first marker comes after every tick sent before the kill (same
        // shard, same ring); the second, later, one sees no more.
        let owner = rt.spawn_on(os, Owner::default).unwrap();
        rt.ask(&owner, |r| OwnerMsg::Interval(sink, 3, ms(1), r))
            .unwrap();
        rt.ask(&sink, |r| SinkMsg::TicksWhen(2, r)).unwrap();
        let exited = rt.watch(owner.pid()).unwrap();
        rt.kill(owner.pid()).unwrap();
        assert_eq!(exited.wait(), Ok(ExitReason::Killed));
        let after_kill = marker(&rt, &witness, sink, ms(1));
        assert!(after_kill.len() >= 2);
        assert_eq!(marker(&rt, &witness, sink, ms(10)), after_kill, "{os} {ss}");
    }
}

fn stale_sink(rt: &Runtime, shard: ShardId) -> (Addr<Sink>, Addr<Sink>) {
    let old = rt.spawn_on(shard, Sink::default).unwrap();
    let exited = rt.watch(old.pid()).unwrap();
    rt.terminate(old.pid()).unwrap();
    exited.wait().unwrap();
    let new = rt.spawn_on(shard, Sink::default).unwrap();
    assert_eq!(new.pid().slot(), old.pid().slot(), "the slot is reused");
    (old, new)
}

fn dead_letters(rt: &Runtime, pid: Pid) -> u64 {
    rt.stats().unwrap()[pid.shard().index()].dead_letters
}

#[test]
fn a_timer_to_a_dead_target_is_dropped() {
    let rt = runtime();
    for (os, ss) in PLACEMENTS {
        let (old, new) = stale_sink(&rt, ss);
        let owner = rt.spawn_on(os, Owner::default).unwrap();
        let before = dead_letters(&rt, old.pid());
        rt.ask(&owner, |r| OwnerMsg::After(old, 1, ms(2), r))
            .unwrap();
        // The marker goes to the slot's new occupant, which never sees the
        // tick meant for the old one.
        assert_eq!(marker(&rt, &owner, new, ms(10)), [], "{os} {ss}");
        assert_eq!(dead_letters(&rt, old.pid()) - before, 1, "{os} {ss}");
        assert_eq!(rt.ask(&owner, OwnerMsg::Pending), Ok(0));
    }
}

#[test]
fn an_interval_to_a_dead_local_target_stops_itself() {
    let rt = runtime();
    let shard = ShardId(4);
    let (old, new) = stale_sink(&rt, shard);
    let owner = rt.spawn_on(shard, Owner::default).unwrap();
    let before = dead_letters(&rt, old.pid());
    assert_eq!(
        rt.ask(&owner, |r| OwnerMsg::Interval(old, 1, ms(1), r)),
        Ok(1)
    );
    // By the time a later marker arrived, the interval fired once, found
    // nobody and finished.
    assert_eq!(marker(&rt, &owner, new, ms(10)), []);
    assert_eq!(rt.ask(&owner, OwnerMsg::Pending), Ok(0));
    assert_eq!(dead_letters(&rt, old.pid()) - before, 1);
}
