//! Quota enforcement at each sampling tick: measure every governed child, apply gate
//! actions at once and restart or terminate through the child's life cycle.
//!
//! A child standing for work in another process ([`crate::external`]) is killed through
//! its external at the sample that decides a restart or termination, before it is stopped
//! as any other: the kernel's kill is immediate, whatever that work's handlers do.

use ractor::{ActorProcessingErr, ActorRef};
use tokio::time::Instant;

use super::children::Phase;
use super::restart::Next;
use super::spec::Shutdown;
use super::{SupervisorMsg, SupervisorState};
use crate::event::TreeEvent;
use crate::exit::ExitReason;
use crate::managed::Counters;
use crate::path::ActorPath;
use crate::quota::enforcer::Governed;
use crate::quota::{enforcer, Action, Decision, Pressure, Resource, Site};

impl SupervisorState {
    /// Measures every governed child and enforces its quota: gate actions at once,
    /// restart and terminate through the child's life cycle. A child restarted or
    /// terminated for a stall is killed at once ([`Shutdown::BrutalKill`]) rather than
    /// stopped by its shutdown policy: a wedged handler would not finish its message, and
    /// waiting out its grace would leave it silent that much longer. A child of a critical
    /// group restarted for any other resource gets at most one sampling interval of grace.
    pub(super) async fn sample(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        let interval = self.flags.sample_interval.unwrap_or_default();
        let mut decided = Vec::new();
        let mut moved = Vec::new();
        for c in self.table().iter_mut() {
            let (Some(governed), Phase::Running) = (c.governed.as_mut(), c.phase) else {
                continue;
            };
            let sampled = governed.sample(
                c.path.as_str(),
                &c.counters,
                now,
                interval,
                &self.shared.pressure,
            );
            if let Some(outcome) = migrate(governed, &c.counters, now, &self.shared.pressure) {
                moved.push((c.path.clone(), outcome));
            }
            let Some((d, usage)) = sampled else {
                continue;
            };
            let gate_only = enforcer::apply_gate(&d, &usage, &c.counters);
            // A critical child is stopped within one sampling interval: its replacement
            // must not wait out a long grace (whatever stops while it is gone covers it).
            let grace = match c.spec.shutdown_policy() {
                Shutdown::Timeout(d) if governed.critical() => Some(d.min(interval)),
                Shutdown::Infinity if governed.critical() => Some(interval),
                _ => None,
            };
            // Work in another process is killed by the kernel at the deciding sample: a
            // handler there that never yields cannot delay it.
            let external = (!gate_only).then(|| c.counters.external()).flatten();
            decided.push((c.id, c.path.clone(), d, gate_only, grace, external));
        }
        // Logged once the table is released: readers (tree dumps) never wait on log I/O.
        for (path, outcome) in moved {
            self.report_migration(now, path, outcome);
        }
        let mut drastic = Vec::new();
        for (id, path, d, gate_only, grace, external) in decided {
            if let Some(external) = external {
                external.kill();
            }
            tracing::warn!(
                %path,
                resource = d.resource.as_str(),
                usage = d.usage,
                limit = d.limit,
                action = d.action.as_str(),
                factor = match d.action {
                    Action::Throttle { factor } => Some(factor),
                    _ => None,
                },
                state = %d.state_after,
                "quota enforcement"
            );
            self.publish_enforced(now, path, &d);
            if !gate_only {
                let what = format!("{} {} over limit {}", d.resource.as_str(), d.usage, d.limit);
                drastic.push((id, d.action, d.resource, what, grace));
            }
        }
        for (id, action, resource, what, grace) in drastic {
            let policy = if resource == Resource::Stall {
                Some(Shutdown::BrutalKill)
            } else {
                grace.map(Shutdown::Timeout)
            };
            self.stop_child_by(id, policy).await;
            let reason = ExitReason::Quota(format!("{what} ({action})"));
            match action {
                Action::Restart => self.on_child_exit(myself, id, reason).await?,
                _ => {
                    // Terminated: stopped by its shutdown policy and not restarted.
                    if let Some(c) = self.table().get_mut(id) {
                        c.last_exit = Some(reason.clone());
                    }
                    self.report_exit(id, &reason, Next::Stop);
                }
            }
        }
        Ok(())
    }
}

impl SupervisorState {
    /// Logs how a move of the child at `path` ended and, for one that got there, tells
    /// the tree's event feed (so the audit trail and the timeline).
    fn report_migration(&self, now: Instant, path: ActorPath, outcome: Migrated) {
        match outcome {
            Ok(d) => {
                tracing::warn!(
                    %path,
                    resource = d.resource.as_str(),
                    usage = d.usage,
                    limit = d.limit,
                    action = %d.action,
                    "host pressure: migration"
                );
                self.publish_enforced(now, path, &d);
            }
            Err((to, why)) => {
                tracing::warn!(%path, to = %to, %why, "host pressure: migration not possible now");
            }
        }
    }

    /// Settles a move child `id` was making as it stops: one that got where it went
    /// before the child stopped is recorded now (its next incarnation starts afresh with
    /// no move pending), one that had not is over without getting there.
    pub(super) fn settle_migration(&self, id: u64) {
        let settled = {
            let mut table = self.table();
            let Some(c) = table.get_mut(id) else {
                return;
            };
            let (Some(governed), Some(external)) = (c.governed.as_mut(), c.counters.external())
            else {
                return;
            };
            governed
                .migration_settled(external.site(), false)
                .map(|outcome| (c.path.clone(), outcome))
        };
        if let Some((path, outcome)) = settled {
            self.report_migration(Instant::now(), path, outcome);
        }
    }

    /// Tells the tree's event feed of an applied `d` on the child at `path`.
    fn publish_enforced(&self, at: Instant, path: ActorPath, d: &Decision) {
        self.shared.events.publish(|| TreeEvent::QuotaEnforced {
            at,
            path,
            resource: d.resource,
            usage: d.usage,
            limit: d.limit,
            action: d.action,
        });
    }
}

/// How a move ended: its record, or where it was going and why it did not get there.
type Migrated = Result<Decision, (Site, String)>;

/// Moves a migratable child's work when host pressure says so, and follows the move: the
/// record of a move that got where it went (to log and publish), or where a move would
/// have gone and why it did not (refused, or over without getting there).
fn migrate(
    governed: &mut Governed,
    counters: &Counters,
    now: Instant,
    pressure: &Pressure,
) -> Option<Migrated> {
    // Most children never migrate: their external (a lock on the table of attached
    // ones) is not looked up at every sample.
    if !governed.is_migratable() {
        return None;
    }
    let external = counters.external()?;
    if let Some(over) = governed.migration_settled(external.site(), external.moving()) {
        return Some(over);
    }
    let to = governed.migration_due(now, pressure, external.site()?)?;
    if let Err(why) = external.migrate(to) {
        return Some(Err((to, why)));
    }
    governed.migration_taken(now, pressure, to);
    // An external that moves at once is done already.
    governed.migration_settled(external.site(), external.moving())
}
