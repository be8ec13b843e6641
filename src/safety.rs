//! The safety watchdog: stops the motors when the robot can no longer drive safely.
//!
//! It engages the e-stop (published on the bus; the motors driver stops at once and the
//! motion controller holds zero) when:
//! - a watched sensor is **stale**: no reading for `stale_periods` of its sampling
//!   periods (1.5 by default, so the motors stop within two periods of the sensor going
//!   silent, given `check_hz` at least the sensor's rate);
//! - the **battery is low**: below `battery_low_v`;
//! - the **controller is silent**: no motion output for three loop periods (it crashed,
//!   hangs, or is restarting);
//! - the **host is overheating**: the system monitor rates its temperature critical (a
//!   Pi that hot throttles its CPU, and the control loop with it). It is released once
//!   the monitor rates it below critical again, past its hysteresis band.
//!
//! It releases the e-stop when every condition has cleared. Each change is logged and
//! kept in an [`EStopLog`] for the run report. The pure part is [`Watch`].

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use tokio::time::Instant;

use crate::bus::{self, Bus, Clock, Delivery, EStop};
use crate::config::Config;
use crate::drill::{Ballast, DrillMsg};
use crate::services::system_monitor::Level;
use crate::ticker::{self, Timer};

/// One engage or release of the e-stop, for the run report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EStopEvent {
    /// Seconds since start.
    pub at_s: f64,
    /// Engaged or released.
    pub engaged: bool,
    /// Why.
    pub reason: String,
}

/// Every e-stop change of a run, shared by the watchdog's incarnations.
#[derive(Debug, Clone, Default)]
pub struct EStopLog(Arc<Mutex<Vec<EStopEvent>>>);

impl EStopLog {
    fn push(&self, e: EStopEvent) {
        metrics::gauge!(crate::telemetry::ESTOP).set(if e.engaged { 1.0 } else { 0.0 });
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(e);
    }

    /// The latest change; its `engaged` says whether the e-stop holds now.
    pub fn latest(&self) -> Option<EStopEvent> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
    }

    /// The changes so far.
    pub fn events(&self) -> Vec<EStopEvent> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What the watchdog watches, when each was last heard of, and the limits.
#[derive(Debug, Clone)]
pub struct Watch {
    sensors: Vec<(String, Duration, Instant)>,
    controller: (Duration, Instant),
    battery_low_v: f64,
    battery_v: Option<f64>,
    /// The host's temperature level and reading, from the system monitor.
    host_temperature: (Level, Option<f64>),
}

impl Watch {
    /// Watches `sensors` (name, stale limit) and the controller (silence limit), all as
    /// if heard of at `now`.
    pub fn new(
        sensors: Vec<(String, Duration)>,
        controller: Duration,
        battery_low_v: f64,
        now: Instant,
    ) -> Self {
        Self {
            sensors: sensors.into_iter().map(|(n, d)| (n, d, now)).collect(),
            controller: (controller, now),
            battery_low_v,
            battery_v: None,
            host_temperature: (Level::Ok, None),
        }
    }

    /// A reading of sensor `name` arrived at `now`.
    pub fn heard(&mut self, name: &str, now: Instant) {
        if let Some(s) = self.sensors.iter_mut().find(|s| s.0 == name) {
            s.2 = now;
        }
    }

    /// A battery reading.
    pub fn battery(&mut self, volts: f64) {
        self.battery_v = Some(volts);
    }

    /// The system monitor's latest rating of the host.
    pub fn host(&mut self, health: &bus::HostHealth) {
        self.host_temperature = (health.levels.temperature, health.temperature_c);
    }

    /// The controller published an output at `now`.
    pub fn controller_heard(&mut self, now: Instant) {
        self.controller.1 = now;
    }

    /// Why the motors must stop at `now`, or `None` when all is well.
    pub fn verdict(&self, now: Instant) -> Option<String> {
        let mut reasons: Vec<String> = self
            .sensors
            .iter()
            .filter(|(_, limit, last)| now.saturating_duration_since(*last) > *limit)
            .map(|(name, _, _)| format!("stale {name}"))
            .collect();
        if self.battery_v.is_some_and(|v| v < self.battery_low_v) {
            reasons.push("battery low".into());
        }
        if now.saturating_duration_since(self.controller.1) > self.controller.0 {
            reasons.push("controller silent".into());
        }
        if let (Level::Critical, celsius) = self.host_temperature {
            reasons.push(match celsius {
                Some(c) => format!("host temperature critical ({c:.1} °C)"),
                None => "host temperature critical".into(),
            });
        }
        (!reasons.is_empty()).then(|| reasons.join(", "))
    }
}

/// Messages of the [`Watchdog`].
pub enum WatchdogMsg {
    /// Time to check.
    Check,
    /// A ranger reading.
    Range(Delivery<bus::Range>),
    /// A grayscale reading.
    Line(Delivery<bus::Line>),
    /// A battery reading.
    Battery(Delivery<bus::Battery>),
    /// A motion controller output (its heartbeat).
    Drive(Delivery<bus::Drive>),
    /// The system monitor's rating of the host.
    Host(Delivery<bus::HostHealth>),
    /// A fault drill.
    Drill(DrillMsg),
}

crate::drill_variant!(WatchdogMsg);

/// The safety watchdog actor.
#[derive(Clone)]
pub struct Watchdog {
    /// Sensors watched, with their stale limits.
    pub sensors: Vec<(String, Duration)>,
    /// How long the controller may be silent.
    pub controller_limit: Duration,
    /// Battery threshold in volts.
    pub battery_low_v: f64,
    /// Check period.
    pub check_period: Duration,
    /// The bus.
    pub bus: Bus,
    /// The run clock.
    pub clock: Clock,
    /// Where e-stop changes are kept.
    pub log: EStopLog,
}

