//! A running supervision tree, as the application holds it.
//!
//! [`Tree::start`] starts the root supervisor (and so, in order, the whole tree);
//! [`Tree::wait`] resolves when the root ends and says whether it was shut down or gave
//! up, so a binary can exit non-zero on escalation; [`Tree::snapshot`] reads the whole
//! tree without messaging any actor; [`TreeView::subscribe`] follows what its
//! supervisors do ([`event`](crate::event)).

use std::sync::Arc;

use ractor::{Actor, ActorCell, ActorRef};

use crate::error::StartError;
use crate::event::{EventFeed, TreeEvent};
use crate::exit::ExitReason;
use crate::fault::{self, Fault, InjectError};
use crate::introspect::{NodeSnapshot, Status, TreeSnapshot};
use crate::managed::{Counters, Mailbox};
use crate::path::ActorPath;
use crate::quota::Pressure;
use crate::supervisor::{
    ChildKind, ChildSpec, Shared, Supervisor, SupervisorArgs, SupervisorFlags, SupervisorMsg,
    SupervisorRef,
};

/// What every supervisor of a tree shares.
#[derive(Clone, Default)]
pub struct TreeContext {
    /// The pressure level under which quotas are enforced.
    pub pressure: Pressure,
    /// Where lifecycle events are published.
    pub events: EventFeed,
}

/// The root supervisor of a tree and everything under it.
pub struct Tree {
    root: ActorRef<SupervisorMsg>,
    view: TreeView,
}

