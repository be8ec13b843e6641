//! The real PiCar-X on a SunFounder Robot HAT: the [`crate::hw`] devices over one shared
//! [`Transport`] to the HAT's MCU (I2C) and the Pi's GPIO header.
//!
//! Semantics:
//! - [`open`] opens the real devices ([`transport::Rppal`]) and runs the start-up before
//!   any device is handed out: the MCU reset pulse on BCM 5 (low 10 ms, high, 200 ms to
//!   boot, as the vendor's `reset_mcu` and `Picarx()` do), PWM at 50 Hz on the timers in
//!   use (0: steering, 3: motors), steering to 0° (plus trim), both motors to 0. On a
//!   machine that is not a Pi it fails with [`HwError::Open`] naming the device.
//! - [`open_with`] runs the same start-up over any transport; [`dry_run`] over a
//!   [`Recording`], so tests see every byte the real robot would get.
//! - Every device holds the transport's lock for the whole of one operation, so the
//!   transactions of an ADC read (select, then two reads) or a motor command (direction,
//!   then speed) are never interleaved with another device's. The ultrasonic ranger holds
//!   it only for its trigger pulse (µs): it waits for the echo (up to
//!   [`PicarxConfig::ultrasonic_timeout_ms`]) on its own [`transport::EchoLine`], outside
//!   the lock, so motor and steering writes never queue behind a ranging (see
//!   [`transport`]'s "Locking").
//! - The ranger tells a missing sensor from an empty road: an echo line that never rises
//!   within the timeout is an error ([`HwError::Io`] on `ultrasonic (gpio 22)`, "no echo
//!   within 25 ms"); one that rises and is still high at the timeout is a valid reading
//!   of nothing within range (`Ok(None)`). The vendor's library (robot-hat
//!   `Ultrasonic._read`) times both edges against one deadline from the trigger, as here,
//!   but answers -1 for either timeout alike.
//! - Out-of-range commands are rejected with [`HwError::OutOfRange`] before anything is
//!   sent: steering beyond ±30°, motor power beyond ±100 %.
//!
//! The wire protocol itself (registers, formulas) is in [`protocol`].
//!
//! ```
//! use nevil::hw::picarx::{dry_run, PicarxConfig};
//! use nevil::hw::picarx::transport::Transaction;
//!
//! let (hw, rec) = dry_run(&PicarxConfig::default())?;
//! rec.lock().unwrap().take(); // the start-up
//! hw.steering.lock().set_angle(0.0)?;
//! assert_eq!(
//!     rec.lock().unwrap().take(),
//!     [Transaction::I2cWrite { addr: 0x14, bytes: vec![0x22, 0x00, 0x5a] }]
//! );
//! # Ok::<(), nevil::hw::HwError>(())
//! ```

pub mod protocol;
pub mod stop;
pub mod transport;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nevil_actors::Problems;
use serde::{Deserialize, Serialize};

use self::protocol::{Level, MotorWiring};
use self::transport::{Echo, EchoLine, PinMode, Recording, Rppal, Transport};
use super::{Battery, Drive, Hardware, HwError, LineSensor, Ranger, Shared, Steering};

/// Settings of the real robot's hardware, the `[hw.picarx]`-style section of a config.
///
/// ```toml
/// i2c_bus = 1
/// i2c_address = 0x14
/// ultrasonic_timeout_ms = 25
/// steering_trim_deg = -1.5
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PicarxConfig {
    /// I2C bus of the HAT MCU, the N of `/dev/i2c-N`. Default 1.
    pub i2c_bus: u8,
    /// 7-bit I2C address of the HAT MCU, 0x08–0x77. Default 0x14.
    pub i2c_address: u16,
    /// Longest wait for an ultrasonic echo, in milliseconds, 1–100: a pulse still going
    /// then reads as "nothing in range", no pulse at all as a failed read. Default 25 (an
    /// echo from 4.3 m).
    pub ultrasonic_timeout_ms: u64,
    /// Steering trim in degrees, −10.0–10.0, added to every commanded angle so that 0°
    /// drives straight; the sum is limited to the car's ±30°. Default 0.0.
    pub steering_trim_deg: f64,
}

impl Default for PicarxConfig {
    fn default() -> Self {
        Self {
            i2c_bus: protocol::I2C_BUS,
            i2c_address: protocol::I2C_ADDRESS,
            ultrasonic_timeout_ms: 25,
            steering_trim_deg: 0.0,
        }
    }
}

