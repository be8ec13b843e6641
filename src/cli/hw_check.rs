//! The hardware bring-up self-test: a fixed sequence of operations on the real HAT (or a
//! dry run of it), each with the exact bus transactions it caused.
//!
//! Semantics:
//! - The operations run in this order, named exactly: `pwm_init_50hz`,
//!   `steering_angle_-30`, `steering_angle_0`, `steering_angle_+30`, `motor_left_+50`,
//!   `motor_left_-50`, `motor_left_0`, `motor_right_+50`, `motor_right_-50`,
//!   `motor_right_0`, `adc_read_A0`, `adc_read_A1`, `adc_read_A2`, `adc_read_A4`,
//!   `ultrasonic_read`.
//! - `pwm_init_50hz` first pulses the MCU reset line (BCM 5 low, then high) and then
//!   programs timers 0 and 3, as the start-up of [`crate::hw::picarx::open`] does: the
//!   self-test starts from the MCU's power-on state too.
//! - Steering angles are commanded angles; the configured trim is added as in normal
//!   running. Every motor is back at 0 before the next one moves.
//! - The battery voltage is read within `adc_read_A4` (the battery is on A4): the same
//!   select and two reads; [`summary`] shows it as A4's volts × 3. No separate operation,
//!   so the bus sees no second, redundant read.
//! - `ultrasonic_read` triggers one ranging and times its echo. An echo line that never
//!   rises fails the check with `ultrasonic (gpio 22): no echo within 25 ms` (the sensor
//!   is missing, unplugged or broken); an echo past the timeout is "nothing within range"
//!   and passes. [`summary`] shows the distance read.
//! - A dry run ([`run`] with `dry_run`) uses a [`Recording`] alone: nothing leaves the
//!   process, every read answers 0 and the echo is "nothing within range". A real run records over [`Rppal`], so the trace
//!   holds the real readings. If an operation fails, both motors are set to 0 (best
//!   effort) before the error is returned, so a failed check never leaves a motor running.
//!
//! The trace ([`write_trace`]) is a pretty-printed JSON list of operations:
//! `[{"operation": "steering_angle_0", "transactions": [{"bus": "i2c", "op": "write",
//! "addr": "0x14", "wire": "22 00 5a"}]}, …]`.
//!
//! ```
//! use nevil::hw::picarx::PicarxConfig;
//! let ops = nevil::cli::hw_check::run(&PicarxConfig::default(), true)?;
//! assert_eq!(ops.len(), 15);
//! assert_eq!(ops[2].operation, "steering_angle_0");
//! # Ok::<(), nevil::hw::HwError>(())
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::hw::picarx::protocol::{self, MotorWiring, LEFT_MOTOR, RIGHT_MOTOR};
use crate::hw::picarx::transport::{Recording, Rppal, Transaction};
use crate::hw::picarx::{Hat, PicarxConfig, SteeringServo, Ultrasonic, PINS};
use crate::hw::{HwError, Ranger, Steering};

/// One step of the self-test and the transactions it caused, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The step's name, e.g. `motor_left_+50`.
    pub operation: String,
    /// What went over the buses during the step.
    pub transactions: Vec<Transaction>,
}

