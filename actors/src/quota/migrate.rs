//! Migration (seed 001's `migrate` action): under sustained critical host pressure a
//! supervisor moves a `migratable` child's work to another host, and back home once the
//! pressure has cleared for a while.
//!
//! The supervisor decides, at its sampling tick, from the tree's [`Pressure`](super::Pressure) level and
//! the child's [`External`](crate::External) (which says where the work runs now and
//! carries a move out): critical for [`Migration::after`] while at home → move away;
//! not critical for [`Migration::back_after`] while away → move home. Each move that gets
//! where it went is one [`Action::Migrate`](super::Action::Migrate) in the child's
//! enforcement history, its metric and the tree's events, like any quota action,
//! recorded when the external says it is over (a move takes a while: stopping the work
//! here, starting it there). A move refused (no host to go to), or over without getting
//! there, is not recorded, and is retried only once the condition has held for its whole
//! delay again, so an absent host costs one try per delay, not one per tick.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Decision, PressureLevel};

/// Where a migratable child's work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Site {
    /// Where it is configured to run (its own process).
    Home,
    /// On the host it migrated to.
    Away,
}

impl Site {
    /// `home` or `away`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Home => "home",
            Self::Away => "away",
        }
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a migratable child moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// How long host pressure must stay critical before the work moves away.
    pub after: Duration,
    /// How long it must stay below critical before the work moves home.
    pub back_after: Duration,
}

/// A child's migration timer (since when the condition for the next move has held), and
/// the move under way, if one is.
#[derive(Debug)]
pub(crate) struct Migrating {
    policy: Migration,
    since: Option<Instant>,
    /// A move the external took and has not finished: when it was decided, where to,
    /// and its record, pushed once the move is done.
    pub(crate) pending: Option<(Instant, Site, Decision)>,
}

impl Migrating {
    pub(crate) fn new(policy: Migration) -> Self {
        Self {
            policy,
            since: None,
            pending: None,
        }
    }

    /// The move due at `now` for work at `at` under `level`, if any. The condition's
    /// clock starts again at each answer, so a refused move waits a whole delay.
    pub(crate) fn due(&mut self, now: Instant, level: PressureLevel, at: Site) -> Option<Site> {
        let (holds, delay, to) = match at {
            Site::Home => (
                level == PressureLevel::Critical,
                self.policy.after,
                Site::Away,
            ),
            Site::Away => (
                level < PressureLevel::Critical,
                self.policy.back_after,
                Site::Home,
            ),
        };
        if !holds {
            self.since = None;
            return None;
        }
        let since = *self.since.get_or_insert(now);
        if now.saturating_duration_since(since) < delay {
            return None;
        }
        self.since = Some(now);
        Some(to)
    }

    /// A new incarnation starts at home, its clock afresh; a move the old one was
    /// making is void.
    pub(crate) fn restarted(&mut self) {
        self.since = None;
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn policy() -> Migrating {
        Migrating::new(Migration {
            after: 3 * S,
            back_after: 5 * S,
        })
    }

    #[test]
    fn moves_away_only_after_sustained_critical_pressure() {
        let (mut m, t0) = (policy(), Instant::now());
        let critical = PressureLevel::Critical;
        assert_eq!(m.due(t0, critical, Site::Home), None);
        assert_eq!(m.due(t0 + 2 * S, critical, Site::Home), None);
        // A dip below critical starts the clock again.
        assert_eq!(m.due(t0 + 2 * S, PressureLevel::Elevated, Site::Home), None);
        assert_eq!(m.due(t0 + 4 * S, critical, Site::Home), None);
        assert_eq!(m.due(t0 + 6 * S, critical, Site::Home), None);
        assert_eq!(m.due(t0 + 7 * S, critical, Site::Home), Some(Site::Away));
        // Answered: a refused move is asked again only after a whole delay.
        assert_eq!(m.due(t0 + 7 * S, critical, Site::Home), None);
        assert_eq!(m.due(t0 + 9 * S, critical, Site::Home), None);
        assert_eq!(m.due(t0 + 10 * S, critical, Site::Home), Some(Site::Away));
    }

    #[test]
    fn moves_home_once_pressure_has_cleared_for_a_while() {
        let (mut m, t0) = (policy(), Instant::now());
        assert_eq!(m.due(t0, PressureLevel::Critical, Site::Away), None);
        assert_eq!(m.due(t0 + S, PressureLevel::Elevated, Site::Away), None);
        assert_eq!(m.due(t0 + 5 * S, PressureLevel::Normal, Site::Away), None);
        assert_eq!(
            m.due(t0 + 6 * S, PressureLevel::Normal, Site::Away),
            Some(Site::Home)
        );
        // Never home while critical, however long.
        m.restarted();
        assert_eq!(m.due(t0, PressureLevel::Critical, Site::Away), None);
        assert_eq!(
            m.due(t0 + 60 * S, PressureLevel::Critical, Site::Away),
            None
        );
    }
}
