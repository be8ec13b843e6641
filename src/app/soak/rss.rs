//! Invariant `rss_flat`: after a warm-up, the process's resident memory never exceeds
//! the warm-up's peak by more than a fixed allowance.
//!
//! The warm-up is the first fifth of the soak ([`warmup`]): long enough for the
//! allocator's arenas, the tokio workers and the bounded buffers (power log, e-stop
//! events, event feed) to reach their working size while faults already run. The
//! allowance is what the soak itself may hold at once — its leaks until it ends them
//! ([`leak_budget`](super::schedule::leak_budget)) — plus [`SLACK`] for the
//! allocator's fragmentation. Anything that grows without bound crosses it in a long
//! soak; anything bounded does not.

use std::time::Duration;

/// Room for the allocator: freed leak blocks may stay mapped in the arena of whichever
/// worker thread freed them (glibc keeps one arena per thread) — 16 MiB covers one
/// leak's worth in each of the default tree's runtime threads.
pub const SLACK: u64 = 16 << 20;

/// The shortest warm-up.
pub const MIN_WARMUP: Duration = Duration::from_secs(5);

/// The warm-up of a soak of `length`: a fifth of it, at least [`MIN_WARMUP`].
pub fn warmup(length: Duration) -> Duration {
    (length / 5).max(MIN_WARMUP)
}

/// The RSS check over samples fed in time order.
#[derive(Debug, Clone)]
pub struct RssCheck {
    warmup: Duration,
    allowance: u64,
    warmup_peak: u64,
    peak: u64,
}

impl RssCheck {
    /// A check whose warm-up lasts `warmup` and whose allowance over the warm-up's peak
    /// is `allowance` bytes.
    pub fn new(warmup: Duration, allowance: u64) -> Self {
        Self {
            warmup,
            allowance,
            warmup_peak: 0,
            peak: 0,
        }
    }

    /// The highest sample so far, bytes.
    pub fn peak(&self) -> u64 {
        self.peak
    }

    /// The warm-up's highest sample, bytes.
    pub fn warmup_peak(&self) -> u64 {
        self.warmup_peak
    }

    /// The bound after the warm-up, bytes.
    pub fn bound(&self) -> u64 {
        self.warmup_peak.saturating_add(self.allowance)
    }

    /// Takes a sample of `bytes` resident at `at` since start.
    ///
    /// # Errors
    ///
    /// The sample is past the warm-up and above the bound.
    pub fn sample(&mut self, at: Duration, bytes: u64) -> Result<(), String> {
        self.peak = self.peak.max(bytes);
        if at <= self.warmup {
            self.warmup_peak = self.warmup_peak.max(bytes);
            return Ok(());
        }
        if bytes > self.bound() {
            return Err(format!(
                "resident memory {:.1} MiB at {:.1} s is above the bound {:.1} MiB (warm-up \
                 peak {:.1} MiB + allowance {:.1} MiB)",
                mib(bytes),
                at.as_secs_f64(),
                mib(self.bound()),
                mib(self.warmup_peak),
                mib(self.allowance)
            ));
        }
        Ok(())
    }
}

/// Bytes in MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_warmup_is_a_fifth_and_at_least_five_seconds() {
        assert_eq!(warmup(Duration::from_secs(1800)), Duration::from_secs(360));
        assert_eq!(warmup(Duration::from_secs(10)), MIN_WARMUP);
    }

    #[test]
    fn flat_memory_holds_and_growth_fails() {
        let mut c = RssCheck::new(Duration::from_secs(10), 4 * MIB);
        for s in 0..=10 {
            c.sample(Duration::from_secs(s), (20 + s % 3) * MIB)
                .unwrap();
        }
        assert_eq!(c.warmup_peak(), 22 * MIB);
        // Back down and up again within the allowance: flat.
        for s in 11..100 {
            c.sample(Duration::from_secs(s), (18 + s % 8) * MIB)
                .unwrap();
        }
        // A steady leak crosses the bound.
        let e = (100..200)
            .map(|s| c.sample(Duration::from_secs(s), (20 + (s - 100) / 4) * MIB))
            .find_map(Result::err)
            .unwrap();
        assert!(e.contains("resident memory 27.0 MiB at 128.0 s"), "{e}");
        assert!(e.contains("bound 26.0 MiB"), "{e}");
        assert_eq!(c.peak(), 27 * MIB);
    }
}
