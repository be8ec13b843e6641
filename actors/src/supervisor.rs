//! The supervisor: OTP's `supervisor` behaviour on ractor's own primitives.
//!
//! A supervisor starts its children in order, watches them through ractor's links
//! (`spawn_linked` + `SupervisionEvent`), restarts them by their [`Restart`] type and its
//! [`Strategy`], and stops them in reverse order. Its guarantees:
//!
//! - **Ordered start.** Child *n+1* starts only after child *n*'s `pre_start` succeeded.
//!   A child that fails to start counts as a crash: it is retried (after the backoff
//!   delay, if any) while the intensity allows, and the supervisor's own start fails
//!   once it does not — after stopping the children already started, in reverse order.
//! - **Restart by type.** Permanent children always restart, transient ones only after an
//!   abnormal exit (error, panic, kill, startup failure — a kill is abnormal, as in OTP),
//!   temporary ones never and are then removed.
//! - **Strategy.** `one_for_one` restarts the child; `rest_for_one` stops the children
//!   started after it (last first) and restarts them with it in start order; `one_for_all`
//!   does so for every child. Temporary siblings are stopped and not restarted.
//! - **Intensity.** More than `max_restarts` within `period` and the supervisor stops all
//!   its children in reverse start order and fails with [`Escalated`], which its own
//!   supervisor handles as a crash of it; the root's failure ends [`Tree::wait`].
//! - **No sleeps.** Without backoff a restart happens inside the handling of the exit;
//!   with backoff the restart is a timer message, so the supervisor keeps serving.
//! - **Graceful stop.** Stopping a supervisor stops its children in reverse start order,
//!   each by its [`Shutdown`] policy, so every actor's `post_stop` runs (ractor by itself
//!   would kill a stopping supervisor's children without it). A supervisor is not stopped
//!   by a child's exit (ractor's default `handle_supervisor_evt` would do that).
//! - **Messages of a dead incarnation are dropped with its mailbox.** They are not
//!   delivered to the next incarnation; a send to the old `ActorRef` fails and hands the
//!   message back to the sender.
//! - **Names are scoped to the supervisor**; ractor's global registry is not used.
//! - **One event per exit.** Each exit is one log line (`child exited`: path, kind,
//!   reason, action `restart`/`stop`/`escalate`, restarts, backoff delay) and one
//!   [`TreeEvent::ChildExited`] on the tree's [feed](crate::event), written once the
//!   decision is taken; restarts, quota actions and escalations are published there too.
//!   The supervisor's own lines are logged in an `actor{path}` span, as its children's.
//!
//! # Examples
//!
//! ```
//! use nevil_actors::{ChildSpec, Strategy, SupervisorFlags, Tree};
//! # use ractor::{Actor, ActorProcessingErr, ActorRef};
//! # #[derive(Clone)] struct Worker;
//! # impl Actor for Worker {
//! #     type Msg = (); type State = (); type Arguments = ();
//! #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
//! # }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let tree = Tree::start(
//!     "root",
//!     SupervisorFlags::new(Strategy::RestForOne),
//!     vec![
//!         ChildSpec::worker("motion", Worker, ()),
//!         ChildSpec::worker("obstacle_avoidance", Worker, ()),
//!     ],
//! )
//! .await
//! .unwrap();
//! assert!(tree.snapshot().root.find("root/motion").is_some());
//! tree.shutdown().await;
//! # }
//! ```

mod backoff;
mod children;
mod intensity;
mod shutdown;
mod spec;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::time::Instant;
use tracing::Instrument;

pub use backoff::{Backoff, JITTER_MAX, JITTER_MIN};
pub use spec::{ChildKind, ChildSpec, Restart, Shutdown, Strategy, SupervisorFlags};

use crate::error::{CallError, Escalated, SpecError, StartError};
use crate::event::{EventFeed, TreeEvent};
use crate::exit::ExitReason;
use crate::introspect::{NodeSnapshot, QuotaSnapshot, Status};
use crate::path::ActorPath;
use crate::quota::{enforcer, Action, Pressure, Resource};
use children::{Child, Children, Phase};
use intensity::Intensity;
pub(crate) use spec::StartCtx;

/// The supervisor actor. Start a tree with [`Tree::start`](crate::Tree::start), a nested
/// one with [`ChildSpec::supervisor`]; talk to a running one through [`SupervisorRef`].
#[derive(Debug, Clone, Copy)]
pub struct Supervisor;

