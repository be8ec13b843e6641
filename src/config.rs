//! The robot's configuration: TOML mirrored by serde structs, checked into a validated
//! whole before anything starts.

pub mod problem;

pub use problem::{Problem, Problems};
