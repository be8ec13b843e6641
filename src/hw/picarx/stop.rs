//! Stopping the HAT from outside a running robot: what `nevil hw-stop` does after the
//! robot's process died (systemd's `ExecStopPost=`), and what a dying process can do
//! for itself.
//!
//! Semantics:
//! - [`stop`] runs three steps, each attempted whatever the previous one did (best
//!   effort), each recording the transactions that went through:
//!   1. `mcu_reset`: the reset pulse on BCM 5 (low 10 ms, high, 200 ms to boot; see
//!      [`Hat::reset_mcu`]). It frees an MCU stuck in an I2C transfer, so the writes that
//!      follow land.
//!   2. `pwm_off`: every PWM channel value register, P0 to P19, set to 0
//!      ([`protocol::all_channels_off`]), so the motors stop even where the reset line
//!      is not wired. The steering servo (P2) gets 0 too: a zero pulse releases it where
//!      it stands. Centring it instead would need the timers programmed and would move
//!      the wheels of a robot that should be still.
//!   3. `motor_dir_low`: both motor direction pins (D4, D5) low.
//! - The motors are stopped ([`StopReport::motors_stopped`]) when the writes to both
//!   motor channels (P13, P12) went through; the other steps' failures are reported
//!   but do not change that.
//! - [`Devices::open`] opens what it can: the I2C bus, then each GPIO pin on its own, so
//!   a missing reset GPIO costs the reset step, not the PWM writes. The pins keep their
//!   levels after the process exits (rppal would otherwise put them back as inputs).
//! - [`zero_pwm`] is the part a process that still holds the devices can use (from a
//!   panic hook, say): it opens its own handle on the I2C bus (no GPIO, no lock shared
//!   with the robot's devices, so it cannot wait on a lock the panicking thread holds)
//!   and writes 0 to every channel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::protocol::{self, Level};
use super::transport::{
    gpio_reason, i2c_device_name, i2c_read_one, i2c_reason, i2c_write_all, rppal_level, EchoLine,
    Recording, Transaction, Transport,
};
use super::{Hat, PicarxConfig};
use crate::hw::HwError;

/// The output pins [`stop`] opens and the level each is set to at open: the MCU reset
/// line released (high), both motor directions low.
pub const STOP_PINS: [(u8, Level); 3] = [
    (protocol::MCU_RESET, protocol::MCU_RESET_ACTIVE.inverted()),
    (protocol::MOTOR_DIRECTION_PINS[0], Level::Low),
    (protocol::MOTOR_DIRECTION_PINS[1], Level::Low),
];

/// One step of a stop: its name, the transactions that went through, the failures.
#[derive(Debug)]
pub struct Step {
    /// `mcu_reset`, `pwm_off` or `motor_dir_low`.
    pub operation: &'static str,
    /// What went over the buses, in order (failed transfers are not in it).
    pub transactions: Vec<Transaction>,
    /// What failed, in order; empty when the step went through.
    pub errors: Vec<HwError>,
}

/// What a stop did.
#[derive(Debug)]
pub struct StopReport {
    /// Devices that could not be opened (a real run only).
    pub open_errors: Vec<HwError>,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Whether both motor channels (P13, P12) were set to 0.
    pub motors_stopped: bool,
}

/// The real devices a stop needs, each opened on its own: whichever opened is used.
pub struct Devices {
    i2c: Option<rppal::i2c::I2c>,
    bus: u8,
    addr: u16,
    i2c_name: String,
    i2c_open_error: String,
    outputs: HashMap<u8, rppal::gpio::OutputPin>,
}

