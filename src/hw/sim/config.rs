//! The simulated world's configuration (the `[sim]` table) and its checks.
//!
//! Coordinates are metres with the origin at the room's south-west corner, x east, y
//! north; headings are degrees counter-clockwise from east. Every table and key is
//! optional: what is left out keeps its default, so an empty `[sim]` is the default
//! world (a 4 × 3 m room, four obstacles, a line loop, seed 42). Unknown keys are errors.
//!
//! ```toml
//! [sim]
//! seed = 7
//! room = { width_m = 5.0, height_m = 4.0 }
//! obstacles = [
//!     { kind = "circle", x_m = 2.5, y_m = 2.0, radius_m = 0.2 },
//!     { kind = "box", x_m = 4.0, y_m = 3.0, size_x_m = 0.4, size_y_m = 0.3 },
//! ]
//! start = { x_m = 1.0, y_m = 1.0, heading_deg = 90.0 }
//! ```

use nevil_actors::Problems;
use serde::{Deserialize, Serialize};

use super::car::CarPose;
use super::geometry::{Shape, Track, Walls, V2};

/// The simulated robot's world: room, obstacles, line track, start pose, sensor noise
/// and battery. [`SimConfig::check`] validates it; [`super::Sim::new`] builds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every noise source: the same seed and the same inputs give the same run,
    /// bit for bit. Default `42`.
    pub seed: u64,
    /// The room's walls. Default 4 × 3 m.
    pub room: Room,
    /// Solid obstacles on the floor. Default: a post and a crate inside the line loop, a
    /// post by the east wall and a shelf in the north-west corner, outside it.
    /// `obstacles = []` empties the room.
    pub obstacles: Vec<Obstacle>,
    /// The line loop painted on the floor. Default: a 2.8 × 2.0 m rounded rectangle
    /// (corner radius 0.5 m) centred in the default room.
    pub line: LineTrack,
    /// Where the car starts (rear-axle midpoint and heading). Default: on the loop's
    /// southern straight at (1.5, 0.5) m, heading east (0°), sensors over the line.
    pub start: Pose,
    /// The ultrasonic ranger.
    pub ranger: RangerConfig,
    /// The grayscale line sensor.
    pub grayscale: GrayscaleConfig,
    /// The battery.
    pub battery: BatteryConfig,
    /// The simulated Pi's CPU temperature in °C (−40–150), reported to the system
    /// monitor in place of the host's own sensors; unset (the default): the host's.
    /// Lets the over-temperature e-stop be drilled on a laptop, e.g. `85.0`.
    pub cpu_temperature_c: Option<f64>,
}

/// The room: walls around `[0, width_m] × [0, height_m]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Room {
    /// Extent along x (east), metres, 0.5–100. Default `4.0`.
    pub width_m: f64,
    /// Extent along y (north), metres, 0.5–100. Default `3.0`.
    pub height_m: f64,
}

/// A solid obstacle; it must lie inside the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Obstacle {
    /// A round post: `{ kind = "circle", x_m = 2.0, y_m = 1.5, radius_m = 0.2 }`.
    Circle {
        /// Centre x, metres.
        x_m: f64,
        /// Centre y, metres.
        y_m: f64,
        /// Radius, metres, > 0 and <= 50.
        radius_m: f64,
    },
    /// An axis-aligned box, by centre and size:
    /// `{ kind = "box", x_m = 1.2, y_m = 1.5, size_x_m = 0.3, size_y_m = 0.4 }`.
    Box {
        /// Centre x, metres.
        x_m: f64,
        /// Centre y, metres.
        y_m: f64,
        /// Extent along x, metres, > 0 and <= 100.
        size_x_m: f64,
        /// Extent along y, metres, > 0 and <= 100.
        size_y_m: f64,
    },
}

