//! Fault injection: make a worker misbehave on purpose, so that operators and tests can
//! watch supervision (and whatever relies on it) respond on the real tree.
//!
//! | fault | what the worker does |
//! |---|---|
//! | `panic` | panics |
//! | `error` | fails with an error |
//! | `exit` | stops itself normally |
//! | `hang` | awaits forever (it stops handling messages) |
//! | `spin` | burns CPU, yielding every millisecond, forever |
//! | `busy` | spins forever without ever yielding (no `.await`) |
//! | `leak` | allocates and holds ~1 MiB more every 100 ms |
//! | `flood` | its mailbox receives messages faster than it handles them |
//!
//! A fault is injected with [`TreeView::inject`](crate::TreeView::inject) and carried out
//! by [`Managed`](crate::Managed) inside the worker's own task, so it behaves exactly as
//! the worker's own code would: a panic is tagged and `post_stop` still runs, handler time
//! and memory are charged to the worker. The worker's message type knows nothing of it.
//!
//! How a fault reaches the worker:
//!
//! - **One-shot faults** (panic, error, exit, hang, spin) are left with the worker's
//!   counters and flagged on its gate, which makes the gate read as not open: the next
//!   message takes the slow path, which carries the fault out (the message is consumed).
//!   ractor wakes an actor only for messages, signals and supervision events, so an idle
//!   worker is woken by a supervision event: inject spawns a tiny helper actor linked to
//!   the worker, whose `ActorStarted` reaches the worker's `handle_supervisor_evt`, which
//!   works for any message type. `Managed` never forwards events about its helpers to the
//!   actor it wraps.
//! - **Leak**: a helper linked to the worker sends it an `ActorStarted` about itself every
//!   100 ms (`ActorCell::notify_supervisor`, the one public way to reach an actor's
//!   supervision port); each one makes the worker hold 1 MiB more.
//! - **Flood**: the message type is known only where the child is specified, so the
//!   messages come from a closure on its [`ChildSpec`]
//!   ([`ChildSpec::flood`](crate::ChildSpec::flood)). A helper sends 500 of them every
//!   10 ms through the worker's counting [`Mailbox`], and while the flood
//!   lasts each message costs [`FLOOD_ITEM_COST`] of busy time in the gate's slow path,
//!   so the flood outpaces the handler.
//!
//! `busy` is the fault no in-process runtime survives: the handler never returns to its
//! executor, so no stop, kill or quota reaches it, and it holds the thread it runs on for
//! good (on a runtime with one thread, everything on it stops). Only a worker whose work
//! runs in another OS process ([`crate::external`]) can be stopped then — by the kernel.
//! Inject it in process only to see that.
//!
//! A fault targets one incarnation. Helpers are linked to it, and ractor stops an actor's
//! linked children when it ends (`ActorCell::terminate` on its way out), so a leak or a
//! flood ends with the incarnation; the next one starts with no fault pending.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, Message};

use crate::managed::{gate, Counters, Mailbox};
use crate::path::ActorPath;
use crate::supervisor::{ChildKind, ChildSpec};

/// A fault a worker can be made to commit; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Panics.
    Panic,
    /// Fails with an error.
    Error,
    /// Stops itself normally.
    Exit,
    /// Awaits forever.
    Hang,
    /// Burns CPU, yielding each millisecond.
    Spin,
    /// Allocates and holds ~1 MiB more per 100 ms.
    Leak,
    /// Its mailbox receives a flood of messages.
    Flood,
    /// Spins forever without ever yielding: holds its thread for good in process.
    Busy,
}

