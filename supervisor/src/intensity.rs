//! Restart intensity: OTP's sliding window.
//!
//! A supervisor may restart at most `intensity` times within any `period`.
//! The rule, as OTP's `supervisor` applies it on every restart:
//!
//! 1. Drop the recorded restart times older than `now - period` (a time
//!    exactly `period` ago is still inside the window).
//! 2. Record `now`.
//! 3. If the window now holds more than `intensity` times, the limit is
//!    exceeded: the supervisor stops its children and exits (escalation).
//!
//! So restarts spaced further apart than `period` never accumulate, and
//! nothing is "reset after a quiet period": the window only ever holds the
//! restarts of the last `period`, at most `intensity + 1` of them.

use std::collections::VecDeque;
use std::time::Duration;

/// The restart times of the last `period`.
#[derive(Debug)]
pub(crate) struct RestartWindow {
    intensity: u32,
    period: Duration,
    stamps: VecDeque<Duration>,
}

/// What recording one restart decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit: go ahead.
    Allowed,
    /// More than `intensity` restarts within `period`: escalate.
    Exceeded,
}

impl RestartWindow {
    pub(crate) fn new(intensity: u32, period: Duration) -> Self {
        Self {
            intensity,
            period,
            stamps: VecDeque::new(),
        }
    }

    /// Records a restart at `now` (rules 1–3).
    pub(crate) fn record(&mut self, now: Duration) -> Verdict {
        let threshold = now.saturating_sub(self.period);
        while self.stamps.front().is_some_and(|t| *t < threshold) {
            self.stamps.pop_front();
        }
        self.stamps.push_back(now);
        if self.stamps.len() > self.intensity as usize {
            Verdict::Exceeded
        } else {
            Verdict::Allowed
        }
    }

    /// Restarts currently inside the window (as of the last `record`).
    pub(crate) fn len(&self) -> usize {
        self.stamps.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn more_than_intensity_within_period_is_exceeded() {
        let mut w = RestartWindow::new(2, s(10));
        assert_eq!(w.record(s(0)), Verdict::Allowed);
        assert_eq!(w.record(s(1)), Verdict::Allowed);
        assert_eq!(w.record(s(2)), Verdict::Exceeded);
    }

    #[test]
    fn zero_intensity_never_restarts() {
        let mut w = RestartWindow::new(0, s(10));
        assert_eq!(w.record(s(0)), Verdict::Exceeded);
    }

    #[test]
    fn restarts_spaced_beyond_the_period_never_accumulate() {
        let mut w = RestartWindow::new(1, s(5));
        for i in 0..100 {
            assert_eq!(w.record(s(6 * i)), Verdict::Allowed, "restart {i}");
            assert_eq!(w.len(), 1);
        }
    }

    #[test]
    fn the_window_slides_rather_than_resets() {
        // intensity 2 in 10 s: restarts at 0, 6, 12 are fine (0 has left
        // the window by 12), but a fourth at 13 makes 6, 12, 13.
        let mut w = RestartWindow::new(2, s(10));
        assert_eq!(w.record(s(0)), Verdict::Allowed);
        assert_eq!(w.record(s(6)), Verdict::Allowed);
        assert_eq!(w.record(s(12)), Verdict::Allowed);
        assert_eq!(w.record(s(13)), Verdict::Exceeded);
    }

    #[test]
    fn a_restart_exactly_one_period_ago_still_counts() {
        let mut w = RestartWindow::new(1, s(5));
        assert_eq!(w.record(s(0)), Verdict::Allowed);
        assert_eq!(w.record(s(5)), Verdict::Exceeded);
    }

    #[test]
    fn the_window_is_bounded() {
        let mut w = RestartWindow::new(3, s(1000));
        for i in 0..50 {
            w.record(s(i));
        }
        // Exceeded long ago; a supervisor would have exited, but the
        // window itself only keeps what is inside the period.
        assert_eq!(w.len(), 50);
        w.record(s(5000));
        assert_eq!(w.len(), 1);
    }
}