/// A closed line loop: the outline of a rounded rectangle (a circle when width = height
/// = 2 × corner radius), painted dark on the bright floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LineTrack {
    /// Centre x, metres. Default `2.0`.
    pub centre_x_m: f64,
    /// Centre y, metres. Default `1.5`.
    pub centre_y_m: f64,
    /// Extent of the loop along x, measured on the line's centre, metres, > 0 and <= 100;
    /// the loop must fit the room. Default `2.8`.
    pub width_m: f64,
    /// Extent of the loop along y, measured on the line's centre, metres, > 0 and <= 100;
    /// the loop must fit the room. Default `2.0`.
    pub height_m: f64,
    /// Radius of the rounded corners, metres, 0 to half the smaller extent. Default `0.5`.
    pub corner_radius_m: f64,
    /// Width of the painted line, metres, 0.005–0.1. Default `0.02`.
    pub line_width_m: f64,
}

/// A pose in the room: position of the rear-axle midpoint and heading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pose {
    /// x, metres.
    pub x_m: f64,
    /// y, metres.
    pub y_m: f64,
    /// Heading, degrees counter-clockwise from east (+x).
    pub heading_deg: f64,
}

/// The ultrasonic ranger at the front centre of the car.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RangerConfig {
    /// Standard deviation of the reading noise, metres, 0–0.5. Default `0.005`.
    pub noise_m: f64,
    /// Half-angle of the sensing cone, degrees, 1–60. Default `15.0`.
    pub half_angle_deg: f64,
    /// Shortest distance reported; nearer echoes read as this, metres, 0–1. Default `0.02`.
    pub min_m: f64,
    /// Longest distance reported; farther reads as no echo, metres, above `min_m`, up
    /// to 10. Default `3.0`.
    pub max_m: f64,
}

/// The three-channel grayscale line sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrayscaleConfig {
    /// Raw reading over the middle of the line, ADC counts 0–4095, below `floor_adc`.
    /// Default `300`.
    pub line_adc: u16,
    /// Raw reading over the bare floor, ADC counts 0–4095. Default `1450`.
    pub floor_adc: u16,
    /// Standard deviation of the reading noise, ADC counts, 0–1000. Default `15.0`.
    pub noise_adc: f64,
}

/// The 2S Li-ion pack (8.4 V full, 6.0 V empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatteryConfig {
    /// Capacity, milliampere-hours, 1–100000. Default `2000.0`.
    pub capacity_mah: f64,
    /// State of charge at start, 0 (empty) to 1 (full). Default `1.0`.
    pub initial_charge: f64,
    /// Current drawn with the motors off (Pi, HAT, sensors), amperes, 0–10.
    /// Default `0.4`.
    pub idle_a: f64,
    /// Extra current with both motors at 100 % power (proportional below), amperes,
    /// 0–20. Default `1.2`.
    pub motor_a: f64,
    /// Internal resistance: the voltage sags by current × this, ohms, 0–2.
    /// Default `0.15`.
    pub internal_ohm: f64,
    /// Standard deviation of the voltage reading's noise, volts, 0–1. Default `0.005`.
    pub noise_v: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            room: Room::default(),
            obstacles: vec![
                Obstacle::Circle {
                    x_m: 2.3,
                    y_m: 1.5,
                    radius_m: 0.15,
                },
                Obstacle::Box {
                    x_m: 1.3,
                    y_m: 1.6,
                    size_x_m: 0.3,
                    size_y_m: 0.4,
                },
                Obstacle::Circle {
                    x_m: 3.75,
                    y_m: 1.5,
                    radius_m: 0.15,
                },
                Obstacle::Box {
                    x_m: 0.3,
                    y_m: 2.85,
                    size_x_m: 0.6,
                    size_y_m: 0.3,
                },
            ],
            line: LineTrack::default(),
            start: Pose::default(),
            ranger: RangerConfig::default(),
            grayscale: GrayscaleConfig::default(),
            battery: BatteryConfig::default(),
            cpu_temperature_c: None,
        }
    }
}

impl Default for Room {
    fn default() -> Self {
        Self {
            width_m: 4.0,
            height_m: 3.0,
        }
    }
}

impl Default for LineTrack {
    fn default() -> Self {
        Self {
            centre_x_m: 2.0,
            centre_y_m: 1.5,
            width_m: 2.8,
            height_m: 2.0,
            corner_radius_m: 0.5,
            line_width_m: 0.02,
        }
    }
}

impl Default for Pose {
    fn default() -> Self {
        Self {
            x_m: 1.5,
            y_m: 0.5,
            heading_deg: 0.0,
        }
    }
}

