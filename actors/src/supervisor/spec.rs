//! What a supervisor is told: its flags and one [`ChildSpec`] per child.
//!
//! The words are OTP's (`supervisor.erl`'s type section is the glossary): a child's
//! [`Restart`] type, its [`Shutdown`] policy, the supervisor's [`Strategy`] and its restart
//! intensity (`intensity` restarts within `period`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use ractor::{Actor, ActorCell, SpawnErr};
use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use super::{Shared, Supervisor, SupervisorArgs};
use crate::event::EventFeed;
use crate::fault::{self, FloodFn};
use crate::managed::{Counters, Managed};
use crate::path::ActorPath;
use crate::quota::{Migration, Pressure, QuotaGroup};

/// Which siblings restart with a child that exited abnormally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Only the child that exited.
    #[default]
    OneForOne,
    /// The child and every child started after it (later children depend on earlier).
    RestForOne,
    /// Every child.
    OneForAll,
}

impl Strategy {
    /// The snake_case name used in configs and the tree JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneForOne => "one_for_one",
            Self::RestForOne => "rest_for_one",
            Self::OneForAll => "one_for_all",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a child that exited is restarted (the whole decision is one match, in the
/// supervisor's `restart` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always.
    #[default]
    Permanent,
    /// Only after an abnormal exit (error, panic, killed, startup failure, quota), not
    /// after a normal one or a shutdown; it then stays down until `restart_child`.
    Transient,
    /// Never; the child is removed from its supervisor when it exits.
    Temporary,
}

/// How a supervisor stops a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shutdown {
    /// Kill at once: no `post_stop`.
    BrutalKill,
    /// Ask it to stop, wait this long for its `post_stop` to finish, then kill it.
    Timeout(Duration),
    /// Ask it to stop and wait as long as it takes (the default for supervisors, whose
    /// own children have timeouts).
    Infinity,
}

impl Shutdown {
    /// OTP's default for workers: 5 s of grace.
    pub const WORKER_DEFAULT: Self = Self::Timeout(Duration::from_secs(5));
}

/// Whether a child is a worker or a supervisor of its own subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// Does the work; has no children of its own.
    Worker,
    /// A supervisor ([`ChildSpec::supervisor`]) with its own children.
    Supervisor,
}

/// A supervisor's own policy.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use nevil_actors::{Strategy, SupervisorFlags};
/// let flags = SupervisorFlags::new(Strategy::RestForOne).intensity(3, Duration::from_secs(5));
/// assert_eq!(flags.max_restarts, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupervisorFlags {
    /// Which siblings restart together.
    pub strategy: Strategy,
    /// Restarts allowed within `period` before the supervisor gives up (OTP default 1).
    pub max_restarts: u32,
    /// The intensity window (OTP default 5 s).
    pub period: Duration,
    /// Delay between restarts; `None` (the default) restarts at once.
    pub backoff: Option<Backoff>,
    /// Seed of the jitter source, for reproducible delays; `None` seeds from entropy.
    pub seed: Option<u64>,
    /// How often governed children (those with a quota) are measured and their quotas
    /// enforced; `None` (the default) enforces nothing.
    pub sample_interval: Option<Duration>,
}

impl SupervisorFlags {
    /// OTP's defaults for `strategy`: 1 restart in 5 s, no backoff.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            strategy,
            max_restarts: 1,
            period: Duration::from_secs(5),
            backoff: None,
            seed: None,
            sample_interval: None,
        }
    }

    /// At most `max_restarts` within `period`.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Wait between restarts (exponential with jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Seed the jitter source.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Measure governed children and enforce their quotas every `interval`.
    pub fn sample_every(mut self, interval: Duration) -> Self {
        self.sample_interval = Some(interval);
        self
    }
}

impl Default for SupervisorFlags {
    fn default() -> Self {
        Self::new(Strategy::OneForOne)
    }
}

/// What starting a child produced: its cell and, for a supervisor, its child table.
pub(crate) struct Started {
    pub(crate) cell: ActorCell,
    pub(crate) view: Option<Arc<Shared>>,
}

