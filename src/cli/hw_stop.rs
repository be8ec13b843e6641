//! `nevil hw-stop`: bring every motor output of the robot to zero, for when the robot's
//! process is gone (systemd runs it as the unit's `ExecStopPost=`, after any exit: a
//! crash, a watchdog abort, an OOM kill, the SIGKILL after `TimeoutStopSec`) and the
//! Robot HAT still holds the last PWM values it was sent.
//!
//! Semantics:
//! - The config decides what there is to stop ([`target`]): a `sim` backend (and no
//!   config at all, the embedded simulated default) has no outputs, so nothing is done;
//!   a `picarx` backend stops the HAT at the configured bus and address with
//!   [`crate::hw::picarx::stop::stop`] (MCU reset, every PWM channel to 0, motor
//!   directions low; best effort, step by step). A config that cannot be loaded still
//!   gets a stop, of the PiCar-X at its default bus and address: a broken config must
//!   not leave the wheels turning.
//! - Exit code (in `main`): 0 when the motors were stopped or there is nothing to stop,
//!   1 when both motor channels could not be written (the HAT unreachable: the message
//!   names it, e.g. `i2c-1@0x14`).
//! - The trace ([`operations`], written by [`crate::cli::hw_check::write_trace`]) has
//!   `hw-check --trace`'s format: `[{"operation": "pwm_off", "transactions": [...]}]`,
//!   with `mcu_reset`, `pwm_off` and `motor_dir_low` in that order.
//!
//! ```
//! use nevil::hw::picarx::{stop, PicarxConfig};
//! let report = stop::stop(&PicarxConfig::default(), true);
//! assert!(report.motors_stopped);
//! let ops = nevil::cli::hw_stop::operations(&report);
//! assert_eq!(ops[1].operation, "pwm_off");
//! assert_eq!(ops[1].transactions.len(), 20);
//! ```

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::hw_check::Operation;
use crate::config::{Backend, Config};
use crate::hw::picarx::stop::StopReport;
use crate::hw::picarx::transport::i2c_device_name;
use crate::hw::picarx::PicarxConfig;

/// What `hw-stop` has to stop, by the config.
#[derive(Debug)]
pub enum Target {
    /// The simulated robot: no motor outputs outside the process.
    Sim,
    /// The PiCar-X's HAT with these settings.
    Picarx(PicarxConfig),
    /// The config did not load (the message says why): the PiCar-X's HAT at its
    /// default settings, so a broken config still gets its motors stopped.
    Fallback(PicarxConfig, String),
}

/// What to stop for the config at `path` (the embedded simulated default for `None`).
pub fn target(path: Option<&Path>) -> Target {
    match Config::load(path) {
        Ok(config) => match config.robot.backend {
            Backend::Sim => Target::Sim,
            Backend::Picarx => Target::Picarx(config.picarx),
        },
        Err(e) => Target::Fallback(PicarxConfig::default(), e.to_string()),
    }
}

/// The report's steps as trace operations (`hw-check --trace`'s format).
pub fn operations(report: &StopReport) -> Vec<Operation> {
    report
        .steps
        .iter()
        .map(|step| Operation {
            operation: step.operation.to_owned(),
            transactions: step.transactions.clone(),
        })
        .collect()
}

/// The human summary for stdout: the device, each step with its transaction count,
/// and whether the motors are stopped.
pub fn summary(cfg: &PicarxConfig, report: &StopReport, dry_run: bool) -> String {
    let device = i2c_device_name(cfg.i2c_bus, cfg.i2c_address);
    let mode = if dry_run { " (dry run)" } else { "" };
    let mut out = format!("hw-stop: PiCar-X HAT at {device}{mode}\n");
    // Writing to a String cannot fail.
    for step in &report.steps {
        let state = if step.errors.is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        let _ = writeln!(
            out,
            "  {:<14} {state:<6} {} transactions",
            step.operation,
            step.transactions.len()
        );
    }
    if report.motors_stopped {
        out.push_str("hw-stop: motors stopped (P13, P12 at 0)\n");
    }
    out
}

/// Every failure, one line each for stderr: devices that did not open, then each
/// step's first error (with how many more it had), then the verdict if the motors
/// could not be stopped.
pub fn problems(cfg: &PicarxConfig, report: &StopReport) -> Vec<String> {
    let mut lines: Vec<String> = report.open_errors.iter().map(ToString::to_string).collect();
    for step in &report.steps {
        if let Some(first) = step.errors.first() {
            let more = match step.errors.len() - 1 {
                0 => String::new(),
                n => format!(" (+{n} more)"),
            };
            lines.push(format!("{}: {first}{more}", step.operation));
        }
    }
    if !report.motors_stopped {
        lines.push(format!(
            "the motors could not be stopped: {} is unreachable",
            i2c_device_name(cfg.i2c_bus, cfg.i2c_address)
        ));
    }
    lines
}

