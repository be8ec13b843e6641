//! The built-in simulated robot, the default backend: a deterministic 2-D world with a
//! PiCar-X in it.
//!
//! # Semantics
//!
//! - **Deterministic.** The same [`SimConfig`] (seed included) and the same sequence of
//!   (time, command, read) calls give the same readings and the same trajectory, bit for
//!   bit. The noise comes from seeded streams, one per sensor; nothing reads the OS.
//! - **Time.** The [`World`] advances in fixed steps of [`STEP`] (5 ms) and never reads a
//!   clock. A [`Sim`] takes its time from an injected [`SimClock`] (time since start):
//!   every device call first advances the world to the clock's now, then acts. The app
//!   passes a clock on `tokio::time::Instant`; tests pass a [`ManualClock`].
//! - **Car.** A bicycle model with the PiCar-X's wheelbase, footprint and limits (see
//!   [`car`]): steering ±30° (positive turns right), forward speed from the mean of the
//!   two motors' power with a 0.1 s first-order lag, 0.5 m/s at 100 %.
//! - **Room.** Walls around `[0, width] × [0, height]`, circular and boxed obstacles, and
//!   a dark line loop on a bright floor ([`SimConfig`]).
//! - **Sensors.** The ranger at the front centre sees the nearest wall or obstacle inside
//!   its cone; the three grayscale sensors read raw ADC counts (dark on the line); the
//!   battery (2S Li-ion, 8.4 V full) drains with the motor load and sags under it.
//! - **Collisions.** When the car's footprint touches a wall or obstacle it stops there
//!   (speed 0, never inside) and one collision is counted per contact episode.
//! - **Commands** out of range (steering beyond ±30°, power beyond ±100, NaN) are
//!   rejected with [`HwError::OutOfRange`] naming the device; nothing panics.
//! - **Unplugging.** [`Sim::unplug`] makes one sensor ([`SimSensor`]) fail every read
//!   with [`HwError::Io`] `sim ultrasonic: unplugged` (or `sim grayscale`, `sim battery`)
//!   until [`Sim::replug`]; the world goes on meanwhile. The `unplug` fault drill uses it.
//! - [`Sim::report`] summarises the run ([`SimReport`]): collisions, distance, minimum
//!   clearance, pose, battery, the last commands and when they were given.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use nevil::hw::sim::{ManualClock, Sim, SimConfig};
//! use nevil::hw::{Drive, Ranger};
//!
//! let clock = ManualClock::new();
//! let sim = Sim::new(&SimConfig::default(), clock.clone());
//! let hw = sim.hardware();
//! hw.drive.lock().set_power(40.0, 40.0)?;
//! clock.advance(Duration::from_secs(1));
//! let ahead = hw.ranger.lock().distance_m()?; // the world is now at 1 s
//! assert!(ahead.is_some());
//! hw.drive.lock().set_power(0.0, 0.0)?;
//! let report = sim.report();
//! assert_eq!(report.collisions, 0);
//! assert!(report.distance_m > 0.1);
//! # Ok::<(), nevil::hw::HwError>(())
//! ```

pub mod car;

mod battery;
mod config;
mod geometry;
mod world;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use config::{BatteryConfig, GrayscaleConfig, LineTrack, Obstacle, Pose, RangerConfig};
pub use config::{Room, SimConfig};
pub use world::{DriveCommand, Scene, SimReport, SteeringCommand, World, CONTACT_RELEASE_M, STEP};

use super::{Battery, Drive, Hardware, HwError, LineSensor, Ranger, Shared, Steering};

/// Where a [`Sim`] takes its time from: the time since the world started. It must not go
/// backwards (if it does, the world waits until it catches up).
///
/// Any `Fn() -> Duration` is a clock; the app uses
/// `move || start.elapsed()` with `start` a `tokio::time::Instant`, so that paused tokio
/// time drives the world too.
pub trait SimClock: Send + Sync + 'static {
    /// Time since the world started.
    fn now(&self) -> Duration;
}

impl<F: Fn() -> Duration + Send + Sync + 'static> SimClock for F {
    fn now(&self) -> Duration {
        self()
    }
}

/// A clock that moves only when told to: for tests and replays. Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the time (nanosecond resolution, saturating at about 584 years).
    pub fn set(&self, t: Duration) {
        self.0.store(
            u64::try_from(t.as_nanos()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.set(SimClock::now(self).saturating_add(d));
    }
}

impl SimClock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// A simulated sensor that [`Sim::unplug`] can disconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimSensor {
    /// The ultrasonic ranger.
    Ultrasonic,
    /// The grayscale line sensor.
    Grayscale,
    /// The battery monitor.
    Battery,
}

