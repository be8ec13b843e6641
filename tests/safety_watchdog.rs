//! The safety watchdog, on the whole robot in-process and on tokio's paused clock, so
//! time is virtual: "within two sensor periods" is checked exactly, not against a wall
//! clock on a shared machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use nevil::app::{Devices, Robot, RunOptions};
use nevil::config::Config;
use nevil::core::clock::Clock;
use nevil::core::ticker::Timer;

async fn robot(inject: &[&str]) -> (Config, Robot) {
    let mut config = Config::load(None).unwrap();
    // Everything on this test's runtime: a bulkhead runtime would not follow its
    // paused clock (nor would the precise loop timer, hence `Timer::Tokio`).
    config.runtime.bulkhead.clear();
    let clock = Clock::start();
    let devices = Devices::open(&config, clock).unwrap();
    let opts = RunOptions {
        tree_dump: std::env::temp_dir().join("nevil-safety-test-tree.json"),
        record: None,
        inject: inject.iter().map(|s| s.parse().unwrap()).collect(),
        loop_timer: Timer::Tokio,
        ..RunOptions::default()
    };
    let robot = Robot::start(&config, devices, clock, &opts).await.unwrap();
    (config, robot)
}

/// The ranger's driver hangs at t = 1 s: its last reading is at most at 1 s. The
/// watchdog must engage the e-stop, and the motors driver stop the motors, before
/// t = 1 s + 2 ranger periods. The sim records when the motors were last commanded.
#[tokio::test(start_paused = true)]
async fn motors_stop_within_two_sensor_periods_of_a_hung_ranger() {
    let (config, robot) = robot(&["ultrasonic:hang@1"]).await;
    let sim = robot.sim().unwrap().clone();

    tokio::time::sleep(Duration::from_millis(950)).await;
    let moving = sim.report().last_drive.unwrap();
    assert!(
        moving.left > 0.0,
        "the car drives before the fault: {moving:?}"
    );

    tokio::time::sleep(Duration::from_millis(550)).await;
    let stopped = sim.report().last_drive.unwrap();
    assert_eq!((stopped.left, stopped.right), (0.0, 0.0));
    let limit = 1.0 + 2.0 * config.drivers.ultrasonic.period().as_secs_f64();
    assert!(
        stopped.at_s > 1.0 && stopped.at_s <= limit,
        "motors stopped at {} s; the ranger hung at 1 s, limit {limit} s",
        stopped.at_s
    );

    let (_, report) = robot.shutdown().await;
    let first = &report.estops[0];
    assert!(
        first.engaged && first.reason.contains("stale ultrasonic"),
        "{first:?}"
    );
    assert!(first.at_s <= stopped.at_s);
}

/// When the motors were first at zero at or after `t_s`, from the sim's power log.
fn first_stop_after(report: &nevil::hw::sim::SimReport, t_s: f64) -> f64 {
    report
        .power_log
        .iter()
        .find(|c| c.at_s >= t_s && c.left == 0.0 && c.right == 0.0)
        .unwrap_or_else(|| panic!("motors never stopped after {t_s} s: {:?}", report.power_log))
        .at_s
}

/// A hung motion controller falls silent: the watchdog stops the motors within its
/// silence limit and one check. Its stall is seen by its supervisor, which kills and
/// replaces it without waiting for its shutdown timeout, and the car drives again.
#[tokio::test(start_paused = true)]
async fn silent_controller_stops_the_motors() {
    let (config, robot) = robot(&["motion:hang@1"]).await;
    let sim = robot.sim().unwrap().clone();
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let motion = robot
        .tree()
        .snapshot()
        .root
        .find("root/control/motion")
        .unwrap()
        .clone();
    let (_, report) = robot.shutdown().await;
    let sim = sim.report();
    let limit = nevil::robot::nodes::motion::silence_limit(&config.motion).as_secs_f64()
        + 2.0 / config.safety.check_hz;
    let stopped = first_stop_after(&sim, 1.0);
    assert!(
        stopped <= 1.0 + limit,
        "stopped at {stopped} s, the controller hung at 1 s, limit {limit} s"
    );
    assert!(
        report.estops[0].reason.contains("controller silent"),
        "{:?}",
        report.estops
    );
    assert_eq!(motion.restarts, 1);
    let exit = motion.last_exit.unwrap().to_string();
    assert!(exit.starts_with("quota: stall"), "{exit}");
    let restarted = sim
        .power_log
        .iter()
        .find(|c| c.at_s > stopped && c.left > 0.0)
        .expect("the car drives again after the replacement");
    assert!(restarted.at_s < 1.5, "{restarted:?}");
}

