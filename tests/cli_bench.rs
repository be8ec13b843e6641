//! `nevil bench --json`: one object with every figure DESIGN.md names. The figures are
//! reported in the closing notes, not asserted here (shared machines are noisy); this
//! checks that every scenario runs through the real binary and yields a sane number.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use util::{output, text};

#[test]
fn bench_json_has_every_figure() {
    let out = output(&["bench", "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in [
        "throughput_bare_msgs_per_s",
        "throughput_managed_msgs_per_s",
        "call_p50_us",
        "call_p99_us",
        "restart_p50_us",
        "restart_p99_us",
        "rest_for_one_restart_p50_us",
        "suspend_resume_p50_us",
        "breach_to_action_ms",
        "idle_actor_bytes_bare",
        "idle_actor_bytes_managed",
        "tree_10k_start_ms",
        "tree_10k_snapshot_ms",
        "tree_10k_metrics_ms",
        "tree_10k_restart_p50_us",
        "bridge_hop_p50_us",
        "bridge_hop_p99_us",
        "bridge_msgs_per_s",
        "net_hop_p50_us",
        "net_hop_p99_us",
        "net_msgs_per_s",
        "process_restart_p50_us",
        "process_restart_p99_us",
        "busy_kill_ms",
        "observer_state_1000_actors_ms",
        "observer_state_bytes_1000_actors",
    ] {
        let v = report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {report}"));
        assert!(v.is_finite() && v > 0.0, "{key} = {v}");
    }
    assert!(report["call_p50_us"].as_f64() <= report["call_p99_us"].as_f64());
    assert!(report["bridge_hop_p50_us"].as_f64() <= report["bridge_hop_p99_us"].as_f64());
    assert!(report["process_restart_p50_us"].as_f64() <= report["process_restart_p99_us"].as_f64());
    assert!(report["busy_kill_ms"].as_f64() <= report["busy_kill_max_ms"].as_f64());
    // A managed worker is a bare actor plus its counters and its supervisor's share
    // (the bench runs alone in its process, so the allocator's count is its own).
    assert!(
        report["idle_actor_bytes_managed"].as_f64() > report["idle_actor_bytes_bare"].as_f64(),
        "{report}"
    );
}
