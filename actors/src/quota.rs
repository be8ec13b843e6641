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

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

mod config;
pub(crate) mod enforcer;
mod pressure;

pub use config::{ActorQuotaConfig, EscalationConfig, GroupConfig, LimitsConfig, QuotaConfig};
pub use enforcer::DEFAULT_SAMPLE_INTERVAL;
pub use pressure::{Pressure, PressureLevel, PressurePolicy};

/// The fraction of a soft limit that every governed resource must stay below, for a whole
/// recovery window, before a child is brought back to `Ok` (seed 001's 80 % target).
pub const RECOVERY_FRACTION: f64 = 0.8;

/// Something a child uses that a quota can limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// Share of one core its handlers used over the sampling window: 0.0 – n cores.
    Cpu,
    /// Bytes it allocated and still holds.
    Memory,
    /// Messages waiting in its mailbox (sent − handled), current.
    Mailbox,
    /// Messages it handled per second over the sampling window.
    Rate,
    /// Seconds it has had messages waiting without starting any (a wedged handler);
    /// config key `stall`. See the [module docs](self).
    Stall,
}

impl Resource {
    /// Every resource, in the order that breaks ties between equally bad ones.
    pub const ALL: [Self; 5] = [
        Self::Cpu,
        Self::Memory,
        Self::Mailbox,
        Self::Rate,
        Self::Stall,
    ];

    /// The snake_case name used in configs, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Mailbox => "mailbox",
            Self::Rate => "rate",
            Self::Stall => "stall",
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one child used in one sampling window, per resource, in each resource's unit.
///
/// Usage of a resource its group does not govern is ignored, so the sampler may fill in
/// only what it measures.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Usage {
    /// CPU share of one core (0.25 = a quarter of a core).
    pub cpu: f64,
    /// Bytes held.
    pub memory: f64,
    /// Messages waiting.
    pub mailbox: f64,
    /// Messages handled per second.
    pub rate: f64,
    /// Seconds with messages waiting and none started.
    pub stall: f64,
}

impl Usage {
    /// The reading for `resource`.
    pub fn get(&self, resource: Resource) -> f64 {
        match resource {
            Resource::Cpu => self.cpu,
            Resource::Memory => self.memory,
            Resource::Mailbox => self.mailbox,
            Resource::Rate => self.rate,
            Resource::Stall => self.stall,
        }
    }

    /// This usage with `resource` read as `value`, for building readings in one expression.
    pub fn with(mut self, resource: Resource, value: f64) -> Self {
        match resource {
            Resource::Cpu => self.cpu = value,
            Resource::Memory => self.memory = value,
            Resource::Mailbox => self.mailbox = value,
            Resource::Rate => self.rate = value,
            Resource::Stall => self.stall = value,
        }
        self
    }
}

/// The three thresholds of one governed resource, in its unit.
///
/// Valid when all are finite and `0 <= soft <= burst <= hard` (see [`Limits::check`]):
/// at `soft` the child is warned, at `burst` throttled, at `hard` the group's
/// [`HardAction`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    /// Warn at or above this.
    pub soft: f64,
    /// The group's hard action at or above this.
    pub hard: f64,
    /// Throttle at or above this.
    pub burst: f64,
}

impl Limits {
    /// Limits with `burst` midway between `soft` and `hard`: throttling starts halfway to
    /// the hard limit, leaving the throttle room to work before the hard action.
    pub fn midway(soft: f64, hard: f64) -> Self {
        Self {
            soft,
            hard,
            burst: soft + (hard - soft) / 2.0,
        }
    }

    /// Every problem with these limits as `(key path, message)`, keys under `key` (e.g.
    /// `quotas.groups.heavy.memory` → `quotas.groups.heavy.memory.hard`). Empty when valid.
    pub fn check(&self, key: &str) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        // Burst is checked against soft and hard only once they are sound, so that one
        // mistake (a burst derived from a bad soft limit) is reported once.
        for (field, value) in [("soft", self.soft), ("hard", self.hard)] {
            if !(value.is_finite() && value >= 0.0) {
                problems.push((
                    format!("{key}.{field}"),
                    format!("must be a finite number >= 0 (is {value})"),
                ));
            }
        }
        if !problems.is_empty() {
            return problems;
        }
        let Self { soft, burst, hard } = *self;
        if hard < soft {
            problems.push((
                format!("{key}.hard"),
                format!("must be >= soft (is {hard}, soft is {soft})"),
            ));
        } else if !(soft..=hard).contains(&burst) {
            problems.push((
                format!("{key}.burst"),
                format!(
                    "must be between soft and hard (is {burst}, soft is {soft}, hard is {hard})"
                ),
            ));
        }
        problems
    }
}

/// What a supervisor does to a child, as decided by [`QuotaState::assess`].
///
/// Serialized with the name under `action` and a throttle's factor beside it:
/// `{"action": "throttle", "factor": 0.7}`, `{"action": "warn"}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Log it and count it; nothing else changes.
    Warn,
    /// Let the child use only `factor` (0–1) of its normal message rate and CPU duty.
    Throttle {
        /// The fraction of its normal rate and duty the child may use.
        factor: f64,
    },
    /// Stop delivering its messages; they wait at its gate, in order, none lost.
    Suspend,
    /// Stop it and start a fresh incarnation, as for a crash.
    Restart,
    /// Stop it for good: notice, its shutdown grace, then kill.
    Terminate,
    /// Usage is back within limits: lift the throttle or resume delivery.
    Recover,
}

impl Action {
    /// Every action's name, in declaration order.
    pub const NAMES: [&'static str; 6] = [
        "warn",
        "throttle",
        "suspend",
        "restart",
        "terminate",
        "recover",
    ];

    fn index(&self) -> usize {
        match self {
            Self::Warn => 0,
            Self::Throttle { .. } => 1,
            Self::Suspend => 2,
            Self::Restart => 3,
            Self::Terminate => 4,
            Self::Recover => 5,
        }
    }

