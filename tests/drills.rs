//! Fault drills on the real binary: which actors restart, and why the dump says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use util::{config_with, json, node, output, restarts, scratch, text};

/// Runs 3 s with `inject`; returns the final tree dump and the run report.
fn drill(
    name: &str,
    config: Option<&std::path::Path>,
    inject: &str,
) -> (serde_json::Value, serde_json::Value) {
    let dir = scratch(name);
    let (dump, report) = (dir.join("tree.json"), dir.join("report.json"));
    let mut args = vec![
        "run",
        "--duration",
        "3",
        "--inject",
        inject,
        "--tree-dump",
        dump.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    if let Some(c) = config {
        args.extend(["--config", c.to_str().unwrap()]);
    }
    let out = output(&args);
    assert!(out.status.success(), "{}", text(&out).1);
    (json(&dump), json(&report))
}

/// A panic in `motion`, the first child of the rest_for_one `control` supervisor,
/// restarts it and every later sibling (the behaviours, which command it) — and only
/// them: drivers, services and the watchdog keep their first incarnation.
#[test]
fn panic_in_first_rest_for_one_child_restarts_it_and_later_siblings() {
    let dir = scratch("rfo-config");
    let config = config_with(
        &dir,
        &[(
            r#"mode = "obstacle_avoidance""#,
            r#"mode = "line_following""#,
        )],
    );
    let (tree, _) = drill("rfo", Some(&config), "motion:panic@1");
    let control = [
        "root/control/motion",
        "root/control/obstacle_avoidance",
        "root/control/line_follower",
    ];
    for (path, n) in restarts(&tree) {
        let expected = u64::from(control.contains(&path.as_str()));
        assert_eq!(n, expected, "{path} restarted {n} times");
    }
    assert_eq!(
        node(&tree, "root/control/motion")["last_exit"],
        "panic: fault drill: panic"
    );
    assert_eq!(
        node(&tree, "root/control/line_follower")["status"],
        "running"
    );
}

/// A panic in a one_for_one child restarts only that child.
#[test]
fn panic_in_one_for_one_child_restarts_only_it() {
    let (tree, _) = drill("ofo", None, "root/drivers/grayscale:panic@1");
    for (path, n) in restarts(&tree) {
        let expected = u64::from(path == "root/drivers/grayscale");
        assert_eq!(n, expected, "{path} restarted {n} times");
    }
    let g = node(&tree, "root/drivers/grayscale");
    assert_eq!(g["last_exit"], "panic: fault drill: panic");
    assert_eq!(g["status"], "running");
}

/// `error` and `exit` are recorded as such.
#[test]
fn error_and_exit_are_recorded() {
    let (tree, _) = drill("err", None, "battery:error@1");
    assert_eq!(
        node(&tree, "root/drivers/battery")["last_exit"],
        "error: fault drill: error"
    );
    let (tree, _) = drill("exit", None, "steering:exit@1");
    let s = node(&tree, "root/drivers/steering");
    assert_eq!(s["last_exit"], "normal");
    assert_eq!(
        s["restarts"], 1,
        "a permanent child is restarted after a normal exit"
    );
}

/// A hung ranger goes stale: the watchdog engages the e-stop (motors stopped) — the
/// timing is checked on the paused clock in `safety_watchdog.rs`.
#[test]
fn hung_ranger_engages_the_estop() {
    let (_, report) = drill("hang", None, "ultrasonic:hang@1");
    let estops = report["estops"].as_array().unwrap();
    let first = estops.first().expect("an e-stop was engaged");
    assert_eq!(first["engaged"], true);
    assert!(
        first["reason"]
            .as_str()
            .unwrap()
            .contains("stale ultrasonic"),
        "{first}"
    );
    assert!(first["at_s"].as_f64().unwrap() >= 1.0);
    assert_eq!(report["sim"]["last_drive"]["left"], 0.0);
}

/// The resource faults (their quotas come with resource governance, #5): under each,
/// the rest of the robot keeps running — drivers sample, the control loop ticks — and
/// the run still ends cleanly, the faulty actor being stopped or killed at shutdown.
fn robot_keeps_running_under(name: &str, inject: &str) {
    let (tree, report) = drill(name, None, inject);
    let ticks = report["jitter"]["ticks"].as_u64().unwrap();
    assert!(
        ticks > 100,
        "{name}: the control loop ticked only {ticks} times"
    );
    for driver in ["ultrasonic", "grayscale"] {
        let n = node(&tree, &format!("root/drivers/{driver}"));
        assert!(n["messages_handled"].as_u64().unwrap() > 20, "{name}: {n}");
    }
    assert_eq!(report["exit"], "normal", "{name}");
}

#[test]
fn spin_leaves_the_robot_running() {
    robot_keeps_running_under("spin", "obstacle_avoidance:spin@0.5");
}

#[test]
fn leak_leaves_the_robot_running() {
    robot_keeps_running_under("leak", "root/safety/watchdog:leak@0.5");
}

#[test]
fn flood_leaves_the_robot_running() {
    robot_keeps_running_under("flood", "steering:flood@0.5");
}
