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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::sim::{ManualClock, Sim, SimConfig};

    /// What the panic hook and the drop guard do: zero the armed motors, even when a
    /// thread died holding their lock (poisoned), but never wait on a lock that is held.
    /// (The only test that arms the process-wide registration.)
    #[test]
    fn stops_the_armed_motors_and_never_waits_on_a_held_lock() {
        let sim = Sim::new(&SimConfig::default(), ManualClock::new());
        let drive = sim.hardware().drive;
        drive.lock().set_power(40.0, 40.0).unwrap();
        let guard = MotorGuard::new(drive.clone());
        {
            let _held = drive.lock();
            assert!(!stop_motors(), "a held lock is skipped, not waited for");
        }
        assert_eq!(sim.report().last_drive.unwrap().left, 40.0);
        let poisoner = drive.clone();
        let _ = std::thread::spawn(move || {
            let _held = poisoner.lock();
            panic!("dies holding the motors' lock");
        })
        .join();
        assert!(stop_motors(), "a poisoned lock is usable");
        assert_eq!(sim.report().last_drive.unwrap().left, 0.0);
        drive.lock().set_power(25.0, 25.0).unwrap();
        drop(guard);
        assert_eq!(
            sim.report().last_drive.unwrap().left,
            0.0,
            "the guard's drop"
        );
    }
}
