//! The fleet view across hosts: two robots, each a host in a network namespace of its
//! own, linked by a veth to a viewer host (tests/util/netns.rs). `nevil fleet` run on the
//! viewer lists both robots with their health and prints each one's tree, over the
//! links. When namespaces cannot be made, the test says why and every host is loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::net::Ipv4Addr;

use util::fleet::{assert_fleet_tree, locator_at, robot_config, Printed};
use util::netns::{Host, Lab};
use util::{nevil, text, Running};

/// `nevil run` as robot `id` on `host`, Zenoh listening on `address` at a port of the
/// OS's choosing; the robot and the endpoint it listens on (read from its log).
fn robot(host: &Host, id: &str, address: Ipv4Addr) -> (Running, String) {
    let path = robot_config(id, &format!("listen = [\"tcp/{address}:0\"]"), "");
    let config = path.to_str().unwrap();
    let mut robot = host.spawn(nevil(&["run", "--duration", "120", "--config", config]));
    let line = robot.wait_for("zenoh listening");
    assert!(line.contains(id), "{line}");
    (robot, locator_at(&line, &format!("tcp/{address}:")))
}

/// `nevil fleet args` run on `host`: exit code, stdout, stderr.
fn fleet(host: &Host, args: &[&str]) -> Printed {
    let out = host
        .command(nevil(&[&["fleet"], args].concat()))
        .output()
        .expect("run nevil fleet");
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// Stops `robot` with SIGTERM; it must exit 0.
fn stop(robot: Running) {
    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
}

#[test]
fn a_viewer_host_lists_two_robot_hosts_with_their_health_and_shows_each_tree() {
    let mut lab = Lab::new();
    if let Some(why) = lab.fallback() {
        eprintln!("net_fleet: falling back to loopback: {why}");
    }
    let host_a = lab.host("robot-a");
    let host_b = lab.host("robot-b");
    let viewer = lab.host("viewer");
    let to_a = lab.link(&host_a, &viewer);
    let to_b = lab.link(&host_b, &viewer);

    let (a, at_a) = robot(&host_a, "robot-a", to_a.a);
    let (b, at_b) = robot(&host_b, "robot-b", to_b.a);
    if lab.fallback().is_none() {
        // Each robot is reached at its own link's address, from the viewer's namespace.
        assert_ne!(at_a, at_b);
        assert!(at_a.starts_with(&format!("tcp/{}:", to_a.a)), "{at_a}");
    }
    let both = ["--connect", &at_a, "--connect", &at_b];

    let (code, stdout, stderr) = fleet(&viewer, &[&both[..], &["--json"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let listed = listed.as_array().expect("a list");
    let ids: Vec<&str> = listed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["robot-a", "robot-b"]);
    for r in listed {
        let health = &r["health"];
        assert_eq!(health["id"], r["id"]);
        assert_eq!(health["live"], true, "{health}");
        assert!(health["actors"].as_u64().unwrap() > 10, "{health}");
        assert!(health["ready"].is_boolean() && health["reasons"].is_array());
    }

    for id in ["robot-a", "robot-b"] {
        assert_fleet_tree(
            id,
            &fleet(&viewer, &[&both[..], &["--tree", id, "--json"]].concat()),
            &fleet(&viewer, &[&both[..], &["--tree", id]].concat()),
        );
    }

    if lab.fallback().is_none() {
        // The viewer reaches the robots only over its links: with robot A's link down,
        // the fleet lists robot B alone.
        to_a.down().unwrap();
        let (code, stdout, stderr) = fleet(&viewer, &[&both[..], &["--json"]].concat());
        assert_eq!(code, Some(0), "{stderr}");
        let listed: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
        let ids: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["robot-b"]);
        to_a.up().unwrap();
    }
    stop(a);
    stop(b);
}