impl Default for RangerConfig {
    fn default() -> Self {
        Self {
            noise_m: 0.005,
            half_angle_deg: 15.0,
            min_m: 0.02,
            max_m: 3.0,
        }
    }
}

impl Default for GrayscaleConfig {
    fn default() -> Self {
        Self {
            line_adc: 300,
            floor_adc: 1450,
            noise_adc: 15.0,
        }
    }
}

impl Default for BatteryConfig {
    fn default() -> Self {
        Self {
            capacity_mah: 2000.0,
            initial_charge: 1.0,
            idle_a: 0.4,
            motor_a: 1.2,
            internal_ohm: 0.15,
            noise_v: 0.005,
        }
    }
}

impl Obstacle {
    /// The obstacle as a solid for the geometry.
    pub(crate) fn shape(&self) -> Shape {
        match *self {
            Obstacle::Circle { x_m, y_m, radius_m } => Shape::Circle {
                c: V2::new(x_m, y_m),
                r: radius_m,
            },
            Obstacle::Box {
                x_m,
                y_m,
                size_x_m,
                size_y_m,
            } => Shape::Rect {
                min: V2::new(x_m - size_x_m / 2.0, y_m - size_y_m / 2.0),
                max: V2::new(x_m + size_x_m / 2.0, y_m + size_y_m / 2.0),
            },
        }
    }
}

impl Room {
    pub(crate) fn walls(&self) -> Walls {
        Walls {
            w: self.width_m,
            h: self.height_m,
        }
    }
}

impl LineTrack {
    pub(crate) fn track(&self) -> Track {
        Track {
            centre: V2::new(self.centre_x_m, self.centre_y_m),
            half: V2::new(self.width_m / 2.0, self.height_m / 2.0),
            corner_radius: self.corner_radius_m,
        }
    }
}

impl Pose {
    pub(crate) fn car_pose(&self) -> CarPose {
        CarPose {
            pos: V2::new(self.x_m, self.y_m),
            heading: self.heading_deg.to_radians(),
        }
    }

    pub(crate) fn from_car(p: CarPose) -> Self {
        Self {
            x_m: p.pos.x,
            y_m: p.pos.y,
            heading_deg: p.heading.to_degrees(),
        }
    }
}

/// The largest room side, metres: positions are checked against it while the room
/// itself is invalid, so a wild position is still named.
const MAX_ROOM_M: f64 = 100.0;

