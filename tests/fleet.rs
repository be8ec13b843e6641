//! The fleet view on the real binary: two robots listening on loopback (port 0, the
//! port read from their `zenoh listening` log line), `nevil fleet` listing both with
//! their health, printing each one's tree, and following one's events (those it kept,
//! then live ones, until the robot goes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use util::fleet::{assert_fleet_tree, listening_at, robot_config, Printed};
use util::{nevil, output, text, Running};

/// `nevil run` as robot `id`, Zenoh on a loopback port of the OS's choosing, with
/// `more` arguments; the robot and the endpoint it listens on.
fn robot(id: &str, more: &[&str]) -> (Running, String) {
    let path = robot_config(id, "listen = [\"tcp/127.0.0.1:0\"]", "");
    let mut args = vec![
        "run",
        "--duration",
        "120",
        "--config",
        path.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let mut robot = Running::start(&args);
    let line = robot.wait_for("zenoh listening");
    assert!(line.contains(id), "{line}");
    (robot, listening_at(&line))
}

/// Stops `robot` with SIGTERM; it must exit 0.
fn stop(robot: Running) {
    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
}

/// `nevil fleet args`: exit code, stdout, stderr.
fn fleet(args: &[&str]) -> Printed {
    let out = output(&[&["fleet"], args].concat());
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

#[test]
fn lists_two_robots_with_their_health_and_shows_each_tree() {
    let (a, at_a) = robot("robot-a", &[]);
    let (b, at_b) = robot("robot-b", &[]);
    let both = ["--connect", &at_a, "--connect", &at_b];

    let (code, stdout, stderr) = fleet(&[&both[..], &["--json"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    let listed = listed.as_array().expect("a list");
    let ids: Vec<&str> = listed.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["robot-a", "robot-b"]);
    for r in listed {
        let health = &r["health"];
        assert_eq!(health["id"], r["id"]);
        assert_eq!(health["live"], true, "{health}");
        assert_eq!(health["config_generation"], 1);
        assert!(health["actors"].as_u64().unwrap() > 10, "{health}");
        assert!(health["restarts"].is_u64() && health["uptime_s"].is_f64());
        assert!(health["ready"].is_boolean() && health["reasons"].is_array());
        assert!(r.get("tree").is_none(), "a tree only with --tree");
    }

    let (code, stdout, stderr) = fleet(&both);
    assert_eq!(code, Some(0), "{stderr}");
    let rows: Vec<&str> = stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(
        rows[0].starts_with("ID ") && rows[0].contains("READY"),
        "{stdout}"
    );
    assert!(rows[1].starts_with("robot-a ") && rows[2].starts_with("robot-b "));

    for id in ["robot-a", "robot-b"] {
        assert_fleet_tree(
            id,
            &fleet(&[&both[..], &["--tree", id, "--json"]].concat()),
            &fleet(&[&both[..], &["--tree", id]].concat()),
        );
    }

    let (code, _, stderr) = fleet(&[&both[..], &["--tree", "robot-c"]].concat());
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("robot \"robot-c\" not found (reachable: robot-a, robot-b)"),
        "{stderr}"
    );
    stop(a);
    stop(b);
}

/// A `nevil fleet --follow` whose stdout and stderr lines can be awaited.
struct Follower {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

impl Follower {
    fn start(args: &[&str]) -> Self {
        let mut child = nevil(&[&["fleet"], args].concat())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nevil fleet");
        let lines = |pipe: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let out = lines(Box::new(child.stdout.take().unwrap()));
        let err = lines(Box::new(child.stderr.take().unwrap()));
        Self { child, out, err }
    }

    /// Waits (up to a minute, as a failsafe) for a line of `pipe` with every needle.
    fn wait(pipe: &mpsc::Receiver<String>, needles: &[&str]) -> String {
        let mut seen = Vec::new();
        loop {
            match pipe.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if needles.iter().all(|n| line.contains(n)) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no line with {needles:?}; got:\n{}", seen.join("\n")),
            }
        }
    }
}

#[test]
fn follows_a_robots_events_from_its_kept_ones_until_it_goes() {
    let (mut a, at_a) = robot("robot-f", &["--inject", "motion:panic@0.5"]);
    a.wait_for("child exited path=root/control/motion");
    let follower = Follower::start(&["--connect", &at_a, "--follow", "robot-f", "--for", "60"]);
    // The drill's restart: kept by the robot before the follower came, or live.
    let restart = Follower::wait(
        &follower.out,
        &["\"kind\":\"restart\"", "\"path\":\"root/control/motion\""],
    );
    let entry: serde_json::Value = serde_json::from_str(&restart).expect(&restart);
    assert_eq!(entry["restarts"], 1);
    assert!(entry["ts_ms"].as_u64().unwrap() > 0);
    Follower::wait(&follower.err, &["following robot-f"]);

    // A live one: the e-stop of the robot's shutdown, then the robot goes.
    a.signal("TERM");
    Follower::wait(
        &follower.out,
        &["\"kind\":\"estop\"", "\"engaged\":true", "shutdown"],
    );
    Follower::wait(&follower.err, &["robot \"robot-f\" is gone"]);
    let mut follower = follower;
    let status = follower.child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "following a robot that went");
    let (code, lines) = a.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
}

#[test]
fn follow_for_ends_the_follow_with_success() {
    let (a, at_a) = robot("robot-g", &[]);
    let (code, stdout, stderr) =
        fleet(&["--connect", &at_a, "--follow", "robot-g", "--for", "0.2"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("following robot-g"), "{stderr}");
    for line in stdout.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect(line);
        assert!(
            entry["kind"].is_string() && entry["ts_ms"].is_u64(),
            "{line}"
        );
    }
    stop(a);
}

#[test]
fn nothing_reachable_exits_1() {
    // Nothing listens on loopback port 1 (privileged, never a test's).
    let (code, stdout, stderr) = fleet(&["--connect", "tcp/127.0.0.1:1"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stderr.contains("no robot reachable at tcp/127.0.0.1:1"),
        "{stderr}"
    );
}

#[test]
fn bad_input_exits_2_naming_it() {
    let (code, _, stderr) = fleet(&["--connect", "127.0.0.1:7447"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--connect \"127.0.0.1:7447\" is no endpoint"),
        "{stderr}"
    );
    let (code, _, stderr) = fleet(&[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("nothing to connect to"), "{stderr}");
    let (code, _, stderr) = fleet(&["--connect", "tcp/127.0.0.1:1", "--for", "1"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--follow"), "{stderr}");
    let (code, _, stderr) = fleet(&["--connect", "tcp/127.0.0.1:1", "--tree", "a b"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--tree: robot id \"a b\""), "{stderr}");
}

/// What robot `id` at `endpoint` answers on `what`, asked from a session of the
/// test's own (as any Zenoh client would).
fn ask(endpoint: &str, id: &str, what: &str) -> String {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let zenoh = nevil::config::ZenohConfig {
            connect: vec![endpoint.to_string()],
            ..Default::default()
        };
        let session = nevil::bus::net::open(&zenoh).await.unwrap();
        let key = nevil::ops::fleet::key(id, what);
        // The peer is reached in the background: ask until it answers (a minute of
        // asking at most, as a failsafe).
        for _ in 0..600 {
            let replies = session
                .get(&key)
                .timeout(Duration::from_secs(1))
                .await
                .unwrap();
            if let Ok(reply) = replies.recv_async().await {
                let sample = reply.result().expect("an answer, not an error");
                return String::from_utf8(sample.payload().to_bytes().to_vec()).unwrap();
            }
            // Not reached yet (the query ended without an answer): ask again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{key}: no answer");
    })
}

#[test]
fn answers_metrics_and_health_to_any_zenoh_client() {
    let (a, at_a) = robot("robot-m", &[]);
    let metrics = ask(&at_a, "robot-m", "metrics");
    assert!(
        metrics.contains("nevil_actor_restarts_total{path=\"root/control/motion\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("nevil_build_info{version="), "{metrics}");
    let health: nevil::ops::fleet::RobotHealth =
        serde_json::from_str(&ask(&at_a, "robot-m", "health")).unwrap();
    assert_eq!(health.id, "robot-m");
    assert!(health.live);
    stop(a);
}

#[test]
fn a_robot_that_dies_is_gone_within_the_lease() {
    let (a, at_a) = robot("robot-k", &[]);
    let follower = Follower::start(&["--connect", &at_a, "--follow", "robot-k", "--for", "60"]);
    Follower::wait(&follower.err, &["following robot-k"]);
    // No goodbye: the token goes when the lease runs out.
    a.signal("KILL");
    Follower::wait(&follower.err, &["robot \"robot-k\" is gone"]);
    let mut follower = follower;
    assert_eq!(follower.child.wait().unwrap().code(), Some(1));
    let (code, _) = a.finish();
    assert_eq!(code, None, "killed by a signal");
}
