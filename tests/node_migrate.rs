//! Migration on the real binary: a `migratable` group (`migrate_to = "laptop"`) runs in
//! the robot's process, moves to `nevil node --name laptop` while host CPU stays
//! critical (pressure induced by low-priority busy processes, one per core), and comes
//! home once it has cleared. Each move is one `migrate` enforcement in the worker's
//! history, its metric and the audit trail. A node lost while the group runs there
//! brings the group home by a restart, and a move with no node to go to is refused.
//!
//! Waits poll the robot's `/tree` (a minute at most, as a failsafe); nothing asserts a
//! wall-clock time. The moves' durations are printed (README's migration figure).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::process::{Child, Command, Stdio};

use serde_json::Value;
use util::{
    find_node, free_endpoint, http_get, node_configs, scratch, start_node, GroupWatch, Running,
};

const GROUP: &str = "root/control/behaviours";
const OA: &str = "root/control/behaviours/obstacle_avoidance";

/// Busy processes at the lowest priority, one per core: the host's CPU reads ~100 %
/// while the robot and the node still get the CPU they ask for.
struct Load(Vec<Child>);

impl Load {
    fn start() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self(
            (0..cores)
                .map(|_| {
                    Command::new("nice")
                        .args(["-n", "19", "sh", "-c", "while :; do :; done"])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("start a busy process")
                })
                .collect(),
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `nevil_quota_enforcements_total{path=GROUP,action="migrate"}` at `base`.
fn migrations_metric(base: &str) -> u64 {
    let (_, text) = http_get(&format!("{base}/metrics"));
    let series = format!("nevil_quota_enforcements_total{{path=\"{GROUP}\",action=\"migrate\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

fn running_oa(tree: &Value) -> bool {
    find_node(tree, OA).is_some_and(|n| n["status"] == "running")
}

fn at_home(g: &Value, t: &Value) -> bool {
    g["placement"] == "in_process (migrates to node:laptop)" && running_oa(t)
}

/// The `to` of each `migrate` in the group's enforcement history.
fn moves(group: &Value) -> Vec<String> {
    group["quota"]["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["action"] == "migrate")
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_migratable_group_moves_to_its_node_under_pressure_and_home_when_it_clears() {
    let dir = scratch("node-migrate");
    let placement = "{ migrate_to = \"laptop\", after_s = 1.0, back_after_s = 1.0 }";
    let (robot_config, node_config) = node_configs(&dir, placement, &free_endpoint());
    // Sample the host often and keep quotas as they are under pressure: only the
    // migration is under test. CPU is critical at the default 90 % of all cores.
    let text = std::fs::read_to_string(&robot_config).unwrap();
    let text = text.replace(
        "period_s = 1.0\npressure_factor = 0.5",
        "period_s = 0.3\npressure_factor = 1.0",
    );
    std::fs::write(&robot_config, text).unwrap();
    let audit = dir.join("audit.jsonl");
    let mut robot = Running::start(&[
        "run",
        "--config",
        robot_config.to_str().unwrap(),
        "--audit",
        audit.to_str().unwrap(),
    ]);
    let robot_http = GroupWatch {
        base: robot.http_base(),
        group: GROUP,
    };
    let home = robot_http.until("the group at home", at_home);
    assert_eq!(home["pid"], robot.pid(), "{home}");
    let mut node = start_node(&node_config);
    node.wait_for("node running");
    assert!(moves(&home).is_empty(), "moved with no pressure: {home}");

    let load = Load::start();
    // The supervisor records a move at its first sample after the move is over.
    let away = robot_http.until(
        "the group migrated to its node, the move recorded",
        |g, t| g["placement"] == "node:laptop (migrated)" && running_oa(t) && !moves(g).is_empty(),
    );
    assert_eq!(away["pid"], node.pid(), "{away}");
    assert_eq!(moves(&away), ["away"], "{away}");
    let record = away["quota"]["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(record["resource"], "cpu", "{record}");
    assert!(record["usage"].as_f64().unwrap() >= 0.9, "{record}");
    assert_eq!(record["limit"], 0.9, "{record}");
    assert_eq!(migrations_metric(&robot_http.base), 1);

    drop(load);
    let back = robot_http.until("the group home again, the move recorded", |g, t| {
        at_home(g, t) && moves(g).len() > 1
    });
    assert_eq!(back["pid"], robot.pid(), "{back}");
    assert_eq!(moves(&back), ["away", "home"], "{back}");
    assert_eq!(migrations_metric(&robot_http.base), 2);
    node.wait_for("group stopped");

    // Away again, then the node dies: the group's worker exits `node lost` and its
    // restart runs the group at home; with the pressure still on and no node, the next
    // move is refused and not recorded.
    let load = Load::start();
    robot_http.until("the group migrated again, the move recorded", |g, t| {
        g["placement"] == "node:laptop (migrated)" && running_oa(t) && moves(g).len() > 2
    });
    node.signal("KILL");
    let lost = robot_http.until("the group home after its node was lost", |g, t| {
        g["last_exit"] == "node lost: laptop" && at_home(g, t)
    });
    assert_eq!(lost["pid"], robot.pid(), "{lost}");
    robot.wait_for("migration not possible now");
    drop(load);

    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    let _ = node.finish();
    let durations: Vec<&String> = lines.iter().filter(|l| l.contains("moved_ms")).collect();
    assert_eq!(durations.len(), 3, "three moves logged: {durations:?}");
    for line in durations {
        eprintln!("move: {line}");
    }

    let trail = std::fs::read_to_string(&audit).unwrap();
    let migrations: Vec<Value> = trail
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == "migrate")
        .collect();
    let to: Vec<_> = migrations
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(to, ["away", "home", "away"], "{trail}");
    assert!(
        migrations
            .iter()
            .all(|e| e["path"] == GROUP && e["kind"] == "quota"),
        "{trail}"
    );
    let verify = util::output(&["audit", "verify", audit.to_str().unwrap()]);
    assert!(verify.status.success(), "{}", util::text(&verify).1);
}
