//! Why an actor stopped, as recorded by its supervisor.
//!
//! ractor reports an exit as one of two [`SupervisionEvent`]s and loses the difference
//! between a panic and a returned `Err` (both become a string). Children started by a
//! supervisor ([`supervisor`](crate::supervisor)) run inside [`Managed`](crate::Managed), which tags a
//! panic with [`Panicked`] so that [`ExitReason::from_event`] can tell them apart.
//!
//! | event from ractor | reason |
//! |---|---|
//! | `ActorTerminated(_, _, Some("shutdown"))` ([`ExitReason::SHUTDOWN`]) | [`ExitReason::Shutdown`] |
//! | `ActorTerminated(_, _, None)` or any other stop reason | [`ExitReason::Normal`] |
//! | `ActorTerminated(_, _, Some("killed"))`, task cancelled | [`ExitReason::Killed`] (abnormal, as in OTP) |
//! | `ActorFailed` carrying [`Panicked`] | [`ExitReason::Panic`] |
//! | `ActorFailed` otherwise | [`ExitReason::Error`] |
//! | `pre_start` failed or panicked | [`ExitReason::StartupFailure`] |
//! | stopped by its supervisor's quota enforcement | [`ExitReason::Quota`] |
//! | `ActorFailed` carrying [`OutOfMemory`], or a child process the kernel OOM-killed ([`crate::process::exit_reason`]) | [`ExitReason::Oom`] |

use std::fmt;

use ractor::{ActorProcessingErr, SupervisionEvent};
use serde::{Serialize, Serializer};

/// The exit reason of one incarnation of a child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitReason {
    /// The actor stopped itself or was stopped gracefully.
    Normal,
    /// The actor was asked to shut down and did: stopped with the reason
    /// [`ExitReason::SHUTDOWN`] (OTP's `shutdown`). Not abnormal: a transient child is not
    /// restarted, and it is no error to analyse. (A supervisor stopping its own children
    /// records how they ended, `normal` or `killed`, as before.)
    Shutdown,
    /// A handler returned `Err`; the error's text.
    Error(String),
    /// A handler panicked; the panic message.
    Panic(String),
    /// The actor was killed (ractor's `kill`, or its task was cancelled).
    Killed,
    /// `pre_start` failed, so the actor never ran; the error's text.
    StartupFailure(String),
    /// Its supervisor stopped it for breaking its resource quota; what it broke.
    Quota(String),
    /// The kernel's OOM killer ended it (a child process over its memory limit), or a
    /// handler failed with [`OutOfMemory`]. Abnormal.
    Oom,
    /// What it stands for ran on another node, and the link to that node is gone (OTP's
    /// `noconnection`); the node's name. A handler fails with [`NodeLost`] to exit so.
    NodeLost(String),
}

impl ExitReason {
    /// The stop reason that makes an actor's exit [`ExitReason::Shutdown`]:
    /// `myself.stop(Some(ExitReason::SHUTDOWN.into()))`.
    pub const SHUTDOWN: &'static str = "shutdown";

    /// Whether the exit was abnormal: everything but [`ExitReason::Normal`] and
    /// [`ExitReason::Shutdown`].
    ///
    /// A transient child is restarted exactly when its exit is abnormal.
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, Self::Normal | Self::Shutdown)
    }

    /// The variant's snake_case name (`normal`, `shutdown`, `error`, `panic`, `killed`,
    /// `startup_failure`, `quota`, `oom`, `node_lost`): a log field and a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Shutdown => "shutdown",
            Self::Error(_) => "error",
            Self::Panic(_) => "panic",
            Self::Killed => "killed",
            Self::StartupFailure(_) => "startup_failure",
            Self::Quota(_) => "quota",
            Self::Oom => "oom",
            Self::NodeLost(_) => "node_lost",
        }
    }

    /// The text it carries (the error, the panic message, what the quota broke, the
    /// node); empty
    /// for [`ExitReason::Normal`], [`ExitReason::Shutdown`], [`ExitReason::Killed`] and
    /// [`ExitReason::Oom`].
    pub fn message(&self) -> &str {
        match self {
            Self::Normal | Self::Shutdown | Self::Killed | Self::Oom => "",
            Self::Error(m)
            | Self::Panic(m)
            | Self::StartupFailure(m)
            | Self::Quota(m)
            | Self::NodeLost(m) => m,
        }
    }

    /// Classifies a ractor supervision event; `None` for events that are not exits.
    pub fn from_event(event: &SupervisionEvent) -> Option<Self> {
        match event {
            SupervisionEvent::ActorTerminated(_, _, reason) => Some(match reason.as_deref() {
                Some("killed") | Some("actor_task_cancelled") => Self::Killed,
                Some(Self::SHUTDOWN) => Self::Shutdown,
                _ => Self::Normal,
            }),
            SupervisionEvent::ActorFailed(_, err) => Some(Self::from_error(err)),
            _ => None,
        }
    }

    /// Classifies a handler error: [`Panicked`] becomes [`ExitReason::Panic`],
    /// [`OutOfMemory`] becomes [`ExitReason::Oom`], [`NodeLost`] [`ExitReason::NodeLost`].
    pub fn from_error(err: &ActorProcessingErr) -> Self {
        if let Some(lost) = err.downcast_ref::<NodeLost>() {
            return Self::NodeLost(lost.0.clone());
        }
        if let Some(p) = err.downcast_ref::<Panicked>() {
            return Self::Panic(p.0.clone());
        }
        if err.downcast_ref::<OutOfMemory>().is_some() {
            return Self::Oom;
        }
        Self::Error(err.to_string())
    }

    /// Classifies a failed start; a panic in `pre_start` keeps its message.
    pub fn from_spawn_error(err: &ractor::SpawnErr) -> Self {
        match err {
            ractor::SpawnErr::StartupFailed(inner) => Self::StartupFailure(inner.to_string()),
            other => Self::StartupFailure(other.to_string()),
        }
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("normal"),
            Self::Shutdown => f.write_str("shutdown"),
            Self::Error(e) => write!(f, "error: {e}"),
            Self::Panic(p) => write!(f, "panic: {p}"),
            Self::Killed => f.write_str("killed"),
            Self::StartupFailure(e) => write!(f, "startup failure: {e}"),
            Self::Quota(e) => write!(f, "quota: {e}"),
            Self::Oom => f.write_str("oom"),
            Self::NodeLost(node) => write!(f, "node lost: {node}"),
        }
    }
}

