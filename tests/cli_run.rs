//! `nevil run` on the simulated robot, driven as an operator would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use util::{assert_tree_schema, json, node, output, scratch, text, Running};

/// A 5-second run exits 0; its final tree dump shows every driver having handled
/// messages, and obstacle avoidance kept the simulated car from colliding while it
/// actually drove (it covered ground). The motors were stopped at the end.
#[test]
fn five_second_run_avoids_obstacles() {
    let dir = scratch("five");
    let (dump, report) = (dir.join("tree.json"), dir.join("report.json"));
    let out = output(&[
        "run",
        "--duration",
        "5",
        "--tree-dump",
        dump.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);

    let tree = json(&dump);
    assert_tree_schema(&tree);
    for driver in ["ultrasonic", "grayscale", "battery", "motors", "steering"] {
        let n = node(&tree, &format!("root/drivers/{driver}"));
        assert!(
            n["messages_handled"].as_u64().unwrap() > 0,
            "{driver} handled nothing: {n}"
        );
        assert_eq!(n["status"], "running");
    }
    let monitor = node(&tree, "root/management/system_monitor");
    assert_eq!(monitor["status"], "running", "{monitor}");
    assert!(
        monitor["messages_handled"].as_u64().unwrap() >= 3,
        "one host sample per second: {monitor}"
    );
    let report = json(&report);
    let sim = &report["sim"];
    assert_eq!(sim["collisions"], 0, "{sim}");
    assert!(
        sim["distance_m"].as_f64().unwrap() > 0.3,
        "the car barely moved: {sim}"
    );
    assert_eq!(sim["last_drive"]["left"], 0.0);
    assert_eq!(sim["last_drive"]["right"], 0.0);
    assert_eq!(report["exit"], "normal");
    assert!(report["jitter"]["ticks"].as_u64().unwrap() > 100);
}

/// SIGUSR1 writes the tree JSON (DESIGN.md's schema) while the robot keeps running;
/// SIGTERM then shuts it down with exit 0 and the motors stopped.
#[test]
fn sigusr1_dumps_and_sigterm_stops_motors_first() {
    let dir = scratch("signals");
    let (dump, report) = (dir.join("tree.json"), dir.join("report.json"));
    let mut robot = Running::start(&[
        "--log-format",
        "json",
        "run",
        "--tree-dump",
        dump.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    robot.wait_for("robot started");
    robot.signal("USR1");
    robot.wait_for("tree dump written");
    let tree = json(&dump);
    assert_tree_schema(&tree);
    assert_eq!(tree["pid"], robot.pid());
    assert_eq!(tree["root"]["status"], "running");
    // Still running after the dump: a second one works too.
    robot.signal("USR1");
    robot.wait_for("tree dump written");

    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    let motors_first = lines
        .iter()
        .position(|l| l.contains("motors stopped; stopping the actor tree"));
    let tree_stopping = lines
        .iter()
        .position(|l| l.contains("supervisor stopped") || l.contains("run finished"));
    assert!(
        motors_first.is_some() && motors_first < tree_stopping,
        "{}",
        lines.join("\n")
    );
    let sim = &json(&report)["sim"];
    assert_eq!(
        (
            sim["last_drive"]["left"].as_f64(),
            sim["last_drive"]["right"].as_f64()
        ),
        (Some(0.0), Some(0.0))
    );
}

/// On a machine without the Robot HAT, the real backend fails at start with a clear
/// error naming the device — never a panic.
#[test]
fn picarx_config_fails_cleanly_naming_the_device() {
    let out = output(&["run", "--config", "config/picarx.toml", "--duration", "1"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("i2c-1@0x14") || stderr.contains("gpio"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Drills naming no worker, or no fault, are refused before anything starts.
#[test]
fn bad_drills_are_refused_before_start() {
    let out = output(&["run", "--duration", "1", "--inject", "lidar:panic@1"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"lidar\": no such actor"), "{stderr}");
    assert!(
        stderr.contains("root/drivers/ultrasonic"),
        "the error lists the workers: {stderr}"
    );
    assert!(!stderr.contains("robot started"), "{stderr}");

    let out = output(&["run", "--duration", "1", "--inject", "drivers:panic@1"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("root/drivers is a supervisor"), "{stderr}");

    let out = output(&["run", "--duration", "1", "--inject", "motion:melt@1"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("unknown fault \"melt\""), "{stderr}");
}

/// Wild numbers on the command line are refused by clap (exit 2) with the argument and
/// its bound named — never a panic.
#[test]
fn wild_durations_and_drill_times_exit_2_naming_the_bound() {
    for secs in ["1e20", "inf", "NaN", "0"] {
        let out = output(&["run", "--duration", secs]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{secs}: {stderr}");
        assert!(
            stderr.contains("--duration must be > 0 and at most 2592000 seconds (30 days)"),
            "{secs}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    for secs in ["1e20", "inf", "-1"] {
        let spec = format!("motion:panic@{secs}");
        let out = output(&["run", "--duration", "1", "--inject", &spec]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert!(
            stderr.contains(&format!("--inject \"{spec}\": bad time \"{secs}\""))
                && stderr.contains("at most 86400: one day"),
            "{spec}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("robot started"), "{stderr}");
    }
}

#[test]
fn bad_arguments_exit_2() {
    let out = output(&["run", "--duration", "-3"]);
    assert_eq!(out.status.code(), Some(2));
    let out = output(&["fly"]);
    assert_eq!(out.status.code(), Some(2));
}
