//! The dynamic supervisor (OTP's simple_one_for_one): children from one
//! template started with an argument, restarted with the same argument,
//! forgotten when they exit for good; no restart_child / delete_child;
//! shutdown of all children at once under one timer; intensity applies.

mod common;

use common::*;
use corelet_shard::{Context, ExitReason, HandlerResult, Pid, Process, ShardId};
use corelet_supervisor::{
    self as supervisor, ChildError, ChildSpec, ChildStatus, DynamicRef, DynamicSpec, Placement,
    Restart, Shutdown, StartError, SupervisorRef,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn template(log: &Log, knobs: &Knobs) -> ChildSpec<String> {
    let (log, knobs) = (log.clone(), knobs.clone());
    ChildSpec::template_or_ignore("conn", move |name: String| {
        (!knobs.ignore.load(Ordering::SeqCst)).then(|| Worker {
            id: name,
            log: log.clone(),
            knobs: knobs.clone(),
            handled: 0,
        })
    })
    .placement(Placement::RoundRobin)
}

fn spec(log: &Log, knobs: &Knobs, restart: Restart) -> DynamicSpec<String> {
    DynamicSpec::new(template(log, knobs).restart(restart))
        .intensity(100, Duration::from_secs(3600))
}

#[test]
fn children_start_with_their_argument_and_restart_with_it() {
    let rt = runtime(4);
    on0(&rt, || async {
        let log = Log::start();
        let sup = supervisor::start_dynamic(spec(&log, &Knobs::default(), Restart::Permanent))
            .await
            .unwrap();
        let mut pids = Vec::new();
        for name in ["a", "b", "c", "d", "e"] {
            pids.push(sup.start_child(name.to_owned()).await.unwrap().unwrap());
        }
        let shards: Vec<u16> = pids.iter().map(|p| p.shard().0).collect();
        assert_eq!(shards, [0, 1, 2, 3, 0]);
        assert_eq!(log.start_order(), ["a", "b", "c", "d", "e"]);
        end(pids[2], How::Panic);
        let c2 = log.starts("c", 2).await[1];
        let listed: Vec<ChildStatus> = sup
            .which_children()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.status)
            .collect();
        assert_eq!(
            listed[2],
            ChildStatus::Running(c2),
            "same place in the listing"
        );
        assert_eq!(listed.len(), 5);
        let counts = sup.count_children().await.unwrap();
        assert_eq!((counts.specs, counts.active, counts.workers), (5, 5, 5));
        sup.stop().await.unwrap();
    });
}

#[test]
fn children_that_exit_for_good_are_forgotten() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        let temp = supervisor::start_dynamic(spec(&log, &knobs, Restart::Temporary))
            .await
            .unwrap();
        let trans = supervisor::start_dynamic(spec(&log, &knobs, Restart::Transient))
            .await
            .unwrap();
        let t = temp.start_child("t".into()).await.unwrap().unwrap();
        end(t, How::Panic);
        let n = until(|| async { (temp.count_children().await.unwrap().specs == 0).then_some(()) });
        n.await;
        let x = trans.start_child("x".into()).await.unwrap().unwrap();
        let y = trans.start_child("y".into()).await.unwrap().unwrap();
        end(x, How::Normal); // forgotten
        end(y, How::Error); // restarted
        log.starts("y", 2).await;
        until(|| async { (trans.count_children().await.unwrap().specs == 1).then_some(()) }).await;
        assert_eq!(starts_of(&log.snapshot(), "x"), vec![x]);
        let stats = trans.stats().await.unwrap();
        assert_eq!((stats.table, stats.restarts, stats.exits), (1, 1, 2));
        assert_eq!(temp.stats().await.unwrap().table, 0);
        temp.stop().await.unwrap();
        trans.stop().await.unwrap();
    });
}

#[test]
fn terminate_child_by_pid_and_the_refused_operations() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let knobs = Knobs::default();
        let sup = supervisor::start_dynamic(spec(&log, &knobs, Restart::Permanent))
            .await
            .unwrap();
        let a = sup.start_child("a".into()).await.unwrap().unwrap();
        sup.terminate_child(a).await.unwrap();
        assert_eq!(sup.terminate_child(a).await, Err(ChildError::NotFound));
        assert_eq!(sup.count_children().await.unwrap().specs, 0);
        assert_eq!(log.stop_order(), ["a"]);
        assert_eq!(sup.stats().await.unwrap().restarts, 0);
        // Static operations are refused (OTP's simple_one_for_one error).
        let plain = SupervisorRef::from_pid(sup.pid());
        assert_eq!(
            plain.start_child(worker("s", &log)).await,
            Err(ChildError::Dynamic)
        );
        assert_eq!(plain.restart_child("conn").await, Err(ChildError::Dynamic));
        assert_eq!(plain.delete_child("conn").await, Err(ChildError::Dynamic));
        assert_eq!(
            plain.terminate_child("conn").await,
            Err(ChildError::Dynamic)
        );
        // The argument type is checked.
        let wrong = DynamicRef::<u32>::from_pid(sup.pid());
        assert_eq!(wrong.start_child(7).await, Err(ChildError::WrongArgument));
        // Declined and failed starts store nothing.
        knobs.ignore.store(true, Ordering::SeqCst);
        assert_eq!(sup.start_child("i".into()).await, Ok(None));
        knobs.ignore.store(false, Ordering::SeqCst);
        knobs.fail_init.store(true, Ordering::SeqCst);
        assert_eq!(
            sup.start_child("f".into()).await,
            Err(ChildError::Start(StartError::Init(ExitReason::Error(
                "init refused".into()
            ))))
        );
        assert_eq!(sup.stats().await.unwrap().table, 0);
        sup.stop().await.unwrap();
    });
}