impl Serialize for ExitReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The error a [`Managed`](crate::Managed) actor reports when one of its handlers panicked.
///
/// Kept as a distinct type so that supervisors can record [`ExitReason::Panic`] rather
/// than [`ExitReason::Error`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("panicked: {0}")]
pub struct Panicked(pub String);

/// The error an actor fails with when what it stands for ran out of memory: a child
/// process the kernel OOM-killed, say. [`ExitReason::from_error`] makes it
/// [`ExitReason::Oom`], so the actor's exit reads `oom`, not `error`; the text says what
/// ran out (it is logged, not kept in the reason).
#[derive(Debug, Clone, thiserror::Error)]
#[error("out of memory: {0}")]
pub struct OutOfMemory(pub String);

/// The error an actor fails with when the node that ran what it stands for is gone:
/// [`ExitReason::from_error`] makes it [`ExitReason::NodeLost`] (`node lost: NAME`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("node lost: {0}")]
pub struct NodeLost(pub String);

impl Panicked {
    /// Builds the error from a caught panic payload (`&str` and `String` keep their text).
    pub fn from_payload(payload: Box<dyn std::any::Any + Send>) -> Self {
        let text = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(s) => (*s).to_string(),
                Err(_) => "panic with a non-text payload".to_string(),
            },
        };
        Self(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_and_errors_are_distinguished() {
        let panic: ActorProcessingErr = Box::new(Panicked("boom".into()));
        let error: ActorProcessingErr = From::from("bad input");
        assert_eq!(
            ExitReason::from_error(&panic),
            ExitReason::Panic("boom".into())
        );
        assert_eq!(
            ExitReason::from_error(&error),
            ExitReason::Error("bad input".into())
        );
    }

    #[test]
    fn display_texts() {
        assert_eq!(ExitReason::Normal.to_string(), "normal");
        assert_eq!(ExitReason::Killed.to_string(), "killed");
        assert_eq!(ExitReason::Panic("x".into()).to_string(), "panic: x");
        assert_eq!(ExitReason::Error("y".into()).to_string(), "error: y");
        assert_eq!(
            ExitReason::StartupFailure("z".into()).to_string(),
            "startup failure: z"
        );
        assert!(!ExitReason::Normal.is_abnormal());
        assert_eq!(ExitReason::Quota("m".into()).kind(), "quota");
        assert_eq!(
            ExitReason::StartupFailure("z".into()).kind(),
            "startup_failure"
        );
        assert_eq!(ExitReason::Panic("x".into()).message(), "x");
        assert_eq!(ExitReason::Killed.message(), "");
        assert!(ExitReason::Killed.is_abnormal());
        assert!(!ExitReason::Shutdown.is_abnormal());
        assert_eq!(ExitReason::Shutdown.to_string(), "shutdown");
        assert_eq!(ExitReason::Shutdown.kind(), "shutdown");
        assert_eq!(ExitReason::Shutdown.message(), "");
        assert_eq!(ExitReason::Oom.to_string(), "oom");
        assert_eq!(ExitReason::Oom.kind(), "oom");
        assert_eq!(ExitReason::Oom.message(), "");
        assert!(ExitReason::Oom.is_abnormal());
    }

    #[test]
    fn out_of_memory_errors_exit_oom() {
        let err: ActorProcessingErr = Box::new(OutOfMemory("group over 32 MiB".into()));
        assert_eq!(err.to_string(), "out of memory: group over 32 MiB");
        assert_eq!(ExitReason::from_error(&err), ExitReason::Oom);
    }

    #[test]
    fn panic_payloads_keep_their_text() {
        assert_eq!(Panicked::from_payload(Box::new("static")).0, "static");
        assert_eq!(
            Panicked::from_payload(Box::new(String::from("owned"))).0,
            "owned"
        );
        assert_eq!(
            Panicked::from_payload(Box::new(42u8)).0,
            "panic with a non-text payload"
        );
    }
}
