//! Line following: steer towards the side of the grayscale sensor that sees the line.
//!
//! The middle sensor alone on the line: straight ahead. Left (or right) sensor on the
//! line: steer that way, harder when the middle sensor lost it. No sensor on the line:
//! keep the last turn, slower, to find it again.

use super::Behaviour;
use crate::bus::{Bus, Command, Line, Source, Topic};
use crate::config::BehaviourConfig;

/// The behaviour's state machine.
#[derive(Debug, Clone)]
pub struct LineFollower {
    cfg: BehaviourConfig,
    max_steer: f64,
    last_steer: f64,
}

impl LineFollower {
    /// A line follower steering at most `max_steer` degrees.
    pub fn new(cfg: BehaviourConfig, max_steer: f64) -> Self {
        Self {
            cfg,
            max_steer,
            last_steer: 0.0,
        }
    }

    /// The command for a grayscale reading.
    pub fn on_line(&mut self, l: &Line) -> Command {
        let dark = l.raw.map(|v| v < self.cfg.line_threshold);
        let full = self.max_steer;
        let (steer, power) = match dark {
            [false, true, false] | [true, true, true] => (0.0, 1.0),
            [true, true, false] => (-full / 2.0, 0.9),
            [false, true, true] => (full / 2.0, 0.9),
            [true, false, false] => (-full, 0.7),
            [false, false, true] => (full, 0.7),
            // Lost (or ambiguous): keep turning the way we last turned, slowly.
            _ => (self.last_steer.signum() * full, 0.5),
        };
        self.last_steer = steer;
        Command {
            t_us: l.t_us,
            source: Source::LineFollower,
            power: power * self.cfg.cruise_power,
            steer_deg: steer,
            urgent: false,
        }
    }
}

impl Behaviour for LineFollower {
    type Input = Line;
    const NAME: &'static str = "line_follower";
    fn topic(bus: &Bus) -> &Topic<Line> {
        &bus.line
    }
    fn on_input(&mut self, input: &Line) -> Option<Command> {
        Some(self.on_line(input))
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
    use crate::config::Mode;

    fn lf() -> LineFollower {
        let cfg = BehaviourConfig {
            mode: Mode::LineFollowing,
            cruise_power: 40.0,
            avoid_distance_m: 0.5,
            stop_distance_m: 0.2,
            line_threshold: 800,
        };
        LineFollower::new(cfg, 30.0)
    }

    fn line(raw: [u16; 3]) -> Line {
        Line { t_us: 1, raw }
    }

    #[test]
    fn steers_towards_the_line() {
        let mut f = lf();
        assert_eq!(f.on_line(&line([1500, 300, 1500])).steer_deg, 0.0);
        assert!(
            f.on_line(&line([300, 1500, 1500])).steer_deg < 0.0,
            "line on the left"
        );
        assert!(
            f.on_line(&line([1500, 1500, 300])).steer_deg > 0.0,
            "line on the right"
        );
    }

    #[test]
    fn searches_the_way_it_last_turned() {
        let mut f = lf();
        f.on_line(&line([1500, 1500, 300]));
        let lost = f.on_line(&line([1500, 1500, 1500]));
        assert_eq!(lost.steer_deg, 30.0);
        assert!(lost.power < 40.0);
    }
}
