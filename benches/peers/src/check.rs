//! Errors and result checks. Every workload verifies its answer; a wrong
//! answer is an error that aborts the run, so a fast wrong answer fails.

use std::fmt;
use std::time::Duration;

/// Why a workload (or the harness) failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchError(pub String);

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

/// The result type of workloads.
pub type Result<T> = std::result::Result<T, BenchError>;

/// Adds what was being done to any displayable error.
pub trait Ctx<T> {
    /// Turns the error into a [`BenchError`] saying `what` failed.
    fn ctx(self, what: &str) -> Result<T>;
}

impl<T, E: fmt::Display> Ctx<T> for std::result::Result<T, E> {
    fn ctx(self, what: &str) -> Result<T> {
        self.map_err(|e| BenchError(format!("{what}: {e}")))
    }
}

impl<T> Ctx<T> for Option<T> {
    fn ctx(self, what: &str) -> Result<T> {
        self.ok_or_else(|| BenchError(format!("{what}: nothing there")))
    }
}

/// Fails unless `got == want`.
pub fn check_eq(what: &str, got: u64, want: u64) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(BenchError(format!(
            "wrong answer in {what}: got {got}, expected {want}"
        )))
    }
}

/// A timed run: how long it took and how many units (messages,
/// processes, hops) it did.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    /// Wall time of the measured part.
    pub elapsed: Duration,
    /// Units done in that time.
    pub units: u64,
}

impl Timed {
    /// A run of `units` in `elapsed`.
    pub fn new(elapsed: Duration, units: u64) -> Timed {
        Timed { elapsed, units }
    }

    /// Nanoseconds per unit.
    pub fn per_unit(self) -> f64 {
        self.elapsed.as_nanos() as f64 / self.units.max(1) as f64
    }
}

/// Hooks run where a workload's timed part starts and ends. The
/// instruction counter (`--instructions`) opens callgrind's count there;
/// everywhere else they do nothing ([`Window::NONE`]).
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Run just after the timer starts.
    pub open: fn(),
    /// Run just before the timer stops.
    pub close: fn(),
}

impl Window {
    /// No hooks.
    pub const NONE: Window = Window {
        open: || {},
        close: || {},
    };
}

/// A small xorshift generator, so every runtime draws the same
/// neighbours in Savina Big without a dependency.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded from `seed` (any value, zero included).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number below `bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x % bound
    }

    /// A neighbour of `me` among `n` actors, never `me` itself (n > 1).
    pub fn neighbour(&mut self, me: usize, n: usize) -> usize {
        let other = self.below(n as u64 - 1) as usize;
        if other >= me {
            other + 1
        } else {
            other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_eq_reports_both_numbers() {
        assert!(check_eq("x", 3, 3).is_ok());
        let e = check_eq("sum", 2, 3).unwrap_err();
        assert!(e.0.contains("got 2") && e.0.contains("expected 3"));
    }

    #[test]
    fn neighbours_are_never_self() {
        let mut r = XorShift::new(0);
        for _ in 0..1000 {
            let n = r.neighbour(3, 5);
            assert!(n < 5 && n != 3);
        }
    }
}
