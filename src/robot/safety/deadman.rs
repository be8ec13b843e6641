//! The dead-man at the actuator: the motors stop by themselves when nobody is steering.
//!
//! The motors driver tells the [`DeadMan`] each time it applies a command, and the safety
//! watchdog beats its heart at every check. A checker of its own — an OS thread in real
//! runs, which sleeps until the earliest deadline ([`DeadMan::next_look`]: about ten
//! wake-ups a second while the car drives), or a tokio task looking every
//! [`CHECK_PERIOD`] under tests' paused clock ([`Timer`]) — zeroes the motors **at the
//! device** when they are powered and
//! - no command was applied within the command deadline (the motors driver or the
//!   controller upstream is dead, wedged or restarting), or
//! - the steering driver handled no command within the same deadline (the car could not
//!   steer round what is ahead), or
//! - the watchdog's heartbeat is older than the heartbeat deadline (the safety monitor is
//!   dead or wedged: nobody would notice a hazard), or
//! - the e-stop [latch](super::latch) is engaged (a last line behind the driver's own
//!   check).
//!
//! It needs no actor to be alive or responsive, so stopping never waits for a restart or
//! a shutdown timeout. The motors driver also refuses to power the motors while the
//! heartbeat or the steering is stale ([`DeadMan::permits`]), so they stay at zero while
//! the hazard holds. And every safety-critical actor that stops — crashed, exited, or
//! shut down — zeroes them from its `post_stop` ([`DeadMan::halt`]): the controller's
//! next command after the restart drives them again.

use std::sync::OnceLock;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::latch::EStopLatch;
use crate::core::clock::Clock;
use crate::core::ticker::Timer;
use crate::hw::{self, Shared};

/// How often the tokio checker looks; the thread's longest sleep is [`MAX_SLEEP`].
pub const CHECK_PERIOD: Duration = Duration::from_millis(10);

/// The thread checker's longest sleep: how late it may notice an engaged latch (the
/// motors driver stops the motors for the latch itself; this is the backstop).
pub const MAX_SLEEP: Duration = Duration::from_millis(50);

/// The thread checker's shortest sleep.
const MIN_SLEEP: Duration = Duration::from_millis(1);

/// The shortest deadline: below it, a busy machine's scheduling delays would trip it.
pub const MIN_DEADLINE: Duration = Duration::from_millis(100);

/// The dead-man's inputs, shared by the motors driver, the watchdog and the checker.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct DeadMan(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    clock: Clock,
    command_deadline: Duration,
    heartbeat_deadline: Duration,
    /// Nanoseconds since start of the last command applied.
    commanded_ns: AtomicU64,
    /// Nanoseconds since start of the watchdog's last heartbeat.
    heartbeat_ns: AtomicU64,
    /// Nanoseconds since start of the steering driver's last command.
    steered_ns: AtomicU64,
    /// The motors, once the checker runs.
    drive: OnceLock<Shared<dyn hw::Drive>>,
    /// Whether the last power applied was not zero.
    powered: AtomicBool,
    trips: AtomicU64,
    stopped: AtomicBool,
}

/// Why the dead-man zeroed the motors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// No command was applied within the command deadline.
    NoCommand,
    /// No heartbeat from the safety watchdog within its deadline.
    NoHeartbeat,
    /// The steering driver handled no command within the command deadline.
    NoSteering,
    /// The e-stop is engaged.
    EStop,
}

