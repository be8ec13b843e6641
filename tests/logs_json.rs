//! `--log-format json` on the real binary during a panic drill: one JSON object per
//! stderr line, the restart as exactly one structured event, and the actor path on every
//! line written from inside an actor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use serde_json::Value;
use util::{output, text};

/// Modules whose code runs only inside actors (handlers and supervisor callbacks).
const ACTOR_TARGETS: [&str; 5] = [
    "nevil_actors",
    "nevil::robot::drivers",
    "nevil::robot::nodes",
    "nevil::services",
    "nevil::robot::safety",
];

/// Modules under [`ACTOR_TARGETS`] that also run outside actors: the dead-man has a
/// thread of its own (it logs from there when it trips, e.g. on a stale sensor's e-stop
/// on a loaded machine).
const OFF_ACTOR_TARGETS: [&str; 1] = ["nevil::robot::safety::deadman"];

/// Runs the robot with JSON logs for `duration` s and the drill `inject`; every stderr
/// line parsed (each must be JSON), and stderr itself for messages.
fn json_run(duration: &str, inject: &str) -> (Vec<Value>, String) {
    let out = output(&[
        "--log-format",
        "json",
        "run",
        "--duration",
        duration,
        "--inject",
        inject,
    ]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let lines = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (lines, stderr)
}

/// A panic in `obstacle_avoidance` at 1 s of a 3 s run. Why the assertions prove the
/// contract: every line is parsed (the panic itself included, which the default panic
/// hook would print as loose text); the restart is counted by its one event ("child
/// exited", action restart) and no other line speaks of an exit; and lines are sorted
/// into "from inside an actor" by the module that logged them, each of which must carry
/// an `actor{path}` span — the drilled actor's own path for the drill and the panic.
#[test]
fn json_logs_carry_paths_and_one_event_per_restart() {
    let target = "root/control/behaviours/obstacle_avoidance";
    let (lines, stderr) = json_run("3", "obstacle_avoidance:panic@1");
    assert!(lines.len() >= 5, "{stderr}");

    let message = |l: &Value| l["fields"]["message"].as_str().unwrap_or("").to_string();
    let span_path = |l: &Value| l["span"]["path"].as_str().map(str::to_string);

    let exits: Vec<&Value> = lines
        .iter()
        .filter(|l| message(l) == "child exited")
        .collect();
    assert_eq!(exits.len(), 1, "one exit, one event: {exits:?}");
    let restart = &exits[0]["fields"];
    assert_eq!(restart["path"], target, "{restart}");
    assert_eq!(restart["action"], "restart", "{restart}");
    assert_eq!(restart["kind"], "panic", "{restart}");
    assert_eq!(restart["reason"], "panic: fault drill: panic", "{restart}");
    assert_eq!(restart["restarts"], 1, "{restart}");
    assert_eq!(
        span_path(exits[0]).as_deref(),
        Some("root/control/behaviours")
    );

    let mut from_actors = 0;
    for l in &lines {
        let target_module = l["target"].as_str().unwrap_or("");
        if ACTOR_TARGETS.iter().any(|t| target_module.starts_with(t))
            && !OFF_ACTOR_TARGETS
                .iter()
                .any(|t| target_module.starts_with(t))
        {
            from_actors += 1;
            assert_eq!(l["span"]["name"], "actor", "no actor span: {l}");
            assert!(span_path(l).is_some_and(|p| p.starts_with("root")), "{l}");
        }
        // Any span a line carries is an actor's, with its path.
        if let Some(span) = l.get("span") {
            assert!(span["path"].is_string(), "{l}");
        }
    }
    assert!(from_actors >= 3, "{stderr}");

    for needle in ["fault drill", "panicked"] {
        let line = lines
            .iter()
            .find(|l| message(l) == needle)
            .unwrap_or_else(|| panic!("no {needle:?} line: {stderr}"));
        assert_eq!(span_path(line).as_deref(), Some(target), "{line}");
    }
    let panicked = lines.iter().find(|l| message(l) == "panicked").unwrap();
    assert_eq!(panicked["fields"]["panic"], "fault drill: panic");
}

/// A mailbox flood on `steering` (standard group: restart at the hard limit) with JSON
/// logs: every quota action is one `quota enforcement` event with path, resource,
/// usage, limit and action, logged by the drivers supervisor; a restart it orders is
/// followed by exactly one exit event (kind quota, action restart) for that actor.
#[test]
fn quota_actions_are_one_event_each() {
    let target = "root/drivers/steering";
    let (lines, stderr) = json_run("4", "steering:flood@1");
    let with_message = |m: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == m)
            .collect()
    };
    let quota = with_message("quota enforcement");
    assert!(!quota.is_empty(), "{stderr}");
    for q in &quota {
        let f = &q["fields"];
        assert!(f["path"].is_string() && f["resource"].is_string(), "{q}");
        assert!(f["usage"].is_number() && f["limit"].is_number(), "{q}");
        assert!(f["action"].is_string(), "{q}");
        assert!(q["span"]["path"].is_string(), "logged by a supervisor: {q}");
    }
    let ours: Vec<_> = quota
        .iter()
        .filter(|q| q["fields"]["path"] == target)
        .collect();
    for q in &ours {
        assert_eq!(q["fields"]["resource"], "mailbox", "{q}");
        assert_eq!(q["span"]["path"], "root/drivers", "{q}");
    }
    let ordered = ours
        .iter()
        .filter(|q| q["fields"]["action"] == "restart")
        .count();
    assert!(ordered >= 1, "the flood reached the hard limit: {stderr}");
    let exits: Vec<_> = with_message("child exited")
        .into_iter()
        .filter(|e| e["fields"]["path"] == target)
        .collect();
    assert_eq!(
        exits.len(),
        ordered,
        "one exit per quota restart: {exits:?}"
    );
    for e in exits {
        assert_eq!(e["fields"]["kind"], "quota", "{e}");
        assert_eq!(e["fields"]["action"], "restart", "{e}");
    }
}