/// Where a child is started: its path and the supervisor that links it.
pub(crate) struct StartCtx {
    pub(crate) path: ActorPath,
    pub(crate) parent: ActorCell,
    /// The child's counters, kept by its supervisor across incarnations.
    pub(crate) counters: Arc<Counters>,
    /// The tree's pressure level, which a supervisor child shares.
    pub(crate) pressure: Pressure,
    /// The tree's event feed, which a child supervisor publishes to as well.
    pub(crate) events: EventFeed,
}

type StartFn = dyn Fn(StartCtx) -> BoxFuture<'static, Result<Started, SpawnErr>> + Send + Sync;

/// How to start (and restart) one child, and how it is treated when it exits.
///
/// The name is scoped to the supervisor; ractor's global registry is never used, so the
/// same spec can be started in two trees of one process.
///
/// # Examples
///
/// ```
/// use nevil_actors::{ChildSpec, Restart, Shutdown};
/// # use ractor::{Actor, ActorProcessingErr, ActorRef};
/// # #[derive(Clone)] struct Reader;
/// # impl Actor for Reader {
/// #     type Msg = (); type State = (); type Arguments = ();
/// #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
/// # }
/// let spec = ChildSpec::worker("reader", Reader, ())
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::BrutalKill);
/// assert_eq!(spec.name(), "reader");
/// ```
#[derive(Clone)]
pub struct ChildSpec {
    name: String,
    kind: ChildKind,
    strategy: Option<Strategy>,
    restart: Restart,
    shutdown: Shutdown,
    /// Boxed: most children have none, and a supervisor keeps every spec inline.
    quota: Option<Box<(String, QuotaGroup)>>,
    /// When its work moves to another host under host pressure ([`ChildSpec::migratable`]).
    migration: Option<Migration>,
    start: Arc<StartFn>,
    /// What a `flood` fault sends this worker ([`ChildSpec::flood`]).
    flood: Option<FloodFn>,
    /// A supervisor's children, for resolving fault targets before start.
    children: Vec<ChildSpec>,
}

impl ChildSpec {
    /// A worker that is started as `actor` with a clone of `args` each time.
    pub fn worker<A>(name: impl Into<String>, actor: A, args: A::Arguments) -> Self
    where
        A: Actor + Clone,
        A::Arguments: Clone + Sync,
    {
        Self::worker_with(name, move || (actor.clone(), args.clone()))
    }