impl Fault {
    /// Every fault, by name.
    pub const ALL: [(&'static str, Fault); 8] = [
        ("panic", Fault::Panic),
        ("error", Fault::Error),
        ("exit", Fault::Exit),
        ("hang", Fault::Hang),
        ("spin", Fault::Spin),
        ("leak", Fault::Leak),
        ("flood", Fault::Flood),
        ("busy", Fault::Busy),
    ];

    /// The fault's name.
    pub fn name(self) -> &'static str {
        Self::ALL[self.index()].0
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Whether the worker carries it out once (rather than for as long as it lives).
    fn is_one_shot(self) -> bool {
        !matches!(self, Self::Leak | Self::Flood)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`Fault`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {0:?} (expected one of: {names})", names = fault_names())]
pub struct UnknownFault(pub String);

fn fault_names() -> String {
    let names: Vec<_> = Fault::ALL.iter().map(|(n, _)| *n).collect();
    names.join(", ")
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(name: &str) -> Result<Self, UnknownFault> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| UnknownFault(name.to_string()))
    }
}

/// Why a fault could not be injected (or its target not resolved).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// No actor of the tree has this name or path.
    #[error("no such actor (workers: {})", workers.join(", "))]
    NoSuchActor {
        /// The name or path as given.
        target: String,
        /// The tree's workers, to choose from.
        workers: Vec<String>,
    },
    /// The target is a supervisor.
    #[error("{path} is a supervisor; faults are injected into workers")]
    Supervisor {
        /// The supervisor's path.
        path: String,
    },
    /// The worker has no live incarnation now (it is being restarted, or gone).
    #[error("{path} is not running")]
    NotRunning {
        /// The worker's path.
        path: String,
    },
    /// A flood on a worker whose spec says what to flood it with.
    #[error("{path} cannot be flooded: its ChildSpec has no flood (ChildSpec::flood)")]
    NoFlood {
        /// The worker's path.
        path: String,
    },
    /// A flood whose messages are not the worker's message type.
    #[error("{path} cannot be flooded: its ChildSpec's flood makes messages of another type")]
    FloodType {
        /// The worker's path.
        path: String,
    },
    /// The worker runs in another process and the fault could not be passed on to it
    /// ([`External::inject`](crate::External::inject)).
    #[error("{path} runs in another process, which did not take the fault: {reason}")]
    External {
        /// The worker's path.
        path: String,
        /// Why, as the external says.
        reason: String,
    },
}

/// Finds the worker that `target` names — its path, or its name alone (the first match in
/// start order) — among the actors of a tree, given as `(path, kind)` root first in
/// start order.
fn find<'a>(
    actors: impl IntoIterator<Item = (&'a ActorPath, ChildKind)>,
    target: &str,
) -> Result<ActorPath, InjectError> {
    let mut workers = Vec::new();
    for (path, kind) in actors {
        match kind {
            ChildKind::Supervisor if path.matches(target) => {
                return Err(InjectError::Supervisor {
                    path: path.to_string(),
                })
            }
            ChildKind::Supervisor => {}
            ChildKind::Worker if path.matches(target) => return Ok(path.clone()),
            ChildKind::Worker => workers.push(path.to_string()),
        }
    }
    Err(InjectError::NoSuchActor {
        target: target.to_string(),
        workers,
    })
}

/// Finds the worker that `target` (a path, or a name alone) names in the tree that
/// `Tree::start(root, _, children)` would start: to refuse a bad target before anything
/// starts. [`TreeView::resolve`](crate::TreeView::resolve) does the same on a live tree.
///
/// # Errors
///
/// [`InjectError::Supervisor`] when it names a supervisor, [`InjectError::NoSuchActor`]
/// (listing the workers) when it names nothing.
///
/// # Examples
///
/// ```
/// use nevil_actors::{fault, ChildSpec, SupervisorFlags};
/// # use ractor::{Actor, ActorProcessingErr, ActorRef};
/// # #[derive(Clone)] struct Reader;
/// # impl Actor for Reader {
/// #     type Msg = (); type State = (); type Arguments = ();
/// #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
/// # }
/// let io = ChildSpec::supervisor(
///     "io",
///     SupervisorFlags::default(),
///     vec![ChildSpec::worker("reader", Reader, ())],
/// );
/// let tree = [io];
/// assert_eq!(fault::resolve("root", &tree, "reader").unwrap().as_str(), "root/io/reader");
/// let e = fault::resolve("root", &tree, "io").unwrap_err();
/// assert_eq!(e.to_string(), "root/io is a supervisor; faults are injected into workers");
/// let e = fault::resolve("root", &tree, "lidar").unwrap_err();
/// assert_eq!(e.to_string(), "no such actor (workers: root/io/reader)");
/// ```
pub fn resolve(root: &str, children: &[ChildSpec], target: &str) -> Result<ActorPath, InjectError> {
    fn walk(parent: &ActorPath, children: &[ChildSpec], out: &mut Vec<(ActorPath, ChildKind)>) {
        for child in children {
            let path = parent.child(child.name());
            out.push((path.clone(), child.kind()));
            walk(&path, child.children(), out);
        }
    }
    let root = ActorPath::root(root);
    let mut actors = vec![(root.clone(), ChildKind::Supervisor)];
    walk(&root, children, &mut actors);
    find(actors.iter().map(|(p, k)| (p, *k)), target)
}

