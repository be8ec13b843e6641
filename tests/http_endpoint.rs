//! The operations endpoint of the real binary: `/metrics`, `/tree`, `/health/*`,
//! `nevil tree`, and the refusals (non-loopback address, taken port).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::io::Write;
use std::process::{Command, Stdio};

use util::{assert_tree_schema, config_with, http_get, nevil, output, scratch, text, Running};

/// Polls `url` until it answers `status` (a condition, not a timing: bounded by a
/// failsafe of a minute); the last body.
fn await_status(url: &str, status: u16, why: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (got, body) = http_get(url);
        if got == status {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} never answered {status} ({why}); last {got}: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `promtool check metrics` on `text`: its verdict, or a failure telling how to get it.
fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: run `bash .ci/run`, which installs Debian's prometheus");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn serves_metrics_tree_and_health_of_the_running_robot() {
    let mut robot = Running::start(&["run", "--duration", "60"]);
    let base = robot.http_base();

    let ready = await_status(&format!("{base}/health/ready"), 200, "robot started");
    assert_eq!(ready, r#"{"ok":true,"reasons":[],"config_generation":1}"#);
    assert_eq!(http_get(&format!("{base}/health/live")).0, 200);

    // The loop's first tick and the battery's first sample come a moment after start.
    let metrics = loop {
        let (status, metrics) = http_get(&format!("{base}/metrics"));
        assert_eq!(status, 200);
        if metrics.contains("nevil_control_loop_jitter_seconds_count")
            && metrics.contains("nevil_battery_volts ")
        {
            break metrics;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    for series in [
        "nevil_actor_restarts_total{path=\"root/control/motion\"} 0",
        "nevil_actor_messages_total{path=\"root/drivers/ultrasonic\"}",
        "nevil_actor_mailbox_depth{path=\"root/control/motion\"}",
        "nevil_actor_cpu_seconds_total{path=\"root/control/motion\"}",
        "nevil_actor_memory_bytes{path=\"root/drivers/motors\"}",
        "nevil_quota_enforcements_total{path=\"root/control/behaviours/obstacle_avoidance\",action=\"throttle\"} 0",
        "nevil_control_loop_jitter_seconds_bucket{le=\"0.001\"}",
        "nevil_control_loop_jitter_seconds_count",
        "nevil_build_info{version=\"",
        "nevil_ready 1",
        "nevil_battery_volts ",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
    ] {
        assert!(metrics.contains(series), "no {series:?} in\n{metrics}");
    }
    let (ok, said) = promtool_check_metrics(&metrics);
    assert!(ok, "promtool check metrics: {said}");

    let (status, tree) = http_get(&format!("{base}/tree"));
    assert_eq!(status, 200);
    let tree: serde_json::Value = serde_json::from_str(&tree).unwrap();
    assert_tree_schema(&tree);
    assert_eq!(tree["pid"], robot.pid());

    let (status, body) = http_get(&format!("{base}/admin"));
    assert_eq!((status, body.starts_with("not found: /admin")), (404, true));

    let out = output(&["tree", "--url", &base]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("\nroot (one_for_one) [running]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n    motion [running] restarts=0 handled="),
        "{stdout}"
    );

    robot.signal("TERM");
    let (code, _) = robot.finish();
    assert_eq!(code, Some(0));
}

/// A permanent actor waiting out its restart backoff makes the robot not ready, with
/// the actor named; once it runs again the robot is ready again.
#[test]
fn readiness_flips_while_a_permanent_actor_is_down() {
    let dir = scratch("ready-flip");
    let config = config_with(&dir, &[("period_s = 10", "period_s = 10\nbackoff_s = 2")]);
    let mut robot = Running::start(&[
        "run",
        "--duration",
        "60",
        "--config",
        config.to_str().unwrap(),
        "--inject",
        "motors:panic@1",
    ]);
    let ready = format!("{}/health/ready", robot.http_base());
    await_status(&ready, 200, "robot started");
    let down = await_status(&ready, 503, "motors panicked and waits 2 s ± 20 %");
    let reasons: serde_json::Value = serde_json::from_str(&down).unwrap();
    assert_eq!(reasons["ok"], false);
    assert!(
        reasons["reasons"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .starts_with("root/drivers/motors: restarting")),
        "{down}"
    );
    await_status(&ready, 200, "motors restarted");
    robot.signal("TERM");
    assert_eq!(robot.finish().0, Some(0));
}

#[test]
fn a_non_loopback_address_needs_an_explicit_config_choice() {
    let out = output(&["run", "--duration", "1", "--listen", "0.0.0.0:0"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--listen: 0.0.0.0:0 is not a loopback address"),
        "{stderr}"
    );
    assert!(stderr.contains("allow_remote = true"), "{stderr}");

    let out = output(&["run", "--duration", "1", "--listen", "nine"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("\"nine\" is not an address"));
}

#[test]
fn a_taken_port_fails_the_start_before_anything_moves() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = nevil(&["run", "--duration", "5", "--listen", &addr])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(!stderr.contains("robot started"), "{stderr}");
}

#[test]
fn tree_without_a_robot_names_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = output(&["tree", "--url", &format!("http://127.0.0.1:{port}")]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.starts_with(&format!("nevil tree: http://127.0.0.1:{port}/tree: ")),
        "{stderr}"
    );
}
