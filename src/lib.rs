//! nevil: the onboard runtime of a small robot, built on the supervision trees of
//! [`nevil_actors`]. This library exposes the application's modules to `tests/` and
//! `benches/`.

pub mod analytics;
pub mod app;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod config;
pub mod drill;
pub mod drivers;
pub mod health;
pub mod http;
pub mod hw;
pub mod hw_check;
pub mod hw_stop;
pub mod jitter;
pub mod nodes;
pub mod recording;
pub mod replay;
pub mod safety;
pub mod services;
pub mod signals;
pub mod systemd;
pub mod telemetry;
pub mod ticker;
pub mod tree_text;