impl PicarxConfig {
    /// Records every value out of range as a problem at `{prefix}.field`.
    pub fn check(&self, prefix: &str, problems: &mut Problems) {
        if !(0x08..=0x77).contains(&self.i2c_address) {
            problems.push(
                format!("{prefix}.i2c_address"),
                format!(
                    "must be a 7-bit address between 0x08 and 0x77 (is {:#04x})",
                    self.i2c_address
                ),
            );
        }
        if !(1..=100).contains(&self.ultrasonic_timeout_ms) {
            problems.push(
                format!("{prefix}.ultrasonic_timeout_ms"),
                format!(
                    "must be between 1 and 100 (is {})",
                    self.ultrasonic_timeout_ms
                ),
            );
        }
        problems.range(
            format!("{prefix}.steering_trim_deg"),
            self.steering_trim_deg,
            -10.0,
            10.0,
        );
    }

    /// The ultrasonic echo timeout as a duration.
    pub fn ultrasonic_timeout(&self) -> Duration {
        Duration::from_millis(self.ultrasonic_timeout_ms)
    }
}

/// The transport all devices of one HAT share.
pub type Link = Arc<Mutex<dyn Transport>>;

/// The GPIO pins the robot uses and how [`open`] sets them up: the MCU reset line
/// released (high), trigger and motor directions low, the echo an input pulled low.
pub const PINS: [(u8, PinMode); 5] = [
    (protocol::MCU_RESET, PinMode::OutputHigh),
    (protocol::ULTRASONIC_TRIGGER, PinMode::OutputLow),
    (protocol::ULTRASONIC_ECHO, PinMode::InputPullDown),
    (protocol::LEFT_MOTOR.dir_bcm, PinMode::OutputLow),
    (protocol::RIGHT_MOTOR.dir_bcm, PinMode::OutputLow),
];

/// How long the MCU reset line is held low.
pub const RESET_PULSE: Duration = Duration::from_millis(10);
/// How long the MCU takes to boot after reset before it answers on I2C.
pub const RESET_BOOT: Duration = Duration::from_millis(200);
/// Width of the ultrasonic trigger pulse.
pub const TRIGGER_PULSE: Duration = Duration::from_micros(10);

/// The HAT's MCU on a shared transport: the register-level operations the devices and
/// the bring-up self-test are made of.
#[derive(Clone)]
pub struct Hat {
    link: Link,
    addr: u16,
    name: String,
}

impl Hat {
    /// The HAT at the configured address on `link`.
    pub fn new(link: Link, cfg: &PicarxConfig) -> Self {
        Self {
            link,
            addr: cfg.i2c_address,
            name: transport::i2c_device_name(cfg.i2c_bus, cfg.i2c_address),
        }
    }