impl SimSensor {
    /// Every sensor, in the drivers' start order.
    pub const ALL: [SimSensor; 3] = [Self::Ultrasonic, Self::Grayscale, Self::Battery];

    /// Its name, as its driver is named: `ultrasonic`, `grayscale`, `battery`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ultrasonic => "ultrasonic",
            Self::Grayscale => "grayscale",
            Self::Battery => "battery",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }

    fn unplugged(self) -> HwError {
        HwError::Io {
            device: format!("sim {}", self.name()),
            reason: "unplugged".to_owned(),
        }
    }
}

impl fmt::Display for SimSensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SimSensor {
    type Err = String;

    /// Parses a name of [`SimSensor::name`].
    fn from_str(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| format!("{name:?} is not a sensor (ultrasonic, grayscale, battery)"))
    }
}

/// The simulated robot: one shared [`World`] and the clock that drives it. Cheap to
/// clone; clones and the devices from [`Sim::hardware`] share the same world.
#[derive(Clone)]
pub struct Sim {
    world: Arc<Mutex<World>>,
    clock: Arc<dyn SimClock>,
    /// The unplugged sensors, one bit each ([`SimSensor`]).
    unplugged: Arc<AtomicU8>,
}

impl Sim {
    /// Builds the world of `cfg` at time zero, driven by `clock`. Check `cfg` with
    /// [`SimConfig::check`] first; see [`World::new`] for what an invalid one does.
    pub fn new(cfg: &SimConfig, clock: impl SimClock) -> Self {
        Self {
            world: Arc::new(Mutex::new(World::new(cfg))),
            clock: Arc::new(clock),
            unplugged: Arc::default(),
        }
    }

    /// Disconnects `sensor`: from now on every read of it fails with [`HwError::Io`]
    /// (`sim ultrasonic: unplugged`), on every clone of this sim, until [`Sim::replug`].
    pub fn unplug(&self, sensor: SimSensor) {
        self.unplugged.fetch_or(sensor.bit(), Ordering::SeqCst);
    }

    /// Reconnects `sensor`: reads answer again from the next one on.
    pub fn replug(&self, sensor: SimSensor) {
        self.unplugged.fetch_and(!sensor.bit(), Ordering::SeqCst);
    }

    /// Whether `sensor` is unplugged.
    pub fn is_unplugged(&self, sensor: SimSensor) -> bool {
        self.unplugged.load(Ordering::SeqCst) & sensor.bit() != 0
    }

    /// `Err` if `sensor` is unplugged, for its device's read.
    fn plugged(&self, sensor: SimSensor) -> Result<(), HwError> {
        if self.is_unplugged(sensor) {
            Err(sensor.unplugged())
        } else {
            Ok(())
        }
    }

    /// The robot's devices, all acting on this world: the default backend's [`Hardware`].
    pub fn hardware(&self) -> Hardware {
        Hardware {
            ranger: Shared::new(Box::new(Device(self.clone()))),
            line: Shared::new(Box::new(Device(self.clone()))),
            battery: Shared::new(Box::new(Device(self.clone()))),
            drive: Shared::new(Box::new(Device(self.clone()))),
            steering: Shared::new(Box::new(Device(self.clone()))),
            blocking: false,
        }
    }

    /// The report of the run so far, after advancing the world to the clock's now.
    pub fn report(&self) -> SimReport {
        self.world().report()
    }

    /// The car's pose and trail now, after advancing the world to the clock's now.
    pub fn scene(&self) -> Scene {
        self.world().scene()
    }

    /// Advances the world to the clock's now and returns the world time reached.
    pub fn advance(&self) -> Duration {
        self.world().time()
    }

    /// Advances the world to `t` (time since start) regardless of the clock, e.g. to
    /// finish a run; device calls at earlier clock times then act at the world's time.
    pub fn advance_to(&self, t: Duration) {
        self.lock().advance_to(t);
    }

    /// Runs `f` on the world after advancing it to the clock's now: for tests and tools
    /// that need more than the devices offer.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.world())
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while the world was locked leaves it consistent between steps.
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The world, advanced to the clock's now.
    fn world(&self) -> MutexGuard<'_, World> {
        let mut world = self.lock();
        world.advance_to(self.clock.now());
        world
    }
}

/// A device handle on the shared world; one type plays every device.
struct Device(Sim);

