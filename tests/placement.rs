//! Process placement on the real binary and the simulated robot: the `behaviours` group
//! in a child process of its own (`[placement] behaviours = "process"`), governed
//! through the kernel (cgroups on this machine, signals without permission).
//!
//! Waits poll the robot's `/tree` until what is awaited shows (a minute at most, as a
//! failsafe); nothing asserts a wall-clock time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{config_with, http_get, node, scratch, text, Running};

const GROUP: &str = "root/control/behaviours";
const OA: &str = "root/control/behaviours/obstacle_avoidance";
const PLACED: &str = "\n[placement]\nbehaviours = \"process\"\n";

/// The default config with the behaviours in a process, plus `extra` TOML.
fn placed_config(dir: &Path, extra: &str) -> PathBuf {
    let path = config_with(dir, &[]);
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str(PLACED);
    text.push_str(extra);
    std::fs::write(&path, text).expect("write config");
    path
}

/// A running robot and its endpoint; killed (with its groups) if the test fails.
struct Robot {
    run: Option<Running>,
    base: String,
}

impl Robot {
    fn start(config: &Path, more: &[&str]) -> Self {
        let mut args = vec!["run", "--config", config.to_str().expect("utf-8 path")];
        args.extend_from_slice(more);
        Self::from(Running::start(&args))
    }

    fn from(mut run: Running) -> Self {
        let base = run.http_base();
        Self {
            run: Some(run),
            base,
        }
    }

    fn pid(&self) -> u32 {
        self.run.as_ref().map_or(0, Running::pid)
    }

    fn tree(&self) -> Value {
        let (status, body) = http_get(&format!("{}/tree", self.base));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("tree JSON")
    }

    /// Polls the tree until `done` finds what it waits for; that.
    fn until<T>(&self, what: &str, mut done: impl FnMut(&Value) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            last = self.tree();
            if let Some(found) = done(&last) {
                return found;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("never saw {what}; last tree:\n{last:#}");
    }

    /// The group's process id, once the group runs in one with its actors shown.
    fn group_pid(&self) -> u32 {
        self.until("the behaviours running in a process", |t| {
            let g = find(t, GROUP)?;
            let oa = find(t, OA)?;
            let running = g["status"] == "running" && oa["status"] == "running";
            let pid = g["pid"].as_u64()? as u32;
            (running && g["placement"] == "process" && pid != self.pid()).then_some(pid)
        })
    }

    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        self.run.take().expect("running").finish()
    }
}

impl Drop for Robot {
    /// A robot still running (a test that failed, or one done with it) is stopped as an
    /// operator would, so that it cleans up after itself; killed if it does not stop.
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            let pid = run.pid();
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            run.finish();
        }
    }
}

/// The node at `path`, if the tree has it.
fn find<'a>(tree: &'a Value, path: &str) -> Option<&'a Value> {
    fn walk<'a>(n: &'a Value, path: &str) -> Option<&'a Value> {
        if n["path"] == path {
            return Some(n);
        }
        n["children"].as_array()?.iter().find_map(|c| walk(c, path))
    }
    walk(&tree["root"], path)
}

