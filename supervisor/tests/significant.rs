//! Significant children and auto-shutdown (OTP 24): invalid combinations
//! are refused when the supervisor starts; `AnySignificant` shuts down
//! when any significant child exits by itself for good, `AllSignificant`
//! when the last one does; a significant child that is restarted, stopped
//! by `terminate_child`, or stopped as a bystander of a group restart
//! never triggers it.

mod common;

use common::*;
use corelet_shard::{ExitReason, ShardId};
use corelet_supervisor::{
    self as supervisor, AutoShutdown, ChildSpec, ChildStatus, DynamicSpec, Placement, Restart,
    SpecError, StartError, Strategy, SupervisorSpec,
};
use std::time::Duration;

fn sig(id: &str, log: &Log, restart: Restart) -> ChildSpec {
    worker(id, log)
        .restart(restart)
        .significant(true)
        .placement(Placement::Shard(ShardId(1)))
}

#[test]
fn invalid_combinations_are_refused_at_start() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let permanent = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(worker("p", &log).significant(true));
        assert_eq!(
            supervisor::start(permanent).await.unwrap_err(),
            StartError::Invalid(SpecError::SignificantPermanent("p".into()))
        );
        let never =
            SupervisorSpec::new(Strategy::OneForOne).child(sig("t", &log, Restart::Temporary));
        assert_eq!(
            supervisor::start(never).await.unwrap_err(),
            StartError::Invalid(SpecError::SignificantWithoutAutoShutdown("t".into()))
        );
        let log2 = log.clone();
        let template = ChildSpec::template("d", move |_: u8| Worker {
            id: "d".into(),
            log: log2.clone(),
            knobs: Knobs::default(),
            handled: 0,
        })
        .restart(Restart::Temporary)
        .significant(true);
        assert_eq!(
            supervisor::start_dynamic(DynamicSpec::new(template))
                .await
                .unwrap_err(),
            StartError::Invalid(SpecError::AutoShutdownOnDynamic)
        );
        assert!(log.start_order().is_empty(), "nothing was started");
    });
}

#[test]
fn any_significant_shuts_down_when_one_exits_for_good() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(5, Duration::from_secs(3600))
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(worker("plain", &log))
            .child(sig("s", &log, Restart::Transient));
        let sup = supervisor::start(spec).await.unwrap();
        let waiting = corelet_shard::wait(sup.pid());
        // An abnormal exit of a transient significant child: restarted, no
        // auto-shutdown.
        let s1 = log.starts("s", 1).await[0];
        end(s1, How::Error);
        let s2 = log.starts("s", 2).await[1];
        // A normal exit: not restarted, so the supervisor shuts down,
        // stopping the other children.
        end(s2, How::Normal);
        assert_eq!(waiting.await, Ok(ExitReason::Shutdown));
        assert!(log
            .snapshot()
            .iter()
            .any(|e| matches!(e, Ev::Stop(id, _, ExitReason::Shutdown) if id == "plain")));
    });
}

#[test]
fn all_significant_waits_for_the_last_one() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .auto_shutdown(AutoShutdown::AllSignificant)
            .child(sig("s1", &log, Restart::Temporary))
            .child(sig("s2", &log, Restart::Transient))
            .child(worker("plain", &log));
        let sup = supervisor::start(spec).await.unwrap();
        let waiting = corelet_shard::wait(sup.pid());
        let s1 = log.starts("s1", 1).await[0];
        end(s1, How::Panic); // temporary: exits for good whatever the reason
        assert_eq!(after_exit(sup, "s1", s1).await, None);
        assert_eq!(
            status(sup, "plain").await.map(|s| s.pid().is_some()),
            Some(true)
        );
        let s2 = log.starts("s2", 1).await[0];
        end(s2, How::Shutdown);
        assert_eq!(waiting.await, Ok(ExitReason::Shutdown));
    });
}

#[test]
fn terminate_child_and_bystander_stops_never_trigger_it() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .intensity(5, Duration::from_secs(3600))
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(worker("a", &log))
            .child(sig("bystander", &log, Restart::Temporary))
            .child(sig("stopped", &log, Restart::Transient));
        let sup = supervisor::start(spec).await.unwrap();
        sup.terminate_child("stopped").await.unwrap();
        assert_eq!(status(sup, "stopped").await, Some(ChildStatus::Undefined));
        // A group restart stops the temporary significant bystander.
        let a = log.starts("a", 1).await[0];
        end(a, How::Error);
        let a2 = log.starts("a", 2).await[1];
        // Still alive: answers, and lists what it should.
        let ids: Vec<(String, bool)> = sup
            .which_children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.id, c.status.pid().is_some()))
            .collect();
        // One-for-all restarts every non-temporary child, as OTP does,
        // including the one stopped by terminate_child.
        assert_eq!(ids, [("a".to_owned(), true), ("stopped".to_owned(), true)]);
        assert_eq!(status(sup, "a").await, Some(ChildStatus::Running(a2)));
        sup.stop().await.unwrap();
    });
}