    /// The snake_case name used in logs and the `action` label of metrics.
    pub fn as_str(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// How drastic the action is; restart sits between suspend and terminate because it
    /// loses the child's state but keeps it running.
    fn severity(&self) -> u8 {
        match self {
            Self::Recover => 0,
            Self::Warn => 1,
            Self::Throttle { .. } => 2,
            Self::Suspend => 3,
            Self::Restart => 4,
            Self::Terminate => 5,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Throttle { factor } => write!(f, "throttle to {factor}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The action a group applies when a hard limit is reached: the configurable subset of
/// [`Action`] (`"throttle"`, `"suspend"`, `"restart"`, `"terminate"` in configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HardAction {
    /// Throttle, the factor set by the excess over the hard limit.
    Throttle,
    /// Suspend delivery.
    Suspend,
    /// Restart the child.
    Restart,
    /// Terminate the child.
    Terminate,
}

impl HardAction {
    /// The snake_case name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::Suspend => "suspend",
            Self::Restart => "restart",
            Self::Terminate => "terminate",
        }
    }

    /// The action to take, throttling by `factor` if this is a throttle.
    fn action(self, factor: f64) -> Action {
        match self {
            Self::Throttle => Action::Throttle { factor },
            Self::Suspend => Action::Suspend,
            Self::Restart => Action::Restart,
            Self::Terminate => Action::Terminate,
        }
    }
}

/// How long a violation may last before the child is throttled, suspended, terminated,
/// each measured from the violation's first sample.
///
/// Seed 001 waits 30 s / 5 min / 10 min, a server's patience. The defaults here are
/// 1 s / 5 s / 10 s: the robot's control loop runs at 50 Hz on two cores, and a child
/// hogging a core for half a minute would starve it while the car keeps moving. One
/// second is 10 samples at the default interval, enough not to punish a single spike
/// with more than a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Escalation {
    /// Throttle a child still violating this long after the violation began.
    pub throttle_after: Duration,
    /// Suspend a child still violating this long after the violation began.
    pub suspend_after: Duration,
    /// Terminate a child still violating this long after the violation began.
    pub terminate_after: Duration,
}

impl Default for Escalation {
    fn default() -> Self {
        Self {
            throttle_after: Duration::from_secs(1),
            suspend_after: Duration::from_secs(5),
            terminate_after: Duration::from_secs(10),
        }
    }
}

impl Escalation {
    /// The action a violation that has lasted `elapsed` calls for by itself.
    fn action(&self, elapsed: Duration, factor: f64) -> Action {
        if elapsed >= self.terminate_after {
            Action::Terminate
        } else if elapsed >= self.suspend_after {
            Action::Suspend
        } else if elapsed >= self.throttle_after {
            Action::Throttle { factor }
        } else {
            Action::Warn
        }
    }
}

/// The quota of a kind of child: limits per resource, the action at a hard limit, the
/// escalation delays and the recovery window.
///
/// The named defaults ([`lightweight`](Self::lightweight), [`standard`](Self::standard),
/// [`heavy`](Self::heavy)) take memory and CPU soft and hard limits from seed 001 (CPU
/// percent of a core as a share), `burst` midway between, and mailbox and rate limits
/// sized for the robot; each documents its numbers. They leave stall ungoverned. The
/// fourth, [`critical`](Self::critical), is for children whose silence is dangerous.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaGroup {
    /// CPU share limits; `None`: not governed.
    pub cpu: Option<Limits>,
    /// Memory limits in bytes; `None`: not governed.
    pub memory: Option<Limits>,
    /// Mailbox depth limits in messages; `None`: not governed.
    pub mailbox: Option<Limits>,
    /// Handled-message rate limits per second; `None`: not governed.
    pub rate: Option<Limits>,
    /// Stall limits in seconds (messages waiting, none started); `None`: not governed.
    pub stall: Option<Limits>,
    /// Whether its children's silence is dangerous: its quota may warn and restart them,
    /// never throttle, suspend or terminate them (burst → warn, hard → restart,
    /// escalation by age at most a warning), and pressure never tightens it. Its
    /// `hard_action` must be [`HardAction::Restart`] ([`check`](Self::check) says so).
    pub critical: bool,
    /// What to do at a hard limit.
    pub hard_action: HardAction,
    /// Delays of escalation while a violation lasts.
    pub escalation: Escalation,
    /// How long every governed resource must stay below 80 % of its soft limit before a
    /// child recovers.
    pub recovery: Duration,
}

