//! The simulated world: a room with obstacles and a line loop, one car, one battery.
//!
//! Time advances in fixed steps of [`STEP`] and only through [`World::advance_to`]; the
//! world never reads a clock. Each step, in order: the speed follows the commanded power
//! through a first-order lag, the battery drains, the car moves along its bicycle-model
//! arc, and the move is checked against the walls and obstacles. A move that would make
//! the footprint touch something is cut short where it touches (found by bisection), the
//! speed drops to zero and, if the car was not already in contact, a collision is counted.
//! The contact ends once the car has backed off by more than [`CONTACT_RELEASE_M`], so
//! pushing against a wall is one collision, not one per step.
//!
//! Sensor reads happen at the current world time and draw their noise from three seeded
//! streams (ranger, grayscale, battery), so the same seed and the same sequence of
//! (time, command, read) calls give the same readings and trajectory, bit for bit.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::battery::Pack;
use super::car::{lag_per_step, next_speed, CarPose, MAX_POWER, MAX_STEERING_DEG};
use super::config::{Pose, SimConfig};
use super::geometry::{min_opt, Cone, Shape, Track, Walls};
use crate::hw::HwError;

/// The world's fixed time step, in nanoseconds.
const STEP_NANOS: u64 = 5_000_000;

/// The world's fixed time step.
pub const STEP: Duration = Duration::from_nanos(STEP_NANOS);

/// How far the car must back off from what it touched before a new touch counts as a
/// new collision, in metres.
pub const CONTACT_RELEASE_M: f64 = 0.01;

/// Bisection rounds that find where a blocked move touches (resolution: a step's travel
/// / 2¹⁰, well under a millimetre).
const BISECTION_ROUNDS: u32 = 10;

/// The last drive command and when it was given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DriveCommand {
    /// Left motor power, percent.
    pub left: f64,
    /// Right motor power, percent.
    pub right: f64,
    /// World time the command was given, seconds.
    pub at_s: f64,
}

/// The last steering command and when it was given.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SteeringCommand {
    /// Steering angle, degrees; positive is right.
    pub degrees: f64,
    /// World time the command was given, seconds.
    pub at_s: f64,
}

/// What happened in a simulated run; the app writes it at the end of a run, tests check
/// it (no collisions while avoiding obstacles, motors stopped at shutdown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// The seed of the run's noise.
    pub seed: u64,
    /// World time, seconds.
    pub time_s: f64,
    /// Steps simulated since the start.
    pub steps: u64,
    /// Collisions counted, one per contact episode.
    pub collisions: u64,
    /// Distance the rear-axle midpoint travelled, forward and backward, metres.
    pub distance_m: f64,
    /// Smallest clearance between the footprint and any wall or obstacle seen at the
    /// end of a step, metres (0 after a collision).
    pub min_clearance_m: f64,
    /// The car's pose now.
    pub pose: Pose,
    /// The car's speed now, m/s; negative is reverse.
    pub speed_m_s: f64,
    /// Battery terminal voltage now, without reading noise, volts.
    pub battery_v: f64,
    /// The last drive command, if any was given.
    pub last_drive: Option<DriveCommand>,
    /// The last steering command, if any was given.
    pub last_steering: Option<SteeringCommand>,
    /// Every change of the motors' power, oldest first (the last [`POWER_LOG_KEPT`]):
    /// when they started, changed and stopped. Safety tests read stop times from it.
    pub power_log: Vec<DriveCommand>,
    /// Older power changes, counted but not kept.
    pub power_log_dropped: u64,
}

/// Power changes a [`SimReport`] keeps: a few minutes of a car ramping at 50 Hz.
pub const POWER_LOG_KEPT: usize = 8192;

/// Points kept of the car's trail ([`Scene::trail`]): one minute at [`TRAIL_EVERY`].
pub const TRAIL_KEPT: usize = 600;

/// How often the trail takes a point while the car moves: every 20 steps, 100 ms.
const TRAIL_EVERY: u64 = 20;

/// Where the car is and where it has been, for a live view of the world (the observer
/// page draws it over the room, obstacles and line of the config).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scene {
    /// The car's pose now.
    pub pose: Pose,
    /// Its recent positions `[x_m, y_m]` to the millimetre, oldest first: one per
    /// 100 ms of world time while it moves, the last [`TRAIL_KEPT`].
    pub trail: Vec<[f64; 2]>,
    /// Forward speed, m/s.
    pub speed_m_s: f64,
    /// The battery's terminal voltage now.
    pub battery_v: f64,
    /// Collisions so far.
    pub collisions: u64,
    /// Distance driven, metres.
    pub distance_m: f64,
}

