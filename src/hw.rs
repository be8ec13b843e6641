//! The hardware the robot sees, behind traits, with two backends chosen by config:
//! [`sim`] (a deterministic simulated world, the default) and [`picarx`] (the real
//! PiCar-X on a SunFounder Robot HAT, through `rppal`).
//!
//! Each device is owned by one driver actor through a [`Shared`] handle, which outlives the
//! actor: a restarted driver picks up the same device. Calls are synchronous and short
//! (the ultrasonic echo wait is the longest, bounded by its timeout); drivers that may
//! block run them off the async threads. A read either gives a valid reading or fails
//! with an [`HwError`]: a device that does not answer is an error, never a default value.

pub mod picarx;
pub mod sim;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A failed device operation, naming the device (`i2c-1@0x14`, `gpio 27`, `sim`).
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// A device could not be opened at start.
    #[error("cannot open {device}: {reason}")]
    Open {
        /// The device, e.g. `i2c-1@0x14` or `gpio`.
        device: String,
        /// What the OS or driver said.
        reason: String,
    },
    /// A transfer to or from an opened device failed.
    #[error("{device}: {reason}")]
    Io {
        /// The device, e.g. `i2c-1@0x14` or `gpio 22`.
        device: String,
        /// What went wrong.
        reason: String,
    },
    /// A value the device cannot take (checked before anything is sent).
    #[error("{device}: {value} is out of range {range}")]
    OutOfRange {
        /// The device.
        device: String,
        /// The rejected value.
        value: f64,
        /// The accepted range, e.g. `-30..=30 degrees`.
        range: String,
    },
}

/// The ultrasonic ranger at the front of the car.
pub trait Ranger: Send + 'static {
    /// Measures once.
    ///
    /// - `Ok(Some(d))`: the nearest obstacle in the ranger's cone is `d` metres away.
    /// - `Ok(None)`: the sensor answered and nothing is within its range — a valid reading
    ///   (for the real HC-SR04: its echo pulse lasted past the configured timeout).
    /// - `Err(HwError::Io)`: no reading — the sensor did not answer (the real one's echo
    ///   line never rose within the timeout: missing, unplugged, unpowered or broken,
    ///   "no echo within N ms"), was unplugged in the simulator, or the bus failed.
    ///   Callers must treat this as "unknown", never as a clear road.
    fn distance_m(&mut self) -> Result<Option<f64>, HwError>;
}

/// The 3-channel grayscale line sensor under the front of the car.
pub trait LineSensor: Send + 'static {
    /// Raw ADC readings (0–4095) of the left, middle and right channels; lower is darker.
    fn read(&mut self) -> Result<[u16; 3], HwError>;
}

/// The battery monitor.
pub trait Battery: Send + 'static {
    /// Battery voltage in volts.
    fn voltage(&mut self) -> Result<f64, HwError>;
}

/// The two rear drive motors.
pub trait Drive: Send + 'static {
    /// Sets each motor's power in percent, −100.0..=100.0; positive drives forward.
    fn set_power(&mut self, left: f64, right: f64) -> Result<(), HwError>;
}

/// The front steering servo.
pub trait Steering: Send + 'static {
    /// Sets the steering angle in degrees, −30.0..=30.0; positive steers right.
    fn set_angle(&mut self, degrees: f64) -> Result<(), HwError>;
}

/// A device shared between the incarnations of the driver that owns it.
pub struct Shared<T: ?Sized>(Arc<Mutex<Box<T>>>);

impl<T: ?Sized> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared(..)")
    }
}

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: ?Sized> Shared<T> {
    /// Wraps a device.
    pub fn new(device: Box<T>) -> Self {
        Self(Arc::new(Mutex::new(device)))
    }

    /// Locks the device for one operation. A driver that panicked mid-operation leaves
    /// the device as it was; the next incarnation may use it.
    pub fn lock(&self) -> MutexGuard<'_, Box<T>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the device if it is free now (a poisoned lock counts as free): for the
    /// emergency stop, which must not wait on a thread that died holding it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, Box<T>>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

impl<T: ?Sized + Send + 'static> Shared<T> {
    /// Runs one operation on the device: inline when `blocking` is false (simulated
    /// devices answer in microseconds), else on tokio's blocking pool, so that a bus
    /// transfer never stalls the async workers.
    ///
    /// # Errors
    ///
    /// What the operation returned, or a panic inside it as an error.
    pub async fn run<R: Send + 'static>(
        &self,
        blocking: bool,
        op: impl FnOnce(&mut T) -> Result<R, HwError> + Send + 'static,
    ) -> Result<R, ractor::ActorProcessingErr> {
        if !blocking {
            return Ok(op(&mut **self.lock())?);
        }
        let device = self.clone();
        Ok(tokio::task::spawn_blocking(move || op(&mut **device.lock())).await??)
    }
}

/// Every device of the robot, opened and ready.
#[derive(Clone)]
pub struct Hardware {
    /// The ultrasonic ranger.
    pub ranger: Shared<dyn Ranger>,
    /// The grayscale line sensor.
    pub line: Shared<dyn LineSensor>,
    /// The battery monitor.
    pub battery: Shared<dyn Battery>,
    /// The drive motors.
    pub drive: Shared<dyn Drive>,
    /// The steering servo.
    pub steering: Shared<dyn Steering>,
    /// Whether a device call may block for long (real buses and echo waits) and so must
    /// run off the async workers; simulated devices answer in microseconds inline.
    pub blocking: bool,
}