/// [`resolve`] on a snapshot of a live tree.
pub(crate) fn resolve_live(
    root: &crate::introspect::NodeSnapshot,
    target: &str,
) -> Result<ActorPath, InjectError> {
    find(root.walk().into_iter().map(|n| (&n.path, n.kind)), target)
}

/// How much a leak holds more at each step.
pub const LEAK_STEP: usize = 1 << 20;
/// How often a leak steps.
pub const LEAK_PERIOD: Duration = Duration::from_millis(100);
/// How many messages a flood sends per [`FLOOD_PERIOD`].
pub const FLOOD_BURST: usize = 500;
/// How often a flood sends a burst.
pub const FLOOD_PERIOD: Duration = Duration::from_millis(10);
/// How long each message takes (busy) while a flood lasts, so a flood outpaces the
/// handler.
pub const FLOOD_ITEM_COST: Duration = Duration::from_micros(50);

/// Sends one flood message to an incarnation; `false` once it is gone.
pub(crate) type FloodSender = Box<dyn FnMut() -> bool + Send>;

/// Makes the [`FloodSender`] of one incarnation (`None` if its messages are another
/// type): what [`ChildSpec::flood`](crate::ChildSpec::flood) keeps, type-erased.
pub(crate) type FloodFn =
    Arc<dyn Fn(&ActorCell, &Arc<Counters>) -> Option<FloodSender> + Send + Sync>;

/// The [`FloodFn`] for messages made by `make`.
pub(crate) fn flood_fn<M: Message>(make: impl Fn() -> M + Send + Sync + 'static) -> FloodFn {
    let make = Arc::new(make);
    Arc::new(move |cell: &ActorCell, counters: &Arc<Counters>| {
        if cell.is_message_type_of::<M>() != Some(true) {
            return None;
        }
        let mailbox = Mailbox::new(ActorRef::<M>::from(cell.clone()), counters.clone());
        let make = make.clone();
        Some(Box::new(move || mailbox.cast(make()).is_ok()) as FloodSender)
    })
}

/// A worker's side of fault injection, in its counters: the one-shot fault waiting to be
/// carried out, and what to flood it with.
#[derive(Default)]
pub(crate) struct Faults {
    /// 0: none; else the waiting fault's index + 1.
    pending: AtomicU8,
    flood: Option<FloodFn>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .field("flood", &self.flood.is_some())
            .finish()
    }
}

impl Faults {
    /// Faults for a worker flooded with `flood`'s messages.
    pub(crate) fn new(flood: Option<FloodFn>) -> Self {
        Self {
            pending: AtomicU8::new(0),
            flood,
        }
    }

    /// Leaves `fault` (one-shot) for the actor and flags it on its gate.
    fn arm(&self, fault: Fault, gate: &gate::Gate) {
        // Index + 1 < 8: fits.
        self.pending
            .store(fault.index() as u8 + 1, Ordering::Release);
        gate.raise(gate::FAULT);
    }

