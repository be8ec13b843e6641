//! Fault drills (`run --inject`): each target resolved against the layout before the
//! tree starts, then fired at its time into the incarnation alive then.

use std::sync::Arc;
use std::time::Duration;

use nevil_actors::{ActorPath, TreeView};
use ractor::Message;
use serde::Serialize;

use super::layout::Group;
use crate::config::{Backend, Config};
use crate::core::clock::Clock;
use crate::drill::{DrillMsg, Fault, Injection};
use crate::hw::sim::{Sim, SimSensor};

/// Sends drill messages to one incarnation of a worker; `false` once it is gone.
pub(super) type DrillSender = Box<dyn Fn(DrillMsg) -> bool + Send>;
/// Finds the live incarnation at a path, for a worker of a known message type.
pub(super) type DrillSend = fn(&TreeView, &str) -> Option<DrillSender>;

pub(super) fn send_drill<M: From<DrillMsg> + Message>(
    view: &TreeView,
    path: &str,
) -> Option<DrillSender> {
    let mailbox = view.mailbox::<M>(path)?;
    Some(Box::new(move |d| mailbox.cast(M::from(d)).is_ok()))
}

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

/// Finds the worker a drill names (by path or name) in `groups`.
pub(super) fn resolve(
    groups: &[Group],
    target: &str,
) -> Result<(String, DrillSend), DrillTargetError> {
    let err = |reason: String| DrillTargetError {
        target: target.to_string(),
        reason,
    };
    let root = ActorPath::root("root");
    let mut workers = Vec::new();
    for g in groups {
        for supervisor in [&root, &g.path()] {
            if supervisor.matches(target) {
                return Err(err(format!(
                    "{supervisor} is a supervisor; faults are injected into workers"
                )));
            }
        }
        for w in &g.workers {
            let path = g.worker_path(w);
            if path.matches(target) {
                return Ok((path.to_string(), w.drill));
            }
            workers.push(path.to_string());
        }
    }
    Err(err(format!(
        "no such actor (workers: {})",
        workers.join(", ")
    )))
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

/// Runs one drill: at its time, the fault goes to the incarnation then alive; a leak or
/// flood continues until that incarnation is gone.
pub(super) fn schedule(
    view: nevil_actors::TreeView,
    injection: Injection,
    path: String,
    send: DrillSend,
    fired: FiredDrills,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(injection.at).await;
        let Some(send) = send(&view, &path) else {
            tracing::warn!(%path, fault = %injection.fault, "drill target not running; drill skipped");
            return;
        };
        tracing::warn!(%path, fault = %injection.fault, "injecting fault");
        fired.push(&injection, &path);
        match injection.fault {
            Fault::Leak => {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                while send(DrillMsg::LeakTick) {
                    tick.tick().await;
                }
            }
            Fault::Flood => {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                'flood: loop {
                    for _ in 0..500 {
                        if !send(DrillMsg::FloodItem) {
                            break 'flood;
                        }
                    }
                    tick.tick().await;
                }
            }
            fault => {
                send(DrillMsg::Fault(fault));
            }
        }
    })
}
