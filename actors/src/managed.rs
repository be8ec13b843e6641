//! `Managed<A>`: how a supervisor runs a worker.
//!
//! Every worker started from a [`ChildSpec`](crate::ChildSpec) runs inside this wrapper. It
//! keeps the actor's message type (`ActorRef<A::Msg>` stays what callers hold) and adds what
//! supervision needs from inside the actor:
//!
//! - **panics are tagged**: a panic in any handler becomes a [`Panicked`] error, so the
//!   supervisor records `panic: …` rather than `error: …` (ractor turns both into a string);
//! - **`post_stop` runs after a crash**: when `handle` (or `post_start`,
//!   `handle_supervisor_evt`) returns `Err` or panics, the wrapper runs the actor's
//!   `post_stop` with its last state before reporting the failure — OTP's `terminate/2`.
//!   ractor alone skips `post_stop` on failure; a device driver must still get to put
//!   its device in a safe state. Only a kill skips `post_stop`.
//!
//! Because the failure is reported after that `post_stop` finished, a restarted child's
//! `pre_start` never overlaps its previous incarnation's `post_stop`.
//!
//! It also accounts for each child ([`Counters`], cumulative across incarnations, read
//! by the tree snapshot and the quota enforcer) and runs every handler inside an
//! `actor{path=…}` tracing span, so each log line an actor writes carries its path:
//!
//! - **messages handled**, and **sent** through a [`Mailbox`] — the one counting send
//!   handle the runtime gives out; mailbox depth is `sent − handled` (clamped at 0:
//!   a message sent with a plain `ActorRef` is handled but was never counted as sent);
//! - **handler time**, each poll timed with the TSC, calibrated per thread against
//!   its CPU clock (the `cpu` module);
//! - **memory** the actor allocated and still holds, with [`CountingAlloc`] installed;
//! - a **gate** its supervisor uses to suspend or throttle it (the `gate` module; by hand: [`TreeView::suspend`](crate::TreeView::suspend));
//! - **faults** injected through the tree ([`crate::fault`]), carried out in the actor's
//!   own task: picked up on the gate's slow path, or on a helper's supervision event when
//!   the actor is idle.
//!
//! Cost per message with the gate open: one relaxed load, two TSC reads, plain stores
//! to counters only the actor writes; `sent` lives on its own cache line, so senders
//! and the actor do not contend. `handle` returns one hand-written poll adapter (the
//! `handling` module) that ractor awaits directly, a few words larger than the actor's
//! own handler future; rare paths (closed gate, duty pause, clean-up) are boxed.

pub mod alloc;
pub(crate) mod cpu;
pub(crate) mod gate;
mod handling;

pub use alloc::{uncharged, CountingAlloc};

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef, Message, MessagingErr, SupervisionEvent};
use tracing::Instrument;

use crate::exit::Panicked;
use crate::external::{self, External};
use crate::fault::{self, Faults, FloodFn, HelperEvent};
use crate::path::ActorPath;

/// What one supervised child's incarnations counted, and the gate its supervisor uses.
///
/// The actor is the only writer of its own counters (it runs on one thread at a time),
/// so they are bumped with a plain load and store rather than a locked read-modify-write;
/// readers may see values a message old. `sent` is written by senders and sits on a
/// cache line of its own; the actor's counters, the gate and the faults share the others.
#[derive(Debug, Default)]
pub struct Counters {
    sent: Line<AtomicU64>,
    own: Own,
    pub(crate) gate: gate::Gate,
    /// Faults injected into the actor ([`crate::fault`]).
    pub(crate) faults: Faults,
    /// The work outside this process the worker stands for, if it attached one
    /// ([`crate::external`]); read at samples and snapshots, never per message.
    pub(crate) external: external::Slot,
}

/// One 64-byte cache line (x86-64, and the Raspberry Pi's Cortex-A72/A76), so that
/// senders bumping `sent` never write to the line the actor writes its own counters to.
/// (crossbeam's `CachePadded` takes 128 B on x86-64, for the adjacent-line prefetcher:
/// that doubled every actor's counters, to 512 B with the `Arc`, for no measured gain.)
#[derive(Debug, Default)]
#[repr(align(64))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Debug, Default)]
struct Own {
    handled: AtomicU64,
    dead_letters: AtomicU64,
    poll_ticks: AtomicU64,
    allocated: AtomicU64,
    freed: AtomicU64,
}

#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    let n = counter.load(Ordering::Relaxed);
    counter.store(n.wrapping_add(by), Ordering::Relaxed);
}

