//! Restart intensity (OTP's sliding window) and failed restarts:
//! exceeding the limit escalates to the parent, which restarts the whole
//! subtree; crashes spaced beyond the period never accumulate (time is
//! moved by hand with a `ManualClock`); a restart that keeps failing is
//! retried on a timer, counted each time, can be interrupted by
//! `terminate_child` or shutdown, and never monopolises its shard.

mod common;

use common::*;
use corelet_shard::{Context, ExitReason, HandlerResult, Process, ReplyTo, ShardId};
use corelet_supervisor::{
    self as supervisor, ChildSpec, ChildStatus, ManualClock, Placement, Strategy, SupervisorRef,
    SupervisorSpec,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn exceeding_the_intensity_escalates_and_the_parent_restarts_the_subtree() {
    let rt = runtime(4);
    on0(&rt, || async {
        let log = Log::start();
        let sub = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1, HOUR)
            .label("sub")
            .child(worker("w", &log).placement(Placement::Shard(ShardId(2))));
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .intensity(3, HOUR)
            .child(worker("sibling", &log).placement(Placement::Shard(ShardId(3))))
            .child(ChildSpec::supervisor("sub", sub).placement(Placement::Shard(ShardId(1))));
        let top = supervisor::start(spec).await.unwrap();
        let sub1 = status(top, "sub").await.unwrap().pid().unwrap();
        assert_eq!(sub1.shard(), ShardId(1));
        let w1 = log.starts("w", 1).await[0];
        end(w1, How::Error); // one restart: within intensity 1
        let w2 = log.starts("w", 2).await[1];
        end(w2, How::Error); // the second exceeds it: `sub` gives up
                             // The parent (one-for-all) restarts the subtree and the sibling.
        log.starts("w", 3).await;
        log.starts("sibling", 2).await;
        let sub2 = until(|| async {
            match status(top, "sub").await {
                Some(ChildStatus::Running(p)) if p != sub1 => Some(p),
                _ => None,
            }
        })
        .await;
        assert!(
            corelet_shard::wait(sub1).await.is_err(),
            "the old subtree is gone"
        );
        let events = log.snapshot();
        // The failed subtree stopped before anything new started.
        let w3_at = events
            .iter()
            .position(|e| *e == Ev::Start("w".into(), starts_of(&events, "w")[2]))
            .unwrap();
        let sib_stop = events
            .iter()
            .position(|e| matches!(e, Ev::Stop(id, _, ExitReason::Shutdown) if id == "sibling"))
            .unwrap();
        assert!(sib_stop < w3_at);
        let stats = top.stats().await.unwrap();
        assert_eq!(stats.child_intensity_trips, 1);
        assert_eq!(stats.restarts, 1);
        assert_eq!(stats.exits, 1, "the subtree's exit");
        let fresh = SupervisorRef::from_pid(sub2).stats().await.unwrap();
        assert_eq!(
            (fresh.restarts, fresh.window),
            (0, 0),
            "a new subtree starts with a new window"
        );
        top.stop().await.unwrap();
    });
}

#[test]
fn crashes_spaced_beyond_the_period_never_accumulate() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let clock = ManualClock::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1, Duration::from_secs(10))
            .clock(clock.clone())
            .child(worker("w", &log).placement(Placement::Shard(ShardId(1))));
        let sup = supervisor::start(spec).await.unwrap();
        let waiting = corelet_shard::wait(sup.pid());
        for n in 1..=20 {
            let pid = log.starts("w", n).await[n - 1];
            clock.advance(Duration::from_secs(11));
            end(pid, How::Error);
        }
        log.starts("w", 21).await;
        let stats = sup.stats().await.unwrap();
        assert_eq!(stats.restarts, 20);
        assert_eq!(
            stats.window, 1,
            "only the last restart is inside the window"
        );
        // Exactly one period apart still counts (inclusive window): exceeded.
        clock.advance(Duration::from_secs(10));
        end(log.starts("w", 21).await[20], How::Error);
        assert_eq!(waiting.await, Ok(ExitReason::Shutdown));
    });
}

#[test]
fn restarts_inside_the_period_accumulate_until_escalation() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let clock = ManualClock::new();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(3, Duration::from_secs(10))
            .clock(clock.clone())
            .child(worker("w", &log).placement(Placement::Shard(ShardId(1))));
        let sup = supervisor::start(spec).await.unwrap();
        let waiting = corelet_shard::wait(sup.pid());
        for n in 1..=3 {
            let pid = log.starts("w", n).await[n - 1];
            clock.advance(Duration::from_secs(3));
            end(pid, How::Panic);
        }
        let pid = log.starts("w", 4).await[3];
        assert_eq!(sup.stats().await.unwrap().window, 3);
        // 9 s after the first restart: the fourth is one too many.
        end(pid, How::Panic);
        assert_eq!(waiting.await, Ok(ExitReason::Shutdown));
        assert_eq!(log.starts("w", 4).await.len(), 4, "no fifth start");
    });
}

