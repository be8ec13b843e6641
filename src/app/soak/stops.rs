//! Invariant `motors_safe`: the motors are never powered under a hazard for longer than
//! the stop time.
//!
//! The check reads a trace, in time order (seconds since the start): the motors' power
//! changes (the simulator's power log), the e-stop's engages and releases (the latch),
//! and the other hazards the soak knows of (a motion-path actor exited, or was made to
//! hang or spin), each with the key of what ends it. A hazard is answered when the
//! motors read zero (at its time, or at the first power change after it) or when it
//! ends first (the e-stop releases; the actor's replacement is up): a hazard that
//! cleared within a few milliseconds needs no stop. Its stop time is the gap. A hazard
//! unanswered [`StopCheck::ceiling`] after its time, or answered later than that, is a
//! violation. While the e-stop holds, any power-on is itself a hazard.
//!
//! The simulator logs each change at its world time, rounded down to its 5 ms step, so
//! stop times are measured to that step.

use std::collections::VecDeque;

/// One item of the trace.
#[derive(Debug, Clone, PartialEq)]
pub enum Trace {
    /// The motors' power changed; `powered` when either is not zero.
    Power {
        /// Seconds since start.
        at_s: f64,
        /// Whether either motor has power.
        powered: bool,
    },
    /// The e-stop engaged.
    Engaged {
        /// Seconds since start.
        at_s: f64,
        /// Its reasons.
        reason: String,
    },
    /// The e-stop released.
    Released {
        /// Seconds since start.
        at_s: f64,
    },
    /// Another hazard: the motors must stop within the ceiling, unless it ends first.
    Hazard {
        /// Seconds since start.
        at_s: f64,
        /// What happened.
        what: String,
        /// What ends it ([`Trace::Cleared`] with this key): the actor's path.
        key: String,
    },
    /// The hazards of `key` ended: the actor at that path is running again.
    Cleared {
        /// Seconds since start.
        at_s: f64,
        /// The key of [`Trace::Hazard`].
        key: String,
    },
}

/// The key of the e-stop's hazards, which its release ends.
const ESTOP: &str = "e-stop";

impl Trace {
    /// Its time, seconds since start.
    pub fn at_s(&self) -> f64 {
        match self {
            Self::Power { at_s, .. }
            | Self::Engaged { at_s, .. }
            | Self::Released { at_s }
            | Self::Hazard { at_s, .. }
            | Self::Cleared { at_s, .. } => *at_s,
        }
    }
}

/// A hazard the motors have not yet answered.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    at_s: f64,
    what: String,
    key: String,
}

/// The stop-time check over a trace fed in time order.
#[derive(Debug, Clone)]
pub struct StopCheck {
    ceiling_s: f64,
    powered: bool,
    engaged: bool,
    pending: VecDeque<Pending>,
    hazards: u64,
    worst_s: f64,
    worst_what: String,
    /// The first hazard answered, but later than the ceiling.
    late: Option<String>,
}

impl StopCheck {
    /// A check with this stop-time ceiling, seconds; the motors start at zero.
    pub fn new(ceiling_s: f64) -> Self {
        Self {
            ceiling_s,
            powered: false,
            engaged: false,
            pending: VecDeque::new(),
            hazards: 0,
            worst_s: 0.0,
            worst_what: String::new(),
            late: None,
        }
    }

    /// The ceiling, seconds.
    pub fn ceiling(&self) -> f64 {
        self.ceiling_s
    }

    /// Hazards seen so far.
    pub fn hazards(&self) -> u64 {
        self.hazards
    }

    /// The longest stop time measured so far, seconds, and its hazard.
    pub fn worst(&self) -> (f64, &str) {
        (self.worst_s, &self.worst_what)
    }

    fn hazard(&mut self, at_s: f64, what: String, key: &str) {
        self.hazards += 1;
        if self.powered {
            self.pending.push_back(Pending {
                at_s,
                what,
                key: key.to_string(),
            });
        }
    }

    /// Answers the pending hazards `which` selects at `at_s`.
    fn answer(&mut self, at_s: f64, which: impl Fn(&Pending) -> bool) {
        let (answered, waiting) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| which(p));
        self.pending = waiting;
        for p in answered {
            let stop = (at_s - p.at_s).max(0.0);
            if stop > self.ceiling_s && self.late.is_none() {
                self.late = Some(late(stop, &p, self.ceiling_s));
            }
            if stop > self.worst_s {
                self.worst_s = stop;
                self.worst_what = p.what;
            }
        }
    }

    /// Takes the next item (items come in time order).
    pub fn feed(&mut self, item: Trace) {
        match item {
            Trace::Power { at_s, powered } => {
                if !powered {
                    self.answer(at_s, |_| true);
                }
                let was = self.powered;
                self.powered = powered;
                if powered && !was && self.engaged {
                    self.hazard(at_s, "motors powered while the e-stop holds".into(), ESTOP);
                }
            }
            Trace::Engaged { at_s, reason } => {
                self.engaged = true;
                self.hazard(at_s, format!("e-stop: {reason}"), ESTOP);
            }
            Trace::Released { at_s } => {
                self.engaged = false;
                self.answer(at_s, |p| p.key == ESTOP);
            }
            Trace::Hazard { at_s, what, key } => self.hazard(at_s, what, &key),
            Trace::Cleared { at_s, key } => self.answer(at_s, |p| p.key == key),
        }
    }

    /// Checks that, with the trace complete up to `now_s`, no hazard has waited longer
    /// than the ceiling.
    ///
    /// # Errors
    ///
    /// The oldest hazard still unanswered after the ceiling, and how long it has waited.
    pub fn check(&self, now_s: f64) -> Result<(), String> {
        if let Some(late) = &self.late {
            return Err(late.clone());
        }
        match self.pending.front() {
            Some(p) if now_s - p.at_s > self.ceiling_s => {
                Err(late(now_s - p.at_s, p, self.ceiling_s))
            }
            _ => Ok(()),
        }
    }
}

