//! The e-stop as latched state: which hazards hold now, and every change of a run.
//!
//! One [`EStopLatch`] is made before the actor tree and shared by everything that sets
//! or reads the e-stop: the watchdog sets and clears its hazards, shutdown sets its own,
//! the motors driver reads it on every command and in `pre_start`, the motion controller
//! starts from it, the dead-man watches it. Because it lives outside the actors, no
//! restart can reset it: a restarted motors driver or controller finds it engaged.
//!
//! It is engaged while at least one reason is set, and released only when every reason
//! has been cleared by whoever set it. [`EStopLatch::engaged`] is one atomic load, cheap
//! enough for every motor command.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use serde::Serialize;

/// One engage or release of the e-stop, for the run report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EStopEvent {
    /// Seconds since start.
    pub at_s: f64,
    /// Engaged or released.
    pub engaged: bool,
    /// Why: the reasons that hold (engaged), or those that cleared (released).
    pub reason: String,
}

/// The reason key (and bus reason) of the e-stop a shutdown engages before anything
/// else stops.
pub const SHUTDOWN: &str = "shutdown";

/// Events kept for the run report; older ones are counted, not kept, so a hazard that
/// comes and goes for hours costs bounded memory.
pub const EVENTS_KEPT: usize = 256;

/// The shared e-stop: its reasons and its recent changes. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct EStopLatch(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    engaged: AtomicBool,
    state: Mutex<State>,
    dropped: AtomicU64,
    observer: OnceLock<Observer>,
}

/// Told of every change as it is made ([`EStopLatch::observe`]).
struct Observer(Box<dyn Fn(&EStopEvent) + Send + Sync>);

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

#[derive(Debug, Default)]
struct State {
    /// Reason key (`stale ultrasonic`, `battery low`, `shutdown`) → its detail.
    reasons: BTreeMap<String, String>,
    events: VecDeque<EStopEvent>,
}

/// What a call to [`EStopLatch::set`] or [`EStopLatch::clear`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The e-stop was released and is now engaged; the reasons that hold.
    Engaged(String),
    /// The e-stop was engaged and is now released; the reasons that cleared last.
    Released(String),
    /// Engaged before and after, or released before and after.
    None,
}

impl EStopLatch {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the motors must stay stopped: one atomic load.
    pub fn engaged(&self) -> bool {
        self.0.engaged.load(Ordering::Acquire)
    }

    /// Sets reason `key` with its `detail` (or updates the detail), at `at_s` seconds
    /// since start.
    pub fn set(&self, key: &str, detail: String, at_s: f64) -> Change {
        let mut s = self.state();
        let was = !s.reasons.is_empty();
        s.reasons.insert(key.to_string(), detail);
        self.0.engaged.store(true, Ordering::Release);
        if was {
            return Change::None;
        }
        let reason = summary(&s.reasons);
        self.push(&mut s, at_s, true, reason.clone());
        Change::Engaged(reason)
    }

    /// Clears reason `key`; the e-stop releases when it was the last one.
    pub fn clear(&self, key: &str, at_s: f64) -> Change {
        if !self.engaged() {
            // Nothing is set (the common case, 100 times a second): no lock.
            return Change::None;
        }
        let mut s = self.state();
        let Some(detail) = s.reasons.remove(key) else {
            return Change::None;
        };
        if !s.reasons.is_empty() {
            return Change::None;
        }
        self.0.engaged.store(false, Ordering::Release);
        let reason = format!("cleared: {detail}");
        self.push(&mut s, at_s, false, reason.clone());
        Change::Released(reason)
    }

    /// Whether reason `key` is set.
    pub fn holds(&self, key: &str) -> bool {
        self.state().reasons.contains_key(key)
    }

    /// The reasons that hold now, as one line (`None` when released).
    pub fn reasons(&self) -> Option<String> {
        let s = self.state();
        (!s.reasons.is_empty()).then(|| summary(&s.reasons))
    }

