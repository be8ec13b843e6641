//! The built-in simulated robot, the default backend: a deterministic 2-D world with a
//! PiCar-X in it.
//!
//! # Semantics
//!
//! - **Deterministic.** The same [`SimConfig`] (seed included) and the same sequence of
//!   (time, command, read) calls give the same readings and the same trajectory, bit for
//!   bit. The noise comes from seeded streams, one per sensor; nothing reads the OS.
//! - **Time.** The [`World`] advances in fixed steps of [`STEP`] (5 ms) and never reads a
//!   clock: [`World::advance_to`] steps it to a time since start.
//! - **Car.** A bicycle model with the PiCar-X's wheelbase, footprint and limits (see
//!   [`car`]): steering ±30° (positive turns right), forward speed from the mean of the
//!   two motors' power with a 0.1 s first-order lag, 0.5 m/s at 100 %.
//! - **Room.** Walls around `[0, width] × [0, height]`, circular and boxed obstacles, and
//!   a dark line loop on a bright floor ([`SimConfig`]).
//! - **Sensors.** The ranger at the front centre sees the nearest wall or obstacle inside
//!   its cone; the three grayscale sensors read raw ADC counts (dark on the line); the
//!   battery (2S Li-ion, 8.4 V full) drains with the motor load and sags under it.
//! - **Collisions.** When the car's footprint touches a wall or obstacle it stops there
//!   (speed 0, never inside) and one collision is counted per contact episode.
//! - **Commands** out of range (steering beyond ±30°, power beyond ±100, NaN) are
//!   rejected with [`HwError::OutOfRange`](super::HwError::OutOfRange) naming the device;
//!   nothing panics.
//! - [`World::report`] summarises the run ([`SimReport`]): collisions, distance, minimum
//!   clearance, pose, battery, the last commands and when they were given.

pub mod car;

mod battery;
mod config;
mod geometry;
mod world;

pub use config::{BatteryConfig, GrayscaleConfig, LineTrack, Obstacle, Pose, RangerConfig};
pub use config::{Room, SimConfig};
pub use world::{DriveCommand, SimReport, SteeringCommand, World, CONTACT_RELEASE_M, STEP};
