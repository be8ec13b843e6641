//! The future [`Managed::handle`](super::Managed) returns: one poll adapter between ractor
//! and the actor's handler.
//!
//! Each layer on a message's path costs on every message: ractor moves the handler's
//! future through futures of its own (every byte of it is copied several times) and each
//! nested `async fn` adds a state machine to resume. So the path a message takes while
//! the gate is open is one hand-written future that polls the actor's handler directly,
//! with the accounting around each poll ([`poll_accounted`](super::poll_accounted)), and is
//! only a few words larger than the handler's own future. What is rare — a closed gate
//! before the handler, a duty pause after it, the clean-up after a failure — is a boxed
//! future: one pointer in the hot path, an allocation only when taken.
//!
//! The slow path is also where an injected fault is picked up (see [`crate::fault`]):
//! a pending fault or a flood makes the gate read as not open.
//!
//! A failed handler's clean-up needs the actor's state again, which the handler's future
//! borrowed; so the state is held as a pointer (see [`StatePtr`]) and borrowed from it
//! once more after the handler's future is dropped.
#![allow(unsafe_code)]

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::{addr_of_mut, NonNull};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr};

use super::{cpu, gate, poll_accounted, Managed, ManagedState, OwnedGate};
use crate::exit::Panicked;

/// What is left of a message's handling after its handler: the duty pause, the clean-up.
type Rest<'m> = Pin<Box<dyn Future<Output = Result<(), ActorProcessingErr>> + Send + 'm>>;

/// The `&'s mut ManagedState` that `handle` was given, as a pointer: the handler's future
/// borrows the inner state from it, and the clean-up after a failure borrows the whole
/// state again once that future is gone. Every borrow is derived from this pointer (never
/// from the original reference), and each field by itself (`addr_of_mut!`) while the
/// handler's future lives, so no borrow invalidates another.
///
/// Each accessor returns a borrow of a lifetime the caller picks. The contract for all of
/// them: a borrow is used only while no other live borrow from this pointer covers the same
/// field (the whole state covers all of them), and not after the `Handling` holding this
/// pointer is dropped, which happens within `'s`.
struct StatePtr<'s, A: Actor> {
    ptr: NonNull<ManagedState<A>>,
    _borrow: PhantomData<&'s mut ManagedState<A>>,
}

// SAFETY: a `StatePtr` is a `&'s mut ManagedState<A>` lending its fields one borrow at a
// time; like the reference, it may move to another thread when the state may.
unsafe impl<A: Actor> Send for StatePtr<'_, A> where ManagedState<A>: Send {}

impl<'s, A: Actor> StatePtr<'s, A> {
    fn new(state: &'s mut ManagedState<A>) -> Self {
        Self {
            ptr: NonNull::from(state),
            _borrow: PhantomData,
        }
    }

    /// The whole state (see the type's contract).
    ///
    /// # Safety
    ///
    /// No other borrow from this pointer is live: the handler's future is dropped.
    unsafe fn whole<'x>(&self) -> &'x mut ManagedState<A> {
        // SAFETY: the pointer came from a `&'s mut`, exclusively ours for `'s`.
        unsafe { &mut *self.ptr.as_ptr() }
    }

    /// The inner actor's state, for the handler's future (see the type's contract).
    ///
    /// # Safety
    ///
    /// No other borrow of `inner` or of the whole state is live.
    unsafe fn inner<'x>(&self) -> &'x mut A::State {
        // SAFETY: as for `whole`, for one field.
        unsafe { &mut *addr_of_mut!((*self.ptr.as_ptr()).inner) }
    }

    /// The token bucket, for the wait at a closed gate (see the type's contract).
    ///
    /// # Safety
    ///
    /// No other borrow of `bucket` or of the whole state is live.
    unsafe fn bucket<'x>(&self) -> &'x mut gate::Bucket {
        // SAFETY: as for `whole`, for one field.
        unsafe { &mut *addr_of_mut!((*self.ptr.as_ptr()).bucket) }
    }

    /// What the handling keeps while the handler runs: its busy time so far and a wait
    /// the gate imposed between two polls. Safe: only the handling borrows these two
    /// fields, never while the whole state is borrowed, and the borrows end with
    /// `&mut self`.
    #[inline]
    fn running(&mut self) -> (&mut u64, &mut Option<gate::Held<'static>>) {
        let state = self.ptr.as_ptr();
        // SAFETY: as for `whole`, for two fields that no other borrow covers while the
        // handler's future lives (it borrows `inner` only).
        unsafe {
            (
                &mut *addr_of_mut!((*state).busy),
                &mut *addr_of_mut!((*state).held),
            )
        }
    }
}

pin_project_lite::pin_project! {
    /// A message's handling: see the [module docs](self).
    pub(super) struct Handling<'m, 's, A: Actor, F, G> {
        managed: &'m Managed<A>,
        state: StatePtr<'s, A>,
        #[pin]
        phase: Phase<'m, F, G>,
    }
}

/// A message held at a closed gate: the wait, then `start` makes the handler's future.
struct Gated<'m, G> {
    wait: gate::Held<'m>,
    start: Option<G>,
}

