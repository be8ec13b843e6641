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
//!   abnormal exit (error, panic, kill, startup failure, quota — a kill is abnormal, as in
//!   OTP; a normal exit or a [`Shutdown`](ExitReason::Shutdown) is not), temporary ones
//!   never and are then removed. The decision is one match, in `restart.rs`.
//! - **Strategy.** `one_for_one` restarts the child; `rest_for_one` stops the children
//!   started after it (last first) and restarts them with it in start order; `one_for_all`
//!   does so for every child. Temporary siblings are stopped and not restarted.
//! - **Intensity.** More than `max_restarts` within `period` and the supervisor stops all
//!   its children in reverse start order and fails with [`Escalated`], which its own
//!   supervisor handles as a crash of it; the root's failure ends [`Tree::wait`](crate::Tree::wait). A
//!   failed start, a crash and a failed restart all escalate through one path.
//! - **Calls** ([`SupervisorRef`]): `start_child`, `stop_child` (OTP's `terminate_child`
//!   then `delete_child`), `restart_child` (a child that is down and not coming back by
//!   itself), `which_children`, `count_children`, `child`.
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
//!         ChildSpec::worker("executor", Worker, ()),
//!         ChildSpec::worker("obstacle_avoidance", Worker, ()),
//!     ],
//! )
//! .await
//! .unwrap();
//! assert!(tree.snapshot().root.find("root/executor").is_some());
//! tree.shutdown().await;
//! # }
//! ```

mod api;
mod backoff;
mod children;
mod intensity;
mod restart;
mod sample;
mod shutdown;
mod spec;
mod view;

use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::time::Instant;
use tracing::Instrument;

pub(crate) use api::SupervisorMsg;
pub use api::{ChildCounts, ChildInfo, Incarnation, SupervisorRef};
pub use backoff::{Backoff, JITTER_MAX, JITTER_MIN};
pub(crate) use spec::StartCtx;
pub use spec::{ChildKind, ChildSpec, Restart, Shutdown, Strategy, SupervisorFlags};
pub(crate) use view::Shared;

use crate::error::{Escalated, SpecError, StartError};
use crate::event::TreeEvent;
use crate::exit::ExitReason;
use crate::path::ActorPath;
use api::Request;
use children::{Child, Children, Phase};
use intensity::Intensity;
use restart::{decide, Next, Verdict};

/// The supervisor actor. Start a tree with [`Tree::start`](crate::Tree::start), a nested
/// one with [`ChildSpec::supervisor`]; talk to a running one through [`SupervisorRef`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Supervisor;

/// What a supervisor is started with.
pub(crate) struct SupervisorArgs {
    pub(crate) flags: SupervisorFlags,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) shared: Arc<Shared>,
}

/// The supervisor's private state.
pub(crate) struct SupervisorState {
    shared: Arc<Shared>,
    /// `actor{path}`, entered by every callback, so its log lines carry its path.
    span: tracing::Span,
    flags: SupervisorFlags,
    intensity: Intensity,
    rng: fastrand::Rng,
    next_id: u64,
    next_generation: u64,
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

    /// Applies the restart decision to child `id`, which exited with `reason`: `true` when
    /// it is to be restarted; otherwise its exit is reported here and it stays down (or,
    /// temporary, is forgotten).
    fn wants_restart(&mut self, id: u64, reason: &ExitReason) -> bool {
        let Some(restart) = self.table().get(id).map(|c| c.spec.restart_type()) else {
            return false;
        };
        match decide(restart, reason) {
            Verdict::Restart => true,
            Verdict::Keep => {
                self.report_exit(id, reason, Next::Stop);
                false
            }
            Verdict::Delete => {
                self.report_exit(id, reason, Next::Stop);
                self.table().remove(id);
                false
            }
        }
    }

    /// Handles the exit of the current incarnation of child `id`: the restart decision,
    /// then the strategy.
    async fn on_child_exit(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: u64,
        reason: ExitReason,
    ) -> Result<(), ActorProcessingErr> {
        {
            let mut table = self.table();
            let Some(child) = table.get_mut(id) else {
                return Ok(());
            };
            child.cell = None;
            child.phase = Phase::Stopped;
            child.last_exit = Some(reason.clone());
        }
        self.settle_migration(id);
        if !self.wants_restart(id, &reason) {
            return Ok(());
        }
        let group = match self.flags.strategy {
            Strategy::OneForOne => self.one_for_one(id),
            Strategy::RestForOne => self.rest_for_one(id).await,
            Strategy::OneForAll => self.one_for_all(id).await,
        };
        if let Some((ids, generation)) = self.plan_restart(myself, id, &reason, group, true).await?
        {
            self.run_group(myself, &ids, generation).await?;
        }
        Ok(())
    }