fn late(waited_s: f64, p: &Pending, ceiling_s: f64) -> String {
    format!(
        "the motors were still powered {:.0} ms after {} at {:.3} s (ceiling {:.0} ms)",
        waited_s * 1e3,
        p.what,
        p.at_s,
        ceiling_s * 1e3
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn power(at_s: f64, powered: bool) -> Trace {
        Trace::Power { at_s, powered }
    }

    fn engaged(at_s: f64) -> Trace {
        Trace::Engaged {
            at_s,
            reason: "stale ultrasonic".into(),
        }
    }

    #[test]
    fn a_stop_within_the_ceiling_holds_and_is_measured() {
        let mut c = StopCheck::new(0.25);
        for item in [power(0.5, true), engaged(1.0), power(1.04, false)] {
            c.feed(item);
        }
        c.check(10.0).unwrap();
        let (worst, what) = c.worst();
        assert!((worst - 0.04).abs() < 1e-9, "{worst}");
        assert_eq!(what, "e-stop: stale ultrasonic");
        assert_eq!(c.hazards(), 1);
    }

    #[test]
    fn motors_already_at_zero_stop_at_once() {
        let mut c = StopCheck::new(0.25);
        c.feed(Trace::Hazard {
            at_s: 1.0,
            what: "root/control/motion exited".into(),
            key: "root/control/motion".into(),
        });
        c.check(5.0).unwrap();
        assert_eq!(c.worst().0, 0.0);
    }

    #[test]
    fn motors_still_powered_after_the_ceiling_fail() {
        let mut c = StopCheck::new(0.25);
        c.feed(power(0.5, true));
        c.feed(engaged(1.0));
        c.check(1.2).unwrap();
        let e = c.check(1.3).unwrap_err();
        assert!(
            e.contains("still powered 300 ms after e-stop: stale ultrasonic"),
            "{e}"
        );
        // A late stop still fails, even when it is in the trace before the check.
        c.feed(power(1.4, false));
        assert!(c.worst().0 > c.ceiling());
        let e = c.check(1.4).unwrap_err();
        assert!(e.contains("still powered 400 ms after"), "{e}");
    }

    #[test]
    fn powering_while_the_estop_holds_is_a_hazard() {
        let mut c = StopCheck::new(0.25);
        for item in [engaged(1.0), power(1.1, true)] {
            c.feed(item);
        }
        let e = c.check(1.5).unwrap_err();
        assert!(e.contains("motors powered while the e-stop holds"), "{e}");
        // After the release, power is what the robot is for.
        let mut c = StopCheck::new(0.25);
        for item in [
            engaged(1.0),
            Trace::Released { at_s: 1.05 },
            power(1.1, true),
        ] {
            c.feed(item);
        }
        c.check(5.0).unwrap();
    }

    #[test]
    fn a_hazard_that_ends_within_the_ceiling_needs_no_stop() {
        let exited = |at_s| Trace::Hazard {
            at_s,
            what: "root/drivers/steering exited (killed)".into(),
            key: "root/drivers/steering".into(),
        };
        let cleared = |at_s, key: &str| Trace::Cleared {
            at_s,
            key: key.into(),
        };
        let mut c = StopCheck::new(0.25);
        let items = [
            power(0.5, true),
            engaged(1.0),
            Trace::Released { at_s: 1.003 },
            exited(2.0),
            cleared(2.002, "root/drivers/steering"),
        ];
        for item in items {
            c.feed(item);
        }
        c.check(10.0).unwrap();
        assert!((c.worst().0 - 0.003).abs() < 1e-9, "{:?}", c.worst());
        // Another actor's restart ends nothing; a replacement after the ceiling fails.
        let mut c = StopCheck::new(0.25);
        for item in [power(0.5, true), exited(1.0), cleared(1.1, "root/x")] {
            c.feed(item);
        }
        assert!(c.check(1.3).is_err());
        let mut c = StopCheck::new(0.25);
        for item in [
            power(0.5, true),
            exited(1.0),
            cleared(1.3, "root/drivers/steering"),
        ] {
            c.feed(item);
        }
        let e = c.check(1.3).unwrap_err();
        assert!(
            e.contains("300 ms after root/drivers/steering exited (killed)"),
            "{e}"
        );
    }
}
