//! Quotas: what a supervisor does to a child that uses more than its share.
//!
//! This module is the pure model: it reads no clock and does no I/O. At each sampling tick
//! (every 100 ms by default) the supervisor measures each managed child's [`Usage`] and asks
//! the child's [`QuotaState`] what to do now, under the child's [`QuotaGroup`]. The answer
//! is a [`Decision`] or nothing; applying it (gate, restart, stop) is the supervisor's job.
//!
//! # Semantics
//!
//! **Resources.** A group governs up to five [`Resource`]s — CPU share, memory held,
//! mailbox depth, message rate, stall — each with [`Limits`] `soft <= burst <= hard`. A
//! resource without limits is not governed: whatever it reads, it never causes an action.
//!
//! **Stall** detects a wedged child: how long, in seconds, it has had messages waiting
//! without starting any. The supervisor measures it at its sampling tick from the counters
//! it already reads, adding nothing to the message path: a sample sees the child *stuck*
//! when its mailbox is not empty and it has started no message since the previous sample
//! while its gate was open. The stall is the time since the child became stuck, counting
//! at most one sampling interval before the first sample that saw it stuck, so a stall of
//! the whole runtime (which delays every actor, and the sampling too) counts as one
//! interval, never as a wedge by itself; any progress, an empty mailbox or a closed gate
//! (its quota holds it back: not its doing) resets it. A handler that hangs on its one
//! message with nothing else queued shows no stall: the message it is stuck in has left
//! the mailbox. Only the built-in [`critical`](QuotaGroup::critical) group governs stall
//! by default. A restart (or termination) decided for a stall kills the child at once, not
//! after its shutdown grace: a wedged handler would not finish anyway. ractor's kill
//! interrupts a handler at its next await point; a handler that never yields cannot be
//! stopped in-process.
//!
//! **The ladder.** At each sample, for each governed resource:
//! - usage ≥ `soft` → [`Action::Warn`];
//! - usage ≥ `burst` → [`Action::Throttle`], with a factor set by how far usage is over
//!   the burst limit ([`throttle_factor`]: for an excess ratio over 1.0 → 0.5, over
//!   0.5 → 0.7, over 0.2 → 0.85, else 0.9);
//! - usage ≥ `hard` → the group's [`HardAction`], at once (a throttle's factor is then
//!   set by the excess over the hard limit).
//!
//! The worst resource decides: the one over the highest limit, then the one furthest over
//! it (ties go to the first in [`Resource::ALL`] order).
//!
//! **Only changes are decided.** A decision is returned when the child's [`QuotaStatus`]
//! changes, never again for the state it is in: a child is warned once, not every tick.
//! While a violation lasts the state only gets more severe (`ok < warned < throttled <
//! suspended < terminated`); a throttle may tighten (smaller factor), never loosen. Only
//! recovery brings a child back.
//!
//! **Escalation.** A violation lasts from the first sample at or above some soft limit to
//! the first sample below every soft limit. While it lasts, the child is escalated at
//! fixed delays from its start ([`Escalation`], default 1 s / 5 s / 10 s): throttled at
//! `throttle_after`, suspended at `suspend_after`, terminated at `terminate_after` —
//! exactly then, not before, and whatever the ladder said in between.
//!
//! **Recovery.** A warned, throttled or suspended child returns to [`QuotaStatus::Ok`]
//! ([`Action::Recover`]: lift the throttle, resume delivery) once every governed resource
//! has read below [`RECOVERY_FRACTION`] (80 %) of its soft limit for the whole of the
//! group's `recovery` window: the window restarts at every sample at or above it.
//!
//! **Suspended mailboxes.** A suspended child's messages wait at its gate, so its mailbox
//! grows (and it stalls) because it is suspended. While suspended, the mailbox and stall
//! are therefore assessed only if they are what caused the suspension (a flood escalates
//! on to termination); otherwise they count neither against the child nor against its
//! recovery.
//!
//! **Critical groups.** A group marked [`critical`](QuotaGroup::critical) holds children
//! whose silence is dangerous. Its quota may warn and restart them, never throttle,
//! suspend or terminate them: a breach of burst only warns, a hard breach restarts
//! (its [`HardAction`] must be `restart`, see [`QuotaGroup::check`]), and escalation by
//! age never goes beyond a warning. [`Pressure`] never tightens a critical group.
//!
//! **Restart and terminate.** [`Action::Restart`] leaves the state at `Ok` with a fresh
//! clock: the next incarnation starts clean (a child that keeps breaching is restarted
//! again, and its supervisor's restart intensity bounds that, as for any crash).
//! [`Action::Terminate`] is final for this state: `assess` decides nothing more. The grace
//! period between the notice and the kill is the child's own [`Shutdown`] (a worker's
//! default, 5 s, is the grace of seed 001's enforcer).
//!
//! **Readings that are not numbers.** A NaN reading is above no limit and below no
//! recovery threshold: a broken meter neither punishes a child nor lets it recover.
//!
//! **Configuration.** [`QuotaConfig`] is the `[quotas]` section: the sampling interval,
//! overrides of the built-in groups or new groups, and each actor's group (by path or
//! name; `standard` otherwise), each problem named by its key path.
//!
//! **Pressure.** A tree may be started with a shared [`Pressure`] level: while someone
//! watching the whole machine sets it to critical, non-exempt groups are enforced with
//! their CPU, memory and rate limits scaled down ([`PressurePolicy`]).
//!
//! //! **Live changes.** A running tree's groups can be changed by worker path through its
//! [`Pressure`] handle's [`LiveQuotas`] table; a supervisor adopts a change at its next
//! sample, and the table outlives restarts (see [`LiveQuotas`]).
//!
//! **Records.** Each decision the supervisor applies becomes an [`Enforcement`] in the
//! child's [`History`] (the last 32 by default) and a log line with the child's path.
//!
//! [`Shutdown`]: crate::Shutdown
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use nevil_actors::quota::{Action, QuotaGroup, QuotaState, QuotaStatus, Resource, Usage};
//! use tokio::time::Instant;
//!
//! let group = QuotaGroup::standard(); // cpu: soft 0.15, burst 0.225, hard 0.30 of a core
//! let t0 = Instant::now();
//! let mut state = QuotaState::new(t0);
//! let spinning = Usage::default().with(Resource::Cpu, 0.20);
//!
//! // Over soft: warned, once.
//! let d = state.assess(t0, &spinning, &group).unwrap();
//! assert_eq!(d.action, Action::Warn);
//! assert!(state.assess(t0 + Duration::from_millis(100), &spinning, &group).is_none());
//!
//! // Still over after `throttle_after` (1 s): throttled; 0.20 is 33 % over soft → 0.85.
//! let d = state.assess(t0 + Duration::from_secs(1), &spinning, &group).unwrap();
//! assert_eq!(d.action, Action::Throttle { factor: 0.85 });
//! assert_eq!(d.state_after, QuotaStatus::Throttled(0.85));
//!
//! // Quiet (below 80 % of soft) for the 2 s recovery window: back to ok.
//! let quiet = Usage::default().with(Resource::Cpu, 0.01);
//! assert!(state.assess(t0 + Duration::from_millis(2900), &quiet, &group).is_none());
//! let d = state.assess(t0 + Duration::from_secs(3), &quiet, &group).unwrap();
//! assert_eq!((d.action, d.state_after), (Action::Recover, QuotaStatus::Ok));
//! ```

mod config;
pub(crate) mod enforcer;
mod group;
mod history;
mod ladder;
mod limits;
mod live;
pub mod migrate;
mod pressure;
mod state;
#[cfg(test)]
mod tests;

pub use config::{ActorQuotaConfig, EscalationConfig, GroupConfig, LimitsConfig, QuotaConfig};
pub use enforcer::DEFAULT_SAMPLE_INTERVAL;
pub use group::{Escalation, HardAction, QuotaGroup};
pub use history::{Enforcement, History};
pub use ladder::QuotaState;
pub use limits::{throttle_factor, Limits, QuotaLimits, Resource, Usage};
pub use live::LiveQuotas;
pub use migrate::{Migration, Site};
pub use pressure::{Cause, Pressure, PressureLevel, PressurePolicy};
pub use state::{Action, Decision, QuotaStatus};

/// The fraction of a soft limit that every governed resource must stay below, for a whole
/// recovery window, before a child is brought back to `Ok` (seed 001's 80 % target).
pub const RECOVERY_FRACTION: f64 = 0.8;
