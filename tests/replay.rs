//! Record a run, replay it through the nodes, get the same motor commands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use util::{output, scratch, text};

#[test]
fn replay_reproduces_the_motor_commands() {
    let dir = scratch("replay");
    let rec = dir.join("run.rec");
    let out = output(&["run", "--duration", "3", "--record", rec.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);

    let out = output(&["replay", rec.to_str().unwrap(), "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let checked = report["drives_checked"].as_u64().unwrap();
    assert!(checked > 100, "{report}");
    assert_eq!(report["drives_matched"], checked);
    assert!(report["commands_checked"].as_u64().unwrap() > 20);
    assert_eq!(report["commands_matched"], report["commands_checked"]);
}

/// A replay under a different tuning computes other commands, and says so (exit 1):
/// the comparison is real.
#[test]
fn replay_with_other_tuning_reports_mismatches() {
    let dir = scratch("replay-other");
    let rec = dir.join("run.rec");
    let out = output(&["run", "--duration", "2", "--record", rec.to_str().unwrap()]);
    assert!(out.status.success());
    let other = util::config_with(&dir, &[("cruise_power = 35", "cruise_power = 20")]);
    let out = output(&[
        "replay",
        rec.to_str().unwrap(),
        "--config",
        other.to_str().unwrap(),
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("mismatch:"), "{stdout}");
}

#[test]
fn garbage_recording_is_named() {
    let dir = scratch("replay-bad");
    let bad = dir.join("bad.rec");
    std::fs::write(&bad, b"definitely not a recording").unwrap();
    let out = output(&["replay", bad.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("bad.rec") && stderr.contains("not a nevil recording"),
        "{stderr}"
    );

    // 28 bytes whose e-stop reason claims 2^40 bytes: refused by name, not an abort
    // while allocating for it.
    let hostile = dir.join("hostile.rec");
    let mut file = b"NEVILREC".to_vec();
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&12u32.to_le_bytes());
    file.extend_from_slice(&[5, 0, 1, 0xFD]);
    file.extend_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&hostile, &file).unwrap();
    let out = output(&["replay", hostile.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("hostile.rec") && stderr.contains("record does not decode"),
        "{stderr}"
    );
}