impl QuotaGroup {
    /// The names of the built-in groups: the three by weight, lightest first, then
    /// `critical`.
    pub const NAMES: [&'static str; 4] = ["lightweight", "standard", "heavy", "critical"];

    /// The recovery window of the built-in groups: 2 s, twice the period of the slowest
    /// periodic load the robot runs (1 Hz telemetry), so a periodic burst cannot slip
    /// under it, yet short enough that a throttled consumer of sensor data is back soon.
    pub const DEFAULT_RECOVERY: Duration = Duration::from_secs(2);

    /// Small actors (drivers, services): memory 50 / 75 / 100 MB, CPU 5 / 7.5 / 10 % of a
    /// core (seed 001), mailbox 32 / 48 / 64 messages (32 is the bus's queue per
    /// subscriber: over half a second behind a 50 Hz sensor), rate 500 / 750 / 1000 msgs/s
    /// (10× the fastest 50 Hz stream). At a hard limit: throttle (seed 001's CPU action
    /// for this group; a small actor over its limit is slowed, and escalation does the rest).
    pub fn lightweight() -> Self {
        Self {
            cpu: Some(Limits::midway(0.05, 0.10)),
            memory: Some(Limits::midway(50e6, 100e6)),
            mailbox: Some(Limits::midway(32.0, 64.0)),
            rate: Some(Limits::midway(500.0, 1000.0)),
            stall: None,
            critical: false,
            hard_action: HardAction::Throttle,
            escalation: Escalation::default(),
            recovery: Self::DEFAULT_RECOVERY,
        }
    }

    /// Most actors (behaviours, the control loop) and the default group: memory 200 / 350
    /// / 500 MB, CPU 15 / 22.5 / 30 % of a core (seed 001), mailbox 64 / 96 / 128, rate
    /// 2000 / 3000 / 4000 msgs/s. At a hard limit: restart — the OTP answer to a child in
    /// a bad state, bounded by its supervisor's restart intensity.
    pub fn standard() -> Self {
        Self {
            cpu: Some(Limits::midway(0.15, 0.30)),
            memory: Some(Limits::midway(200e6, 500e6)),
            mailbox: Some(Limits::midway(64.0, 128.0)),
            rate: Some(Limits::midway(2000.0, 4000.0)),
            stall: None,
            critical: false,
            hard_action: HardAction::Restart,
            escalation: Escalation::default(),
            recovery: Self::DEFAULT_RECOVERY,
        }
    }

    /// Computation-heavy actors: memory 1 / 1.5 / 2 GB, CPU 40 / 60 / 80 % of a core
    /// (seed 001), mailbox 256 / 384 / 512 (they may batch), rate 10 000 / 15 000 /
    /// 20 000 msgs/s. At a hard limit: suspend (seed 001's memory action for this group:
    /// a restart would throw away expensive work; escalation terminates it if it persists).
    pub fn heavy() -> Self {
        Self {
            cpu: Some(Limits::midway(0.40, 0.80)),
            memory: Some(Limits::midway(1e9, 2e9)),
            mailbox: Some(Limits::midway(256.0, 512.0)),
            rate: Some(Limits::midway(10_000.0, 20_000.0)),
            stall: None,
            critical: false,
            hard_action: HardAction::Suspend,
            escalation: Escalation::default(),
            recovery: Self::DEFAULT_RECOVERY,
        }
    }

    /// Actors whose silence is dangerous (`critical: true`): memory 200 / 500 MB, mailbox
    /// 64 / 128 and rate 2000 / 4000 msgs/s as [`standard`](Self::standard); CPU 25 / 50 %
    /// of a core, more room than standard because a restart costs such an actor more than
    /// a busy spell, yet half a core is surely a runaway; and stall 0.1 / 0.2 s (burst
    /// midway), so a wedged child is restarted within about three sampling intervals at the
    /// default 100 ms. At a hard limit: restart, the only drastic action a critical group
    /// takes.
    pub fn critical() -> Self {
        Self {
            cpu: Some(Limits::midway(0.25, 0.50)),
            stall: Some(Limits::midway(0.1, 0.2)),
            critical: true,
            ..Self::standard()
        }
    }

    /// A group that governs nothing (hard action restart, not critical, default escalation
    /// and recovery): the base of a group a config defines from scratch.
    pub fn ungoverned() -> Self {
        Self {
            cpu: None,
            memory: None,
            mailbox: None,
            rate: None,
            stall: None,
            ..Self::standard()
        }
    }

    /// The built-in group called `name`, if there is one.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "lightweight" => Some(Self::lightweight()),
            "standard" => Some(Self::standard()),
            "heavy" => Some(Self::heavy()),
            "critical" => Some(Self::critical()),
            _ => None,
        }
    }

    /// The limits of `resource`; `None` when it is not governed.
    pub fn limits(&self, resource: Resource) -> Option<Limits> {
        match resource {
            Resource::Cpu => self.cpu,
            Resource::Memory => self.memory,
            Resource::Mailbox => self.mailbox,
            Resource::Rate => self.rate,
            Resource::Stall => self.stall,
        }
    }

    /// Sets (or with `None` clears) the limits of `resource`.
    pub fn set_limits(&mut self, resource: Resource, limits: Option<Limits>) {
        match resource {
            Resource::Cpu => self.cpu = limits,
            Resource::Memory => self.memory = limits,
            Resource::Mailbox => self.mailbox = limits,
            Resource::Rate => self.rate = limits,
            Resource::Stall => self.stall = limits,
        }
    }

    /// Every problem with this group as `(key path, message)`, keys under `key` (e.g.
    /// `quotas.groups.heavy`) named as in a config: `memory.hard`,
    /// `escalation.suspend_after_ms`, `hard_action` of a critical group that would do
    /// anything but restart. Empty when valid.
    pub fn check(&self, key: &str) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.critical && self.hard_action != HardAction::Restart {
            problems.push((
                format!("{key}.hard_action"),
                format!(
                    "a critical group may only restart (is \"{}\")",
                    self.hard_action.as_str()
                ),
            ));
        }
        for resource in Resource::ALL {
            if let Some(limits) = self.limits(resource) {
                problems.extend(limits.check(&format!("{key}.{resource}")));
            }
        }
        let e = &self.escalation;
        if e.suspend_after < e.throttle_after {
            problems.push((
                format!("{key}.escalation.suspend_after_ms"),
                format!(
                    "must be >= throttle_after_ms (is {}, throttle_after_ms is {})",
                    e.suspend_after.as_millis(),
                    e.throttle_after.as_millis()
                ),
            ));
        }
        if e.terminate_after < e.suspend_after {
            problems.push((
                format!("{key}.escalation.terminate_after_ms"),
                format!(
                    "must be >= suspend_after_ms (is {}, suspend_after_ms is {})",
                    e.terminate_after.as_millis(),
                    e.suspend_after.as_millis()
                ),
            ));
        }
        problems
    }
}

/// The throttle factor for `usage` over `limit`: the fraction of its normal rate and duty
/// a child keeps, by excess ratio `(usage − limit) / limit` (seed 001): over 1.0 → 0.5,
/// over 0.5 → 0.7, over 0.2 → 0.85, otherwise 0.9. Any usage over a zero limit counts
/// as more than double it.
///
/// # Examples
///
/// ```
/// use nevil_actors::quota::throttle_factor;
/// assert_eq!(throttle_factor(0.25, 0.1), 0.5); // 150 % over
/// assert_eq!(throttle_factor(0.16, 0.1), 0.7); // 60 % over
/// assert_eq!(throttle_factor(0.13, 0.1), 0.85); // 30 % over
/// assert_eq!(throttle_factor(0.11, 0.1), 0.9); // 10 % over
/// ```
pub fn throttle_factor(usage: f64, limit: f64) -> f64 {
    let excess = if limit > 0.0 {
        (usage - limit) / limit
    } else if usage > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    if excess > 1.0 {
        0.5
    } else if excess > 0.5 {
        0.7
    } else if excess > 0.2 {
        0.85
    } else {
        0.9
    }
}

/// Where a child stands with its quota; the `state` of the tree JSON's `quota` object.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum QuotaStatus {
    /// Within limits.
    #[default]
    Ok,
    /// Warned of a soft limit.
    Warned,
    /// Throttled to this fraction of its normal rate and duty.
    Throttled(f64),
    /// Delivery suspended.
    Suspended,
    /// Terminated (or being terminated); nothing more is decided.
    Terminated,
}

impl QuotaStatus {
    /// The snake_case name used in the tree JSON: `ok`, `warned`, `throttled`,
    /// `suspended`, `terminated`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warned => "warned",
            Self::Throttled(_) => "throttled",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
        }
    }

    /// How severe the state is, on the scale of [`Action::severity`].
    fn severity(&self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Warned => 1,
            Self::Throttled(_) => 2,
            Self::Suspended => 3,
            Self::Terminated => 5,
        }
    }
}

impl fmt::Display for QuotaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do to a child now, and what the enforcement history and log line need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    /// The action to apply.
    pub action: Action,
    /// The resource that decided it (for [`Action::Recover`], the one that caused the
    /// state being left).
    pub resource: Resource,
    /// Its reading at this sample.
    pub usage: f64,
    /// The limit it crossed (for [`Action::Recover`], 80 % of its soft limit).
    pub limit: f64,
    /// The child's state once the action is applied.
    pub state_after: QuotaStatus,
}

/// One applied decision, as kept in a child's [`History`] and shown by introspection.
///
/// Serialized flat, `at` in seconds: `{"at": 12.3, "resource": "cpu", "usage": 0.4,
/// "limit": 0.3, "action": "throttle", "factor": 0.5}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Enforcement {
    /// When it was decided, as time since a reference the enforcer picks (the tree's
    /// start), so that it serializes as plain seconds.
    #[serde(serialize_with = "as_secs")]
    pub at: Duration,
    /// The resource that decided it.
    pub resource: Resource,
    /// Its reading.
    pub usage: f64,
    /// The limit it crossed (for a recovery, 80 % of its soft limit).
    pub limit: f64,
    /// What was done.
    #[serde(flatten)]
    pub action: Action,
}

