//! SIGHUP live reload on the real binary: a valid change is applied (generation 2), an
//! invalid file or a restart-only change is refused (generation stays 1, the robot runs
//! on), and a reload that breaks the robot is rolled back by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::Path;
use std::time::{Duration, Instant};

use util::{config_with, http_get, node, scratch, Running};

/// Polls `/health/ready` until its body has `config_generation` = `generation` and it
/// answers 200 (bounded by a failsafe of a minute); the body.
fn await_ready_generation(base: &str, generation: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = format!("\"config_generation\":{generation}}}");
    loop {
        let (status, body) = http_get(&format!("{base}/health/ready"));
        if status == 200 && body.ends_with(&want) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "never ready at generation {generation}; last {status}: {body}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `nevil_config_generation` gauge's value in `/metrics`.
fn metric_generation(base: &str) -> String {
    let (status, metrics) = http_get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("nevil_config_generation "))
        .unwrap_or_else(|| panic!("no nevil_config_generation in\n{metrics}"))
        .to_string()
}

/// The `/tree` document.
fn tree(base: &str) -> serde_json::Value {
    let (status, body) = http_get(&format!("{base}/tree"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The default config with `edits`, written over `path`.
fn rewrite(path: &Path, edits: &[(&str, &str)]) {
    let dir = path.parent().unwrap();
    let written = config_with(dir, edits);
    assert_eq!(written, path);
}

fn start(path: &Path) -> (Running, String) {
    start_with(path, &[])
}

/// `nevil run --config path` with `more` arguments; the robot and its endpoint's URL.
fn start_with(path: &Path, more: &[&str]) -> (Running, String) {
    let mut args = vec![
        "run",
        "--duration",
        "120",
        "--config",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let mut robot = Running::start(&args);
    // The endpoint serves once the robot has started.
    let base = robot.http_base();
    await_ready_generation(&base, 1);
    (robot, base)
}

#[test]
fn a_valid_change_applies_live_as_generation_2() {
    let dir = scratch("reload-apply");
    let path = config_with(&dir, &[]);
    let (mut robot, base) = start(&path);
    assert_eq!(metric_generation(&base), "1");
    assert_eq!(tree(&base)["config_generation"], 1);

    rewrite(
        &path,
        &[
            ("battery_low_v = 6.4", "battery_low_v = 6.0"),
            ("cruise_power = 35", "cruise_power = 30"),
            ("# level = \"info\"", "level = \"info\""),
        ],
    );
    robot.signal("HUP");
    let line = robot.wait_for("reload applied");
    for key in [
        "behaviour.cruise_power",
        "safety.battery_low_v",
        "log.level",
    ] {
        assert!(line.contains(key), "{key} not named: {line}");
    }
    robot.wait_for("watchdog thresholds changed");
    await_ready_generation(&base, 2);
    assert_eq!(metric_generation(&base), "2");
    assert_eq!(tree(&base)["config_generation"], 2);

    robot.signal("TERM");
    assert_eq!(robot.finish().0, Some(0));
}

#[test]
fn an_invalid_file_or_a_backend_change_is_refused_and_the_robot_runs_on() {
    let dir = scratch("reload-refuse");
    let path = config_with(&dir, &[]);
    let (mut robot, base) = start(&path);

    rewrite(&path, &[("battery_low_v = 6.4", "battery_low_v = 0")]);
    robot.signal("HUP");
    let line = robot.wait_for("reload refused");
    assert!(
        line.contains("safety.battery_low_v: must be between 3 and 20"),
        "{line}"
    );

    std::fs::write(&path, "this is not = = toml").unwrap();
    robot.signal("HUP");
    let line = robot.wait_for("reload refused");
    assert!(line.contains("config.toml"), "names the file: {line}");

    rewrite(
        &path,
        &[
            ("backend = \"sim\"", "backend = \"picarx\""),
            ("battery_low_v = 6.4", "battery_low_v = 6.0"),
        ],
    );
    robot.signal("HUP");
    let line = robot.wait_for("reload refused");
    assert!(
        line.contains("robot.backend cannot change without a restart"),
        "{line}"
    );
    assert!(
        !line.contains("battery_low_v"),
        "only what needs a restart: {line}"
    );

    // Still generation 1, still serving, still ready.
    await_ready_generation(&base, 1);
    assert_eq!(metric_generation(&base), "1");
    assert_eq!(tree(&base)["config_generation"], 1);

    robot.signal("TERM");
    assert_eq!(robot.finish().0, Some(0));
}

/// A quota so tight that obstacle avoidance is restarted at every other sample: the
/// restart storm makes its supervisor give up within the probation window, and the
/// reload rolls itself back (generation 3, with generation 1's quotas). The robot keeps
/// running, and the storm stops.
#[test]
fn a_reload_that_breaks_the_robot_is_rolled_back_by_itself() {
    let dir = scratch("reload-rollback");
    let probation = ("probation_s = 30", "probation_s = 20");
    let path = config_with(&dir, &[probation]);
    let trail = dir.join("audit.jsonl");
    let (mut robot, base) = start_with(&path, &["--audit", trail.to_str().unwrap()]);

    rewrite(
        &path,
        &[
            probation,
            (
                "[quotas.actors.obstacle_avoidance]\ngroup = \"lightweight\"",
                "[quotas.groups.tight]\nrate = { soft = 1, hard = 2 }\nhard_action = \"restart\"\n\n\
                 [quotas.actors.obstacle_avoidance]\ngroup = \"tight\"",
            ),
        ],
    );
    robot.signal("HUP");
    let line = robot.wait_for("reload applied");
    assert!(line.contains("quotas.groups.tight"), "{line}");
    assert!(line.contains("quotas.actors.obstacle_avoidance"), "{line}");
    robot.wait_for("quota group changed live");
    let line = robot.wait_for("reload rolled back");
    assert!(
        line.contains("restored=1") || line.contains("\"restored\":1"),
        "{line}"
    );

    // Ready again under generation 3, which holds generation 1's configuration.
    await_ready_generation(&base, 3);
    assert_eq!(metric_generation(&base), "3");
    let t = tree(&base);
    assert_eq!(t["config_generation"], 3);
    let path_oa = "root/control/behaviours/obstacle_avoidance";
    assert_eq!(node(&t, path_oa)["quota"]["group"], "lightweight");

    // The storm has stopped: obstacle avoidance handles 60 more readings (3 s at
    // 20 Hz; under the tight quota it lasted 2 to 4) without being restarted again.
    let restarts = node(&t, path_oa)["restarts"].as_u64().unwrap();
    let handled = node(&t, path_oa)["messages_handled"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = tree(&base);
        let n = node(&t, path_oa);
        assert_eq!(
            n["restarts"].as_u64().unwrap(),
            restarts,
            "restarted again: {n}"
        );
        if n["messages_handled"].as_u64().unwrap() >= handled + 60 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "obstacle avoidance stopped handling: {n}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(http_get(&format!("{base}/health/live")).0, 200);

    robot.signal("TERM");
    assert_eq!(robot.finish().0, Some(0));
    // The audit trail has each generation's outcome, and it verifies.
    let configs: Vec<_> = std::fs::read_to_string(&trail)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "config")
        .map(|e| {
            (
                e["generation"].as_u64().unwrap(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        configs,
        [
            (1, "loaded".into()),
            (2, "applied".into()),
            (3, "rolled_back".into())
        ]
    );
    let out = util::output(&["audit", "verify", trail.to_str().unwrap()]);
    assert!(out.status.success(), "{:?}", util::text(&out));
}

/// `log.level` changes the filter live: at `warn` the second SIGHUP's own info line is
/// filtered out (the refusal, an error, is not), and with the key removed again the
/// start's filter (`RUST_LOG=info`) is back.
#[test]
fn the_log_level_changes_live_and_back() {
    let dir = scratch("reload-log");
    let path = config_with(&dir, &[]);
    let (mut robot, base) = start(&path);

    rewrite(&path, &[("# level = \"info\"", "level = \"warn\"")]);
    robot.signal("HUP");
    // Its "reload applied" is an info line, filtered out by then: the generation says.
    await_ready_generation(&base, 2);
    std::fs::write(&path, "not = = toml").unwrap();
    robot.signal("HUP");
    robot.wait_for("reload refused");
    rewrite(&path, &[]);
    robot.signal("HUP");
    let applied = robot.wait_for("reload applied");
    assert!(applied.contains("log.level"), "{applied}");

    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0));
    let refused = lines
        .iter()
        .position(|l| l.contains("reload refused"))
        .unwrap();
    let hups = |range: &[String]| {
        range
            .iter()
            .filter(|l| l.contains("SIGHUP: reloading the config"))
            .count()
    };
    assert_eq!(
        hups(&lines[..refused]),
        1,
        "only the first, before warn:\n{}",
        lines.join("\n")
    );
    assert!(
        lines[refused..]
            .iter()
            .any(|l| l.contains("log filter changed")),
        "back to info"
    );
}