#[test]
fn a_failing_restart_is_retried_and_terminate_child_interrupts_it() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1_000_000, HOUR)
            .child(worker_with("w", &log, &knobs).placement(Placement::Shard(ShardId(1))));
        let sup = supervisor::start(spec).await.unwrap();
        let w = log.starts("w", 1).await[0];
        knobs.fail_init.store(true, Ordering::SeqCst);
        end(w, How::Error);
        // Attempts keep failing, each counted, each after a timer.
        let stats = until(|| async {
            let s = sup.stats().await.unwrap();
            (s.failed_starts >= 5).then_some(s)
        })
        .await;
        assert!(stats.restarts >= 5);
        assert!(stats.delayed_restarts >= 4, "retries wait on a timer");
        assert_eq!(status(sup, "w").await, Some(ChildStatus::Restarting));
        // restart_child refuses a restarting child; terminate_child stops
        // the retries for good.
        assert_eq!(
            sup.restart_child("w").await,
            Err(corelet_supervisor::ChildError::Restarting)
        );
        sup.terminate_child("w").await.unwrap();
        let after = sup.stats().await.unwrap();
        assert_eq!(after.pending_timers, 0, "no retry can fire any more");
        assert_eq!(status(sup, "w").await, Some(ChildStatus::Undefined));
        let again = sup.stats().await.unwrap();
        assert_eq!(again.failed_starts, after.failed_starts);
        // Fixed: a manual restart works.
        knobs.fail_init.store(false, Ordering::SeqCst);
        let pid = sup.restart_child("w").await.unwrap().unwrap();
        assert_eq!(log.starts("w", 2).await[1], pid);
        sup.stop().await.unwrap();
    });
}

#[test]
fn shutdown_interleaves_with_a_failing_restart() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(1_000_000, HOUR)
            .child(worker_with("w", &log, &knobs))
            .child(worker("other", &log).placement(Placement::Shard(ShardId(1))));
        let sup = supervisor::start(spec).await.unwrap();
        let w = log.starts("w", 1).await[0];
        knobs.fail_init.store(true, Ordering::SeqCst);
        end(w, How::Error);
        until(|| async { (sup.stats().await.unwrap().failed_starts >= 3).then_some(()) }).await;
        assert_eq!(sup.stop().await, Ok(ExitReason::Shutdown));
        assert_eq!(log.stop_order().last().map(String::as_str), Some("other"));
    });
}

/// Counts pings on the failing child's shard.
struct Bystander(u64);

impl Process for Bystander {
    type Msg = ReplyTo<u64>;
    async fn handle(&mut self, _ctx: &mut Context<Self>, reply: ReplyTo<u64>) -> HandlerResult {
        self.0 += 1;
        reply.send(self.0);
        Ok(())
    }
}

#[test]
fn an_always_failing_child_cannot_monopolise_its_shard() {
    let rt = runtime(2);
    // The supervisor and its failing child live on shard 0; the pings
    // come from shard 1 and need shard 0's pump and the bystander to run.
    let (sup, bystander) = on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        knobs.fail_init.store(true, Ordering::SeqCst);
        let spec = SupervisorSpec::new(Strategy::OneForOne).intensity(u32::MAX, HOUR);
        let sup = supervisor::start(spec).await.unwrap();
        // A first start that fails is refused (not retried); make it
        // start once, then fail forever.
        knobs.fail_init.store(false, Ordering::SeqCst);
        sup.start_child(worker_with("w", &log, &knobs))
            .await
            .unwrap();
        knobs.fail_init.store(true, Ordering::SeqCst);
        end(log.starts("w", 1).await[0], How::Error);
        let bystander = corelet_shard::spawn(Bystander(0)).unwrap();
        (sup, bystander)
    });
    let (before, answered, after) = rt
        .block_on(ShardId(1), move || async move {
            let before = sup.stats().await.unwrap().failed_starts;
            let mut answered = 0;
            for _ in 0..200 {
                answered = bystander.ask(|r| r).timeout(LIMIT).await.unwrap();
            }
            let after = until(|| async {
                let s = sup.stats().await.unwrap().failed_starts;
                (s > before).then_some(s)
            })
            .await;
            (before, answered, after)
        })
        .unwrap();
    assert_eq!(answered, 200);
    assert!(
        after > before,
        "the retries went on meanwhile ({before} -> {after})"
    );
    on0(&rt, move || async move {
        assert_eq!(sup.stop().await, Ok(ExitReason::Shutdown));
    });
}

#[test]
fn a_child_crashing_at_once_cannot_monopolise_its_shard() {
    let rt = runtime(2);
    // Child, supervisor and bystander on shard 0: every incarnation crashes
    // on its first turn, and restarting it is all synchronous on shard 0.
    let (sup, bystander) = on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        knobs.crash_at_once.store(true, Ordering::SeqCst);
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(u32::MAX, HOUR)
            .child(worker_with("w", &log, &knobs));
        let sup = supervisor::start(spec).await.unwrap();
        let bystander = corelet_shard::spawn(Bystander(0)).unwrap();
        (sup, bystander)
    });
    let (answered, restarts) = rt
        .block_on(ShardId(1), move || async move {
            let mut answered = 0;
            for _ in 0..200 {
                answered = bystander.ask(|r| r).timeout(LIMIT).await.unwrap();
            }
            (answered, sup.stats().await.unwrap().restarts)
        })
        .unwrap();
    assert_eq!(answered, 200);
    assert!(restarts > 0);
    on0(&rt, move || async move {
        assert_eq!(sup.stop().await, Ok(ExitReason::Shutdown));
    });
}
