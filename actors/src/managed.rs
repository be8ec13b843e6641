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
//!   ractor alone skips `post_stop` on failure; a motor driver must still get to stop its
//!   motors. Only a kill skips `post_stop`.
//!
//! Because the failure is reported after that `post_stop` finished, a restarted child's
//! `pre_start` never overlaps its previous incarnation's `post_stop`.
//!
//! It also counts the messages each child handled ([`Counters`], cumulative across
//! incarnations, read by the tree snapshot) and runs every handler inside an
//! `actor{path=…}` tracing span, so each log line an actor writes carries its path.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tracing::Instrument;

use crate::exit::Panicked;
use crate::path::ActorPath;

/// Counters of one supervised child, cumulative across its incarnations.
///
/// Each counter has a single writer (the incarnation running), so it is bumped with a
/// plain load and store rather than a locked read-modify-write; readers may see a value
/// a message or two old.
#[derive(Debug, Default)]
pub struct Counters {
    handled: AtomicU64,
}

impl Counters {
    /// Messages handled so far (cumulative).
    pub fn messages_handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    fn count_handled(&self) {
        let n = self.handled.load(Ordering::Relaxed);
        self.handled.store(n + 1, Ordering::Relaxed);
    }
}

/// A worker actor as run by a supervisor. See the [module docs](self).
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
        self.span = tracing::info_span!("actor", path = %path);
        self
    }

    /// Turns a caught handler result into the actor's result; on `Err` or panic it first
    /// runs `post_stop`, so cleanup happens before the supervisor hears of the failure.
    async fn finish(
        &self,
        result: Caught<()>,
        state: &mut ManagedState<A>,
    ) -> Result<(), ActorProcessingErr> {
        match caught(result) {
            Ok(()) => Ok(()),
            // Boxed: the cold path must not bloat every message's future.
            Err(err) => Box::pin(self.clean_up_after(err, state)).await,
        }
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
        let failure = match caught(stop.catch_unwind().await) {
            Ok(()) => return Err(err),
            Err(e) => e,
        };
        tracing::warn!(actor = %myself.get_id(), %failure, "post_stop failed after a crash");
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
        let start = AssertUnwindSafe(self.inner.pre_start(myself.clone(), args));
        let inner = caught(start.catch_unwind().instrument(self.span.clone()).await)?;
        Ok(ManagedState { inner, myself })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let result = AssertUnwindSafe(self.inner.post_start(myself, &mut state.inner))
            .catch_unwind()
            .instrument(self.span.clone())
            .await;
        self.finish(result, state).await
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        self.counters.count_handled();
        let handling =
            AssertUnwindSafe(self.inner.handle(myself, message, &mut state.inner)).catch_unwind();
        // Entering a span costs on every message; pay it only when someone listens.
        let result = if self.span.is_disabled() {
            handling.await
        } else {
            handling.instrument(self.span.clone()).await
        };
        self.finish(result, state).await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let result = AssertUnwindSafe(self.inner.handle_supervisor_evt(
            myself,
            event,
            &mut state.inner,
        ))
        .catch_unwind()
        .await;
        self.finish(result, state).await
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