/// `nevil hw-stop`: brings every motor output of the robot `config` names to zero, for
/// after its process died; exit 1 unless the motors are known to be stopped.
pub fn main(config: Option<&Path>, dry_run: bool, trace: Option<&Path>) -> ExitCode {
    let write_trace = |ops: &[crate::cli::hw_check::Operation]| match trace {
        Some(path) => crate::cli::hw_check::write_trace(ops, path).map_err(|e| {
            eprintln!("nevil hw-stop: {}: {e}", path.display());
        }),
        None => Ok(()),
    };
    let picarx = match target(config) {
        Target::Sim => {
            println!("hw-stop: the config runs the simulated robot: no motor outputs to stop");
            return match write_trace(&[]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(()) => ExitCode::FAILURE,
            };
        }
        Target::Picarx(picarx) => picarx,
        Target::Fallback(picarx, why) => {
            eprintln!("nevil hw-stop: {why}");
            eprintln!("nevil hw-stop: stopping the PiCar-X HAT at its default address anyway");
            picarx
        }
    };
    let report = crate::hw::picarx::stop::stop(&picarx, dry_run);
    print!("{}", summary(&picarx, &report, dry_run));
    for line in problems(&picarx, &report) {
        eprintln!("nevil hw-stop: {line}");
    }
    // The trace is written whatever happened: it shows what did go through.
    let traced = write_trace(&operations(&report));
    if report.motors_stopped && traced.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::picarx::stop::{stop, Step};
    use crate::hw::HwError;

    #[test]
    fn no_config_is_the_simulated_robot() {
        assert!(matches!(target(None), Target::Sim));
    }

    #[test]
    fn the_picarx_config_targets_its_hat() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/picarx.toml");
        match target(Some(&path)) {
            Target::Picarx(cfg) => assert_eq!((cfg.i2c_bus, cfg.i2c_address), (1, 0x14)),
            other => panic!("expected Picarx, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_config_falls_back_to_the_default_hat() {
        match target(Some(Path::new("/nonexistent/nevil.toml"))) {
            Target::Fallback(cfg, why) => {
                assert_eq!(cfg, PicarxConfig::default());
                assert!(why.contains("/nonexistent/nevil.toml"), "{why}");
            }
            other => panic!("expected Fallback, got {other:?}"),
        }
    }

    #[test]
    fn dry_summary_and_no_problems() {
        let cfg = PicarxConfig::default();
        let report = stop(&cfg, true);
        let text = summary(&cfg, &report, true);
        assert!(
            text.starts_with("hw-stop: PiCar-X HAT at i2c-1@0x14 (dry run)\n"),
            "{text}"
        );
        assert!(
            text.contains("  pwm_off        ok     20 transactions\n"),
            "{text}"
        );
        assert!(text.ends_with("hw-stop: motors stopped (P13, P12 at 0)\n"));
        assert!(problems(&cfg, &report).is_empty());
        let names: Vec<_> = operations(&report)
            .into_iter()
            .map(|o| o.operation)
            .collect();
        assert_eq!(names, ["mcu_reset", "pwm_off", "motor_dir_low"]);
    }

    #[test]
    fn problems_collapse_repeated_failures_and_name_the_device() {
        let cfg = PicarxConfig::default();
        let io = |device: &str| HwError::Io {
            device: device.to_owned(),
            reason: "gone".to_owned(),
        };
        let report = StopReport {
            open_errors: vec![HwError::Open {
                device: "i2c-1@0x14".to_owned(),
                reason: "No such file or directory (os error 2)".to_owned(),
            }],
            steps: vec![
                Step {
                    operation: "mcu_reset",
                    transactions: vec![],
                    errors: vec![],
                },
                Step {
                    operation: "pwm_off",
                    transactions: vec![],
                    errors: (0..20).map(|_| io("i2c-1@0x14")).collect(),
                },
            ],
            motors_stopped: false,
        };
        assert_eq!(
            problems(&cfg, &report),
            [
                "cannot open i2c-1@0x14: No such file or directory (os error 2)",
                "pwm_off: i2c-1@0x14: gone (+19 more)",
                "the motors could not be stopped: i2c-1@0x14 is unreachable",
            ]
        );
        assert!(!summary(&cfg, &report, false).contains("motors stopped"));
    }
}