pin_project_lite::pin_project! {
    #[project = PhaseProj]
    enum Phase<'m, F, G> {
        /// The gate was closed: waiting until the message may be handled (boxed: a
        /// pointer in the hot future).
        Gated { gated: Box<Gated<'m, G>> },
        /// The handler runs, polled with the accounting around each poll (its busy
        /// time and waits between polls are kept in the state, to keep this small).
        Running { #[pin] handler: F },
        /// After the handler: a duty pause and/or the clean-up after its failure.
        Finishing { rest: Rest<'m> },
        Done,
    }
}

impl<'m, 's, A, F, G> Handling<'m, 's, A, F, G>
where
    A: Actor,
    F: Future<Output = Result<(), ActorProcessingErr>>,
    G: FnOnce(&'s mut A::State) -> F,
{
    /// Handles a message for `managed`: `start` makes the handler's future from the
    /// inner state once the gate lets the message through (at once while it is open).
    #[inline]
    pub(super) fn new(managed: &'m Managed<A>, state: &'s mut ManagedState<A>, start: G) -> Self {
        let state = StatePtr::new(state);
        let gate = &managed.counters.gate;
        let phase = if gate.is_open() {
            managed.counters.count_handled();
            // SAFETY: the first borrow from `state`; the handler's future holding it is
            // dropped before the whole state is borrowed.
            let inner = unsafe { state.inner() };
            Phase::Running {
                handler: start(inner),
            }
        } else {
            // SAFETY: the first borrow from `state`; the wait holding it is dropped
            // before anything else is borrowed.
            let bucket: &'m mut gate::Bucket = unsafe { state.bucket() };
            Phase::Gated {
                gated: Box::new(Gated {
                    wait: Box::pin(gate.pass(bucket)),
                    start: Some(start),
                }),
            }
        };
        Self {
            managed,
            state,
            phase,
        }
    }
}

impl<'m, 's, A, F, G> Future for Handling<'m, 's, A, F, G>
where
    A: Actor,
    F: Future<Output = Result<(), ActorProcessingErr>>,
    G: FnOnce(&'s mut A::State) -> F,
{
    type Output = Result<(), ActorProcessingErr>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let managed: &'m Managed<A> = this.managed;
        let counters = &managed.counters;
        loop {
            match this.phase.as_mut().project() {
                PhaseProj::Running { handler } => {
                    let (busy, held) = this.state.running();
                    if let Some(wait) = held {
                        ready!(wait.as_mut().poll(cx));
                        *held = None;
                    }
                    let (result, ticks) = if managed.span.is_disabled() {
                        poll_accounted(counters, handler, cx)
                    } else {
                        let _in_span = managed.span.enter();
                        poll_accounted(counters, handler, cx)
                    };
                    let outcome = match result {
                        // The fast path: the handler's future is dropped with this one.
                        Ok(Poll::Ready(Ok(()))) if *busy == 0 && counters.gate.is_open() => {
                            return Poll::Ready(Ok(()));
                        }
                        Ok(Poll::Ready(outcome)) => outcome,
                        Err(payload) => {
                            Err(Box::new(Panicked::from_payload(payload)) as ActorProcessingErr)
                        }
                        Ok(Poll::Pending) => {
                            *busy += ticks;
                            if !counters.gate.is_open() {
                                let took = Duration::from_secs_f64(cpu::seconds(ticks));
                                let gate = OwnedGate(managed.counters.clone());
                                *held = gate::Gate::between_polls(gate, took);
                            }
                            return Poll::Pending;
                        }
                    };
                    let took = std::mem::take(busy) + ticks;
                    let pause = if counters.gate.is_open() {
                        None
                    } else {
                        let took = Duration::from_secs_f64(cpu::seconds(took));
                        counters.gate.duty_pause(took)
                    };
                    // Drops the handler's future: its borrow of the state ends here.
                    this.phase.set(Phase::Done);
                    if pause.is_none() && outcome.is_ok() {
                        return Poll::Ready(outcome);
                    }
                    // SAFETY: the handler's future, the only other borrow, was just
                    // dropped; `rest` lives inside this `Handling`.
                    let state: &'m mut ManagedState<A> = unsafe { this.state.whole() };
                    let rest = managed.finish(pause, outcome, state);
                    this.phase.set(Phase::Finishing {
                        rest: Box::pin(rest),
                    });
                }
                PhaseProj::Gated { gated } => {
                    ready!(gated.wait.as_mut().poll(cx));
                    let Some(start) = gated.start.take() else {
                        panic!("a gated message started twice");
                    };
                    // Drops the wait future and its borrow of the bucket.
                    this.phase.set(Phase::Done);
                    counters.count_handled();
                    if let Some(fault) = counters.faults.take(&counters.gate) {
                        // An injected fault, carried out instead of the message (the
                        // message is consumed, as by a handler that failed on it).
                        // SAFETY: the wait future, the only other borrow, was just
                        // dropped; `rest` lives inside this `Handling`.
                        let state: &'m mut ManagedState<A> = unsafe { this.state.whole() };
                        this.phase.set(Phase::Finishing {
                            rest: Box::pin(managed.commit(fault, state)),
                        });
                        continue;
                    }
                    if counters.gate.is_raised(gate::FLOOD) {
                        managed.flood_cost();
                    }
                    // SAFETY: the wait future, the only other borrow, was just dropped;
                    // the handler's future lives inside this `Handling`.
                    let inner = unsafe { this.state.inner() };
                    this.phase.set(Phase::Running {
                        handler: start(inner),
                    });
                }
                PhaseProj::Finishing { rest } => {
                    let outcome = ready!(rest.as_mut().poll(cx));
                    this.phase.set(Phase::Done);
                    return Poll::Ready(outcome);
                }
                PhaseProj::Done => panic!("a message's handling polled after it completed"),
            }
        }
    }
}

impl<A: Actor> Managed<A> {
    /// The rare end of a message's handling: the duty pause its gate imposes, then the
    /// clean-up if the handler failed.
    async fn finish(
        &self,
        pause: Option<Duration>,
        outcome: Result<(), ActorProcessingErr>,
        state: &mut ManagedState<A>,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(err) => self.clean_up_after(err, state).await,
        }
    }
}