    /// Locks the transport for one operation. A device that panicked mid-operation left
    /// the transport usable (every call is a whole transaction), so a poisoned lock is
    /// taken over rather than propagated.
    fn lock(&self) -> MutexGuard<'_, dyn Transport + 'static> {
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn out_of_range(device: String, value: f64, range: &str) -> HwError {
        HwError::OutOfRange {
            device,
            value,
            range: range.to_owned(),
        }
    }

    /// Pulses the MCU reset line (BCM 5) low and waits for the MCU to boot, so start-up
    /// begins from the MCU's power-on state whatever a previous run left behind.
    ///
    /// # Errors
    ///
    /// [`HwError::Io`] from the GPIO.
    pub fn reset_mcu(&self) -> Result<(), HwError> {
        let mut t = self.lock();
        t.gpio_write(protocol::MCU_RESET, Level::Low)?;
        t.delay(RESET_PULSE);
        t.gpio_write(protocol::MCU_RESET, Level::High)?;
        t.delay(RESET_BOOT);
        Ok(())
    }

    /// Programs the timers in use ([`protocol::PWM_TIMERS`]) for 50 Hz: prescaler, then
    /// period, timer by timer.
    ///
    /// # Errors
    ///
    /// [`HwError::Io`] from the I2C bus.
    pub fn init_pwm(&self) -> Result<(), HwError> {
        let mut t = self.lock();
        for timer in protocol::PWM_TIMERS {
            for write in [
                protocol::prescaler_write(timer),
                protocol::period_write(timer),
            ] {
                let bytes = write.ok_or_else(|| {
                    Self::out_of_range(self.name.clone(), f64::from(timer), "timers 0..=6")
                })?;
                t.i2c_write(self.addr, &bytes)?;
            }
        }
        Ok(())
    }

    /// Sets a PWM channel's value in ticks of [`protocol::PERIOD`].
    ///
    /// # Errors
    ///
    /// [`HwError::OutOfRange`] for a channel past P19; [`HwError::Io`] from the bus.
    pub fn set_channel(&self, channel: u8, value: u16) -> Result<(), HwError> {
        let bytes = protocol::pwm_write(channel, value).ok_or_else(|| {
            Self::out_of_range(self.name.clone(), f64::from(channel), "channels 0..=19")
        })?;
        self.lock().i2c_write(self.addr, &bytes)
    }

    /// Sets one motor's power in percent: the direction pin first (unless the power is
    /// 0, which leaves it), then the speed, so the motor never runs the old direction at
    /// the new speed.
    ///
    /// # Errors
    ///
    /// [`HwError::OutOfRange`] outside −100..=100 (nothing sent); [`HwError::Io`].
    pub fn set_motor(&self, wiring: &MotorWiring, power: f64) -> Result<(), HwError> {
        check_power(wiring, power)?;
        let bytes = protocol::pwm_write(wiring.pwm_channel, protocol::motor_value(power))
            .ok_or_else(|| {
                Self::out_of_range(
                    self.name.clone(),
                    f64::from(wiring.pwm_channel),
                    "channels 0..=19",
                )
            })?;
        let mut t = self.lock();
        if let Some(level) = protocol::motor_direction(wiring, power) {
            t.gpio_write(wiring.dir_bcm, level)?;
        }
        t.i2c_write(self.addr, &bytes)
    }

    /// Reads an ADC channel (0–7): the select write and its two byte reads, under one
    /// lock so no other transfer lands between them.
    ///
    /// # Errors
    ///
    /// [`HwError::OutOfRange`] for a channel past A7; [`HwError::Io`] from the bus.
    pub fn read_adc(&self, channel: u8) -> Result<u16, HwError> {
        let select = protocol::adc_select(channel).ok_or_else(|| {
            Self::out_of_range(self.name.clone(), f64::from(channel), "adc channels 0..=7")
        })?;
        let mut t = self.lock();
        t.i2c_write(self.addr, &select)?;
        let hi = t.i2c_read_byte(self.addr)?;
        let lo = t.i2c_read_byte(self.addr)?;
        Ok(protocol::adc_raw(hi, lo))
    }

    /// The start-up [`open`] runs: MCU reset, PWM at 50 Hz, steering to 0° (plus
    /// trim), both motors to 0.
    ///
    /// # Errors
    ///
    /// The first failure, as [`HwError::Io`].
    pub fn start(&self, cfg: &PicarxConfig) -> Result<(), HwError> {
        self.reset_mcu()?;
        self.init_pwm()?;
        SteeringServo::new(self.clone(), cfg.steering_trim_deg).set_angle(0.0)?;
        self.set_motor(&protocol::LEFT_MOTOR, 0.0)?;
        self.set_motor(&protocol::RIGHT_MOTOR, 0.0)
    }
}

fn check_power(wiring: &MotorWiring, power: f64) -> Result<(), HwError> {
    if (-100.0..=100.0).contains(&power) {
        Ok(())
    } else {
        Err(Hat::out_of_range(
            format!("{} (P{})", wiring.name, wiring.pwm_channel),
            power,
            "-100..=100 percent",
        ))
    }
}

/// The ultrasonic ranger: trigger on D2, echo on D3.
pub struct Ultrasonic {
    hat: Hat,
    timeout: Duration,
    /// The echo pin, taken from the transport at the first ranging.
    echo: Option<Box<dyn EchoLine>>,
}

impl Ultrasonic {
    /// A ranger that waits at most `timeout` for an echo.
    pub fn new(hat: Hat, timeout: Duration) -> Self {
        Self {
            hat,
            timeout,
            echo: None,
        }
    }

