//! The flight recorder under faults, driving the real binary: a full disk turns
//! recording off and the robot runs on; a kill -9 (or a power cut) mid-write leaves a
//! recording that replays up to its last complete record; restarts within a run
//! continue the file, a new run rotates it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use util::{http_get, node, output, scratch, text, Running};

/// A tmpfs of `size` mounted at `dir` for the test's lifetime (we run as root in CI);
/// `None`, with the reason printed, where mounting is not permitted.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self(dir.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a {size} tmpfs at {} (needs root): {}",
                    dir.display(),
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The default config, but the recorder's CPU quota never acts: on a loaded test
/// machine a descheduled handler poll can look like a CPU hog, and a quota restart
/// would blur what these tests count.
fn config(dir: &Path) -> PathBuf {
    util::config_with(
        dir,
        &[(
            "\n[recorder]\n",
            "\n[quotas.actors.recorder]\ngroup = \"standard\"\ncpu = { soft = 1.0, burst = 1.0, hard = 1.0 }\n\n[recorder]\n",
        )],
    )
}

/// The value of the unlabelled sample `name` in a Prometheus text body.
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn a_full_disk_turns_recording_off_once_and_the_robot_runs_on() {
    let dir = scratch("rec-full");
    // One page: the recording fills it within a couple of seconds.
    let Some(_fs) = Tmpfs::mount(&dir.join("small"), "4k") else {
        return;
    };
    let rec = dir.join("small/run.rec");
    let config = config(&dir);
    let mut robot = Running::start(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--record",
        rec.to_str().unwrap(),
    ]);
    let base = robot.http_base();
    robot.wait_for("recording is off for the rest of this run");

    let (status, metrics) = http_get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    assert_eq!(
        sample(&metrics, "nevil_recorder_write_errors_total"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "nevil_recorder_recording"), Some(0.0));
    // The recorder is still there, running, never restarted; the robot goes on.
    let (_, tree) = http_get(&format!("{base}/tree"));
    let tree: serde_json::Value = serde_json::from_str(&tree).unwrap();
    let recorder = node(&tree, "root/management/recorder");
    assert_eq!(recorder["status"], "running", "{recorder}");
    assert_eq!(recorder["restarts"], 0, "{recorder}");
    assert_eq!(node(&tree, "root/drivers/motors")["status"], "running");
    let handled = |tree: &serde_json::Value| {
        node(tree, "root/control/motion")["messages_handled"]
            .as_u64()
            .unwrap()
    };
    let before = handled(&tree);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, now) = http_get(&format!("{base}/tree"));
        if handled(&serde_json::from_str(&now).unwrap()) > before {
            break;
        }
        assert!(Instant::now() < deadline, "the control loop stopped");
        std::thread::sleep(Duration::from_millis(20));
    }

    robot.signal("TERM");
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    let errors = lines
        .iter()
        .filter(|l| l.contains("flight recorder:"))
        .count();
    assert_eq!(errors, 1, "{}", lines.join("\n"));

    // What fitted on the disk replays (a torn last record is reported, not an error).
    let out = output(&["replay", rec.to_str().unwrap(), "--json"]);
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(2), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["records"].as_u64().unwrap() > 0, "{report}");
}

/// Waits (a minute at most, as a failsafe) until `path` holds more than `bytes`.
fn wait_for_size(path: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(path).map_or(0, |m| m.len()) <= bytes {
        assert!(Instant::now() < deadline, "{} never grew", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn replay_json(rec: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out = output(&["replay", rec.to_str().unwrap(), "--json"]);
    let (stdout, stderr) = text(&out);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"));
    (out.status.code(), report, stderr)
}

#[test]
fn kill_9_mid_write_then_replay_what_is_there() {
    let dir = scratch("rec-kill");
    let rec = dir.join("run.rec");
    let mut robot = Running::start(&["run", "--record", rec.to_str().unwrap()]);
    robot.wait_for("recording bus messages");
    wait_for_size(&rec, 4096);
    robot.signal("KILL");
    let (code, _) = robot.finish();
    assert_eq!(code, None, "killed by a signal");

    let (code, report, stderr) = replay_json(&rec);
    assert!(matches!(code, Some(0 | 1)), "{report}{stderr}");
    let records = report["records"].as_u64().unwrap();
    let drives = report["drives_checked"].as_u64().unwrap();
    assert!(records > 50 && drives > 10, "{report}");
    // A prefix of the run: the controller's outputs replay (the last few may have
    // been cut off from inputs that were still in a buffer).
    let matched = report["drives_matched"].as_u64().unwrap();
    assert!(matched + 3 >= drives, "{report}");

    // A power cut inside the last record: the records before it, and a warning.
    let len = std::fs::metadata(&rec).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&rec).unwrap();
    f.set_len(len - 3).unwrap();
    let (code, cut, stderr) = replay_json(&rec);
    assert!(matches!(code, Some(0 | 1)), "{cut}{stderr}");
    assert_eq!(cut["records"].as_u64().unwrap(), records - 1, "{cut}");
    assert!(
        stderr.contains("warning") && stderr.contains("last record is incomplete"),
        "{stderr}"
    );
}

#[test]
fn restarts_continue_the_file_and_a_new_run_rotates() {
    let dir = scratch("rec-restart");
    let rec = dir.join("run.rec");
    let tree = dir.join("tree.json");
    let config = config(&dir);
    let run = || {
        output(&[
            "run",
            "--config",
            config.to_str().unwrap(),
            "--duration",
            "3",
            "--record",
            rec.to_str().unwrap(),
            "--tree-dump",
            tree.to_str().unwrap(),
            "--inject",
            "recorder:panic@1",
            "--inject",
            "recorder:exit@2",
        ])
    };
    let out = run();
    assert!(out.status.success(), "{}", text(&out).1);
    let recorder = node(&util::json(&tree), "root/management/recorder").clone();
    assert_eq!(recorder["restarts"], 2, "{recorder}");
    // A crash and a graceful exit, the run's writer carrying on through both: still
    // one file, readable to its end.
    let rotated = |n: u32| dir.join(format!("run.rec.{n}"));
    assert!(!rotated(1).exists());
    let (code, first, stderr) = replay_json(&rec);
    assert!(matches!(code, Some(0 | 1)), "{first}{stderr}");
    assert!(!stderr.contains("incomplete"), "{stderr}");
    let t_first = first["records"].as_u64().unwrap();

    let out = run();
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(!rotated(2).exists());
    let (_, moved, _) = replay_json(&rotated(1));
    assert_eq!(moved["records"].as_u64().unwrap(), t_first);
}

/// Every size the recorder uses on disk is bounded by the config check, by key path.
#[test]
fn recorder_sizes_are_bounded_by_check_config() {
    let dir = scratch("rec-bounds");
    for (edit, key, why) in [
        (
            ("max_file_bytes = 8388608", "max_file_bytes = 1073741825"),
            "recorder.max_file_bytes",
            "must be between 4096 and 1073741824",
        ),
        (
            ("max_file_bytes = 8388608", "max_file_bytes = 100"),
            "recorder.max_file_bytes",
            "must be between 4096 and 1073741824",
        ),
        (
            ("keep_files = 3", "keep_files = 101"),
            "recorder.keep_files",
            "must be between 0 and 100",
        ),
    ] {
        let config = util::config_with(&dir, &[edit]);
        let out = output(&["check-config", config.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{edit:?}: {stdout}{stderr}");
        assert!(
            format!("{stdout}{stderr}").contains(&format!("{key}: {why}")),
            "{edit:?}: {stdout}{stderr}"
        );
    }
}
