//! The observer's `state` event: the tree (as `/tree` has it), the robot's state (the
//! e-stop, the control loop's jitter, the host) and, in simulation, the world — read
//! from shared state, without messaging any actor.

use std::sync::Arc;

use serde::Serialize;

use crate::core::jitter::{Bucket, Jitter, JitterSummary};
use crate::hw::sim::{LineTrack, Obstacle, Room, Scene, Sim, SimConfig};
use crate::ops::http::Endpoint;
use crate::services::monitor::{HostReport, HostStatus};
use crate::services::tree::{tree_document, TreeDocument};

/// What the robot side of the page reads.
#[derive(Clone)]
pub struct RobotSources {
    /// The control loop's lateness.
    pub jitter: Arc<Jitter>,
    /// The system monitor's latest look at the host.
    pub host: HostStatus,
    /// The simulated world and its fixed layout, when the backend is `sim`.
    pub sim: Option<(Sim, Arc<Layout>)>,
}

/// The fixed parts of a simulated world, in the page's terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Layout {
    /// The room's extent.
    pub room: Room,
    /// Its obstacles.
    pub obstacles: Vec<Shape>,
    /// The line track.
    pub line: LineTrack,
}

/// An obstacle, by centre and size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    /// An axis-aligned box of `w_m` × `h_m`.
    Box {
        /// Centre x.
        x_m: f64,
        /// Centre y.
        y_m: f64,
        /// Extent along x.
        w_m: f64,
        /// Extent along y.
        h_m: f64,
    },
    /// A round post.
    Circle {
        /// Centre x.
        x_m: f64,
        /// Centre y.
        y_m: f64,
        /// Radius.
        r_m: f64,
    },
}

impl Layout {
    /// The layout of the world `config` builds.
    pub fn of(config: &SimConfig) -> Self {
        let shape = |o: &Obstacle| match *o {
            Obstacle::Box {
                x_m,
                y_m,
                size_x_m,
                size_y_m,
            } => Shape::Box {
                x_m,
                y_m,
                w_m: size_x_m,
                h_m: size_y_m,
            },
            Obstacle::Circle { x_m, y_m, radius_m } => Shape::Circle {
                x_m,
                y_m,
                r_m: radius_m,
            },
        };
        Self {
            room: config.room.clone(),
            obstacles: config.obstacles.iter().map(shape).collect(),
            line: config.line.clone(),
        }
    }
}

/// The `state` event's data.
#[derive(Serialize)]
pub struct State<'a> {
    /// Wall clock, unix milliseconds.
    pub t_ms: u64,
    /// Whether the controls may be offered (`[http] control_token` is set).
    pub controls: bool,
    /// The tree, as `/tree` serves it.
    pub tree: TreeDocument,
    /// The robot's state.
    pub robot: RobotState,
    /// The simulated world, `null` on a real robot.
    pub sim: Option<World<'a>>,
}

/// The robot part of [`State`].
#[derive(Serialize)]
pub struct RobotState {
    /// The e-stop now.
    pub estop: EStopState,
    /// The control loop's lateness: its summary and histogram.
    pub jitter: JitterState,
    /// The host's latest sample and levels; `null` before the first.
    pub host: Option<HostReport>,
}

/// Whether the e-stop is engaged and why.
#[derive(Serialize)]
pub struct EStopState {
    /// Engaged now.
    pub engaged: bool,
    /// Its reasons while engaged.
    pub reasons: Option<String>,
}

/// The jitter summary with its buckets.
#[derive(Serialize)]
pub struct JitterState {
    /// Count and quantiles.
    #[serde(flatten)]
    pub summary: JitterSummary,
    /// Non-empty buckets, ascending.
    pub buckets: Vec<Bucket>,
}

/// The world part of [`State`]: the layout and where the car is.
#[derive(Serialize)]
pub struct World<'a> {
    /// Room, obstacles, line.
    #[serde(flatten)]
    pub layout: &'a Layout,
    /// Pose, trail, speed, battery, collisions, distance.
    #[serde(flatten)]
    pub scene: Scene,
}

/// The `state` event's JSON now.
pub fn state_json(endpoint: &Endpoint, t_ms: u64) -> String {
    let robot = &endpoint.robot;
    let layout_and_scene = robot
        .sim
        .as_ref()
        .map(|(sim, layout)| (sim.scene(), layout));
    let state = State {
        t_ms,
        controls: endpoint.controls.is_some(),
        tree: tree_document(
            endpoint.tree.snapshot(),
            &endpoint.analytics,
            &endpoint.generation,
        ),
        robot: RobotState {
            estop: EStopState {
                engaged: endpoint.estops.engaged(),
                reasons: endpoint.estops.reasons(),
            },
            jitter: JitterState {
                summary: robot.jitter.summary(),
                buckets: robot.jitter.buckets(),
            },
            host: robot.host.latest(),
        },
        sim: layout_and_scene.map(|(scene, layout)| World {
            layout: layout.as_ref(),
            scene,
        }),
    };
    serde_json::to_string(&state).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hw::sim::ManualClock;

    /// A simulated world's layout is given in the page's terms (short names), and
    /// the car's pose and trail follow the world.
    #[test]
    fn the_world_is_shown_by_its_layout_and_scene() {
        let config = SimConfig::default();
        let layout = Layout::of(&config);
        assert_eq!(layout.obstacles.len(), config.obstacles.len());
        let json = serde_json::to_value(&layout).unwrap();
        for (shape, obstacle) in json["obstacles"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&config.obstacles)
        {
            match obstacle {
                Obstacle::Circle { radius_m, .. } => {
                    assert_eq!(shape["kind"], "circle");
                    assert_eq!(shape["r_m"], *radius_m);
                }
                Obstacle::Box {
                    size_x_m, size_y_m, ..
                } => {
                    assert_eq!(shape["kind"], "box");
                    assert_eq!(
                        (shape["w_m"].clone(), shape["h_m"].clone()),
                        ((*size_x_m).into(), (*size_y_m).into())
                    );
                }
            }
        }
        let clock = ManualClock::new();
        let sim = Sim::new(&config, clock.clone());
        sim.with_world(|w| w.set_power(40.0, 40.0)).unwrap();
        clock.set(Duration::from_secs(2));
        let world = World {
            layout: &layout,
            scene: sim.scene(),
        };
        let json = serde_json::to_value(&world).unwrap();
        assert_eq!(json["room"]["width_m"], config.room.width_m);
        assert!(json["trail"].as_array().unwrap().len() > 10, "{json}");
        assert!(json["pose"]["x_m"].as_f64().unwrap() != config.start.x_m);
        assert!(json["line"]["corner_radius_m"].is_number());
    }
}