impl Trip {
    /// What it means, for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCommand => "no motor command within the deadline",
            Self::NoHeartbeat => "no safety heartbeat within the deadline",
            Self::NoSteering => "no steering command handled within the deadline",
            Self::EStop => "e-stop engaged",
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl DeadMan {
    /// A dead-man on `clock` whose deadlines count from now.
    pub fn new(clock: Clock, command_deadline: Duration, heartbeat_deadline: Duration) -> Self {
        let now = nanos(clock.elapsed());
        Self(Arc::new(Inner {
            clock,
            command_deadline,
            heartbeat_deadline,
            commanded_ns: AtomicU64::new(now),
            heartbeat_ns: AtomicU64::new(now),
            steered_ns: AtomicU64::new(now),
            drive: OnceLock::new(),
            powered: AtomicBool::new(false),
            trips: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        }))
    }

    /// The deadlines for a control loop of `loop_period` and a watchdog checking every
    /// `check_period`: three periods of each, and never less than [`MIN_DEADLINE`].
    pub fn deadlines(loop_period: Duration, check_period: Duration) -> (Duration, Duration) {
        (
            (loop_period * 3).max(MIN_DEADLINE),
            (check_period * 3).max(MIN_DEADLINE),
        )
    }

    fn now(&self) -> u64 {
        nanos(self.0.clock.elapsed())
    }

    /// The watchdog is alive and checking.
    pub fn heartbeat(&self) {
        self.0.heartbeat_ns.store(self.now(), Ordering::Release);
    }

    /// The steering driver handled a command.
    pub fn steered(&self) {
        self.0.steered_ns.store(self.now(), Ordering::Release);
    }

    /// Whether the motors may be powered: the watchdog's heartbeat and the steering
    /// driver's last command are within their deadlines.
    pub fn permits(&self) -> bool {
        let now = self.now();
        let age = |at: &AtomicU64| now.saturating_sub(at.load(Ordering::Acquire));
        age(&self.0.heartbeat_ns) <= nanos(self.0.heartbeat_deadline)
            && age(&self.0.steered_ns) <= nanos(self.0.command_deadline)
    }

    /// The motors driver applied a command; `powered` if either motor is not at zero.
    pub fn commanded(&self, powered: bool) {
        self.0.commanded_ns.store(self.now(), Ordering::Release);
        self.0.powered.store(powered, Ordering::Release);
    }

    /// Times the dead-man has zeroed the motors.
    pub fn trips(&self) -> u64 {
        self.0.trips.load(Ordering::Relaxed)
    }

    /// Why the motors must be zeroed now, if they are powered and must be.
    pub fn verdict(&self, latch: &EStopLatch) -> Option<Trip> {
        if !self.0.powered.load(Ordering::Acquire) {
            return None;
        }
        let now = self.now();
        let age = |at: &AtomicU64| now.saturating_sub(at.load(Ordering::Acquire));
        if latch.engaged() {
            Some(Trip::EStop)
        } else if age(&self.0.heartbeat_ns) > nanos(self.0.heartbeat_deadline) {
            Some(Trip::NoHeartbeat)
        } else if age(&self.0.commanded_ns) > nanos(self.0.command_deadline) {
            Some(Trip::NoCommand)
        } else if age(&self.0.steered_ns) > nanos(self.0.command_deadline) {
            Some(Trip::NoSteering)
        } else {
            None
        }
    }

    /// How long the thread checker may sleep now: until the earliest deadline of a
    /// powered car (just past it), at most [`MAX_SLEEP`].
    pub fn next_look(&self) -> Duration {
        if !self.0.powered.load(Ordering::Acquire) {
            return MAX_SLEEP;
        }
        let now = self.now();
        let due = |at: &AtomicU64, deadline: Duration| {
            (at.load(Ordering::Acquire) + nanos(deadline)).saturating_sub(now)
        };
        let (command, heartbeat) = (self.0.command_deadline, self.0.heartbeat_deadline);
        let earliest = due(&self.0.commanded_ns, command)
            .min(due(&self.0.steered_ns, command))
            .min(due(&self.0.heartbeat_ns, heartbeat));
        (Duration::from_nanos(earliest) + MIN_SLEEP).clamp(MIN_SLEEP, MAX_SLEEP)
    }

    /// One look: zeroes `drive` if the verdict says so; what tripped, if anything.
    pub fn check(&self, drive: &Shared<dyn hw::Drive>, latch: &EStopLatch) -> Option<Trip> {
        let trip = self.verdict(latch)?;
        self.0.trips.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::core::metrics::DEADMAN_TRIPS).increment(1);
        self.zero(drive, trip.as_str());
        Some(trip)
    }

    /// Zeroes `drive` now; on failure the next look tries again.
    fn zero(&self, drive: &Shared<dyn hw::Drive>, why: &str) {
        self.0.powered.store(false, Ordering::Release);
        match drive.lock().set_power(0.0, 0.0) {
            Ok(()) => tracing::warn!(reason = why, "dead-man: motors zeroed"),
            Err(e) => {
                tracing::error!(reason = why, error = %e, "dead-man: could not zero the motors");
                self.0.powered.store(true, Ordering::Release);
            }
        }
    }

    /// Zeroes the motors now if they are powered: a safety-critical actor stopped
    /// (`who` names it). A no-op before the checker runs.
    pub fn halt(&self, who: &str) {
        if !self.0.powered.load(Ordering::Acquire) {
            return;
        }
        if let Some(drive) = self.0.drive.get() {
            self.zero(drive, who);
        }
    }

