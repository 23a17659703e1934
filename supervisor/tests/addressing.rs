//! Stable addressing across restarts: a named child's every incarnation is
//! registered under its name, so `whereis` finds the current one; the old
//! pid is refused (`NoProcess`) and never reaches the new incarnation;
//! messages queued to an incarnation that dies are counted dead letters,
//! not carried over. A name that is taken makes the start fail cleanly.

mod common;

use common::*;
use corelet_shard::{AskError, Error, Pid, SendError, ShardId};
use corelet_supervisor::{
    self as supervisor, ChildError, ChildStatus, Placement, StartError, Strategy, SupervisorSpec,
};
use std::time::Duration;

async fn named(name: &str) -> Option<Pid> {
    corelet_shard::whereis(name).await.unwrap()
}

#[test]
fn a_named_child_is_found_under_its_name_after_each_restart() {
    let rt = runtime(4);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(3600))
            .child(
                worker("db", &log)
                    .name("db")
                    .placement(Placement::RoundRobin),
            );
        let sup = supervisor::start(spec).await.unwrap();
        let mut old = log.starts("db", 1).await[0];
        assert_eq!(named("db").await, Some(old));
        for n in 2..=5 {
            end(old, How::Panic);
            let new = log.starts("db", n).await[n - 1];
            let found = until(|| async { named("db").await.filter(|p| *p != old) }).await;
            assert_eq!(found, new, "whereis finds the current incarnation");
            // The old pid names nobody: refused on its own shard, an error
            // for an ask from anywhere.
            let asked = addr(old).ask(WMsg::Ping).await;
            assert!(matches!(asked, Err(AskError::NoReply | AskError::Send(_))));
            if old.shard() == ShardId(0) {
                assert!(matches!(
                    addr(old).tell(WMsg::Noop),
                    Err(SendError::NoProcess(_))
                ));
            }
            assert_eq!(corelet_shard::wait(old).await, Err(Error::NoProcess(old)));
            // The new one answers and has handled nothing meant for the old.
            assert_eq!(addr(new).ask(WMsg::Ping).await, Ok(new));
            assert_eq!(addr(new).ask(WMsg::Handled).await, Ok(0));
            old = new;
        }
        sup.stop().await.unwrap();
        assert_eq!(
            named("db").await,
            None,
            "the name goes with the last incarnation"
        );
    });
}

#[test]
fn messages_queued_to_a_dying_incarnation_are_counted_dead_letters() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(
            worker("w", &log)
                .placement(Placement::Shard(ShardId(1)))
                .name("w"),
        );
        let sup = supervisor::start(spec).await.unwrap();
        let old = log.starts("w", 1).await[0];
        // Busy for an hour, so the next messages queue.
        addr(old)
            .tell(WMsg::Sleep(Duration::from_secs(3600)))
            .unwrap();
        for _ in 0..5 {
            addr(old).tell(WMsg::Noop).unwrap();
        }
        // The stats request travels the same ring as the messages, so it
        // is answered once they are queued in the mailbox.
        let before = corelet_shard::shard_stats(ShardId(1))
            .await
            .unwrap()
            .dead_letters;
        let waiting = corelet_shard::wait(old);
        corelet_shard::kill(old).unwrap();
        waiting.await.unwrap();
        let new = log.starts("w", 2).await[1];
        let after = corelet_shard::shard_stats(ShardId(1))
            .await
            .unwrap()
            .dead_letters;
        assert_eq!(
            after - before,
            5,
            "the five queued messages are dead letters"
        );
        assert_eq!(
            addr(new).ask(WMsg::Handled).await,
            Ok(0),
            "none reached the new one"
        );
        assert_eq!(status(sup, "w").await, Some(ChildStatus::Running(new)));
        sup.stop().await.unwrap();
    });
}

#[test]
fn a_taken_name_fails_the_start_and_leaves_nothing() {
    let rt = runtime(2);
    let before = alive(&rt);
    on0(&rt, || async {
        let log = Log::start();
        let holder = corelet_shard::spawn_on(ShardId(1), {
            let log = log.clone();
            move || Worker {
                id: "holder".into(),
                log,
                knobs: Knobs::default(),
                handled: 0,
            }
        })
        .await
        .unwrap();
        corelet_shard::register("taken", holder.pid())
            .await
            .unwrap();
        let sup = supervisor::start(SupervisorSpec::new(Strategy::OneForOne))
            .await
            .unwrap();
        let spec = worker("w", &log)
            .name("taken")
            .placement(Placement::Shard(ShardId(1)));
        match sup.start_child(spec).await {
            Err(ChildError::Start(StartError::Name { name, error })) => {
                assert_eq!(name, "taken");
                assert_eq!(error, corelet_shard::RegistryError::Taken(holder.pid()));
            }
            other => panic!("expected a name error, got {other:?}"),
        }
        // The child that started was stopped again, and is not listed.
        let w = log.starts("w", 1).await[0];
        assert!(corelet_shard::wait(w).await.is_err());
        assert_eq!(sup.which_children().await.unwrap(), vec![]);
        assert_eq!(named("taken").await, Some(holder.pid()));
        sup.stop().await.unwrap();
        corelet_shard::terminate(holder.pid()).unwrap();
        corelet_shard::wait(holder.pid()).await.unwrap();
        corelet_shard::terminate(log.rec.pid()).unwrap();
        corelet_shard::wait(log.rec.pid()).await.unwrap();
    });
    assert_eq!(alive(&rt), before);
}
