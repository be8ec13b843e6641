//! The motion controller: turns behaviour commands into actuator outputs on a fixed
//! control loop, within the configured limits.
//!
//! Each tick it picks the command to follow — a fresh urgent command (an obstacle
//! override) before a fresh normal one, and none (stop) when all are stale — clamps it
//! to `max_power` / `max_steer_deg`, and ramps the power by at most `ramp_pct_per_s`
//! per second towards it. An engaged e-stop forces power 0 at once (no ramp) until it
//! is released. It starts, and so restarts, from standstill.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

use crate::bus::{Bus, Command, Delivery, Drive, EStop, Micros};
use crate::config::reload::LiveConfig;
use crate::config::MotionConfig;
use crate::core::clock::Clock;
use crate::core::jitter::Jitter;
use crate::core::ticker::{self, Timer};
use crate::robot::safety::{DeadMan, EStopLatch};

/// A command older than this is not followed.
pub const COMMAND_TTL: Micros = 500_000;
/// An urgent command older than this no longer overrides.
pub const URGENT_TTL: Micros = 250_000;

/// The controller's state machine.
#[derive(Debug, Clone)]
pub struct Motion {
    cfg: MotionConfig,
    power: f64,
    normal: Option<Command>,
    urgent: Option<Command>,
    estop: bool,
    commands_seen: u64,
    estops_seen: u64,
}

impl Motion {
    /// A controller at standstill.
    pub fn new(cfg: MotionConfig) -> Self {
        Self {
            cfg,
            power: 0.0,
            normal: None,
            urgent: None,
            estop: false,
            commands_seen: 0,
            estops_seen: 0,
        }
    }

    /// A controller at standstill whose e-stop starts `engaged` (as the latch holds it
    /// when this incarnation starts); not counted as an input.
    pub fn starting(cfg: MotionConfig, engaged: bool) -> Self {
        Self {
            estop: engaged,
            ..Self::new(cfg)
        }
    }

    /// Takes a behaviour's command.
    pub fn on_command(&mut self, c: Command) {
        self.commands_seen += 1;
        if c.urgent {
            self.urgent = Some(c);
        } else {
            self.normal = Some(c);
        }
    }

    /// Takes an e-stop change; engaging it stops the motors at the next tick.
    pub fn on_estop(&mut self, e: &EStop) {
        self.estops_seen += 1;
        self.estop = e.engaged;
        if e.engaged {
            self.power = 0.0;
        }
    }

    /// Takes the limits a reload put in force: `max_power` and `ramp_pct_per_s` (the
    /// loop rate and steering range need a restart). The power now is kept: the ramp
    /// takes it to a lower limit at the next ticks.
    pub fn retune(&mut self, cfg: &MotionConfig) {
        self.cfg.max_power = cfg.max_power;
        self.cfg.ramp_pct_per_s = cfg.ramp_pct_per_s;
    }

    /// Commands and e-stop changes taken so far.
    pub fn inputs_seen(&self) -> (u64, u64) {
        (self.commands_seen, self.estops_seen)
    }

    /// One control loop tick at `t_us`: the output to the actuators.
    pub fn step(&mut self, t_us: Micros) -> Drive {
        let fresh = |c: &Option<Command>, ttl| c.filter(|c| t_us.saturating_sub(c.t_us) <= ttl);
        let wanted = fresh(&self.urgent, URGENT_TTL).or(fresh(&self.normal, COMMAND_TTL));
        let (target, steer) = match wanted {
            Some(c) if !self.estop => (
                c.power.clamp(-self.cfg.max_power, self.cfg.max_power),
                c.steer_deg
                    .clamp(-self.cfg.max_steer_deg, self.cfg.max_steer_deg),
            ),
            _ => (0.0, 0.0),
        };
        if self.estop {
            self.power = 0.0;
        } else {
            let max_step = self.cfg.ramp_pct_per_s / self.cfg.loop_hz;
            self.power += (target - self.power).clamp(-max_step, max_step);
        }
        Drive {
            t_us,
            left: self.power,
            right: self.power,
            steer_deg: steer,
            commands_seen: self.commands_seen,
            estops_seen: self.estops_seen,
        }
    }
}

