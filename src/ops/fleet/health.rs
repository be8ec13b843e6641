//! A robot's health as the fleet view shows it: one JSON object per robot, answered
//! by its `nevil/<id>/health` queryable and read by `nevil fleet`.

use nevil_actors::TreeSnapshot;
use serde::{Deserialize, Serialize};

use crate::ops::health::{self, Health};

/// One robot's health: what `/health/live` and `/health/ready` say, the e-stop, and
/// the tree's size and restarts, in one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RobotHealth {
    /// The robot's id (`[robot] id`).
    pub id: String,
    /// Its root supervisor is up (`/health/live`).
    pub live: bool,
    /// Ready (`/health/ready`): live, every permanent actor running, no e-stop.
    pub ready: bool,
    /// Why it is not ready, one line each; empty when ready.
    pub reasons: Vec<String>,
    /// The e-stop's reasons while it is engaged, as one line; `None` when released.
    pub estop: Option<String>,
    /// Seconds since the tree started.
    pub uptime_s: f64,
    /// The config generation in force (1 at start, +1 per applied reload).
    pub config_generation: u64,
    /// Actors in the tree, supervisors included.
    pub actors: usize,
    /// Restarts of every actor in the tree, summed.
    pub restarts: u64,
}

impl RobotHealth {
    /// The health of robot `id` from its tree `snapshot`, its readiness `ready` (with
    /// the config generation, as [`crate::ops::http::Endpoint::ready`] gives it) and
    /// the e-stop's reasons now.
    pub fn of(id: &str, snapshot: &TreeSnapshot, ready: Health, estop: Option<String>) -> Self {
        let nodes = snapshot.root.walk();
        Self {
            id: id.to_string(),
            live: health::live(snapshot).ok,
            ready: ready.ok,
            reasons: ready.reasons,
            estop,
            uptime_s: snapshot.uptime_s,
            config_generation: ready.config_generation.unwrap_or(1),
            actors: nodes.len(),
            restarts: nodes.iter().map(|n| n.restarts).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nevil_actors::{ActorPath, ChildKind, NodeSnapshot, Restart, Status};

    fn tree(motors: Status, restarts: u64) -> TreeSnapshot {
        let mut root = NodeSnapshot::new(ActorPath::root("root"), ChildKind::Supervisor);
        root.status = Status::Running;
        for (name, status, restarts) in
            [("motors", motors, restarts), ("ranger", Status::Running, 2)]
        {
            let mut worker = NodeSnapshot::new(root.path.child(name), ChildKind::Worker);
            worker.status = status;
            worker.restart = Restart::Permanent;
            worker.restarts = restarts;
            root.children.push(worker);
        }
        TreeSnapshot {
            pid: 7,
            uptime_s: 12.5,
            root,
        }
    }

    fn ready_of(t: &TreeSnapshot, generation: u64) -> Health {
        Health {
            config_generation: Some(generation),
            ..health::ready(t, None)
        }
    }

    #[test]
    fn a_running_robot_is_live_and_ready_with_its_figures() {
        let t = tree(Status::Running, 1);
        let h = RobotHealth::of("picar-1", &t, ready_of(&t, 3), None);
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "picar-1", "live": true, "ready": true, "reasons": [],
                "estop": null, "uptime_s": 12.5, "config_generation": 3,
                "actors": 3, "restarts": 3,
            })
        );
        let back: RobotHealth = serde_json::from_value(json).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn a_restarting_actor_and_an_estop_are_named() {
        let t = tree(Status::Restarting, 4);
        let estop = Some("stale ultrasonic".to_string());
        let h = RobotHealth::of("picar-2", &t, ready_of(&t, 1), estop.clone());
        assert!(h.live, "a restarting child does not make the robot dead");
        assert!(!h.ready);
        assert_eq!(h.reasons, ["root/motors: restarting"]);
        assert_eq!(h.estop, estop);
        assert_eq!(h.restarts, 6);
    }

    #[test]
    fn a_root_that_gave_up_is_neither_live_nor_ready() {
        let mut t = tree(Status::Running, 0);
        t.root.status = Status::Stopped;
        let h = RobotHealth::of("picar-3", &t, ready_of(&t, 1), None);
        assert!(!h.live && !h.ready);
        assert_eq!(h.reasons, ["root: stopped"]);
    }
}
