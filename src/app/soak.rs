//! The chaos soak (`nevil soak`): random drills on the simulated robot for minutes, with
//! the robot's invariants checked as it runs.
//!
//! The soak starts the robot of the config in-process, laid out as `nevil run` lays it
//! out, plus one probe worker (`root/management/soak_probe`). It then plays a
//! [schedule](schedule) drawn from one seed: faults injected into random workers at
//! random times (`panic`, `error`, `exit`, `hang`, `spin`, `leak`, `flood`, and
//! `unplug` of a simulated sensor, which engages the e-stop), hand-made suspensions, and
//! rounds of the suspend/resume probe. A lasting fault (hang, spin, leak, flood,
//! unplug, suspension) is ended after its dwell — the incarnation, if still the one
//! that was faulted, is killed and its supervisor restarts it; the sensor is plugged
//! back; the worker resumed — so that faults do not pile up over hours.
//!
//! Invariants, each a named check that stops the soak at its first violation:
//!
//! | invariant | what must hold |
//! |---|---|
//! | `motors_safe` | every hazard (e-stop engaged; a motion-path actor exited, hung or spun) has the motors at zero within [`STOP_CEILING`] ([`stops`]) |
//! | `suspend_order` | the probe handles every message sent while it was suspended, in order ([`probe`]) |
//! | `rss_flat` | after the warm-up, resident memory stays under the warm-up's peak plus the soak's own leaks ([`rss`]) |
//! | `escalation_explained` | a supervisor escalates only past its configured intensity ([`escalation`]) |
//! | `clean_exit` | the root never gives up, and the end is a clean shutdown with the motors stopped first |
//!
//! The schedule depends only on the seed, the length and the config's tree: the same
//! seed replays the same faults at the same times (`nevil soak --minutes M --seed S`).

pub mod escalation;
pub mod probe;
pub mod rss;
pub mod schedule;
pub mod stops;

mod drive;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

pub use drive::{soak, SoakError};

/// The stop-time ceiling: docs/safety.md's `T_stop`, never more than 250 ms for what
/// the process can see (the safety matrix uses the same ceiling).
pub const STOP_CEILING: Duration = Duration::from_millis(250);

/// The invariants' names, as the summary and the failure message give them.
pub mod invariant {
    /// The motors stop within the stop time.
    pub const MOTORS_SAFE: &str = "motors_safe";
    /// Nothing lost or reordered across suspend/resume.
    pub const SUSPEND_ORDER: &str = "suspend_order";
    /// Resident memory stays flat.
    pub const RSS_FLAT: &str = "rss_flat";
    /// No escalation the intensity does not explain.
    pub const ESCALATION_EXPLAINED: &str = "escalation_explained";
    /// The run ends with a clean shutdown.
    pub const CLEAN_EXIT: &str = "clean_exit";
}

/// What a soak runs.
#[derive(Debug, Clone, Copy)]
pub struct SoakOptions {
    /// How long, minutes (fractions allowed).
    pub minutes: f64,
    /// The schedule's seed.
    pub seed: u64,
}

impl SoakOptions {
    /// How long, as a duration (zero if `minutes` is not a valid length).
    pub fn length(&self) -> Duration {
        Duration::try_from_secs_f64(self.minutes * 60.0).unwrap_or_default()
    }
}

/// The first invariant broken.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    /// Its name ([`invariant`]).
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
    /// When it was found, seconds since start.
    pub at_s: f64,
}

/// Where the soak stands, once a minute.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Seconds since start.
    pub at_s: f64,
    /// Faults injected so far.
    pub faults: u64,
    /// Restarts so far.
    pub restarts: u64,
    /// Escalations so far.
    pub escalations: u64,
    /// Resident memory now, bytes.
    pub rss_bytes: u64,
    /// The worst stop time so far, milliseconds.
    pub worst_stop_ms: f64,
}

/// What a soak did: `nevil soak`'s summary (`--json` prints it as it is).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The schedule's seed.
    pub seed: u64,
    /// The length asked for, minutes.
    pub minutes: f64,
    /// Seconds the soak ran (less than asked after a violation).
    pub duration_s: f64,
    /// Whether every invariant held.
    pub passed: bool,
    /// The first invariant broken, if any.
    pub violation: Option<Violation>,
    /// The command that replays this soak's schedule.
    pub replay: String,
    /// Steps of the schedule played.
    pub steps: u64,
    /// Faults injected, by kind (`panic` … `unplug`); skipped ones are not counted.
    pub faults: BTreeMap<&'static str, u64>,
    /// Faults injected, all kinds.
    pub faults_injected: u64,
    /// Faults not injected because their target was between incarnations.
    pub faults_skipped: u64,
    /// Lasting faults the soak ended by killing the faulted incarnation.
    pub faults_ended_by_kill: u64,
    /// Hand-made suspensions.
    pub suspends: u64,
    /// Probe rounds checked (held).
    pub probe_rounds: u64,
    /// Probe rounds void: the probe restarted during them.
    pub probe_rounds_void: u64,
    /// Messages sent to the probe while suspended.
    pub probe_messages: u64,
    /// Restarts: new incarnations of workers and supervisors.
    pub restarts: u64,
    /// Escalations (supervisors that gave up), all explained by their intensity.
    pub escalations: u64,
    /// Escalations that could not be judged (the event feed had lost events).
    pub escalations_unjudged: u64,
    /// Tree events lost by the soak's subscription.
    pub events_lost: u64,
    /// E-stop engages.
    pub estops: u64,
    /// Hazards the stop time was measured for.
    pub hazards: u64,
    /// The longest stop time, milliseconds.
    pub worst_stop_ms: f64,
    /// The hazard of the longest stop time.
    pub worst_stop_hazard: String,
    /// The stop-time ceiling, milliseconds.
    pub stop_ceiling_ms: f64,
    /// The highest resident memory, bytes.
    pub peak_rss_bytes: u64,
    /// The warm-up's highest resident memory, bytes.
    pub warmup_peak_rss_bytes: u64,
    /// The bound after the warm-up, bytes.
    pub rss_bound_bytes: u64,
    /// How the tree ended.
    pub exit: String,
}

impl Summary {
    /// The command that replays a soak of `minutes` with `seed`.
    pub fn replay_command(minutes: f64, seed: u64) -> String {
        format!("nevil soak --minutes {minutes} --seed {seed}")
    }
}
