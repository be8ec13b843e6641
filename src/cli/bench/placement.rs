//! Process placement figures: the simulated robot with its behaviours in a process of
//! their own, as `nevil run` runs it (this binary is the group's process too).
//!
//! - restart: the group's process is killed at the kernel (its jail's SIGKILL), and the
//!   clock runs until the replacement process has started its tree, reached the bridge
//!   and said so (the worker running again with a new pid);
//! - busy kill: a never-yielding handler is injected into the group's process, and the
//!   clock runs until its quota killed the process (the group restarting with a quota
//!   exit): the sampling that sees the breach plus the kill.

use std::time::{Duration, Instant};

use nevil_actors::{Fault, TreeView};

use super::{percentile, us, BenchError};
use crate::app::{Devices, Robot, RunOptions};
use crate::config::{Config, Placement};
use crate::core::clock::Clock;

const GROUP: &str = "root/control/behaviours";
const OA: &str = "root/control/behaviours/obstacle_avoidance";

/// The longest any one wait may take before the bench fails.
const FAILSAFE: Duration = Duration::from_secs(30);

/// The placement figures of `nevil bench --json`.
#[derive(Debug, Clone, Copy)]
pub struct PlacementFigures {
    /// Kill → the new process answers, median, µs.
    pub restart_p50_us: f64,
    /// The same, 99th percentile, µs.
    pub restart_p99_us: f64,
    /// Busy handler injected → its process killed by the quota, median, ms.
    pub busy_kill_ms: f64,
    /// The same, worst, ms.
    pub busy_kill_max_ms: f64,
}

/// The group's process id and restart count now, if it runs.
fn group(view: &TreeView) -> Option<(u32, u64, Option<String>)> {
    let snap = view.snapshot();
    let g = snap.root.find(GROUP)?;
    let oa = g.children.iter().find(|c| c.path.as_str() == OA)?;
    let running = g.status.as_str() == "running" && oa.status.as_str() == "running";
    running.then(|| {
        (
            g.pid,
            g.restarts,
            g.last_exit.as_ref().map(ToString::to_string),
        )
    })
}

/// Waits until the group runs in a process other than `old` (0: any) after more than
/// `restarts` restarts (`None`: any number); its pid, restarts and last exit.
async fn until_running(
    view: &TreeView,
    old: u32,
    restarts: Option<u64>,
) -> Result<(u32, u64, Option<String>), BenchError> {
    let deadline = Instant::now() + FAILSAFE;
    loop {
        if let Some((pid, n, exit)) = group(view) {
            if pid != old && pid != 0 && restarts.is_none_or(|r| n > r) {
                return Ok((pid, n, exit));
            }
        }
        if Instant::now() > deadline {
            return Err(super::fail("the process-placed group did not (re)start"));
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// Runs the robot with its behaviours in a process and measures `restarts` kills and
/// `busy` never-yielding handlers.
///
/// # Errors
///
/// The robot did not start, or the group did not come back within the failsafe.
pub async fn run(restarts: usize, busy: usize) -> Result<PlacementFigures, BenchError> {
    let mut config = Config::load(None).map_err(super::fail)?;
    config
        .placement
        .0
        .insert("behaviours".into(), Placement::Process);
    // Kills in a row: more restarts than the default intensity allows.
    config.supervision.max_restarts = 1000;
    let clock = Clock::start();
    let devices = Devices::open(&config, clock).map_err(super::fail)?;
    let robot = Robot::start(&config, devices, clock, &RunOptions::default())
        .await
        .map_err(super::fail)?;
    let view = robot.tree().view();
    let figures = measure(&view, restarts, busy).await;
    robot.shutdown().await;
    figures
}

async fn measure(
    view: &TreeView,
    restarts: usize,
    busy: usize,
) -> Result<PlacementFigures, BenchError> {
    // The first process, started with the robot.
    let (mut pid, mut n, _) = until_running(view, 0, None).await?;
    let mut kills = Vec::with_capacity(restarts);
    for _ in 0..restarts {
        let external = view
            .counters(GROUP)
            .and_then(|c| c.external())
            .ok_or_else(|| super::fail("the group's worker stands for no process"))?;
        let t0 = Instant::now();
        external.kill();
        (pid, n, _) = until_running(view, pid, Some(n)).await?;
        kills.push(t0.elapsed());
    }
    let mut busy_kills = Vec::with_capacity(busy);
    for _ in 0..busy {
        let t0 = Instant::now();
        view.inject(OA, Fault::Busy).await.map_err(super::fail)?;
        let deadline = t0 + FAILSAFE;
        while alive(pid) {
            if Instant::now() > deadline {
                return Err(super::fail("the busy process was never killed"));
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        busy_kills.push(t0.elapsed());
        let exit;
        (pid, n, exit) = until_running(view, pid, Some(n)).await?;
        if !exit.is_some_and(|e| e.starts_with("quota")) {
            return Err(super::fail(
                "the busy group ended otherwise than by its quota",
            ));
        }
    }
    Ok(PlacementFigures {
        restart_p50_us: us(percentile(&mut kills, 0.5)),
        restart_p99_us: us(percentile(&mut kills, 0.99)),
        busy_kill_ms: us(percentile(&mut busy_kills, 0.5)) / 1000.0,
        busy_kill_max_ms: us(percentile(&mut busy_kills, 1.0)) / 1000.0,
    })
}

/// Whether `pid` runs (a zombie, dead and not yet reaped, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}
