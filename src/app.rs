//! The robot's actor tree, built from a [`Config`](crate::config::Config), and its
//! life: start, fault drills, tree dumps, and a shutdown that stops the motors first.
//!
//! ```text
//! root (one_for_one)
//! ├── management (one_for_one): tree_service, system_monitor, error_analytics,
//! │                              recorder (when recording)
//! ├── drivers    (one_for_one): ultrasonic, grayscale, battery, motors, steering
//! ├── control    (rest_for_one): motion → behaviours
//! │   └── behaviours (one_for_one): obstacle_avoidance, line_follower
//! └── safety     (one_for_one): watchdog
//! ```
//!
//! `control` is `rest_for_one` because the behaviours command the motion controller: when
//! it restarts, the `behaviours` group restarts after it. `line_follower` runs only in
//! `line_following` mode (obstacle avoidance then guards it). `behaviours`, the one
//! group without a safety-critical actor, may run in a child process of its own
//! (`[placement] behaviours = "process"`, [`placement`]). Every supervisor's intensity comes from
//! `[supervision]`; the root giving up ends [`Robot::wait`] with the escalation. The
//! whole tree shares one quota [`Pressure`](nevil_actors::Pressure), which the system
//! monitor raises while the host's CPU or memory is critical.
//!
//! `layout` says which worker runs where, `lifecycle` starts and stops the
//! [`Robot`], `report` is what a run did, [`inject`] parses `--inject` and `drills`
//! resolves and fires it, [`reload`] reloads the config on SIGHUP (with probation
//! and rollback), and [`soak`] runs random drills for minutes with the invariants
//! checked (`nevil soak`).

mod drills;
pub mod inject;
mod layout;
mod lifecycle;
pub mod placement;
pub mod reload;
mod report;
pub mod soak;

pub use drills::{check_drills, DrillTargetError, FiredDrill};
pub use lifecycle::{AppError, Devices, ExtraWorkers, Robot, RunOptions};
pub use report::RunReport;