    /// The name errors give the ranger: `ultrasonic (gpio 22)`, after its echo pin.
    pub fn device_name() -> String {
        format!("ultrasonic (gpio {})", protocol::ULTRASONIC_ECHO)
    }
}

impl Ranger for Ultrasonic {
    /// Sends a 10 µs trigger pulse and times the echo: distance = echo · 343 / 2 m.
    /// `Ok(None)` when the echo pulse outlasts the timeout (nothing within range);
    /// [`HwError::Io`] "no echo within N ms" when the echo line never rises (no sensor
    /// answered). Only the trigger is sent under the transport's lock; the echo wait
    /// runs on the echo line alone.
    fn distance_m(&mut self) -> Result<Option<f64>, HwError> {
        let echo = {
            let mut t = self.hat.lock();
            let echo = match self.echo.take() {
                Some(echo) => echo,
                None => t.echo_line(protocol::ULTRASONIC_ECHO)?,
            };
            // Low first, so the sensor sees a rising edge even if a failed ranging left
            // the trigger high.
            t.gpio_write(protocol::ULTRASONIC_TRIGGER, Level::Low)?;
            t.gpio_write(protocol::ULTRASONIC_TRIGGER, Level::High)?;
            t.delay(TRIGGER_PULSE);
            t.gpio_write(protocol::ULTRASONIC_TRIGGER, Level::Low)?;
            self.echo.insert(echo)
        };
        match echo.pulse(self.timeout)? {
            Echo::Pulse(width) => Ok(Some(protocol::echo_distance_m(width.as_secs_f64()))),
            Echo::NoFall => Ok(None),
            Echo::NoRise => Err(HwError::Io {
                device: Self::device_name(),
                reason: format!("no echo within {} ms", self.timeout.as_millis()),
            }),
        }
    }
}

/// The grayscale line sensor on A0 (left), A1 (middle), A2 (right).
pub struct Grayscale {
    hat: Hat,
}

impl Grayscale {
    /// The sensor on `hat`.
    pub fn new(hat: Hat) -> Self {
        Self { hat }
    }
}

impl LineSensor for Grayscale {
    fn read(&mut self) -> Result<[u16; 3], HwError> {
        let [l, m, r] = protocol::GRAYSCALE_ADC;
        Ok([
            self.hat.read_adc(l)?,
            self.hat.read_adc(m)?,
            self.hat.read_adc(r)?,
        ])
    }
}

/// The battery monitor: A4 behind a ÷3 divider.
pub struct BatteryMonitor {
    hat: Hat,
}

impl BatteryMonitor {
    /// The monitor on `hat`.
    pub fn new(hat: Hat) -> Self {
        Self { hat }
    }
}

impl Battery for BatteryMonitor {
    fn voltage(&mut self) -> Result<f64, HwError> {
        Ok(protocol::battery_volts(
            self.hat.read_adc(protocol::BATTERY_ADC)?,
        ))
    }
}

/// The two drive motors: left P13 + D4, right P12 + D5.
pub struct Motors {
    hat: Hat,
}

impl Motors {
    /// The motors on `hat`.
    pub fn new(hat: Hat) -> Self {
        Self { hat }
    }
}

impl Drive for Motors {
    /// Sets the left motor, then the right. Both powers are checked before either is
    /// sent, so a bad right power does not leave the left one changed.
    fn set_power(&mut self, left: f64, right: f64) -> Result<(), HwError> {
        check_power(&protocol::LEFT_MOTOR, left)?;
        check_power(&protocol::RIGHT_MOTOR, right)?;
        self.hat.set_motor(&protocol::LEFT_MOTOR, left)?;
        self.hat.set_motor(&protocol::RIGHT_MOTOR, right)
    }
}

/// The steering servo on P2, with the configured trim.
pub struct SteeringServo {
    hat: Hat,
    trim_deg: f64,
}

impl SteeringServo {
    /// The servo on `hat`; `trim_deg` is added to every commanded angle.
    pub fn new(hat: Hat, trim_deg: f64) -> Self {
        Self { hat, trim_deg }
    }
}

impl Steering for SteeringServo {
    /// Checks the commanded angle against ±30°, then sends angle + trim, limited to
    /// ±30°, as a servo pulse: the trim never turns the wheels beyond the car's range.
    fn set_angle(&mut self, degrees: f64) -> Result<(), HwError> {
        let limit = protocol::STEERING_LIMIT_DEG;
        let trimmed = (degrees + self.trim_deg).clamp(-limit, limit);
        if !(-limit..=limit).contains(&degrees) || trimmed.is_nan() {
            return Err(Hat::out_of_range(
                format!("steering servo (P{})", protocol::STEERING_CHANNEL),
                degrees,
                "-30..=30 degrees",
            ));
        }
        let ticks = protocol::servo_ticks(trimmed);
        self.hat.set_channel(protocol::STEERING_CHANNEL, ticks)
    }
}

/// Every device of the robot over `hat`, without start-up.
pub fn hardware(hat: &Hat, cfg: &PicarxConfig) -> Hardware {
    Hardware {
        ranger: Shared::<dyn Ranger>::new(Box::new(Ultrasonic::new(
            hat.clone(),
            cfg.ultrasonic_timeout(),
        ))),
        line: Shared::<dyn LineSensor>::new(Box::new(Grayscale::new(hat.clone()))),
        battery: Shared::<dyn Battery>::new(Box::new(BatteryMonitor::new(hat.clone()))),
        drive: Shared::<dyn Drive>::new(Box::new(Motors::new(hat.clone()))),
        steering: Shared::<dyn Steering>::new(Box::new(SteeringServo::new(
            hat.clone(),
            cfg.steering_trim_deg,
        ))),
        blocking: true,
    }
}

/// Opens the real HAT (`/dev/i2c-{bus}` and the GPIO pins in [`PINS`]), runs the
/// start-up and returns the robot's devices.
///
/// # Errors
///
/// [`HwError::Open`] naming the device that could not be opened (`i2c-1@0x14`, `gpio`,
/// `gpio 23`) with the OS error text; [`HwError::Io`] if the start-up fails.
pub fn open(cfg: &PicarxConfig) -> Result<Hardware, HwError> {
    let rppal = Rppal::open(cfg.i2c_bus, cfg.i2c_address, &PINS)?;
    open_with(Arc::new(Mutex::new(rppal)), cfg)
}

/// Runs the start-up over `link` and returns the robot's devices on it.
///
/// # Errors
///
/// The first failure of the start-up.
pub fn open_with(link: Link, cfg: &PicarxConfig) -> Result<Hardware, HwError> {
    let hat = Hat::new(link, cfg);
    hat.start(cfg)?;
    Ok(hardware(&hat, cfg))
}

/// The robot's devices over a dry [`Recording`], after the start-up: the recording holds
/// every transaction the real robot would have received.
///
/// # Errors
///
/// None in practice (a dry run cannot fail); the type is [`open_with`]'s.
pub fn dry_run(cfg: &PicarxConfig) -> Result<(Hardware, Arc<Mutex<Recording>>), HwError> {
    let rec = Arc::new(Mutex::new(Recording::new()));
    let hw = open_with(rec.clone(), cfg)?;
    Ok((hw, rec))
}

#[cfg(test)]
mod tests {
    use super::transport::Transaction;
    use super::*;

