//! Fault drills (`run --inject`): each target resolved against the layout before the
//! tree starts, then fired at its time into the incarnation alive then.

use std::sync::Arc;

use nevil_actors::{ActorPath, TreeView};
use serde::Serialize;

use super::inject::{Fault, Injection};
use super::layout::Group;
use super::placement::group_path;
use crate::config::{Backend, Config};
use crate::core::clock::Clock;
use crate::hw::sim::{Sim, SimSensor};

/// A drill that is not possible on this tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--inject {target:?}: {reason}")]
pub struct DrillTargetError {
    /// The target as given.
    pub target: String,
    /// Why it cannot be used.
    pub reason: String,
}

/// The sensor an `unplug` drill on `target` (a driver's name or path) disconnects.
fn unplug_target(target: &str) -> Option<SimSensor> {
    let drivers = ActorPath::root("root").child("drivers");
    SimSensor::ALL
        .into_iter()
        .find(|s| drivers.child(s.name()).matches(target))
}

/// Checks what [`Robot::start`](super::Robot::start) cannot tell from the tree alone: an `unplug` drill must
/// name a sensor driver and the config must simulate the robot. Cheap, and needs no
/// device: call it before opening the hardware.
///
/// # Errors
///
/// [`DrillTargetError`] for the first `unplug` the run cannot carry out.
pub fn check_drills(config: &Config, inject: &[Injection]) -> Result<(), DrillTargetError> {
    for i in inject.iter().filter(|i| i.fault == Fault::Unplug) {
        let err = |reason: String| DrillTargetError {
            target: i.target.clone(),
            reason,
        };
        if unplug_target(&i.target).is_none() {
            return Err(err(
                "unplug applies to the sensor drivers only (ultrasonic, grayscale, battery)".into(),
            ));
        }
        if config.robot.backend != Backend::Sim {
            return Err(err(format!(
                "unplug needs the simulated robot (backend \"sim\"); this config's backend is \"{}\"",
                format!("{:?}", config.robot.backend).to_lowercase()
            )));
        }
    }
    Ok(())
}

/// Finds the worker a drill names (by path or name) in the tree `groups` make.
pub(super) fn resolve(groups: &[Group], target: &str) -> Result<String, DrillTargetError> {
    let shape: Vec<_> = groups.iter().map(Group::shape).collect();
    nevil_actors::fault::resolve("root", &shape, target)
        .map(|path| path.to_string())
        .map_err(|e| DrillTargetError {
            target: target.to_string(),
            reason: e.to_string(),
        })
}

/// Refuses a `busy` drill aimed outside a process-placed group: its handler never
/// yields, so nothing in this process could stop it (it would hold a thread of the
/// robot's for good). In a group's own process, the kernel stops it.
pub(super) fn check_busy(
    config: &Config,
    injection: &Injection,
    path: &str,
) -> Result<(), DrillTargetError> {
    if injection.fault != Fault::Actor(nevil_actors::Fault::Busy) {
        return Ok(());
    }
    let placed = config
        .placement
        .process_groups()
        .any(|g| path.starts_with(&format!("{}/", group_path(g))));
    if placed {
        return Ok(());
    }
    Err(DrillTargetError {
        target: injection.target.clone(),
        reason: format!(
            "busy never yields, so nothing in the robot's process could stop {path}: only a \
             worker of a group placed in a process of its own may take it \
             (e.g. [placement] behaviours = \"process\")"
        ),
    })
}

/// Runs an `unplug` drill: at its time, the simulated sensor of the driver at `path`
/// stops answering (for good: restarts do not replug it).
pub(super) fn unplug_later(
    sim: Option<Sim>,
    injection: Injection,
    path: String,
    fired: FiredDrills,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(injection.at).await;
        match (sim, unplug_target(&path)) {
            (Some(sim), Some(sensor)) => {
                tracing::warn!(%path, %sensor, "injecting fault: unplugging the simulated sensor");
                sim.unplug(sensor);
                fired.push(&injection, &path);
            }
            // `check_drills` refused these before start, unless the devices do not
            // match the config.
            _ => tracing::warn!(%path, "no simulated sensor to unplug; drill skipped"),
        }
    })
}

/// A drill that fired: when it was due and when it was sent, for the run report (the
/// safety matrix measures stop times from `fired_s`).
#[derive(Debug, Clone, Serialize)]
pub struct FiredDrill {
    /// The target's path.
    pub path: String,
    /// The fault's name.
    pub fault: &'static str,
    /// Seconds after start it was due (`@SECS`).
    pub due_s: f64,
    /// Seconds since start when it was sent (or the sensor unplugged).
    pub fired_s: f64,
}

/// The drills that fired so far, shared with their tasks.
#[derive(Debug, Clone)]
pub(super) struct FiredDrills {
    clock: Clock,
    fired: Arc<std::sync::Mutex<Vec<FiredDrill>>>,
}

impl FiredDrills {
    pub(super) fn new(clock: Clock) -> Self {
        Self {
            clock,
            fired: Arc::default(),
        }
    }

    pub(super) fn push(&self, injection: &Injection, path: &str) {
        let drill = FiredDrill {
            path: path.to_string(),
            fault: injection.fault.name(),
            due_s: injection.at.as_secs_f64(),
            fired_s: self.clock.elapsed().as_secs_f64(),
        };
        self.fired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(drill);
    }

    pub(super) fn list(&self) -> Vec<FiredDrill> {
        self.fired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Runs one drill: at its time, the fault goes to the incarnation then alive, through
/// the tree ([`TreeView::inject`]); a leak or flood continues until that incarnation is
/// gone.
pub(super) fn schedule(
    view: TreeView,
    injection: Injection,
    fault: nevil_actors::Fault,
    path: String,
    fired: FiredDrills,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(injection.at).await;
        let skipped = || {
            tracing::warn!(%path, %fault, "drill target not running; drill skipped");
        };
        // Read from the snapshot, which shows the actors of a process-placed group too.
        let running = view
            .snapshot()
            .root
            .find(&path)
            .is_some_and(|n| n.status == nevil_actors::Status::Running);
        if !running {
            return skipped();
        }
        tracing::warn!(%path, %fault, "injecting fault");
        fired.push(&injection, &path);
        match view.inject(&path, fault).await {
            Ok(_) => {}
            Err(nevil_actors::InjectError::NotRunning { .. }) => skipped(),
            Err(e) => tracing::warn!(%path, %fault, error = %e, "drill refused"),
        }
    })
}
