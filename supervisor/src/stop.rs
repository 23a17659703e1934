//! Stopping children: OTP's `shutdown/2`, for one child and for many at
//! once under one timer.
//!
//! # Rules
//!
//! 1. Watch first: a waiter (`corelet::wait`, the monitor equivalent) is
//!    registered before the stop signal is sent. It resolves when the child
//!    has exited — its terminate hook returned and its state was dropped —
//!    whether or not the child is still linked to the supervisor, so a
//!    child that unlinked itself cannot hang a shutdown, and a new
//!    incarnation is never started before the old one is gone.
//! 2. `BrutalKill` kills; `Timeout(d)` terminates, then kills if the child
//!    has not exited after `d`; `Infinity` terminates and waits.
//! 3. The reason the child exited with is returned so the caller can
//!    report an unexpected one (see [`expected`]). A child that was gone
//!    before the waiter reached it (`NoProcess`) exited on its own just
//!    before; that is not reported.
//! 4. While the runtime shuts down (`corelet::shutting_down`), every shard
//!    stops its own processes, and a shard that has no process left
//!    finishes and answers nothing more: a child on another shard is then
//!    signalled but not waited for.

use crate::spec::{Restart, Shutdown};
use corelet_shard::{Error, ExitReason, Pid, Wait};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

/// What a waiter's answer means as an exit reason.
fn reason_of(outcome: Result<ExitReason, Error>) -> ExitReason {
    match outcome {
        Ok(reason) => reason,
        // Gone before the waiter reached it: it exited on its own just
        // before being stopped (its reason is in the supervisor's mailbox).
        Err(Error::NoProcess(_)) => ExitReason::NoProcess,
        // The runtime is stopping every process.
        Err(_) => ExitReason::Shutdown,
    }
}

fn signal(pid: Pid, policy: Shutdown) {
    // A refusal means the child is already gone; the waiter says so too.
    let _ = match policy {
        Shutdown::BrutalKill => corelet_shard::kill(pid),
        Shutdown::Timeout(_) | Shutdown::Infinity => corelet_shard::terminate(pid),
    };
}

/// Rule 4: whether to wait for `pid` at all.
fn waitable(pid: Pid) -> bool {
    !corelet_shard::shutting_down() || corelet_shard::current_shard() == Some(pid.shard())
}

/// Stops one child by `policy` and returns the reason it exited with.
pub(crate) async fn stop_one(pid: Pid, policy: Shutdown) -> ExitReason {
    if !waitable(pid) {
        signal(pid, policy);
        return ExitReason::Shutdown;
    }
    let mut waiting = std::pin::pin!(corelet_shard::wait(pid)); // rule 1
    signal(pid, policy);
    let Shutdown::Timeout(limit) = policy else {
        return reason_of(waiting.await);
    };
    let mut timer = std::pin::pin!(glommio::timer::Timer::new(limit));
    let first = poll_fn(|cx| {
        if let Poll::Ready(outcome) = waiting.as_mut().poll(cx) {
            return Poll::Ready(Some(outcome));
        }
        timer.as_mut().poll(cx).map(|_| None)
    })
    .await;
    match first {
        Some(outcome) => reason_of(outcome),
        None => {
            tracing::debug!(%pid, ?limit, "child overran its shutdown timeout; killing it");
            let _ = corelet_shard::kill(pid);
            reason_of(waiting.await)
        }
    }
}

/// Stops many children at once by one `policy`: every signal goes out
/// first, then one timer covers them all (OTP's dynamic supervisor).
/// Returns each pid with its exit reason, in the order given.
pub(crate) async fn stop_many(pids: &[Pid], policy: Shutdown) -> Vec<(Pid, ExitReason)> {
    let (pids, unwaited): (Vec<Pid>, Vec<Pid>) = pids.iter().partition(|p| waitable(**p));
    for pid in &unwaited {
        signal(*pid, policy); // rule 4
    }
    let pids = &pids[..];
    let mut waits: Vec<Pin<Box<Wait>>> = pids
        .iter()
        .map(|pid| Box::pin(corelet_shard::wait(*pid)))
        .collect();
    for pid in pids {
        signal(*pid, policy);
    }
    let mut done: Vec<Option<ExitReason>> = vec![None; pids.len()];
    let limit = match policy {
        Shutdown::Timeout(d) => Some(d),
        _ => None,
    };
    if !wait_all(&mut waits, &mut done, limit).await {
        let left = done.iter().filter(|d| d.is_none()).count();
        tracing::debug!(
            left,
            ?limit,
            "children overran the shutdown timeout; killing them"
        );
        for (pid, d) in pids.iter().zip(&done) {
            if d.is_none() {
                let _ = corelet_shard::kill(*pid);
            }
        }
        wait_all(&mut waits, &mut done, None).await;
    }
    pids.iter()
        .copied()
        .zip(done.into_iter().map(|d| d.unwrap_or(ExitReason::NoProcess)))
        .chain(unwaited.into_iter().map(|p| (p, ExitReason::Shutdown)))
        .collect()
}

/// Polls every waiter until all have answered (`true`) or `limit` passed
/// (`false`).
async fn wait_all(
    waits: &mut [Pin<Box<Wait>>],
    done: &mut [Option<ExitReason>],
    limit: Option<Duration>,
) -> bool {
    let mut timer = limit.map(|d| Box::pin(glommio::timer::Timer::new(d)));
    poll_fn(|cx| {
        let mut all = true;
        for (wait, slot) in waits.iter_mut().zip(done.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            match wait.as_mut().poll(cx) {
                Poll::Ready(outcome) => *slot = Some(reason_of(outcome)),
                Poll::Pending => all = false,
            }
        }
        if all {
            return Poll::Ready(true);
        }
        match timer.as_mut().map(|t| t.as_mut().poll(cx)) {
            Some(Poll::Ready(_)) => Poll::Ready(false),
            _ => Poll::Pending,
        }
    })
    .await
}

/// Whether a child stopped by `policy` exited as expected (OTP reports the
/// others as `shutdown_error`): `Killed` for `BrutalKill`, `Shutdown`
/// otherwise; a non-permanent child may also have exited `Normal`; a child
/// already gone (`NoProcess`, rule 3) is not reported.
pub(crate) fn expected(policy: Shutdown, restart: Restart, reason: &ExitReason) -> bool {
    let by_policy = match policy {
        Shutdown::BrutalKill => *reason == ExitReason::Killed,
        Shutdown::Timeout(_) | Shutdown::Infinity => *reason == ExitReason::Shutdown,
    };
    by_policy
        || *reason == ExitReason::NoProcess
        || (restart != Restart::Permanent && *reason == ExitReason::Normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_reasons_follow_otp() {
        let t = Shutdown::Timeout(Duration::from_secs(1));
        assert!(expected(t, Restart::Permanent, &ExitReason::Shutdown));
        assert!(!expected(t, Restart::Permanent, &ExitReason::Killed));
        assert!(!expected(t, Restart::Permanent, &ExitReason::Normal));
        assert!(expected(t, Restart::Transient, &ExitReason::Normal));
        assert!(expected(t, Restart::Permanent, &ExitReason::NoProcess));
        assert!(expected(
            Shutdown::BrutalKill,
            Restart::Permanent,
            &ExitReason::Killed
        ));
        assert!(!expected(
            Shutdown::BrutalKill,
            Restart::Permanent,
            &ExitReason::Shutdown
        ));
        assert!(!expected(
            Shutdown::Infinity,
            Restart::Temporary,
            &ExitReason::Panicked("x".into())
        ));
    }
}