impl Enforcement {
    /// The record of `decision`, taken `at` after the enforcer's reference time.
    pub fn new(at: Duration, decision: &Decision) -> Self {
        Self {
            at,
            resource: decision.resource,
            usage: decision.usage,
            limit: decision.limit,
            action: decision.action,
        }
    }
}

fn as_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The last few [`Enforcement`]s of one child, oldest first: a bounded ring, so a child
/// that flaps forever costs a fixed amount of memory. Serialized as a list.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    entries: VecDeque<Enforcement>,
    capacity: usize,
    total: u64,
    /// Cumulative count per action, indexed as [`Action::NAMES`].
    by_action: [u64; Action::NAMES.len()],
}

impl History {
    /// How many records a child keeps by default: enough to show a whole
    /// warn → throttle → suspend → terminate ladder several times over.
    pub const DEFAULT_CAPACITY: usize = 32;

    /// An empty history that keeps the last `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::with_capacity(capacity.min(Self::DEFAULT_CAPACITY)),
            capacity,
            total: 0,
            by_action: [0; Action::NAMES.len()],
        }
    }

    /// Records `enforcement`, dropping the oldest record if the history is full.
    pub fn push(&mut self, enforcement: Enforcement) {
        self.total += 1;
        self.by_action[enforcement.action.index()] += 1;
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(enforcement);
    }

    /// The records kept, oldest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Enforcement> + '_ {
        self.entries.iter()
    }

    /// The most recent record.
    pub fn latest(&self) -> Option<&Enforcement> {
        self.entries.back()
    }

    /// How many records are kept now (at most the capacity).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no record is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records ever pushed, dropped ones included (cumulative).
    pub fn enforcements_total(&self) -> u64 {
        self.total
    }

    /// Cumulative count of each action ever pushed (zeros included), in
    /// [`Action::NAMES`] order: what the `nevil_quota_enforcements_total{action}`
    /// series report.
    pub fn enforcements_by_action(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Action::NAMES
            .iter()
            .copied()
            .zip(self.by_action.iter().copied())
    }
}

impl Default for History {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl Serialize for History {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.entries.iter())
    }
}

/// How far over its limits one resource reads.
#[derive(Debug, Clone, Copy)]
struct Breach {
    resource: Resource,
    /// 1 soft, 2 burst, 3 hard: the highest limit crossed.
    level: u8,
    usage: f64,
    limit: f64,
}

impl Breach {
    /// The breach of `usage` against `limits`, if it reaches the soft limit.
    fn of(resource: Resource, usage: f64, limits: Limits) -> Option<Self> {
        let (level, limit) = if usage >= limits.hard {
            (3, limits.hard)
        } else if usage >= limits.burst {
            (2, limits.burst)
        } else if usage >= limits.soft {
            (1, limits.soft)
        } else {
            return None;
        };
        Some(Self {
            resource,
            level,
            usage,
            limit,
        })
    }

    /// `(usage − limit) / limit`, infinite over a zero limit.
    fn excess(&self) -> f64 {
        if self.limit > 0.0 {
            (self.usage - self.limit) / self.limit
        } else if self.usage > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }

    /// Over a higher limit, or as high and further over it.
    fn worse_than(&self, other: &Self) -> bool {
        self.level > other.level || (self.level == other.level && self.excess() > other.excess())
    }
}

/// One child's standing with its quota: the state machine [`assess`](Self::assess) drives,
/// one sample at a time. See the [module docs](self) for the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaState {
    status: QuotaStatus,
    /// When it entered `status`.
    since: Instant,
    /// The resource whose breach put it in `status` (meaningless while `Ok`).
    cause: Resource,
    /// The first sample of the current violation, if one is going on.
    violating_since: Option<Instant>,
    /// The last sample at which some governed resource read at or above 80 % of its soft
    /// limit; recovery waits for a whole window after it.
    last_high: Option<Instant>,
}

impl QuotaState {
    /// A child within its limits, as of `now` (its start or its restart).
    pub fn new(now: Instant) -> Self {
        Self {
            status: QuotaStatus::Ok,
            since: now,
            cause: Resource::Cpu,
            violating_since: None,
            last_high: None,
        }
    }

    /// Where the child stands now.
    pub fn status(&self) -> QuotaStatus {
        self.status
    }

    /// When it entered its current status.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When the current violation began (its first sample at or above a soft limit);
    /// `None` when there is none.
    pub fn violating_since(&self) -> Option<Instant> {
        self.violating_since
    }

    /// The last sample at which some governed resource read at or above 80 % of its soft
    /// limit; `None` if none has yet.
    pub fn last_high(&self) -> Option<Instant> {
        self.last_high
    }

    /// Takes the sample `usage`, measured at `now`, under `group`, and returns what to do
    /// to the child if its state changes (see the [module docs](self)); `None` when
    /// nothing changes.
    ///
    /// Samples must come in time order; `now` earlier than a previous sample counts as
    /// no time having passed.
    pub fn assess(&mut self, now: Instant, usage: &Usage, group: &QuotaGroup) -> Option<Decision> {
        if self.status == QuotaStatus::Terminated {
            return None;
        }
        let mut worst: Option<Breach> = None;
        let mut calm = true;
        for resource in Resource::ALL {
            let Some(limits) = group.limits(resource) else {
                continue;
            };
            if matches!(resource, Resource::Mailbox | Resource::Stall)
                && self.status == QuotaStatus::Suspended
                && self.cause != resource
            {
                // Its messages wait at the gate because it is suspended: not its doing.
                continue;
            }
            let value = usage.get(resource);
            // Asked this way round so that NaN is not calm: a broken meter must not let a
            // child recover.
            let below = value < RECOVERY_FRACTION * limits.soft;
            if !below {
                calm = false;
            }
            if let Some(breach) = Breach::of(resource, value, limits) {
                if worst.is_none_or(|w| breach.worse_than(&w)) {
                    worst = Some(breach);
                }
            }
        }
        if !calm {
            self.last_high = Some(now);
        }
        match worst {
            Some(breach) => self.violation(now, breach, group),
            None => {
                self.violating_since = None;
                if calm {
                    self.recovery(now, usage, group)
                } else {
                    None
                }
            }
        }
    }

