//! The gate in front of a managed actor's handler: open, suspended or throttled.
//!
//! - **Suspend** holds the next message before its handler runs until resumed: nothing
//!   is dropped and the order is kept, because the actor handles one message at a time
//!   and the rest wait in its mailbox. (A suspended actor still answers a kill.)
//! - **Throttle** limits the actor to `rate` messages per second (a token bucket with a
//!   burst of one second's worth) and/or a CPU duty cycle: after a poll that took `t`,
//!   it waits `t · (1/duty − 1)`, so its handlers use at most `duty` of a core.
//!
//! The supervisor flips the gate from another thread; the actor reads it with one
//! relaxed atomic load per message while it is open. The same byte carries two flags for
//! fault injection ([`crate::fault`]): a fault waiting to be carried out, and a flood in
//! progress. Either makes the gate read as not open, so the message takes the slow path,
//! where the fault is picked up; the mode (open, suspended, throttled) is kept apart.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

const OPEN: u8 = 0;
const SUSPENDED: u8 = 1;
const THROTTLED: u8 = 2;
/// The bits of the state that hold the mode (open, suspended, throttled).
const MODE: u8 = 0b11;
/// Flag: a fault waits to be carried out by the actor.
pub(crate) const FAULT: u8 = 0b100;
/// Flag: a flood is in progress; each message costs [`crate::fault::FLOOD_ITEM_COST`].
pub(crate) const FLOOD: u8 = 0b1000;

/// A wait imposed on a running handler between two of its polls.
pub(crate) type Held<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// The shared half of the gate (in the actor's counters).
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: AtomicU8,
    resumed: Notify,
    /// f64 bits: messages per second allowed; 0 = no rate limit.
    rate: AtomicU64,
    /// f64 bits: share of a core allowed; 0 = no duty limit.
    duty: AtomicU64,
}

/// The actor's own half: its token bucket.
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Default for Bucket {
    fn default() -> Self {
        Self {
            tokens: 0.0,
            refilled: Instant::now(),
        }
    }
}

impl Gate {
    pub(crate) fn suspend(&self) {
        self.set_mode(SUSPENDED);
    }

    pub(crate) fn resume(&self) {
        self.set_mode(OPEN);
        self.resumed.notify_waiters();
    }

    /// Sets the mode, keeping the fault flags.
    fn set_mode(&self, mode: u8) {
        let _ = self
            .state
            .fetch_update(Ordering::Release, Ordering::Relaxed, |s| {
                Some((s & !MODE) | mode)
            });
    }

    /// The mode, without the fault flags.
    fn mode(&self) -> u8 {
        self.state.load(Ordering::Acquire) & MODE
    }

    /// Raises a fault flag ([`FAULT`] or [`FLOOD`]): the next message takes the slow path.
    pub(crate) fn raise(&self, flag: u8) {
        self.state.fetch_or(flag, Ordering::Release);
    }

    /// Lowers a fault flag.
    pub(crate) fn lower(&self, flag: u8) {
        self.state.fetch_and(!flag, Ordering::Release);
    }

    /// Whether the mode is open (neither suspended nor throttled), fault flags aside.
    pub(crate) fn is_unrestricted(&self) -> bool {
        self.mode() == OPEN
    }

    /// Whether `flag` is raised.
    pub(crate) fn is_raised(&self, flag: u8) -> bool {
        self.state.load(Ordering::Acquire) & flag != 0
    }

    /// Limits to `rate` messages/s and `duty` of a core (either may be `None`).
    pub(crate) fn throttle(&self, rate: Option<f64>, duty: Option<f64>) {
        self.rate
            .store(rate.unwrap_or(0.0).to_bits(), Ordering::Relaxed);
        self.duty
            .store(duty.unwrap_or(0.0).to_bits(), Ordering::Relaxed);
        self.set_mode(THROTTLED);
        self.resumed.notify_waiters();
    }

