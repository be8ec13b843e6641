//! `nevil hw-check --dry-run --trace`: the documented operations, with the Robot HAT bytes
//! DESIGN.md's formulas give.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use serde_json::json;
use util::{json, output, scratch, text};

#[test]
fn dry_run_trace_matches_the_protocol() {
    let dir = scratch("hwcheck");
    let trace = dir.join("trace.json");
    let out = output(&["hw-check", "--dry-run", "--trace", trace.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    let ops = json(&trace);
    let ops = ops.as_array().unwrap();
    let names: Vec<_> = ops
        .iter()
        .map(|o| o["operation"].as_str().unwrap())
        .collect();
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
    let op = |name: &str| &ops.iter().find(|o| o["operation"] == name).unwrap()["transactions"];
    let write = |wire: &str| json!({"bus": "i2c", "op": "write", "addr": "0x14", "wire": wire});

    assert_eq!(op("steering_angle_0"), &json!([write("22 00 5a")]));
    assert_eq!(op("steering_angle_-30"), &json!([write("22 00 46")]));
    assert_eq!(op("steering_angle_+30"), &json!([write("22 00 6e")]));
    // Direction pin first (D4 = BCM 23 low is forward), then 50 % of 1200 = 600 = 0x258
    // on P13.
    assert_eq!(
        op("motor_left_+50"),
        &json!([{"bus": "gpio", "op": "write", "bcm": 23, "level": 0}, write("2d 02 58")])
    );
    let a0 = op("adc_read_A0").as_array().unwrap();
    assert_eq!(a0[0], write("17 00 00"));
    assert_eq!(a0.len(), 3);
    assert!(a0[1..]
        .iter()
        .all(|t| t["op"] == "read" && t["addr"] == "0x14"));
    let init = op("pwm_init_50hz").as_array().unwrap();
    // Prescaler 1199 (0x4af) and period 1200 (0x4b0) for timer 0 (steering).
    assert!(init.contains(&write("40 04 af")), "{init:?}");
    assert!(init.contains(&write("44 04 b0")), "{init:?}");
    // A dry run's echo is "nothing within range": the line rose and was still high at the
    // 25 ms timeout.
    assert_eq!(
        op("ultrasonic_read").as_array().unwrap().last().unwrap(),
        &json!({"bus": "gpio", "op": "pulse", "bcm": 22, "timeout_us": 25000, "rose": true})
    );
}

#[test]
fn real_hw_check_fails_cleanly_here() {
    let out = output(&["hw-check"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("i2c-1@0x14") || stderr.contains("gpio"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}
