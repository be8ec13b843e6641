//! What is wrong with a configuration, each problem located by its key path, so that
//! a check reports every problem at once instead of stopping at the first. Shared by
//! every crate that checks settings: the quota section here, and an application's own.

use std::fmt;

/// A configuration problem: the key path (`limits.memory.hard`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path from the top of the file, e.g. `server.rate_hz`.
    pub key: String,
    /// What is wrong, lowercase, e.g. `must be between 1 and 1000`.
    pub message: String,
}

impl Problem {
    /// A problem at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Collects problems while a configuration is checked.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem at `key`.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(key, message));
    }

    /// Records a problem at `key` unless `value` is finite and `> 0` (NaN and infinity
    /// are problems too). Prefer [`Problems::above`] with an upper bound.
    pub fn positive(&mut self, key: impl Into<String>, value: f64) {
        if !(value.is_finite() && value > 0.0) {
            self.push(key, format!("must be a finite number > 0 (is {value})"));
        }
    }

    /// Records a problem at `key` unless `lo <= value <= hi` (NaN is a problem too).
    pub fn range(&mut self, key: impl Into<String>, value: f64, lo: f64, hi: f64) {
        if !(lo..=hi).contains(&value) {
            self.push(key, format!("must be between {lo} and {hi} (is {value})"));
        }
    }

    /// Records a problem at `key` unless `lo < value <= hi` (NaN is a problem too):
    /// the range of a period, a rate or a size that cannot be zero.
    pub fn above(&mut self, key: impl Into<String>, value: f64, lo: f64, hi: f64) {
        if !(value > lo && value <= hi) {
            self.push(key, format!("must be > {lo} and <= {hi} (is {value})"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(check: impl Fn(&mut Problems, f64), values: &[f64]) -> Vec<String> {
        let mut p = Problems::default();
        for v in values {
            check(&mut p, *v);
        }
        p.0.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn positive_refuses_zero_negative_nan_and_infinity() {
        let bad = [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        let got = messages(|p, v| p.positive("k", v), &bad);
        assert_eq!(got.len(), bad.len(), "{got:?}");
        assert_eq!(got[3], "k: must be a finite number > 0 (is inf)");
        assert!(messages(|p, v| p.positive("k", v), &[1e-9, 1e9]).is_empty());
    }

    #[test]
    fn range_and_above_refuse_non_finite_values() {
        let bad = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 11.0, -1.0];
        assert_eq!(messages(|p, v| p.range("k", v, 0.0, 10.0), &bad).len(), 5);
        assert!(messages(|p, v| p.range("k", v, 0.0, 10.0), &[0.0, 10.0]).is_empty());
        let got = messages(|p, v| p.above("k", v, 0.0, 10.0), &[0.0, f64::NAN, 10.5]);
        assert_eq!(
            got,
            [
                "k: must be > 0 and <= 10 (is 0)",
                "k: must be > 0 and <= 10 (is NaN)",
                "k: must be > 0 and <= 10 (is 10.5)",
            ]
        );
        assert!(messages(|p, v| p.above("k", v, 0.0, 10.0), &[1e-9, 10.0]).is_empty());
    }
}
