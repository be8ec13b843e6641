//! Obstacle avoidance: cruise while the way is clear, turn away when the ranger sees
//! something within `avoid_distance_m`, back up (steering the other way) within
//! `stop_distance_m`.
//!
//! It keeps turning the same way for as long as the obstacle stays close, and picks the
//! other way for the next obstacle, so the car does not dither between left and right.
//! In `line_following` mode it only guards: within `avoid_distance_m` it sends an urgent
//! stop that overrides the line follower.

use super::Behaviour;
use crate::bus::{Bus, Command, Range, Source, Topic};
use crate::config::{BehaviourConfig, Mode};

/// The behaviour's state machine.
#[derive(Debug, Clone)]
pub struct ObstacleAvoidance {
    cfg: BehaviourConfig,
    max_steer: f64,
    /// +1 turns right, −1 left.
    turn: f64,
    avoiding: bool,
}

impl ObstacleAvoidance {
    /// A behaviour steering at most `max_steer` degrees.
    pub fn new(cfg: BehaviourConfig, max_steer: f64) -> Self {
        Self {
            cfg,
            max_steer,
            turn: 1.0,
            avoiding: false,
        }
    }

    /// The command for a ranger reading, if this behaviour has one.
    pub fn on_range(&mut self, r: &Range) -> Option<Command> {
        let d = r.distance_m.unwrap_or(f64::INFINITY);
        let near = d <= self.cfg.avoid_distance_m;
        if near && !self.avoiding {
            self.turn = -self.turn;
        }
        self.avoiding = near;
        let cruise = self.cfg.cruise_power;
        let (power, steer, urgent) = match self.cfg.mode {
            Mode::LineFollowing if near => (0.0, 0.0, true),
            Mode::LineFollowing => return None,
            Mode::ObstacleAvoidance if d <= self.cfg.stop_distance_m => {
                (-0.6 * cruise, -self.turn * self.max_steer, false)
            }
            Mode::ObstacleAvoidance if near => (0.6 * cruise, self.turn * self.max_steer, false),
            Mode::ObstacleAvoidance => (cruise, 0.0, false),
        };
        Some(Command {
            t_us: r.t_us,
            source: Source::ObstacleAvoidance,
            power,
            steer_deg: steer,
            urgent,
        })
    }
}

impl Behaviour for ObstacleAvoidance {
    type Input = Range;
    const NAME: &'static str = "obstacle_avoidance";
    fn topic(bus: &Bus) -> &Topic<Range> {
        &bus.range
    }
    fn on_input(&mut self, input: &Range) -> Option<Command> {
        self.on_range(input)
    }
    fn retune(&mut self, cfg: &BehaviourConfig) {
        self.cfg = BehaviourConfig {
            mode: self.cfg.mode,
            ..*cfg
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: Mode) -> BehaviourConfig {
        BehaviourConfig {
            mode,
            cruise_power: 40.0,
            avoid_distance_m: 0.5,
            stop_distance_m: 0.2,
            line_threshold: 800,
        }
    }

    fn at(d: Option<f64>) -> Range {
        Range {
            t_us: 7,
            distance_m: d,
        }
    }

    #[test]
    fn retuned_thresholds_apply_and_the_mode_stays() {
        let mut oa = ObstacleAvoidance::new(cfg(Mode::ObstacleAvoidance), 30.0);
        assert_eq!(
            oa.on_range(&at(Some(0.6))).unwrap().power,
            40.0,
            "clear at 0.6 m"
        );
        let mut wider = cfg(Mode::LineFollowing);
        wider.avoid_distance_m = 0.8;
        wider.cruise_power = 20.0;
        oa.retune(&wider);
        let c = oa.on_range(&at(Some(0.6))).unwrap();
        assert_eq!(
            (c.power, c.urgent),
            (0.6 * 20.0, false),
            "avoids, still as itself"
        );
    }

    #[test]
    fn cruises_turns_and_backs_up() {
        let mut oa = ObstacleAvoidance::new(cfg(Mode::ObstacleAvoidance), 30.0);
        let c = oa.on_range(&at(None)).unwrap();
        assert_eq!((c.power, c.steer_deg, c.t_us), (40.0, 0.0, 7));
        let turn = oa.on_range(&at(Some(0.4))).unwrap();
        assert!(turn.power > 0.0 && turn.steer_deg.abs() == 30.0);
        let back = oa.on_range(&at(Some(0.1))).unwrap();
        assert!(back.power < 0.0);
        assert_eq!(
            back.steer_deg, -turn.steer_deg,
            "backs up steering the other way"
        );
        // Same obstacle: same way; next obstacle: the other way.
        assert_eq!(
            oa.on_range(&at(Some(0.45))).unwrap().steer_deg,
            turn.steer_deg
        );
        oa.on_range(&at(Some(2.0)));
        assert_eq!(
            oa.on_range(&at(Some(0.45))).unwrap().steer_deg,
            -turn.steer_deg
        );
    }

    #[test]
    fn guards_in_line_following_mode() {
        let mut oa = ObstacleAvoidance::new(cfg(Mode::LineFollowing), 30.0);
        assert!(oa.on_range(&at(Some(2.0))).is_none());
        let c = oa.on_range(&at(Some(0.3))).unwrap();
        assert!(c.urgent && c.power == 0.0);
    }
}