/// What a supervisor is started with.
pub struct SupervisorArgs {
    pub(crate) flags: SupervisorFlags,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) shared: Arc<Shared>,
}

/// A request to a supervisor; built by [`SupervisorRef`]'s methods.
pub struct SupervisorMsg(Request);

enum Request {
    StartChild(Box<ChildSpec>, RpcReplyPort<Result<ActorCell, StartError>>),
    StopChild(String, RpcReplyPort<Result<(), CallError>>),
    Child(String, RpcReplyPort<Option<ActorCell>>),
    /// A scheduled (backed-off or retried) restart of `ids`, in start order.
    Restart {
        ids: Vec<u64>,
        generation: u64,
    },
    /// Time to measure governed children and enforce their quotas.
    Sample,
}

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

    fn table(&self) -> MutexGuard<'_, Children> {
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

    fn set_outcome(&self, reason: ExitReason) {
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
                    quota: c.governed.as_ref().map(|g| QuotaSnapshot {
                        group: g.group_name.clone(),
                        state: g.status().as_str().to_string(),
                        enforcements_total: g.history.enforcements_total(),
                        history: g.history.iter().copied().collect(),
                        enforcements_by_action: g.history.enforcements_by_action().collect(),
                    }),
                    restart: c.spec.restart_type(),
                    ..NodeSnapshot::new(c.path.clone(), c.spec.kind())
                };
                (node, c.view.clone())
            })
            .collect();
        // Child tables are read after this one's lock is released.
        rows.into_iter()
            .map(|(mut node, view)| {
                if let Some(view) = view {
                    node.children = view.children_snapshot();
                }
                node
            })
            .collect()
    }

    /// The counters of the child at `path` below this supervisor.
    pub(crate) fn counters(&self, path: &str) -> Option<Arc<crate::managed::Counters>> {
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

/// A handle on a running supervisor: add, stop and look up its children.
#[derive(Clone)]
pub struct SupervisorRef {
    actor: ActorRef<SupervisorMsg>,
    path: ActorPath,
}

impl SupervisorRef {
    pub(crate) fn new(actor: ActorRef<SupervisorMsg>, path: ActorPath) -> Self {
        Self { actor, path }
    }

    /// The supervisor's path.
    pub fn path(&self) -> &ActorPath {
        &self.path
    }

    /// The supervisor's cell (to link, monitor or stop it).
    pub fn cell(&self) -> ActorCell {
        self.actor.get_cell()
    }

    /// Sends a request and waits for its reply; `None` if the supervisor is gone.
    async fn request<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> Request,
    ) -> Option<T> {
        match self.actor.call(|r| SupervisorMsg(build(r)), None).await {
            Ok(ractor::rpc::CallResult::Success(reply)) => Some(reply),
            _ => None,
        }
    }

    /// Starts a dynamic child after the existing ones (last in start order, first to stop).
    ///
    /// # Errors
    ///
    /// [`StartError::Spec`] for a duplicate or invalid name; [`StartError::Child`] if its
    /// `pre_start` failed (the child is then not kept, as OTP's `start_child`);
    /// [`StartError::Unreachable`] if the supervisor is gone.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, StartError> {
        self.request(|r| Request::StartChild(Box::new(spec), r))
            .await
            .unwrap_or_else(|| Err(StartError::Unreachable(self.path.clone())))
    }

    /// Stops the child `name` by its shutdown policy and removes it (OTP's
    /// `terminate_child` then `delete_child`).
    ///
    /// # Errors
    ///
    /// [`CallError::NoSuchChild`], or [`CallError::Unreachable`] if the supervisor is gone.
    pub async fn stop_child(&self, name: &str) -> Result<(), CallError> {
        let name = name.to_string();
        self.request(|r| Request::StopChild(name, r))
            .await
            .unwrap_or_else(|| Err(CallError::Unreachable(self.path.clone())))
    }

    /// The live incarnation of the child `name`, if it is running.
    ///
    /// # Errors
    ///
    /// [`CallError::Unreachable`] if the supervisor is gone.
    pub async fn child(&self, name: &str) -> Result<Option<ActorCell>, CallError> {
        let name = name.to_string();
        self.request(|r| Request::Child(name, r))
            .await
            .ok_or_else(|| CallError::Unreachable(self.path.clone()))
    }
}

/// The supervisor's private state.
pub struct SupervisorState {
    shared: Arc<Shared>,
    /// `actor{path}`, entered by every callback, so its log lines carry its path.
    span: tracing::Span,
    flags: SupervisorFlags,
    intensity: Intensity,
    rng: fastrand::Rng,
    next_id: u64,
    next_generation: u64,
}

