//! The audit trail on the real binary: a run with `--audit` and a fault drill leaves a
//! chain that `nevil audit verify` finds intact and that holds the drill's exit and
//! restart and the shutdown's e-stop; a second run appends to it; a changed byte is
//! then named by its line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::Path;

use util::{output, scratch, text, Running};

fn entries(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("audit file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn verify(path: &Path) -> (Option<i32>, String, String) {
    let out = output(&["audit", "verify", path.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

#[test]
fn a_run_with_a_drill_leaves_a_verifiable_trail_and_tampering_is_named() {
    let dir = scratch("audit");
    let trail = dir.join("audit.jsonl");
    let mut robot = Running::start(&[
        "--log-format",
        "json",
        "run",
        "--audit",
        trail.to_str().unwrap(),
        "--inject",
        "root/drivers/grayscale:panic@0.3",
    ]);
    robot.wait_for("child exited");
    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));

    let (code, stdout, stderr) = verify(&trail);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let all = entries(&trail);
    assert!(
        stdout.contains(&format!("{} lines intact", all.len())),
        "{stdout}"
    );
    assert_eq!(all[0]["kind"], "config");
    assert_eq!(
        (&all[0]["generation"], &all[0]["outcome"], &all[0]["origin"]),
        (&1.into(), &"loaded".into(), &"default config".into())
    );
    let find = |kind: &str| {
        all.iter()
            .find(|e| e["kind"] == kind && e["path"] == "root/drivers/grayscale")
            .unwrap_or_else(|| panic!("no {kind} of grayscale in {all:#?}"))
    };
    let exit = find("exit");
    assert_eq!(exit["reason"], "panic: fault drill: panic");
    assert_eq!(exit["restart"], true);
    assert_eq!(find("restart")["restarts"], 1);
    assert!(
        all.iter()
            .any(|e| e["kind"] == "estop" && e["engaged"] == true),
        "no e-stop engaged in {all:#?}"
    );
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "{e}");
    }

    // A second run appends and continues the chain.
    let out = output(&[
        "run",
        "--duration",
        "0.3",
        "--audit",
        trail.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out).1);
    let again = entries(&trail);
    assert!(again.len() > all.len());
    assert_eq!(again[all.len()]["kind"], "config");
    assert_eq!(again[all.len()]["prev"], all[all.len() - 1]["hash"]);
    let (code, stdout, _) = verify(&trail);
    assert_eq!(code, Some(0), "{stdout}");

    // One changed byte (a digit of line 2's timestamp) is named by its line.
    let mut bytes = std::fs::read(&trail).unwrap();
    let line2 = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let at = line2
        + std::str::from_utf8(&bytes[line2..])
            .unwrap()
            .find("\"ts_ms\":")
            .unwrap()
        + 8;
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&trail, &bytes).unwrap();
    let (code, _, stderr) = verify(&trail);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("audit.jsonl: line 2: hash mismatch"),
        "{stderr}"
    );
}

#[test]
fn verify_exits_2_for_a_missing_file_and_run_refuses_a_foreign_file() {
    let dir = scratch("audit-bad");
    let (code, _, stderr) = verify(&dir.join("nope.jsonl"));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("nope.jsonl"), "{stderr}");

    let foreign = dir.join("notes.txt");
    std::fs::write(&foreign, "not an audit trail\n").unwrap();
    let out = output(&[
        "run",
        "--duration",
        "0.2",
        "--audit",
        foreign.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out).1;
    assert!(
        stderr.contains("notes.txt") && stderr.contains("cannot continue its chain"),
        "{stderr}"
    );
}

/// With no restarts allowed, a crash escalates to the root and the process exits 1;
/// the trail still ends with the escalations and the shutdown's e-stop, intact.
#[test]
fn an_escalation_is_audited_before_the_process_exits() {
    let dir = scratch("audit-escalation");
    let config = util::config_with(&dir, &[("max_restarts = 5", "max_restarts = 0")]);
    let trail = dir.join("audit.jsonl");
    let out = output(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--audit",
        trail.to_str().unwrap(),
        "--inject",
        "root/drivers/grayscale:panic@0.3",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let all = entries(&trail);
    assert_eq!(all[0]["origin"], config.to_str().unwrap());
    let escalations: Vec<_> = all
        .iter()
        .filter(|e| e["kind"] == "escalation")
        .map(|e| {
            (
                e["supervisor"].as_str().unwrap(),
                e["child"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        escalations,
        [
            ("root/drivers", "root/drivers/grayscale"),
            ("root", "root/drivers")
        ],
        "{all:#?}"
    );
    let exit = all.iter().find(|e| e["kind"] == "exit").unwrap();
    assert_eq!(exit["restart"], false, "{exit}");
    assert!(all
        .iter()
        .any(|e| e["kind"] == "estop" && e["engaged"] == true));
    let (code, stdout, stderr) = verify(&trail);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}
