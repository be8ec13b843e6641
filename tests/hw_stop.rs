//! `nevil hw-stop`: the exact writes it sends the Robot HAT (as a dry-run trace), the
//! clean failure where there is no HAT, and nothing to do for the simulated robot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use serde_json::{json, Value};
use util::{json, output, scratch, text};

fn write(wire: &str) -> Value {
    json!({"bus": "i2c", "op": "write", "addr": "0x14", "wire": wire})
}

fn gpio(bcm: u8, level: u8) -> Value {
    json!({"bus": "gpio", "op": "write", "bcm": bcm, "level": level})
}

#[test]
fn dry_run_trace_resets_zeroes_every_channel_and_lowers_the_directions() {
    let dir = scratch("hwstop-dry");
    let trace = dir.join("t.json");
    let out = output(&[
        "hw-stop",
        "--config",
        "config/picarx.toml",
        "--dry-run",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("motors stopped"), "{stdout}");

    let ops = json(&trace);
    let ops = ops.as_array().unwrap();
    let names: Vec<_> = ops
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mcu_reset", "pwm_off", "motor_dir_low"]);

    // 1. The reset pulse on BCM 5: low, then high again.
    assert_eq!(ops[0]["transactions"], json!([gpio(5, 0), gpio(5, 1)]));

    // 2. Every channel value register 0x20 + N, P0 to P19 in order, set to 0 (high
    //    byte first: two zero bytes).
    let pwm = ops[1]["transactions"].as_array().unwrap();
    let expected: Vec<Value> = (0x20..=0x33u8)
        .map(|reg| write(&format!("{reg:02x} 00 00")))
        .collect();
    assert_eq!(pwm, &expected);
    // Byte-exact for the motors: right P12 = 0x2c, left P13 = 0x2d.
    assert_eq!(pwm[12], write("2c 00 00"));
    assert_eq!(pwm[13], write("2d 00 00"));
    // The steering servo P2 gets a zero pulse too (released, not centred).
    assert_eq!(pwm[2], write("22 00 00"));

    // 3. Both motor direction pins low: D4 = BCM 23, D5 = BCM 24.
    assert_eq!(ops[2]["transactions"], json!([gpio(23, 0), gpio(24, 0)]));

    // Nothing else went out.
    let total: usize = ops
        .iter()
        .map(|o| o["transactions"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 2 + 20 + 2);
}

#[test]
fn real_hw_stop_without_the_hat_exits_1_naming_the_bus() {
    // On the robot itself this would reset the HAT (harmless, but not a test's business).
    if std::path::Path::new("/dev/i2c-1").exists() {
        return;
    }
    let dir = scratch("hwstop-real");
    let trace = dir.join("t.json");
    let out = output(&[
        "hw-stop",
        "--config",
        "config/picarx.toml",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("cannot open i2c-1@0x14"), "{stderr}");
    assert!(
        stderr.contains("the motors could not be stopped: i2c-1@0x14 is unreachable"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stdout.contains("motors stopped"), "{stdout}");
    // The trace still says what went through: no PWM write did.
    let ops = json(&trace);
    assert_eq!(ops[1]["operation"], "pwm_off");
    assert_eq!(ops[1]["transactions"], json!([]));
}

#[test]
fn sim_config_has_nothing_to_stop() {
    let dir = scratch("hwstop-sim");
    let trace = dir.join("t.json");
    for args in [
        vec!["hw-stop"],
        vec!["hw-stop", "--config", "config/default.toml"],
        vec![
            "hw-stop",
            "--config",
            "config/default.toml",
            "--dry-run",
            "--trace",
            trace.to_str().unwrap(),
        ],
    ] {
        let out = output(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("simulated robot: no motor outputs to stop"),
            "{args:?}\n{stdout}"
        );
        assert!(!stderr.contains("i2c"), "{args:?}\n{stderr}");
    }
    assert_eq!(json(&trace), json!([]));
}
