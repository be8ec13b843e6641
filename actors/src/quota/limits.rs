//! What a quota measures and where it draws the lines: the [`Resource`]s, one sample's
//! [`Usage`], the [`Limits`] of one resource, and the [`throttle_factor`] of an excess.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    /// config key `stall`. See the [module docs](crate::quota).
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
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
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
/// [`HardAction`](super::HardAction) applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

/// The limits in force for each resource (`None`: not governed), as the tree shows them
/// next to a child's [`Usage`]: what an observer draws a reading against.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct QuotaLimits {
    /// CPU share of one core.
    pub cpu: Option<Limits>,
    /// Bytes held.
    pub memory: Option<Limits>,
    /// Messages waiting.
    pub mailbox: Option<Limits>,
    /// Messages handled per second.
    pub rate: Option<Limits>,
    /// Seconds stuck.
    pub stall: Option<Limits>,
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