/// What one step does.
enum Step {
    PwmInit,
    Steering(f64),
    Motor(&'static MotorWiring, f64),
    Adc(u8),
    Ranging,
}

/// The self-test, in order.
const PLAN: [(&str, Step); 15] = [
    ("pwm_init_50hz", Step::PwmInit),
    ("steering_angle_-30", Step::Steering(-30.0)),
    ("steering_angle_0", Step::Steering(0.0)),
    ("steering_angle_+30", Step::Steering(30.0)),
    ("motor_left_+50", Step::Motor(&LEFT_MOTOR, 50.0)),
    ("motor_left_-50", Step::Motor(&LEFT_MOTOR, -50.0)),
    ("motor_left_0", Step::Motor(&LEFT_MOTOR, 0.0)),
    ("motor_right_+50", Step::Motor(&RIGHT_MOTOR, 50.0)),
    ("motor_right_-50", Step::Motor(&RIGHT_MOTOR, -50.0)),
    ("motor_right_0", Step::Motor(&RIGHT_MOTOR, 0.0)),
    ("adc_read_A0", Step::Adc(0)),
    ("adc_read_A1", Step::Adc(1)),
    ("adc_read_A2", Step::Adc(2)),
    ("adc_read_A4", Step::Adc(protocol::BATTERY_ADC)),
    ("ultrasonic_read", Step::Ranging),
];

/// Runs the self-test on the real HAT, or as a dry run, and returns every operation
/// with its transactions.
///
/// # Errors
///
/// [`HwError::Open`] when the real devices cannot be opened (always, on a machine that is
/// not a Pi), naming the device; the first [`HwError::Io`] of a real run.
pub fn run(cfg: &PicarxConfig, dry_run: bool) -> Result<Vec<Operation>, HwError> {
    let rec = if dry_run {
        Recording::new()
    } else {
        Recording::tap(Box::new(Rppal::open(cfg.i2c_bus, cfg.i2c_address, &PINS)?))
    };
    run_on(&Arc::new(Mutex::new(rec)), cfg)
}

/// Runs the self-test over `rec`: a dry recording (with queued answers, for tests) or
/// one tapping a real transport. Transactions already in `rec` are discarded.
///
/// # Errors
///
/// The first failure; both motors are set to 0 (best effort) before it is returned.
pub fn run_on(rec: &Arc<Mutex<Recording>>, cfg: &PicarxConfig) -> Result<Vec<Operation>, HwError> {
    let take = || rec.lock().unwrap_or_else(PoisonError::into_inner).take();
    let hat = Hat::new(rec.clone(), cfg);
    let mut steering = SteeringServo::new(hat.clone(), cfg.steering_trim_deg);
    let mut ranger = Ultrasonic::new(hat.clone(), cfg.ultrasonic_timeout());
    take();
    let mut ops = Vec::with_capacity(PLAN.len());
    for (name, step) in &PLAN {
        let done = match step {
            Step::PwmInit => hat.reset_mcu().and_then(|()| hat.init_pwm()),
            Step::Steering(deg) => steering.set_angle(*deg),
            Step::Motor(wiring, power) => hat.set_motor(wiring, *power),
            Step::Adc(channel) => hat.read_adc(*channel).map(|_| ()),
            Step::Ranging => ranger.distance_m().map(|_| ()),
        };
        if let Err(e) = done {
            // A failed step may leave a motor at 50 %: stop both before reporting. Their
            // own errors are dropped; the first failure is the one worth reading.
            let _ = hat.set_motor(&LEFT_MOTOR, 0.0);
            let _ = hat.set_motor(&RIGHT_MOTOR, 0.0);
            return Err(e);
        }
        ops.push(Operation {
            operation: (*name).to_owned(),
            transactions: take(),
        });
    }
    Ok(ops)
}

/// The ADC channel and raw reading of an `adc_read_*` operation, from its transactions:
/// the channel from the select byte `(7 − N) | 0x10`, the reading from the two bytes
/// read after it. `None` for any other operation.
pub fn adc_reading(op: &Operation) -> Option<(u8, u16)> {
    let mut channel = None;
    let mut bytes = Vec::new();
    for t in &op.transactions {
        match t {
            Transaction::I2cWrite { bytes: wire, .. } => {
                let select = *wire.first()?;
                if !(0x10..=0x17).contains(&select) {
                    return None;
                }
                channel = Some(7 - (select & 0x07));
                bytes.clear();
            }
            Transaction::I2cRead { byte, .. } => bytes.push(*byte),
            _ => {}
        }
    }
    match (channel, bytes.as_slice()) {
        (Some(ch), &[hi, lo]) => Some((ch, protocol::adc_raw(hi, lo))),
        _ => None,
    }
}

/// What the echo measurement of an `ultrasonic_read` operation gave: `Some(Some(m))` a
/// distance in metres, `Some(None)` nothing within range; `None` for any other operation.
pub fn ranging(op: &Operation) -> Option<Option<f64>> {
    op.transactions.iter().find_map(|t| match t {
        Transaction::GpioPulse {
            rose: true,
            width_us,
            ..
        } => Some(width_us.map(|us| protocol::echo_distance_m(us as f64 / 1e6))),
        _ => None,
    })
}

/// A human summary: operations and transaction counts, each ADC reading in volts, the
/// battery voltage (A4 × 3) and the ultrasonic reading.
pub fn summary(ops: &[Operation]) -> String {
    let total: usize = ops.iter().map(|op| op.transactions.len()).sum();
    let mut out = format!("hw-check: {} operations, {total} transactions\n", ops.len());
    // Writing to a String cannot fail.
    for op in ops {
        let _ = writeln!(
            out,
            "  {:<20} {} transactions",
            op.operation,
            op.transactions.len()
        );
    }
    for (channel, raw) in ops.iter().filter_map(adc_reading) {
        let _ = writeln!(
            out,
            "adc A{channel}: raw {raw} = {:.3} V",
            protocol::adc_volts(raw)
        );
        if channel == protocol::BATTERY_ADC {
            let _ = writeln!(
                out,
                "battery: {:.2} V (A{channel} x {})",
                protocol::battery_volts(raw),
                protocol::BATTERY_DIVIDER
            );
        }
    }
    for reading in ops.iter().filter_map(ranging) {
        let _ = match reading {
            Some(m) => writeln!(out, "ultrasonic: {m:.3} m"),
            None => writeln!(out, "ultrasonic: nothing within range"),
        };
    }
    out
}

/// Writes the operations to `path` as a pretty-printed JSON list.
///
/// # Errors
///
/// The I/O error of creating or writing the file.
pub fn write_trace(ops: &[Operation], path: &Path) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(ops).map_err(std::io::Error::other)?;
    text.push('\n');
    std::fs::write(path, text)
}