    /// A worker built afresh by `make` for each start, for actors or arguments that are
    /// not `Clone` (a channel end, a device handle).
    pub fn worker_with<A, F>(name: impl Into<String>, make: F) -> Self
    where
        A: Actor,
        F: Fn() -> (A, A::Arguments) + Send + Sync + 'static,
    {
        let start = move |ctx: StartCtx| -> BoxFuture<'static, Result<Started, SpawnErr>> {
            let (actor, args) = make();
            Box::pin(async move {
                let managed = Managed::new(actor).supervised(&ctx.path, ctx.counters);
                let (actor_ref, _) = Actor::spawn_linked(None, managed, args, ctx.parent).await?;
                Ok(Started {
                    cell: actor_ref.get_cell(),
                    view: None,
                })
            })
        };
        Self {
            name: name.into(),
            kind: ChildKind::Worker,
            strategy: None,
            restart: Restart::Permanent,
            shutdown: Shutdown::WORKER_DEFAULT,
            quota: None,
            migration: None,
            start: Arc::new(start),
            flood: None,
            children: Vec::new(),
        }
    }

    /// A supervisor of its own subtree. Its shutdown defaults to
    /// [`Shutdown::Infinity`]: its children's timeouts bound it.
    pub fn supervisor(
        name: impl Into<String>,
        flags: SupervisorFlags,
        children: Vec<ChildSpec>,
    ) -> Self {
        let kids = children.clone();
        let start = move |ctx: StartCtx| -> BoxFuture<'static, Result<Started, SpawnErr>> {
            let shared = Arc::new(Shared::new(
                ctx.path.clone(),
                flags.strategy,
                ctx.pressure.clone(),
                ctx.events.clone(),
            ));
            let args = SupervisorArgs {
                flags,
                children: kids.clone(),
                shared: shared.clone(),
            };
            Box::pin(async move {
                let (actor_ref, _) =
                    Actor::spawn_linked(None, Supervisor, args, ctx.parent).await?;
                Ok(Started {
                    cell: actor_ref.get_cell(),
                    view: Some(shared),
                })
            })
        };
        Self {
            name: name.into(),
            kind: ChildKind::Supervisor,
            strategy: Some(flags.strategy),
            restart: Restart::Permanent,
            shutdown: Shutdown::Infinity,
            quota: None,
            migration: None,
            start: Arc::new(start),
            flood: None,
            children,
        }
    }

    /// Sets the restart type (default [`Restart::Permanent`]).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the shutdown policy (default 5 s for workers, infinity for supervisors).
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Governs the child by the quota `group` (named `name` in the tree), enforced by
    /// its supervisor when it samples ([`SupervisorFlags::sample_every`]).
    pub fn quota(mut self, name: impl Into<String>, group: QuotaGroup) -> Self {
        self.quota = Some(Box::new((name.into(), group)));
        self
    }

    /// Lets its supervisor migrate the worker's work to another host under sustained
    /// critical host pressure and back when it clears, by `policy`
    /// ([`crate::quota::migrate`]); the worker's [`External`](crate::External) says where
    /// the work runs and carries the moves out. A worker without a quota is governed for
    /// this alone (no limits). Decided at the supervisor's samples
    /// ([`SupervisorFlags::sample_every`]).
    pub fn migratable(mut self, policy: Migration) -> Self {
        self.migration = Some(policy);
        self
    }

    /// What a `flood` fault ([`crate::fault`]) sends this worker: messages made by `make`,
    /// which must be of the worker's message type (else the flood is refused). Pick one
    /// the worker can take in any number without harm. Without it, a flood is refused.
    pub fn flood<M: ractor::Message>(
        mut self,
        make: impl Fn() -> M + Send + Sync + 'static,
    ) -> Self {
        self.flood = Some(fault::flood_fn(make));
        self
    }

    pub(crate) fn flood_fn(&self) -> Option<FloodFn> {
        self.flood.clone()
    }

    /// A supervisor's children, in start order (none for a worker).
    pub fn children(&self) -> &[ChildSpec] {
        &self.children
    }

    pub(crate) fn quota_group(&self) -> Option<&(String, QuotaGroup)> {
        self.quota.as_deref()
    }

    pub(crate) fn migration(&self) -> Option<Migration> {
        self.migration
    }

    /// Runs the child on `runtime` instead of its supervisor's: a bulkhead, so that a
    /// CPU-heavy child (and, for a supervisor, its whole subtree) cannot delay actors on
    /// other runtimes. Supervision is unchanged (links and messages cross runtimes).
    ///
    /// The limit that remains: a handler that never yields still holds one of that
    /// runtime's threads, and ractor's kill is cooperative, so it cannot be stopped
    /// in-process; only running it in a child process (a later step) closes that.
    pub fn on_runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        let start = self.start.clone();
        self.start = Arc::new(
            move |ctx: StartCtx| -> BoxFuture<'static, Result<Started, SpawnErr>> {
                let starting = start(ctx);
                let runtime = runtime.clone();
                Box::pin(async move {
                    runtime.spawn(starting).await.map_err(|e| {
                        SpawnErr::StartupFailed(format!("bulkhead runtime: {e}").into())
                    })?
                })
            },
        );
        self
    }

    /// The child's name, unique among its siblings.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Worker or supervisor.
    pub fn kind(&self) -> ChildKind {
        self.kind
    }

    /// The child's restart type.
    pub fn restart_type(&self) -> Restart {
        self.restart
    }

    /// The child's shutdown policy.
    pub fn shutdown_policy(&self) -> Shutdown {
        self.shutdown
    }

    pub(crate) fn strategy(&self) -> Option<Strategy> {
        self.strategy
    }

    pub(crate) fn start(&self, ctx: StartCtx) -> BoxFuture<'static, Result<Started, SpawnErr>> {
        (self.start)(ctx)
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_are_snake_case() {
        assert_eq!(Strategy::OneForOne.to_string(), "one_for_one");
        assert_eq!(Strategy::RestForOne.to_string(), "rest_for_one");
        assert_eq!(Strategy::OneForAll.to_string(), "one_for_all");
    }

    #[test]
    fn flags_default_to_otp() {
        let f = SupervisorFlags::default();
        assert_eq!(f.strategy, Strategy::OneForOne);
        assert_eq!(f.max_restarts, 1);
        assert_eq!(f.period, Duration::from_secs(5));
        assert!(f.backoff.is_none());
    }
}
