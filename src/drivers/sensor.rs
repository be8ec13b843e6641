//! Sensor drivers: sample a device at a fixed rate and publish each reading.
//!
//! One actor type serves the three sensors; [`Sensor`] says how to read each and where
//! to publish. A read of a device that may block (the real ultrasonic waits for its
//! echo) runs on tokio's blocking pool, so a slow device never stalls the async
//! workers; a simulated device is read inline, saving two thread wake-ups per sample. A failed read is a
//! crash of the driver: its supervisor restarts it, within the intensity.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::bus::{self, Bus, Clock};
use crate::drill::{Ballast, DrillMsg};
use crate::hw::{self, HwError, Shared};
use crate::ticker::{self, Timer};

/// A sensor: how to read its device and publish a reading.
pub trait Sensor: Send + Sync + Clone + 'static {
    /// The device trait object.
    type Device: ?Sized + Send + 'static;
    /// Reads the device and stamps the reading.
    fn read(device: &mut Self::Device, t_us: bus::Micros) -> Result<Reading, HwError>;
}

/// A reading of any sensor.
#[derive(Debug, Clone, Copy)]
pub enum Reading {
    /// From the ranger.
    Range(bus::Range),
    /// From the grayscale sensor.
    Line(bus::Line),
    /// From the battery monitor.
    Battery(bus::Battery),
}

impl Reading {
    fn publish(self, bus: &Bus) {
        match self {
            Self::Range(r) => {
                bus.range.publish(r);
            }
            Self::Line(l) => {
                bus.line.publish(l);
            }
            Self::Battery(b) => {
                bus.battery.publish(b);
            }
        }
    }
}

/// The ultrasonic ranger.
#[derive(Debug, Clone, Copy)]
pub struct Ultrasonic;
impl Sensor for Ultrasonic {
    type Device = dyn hw::Ranger;
    fn read(device: &mut Self::Device, t_us: bus::Micros) -> Result<Reading, HwError> {
        let distance_m = device.distance_m()?;
        Ok(Reading::Range(bus::Range { t_us, distance_m }))
    }
}

/// The grayscale line sensor.
#[derive(Debug, Clone, Copy)]
pub struct Grayscale;
impl Sensor for Grayscale {
    type Device = dyn hw::LineSensor;
    fn read(device: &mut Self::Device, t_us: bus::Micros) -> Result<Reading, HwError> {
        let raw = device.read()?;
        Ok(Reading::Line(bus::Line { t_us, raw }))
    }
}

/// The battery monitor.
#[derive(Debug, Clone, Copy)]
pub struct BatteryMonitor;
impl Sensor for BatteryMonitor {
    type Device = dyn hw::Battery;
    fn read(device: &mut Self::Device, t_us: bus::Micros) -> Result<Reading, HwError> {
        let volts = device.voltage()?;
        metrics::gauge!(crate::telemetry::BATTERY).set(volts);
        Ok(Reading::Battery(bus::Battery { t_us, volts }))
    }
}

/// Messages of a [`SensorDriver`].
pub enum SensorMsg {
    /// Time to sample.
    Sample,
    /// A fault drill.
    Drill(DrillMsg),
}

crate::drill_variant!(SensorMsg);

/// A driver sampling sensor `S` every `period`.
pub struct SensorDriver<S: Sensor> {
    /// The device, shared with the driver's later incarnations.
    pub device: Shared<S::Device>,
    /// Sampling period.
    pub period: Duration,
    /// The bus.
    pub bus: Bus,
    /// The run clock.
    pub clock: Clock,
    /// Which sensor.
    pub sensor: S,
    /// Read on the blocking pool ([`crate::hw::Hardware::blocking`]).
    pub blocking: bool,
}

impl<S: Sensor> Clone for SensorDriver<S> {
    fn clone(&self) -> Self {
        Self {
            device: self.device.clone(),
            period: self.period,
            bus: self.bus.clone(),
            clock: self.clock,
            sensor: self.sensor.clone(),
            blocking: self.blocking,
        }
    }
}

impl<S: Sensor> Actor for SensorDriver<S> {
    type Msg = SensorMsg;
    type State = Ballast;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<SensorMsg>,
        _: (),
    ) -> Result<Ballast, ActorProcessingErr> {
        ticker::spawn(Timer::Tokio, "sample", self.period, myself, |_| {
            SensorMsg::Sample
        })?;
        Ok(Ballast::default())
    }

    async fn handle(
        &self,
        myself: ActorRef<SensorMsg>,
        msg: SensorMsg,
        ballast: &mut Ballast,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SensorMsg::Sample => {
                let t_us = self.clock.now_us();
                let reading = if self.blocking {
                    let device = self.device.clone();
                    tokio::task::spawn_blocking(move || S::read(&mut **device.lock(), t_us))
                        .await??
                } else {
                    S::read(&mut **self.device.lock(), t_us)?
                };
                reading.publish(&self.bus);
            }
            SensorMsg::Drill(d) => ballast.apply(d, &myself.get_cell()).await?,
        }
        Ok(())
    }
}
