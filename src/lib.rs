//! nevil: the onboard runtime of a small robot, built on the supervision trees of
//! [`nevil_actors`]. This library exposes the application's modules to `tests/` and
//! `benches/`.
//!
//! The modules are layers, listed bottom to top; each uses only its own layer and those
//! below it (`tests/layers.rs` checks every `crate::` path):
//!
//! | layer        | what lives there                                                      |
//! |--------------|-----------------------------------------------------------------------|
//! | [`core`]     | leaf types: the clock, host levels, metric names, the ticker, jitter  |
//! | [`hw`]       | the devices: traits, and the `sim` and `picarx` backends with their settings |
//! | [`config`]   | the TOML file, assembled from the backends' and services' settings    |
//! | [`bus`]      | the robot's topics and their delivery                                 |
//! | [`robot`]    | the robot's actors: drivers, nodes (behaviours), safety               |
//! | [`services`] | management: telemetry, monitor, analytics, recorder, tree             |
//! | [`ops`]      | how the outside reaches a running robot: http, health, systemd, signals |
//! | [`app`]      | the tree built from a config, its life, the run report, `--inject` drills |
//! | [`cli`]      | one module per subcommand                                             |

#![deny(unsafe_code)] // allowed by name where needed: process figures, the heap bench
                      // Bottom to top; the order is the layer order (blank lines keep rustfmt from sorting).
pub mod core;

pub mod hw;

pub mod config;

pub mod bus;

pub mod robot;

pub mod services;

pub mod ops;

pub mod app;

pub mod cli;
