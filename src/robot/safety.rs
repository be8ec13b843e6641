//! Safety: the e-stop latch, the watchdog that sets it, the dead-man at the motors, and
//! the emergency stop for a dying process. `docs/safety.md` states the invariant and how
//! each hazard meets it.
//!
//! The watchdog engages the e-stop (in the shared [`EStopLatch`], and on the bus so the
//! motion controller holds zero at once) when:
//! - a watched sensor is **stale**: no valid reading for `stale_periods` of its sampling
//!   periods (1.5 by default, so the motors stop within two periods of the sensor going
//!   silent or failing, given `check_hz` at least the sensor's rate);
//! - the **battery is low**: below `battery_low_v`; it is released only above
//!   `battery_low_v + battery_hysteresis_v`, so a voltage hovering at the threshold does
//!   not toggle it;
//! - the **controller is silent**: no motion output for three loop periods (it crashed,
//!   hangs, or is restarting);
//! - the **host is overheating**: the system monitor rates its temperature critical (a
//!   Pi that hot throttles its CPU, and the control loop with it). It is released once
//!   the monitor rates it below critical again, past its hysteresis band.
//!
//! A hazard is released only on evidence that it cleared (see [`watch`]), so a restarted
//! watchdog keeps what its predecessor latched. While the e-stop is engaged the watchdog
//! republishes it every [`REPUBLISH`], so an actor that restarted (or whose queue dropped
//! the change) hears it; the latch is what the motors check anyway. At every check it
//! beats the [`DeadMan`]'s heart: a watchdog that dies or wedges stops the motors.

pub mod deadman;
pub mod emergency;
pub mod latch;
pub mod watch;

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

use crate::bus::{self, Bus, Delivery, EStop};
use crate::config::reload::LiveConfig;
use crate::config::Config;
use crate::core::clock::Clock;
use crate::core::ticker::{self, Timer};

pub use deadman::DeadMan;
pub use latch::{Change, EStopEvent, EStopLatch};
pub use watch::{Finding, Watch};

/// How often an engaged e-stop is published again.
pub const REPUBLISH: Duration = Duration::from_millis(100);

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
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// The safety watchdog actor.
#[derive(Clone)]
pub struct Watchdog {
    /// Sensors watched, with their stale limits.
    pub sensors: Vec<(String, Duration)>,
    /// How long the controller may be silent.
    pub controller_limit: Duration,
    /// Battery threshold in volts.
    pub battery_low_v: f64,
    /// How far above the threshold the battery must read for a low battery to clear.
    pub battery_hysteresis_v: f64,
    /// Check period.
    pub check_period: Duration,
    /// The bus.
    pub bus: Bus,
    /// The run clock.
    pub clock: Clock,
    /// The e-stop, shared with the motors, the controller and shutdown.
    pub latch: EStopLatch,
    /// The dead-man at the motors, whose heart this watchdog beats.
    pub deadman: DeadMan,
    /// The configuration in force: a reload's thresholds apply from the next check
    /// (and to an incarnation started after it).
    pub live: LiveConfig,
}

impl Watchdog {
    /// The watchdog `config` asks for, following `live` for its thresholds.
    pub fn from_config(
        config: &Config,
        live: LiveConfig,
        bus: Bus,
        clock: Clock,
        latch: EStopLatch,
        deadman: DeadMan,
    ) -> Self {
        Self {
            sensors: stale_limits(config),
            controller_limit: crate::robot::nodes::motion::silence_limit(&config.motion),
            battery_low_v: config.safety.battery_low_v,
            battery_hysteresis_v: config.safety.battery_hysteresis_v,
            check_period: config.safety.check_period(),
            bus,
            clock,
            latch,
            deadman,
            live,
        }
    }

    /// Takes a reload's thresholds into `state`, if one happened since it last looked
    /// and changed them.
    fn follow(state: &mut WatchdogState) {
        let Some(config) = state.live.changed() else {
            return;
        };
        let changed = state.watch.retune(
            &stale_limits(&config),
            config.safety.battery_low_v,
            config.safety.battery_hysteresis_v,
        );
        if changed {
            tracing::info!(
                battery_low_v = config.safety.battery_low_v,
                stale_periods = config.safety.stale_periods,
                "watchdog thresholds changed"
            );
        }
    }

    fn at_s(&self) -> f64 {
        self.clock.elapsed().as_secs_f64()
    }

    fn publish(&self, engaged: bool, reason: String) {
        self.bus.estop.publish(EStop {
            t_us: self.clock.now_us(),
            engaged,
            reason,
        });
    }

    /// Applies `watch`'s findings to the latch; publishes and logs each change.
    fn check(&self, state: &mut WatchdogState, now: Instant) {
        let at_s = self.at_s();
        let mut changed = false;
        for (key, finding) in state.watch.findings(now) {
            let change = match finding {
                Finding::Holds(detail) => self.latch.set(key, detail, at_s),
                Finding::Clear => self.latch.clear(key, at_s),
                Finding::Unknown => Change::None,
            };
            match change {
                Change::Engaged(reason) => {
                    tracing::warn!(%reason, "e-stop engaged");
                    self.publish(true, reason);
                    changed = true;
                }
                Change::Released(reason) => {
                    tracing::info!(%reason, "e-stop released");
                    self.publish(false, reason);
                    changed = true;
                }
                Change::None => {}
            }
        }
        if changed {
            state.published = now;
        } else if now.saturating_duration_since(state.published) >= REPUBLISH {
            if let Some(reasons) = self.latch.reasons() {
                self.publish(true, reasons);
            }
            state.published = now;
        }
    }
}

/// Each watched sensor's stale limit under `config`: `stale_periods` of its sampling
/// periods.
pub fn stale_limits(config: &Config) -> Vec<(String, Duration)> {
    config
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
        .collect()
}

/// State of the [`Watchdog`].
pub struct WatchdogState {
    watch: Watch,
    /// The configuration in force, as this incarnation last saw it.
    live: LiveConfig,
    /// When the e-stop was last published.
    published: Instant,
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
        let now = Instant::now();
        let watch = Watch::new(
            self.sensors.clone(),
            self.controller_limit,
            self.battery_low_v,
            self.battery_hysteresis_v,
            now,
        );
        self.deadman.heartbeat();
        let mut state = WatchdogState {
            watch,
            live: self.live.clone(),
            published: now,
        };
        // A reload since the tree started: this incarnation starts under it.
        Self::follow(&mut state);
        Ok(state)
    }

    async fn handle(
        &self,
        _: ActorRef<WatchdogMsg>,
        msg: WatchdogMsg,
        state: &mut WatchdogState,
    ) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        match msg {
            WatchdogMsg::Check => {
                self.deadman.heartbeat();
                Self::follow(state);
                self.check(state, now);
            }
            WatchdogMsg::Range(_) => state.watch.heard("ultrasonic", now),
            WatchdogMsg::Line(_) => state.watch.heard("grayscale", now),
            WatchdogMsg::Battery(b) => {
                state.watch.heard("battery", now);
                state.watch.battery(b.volts);
            }
            WatchdogMsg::Drive(_) => state.watch.controller_heard(now),
            WatchdogMsg::Host(h) => state.watch.host(&h),
            WatchdogMsg::Noop => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<WatchdogMsg>,
        _: &mut WatchdogState,
    ) -> Result<(), ActorProcessingErr> {
        // Nobody watches for hazards until the next incarnation checks.
        self.deadman.halt("watchdog stopped");
        Ok(())
    }
}
