//! `nevil check-config`: exit 0 for a valid file, else 2 naming every problem by key path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use util::{config_with, output, scratch, text};

#[test]
fn shipped_configs_are_valid() {
    for file in ["config/default.toml", "config/picarx.toml"] {
        let out = output(&["check-config", file]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{file}: {stdout}{stderr}");
        assert!(stdout.contains("ok"));
    }
}

/// An unknown key, a value out of range and a reference to a missing sensor, each
/// named with its key path in one run.
#[test]
fn broken_config_names_each_problem() {
    let dir = scratch("check");
    let unknown = config_with(&dir, &[("[motion]", "[motion]\nturbo = true")]);
    let out = output(&["check-config", unknown.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.contains("turbo"), "{stdout}");

    let broken = config_with(
        &dir,
        &[
            ("rate_hz = 50", "rate_hz = 5000"),
            (
                r#"watch = ["ultrasonic", "grayscale", "battery"]"#,
                r#"watch = ["ultrasonic", "lidar", "battery"]"#,
            ),
            ("max_power = 60", "max_power = 0"),
        ],
    );
    let out = output(&["check-config", broken.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    for expected in [
        "drivers.grayscale.rate_hz: must be between 1 and 200 (is 5000)",
        "safety.watch[1]: unknown sensor \"lidar\"",
        "motion.max_power: must be between 1 and 100 (is 0)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

/// System monitor thresholds: a critical level at or below warn, a ratio over 1 and an
/// unknown exempt quota group are each named by key path.
#[test]
fn bad_monitor_thresholds_are_named() {
    let dir = scratch("check-monitor");
    let broken = config_with(
        &dir,
        &[
            (
                "warn = 0.70\ncritical = 0.90",
                "warn = 0.90\ncritical = 0.70",
            ),
            (
                "warn = 0.85\ncritical = 0.95",
                "warn = 0.85\ncritical = 1.5",
            ),
            ("pressure_exempt = []", "pressure_exempt = [\"vip\"]"),
        ],
    );
    let out = output(&["check-config", broken.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    for expected in [
        "monitor.cpu.critical: must be > warn (is 0.7, warn is 0.9)",
        "monitor.disk.critical: must be > 0 and <= 1 (is 1.5)",
        "monitor.pressure_exempt[0]: unknown quota group \"vip\"",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

/// Values that would panic at start or silently switch a safety check off are each
/// named: an infinite supervision window, a zero battery threshold, an unbounded ramp,
/// an empty watch list, a too-wide battery hysteresis.
#[test]
fn wild_numbers_and_disabled_safety_are_named() {
    let dir = scratch("check-bounds");
    let broken = config_with(
        &dir,
        &[
            ("period_s = 10", "period_s = inf\nbackoff_max_s = inf"),
            ("ramp_pct_per_s = 300", "ramp_pct_per_s = inf"),
            ("battery_low_v = 6.4", "battery_low_v = 0"),
            ("battery_hysteresis_v = 0.2", "battery_hysteresis_v = nan"),
            (
                r#"watch = ["ultrasonic", "grayscale", "battery"]"#,
                "watch = []",
            ),
            ("timeout_s = 5", "timeout_s = -1"),
        ],
    );
    let out = output(&["check-config", broken.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for expected in [
        "supervision.period_s: must be > 0 and <= 3600 (is inf)",
        "supervision.backoff_max_s: must be between 0 and 3600 (is inf)",
        "motion.ramp_pct_per_s: must be > 0 and <= 10000 (is inf)",
        "safety.battery_low_v: must be between 3 and 20 (is 0)",
        "safety.battery_hysteresis_v: must be between 0 and 2 (is NaN)",
        "safety.watch: must include \"ultrasonic\": behaviour.mode \"obstacle_avoidance\" uses it",
        "http.timeout_s: must be between 0.1 and 300 (is -1)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn missing_file_is_named() {
    let out = output(&["check-config", "/nonexistent/nevil.toml"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout.contains("/nonexistent/nevil.toml"), "{stdout}");
}