impl Counters {
    /// Counters of a child whose spec floods it with `flood`'s messages.
    pub(crate) fn with_flood(flood: Option<FloodFn>) -> Self {
        Self {
            faults: Faults::new(flood),
            ..Self::default()
        }
    }

    /// Messages handled so far (cumulative).
    pub fn messages_handled(&self) -> u64 {
        self.own.handled.load(Ordering::Relaxed)
    }

    /// Messages sent through a [`Mailbox`] so far (cumulative).
    pub fn messages_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Messages waiting: sent through a [`Mailbox`], not handled, not dead letters.
    pub fn mailbox_depth(&self) -> u64 {
        let done = self.messages_handled() + self.dead_letters();
        self.messages_sent().saturating_sub(done)
    }

    /// Messages that were waiting when an incarnation ended: they died with its mailbox
    /// and were never handled (cumulative).
    pub fn dead_letters(&self) -> u64 {
        self.own.dead_letters.load(Ordering::Relaxed)
    }

    /// Seconds spent in handler polls (cumulative; TSC-timed, calibrated per thread).
    pub fn cpu_seconds(&self) -> f64 {
        cpu::seconds(self.own.poll_ticks.load(Ordering::Relaxed))
    }

    /// Bytes the current incarnation's handlers allocated and did not free (see
    /// [`alloc`]); a restart starts from 0, its predecessor's state being dropped.
    pub fn memory_bytes(&self) -> u64 {
        let allocated = self.own.allocated.load(Ordering::Relaxed);
        allocated.saturating_sub(self.own.freed.load(Ordering::Relaxed))
    }

    /// Holds the next message until [`Counters::resume`]; none is lost or reordered.
    pub(crate) fn suspend(&self) {
        self.gate.suspend();
    }

    /// Opens the gate again (lifts a suspension or a throttle).
    pub(crate) fn resume(&self) {
        self.gate.resume();
    }

    /// Limits the actor to `rate` messages/s and/or `duty` of a core.
    pub(crate) fn throttle(&self, rate: Option<f64>, duty: Option<f64>) {
        self.gate.throttle(rate, duty);
    }

    /// The [`External`] the current incarnation attached ([`crate::external::attach`]),
    /// if any: its supervisor samples and governs that instead of these counters.
    pub fn external(&self) -> Option<Arc<dyn External>> {
        self.external.get()
    }

    /// `open`, `suspended` or `throttled`.
    pub fn gate_state(&self) -> &'static str {
        self.gate.state_name()
    }

    #[inline]
    fn count_handled(&self) {
        bump(&self.own.handled, 1);
    }

    /// A new incarnation starts holding nothing — its predecessor's state was dropped by
    /// ractor outside any handler, so those frees were never charged back — and with an
    /// empty mailbox: what was left in the old one is counted as dead letters.
    fn start_incarnation(&self) {
        let allocated = self.own.allocated.load(Ordering::Relaxed);
        self.own.freed.store(allocated, Ordering::Relaxed);
        // Whatever the last incarnation left unhandled died with its mailbox.
        bump(&self.own.dead_letters, self.mailbox_depth());
        // A fault targets one incarnation.
        self.faults.clear(&self.gate);
        // So does an external: the new incarnation attaches its own (a new process).
        self.external.set(None);
    }

    /// Adds `ticks` (raw TSC) read at `now` to the handler time.
    fn charge_ticks(&self, ticks: u64, now: u64) {
        bump(&self.own.poll_ticks, cpu::calibrated(ticks, now));
    }

    /// Sets the cumulative sent and handled counts, for tests of what reads them.
    #[cfg(test)]
    pub(crate) fn set_counts(&self, sent: u64, handled: u64) {
        self.sent.store(sent, Ordering::Relaxed);
        self.own.handled.store(handled, Ordering::Relaxed);
    }

    pub(crate) fn charge_memory(&self, allocated: usize, freed: usize) {
        if allocated > 0 {
            bump(&self.own.allocated, allocated as u64);
        }
        if freed > 0 {
            // Never more freed than allocated: frees of data received from others must
            // not add up to a credit that hides a leak.
            let all = self.own.allocated.load(Ordering::Relaxed);
            let f = self
                .own
                .freed
                .load(Ordering::Relaxed)
                .saturating_add(freed as u64);
            self.own.freed.store(f.min(all), Ordering::Relaxed);
        }
    }
}

