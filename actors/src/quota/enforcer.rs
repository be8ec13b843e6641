//! The sampling side of enforcement: what a supervisor keeps per governed child, and how
//! one sample turns counters into a [`Decision`].
//!
//! Every `sample_interval` the supervisor measures each governed child — CPU share and
//! message rate from the change of its counters since the last sample, memory held and
//! mailbox depth as they stand — and asks [`QuotaState::assess`]. A breach seen at a
//! sample is acted on at that sample, so a breach is acted on within one interval of
//! happening (two at most, counting the sample that first sees a rising value under the
//! limit). The gate actions (throttle, suspend, recover) are applied here; restart and
//! terminate go through the supervisor, which owns the child's life.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    Action, Decision, Enforcement, History, Pressure, QuotaGroup, QuotaState, QuotaStatus,
    Resource, Usage,
};
use crate::managed::Counters;

/// Enforcement records kept per child.
const HISTORY: usize = 32;

/// The instant enforcement times are measured from (first use, ~process start).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

struct Baseline {
    at: Instant,
    handled: u64,
    cpu_seconds: f64,
}

/// A governed child's quota group, state and enforcement history.
pub(crate) struct Governed {
    pub(crate) group_name: String,
    group: QuotaGroup,
    state: QuotaState,
    pub(crate) history: History,
    baseline: Option<Baseline>,
}

impl Governed {
    pub(crate) fn new(group_name: String, group: QuotaGroup) -> Self {
        Self {
            group_name,
            group,
            state: QuotaState::new(Instant::now()),
            history: History::new(HISTORY),
            baseline: None,
        }
    }

    /// A new incarnation starts within its quota, measured afresh.
    pub(crate) fn restarted(&mut self) {
        self.state = QuotaState::new(Instant::now());
        self.baseline = None;
    }

    /// The child's quota state.
    pub(crate) fn status(&self) -> QuotaStatus {
        self.state.status()
    }

    /// Measures `counters` at `now` under the tree's `pressure`; returns the decision to
    /// apply, if the state changes, after recording it. The first sample only sets the baseline for rates, and a
    /// sample less than `min_window` after the baseline is skipped: rates over a few
    /// milliseconds (samples bunched after the runtime stalled) are noise, not usage.
    pub(crate) fn sample(
        &mut self,
        counters: &Counters,
        now: Instant,
        min_window: Duration,
        pressure: &Pressure,
    ) -> Option<(Decision, Usage)> {
        if let Some(b) = &self.baseline {
            if now.saturating_duration_since(b.at) < min_window {
                return None;
            }
        }
        let handled = counters.messages_handled();
        let cpu_seconds = counters.cpu_seconds();
        let previous = self.baseline.replace(Baseline {
            at: now,
            handled,
            cpu_seconds,
        })?;
        let dt = now.saturating_duration_since(previous.at).as_secs_f64();
        if dt <= 0.0 {
            return None;
        }
        let usage = Usage::default()
            .with(
                Resource::Cpu,
                (cpu_seconds - previous.cpu_seconds).max(0.0) / dt,
            )
            .with(
                Resource::Rate,
                handled.saturating_sub(previous.handled) as f64 / dt,
            )
            .with(Resource::Memory, counters.memory_bytes() as f64)
            .with(Resource::Mailbox, counters.mailbox_depth() as f64);
        let tightened = pressure.tighten(&self.group_name, &self.group);
        let group = tightened.as_ref().unwrap_or(&self.group);
        let decision = self.state.assess(now, &usage, group)?;
        self.history.push(Enforcement::new(
            now.saturating_duration_since(epoch()),
            &decision,
        ));
        Some((decision, usage))
    }
}

/// Applies the gate part of `decision` to the child's counters; returns `false` for the
/// actions the supervisor carries out (restart, terminate).
///
/// A throttle acts on the resource that was measured over its limit: CPU → a duty cycle
/// of `factor` × its measured share; rate → `factor` × its measured message rate. For
/// memory and mailbox breaches a throttle only records the state: slowing the actor
/// frees no memory and makes a backlog worse (seen in the leak drill: a rate-throttled
/// watchdog fell behind its sensors until its mailbox tripped) — the group's hard action
/// deals with them. Suspend holds its messages; recover opens the gate.
pub(crate) fn apply_gate(decision: &Decision, usage: &Usage, counters: &Counters) -> bool {
    match decision.action {
        Action::Warn => true,
        Action::Throttle { factor } => {
            match decision.resource {
                Resource::Cpu => {
                    let cpu = usage.get(Resource::Cpu);
                    counters.throttle(None, Some((cpu * factor).clamp(0.001, 1.0)));
                }
                Resource::Rate => {
                    let rate = usage.get(Resource::Rate);
                    counters.throttle(Some((rate * factor).max(1.0)), None);
                }
                Resource::Memory | Resource::Mailbox | Resource::Stall => {}
            }
            true
        }
        Action::Suspend => {
            counters.suspend();
            true
        }
        Action::Recover => {
            counters.resume();
            true
        }
        Action::Restart | Action::Terminate => false,
    }
}

/// The sampling period a supervisor uses when quotas are on.
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
