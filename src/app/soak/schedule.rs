//! The soak's fault schedule: what happens to which actor when, drawn from one seed.
//!
//! The schedule is a pure function of the seed, the run's length and the list of
//! targets (the tree's workers, from the config): the same three give the same steps,
//! bit for bit, so `nevil soak --seed S` replays a failing run's faults. What the tree
//! then does with them depends on timing, as it would on the robot.
//!
//! Steps come every [`GAP_MIN`]–[`GAP_MAX`] (uniform). Each picks one of ten kinds with
//! equal odds: the seven faults of the actor system (`panic`, `error`, `exit`, `hang`,
//! `spin`, `leak`, `flood`), `unplug` (a simulated sensor stops answering: the e-stop
//! engages), a hand-made suspend of a worker, or a round of the suspend/resume probe.
//! A lasting fault (hang, spin, leak, flood, unplug, suspend) gets a dwell of
//! [`DWELL_MIN`]–[`DWELL_MAX`], after which the soak ends it (see `drive`).

use std::time::Duration;

use serde::Serialize;

use crate::app::inject::Fault;

/// The shortest gap between two steps.
pub const GAP_MIN: Duration = Duration::from_millis(500);
/// The longest gap between two steps. With [`GAP_MIN`], about 0.7 steps a second,
/// most of them a restart: on the default tree (five restarts in ten seconds per
/// supervisor) a group escalates now and then, and the root never.
pub const GAP_MAX: Duration = Duration::from_millis(2500);
/// The shortest dwell of a lasting fault.
pub const DWELL_MIN: Duration = Duration::from_millis(200);
/// The longest dwell of a lasting fault: a leak holds at most ten of its 1 MiB steps.
pub const DWELL_MAX: Duration = Duration::from_millis(1000);
/// The fewest messages of one probe round.
pub const PROBE_MIN: u32 = 10;
/// The most messages of one probe round: the burst of the probe's quota group
/// (standard: mailbox 64 / 96 / 128), so a round tests the gate and not the quota — at
/// the hard limit the quota restarts the probe, and its mailbox goes with it.
pub const PROBE_MAX: u32 = 96;

/// The sensor drivers, which `unplug` applies to.
pub const SENSORS: [&str; 3] = ["ultrasonic", "grayscale", "battery"];

/// Workers a hand-made suspend never targets: the safety-critical actors, which quotas
/// never suspend either (docs/safety.md). The soak hangs and spins them instead.
pub const CRITICAL: [&str; 5] = ["motors", "steering", "motion", "watchdog", "system_monitor"];

/// What one step does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Inject `fault` into the worker at `target`; a lasting one ends after `dwell`.
    Fault {
        /// The worker's path.
        target: String,
        /// The fault.
        #[serde(serialize_with = "fault_name")]
        fault: Fault,
        /// How long a lasting fault is left to act (zero for a one-shot fault).
        dwell: Duration,
    },
    /// Suspend the worker at `target` by hand, resume it after `dwell`.
    Suspend {
        /// The worker's path.
        target: String,
        /// How long it stays suspended.
        dwell: Duration,
    },
    /// Suspend the probe, send it `messages` numbered messages, resume it after `dwell`,
    /// and check it handles them all, in order.
    Probe {
        /// How many.
        messages: u32,
        /// How long it stays suspended.
        dwell: Duration,
    },
}

fn fault_name<S: serde::Serializer>(fault: &Fault, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(fault.name())
}

impl Action {
    /// The kind's name, as the summary counts it: a fault's name, `suspend`, `probe`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Fault { fault, .. } => fault.name(),
            Self::Suspend { .. } => "suspend",
            Self::Probe { .. } => "probe",
        }
    }
}

/// One step: an action at a time since the start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// When, after the start.
    pub at: Duration,
    /// What.
    pub action: Action,
}

/// Why no schedule can be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// There is no worker to inject faults into.
    #[error("the tree has no worker to inject faults into")]
    NoTargets,
}