/// Messages of the [`MotionActor`].
pub enum MotionMsg {
    /// A control loop tick, with the instant it was due.
    Tick(Instant),
    /// A behaviour command.
    Command(Delivery<Command>),
    /// An e-stop change.
    EStop(Delivery<EStop>),
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// The motion controller actor.
#[derive(Clone)]
pub struct MotionActor {
    /// Limits and loop rate.
    pub cfg: MotionConfig,
    /// The bus.
    pub bus: Bus,
    /// The run clock.
    pub clock: Clock,
    /// Where tick lateness is recorded (shared with the run report and metrics).
    pub jitter: Arc<Jitter>,
    /// What drives the loop (precise for real runs; tokio for paused-clock tests).
    pub timer: Timer,
    /// The e-stop as latched: where a (re)started controller starts from.
    pub latch: EStopLatch,
    /// The dead-man at the motors, which this controller's stop halts.
    pub deadman: DeadMan,
    /// The configuration in force: a (re)started controller starts with its limits,
    /// and takes a reload's at its next tick.
    pub live: LiveConfig,
}

/// State of the [`MotionActor`].
pub struct MotionState {
    motion: Motion,
    live: LiveConfig,
}

impl Actor for MotionActor {
    type Msg = MotionMsg;
    type State = MotionState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<MotionMsg>,
        _: (),
    ) -> Result<MotionState, ActorProcessingErr> {
        let mut motion = Motion::starting(self.cfg, self.latch.engaged());
        let mut live = self.live.clone();
        // A reload since the tree started: this incarnation starts under it.
        if let Some(config) = live.changed() {
            motion.retune(&config.motion);
        }
        // A (re)started controller first tells the actuators to stand still.
        self.bus.drive.publish(motion.step(self.clock.now_us()));
        self.bus
            .command
            .subscribe("motion", myself.clone(), MotionMsg::Command);
        self.bus
            .estop
            .subscribe("motion", myself.clone(), MotionMsg::EStop);
        ticker::spawn(
            self.timer,
            "motion",
            self.cfg.period(),
            myself,
            MotionMsg::Tick,
        )?;
        Ok(MotionState { motion, live })
    }

    async fn handle(
        &self,
        _: ActorRef<MotionMsg>,
        msg: MotionMsg,
        state: &mut MotionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            MotionMsg::Tick(due) => {
                self.jitter
                    .record(Instant::now().saturating_duration_since(due));
                if let Some(config) = state.live.changed() {
                    state.motion.retune(&config.motion);
                }
                let out = state.motion.step(self.clock.now_us());
                self.bus.drive.publish(out);
            }
            MotionMsg::Command(c) => state.motion.on_command(c.into_inner()),
            MotionMsg::EStop(e) => {
                state.motion.on_estop(&e);
                if e.engaged {
                    // Do not wait for the next tick to stop.
                    self.bus
                        .drive
                        .publish(state.motion.step(self.clock.now_us()));
                }
            }
            MotionMsg::Noop => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<MotionMsg>,
        _: &mut MotionState,
    ) -> Result<(), ActorProcessingErr> {
        // Its last output must not keep the car going while nobody controls it.
        self.deadman.halt("motion controller stopped");
        Ok(())
    }
}

