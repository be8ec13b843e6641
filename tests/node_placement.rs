//! Placement on a node on the real binary: the behaviours run in `nevil node` (here on
//! loopback; tests/net_partition.rs puts robot and node on hosts of their own), and the
//! robot's tree supervises them across the link.
//!
//! Waits poll the robot's `/tree` until what is awaited shows (a minute at most, as a
//! failsafe); nothing asserts a wall-clock time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use serde_json::Value;
use util::{
    find_node, free_endpoint, node_configs, output, scratch, start_node, text, GroupWatch, Running,
};

const GROUP: &str = "root/control/behaviours";
const OA: &str = "root/control/behaviours/obstacle_avoidance";

fn running_oa(tree: &Value) -> bool {
    find_node(tree, OA).is_some_and(|n| n["status"] == "running")
}

/// The node runs the group and the robot's tree shows it there; the node is killed,
/// so the group's worker exits `node lost: laptop` and is restarted to wait (no
/// behaviour runs anywhere); a new node gets the group back.
#[test]
fn a_lost_node_is_an_exit_and_its_return_brings_the_group_back() {
    let dir = scratch("node-lost");
    let (robot_config, node_config) = node_configs(&dir, "\"node:laptop\"", &free_endpoint());
    let mut robot = Running::start(&["run", "--config", robot_config.to_str().unwrap()]);
    let tree = GroupWatch {
        base: robot.http_base(),
        group: GROUP,
    };
    let waiting = tree.until("the group waiting for its node", |g, _| {
        g["placement"] == "node:laptop (waiting)"
    });
    assert_eq!(
        waiting["children"].as_array().map_or(0, Vec::len),
        0,
        "{waiting}"
    );

    let first = start_node(&node_config);
    let on_node = tree.until("the group on its node", |g, t| {
        g["placement"] == "node:laptop" && running_oa(t)
    });
    assert_eq!(on_node["pid"], first.pid(), "{on_node}");
    let restarts = on_node["restarts"].as_u64().unwrap();

    first.signal("KILL");
    let lost = tree.until("the node lost", |g, _| {
        g["last_exit"] == "node lost: laptop" && g["placement"] == "node:laptop (waiting)"
    });
    assert_eq!(lost["restarts"].as_u64().unwrap(), restarts + 1, "{lost}");
    assert!(
        find_node(&tree.tree(), OA).is_none(),
        "a behaviour shown while nowhere"
    );

    let second = start_node(&node_config);
    let back = tree.until("the group back on a new node", |g, t| {
        g["placement"] == "node:laptop" && g["pid"] == second.pid() && running_oa(t)
    });
    assert_eq!(back["status"], "running");
    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    second.signal("TERM");
    let (code, lines) = second.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    // The robot's stop stopped the node's group (its token went with the robot).
    assert!(
        lines.iter().any(|l| l.contains("group stopped")),
        "{}",
        lines.join("\n")
    );
    let _ = first.finish();
}

/// `fallback = "local"`: with no node the group runs in the robot's process; when the
/// node comes, it moves there; when the node goes, it runs here again.
#[test]
fn the_local_fallback_holds_the_group_while_the_node_is_away() {
    let dir = scratch("node-fallback");
    let placement = "{ node = \"laptop\", fallback = \"local\" }";
    let (robot_config, node_config) = node_configs(&dir, placement, &free_endpoint());
    let mut robot = Running::start(&["run", "--config", robot_config.to_str().unwrap()]);
    let tree = GroupWatch {
        base: robot.http_base(),
        group: GROUP,
    };
    let here = |g: &Value, t: &Value| {
        g["placement"]
            .as_str()
            .is_some_and(|p| p.starts_with("in_process"))
            && running_oa(t)
    };
    let local = tree.until("the group running here", here);
    assert_eq!(local["pid"], robot.pid(), "{local}");

    let away = start_node(&node_config);
    let moved = tree.until("the group moved to the node", |g, t| {
        g["placement"] == "node:laptop" && running_oa(t)
    });
    assert_eq!(moved["pid"], away.pid(), "{moved}");

    away.signal("KILL");
    let back = tree.until("the group here again", here);
    assert_eq!(back["last_exit"], "node lost: laptop", "{back}");
    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    let _ = away.finish();
}

/// A node that cannot serve says why and exits 2.
#[test]
fn a_node_without_a_network_or_a_group_is_bad_input() {
    let dir = scratch("node-bad");
    let out = output(&["node", "--name", "laptop"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("no [zenoh] listen or connect"),
        "{}",
        text(&out).1
    );
    let (_, node_config) = node_configs(&dir, "\"node:desk\"", &free_endpoint());
    let out = output(&[
        "node",
        "--name",
        "laptop",
        "--config",
        node_config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).1.contains("places no group on node:laptop"),
        "{}",
        text(&out).1
    );
    let out = output(&[
        "node",
        "--name",
        "lap/top",
        "--config",
        node_config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("node name"), "{}", text(&out).1);
}

/// A listen endpoint already taken stops the robot's start with an error naming it,
/// not a panic (the bulkhead runtime built before it is let go without blocking).
#[test]
fn a_taken_listen_endpoint_is_a_clear_error() {
    let dir = scratch("node-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("tcp/{}", taken.local_addr().unwrap());
    let (robot_config, _) = node_configs(&dir, "\"node:laptop\"", &endpoint);
    let out = output(&[
        "run",
        "--config",
        robot_config.to_str().unwrap(),
        "--duration",
        "5",
    ]);
    let stderr = text(&out).1;
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(&endpoint), "{stderr}");
}
