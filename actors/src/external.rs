//! Work a managed worker stands for that runs outside this process.
//!
//! A supervisor group can run in another OS process (a child process, in a cgroup of its
//! own). In the parent, that group is one managed worker that spawns the process, watches
//! it and bridges its messages. Its supervisor must then measure and govern the *process*,
//! not the worker's own handlers (which only forward), and the tree must show the
//! process's actors where the worker stands. The worker says so by attaching an
//! [`External`] in its `pre_start` ([`attach`]); from then on, for that incarnation:
//!
//! - **sampling**: its CPU share comes from the change of [`External::cpu_seconds`], its
//!   memory from [`External::memory_bytes`] (each falls back to the worker's own counters
//!   while unreadable); message rate, mailbox depth and stall stay the worker's own;
//! - **gate actions**: a CPU throttle becomes [`External::throttle`] (in cores), a
//!   suspension [`External::suspend`], a recovery [`External::resume`] — the worker's own
//!   gate follows too, so the messages it would forward wait in order in this process
//!   while the work is frozen;
//! - **restart and terminate**: [`External::kill`] first, at the sample that decides it, so
//!   the stop is the kernel's and immediate (a handler that never yields cannot delay it);
//!   then the worker is stopped and restarted as any other child;
//! - **the tree**: the worker's node takes its CPU and memory from the external; once the
//!   work reports its tree ([`External::subtree`]), the node becomes a supervisor with that
//!   tree's strategy and children, and it and every node under it carry the external's
//!   [`Placement`] (`placement`, `pid`, `isolation` in the tree JSON);
//! - **faults** injected into a path inside that subtree go to [`External::inject`];
//! - **migration**: work that can run on another host says where it runs
//!   ([`External::site`]) and moves when its supervisor decides ([`External::migrate`]).
//!
//! A restarted incarnation starts without an external until it attaches one again.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::fault::Fault;
use crate::introspect::NodeSnapshot;
use crate::managed::alloc;
use crate::path::ActorPath;
use crate::quota::Site;

/// Work a managed worker stands for that runs outside this process (an OS process in a
/// cgroup). Its supervisor measures and governs that work through this instead of the
/// worker's own handler counters. See the [module docs](self).
///
/// Every method is called from the supervisor's task at a sample (or from a tree reader):
/// each must return at once, never block on the work.
pub trait External: Send + Sync + 'static {
    /// Cumulative CPU seconds the work used (or wanted while throttled); `None` when
    /// unreadable now.
    fn cpu_seconds(&self) -> Option<f64>;
    /// Bytes of memory it holds now; `None` when unreadable.
    fn memory_bytes(&self) -> Option<u64>;
    /// Freezes it (every thread), keeping its state.
    fn suspend(&self);
    /// Thaws it and lifts any CPU limit.
    fn resume(&self);
    /// Limits it to `cores` of CPU (e.g. 0.25).
    fn throttle(&self, cores: f64);
    /// Kills it at once (SIGKILL, `cgroup.kill`). The worker then sees the exit itself.
    fn kill(&self);
    /// Where it runs, for the tree.
    fn placement(&self) -> Placement;
    /// The tree the work runs, as it last reported it: its root node has this worker's
    /// path. `None` before the first report.
    fn subtree(&self) -> Option<NodeSnapshot> {
        None
    }
    /// Makes the worker at `path` (inside the subtree) commit `fault`.
    ///
    /// # Errors
    ///
    /// Why it could not be passed on (by default: this external takes no faults).
    fn inject(&self, path: &ActorPath, fault: Fault) -> Result<(), String> {
        Err(format!(
            "cannot inject {fault} into {path}: its process takes no faults"
        ))
    }
    /// Where the work runs now, for a child the supervisor may migrate
    /// ([`crate::quota::migrate`]); `None` (the default): it cannot migrate.
    fn site(&self) -> Option<Site> {
        None
    }
    /// Starts moving the work to `to`; returns at once, the move runs on its own, and
    /// [`External::moving`] says `true` until it is over (moved or not).
    ///
    /// # Errors
    ///
    /// Why it cannot move now (no host to go to, a move under way); by default it
    /// cannot migrate at all.
    fn migrate(&self, to: Site) -> Result<(), String> {
        Err(format!("cannot migrate {to}: this work does not migrate"))
    }
    /// Whether a move [`External::migrate`] took is still under way. The supervisor
    /// records a move once it is over and [`External::site`] says the work got there,
    /// so the history holds only moves that happened. By default: never (a move is
    /// over when `migrate` returns).
    fn moving(&self) -> bool {
        false
    }
}