/// A restarted motion controller starts from motors stopped and ramps up from zero
/// within its limit, rather than resuming its predecessor's speed.
#[tokio::test(start_paused = true)]
async fn restarted_controller_starts_from_standstill() {
    let (config, robot) = robot(&["motion:panic@1"]).await;
    let outputs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = outputs.clone();
    robot.bus().drive.subscribe_with("test", move |d| {
        seen.lock().unwrap().push(d.into_inner());
        true
    });
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let outputs = outputs.lock().unwrap().clone();
    // The new incarnation counts its inputs afresh: its outputs follow the last drop.
    let restart = outputs
        .windows(2)
        .position(|w| w[1].commands_seen < w[0].commands_seen)
        .expect("the controller restarted")
        + 1;
    assert!(
        outputs[restart - 1].left > 0.0,
        "it was driving before the panic"
    );
    assert_eq!(outputs[restart].left, 0.0, "restart begins at standstill");
    let step = config.motion.ramp_pct_per_s / config.motion.loop_hz;
    for w in outputs[restart..].windows(2) {
        assert!(
            w[1].left - w[0].left <= step + 1e-9,
            "ramp limit broken: {w:?}"
        );
    }
    assert!(outputs.last().unwrap().left > 0.0, "and it drives again");
    let tree = robot.tree().snapshot();
    assert_eq!(tree.root.find("root/control/motion").unwrap().restarts, 1);
    robot.shutdown().await;
}

/// The ranger's simulated device is unplugged at t = 1 s: every read fails from then
/// on. The driver is not restarted (a failed read publishes nothing; it is no crash),
/// the ranger goes stale, and the watchdog stops the motors before t = 1 s + 2 ranger
/// periods.
#[tokio::test(start_paused = true)]
async fn unplugged_ranger_goes_stale_without_restarting_its_driver() {
    let (config, robot) = robot(&["ultrasonic:unplug@1"]).await;
    let sim = robot.sim().unwrap().clone();

    tokio::time::sleep(Duration::from_millis(950)).await;
    assert!(!sim.is_unplugged(nevil::hw::sim::SimSensor::Ultrasonic));
    let moving = sim.report().last_drive.unwrap();
    assert!(
        moving.left > 0.0,
        "the car drives before the fault: {moving:?}"
    );

    tokio::time::sleep(Duration::from_millis(550)).await;
    assert!(sim.is_unplugged(nevil::hw::sim::SimSensor::Ultrasonic));
    let stopped = sim.report().last_drive.unwrap();
    assert_eq!((stopped.left, stopped.right), (0.0, 0.0));
    let limit = 1.0 + 2.0 * config.drivers.ultrasonic.period().as_secs_f64();
    assert!(
        stopped.at_s > 1.0 && stopped.at_s <= limit,
        "motors stopped at {} s; the ranger was unplugged at 1 s, limit {limit} s",
        stopped.at_s
    );
    let tree = robot.tree().snapshot();
    let driver = tree.root.find("root/drivers/ultrasonic").unwrap();
    assert_eq!(driver.restarts, 0, "a failed read is not a crash");
    let restarts: u64 = tree.root.walk().iter().map(|n| n.restarts).sum();
    assert_eq!(restarts, 0);

    let (_, report) = robot.shutdown().await;
    let first = &report.estops[0];
    assert!(
        first.engaged && first.reason.contains("stale ultrasonic"),
        "{first:?}"
    );
    assert!(first.at_s > 1.0 && first.at_s <= stopped.at_s, "{first:?}");
    assert_eq!(report.restarts, 0);
    assert!(
        report.estops.iter().all(|e| e.engaged),
        "the e-stop holds while the sensor is unplugged: {:?}",
        report.estops
    );
}