fn alive(pid: u32) -> bool {
    // A zombie has exited: only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Waits (a minute at most) until `pid` is gone.
fn await_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} is still there");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The group runs in a process of its own with its actors in place in the tree; a
/// `kill -9` of that process is the group's exit (`killed`) and its supervisor restarts
/// it, alone: `control` is rest_for_one and the behaviours come after motion.
#[test]
fn a_killed_group_process_is_restarted_by_its_supervisor() {
    let dir = scratch("placement-kill");
    let robot = Robot::start(&placed_config(&dir, ""), &["--duration", "120"]);
    let pid = robot.group_pid();
    let tree = robot.tree();
    let oa = node(&tree, OA);
    assert_eq!(oa["placement"], "process", "{oa}");
    assert_eq!(oa["pid"], pid, "{oa}");
    let isolation = node(&tree, GROUP)["isolation"].clone();
    assert!(
        isolation == "cgroup_v1" || isolation == "cgroup_v2",
        "as root on this machine the group gets a cgroup: {isolation}"
    );
    assert_eq!(
        node(&tree, "root/control/motion")["placement"],
        "in_process"
    );
    assert_eq!(node(&tree, "root/control/motion")["pid"], robot.pid());
    let (status, metrics) = http_get(&format!("{}/metrics", robot.base));
    assert_eq!(status, 200);
    let series = format!(
        "nevil_actor_pid{{path=\"{OA}\",placement=\"process\",isolation={isolation}}} {pid}"
    );
    assert!(metrics.contains(&series), "no {series} in\n{metrics}");

    kill("KILL", pid);
    let new_pid = robot.until("the group restarted in a new process", |t| {
        let g = find(t, GROUP)?;
        let p = g["pid"].as_u64()? as u32;
        (p != pid && g["restarts"] == 1 && find(t, OA)?["status"] == "running").then_some(p)
    });
    let tree = robot.tree();
    assert_eq!(node(&tree, GROUP)["last_exit"], "killed");
    assert_eq!(node(&tree, "root/control/motion")["restarts"], 0);
    assert_eq!(node(&tree, OA)["pid"], new_pid);
    assert!(!alive(pid), "the killed process was reaped");
    let (code, lines) = robot.finish_after_term();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
}

/// motion's crash restarts the process-placed group after it (rest_for_one): a new
/// process, the old one gone.
#[test]
fn motions_restart_restarts_the_process_placed_group() {
    let dir = scratch("placement-rfo");
    let robot = Robot::start(
        &placed_config(&dir, ""),
        &["--duration", "120", "--inject", "motion:panic@4"],
    );
    let pid = robot.group_pid();
    robot.until("motion and the behaviours restarted", |t| {
        let restarted =
            find(t, "root/control/motion")?["restarts"] == 1 && find(t, GROUP)?["restarts"] == 1;
        let p = find(t, GROUP)?["pid"].as_u64()? as u32;
        (restarted && p != pid && find(t, OA)?["status"] == "running").then_some(())
    });
    await_gone(pid);
    let tree = robot.tree();
    for path in ["root/drivers/motors", "root/safety/watchdog"] {
        assert_eq!(node(&tree, path)["restarts"], 0, "{path}");
    }
}

/// A handler that never yields (`busy`) cannot be stopped inside a process; in a
/// process-placed group its quota's CPU limit kills the process at the kernel, and the
/// supervisor restarts it.
#[test]
fn a_never_yielding_handler_is_killed_by_its_quota_and_restarted() {
    let dir = scratch("placement-busy");
    let robot = Robot::start(
        &placed_config(&dir, ""),
        &["--duration", "120", "--inject", "obstacle_avoidance:busy@3"],
    );
    let pid = robot.group_pid();
    let exit = robot.until("the busy group killed by its quota and restarted", |t| {
        let g = find(t, GROUP)?;
        let p = g["pid"].as_u64()? as u32;
        let exit = g["last_exit"].as_str()?.to_string();
        (p != pid && g["restarts"].as_u64()? >= 1 && find(t, OA)?["status"] == "running")
            .then_some(exit)
    });
    assert!(exit.starts_with("quota: cpu"), "{exit}");
    await_gone(pid);
    let tree = robot.tree();
    let history = &node(&tree, GROUP)["quota"]["history"];
    assert!(
        history
            .as_array()
            .is_some_and(|h| h.iter().any(|e| e["action"] == "restart")),
        "{history}"
    );
}

