//! Sensor drivers: sample a device at a fixed rate and publish each reading.
//!
//! One actor type serves the three sensors; [`Sensor`] says how to read each and where
//! to publish. A read of a device that may block (the real ultrasonic waits for its
//! echo) runs on tokio's blocking pool, so a slow device never stalls the async
//! workers; a simulated device is read inline, saving two thread wake-ups per sample.
//!
//! A failed read ([`HwError`]) is loud but not a crash: restarting the driver would not
//! bring back an unplugged sensor, only burn the restart intensity and take the process
//! down. The driver publishes nothing for that sample, so the safety watchdog, which
//! counts valid readings only, sees the sensor go stale and stops the motors; it counts
//! the failure in `nevil_sensor_read_errors_total{sensor}`, logs the first failure of a
//! run of failures (warn, with the error) and the recovery (info, with how many reads
//! failed), not one line per sample. A panic in a read is still a crash.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::bus::{self, Bus};
use crate::core::clock::Clock;
use crate::core::ticker::{self, Timer};
use crate::hw::{self, HwError, Shared};

/// A sensor: how to read its device and publish a reading.
pub trait Sensor: Send + Sync + Clone + 'static {
    /// The sensor's name in logs and metrics (`ultrasonic`, `grayscale`, `battery`).
    const NAME: &'static str;
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
    const NAME: &'static str = "ultrasonic";
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
    const NAME: &'static str = "grayscale";
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
    const NAME: &'static str = "battery";
    type Device = dyn hw::Battery;
    fn read(device: &mut Self::Device, t_us: bus::Micros) -> Result<Reading, HwError> {
        let volts = device.voltage()?;
        metrics::gauge!(crate::core::metrics::BATTERY).set(volts);
        Ok(Reading::Battery(bus::Battery { t_us, volts }))
    }
}

/// Messages of a [`SensorDriver`].
pub enum SensorMsg {
    /// Time to sample.
    Sample,
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

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

/// State of a [`SensorDriver`] incarnation.
#[derive(Debug, Default)]
pub struct SamplerState {
    failing: u64,
}

impl SamplerState {
    /// Reads that failed in a row up to the latest sample (0 after a good read).
    pub fn consecutive_failures(&self) -> u64 {
        self.failing
    }

    /// Accounts one sample's outcome: counts and logs a failure (the first of a run
    /// only), logs a recovery; gives back the reading, if any, to publish.
    fn outcome(&mut self, sensor: &'static str, read: Result<Reading, HwError>) -> Option<Reading> {
        match read {
            Ok(reading) => {
                if self.failing > 0 {
                    tracing::info!(sensor, failed = self.failing, "sensor reads recovered");
                    self.failing = 0;
                }
                Some(reading)
            }
            Err(error) => {
                metrics::counter!(crate::core::metrics::SENSOR_READ_ERRORS, "sensor" => sensor)
                    .increment(1);
                if self.failing == 0 {
                    tracing::warn!(
                        sensor,
                        %error,
                        "sensor read failed; publishing nothing until it recovers"
                    );
                }
                self.failing += 1;
                None
            }
        }
    }
}

impl<S: Sensor> Actor for SensorDriver<S> {
    type Msg = SensorMsg;
    type State = SamplerState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<SensorMsg>,
        _: (),
    ) -> Result<SamplerState, ActorProcessingErr> {
        ticker::spawn(Timer::Tokio, "sample", self.period, myself, |_| {
            SensorMsg::Sample
        })?;
        Ok(SamplerState::default())
    }

    async fn handle(
        &self,
        _: ActorRef<SensorMsg>,
        msg: SensorMsg,
        state: &mut SamplerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SensorMsg::Sample => {
                let t_us = self.clock.now_us();
                // A failed read comes back as a value; a panic inside it is a crash.
                let read = self
                    .device
                    .run(self.blocking, move |d| Ok(S::read(d, t_us)))
                    .await?;
                if let Some(reading) = state.outcome(S::NAME, read) {
                    reading.publish(&self.bus);
                }
            }
            SensorMsg::Noop => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure() -> Result<Reading, HwError> {
        Err(HwError::Io {
            device: "sim ultrasonic".into(),
            reason: "unplugged".into(),
        })
    }

    fn reading() -> Result<Reading, HwError> {
        Ok(Reading::Range(bus::Range {
            t_us: 0,
            distance_m: None,
        }))
    }

    /// Log lines written while `f` runs, as text without colours.
    fn logged(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn failures_publish_nothing_and_are_counted_until_a_good_read() {
        // The facade's own test recorder: this layer does not depend on the exporter.
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let lines = logged(|| {
            metrics::with_local_recorder(&recorder, || {
                let mut state = SamplerState::default();
                assert!(state.outcome("ultrasonic", reading()).is_some());
                assert!(state.outcome("ultrasonic", failure()).is_none());
                assert!(state.outcome("ultrasonic", failure()).is_none());
                assert_eq!(state.consecutive_failures(), 2);
                assert!(state.outcome("ultrasonic", reading()).is_some());
                assert_eq!(state.consecutive_failures(), 0);
                assert!(state.outcome("ultrasonic", failure()).is_none());
                assert_eq!(state.consecutive_failures(), 1);
            });
        });
        assert_eq!(
            crate::core::metrics::recorded(&snapshotter),
            vec![(
                format!(
                    "{}{{sensor=ultrasonic}}",
                    crate::core::metrics::SENSOR_READ_ERRORS
                ),
                metrics_util::debugging::DebugValue::Counter(3),
            )],
        );
        // One line per run of failures and one per recovery, not one per failure.
        assert_eq!(lines.len(), 3, "{lines:#?}");
        for i in [0, 2] {
            assert!(lines[i].contains("WARN"), "{}", lines[i]);
            assert!(lines[i].contains("sensor read failed"), "{}", lines[i]);
            assert!(
                lines[i].contains("error=sim ultrasonic: unplugged"),
                "{}",
                lines[i]
            );
        }
        assert!(lines[1].contains("INFO"), "{}", lines[1]);
        assert!(
            lines[1].contains("sensor reads recovered") && lines[1].contains("failed=2"),
            "{}",
            lines[1]
        );
    }
}