impl Ranger for Device {
    fn distance_m(&mut self) -> Result<Option<f64>, HwError> {
        self.0.plugged(SimSensor::Ultrasonic)?;
        Ok(self.0.world().distance_m())
    }
}

impl LineSensor for Device {
    fn read(&mut self) -> Result<[u16; 3], HwError> {
        self.0.plugged(SimSensor::Grayscale)?;
        Ok(self.0.world().grayscale())
    }
}

impl Battery for Device {
    fn voltage(&mut self) -> Result<f64, HwError> {
        self.0.plugged(SimSensor::Battery)?;
        Ok(self.0.world().voltage())
    }
}

impl Drive for Device {
    fn set_power(&mut self, left: f64, right: f64) -> Result<(), HwError> {
        self.0.world().set_power(left, right)
    }
}

impl Steering for Device {
    fn set_angle(&mut self, degrees: f64) -> Result<(), HwError> {
        self.0.world().set_steering(degrees)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(50);

    fn sim(cfg: &SimConfig) -> (Sim, ManualClock, Hardware) {
        let clock = ManualClock::new();
        let sim = Sim::new(cfg, clock.clone());
        let hw = sim.hardware();
        (sim, clock, hw)
    }

    fn empty_room_facing_east() -> SimConfig {
        SimConfig {
            obstacles: Vec::new(),
            start: Pose {
                x_m: 2.0,
                y_m: 1.5,
                heading_deg: 0.0,
            },
            ..SimConfig::default()
        }
    }

    /// One tick's readings: ranger, grayscale, battery.
    type Readings = (Option<f64>, [u16; 3], f64);

    /// Every reading of a scripted 10 s drive, and the final report.
    fn scripted_run(seed: u64) -> (Vec<Readings>, SimReport) {
        let cfg = SimConfig {
            seed,
            ..SimConfig::default()
        };
        let (sim, clock, hw) = sim(&cfg);
        let mut readings = Vec::new();
        for tick in 0..200_u32 {
            clock.advance(TICK);
            if tick % 20 == 0 {
                let steer = f64::from(tick % 60) - 20.0;
                hw.steering.lock().set_angle(steer).unwrap();
                hw.drive.lock().set_power(35.0, 30.0).unwrap();
            }
            readings.push((
                hw.ranger.lock().distance_m().unwrap(),
                hw.line.lock().read().unwrap(),
                hw.battery.lock().voltage().unwrap(),
            ));
        }
        (readings, sim.report())
    }

    #[test]
    fn same_seed_and_inputs_give_identical_runs() {
        let (a, ra) = scripted_run(42);
        let (b, rb) = scripted_run(42);
        assert_eq!(a, b);
        assert_eq!(ra, rb);
        assert_eq!(
            serde_json::to_string(&ra).unwrap(),
            serde_json::to_string(&rb).unwrap()
        );
        assert!(ra.distance_m > 1.0, "{ra:?}");
    }

    #[test]
    fn different_seed_gives_different_noise_same_trajectory() {
        let (a, ra) = scripted_run(42);
        let (b, rb) = scripted_run(43);
        assert_ne!(a, b);
        // Noise does not steer the car: the trajectory is the same.
        assert_eq!(ra.pose, rb.pose);
        let differing = a.iter().zip(&b).filter(|(x, y)| x.2 != y.2).count();
        assert!(differing > 150, "{differing}");
    }

    #[test]
    fn driving_at_a_wall_closes_in_then_collides_once_and_stops() {
        let (sim, clock, hw) = sim(&empty_room_facing_east());
        // The bumper starts 1.8 m from the east wall.
        let first = hw.ranger.lock().distance_m().unwrap().unwrap();
        assert!((first - 1.8).abs() < 0.03, "{first}");
        hw.drive.lock().set_power(40.0, 40.0).unwrap();
        let mut last = first;
        let mut hit_at = None;
        for tick in 0..300_u32 {
            clock.advance(TICK);
            let d = hw.ranger.lock().distance_m().unwrap().unwrap();
            if sim.report().collisions == 0 {
                assert!(d < last + 0.03, "tick {tick}: {d} after {last}");
                last = d;
            } else if hit_at.is_none() {
                hit_at = Some(tick);
                assert!(d < 0.05, "{d}");
            }
        }
        let hit_at = hit_at.unwrap();
        // 1.8 m at 0.2 m/s is 9 s plus the lag: about 180 ticks.
        assert!((175..=190).contains(&hit_at), "{hit_at}");
        let report = sim.report();
        assert_eq!(report.collisions, 1, "pushing on is the same contact");
        assert_eq!(report.speed_m_s, 0.0);
        assert!(report.pose.x_m + car::FRONT_M <= 4.0);
        assert!(report.pose.x_m + car::FRONT_M > 3.999);
        assert!(report.min_clearance_m < 0.001);
    }

    #[test]
    fn positive_steering_turns_right_negative_left() {
        for (angle, turns_right) in [(20.0, true), (-20.0, false)] {
            let (sim, clock, hw) = sim(&empty_room_facing_east());
            hw.steering.lock().set_angle(angle).unwrap();
            hw.drive.lock().set_power(30.0, 30.0).unwrap();
            clock.advance(Duration::from_secs(1));
            let pose = sim.report().pose;
            assert_eq!(pose.heading_deg < 0.0, turns_right, "{pose:?}");
            assert_eq!(pose.y_m < 1.5, turns_right, "{pose:?}");
            assert!(pose.heading_deg.abs() > 20.0);
        }
    }

    #[test]
    fn middle_grayscale_reads_dark_over_the_line_and_bright_off_it() {
        // The default start puts the sensors over the loop's southern straight.
        let (_sim, clock, hw) = sim(&SimConfig::default());
        let [l, m, r] = hw.line.lock().read().unwrap();
        assert!((200..=400).contains(&m), "middle {m}");
        assert!(
            (1300..=1600).contains(&l) && (1300..=1600).contains(&r),
            "{l} {r}"
        );
        // Turn off the line to the left: all bright.
        hw.steering.lock().set_angle(-30.0).unwrap();
        hw.drive.lock().set_power(30.0, 30.0).unwrap();
        clock.advance(Duration::from_millis(800));
        let all = hw.line.lock().read().unwrap();
        assert!(all.iter().all(|v| (1300..=1600).contains(v)), "{all:?}");
    }

    #[test]
    fn battery_voltage_falls_under_load() {
        let run = |power: f64| {
            let (_sim, clock, hw) = sim(&empty_room_facing_east());
            let at_start = hw.battery.lock().voltage().unwrap();
            hw.steering.lock().set_angle(30.0).unwrap(); // circle in the open
            hw.drive.lock().set_power(power, power).unwrap();
            clock.advance(Duration::from_secs(1));
            let loaded = hw.battery.lock().voltage().unwrap();
            clock.advance(Duration::from_secs(300));
            hw.drive.lock().set_power(0.0, 0.0).unwrap();
            clock.advance(Duration::from_secs(1));
            let after = hw.battery.lock().voltage().unwrap();
            (at_start, loaded, after)
        };
        let (start, idle_now, idle_after) = run(0.0);
        let (_, loaded_now, loaded_after) = run(100.0);
        assert!((start - 8.34).abs() < 0.03, "full pack at idle: {start}");
        // Sag under load at once, and more charge gone after a long run.
        assert!(loaded_now < idle_now - 0.1, "{loaded_now} vs {idle_now}");
        assert!(
            idle_after < start - 0.01,
            "idle drain: {idle_after} vs {start}"
        );
        assert!(
            loaded_after < idle_after - 0.05,
            "{loaded_after} vs {idle_after}"
        );
    }

    #[test]
    fn out_of_range_commands_are_rejected_naming_the_device() {
        let (sim, _clock, hw) = sim(&SimConfig::default());
        hw.steering.lock().set_angle(-30.0).unwrap();
        hw.drive.lock().set_power(100.0, -100.0).unwrap();
        for bad in [30.5, -31.0, f64::NAN, f64::INFINITY] {
            let err = hw.steering.lock().set_angle(bad).unwrap_err();
            assert!(
                matches!(&err, HwError::OutOfRange { device, .. } if device == "sim steering"),
                "{err}"
            );
        }
        let err = hw.steering.lock().set_angle(31.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sim steering: 31 is out of range -30..=30 degrees"
        );
        let err = hw.drive.lock().set_power(101.0, 0.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "sim drive left: 101 is out of range -100..=100 percent"
        );
        let err = hw.drive.lock().set_power(0.0, f64::NAN).unwrap_err();
        assert!(err.to_string().starts_with("sim drive right: NaN"), "{err}");
        // The rejected commands changed nothing.
        let report = sim.report();
        assert_eq!(report.last_steering.map(|s| s.degrees), Some(-30.0));
        assert_eq!(
            report.last_drive.map(|d| (d.left, d.right)),
            Some((100.0, -100.0))
        );
    }

    #[test]
    fn report_records_the_last_commands_and_when() {
        let (sim, clock, hw) = sim(&SimConfig::default());
        let report = sim.report();
        assert_eq!((report.last_drive, report.last_steering), (None, None));
        hw.drive.lock().set_power(30.0, 30.0).unwrap();
        clock.advance(Duration::from_millis(1500));
        hw.steering.lock().set_angle(5.0).unwrap();
        hw.drive.lock().set_power(0.0, 0.0).unwrap();
        clock.advance(Duration::from_secs(2));
        let report = sim.report();
        assert_eq!(
            report.last_drive,
            Some(DriveCommand {
                left: 0.0,
                right: 0.0,
                at_s: 1.5
            })
        );
        assert_eq!(
            report.last_steering,
            Some(SteeringCommand {
                degrees: 5.0,
                at_s: 1.5
            })
        );
        assert_eq!(report.steps, 700);
        assert_eq!(report.time_s, 3.5);
        assert_eq!(report.speed_m_s, 0.0);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["last_drive"]["at_s"], 1.5);
        assert_eq!(json["collisions"], 0);
    }