/// Where an actor runs, as every node of the tree JSON says (`placement`, `pid`,
/// `isolation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// `in_process`, or how the external work runs (e.g. `process`).
    pub placement: String,
    /// The OS process it runs in.
    pub pid: u32,
    /// How that process is governed: `cgroup_v2`, `cgroup_v1` or `signals`; `None` in
    /// process.
    pub isolation: Option<String>,
}

impl Placement {
    /// The `placement` of an actor of this process.
    pub const IN_PROCESS: &'static str = "in_process";

    /// An actor of this process.
    pub fn in_process() -> Self {
        Self {
            placement: Self::IN_PROCESS.to_string(),
            pid: std::process::id(),
            isolation: None,
        }
    }
}

/// Attaches `external` to the managed worker whose `pre_start` or handler runs now (the
/// current actor, as [`Mailbox::own`](crate::Mailbox::own) finds it), replacing any it
/// had. The next incarnation starts without one. Returns `false` outside a managed actor.
pub fn attach(external: Arc<dyn External>) -> bool {
    match alloc::current() {
        Some(counters) => {
            counters.external.set(Some(external));
            true
        }
        None => false,
    }
}

/// A worker's attached [`External`], in its counters: read at samples and snapshots only,
/// never on the message path.
///
/// Eight bytes, so that every worker's counters stay within their cache lines (a
/// `Mutex<Option<Arc<dyn External>>>` there made each 64 B larger): a key into a
/// process-wide table of the few externals attached, `0` for none — which is all most
/// workers ever read, without a lock.
#[derive(Default)]
pub(crate) struct Slot(AtomicU64);

/// The externals attached now, by slot key.
static ATTACHED: Mutex<BTreeMap<u64, Arc<dyn External>>> = Mutex::new(BTreeMap::new());
/// The next slot key (0 is none).
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn attached() -> std::sync::MutexGuard<'static, BTreeMap<u64, Arc<dyn External>>> {
    ATTACHED.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Slot {
    pub(crate) fn get(&self) -> Option<Arc<dyn External>> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            key => attached().get(&key).cloned(),
        }
    }

    pub(crate) fn set(&self, external: Option<Arc<dyn External>>) {
        let key = match external {
            Some(external) => {
                let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
                attached().insert(key, external);
                key
            }
            None => 0,
        };
        let old = match self.0.swap(key, Ordering::AcqRel) {
            0 => None,
            old => attached().remove(&old),
        };
        // Dropped after the table's lock is released: an external's own drop may drop
        // counters (and so a slot) in turn.
        drop(old);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if *self.0.get_mut() != 0 {
            self.set(None);
        }
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attached = self.get().map(|e| e.placement());
        f.debug_tuple("Slot").field(&attached).finish()
    }
}

/// Shows `external` in the worker's `node`: its CPU and memory, and once it reported its
/// tree, that tree's strategy and children in place, every node of it placed as the
/// external says. Status, restarts, last exit, mailbox and quota stay the worker's.
pub(crate) fn graft(node: &mut NodeSnapshot, external: &dyn External) {
    if let Some(cpu) = external.cpu_seconds() {
        node.cpu_seconds = cpu;
    }
    if let Some(memory) = external.memory_bytes() {
        node.memory_bytes = memory;
    }
    let placement = external.placement();
    if let Some(mut remote) = external.subtree() {
        rebase(&mut remote, &node.path);
        node.kind = remote.kind;
        node.strategy = remote.strategy;
        node.children = remote.children;
    }
    place(node, &placement);
}

/// Sets `placement` on `node` and every node under it.
fn place(node: &mut NodeSnapshot, placement: &Placement) {
    node.placement.clone_from(&placement.placement);
    node.pid = placement.pid;
    node.isolation.clone_from(&placement.isolation);
    for child in &mut node.children {
        place(child, placement);
    }
}