/// Every fault kind the soak draws, `unplug` last; a step draws among these, `suspend`
/// and `probe`.
const FAULTS: [Fault; 8] = [
    Fault::Actor(nevil_actors::Fault::Panic),
    Fault::Actor(nevil_actors::Fault::Error),
    Fault::Actor(nevil_actors::Fault::Exit),
    Fault::Actor(nevil_actors::Fault::Hang),
    Fault::Actor(nevil_actors::Fault::Spin),
    Fault::Actor(nevil_actors::Fault::Leak),
    Fault::Actor(nevil_actors::Fault::Flood),
    Fault::Unplug,
];

/// Whether `fault` lasts until something ends it (rather than acting once).
pub fn is_lasting(fault: Fault) -> bool {
    use nevil_actors::Fault as F;
    matches!(
        fault,
        Fault::Unplug | Fault::Actor(F::Hang | F::Spin | F::Leak | F::Flood)
    )
}

/// Whether the worker at `path` is one of the [`CRITICAL`] ones.
pub fn is_critical(path: &str) -> bool {
    CRITICAL.iter().any(|c| path.rsplit('/').next() == Some(*c))
}

/// The steps of a soak of `length` with `seed`, over the workers at `targets` (paths, in
/// the tree's start order), first step after one gap.
///
/// # Errors
///
/// [`ScheduleError::NoTargets`] when `targets` is empty.
pub fn steps(seed: u64, length: Duration, targets: &[String]) -> Result<Vec<Step>, ScheduleError> {
    if targets.is_empty() {
        return Err(ScheduleError::NoTargets);
    }
    let sensors: Vec<&String> = targets
        .iter()
        .filter(|t| SENSORS.iter().any(|s| t.rsplit('/').next() == Some(*s)))
        .collect();
    let suspendable: Vec<&String> = targets.iter().filter(|t| !is_critical(t)).collect();
    let mut rng = fastrand::Rng::with_seed(seed);
    let between = |rng: &mut fastrand::Rng, lo: Duration, hi: Duration| {
        let span = u64::try_from((hi - lo).as_millis()).unwrap_or(u64::MAX);
        lo + Duration::from_millis(rng.u64(0..=span))
    };
    let mut out = Vec::new();
    let mut at = Duration::ZERO;
    loop {
        at += between(&mut rng, GAP_MIN, GAP_MAX);
        if at >= length {
            return Ok(out);
        }
        let dwell = between(&mut rng, DWELL_MIN, DWELL_MAX);
        let kind = rng.usize(0..FAULTS.len() + 2);
        let action = match FAULTS.get(kind) {
            Some(&Fault::Unplug) if !sensors.is_empty() => Action::Fault {
                target: sensors[rng.usize(0..sensors.len())].clone(),
                fault: Fault::Unplug,
                dwell,
            },
            // No sensor driver in this tree: a panic instead, so the draw stays one.
            Some(&Fault::Unplug) => Action::Fault {
                target: targets[rng.usize(0..targets.len())].clone(),
                fault: Fault::Actor(nevil_actors::Fault::Panic),
                dwell: Duration::ZERO,
            },
            Some(&fault) => Action::Fault {
                target: targets[rng.usize(0..targets.len())].clone(),
                fault,
                dwell: if is_lasting(fault) {
                    dwell
                } else {
                    Duration::ZERO
                },
            },
            None if kind == FAULTS.len() && !suspendable.is_empty() => Action::Suspend {
                target: suspendable[rng.usize(0..suspendable.len())].clone(),
                dwell,
            },
            None => Action::Probe {
                messages: rng.u32(PROBE_MIN..=PROBE_MAX),
                dwell,
            },
        };
        out.push(Step { at, action });
    }
}

