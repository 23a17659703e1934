//! The child operations and their typed errors (start_child,
//! terminate_child, restart_child, delete_child, which_children,
//! count_children), and OTP's `ignore`: a declined start keeps the spec
//! without a pid, unless the child is temporary.

mod common;

use common::*;
use corelet_shard::{ExitReason, ShardId};
use corelet_supervisor::{
    self as supervisor, AutoShutdown, ChildError, ChildKind, ChildSpec, ChildStatus, Placement,
    Restart, SpecError, StartError, Strategy, SupervisorSpec,
};
use std::sync::atomic::Ordering;

#[test]
fn start_child_errors() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let sup = supervisor::start(SupervisorSpec::new(Strategy::OneForOne))
            .await
            .unwrap();
        let a = sup.start_child(worker("a", &log)).await.unwrap().unwrap();
        assert_eq!(
            sup.start_child(worker("a", &log)).await,
            Err(ChildError::AlreadyStarted(a))
        );
        sup.terminate_child("a").await.unwrap();
        assert_eq!(
            sup.start_child(worker("a", &log)).await,
            Err(ChildError::AlreadyPresent)
        );
        // Invalid: significant needs auto_shutdown.
        let bad = worker("s", &log)
            .restart(Restart::Transient)
            .significant(true);
        assert_eq!(
            sup.start_child(bad).await,
            Err(ChildError::Start(StartError::Invalid(
                SpecError::SignificantWithoutAutoShutdown("s".into())
            )))
        );
        // A failed start is reported and its spec is not kept.
        let knobs = Knobs::default();
        knobs.fail_init.store(true, Ordering::SeqCst);
        assert_eq!(
            sup.start_child(worker_with("f", &log, &knobs)).await,
            Err(ChildError::Start(StartError::Init(ExitReason::Error(
                "init refused".into()
            ))))
        );
        let unknown_shard = worker("far", &log).placement(Placement::Shard(ShardId(7)));
        assert!(matches!(
            sup.start_child(unknown_shard).await,
            Err(ChildError::Start(StartError::Runtime(_)))
        ));
        let ids: Vec<String> = sup
            .which_children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["a"]);
        assert_eq!(sup.stats().await.unwrap().failed_starts, 2);
        sup.stop().await.unwrap();
    });
}

#[test]
fn terminate_restart_delete() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(worker("a", &log).placement(Placement::Shard(ShardId(1))))
            .child(worker("t", &log).restart(Restart::Temporary));
        let sup = supervisor::start(spec).await.unwrap();
        let a = log.starts("a", 1).await[0];
        assert_eq!(sup.terminate_child("nope").await, Err(ChildError::NotFound));
        assert_eq!(sup.restart_child("nope").await, Err(ChildError::NotFound));
        assert_eq!(sup.delete_child("nope").await, Err(ChildError::NotFound));
        assert_eq!(sup.restart_child("a").await, Err(ChildError::Running(a)));
        assert_eq!(sup.delete_child("a").await, Err(ChildError::Running(a)));
        // terminate_child never restarts, even a permanent child, and is
        // idempotent.
        sup.terminate_child("a").await.unwrap();
        sup.terminate_child("a").await.unwrap();
        assert_eq!(status(sup, "a").await, Some(ChildStatus::Undefined));
        assert_eq!(sup.stats().await.unwrap().restarts, 0);
        let a2 = sup.restart_child("a").await.unwrap().unwrap();
        assert_ne!(a2, a);
        assert_eq!(log.starts("a", 2).await, vec![a, a2]);
        sup.terminate_child("a").await.unwrap();
        sup.delete_child("a").await.unwrap();
        assert_eq!(sup.delete_child("a").await, Err(ChildError::NotFound));
        // A temporary child's spec goes with terminate_child.
        sup.terminate_child("t").await.unwrap();
        assert_eq!(sup.which_children().await.unwrap(), vec![]);
        // A dynamic-only operation on a static supervisor.
        let as_dynamic = corelet_supervisor::DynamicRef::<u32>::from_pid(sup.pid());
        assert_eq!(as_dynamic.start_child(1).await, Err(ChildError::NotDynamic));
        sup.stop().await.unwrap();
    });
}

#[test]
fn which_and_count_children() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let sub = SupervisorSpec::new(Strategy::OneForOne).child(worker("x", &log));
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(worker("a", &log))
            .child(ChildSpec::supervisor("sub", sub).placement(Placement::Shard(ShardId(1))))
            .child(worker("b", &log).restart(Restart::Transient));
        let sup = supervisor::start(spec).await.unwrap();
        sup.terminate_child("b").await.unwrap();
        let info = sup.which_children().await.unwrap();
        let summary: Vec<(&str, ChildKind, bool)> = info
            .iter()
            .map(|c| (c.id.as_str(), c.kind, c.status.pid().is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                ("a", ChildKind::Worker, true),
                ("sub", ChildKind::Supervisor, true),
                ("b", ChildKind::Worker, false)
            ]
        );
        assert_eq!(info[1].status.pid().unwrap().shard(), ShardId(1));
        let counts = sup.count_children().await.unwrap();
        assert_eq!(
            (
                counts.specs,
                counts.active,
                counts.supervisors,
                counts.workers
            ),
            (3, 2, 1, 2)
        );
        sup.stop().await.unwrap();
    });
}