/// The whole simulated world. Usually reached through [`super::Sim`], which advances it
/// to the injected clock's time before each device call.
#[derive(Debug, Clone)]
pub struct World {
    seed: u64,
    walls: Walls,
    obstacles: Vec<Shape>,
    track: Track,
    line_width: f64,
    ranger_half: f64,
    ranger_noise: f64,
    ranger_min: f64,
    ranger_max: f64,
    line_adc: f64,
    floor_adc: f64,
    line_noise: f64,
    battery_noise: f64,
    battery: Pack,
    /// Fraction of the speed gap closed per step: 1 − e^(−STEP/τ).
    lag: f64,

    steps: u64,
    pose: CarPose,
    speed: f64,
    power: (f64, f64),
    steering_deg: f64,
    clearance: f64,
    min_clearance: f64,
    in_contact: bool,
    collisions: u64,
    distance: f64,
    last_drive: Option<DriveCommand>,
    last_steering: Option<SteeringCommand>,
    power_log: std::collections::VecDeque<DriveCommand>,
    power_log_dropped: u64,
    trail: std::collections::VecDeque<[f64; 2]>,

    ranger_rng: fastrand::Rng,
    line_rng: fastrand::Rng,
    battery_rng: fastrand::Rng,
}

/// An independent noise stream per sensor, so that reading one sensor more often does
/// not change another's noise.
fn stream(seed: u64, index: u64) -> fastrand::Rng {
    fastrand::Rng::with_seed(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Gaussian-ish noise with standard deviation 1: the Irwin–Hall sum of twelve uniforms,
/// bounded to ±6 and made of additions only, so it is bit-identical on every platform.
fn gauss(rng: &mut fastrand::Rng) -> f64 {
    (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0
}

impl World {
    /// A world at time zero, built from `cfg` as given. Check `cfg` first
    /// ([`SimConfig::check`]): an invalid config still builds, but the world may make
    /// little sense (a car that starts overlapping an obstacle moves freely until clear).
    pub fn new(cfg: &SimConfig) -> Self {
        let walls = cfg.room.walls();
        let obstacles: Vec<Shape> = cfg.obstacles.iter().map(|o| o.shape()).collect();
        let pose = cfg.start.car_pose();
        let step_s = STEP.as_secs_f64();
        let mut world = Self {
            seed: cfg.seed,
            walls,
            obstacles,
            track: cfg.line.track(),
            line_width: cfg.line.line_width_m,
            ranger_half: cfg.ranger.half_angle_deg.to_radians(),
            ranger_noise: cfg.ranger.noise_m,
            ranger_min: cfg.ranger.min_m,
            ranger_max: cfg.ranger.max_m,
            line_adc: cfg.grayscale.line_adc.into(),
            floor_adc: cfg.grayscale.floor_adc.into(),
            line_noise: cfg.grayscale.noise_adc,
            battery_noise: cfg.battery.noise_v,
            battery: Pack::new(&cfg.battery),
            lag: lag_per_step(step_s),
            steps: 0,
            pose,
            speed: 0.0,
            power: (0.0, 0.0),
            steering_deg: 0.0,
            clearance: 0.0,
            min_clearance: 0.0,
            in_contact: false,
            collisions: 0,
            distance: 0.0,
            last_drive: None,
            power_log: Default::default(),
            power_log_dropped: 0,
            trail: std::collections::VecDeque::with_capacity(TRAIL_KEPT),
            last_steering: None,
            ranger_rng: stream(cfg.seed, 1),
            line_rng: stream(cfg.seed, 2),
            battery_rng: stream(cfg.seed, 3),
        };
        world.clearance = world.clearance_at(pose);
        world.min_clearance = world.clearance;
        world
    }

    /// World time: steps simulated × [`STEP`].
    pub fn time(&self) -> Duration {
        Duration::from_nanos(self.steps.saturating_mul(STEP_NANOS))
    }

    fn time_s(&self) -> f64 {
        self.steps as f64 * STEP.as_secs_f64()
    }

    /// Steps the world until its time reaches `t` (time since the world started),
    /// rounded down to a whole step. An earlier `t` does nothing: time never goes back.
    /// The cost is linear in the steps taken: about a microsecond per step while the car
    /// moves (release build), far less at rest.
    pub fn advance_to(&mut self, t: Duration) {
        let target = t.as_nanos() / u128::from(STEP_NANOS);
        while u128::from(self.steps) < target {
            self.step();
        }
    }

    /// Sets the motors' power, percent, −100..=100 each; positive drives forward. The
    /// car's forward speed follows the mean of the two.
    ///
    /// # Errors
    /// [`HwError::OutOfRange`] naming `sim drive left` or `sim drive right` when a power
    /// is out of range or not a number; the previous command stays in force.
    pub fn set_power(&mut self, left: f64, right: f64) -> Result<(), HwError> {
        check("sim drive left", left, MAX_POWER, "percent")?;
        check("sim drive right", right, MAX_POWER, "percent")?;
        let command = DriveCommand {
            left,
            right,
            at_s: self.time_s(),
        };
        if self.power != (left, right) || self.last_drive.is_none() {
            if self.power_log.len() == POWER_LOG_KEPT {
                self.power_log.pop_front();
                self.power_log_dropped += 1;
            }
            self.power_log.push_back(command);
        }
        self.power = (left, right);
        self.last_drive = Some(command);
        Ok(())
    }

    /// Sets the steering angle, degrees, −30..=30; positive turns right.
    ///
    /// # Errors
    /// [`HwError::OutOfRange`] naming `sim steering` when the angle is out of range or not
    /// a number; the previous angle stays in force.
    pub fn set_steering(&mut self, degrees: f64) -> Result<(), HwError> {
        check("sim steering", degrees, MAX_STEERING_DEG, "degrees")?;
        self.steering_deg = degrees;
        self.last_steering = Some(SteeringCommand {
            degrees,
            at_s: self.time_s(),
        });
        Ok(())
    }

    /// The ranger's reading: distance to the nearest wall or obstacle inside its cone
    /// plus noise, metres; nearer than the minimum reads as the minimum, farther than
    /// the maximum reads as `None`.
    pub fn distance_m(&mut self) -> Option<f64> {
        let cone = Cone::new(self.pose.ranger(), self.pose.heading, self.ranger_half);
        let truth = self
            .obstacles
            .iter()
            .map(|o| o.cone_distance(&cone))
            .fold(self.walls.cone_distance(&cone), min_opt);
        // Draw the noise whatever the geometry, so the stream stays in step.
        let noise = gauss(&mut self.ranger_rng) * self.ranger_noise;
        let noisy = truth? + noise;
        (noisy <= self.ranger_max).then_some(noisy.max(self.ranger_min))
    }

    /// The grayscale sensors' raw readings (left, middle, right), ADC counts 0–4095:
    /// dark over the line, bright over the floor, blended over the line's edges.
    pub fn grayscale(&mut self) -> [u16; 3] {
        let half = self.line_width / 2.0;
        let blur = self.line_width / 4.0;
        self.pose.grayscale().map(|p| {
            let d = self.track.distance(p);
            let t = ((d - (half - blur)) / (2.0 * blur)).clamp(0.0, 1.0);
            let smooth = t * t * (3.0 - 2.0 * t);
            let raw = self.line_adc
                + (self.floor_adc - self.line_adc) * smooth
                + gauss(&mut self.line_rng) * self.line_noise;
            raw.round().clamp(0.0, 4095.0) as u16
        })
    }

    /// The battery monitor's reading: terminal voltage plus noise, volts.
    pub fn voltage(&mut self) -> f64 {
        self.battery.voltage(self.load()) + gauss(&mut self.battery_rng) * self.battery_noise
    }

    /// A report of the run so far.
    pub fn report(&self) -> SimReport {
        SimReport {
            seed: self.seed,
            time_s: self.time_s(),
            steps: self.steps,
            collisions: self.collisions,
            distance_m: self.distance,
            min_clearance_m: self.min_clearance.max(0.0),
            pose: Pose::from_car(self.pose),
            speed_m_s: self.speed,
            battery_v: self.battery.voltage(self.load()),
            last_drive: self.last_drive,
            last_steering: self.last_steering,
            power_log: self.power_log.iter().copied().collect(),
            power_log_dropped: self.power_log_dropped,
        }
    }

    /// Where the car is and where it has been.
    pub fn scene(&self) -> Scene {
        Scene {
            pose: Pose::from_car(self.pose),
            trail: self.trail.iter().copied().collect(),
            speed_m_s: self.speed,
            battery_v: self.battery.voltage(self.load()),
            collisions: self.collisions,
            distance_m: self.distance,
        }
    }

    /// Adds the car's position to the trail when it moved since the last point.
    fn mark_trail(&mut self) {
        // To the millimetre: what a view can show, in a third of the digits.
        let mm = |v: f64| (v * 1000.0).round() / 1000.0;
        let point = [mm(self.pose.pos.x), mm(self.pose.pos.y)];
        if self.trail.back() != Some(&point) {
            if self.trail.len() == TRAIL_KEPT {
                self.trail.pop_front();
            }
            self.trail.push_back(point);
        }
    }

    /// Mean motor load, 0–1.
    fn load(&self) -> f64 {
        (self.power.0.abs() + self.power.1.abs()) / (2.0 * MAX_POWER)
    }

    /// Clearance between the car at `pose` and the nearest wall or obstacle.
    fn clearance_at(&self, pose: CarPose) -> f64 {
        let footprint = pose.footprint();
        self.obstacles
            .iter()
            .map(|o| o.clearance(&footprint))
            .fold(self.walls.clearance(&footprint), f64::min)
    }

    fn step(&mut self) {
        let dt = STEP.as_secs_f64();
        self.speed = next_speed(self.speed, self.power.0, self.power.1, self.lag);
        self.battery.drain(self.load(), dt);
        self.steps += 1;
        if self.speed != 0.0 {
            self.drive(dt);
        }
        if self.steps % TRAIL_EVERY == 0 {
            self.mark_trail();
        }
    }

    /// Moves the car for `dt` at its speed, stopping it where it touches something.
    fn drive(&mut self, dt: f64) {
        let steering = self.steering_deg.to_radians();
        let full = self.pose.moved(self.speed, steering, dt);
        let full_clearance = self.clearance_at(full);
        // A car that started overlapping something (an invalid config) may move freely
        // until it is clear; otherwise a move that touches is blocked.
        let (pose, clearance) = if full_clearance > 0.0 || self.clearance <= 0.0 {
            (full, full_clearance)
        } else {
            self.collide(steering, dt)
        };
        self.distance += (pose.pos - self.pose.pos).len();
        self.pose = pose;
        self.clearance = clearance;
        self.min_clearance = self.min_clearance.min(clearance);
        if self.in_contact && clearance > CONTACT_RELEASE_M {
            self.in_contact = false;
        }
    }

    /// A blocked move: go as far as possible without touching, stop, count the contact.
    fn collide(&mut self, steering: f64, dt: f64) -> (CarPose, f64) {
        let (mut lo, mut hi) = (0.0, 1.0);
        let mut best = (self.pose, self.clearance);
        for _ in 0..BISECTION_ROUNDS {
            let mid = (lo + hi) / 2.0;
            let pose = self.pose.moved(self.speed, steering, dt * mid);
            let clearance = self.clearance_at(pose);
            if clearance > 0.0 {
                lo = mid;
                best = (pose, clearance);
            } else {
                hi = mid;
            }
        }
        self.speed = 0.0;
        if !self.in_contact {
            self.in_contact = true;
            self.collisions += 1;
            tracing::info!(
                collisions = self.collisions,
                x_m = best.0.pos.x,
                y_m = best.0.pos.y,
                time_s = self.time_s(),
                "sim: the car hit a wall or an obstacle"
            );
        }
        best
    }
}

/// Checks a command against `±limit`, naming the device.
fn check(device: &str, value: f64, limit: f64, unit: &str) -> Result<(), HwError> {
    if (-limit..=limit).contains(&value) {
        Ok(())
    } else {
        Err(HwError::OutOfRange {
            device: device.to_owned(),
            value,
            range: format!("-{limit}..={limit} {unit}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::sim::car::TOP_SPEED_M_S;
    use crate::hw::sim::config::Obstacle;

    fn empty_room() -> SimConfig {
        SimConfig {
            obstacles: Vec::new(),
            ..SimConfig::default()
        }
    }

    #[test]
    fn time_advances_in_whole_steps_and_never_back() {
        let mut w = World::new(&empty_room());
        w.advance_to(Duration::from_millis(12));
        assert_eq!(w.time(), Duration::from_millis(10));
        w.advance_to(Duration::from_millis(3));
        assert_eq!(w.report().steps, 2);
    }

    #[test]
    fn speed_lags_power_with_the_time_constant() {
        let mut w = World::new(&empty_room());
        w.set_power(100.0, 100.0).unwrap();
        w.advance_to(Duration::from_millis(100)); // one time constant
        let v = w.report().speed_m_s;
        let expected = TOP_SPEED_M_S * (1.0 - (-1.0_f64).exp());
        assert!((v - expected).abs() < 1e-9, "{v} vs {expected}");
        w.advance_to(Duration::from_millis(1000));
        assert!((w.report().speed_m_s - TOP_SPEED_M_S).abs() < 1e-4);
        // Mean of the two motors.
        w.set_power(50.0, 0.0).unwrap();
        w.advance_to(Duration::from_secs(3));
        assert!((w.report().speed_m_s - TOP_SPEED_M_S / 4.0).abs() < 1e-4);
    }

    /// The trail takes a point per 100 ms while the car moves, none at rest, and keeps
    /// the last [`TRAIL_KEPT`].
    #[test]
    fn the_trail_follows_the_car_and_is_bounded() {
        let mut w = World::new(&empty_room());
        w.advance_to(Duration::from_secs(1));
        assert_eq!(w.scene().trail.len(), 1, "the start, once");
        w.set_power(30.0, 30.0).unwrap();
        w.advance_to(Duration::from_secs(2));
        let scene = w.scene();
        assert_eq!(scene.trail.len(), 11);
        let last = scene.trail[scene.trail.len() - 1];
        assert!((last[0] - scene.pose.x_m).abs() <= 0.0005, "{last:?}");
        assert!((last[1] - scene.pose.y_m).abs() <= 0.0005, "{last:?}");
        assert!(scene.trail.windows(2).all(|p| p[1] != p[0]));
        w.set_steering(30.0).unwrap();
        w.advance_to(Duration::from_secs(120));
        assert_eq!(w.scene().trail.len(), TRAIL_KEPT);
    }

    #[test]
    fn car_comes_to_rest_and_idles_without_moving() {
        let mut w = World::new(&empty_room());
        w.set_power(40.0, 40.0).unwrap();
        w.advance_to(Duration::from_millis(500));
        w.set_power(0.0, 0.0).unwrap();
        w.advance_to(Duration::from_secs(2));
        let at_rest = w.report();
        assert_eq!(at_rest.speed_m_s, 0.0);
        w.advance_to(Duration::from_secs(10));
        assert_eq!(w.report().pose, at_rest.pose);
    }

    #[test]
    fn reversing_off_a_wall_ends_the_contact() {
        let mut cfg = empty_room();
        cfg.start = Pose {
            x_m: 3.5,
            y_m: 1.5,
            heading_deg: 0.0,
        };
        let mut w = World::new(&cfg);
        w.set_power(60.0, 60.0).unwrap();
        w.advance_to(Duration::from_secs(2));
        assert_eq!(w.report().collisions, 1);
        w.set_power(-60.0, -60.0).unwrap();
        w.advance_to(Duration::from_millis(2500));
        w.set_power(60.0, 60.0).unwrap();
        w.advance_to(Duration::from_secs(4));
        assert_eq!(w.report().collisions, 2);
    }

    #[test]
    fn an_obstacle_blocks_like_a_wall() {
        let mut cfg = empty_room();
        cfg.obstacles = vec![Obstacle::Box {
            x_m: 2.5,
            y_m: 0.5,
            size_x_m: 0.2,
            size_y_m: 0.6,
        }];
        let mut w = World::new(&cfg);
        w.set_power(50.0, 50.0).unwrap();
        w.advance_to(Duration::from_secs(5));
        let r = w.report();
        assert_eq!(r.collisions, 1);
        // Stopped with the bumper at the box's west face (x = 2.4).
        let bumper = r.pose.x_m + super::super::car::FRONT_M;
        assert!((2.39..2.4).contains(&bumper), "{bumper}");
        assert!(r.min_clearance_m < 0.001);
    }
}