/// The most memory the schedule's leaks hold at any one time, if each holds
/// [`nevil_actors::fault::LEAK_STEP`] more every
/// [`LEAK_PERIOD`](nevil_actors::fault::LEAK_PERIOD) until its dwell ends: the part of
/// the RSS bound that the soak itself puts there.
pub fn leak_budget(steps: &[Step]) -> u64 {
    let per_leak = |dwell: Duration| {
        let period = nevil_actors::fault::LEAK_PERIOD.as_millis().max(1);
        let n = dwell.as_millis() / period + 1;
        u64::try_from(n).unwrap_or(u64::MAX) * nevil_actors::fault::LEAK_STEP as u64
    };
    let leaks: Vec<(Duration, Duration, u64)> = steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Fault {
                fault: Fault::Actor(nevil_actors::Fault::Leak),
                dwell,
                ..
            } => Some((s.at, s.at + *dwell, per_leak(*dwell))),
            _ => None,
        })
        .collect();
    leaks
        .iter()
        .map(|&(start, _, _)| {
            leaks
                .iter()
                .filter(|&&(s, e, _)| s <= start && start <= e)
                .map(|&(_, _, bytes)| bytes)
                .sum::<u64>()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Vec<String> {
        [
            "root/management/tree_service",
            "root/drivers/ultrasonic",
            "root/drivers/battery",
            "root/drivers/motors",
            "root/control/motion",
            "root/safety/watchdog",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let length = Duration::from_secs(600);
        let a = steps(42, length, &targets()).unwrap();
        let b = steps(42, length, &targets()).unwrap();
        assert_eq!(a, b);
        assert!(a.len() > 200, "{} steps in 10 min", a.len());
        let c = steps(43, length, &targets()).unwrap();
        assert_ne!(a, c, "another seed, another schedule");
        // A shorter run is a prefix of a longer one with the same seed.
        let short = steps(42, Duration::from_secs(60), &targets()).unwrap();
        assert_eq!(short[..], a[..short.len()]);
    }

    #[test]
    fn steps_are_spaced_bounded_and_cover_every_kind() {
        let s = steps(7, Duration::from_secs(1200), &targets()).unwrap();
        let mut prev = Duration::ZERO;
        for step in &s {
            let gap = step.at - prev;
            assert!((GAP_MIN..=GAP_MAX).contains(&gap), "{gap:?}");
            prev = step.at;
            match &step.action {
                Action::Fault {
                    target,
                    fault,
                    dwell,
                } => {
                    assert!(targets().contains(target));
                    if *fault == Fault::Unplug {
                        assert!(target.ends_with("ultrasonic") || target.ends_with("battery"));
                    }
                    if is_lasting(*fault) {
                        assert!((DWELL_MIN..=DWELL_MAX).contains(dwell), "{dwell:?}");
                    } else {
                        assert_eq!(*dwell, Duration::ZERO);
                    }
                }
                Action::Suspend { target, dwell } => {
                    assert!(!is_critical(target), "{target} is never suspended");
                    assert!((DWELL_MIN..=DWELL_MAX).contains(dwell));
                }
                Action::Probe { messages, .. } => {
                    assert!((PROBE_MIN..=PROBE_MAX).contains(messages));
                }
            }
        }
        let kinds: std::collections::BTreeSet<_> = s.iter().map(|s| s.action.kind()).collect();
        let all = [
            "panic", "error", "exit", "hang", "spin", "leak", "flood", "unplug", "suspend", "probe",
        ];
        assert_eq!(kinds, all.into_iter().collect());
    }

    #[test]
    fn no_target_is_an_error() {
        assert_eq!(
            steps(1, Duration::from_secs(10), &[]),
            Err(ScheduleError::NoTargets)
        );
        let none = steps(1, Duration::from_millis(100), &targets()).unwrap();
        assert!(none.is_empty(), "shorter than one gap");
    }

    #[test]
    fn the_leak_budget_adds_overlapping_leaks() {
        let leak = |at_ms: u64, dwell_ms: u64| Step {
            at: Duration::from_millis(at_ms),
            action: Action::Fault {
                target: "root/x".into(),
                fault: Fault::Actor(nevil_actors::Fault::Leak),
                dwell: Duration::from_millis(dwell_ms),
            },
        };
        let mib = 1 << 20;
        assert_eq!(leak_budget(&[]), 0);
        assert_eq!(leak_budget(&[leak(0, 500)]), 6 * mib);
        assert_eq!(leak_budget(&[leak(0, 500), leak(2000, 1000)]), 11 * mib);
        assert_eq!(leak_budget(&[leak(0, 1000), leak(600, 300)]), 15 * mib);
    }
}
