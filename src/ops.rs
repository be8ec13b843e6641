//! Operations: how the outside world reaches a running robot — the HTTP endpoint
//! (`/metrics`, `/tree`, `/health/*`), the health rules, systemd's notify protocol and
//! the run loop's signals.

pub mod fleet;
pub mod health;
pub mod http;
pub mod observer;
pub mod signals;
pub mod systemd;