#[test]
fn ignore_keeps_or_drops_the_spec_by_restart_type() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        knobs.ignore.store(true, Ordering::SeqCst);
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(worker_with("perm", &log, &knobs))
            .child(worker_with("trans", &log, &knobs).restart(Restart::Transient))
            .child(worker_with("temp", &log, &knobs).restart(Restart::Temporary));
        // Boot: every factory declines; the supervisor starts anyway.
        let sup = supervisor::start(spec).await.unwrap();
        let info = sup.which_children().await.unwrap();
        let kept: Vec<(&str, ChildStatus)> =
            info.iter().map(|c| (c.id.as_str(), c.status)).collect();
        assert_eq!(
            kept,
            [
                ("perm", ChildStatus::Undefined),
                ("trans", ChildStatus::Undefined)
            ]
        );
        // start_child: same rule.
        assert_eq!(
            sup.start_child(worker_with("late", &log, &knobs)).await,
            Ok(None)
        );
        let temp = worker_with("late-temp", &log, &knobs).restart(Restart::Temporary);
        assert_eq!(sup.start_child(temp).await, Ok(None));
        assert_eq!(sup.count_children().await.unwrap().specs, 3);
        // The factory runs again on restart_child.
        knobs.ignore.store(false, Ordering::SeqCst);
        let pid = sup.restart_child("perm").await.unwrap().unwrap();
        assert_eq!(log.starts("perm", 1).await, vec![pid]);
        let stats = sup.stats().await.unwrap();
        assert_eq!((stats.starts, stats.failed_starts), (1, 0));
        sup.stop().await.unwrap();
    });
}

#[test]
fn children_that_exit_for_good_leave_nothing_behind() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(
                worker("temp", &log)
                    .restart(Restart::Temporary)
                    .placement(Placement::Shard(ShardId(1))),
            )
            .child(worker("trans", &log).restart(Restart::Transient));
        let sup = supervisor::start(spec).await.unwrap();
        let temp = log.starts("temp", 1).await[0];
        let trans = log.starts("trans", 1).await[0];
        end(temp, How::Panic);
        assert_eq!(
            after_exit(sup, "temp", temp).await,
            None,
            "temporary: spec gone"
        );
        end(trans, How::Normal);
        assert_eq!(
            after_exit(sup, "trans", trans).await,
            Some(ChildStatus::Undefined)
        );
        let stats = sup.stats().await.unwrap();
        assert_eq!(
            (stats.table, stats.pending_timers, stats.restarts),
            (1, 0, 0)
        );
        sup.stop().await.unwrap();
    });
}

#[test]
fn a_supervisor_that_cannot_boot_stops_what_it_started() {
    let rt = runtime(2);
    let before = alive(&rt);
    on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        knobs.fail_init.store(true, Ordering::SeqCst);
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .child(worker("a", &log).placement(Placement::Shard(ShardId(1))))
            .child(worker("b", &log))
            .child(worker_with("bad", &log, &knobs))
            .child(worker("never", &log));
        let err = supervisor::start(spec).await.unwrap_err();
        assert_eq!(
            err,
            StartError::Child {
                id: "bad".into(),
                error: Box::new(StartError::Init(ExitReason::Error("init refused".into())))
            }
        );
        assert_eq!(log.stop_order(), ["b", "a"]);
        assert_eq!(log.start_order(), ["a", "b"]);
        // Invalid specs are refused before anything starts.
        let dup = SupervisorSpec::new(Strategy::OneForOne)
            .child(worker("d", &log))
            .child(worker("d", &log));
        assert_eq!(
            supervisor::start(dup).await.unwrap_err(),
            StartError::Invalid(SpecError::DuplicateId("d".into()))
        );
        let zero = SupervisorSpec::new(Strategy::OneForOne).intensity(1, std::time::Duration::ZERO);
        assert_eq!(
            supervisor::start(zero).await.unwrap_err(),
            StartError::Invalid(SpecError::ZeroPeriod)
        );
        let nested = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor(
            "sub",
            SupervisorSpec::new(Strategy::OneForOne)
                .auto_shutdown(AutoShutdown::Never)
                .child(
                    worker("p", &log)
                        .significant(true)
                        .restart(Restart::Transient),
                ),
        ));
        assert_eq!(
            supervisor::start(nested).await.unwrap_err(),
            StartError::Invalid(SpecError::Nested {
                id: "sub".into(),
                error: Box::new(SpecError::SignificantWithoutAutoShutdown("p".into()))
            })
        );
        // The recorder is the only process left of this test.
        corelet_shard::terminate(log.rec.pid()).unwrap();
        corelet_shard::wait(log.rec.pid()).await.unwrap();
    });
    assert_eq!(alive(&rt), before);
}
