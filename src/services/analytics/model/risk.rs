//! The per-actor risk score: how likely an actor is to fail again soon, in [0, 1].
//!
//! ```text
//! load = Σ severity(kind) · ½^(age / half_life)          over the actor's errors
//!      + CORRELATION_WEIGHT · Σ ½^(age / half_life)       over its correlated errors
//! risk = 1 − exp(−load / LOAD_SCALE)
//! ```
//!
//! - **Frequency and recency**: every error adds its severity, and what was added halves
//!   every half-life (10 min by default), so a burst counts fully and a quiet actor
//!   drifts back to 0. Kept as one decayed sum per actor ([`Decayed`]): O(1) memory
//!   however many errors.
//! - **Severity** by exit kind ([`severity`]): a panic (a bug; state lost) 1.0, a
//!   returned error 0.7, a failed start 0.6 (the actor never ran: often a device or
//!   config that stays broken), a quota restart or termination 0.5 (the supervisor acted
//!   on resource misuse), a kill 0.4 (imposed from outside: a shutdown timeout).
//! - **Correlation**: an error that coincides with errors of related actors (see
//!   [`correlation`](super::correlation)) adds [`CORRELATION_WEIGHT`] (seed 000's weight
//!   for related errors, 0.3) to both actors' loads: cascades raise everyone involved.
//! - **Scale**: with [`LOAD_SCALE`] = 2, one fresh panic scores 0.39, two 0.63, three
//!   0.78 — past seed 000's "high risk" threshold of 0.7, as its recovery matrix
//!   escalates after three consecutive failures; one fresh error scores 0.30, one kill
//!   0.18. Ten minutes later each of these is about halved in load.

use std::time::Duration;

/// Added to an actor's load for each correlated error it took part in (seed 000).
pub const CORRELATION_WEIGHT: f64 = 0.3;

/// The load at which the risk is 1 − 1/e ≈ 0.63.
pub const LOAD_SCALE: f64 = 2.0;

/// The weight of an error by its exit kind (`ExitReason::kind`); 0 for `normal` and
/// anything unknown.
pub fn severity(kind: &str) -> f64 {
    match kind {
        "panic" => 1.0,
        "error" => 0.7,
        "startup_failure" => 0.6,
        // A resource breach, whether the supervisor's quota or the kernel enforced it.
        "quota" | "oom" => 0.5,
        "killed" => 0.4,
        _ => 0.0,
    }
}

/// The risk for a load (see the [module docs](self)), in [0, 1].
pub fn score(load: f64) -> f64 {
    (1.0 - (-load.max(0.0) / LOAD_SCALE).exp()).clamp(0.0, 1.0)
}

/// A sum whose terms halve every half-life, kept as one value and the time of its last
/// update.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Decayed {
    value: f64,
    at: Duration,
}

impl Decayed {
    /// Adds `amount` at time `t`.
    pub fn add(&mut self, t: Duration, amount: f64, half_life: Duration) {
        self.value = self.at(t, half_life) + amount;
        self.at = self.at.max(t);
    }

    /// The sum at time `t` (not before its last update: an earlier `t` reads as then).
    pub fn at(&self, t: Duration, half_life: Duration) -> f64 {
        let age = t.saturating_sub(self.at).as_secs_f64();
        let half_life = half_life.as_secs_f64();
        if half_life <= 0.0 {
            return if age > 0.0 { 0.0 } else { self.value };
        }
        self.value * 0.5f64.powf(age / half_life)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HL: Duration = Duration::from_secs(600);

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn severities_are_ordered() {
        let order = [
            "panic",
            "error",
            "startup_failure",
            "quota",
            "killed",
            "normal",
        ];
        for w in order.windows(2) {
            assert!(severity(w[0]) > severity(w[1]), "{w:?}");
        }
        assert_eq!(severity("normal"), 0.0);
        assert_eq!(severity("unheard-of"), 0.0);
    }

    #[test]
    fn decayed_sum_halves_every_half_life() {
        let mut d = Decayed::default();
        d.add(Duration::from_secs(100), 1.0, HL);
        assert!(close(d.at(Duration::from_secs(100), HL), 1.0));
        assert!(close(d.at(Duration::from_secs(700), HL), 0.5));
        assert!(close(d.at(Duration::from_secs(1300), HL), 0.25));
        d.add(Duration::from_secs(700), 1.0, HL);
        assert!(close(d.at(Duration::from_secs(700), HL), 1.5));
        // An out-of-order (earlier) reading counts as of the last update.
        assert!(close(d.at(Duration::from_secs(10), HL), 1.5));
    }

    #[test]
    fn scores_match_the_documented_figures() {
        let r = |load: f64| (score(load) * 100.0).round() / 100.0;
        assert_eq!(r(severity("panic")), 0.39);
        assert_eq!(r(2.0 * severity("panic")), 0.63);
        assert_eq!(r(3.0 * severity("panic")), 0.78);
        assert_eq!(r(severity("error")), 0.30);
        assert_eq!(r(severity("killed")), 0.18);
        assert_eq!(score(0.0), 0.0);
        assert!(score(1e9) <= 1.0 && score(-1.0) == 0.0);
    }
}