/// What to do after a child exit was counted against the intensity.
enum Plan {
    /// The budget is spent: stop everything and fail.
    Escalate,
    /// Start these children now, in order.
    StartNow(Vec<u64>, u64),
    /// A message to self will start them, after this backoff delay if any.
    Scheduled(Option<Duration>),
}

/// What follows a child's exit, as its exit event says.
#[derive(Debug, Clone, Copy)]
enum Next {
    /// It is restarted, after this backoff delay if any.
    Restart(Option<Duration>),
    /// It stays down (its restart type does not want a restart, or it was terminated).
    Stop,
    /// The supervisor gives up instead.
    Escalate,
}

impl Next {
    fn after(plan: &Plan) -> Self {
        match plan {
            Plan::Escalate => Self::Escalate,
            Plan::StartNow(..) => Self::Restart(None),
            Plan::Scheduled(delay) => Self::Restart(*delay),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Restart(_) => "restart",
            Self::Stop => "stop",
            Self::Escalate => "escalate",
        }
    }
}

fn check_name(supervisor: &ActorPath, name: &str) -> Result<(), SpecError> {
    if name.is_empty() || name.contains('/') {
        return Err(SpecError::InvalidName {
            supervisor: supervisor.clone(),
            name: name.to_string(),
        });
    }
    Ok(())
}

impl SupervisorState {
    fn path(&self) -> &ActorPath {
        &self.shared.path
    }