    /// Takes the waiting fault, if any (the actor's side).
    pub(crate) fn take(&self, gate: &gate::Gate) -> Option<Fault> {
        // A load first, so a throttled actor's slow path writes nothing when no fault
        // waits (one being armed right now is picked up by its helper's poke).
        if !gate.is_raised(gate::FAULT) {
            return None;
        }
        // The flag before the fault: a fault armed meanwhile raises it again.
        gate.lower(gate::FAULT);
        match self.pending.swap(0, Ordering::AcqRel) {
            0 => None,
            n => Fault::ALL.get(usize::from(n) - 1).map(|(_, f)| *f),
        }
    }

    /// Forgets any fault of a previous incarnation.
    pub(crate) fn clear(&self, gate: &gate::Gate) {
        self.pending.store(0, Ordering::Release);
        gate.lower(gate::FAULT | gate::FLOOD);
    }
}

/// Injects `fault` into the incarnation `cell` of the worker at `path` counting into
/// `counters`.
pub(crate) async fn inject(
    path: &str,
    cell: ActorCell,
    counters: &Arc<Counters>,
    fault: Fault,
) -> Result<(), InjectError> {
    let not_running = || InjectError::NotRunning {
        path: path.to_string(),
    };
    let spawned = match fault {
        Fault::Leak => Actor::spawn_linked(None, Leaker, (), cell)
            .await
            .map(|_| ()),
        Fault::Flood => {
            let make = counters.faults.flood.as_ref().ok_or(InjectError::NoFlood {
                path: path.to_string(),
            })?;
            let send = make(&cell, counters).ok_or(InjectError::FloodType {
                path: path.to_string(),
            })?;
            counters.gate.raise(gate::FLOOD);
            Actor::spawn_linked(None, Flooder, send, cell)
                .await
                .map(|_| ())
        }
        one_shot => {
            debug_assert!(one_shot.is_one_shot());
            counters.faults.arm(one_shot, &counters.gate);
            let poked = Actor::spawn_linked(None, Poke, (), cell).await.map(|_| ());
            if poked.is_err() {
                counters.faults.take(&counters.gate);
            }
            poked
        }
    };
    spawned.map_err(|_| not_running())
}

/// What a supervision event about one of a worker's own fault helpers asks of it.
pub(crate) enum HelperEvent {
    /// Carry out the waiting one-shot fault, if any.
    Poke,
    /// Hold [`LEAK_STEP`] more.
    LeakStep,
    /// Nothing (a helper started or ended).
    Ignore,
}

impl HelperEvent {
    /// What `event` asks, if it is about one of the fault helpers (`None`: it is not, and
    /// belongs to the actor).
    pub(crate) fn of(event: &ractor::SupervisionEvent) -> Option<Self> {
        use ractor::SupervisionEvent::ActorStarted;
        let cell = event.actor_cell()?;
        let started = matches!(event, ActorStarted(_));
        if cell.is_message_type_of::<PokeMsg>() == Some(true) {
            Some(if started { Self::Poke } else { Self::Ignore })
        } else if cell.is_message_type_of::<LeakTick>() == Some(true) {
            Some(if started {
                Self::LeakStep
            } else {
                Self::Ignore
            })
        } else if cell.is_message_type_of::<FloodTick>() == Some(true) {
            Some(Self::Ignore)
        } else {
            None
        }
    }
}

/// Carries out a one-shot fault inside the worker (`myself`).
///
/// # Errors
///
/// Returns `Err` for [`Fault::Error`], as the fault asks.
pub(crate) async fn commit(fault: Fault, myself: &ActorCell) -> Result<(), ActorProcessingErr> {
    tracing::warn!(%fault, "fault drill");
    match fault {
        Fault::Panic => panic!("fault drill: panic"),
        Fault::Error => return Err("fault drill: error".into()),
        Fault::Exit => myself.stop(Some("fault drill: exit".into())),
        Fault::Hang => std::future::pending::<()>().await,
        Fault::Spin => loop {
            burn(Duration::from_millis(1));
            tokio::task::yield_now().await;
        },
        Fault::Busy => {
            // One yield first, so that the spin's poll wakes nothing: a task this poll
            // woke would sit in the worker's LIFO slot, which tokio's other workers
            // cannot steal, for as long as the spin holds the worker (a supervisor
            // stranded there never answered again). A handler that really never yields
            // can strand one so; that is why `busy` runs only in a process of its own.
            tokio::task::yield_now().await;
            busy()
        }
        // Driven by their helpers, never pending.
        Fault::Leak | Fault::Flood => {}
    }
    Ok(())
}