    use super::transport::fixtures::{gpio as g, read as r, write as w};

    fn take(rec: &Arc<Mutex<Recording>>) -> Vec<Transaction> {
        rec.lock().unwrap().take()
    }

    fn started() -> (Hardware, Arc<Mutex<Recording>>) {
        let (hw, rec) = dry_run(&PicarxConfig::default()).unwrap();
        take(&rec);
        (hw, rec)
    }

    #[test]
    fn start_up_resets_inits_pwm_centres_and_stops() {
        let (_, rec) = dry_run(&PicarxConfig::default()).unwrap();
        assert_eq!(
            take(&rec),
            vec![
                g(5, Level::Low),
                g(5, Level::High),
                w(&[0x40, 0x04, 0xaf]),
                w(&[0x44, 0x04, 0xb0]),
                w(&[0x43, 0x04, 0xaf]),
                w(&[0x47, 0x04, 0xb0]),
                w(&[0x22, 0x00, 0x5a]),
                w(&[0x2d, 0x00, 0x00]),
                w(&[0x2c, 0x00, 0x00]),
            ]
        );
    }

    #[test]
    fn start_up_applies_steering_trim() {
        let cfg = PicarxConfig {
            steering_trim_deg: 5.0,
            ..PicarxConfig::default()
        };
        let (_, rec) = dry_run(&cfg).unwrap();
        // 0° + 5°: a 1556 µs pulse, 93 ticks.
        assert!(take(&rec).contains(&w(&[0x22, 0x00, 0x5d])));
    }

