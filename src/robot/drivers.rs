//! Device drivers: sensor samplers that publish readings at their configured rate, and
//! the actuator drivers that apply the motion controller's outputs.
//!
//! Every actuator driver starts (and so restarts) from a safe output — motors at 0,
//! steering centred — and returns to it in `post_stop`, which runs on a graceful stop
//! and after a crash alike.

pub mod motors;
pub mod sensor;
pub mod steering;
