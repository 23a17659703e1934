//! The strategies, with start and stop order checked exactly (OTP's
//! `supervisor_SUITE` style): one-for-all leaves no old pid alive and
//! restarts everyone in start order; rest-for-one keeps the earlier
//! siblings; a temporary bystander is not restarted and does not count;
//! a group restart counts once against the intensity.
//!
//! Order is read from one mutex-protected log: each event is logged by
//! the process it describes, before anything it causes can happen, so the
//! log's order is the causal order across shards.

mod common;

use common::*;
use corelet_shard::{ExitReason, Pid, ShardId};
use corelet_supervisor::{
    self as supervisor, ChildStatus, Placement, Restart, Strategy, SupervisorSpec,
};
use std::time::Duration;

fn spread(id: &str, log: &Log, shard: u16) -> corelet_supervisor::ChildSpec {
    worker(id, log).placement(Placement::Shard(ShardId(shard)))
}

fn stop(id: &str, pid: Pid, reason: ExitReason) -> Ev {
    Ev::Stop(id.to_owned(), pid, reason)
}

#[test]
fn children_start_in_order_and_stop_in_reverse() {
    let rt = runtime(4);
    on0(&rt, || async {
        let log = Log::start();
        let ids = ["a", "b", "c", "d", "e"];
        let spec = SupervisorSpec::new(Strategy::OneForOne).children(
            ids.iter()
                .enumerate()
                .map(|(i, id)| spread(id, &log, (i % 4) as u16)),
        );
        let sup = supervisor::start(spec).await.unwrap();
        assert_eq!(log.start_order(), ids);
        let listed: Vec<String> = sup
            .which_children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(listed, ids);
        // start_child appends.
        sup.start_child(spread("f", &log, 3)).await.unwrap();
        assert_eq!(sup.stop().await, Ok(ExitReason::Shutdown));
        assert_eq!(log.stop_order(), ["f", "e", "d", "c", "b", "a"]);
    });
}

#[test]
fn one_for_all_restarts_everyone_and_leaves_no_old_pid() {
    let rt = runtime(4);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .intensity(5, Duration::from_secs(3600))
            .child(spread("a", &log, 1))
            .child(spread("b", &log, 2))
            .child(spread("c", &log, 3));
        let sup = supervisor::start(spec).await.unwrap();
        let old: Vec<Pid> = ["a", "b", "c"]
            .iter()
            .map(|id| starts_of(&log.snapshot(), id)[0])
            .collect();
        end(old[1], How::Error);
        let new_c = log.starts("c", 2).await[1];
        let events = log.snapshot();
        let tail: Vec<Ev> = events[3..].to_vec();
        let new_a = starts_of(&events, "a")[1];
        let new_b = starts_of(&events, "b")[1];
        assert_eq!(
            tail,
            vec![
                stop("b", old[1], ExitReason::Error("told to fail".into())),
                stop("c", old[2], ExitReason::Shutdown),
                stop("a", old[0], ExitReason::Shutdown),
                Ev::Start("a".into(), new_a),
                Ev::Start("b".into(), new_b),
                Ev::Start("c".into(), new_c),
            ]
        );
        // Every old incarnation ran its terminate hook before any new one
        // started (the order above), and none is alive now.
        for pid in old {
            assert!(corelet_shard::wait(pid).await.is_err(), "{pid} is gone");
        }
        let stats = sup.stats().await.unwrap();
        assert_eq!((stats.restarts, stats.exits, stats.window), (1, 1, 1));
        assert_eq!(stats.shutdown_errors, 0);
        sup.stop().await.unwrap();
    });
}

#[test]
fn rest_for_one_keeps_earlier_siblings() {
    let rt = runtime(4);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::RestForOne)
            .intensity(5, Duration::from_secs(3600))
            .children(
                ["a", "b", "c", "d"]
                    .iter()
                    .enumerate()
                    .map(|(i, id)| spread(id, &log, i as u16)),
            );
        let sup = supervisor::start(spec).await.unwrap();
        let first = log.snapshot();
        let old: Vec<Pid> = ["a", "b", "c", "d"]
            .iter()
            .map(|id| starts_of(&first, id)[0])
            .collect();
        end(old[1], How::Panic);
        log.starts("d", 2).await;
        let events = log.snapshot();
        let new = |id| starts_of(&events, id)[1];
        assert_eq!(
            events[4..].to_vec(),
            vec![
                stop("b", old[1], ExitReason::Panicked("told to panic".into())),
                stop("d", old[3], ExitReason::Shutdown),
                stop("c", old[2], ExitReason::Shutdown),
                Ev::Start("b".into(), new("b")),
                Ev::Start("c".into(), new("c")),
                Ev::Start("d".into(), new("d")),
            ]
        );
        assert_eq!(starts_of(&events, "a"), vec![old[0]], "a was left alone");
        assert_eq!(status(sup, "a").await, Some(ChildStatus::Running(old[0])));
        // A crash of the last child restarts only it.
        let d = new("d");
        end(d, How::Error);
        log.starts("d", 3).await;
        let events = log.snapshot();
        assert_eq!(starts_of(&events, "c").len(), 2);
        assert_eq!(starts_of(&events, "b").len(), 2);
        sup.stop().await.unwrap();
    });
}

