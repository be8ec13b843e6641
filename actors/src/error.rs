//! Errors that cross the crate boundary.

use std::time::Duration;

use crate::exit::ExitReason;
use crate::path::ActorPath;

/// A child spec that a supervisor cannot accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Two children of one supervisor share a name.
    #[error("{supervisor}: duplicate child name {name:?}")]
    DuplicateChild {
        /// The supervisor's path.
        supervisor: ActorPath,
        /// The name used twice.
        name: String,
    },
    /// A child name that cannot be a path segment (empty, or containing `/`).
    #[error("{supervisor}: invalid child name {name:?} (must be non-empty and contain no '/')")]
    InvalidName {
        /// The supervisor's path.
        supervisor: ActorPath,
        /// The offending name.
        name: String,
    },
}

/// A supervisor gave up: more restarts than its intensity allows.
///
/// This is the error a supervisor fails with; its parent records it as the supervisor's
/// exit reason and, for the root, [`Tree::wait`](crate::Tree::wait) returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: restart intensity exceeded ({max_restarts} in {period:?}); last failure {cause}")]
pub struct Escalated {
    /// The supervisor that gave up.
    pub path: ActorPath,
    /// Its intensity.
    pub max_restarts: u32,
    /// Its intensity window.
    pub period: Duration,
    /// The child and exit that broke the budget, e.g. `root/a: panic: boom`.
    pub cause: String,
}

/// A tree, supervisor or child that could not be started.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StartError {
    /// A child spec was rejected.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A child failed to start more often than the intensity allows.
    #[error(transparent)]
    Escalated(#[from] Escalated),
    /// A dynamically added child failed to start.
    #[error("{path}: {reason}")]
    Child {
        /// The child's path.
        path: ActorPath,
        /// Why it did not start.
        reason: ExitReason,
    },
    /// The supervisor could not be reached (it is stopping or gone).
    #[error("{0}: supervisor unreachable")]
    Unreachable(ActorPath),
}

/// A request to a running supervisor that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The supervisor has no child of that name.
    #[error("{supervisor}: no child named {name:?}")]
    NoSuchChild {
        /// The supervisor's path.
        supervisor: ActorPath,
        /// The name asked for.
        name: String,
    },
    /// The child asked to be restarted is running (OTP's `{error, running}`).
    #[error("{0}: running")]
    Running(ActorPath),
    /// The child asked to be restarted is already being restarted by its supervisor
    /// (OTP's `{error, restarting}`).
    #[error("{0}: already restarting")]
    Restarting(ActorPath),
    /// The child asked to be restarted did not start; it stays down.
    #[error("{path}: {reason}")]
    StartFailed {
        /// The child's path.
        path: ActorPath,
        /// Why it did not start.
        reason: ExitReason,
    },
    /// The supervisor could not be reached (it is stopping or gone).
    #[error("{0}: supervisor unreachable")]
    Unreachable(ActorPath),
}