/// `busy` aimed at an actor in the robot's own process is refused before start: nothing
/// could stop it there.
#[test]
fn a_busy_drill_outside_a_process_placed_group_is_refused() {
    let out = util::output(&[
        "run",
        "--duration",
        "5",
        "--inject",
        "obstacle_avoidance:busy@1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let (_, err) = text(&out);
    assert!(err.contains("busy never yields"), "{err}");
    assert!(
        err.contains("[placement] behaviours = \"process\""),
        "{err}"
    );
}

/// A leak in the group's process reaches the quota's hard memory limit (held by the
/// kernel as well): the group restarts and its memory returns.
#[test]
fn a_leak_hits_the_memory_limit_and_the_memory_returns() {
    let dir = scratch("placement-leak");
    let limits = "\n[quotas.groups.boxed]\nmemory = { soft = 40000000, hard = 64000000 }\n\
                  hard_action = \"restart\"\n\n[quotas.actors.behaviours]\ngroup = \"boxed\"\n";
    let robot = Robot::start(
        &placed_config(&dir, limits),
        &["--duration", "120", "--inject", "obstacle_avoidance:leak@2"],
    );
    let pid = robot.group_pid();
    let exit = robot.until("the leaking group restarted", |t| {
        let g = find(t, GROUP)?;
        let p = g["pid"].as_u64()? as u32;
        (p != pid && find(t, OA)?["status"] == "running")
            .then(|| g["last_exit"].as_str().map(str::to_string))?
    });
    assert!(
        exit.starts_with("quota: memory") || exit == "oom" || exit.starts_with("oom"),
        "{exit}"
    );
    // The new process holds what a fresh group holds, far below the limit.
    let memory = robot.until("the new process's memory measured", |t| {
        find(t, GROUP)?["memory_bytes"].as_u64().filter(|m| *m > 0)
    });
    assert!(memory < 40_000_000, "memory after the restart: {memory}");
}

/// SIGTERM to the robot stops its groups' processes too; nothing is left behind.
#[test]
fn sigterm_to_the_robot_leaves_no_process_behind() {
    let dir = scratch("placement-term");
    let robot = Robot::start(&placed_config(&dir, ""), &["--duration", "120"]);
    let pid = robot.group_pid();
    kill("TERM", robot.pid());
    let (code, lines) = robot.finish();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    assert!(!alive(pid), "group process {pid} outlived the robot");
}

/// The robot dying outright (SIGKILL: no shutdown at all) takes its groups' processes
/// along: they get SIGKILL from the kernel when their parent dies.
#[test]
fn a_robot_killed_outright_takes_its_groups_along() {
    let dir = scratch("placement-orphan");
    let robot = Robot::start(&placed_config(&dir, ""), &["--duration", "120"]);
    let pid = robot.group_pid();
    let robot_pid = robot.pid();
    kill("KILL", robot_pid);
    robot.finish();
    await_gone(pid);
    // What a killed robot could not clean up: its bridge's private directory and its
    // groups' (now empty) cgroups. Under systemd the unit's cgroup goes with the unit.
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("nevil-{robot_pid}")));
    let _ = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-mindepth",
            "1",
            "-maxdepth",
            "4",
            "-type",
            "d",
        ])
        .args([
            "-name",
            &format!("nevil-{robot_pid}-*"),
            "-exec",
            "rmdir",
            "{}",
            ";",
        ])
        .status();
}

