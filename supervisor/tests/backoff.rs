//! Restart backoff (beyond OTP): the delay is honoured (a lower bound on
//! the time between an exit and the next start: timers never fire early),
//! grows exponentially up to its cap, shows as `Restarting` meanwhile, and
//! is cancelled by `terminate_child`, `delete_child` and shutdown.

mod common;

use common::*;
use corelet_shard::{ExitReason, ShardId};
use corelet_supervisor::{
    self as supervisor, Backoff, ChildStatus, Placement, Strategy, SupervisorSpec,
};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_fixed_delay_is_honoured() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(10, HOUR)
            .child(
                worker("w", &log)
                    .placement(Placement::Shard(ShardId(1)))
                    .backoff(Backoff::Fixed(ms(50))),
            );
        let sup = supervisor::start(spec).await.unwrap();
        let w = log.starts("w", 1).await[0];
        let crashed = Instant::now();
        end(w, How::Error);
        assert_eq!(after_exit(sup, "w", w).await, Some(ChildStatus::Restarting));
        assert_eq!(sup.stats().await.unwrap().pending_timers, 1);
        log.starts("w", 2).await;
        assert!(crashed.elapsed() >= ms(50), "restarted before its delay");
        let stats = sup.stats().await.unwrap();
        assert_eq!(
            (stats.restarts, stats.delayed_restarts, stats.pending_timers),
            (1, 1, 0)
        );
        sup.stop().await.unwrap();
    });
}

#[test]
fn exponential_delays_grow_to_the_cap() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(10, HOUR)
            .child(worker("w", &log).backoff(Backoff::exponential(ms(10), ms(40))));
        let sup = supervisor::start(spec).await.unwrap();
        // Consecutive crashes wait at least 10, 20, 40, 40 ms.
        for (n, floor) in [10, 20, 40, 40].into_iter().enumerate() {
            let pid = log.starts("w", n + 1).await[n];
            let crashed = Instant::now();
            end(pid, How::Panic);
            log.starts("w", n + 2).await;
            assert!(crashed.elapsed() >= ms(floor), "restart {n} came early");
        }
        sup.stop().await.unwrap();
    });
}

#[test]
fn terminate_child_delete_child_and_shutdown_cancel_a_pending_restart() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        let spec = SupervisorSpec::new(Strategy::OneForOne)
            .intensity(10, HOUR)
            .child(worker("t", &log).backoff(Backoff::Fixed(HOUR)))
            .child(worker("d", &log).backoff(Backoff::Fixed(HOUR)))
            .child(worker("s", &log).backoff(Backoff::Fixed(HOUR)));
        let sup = supervisor::start(spec).await.unwrap();
        for id in ["t", "d", "s"] {
            let pid = log.starts(id, 1).await[0];
            end(pid, How::Error);
            assert_eq!(
                after_exit(sup, id, pid).await,
                Some(ChildStatus::Restarting)
            );
        }
        assert_eq!(sup.stats().await.unwrap().pending_timers, 3);
        sup.terminate_child("t").await.unwrap();
        assert_eq!(status(sup, "t").await, Some(ChildStatus::Undefined));
        sup.delete_child("d").await.unwrap();
        assert_eq!(status(sup, "d").await, None);
        let stats = sup.stats().await.unwrap();
        assert_eq!((stats.pending_timers, stats.cancelled_restarts), (1, 2));
        // Shutdown with a restart an hour away: prompt, and nothing starts.
        assert_eq!(sup.stop().await, Ok(ExitReason::Shutdown));
        assert_eq!(log.start_order(), ["t", "d", "s"]);
    });
}