    #[test]
    fn a_closure_is_a_clock_and_advance_to_runs_ahead_of_it() {
        let sim = Sim::new(&SimConfig::default(), || Duration::from_millis(20));
        assert_eq!(sim.advance(), Duration::from_millis(20));
        sim.advance_to(Duration::from_secs(1));
        assert_eq!(sim.report().steps, 200);
        assert_eq!(sim.with_world(|w| w.time()), Duration::from_secs(1));
    }

    #[test]
    fn an_unplugged_sensor_fails_every_read_until_replugged() {
        let (sim, clock, hw) = sim(&SimConfig::default());
        let other = sim.clone();
        other.unplug(SimSensor::Ultrasonic);
        assert!(
            sim.is_unplugged(SimSensor::Ultrasonic),
            "clones share the plug"
        );
        for _ in 0..3 {
            clock.advance(TICK);
            match hw.ranger.lock().distance_m() {
                Err(HwError::Io { device, reason }) => {
                    assert_eq!(
                        (device.as_str(), reason.as_str()),
                        ("sim ultrasonic", "unplugged")
                    );
                }
                other => panic!("expected Io, got {other:?}"),
            }
        }
        // The other sensors answer on.
        assert!(hw.line.lock().read().is_ok());
        assert!(hw.battery.lock().voltage().is_ok());
        sim.replug(SimSensor::Ultrasonic);
        assert!(!sim.is_unplugged(SimSensor::Ultrasonic));
        assert!(hw.ranger.lock().distance_m().unwrap().is_some());
    }

