//! Liveness and readiness, as `/health/live` and `/health/ready` report them.
//!
//! Live: the root supervisor runs (it has not given up). Ready: live, every permanent
//! actor runs, and the safety watchdog is content (no e-stop engaged). A reason is
//! given for every way the robot falls short, so an operator reading the 503 knows
//! where to look.

use nevil_actors::{Restart, Status, TreeSnapshot};
use serde::Serialize;

use crate::robot::safety::EStopEvent;

/// The answer of a health probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// Whether the probe passes (HTTP 200; 503 otherwise).
    pub ok: bool,
    /// Why it does not, one line each; empty when it passes.
    pub reasons: Vec<String>,
    /// The config generation in force, in `/health/ready`'s answer (absent from
    /// `/health/live`'s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_generation: Option<u64>,
}

impl Health {
    fn from_reasons(reasons: Vec<String>) -> Self {
        Self {
            ok: reasons.is_empty(),
            reasons,
            config_generation: None,
        }
    }
}

/// Whether a root supervisor with `status` is up: starting or running. Stopping or
/// stopped is what giving up (escalation) does. Right after `Tree::start` ractor may
/// still report the root as starting (its `post_start` runs on the actor's task): the
/// tree is up all the same.
///
/// The one definition of "root is up": `/health/live` ([`live`]) and systemd's
/// watchdog pings ([`crate::ops::systemd::root_running`]) both ask it.
pub fn root_is_up(status: Status) -> bool {
    matches!(status, Status::Starting | Status::Running)
}

/// Liveness: the root supervisor is up ([`root_is_up`]).
pub fn live(tree: &TreeSnapshot) -> Health {
    let root = &tree.root;
    let reasons = if root_is_up(root.status) {
        Vec::new()
    } else {
        vec![format!("{}: {}", root.path, root.status.as_str())]
    };
    Health::from_reasons(reasons)
}

/// Readiness: live, every permanent actor running, and no e-stop engaged (`estop` is
/// the watchdog's latest e-stop change).
pub fn ready(tree: &TreeSnapshot, estop: Option<&EStopEvent>) -> Health {
    let mut reasons = live(tree).reasons;
    for node in tree.root.walk().into_iter().skip(1) {
        if node.restart == Restart::Permanent && node.status != Status::Running {
            let mut reason = format!("{}: {}", node.path, node.status.as_str());
            if let Some(exit) = &node.last_exit {
                reason.push_str(&format!(" (last exit: {exit})"));
            }
            reasons.push(reason);
        }
    }
    if let Some(e) = estop.filter(|e| e.engaged) {
        reasons.push(format!("safety: e-stop engaged: {}", e.reason));
    }
    Health::from_reasons(reasons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nevil_actors::{ActorPath, ChildKind, ExitReason, NodeSnapshot};

    fn tree(worker_status: Status, restart: Restart) -> TreeSnapshot {
        let mut root = NodeSnapshot::new(ActorPath::root("root"), ChildKind::Supervisor);
        let mut worker = NodeSnapshot::new(root.path.child("motors"), ChildKind::Worker);
        worker.status = worker_status;
        worker.restart = restart;
        worker.last_exit = Some(ExitReason::Error("bus fault".into()));
        root.children.push(worker);
        TreeSnapshot {
            pid: 1,
            uptime_s: 1.0,
            root,
        }
    }

    #[test]
    fn ready_when_everything_runs() {
        let t = tree(Status::Running, Restart::Permanent);
        assert!(live(&t).ok);
        assert_eq!(ready(&t, None), Health::from_reasons(vec![]));
    }

    #[test]
    fn a_permanent_actor_down_is_named() {
        let t = tree(Status::Restarting, Restart::Permanent);
        let health = ready(&t, None);
        assert!(!health.ok);
        assert_eq!(health.reasons.len(), 1);
        assert!(
            health.reasons[0].starts_with("root/motors: restarting (last exit: "),
            "{health:?}"
        );
        assert!(
            live(&t).ok,
            "a restarting child does not make the process dead"
        );
    }

    #[test]
    fn a_stopped_temporary_actor_does_not_matter() {
        let t = tree(Status::Stopped, Restart::Temporary);
        assert!(ready(&t, None).ok);
    }

    #[test]
    fn an_engaged_estop_is_not_ready() {
        let t = tree(Status::Running, Restart::Permanent);
        let mut e = EStopEvent {
            at_s: 1.0,
            engaged: true,
            reason: "battery low".into(),
        };
        let health = ready(&t, Some(&e));
        assert_eq!(health.reasons, ["safety: e-stop engaged: battery low"]);
        e.engaged = false;
        assert!(ready(&t, Some(&e)).ok);
    }

    #[test]
    fn a_starting_root_is_live_as_systemd_sees_it() {
        let mut t = tree(Status::Running, Restart::Permanent);
        t.root.status = Status::Starting;
        assert!(live(&t).ok);
        for status in [Status::Restarting, Status::Stopping, Status::Stopped] {
            assert!(!root_is_up(status), "{status:?}");
        }
    }

    #[test]
    fn a_root_that_gave_up_is_not_live() {
        let mut t = tree(Status::Running, Restart::Permanent);
        t.root.status = Status::Stopped;
        assert!(!live(&t).ok);
        assert!(!ready(&t, None).ok);
    }
}