#[test]
fn a_temporary_bystander_is_not_restarted_and_does_not_count() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        // Intensity 1: the group restart below must count exactly once.
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .intensity(1, Duration::from_secs(3600))
            .child(spread("a", &log, 1))
            .child(spread("t", &log, 0).restart(Restart::Temporary))
            .child(spread("c", &log, 1));
        let sup = supervisor::start(spec).await.unwrap();
        let t = starts_of(&log.snapshot(), "t")[0];
        let a = starts_of(&log.snapshot(), "a")[0];
        end(a, How::Error);
        log.starts("c", 2).await;
        let ids: Vec<String> = sup
            .which_children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["a", "c"], "the temporary bystander's spec is gone");
        assert_eq!(
            starts_of(&log.snapshot(), "t"),
            vec![t],
            "and it was not restarted"
        );
        assert!(log.snapshot().contains(&stop("t", t, ExitReason::Shutdown)));
        let stats = sup.stats().await.unwrap();
        assert_eq!((stats.restarts, stats.exits, stats.window), (1, 1, 1));
        let counts = sup.count_children().await.unwrap();
        assert_eq!((counts.specs, counts.active, counts.workers), (2, 2, 2));
        sup.stop().await.unwrap();
    });
}

#[test]
fn a_group_restart_counts_once_against_the_intensity() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .intensity(1, Duration::from_secs(3600))
            .children(["a", "b", "c"].iter().map(|id| spread(id, &log, 1)));
        let sup = supervisor::start(spec).await.unwrap();
        let waiting = corelet_shard::wait(sup.pid());
        let b = starts_of(&log.snapshot(), "b")[0];
        end(b, How::Error);
        let c2 = log.starts("c", 2).await[1];
        // Three children restarted, one restart counted: still alive.
        assert_eq!(sup.stats().await.unwrap().window, 1);
        // The second restart within the period exceeds intensity 1.
        end(c2, How::Error);
        assert_eq!(waiting.await, Ok(ExitReason::Shutdown));
        // It stopped its children before exiting, last started first.
        let stops = log.stop_order();
        assert_eq!(&stops[stops.len() - 3..], ["c", "b", "a"]);
    });
}

/// Logs its start from `init` and the drop of its state (as a `Stop`
/// event of `<id>-dropped`).
struct Tracked {
    id: String,
    log: Log,
    pid: Option<Pid>,
}

impl corelet_shard::Process for Tracked {
    type Msg = WMsg;
    fn init(&mut self, ctx: &mut corelet_shard::Context<Self>) -> corelet_shard::HandlerResult {
        self.pid = Some(ctx.pid());
        self.log.push(Ev::Start(self.id.clone(), ctx.pid()));
        Ok(())
    }
    async fn handle(
        &mut self,
        _ctx: &mut corelet_shard::Context<Self>,
        _msg: WMsg,
    ) -> corelet_shard::HandlerResult {
        Err("crash".into())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let id = format!("{}-dropped", self.id);
            self.log.push(Ev::Stop(id, pid, ExitReason::Normal));
        }
    }
}

#[test]
fn a_new_incarnation_starts_only_after_the_old_state_was_dropped() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let tracked = |id: &'static str, shard: u16| {
            let log = log.clone();
            corelet_supervisor::ChildSpec::worker(id, move || Tracked {
                id: id.to_owned(),
                log: log.clone(),
                pid: None,
            })
            .placement(Placement::Shard(ShardId(shard)))
        };
        let spec = SupervisorSpec::new(Strategy::OneForAll)
            .intensity(5, Duration::from_secs(3600))
            .child(tracked("x", 1))
            .child(tracked("y", 0));
        let sup = supervisor::start(spec).await.unwrap();
        let x = log.starts("x", 1).await[0];
        let y = log.starts("y", 1).await[0];
        addr(x).tell(WMsg::Noop).unwrap(); // any message crashes it
        log.starts("y", 2).await;
        let events = log.snapshot();
        let at = |ev: Ev| events.iter().position(|e| *e == ev).unwrap();
        let new_x = starts_of(&events, "x")[1];
        let new_y = starts_of(&events, "y")[1];
        let x_dropped = at(Ev::Stop("x-dropped".into(), x, ExitReason::Normal));
        let y_dropped = at(Ev::Stop("y-dropped".into(), y, ExitReason::Normal));
        let first_new = at(Ev::Start("x".into(), new_x)).min(at(Ev::Start("y".into(), new_y)));
        assert!(x_dropped < first_new && y_dropped < first_new, "{events:?}");
        sup.stop().await.unwrap();
    });
}
