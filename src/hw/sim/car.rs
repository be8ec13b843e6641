//! The PiCar-X as the simulation sees it: dimensions, limits, and its motion.
//!
//! The car is a bicycle model with front (Ackermann) steering. Its pose is the midpoint
//! of the rear axle and the heading of the body. Seen from above, the footprint is a
//! rectangle [`BODY_LENGTH_M`] × [`BODY_WIDTH_M`] that reaches [`REAR_OVERHANG_M`] behind
//! the rear axle and [`FRONT_M`] ahead of it (bumper and ranger included); wheels and
//! mirrors do not stick out. The ranger sits at the middle of the front edge, the three
//! grayscale sensors [`GRAYSCALE_AHEAD_M`] ahead of the rear axle, [`GRAYSCALE_SPACING_M`]
//! apart. A positive steering angle turns right (clockwise seen from above), as on the
//! real servo.

use super::geometry::{Quad, V2};

/// Distance between the front and rear axles, in metres.
pub const WHEELBASE_M: f64 = 0.095;
/// Length of the footprint, bumper to tail, in metres.
pub const BODY_LENGTH_M: f64 = 0.26;
/// Width of the footprint, in metres.
pub const BODY_WIDTH_M: f64 = 0.16;
/// How far the footprint reaches behind the rear axle, in metres.
pub const REAR_OVERHANG_M: f64 = 0.06;
/// How far the footprint (and the ranger at its front edge) reaches ahead of the rear
/// axle, in metres.
pub const FRONT_M: f64 = BODY_LENGTH_M - REAR_OVERHANG_M;
/// The steering servo's limit either side, in degrees.
pub const MAX_STEERING_DEG: f64 = 30.0;
/// The motors' power limit either way, in percent.
pub const MAX_POWER: f64 = 100.0;
/// Forward speed at 100 % power on both motors, in metres per second.
pub const TOP_SPEED_M_S: f64 = 0.5;
/// Time constant of the first-order lag from power to speed, in seconds.
pub const SPEED_TIME_CONSTANT_S: f64 = 0.1;
/// How far the grayscale sensors sit ahead of the rear axle (4 cm ahead of the front
/// axle), in metres.
pub const GRAYSCALE_AHEAD_M: f64 = WHEELBASE_M + 0.04;
/// Distance between neighbouring grayscale sensors, in metres.
pub const GRAYSCALE_SPACING_M: f64 = 0.02;

/// Where the car is: rear-axle midpoint and heading (radians, counter-clockwise from +x).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CarPose {
    pub(crate) pos: V2,
    pub(crate) heading: f64,
}

impl CarPose {
    /// A point given in the car's frame (x forward, y left) in the world's frame.
    fn to_world(self, forward: f64, left: f64) -> V2 {
        let f = V2::from_angle(self.heading);
        let l = V2::new(-f.y, f.x);
        self.pos + f * forward + l * left
    }

    /// The footprint's corners, counter-clockwise.
    pub(crate) fn footprint(self) -> Quad {
        let half = BODY_WIDTH_M / 2.0;
        [
            self.to_world(-REAR_OVERHANG_M, -half),
            self.to_world(FRONT_M, -half),
            self.to_world(FRONT_M, half),
            self.to_world(-REAR_OVERHANG_M, half),
        ]
    }

    /// Where the ranger sits: the middle of the front edge.
    pub(crate) fn ranger(self) -> V2 {
        self.to_world(FRONT_M, 0.0)
    }

    /// Where the grayscale sensors sit: left, middle, right.
    pub(crate) fn grayscale(self) -> [V2; 3] {
        [
            self.to_world(GRAYSCALE_AHEAD_M, GRAYSCALE_SPACING_M),
            self.to_world(GRAYSCALE_AHEAD_M, 0.0),
            self.to_world(GRAYSCALE_AHEAD_M, -GRAYSCALE_SPACING_M),
        ]
    }

