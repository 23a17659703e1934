//! Cross-shard trees: a supervisor on one shard supervises children on
//! every shard and sees a crash anywhere; placements (given shard,
//! round-robin, least-loaded); a two-level tree printed and walked.

mod common;

use common::*;
use corelet_shard::{Context, HandlerResult, Process, ShardId};
use corelet_supervisor::{
    self as supervisor, ChildSpec, ChildStatus, Mode, Placement, Strategy, SupervisorRef,
    SupervisorSpec,
};
use std::time::Duration;

const SHARDS: usize = 4;

#[test]
fn crashes_on_every_shard_are_seen_and_restarted() {
    let rt = runtime(SHARDS);
    for home in 0..SHARDS as u16 {
        rt.block_on(ShardId(home), move || async move {
            let log = Log::start();
            let spec = SupervisorSpec::new(Strategy::OneForOne)
                .intensity(100, Duration::from_secs(3600))
                .children((0..SHARDS as u16).map(|s| {
                    worker(&format!("w{s}"), &log).placement(Placement::Shard(ShardId(s)))
                }));
            let sup = supervisor::start(spec).await.unwrap();
            for s in 0..SHARDS as u16 {
                let id = format!("w{s}");
                for (n, how) in [How::Panic, How::Error, How::Shutdown]
                    .into_iter()
                    .enumerate()
                {
                    let pid = log.starts(&id, n + 1).await[n];
                    assert_eq!(pid.shard(), ShardId(s));
                    end(pid, how);
                    let new = log.starts(&id, n + 2).await[n + 1];
                    assert_eq!(new.shard(), ShardId(s));
                }
            }
            let stats = sup.stats().await.unwrap();
            assert_eq!(stats.restarts, 3 * SHARDS as u64);
            sup.stop().await.unwrap();
        })
        .unwrap();
    }
}

#[test]
fn round_robin_spreads_children_over_every_shard() {
    let rt = runtime(SHARDS);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne).children(
            (0..8).map(|i| worker(&format!("r{i}"), &log).placement(Placement::RoundRobin)),
        );
        let sup = supervisor::start(spec).await.unwrap();
        let shards: Vec<u16> = sup
            .which_children()
            .await
            .unwrap()
            .iter()
            .map(|c| c.status.pid().unwrap().shard().0)
            .collect();
        assert_eq!(shards, [0, 1, 2, 3, 0, 1, 2, 3]);
        sup.stop().await.unwrap();
    });
}

struct Idle;

impl Process for Idle {
    type Msg = ();
    async fn handle(&mut self, _: &mut Context<Self>, _: ()) -> HandlerResult {
        Ok(())
    }
}

#[test]
fn least_loaded_picks_the_shard_with_fewest_processes() {
    let rt = runtime(SHARDS);
    on0(&rt, || async {
        let log = Log::start(); // one process on shard 0
                                // Load: shard 0 → 1 + 3, shard 1 → 5, shard 2 → 1, shard 3 → 4.
        let mut ballast = Vec::new();
        for (shard, n) in [(0u16, 3), (1, 5), (2, 1), (3, 4)] {
            for _ in 0..n {
                ballast.push(
                    corelet_shard::spawn_on(ShardId(shard), || Idle)
                        .await
                        .unwrap(),
                );
            }
        }
        let sup = supervisor::start_on(ShardId(3), SupervisorSpec::new(Strategy::OneForOne))
            .await
            .unwrap();
        let mut placed = Vec::new();
        for i in 0..3 {
            let spec = worker(&format!("l{i}"), &log).placement(Placement::LeastLoaded);
            placed.push(sup.start_child(spec).await.unwrap().unwrap().shard().0);
        }
        // Shard 2 has 1, then 2; shard 0 has 4 and shard 3 has 5 with the
        // supervisor: 2, 2, then 2 again (3 < 4).
        assert_eq!(placed, [2, 2, 2]);
        let spec = worker("l3", &log).placement(Placement::LeastLoaded);
        assert_eq!(
            sup.start_child(spec).await.unwrap().unwrap().shard(),
            ShardId(0)
        );
        sup.stop().await.unwrap();
        for a in ballast {
            corelet_shard::terminate(a.pid()).unwrap();
        }
    });
}

#[test]
fn a_two_level_tree_across_shards_prints_and_lists_every_pid() {
    let rt = runtime(SHARDS);
    on0(&rt, || async {
        let log = Log::start();
        let leaf = |i: u16| {
            let log = log.clone();
            SupervisorSpec::new(Strategy::OneForAll)
                .label(format!("group{i}"))
                .children((0..2).map(move |j| {
                    worker(&format!("g{i}w{j}"), &log).placement(Placement::RoundRobin)
                }))
        };
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .label("root")
            .children((0..SHARDS as u16).map(|i| {
                ChildSpec::supervisor(format!("group{i}"), leaf(i))
                    .placement(Placement::Shard(ShardId(i)))
            }))
            .child(worker("solo", &log).placement(Placement::Shard(ShardId(3))));
        let sup = supervisor::start(spec).await.unwrap();
        let tree = sup.tree().await.unwrap();
        assert_eq!(tree.mode, Mode::Static(Strategy::OneForOne));
        assert_eq!(tree.children.len(), SHARDS + 1);
        // 1 root + 4 groups + 8 workers + solo.
        let pids = tree.pids();
        assert_eq!(pids.len(), 1 + SHARDS + 2 * SHARDS + 1);
        for (i, (info, sub)) in tree.children.iter().take(SHARDS).enumerate() {
            let sub = sub
                .as_ref()
                .expect("a running child supervisor has a subtree");
            assert_eq!(Some(sub.pid), info.status.pid());
            assert_eq!(sub.pid.shard(), ShardId(i as u16));
            assert_eq!(sub.mode, Mode::Static(Strategy::OneForAll));
            assert_eq!(sub.children.len(), 2);
        }
        let printed = tree.to_string();
        for needle in ["root", "group0", "group3", "g2w1", "solo"] {
            assert!(printed.contains(needle), "{needle} in\n{printed}");
        }
        assert_eq!(printed.lines().count(), pids.len());
        // A crash deep down is handled by its own group only.
        let g1 = SupervisorRef::from_pid(tree.children[1].1.as_ref().unwrap().pid);
        let g1w0 = log.starts("g1w0", 1).await[0];
        end(g1w0, How::Error);
        log.starts("g1w1", 2).await;
        assert_eq!(g1.stats().await.unwrap().restarts, 1);
        assert_eq!(sup.stats().await.unwrap().restarts, 0);
        assert!(matches!(
            corelet_supervisor::ChildInfo::clone(&sup.which_children().await.unwrap()[1]).status,
            ChildStatus::Running(_)
        ));
        sup.stop().await.unwrap();
    });
}