    /// Calls `observer` with every later change, in order, as it is made (under the
    /// latch's lock: it must not wait, nor touch the latch). One observer per latch
    /// (the audit trail); returns false, leaving the first, if one was already set.
    pub fn observe(&self, observer: impl Fn(&EStopEvent) + Send + Sync + 'static) -> bool {
        self.0.observer.set(Observer(Box::new(observer))).is_ok()
    }

    fn push(&self, s: &mut State, at_s: f64, engaged: bool, reason: String) {
        metrics::gauge!(crate::core::metrics::ESTOP).set(if engaged { 1.0 } else { 0.0 });
        if s.events.len() == EVENTS_KEPT {
            s.events.pop_front();
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
        }
        let event = EStopEvent {
            at_s,
            engaged,
            reason,
        };
        if let Some(observer) = self.0.observer.get() {
            (observer.0)(&event);
        }
        s.events.push_back(event);
    }

    /// The latest change; its `engaged` says whether the e-stop holds now.
    pub fn latest(&self) -> Option<EStopEvent> {
        self.state().events.back().cloned()
    }

    /// The last [`EVENTS_KEPT`] changes, oldest first.
    pub fn events(&self) -> Vec<EStopEvent> {
        self.state().events.iter().cloned().collect()
    }

    /// Changes no longer kept (older than the last [`EVENTS_KEPT`]).
    pub fn events_dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}

fn summary(reasons: &BTreeMap<String, String>) -> String {
    reasons.values().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engaged_until_every_reason_clears() {
        let latch = EStopLatch::default();
        assert!(!latch.engaged());
        assert_eq!(
            latch.set("battery low", "battery low (6.1 V)".into(), 1.0),
            Change::Engaged("battery low (6.1 V)".into())
        );
        assert_eq!(
            latch.set("stale ultrasonic", "stale ultrasonic".into(), 1.5),
            Change::None
        );
        assert_eq!(latch.clear("battery low", 2.0), Change::None);
        assert!(latch.engaged(), "the ranger is still stale");
        assert_eq!(latch.clear("not set", 2.0), Change::None);
        assert_eq!(
            latch.clear("stale ultrasonic", 3.0),
            Change::Released("cleared: stale ultrasonic".into())
        );
        assert!(!latch.engaged());
        let events = latch.events();
        assert_eq!(events.len(), 2);
        assert!(events[0].engaged && !events[1].engaged);
    }

    #[test]
    fn clones_share_the_state() {
        let latch = EStopLatch::default();
        let other = latch.clone();
        latch.set("shutdown", "shutdown".into(), 0.0);
        assert!(other.engaged() && other.holds("shutdown"));
        assert_eq!(other.reasons().as_deref(), Some("shutdown"));
    }

    #[test]
    fn the_event_log_is_bounded() {
        let latch = EStopLatch::default();
        for i in 0..1000 {
            latch.set("battery low", "battery low".into(), f64::from(i));
            latch.clear("battery low", f64::from(i) + 0.5);
        }
        assert_eq!(latch.events().len(), EVENTS_KEPT);
        assert_eq!(latch.events_dropped(), 2000 - EVENTS_KEPT as u64);
        assert_eq!(latch.latest().unwrap().at_s, 999.5);
    }

    #[test]
    fn the_observer_sees_every_change_in_order_and_only_one_is_set() {
        let latch = EStopLatch::default();
        let (tx, rx) = std::sync::mpsc::channel();
        assert!(latch.observe(move |e| tx.send((e.engaged, e.reason.clone())).unwrap()));
        assert!(!latch.observe(|_| {}), "a second observer is refused");
        latch.set("battery low", "battery low (6.1 V)".into(), 1.0);
        latch.set("shutdown", "shutdown".into(), 2.0); // no change: still engaged
        latch.clear("battery low", 3.0);
        latch.clear("shutdown", 4.0);
        let seen: Vec<_> = rx.try_iter().collect();
        assert_eq!(
            seen,
            vec![
                (true, "battery low (6.1 V)".to_string()),
                (false, "cleared: shutdown".to_string())
            ]
        );
    }
}
