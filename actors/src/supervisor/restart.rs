//! The restart decision: what a child's exit calls for, by its restart type and its exit
//! reason (OTP's `do_restart/4`), and how the exit is then reported.
//!
//! This is the only place that decides whether a child comes back. Its match lists every
//! restart type against every exit reason, so a new reason cannot be added without
//! deciding what it means for each type.

use std::time::Duration;

use super::spec::Restart;
use crate::exit::ExitReason;

/// What a child's exit calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Restart it (and its siblings, by the strategy), counted against the intensity.
    Restart,
    /// Leave it down, kept in the table (OTP: its pid becomes `undefined`); it can be
    /// started again with `restart_child`.
    Keep,
    /// Leave it down and forget it (a temporary child).
    Delete,
}

/// The verdict on a child of type `restart` that exited with `reason`.
pub(super) fn decide(restart: Restart, reason: &ExitReason) -> Verdict {
    use ExitReason as R;
    match (restart, reason) {
        (Restart::Permanent, _) => Verdict::Restart,
        (Restart::Transient, R::Normal | R::Shutdown) => Verdict::Keep,
        (
            Restart::Transient,
            R::Error(_)
            | R::Panic(_)
            | R::Killed
            | R::StartupFailure(_)
            | R::Quota(_)
            | R::Oom
            | R::NodeLost(_),
        ) => Verdict::Restart,
        (Restart::Temporary, _) => Verdict::Delete,
    }
}

/// What follows a child's exit, as its exit event and log line say.
#[derive(Debug, Clone, Copy)]
pub(super) enum Next {
    /// It is restarted, after this backoff delay if any.
    Restart(Option<Duration>),
    /// It stays down (its restart type does not want a restart, or it was terminated).
    Stop,
    /// The supervisor gives up instead.
    Escalate,
}

impl Next {
    /// The `action` field of the exit's log line.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Restart(_) => "restart",
            Self::Stop => "stop",
            Self::Escalate => "escalate",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_reason() -> [ExitReason; 8] {
        [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::Error("e".into()),
            ExitReason::Panic("p".into()),
            ExitReason::Killed,
            ExitReason::StartupFailure("s".into()),
            ExitReason::Quota("q".into()),
            ExitReason::Oom,
        ]
    }

    #[test]
    fn permanent_always_restarts() {
        for reason in every_reason() {
            assert_eq!(
                decide(Restart::Permanent, &reason),
                Verdict::Restart,
                "{reason}"
            );
        }
    }

    #[test]
    fn transient_restarts_after_abnormal_exits_only() {
        for reason in every_reason() {
            let expected = if reason.is_abnormal() {
                Verdict::Restart
            } else {
                Verdict::Keep
            };
            assert_eq!(decide(Restart::Transient, &reason), expected, "{reason}");
        }
        assert_eq!(
            decide(Restart::Transient, &ExitReason::Shutdown),
            Verdict::Keep
        );
        assert_eq!(
            decide(Restart::Transient, &ExitReason::Killed),
            Verdict::Restart,
            "a kill is abnormal, as in OTP"
        );
    }

    #[test]
    fn temporary_is_forgotten() {
        for reason in every_reason() {
            assert_eq!(
                decide(Restart::Temporary, &reason),
                Verdict::Delete,
                "{reason}"
            );
        }
    }
}