/// How long the controller may stay silent before the watchdog calls it dead: three
/// loop periods.
pub fn silence_limit(cfg: &MotionConfig) -> Duration {
    cfg.period() * 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Source;

    fn cfg() -> MotionConfig {
        MotionConfig {
            loop_hz: 50.0,
            max_power: 60.0,
            ramp_pct_per_s: 300.0,
            max_steer_deg: 30.0,
        }
    }

    fn cmd(t_us: Micros, power: f64, steer_deg: f64, urgent: bool) -> Command {
        Command {
            t_us,
            source: Source::ObstacleAvoidance,
            power,
            steer_deg,
            urgent,
        }
    }

    #[test]
    fn starts_stopped_and_ramps_within_limits() {
        let mut m = Motion::new(cfg());
        assert_eq!(m.step(0).left, 0.0);
        m.on_command(cmd(0, 100.0, 45.0, false));
        let d = m.step(20_000);
        assert_eq!(d.left, 6.0, "300 %/s at 50 Hz is 6 % per tick");
        assert_eq!(d.steer_deg, 30.0, "steering clamped");
        let mut last = d;
        for i in 2..20 {
            last = m.step(i * 20_000);
            m.on_command(cmd(i * 20_000, 100.0, 0.0, false));
        }
        assert_eq!(last.left, 60.0, "power clamped to max_power");
    }

    #[test]
    fn retuned_limits_take_the_power_down_by_the_new_ramp() {
        let mut m = Motion::new(cfg());
        for i in 0..20 {
            m.on_command(cmd(i * 20_000, 100.0, 0.0, false));
            m.step(i * 20_000);
        }
        assert_eq!(m.step(400_000).left, 60.0);
        let mut tighter = cfg();
        tighter.max_power = 40.0;
        tighter.ramp_pct_per_s = 500.0;
        tighter.loop_hz = 10.0;
        m.retune(&tighter);
        m.on_command(cmd(420_000, 100.0, 0.0, false));
        // 500 %/s at the unchanged 50 Hz is 10 % per tick: 60 → 50 → 40, and no lower.
        assert_eq!(m.step(420_000).left, 50.0);
        assert_eq!(m.step(440_000).left, 40.0);
        assert_eq!(m.step(460_000).left, 40.0);
    }

    #[test]
    fn stale_commands_stop_the_car() {
        let mut m = Motion::new(cfg());
        m.on_command(cmd(0, 30.0, 0.0, false));
        for i in 1..=10 {
            m.step(i * 20_000);
        }
        assert!(m.step(220_000).left > 0.0);
        let mut d = m.step(COMMAND_TTL + 1);
        for i in 0..20 {
            d = m.step(COMMAND_TTL + 1 + i * 20_000);
        }
        assert_eq!(d.left, 0.0);
    }

    #[test]
    fn urgent_overrides_while_fresh() {
        let mut m = Motion::new(cfg());
        m.on_command(cmd(0, 30.0, 0.0, false));
        m.on_command(cmd(0, 0.0, -10.0, true));
        assert_eq!(m.step(10_000).steer_deg, -10.0);
        m.on_command(cmd(URGENT_TTL, 30.0, 5.0, false));
        assert_eq!(m.step(URGENT_TTL + 1).steer_deg, 5.0);
    }

    #[test]
    fn starting_engaged_holds_zero_until_released() {
        let mut m = Motion::starting(cfg(), true);
        assert_eq!(m.inputs_seen(), (0, 0), "the latch is not an input");
        for i in 0..10 {
            m.on_command(cmd(i * 20_000, 50.0, 0.0, false));
            assert_eq!(m.step(i * 20_000).left, 0.0);
        }
        m.on_estop(&EStop {
            t_us: 200_000,
            engaged: false,
            reason: "cleared".into(),
        });
        m.on_command(cmd(200_000, 50.0, 0.0, false));
        assert!(m.step(220_000).left > 0.0);
    }

    #[test]
    fn estop_stops_at_once_and_holds() {
        let mut m = Motion::new(cfg());
        for i in 0..20 {
            m.on_command(cmd(i * 20_000, 50.0, 0.0, false));
            m.step(i * 20_000);
        }
        let stop = EStop {
            t_us: 400_000,
            engaged: true,
            reason: "test".into(),
        };
        m.on_estop(&stop);
        m.on_command(cmd(400_000, 50.0, 0.0, false));
        assert_eq!(m.step(400_000).left, 0.0);
        assert_eq!(m.step(420_000).left, 0.0);
        m.on_estop(&EStop {
            engaged: false,
            ..stop
        });
        assert!(m.step(440_000).left > 0.0);
    }
}