    #[test]
    fn trim_is_added_before_the_steering_limit() {
        for (trim, deg, tick) in [(5.0, 30.0, 0x6e), (-5.0, -30.0, 0x46), (5.0, 25.0, 0x6e)] {
            let cfg = PicarxConfig {
                steering_trim_deg: trim,
                ..PicarxConfig::default()
            };
            let (hw, rec) = dry_run(&cfg).unwrap();
            take(&rec);
            hw.steering.lock().set_angle(deg).unwrap();
            // The servo gets ±30° (110 / 70 ticks), not ±35° (113 / 67).
            assert_eq!(take(&rec), vec![w(&[0x22, 0x00, tick])], "{trim} {deg}");
        }
    }

    #[test]
    fn steering_angles() {
        let (hw, rec) = started();
        for (deg, tick) in [(-30.0, 0x46), (0.0, 0x5a), (30.0, 0x6e)] {
            hw.steering.lock().set_angle(deg).unwrap();
            assert_eq!(take(&rec), vec![w(&[0x22, 0x00, tick])], "{deg}");
        }
    }

    #[test]
    fn steering_out_of_range_is_rejected_before_sending() {
        let (hw, rec) = started();
        for deg in [-30.5, 31.0, 90.0, f64::NAN] {
            match hw.steering.lock().set_angle(deg) {
                Err(HwError::OutOfRange { device, range, .. }) => {
                    assert_eq!(device, "steering servo (P2)");
                    assert_eq!(range, "-30..=30 degrees");
                }
                other => panic!("{deg}: expected OutOfRange, got {other:?}"),
            }
        }
        assert!(take(&rec).is_empty());
    }

    #[test]
    fn drive_writes_direction_before_speed() {
        let (hw, rec) = started();
        hw.drive.lock().set_power(50.0, 50.0).unwrap();
        assert_eq!(
            take(&rec),
            vec![
                g(23, Level::Low),
                w(&[0x2d, 0x02, 0x58]),
                g(24, Level::High),
                w(&[0x2c, 0x02, 0x58]),
            ]
        );
        hw.drive.lock().set_power(-100.0, -29.0).unwrap();
        assert_eq!(
            take(&rec),
            vec![
                g(23, Level::High),
                w(&[0x2d, 0x04, 0xb0]),
                g(24, Level::Low),
                w(&[0x2c, 0x01, 0x50]), // 336
            ]
        );
    }

    #[test]
    fn zero_power_leaves_the_direction_pin() {
        let (hw, rec) = started();
        hw.drive.lock().set_power(0.0, 0.0).unwrap();
        assert_eq!(
            take(&rec),
            vec![w(&[0x2d, 0x00, 0x00]), w(&[0x2c, 0x00, 0x00])]
        );
    }

    #[test]
    fn bad_power_sends_nothing() {
        let (hw, rec) = started();
        for (l, r) in [(100.5, 0.0), (0.0, -101.0), (f64::NAN, 0.0)] {
            assert!(matches!(
                hw.drive.lock().set_power(l, r),
                Err(HwError::OutOfRange { .. })
            ));
        }
        assert!(take(&rec).is_empty());
        match hw.drive.lock().set_power(0.0, 200.0) {
            Err(HwError::OutOfRange { device, .. }) => assert_eq!(device, "right motor (P12)"),
            other => panic!("expected OutOfRange, got {other:?}"),
        };
    }

    #[test]
    fn grayscale_reads_a0_a1_a2() {
        let (hw, rec) = started();
        rec.lock()
            .unwrap()
            .queue_i2c_reads(&[0x01, 0x00, 0x0f, 0xff, 0x00, 0x2a]);
        assert_eq!(hw.line.lock().read().unwrap(), [256, 4095, 42]);
        assert_eq!(
            take(&rec),
            vec![
                w(&[0x17, 0, 0]),
                r(0x01),
                r(0x00),
                w(&[0x16, 0, 0]),
                r(0x0f),
                r(0xff),
                w(&[0x15, 0, 0]),
                r(0x00),
                r(0x2a),
            ]
        );
    }

