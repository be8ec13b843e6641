//! nevil: the onboard runtime of a small robot, built on the supervision trees of
//! [`nevil_actors`]. This library exposes the application's modules to `tests/` and
//! `benches/`.

pub mod bench;
pub mod config;
pub mod hw;
pub mod hw_check;
