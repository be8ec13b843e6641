//! The observer page's fleet routes on the real binary: robot A listens on loopback,
//! robot B connects to it; A's `GET /fleet` lists both with their health (A marked
//! `self`), `GET /fleet/robot-b/tree` and `/events` are B's (its pid, its start), an
//! unknown robot is a 404 naming it, a malformed id a 400; a robot without a session
//! lists itself alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::time::{Duration, Instant};

use util::fleet::{listening_at, robot_config};
use util::{config_with, http_get, scratch, Running};

/// Stops `robot` with SIGTERM; it must exit 0.
fn stop(robot: Running) {
    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
}

/// `GET url` as JSON, asserting 200.
fn get_json(url: &str) -> serde_json::Value {
    let (status, body) = http_get(url);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

#[test]
fn a_robots_page_lists_the_fleet_and_shows_another_robots_tree_and_events() {
    let a_config = robot_config("robot-a", "listen = [\"tcp/127.0.0.1:0\"]", "");
    let mut a = Running::start(&[
        "run",
        "--duration",
        "120",
        "--config",
        a_config.to_str().unwrap(),
    ]);
    let a_base = a.http_base();
    let at_a = listening_at(&a.wait_for("zenoh listening"));
    let b_config = robot_config("robot-b", &format!("connect = [\"{at_a}\"]"), "");
    let mut b = Running::start(&[
        "run",
        "--duration",
        "120",
        "--config",
        b_config.to_str().unwrap(),
    ]);
    let b_base = b.http_base();
    b.wait_for("zenoh listening");

    // B's token reaches A once their session is up: ask until it is listed (a failsafe
    // bound, no timing asserted).
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let listed = get_json(&format!("{a_base}/fleet"));
        if listed.as_array().unwrap().len() == 2 || Instant::now() > deadline {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let listed = listed.as_array().unwrap();
    let ids: Vec<&str> = listed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["robot-a", "robot-b"], "{listed:?}");
    assert_eq!(listed[0]["self"], true);
    assert_eq!(listed[1]["self"], false);
    for r in listed {
        let health = &r["health"];
        assert_eq!(health["id"], r["id"], "{r}");
        assert_eq!(health["live"], true, "{health}");
        assert!(health["actors"].as_u64().unwrap() > 10, "{health}");
    }
    // B sees A the same way, from its side.
    let from_b = get_json(&format!("{b_base}/fleet"));
    let self_of_b: Vec<(&str, bool)> = from_b
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["self"].as_bool().unwrap()))
        .collect();
    assert_eq!(self_of_b, [("robot-b", true), ("robot-a", false)]);

    // B's tree through A: B's pid, not A's.
    let tree_of_b = get_json(&format!("{a_base}/fleet/robot-b/tree"));
    util::assert_tree_schema(&tree_of_b);
    assert_eq!(tree_of_b["pid"], b.pid(), "B's tree is B's");
    assert_ne!(b.pid(), a.pid());
    assert_eq!(
        util::node(&tree_of_b, "root/control/motion")["kind"],
        "worker"
    );
    let own = get_json(&format!("{a_base}/fleet/robot-a/tree"));
    assert_eq!(own["pid"], a.pid(), "A's own tree is answered by A");

    // B's kept events through A: a list, as B's own queryable answers it.
    let events_of_b = get_json(&format!("{a_base}/fleet/robot-b/events"));
    assert!(events_of_b.is_array(), "{events_of_b}");

    let (status, body) = http_get(&format!("{a_base}/fleet/robot-c/tree"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"robot-c\" is not reachable"), "{body}");
    let (status, body) = http_get(&format!("{a_base}/fleet/robot.c/events"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("robot id \"robot.c\""), "{body}");

    // B goes: A no longer lists it, and its tree is a 404 naming it.
    stop(b);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = get_json(&format!("{a_base}/fleet"));
        if listed.as_array().unwrap().len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "B is still listed: {listed}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = http_get(&format!("{a_base}/fleet/robot-b/tree"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("robot-b"), "{body}");
    stop(a);
}

#[test]
fn without_a_session_the_page_lists_only_its_robot() {
    let dir = scratch("fleet-page-alone");
    let config = config_with(
        &dir,
        &[("backend = \"sim\"", "id = \"loner\"\nbackend = \"sim\"")],
    );
    let mut robot = Running::start(&[
        "run",
        "--duration",
        "120",
        "--config",
        config.to_str().unwrap(),
    ]);
    let base = robot.http_base();
    let listed = get_json(&format!("{base}/fleet"));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], "loner");
    assert_eq!(listed[0]["self"], true);
    assert_eq!(listed[0]["health"]["id"], "loner");
    let tree = get_json(&format!("{base}/fleet/loner/tree"));
    assert_eq!(tree["pid"], robot.pid());
    let (status, body) = http_get(&format!("{base}/fleet/robot-b/tree"));
    assert_eq!(status, 404, "{body}");
    stop(robot);
}
