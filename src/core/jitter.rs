//! The control loop's period jitter: how late each tick ran against its schedule.
//!
//! A lock-free histogram with log-spaced buckets (≈ 5 % wide, 1 µs to ~100 s), so the
//! control loop records a tick with one atomic add and a reader gets p50/p99 at any time.
//! Quantiles are reported as the upper edge of their bucket: at most ~5 % high.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

const BUCKETS: usize = 384;
const GROWTH: f64 = 1.05;

/// A histogram of tick lateness.
pub struct Jitter {
    counts: Box<[AtomicU64]>,
    /// The same ticks for Prometheus, looked up once (a no-op handle when no recorder
    /// was installed before this histogram was made).
    exported: metrics::Histogram,
    total: AtomicU64,
    max_ns: AtomicU64,
}

impl std::fmt::Debug for Jitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jitter")
            .field("summary", &self.summary())
            .finish_non_exhaustive()
    }
}

/// Quantiles of a [`Jitter`] histogram, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct JitterSummary {
    /// Ticks recorded.
    pub ticks: u64,
    /// Median lateness.
    pub p50_s: f64,
    /// 99th percentile lateness.
    pub p99_s: f64,
    /// Largest lateness seen.
    pub max_s: f64,
}

/// One bucket of a [`Jitter`] histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// Its upper edge, seconds: the ticks in it ran at most this late.
    pub le_s: f64,
    /// Ticks in it.
    pub count: u64,
}

impl Default for Jitter {
    fn default() -> Self {
        Self {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            exported: metrics::histogram!(crate::core::metrics::LOOP_JITTER),
            total: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

/// Upper edge of bucket `i` in nanoseconds: bucket 0 holds ≤ 1 µs.
fn upper_ns(i: usize) -> f64 {
    1000.0 * GROWTH.powi(i as i32)
}

fn bucket(ns: u64) -> usize {
    if ns <= 1000 {
        return 0;
    }
    let i = ((ns as f64 / 1000.0).ln() / GROWTH.ln()).ceil() as usize;
    i.min(BUCKETS - 1)
}

impl Jitter {
    /// Records one tick that ran `late` after its scheduled time.
    pub fn record(&self, late: Duration) {
        let ns = late.as_nanos().min(u64::MAX as u128) as u64;
        self.counts[bucket(ns)].fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        self.max_ns.fetch_max(ns, Ordering::Relaxed);
        self.exported.record(late.as_secs_f64());
    }

    /// The lateness below which a fraction `q` (0–1) of ticks ran; zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c.load(Ordering::Relaxed);
            if seen >= rank {
                return Duration::from_nanos(upper_ns(i) as u64);
            }
        }
        Duration::from_nanos(self.max_ns.load(Ordering::Relaxed))
    }

    /// The histogram's non-empty buckets, ascending: each bucket's upper edge in seconds
    /// and its ticks (for drawing it; buckets are ≈ 5 % wide on a log scale).
    pub fn buckets(&self) -> Vec<Bucket> {
        self.counts
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let count = c.load(Ordering::Relaxed);
                (count > 0).then(|| Bucket {
                    // Whole nanoseconds: short in JSON, and far finer than a bucket.
                    le_s: upper_ns(i).round() / 1e9,
                    count,
                })
            })
            .collect()
    }

    /// Count, p50, p99 and max.
    pub fn summary(&self) -> JitterSummary {
        JitterSummary {
            ticks: self.total.load(Ordering::Relaxed),
            p50_s: self.quantile(0.5).as_secs_f64(),
            p99_s: self.quantile(0.99).as_secs_f64(),
            max_s: Duration::from_nanos(self.max_ns.load(Ordering::Relaxed)).as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_bucket_width() {
        let j = Jitter::default();
        for us in 1..=1000u64 {
            j.record(Duration::from_micros(us));
        }
        let p50 = j.quantile(0.5).as_secs_f64() * 1e6;
        let p99 = j.quantile(0.99).as_secs_f64() * 1e6;
        assert!((500.0..=525.0).contains(&p50), "{p50}");
        assert!((990.0..=1040.0).contains(&p99), "{p99}");
        assert_eq!(j.summary().ticks, 1000);
        let buckets = j.buckets();
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 1000);
        assert!(buckets.windows(2).all(|w| w[0].le_s < w[1].le_s));
        assert!(buckets.iter().all(|b| b.count > 0));
        assert!((buckets[buckets.len() - 1].le_s - 0.001).abs() < 0.00006);
        assert!((j.summary().max_s - 0.001).abs() < 1e-9);
    }

    #[test]
    fn empty_and_tiny() {
        let j = Jitter::default();
        assert_eq!(j.quantile(0.5), Duration::ZERO);
        j.record(Duration::ZERO);
        assert_eq!(j.quantile(0.99), Duration::from_micros(1));
    }
}
