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
/// restarts it and every later sibling (the `behaviours` group, which commands it:
/// restarted whole, its workers start afresh under the new group supervisor) — and only
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
    let control = ["root/control/motion", "root/control/behaviours"];
    for (path, n) in restarts(&tree) {
        let expected = u64::from(control.contains(&path.as_str()));
        assert_eq!(
            n,
            expected,
            "{path} restarted {n} times: {}",
            node(&tree, &path)
        );
    }
    assert_eq!(
        node(&tree, "root/control/motion")["last_exit"],
        "panic: fault drill: panic"
    );
    assert_eq!(
        node(&tree, "root/control/behaviours/line_follower")["status"],
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

/// An error drill goes through the real path — supervisor, event feed, the
/// error_analytics actor — into the dump's `analytics`: a signature for the actor with
/// its normalised message, a risk above 0 for it, and no risk for any actor that did not
/// fail (the restarted actor had no siblings after it to take along).
#[test]
fn error_drill_shows_in_the_dump_analytics() {
    let target = "root/control/behaviours/obstacle_avoidance";
    let (tree, _) = drill("analytics", None, "obstacle_avoidance:error@1");
    util::assert_tree_schema(&tree);
    let a = &tree["analytics"];
    let signatures = a["signatures"].as_array().unwrap();
    let sig = signatures
        .iter()
        .find(|s| s["path"] == target)
        .unwrap_or_else(|| panic!("no signature for {target}: {a}"));
    assert_eq!(sig["kind"], "error", "{sig}");
    assert_eq!(sig["message"], "fault drill: error", "{sig}");
    assert!(sig["count"].as_u64().unwrap() >= 1, "{sig}");
    assert!(a["errors_total"].as_u64().unwrap() >= 1, "{a}");
    let risk = |path: &str| {
        a["risk"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["path"] == path)
            .map(|r| r["score"].as_f64().unwrap())
    };
    assert!(risk(target).unwrap_or(0.0) > 0.0, "{a}");
    for (path, _) in restarts(&tree) {
        if path != target {
            assert_eq!(risk(&path).unwrap_or(0.0), 0.0, "{path} did not fail: {a}");
        }
    }
}

/// A hung ranger goes stale: the watchdog engages the e-stop (motors stopped) — the
/// timing is checked on the paused clock in `safety_watchdog.rs`.
#[test]
fn hung_ranger_engages_the_estop() {
    let (_, report) = drill("hang", None, "ultrasonic:hang@1");
    let estops = report["estops"].as_array().unwrap();
    // On a loaded machine another sensor may also go stale for a moment (a 30 ms
    // stall is enough for the 50 Hz grayscale): look for the ranger's own e-stop.
    let ranger = estops
        .iter()
        .find(|e| e["reason"].as_str().unwrap().contains("stale ultrasonic"))
        .unwrap_or_else(|| panic!("no e-stop for the ranger: {estops:?}"));
    assert_eq!(ranger["engaged"], true);
    assert!(ranger["at_s"].as_f64().unwrap() >= 1.0);
    assert_eq!(report["sim"]["last_drive"]["left"], 0.0);
}

/// Runs 4 s with `inject` under the default config plus `extra` TOML.
fn quota_drill(name: &str, extra: &str, inject: &str) -> (serde_json::Value, serde_json::Value) {
    let dir = scratch(&format!("{name}-config"));
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("{}\n{extra}\n", nevil::config::DEFAULT_TOML),
    )
    .unwrap();
    let dir = scratch(name);
    let (dump, report) = (dir.join("tree.json"), dir.join("report.json"));
    let out = output(&[
        "run",
        "--duration",
        "4",
        "--inject",
        inject,
        "--config",
        config.to_str().unwrap(),
        "--tree-dump",
        dump.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out).1);
    (json(&dump), json(&report))
}

fn actions(node: &serde_json::Value) -> Vec<String> {
    node["quota"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap().to_string())
        .collect()
}

/// The drivers and the control loop kept running through a drill.
fn robot_kept_running(tree: &serde_json::Value, report: &serde_json::Value) {
    assert!(
        report["jitter"]["ticks"].as_u64().unwrap() > 150,
        "{}",
        report["jitter"]
    );
    for driver in ["ultrasonic", "grayscale", "motors"] {
        let n = node(tree, &format!("root/drivers/{driver}"));
        assert!(n["messages_handled"].as_u64().unwrap() > 50, "{n}");
        assert_eq!(n["restarts"], 0, "{n}");
    }
    assert_eq!(report["exit"], "normal");
}

