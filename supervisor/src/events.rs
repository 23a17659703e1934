//! Tracing events, one per start, exit, restart, intensity trip and
//! auto-shutdown, each naming the supervisor, the child and the reason.
//! Target `corelet::supervisor`; restarts, trips and unexpected shutdown
//! reasons at `info` and above, routine starts and exits at `debug`.

use crate::error::StartError;
use crate::info::SupervisorStats;
use corelet_shard::{ExitReason, Pid};
use std::time::Duration;

const TARGET: &str = "corelet::supervisor";

pub(crate) fn started(sup: Pid, child: &str, pid: Pid) {
    tracing::debug!(target: TARGET, supervisor = %sup, child, pid = %pid, "child started");
}

pub(crate) fn ignored(sup: Pid, child: &str) {
    tracing::debug!(target: TARGET, supervisor = %sup, child, "child start ignored");
}

pub(crate) fn start_failed(sup: Pid, child: &str, error: &StartError) {
    tracing::warn!(target: TARGET, supervisor = %sup, child, reason = %error, "child start failed");
}

pub(crate) fn exited(sup: Pid, child: &str, pid: Pid, reason: &ExitReason) {
    if reason.is_normal() {
        tracing::debug!(target: TARGET, supervisor = %sup, child, pid = %pid, reason = %reason, "child exited");
    } else {
        tracing::info!(target: TARGET, supervisor = %sup, child, pid = %pid, reason = %reason, "child exited");
    }
}

pub(crate) fn restarting(sup: Pid, child: &str, group: usize, delay: Duration) {
    tracing::info!(
        target: TARGET,
        supervisor = %sup,
        child,
        group,
        delay_ms = delay.as_millis() as u64,
        "restarting child"
    );
}

pub(crate) fn intensity_trip(sup: Pid, child: &str, intensity: u32, period: Duration) {
    tracing::error!(
        target: TARGET,
        supervisor = %sup,
        child,
        intensity,
        period_ms = period.as_millis() as u64,
        reason = "reached max restart intensity",
        "restart intensity exceeded; shutting down"
    );
}

pub(crate) fn child_tripped(sup: Pid, child: Pid) {
    tracing::info!(target: TARGET, supervisor = %sup, pid = %child, "child supervisor exceeded its restart intensity");
}

pub(crate) fn auto_shutdown(sup: Pid, child: &str) {
    tracing::info!(target: TARGET, supervisor = %sup, child, reason = "significant child exited", "auto-shutdown");
}

pub(crate) fn shutdown_error(sup: Pid, child: &str, pid: Pid, reason: &ExitReason) {
    tracing::error!(target: TARGET, supervisor = %sup, child, pid = %pid, reason = %reason, "child exited with an unexpected reason while being stopped");
}

pub(crate) fn cancelled(sup: Pid, child: &str) {
    tracing::debug!(target: TARGET, supervisor = %sup, child, "delayed restart cancelled");
}

pub(crate) fn parent_exited(sup: Pid, parent: Pid, reason: &ExitReason) {
    tracing::info!(target: TARGET, supervisor = %sup, parent = %parent, reason = %reason, "parent exited; shutting down");
}

pub(crate) fn unknown_exit(sup: Pid, pid: Pid, reason: &ExitReason) {
    tracing::debug!(target: TARGET, supervisor = %sup, pid = %pid, reason = %reason, "exit signal from a process that is not a current child");
}

pub(crate) fn supervisor_exited(sup: Pid, reason: &ExitReason, stats: &SupervisorStats) {
    tracing::info!(
        target: TARGET,
        supervisor = %sup,
        reason = %reason,
        starts = stats.starts,
        restarts = stats.restarts,
        exits = stats.exits,
        shutdown_errors = stats.shutdown_errors,
        "supervisor exited"
    );
}