/// The counting way to send to a managed actor: each cast counts as sent, so the
/// supervisor sees the actor's mailbox depth. Get one with [`Mailbox::own`] inside the
/// actor (to hand to publishers) or from the tree.
///
/// ```
/// use nevil_actors::{ChildSpec, SupervisorFlags, Tree};
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
///
/// #[derive(Clone)]
/// struct Sink;
/// impl Actor for Sink {
///     type Msg = String;
///     type State = ();
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<String>, _: ()) -> Result<(), ActorProcessingErr> {
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let tree = Tree::start("root", SupervisorFlags::default(),
///                        vec![ChildSpec::worker("sink", Sink, ())]).await.unwrap();
/// // `None` for a path with no worker, or a worker whose messages are not `String`.
/// assert!(tree.view().mailbox::<u64>("root/sink").is_none());
/// let sink = tree.view().mailbox::<String>("root/sink").unwrap();
/// sink.cast("one".into()).unwrap();
/// sink.cast("two".into()).unwrap();
/// let counters = tree.view().counters("root/sink").unwrap();
/// assert_eq!(counters.messages_sent(), 2);
/// tree.shutdown().await;
/// # }
/// ```
pub struct Mailbox<M> {
    actor: ActorRef<M>,
    counters: Arc<Counters>,
}

impl<M> Clone for Mailbox<M> {
    fn clone(&self) -> Self {
        Self {
            actor: self.actor.clone(),
            counters: self.counters.clone(),
        }
    }
}

impl<M: Message> Mailbox<M> {
    /// A mailbox for `actor` counting into `counters`.
    pub fn new(actor: ActorRef<M>, counters: Arc<Counters>) -> Self {
        Self { actor, counters }
    }

    /// The running actor's own mailbox: call it from the actor's `pre_start` or a
    /// handler, with its `myself`. Outside a managed actor the counts go nowhere
    /// anyone reads (fresh counters).
    pub fn own(myself: &ActorRef<M>) -> Self {
        let counters = alloc::current().unwrap_or_default();
        Self::new(myself.clone(), counters)
    }

    /// Sends `msg`, counting it; a failed send returns the message and is not counted.
    ///
    /// # Errors
    ///
    /// The actor is gone: ractor's error, holding the message.
    pub fn cast(&self, msg: M) -> Result<(), MessagingErr<M>> {
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        // The message's box is freed by the receiver: charge it to no one.
        alloc::uncharged(|| self.actor.cast(msg)).inspect_err(|_| {
            self.counters.sent.fetch_sub(1, Ordering::Relaxed);
        })
    }

    /// The actor.
    pub fn actor(&self) -> &ActorRef<M> {
        &self.actor
    }
}

pin_project_lite::pin_project! {
    /// Polls a handler future with the actor's accounting around each poll: allocations
    /// charged to it, poll time added to its handler time; a panic in a poll is caught
    /// here too (one layer instead of a separate `CatchUnwind`).
    struct Accounted<'a, F> {
        #[pin]
        inner: F,
        counters: &'a Arc<Counters>,
        busy: u64,
        held: Option<gate::Held<'a>>,
    }
}

impl<F: Future> Future for Accounted<'_, F> {
    /// The output (or the panic's payload) and the raw TSC ticks its polls took.
    type Output = (std::thread::Result<F::Output>, u64);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(held) = this.held.as_mut() {
            if held.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            *this.held = None;
        }
        let (result, ticks) = poll_accounted(this.counters, this.inner, cx);
        *this.busy += ticks;
        match result {
            Ok(Poll::Ready(out)) => Poll::Ready((Ok(out), *this.busy)),
            Err(payload) => Poll::Ready((Err(payload), *this.busy)),
            Ok(Poll::Pending) => {
                if !this.counters.gate.is_open() {
                    let busy = Duration::from_secs_f64(cpu::seconds(ticks));
                    *this.held = gate::Gate::between_polls(&this.counters.gate, busy);
                }
                Poll::Pending
            }
        }
    }
}

/// Polls `fut` once with the actor's accounting around the poll: its allocations charged
/// to `counters`, its time added to their handler time, a panic caught. Returns the poll
/// (or the panic's payload) and the raw TSC ticks it took.
#[inline(always)]
fn poll_accounted<F: Future>(
    counters: &Arc<Counters>,
    fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> (std::thread::Result<Poll<F::Output>>, u64) {
    let _charging = alloc::Enter::new(counters);
    let t0 = cpu::now();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
    let t1 = cpu::now();
    let ticks = t1.saturating_sub(t0);
    bump(&counters.own.poll_ticks, cpu::calibrated(ticks, t1));
    (result, ticks)
}

fn accounted<F: Future>(counters: &Arc<Counters>, inner: F) -> Accounted<'_, F> {
    Accounted {
        inner,
        counters,
        busy: 0,
        held: None,
    }
}

