//! Handler time, read from the CPU's time-stamp counter.
//!
//! Each poll of a handler is timed with two TSC reads (~10 ns each through `quanta`);
//! the thread CPU clock would cost a syscall (~400 ns) per read, more than a whole
//! message. The sum of raw ticks is converted to seconds only when read. What it
//! measures is wall time *inside* handler polls: on an idle core that is the handler's
//! CPU time; if the OS preempts a thread mid-poll, the preempted time counts too.

use std::sync::OnceLock;

fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A raw timestamp, in TSC ticks.
pub(crate) fn now() -> u64 {
    clock().raw()
}

/// Seconds in `ticks` raw TSC ticks.
pub(crate) fn seconds(ticks: u64) -> f64 {
    clock().delta_as_nanos(0, ticks) as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_is_measured() {
        let t0 = now();
        let wall = std::time::Instant::now();
        while wall.elapsed() < std::time::Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let s = seconds(now() - t0);
        // A ratio, not a wall-clock assertion: TSC time tracks the std clock closely.
        let ratio = s / wall.elapsed().as_secs_f64();
        assert!((0.8..1.25).contains(&ratio), "{ratio}");
    }
}