#[test]
fn too_many_restarts_escalate() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = DynamicSpec::new(template(&log, &Knobs::default()))
            .intensity(2, Duration::from_secs(3600));
        let sup = supervisor::start_dynamic(spec).await.unwrap();
        let waiting = corelet_shard::wait(sup.pid());
        let a = sup.start_child("a".into()).await.unwrap().unwrap();
        let b = sup.start_child("b".into()).await.unwrap().unwrap();
        end(a, How::Error);
        end(b, How::Error);
        let a2 = log.starts("a", 2).await[1];
        log.starts("b", 2).await;
        end(a2, How::Error);
        assert_eq!(waiting.await, Ok(ExitReason::Shutdown));
        // Both remaining children were stopped.
        assert!(corelet_shard::wait(a2).await.is_err());
    });
}

/// Its terminate hook finishes only once every sibling's hook has begun:
/// a shutdown that stopped children one at a time would kill the first
/// one at its timeout.
struct Rendezvous {
    begun: Arc<AtomicUsize>,
    of: usize,
    finished: Arc<AtomicUsize>,
}

impl Process for Rendezvous {
    type Msg = ();
    async fn handle(&mut self, _: &mut Context<Self>, _: ()) -> HandlerResult {
        Ok(())
    }
    async fn terminate(&mut self, _: &mut Context<Self>, _: &ExitReason) {
        self.begun.fetch_add(1, Ordering::SeqCst);
        while self.begun.load(Ordering::SeqCst) < self.of {
            glommio::timer::sleep(Duration::from_millis(1)).await;
        }
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn children_shut_down_concurrently_under_one_timer() {
    const N: usize = 8;
    let rt = runtime(4);
    let begun = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let (b, f) = (begun.clone(), finished.clone());
    let reason = on0(&rt, move || async move {
        let template = ChildSpec::template("r", move |_: ()| Rendezvous {
            begun: b.clone(),
            of: N,
            finished: f.clone(),
        })
        .placement(Placement::RoundRobin)
        .shutdown(Shutdown::Timeout(Duration::from_secs(2)));
        let sup = supervisor::start_dynamic_on(ShardId(1), DynamicSpec::new(template))
            .await
            .unwrap();
        let mut pids: Vec<Pid> = Vec::new();
        for _ in 0..N {
            pids.push(sup.start_child(()).await.unwrap().unwrap());
        }
        sup.stop().await
    });
    assert_eq!(reason, Ok(ExitReason::Shutdown));
    assert_eq!(
        finished.load(Ordering::SeqCst),
        N,
        "every hook completed: none was killed"
    );
}

#[test]
fn a_dynamic_supervisor_as_a_child_is_restarted_empty() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let pool = spec(&log, &Knobs::default(), Restart::Permanent);
        let top = supervisor::start(
            corelet_supervisor::SupervisorSpec::new(corelet_supervisor::Strategy::OneForOne).child(
                ChildSpec::dynamic_supervisor("pool", pool).placement(Placement::Shard(ShardId(1))),
            ),
        )
        .await
        .unwrap();
        let info = top.which_children().await.unwrap();
        assert_eq!(info[0].kind, corelet_supervisor::ChildKind::Supervisor);
        let pool1 = info[0].status.pid().unwrap();
        let dynamic = DynamicRef::<String>::from_pid(pool1);
        let a = dynamic.start_child("a".into()).await.unwrap().unwrap();
        let b = dynamic.start_child("b".into()).await.unwrap().unwrap();
        let tree = top.tree().await.unwrap();
        assert_eq!(
            tree.children[0].1.as_ref().unwrap().mode,
            corelet_supervisor::Mode::Dynamic
        );
        assert_eq!(tree.pids().len(), 4);
        // Killed: its children die with it through their links, and the
        // parent starts a fresh, empty one (OTP does not restore dynamic
        // children).
        let (wa, wb) = (corelet_shard::wait(a), corelet_shard::wait(b));
        corelet_shard::kill(pool1).unwrap();
        assert!(matches!(wa.await, Ok(ExitReason::Linked { .. })));
        assert!(matches!(wb.await, Ok(ExitReason::Linked { .. })));
        let pool2 = after_exit(top, "pool", pool1).await.unwrap().pid().unwrap();
        let fresh = DynamicRef::<String>::from_pid(pool2);
        assert_eq!(fresh.count_children().await.unwrap().specs, 0);
        top.stop().await.unwrap();
    });
}
