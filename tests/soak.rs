//! `nevil soak` on the real binary: a short soak passes with its figures in the JSON
//! summary; bad input exits 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use util::{nevil, text};

/// A 15-second soak (fractional minutes) plays its schedule, every invariant holds, and
/// `--json` prints one object with the summary's figures.
#[test]
fn a_short_soak_passes_and_reports_its_figures() {
    let out = nevil(&["soak", "--minutes", "0.25", "--seed", "3", "--json"])
        // Each injected panic would capture and print a backtrace (see `nevil soak`'s docs).
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("seed 3"), "{stderr}");
    let s: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(s["seed"], 3);
    assert_eq!(s["minutes"], 0.25);
    assert_eq!(s["passed"], true, "{s}");
    assert!(s["violation"].is_null(), "{s}");
    assert_eq!(s["replay"], "nevil soak --minutes 0.25 --seed 3");
    assert_eq!(s["exit"], "normal");
    let duration = s["duration_s"].as_f64().unwrap();
    assert!(duration >= 15.0, "{s}");
    // 15 s of steps every 0.5–2.5 s: several, of several kinds.
    let steps = s["steps"].as_u64().unwrap();
    assert!(steps >= 5, "{s}");
    let faults = s["faults"].as_object().unwrap();
    let by_kind: u64 = faults.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(s["faults_injected"].as_u64().unwrap(), by_kind);
    let known = [
        "panic", "error", "exit", "hang", "spin", "leak", "flood", "unplug",
    ];
    assert!(faults.keys().all(|k| known.contains(&k.as_str())), "{s}");
    assert!(by_kind + s["suspends"].as_u64().unwrap() > 0, "{s}");
    for key in [
        "faults_skipped",
        "faults_ended_by_kill",
        "probe_rounds",
        "probe_rounds_void",
        "probe_messages",
        "restarts",
        "escalations",
        "escalations_unjudged",
        "events_lost",
        "estops",
        "hazards",
        "peak_rss_bytes",
        "warmup_peak_rss_bytes",
        "rss_bound_bytes",
    ] {
        assert!(s[key].is_u64(), "{key}: {s}");
    }
    let worst = s["worst_stop_ms"].as_f64().unwrap();
    assert!(worst <= s["stop_ceiling_ms"].as_f64().unwrap(), "{s}");
    let peak = s["peak_rss_bytes"].as_u64().unwrap();
    assert!(
        peak > 0 && peak <= s["rss_bound_bytes"].as_u64().unwrap(),
        "{s}"
    );
}

/// A length out of range, or a config that is not the simulated robot, exits 2 naming it.
#[test]
fn bad_input_exits_2() {
    let out = nevil(&["soak", "--minutes", "0", "--seed", "1"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--minutes must be > 0"), "{stderr}");

    let picarx = concat!(env!("CARGO_MANIFEST_DIR"), "/config/picarx.toml");
    let out = nevil(&["soak", "--minutes", "1", "--config", picarx])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("simulated robot only"), "{stderr}");
}
