//! The record of what was done to a child: one [`Enforcement`] per applied decision, the
//! last few kept in a bounded [`History`].

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::limits::Resource;
use super::state::{Action, Decision};

/// One applied decision, as kept in a child's [`History`] and shown by introspection.
///
/// Serialized flat, `at` in seconds: `{"at": 12.3, "resource": "cpu", "usage": 0.4,
/// "limit": 0.3, "action": "throttle", "factor": 0.5}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Enforcement {
    /// When it was decided, as time since a reference the enforcer picks (the tree's
    /// start), so that it serializes as plain seconds.
    #[serde(serialize_with = "as_secs", deserialize_with = "from_secs")]
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

fn from_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs)
        .map_err(|e| serde::de::Error::custom(format_args!("enforcement time {secs} s: {e}")))
}

/// The last few [`Enforcement`]s of one child, oldest first: a bounded ring, so a child
/// that flaps forever costs a fixed amount of memory. Serialized as a list.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    entries: VecDeque<Enforcement>,
    pub(super) capacity: usize,
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

#[cfg(test)]
mod tests {
    use super::super::QuotaStatus;
    use super::*;

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
}
