//! Delay before a restart: exponential, capped, with jitter (seed 004).
//!
//! The n-th consecutive restart of a child (n counted from 0) waits
//! `min(base · 2ⁿ, max) · j`, with `j` drawn uniformly from 0.8–1.2 so that siblings that
//! failed together do not all come back in the same instant. The random source is passed
//! in, so a seeded supervisor is deterministic.
//!
//! The arithmetic is done in f64 seconds and saturates: no attempt count and no `base` or
//! `max`, up to [`Duration::MAX`], makes it panic (it runs under the child table's lock).

use std::time::Duration;

use serde::Serialize;

/// Exponential restart backoff with jitter. Off unless set in [`SupervisorFlags`](super::SupervisorFlags).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Backoff {
    /// Delay before the first restart of a run of restarts.
    pub base: Duration,
    /// Upper bound of the exponential part (jitter may take a delay to 1.2 × this).
    pub max: Duration,
    /// A child that stayed up this long is healthy again: its next restart waits `base`.
    pub reset_after: Duration,
}

/// Lowest jitter factor.
pub const JITTER_MIN: f64 = 0.8;
/// Highest jitter factor.
pub const JITTER_MAX: f64 = 1.2;

impl Backoff {
    /// The delay before restart number `attempt` (0 for the first) of a run; at most
    /// [`Duration::MAX`], whatever the attempt and the settings.
    pub fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        // 2^1023 is the largest finite power of two: the product stays a number (0 · 2^1023
        // is 0, not NaN) and reaches any `max` a `Duration` can hold.
        let factor = 2f64.powi(attempt.min(1023) as i32);
        let exp = (self.base.as_secs_f64() * factor).min(self.max.as_secs_f64());
        let jitter = JITTER_MIN + (JITTER_MAX - JITTER_MIN) * rng.f64();
        Duration::try_from_secs_f64(exp * jitter).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            reset_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn grows_exponentially_within_jitter() {
        let mut rng = fastrand::Rng::with_seed(7);
        let b = backoff();
        for attempt in 0..4u32 {
            let nominal = 100.0 * 2f64.powi(attempt as i32);
            for _ in 0..100 {
                let d = b.delay(attempt, &mut rng).as_secs_f64() * 1000.0;
                assert!(
                    d >= nominal * 0.8 - 1e-6 && d <= nominal * 1.2 + 1e-6,
                    "{d}"
                );
            }
        }
    }

    #[test]
    fn is_capped() {
        let mut rng = fastrand::Rng::with_seed(1);
        let b = backoff();
        for attempt in [5, 20, 63, 1000] {
            let d = b.delay(attempt, &mut rng);
            assert!(d <= Duration::from_millis(2400), "{d:?}");
            assert!(d >= Duration::from_millis(1600), "{d:?}");
        }
    }

    #[test]
    fn never_overflows() {
        let mut rng = fastrand::Rng::with_seed(5);
        let b = backoff(); // 100 ms, capped at 2 s
        for attempt in [0, 10, 63, 64, u32::MAX] {
            let d = b.delay(attempt, &mut rng);
            let nominal = (0.1 * 2f64.powi(attempt.min(64) as i32)).min(2.0);
            let secs = d.as_secs_f64();
            assert!(
                secs >= nominal * JITTER_MIN - 1e-6 && secs <= nominal * JITTER_MAX + 1e-6,
                "attempt {attempt}: {d:?}"
            );
        }
        // A huge base, a cap near the largest duration: saturates, never panics.
        let huge = Backoff {
            base: Duration::MAX,
            max: Duration::MAX,
            reset_after: Duration::MAX,
        };
        for attempt in [0, 1, 63, 64, u32::MAX] {
            let d = huge.delay(attempt, &mut rng);
            assert!(
                d >= Duration::from_secs(u64::MAX / 2),
                "attempt {attempt}: {d:?}"
            );
        }
        let long = Backoff {
            base: Duration::from_secs(10),
            max: Duration::MAX - Duration::from_secs(1),
            reset_after: Duration::from_secs(10),
        };
        let first = long.delay(0, &mut rng);
        assert!(
            first >= Duration::from_secs(8) && first <= Duration::from_secs(12),
            "{first:?}"
        );
        assert!(long.delay(u32::MAX, &mut rng) >= Duration::from_secs(u64::MAX / 2));
        let zero = Backoff {
            base: Duration::ZERO,
            ..long
        };
        assert_eq!(zero.delay(u32::MAX, &mut rng), Duration::ZERO);
    }

    #[test]
    fn jitter_spreads_and_is_seeded() {
        let b = backoff();
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..50).map(|_| b.delay(0, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        let d = draw(3);
        let (lo, hi) = (d.iter().min(), d.iter().max());
        assert!(hi > lo, "jitter must vary the delay");
    }
}