    /// Starts the checker on `timer`'s clock; it runs until [`DeadMan::stop`].
    ///
    /// # Errors
    ///
    /// The OS error if its thread cannot be started.
    pub fn spawn(
        &self,
        timer: Timer,
        drive: Shared<dyn hw::Drive>,
        latch: EStopLatch,
    ) -> std::io::Result<()> {
        let me = self.clone();
        let _ = self.0.drive.set(drive.clone());
        match timer {
            Timer::Tokio => {
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(CHECK_PERIOD);
                    while !me.0.stopped.load(Ordering::Acquire) {
                        tick.tick().await;
                        me.check(&drive, &latch);
                    }
                });
            }
            Timer::Precise => {
                // Device calls from this thread read the run's clock like the actors do.
                let runtime = tokio::runtime::Handle::try_current().ok();
                std::thread::Builder::new()
                    .name("deadman".into())
                    .spawn(move || {
                        let _context = runtime.as_ref().map(tokio::runtime::Handle::enter);
                        while !me.0.stopped.load(Ordering::Acquire) {
                            std::thread::sleep(me.next_look());
                            me.check(&drive, &latch);
                        }
                    })?;
            }
        }
        Ok(())
    }

    /// Stops the checker (at the end of a run, after the motors were stopped).
    pub fn stop(&self) {
        self.0.stopped.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::sim::{ManualClock, Sim, SimConfig};

    fn rig() -> (DeadMan, Shared<dyn hw::Drive>, Sim, EStopLatch) {
        let sim = Sim::new(&SimConfig::default(), ManualClock::new());
        let deadman = DeadMan::new(
            Clock::start(),
            Duration::from_millis(100),
            Duration::from_millis(100),
        );
        (deadman, sim.hardware().drive, sim, EStopLatch::default())
    }

    #[tokio::test(start_paused = true)]
    async fn zeroes_powered_motors_without_fresh_commands() {
        let (deadman, drive, sim, latch) = rig();
        drive.lock().set_power(30.0, 30.0).unwrap();
        deadman.commanded(true);
        tokio::time::advance(Duration::from_millis(90)).await;
        deadman.heartbeat();
        deadman.steered();
        assert_eq!(deadman.check(&drive, &latch), None);
        tokio::time::advance(Duration::from_millis(11)).await;
        assert_eq!(deadman.check(&drive, &latch), Some(Trip::NoCommand));
        assert_eq!(sim.report().last_drive.unwrap().left, 0.0);
        assert_eq!(
            deadman.check(&drive, &latch),
            None,
            "once: they are at zero"
        );
        assert_eq!(deadman.trips(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_watchdog_stops_and_keeps_the_motors_stopped() {
        let (deadman, drive, _sim, latch) = rig();
        deadman.commanded(true);
        tokio::time::advance(Duration::from_millis(101)).await;
        deadman.commanded(true);
        deadman.steered();
        assert!(!deadman.permits());
        assert_eq!(deadman.check(&drive, &latch), Some(Trip::NoHeartbeat));
        deadman.heartbeat();
        assert!(deadman.permits());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_steering_driver_stops_the_motors() {
        let (deadman, drive, _sim, latch) = rig();
        tokio::time::advance(Duration::from_millis(101)).await;
        deadman.commanded(true);
        deadman.heartbeat();
        assert!(!deadman.permits());
        assert_eq!(deadman.check(&drive, &latch), Some(Trip::NoSteering));
        deadman.steered();
        assert!(deadman.permits());
    }

    #[tokio::test(start_paused = true)]
    async fn halt_zeroes_powered_motors_at_once() {
        let (deadman, drive, sim, latch) = rig();
        deadman.halt("nobody");
        deadman.spawn(Timer::Tokio, drive.clone(), latch).unwrap();
        drive.lock().set_power(20.0, 20.0).unwrap();
        deadman.commanded(true);
        deadman.halt("root/drivers/steering");
        assert_eq!(sim.report().last_drive.unwrap().left, 0.0);
        deadman.stop();
    }

    #[tokio::test(start_paused = true)]
    async fn an_engaged_latch_trips_it_and_idle_motors_do_not() {
        let (deadman, drive, _sim, latch) = rig();
        latch.set("shutdown", "shutdown".into(), 0.0);
        assert_eq!(deadman.check(&drive, &latch), None, "not powered");
        deadman.commanded(true);
        assert_eq!(deadman.check(&drive, &latch), Some(Trip::EStop));
    }

    #[tokio::test(start_paused = true)]
    async fn the_thread_sleeps_until_the_earliest_deadline() {
        let (deadman, _drive, _sim, _latch) = rig();
        assert_eq!(
            deadman.next_look(),
            MAX_SLEEP,
            "idle motors: the longest sleep"
        );
        deadman.commanded(true);
        deadman.steered();
        deadman.heartbeat();
        assert_eq!(deadman.next_look(), MAX_SLEEP, "every deadline 100 ms away");
        tokio::time::advance(Duration::from_millis(70)).await;
        deadman.commanded(true);
        deadman.steered();
        assert_eq!(
            deadman.next_look(),
            Duration::from_millis(31),
            "the heartbeat is due in 30 ms"
        );
        tokio::time::advance(Duration::from_millis(40)).await;
        assert_eq!(deadman.next_look(), MIN_SLEEP, "overdue: look at once");
    }

    #[test]
    fn deadlines_are_three_periods_but_not_below_the_floor() {
        let ms = Duration::from_millis;
        assert_eq!(DeadMan::deadlines(ms(20), ms(10)), (ms(100), ms(100)));
        assert_eq!(DeadMan::deadlines(ms(50), ms(40)), (ms(150), ms(120)));
    }
}
