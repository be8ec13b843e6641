//! The robot's own actors: the drivers (sensors in, actuators out), the nodes (the
//! behaviours and the motion controller) and safety (the watchdog, the dead-man and the
//! latched emergency stop). A new sensor goes in [`drivers`].

pub mod drivers;
pub mod nodes;
pub mod safety;
