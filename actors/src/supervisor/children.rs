//! The child table of one supervisor, in start order.

use std::sync::Arc;

use ractor::{ActorCell, ActorId};
use tokio::time::Instant;

use super::spec::{ChildSpec, Restart};
use super::Shared;
use crate::exit::ExitReason;
use crate::managed::Counters;
use crate::path::ActorPath;
use crate::quota::enforcer::Governed;
use crate::quota::QuotaGroup;

/// Where a child is in its life, as its supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Its start is under way.
    Starting,
    /// Started; ractor's own status tells the rest.
    Running,
    /// Exited and waiting for its (backed-off or retried) restart.
    Restarting,
    /// Exited and not to be restarted, or stopped by its supervisor.
    Stopped,
}

/// One child: its spec and what happened to it.
pub(crate) struct Child {
    pub(crate) id: u64,
    pub(crate) spec: ChildSpec,
    pub(crate) path: ActorPath,
    pub(crate) cell: Option<ActorCell>,
    /// The child table of a child supervisor (the last one it had, while it is down).
    pub(crate) view: Option<Arc<Shared>>,
    pub(crate) phase: Phase,
    /// Cumulative restarts of this child (including restarts with its siblings).
    pub(crate) restarts: u64,
    pub(crate) last_exit: Option<ExitReason>,
    pub(crate) started_at: Option<Instant>,
    /// Consecutive restarts so far in the current run, for backoff.
    pub(crate) backoff_attempt: u32,
    /// The generation of the restart this child waits for, if any.
    pub(crate) pending: Option<u64>,
    /// What its incarnations counted, cumulative.
    pub(crate) counters: Arc<Counters>,
    /// Its quota, when governed (boxed: most children are not, and the table keeps
    /// one `Child` per child inline).
    pub(crate) governed: Option<Box<Governed>>,
}

impl Child {
    pub(crate) fn new(id: u64, spec: ChildSpec, path: ActorPath) -> Self {
        // The spec's flood, registered where fault injection finds it (by path).
        let counters = Arc::new(Counters::with_flood(spec.flood_fn()));
        let governed = match (spec.quota_group(), spec.migration()) {
            (Some((name, group)), migration) => {
                Some(Governed::new(name.clone(), group.clone()).migratable(migration))
            }
            (None, Some(migration)) => Some(
                Governed::new("ungoverned".into(), QuotaGroup::ungoverned())
                    .migratable(Some(migration)),
            ),
            (None, None) => None,
        }
        .map(Box::new);
        Self {
            governed,
            id,
            spec,
            path,
            cell: None,
            view: None,
            phase: Phase::Starting,
            restarts: 0,
            last_exit: None,
            started_at: None,
            backoff_attempt: 0,
            pending: None,
            counters,
        }
    }
}

/// Children in start order. Supervisors are small (tens of children), so lookups scan.
#[derive(Default)]
pub(crate) struct Children {
    list: Vec<Child>,
}

impl Children {
    /// Makes room for `additional` more children, and no more.
    pub(crate) fn reserve_exact(&mut self, additional: usize) {
        self.list.reserve_exact(additional);
    }

    pub(crate) fn push(&mut self, child: Child) {
        self.list.push(child);
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Child> {
        self.list.iter()
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Child> {
        self.list.iter_mut()
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Child> {
        self.list.iter().find(|c| c.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut Child> {
        self.list.iter_mut().find(|c| c.id == id)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&Child> {
        self.list.iter().find(|c| c.spec.name() == name)
    }

    /// The child whose current incarnation is `actor`; `None` for an incarnation that was
    /// already replaced or stopped.
    pub(crate) fn by_actor(&self, actor: ActorId) -> Option<u64> {
        self.list
            .iter()
            .find(|c| c.cell.as_ref().is_some_and(|cell| cell.get_id() == actor))
            .map(|c| c.id)
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.list.retain(|c| c.id != id);
    }

    /// The ids of every child, in start order.
    pub(crate) fn ids(&self) -> Vec<u64> {
        self.list.iter().map(|c| c.id).collect()
    }

    /// The ids of child `id` and of every child started after it, in start order.
    pub(crate) fn started_from(&self, id: u64) -> Vec<u64> {
        let Some(pos) = self.list.iter().position(|c| c.id == id) else {
            return Vec::new();
        };
        self.list[pos..].iter().map(|c| c.id).collect()
    }

    /// The ids of the children with a live incarnation, last started first.
    pub(crate) fn running_in_stop_order(&self) -> Vec<u64> {
        self.list
            .iter()
            .rev()
            .filter(|c| c.cell.is_some())
            .map(|c| c.id)
            .collect()
    }

    /// Drops the temporary members of `group` other than `keep` (OTP does not restart
    /// them with their siblings) and returns the rest.
    pub(crate) fn without_temporaries(&mut self, group: Vec<u64>, keep: u64) -> Vec<u64> {
        let temporary = |c: &Child| c.id != keep && c.spec.restart_type() == Restart::Temporary;
        self.list
            .retain(|c| !(group.contains(&c.id) && temporary(c)));
        group
            .into_iter()
            .filter(|id| self.get(*id).is_some())
            .collect()
    }
}