    /// `one_for_one`: only the child that exited restarts.
    fn one_for_one(&self, id: u64) -> Vec<u64> {
        vec![id]
    }

    /// `rest_for_one`: the children started after `id` are stopped, last first, and
    /// restart with it in start order.
    async fn rest_for_one(&mut self, id: u64) -> Vec<u64> {
        let group = self.table().started_from(id);
        self.stop_siblings(group, id).await
    }

    /// `one_for_all`: every other child is stopped, last first, and all restart in start
    /// order.
    async fn one_for_all(&mut self, id: u64) -> Vec<u64> {
        let group = self.table().ids();
        self.stop_siblings(group, id).await
    }

    /// Stops the members of `group` other than `failing`, last started first, and drops
    /// the temporary ones (OTP does not restart them with their siblings); returns the
    /// group left to restart, in start order.
    ///
    /// A sibling still waiting for a (backed-off) restart has nothing to stop: the restart
    /// planned now replaces the one it waits for and is counted as the same restart of it.
    async fn stop_siblings(&mut self, group: Vec<u64>, failing: u64) -> Vec<u64> {
        for &sibling in group.iter().rev().filter(|&&s| s != failing) {
            let waiting = self
                .table()
                .get(sibling)
                .is_some_and(|c| c.phase == Phase::Restarting);
            if !waiting {
                self.stop_child(sibling).await;
                self.settle_migration(sibling);
            }
        }
        self.table().without_temporaries(group, failing)
    }

    /// Counts one restart caused by child `failing` (exited with `reason`) against the
    /// intensity. When the budget is spent this is where the supervisor gives up, whatever
    /// failed (a start, a running child, a restart): the exit is reported as escalated,
    /// every child is stopped in reverse start order, and the error it fails with is
    /// returned.
    async fn count_restart(&mut self, failing: u64, reason: &ExitReason) -> Result<(), Escalated> {
        if self.intensity.add_restart(Instant::now()) {
            return Ok(());
        }
        self.report_exit(failing, reason, Next::Escalate);
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
        Err(err)
    }

    /// Counts a restart of `group` (start order) caused by child `failing`, reports the
    /// exit and schedules the restart. Without backoff and with `inline`, returns the
    /// group (and its generation) for the caller to start at once; otherwise a message to
    /// self starts it, after the backoff delay if any.
    async fn plan_restart(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        failing: u64,
        reason: &ExitReason,
        group: Vec<u64>,
        inline: bool,
    ) -> Result<Option<(Vec<u64>, u64)>, Escalated> {
        self.count_restart(failing, reason).await?;
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
        let delay = self.next_delay(failing);
        // Logged once the decision is known: one line per exit, restart included.
        self.report_exit(failing, reason, Next::Restart(delay));
        match delay {
            None if inline => return Ok(Some((group, generation))),
            None => {
                let msg = SupervisorMsg(Request::Restart {
                    ids: group,
                    generation,
                });
                if myself.cast(msg).is_err() {
                    tracing::debug!(path = %self.path(), "restart not scheduled: supervisor stopping");
                }
            }
            Some(delay) => {
                myself.send_after(delay, move || {
                    SupervisorMsg(Request::Restart {
                        ids: group,
                        generation,
                    })
                });
            }
        }
        Ok(None)
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
            if !self.wants_restart(id, &reason) {
                continue;
            }
            self.plan_restart(myself, id, &reason, ids[i..].to_vec(), false)
                .await?;
            return Ok(());
        }
        Ok(())
    }

    /// Initial start: every child in order; a failed start is retried as a crash.
    async fn start_all(&mut self, myself: &ActorCell) -> Result<(), StartError> {
        let ids = self.table().ids();
        for id in ids {
            while let Err(reason) = self.start_one(myself, id).await {
                if !self.wants_restart(id, &reason) {
                    break;
                }
                self.count_restart(id, &reason).await?;
                if let Some(c) = self.table().get_mut(id) {
                    c.restarts += 1;
                }
                let delay = self.next_delay(id);
                self.report_exit(id, &reason, Next::Restart(delay));
                if let Some(delay) = delay {
                    // The supervisor is still in its own `pre_start`: nothing else to serve.
                    tokio::time::sleep(delay).await;
                }
            }
        }
        Ok(())
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

    /// Stops every child, last started first.
    async fn stop_all(&mut self) {
        let order = self.table().running_in_stop_order();
        for id in order {
            self.stop_child(id).await;
        }
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
            // Exactly as many slots as children: a table grown by doubling would hold
            // up to twice the memory its children need.
            state.table().reserve_exact(args.children.len());
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