    #[test]
    fn each_sensor_unplugs_alone_and_names_itself() {
        let (sim, _clock, hw) = sim(&SimConfig::default());
        sim.unplug(SimSensor::Grayscale);
        sim.unplug(SimSensor::Battery);
        assert_eq!(
            hw.line.lock().read().unwrap_err().to_string(),
            "sim grayscale: unplugged"
        );
        assert_eq!(
            hw.battery.lock().voltage().unwrap_err().to_string(),
            "sim battery: unplugged"
        );
        assert!(hw.ranger.lock().distance_m().is_ok());
        sim.replug(SimSensor::Grayscale);
        assert!(hw.line.lock().read().is_ok());
        assert!(hw.battery.lock().voltage().is_err(), "still unplugged");
        assert_eq!("battery".parse(), Ok(SimSensor::Battery));
        assert!("motors".parse::<SimSensor>().is_err());
    }

    /// The reactive loop the obstacle-avoidance node grows from: drive on, turn right
    /// while the ranger sees something nearer than 0.4 m. In the default world it must
    /// keep going for a minute without touching anything.
    #[test]
    fn reactive_avoidance_runs_a_minute_without_collisions() {
        let (sim, clock, hw) = sim(&SimConfig::default());
        let mut turning_ticks = 0;
        for _ in 0..(60_000 / 50) {
            clock.advance(TICK);
            let near = hw
                .ranger
                .lock()
                .distance_m()
                .unwrap()
                .is_some_and(|d| d < 0.4);
            let (angle, power) = if near { (30.0, 30.0) } else { (0.0, 40.0) };
            turning_ticks += u32::from(near);
            hw.steering.lock().set_angle(angle).unwrap();
            hw.drive.lock().set_power(power, power).unwrap();
        }
        let report = sim.report();
        assert_eq!(report.collisions, 0, "{report:?}");
        assert!(report.distance_m > 8.0, "{report:?}");
        assert!(turning_ticks > 50, "the ranger never made it turn");
        assert!(report.min_clearance_m > 0.0);
    }
}
