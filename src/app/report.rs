//! The run report (`run --report`): what a run did, gathered at shutdown.

use serde::Serialize;

use super::drills::FiredDrill;
use crate::bus::bridge::BridgeStats;
use crate::bus::TopicStats;
use crate::core::jitter::JitterSummary;
use crate::hw::sim::SimReport;
use crate::robot::safety::EStopEvent;

/// What a run did, written by `run --report`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The wall clock at the start, in unix milliseconds: the zero of every `at_s`.
    pub started_unix_ms: u64,
    /// Seconds from start to the end of shutdown.
    pub duration_s: f64,
    /// How the tree ended: `normal`, or the escalation.
    pub exit: String,
    /// Control loop lateness.
    pub jitter: JitterSummary,
    /// The e-stop's engages and releases (the last [`crate::robot::safety::latch::EVENTS_KEPT`]).
    pub estops: Vec<EStopEvent>,
    /// Older e-stop changes, counted but not kept.
    pub estops_dropped: u64,
    /// Times the dead-man zeroed the motors by itself.
    pub deadman_trips: u64,
    /// The fault drills that fired, and when.
    pub drills: Vec<FiredDrill>,
    /// Bus counters by topic.
    pub bus: Vec<(&'static str, TopicStats)>,
    /// Counters of the bridge to process-placed groups, by topic and direction (empty
    /// when no group runs in a process).
    pub bridge: Vec<BridgeStats>,
    /// Restarts of every actor, summed.
    pub restarts: u64,
    /// The simulated world's outcome (`sim` backend only).
    pub sim: Option<SimReport>,
}