    /// A sample with `breach` the worst resource: escalate if the ladder or the
    /// violation's age calls for more than the current state.
    fn violation(&mut self, now: Instant, breach: Breach, group: &QuotaGroup) -> Option<Decision> {
        let began = *self.violating_since.get_or_insert(now);
        let factor = throttle_factor(breach.usage, breach.limit);
        let ladder = match breach.level {
            // A critical child is only ever restarted, whatever its hard action says.
            3 if group.critical => Action::Restart,
            3 => group.hard_action.action(factor),
            2 if !group.critical => Action::Throttle { factor },
            _ => Action::Warn,
        };
        let aged = if group.critical {
            // Age escalates a critical child no further than a warning.
            Action::Warn
        } else {
            group
                .escalation
                .action(now.saturating_duration_since(began), factor)
        };
        let action = if aged.severity() > ladder.severity() {
            aged
        } else {
            ladder
        };
        let change = match (action, self.status) {
            (Action::Throttle { factor }, QuotaStatus::Throttled(current)) => factor < current,
            _ => action.severity() > self.status.severity(),
        };
        if !change {
            return None;
        }
        let state_after = match action {
            Action::Warn => QuotaStatus::Warned,
            Action::Throttle { factor } => QuotaStatus::Throttled(factor),
            Action::Suspend => QuotaStatus::Suspended,
            Action::Terminate => QuotaStatus::Terminated,
            Action::Restart | Action::Recover => QuotaStatus::Ok,
        };
        if action == Action::Restart {
            *self = Self::new(now);
        } else {
            self.status = state_after;
            self.since = now;
            self.cause = breach.resource;
        }
        Some(Decision {
            action,
            resource: breach.resource,
            usage: breach.usage,
            limit: breach.limit,
            state_after,
        })
    }

