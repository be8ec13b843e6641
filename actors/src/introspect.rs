//! The tree as data: one serde structure behind the tree dump, `GET /tree` and metrics.
//!
//! A snapshot is read from the supervisors' child tables directly (a short lock each),
//! without sending any actor a message, so taking one never waits on a busy supervisor
//! and never slows the actors down. Children are listed in start order.

use ractor::{ActorCell, ActorStatus};
use serde::{Deserialize, Serialize};

use crate::exit::ExitReason;
use crate::path::ActorPath;
use crate::supervisor::{ChildKind, Strategy};

mod exit_reason;
mod text;

pub use exit_reason::UnknownExitReason;

pub use text::{TreeLine, WorkerFigures};

/// The status of one actor in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being started (`pre_start` under way).
    Starting,
    /// Running and handling messages.
    Running,
    /// Exited; its supervisor will start it again (possibly after a backoff delay).
    Restarting,
    /// Being stopped.
    Stopping,
    /// Exited and not restarted.
    Stopped,
}

impl Status {
    /// The status ractor reports for a live incarnation, read from its cell (one atomic
    /// load; no message is sent).
    pub fn of(cell: &ActorCell) -> Self {
        match cell.get_status() {
            ActorStatus::Unstarted | ActorStatus::Starting => Self::Starting,
            ActorStatus::Running | ActorStatus::Upgrading => Self::Running,
            ActorStatus::Draining | ActorStatus::Stopping => Self::Stopping,
            ActorStatus::Stopped => Self::Stopped,
        }
    }

    /// The snake_case name used in the tree JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        }
    }
}

/// One actor and its subtree, as the tree JSON's `Node`.
///
/// It reads back from that JSON too (`Deserialize`): a group placed in another process
/// reports its tree to the parent as JSON lines ([`crate::external`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The actor's name, unique among its siblings.
    pub name: String,
    /// Its path from the root, e.g. `root/io/reader`.
    pub path: ActorPath,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// A supervisor's strategy; `None` for workers.
    pub strategy: Option<Strategy>,
    /// Its status now.
    pub status: Status,
    /// Cumulative restarts (its own and those with its siblings).
    pub restarts: u64,
    /// Why its last incarnation ended, if one did.
    pub last_exit: Option<ExitReason>,
    /// Messages sent to it through a `Mailbox` and not yet handled.
    pub mailbox_depth: u64,
    /// Messages its handlers took, cumulative across incarnations (workers; 0 for
    /// supervisors, whose traffic is supervision events).
    pub messages_handled: u64,
    /// Time its handlers spent in polls, in seconds, cumulative (TSC-timed).
    pub cpu_seconds: f64,
    /// Bytes its handlers allocated and did not free (0 unless the binary installs
    /// `CountingAlloc`; see `managed::alloc` for what crosses actors).
    pub memory_bytes: u64,
    /// Its quota group and state. No quotas yet (issue #5): `null`.
    pub quota: Option<QuotaSnapshot>,
    /// Where it runs: `in_process`, or how the process it runs in was placed (e.g.
    /// `process`; see [`crate::Placement`]).
    pub placement: String,
    /// The OS process it runs in.
    pub pid: u32,
    /// How that process is governed (`cgroup_v2`, `cgroup_v1`, `signals`); `null` in
    /// process.
    pub isolation: Option<String>,
    /// Children in start order (empty for workers).
    pub children: Vec<NodeSnapshot>,
    /// Its restart type: readiness probes ask whether every permanent actor runs.
    /// Not part of the tree JSON contract, so not serialized (read back as permanent).
    #[serde(skip)]
    pub restart: crate::Restart,
}

/// A managed actor's quota group and enforcement state, as in the tree JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaSnapshot {
    /// The quota group, e.g. `standard`.
    pub group: String,
    /// `ok`, `warned`, `throttled`, `suspended` or `terminated`.
    pub state: String,
    /// Enforcement actions taken on it so far (cumulative).
    pub enforcements_total: u64,
    /// The latest enforcement actions, oldest first: time (s), resource, usage, limit,
    /// action.
    pub history: Vec<crate::quota::Enforcement>,
    /// Cumulative enforcement actions by action name, e.g. `{"throttle": 2}`; every
    /// action is present, zeros included, so a metric series exists before its first
    /// increment.
    pub enforcements_by_action: std::collections::BTreeMap<String, u64>,
    /// The latest sample's readings (CPU share of a core, bytes, messages waiting,
    /// messages per second, seconds stuck); `null` before its first sample.
    #[serde(default)]
    pub usage: Option<crate::quota::Usage>,
    /// The limits in force per resource (host pressure included); `null`: not governed.
    #[serde(default)]
    pub limits: crate::quota::QuotaLimits,
}

impl NodeSnapshot {
    /// A running node at `path` with zeroed counters and no children.
    pub fn new(path: ActorPath, kind: ChildKind) -> Self {
        Self {
            name: path.name().to_string(),
            path,
            kind,
            strategy: None,
            status: Status::Running,
            restarts: 0,
            last_exit: None,
            mailbox_depth: 0,
            messages_handled: 0,
            cpu_seconds: 0.0,
            memory_bytes: 0,
            quota: None,
            placement: crate::Placement::IN_PROCESS.to_string(),
            pid: std::process::id(),
            isolation: None,
            children: Vec::new(),
            restart: crate::Restart::Permanent,
        }
    }

    /// Every node of this subtree, depth first in start order, this one first.
    pub fn walk(&self) -> Vec<&NodeSnapshot> {
        let mut out = vec![self];
        let mut i = 0;
        while i < out.len() {
            let node = out[i];
            out.splice(i + 1..i + 1, node.children.iter());
            i += 1;
        }
        out
    }

    /// The node whose path or name is `query` (see [`ActorPath::matches`]); the first in
    /// walk order if a name is used more than once.
    pub fn find(&self, query: &str) -> Option<&NodeSnapshot> {
        self.walk().into_iter().find(|n| n.path.matches(query))
    }
}

/// A whole tree with the process it runs in: the tree JSON's top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeSnapshot {
    /// The process id.
    pub pid: u32,
    /// Seconds since the tree was started.
    pub uptime_s: f64,
    /// The root supervisor and everything under it.
    pub root: NodeSnapshot,
}
