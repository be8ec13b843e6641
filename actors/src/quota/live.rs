//! Live quotas: change the quota group a running tree enforces for a worker, by path,
//! without restarting anything.
//!
//! Every tree's [`Pressure`](super::Pressure) handle carries one [`LiveQuotas`] table,
//! shared by all its supervisors. Whoever reconfigures the tree sets a path's group
//! ([`LiveQuotas::set`], or [`LiveQuotas::set_all`] for a whole configuration at once);
//! the child's supervisor adopts it at its next sampling tick, keeping the child's quota
//! state (a violation under way goes on under the new limits). The table outlives
//! restarts: a child restarted, or re-created by a restarted supervisor whose spec still
//! holds the group it started with, looks its path up again at its first sample. A
//! path the table does not name keeps its spec's group.
//!
//! A supervisor reads the table only when it has changed: each governed child keeps the
//! table version it last saw, so a tick costs one atomic load per child.
//!
//! ```
//! use nevil_actors::quota::{LiveQuotas, QuotaGroup};
//!
//! let live = LiveQuotas::default();
//! assert_eq!(live.version(), 0);
//! live.set("root/worker", "lightweight", QuotaGroup::lightweight());
//! assert_eq!(live.version(), 1);
//! let (name, group) = live.get("root/worker").unwrap();
//! assert_eq!((name.as_str(), group), ("lightweight", QuotaGroup::lightweight()));
//! assert!(live.get("root/other").is_none());
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::QuotaGroup;

/// A tree's quota groups set at run time, by worker path; cheap to clone, clones share it.
#[derive(Clone, Default)]
pub struct LiveQuotas(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// Bumped on every change; 0 while nothing was ever set.
    version: AtomicU64,
    table: RwLock<HashMap<String, (String, QuotaGroup)>>,
}

impl LiveQuotas {
    /// Governs the worker at `path` by `group`, called `name` in the tree, from its
    /// supervisor's next sample on.
    pub fn set(&self, path: &str, name: impl Into<String>, group: QuotaGroup) {
        self.set_all([(path.to_string(), name.into(), group)]);
    }

    /// Sets every `(path, name, group)` at once: a supervisor sees all of them or none.
    pub fn set_all(&self, entries: impl IntoIterator<Item = (String, String, QuotaGroup)>) {
        let mut table = self.0.table.write().unwrap_or_else(PoisonError::into_inner);
        for (path, name, group) in entries {
            table.insert(path, (name, group));
        }
        // Under the lock: a reader that sees the new version finds the new table.
        self.0.version.fetch_add(1, Ordering::Release);
    }

    /// The group set for `path` (its name and limits), if any.
    pub fn get(&self, path: &str) -> Option<(String, QuotaGroup)> {
        let table = self.0.table.read().unwrap_or_else(PoisonError::into_inner);
        table.get(path).cloned()
    }

    /// How many changes were made so far (0: none).
    pub fn version(&self) -> u64 {
        self.0.version.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for LiveQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveQuotas")
            .field("version", &self.version())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_all_is_one_change_and_later_sets_win() {
        let live = LiveQuotas::default();
        live.set_all([
            (
                "root/a".into(),
                "lightweight".into(),
                QuotaGroup::lightweight(),
            ),
            ("root/b".into(), "heavy".into(), QuotaGroup::heavy()),
        ]);
        assert_eq!(live.version(), 1);
        live.set("root/a", "standard", QuotaGroup::standard());
        assert_eq!(live.version(), 2);
        assert_eq!(live.get("root/a").unwrap().0, "standard");
        assert_eq!(live.get("root/b").unwrap().0, "heavy");
    }

    #[test]
    fn clones_share_the_table() {
        let live = LiveQuotas::default();
        let other = live.clone();
        other.set("root/a", "heavy", QuotaGroup::heavy());
        assert_eq!(live.get("root/a").map(|(n, _)| n).as_deref(), Some("heavy"));
    }
}
