//! One thing wrong with a configuration, located by its key path.

use std::fmt;

/// A configuration problem: the key path (`quotas.heavy.memory.hard`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path from the top of the file, e.g. `drivers.ultrasonic.rate_hz`.
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

    /// Records a problem at `key` unless `value > 0` (NaN is a problem too).
    pub fn positive(&mut self, key: impl Into<String>, value: f64) {
        if value.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            self.push(key, format!("must be > 0 (is {value})"));
        }
    }

    /// Records a problem at `key` unless `lo <= value <= hi` (NaN is a problem too).
    pub fn range(&mut self, key: impl Into<String>, value: f64, lo: f64, hi: f64) {
        if !(lo..=hi).contains(&value) {
            self.push(key, format!("must be between {lo} and {hi} (is {value})"));
        }
    }
}