/// Rewrites the paths of a reported tree whose root is not at `at` (a child process that
/// named its root otherwise), so that every grafted path lies under the worker's.
fn rebase(remote: &mut NodeSnapshot, at: &ActorPath) {
    let from = remote.path.as_str().to_string();
    if from == at.as_str() {
        return;
    }
    fn walk(node: &mut NodeSnapshot, from: &str, to: &str) {
        let rest = node.path.as_str().strip_prefix(from);
        if let Some(rest) = rest.filter(|r| r.is_empty() || r.starts_with('/')) {
            node.path = ActorPath::from(format!("{to}{rest}").as_str());
        }
        for child in &mut node.children {
            walk(child, from, to);
        }
    }
    walk(remote, &from, at.as_str());
}

/// The external attached to the worker whose subtree holds `path`: the nearest worker
/// above `path` (walking down from the root) that has one reporting a subtree.
pub(crate) fn owner_of(
    path: &ActorPath,
    counters: impl Fn(&str) -> Option<Arc<crate::Counters>>,
) -> Option<Arc<dyn External>> {
    let p = path.as_str();
    p.match_indices('/')
        .map(|(i, _)| &p[..i])
        .filter_map(|above| counters(above)?.external())
        .find(|e| e.subtree().is_some())
}

/// The tree a group in another process last reported, kept for its [`External::subtree`]:
/// the reader of the process's reports sets it, the supervisor's snapshots read it.
/// Clones share the one tree.
///
/// ```
/// use nevil_actors::{external::Subtree, ChildKind, NodeSnapshot, TreeSnapshot};
///
/// let subtree = Subtree::default();
/// assert!(subtree.get().is_none());
/// // One JSON line of the child process's report: its whole tree snapshot.
/// let root = NodeSnapshot::new("root/behaviours".into(), ChildKind::Supervisor);
/// let line = serde_json::to_string(&TreeSnapshot { pid: 4242, uptime_s: 1.5, root }).unwrap();
/// let report: TreeSnapshot = serde_json::from_str(&line).unwrap();
/// subtree.set(report.root);
/// assert_eq!(subtree.get().unwrap().path.as_str(), "root/behaviours");
/// subtree.clear();
/// assert!(subtree.get().is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Subtree(Arc<Mutex<Option<NodeSnapshot>>>);

impl Subtree {
    /// The tree last reported, if any.
    pub fn get(&self) -> Option<NodeSnapshot> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps `root` as the tree reported now.
    pub fn set(&self, root: NodeSnapshot) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(root);
    }

    /// Forgets the tree (its process ended).
    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    impl External for Nothing {
        fn cpu_seconds(&self) -> Option<f64> {
            None
        }
        fn memory_bytes(&self) -> Option<u64> {
            None
        }
        fn suspend(&self) {}
        fn resume(&self) {}
        fn throttle(&self, _: f64) {}
        fn kill(&self) {}
        fn placement(&self) -> Placement {
            Placement::in_process()
        }
    }

    fn held(key: u64) -> bool {
        attached().contains_key(&key)
    }

    #[test]
    fn a_slot_holds_one_external_and_lets_it_go() {
        let slot = Slot::default();
        assert!(slot.get().is_none());
        slot.set(Some(Arc::new(Nothing)));
        let first = slot.0.load(Ordering::Relaxed);
        assert!(slot.get().is_some() && held(first));
        slot.set(Some(Arc::new(Nothing)));
        let second = slot.0.load(Ordering::Relaxed);
        assert!(!held(first) && held(second), "replaced");
        slot.set(None);
        assert!(slot.get().is_none() && !held(second), "cleared");
        slot.set(Some(Arc::new(Nothing)));
        let third = slot.0.load(Ordering::Relaxed);
        drop(slot);
        assert!(!held(third), "dropped with the counters");
    }

    #[test]
    fn the_default_inject_refuses_naming_the_worker() {
        let e = Nothing.inject(&ActorPath::from("root/g/a"), Fault::Panic);
        assert_eq!(
            e.unwrap_err(),
            "cannot inject panic into root/g/a: its process takes no faults"
        );
    }

    #[test]
    fn a_tree_reported_under_another_root_is_rebased() {
        let mut remote = NodeSnapshot::new("group".into(), crate::ChildKind::Supervisor);
        remote.children = vec![
            NodeSnapshot::new("group/a".into(), crate::ChildKind::Worker),
            NodeSnapshot::new("groupie".into(), crate::ChildKind::Worker),
        ];
        rebase(&mut remote, &ActorPath::from("root/control/group"));
        let paths: Vec<_> = remote.walk().iter().map(|n| n.path.to_string()).collect();
        assert_eq!(
            paths,
            ["root/control/group", "root/control/group/a", "groupie"]
        );
    }
}