/// A behaviour that spins is throttled by its supervisor (lightweight group: throttle
/// first), the enforcement count shows it, and the rest of the robot runs on. The
/// control loop's jitter during the drill is in the report (not asserted: it is a
/// figure for the bench notes).
#[test]
fn spinning_behaviour_is_throttled() {
    let (tree, report) = quota_drill("q-spin", "", "obstacle_avoidance:spin@1");
    let oa = node(&tree, "root/control/behaviours/obstacle_avoidance");
    assert_eq!(oa["quota"]["group"], "lightweight");
    assert_eq!(
        actions(oa).first().map(String::as_str),
        Some("throttle"),
        "{oa}"
    );
    assert!(oa["quota"]["enforcements_total"].as_u64().unwrap() >= 1);
    assert_ne!(oa["quota"]["state"], "ok", "{oa}");
    robot_kept_running(&tree, &report);
}

/// A leak grows the actor's memory to its hard limit; its group (standard) restarts it,
/// and its memory returns.
#[test]
fn leaking_actor_is_restarted_and_its_memory_returns() {
    let extra = "[quotas.actors.watchdog]\ngroup = \"critical\"\nmemory = { soft = 4e6, burst = 6e6, hard = 8e6 }";
    let (tree, report) = quota_drill("q-leak", extra, "root/safety/watchdog:leak@0.5");
    let w = node(&tree, "root/safety/watchdog");
    assert!(w["restarts"].as_u64().unwrap() >= 1, "{w}");
    assert!(
        w["last_exit"]
            .as_str()
            .unwrap()
            .starts_with("quota: memory"),
        "{w}"
    );
    assert!(actions(w).contains(&"restart".to_string()), "{w}");
    assert!(
        w["memory_bytes"].as_u64().unwrap() < 8_000_000,
        "memory returned: {w}"
    );
    robot_kept_running(&tree, &report);
}

/// A flood pushes the mailbox over its limit; the configured action (restart, for the
/// standard group) follows, and the flood dies with the incarnation it targeted.
#[test]
fn flooded_actor_is_restarted() {
    let (tree, report) = quota_drill("q-flood", "", "steering:flood@1");
    let s = node(&tree, "root/drivers/steering");
    assert!(
        s["last_exit"]
            .as_str()
            .unwrap()
            .starts_with("quota: mailbox"),
        "{s}"
    );
    assert!(actions(s).contains(&"restart".to_string()), "{s}");
    assert_eq!(s["status"], "running");
    assert!(report["jitter"]["ticks"].as_u64().unwrap() > 150);
}

/// An unplugged ranger fails every read: its driver is not restarted (a failed read is
/// no crash), the ranger goes stale, and the watchdog stops the motors.
#[test]
fn unplugged_ranger_engages_the_estop_without_restarts() {
    let (tree, report) = drill("unplug", None, "ultrasonic:unplug@1");
    let ranger = node(&tree, "root/drivers/ultrasonic");
    assert_eq!(ranger["restarts"], 0, "{ranger}");
    assert_eq!(ranger["status"], "running", "{ranger}");
    let estops = report["estops"].as_array().unwrap();
    let stale = estops
        .iter()
        .find(|e| e["reason"].as_str().unwrap().contains("stale ultrasonic"))
        .unwrap_or_else(|| panic!("no e-stop for the ranger: {estops:?}"));
    assert_eq!(stale["engaged"], true);
    assert!(stale["at_s"].as_f64().unwrap() >= 1.0, "{stale}");
    assert_eq!(report["sim"]["last_drive"]["left"], 0.0);
    assert_eq!(report["exit"], "normal");
}

/// `unplug` is refused before start (exit 2, saying why) for an actor that is not a
/// sensor driver, and on the real robot's backend.
#[test]
fn unplug_outside_the_simulated_sensors_is_bad_input() {
    let run = |extra: &[&str], inject: &str| {
        let mut args = vec!["run", "--duration", "3", "--inject", inject];
        args.extend(extra);
        let out = output(&args);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{inject} {extra:?}: {stderr}");
        assert!(!stderr.contains("robot started"), "{stderr}");
        stderr
    };
    let stderr = run(&[], "motion:unplug@1");
    assert!(
        stderr.contains(
            "--inject \"motion\": unplug applies to the sensor drivers only \
             (ultrasonic, grayscale, battery)"
        ),
        "{stderr}"
    );
    let stderr = run(&["--config", "config/picarx.toml"], "ultrasonic:unplug@1");
    assert!(
        stderr.contains("unplug needs the simulated robot (backend \"sim\")")
            && stderr.contains("\"picarx\""),
        "{stderr}"
    );
    // Not a failure to open the HAT: refused before any device is touched.
    assert!(!stderr.contains("i2c-1@0x14"), "{stderr}");
}