impl SimConfig {
    /// Checks every value and records each problem with its key path under `prefix`
    /// (e.g. `sim.obstacles[2].radius_m`, `sim.start`). A config that passes builds a
    /// world in which the car starts free, inside the room and clear of every obstacle.
    pub fn check(&self, prefix: &str, problems: &mut Problems) {
        let key = |k: &str| format!("{prefix}.{k}");
        if let Some(c) = self.cpu_temperature_c {
            problems.range(key("cpu_temperature_c"), c, -40.0, 150.0);
        }
        let (w, h) = (self.room.width_m, self.room.height_m);
        problems.range(key("room.width_m"), w, 0.5, MAX_ROOM_M);
        problems.range(key("room.height_m"), h, 0.5, MAX_ROOM_M);
        let room_ok = (0.5..=MAX_ROOM_M).contains(&w) && (0.5..=MAX_ROOM_M).contains(&h);

        for (i, o) in self.obstacles.iter().enumerate() {
            let key = |k: &str| format!("{prefix}.obstacles[{i}].{k}");
            let (x, y, half_x, half_y) = match *o {
                Obstacle::Circle { x_m, y_m, radius_m } => {
                    problems.above(key("radius_m"), radius_m, 0.0, MAX_ROOM_M / 2.0);
                    (x_m, y_m, radius_m, radius_m)
                }
                Obstacle::Box {
                    x_m,
                    y_m,
                    size_x_m,
                    size_y_m,
                } => {
                    problems.above(key("size_x_m"), size_x_m, 0.0, MAX_ROOM_M);
                    problems.above(key("size_y_m"), size_y_m, 0.0, MAX_ROOM_M);
                    (x_m, y_m, size_x_m / 2.0, size_y_m / 2.0)
                }
            };
            let size_ok = [half_x, half_y]
                .iter()
                .all(|half| *half > 0.0 && *half <= MAX_ROOM_M / 2.0);
            if room_ok && size_ok {
                // Inside the room, touching a wall allowed.
                problems.range(key("x_m"), x, half_x, w - half_x);
                problems.range(key("y_m"), y, half_y, h - half_y);
            } else {
                // The room or the size is wrong (and named): say only if the centre is
                // wild too.
                problems.range(key("x_m"), x, 0.0, MAX_ROOM_M);
                problems.range(key("y_m"), y, 0.0, MAX_ROOM_M);
            }
        }

        self.check_line(prefix, room_ok, problems);
        self.check_start(prefix, room_ok, problems);

        let r = &self.ranger;
        problems.range(key("ranger.noise_m"), r.noise_m, 0.0, 0.5);
        problems.range(key("ranger.half_angle_deg"), r.half_angle_deg, 1.0, 60.0);
        problems.range(key("ranger.min_m"), r.min_m, 0.0, 1.0);
        if !(r.max_m > r.min_m && r.max_m <= 10.0) {
            problems.push(
                key("ranger.max_m"),
                format!("must be above min_m and at most 10 (is {})", r.max_m),
            );
        }

        let g = &self.grayscale;
        problems.range(key("grayscale.line_adc"), g.line_adc.into(), 0.0, 4095.0);
        problems.range(key("grayscale.floor_adc"), g.floor_adc.into(), 0.0, 4095.0);
        if g.line_adc >= g.floor_adc {
            problems.push(
                key("grayscale.line_adc"),
                format!(
                    "must be below floor_adc (the line is darker than the floor; is {} vs {})",
                    g.line_adc, g.floor_adc
                ),
            );
        }
        problems.range(key("grayscale.noise_adc"), g.noise_adc, 0.0, 1000.0);

        let b = &self.battery;
        problems.range(key("battery.capacity_mah"), b.capacity_mah, 1.0, 100_000.0);
        problems.range(key("battery.initial_charge"), b.initial_charge, 0.0, 1.0);
        problems.range(key("battery.idle_a"), b.idle_a, 0.0, 10.0);
        problems.range(key("battery.motor_a"), b.motor_a, 0.0, 20.0);
        problems.range(key("battery.internal_ohm"), b.internal_ohm, 0.0, 2.0);
        problems.range(key("battery.noise_v"), b.noise_v, 0.0, 1.0);
    }

    fn check_line(&self, prefix: &str, room_ok: bool, problems: &mut Problems) {
        let key = |k: &str| format!("{prefix}.line.{k}");
        let l = &self.line;
        problems.above(key("width_m"), l.width_m, 0.0, MAX_ROOM_M);
        problems.above(key("height_m"), l.height_m, 0.0, MAX_ROOM_M);
        problems.range(key("line_width_m"), l.line_width_m, 0.005, 0.1);
        let size_ok = [l.width_m, l.height_m]
            .iter()
            .all(|side| *side > 0.0 && *side <= MAX_ROOM_M);
        if size_ok {
            let smaller = l.width_m.min(l.height_m);
            problems.range(
                key("corner_radius_m"),
                l.corner_radius_m,
                0.0,
                smaller / 2.0,
            );
        } else {
            problems.range(key("corner_radius_m"), l.corner_radius_m, 0.0, MAX_ROOM_M);
        }
        if room_ok && size_ok && (0.005..=0.1).contains(&l.line_width_m) {
            let half_x = (l.width_m + l.line_width_m) / 2.0;
            let half_y = (l.height_m + l.line_width_m) / 2.0;
            let (w, h) = (self.room.width_m, self.room.height_m);
            problems.range(key("centre_x_m"), l.centre_x_m, half_x, w - half_x);
            problems.range(key("centre_y_m"), l.centre_y_m, half_y, h - half_y);
        } else {
            problems.range(key("centre_x_m"), l.centre_x_m, 0.0, MAX_ROOM_M);
            problems.range(key("centre_y_m"), l.centre_y_m, 0.0, MAX_ROOM_M);
        }
    }