    #[test]
    fn battery_reads_a4_times_three() {
        let (hw, rec) = started();
        rec.lock().unwrap().queue_i2c_reads(&[0x0f, 0xff]);
        let v = hw.battery.lock().voltage().unwrap();
        assert!((v - 9.9).abs() < 1e-12, "{v}");
        assert_eq!(take(&rec), vec![w(&[0x13, 0, 0]), r(0x0f), r(0xff)]);
    }

    /// What one ranging sends: the trigger pulse, then the echo measurement.
    fn ranging(echo: Echo) -> Vec<Transaction> {
        vec![
            g(27, Level::Low),
            g(27, Level::High),
            g(27, Level::Low),
            Transaction::pulse(22, Duration::from_millis(25), echo),
        ]
    }

    #[test]
    fn ultrasonic_triggers_then_times_the_echo() {
        let (hw, rec) = started();
        let echo = Echo::Pulse(Duration::from_micros(10_000));
        rec.lock().unwrap().queue_echo(echo);
        let d = hw.ranger.lock().distance_m().unwrap().unwrap();
        assert!((d - 1.715).abs() < 1e-9, "{d}");
        let trace = take(&rec);
        assert_eq!(trace, ranging(echo));
        assert_eq!(
            trace[3],
            Transaction::GpioPulse {
                bcm: 22,
                timeout_us: 25_000,
                rose: true,
                width_us: Some(10_000)
            }
        );
    }

    #[test]
    fn ultrasonic_pulse_past_the_timeout_is_nothing_in_range() {
        let (hw, rec) = started();
        rec.lock().unwrap().queue_echo(Echo::NoFall);
        assert_eq!(hw.ranger.lock().distance_m().unwrap(), None);
        assert_eq!(take(&rec), ranging(Echo::NoFall));
    }

    #[test]
    fn ultrasonic_without_an_echo_is_an_error_naming_the_device() {
        let cfg = PicarxConfig {
            ultrasonic_timeout_ms: 30,
            ..PicarxConfig::default()
        };
        let (hw, rec) = dry_run(&cfg).unwrap();
        take(&rec);
        rec.lock().unwrap().queue_echo(Echo::NoRise);
        match hw.ranger.lock().distance_m() {
            Err(HwError::Io { device, reason }) => {
                assert_eq!(device, "ultrasonic (gpio 22)");
                assert_eq!(reason, "no echo within 30 ms");
            }
            other => panic!("expected Io, got {other:?}"),
        }
        // The next ranging works again once the sensor answers.
        rec.lock()
            .unwrap()
            .queue_echo(Echo::Pulse(Duration::from_micros(1_000)));
        let d = hw.ranger.lock().distance_m().unwrap().unwrap();
        assert!((d - 0.1715).abs() < 1e-9, "{d}");
    }

    /// A transport whose echo line reports that a wait began, then waits until released.
    struct GatedEcho {
        began: std::sync::mpsc::Sender<()>,
        release: Arc<Mutex<std::sync::mpsc::Receiver<Echo>>>,
    }

    impl Transport for GatedEcho {
        fn i2c_write(&mut self, _: u16, _: &[u8]) -> Result<(), HwError> {
            Ok(())
        }
        fn i2c_read_byte(&mut self, _: u16) -> Result<u8, HwError> {
            Ok(0)
        }
        fn gpio_write(&mut self, _: u8, _: Level) -> Result<(), HwError> {
            Ok(())
        }
        fn gpio_read(&mut self, _: u8) -> Result<Level, HwError> {
            Ok(Level::Low)
        }
        fn echo_line(&mut self, _: u8) -> Result<Box<dyn EchoLine>, HwError> {
            Ok(Box::new(GatedLine {
                began: self.began.clone(),
                release: self.release.clone(),
            }))
        }
        fn delay(&mut self, _: Duration) {}
    }

    struct GatedLine {
        began: std::sync::mpsc::Sender<()>,
        release: Arc<Mutex<std::sync::mpsc::Receiver<Echo>>>,
    }

    impl EchoLine for GatedLine {
        fn pulse(&mut self, _: Duration) -> Result<Echo, HwError> {
            self.began.send(()).unwrap();
            Ok(self.release.lock().unwrap().recv().unwrap())
        }
    }

