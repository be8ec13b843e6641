//! A robot and the node running its behaviours on two hosts (network namespaces joined
//! by a veth link, made by the test), and the link cut (`ip link set … down`): the robot
//! sees the node's token go within the lease, its motors stop within the command TTL of
//! the cut and stay stopped, the group's worker exits `node lost: laptop` and waits;
//! the node stops the group when the robot's token goes on its side; after healing the
//! group runs on the node again.
//!
//! Without namespaces (not root, no iproute2) the test says why and freezes the node
//! instead (SIGSTOP and SIGCONT): as silent a link, on loopback.
//!
//! It prints what it measured (`partition: …`): no wall-clock assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use util::netns::{Host, Lab};
use util::{find_node, json, nevil, node_configs, power_log, scratch};

const GROUP: &str = "root/control/behaviours";
const OA: &str = "root/control/behaviours/obstacle_avoidance";

/// The robot's tree, as `nevil tree --json` reads it on the robot's host.
fn tree(host: &Host, base: &str) -> Value {
    let out = host
        .command(nevil(&["tree", "--url", base, "--json"]))
        .output()
        .expect("nevil tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("tree JSON")
}

/// Polls the tree until `done` holds; that tree (a minute at most, as a failsafe).
fn until(host: &Host, base: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let t = tree(host, base);
        if done(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {what}; last tree:\n{t:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn group(t: &Value) -> Value {
    find_node(t, GROUP).cloned().unwrap_or(Value::Null)
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_partition_stops_the_car_runs_the_strategy_and_heals() {
    let mut lab = Lab::new();
    if let Some(why) = lab.fallback() {
        eprintln!("net_partition: falling back to loopback (the node frozen instead): {why}");
    }
    let robot_host = lab.host("robot");
    let node_host = lab.host("node");
    let link = lab.link(&robot_host, &node_host);
    let port = if lab.fallback().is_some() {
        util::free_endpoint()
    } else {
        format!("tcp/{}:7447", link.a)
    };
    let dir = scratch("net-partition");
    let (robot_config, node_config) = node_configs(&dir, "\"node:laptop\"", &port);
    let report = dir.join("report.json");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let mut robot = robot_host.spawn(nevil(&[
        "run",
        "--config",
        &path(&robot_config),
        "--report",
        &path(&report),
    ]));
    let base = robot.http_base();
    let mut node = node_host.spawn(nevil(&[
        "node",
        "--name",
        "laptop",
        "--config",
        &path(&node_config),
    ]));
    // Driving on the node's commands for a while.
    until(&robot_host, &base, "the node's group driving", |t| {
        group(t)["placement"] == "node:laptop"
            && find_node(t, OA).is_some_and(|n| n["messages_handled"].as_u64() >= Some(20))
    });

    let cut_unix_ms = nevil::core::clock::unix_ms();
    let cut = Instant::now();
    match link.down() {
        Ok(()) => {}
        Err(_) => signal(node.pid(), "STOP"),
    }
    robot.wait_for("node lost");
    let detected = cut.elapsed();
    let lost = until(&robot_host, &base, "the group waiting", |t| {
        group(t)["placement"] == "node:laptop (waiting)"
    });
    assert_eq!(group(&lost)["last_exit"], "node lost: laptop", "{lost:#}");
    assert!(
        find_node(&lost, OA).is_none(),
        "a behaviour shown while nowhere"
    );
    if lab.fallback().is_none() {
        // The node's side: the robot's token went after the lease, so it stopped the
        // group rather than command a robot that cannot hear it.
        node.wait_for("the robot no longer holds the group");
    }

    let healed_unix_ms = nevil::core::clock::unix_ms();
    let heal = Instant::now();
    match link.up() {
        Ok(()) => {}
        Err(_) => signal(node.pid(), "CONT"),
    }
    robot.wait_for("group running on its node");
    let returned = heal.elapsed();
    until(&robot_host, &base, "the group back on the node", |t| {
        group(t)["placement"] == "node:laptop" && find_node(t, OA).is_some()
    });
    println!(
        "partition: node lost seen {} ms after the cut, the group on the node again {} ms after \
         healing",
        detected.as_millis(),
        returned.as_millis()
    );

    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    node.signal("TERM");
    let _ = node.finish();
    let report = json(&report);
    let started = report["started_unix_ms"].as_u64().unwrap();
    let cut_s = cut_unix_ms.saturating_sub(started) as f64 / 1e3;
    let healed_s = healed_unix_ms.saturating_sub(started) as f64 / 1e3;
    // The motors: driving before the cut, at zero within the command TTL and the
    // safety ceiling (0.25 s) of it, and at zero until the link healed.
    let ttl_s = nevil::robot::nodes::motion::COMMAND_TTL as f64 / 1e6;
    let log = power_log(&report);
    let at = |t: f64| {
        log.iter()
            .take_while(|c| c.0 <= t)
            .last()
            .map_or((0.0, 0.0), |c| (c.1, c.2))
    };
    assert_ne!(
        at(cut_s - 0.01),
        (0.0, 0.0),
        "not driving before the cut: {log:?}"
    );
    let stop_s = ttl_s + 0.25;
    assert_eq!(at(cut_s + stop_s), (0.0, 0.0), "still driving: {log:?}");
    let moved = log
        .iter()
        .find(|c| c.0 > cut_s + stop_s && c.0 < healed_s && (c.1 != 0.0 || c.2 != 0.0));
    assert!(
        moved.is_none(),
        "powered during the partition: {moved:?} in {log:?}"
    );
    let stopped = log
        .iter()
        .find(|c| c.0 >= cut_s && c.1 == 0.0 && c.2 == 0.0)
        .map_or(f64::NAN, |c| (c.0 - cut_s) * 1e3);
    println!("partition: motors at zero {stopped:.0} ms after the cut");
}
