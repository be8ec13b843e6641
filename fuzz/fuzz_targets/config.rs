//! Config parsing and validation, and what a run then derives from a valid config:
//! [`Config::parse`] (TOML, [`Config::assign_critical`], [`Config::check`]), then the
//! periods, timeouts, backoff, listen address, monitor thresholds, quota groups and the
//! simulated world built from it. A config that passes `check` must never make any of
//! them panic; one that fails must list its problems.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use nevil::config::{Config, CRITICAL, WORKERS};
use nevil::hw::sim::World;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(text, "fuzz.toml") {
        Ok(config) => config,
        Err(e) => {
            let problems = e.problems();
            assert!(!problems.is_empty());
            assert!(e.to_string().starts_with("fuzz.toml"), "{e}");
            return;
        }
    };
    // Valid: check again (assign_critical is idempotent) and derive what a run does.
    let mut again = config.clone();
    again.assign_critical();
    assert!(again.check().is_empty());
    for (_, sensor) in config.drivers.sensors() {
        let _ = sensor.period();
    }
    let _ = config.motion.period();
    let _ = config.safety.check_period();
    let _ = config.http.timeout();
    let _ = config.http.address(None);
    let _ = config.supervision.backoff();
    let _ = Duration::from_secs_f64(config.supervision.period_s);
    let _ = config.monitor.period();
    let _ = config.monitor.thresholds();
    let _ = config.quotas.sample_interval();
    for (_, path) in CRITICAL {
        assert!(config.quotas.is_critical(path), "{path} must be critical");
    }
    for name in WORKERS {
        let _ = config.quotas.group_for(name);
    }
    let _ = config.picarx.ultrasonic_timeout();
    // The simulated world: built, and driven for a simulated second.
    let mut world = World::new(&config.sim);
    let _ = world.set_power(config.behaviour.cruise_power, config.behaviour.cruise_power);
    let _ = world.set_steering(config.motion.max_steer_deg);
    world.advance_to(Duration::from_secs(1));
    let _ = world.distance_m();
    let _ = world.grayscale();
    let _ = world.voltage();
    let _ = world.report();
});
