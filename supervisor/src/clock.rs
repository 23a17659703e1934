//! The clock the restart-intensity window and the backoff reset read.
//!
//! Restart intensity is a rule about time ("at most `intensity` restarts
//! within `period`"), so tests need to move time without sleeping. A
//! supervisor reads time only through a [`Clock`]; the default is the
//! monotonic [`SystemClock`], and [`ManualClock`] is moved by hand.
//! Delays (backoff, retries, shutdown timeouts) are real timers on the
//! supervisor's shard and do not read this clock.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A monotonic time source: the time elapsed since some fixed origin.
pub trait Clock: Send + Sync + 'static {
    /// Time since this clock's origin; never decreases.
    fn now(&self) -> Duration;
}

/// The monotonic system clock ([`Instant`]), with its origin at creation.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to: share it between a test and the
/// supervisors it starts (clones share one time).
///
/// ```
/// use corelet_supervisor::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// let view = clock.clone();
/// clock.advance(Duration::from_secs(3));
/// assert_eq!(view.now(), Duration::from_secs(3));
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the new time reaches a supervisor's shard together with
        // the message the caller sends next (the ring's Release/Acquire
        // pair orders it); no other memory hangs on this value.
        self.nanos.fetch_add(by, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        // Relaxed: see `advance`.
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ManualClock({:?})", self.now())
    }
}

/// A shared clock handle, as kept in a supervisor's flags.
#[derive(Clone)]
pub(crate) struct SharedClock(pub(crate) Arc<dyn Clock>);

impl Default for SharedClock {
    fn default() -> Self {
        Self(Arc::new(SystemClock::new()))
    }
}

impl fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock(now {:?})", self.0.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_never_goes_back() {
        let clock = SystemClock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        assert_eq!(clock.now(), Duration::ZERO);
        clock.advance(Duration::from_millis(1500));
        clock.advance(Duration::from_millis(500));
        assert_eq!(clock.clone().now(), Duration::from_secs(2));
    }
}