    /// Whether messages pass freely (the fast path: one relaxed load).
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Ordering::Relaxed) == OPEN
    }

    /// `open`, `suspended` or `throttled`.
    pub(crate) fn state_name(&self) -> &'static str {
        match self.mode() {
            SUSPENDED => "suspended",
            THROTTLED => "throttled",
            _ => "open",
        }
    }

    /// Waits until the next message may be handled.
    pub(crate) async fn pass(&self, bucket: &mut Bucket) {
        loop {
            match self.mode() {
                OPEN => return,
                SUSPENDED => {
                    let resumed = self.resumed.notified();
                    // Re-check after registering, so a resume in between is not missed.
                    if self.mode() == SUSPENDED {
                        resumed.await;
                    }
                }
                _ => {
                    let rate = f64::from_bits(self.rate.load(Ordering::Relaxed));
                    if rate > 0.0 {
                        if let Some(wait) = bucket.take(rate, Instant::now()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    return;
                }
            }
        }
    }

    /// What to wait for before polling a running handler again: resumption while
    /// suspended, the duty pause while throttled. This is what stops a handler that never
    /// returns (but yields) from ignoring its gate. The wait holds `gate` (a reference, or
    /// an owner such as an `Arc`, for a wait that must not borrow).
    pub(crate) fn between_polls<'a, G>(gate: G, busy: Duration) -> Option<Held<'a>>
    where
        G: std::ops::Deref<Target = Self> + Send + 'a,
    {
        match gate.mode() {
            SUSPENDED => Some(Box::pin(async move {
                loop {
                    let resumed = gate.resumed.notified();
                    if gate.mode() != SUSPENDED {
                        return;
                    }
                    resumed.await;
                }
            })),
            THROTTLED => gate
                .duty_pause(busy)
                .map(|pause| Box::pin(tokio::time::sleep(pause)) as Held<'a>),
            _ => None,
        }
    }

    /// The pause owed after a poll that took `busy`, under a duty limit.
    pub(crate) fn duty_pause(&self, busy: Duration) -> Option<Duration> {
        if self.mode() != THROTTLED {
            return None;
        }
        let duty = f64::from_bits(self.duty.load(Ordering::Relaxed));
        (duty > 0.0 && duty < 1.0).then(|| busy.mul_f64(1.0 / duty - 1.0))
    }
}

impl Bucket {
    /// Takes one token at `now` for a bucket refilled at `rate`/s (capacity: one second);
    /// returns how long to wait first when empty.
    pub(crate) fn take(&mut self, rate: f64, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
        self.refilled = now;
        self.tokens -= 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_spaces_messages_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: 0.0,
            refilled: t0,
        };
        // 10 msg/s: each message waits 100 ms more than the last when sent at once.
        let waits: Vec<_> = (0..3).map(|_| b.take(10.0, t0)).collect();
        assert_eq!(waits[0], Some(Duration::from_millis(100)));
        assert_eq!(waits[2], Some(Duration::from_millis(300)));
        // After a quiet second, a burst of up to 10 passes without waiting.
        let later = t0 + Duration::from_secs(2);
        let mut b = Bucket {
            tokens: 0.0,
            refilled: t0,
        };
        assert!((0..10).all(|_| b.take(10.0, later).is_none()));
        assert!(b.take(10.0, later).is_some());
    }

    #[test]
    fn duty_pause_scales_with_busy_time() {
        let g = Gate::default();
        assert_eq!(g.duty_pause(Duration::from_millis(1)), None);
        g.throttle(None, Some(0.25));
        assert_eq!(
            g.duty_pause(Duration::from_millis(1)),
            Some(Duration::from_millis(3))
        );
        g.resume();
        assert_eq!(g.duty_pause(Duration::from_millis(1)), None);
    }

    #[test]
    fn fault_flags_close_the_gate_and_keep_the_mode() {
        let g = Gate::default();
        g.raise(FAULT);
        assert!(!g.is_open());
        assert_eq!(g.state_name(), "open");
        g.throttle(None, Some(0.5));
        assert_eq!(g.state_name(), "throttled");
        assert!(g.is_raised(FAULT));
        g.resume();
        g.lower(FAULT);
        assert!(g.is_open());
        g.raise(FLOOD);
        g.suspend();
        g.lower(FLOOD);
        assert_eq!(g.state_name(), "suspended");
    }
}