    fn check_start(&self, prefix: &str, room_ok: bool, problems: &mut Problems) {
        let s = &self.start;
        let key = |k: &str| format!("{prefix}.start{k}");
        problems.range(key(".heading_deg"), s.heading_deg, -360.0, 360.0);
        if !room_ok {
            problems.range(key(".x_m"), s.x_m, 0.0, MAX_ROOM_M);
            problems.range(key(".y_m"), s.y_m, 0.0, MAX_ROOM_M);
            return;
        }
        problems.range(key(".x_m"), s.x_m, 0.0, self.room.width_m);
        problems.range(key(".y_m"), s.y_m, 0.0, self.room.height_m);
        if !(s.x_m.is_finite() && s.y_m.is_finite() && s.heading_deg.is_finite()) {
            return;
        }
        let footprint = s.car_pose().footprint();
        if self.room.walls().clearance(&footprint) <= 0.0 {
            problems.push(key(""), "the car's footprint there reaches into a wall");
        }
        for (i, o) in self.obstacles.iter().enumerate() {
            if o.shape().clearance(&footprint) <= 0.0 {
                problems.push(
                    key(""),
                    format!("the car's footprint there overlaps obstacles[{i}]"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(cfg: &SimConfig) -> Vec<String> {
        let mut p = Problems::default();
        cfg.check("sim", &mut p);
        p.0.iter().map(ToString::to_string).collect()
    }

    fn keys(cfg: &SimConfig) -> Vec<String> {
        let mut p = Problems::default();
        cfg.check("sim", &mut p);
        p.0.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn default_is_valid() {
        assert_eq!(problems(&SimConfig::default()), Vec::<String>::new());
    }

    #[test]
    fn empty_table_is_the_default_and_unknown_keys_are_rejected() {
        let empty: SimConfig = toml::from_str("").unwrap();
        assert_eq!(empty, SimConfig::default());
        assert!(toml::from_str::<SimConfig>("speed = 3").is_err());
        assert!(toml::from_str::<SimConfig>("[room]\nwidth = 3.0").is_err());
        let bad_obstacle = r#"obstacles = [{ kind = "circle", x_m = 1.0, y_m = 1.0, radius_m = 0.1, colour = "red" }]"#;
        assert!(toml::from_str::<SimConfig>(bad_obstacle).is_err());
        let bad_kind = r#"obstacles = [{ kind = "cone", x_m = 1.0, y_m = 1.0 }]"#;
        assert!(toml::from_str::<SimConfig>(bad_kind).is_err());
    }

    #[test]
    fn module_doc_example_parses() {
        let text = r#"
            seed = 7
            room = { width_m = 5.0, height_m = 4.0 }
            obstacles = [
                { kind = "circle", x_m = 2.5, y_m = 2.0, radius_m = 0.2 },
                { kind = "box", x_m = 4.0, y_m = 3.0, size_x_m = 0.4, size_y_m = 0.3 },
            ]
            start = { x_m = 1.0, y_m = 1.0, heading_deg = 90.0 }
        "#;
        let cfg: SimConfig = toml::from_str(text).unwrap();
        assert_eq!(cfg.seed, 7);
        assert_eq!(cfg.obstacles.len(), 2);
        assert_eq!(
            cfg.obstacles[1],
            Obstacle::Box {
                x_m: 4.0,
                y_m: 3.0,
                size_x_m: 0.4,
                size_y_m: 0.3
            }
        );
        assert_eq!(problems(&cfg), Vec::<String>::new());
    }

    #[test]
    fn obstacle_problems_name_their_index_and_field() {
        let mut cfg = SimConfig::default();
        cfg.obstacles[2] = Obstacle::Circle {
            x_m: 1.0,
            y_m: 1.0,
            radius_m: -0.1,
        };
        cfg.obstacles[1] = Obstacle::Box {
            x_m: 3.9,
            y_m: 1.0,
            size_x_m: 0.4,
            size_y_m: 0.2,
        };
        assert_eq!(
            keys(&cfg),
            ["sim.obstacles[1].x_m", "sim.obstacles[2].radius_m"]
        );
        assert_eq!(
            problems(&cfg)[1],
            "sim.obstacles[2].radius_m: must be > 0 and <= 50 (is -0.1)"
        );
    }

    #[test]
    fn ranges_are_checked_with_key_paths() {
        let mut cfg = SimConfig::default();
        cfg.room.width_m = 0.0;
        cfg.ranger.noise_m = -0.01;
        cfg.ranger.max_m = 0.01;
        cfg.grayscale.line_adc = 2000;
        cfg.grayscale.floor_adc = 5000;
        cfg.battery.initial_charge = f64::NAN;
        cfg.line.line_width_m = 0.5;
        assert_eq!(
            keys(&cfg),
            [
                "sim.room.width_m",
                "sim.line.line_width_m",
                "sim.ranger.noise_m",
                "sim.ranger.max_m",
                "sim.grayscale.floor_adc",
                "sim.battery.initial_charge",
            ]
        );
        cfg.grayscale.floor_adc = 1000;
        assert!(keys(&cfg).contains(&"sim.grayscale.line_adc".to_owned()));
    }

    #[test]
    fn non_finite_and_wild_numbers_are_named() {
        let mut cfg = SimConfig::default();
        cfg.obstacles[0] = Obstacle::Circle {
            x_m: 1.0,
            y_m: 1.0,
            radius_m: f64::INFINITY,
        };
        cfg.obstacles[1] = Obstacle::Box {
            x_m: f64::NAN,
            y_m: 1.5,
            size_x_m: 0.3,
            size_y_m: 1e9,
        };
        cfg.line.width_m = f64::NAN;
        cfg.start.heading_deg = f64::INFINITY;
        cfg.ranger.noise_m = f64::INFINITY;
        cfg.ranger.max_m = f64::INFINITY;
        cfg.ranger.half_angle_deg = 0.0;
        cfg.grayscale.noise_adc = f64::NAN;
        cfg.battery.capacity_mah = f64::INFINITY;
        cfg.battery.idle_a = -1.0;
        cfg.battery.motor_a = f64::NAN;
        cfg.battery.internal_ohm = f64::INFINITY;
        assert_eq!(
            keys(&cfg),
            [
                "sim.obstacles[0].radius_m",
                "sim.obstacles[1].size_y_m",
                "sim.obstacles[1].x_m",
                "sim.line.width_m",
                "sim.start.heading_deg",
                "sim.ranger.noise_m",
                "sim.ranger.half_angle_deg",
                "sim.ranger.max_m",
                "sim.grayscale.noise_adc",
                "sim.battery.capacity_mah",
                "sim.battery.idle_a",
                "sim.battery.motor_a",
                "sim.battery.internal_ohm",
            ]
        );
    }

    #[test]
    fn positions_are_named_even_when_the_room_is_bad() {
        let mut cfg = SimConfig::default();
        cfg.room.height_m = f64::NAN;
        cfg.obstacles[3] = Obstacle::Circle {
            x_m: f64::INFINITY,
            y_m: 1.0,
            radius_m: 0.1,
        };
        cfg.line.centre_y_m = -1.0;
        cfg.start.x_m = f64::NAN;
        assert_eq!(
            keys(&cfg),
            [
                "sim.room.height_m",
                "sim.obstacles[3].x_m",
                "sim.line.centre_y_m",
                "sim.start.x_m",
            ]
        );
    }

    #[test]
    fn track_must_fit_the_room() {
        let mut cfg = SimConfig::default();
        cfg.line.centre_x_m = 1.0;
        cfg.line.corner_radius_m = 1.5;
        assert_eq!(
            keys(&cfg),
            ["sim.line.corner_radius_m", "sim.line.centre_x_m"]
        );
    }

    #[test]
    fn start_must_be_free() {
        let mut cfg = SimConfig {
            start: Pose {
                x_m: 2.3,
                y_m: 1.4,
                heading_deg: 0.0,
            },
            ..SimConfig::default()
        };
        assert_eq!(
            problems(&cfg),
            ["sim.start: the car's footprint there overlaps obstacles[0]"]
        );
        cfg.start = Pose {
            x_m: 0.03,
            y_m: 1.0,
            heading_deg: 0.0,
        };
        assert_eq!(
            problems(&cfg),
            ["sim.start: the car's footprint there reaches into a wall"]
        );
        cfg.start.x_m = 9.0;
        assert_eq!(keys(&cfg)[0], "sim.start.x_m");
    }
}