    /// The pose after driving `dt` seconds at `speed` m/s (negative: reverse) with the
    /// front wheels at `steering` radians (positive: right). Midpoint integration of the
    /// bicycle model; the heading is kept in [−π, π).
    pub(crate) fn moved(self, speed: f64, steering: f64, dt: f64) -> Self {
        let turn_rate = -speed * steering.tan() / WHEELBASE_M;
        let mid = self.heading + turn_rate * dt / 2.0;
        Self {
            pos: self.pos + V2::from_angle(mid) * (speed * dt),
            heading: wrap_angle(self.heading + turn_rate * dt),
        }
    }
}

/// Below this speed (m/s) with zero power commanded, the car is at rest: the lag's
/// exponential tail is cut so that an idle world does no geometry.
const REST_SPEED_M_S: f64 = 1e-4;

/// The fraction of the gap between speed and commanded speed closed in a step of `dt`
/// seconds: 1 − e^(−dt/τ) for the [`SPEED_TIME_CONSTANT_S`] lag.
pub(crate) fn lag_per_step(dt: f64) -> f64 {
    1.0 - (-dt / SPEED_TIME_CONSTANT_S).exp()
}

/// The speed (m/s) one step after `speed` with the motors at `left`/`right` percent:
/// it closes `lag` (see [`lag_per_step`]) of the gap to the power's speed (the mean of
/// the two motors' at [`TOP_SPEED_M_S`]), and with no power it comes to rest once slow.
/// The simulated world and `nevil replay --plot`'s dead reckoning both step with it.
pub(crate) fn next_speed(speed: f64, left: f64, right: f64, lag: f64) -> f64 {
    let target = (left + right) / (2.0 * MAX_POWER) * TOP_SPEED_M_S;
    let next = speed + (target - speed) * lag;
    if target == 0.0 && next.abs() < REST_SPEED_M_S {
        0.0
    } else {
        next
    }
}

/// `a` wrapped into [−π, π).
pub(crate) fn wrap_angle(a: f64) -> f64 {
    use std::f64::consts::PI;
    (a + PI).rem_euclid(2.0 * PI) - PI
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-9;

    fn origin() -> CarPose {
        CarPose {
            pos: V2::new(0.0, 0.0),
            heading: 0.0,
        }
    }

    #[test]
    fn footprint_and_sensors_sit_where_documented() {
        let fp = origin().footprint();
        assert!((fp[0].x + REAR_OVERHANG_M).abs() < EPS && (fp[0].y + 0.08).abs() < EPS);
        assert!((fp[2].x - 0.20).abs() < EPS && (fp[2].y - 0.08).abs() < EPS);
        assert!((origin().ranger().x - 0.20).abs() < EPS);
        let [l, m, r] = origin().grayscale();
        assert!(l.y > m.y && m.y > r.y && (l.y - r.y - 0.04).abs() < EPS);
    }

    #[test]
    fn positive_steering_turns_clockwise() {
        let mut p = origin();
        for _ in 0..100 {
            p = p.moved(0.3, 20_f64.to_radians(), 0.005);
        }
        assert!(p.heading < 0.0, "heading {}", p.heading);
        assert!(p.pos.y < 0.0 && p.pos.x > 0.0);
    }

    #[test]
    fn full_lock_circle_has_the_bicycle_radius() {
        // Drive one full circle at 30°: back where we started.
        let steer = 30_f64.to_radians();
        let radius = WHEELBASE_M / steer.tan();
        let circumference = 2.0 * std::f64::consts::PI * radius;
        let dt = 0.001;
        let steps = (circumference / (0.2 * dt)).round() as usize;
        let mut p = origin();
        for _ in 0..steps {
            p = p.moved(0.2, steer, dt);
        }
        assert!(p.pos.len() < 1e-3, "{:?}", p.pos);
    }

    #[test]
    fn wrap_angle_stays_in_range() {
        assert!((wrap_angle(3.0 * std::f64::consts::PI) + std::f64::consts::PI).abs() < EPS);
        assert!((wrap_angle(-0.5) + 0.5).abs() < EPS);
    }
}