/// Without permission to make cgroups (an unprivileged user), the group still runs in a
/// process of its own, governed by signals and rlimits, and the tree says so; a killed
/// process is still restarted.
#[test]
fn without_cgroup_permission_the_group_falls_back_to_signals() {
    let dir = scratch("placement-nobody");
    let config = placed_config(&dir, "");
    let _ = Command::new("chmod")
        .args(["-R", "a+rX", dir.to_str().unwrap_or("/")])
        .status();
    let exe = env!("CARGO_BIN_EXE_nevil");
    let runner = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            exe,
            "--version",
        ])
        .output();
    match runner {
        Ok(out) if out.status.success() => {}
        other => {
            eprintln!("SKIP: cannot run nevil as an unprivileged user here: {other:?}");
            return;
        }
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", exe])
        .args([
            "--log-format",
            "json",
            "run",
            "--listen",
            "127.0.0.1:0",
            "--duration",
            "120",
        ])
        .arg("--config")
        .arg(&config)
        .current_dir(&dir)
        .env("RUST_LOG", "info");
    let robot = Robot::from(Running::spawn(cmd));
    let pid = robot.group_pid();
    let tree = robot.tree();
    assert_eq!(node(&tree, GROUP)["isolation"], "signals", "{tree:#}");
    assert_eq!(node(&tree, OA)["isolation"], "signals");
    kill("KILL", pid);
    robot.until("the group restarted without cgroups", |t| {
        let g = find(t, GROUP)?;
        (g["pid"].as_u64()? as u32 != pid && g["restarts"] == 1).then_some(())
    });
    let (_, lines) = robot.finish_after_term();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cgroup") && l.contains("signals")),
        "the fallback is logged with its reason:\n{}",
        lines.join("\n")
    );
}

impl Robot {
    fn finish_after_term(self) -> (Option<i32>, Vec<String>) {
        kill("TERM", self.pid());
        self.finish()
    }
}

/// The counters of one topic a bridge carried, from its `bridge counters` log line.
fn bridge_counters(lines: &[String], topic: &str, direction: &str) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "bridge counters")
        .map(|l| l["fields"].clone())
        .filter(|f| f["topic"] == topic && f["direction"] == direction)
        .collect()
}

/// The group's quota freezes its process (the cgroup freezer) while a flood burns its
/// CPU, then thaws it; what the robot sent meanwhile was delivered after the thaw: no gap in
/// the bridge's sequence numbers, nothing dropped on the way out.
#[test]
fn suspend_and_resume_through_the_freezer_lose_no_message() {
    let dir = scratch("placement-freeze");
    let path = config_with(
        &dir,
        // The flooded actor's own supervisor (in the group's process) must not throttle
        // it: the freezing is the robot's, through the kernel.
        &[(
            "[quotas.actors.obstacle_avoidance]\ngroup = \"lightweight\"",
            "[quotas.actors.obstacle_avoidance]\ngroup = \"free\"",
        )],
    );
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str(PLACED);
    text.push_str(
        "\n[quotas.groups.free]\nhard_action = \"restart\"\n\n\
         [quotas.groups.freezable]\ncpu = { soft = 0.2, hard = 0.4 }\n\
         hard_action = \"suspend\"\nrecovery_ms = 1000\n\n\
         [quotas.actors.behaviours]\ngroup = \"freezable\"\n",
    );
    std::fs::write(&path, text).expect("write config");
    let robot = Robot::from(Running::start(&[
        "--log-format",
        "json",
        "run",
        "--config",
        path.to_str().expect("utf-8 path"),
        "--duration",
        "120",
        "--inject",
        "obstacle_avoidance:flood@2",
    ]));
    robot.group_pid();
    robot.until("the group frozen by its quota, then thawed", |t| {
        let history = find(t, GROUP)?["quota"]["history"].as_array()?.clone();
        let actions: Vec<_> = history.iter().map(|e| e["action"].as_str()).collect();
        let frozen = actions.iter().position(|a| *a == Some("suspend"))?;
        actions[frozen..].contains(&Some("recover")).then_some(())
    });
    let (code, lines) = robot.finish_after_term();
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    for topic in ["range", "line"] {
        let sent = bridge_counters(&lines, topic, "export");
        let got = bridge_counters(&lines, topic, "import");
        assert_eq!((sent.len(), got.len()), (1, 1), "{topic}: {sent:?} {got:?}");
        assert_eq!(sent[0]["dropped"], 0, "{topic}: {sent:?}");
        assert_eq!(got[0]["lost"], 0, "{topic}: {got:?}");
        assert!(got[0]["messages"].as_u64() > Some(0), "{topic}: {got:?}");
    }
}
