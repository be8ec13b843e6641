//! The tree's event feed: what its supervisors did, as structured events, for whoever
//! listens (error analytics, metrics, tests).
//!
//! Every supervisor of a tree publishes to the tree's one [`EventFeed`]:
//!
//! - [`TreeEvent::ChildExited`] once per exit of a child incarnation that its supervisor
//!   did not cause (a crash, a normal stop, a failed start, a quota restart or
//!   termination), with the decision taken: restarted or not. Children the supervisor
//!   stops itself (the siblings of a `rest_for_one` restart, a shutdown) publish none.
//! - [`TreeEvent::ChildRestarted`] once a new incarnation of a child is up, for the
//!   child that exited and for each sibling restarted with it.
//! - [`TreeEvent::QuotaEnforced`] for every quota action a supervisor applies.
//! - [`TreeEvent::Escalated`] when a supervisor exceeds its restart intensity and gives up.
//!
//! Events of one supervisor are published in the order it acted. The feed is a bounded
//! [`tokio::sync::broadcast`] channel: publishing never waits, so no subscriber can slow
//! a supervisor down; a subscriber that falls more than the capacity behind loses the
//! oldest events and its next `recv` says how many
//! ([`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)). With no
//! subscriber, events are dropped at once.
//!
//! # Examples
//!
//! ```
//! use nevil_actors::{EventFeed, SupervisorFlags, Tree, TreeContext, TreeEvent};
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let feed = EventFeed::default();
//! let mut events = feed.subscribe(); // before the start: nothing is missed
//! let context = TreeContext { events: feed, ..TreeContext::default() };
//! let tree = Tree::start_in("root", SupervisorFlags::default(), vec![], context)
//!     .await
//!     .unwrap();
//! tree.shutdown().await;
//! assert!(events.try_recv().is_err(), "no child, no event");
//! # }
//! ```

use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::exit::ExitReason;
use crate::path::ActorPath;
use crate::quota::{Action, Resource};

/// How many events a subscriber may fall behind before it loses the oldest
/// ([`EventFeed::default`]). A restart storm is bounded by restart intensity, so 1024
/// covers several storms between two reads of a busy subscriber.
pub const DEFAULT_CAPACITY: usize = 1024;

/// One thing a supervisor did.
#[derive(Debug, Clone, PartialEq)]
pub enum TreeEvent {
    /// An incarnation of the child at `path` ended (or failed to start) by itself or by
    /// quota enforcement.
    ChildExited {
        /// When the supervisor handled the exit (tokio's clock).
        at: Instant,
        /// The child.
        path: ActorPath,
        /// Why it ended.
        reason: ExitReason,
        /// Whether its supervisor will start it again: `false` for a child whose restart
        /// type does not want it, and when the supervisor gives up instead
        /// ([`TreeEvent::Escalated`] follows).
        restart: bool,
        /// The backoff delay before that restart, if any.
        delay: Option<Duration>,
    },
    /// A new incarnation of the child at `path` has started.
    ChildRestarted {
        /// When it was up.
        at: Instant,
        /// The child.
        path: ActorPath,
        /// Its cumulative restarts, this one included.
        restarts: u64,
    },
    /// The supervisor applied a quota action to the child at `path`.
    QuotaEnforced {
        /// When it was decided.
        at: Instant,
        /// The child.
        path: ActorPath,
        /// The resource that decided it.
        resource: Resource,
        /// Its reading.
        usage: f64,
        /// The limit crossed (for a recovery, the level it came back under).
        limit: f64,
        /// What was done.
        action: Action,
    },
    /// The supervisor at `path` exceeded its restart intensity, stopped its children and
    /// failed to its own supervisor.
    Escalated {
        /// When it gave up.
        at: Instant,
        /// The supervisor.
        path: ActorPath,
        /// The child whose exit was one too many.
        child: ActorPath,
        /// Why that child exited.
        reason: ExitReason,
    },
}

impl TreeEvent {
    /// When it happened.
    pub fn at(&self) -> Instant {
        match self {
            Self::ChildExited { at, .. }
            | Self::ChildRestarted { at, .. }
            | Self::QuotaEnforced { at, .. }
            | Self::Escalated { at, .. } => *at,
        }
    }

    /// The actor it is about (for [`TreeEvent::Escalated`], the supervisor).
    pub fn path(&self) -> &ActorPath {
        match self {
            Self::ChildExited { path, .. }
            | Self::ChildRestarted { path, .. }
            | Self::QuotaEnforced { path, .. }
            | Self::Escalated { path, .. } => path,
        }
    }
}

/// The sending side of a tree's events; clone it to subscribe from anywhere.
///
/// Create one before the tree to miss nothing of its start
/// ([`Tree::start_in`](crate::Tree::start_in) in its [`TreeContext`](crate::TreeContext)), or take the tree's with
/// [`TreeView::subscribe`](crate::TreeView::subscribe).
#[derive(Debug, Clone)]
pub struct EventFeed {
    tx: broadcast::Sender<TreeEvent>,
}

impl EventFeed {
    /// A feed on which a subscriber may fall `capacity` events behind (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: broadcast::Sender::new(capacity.max(1)),
        }
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<TreeEvent> {
        self.tx.subscribe()
    }

    /// Publishes the event `make` builds, without waiting; with no subscriber it is not
    /// even built (a restart then costs no clone of its exit reason).
    pub(crate) fn publish(&self, make: impl FnOnce() -> TreeEvent) {
        if self.tx.receiver_count() > 0 {
            // An error only means the last subscriber just left.
            let _ = self.tx.send(make());
        }
    }
}

impl Default for EventFeed {
    /// A feed of [`DEFAULT_CAPACITY`].
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}