/// A cheap, clonable view of a running tree: snapshots and look-ups for the services
/// that report on the tree they live in, and the hand controls an operator may use
/// (suspend, resume, throttle, inject a fault).
///
/// ```
/// use nevil_actors::{ChildSpec, SupervisorFlags, Tree};
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
///
/// #[derive(Clone)]
/// struct Counter;
/// impl Actor for Counter {
///     type Msg = u32;
///     type State = u32;
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<u32>, _: ()) -> Result<u32, ActorProcessingErr> {
///         Ok(0)
///     }
///     async fn handle(&self, _: ActorRef<u32>, n: u32, sum: &mut u32)
///         -> Result<(), ActorProcessingErr> {
///         *sum += n;
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tree = Tree::start("root", SupervisorFlags::default(),
///                        vec![ChildSpec::worker("counter", Counter, ())]).await.unwrap();
/// let view = tree.view(); // clone it into whatever reports on the tree
///
/// // Suspended, the worker keeps what it is sent, in order, until resumed.
/// assert!(view.suspend("root/counter"));
/// let mailbox = view.mailbox::<u32>("root/counter").unwrap();
/// for n in 1..=3 {
///     mailbox.cast(n).unwrap();
/// }
/// tokio::task::yield_now().await;
/// let node = view.snapshot().root.find("root/counter").unwrap().clone();
/// assert_eq!((node.messages_handled, node.mailbox_depth), (0, 3));
///
/// assert!(view.resume("root/counter"));
/// while view.snapshot().root.find("root/counter").unwrap().messages_handled < 3 {
///     tokio::task::yield_now().await;
/// }
/// assert!(!view.suspend("root/nobody"));
/// tree.shutdown().await;
/// # }
/// ```
#[derive(Clone)]
pub struct TreeView {
    root: ActorCell,
    shared: Arc<Shared>,
    started: std::time::Instant,
}

impl TreeView {
    /// The whole tree now, root first, children in start order.
    pub fn snapshot(&self) -> TreeSnapshot {
        let root = NodeSnapshot {
            strategy: Some(self.shared.strategy()),
            status: Status::of(&self.root),
            last_exit: self.shared.outcome(),
            children: self.shared.children_snapshot(),
            ..NodeSnapshot::new(self.shared.path.clone(), ChildKind::Supervisor)
        };
        TreeSnapshot {
            pid: std::process::id(),
            uptime_s: self.started.elapsed().as_secs_f64(),
            root,
        }
    }

    /// The live incarnation of the actor at `path`, if it is running.
    ///
    /// Look it up again after a restart: the previous incarnation's cell is dead.
    pub fn actor(&self, path: &str) -> Option<ActorCell> {
        if path == self.shared.path.as_str() {
            return Some(self.root.clone());
        }
        self.shared.lookup(path).map(|(cell, _)| cell)
    }

    /// A receiver of the tree's events from now on: exits, restarts, quota actions,
    /// escalations (see [`event`](crate::event)). Bounded: a subscriber that falls behind
    /// loses the oldest events and is told how many; it never holds a supervisor up.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TreeEvent> {
        self.shared.events.subscribe()
    }

    /// The tree's event feed, to subscribe later or from elsewhere.
    pub fn events(&self) -> &EventFeed {
        &self.shared.events
    }

    /// The counters of the worker at `path`, kept across its incarnations.
    pub fn counters(&self, path: &str) -> Option<Arc<Counters>> {
        self.shared.counters(path)
    }

    /// Suspends the worker at `path` by hand, as its quota would: its next message waits
    /// at the gate, in order, until [`TreeView::resume`]. `false` if no worker is there.
    ///
    /// Its supervisor's quota enforcement may lift or change a hand-made suspension at its
    /// next sample if the worker is governed.
    ///
    /// A worker standing for work in another process ([`crate::external`]) has that
    /// process frozen too ([`External::suspend`](crate::External::suspend)). The actors
    /// inside such a process are not reached by path here: their own supervisor governs
    /// them.
    pub fn suspend(&self, path: &str) -> bool {
        self.counters(path)
            .map(|c| {
                if let Some(external) = c.external() {
                    external.suspend();
                }
                c.gate.suspend();
            })
            .is_some()
    }

    /// Opens the gate of the worker at `path` again, lifting a suspension or a throttle
    /// (of its process too, for a worker standing for one). `false` if no worker is there.
    pub fn resume(&self, path: &str) -> bool {
        self.counters(path)
            .map(|c| {
                if let Some(external) = c.external() {
                    external.resume();
                }
                c.gate.resume();
            })
            .is_some()
    }

    /// Throttles the worker at `path` to `rate` messages per second and/or `duty` of one
    /// core (either may be `None`); a worker standing for a process has that process
    /// limited to `duty` cores. `false` if no worker is there.
    pub fn throttle(&self, path: &str, rate: Option<f64>, duty: Option<f64>) -> bool {
        self.counters(path)
            .map(|c| {
                if let Some((external, cores)) = c.external().zip(duty) {
                    external.throttle(cores);
                }
                c.gate.throttle(rate, duty);
            })
            .is_some()
    }

    /// The tree's pressure level, shared by all its supervisors (see [`Pressure`]).
    pub fn pressure(&self) -> &Pressure {
        &self.shared.pressure
    }

    /// The worker that `target` (its path, or its name alone) names in the tree now.
    ///
    /// # Errors
    ///
    /// As [`fault::resolve`]: `target` names a supervisor, or nothing.
    pub fn resolve(&self, target: &str) -> Result<ActorPath, InjectError> {
        fault::resolve_live(&self.snapshot().root, target)
    }

    /// Makes the worker that `target` (its path, or its name alone) names commit `fault`
    /// ([`crate::fault`]): at once, in its live incarnation's own task; a leak or a
    /// flood lasts as long as that incarnation. Returns the worker's path.
    ///
    /// # Errors
    ///
    /// [`InjectError`]: `target` names a supervisor or nothing, the worker is not running
    /// now, a flood on a worker whose spec has none ([`ChildSpec::flood`]), or a worker
    /// of a group in another process whose process did not take the fault
    /// ([`External::inject`](crate::External::inject), which carries it out there).
    pub async fn inject(&self, target: &str, fault: Fault) -> Result<ActorPath, InjectError> {
        let path = self.resolve(target)?;
        // A worker of a group in another process: its process carries the fault out.
        if let Some(external) = crate::external::owner_of(&path, |p| self.counters(p)) {
            return match external.inject(&path, fault) {
                Ok(()) => Ok(path),
                Err(reason) => Err(InjectError::External {
                    path: path.to_string(),
                    reason,
                }),
            };
        }
        let not_running = || InjectError::NotRunning {
            path: path.to_string(),
        };
        let counters = self.counters(path.as_str()).ok_or_else(not_running)?;
        let cell = self.actor(path.as_str()).ok_or_else(not_running)?;
        fault::inject(path.as_str(), cell, &counters, fault).await?;
        Ok(path)
    }

    /// A counting [`Mailbox`] of the live worker at `path`, if its messages are `M`.
    pub fn mailbox<M: ractor::Message>(&self, path: &str) -> Option<Mailbox<M>> {
        let cell = self.actor(path)?;
        if cell.is_message_type_of::<M>() == Some(false) {
            return None;
        }
        Some(Mailbox::new(ActorRef::from(cell), self.counters(path)?))
    }
}

impl Tree {
    /// Starts a tree whose root supervisor is called `name`, with `children` in start order.
    ///
    /// Returns once every child (recursively) has started.
    ///
    /// # Errors
    ///
    /// [`StartError::Spec`] for a bad child name, [`StartError::Escalated`] when children
    /// kept failing to start beyond the root's intensity (those started are stopped again).
    pub async fn start(
        name: &str,
        flags: SupervisorFlags,
        children: Vec<ChildSpec>,
    ) -> Result<Self, StartError> {
        Self::start_in(name, flags, children, TreeContext::default()).await
    }

    /// [`Tree::start`] with what the whole tree shares ([`TreeContext`]): a pressure
    /// level whoever holds a clone of can raise to tighten every quota while the machine
    /// is short of resources, and an event feed to subscribe to before the start (to see
    /// the start's own events, or to hand a receiver to an actor of the tree).
    ///
    /// # Errors
    ///
    /// As [`Tree::start`].
    pub async fn start_in(
        name: &str,
        flags: SupervisorFlags,
        children: Vec<ChildSpec>,
        context: TreeContext,
    ) -> Result<Self, StartError> {
        Self::start_at(ActorPath::root(name), flags, children, context).await
    }

    /// [`Tree::start_in`] with a root supervisor at `path` instead of a root of its own:
    /// a subtree that runs apart from the tree it belongs to (in another OS process, see
    /// [`External`](crate::External)) keeps the paths it has there.
    ///
    /// # Errors
    ///
    /// As [`Tree::start`].
    pub async fn start_at(
        path: ActorPath,
        flags: SupervisorFlags,
        children: Vec<ChildSpec>,
        context: TreeContext,
    ) -> Result<Self, StartError> {
        let shared = Arc::new(Shared::new(
            path.clone(),
            flags.strategy,
            context.pressure,
            context.events,
        ));
        let args = SupervisorArgs {
            flags,
            children,
            shared: shared.clone(),
        };
        let started = std::time::Instant::now();
        match Actor::spawn(None, Supervisor, args).await {
            Ok((root, _)) => Ok(Self {
                view: TreeView {
                    root: root.get_cell(),
                    shared,
                    started,
                },
                root,
            }),
            Err(ractor::SpawnErr::StartupFailed(err)) => match err.downcast::<StartError>() {
                Ok(e) => Err(*e),
                Err(other) => Err(StartError::Child {
                    path,
                    reason: ExitReason::StartupFailure(other.to_string()),
                }),
            },
            Err(other) => Err(StartError::Child {
                path,
                reason: ExitReason::StartupFailure(other.to_string()),
            }),
        }
    }

    /// The root supervisor.
    pub fn root(&self) -> SupervisorRef {
        SupervisorRef::new(self.root.clone(), self.view.shared.path.clone())
    }

    /// The supervisor at `path` (e.g. `root/io`), if it is running.
    pub fn supervisor(&self, path: &str) -> Option<SupervisorRef> {
        if path == self.view.shared.path.as_str() {
            return Some(self.root());
        }
        let (cell, view) = self.view.shared.lookup(path)?;
        view.map(|v| SupervisorRef::new(ActorRef::from(cell), v.path.clone()))
    }

    /// The live incarnation of the actor at `path`; see [`TreeView::actor`].
    pub fn actor(&self, path: &str) -> Option<ActorCell> {
        self.view.actor(path)
    }

    /// The whole tree now; see [`TreeView::snapshot`].
    pub fn snapshot(&self) -> TreeSnapshot {
        self.view.snapshot()
    }

    /// A receiver of the tree's events from now on; see [`TreeView::subscribe`].
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TreeEvent> {
        self.view.subscribe()
    }

    /// Makes a worker commit `fault`; see [`TreeView::inject`].
    ///
    /// # Errors
    ///
    /// As [`TreeView::inject`].
    pub async fn inject(&self, target: &str, fault: Fault) -> Result<ActorPath, InjectError> {
        self.view.inject(target, fault).await
    }

    /// A clonable read-only view of this tree.
    pub fn view(&self) -> TreeView {
        self.view.clone()
    }

    /// Waits until the root supervisor has ended and says why: [`ExitReason::Normal`]
    /// after [`Tree::shutdown`], [`ExitReason::Error`] carrying the escalation when the
    /// root gave up, [`ExitReason::Killed`] if it was killed.
    pub async fn wait(&self) -> ExitReason {
        // `wait` without a timeout cannot time out.
        let _ = self.root.wait(None).await;
        self.view.shared.outcome().unwrap_or(ExitReason::Killed)
    }

    /// Stops the tree gracefully: children in reverse start order, recursively, each
    /// within its shutdown policy, every `post_stop` run. Returns how the root ended.
    pub async fn shutdown(&self) -> ExitReason {
        self.root.stop(None);
        self.wait().await
    }
}
