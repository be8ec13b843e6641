//! The read model: what a supervisor lets others read without messaging it.
//!
//! [`Shared`] holds one supervisor's child table behind a short lock, with the tree-wide
//! pressure level and event feed. Snapshots for the tree view, counter and actor
//! look-ups by path, and the answers to [`which_children`](super::SupervisorRef::which_children)
//! and [`count_children`](super::SupervisorRef::count_children) are all read here; only
//! the supervisor itself writes the table.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ractor::ActorCell;

use super::api::{ChildCounts, ChildInfo, Incarnation};
use super::children::{Children, Phase};
use super::spec::{ChildKind, Strategy};
use crate::event::EventFeed;
use crate::exit::ExitReason;
use crate::external;
use crate::introspect::{NodeSnapshot, QuotaSnapshot, Status};
use crate::managed::Counters;
use crate::path::ActorPath;
use crate::quota::Pressure;

/// The part of a supervisor that readers share: its child table, why it ended, and
/// the tree's pressure level and event feed (one of each for the whole tree).
pub(crate) struct Shared {
    pub(crate) path: ActorPath,
    strategy: Strategy,
    pub(crate) pressure: Pressure,
    children: Mutex<Children>,
    outcome: Mutex<Option<ExitReason>>,
    pub(crate) events: EventFeed,
}

impl Shared {
    pub(crate) fn new(
        path: ActorPath,
        strategy: Strategy,
        pressure: Pressure,
        events: EventFeed,
    ) -> Self {
        Self {
            path,
            strategy,
            pressure,
            children: Mutex::new(Children::default()),
            outcome: Mutex::new(None),
            events,
        }
    }

    pub(super) fn table(&self) -> MutexGuard<'_, Children> {
        // A poisoned lock only means a reader panicked mid-snapshot; the table is intact.
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Why this supervisor ended: `None` while it runs.
    pub(crate) fn outcome(&self) -> Option<ExitReason> {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set_outcome(&self, reason: ExitReason) {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
    }

    /// Snapshots of the children, recursively, in start order.
    pub(crate) fn children_snapshot(&self) -> Vec<NodeSnapshot> {
        let rows: Vec<_> = self
            .table()
            .iter()
            .map(|c| {
                let status = match (c.phase, &c.cell) {
                    (Phase::Running, Some(cell)) => Status::of(cell),
                    (Phase::Starting, _) => Status::Starting,
                    (Phase::Restarting, _) => Status::Restarting,
                    (Phase::Running | Phase::Stopped, _) => Status::Stopped,
                };
                let node = NodeSnapshot {
                    strategy: c.spec.strategy(),
                    status,
                    restarts: c.restarts,
                    last_exit: c.last_exit.clone(),
                    messages_handled: c.counters.messages_handled(),
                    mailbox_depth: c.counters.mailbox_depth(),
                    cpu_seconds: c.counters.cpu_seconds(),
                    memory_bytes: c.counters.memory_bytes(),
                    quota: c.governed.as_ref().map(|g| {
                        let (usage, limits) = g.reading();
                        QuotaSnapshot {
                            usage,
                            limits,
                            group: g.group_name.clone(),
                            state: g.status().as_str().to_string(),
                            enforcements_total: g.history.enforcements_total(),
                            history: g.history.iter().copied().collect(),
                            enforcements_by_action: g
                                .history
                                .enforcements_by_action()
                                .map(|(a, n)| (a.to_string(), n))
                                .collect(),
                        }
                    }),
                    restart: c.spec.restart_type(),
                    ..NodeSnapshot::new(c.path.clone(), c.spec.kind())
                };
                // A worker standing for work in another process shows that work while
                // it runs (a dead incarnation's process is gone).
                let external = (c.phase == Phase::Running)
                    .then(|| c.counters.external())
                    .flatten();
                (node, c.view.clone(), external)
            })
            .collect();
        // Child tables and externals (files the kernel writes) are read after this one's
        // lock is released.
        rows.into_iter()
            .map(|(mut node, view, external)| {
                if let Some(view) = view {
                    node.children = view.children_snapshot();
                }
                if let Some(external) = external {
                    external::graft(&mut node, &*external);
                }
                node
            })
            .collect()
    }

    /// The counters of the child at `path` below this supervisor.
    pub(crate) fn counters(&self, path: &str) -> Option<Arc<Counters>> {
        let rest = path.strip_prefix(self.path.as_str())?.strip_prefix('/')?;
        match rest.split_once('/') {
            Some((name, _)) => {
                let view = self.table().by_name(name)?.view.clone()?;
                view.counters(path)
            }
            None => self.table().by_name(rest).map(|c| c.counters.clone()),
        }
    }

    /// The live incarnation at `path` below this supervisor, and its child table if it is
    /// a supervisor.
    pub(crate) fn lookup(&self, path: &str) -> Option<(ActorCell, Option<Arc<Shared>>)> {
        let rest = path.strip_prefix(self.path.as_str())?.strip_prefix('/')?;
        let (name, deeper) = match rest.split_once('/') {
            Some((name, _)) => (name, true),
            None => (rest, false),
        };
        let (cell, view) = {
            let table = self.table();
            let child = table.by_name(name)?;
            (child.cell.clone()?, child.view.clone())
        };
        if deeper {
            view?.lookup(path)
        } else {
            Some((cell, view))
        }
    }
}

impl Shared {
    /// Every child in start order: its name, its live incarnation (or why it has none)
    /// and its kind. OTP's `which_children`.
    pub(super) fn which_children(&self) -> Vec<ChildInfo> {
        self.table()
            .iter()
            .map(|c| ChildInfo {
                name: c.spec.name().to_string(),
                incarnation: match (c.phase, &c.cell) {
                    (Phase::Running, Some(cell)) => Incarnation::Live(cell.clone()),
                    (Phase::Starting | Phase::Restarting, _) => Incarnation::Restarting,
                    (Phase::Running | Phase::Stopped, _) => Incarnation::Undefined,
                },
                kind: c.spec.kind(),
            })
            .collect()
    }

    /// How many children there are, live and by kind. OTP's `count_children`.
    pub(super) fn count_children(&self) -> ChildCounts {
        let table = self.table();
        let mut counts = ChildCounts::default();
        for c in table.iter() {
            counts.specs += 1;
            if c.phase == Phase::Running && c.cell.is_some() {
                counts.active += 1;
            }
            match c.spec.kind() {
                ChildKind::Supervisor => counts.supervisors += 1,
                ChildKind::Worker => counts.workers += 1,
            }
        }
        counts
    }
}
