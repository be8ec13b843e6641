//! Handler time: the CPU's time-stamp counter, calibrated against the thread CPU clock.
//!
//! Each poll of a handler is timed with two TSC reads (~10 ns each); the thread CPU clock
//! costs a syscall (~400 ns) per read, more than a whole message. But the TSC measures
//! wall time: if the OS preempts a thread mid-poll, that time would count too. So each
//! worker thread calibrates: over a window of ~100 ms it sums the TSC time its polls
//! took, then reads its own CPU clock once and derives
//! `factor = min(1, thread CPU time / poll time)` for the next window. Poll times are
//! scaled by it: on an uncontended thread the factor is 1; on a thread that only got
//! half a core, its polls count for half. Per thread, one syscall per window.

use std::cell::Cell;
use std::sync::OnceLock;

#[inline]
fn clock() -> &'static quanta::Clock {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A raw timestamp, in TSC ticks.
#[inline]
pub(crate) fn now() -> u64 {
    clock().raw()
}

/// Seconds in `ticks` raw TSC ticks.
pub(crate) fn seconds(ticks: u64) -> f64 {
    nanos(ticks) as f64 / 1e9
}

fn nanos(ticks: u64) -> u64 {
    clock().delta_as_nanos(0, ticks)
}

/// How long a calibration window lasts.
const WINDOW_NS: u64 = 100_000_000;
/// Fixed-point one (16 fractional bits).
const ONE: u64 = 1 << 16;

/// A thread's calibration: the current window and the factor from the last one.
struct Calibration {
    /// Raw TSC time at which the current window ends (0: not started).
    window_end: Cell<u64>,
    window_cpu_ns: Cell<u64>,
    window_poll_ticks: Cell<u64>,
    factor: Cell<u64>,
}

thread_local! {
    static CALIBRATION: Calibration = const {
        Calibration {
            window_end: Cell::new(0),
            window_cpu_ns: Cell::new(0),
            window_poll_ticks: Cell::new(0),
            factor: Cell::new(ONE),
        }
    };
}

/// The window's length in raw TSC ticks.
fn window_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // Ticks per window from the clock's own scale: nanos(t) is linear in t.
        let probe = 1u64 << 32;
        let ns = nanos(probe).max(1);
        (u128::from(WINDOW_NS) * u128::from(probe) / u128::from(ns)) as u64
    })
}

/// This thread's CPU time in nanoseconds (`CLOCK_THREAD_CPUTIME_ID`); `None` if the
/// platform does not say.
fn thread_cpu_ns() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes into it.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The calibration factor (16-bit fixed point) for a window in which the thread used
/// `cpu_ns` of CPU and its polls took `poll_ns` by the TSC: at most one.
pub(crate) fn factor(cpu_ns: u64, poll_ns: u64) -> u64 {
    if poll_ns == 0 {
        return ONE;
    }
    ((u128::from(cpu_ns) << 16) / u128::from(poll_ns)).min(u128::from(ONE)) as u64
}

/// A poll that took `ticks` raw TSC ticks, ending at raw time `end`, in calibrated ticks
/// for this thread; recalibrates when the window is over. The hot path is an add to a
/// thread-local, a compare, and a multiply only while the factor is below one.
#[inline]
pub(crate) fn calibrated(ticks: u64, end: u64) -> u64 {
    CALIBRATION
        .try_with(|cal| {
            // A window's ticks are far from overflowing: a plain add.
            let polled = cal.window_poll_ticks.get().wrapping_add(ticks);
            cal.window_poll_ticks.set(polled);
            if end >= cal.window_end.get() {
                recalibrate(cal, end);
            }
            let factor = cal.factor.get();
            if factor == ONE {
                ticks
            } else {
                ((u128::from(ticks) * u128::from(factor)) >> 16) as u64
            }
        })
        .unwrap_or(ticks)
}

/// Ends a window: the factor from the thread's CPU time against its polls' TSC time.
#[cold]
#[inline(never)]
fn recalibrate(cal: &Calibration, end: u64) {
    if let Some(cpu_ns) = thread_cpu_ns() {
        if cal.window_end.get() != 0 {
            let cpu = cpu_ns.saturating_sub(cal.window_cpu_ns.get());
            cal.factor
                .set(factor(cpu, nanos(cal.window_poll_ticks.get())));
        }
        cal.window_cpu_ns.set(cpu_ns);
    }
    cal.window_end.set(end.saturating_add(window_ticks()));
    cal.window_poll_ticks.set(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_is_cpu_over_poll_time_at_most_one() {
        assert_eq!(factor(50, 100), ONE / 2, "half a core: polls count half");
        assert_eq!(factor(150, 100), ONE, "never more than the TSC measured");
        assert_eq!(factor(0, 0), ONE);
        assert_eq!(factor(0, 100), 0);
    }

    #[test]
    fn thread_cpu_clock_advances_with_work() {
        let before = thread_cpu_ns().unwrap();
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        assert!(thread_cpu_ns().unwrap() > before);
    }

    #[test]
    fn calibrated_never_exceeds_raw() {
        for i in 0..1000u64 {
            let ticks = 1000 + i;
            assert!(calibrated(ticks, now()) <= ticks);
        }
    }

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