/// An actor's gate, held through its counters: for a wait that must not borrow.
struct OwnedGate(Arc<Counters>);

impl std::ops::Deref for OwnedGate {
    type Target = gate::Gate;

    fn deref(&self) -> &gate::Gate {
        &self.0.gate
    }
}

/// A worker actor as run by a supervisor. See the [module docs](self).
///
/// Every [`ChildSpec::worker`](crate::ChildSpec::worker) runs in one; the supervisor
/// wraps it. Here a handler panics: the wrapper runs the actor's `post_stop` first (as
/// OTP's `terminate/2`), and the supervisor records the exit as a panic, not an error.
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
/// use nevil_actors::{ChildSpec, ExitReason, SupervisorFlags, Tree};
/// use ractor::{Actor, ActorProcessingErr, ActorRef};
///
/// #[derive(Clone)]
/// struct Valve(Arc<AtomicBool>);
/// impl Actor for Valve {
///     type Msg = ();
///     type State = ();
///     type Arguments = ();
///     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
///         Ok(())
///     }
///     async fn handle(&self, _: ActorRef<()>, _: (), _: &mut ()) -> Result<(), ActorProcessingErr> {
///         panic!("stuck open")
///     }
///     async fn post_stop(&self, _: ActorRef<()>, _: &mut ()) -> Result<(), ActorProcessingErr> {
///         self.0.store(true, Ordering::SeqCst); // close it, whatever happened
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let closed = Arc::new(AtomicBool::new(false));
/// let spec = ChildSpec::worker("valve", Valve(closed.clone()), ());
/// let tree = Tree::start("root", SupervisorFlags::default(), vec![spec]).await.unwrap();
/// let mut events = tree.subscribe();
/// tree.view().mailbox::<()>("root/valve").unwrap().cast(()).unwrap();
/// events.recv().await.unwrap(); // the exit
/// assert!(closed.load(Ordering::SeqCst), "post_stop ran after the panic");
/// let snapshot = tree.snapshot();
/// let valve = snapshot.root.find("root/valve").unwrap();
/// assert!(matches!(valve.last_exit, Some(ExitReason::Panic(_))));
/// tree.shutdown().await;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Managed<A> {
    inner: A,
    counters: Arc<Counters>,
    span: tracing::Span,
}

/// The state of a [`Managed`] actor: the inner actor's state, plus its own reference so
/// that cleanup after a crash can call `post_stop` without cloning a reference for every
/// message.
pub struct ManagedState<A: Actor> {
    inner: A::State,
    myself: ActorRef<A::Msg>,
    bucket: gate::Bucket,
    /// Raw TSC ticks the message being handled took in its polls so far (kept here, not
    /// in the handling future, so that future stays small; a handling dropped midway,
    /// which only a kill does, leaves it to a state that is dropped too).
    busy: u64,
    /// A wait the gate imposed between two polls of the message being handled (idem).
    held: Option<gate::Held<'static>>,
    /// What a `leak` fault holds ([`crate::fault`]); dropped with the incarnation.
    ballast: Vec<Box<[u8]>>,
}

impl<A: Actor> Managed<A> {
    /// Wraps `inner`, with counters of its own and no span.
    pub fn new(inner: A) -> Self {
        Self {
            inner,
            counters: Arc::default(),
            span: tracing::Span::none(),
        }
    }

    /// Counts into `counters` (kept by the supervisor) and logs within `actor{path}`.
    pub(crate) fn supervised(mut self, path: &ActorPath, counters: Arc<Counters>) -> Self {
        self.counters = counters;
        // A root span: a line shows this actor's path, not the chain of its supervisors.
        self.span = tracing::info_span!(parent: None, "actor", path = %path);
        self
    }

    /// Carries out the one-shot `fault` in the actor's task, as its own handler would:
    /// with its accounting and span, a panic tagged, `post_stop` run after a failure.
    async fn commit(
        &self,
        fault: fault::Fault,
        state: &mut ManagedState<A>,
    ) -> Result<(), ActorProcessingErr> {
        let myself = state.myself.get_cell();
        let (result, _) = accounted(&self.counters, fault::commit(fault, &myself))
            .instrument(self.span.clone())
            .await;
        match caught(result) {
            Ok(()) => Ok(()),
            Err(err) => self.clean_up_after(err, state).await,
        }
    }