/// `nevil hw-check`: runs the self-test on the PiCar-X of `config` (the built-in
/// `[picarx]` defaults without one), prints its summary and writes the trace.
pub fn main(config: Option<&Path>, dry_run: bool, trace: Option<&Path>) -> ExitCode {
    let picarx = match config {
        Some(path) => match super::load_config(Some(path)) {
            Ok(c) => c.picarx,
            Err(code) => return code,
        },
        None => Default::default(),
    };
    let ops = match run(&picarx, dry_run) {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("nevil hw-check: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", summary(&ops));
    if let Some(path) = trace {
        if let Err(e) = write_trace(&ops, path) {
            eprintln!("nevil hw-check: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::picarx::protocol::Level;
    use crate::hw::picarx::transport::{Echo, EchoLine, Transport};
    use serde_json::json;
    use std::time::Duration;

    use crate::hw::picarx::transport::fixtures::{read as r, write as w};

    fn g(bcm: u8, level: u8) -> Transaction {
        crate::hw::picarx::transport::fixtures::gpio(bcm, Level::from_bit(level))
    }

    fn dry() -> Vec<Operation> {
        run(&PicarxConfig::default(), true).unwrap()
    }

    fn op<'a>(ops: &'a [Operation], name: &str) -> &'a Operation {
        ops.iter().find(|o| o.operation == name).unwrap()
    }

    #[test]
    fn operations_in_order() {
        let names: Vec<_> = dry().into_iter().map(|o| o.operation).collect();
        assert_eq!(
            names,
            [
                "pwm_init_50hz",
                "steering_angle_-30",
                "steering_angle_0",
                "steering_angle_+30",
                "motor_left_+50",
                "motor_left_-50",
                "motor_left_0",
                "motor_right_+50",
                "motor_right_-50",
                "motor_right_0",
                "adc_read_A0",
                "adc_read_A1",
                "adc_read_A2",
                "adc_read_A4",
                "ultrasonic_read",
            ]
        );
    }

    #[test]
    fn exact_transactions_of_every_operation() {
        let expected: Vec<(&str, Vec<Transaction>)> = vec![
            (
                "pwm_init_50hz",
                vec![
                    g(5, 0),
                    g(5, 1),
                    w(&[0x40, 0x04, 0xaf]),
                    w(&[0x44, 0x04, 0xb0]),
                    w(&[0x43, 0x04, 0xaf]),
                    w(&[0x47, 0x04, 0xb0]),
                ],
            ),
            ("steering_angle_-30", vec![w(&[0x22, 0x00, 0x46])]),
            ("steering_angle_0", vec![w(&[0x22, 0x00, 0x5a])]),
            ("steering_angle_+30", vec![w(&[0x22, 0x00, 0x6e])]),
            ("motor_left_+50", vec![g(23, 0), w(&[0x2d, 0x02, 0x58])]),
            ("motor_left_-50", vec![g(23, 1), w(&[0x2d, 0x02, 0x58])]),
            ("motor_left_0", vec![w(&[0x2d, 0x00, 0x00])]),
            ("motor_right_+50", vec![g(24, 1), w(&[0x2c, 0x02, 0x58])]),
            ("motor_right_-50", vec![g(24, 0), w(&[0x2c, 0x02, 0x58])]),
            ("motor_right_0", vec![w(&[0x2c, 0x00, 0x00])]),
            ("adc_read_A0", vec![w(&[0x17, 0, 0]), r(0), r(0)]),
            ("adc_read_A1", vec![w(&[0x16, 0, 0]), r(0), r(0)]),
            ("adc_read_A2", vec![w(&[0x15, 0, 0]), r(0), r(0)]),
            ("adc_read_A4", vec![w(&[0x13, 0, 0]), r(0), r(0)]),
            (
                "ultrasonic_read",
                vec![
                    g(27, 0),
                    g(27, 1),
                    g(27, 0),
                    Transaction::pulse(22, Duration::from_millis(25), Echo::NoFall),
                ],
            ),
        ];
        let got: Vec<(String, Vec<Transaction>)> = dry()
            .into_iter()
            .map(|o| (o.operation, o.transactions))
            .collect();
        let expected: Vec<(String, Vec<Transaction>)> = expected
            .into_iter()
            .map(|(n, t)| (n.to_owned(), t))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn byte_contract_as_json() {
        let ops = dry();
        assert_eq!(
            serde_json::to_value(op(&ops, "steering_angle_0")).unwrap(),
            json!({"operation": "steering_angle_0", "transactions": [
                {"bus": "i2c", "op": "write", "addr": "0x14", "wire": "22 00 5a"}
            ]})
        );
        assert_eq!(
            serde_json::to_value(&op(&ops, "motor_left_+50").transactions).unwrap(),
            json!([
                {"bus": "gpio", "op": "write", "bcm": 23, "level": 0},
                {"bus": "i2c", "op": "write", "addr": "0x14", "wire": "2d 02 58"}
            ])
        );
        assert_eq!(
            serde_json::to_value(&op(&ops, "adc_read_A0").transactions).unwrap(),
            json!([
                {"bus": "i2c", "op": "write", "addr": "0x14", "wire": "17 00 00"},
                {"bus": "i2c", "op": "read", "addr": "0x14", "wire": "00"},
                {"bus": "i2c", "op": "read", "addr": "0x14", "wire": "00"}
            ])
        );
    }

    #[test]
    fn trim_shifts_the_steering_ops() {
        let cfg = PicarxConfig {
            steering_trim_deg: 2.25,
            ..PicarxConfig::default()
        };
        let ops = run(&cfg, true).unwrap();
        assert_eq!(
            op(&ops, "steering_angle_0").transactions,
            [w(&[0x22, 0x00, 92])]
        );
    }

    #[test]
    fn summary_shows_readings_and_battery() {
        let rec = Arc::new(Mutex::new(Recording::new()));
        rec.lock()
            .unwrap()
            .queue_i2c_reads(&[0x08, 0x00, 0x00, 0x10, 0x0f, 0xff, 0x0a, 0xaa]);
        let ops = run_on(&rec, &PicarxConfig::default()).unwrap();
        let readings: Vec<_> = ops.iter().filter_map(adc_reading).collect();
        assert_eq!(readings, [(0, 0x800), (1, 0x10), (2, 4095), (4, 0xaaa)]);
        let text = summary(&ops);
        assert!(
            text.starts_with("hw-check: 15 operations, 35 transactions\n"),
            "{text}"
        );
        assert!(text.contains("adc A2: raw 4095 = 3.300 V\n"), "{text}");
        assert!(text.contains("adc A4: raw 2730 = 2.200 V\n"), "{text}");
        assert!(text.contains("battery: 6.60 V (A4 x 3)\n"), "{text}");
        assert!(
            text.contains("ultrasonic: nothing within range\n"),
            "{text}"
        );
    }

    #[test]
    fn summary_shows_the_distance() {
        let rec = Arc::new(Mutex::new(Recording::new()));
        rec.lock()
            .unwrap()
            .queue_echo(Echo::Pulse(Duration::from_micros(5_831)));
        let ops = run_on(&rec, &PicarxConfig::default()).unwrap();
        let d = ranging(op(&ops, "ultrasonic_read")).unwrap().unwrap();
        assert!((d - 1.0).abs() < 1e-4, "{d}");
        assert_eq!(ranging(op(&ops, "adc_read_A0")), None);
        assert!(summary(&ops).contains("ultrasonic: 1.000 m\n"));
    }

    #[test]
    fn a_missing_echo_fails_the_check_naming_the_sensor() {
        let rec = Arc::new(Mutex::new(Recording::new()));
        rec.lock().unwrap().queue_echo(Echo::NoRise);
        let err = run_on(&rec, &PicarxConfig::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ultrasonic (gpio 22): no echo within 25 ms"
        );
        // The ranging, then every motor stopped on the way out, as after any failed step.
        let rest = rec.lock().unwrap().take();
        assert_eq!(
            rest[3..],
            [
                Transaction::pulse(22, Duration::from_millis(25), Echo::NoRise),
                w(&[0x2d, 0x00, 0x00]),
                w(&[0x2c, 0x00, 0x00])
            ]
        );
    }

    #[test]
    fn trace_file_is_a_pretty_json_list() {
        let ops = dry();
        let path = std::env::temp_dir().join(format!("nevil-hw-check-{}.json", std::process::id()));
        write_trace(&ops, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            text.starts_with("[\n  {\n    \"operation\": \"pwm_init_50hz\""),
            "{text}"
        );
        let back: Vec<Operation> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ops);
    }

    #[test]
    fn real_run_on_a_machine_without_the_hat_fails_naming_the_device() {
        // On the robot itself this would move the car: only run where bus 1 is absent.
        if Path::new("/dev/i2c-1").exists() {
            return;
        }
        match run(&PicarxConfig::default(), false) {
            Err(HwError::Open { device, reason }) => {
                assert_eq!(device, "i2c-1@0x14");
                assert!(reason.contains("os error"), "{reason}");
            }
            other => panic!("expected Open, got {other:?}"),
        }
    }

    /// Fails the left motor's reverse direction write; everything else succeeds.
    struct FailReverse;

    impl Transport for FailReverse {
        fn i2c_write(&mut self, _: u16, _: &[u8]) -> Result<(), HwError> {
            Ok(())
        }
        fn i2c_read_byte(&mut self, _: u16) -> Result<u8, HwError> {
            Ok(0)
        }
        fn gpio_write(&mut self, bcm: u8, level: Level) -> Result<(), HwError> {
            if bcm == 23 && level == Level::High {
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
        fn echo_line(&mut self, _: u8) -> Result<Box<dyn EchoLine>, HwError> {
            Err(HwError::Io {
                device: "gpio 22".to_owned(),
                reason: "not used by this test".to_owned(),
            })
        }
        fn delay(&mut self, _: Duration) {}
    }

    #[test]
    fn a_failed_step_stops_the_motors() {
        let rec = Arc::new(Mutex::new(Recording::tap(Box::new(FailReverse))));
        match run_on(&rec, &PicarxConfig::default()) {
            Err(HwError::Io { device, .. }) => assert_eq!(device, "gpio 23"),
            other => panic!("expected Io, got {other:?}"),
        }
        // What was sent after motor_left_+50 was taken: the stop of both motors.
        assert_eq!(
            rec.lock().unwrap().transactions(),
            [w(&[0x2d, 0x00, 0x00]), w(&[0x2c, 0x00, 0x00])]
        );
    }

    #[test]
    fn adc_reading_ignores_other_operations() {
        let ops = dry();
        assert_eq!(adc_reading(op(&ops, "steering_angle_0")), None);
        assert_eq!(adc_reading(op(&ops, "pwm_init_50hz")), None);
        assert_eq!(adc_reading(op(&ops, "adc_read_A4")), Some((4, 0)));
    }
}