impl Watchdog {
    /// The watchdog `config` asks for.
    pub fn from_config(config: &Config, bus: Bus, clock: Clock, log: EStopLog) -> Self {
        let sensors = config
            .safety
            .watch
            .iter()
            .filter_map(|name| {
                let (_, sensor) = config
                    .drivers
                    .sensors()
                    .into_iter()
                    .find(|(n, _)| n == name)?;
                Some((
                    name.clone(),
                    sensor.period().mul_f64(config.safety.stale_periods),
                ))
            })
            .collect();
        Self {
            sensors,
            controller_limit: crate::nodes::motion::silence_limit(&config.motion),
            battery_low_v: config.safety.battery_low_v,
            check_period: Duration::from_secs_f64(1.0 / config.safety.check_hz),
            bus,
            clock,
            log,
        }
    }

    fn publish(&self, engaged: bool, reason: String) {
        let t_us = self.clock.now_us();
        if engaged {
            tracing::warn!(%reason, "e-stop engaged");
        } else {
            tracing::info!(%reason, "e-stop released");
        }
        self.log.push(EStopEvent {
            at_s: t_us as f64 / 1e6,
            engaged,
            reason: reason.clone(),
        });
        self.bus.estop.publish(EStop {
            t_us,
            engaged,
            reason,
        });
    }
}

/// State of the [`Watchdog`].
pub struct WatchdogState {
    watch: Watch,
    engaged: Option<String>,
    ballast: Ballast,
}

impl Actor for Watchdog {
    type Msg = WatchdogMsg;
    type State = WatchdogState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<WatchdogMsg>,
        _: (),
    ) -> Result<WatchdogState, ActorProcessingErr> {
        let b = &self.bus;
        b.range
            .subscribe("safety", myself.clone(), WatchdogMsg::Range);
        b.line
            .subscribe("safety", myself.clone(), WatchdogMsg::Line);
        b.battery
            .subscribe("safety", myself.clone(), WatchdogMsg::Battery);
        b.drive
            .subscribe("safety", myself.clone(), WatchdogMsg::Drive);
        b.host
            .subscribe("safety", myself.clone(), WatchdogMsg::Host);
        ticker::spawn(
            Timer::Tokio,
            "watchdog",
            self.check_period,
            myself.clone(),
            |_| WatchdogMsg::Check,
        )?;
        let watch = Watch::new(
            self.sensors.clone(),
            self.controller_limit,
            self.battery_low_v,
            Instant::now(),
        );
        Ok(WatchdogState {
            watch,
            engaged: None,
            ballast: Ballast::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<WatchdogMsg>,
        msg: WatchdogMsg,
        state: &mut WatchdogState,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        match msg {
            WatchdogMsg::Check => match (state.watch.verdict(now), &state.engaged) {
                (Some(reason), None) => {
                    self.publish(true, reason.clone());
                    state.engaged = Some(reason);
                }
                (None, Some(was)) => {
                    self.publish(false, format!("cleared: {was}"));
                    state.engaged = None;
                }
                _ => {}
            },
            WatchdogMsg::Range(_) => state.watch.heard("ultrasonic", now),
            WatchdogMsg::Line(_) => state.watch.heard("grayscale", now),
            WatchdogMsg::Battery(b) => {
                state.watch.heard("battery", now);
                state.watch.battery(b.volts);
            }
            WatchdogMsg::Drive(_) => state.watch.controller_heard(now),
            WatchdogMsg::Host(h) => state.watch.host(&h),
            WatchdogMsg::Drill(d) => state.ballast.apply(d, &myself.get_cell()).await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(now: Instant) -> Watch {
        Watch::new(
            vec![("ultrasonic".into(), Duration::from_millis(75))],
            Duration::from_millis(60),
            6.4,
            now,
        )
    }

    #[test]
    fn stale_sensor_low_battery_and_silent_controller() {
        let t0 = Instant::now();
        let mut w = watch(t0);
        assert_eq!(w.verdict(t0), None);
        let t = t0 + Duration::from_millis(50);
        w.heard("ultrasonic", t);
        w.controller_heard(t);
        assert_eq!(w.verdict(t + Duration::from_millis(60)), None);
        assert_eq!(
            w.verdict(t + Duration::from_millis(76)).as_deref(),
            Some("stale ultrasonic, controller silent")
        );
        w.battery(6.0);
        assert!(w.verdict(t).unwrap().contains("battery low"));
        w.battery(7.9);
        assert_eq!(w.verdict(t), None);
    }

    #[test]
    fn critical_host_temperature_stops_until_it_is_rated_lower() {
        let t0 = Instant::now();
        let mut w = watch(t0);
        let health = |temperature, c| bus::HostHealth {
            t_us: 0,
            levels: crate::services::system_monitor::Levels {
                temperature,
                ..Default::default()
            },
            temperature_c: Some(c),
        };
        w.host(&health(Level::Warn, 75.0));
        assert_eq!(w.verdict(t0), None, "warn is reported, not acted on");
        w.host(&health(Level::Critical, 81.34));
        assert_eq!(
            w.verdict(t0).as_deref(),
            Some("host temperature critical (81.3 °C)")
        );
        w.host(&health(Level::Warn, 76.0));
        assert_eq!(w.verdict(t0), None);
    }
}
