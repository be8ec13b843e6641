//! Restart intensity: at most `max` restarts within any `period`.
//!
//! OTP keeps a list of restart times and rebuilds it (walking it whole) on each restart.
//! Here the times sit in a queue, oldest first: a restart drops the ones that left the
//! window from the front and pushes itself at the back, so each time is pushed and popped
//! once — O(1) amortised per restart however long the history — and the queue never
//! holds more than `max` entries.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The sliding window of recent restart times of one supervisor.
#[derive(Debug, Clone)]
pub(crate) struct Intensity {
    max: u32,
    period: Duration,
    recent: VecDeque<Instant>,
}

impl Intensity {
    /// A window that allows `max` restarts within `period`.
    pub(crate) fn new(max: u32, period: Duration) -> Self {
        Self {
            max,
            period,
            recent: VecDeque::with_capacity((max as usize).min(64)),
        }
    }

    /// Records a restart at `now`; `false` when it is one more than the window allows,
    /// i.e. the supervisor must give up and escalate.
    ///
    /// As in OTP, a restart exactly `period` after an earlier one still counts as within it.
    pub(crate) fn add_restart(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.recent.front() {
            if now.saturating_duration_since(oldest) <= self.period {
                break;
            }
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max as usize {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn allows_max_restarts_within_period() {
        let t = Instant::now();
        let mut w = Intensity::new(3, Duration::from_secs(5));
        assert!(w.add_restart(at(t, 0)));
        assert!(w.add_restart(at(t, 1000)));
        assert!(w.add_restart(at(t, 2000)));
        assert!(
            !w.add_restart(at(t, 3000)),
            "4th restart within 5 s exceeds 3"
        );
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let t = Instant::now();
        let mut w = Intensity::new(2, Duration::from_secs(5));
        assert!(w.add_restart(at(t, 0)));
        assert!(w.add_restart(at(t, 1000)));
        assert!(
            w.add_restart(at(t, 5001)),
            "the first restart is out of the window"
        );
        assert!(
            !w.add_restart(at(t, 5500)),
            "1000, 5001 and 5500 are within 5 s"
        );
    }

    #[test]
    fn window_edge_is_inclusive() {
        let t = Instant::now();
        let mut w = Intensity::new(1, Duration::from_secs(5));
        assert!(w.add_restart(at(t, 0)));
        assert!(!w.add_restart(at(t, 5000)));
        let mut w = Intensity::new(1, Duration::from_secs(5));
        assert!(w.add_restart(at(t, 0)));
        assert!(w.add_restart(at(t, 5001)));
    }

    #[test]
    fn zero_intensity_never_restarts() {
        let mut w = Intensity::new(0, Duration::from_secs(5));
        assert!(!w.add_restart(Instant::now()));
    }

    #[test]
    fn long_history_stays_bounded() {
        let t = Instant::now();
        let mut w = Intensity::new(3, Duration::from_secs(1));
        for i in 0..10_000u64 {
            assert!(w.add_restart(at(t, i * 400)));
        }
        assert_eq!(w.recent.len(), 3);
    }

    #[test]
    fn huge_intensity_allocates_only_what_is_used() {
        let t = Instant::now();
        let mut w = Intensity::new(u32::MAX, Duration::from_millis(10));
        for i in 0..1000u64 {
            assert!(w.add_restart(at(t, i)));
        }
        assert!(w.recent.len() <= 11, "{}", w.recent.len());
    }
}
