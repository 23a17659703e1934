//! Stopping children: each shutdown policy; a child overrunning its
//! timeout is killed; a child that unlinked itself does not hang
//! shutdown; unexpected exit reasons are reported; nested supervisors stop
//! their subtrees first, in exact reverse start order; shutdown never
//! restarts anything.

mod common;

use common::*;
use corelet_shard::{ExitReason, ShardId};
use corelet_supervisor::{
    self as supervisor, ChildSpec, ChildStatus, Placement, Shutdown, Strategy, SupervisorSpec,
};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn on(shard: u16) -> Placement {
    Placement::Shard(ShardId(shard))
}

#[test]
fn a_child_overrunning_its_timeout_is_killed() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        // The terminate hook would take an hour.
        knobs.slow_stop_ms.store(3_600_000, Ordering::SeqCst);
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(
            worker_with("slow", &log, &knobs)
                .placement(on(1))
                .shutdown(Shutdown::Timeout(Duration::from_millis(20))),
        );
        let sup = supervisor::start(spec).await.unwrap();
        let pid = log.starts("slow", 1).await[0];
        let waiting = corelet_shard::wait(pid);
        sup.terminate_child("slow").await.unwrap();
        assert_eq!(waiting.await, Ok(ExitReason::Killed));
        assert!(log.stop_order().is_empty(), "the hook was cut short");
        let stats = sup.stats().await.unwrap();
        assert_eq!(
            stats.shutdown_errors, 1,
            "killed after a timeout is reported"
        );
        assert_eq!(status(sup, "slow").await, Some(ChildStatus::Undefined));
        sup.stop().await.unwrap();
    });
}

#[test]
fn each_policy_ends_the_child_its_way() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        knobs.slow_stop_ms.store(30, Ordering::SeqCst);
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(
                worker_with("brutal", &log, &knobs)
                    .placement(on(1))
                    .shutdown(Shutdown::BrutalKill),
            )
            .child(
                worker_with("patient", &log, &knobs)
                    .placement(on(1))
                    .shutdown(Shutdown::Infinity),
            )
            .child(
                worker_with("timely", &log, &knobs)
                    .placement(on(0))
                    .shutdown(Shutdown::Timeout(Duration::from_secs(60))),
            );
        let sup = supervisor::start(spec).await.unwrap();
        let brutal = log.starts("brutal", 1).await[0];
        let w = corelet_shard::wait(brutal);
        sup.terminate_child("brutal").await.unwrap();
        assert_eq!(w.await, Ok(ExitReason::Killed));
        // A slow terminate hook is waited for under Infinity and within a
        // timeout that is long enough.
        sup.terminate_child("patient").await.unwrap();
        sup.terminate_child("timely").await.unwrap();
        assert_eq!(log.stop_order(), ["patient", "timely"]);
        assert_eq!(sup.stats().await.unwrap().shutdown_errors, 0);
        // terminate_child is idempotent and never restarts.
        sup.terminate_child("timely").await.unwrap();
        assert_eq!(log.start_order().len(), 3);
        let counts = sup.count_children().await.unwrap();
        assert_eq!((counts.specs, counts.active), (3, 0));
        sup.stop().await.unwrap();
    });
}

#[test]
fn a_child_that_unlinked_itself_does_not_hang_shutdown() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(worker("loner", &log).placement(on(1)))
            .child(worker("plain", &log).placement(on(1)));
        let sup = supervisor::start(spec).await.unwrap();
        let loner = log.starts("loner", 1).await[0];
        addr(loner)
            .ask(|r| WMsg::Unlink(sup.pid(), r))
            .await
            .unwrap();
        assert_eq!(sup.stop().await, Ok(ExitReason::Shutdown));
        assert_eq!(log.stop_order(), ["plain", "loner"]);
    });
}

