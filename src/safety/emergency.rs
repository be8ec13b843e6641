//! Stopping the motors when the process itself is going down: from the panic hook, and
//! from a drop guard in `main` that runs however `run` is left (return or unwind).
//!
//! Best effort and allocation-free: the device is registered once ([`arm`]), and
//! [`stop_motors`] only tries its lock (a thread that panicked while holding it must not
//! deadlock the hook). What neither can cover — SIGKILL, an OOM kill, an abort — is
//! covered by `nevil hw-stop`, run by the systemd unit's `ExecStopPost=`.

use std::sync::OnceLock;

use crate::hw::{self, Shared};

static DRIVE: OnceLock<Shared<dyn hw::Drive>> = OnceLock::new();

/// Registers the motors to stop in an emergency (the first registration wins).
pub fn arm(drive: Shared<dyn hw::Drive>) {
    let _ = DRIVE.set(drive);
}

/// Zeroes the registered motors if their lock is free within a few tries; whether it
/// did. Never blocks for long, never panics, allocates nothing of its own.
pub fn stop_motors() -> bool {
    let Some(drive) = DRIVE.get() else {
        return false;
    };
    for _ in 0..1000 {
        if let Some(mut device) = drive.try_lock() {
            return device.set_power(0.0, 0.0).is_ok();
        }
        std::thread::yield_now();
    }
    false
}

/// Stops the registered motors when dropped: held by `main` for the whole run.
#[derive(Debug)]
pub struct MotorGuard(());

impl MotorGuard {
    /// Arms `drive` and returns the guard.
    pub fn new(drive: Shared<dyn hw::Drive>) -> Self {
        arm(drive);
        Self(())
    }
}

impl Drop for MotorGuard {
    fn drop(&mut self) {
        stop_motors();
    }
}