/// Spins forever, never returning to the executor (the `busy` fault).
fn busy() -> ! {
    let mut turns = 0u64;
    loop {
        std::hint::spin_loop();
        // Observed, so the loop is work the compiler must keep.
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
}

/// Holds one more [`LEAK_STEP`] in `ballast`, written so the pages are really held.
pub(crate) fn leak_step(ballast: &mut Vec<Box<[u8]>>) {
    ballast.push(vec![0xa5; LEAK_STEP].into_boxed_slice());
}

/// Busy for `d`.
pub(crate) fn burn(d: Duration) {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// The message type of the one-shot helper (its type identifies it in events).
#[derive(Debug)]
pub(crate) struct PokeMsg;

/// Wakes its parent with its `ActorStarted`, then stops.
struct Poke;

impl Actor for Poke {
    type Msg = PokeMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<PokeMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn post_start(
        &self,
        myself: ActorRef<PokeMsg>,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        // Processed after ractor has sent our `ActorStarted` to the worker.
        myself.stop(None);
        Ok(())
    }
}

/// The message type of the leak helper: time for another step.
#[derive(Debug)]
pub(crate) struct LeakTick;

/// Makes its parent leak: its `ActorStarted` now, and again every [`LEAK_PERIOD`].
struct Leaker;

impl Actor for Leaker {
    type Msg = LeakTick;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<LeakTick>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn post_start(
        &self,
        myself: ActorRef<LeakTick>,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        myself.send_after(LEAK_PERIOD, || LeakTick);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<LeakTick>,
        _: LeakTick,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        myself.notify_supervisor(ractor::SupervisionEvent::ActorStarted(myself.get_cell()));
        myself.send_after(LEAK_PERIOD, || LeakTick);
        Ok(())
    }
}

/// The message type of the flood helper: time for another burst.
#[derive(Debug)]
pub(crate) struct FloodTick;

/// Floods its parent: [`FLOOD_BURST`] messages every [`FLOOD_PERIOD`], until a send fails.
struct Flooder;

impl Actor for Flooder {
    type Msg = FloodTick;
    type State = FloodSender;
    type Arguments = FloodSender;

    async fn pre_start(
        &self,
        myself: ActorRef<FloodTick>,
        send: FloodSender,
    ) -> Result<FloodSender, ActorProcessingErr> {
        myself.cast(FloodTick)?;
        Ok(send)
    }

    async fn handle(
        &self,
        myself: ActorRef<FloodTick>,
        _: FloodTick,
        send: &mut FloodSender,
    ) -> Result<(), ActorProcessingErr> {
        if (0..FLOOD_BURST).all(|_| send()) {
            myself.send_after(FLOOD_PERIOD, || FloodTick);
        } else {
            myself.stop(None);
        }
        Ok(())
    }
}

#[cfg(test)]
mod busy_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (name, fault) in Fault::ALL {
            assert_eq!(fault.name(), name);
            assert_eq!(name.parse::<Fault>(), Ok(fault));
            assert_eq!(fault.to_string(), name);
        }
        let e = "melt".parse::<Fault>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown fault \"melt\" (expected one of: panic, error, exit, hang, spin, leak, flood, busy)"
        );
    }

    #[test]
    fn a_pending_fault_closes_the_gate_until_taken() {
        let g = gate::Gate::default();
        let f = Faults::default();
        assert_eq!(f.take(&g), None);
        f.arm(Fault::Hang, &g);
        assert!(!g.is_open());
        assert_eq!(f.take(&g), Some(Fault::Hang));
        assert!(g.is_open());
        assert_eq!(f.take(&g), None);
    }
}