impl Devices {
    /// Opens `/dev/i2c-{bus}` addressed to `addr`, then each output pin of `outputs` at
    /// its level, kept after the process exits. Never fails as a whole: the devices
    /// that could not be opened come back as [`HwError::Open`], naming them.
    pub fn open(bus: u8, addr: u16, outputs: &[(u8, Level)]) -> (Self, Vec<HwError>) {
        let i2c_name = i2c_device_name(bus, addr);
        let mut errors = Vec::new();
        let open_err = |device: &str, reason: String| HwError::Open {
            device: device.to_owned(),
            reason,
        };
        let i2c = rppal::i2c::I2c::with_bus(bus).and_then(|mut i2c| {
            i2c.set_slave_address(addr)?;
            Ok(i2c)
        });
        let (i2c, i2c_open_error) = match i2c {
            Ok(i2c) => (Some(i2c), String::new()),
            Err(e) => {
                let reason = i2c_reason(&e);
                errors.push(open_err(&i2c_name, reason.clone()));
                (None, reason)
            }
        };
        let mut pins = HashMap::new();
        if !outputs.is_empty() {
            match rppal::gpio::Gpio::new() {
                Ok(gpio) => {
                    for &(bcm, level) in outputs {
                        match gpio.get(bcm) {
                            Ok(pin) => {
                                // Straight to the level: no glitch through the other one
                                // (a low blip on the reset line would reset the MCU).
                                let mut pin = match level {
                                    Level::Low => pin.into_output_low(),
                                    Level::High => pin.into_output_high(),
                                };
                                pin.set_reset_on_drop(false);
                                pins.insert(bcm, pin);
                            }
                            Err(e) => {
                                errors.push(open_err(&format!("gpio {bcm}"), gpio_reason(&e)));
                            }
                        }
                    }
                }
                Err(e) => errors.push(open_err("gpio", gpio_reason(&e))),
            }
        }
        let devices = Self {
            i2c,
            bus,
            addr,
            i2c_name,
            i2c_open_error,
            outputs: pins,
        };
        (devices, errors)
    }

    /// A transfer error on the opened bus.
    fn io(&self, reason: String) -> HwError {
        HwError::Io {
            device: self.i2c_name.clone(),
            reason,
        }
    }

    /// The bus, if it opened and `addr` is the device it was opened for.
    fn i2c(&mut self, addr: u16) -> Result<&mut rppal::i2c::I2c, HwError> {
        if addr != self.addr {
            return Err(HwError::Io {
                device: i2c_device_name(self.bus, addr),
                reason: format!("a stop only talks to {}", self.i2c_name),
            });
        }
        match &mut self.i2c {
            Some(i2c) => Ok(i2c),
            None => Err(HwError::Io {
                device: self.i2c_name.clone(),
                reason: format!("not open ({})", self.i2c_open_error),
            }),
        }
    }
}

impl Transport for Devices {
    fn i2c_write(&mut self, addr: u16, bytes: &[u8]) -> Result<(), HwError> {
        let written = i2c_write_all(self.i2c(addr)?, bytes);
        written.map_err(|reason| self.io(reason))
    }

    fn i2c_read_byte(&mut self, addr: u16) -> Result<u8, HwError> {
        let read = i2c_read_one(self.i2c(addr)?);
        read.map_err(|reason| self.io(reason))
    }

    fn gpio_write(&mut self, bcm: u8, level: Level) -> Result<(), HwError> {
        let pin = self.outputs.get_mut(&bcm).ok_or_else(|| HwError::Io {
            device: format!("gpio {bcm}"),
            reason: "not open as an output".to_owned(),
        })?;
        pin.write(rppal_level(level));
        Ok(())
    }

    fn gpio_read(&mut self, bcm: u8) -> Result<Level, HwError> {
        Err(HwError::Io {
            device: format!("gpio {bcm}"),
            reason: "a stop opens no inputs".to_owned(),
        })
    }

    fn echo_line(&mut self, bcm: u8) -> Result<Box<dyn EchoLine>, HwError> {
        Err(HwError::Io {
            device: format!("gpio {bcm}"),
            reason: "a stop opens no inputs".to_owned(),
        })
    }