#[test]
fn unexpected_exit_reasons_during_shutdown_are_reported() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        knobs.panic_in_stop.store(true, Ordering::SeqCst);
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(worker_with("grumpy", &log, &knobs).placement(on(1)))
            .child(worker("fine", &log));
        let sup = supervisor::start(spec).await.unwrap();
        let grumpy = log.starts("grumpy", 1).await[0];
        let w = corelet_shard::wait(grumpy);
        sup.terminate_child("grumpy").await.unwrap();
        assert_eq!(
            w.await,
            Ok(ExitReason::Panicked("terminate hook panicked".into()))
        );
        sup.terminate_child("fine").await.unwrap();
        let stats = sup.stats().await.unwrap();
        assert_eq!(stats.shutdown_errors, 1);
        assert_eq!(stats.restarts, 0, "stopping never restarts");
        sup.stop().await.unwrap();
    });
}

#[test]
fn nested_supervisors_stop_their_subtrees_first() {
    let rt = runtime(4);
    on0(&rt, || async {
        let log = Log::start();
        let inner = SupervisorSpec::new(Strategy::OneForAll)
            .child(worker("x", &log).placement(on(2)))
            .child(worker("y", &log).placement(on(3)));
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(worker("w1", &log).placement(on(1)))
            .child(ChildSpec::supervisor("inner", inner).placement(on(1)))
            .child(worker("w2", &log).placement(on(2)));
        let sup = supervisor::start(spec).await.unwrap();
        assert_eq!(log.start_order(), ["w1", "x", "y", "w2"]);
        assert_eq!(sup.stop().await, Ok(ExitReason::Shutdown));
        assert_eq!(log.stop_order(), ["w2", "y", "x", "w1"]);
        assert_eq!(
            log.start_order().len(),
            4,
            "nothing restarted during shutdown"
        );
    });
}

#[test]
fn a_killed_supervisor_takes_its_children_down_through_links() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(worker("a", &log).placement(on(1)))
            .child(worker("b", &log));
        let sup = supervisor::start(spec).await.unwrap();
        let a = log.starts("a", 1).await[0];
        let b = log.starts("b", 1).await[0];
        let (wa, wb) = (corelet_shard::wait(a), corelet_shard::wait(b));
        corelet_shard::kill(sup.pid()).unwrap();
        let linked = |r: Result<ExitReason, _>| matches!(r, Ok(ExitReason::Linked { pid, reason }) if pid == sup.pid() && *reason == ExitReason::Killed);
        assert!(linked(wa.await));
        assert!(linked(wb.await));
    });
}

#[test]
fn runtime_shutdown_stops_a_live_tree_cleanly() {
    // A supervisor still waiting for a child when the grace period ends is
    // killed: the exit reasons below tell.
    let mut rt = corelet_shard::Runtime::builder()
        .shards(4)
        .pin(false)
        .shutdown_grace(Duration::from_secs(20))
        .build()
        .unwrap();
    let (log, top, inner) = on0(&rt, || async {
        let log = Log::start();
        let inner = SupervisorSpec::new(Strategy::OneForAll)
            .children((0..4).map(|s| worker(&format!("i{s}"), &log).placement(on(s))));
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .children((0..4).map(|s| worker(&format!("o{s}"), &log).placement(on(s))))
            .child(ChildSpec::supervisor("inner", inner).placement(on(3)));
        let top = supervisor::start(spec).await.unwrap();
        let inner = status(top, "inner").await.unwrap().pid().unwrap();
        (log, top.pid(), inner)
    });
    let watches = [rt.watch(top).unwrap(), rt.watch(inner).unwrap()];
    assert_eq!(rt.shutdown(), Ok(()));
    for w in watches {
        assert_eq!(
            w.wait(),
            Ok(ExitReason::Shutdown),
            "not killed after the grace"
        );
    }
    // Every child ran its terminate hook, and nothing was restarted.
    let mut stopped = log.stop_order();
    stopped.sort();
    assert_eq!(stopped, ["i0", "i1", "i2", "i3", "o0", "o1", "o2", "o3"]);
    assert_eq!(log.start_order().len(), 8);
}