    #[test]
    fn i2c_writes_proceed_while_the_ranger_waits_for_its_echo() {
        let (began_tx, began) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel();
        let gated = GatedEcho {
            began: began_tx,
            release: Arc::new(Mutex::new(release_rx)),
        };
        let rec = Arc::new(Mutex::new(Recording::tap(Box::new(gated))));
        let link: Link = rec.clone();
        let hat = Hat::new(link.clone(), &PicarxConfig::default());
        let mut ranger = Ultrasonic::new(hat.clone(), Duration::from_millis(25));
        let worker = std::thread::spawn(move || ranger.distance_m());

        began.recv().unwrap(); // the echo wait is in progress, and stays so until released
        assert!(
            link.try_lock().is_ok(),
            "the echo wait holds the transport's lock"
        );
        hat.set_channel(protocol::STEERING_CHANNEL, 90).unwrap();
        let echo = Echo::Pulse(Duration::from_micros(2_000));
        release.send(echo).unwrap();
        let d = worker.join().unwrap().unwrap().unwrap();
        assert!((d - 0.343).abs() < 1e-9, "{d}");

        // The steering write went out while the ranger waited: before the pulse ended.
        let mut expected = ranging(echo);
        expected.insert(3, w(&[0x22, 0x00, 0x5a]));
        assert_eq!(take(&rec), expected);
    }

    #[test]
    fn hat_rejects_bad_channels() {
        let rec = Arc::new(Mutex::new(Recording::new()));
        let hat = Hat::new(rec.clone(), &PicarxConfig::default());
        match hat.read_adc(8) {
            Err(HwError::OutOfRange { device, .. }) => assert_eq!(device, "i2c-1@0x14"),
            other => panic!("expected OutOfRange, got {other:?}"),
        }
        assert!(hat.set_channel(20, 0).is_err());
        assert!(take(&rec).is_empty());
    }

    #[test]
    fn open_on_a_machine_without_the_hat_fails_naming_the_device() {
        let cfg = PicarxConfig::default();
        // On the robot itself this would drive the motors: only run where bus 1 is absent.
        if std::path::Path::new("/dev/i2c-1").exists() {
            return;
        }
        match open(&cfg) {
            Err(HwError::Open { device, reason }) => {
                assert_eq!(device, "i2c-1@0x14");
                assert!(reason.contains("os error"), "{reason}");
            }
            Err(other) => panic!("expected Open, got {other:?}"),
            Ok(_) => panic!("expected Open, got a robot"),
        }
        let msg = open(&cfg).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.starts_with("cannot open i2c-1@0x14: "), "{msg}");
    }

    #[test]
    fn default_config_checks_clean() {
        let mut problems = Problems::default();
        PicarxConfig::default().check("hw.picarx", &mut problems);
        assert!(problems.0.is_empty(), "{:?}", problems.0);
    }

    #[test]
    fn config_check_names_key_paths() {
        let cfg = PicarxConfig {
            i2c_bus: 1,
            i2c_address: 0x80,
            ultrasonic_timeout_ms: 0,
            steering_trim_deg: 25.0,
        };
        let mut problems = Problems::default();
        cfg.check("hw.picarx", &mut problems);
        let keys: Vec<_> = problems.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "hw.picarx.i2c_address",
                "hw.picarx.ultrasonic_timeout_ms",
                "hw.picarx.steering_trim_deg"
            ]
        );
        assert_eq!(
            problems.0[0].to_string(),
            "hw.picarx.i2c_address: must be a 7-bit address between 0x08 and 0x77 (is 0x80)"
        );
    }

    #[test]
    fn config_trim_nan_is_a_problem() {
        let cfg = PicarxConfig {
            steering_trim_deg: f64::NAN,
            ..PicarxConfig::default()
        };
        let mut problems = Problems::default();
        cfg.check("p", &mut problems);
        assert_eq!(problems.0.len(), 1);
        assert_eq!(problems.0[0].key, "p.steering_trim_deg");
    }

    #[test]
    fn config_serde_defaults_and_unknown_fields() {
        let cfg: PicarxConfig = serde_json::from_str(r#"{"steering_trim_deg": -1.5}"#).unwrap();
        assert_eq!(
            cfg,
            PicarxConfig {
                steering_trim_deg: -1.5,
                ..PicarxConfig::default()
            }
        );
        assert!(serde_json::from_str::<PicarxConfig>(r#"{"i2c_adress": 20}"#).is_err());
        assert_eq!(cfg.ultrasonic_timeout(), Duration::from_millis(25));
    }
}