    fn delay(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Stops the HAT configured in `cfg`: the real devices, or with `dry_run` a
/// [`Recording`] alone (nothing leaves the process).
pub fn stop(cfg: &PicarxConfig, dry_run: bool) -> StopReport {
    let (rec, open_errors) = if dry_run {
        (Recording::new(), Vec::new())
    } else {
        let (devices, errors) = Devices::open(cfg.i2c_bus, cfg.i2c_address, &STOP_PINS);
        (Recording::tap(Box::new(devices)), errors)
    };
    let mut report = stop_on(&Arc::new(Mutex::new(rec)), cfg);
    report.open_errors = open_errors;
    report
}

/// Runs the stop's steps over `rec` (a dry recording, or one tapping real devices).
/// Transactions already in `rec` are discarded.
pub fn stop_on(rec: &Arc<Mutex<Recording>>, cfg: &PicarxConfig) -> StopReport {
    let take = || rec.lock().unwrap_or_else(PoisonError::into_inner).take();
    let hat = Hat::new(rec.clone(), cfg);
    take();
    let mut steps = Vec::with_capacity(3);

    let errors = hat.reset_mcu().err().into_iter().collect();
    steps.push(Step {
        operation: "mcu_reset",
        transactions: take(),
        errors,
    });

    let (errors, motors_stopped) = {
        let mut t = rec.lock().unwrap_or_else(PoisonError::into_inner);
        pwm_off(&mut *t, cfg.i2c_address)
    };
    steps.push(Step {
        operation: "pwm_off",
        transactions: take(),
        errors,
    });

    let mut errors = Vec::new();
    for bcm in protocol::MOTOR_DIRECTION_PINS {
        let written = rec
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .gpio_write(bcm, Level::Low);
        errors.extend(written.err());
    }
    steps.push(Step {
        operation: "motor_dir_low",
        transactions: take(),
        errors,
    });

    StopReport {
        open_errors: Vec::new(),
        steps,
        motors_stopped,
    }
}

/// Sends [`protocol::all_channels_off`] to the HAT at `addr`, each write attempted; the
/// failures, and whether both motor channels went through.
fn pwm_off(t: &mut dyn Transport, addr: u16) -> (Vec<HwError>, bool) {
    let mut errors = Vec::new();
    let mut motors_stopped = true;
    for (channel, write) in (0u8..).zip(protocol::all_channels_off()) {
        if let Err(e) = t.i2c_write(addr, &write) {
            motors_stopped &= !protocol::MOTOR_CHANNELS.contains(&channel);
            errors.push(e);
        }
    }
    (errors, motors_stopped)
}

/// Sets every PWM channel of the HAT in `cfg` to 0 over a handle of its own on the I2C
/// bus: for a process that still holds the robot's devices (a panic hook). Takes no
/// lock and touches no GPIO; a few ms on a healthy bus.
///
/// # Errors
///
/// The first failure when either motor channel could not be written (the bus did not
/// open, or the write failed), naming the device (`i2c-1@0x14`).
pub fn zero_pwm(cfg: &PicarxConfig) -> Result<(), HwError> {
    let (mut devices, _) = Devices::open(cfg.i2c_bus, cfg.i2c_address, &[]);
    match pwm_off(&mut devices, cfg.i2c_address) {
        (_, true) => Ok(()),
        (mut errors, false) => Err(errors.remove(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::picarx::transport::fixtures::{gpio as g, write as w};

    fn dry() -> StopReport {
        stop(&PicarxConfig::default(), true)
    }

    #[test]
    fn steps_in_order_with_their_exact_transactions() {
        let report = dry();
        assert!(report.motors_stopped);
        assert!(report.open_errors.is_empty());
        let names: Vec<_> = report.steps.iter().map(|s| s.operation).collect();
        assert_eq!(names, ["mcu_reset", "pwm_off", "motor_dir_low"]);
        assert!(report.steps.iter().all(|s| s.errors.is_empty()));
        assert_eq!(
            report.steps[0].transactions,
            [g(5, Level::Low), g(5, Level::High)]
        );
        let expected: Vec<_> = (0x20..=0x33).map(|reg| w(&[reg, 0x00, 0x00])).collect();
        assert_eq!(report.steps[1].transactions, expected);
        assert_eq!(
            report.steps[2].transactions,
            [g(23, Level::Low), g(24, Level::Low)]
        );
    }

    #[test]
    fn stop_uses_the_configured_address() {
        let cfg = PicarxConfig {
            i2c_address: 0x15,
            ..PicarxConfig::default()
        };
        let report = stop(&cfg, true);
        assert!(report.steps[1]
            .transactions
            .iter()
            .all(|t| matches!(t, Transaction::I2cWrite { addr: 0x15, .. })));
    }

    /// Fails the GPIO writes of the pins in `gpio` and the I2C writes whose register
    /// is in `regs`; everything else goes through.
    struct Failing {
        gpio: Vec<u8>,
        regs: Vec<u8>,
    }

    impl Transport for Failing {
        fn i2c_write(&mut self, _: u16, bytes: &[u8]) -> Result<(), HwError> {
            if self.regs.contains(&bytes[0]) {
                return Err(HwError::Io {
                    device: "i2c-1@0x14".to_owned(),
                    reason: "test failure".to_owned(),
                });
            }
            Ok(())
        }
        fn i2c_read_byte(&mut self, _: u16) -> Result<u8, HwError> {
            Ok(0)
        }
        fn gpio_write(&mut self, bcm: u8, _: Level) -> Result<(), HwError> {
            if self.gpio.contains(&bcm) {
                return Err(HwError::Io {
                    device: format!("gpio {bcm}"),
                    reason: "test failure".to_owned(),
                });
            }
            Ok(())
        }
        fn gpio_read(&mut self, _: u8) -> Result<Level, HwError> {
            Ok(Level::Low)
        }
        fn echo_line(&mut self, bcm: u8) -> Result<Box<dyn EchoLine>, HwError> {
            Err(HwError::Io {
                device: format!("gpio {bcm}"),
                reason: "test transport has no inputs".to_owned(),
            })
        }
        fn delay(&mut self, _: Duration) {}
    }

    fn stop_over(failing: Failing) -> StopReport {
        let rec = Arc::new(Mutex::new(Recording::tap(Box::new(failing))));
        stop_on(&rec, &PicarxConfig::default())
    }

    #[test]
    fn no_reset_gpio_still_zeroes_every_channel() {
        let report = stop_over(Failing {
            gpio: vec![5],
            regs: vec![],
        });
        assert!(report.motors_stopped);
        assert!(report.steps[0].transactions.is_empty());
        match &report.steps[0].errors[..] {
            [HwError::Io { device, .. }] => assert_eq!(device, "gpio 5"),
            other => panic!("expected one gpio 5 error, got {other:?}"),
        }
        assert_eq!(report.steps[1].transactions.len(), 20);
        assert_eq!(report.steps[2].transactions.len(), 2);
    }

    #[test]
    fn a_failed_channel_does_not_stop_the_others() {
        let report = stop_over(Failing {
            gpio: vec![],
            regs: vec![0x20, 0x22],
        });
        assert!(report.motors_stopped, "P12 and P13 went through");
        assert_eq!(report.steps[1].errors.len(), 2);
        assert_eq!(report.steps[1].transactions.len(), 18);
        assert!(report.steps[1]
            .transactions
            .contains(&w(&[0x2c, 0x00, 0x00])));
    }

    #[test]
    fn a_failed_motor_channel_means_not_stopped() {
        for reg in [0x2c, 0x2d] {
            let report = stop_over(Failing {
                gpio: vec![23],
                regs: vec![reg],
            });
            assert!(!report.motors_stopped, "{reg:#x}");
            assert_eq!(report.steps[1].transactions.len(), 19);
            assert_eq!(report.steps[2].errors.len(), 1);
            assert_eq!(report.steps[2].transactions, [g(24, Level::Low)]);
        }
    }

    #[test]
    fn devices_talk_only_to_the_address_they_opened() {
        let (mut devices, _) = Devices::open(250, 0x14, &[]);
        match devices.i2c_write(0x15, &[0x20, 0, 0]) {
            Err(HwError::Io { device, reason }) => {
                assert_eq!(device, "i2c-250@0x15");
                assert_eq!(reason, "a stop only talks to i2c-250@0x14");
            }
            other => panic!("expected Io, got {other:?}"),
        }
        // Bus 250 exists nowhere: the right address fails as not open, naming it.
        match devices.i2c_write(0x14, &[0x20, 0, 0]) {
            Err(HwError::Io { device, reason }) => {
                assert_eq!(device, "i2c-250@0x14");
                assert!(reason.starts_with("not open ("), "{reason}");
            }
            other => panic!("expected Io, got {other:?}"),
        }
    }

    #[test]
    fn real_stop_without_the_hat_names_the_bus() {
        // On the robot itself this would reset the HAT: only run where bus 1 is absent.
        if std::path::Path::new("/dev/i2c-1").exists() {
            return;
        }
        let report = stop(&PicarxConfig::default(), false);
        assert!(!report.motors_stopped);
        match report.open_errors.first() {
            Some(HwError::Open { device, reason }) => {
                assert_eq!(device, "i2c-1@0x14");
                assert!(reason.contains("os error"), "{reason}");
            }
            other => panic!("expected Open, got {other:?}"),
        }
        assert!(report.steps[1].transactions.is_empty());
        assert_eq!(report.steps[1].errors.len(), 20);
        let err = zero_pwm(&PicarxConfig::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("i2c-1@0x14: not open ("), "{err}");
    }
}
