//! Where a child stands with its quota ([`QuotaStatus`]) and what a sample decides to do
//! to it ([`Decision`], carrying an [`Action`]).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::limits::Resource;

/// What a supervisor does to a child, as decided by [`QuotaState::assess`](super::QuotaState::assess).
///
/// Serialized with the name under `action` and a throttle's factor beside it:
/// `{"action": "throttle", "factor": 0.7}`, `{"action": "warn"}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
    /// Move the child's work to another host, or back home (host pressure, see
    /// [`super::migrate`]): `{"action": "migrate", "to": "away"}`.
    Migrate {
        /// Where the work goes.
        to: super::Site,
    },
}

impl Action {
    /// Every action's name, in declaration order.
    pub const NAMES: [&'static str; 7] = [
        "warn",
        "throttle",
        "suspend",
        "restart",
        "terminate",
        "recover",
        "migrate",
    ];

    pub(super) fn index(&self) -> usize {
        match self {
            Self::Warn => 0,
            Self::Throttle { .. } => 1,
            Self::Suspend => 2,
            Self::Restart => 3,
            Self::Terminate => 4,
            Self::Recover => 5,
            Self::Migrate { .. } => 6,
        }
    }

    /// The snake_case name used in logs and the `action` label of metrics.
    pub fn as_str(&self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// How drastic the action is; restart sits between suspend and terminate because it
    /// loses the child's state but keeps it running.
    pub(super) fn severity(&self) -> u8 {
        match self {
            // A move changes where the work runs, not what it may do.
            Self::Recover | Self::Migrate { .. } => 0,
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
            Self::Migrate { to } => write!(f, "migrate {to}"),
            other => f.write_str(other.as_str()),
        }
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
    pub(super) fn severity(&self) -> u8 {
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
