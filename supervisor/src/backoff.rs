//! Restart backoff (beyond OTP): an optional delay before a child is
//! restarted, fixed or exponential with a cap and jitter.
//!
//! OTP restarts at once and relies on restart intensity alone. A delay
//! keeps a child that fails because of something outside it (a database
//! that is down) from burning through the restart budget in microseconds.
//! The delay runs on a timer of the supervisor, so the supervisor keeps
//! answering calls meanwhile, and `terminate_child`, `delete_child` and
//! supervisor shutdown cancel it.
//!
//! The attempt number counts the child's consecutive restarts: it goes
//! back to zero when an incarnation has run for at least the supervisor's
//! intensity period before exiting.

use std::time::Duration;

/// How long to wait before restarting a child.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Backoff {
    /// Restart at once (OTP's behaviour).
    #[default]
    None,
    /// Wait the same time before every restart.
    Fixed(Duration),
    /// Wait `base × 2^attempt`, at most `cap`; with `jitter` `j` (0 to 1)
    /// the delay is drawn from `[d × (1 − j), d]`, so it never exceeds the
    /// cap and several children failing together spread out.
    Exponential {
        /// The first delay.
        base: Duration,
        /// The largest delay.
        cap: Duration,
        /// The fraction of the delay that is random (0: none, 1: all).
        jitter: f64,
    },
}

impl Backoff {
    /// Exponential backoff from `base` up to `cap`, without jitter.
    pub fn exponential(base: Duration, cap: Duration) -> Self {
        Backoff::Exponential {
            base,
            cap,
            jitter: 0.0,
        }
    }

    /// The same backoff with `jitter` (0 to 1); only exponential backoff
    /// has jitter, other kinds are returned unchanged.
    pub fn with_jitter(self, jitter: f64) -> Self {
        match self {
            Backoff::Exponential { base, cap, .. } => Backoff::Exponential { base, cap, jitter },
            other => other,
        }
    }

    /// Whether the parameters make sense: jitter within 0..=1, base no
    /// larger than cap.
    pub(crate) fn is_valid(&self) -> bool {
        match *self {
            Backoff::None | Backoff::Fixed(_) => true,
            Backoff::Exponential { base, cap, jitter } => {
                (0.0..=1.0).contains(&jitter) && base <= cap
            }
        }
    }

    /// The delay before restart number `attempt` (0 for the first of a
    /// run of consecutive restarts).
    pub(crate) fn delay(&self, attempt: u32, rng: &mut Rng) -> Duration {
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential { base, cap, jitter } => {
                let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
                let full = base.checked_mul(factor).unwrap_or(cap).min(cap);
                if jitter <= 0.0 {
                    return full;
                }
                let keep = 1.0 - jitter * rng.unit();
                full.mul_f64(keep.clamp(0.0, 1.0))
            }
        }
    }
}

/// A small xorshift generator for jitter: no cryptography needed, only
/// spread. Seeded per supervisor.
#[derive(Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        // A zero state would stay zero.
        Self(seed | 1)
    }

    /// A number in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn none_and_fixed() {
        let mut rng = Rng::new(7);
        assert_eq!(Backoff::None.delay(5, &mut rng), Duration::ZERO);
        assert_eq!(Backoff::Fixed(ms(30)).delay(0, &mut rng), ms(30));
        assert_eq!(Backoff::Fixed(ms(30)).delay(9, &mut rng), ms(30));
    }

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let mut rng = Rng::new(7);
        let b = Backoff::exponential(ms(10), ms(100));
        let delays: Vec<_> = (0..6).map(|a| b.delay(a, &mut rng)).collect();
        assert_eq!(delays, [ms(10), ms(20), ms(40), ms(80), ms(100), ms(100)]);
        // Huge attempt numbers do not overflow.
        assert_eq!(b.delay(u32::MAX, &mut rng), ms(100));
    }

    #[test]
    fn jitter_stays_within_its_band_and_spreads() {
        let mut rng = Rng::new(42);
        let b = Backoff::exponential(ms(100), ms(100)).with_jitter(0.5);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let d = b.delay(3, &mut rng);
            assert!(d >= ms(50) && d <= ms(100), "{d:?}");
            seen.insert(d.as_millis());
        }
        assert!(seen.len() > 10, "jitter spreads delays: {seen:?}");
    }

    #[test]
    fn validity() {
        assert!(Backoff::exponential(ms(1), ms(2)).is_valid());
        assert!(!Backoff::exponential(ms(3), ms(2)).is_valid());
        assert!(!Backoff::exponential(ms(1), ms(2))
            .with_jitter(1.5)
            .is_valid());
        assert!(!Backoff::exponential(ms(1), ms(2))
            .with_jitter(-0.1)
            .is_valid());
        assert_eq!(
            Backoff::Fixed(ms(1)).with_jitter(0.5),
            Backoff::Fixed(ms(1))
        );
    }
}