    /// Does what a supervision event about one of its fault helpers asks.
    async fn on_helper(
        &self,
        event: HelperEvent,
        state: &mut ManagedState<A>,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(event, HelperEvent::Ignore) {
            // A fault waits at a closed gate as a message would (a suspended worker
            // neither fails nor leaks until resumed).
            self.counters.gate.pass(&mut state.bucket).await;
        }
        match event {
            HelperEvent::Poke => match self.counters.faults.take(&self.counters.gate) {
                Some(fault) => self.commit(fault, state).await,
                // A message's slow path took it first.
                None => Ok(()),
            },
            HelperEvent::LeakStep => {
                // Charged to the actor, as if its handler had allocated it.
                let _charging = alloc::Enter::new(&self.counters);
                fault::leak_step(&mut state.ballast);
                Ok(())
            }
            HelperEvent::Ignore => Ok(()),
        }
    }

    /// The busy time a message costs while a flood lasts, charged as handler time.
    fn flood_cost(&self) {
        let t0 = cpu::now();
        fault::burn(fault::FLOOD_ITEM_COST);
        let t1 = cpu::now();
        self.counters.charge_ticks(t1.saturating_sub(t0), t1);
    }

    /// Runs the inner `post_stop` after a failure and returns the failure; a failure of
    /// `post_stop` itself is logged, so the original cause stays the exit reason.
    async fn clean_up_after(
        &self,
        err: ActorProcessingErr,
        state: &mut ManagedState<A>,
    ) -> Result<(), ActorProcessingErr> {
        let myself = state.myself.clone();
        let stop = AssertUnwindSafe(self.inner.post_stop(myself.clone(), &mut state.inner));
        let stop = stop.catch_unwind().instrument(self.span.clone());
        let failure = match caught(stop.await) {
            Ok(()) => return Err(err),
            Err(e) => e,
        };
        self.span.in_scope(|| {
            tracing::warn!(actor = %myself.get_id(), %failure, "post_stop failed after a crash");
        });
        Err(err)
    }
}

/// A handler's result as returned by `catch_unwind`.
type Caught<T> = Result<Result<T, ActorProcessingErr>, Box<dyn std::any::Any + Send>>;

/// Flattens a caught result: a panic becomes a [`Panicked`] error.
fn caught<T>(result: Caught<T>) -> Result<T, ActorProcessingErr> {
    result.unwrap_or_else(|payload| Err(Box::new(Panicked::from_payload(payload))))
}

impl<A: Actor> Actor for Managed<A> {
    type Msg = A::Msg;
    type State = ManagedState<A>;
    type Arguments = A::Arguments;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        self.counters.start_incarnation();
        let start = self.inner.pre_start(myself.clone(), args);
        let (result, _) = accounted(&self.counters, start)
            .instrument(self.span.clone())
            .await;
        let inner = caught(result)?;
        Ok(ManagedState {
            inner,
            myself,
            bucket: gate::Bucket::default(),
            busy: 0,
            held: None,
            ballast: Vec::new(),
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let starting = self.inner.post_start(myself, &mut state.inner);
        let (result, _) = accounted(&self.counters, starting)
            .instrument(self.span.clone())
            .await;
        match caught(result) {
            Ok(()) => Ok(()),
            // Boxed: the cold path must not bloat every message's future.
            Err(err) => Box::pin(self.clean_up_after(err, state)).await,
        }
    }

    #[inline]
    fn handle<'m, 's>(
        &'m self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &'s mut Self::State,
    ) -> impl Future<Output = Result<(), ActorProcessingErr>> + Send {
        let inner = &self.inner;
        handling::Handling::new(self, state, move |state: &'s mut A::State| {
            inner.handle(myself, message, state)
        })
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Events about its own fault helpers are the wrapper's, never the actor's.
        if let Some(helper) = HelperEvent::of(&event) {
            return Box::pin(self.on_helper(helper, state)).await;
        }
        let result = AssertUnwindSafe(self.inner.handle_supervisor_evt(
            myself,
            event,
            &mut state.inner,
        ))
        .catch_unwind()
        .instrument(self.span.clone())
        .await;
        match caught(result) {
            Ok(()) => Ok(()),
            // Boxed: the cold path must not bloat every message's future.
            Err(err) => Box::pin(self.clean_up_after(err, state)).await,
        }
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let stop = AssertUnwindSafe(self.inner.post_stop(myself, &mut state.inner));
        caught(stop.catch_unwind().instrument(self.span.clone()).await)
    }
}
