//! Where the car went, as far as its motor commands say: the recorded outputs of the
//! motion controller integrated through the simulator's own car model.
//!
//! A recording holds no pose. [`DeadReckoning`] steps the car as the simulated
//! [`World`](crate::hw::sim::World) does — the same fixed step, the same speed lag
//! ([`next_speed`]) and the same bicycle-model arc ([`CarPose::moved`]) — but with no walls
//! or obstacles: the same commands give the simulator's path bit for bit until the car
//! touches something, where this one drives on. On a real robot it is an estimate (wheel
//! slip, battery sag and the servo's lag are not in the model).

use crate::bus::{Drive, Micros};
use crate::hw::sim::car::{lag_per_step, next_speed, CarPose, MAX_POWER, MAX_STEERING_DEG};
use crate::hw::sim::{Pose, STEP};

/// Steps integrated between two motor commands at most (one minute): a longer silence
/// is skipped (the motors' dead-man stops them far sooner), so a recording with absurd
/// timestamps costs bounded work per record.
const MAX_GAP_STEPS: u64 = 60_000_000_000 / STEP_NANOS;

const STEP_NANOS: u64 = STEP.as_nanos() as u64;

/// The car's pose integrated from motor commands (see the module docs).
#[derive(Debug, Clone)]
pub struct DeadReckoning {
    pose: CarPose,
    speed: f64,
    power: (f64, f64),
    steering_deg: f64,
    steps: u64,
    lag: f64,
}

impl DeadReckoning {
    /// A car at rest at `start` at time zero (the run's start).
    pub fn new(start: Pose) -> Self {
        Self {
            pose: start.car_pose(),
            speed: 0.0,
            power: (0.0, 0.0),
            steering_deg: 0.0,
            steps: 0,
            lag: lag_per_step(STEP.as_secs_f64()),
        }
    }

    /// The pose now.
    pub fn pose(&self) -> Pose {
        Pose::from_car(self.pose)
    }

    /// Steps the car to `t_us` (rounded down to a whole step, as the world does); an
    /// earlier time does nothing.
    pub fn advance_to(&mut self, t_us: Micros) {
        let target = t_us.saturating_mul(1000) / STEP_NANOS;
        if target <= self.steps {
            return;
        }
        let at_rest = self.speed == 0.0 && self.power == (0.0, 0.0);
        if at_rest || target - self.steps > MAX_GAP_STEPS {
            self.steps = target;
            return;
        }
        let dt = STEP.as_secs_f64();
        while self.steps < target {
            self.speed = next_speed(self.speed, self.power.0, self.power.1, self.lag);
            self.steps += 1;
            if self.speed != 0.0 {
                self.pose = self
                    .pose
                    .moved(self.speed, self.steering_deg.to_radians(), dt);
            }
        }
    }

    /// Takes the motion controller's output `d`: the car moves on to its time, then the
    /// motors and the steering take its values. A value the simulator would refuse (out
    /// of range, not a number) leaves the previous one in force, as there.
    pub fn drive(&mut self, d: &Drive) {
        self.advance_to(d.t_us);
        let ok = |v: f64, limit: f64| (-limit..=limit).contains(&v);
        if ok(d.left, MAX_POWER) && ok(d.right, MAX_POWER) {
            self.power = (d.left, d.right);
        }
        if ok(d.steer_deg, MAX_STEERING_DEG) {
            self.steering_deg = d.steer_deg;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hw::sim::{SimConfig, World};

    fn drive(t_ms: u64, left: f64, right: f64, steer_deg: f64) -> Drive {
        Drive {
            t_us: t_ms * 1000,
            left,
            right,
            steer_deg,
            commands_seen: 0,
            estops_seen: 0,
        }
    }

    /// The same commands through the simulator's world (where nothing is in the way)
    /// and through the dead reckoning: the same path, bit for bit.
    #[test]
    fn follows_the_simulated_world_exactly_when_nothing_is_hit() {
        let cfg = SimConfig {
            obstacles: Vec::new(),
            ..SimConfig::default()
        };
        let mut world = World::new(&cfg);
        let mut dr = DeadReckoning::new(cfg.start);
        let mut commands = Vec::new();
        // Ramp up, curve left, straighten, reverse a little, stop: 20 ms apart.
        for i in 0..300u64 {
            let t = 3 + i * 20;
            let (power, steer) = match i {
                0..=49 => (i as f64, 0.0),
                50..=149 => (40.0, -25.0),
                150..=199 => (35.0, 5.0),
                200..=249 => (-20.0, 0.0),
                _ => (0.0, 0.0),
            };
            commands.push(drive(t, power, power - 1.0, steer));
        }
        for d in &commands {
            world.advance_to(Duration::from_micros(d.t_us));
            world.set_power(d.left, d.right).unwrap();
            world.set_steering(d.steer_deg).unwrap();
            dr.drive(d);
        }
        world.advance_to(Duration::from_secs(8));
        dr.advance_to(8_000_000);
        let report = world.report();
        assert_eq!(
            report.collisions, 0,
            "the test drive must not touch anything"
        );
        assert!(report.distance_m > 0.5, "{report:?}");
        assert_eq!(dr.pose(), report.pose);
    }

    #[test]
    fn refused_values_keep_the_previous_command_and_time_never_goes_back() {
        let mut dr = DeadReckoning::new(SimConfig::default().start);
        dr.drive(&drive(0, 50.0, 50.0, 0.0));
        dr.drive(&drive(1000, f64::NAN, 500.0, 90.0));
        dr.advance_to(2_000_000);
        let there = dr.pose();
        assert!(
            there.x_m > SimConfig::default().start.x_m + 0.3,
            "{there:?}"
        );
        // Straight on: the refused steering did not take.
        assert!((there.heading_deg).abs() < 1e-9, "{there:?}");
        dr.advance_to(1000);
        assert_eq!(dr.pose(), there);
    }

    #[test]
    fn an_absurd_gap_costs_nothing_and_moves_nothing_while_at_rest() {
        let start = SimConfig::default().start;
        let mut dr = DeadReckoning::new(start);
        dr.advance_to(u64::MAX);
        assert_eq!(dr.pose(), start);
    }
}