    fn table(&self) -> MutexGuard<'_, Children> {
        self.shared.table()
    }

    /// Adds a child to the table (last in start order), checking its name.
    fn add(&mut self, spec: ChildSpec) -> Result<u64, SpecError> {
        check_name(self.path(), spec.name())?;
        let mut table = self.shared.table();
        if table.by_name(spec.name()).is_some() {
            return Err(SpecError::DuplicateChild {
                supervisor: self.shared.path.clone(),
                name: spec.name().to_string(),
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        let path = self.shared.path.child(spec.name());
        table.push(Child::new(id, spec, path));
        Ok(id)
    }

    /// Starts one incarnation of child `id`; on failure records it as the child's exit.
    async fn start_one(&mut self, myself: &ActorCell, id: u64) -> Result<(), ExitReason> {
        let starting = {
            let mut table = self.table();
            table.get_mut(id).map(|c| {
                c.phase = Phase::Starting;
                c.spec.start(StartCtx {
                    path: c.path.clone(),
                    parent: myself.clone(),
                    counters: c.counters.clone(),
                    pressure: self.shared.pressure.clone(),
                    events: self.shared.events.clone(),
                })
            })
        };
        let Some(starting) = starting else {
            return Ok(());
        };
        let result = starting.await;
        let restarted = {
            let mut table = self.table();
            let Some(child) = table.get_mut(id) else {
                return Ok(());
            };
            match result {
                Ok(started) => {
                    child.counters.resume();
                    if let Some(governed) = child.governed.as_mut() {
                        governed.restarted();
                    }
                    child.cell = Some(started.cell);
                    child.view = started.view.or(child.view.take());
                    child.phase = Phase::Running;
                    child.started_at = Some(Instant::now());
                    // A child with a previous incarnation was restarted.
                    child
                        .last_exit
                        .is_some()
                        .then(|| (child.path.clone(), child.restarts))
                }
                Err(err) => {
                    // Reported by the caller, which decides what follows.
                    let reason = ExitReason::from_spawn_error(&err);
                    child.phase = Phase::Stopped;
                    child.last_exit = Some(reason.clone());
                    return Err(reason);
                }
            }
        };
        if let Some((path, restarts)) = restarted {
            self.shared.events.publish(|| TreeEvent::ChildRestarted {
                at: Instant::now(),
                path,
                restarts,
            });
        }
        Ok(())
    }

    /// Reports the exit (or failed start) of child `id` and what follows: one log line
    /// and one [`TreeEvent::ChildExited`], whatever the reason and the decision.
    fn report_exit(&self, id: u64, reason: &ExitReason, next: Next) {
        let Some((path, restarts)) = self.table().get(id).map(|c| (c.path.clone(), c.restarts))
        else {
            return;
        };
        let delay = match next {
            Next::Restart(delay) => delay,
            _ => None,
        };
        let delay_ms = delay.map(|d| d.as_secs_f64() * 1e3);
        let (kind, action) = (reason.kind(), next.as_str());
        if reason.is_abnormal() {
            tracing::warn!(%path, kind, %reason, action, restarts, delay_ms, "child exited");
        } else {
            tracing::info!(%path, kind, %reason, action, restarts, delay_ms, "child exited");
        }
        self.shared.events.publish(|| TreeEvent::ChildExited {
            at: Instant::now(),
            path,
            reason: reason.clone(),
            restart: matches!(next, Next::Restart(_)),
            delay,
        });
    }

    /// The backoff delay before restarting child `id`, advancing its run of restarts.
    fn next_delay(&mut self, id: u64) -> Option<Duration> {
        let backoff = self.flags.backoff?;
        let mut table = self.shared.table();
        let child = table.get_mut(id)?;
        let healthy = child
            .started_at
            .is_some_and(|t| t.elapsed() >= backoff.reset_after);
        let attempt = if healthy { 0 } else { child.backoff_attempt };
        child.backoff_attempt = attempt.saturating_add(1);
        Some(backoff.delay(attempt, &mut self.rng))
    }

    /// Counts a restart caused by child `failing` and schedules the restart of `group`
    /// (start order). `inline`: without backoff, the caller starts the group at once.
    fn plan_restart(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        failing: u64,
        group: Vec<u64>,
        inline: bool,
    ) -> Plan {
        if !self.intensity.add_restart(Instant::now()) {
            return Plan::Escalate;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        {
            let mut table = self.table();
            for &id in &group {
                if let Some(c) = table.get_mut(id) {
                    // A child already waiting for a restart that is re-planned (a sibling
                    // failed to start) is still waiting for the same restart.
                    if c.phase != Phase::Restarting {
                        c.restarts += 1;
                    }
                    c.phase = Phase::Restarting;
                    c.pending = Some(generation);
                }
            }
        }
        match self.next_delay(failing) {
            None if inline => Plan::StartNow(group, generation),
            None => {
                let msg = SupervisorMsg(Request::Restart {
                    ids: group,
                    generation,
                });
                if myself.cast(msg).is_err() {
                    tracing::debug!(path = %self.path(), "restart not scheduled: supervisor stopping");
                }
                Plan::Scheduled(None)
            }
            Some(delay) => {
                // The delay is part of the exit's one log line (`report_exit`).
                myself.send_after(delay, move || {
                    SupervisorMsg(Request::Restart {
                        ids: group,
                        generation,
                    })
                });
                Plan::Scheduled(Some(delay))
            }
        }
    }

    /// Starts the children of `ids` that still wait for restart `generation`, in order.
    /// A start failure counts as a crash of that child and re-plans the rest.
    async fn run_group(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        ids: &[u64],
        generation: u64,
    ) -> Result<(), ActorProcessingErr> {
        for (i, &id) in ids.iter().enumerate() {
            let due = {
                let mut table = self.table();
                match table.get_mut(id) {
                    Some(c) if c.pending == Some(generation) => {
                        c.pending = None;
                        true
                    }
                    _ => false,
                }
            };
            if !due {
                continue;
            }
            let Err(reason) = self.start_one(&myself.get_cell(), id).await else {
                continue;
            };
            if self.is_temporary(id) {
                self.report_exit(id, &reason, Next::Stop);
                self.forget_if_temporary(id);
                continue;
            }
            let rest = ids[i..].to_vec();
            let plan = self.plan_restart(myself, id, rest, false);
            self.report_exit(id, &reason, Next::after(&plan));
            if let Plan::Escalate = plan {
                return Err(self.escalate(id, &reason).await);
            }
            return Ok(());
        }
        Ok(())
    }

    /// Whether child `id` is temporary (never restarted).
    fn is_temporary(&self, id: u64) -> bool {
        self.table()
            .get(id)
            .is_some_and(|c| c.spec.restart_type() == Restart::Temporary)
    }

    /// Removes child `id` if it is temporary; says whether it did.
    fn forget_if_temporary(&mut self, id: u64) -> bool {
        let temporary = self.is_temporary(id);
        if temporary {
            self.table().remove(id);
        }
        temporary
    }

    /// Handles the exit of the current incarnation of child `id`.
    async fn on_child_exit(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: u64,
        reason: ExitReason,
    ) -> Result<(), ActorProcessingErr> {
        let restart_type = {
            let mut table = self.table();
            let Some(child) = table.get_mut(id) else {
                return Ok(());
            };
            child.cell = None;
            child.phase = Phase::Stopped;
            child.last_exit = Some(reason.clone());
            child.spec.restart_type()
        };
        if !restart_type.wants_restart(reason.is_abnormal()) {
            self.report_exit(id, &reason, Next::Stop);
            self.forget_if_temporary(id);
            return Ok(());
        }
        let group = self.table().group(id, self.flags.strategy);
        for &sibling in group.iter().rev().filter(|&&s| s != id) {
            self.stop_child(sibling).await;
        }
        let group = self.table().without_temporaries(group, id);
        let plan = self.plan_restart(myself, id, group, true);
        // Logged once the decision is known: one line per exit, restart included.
        self.report_exit(id, &reason, Next::after(&plan));
        match plan {
            Plan::Escalate => Err(self.escalate(id, &reason).await),
            Plan::StartNow(ids, generation) => self.run_group(myself, &ids, generation).await,
            Plan::Scheduled(_) => Ok(()),
        }
    }

    /// Stops the live incarnation of child `id` (if any) by its shutdown policy.
    async fn stop_child(&mut self, id: u64) {
        self.stop_child_by(id, None).await;
    }

    /// Stops the live incarnation of child `id` (if any) by `policy`, or by its own
    /// shutdown policy when `None`.
    async fn stop_child_by(&mut self, id: u64, policy: Option<Shutdown>) {
        let target = {
            let mut table = self.table();
            let Some(child) = table.get_mut(id) else {
                return;
            };
            child.pending = None;
            child.phase = Phase::Stopped;
            // A suspended child waits at its gate, where a graceful stop cannot reach it.
            child.counters.resume();
            child.cell.clone().map(|cell| {
                let policy = policy.unwrap_or_else(|| child.spec.shutdown_policy());
                (cell, policy, child.path.clone())
            })
        };
        let Some((cell, policy, path)) = target else {
            return;
        };
        let how = shutdown::stop(&cell, policy, &path).await;
        if let Some(child) = self.table().get_mut(id) {
            child.cell = None;
            child.last_exit = Some(how);
        }
    }

    /// Measures every governed child and enforces its quota: gate actions at once,
    /// restart and terminate through the child's life cycle. A child restarted or
    /// terminated for a stall is killed at once ([`Shutdown::BrutalKill`]) rather than
    /// stopped by its shutdown policy: a wedged handler would not finish its message, and
    /// waiting out its grace would leave it silent that much longer. A child of a critical
    /// group restarted for any other resource gets at most one sampling interval of grace.
    async fn sample(&mut self, myself: &ActorRef<SupervisorMsg>) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        let interval = self.flags.sample_interval.unwrap_or_default();
        let mut decided = Vec::new();
        for c in self.table().iter_mut() {
            let (Some(governed), Phase::Running) = (c.governed.as_mut(), c.phase) else {
                continue;
            };
            let sampled = governed.sample(&c.counters, now, interval, &self.shared.pressure);
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
            decided.push((c.id, c.path.clone(), d, gate_only, grace));
        }
        // Logged once the table is released: readers (tree dumps) never wait on log I/O.
        let mut drastic = Vec::new();
        for (id, path, d, gate_only, grace) in decided {
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
            self.shared.events.publish(|| TreeEvent::QuotaEnforced {
                at: now,
                path,
                resource: d.resource,
                usage: d.usage,
                limit: d.limit,
                action: d.action,
            });
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

    /// Stops every child, last started first.
    async fn stop_all(&mut self) {
        let order = self.table().running_in_stop_order();
        for id in order {
            self.stop_child(id).await;
        }
    }

    /// Gives up: stops all children in reverse start order and returns the error this
    /// supervisor fails with.
    async fn escalate(&mut self, failing: u64, reason: &ExitReason) -> ActorProcessingErr {
        let culprit = self
            .table()
            .get(failing)
            .map_or_else(|| self.path().clone(), |c| c.path.clone());
        let err = Escalated {
            path: self.path().clone(),
            max_restarts: self.flags.max_restarts,
            period: self.flags.period,
            cause: format!("{culprit}: {reason}"),
        };
        tracing::error!(path = %self.path(), child = %culprit, %err, "supervisor giving up");
        self.shared.events.publish(|| TreeEvent::Escalated {
            at: Instant::now(),
            path: self.path().clone(),
            child: culprit,
            reason: reason.clone(),
        });
        self.stop_all().await;
        self.shared
            .set_outcome(ExitReason::Error(format!("escalated: {err}")));
        Box::new(err)
    }

    /// Initial start: every child in order; a failed start is retried as a crash.
    async fn start_all(&mut self, myself: &ActorCell) -> Result<(), StartError> {
        let ids: Vec<u64> = self.table().iter().map(|c| c.id).collect();
        for id in ids {
            while let Err(reason) = self.start_one(myself, id).await {
                if self.is_temporary(id) {
                    self.report_exit(id, &reason, Next::Stop);
                    self.forget_if_temporary(id);
                    break;
                }
                if !self.intensity.add_restart(Instant::now()) {
                    self.report_exit(id, &reason, Next::Escalate);
                    let err = self.escalate(id, &reason).await;
                    return Err(match err.downcast::<Escalated>() {
                        Ok(e) => StartError::Escalated(*e),
                        Err(_) => StartError::Unreachable(self.path().clone()),
                    });
                }
                if let Some(c) = self.table().get_mut(id) {
                    c.restarts += 1;
                }
                let delay = self.next_delay(id);
                self.report_exit(id, &reason, Next::Restart(delay));
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
            }
        }
        Ok(())
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let flags = args.flags;
        // A root span, as a worker's: a line shows one path, not the chain above it.
        let span = tracing::info_span!(parent: None, "actor", path = %args.shared.path);
        let mut state = SupervisorState {
            shared: args.shared,
            span: span.clone(),
            flags,
            intensity: Intensity::new(flags.max_restarts, flags.period),
            rng: flags
                .seed
                .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
            next_id: 0,
            next_generation: 0,
        };
        async {
            for spec in args.children {
                state.add(spec).map_err(StartError::from)?;
            }
            state.start_all(&myself.get_cell()).await?;
            tracing::debug!("supervisor started");
            Ok(state)
        }
        .instrument(span)
        .await
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(interval) = state.flags.sample_interval {
            // Skip missed ticks rather than bursting them after a stall.
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(Instant::now() + interval, interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tick.tick().await;
                    if myself.cast(SupervisorMsg(Request::Sample)).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        async {
            state.stop_all().await;
            state.shared.set_outcome(ExitReason::Normal);
            tracing::debug!("supervisor stopped");
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        SupervisorMsg(request): Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        state.handle(myself, request).instrument(span).await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some(reason) = ExitReason::from_event(&event) else {
            return Ok(());
        };
        let Some(cell) = event.actor_cell() else {
            return Ok(());
        };
        // An exit of an incarnation already replaced or deliberately stopped is old news.
        let Some(id) = state.table().by_actor(cell.get_id()) else {
            return Ok(());
        };
        let span = state.span.clone();
        state
            .on_child_exit(&myself, id, reason)
            .instrument(span)
            .await
    }
}

impl SupervisorState {
    /// Serves one request (inside the supervisor's span).
    async fn handle(
        &mut self,
        myself: ActorRef<SupervisorMsg>,
        request: Request,
    ) -> Result<(), ActorProcessingErr> {
        let state = self;
        match request {
            Request::StartChild(spec, reply) => {
                let result = match state.add(*spec) {
                    Err(e) => Err(StartError::from(e)),
                    Ok(id) => match state.start_one(&myself.get_cell(), id).await {
                        Ok(()) => state
                            .table()
                            .get(id)
                            .and_then(|c| c.cell.clone())
                            .ok_or_else(|| StartError::Unreachable(state.path().clone())),
                        Err(reason) => {
                            // Not kept (OTP's `start_child`); the caller gets the error.
                            state.report_exit(id, &reason, Next::Stop);
                            let path = state.table().get(id).map(|c| c.path.clone());
                            state.table().remove(id);
                            Err(StartError::Child {
                                path: path.unwrap_or_else(|| state.path().clone()),
                                reason,
                            })
                        }
                    },
                };
                let _ = reply.send(result);
            }
            Request::StopChild(name, reply) => {
                let id = state.table().by_name(&name).map(|c| c.id);
                let result = match id {
                    None => Err(CallError::NoSuchChild {
                        supervisor: state.path().clone(),
                        name,
                    }),
                    Some(id) => {
                        state.stop_child(id).await;
                        state.table().remove(id);
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            Request::Child(name, reply) => {
                let cell = state.table().by_name(&name).and_then(|c| c.cell.clone());
                let _ = reply.send(cell);
            }
            Request::Restart { ids, generation } => {
                state.run_group(&myself, &ids, generation).await?;
            }
            Request::Sample => state.sample(&myself).await?,
        }
        Ok(())
    }
}
