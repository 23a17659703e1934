//! OTP's decision table, checked end to end: restart type × exit reason
//! (Normal, Shutdown, Error, Panicked, Killed), one child at a time under
//! one-for-one, the child on another shard than its supervisor. A child
//! that is restarted gets a new pid; one that is not keeps its spec
//! (transient: `Undefined`) or loses it (temporary).

mod common;

use common::*;
use corelet_shard::{ExitReason, ShardId};
use corelet_supervisor::{
    self as supervisor, ChildStatus, Placement, Restart, Strategy, SupervisorSpec,
};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
enum Reason {
    Normal,
    Shutdown,
    Error,
    Panicked,
    Killed,
}

const REASONS: [Reason; 5] = [
    Reason::Normal,
    Reason::Shutdown,
    Reason::Error,
    Reason::Panicked,
    Reason::Killed,
];

fn make_exit(pid: corelet_shard::Pid, reason: Reason) {
    match reason {
        Reason::Normal => end(pid, How::Normal),
        Reason::Shutdown => end(pid, How::Shutdown),
        Reason::Error => end(pid, How::Error),
        Reason::Panicked => end(pid, How::Panic),
        Reason::Killed => corelet_shard::kill(pid).unwrap(),
    }
}

fn expected_reason(reason: Reason) -> Option<ExitReason> {
    // The terminate hook logs the reason (it does not run for Killed).
    match reason {
        Reason::Normal => Some(ExitReason::Normal),
        Reason::Shutdown => Some(ExitReason::Shutdown),
        Reason::Error => Some(ExitReason::Error("told to fail".into())),
        Reason::Panicked => Some(ExitReason::Panicked("told to panic".into())),
        Reason::Killed => None,
    }
}

/// What OTP does: (restarted?, spec kept?).
fn otp(restart: Restart, reason: Reason) -> (bool, bool) {
    let abnormal = matches!(reason, Reason::Error | Reason::Panicked | Reason::Killed);
    match restart {
        Restart::Permanent => (true, true),
        Restart::Transient => (abnormal, true),
        Restart::Temporary => (false, false),
    }
}

#[test]
fn restart_type_by_exit_reason() {
    let rt = runtime(2);
    on0(&rt, || async {
        let log = Log::start();
        for restart in [Restart::Permanent, Restart::Transient, Restart::Temporary] {
            for reason in REASONS {
                let case = format!("{restart:?}/{reason:?}");
                let spec = SupervisorSpec::new(Strategy::OneForOne)
                    .intensity(10, Duration::from_secs(3600))
                    .child(
                        worker(&case, &log)
                            .restart(restart)
                            .placement(Placement::Shard(ShardId(1))),
                    );
                let sup = supervisor::start(spec).await.unwrap();
                let old = log.starts(&case, 1).await[0];
                assert_eq!(old.shard(), ShardId(1));
                make_exit(old, reason);
                let after = after_exit(sup, &case, old).await;
                let (restarted, kept) = otp(restart, reason);
                match after {
                    Some(ChildStatus::Running(new)) => {
                        assert!(restarted, "{case}: restarted, OTP would not");
                        assert_ne!(new, old);
                        assert_eq!(log.starts(&case, 2).await, vec![old, new], "{case}");
                    }
                    Some(ChildStatus::Undefined) => {
                        assert!(!restarted && kept, "{case}: kept without a pid");
                    }
                    None => assert!(!restarted && !kept, "{case}: spec dropped"),
                    Some(ChildStatus::Restarting) => panic!("{case}: no backoff was set"),
                }
                // The old incarnation ended with the reason it was given.
                if let Some(want) = expected_reason(reason) {
                    assert!(
                        log.snapshot().contains(&Ev::Stop(case.clone(), old, want)),
                        "{case}"
                    );
                }
                let stats = sup.stats().await.unwrap();
                assert_eq!(stats.exits, 1, "{case}");
                assert_eq!(stats.restarts, u64::from(restarted), "{case}");
                assert_eq!(stats.table, usize::from(kept), "{case}: child table");
                sup.stop().await.unwrap();
            }
        }
    });
}