    /// A calm sample: recover if the child is not `Ok` and has been calm for the whole
    /// recovery window.
    fn recovery(&mut self, now: Instant, usage: &Usage, group: &QuotaGroup) -> Option<Decision> {
        if self.status == QuotaStatus::Ok {
            return None;
        }
        if let Some(last_high) = self.last_high {
            if now.saturating_duration_since(last_high) < group.recovery {
                return None;
            }
        }
        let resource = self.cause;
        let limit = group
            .limits(resource)
            .map_or(0.0, |l| RECOVERY_FRACTION * l.soft);
        self.status = QuotaStatus::Ok;
        self.since = now;
        Some(Decision {
            action: Action::Recover,
            resource,
            usage: usage.get(resource),
            limit,
            state_after: QuotaStatus::Ok,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn cpu(v: f64) -> Usage {
        Usage::default().with(Resource::Cpu, v)
    }

    /// A group governing only CPU: soft 1, burst 2, hard 4; escalation 1 s / 5 s / 10 s;
    /// recovery 2 s.
    fn cpu_group(hard_action: HardAction) -> QuotaGroup {
        QuotaGroup {
            cpu: Some(Limits {
                soft: 1.0,
                burst: 2.0,
                hard: 4.0,
            }),
            hard_action,
            ..QuotaGroup::ungoverned()
        }
    }

    /// Feeds `usage` every 100 ms from `from_ms` up to and including `to_ms`; returns the
    /// decisions with the time (ms) each was taken.
    fn run(
        state: &mut QuotaState,
        t: Instant,
        from_ms: u64,
        to_ms: u64,
        usage: Usage,
        group: &QuotaGroup,
    ) -> Vec<(u64, Action)> {
        (from_ms..=to_ms)
            .step_by(100)
            .filter_map(|ms| {
                state
                    .assess(at(t, ms), &usage, group)
                    .map(|d| (ms, d.action))
            })
            .collect()
    }

    #[test]
    fn soft_limit_warns_once() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Restart);
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 900, cpu(0.5), &g), []);
        let decisions = run(&mut s, t, 1000, 1900, cpu(1.0), &g);
        assert_eq!(decisions, [(1000, Action::Warn)], "at soft, warned once");
        assert_eq!(s.status(), QuotaStatus::Warned);
        assert_eq!(s.since(), at(t, 1000));
    }

    #[test]
    fn warn_decision_names_resource_usage_and_limit() {
        let t = Instant::now();
        let mut s = QuotaState::new(t);
        let d = s.assess(t, &cpu(1.5), &cpu_group(HardAction::Restart));
        assert_eq!(
            d,
            Some(Decision {
                action: Action::Warn,
                resource: Resource::Cpu,
                usage: 1.5,
                limit: 1.0,
                state_after: QuotaStatus::Warned,
            })
        );
    }

    #[test]
    fn burst_throttles_by_excess_ratio() {
        let g = cpu_group(HardAction::Restart); // burst 2
        for (usage, factor) in [(2.0, 0.9), (2.4, 0.9), (2.5, 0.85), (3.0, 0.85), (3.2, 0.7)] {
            let t = Instant::now();
            let mut s = QuotaState::new(t);
            let d = s.assess(t, &cpu(usage), &g);
            assert_eq!(
                d.map(|d| (d.action, d.limit, d.state_after)),
                Some((
                    Action::Throttle { factor },
                    2.0,
                    QuotaStatus::Throttled(factor)
                )),
                "usage {usage}"
            );
        }
    }

    #[test]
    fn throttle_factor_boundaries() {
        // Excess ratios exactly at a boundary take the lighter throttle (strict >).
        assert_eq!(throttle_factor(8.0, 4.0), 0.7, "ratio 1.0");
        assert_eq!(throttle_factor(8.5, 4.0), 0.5, "ratio 1.125");
        assert_eq!(throttle_factor(6.0, 4.0), 0.85, "ratio 0.5");
        assert_eq!(throttle_factor(6.0, 5.0), 0.9, "ratio 0.2");
        assert_eq!(throttle_factor(4.0, 4.0), 0.9, "ratio 0");
        assert_eq!(throttle_factor(1.0, 0.0), 0.5, "over a zero limit");
        assert_eq!(throttle_factor(0.0, 0.0), 0.9);
    }

    #[test]
    fn throttle_tightens_but_never_loosens_while_violating() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Restart);
        let mut s = QuotaState::new(t);
        let d = s.assess(at(t, 0), &cpu(2.1), &g).map(|d| d.action);
        assert_eq!(d, Some(Action::Throttle { factor: 0.9 }));
        let d = s.assess(at(t, 100), &cpu(3.5), &g).map(|d| d.action);
        assert_eq!(d, Some(Action::Throttle { factor: 0.7 }));
        assert_eq!(s.assess(at(t, 200), &cpu(3.5), &g), None, "same factor");
        assert_eq!(s.assess(at(t, 300), &cpu(2.1), &g), None, "never loosens");
        assert_eq!(s.assess(at(t, 400), &cpu(1.1), &g), None, "soft is below");
        assert_eq!(s.status(), QuotaStatus::Throttled(0.7));
    }

    #[test]
    fn hard_limit_applies_the_groups_action_at_once() {
        for (hard_action, action, state) in [
            (
                HardAction::Throttle,
                Action::Throttle { factor: 0.85 },
                QuotaStatus::Throttled(0.85),
            ),
            (HardAction::Suspend, Action::Suspend, QuotaStatus::Suspended),
            (HardAction::Restart, Action::Restart, QuotaStatus::Ok),
            (
                HardAction::Terminate,
                Action::Terminate,
                QuotaStatus::Terminated,
            ),
        ] {
            let t = Instant::now();
            let mut s = QuotaState::new(t);
            let g = cpu_group(hard_action);
            // 5 over a hard limit of 4: 25 % over → 0.85 if throttled.
            let d = s.assess(t, &cpu(5.0), &g);
            assert_eq!(
                d.map(|d| (d.action, d.limit, d.state_after)),
                Some((action, 4.0, state)),
                "{hard_action:?}"
            );
            assert_eq!(s.status(), state);
        }
    }

    #[test]
    fn hard_limit_escalates_from_any_lower_state() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Suspend);
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 0, cpu(1.0), &g), [(0, Action::Warn)]);
        let thr = Action::Throttle { factor: 0.9 };
        assert_eq!(run(&mut s, t, 100, 100, cpu(2.0), &g), [(100, thr)]);
        assert_eq!(
            run(&mut s, t, 200, 300, cpu(4.0), &g),
            [(200, Action::Suspend)]
        );
    }

    #[test]
    fn restart_starts_the_next_incarnation_clean() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Restart);
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 900, cpu(1.0), &g), [(0, Action::Warn)]);
        assert_eq!(
            run(&mut s, t, 1000, 1000, cpu(4.0), &g),
            [(1000, Action::Restart)]
        );
        assert_eq!(s, QuotaState::new(at(t, 1000)));
        // The new incarnation is warned afresh, and its escalation clock starts anew.
        assert_eq!(
            run(&mut s, t, 1100, 2000, cpu(1.0), &g),
            [(1100, Action::Warn)]
        );
        assert_eq!(
            run(&mut s, t, 2100, 2100, cpu(1.0), &g),
            [(2100, Action::Throttle { factor: 0.9 })]
        );
    }

    #[test]
    fn persistence_escalates_exactly_at_the_delays() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Restart);
        let mut s = QuotaState::new(t);
        // Every 100 ms at soft (never burst or hard) for 12 s.
        let decisions = run(&mut s, t, 0, 12_000, cpu(1.0), &g);
        assert_eq!(
            decisions,
            [
                (0, Action::Warn),
                (1000, Action::Throttle { factor: 0.9 }),
                (5000, Action::Suspend),
                (10_000, Action::Terminate),
            ]
        );
    }

    #[test]
    fn escalation_is_not_early_between_samples() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Restart);
        let mut s = QuotaState::new(t);
        assert!(s.assess(at(t, 0), &cpu(1.0), &g).is_some());
        assert_eq!(s.assess(at(t, 999), &cpu(1.0), &g), None);
        let d = s.assess(at(t, 1000), &cpu(1.0), &g).map(|d| d.action);
        assert_eq!(d, Some(Action::Throttle { factor: 0.9 }));
        assert_eq!(s.assess(at(t, 4999), &cpu(1.0), &g), None);
        let d = s.assess(at(t, 5000), &cpu(1.0), &g).map(|d| d.action);
        assert_eq!(d, Some(Action::Suspend));
        assert_eq!(s.assess(at(t, 9999), &cpu(1.0), &g), None);
        let d = s.assess(at(t, 10_000), &cpu(1.0), &g).map(|d| d.action);
        assert_eq!(d, Some(Action::Terminate));
    }

    #[test]
    fn escalation_counts_from_the_violations_start_not_the_state() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Terminate);
        let mut s = QuotaState::new(t);
        // Throttled by burst at 0; the suspension comes 5 s after the violation began.
        let decisions = run(&mut s, t, 0, 5000, cpu(2.0), &g);
        assert_eq!(
            decisions,
            [
                (0, Action::Throttle { factor: 0.9 }),
                (5000, Action::Suspend)
            ]
        );
    }

    #[test]
    fn a_sample_below_soft_ends_the_violation() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Restart);
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 900, cpu(1.0), &g), [(0, Action::Warn)]);
        // 0.9 is below soft but above 80 % of it: still warned, but the violation ended.
        assert_eq!(run(&mut s, t, 1000, 1000, cpu(0.9), &g), []);
        assert_eq!(s.violating_since(), None);
        assert_eq!(run(&mut s, t, 1100, 2000, cpu(1.0), &g), []);
        assert_eq!(
            run(&mut s, t, 2100, 2100, cpu(1.0), &g),
            [(2100, Action::Throttle { factor: 0.9 })],
            "1 s after the violation restarted at 1100"
        );
    }

    #[test]
    fn terminated_is_final() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Terminate);
        let mut s = QuotaState::new(t);
        assert!(s.assess(t, &cpu(9.0), &g).is_some());
        assert_eq!(run(&mut s, t, 100, 20_000, cpu(0.0), &g), []);
        assert_eq!(run(&mut s, t, 20_100, 30_000, cpu(9.0), &g), []);
        assert_eq!(s.status(), QuotaStatus::Terminated);
    }

    #[test]
    fn recovery_needs_the_whole_window_below_80_percent_of_soft() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Restart); // soft 1: calm below 0.8; recovery 2 s
        let mut s = QuotaState::new(t);
        let thr = Action::Throttle { factor: 0.9 };
        assert_eq!(run(&mut s, t, 0, 0, cpu(2.0), &g), [(0, thr)]);
        // Below soft but not below 80 % of it: never recovers.
        assert_eq!(run(&mut s, t, 100, 5000, cpu(0.8), &g), []);
        assert_eq!(s.last_high(), Some(at(t, 5000)));
        // Calm from 5100: recovers 2 s after the last high sample (5000), not before.
        assert_eq!(run(&mut s, t, 5100, 6900, cpu(0.79), &g), []);
        let d = s.assess(at(t, 7000), &cpu(0.79), &g);
        assert_eq!(
            d,
            Some(Decision {
                action: Action::Recover,
                resource: Resource::Cpu,
                usage: 0.79,
                limit: 0.8,
                state_after: QuotaStatus::Ok,
            })
        );
        assert_eq!(s.status(), QuotaStatus::Ok);
        assert_eq!(
            run(&mut s, t, 7100, 9000, cpu(0.0), &g),
            [],
            "recovered once"
        );
    }

    #[test]
    fn one_sample_above_restarts_the_recovery_window() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Suspend);
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 0, cpu(4.0), &g), [(0, Action::Suspend)]);
        assert_eq!(run(&mut s, t, 100, 900, cpu(0.0), &g), []);
        assert_eq!(
            run(&mut s, t, 1000, 1000, cpu(0.85), &g),
            [],
            "one sample high"
        );
        assert_eq!(run(&mut s, t, 1100, 2900, cpu(0.0), &g), []);
        assert_eq!(
            run(&mut s, t, 3000, 3000, cpu(0.0), &g),
            [(3000, Action::Recover)],
            "2 s after the high sample at 1000"
        );
    }

    #[test]
    fn warned_recovers_to_ok_and_is_warned_again() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Restart);
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 0, cpu(1.0), &g), [(0, Action::Warn)]);
        assert_eq!(
            run(&mut s, t, 100, 2100, cpu(0.0), &g),
            [(2000, Action::Recover)]
        );
        assert_eq!(
            run(&mut s, t, 2200, 2300, cpu(1.0), &g),
            [(2200, Action::Warn)]
        );
    }

    #[test]
    fn recovery_needs_every_governed_resource_calm() {
        let t = Instant::now();
        let g = QuotaGroup::standard(); // cpu soft 0.15, memory soft 200 MB
        let mut s = QuotaState::new(t);
        let d = s.assess(t, &cpu(0.2), &g).map(|d| d.action);
        assert_eq!(d, Some(Action::Warn));
        let cpu_calm_memory_high = cpu(0.0).with(Resource::Memory, 170e6);
        assert_eq!(run(&mut s, t, 100, 5000, cpu_calm_memory_high, &g), []);
        assert_eq!(
            run(&mut s, t, 5100, 7000, cpu(0.0), &g),
            [(7000, Action::Recover)]
        );
    }

    #[test]
    fn the_worst_resource_decides() {
        let t = Instant::now();
        let g = QuotaGroup::standard();
        let mut s = QuotaState::new(t);
        // cpu at soft; mailbox 140 over its hard limit 128 → restart, on the mailbox.
        let usage = cpu(0.16).with(Resource::Mailbox, 140.0);
        let d = s.assess(t, &usage, &g);
        assert_eq!(
            d.map(|d| (d.action, d.resource, d.limit)),
            Some((Action::Restart, Resource::Mailbox, 128.0))
        );
        // Both over burst: the one further over it decides.
        let mut s = QuotaState::new(t);
        // heavy: cpu burst 0.6, mailbox burst 384; 25 % over vs 1.6 % over.
        let usage = cpu(0.75).with(Resource::Mailbox, 390.0);
        let d = s
            .assess(t, &usage, &QuotaGroup::heavy())
            .map(|d| d.resource);
        assert_eq!(d, Some(Resource::Cpu));
    }

    #[test]
    fn an_ungoverned_resource_never_acts() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Terminate);
        let mut s = QuotaState::new(t);
        let huge = Usage {
            cpu: 0.0,
            memory: f64::MAX,
            mailbox: 1e12,
            rate: f64::INFINITY,
            stall: 1e9,
        };
        assert_eq!(run(&mut s, t, 0, 30_000, huge, &g), []);
        assert_eq!(s.status(), QuotaStatus::Ok);
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 1000, huge, &QuotaGroup::ungoverned()), []);
    }

    #[test]
    fn suspended_mailbox_is_not_held_against_the_child() {
        let t = Instant::now();
        let g = QuotaGroup::heavy(); // cpu hard 0.8 → suspend; mailbox soft 256
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 0, cpu(0.9), &g), [(0, Action::Suspend)]);
        // Suspended, its CPU falls to 0 while messages pile up at its gate.
        let backlog = cpu(0.0).with(Resource::Mailbox, 600.0);
        assert_eq!(
            run(&mut s, t, 100, 2000, backlog, &g),
            [(2000, Action::Recover)]
        );
    }

    #[test]
    fn suspended_for_a_flood_escalates_to_terminate() {
        let t = Instant::now();
        let g = QuotaGroup::heavy(); // mailbox hard 512 → suspend
        let mut s = QuotaState::new(t);
        let flood = Usage::default().with(Resource::Mailbox, 600.0);
        assert_eq!(
            run(&mut s, t, 0, 12_000, flood, &g),
            [(0, Action::Suspend), (10_000, Action::Terminate)]
        );
    }

    #[test]
    fn nan_readings_neither_act_nor_recover() {
        let t = Instant::now();
        let g = cpu_group(HardAction::Restart);
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 0, cpu(1.0), &g), [(0, Action::Warn)]);
        assert_eq!(run(&mut s, t, 100, 10_000, cpu(f64::NAN), &g), []);
        assert_eq!(s.status(), QuotaStatus::Warned);
    }

    #[test]
    fn built_in_groups_are_valid() {
        for name in QuotaGroup::NAMES {
            let g = QuotaGroup::named(name).unwrap();
            assert_eq!(g.check(name), Vec::<(String, String)>::new(), "{name}");
            for r in Resource::ALL {
                // Only the critical group governs stall; the others leave it alone.
                let Some(l) = g.limits(r) else {
                    assert!(r == Resource::Stall && !g.critical, "{name}.{r} ungoverned");
                    continue;
                };
                assert!(l.soft < l.burst && l.burst < l.hard, "{name}.{r}: {l:?}");
            }
            assert_eq!(g.critical, name == "critical", "{name}");
        }
        assert_eq!(QuotaGroup::named("huge"), None);
        assert_eq!(QuotaGroup::lightweight().hard_action, HardAction::Throttle);
        assert_eq!(QuotaGroup::standard().hard_action, HardAction::Restart);
        assert_eq!(QuotaGroup::heavy().hard_action, HardAction::Suspend);
        let critical = QuotaGroup::critical();
        assert_eq!(critical.hard_action, HardAction::Restart);
        assert_eq!(critical.stall, Some(Limits::midway(0.1, 0.2)));
        assert_eq!(critical.cpu, Some(Limits::midway(0.25, 0.5)));
        assert_eq!(critical.memory, QuotaGroup::standard().memory);
        assert_eq!(
            QuotaGroup::lightweight().cpu,
            Some(Limits::midway(0.05, 0.1))
        );
        assert_eq!(QuotaGroup::heavy().memory, Some(Limits::midway(1e9, 2e9)));
    }

    #[test]
    fn limits_checks_name_the_key() {
        let key = "quotas.groups.heavy.memory";
        let bad = |soft, burst, hard| Limits { soft, burst, hard }.check(key);
        assert_eq!(bad(1.0, 1.0, 1.0), []);
        assert_eq!(
            bad(2.0, 1.5, 1.0),
            [(
                "quotas.groups.heavy.memory.hard".to_string(),
                "must be >= soft (is 1, soft is 2)".to_string()
            )]
        );
        assert_eq!(bad(1.0, 3.0, 2.0)[0].0, "quotas.groups.heavy.memory.burst");
        assert_eq!(bad(1.0, 0.5, 2.0)[0].0, "quotas.groups.heavy.memory.burst");
        let neg = bad(-1.0, -0.5, f64::INFINITY);
        assert_eq!(
            neg.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            [
                "quotas.groups.heavy.memory.soft",
                "quotas.groups.heavy.memory.hard"
            ]
        );
        assert_eq!(neg[0].1, "must be a finite number >= 0 (is -1)");
        let nan = bad(0.0, f64::NAN, 1.0);
        assert_eq!(nan[0].0, "quotas.groups.heavy.memory.burst");
    }

    #[test]
    fn escalation_order_is_checked() {
        let mut g = QuotaGroup::standard();
        g.escalation.suspend_after = Duration::from_millis(500);
        let problems = g.check("quotas.groups.standard");
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].0,
            "quotas.groups.standard.escalation.suspend_after_ms"
        );
        g.escalation = Escalation {
            terminate_after: Duration::from_secs(4),
            ..Escalation::default()
        };
        let problems = g.check("q");
        assert_eq!(problems[0].0, "q.escalation.terminate_after_ms");
    }

    fn record(secs: u64, action: Action) -> Enforcement {
        Enforcement {
            at: Duration::from_secs(secs),
            resource: Resource::Cpu,
            usage: 0.5,
            limit: 0.3,
            action,
        }
    }

    #[test]
    fn enforcement_serializes_flat_with_seconds() {
        let d = Decision {
            action: Action::Throttle { factor: 0.5 },
            resource: Resource::Memory,
            usage: 250.0,
            limit: 100.0,
            state_after: QuotaStatus::Throttled(0.5),
        };
        let e = Enforcement::new(Duration::from_millis(12_300), &d);
        assert_eq!(
            serde_json::to_value(e).unwrap(),
            serde_json::json!({"at": 12.3, "resource": "memory", "usage": 250.0,
                               "limit": 100.0, "action": "throttle", "factor": 0.5})
        );
        let warn = serde_json::to_value(record(1, Action::Warn)).unwrap();
        assert_eq!(warn["action"], "warn");
        assert!(warn.get("factor").is_none());
    }

    #[test]
    fn history_keeps_the_last_n_oldest_first() {
        let mut h = History::new(3);
        assert!(h.is_empty());
        for secs in 0..5 {
            h.push(record(secs, Action::Warn));
        }
        let kept: Vec<_> = h.iter().map(|e| e.at.as_secs()).collect();
        assert_eq!(kept, [2, 3, 4]);
        assert_eq!(h.len(), 3);
        assert_eq!(h.enforcements_total(), 5);
        let by_action: u64 = h.enforcements_by_action().map(|(_, n)| n).sum();
        assert_eq!(by_action, 5, "every push is counted under its action");
        assert_eq!(h.latest().map(|e| e.at.as_secs()), Some(4));
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json.as_array().map(Vec::len), Some(3));
        assert_eq!(json[0]["at"], 2.0);
    }

    #[test]
    fn history_of_zero_only_counts() {
        let mut h = History::new(0);
        h.push(record(0, Action::Suspend));
        assert!(h.is_empty());
        assert_eq!(h.enforcements_total(), 1);
        assert_eq!(History::default().capacity, History::DEFAULT_CAPACITY);
    }

    /// Every usage level of every resource, from calm to far over hard.
    fn every_breach() -> Vec<Usage> {
        let g = QuotaGroup::critical();
        let mut out = vec![Usage::default()];
        for r in Resource::ALL {
            let l = g.limits(r).unwrap();
            for v in [l.soft, l.burst, l.hard, 10.0 * l.hard + 1.0] {
                out.push(Usage::default().with(r, v));
            }
        }
        out
    }

    #[test]
    fn a_critical_group_only_warns_and_restarts() {
        // Even with a hard action it may not have (as if built by hand), over every
        // resource, every level, held for 30 s: never throttle, suspend or terminate.
        for hard_action in [HardAction::Terminate, HardAction::Restart] {
            let g = QuotaGroup {
                hard_action,
                ..QuotaGroup::critical()
            };
            for usage in every_breach() {
                let t = Instant::now();
                let mut s = QuotaState::new(t);
                for (ms, action) in run(&mut s, t, 0, 30_000, usage, &g) {
                    assert!(
                        matches!(action, Action::Warn | Action::Restart | Action::Recover),
                        "{usage:?} at {ms} ms: {action:?}"
                    );
                }
                assert!(matches!(s.status(), QuotaStatus::Ok | QuotaStatus::Warned));
            }
        }
    }

    #[test]
    fn a_critical_group_warns_at_burst_and_restarts_at_hard() {
        let t = Instant::now();
        let g = QuotaGroup::critical(); // stall 0.1 / 0.15 / 0.2 s
        let mut s = QuotaState::new(t);
        let stall = |v| Usage::default().with(Resource::Stall, v);
        // Over burst for 12 s: warned once, never escalated by age.
        assert_eq!(
            run(&mut s, t, 0, 12_000, stall(0.15), &g),
            [(0, Action::Warn)]
        );
        let d = s.assess(at(t, 12_100), &stall(0.2), &g).unwrap();
        assert_eq!(
            (d.action, d.resource, d.limit, d.state_after),
            (Action::Restart, Resource::Stall, 0.2, QuotaStatus::Ok)
        );
        // CPU over hard (0.5 of a core) restarts too, never throttles.
        let mut s = QuotaState::new(t);
        let d = s.assess(t, &cpu(0.9), &g).map(|d| d.action);
        assert_eq!(d, Some(Action::Restart));
    }

    #[test]
    fn a_critical_group_may_only_restart() {
        for action in [
            HardAction::Throttle,
            HardAction::Suspend,
            HardAction::Terminate,
        ] {
            let g = QuotaGroup {
                hard_action: action,
                ..QuotaGroup::critical()
            };
            assert_eq!(
                g.check("quotas.groups.mine"),
                [(
                    "quotas.groups.mine.hard_action".to_string(),
                    format!(
                        "a critical group may only restart (is \"{}\")",
                        action.as_str()
                    )
                )]
            );
            // Not critical, the same action is fine.
            let g = QuotaGroup {
                critical: false,
                ..g
            };
            assert_eq!(g.check("q"), Vec::<(String, String)>::new());
        }
    }

    #[test]
    fn stall_while_suspended_for_something_else_is_not_held_against_the_child() {
        let t = Instant::now();
        let g = QuotaGroup {
            stall: Some(Limits::midway(0.1, 0.2)),
            ..QuotaGroup::heavy() // cpu hard 0.8 → suspend
        };
        let mut s = QuotaState::new(t);
        assert_eq!(run(&mut s, t, 0, 0, cpu(0.9), &g), [(0, Action::Suspend)]);
        let held = cpu(0.0).with(Resource::Stall, 5.0);
        assert_eq!(
            run(&mut s, t, 100, 2000, held, &g),
            [(2000, Action::Recover)]
        );
    }

    #[test]
    fn names_are_snake_case() {
        let names: Vec<_> = Resource::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["cpu", "memory", "mailbox", "rate", "stall"]);
        assert_eq!(Action::Throttle { factor: 0.5 }.as_str(), "throttle");
        assert_eq!(QuotaStatus::Throttled(0.5).as_str(), "throttled");
        assert_eq!(HardAction::Terminate.as_str(), "terminate");
    }
}
