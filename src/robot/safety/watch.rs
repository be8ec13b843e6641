//! What the watchdog watches, as pure logic: each hazard is found holding, found clear,
//! or not known yet.
//!
//! A hazard is only ever *released* on evidence that it cleared: a valid reading of a
//! stale sensor, a battery reading above the threshold plus its hysteresis, a rating of
//! the host below critical. What is not known yet — a watchdog that just restarted has
//! heard nothing — keeps whatever the [latch](super::latch) holds. So a restart of the
//! watchdog cannot release an e-stop, and a voltage hovering at the threshold does not
//! make it toggle.

use std::time::Duration;

use tokio::time::Instant;

use crate::bus;
use crate::core::levels::Level;

/// What a look at one hazard found.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// It holds: stop the motors (the detail says why).
    Holds(String),
    /// It is clear: release it if it was set.
    Clear,
    /// Not known yet: keep the latched state.
    Unknown,
}

/// A heartbeat-like input: last heard of, and how long it may be silent.
#[derive(Debug, Clone)]
struct Silence {
    limit: Duration,
    last: Option<Instant>,
}

impl Silence {
    fn finding(&self, now: Instant, since: Instant, what: &str) -> Finding {
        match self.last {
            Some(t) if now.saturating_duration_since(t) > self.limit => Finding::Holds(what.into()),
            Some(_) => Finding::Clear,
            // Never heard since this watch began: a grace of one limit, then stale.
            None if now.saturating_duration_since(since) > self.limit => {
                Finding::Holds(what.into())
            }
            None => Finding::Unknown,
        }
    }
}

/// The hazard keys the watchdog owns in the latch.
pub mod keys {
    /// A watched sensor has no valid reading within its limit (`stale <name>`).
    pub fn stale(sensor: &str) -> String {
        format!("stale {sensor}")
    }
    /// The battery is below its threshold.
    pub const BATTERY: &str = "battery low";
    /// The motion controller published nothing within its limit.
    pub const CONTROLLER: &str = "controller silent";
    /// The host's temperature is rated critical.
    pub const TEMPERATURE: &str = "host temperature critical";
}

/// The watchdog's inputs and limits.
#[derive(Debug, Clone)]
pub struct Watch {
    since: Instant,
    /// Each watched sensor: its name, its hazard key (`stale <name>`) and its silence.
    sensors: Vec<(String, String, Silence)>,
    controller: Silence,
    battery_low_v: f64,
    battery_hysteresis_v: f64,
    battery_v: Option<f64>,
    /// The host's temperature level and reading, from the system monitor.
    host_temperature: Option<(Level, Option<f64>)>,
}

impl Watch {
    /// Watches `sensors` (name, stale limit) and the controller (silence limit), having
    /// heard nothing yet at `now`: each gets one limit of grace before it counts as
    /// stale. The battery counts as low below `battery_low_v` and as recovered above
    /// `battery_low_v + battery_hysteresis_v`.
    pub fn new(
        sensors: Vec<(String, Duration)>,
        controller: Duration,
        battery_low_v: f64,
        battery_hysteresis_v: f64,
        now: Instant,
    ) -> Self {
        let silence = |limit| Silence { limit, last: None };
        Self {
            since: now,
            sensors: sensors
                .into_iter()
                .map(|(n, limit)| {
                    let key = keys::stale(&n);
                    (n, key, silence(limit))
                })
                .collect(),
            controller: silence(controller),
            battery_low_v,
            battery_hysteresis_v,
            battery_v: None,
            host_temperature: None,
        }
    }

    /// Takes the limits a reload put in force: each watched sensor's stale limit (by
    /// name; the watched set itself needs a restart) and the battery thresholds. What
    /// was heard, and when, is kept. Whether any limit changed.
    pub fn retune(
        &mut self,
        sensors: &[(String, Duration)],
        battery_low_v: f64,
        battery_hysteresis_v: f64,
    ) -> bool {
        let mut changed = false;
        for (name, _, silence) in &mut self.sensors {
            if let Some((_, limit)) = sensors.iter().find(|(n, _)| n == name) {
                changed |= silence.limit != *limit;
                silence.limit = *limit;
            }
        }
        changed |= self.battery_low_v != battery_low_v
            || self.battery_hysteresis_v != battery_hysteresis_v;
        self.battery_low_v = battery_low_v;
        self.battery_hysteresis_v = battery_hysteresis_v;
        changed
    }

    /// A valid reading of sensor `name` arrived at `now`.
    pub fn heard(&mut self, name: &str, now: Instant) {
        if let Some((_, _, s)) = self.sensors.iter_mut().find(|s| s.0 == name) {
            s.last = Some(now);
        }
    }

    /// A battery reading.
    pub fn battery(&mut self, volts: f64) {
        self.battery_v = Some(volts);
    }

    /// The system monitor's latest rating of the host.
    pub fn host(&mut self, health: &bus::HostHealth) {
        self.host_temperature = Some((health.levels.temperature, health.temperature_c));
    }

    /// The controller published an output at `now`.
    pub fn controller_heard(&mut self, now: Instant) {
        self.controller.last = Some(now);
    }

    /// Every hazard's key and what it is at `now` (allocating only for what holds: the
    /// watchdog asks 100 times a second).
    pub fn findings(&self, now: Instant) -> Vec<(&str, Finding)> {
        let mut out: Vec<(&str, Finding)> = Vec::with_capacity(self.sensors.len() + 3);
        out.extend(
            self.sensors
                .iter()
                .map(|(_, key, s)| (key.as_str(), s.finding(now, self.since, key))),
        );
        let battery = match self.battery_v {
            Some(v) if v < self.battery_low_v || v.is_nan() => Finding::Holds(format!(
                "battery low ({v:.2} V < {:.2} V)",
                self.battery_low_v
            )),
            Some(v) if v >= self.battery_low_v + self.battery_hysteresis_v => Finding::Clear,
            _ => Finding::Unknown,
        };
        out.push((keys::BATTERY, battery));
        out.push((
            keys::CONTROLLER,
            self.controller.finding(now, self.since, keys::CONTROLLER),
        ));
        let temperature = match self.host_temperature {
            Some((Level::Critical, Some(c))) => {
                Finding::Holds(format!("host temperature critical ({c:.1} °C)"))
            }
            Some((Level::Critical, None)) => Finding::Holds(keys::TEMPERATURE.into()),
            Some(_) => Finding::Clear,
            None => Finding::Unknown,
        };
        out.push((keys::TEMPERATURE, temperature));
        out
    }

    /// Why the motors must stop at `now` as far as this watch knows, or `None`.
    pub fn verdict(&self, now: Instant) -> Option<String> {
        let holding: Vec<String> = self
            .findings(now)
            .into_iter()
            .filter_map(|(_, f)| match f {
                Finding::Holds(why) => Some(why),
                _ => None,
            })
            .collect();
        (!holding.is_empty()).then(|| holding.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(now: Instant) -> Watch {
        Watch::new(
            vec![("ultrasonic".into(), Duration::from_millis(75))],
            Duration::from_millis(60),
            6.4,
            0.2,
            now,
        )
    }

    fn finding(w: &Watch, now: Instant, key: &str) -> Finding {
        w.findings(now)
            .into_iter()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| f)
            .unwrap()
    }

    #[test]
    fn stale_sensor_low_battery_and_silent_controller() {
        let t0 = Instant::now();
        let mut w = watch(t0);
        assert_eq!(w.verdict(t0), None);
        let t = t0 + Duration::from_millis(50);
        w.heard("ultrasonic", t);
        w.controller_heard(t);
        assert_eq!(w.verdict(t + Duration::from_millis(60)), None);
        assert_eq!(
            w.verdict(t + Duration::from_millis(76)).as_deref(),
            Some("stale ultrasonic, controller silent")
        );
        w.battery(6.0);
        assert!(w
            .verdict(t)
            .unwrap()
            .contains("battery low (6.00 V < 6.40 V)"));
        w.battery(7.9);
        assert_eq!(w.verdict(t), None);
    }

    #[test]
    fn nothing_heard_is_unknown_for_one_limit_then_stale() {
        let t0 = Instant::now();
        let w = watch(t0);
        let key = keys::stale("ultrasonic");
        assert_eq!(finding(&w, t0, &key), Finding::Unknown);
        assert_eq!(
            finding(&w, t0 + Duration::from_millis(75), &key),
            Finding::Unknown
        );
        assert_eq!(
            finding(&w, t0 + Duration::from_millis(76), &key),
            Finding::Holds(key.clone())
        );
        assert_eq!(finding(&w, t0, keys::BATTERY), Finding::Unknown);
        assert_eq!(finding(&w, t0, keys::TEMPERATURE), Finding::Unknown);
    }

    #[test]
    fn retuned_limits_apply_to_what_was_heard_and_say_whether_they_changed() {
        let t0 = Instant::now();
        let mut w = watch(t0);
        w.heard("ultrasonic", t0);
        w.battery(6.2);
        assert!(matches!(finding(&w, t0, keys::BATTERY), Finding::Holds(_)));
        let longer = [("ultrasonic".to_string(), Duration::from_millis(200))];
        assert!(w.retune(&longer, 6.0, 0.1));
        assert!(
            !w.retune(&longer, 6.0, 0.1),
            "the same limits change nothing"
        );
        // 6.2 V is above the new 6.0 + 0.1 V; 100 ms of silence is within 200 ms.
        assert_eq!(finding(&w, t0, keys::BATTERY), Finding::Clear);
        let later = t0 + Duration::from_millis(100);
        assert_eq!(
            finding(&w, later, &keys::stale("ultrasonic")),
            Finding::Clear
        );
    }

    #[test]
    fn battery_releases_only_past_the_hysteresis() {
        let t0 = Instant::now();
        let mut w = watch(t0);
        w.battery(6.39);
        assert!(matches!(finding(&w, t0, keys::BATTERY), Finding::Holds(_)));
        for hovering in [6.4, 6.45, 6.59] {
            w.battery(hovering);
            assert_eq!(
                finding(&w, t0, keys::BATTERY),
                Finding::Unknown,
                "{hovering}"
            );
        }
        w.battery(6.61);
        assert_eq!(finding(&w, t0, keys::BATTERY), Finding::Clear);
        w.battery(f64::NAN);
        assert!(
            matches!(finding(&w, t0, keys::BATTERY), Finding::Holds(_)),
            "a broken reading is not a good battery"
        );
    }

    #[test]
    fn critical_host_temperature_holds_until_it_is_rated_lower() {
        let t0 = Instant::now();
        let mut w = watch(t0);
        let health = |temperature, c| bus::HostHealth {
            t_us: 0,
            levels: crate::core::levels::Levels {
                temperature,
                ..Default::default()
            },
            temperature_c: Some(c),
        };
        w.host(&health(Level::Warn, 75.0));
        assert_eq!(w.verdict(t0), None, "warn is reported, not acted on");
        w.host(&health(Level::Critical, 81.34));
        assert_eq!(
            w.verdict(t0).as_deref(),
            Some("host temperature critical (81.3 °C)")
        );
        w.host(&health(Level::Warn, 76.0));
        assert_eq!(finding(&w, t0, keys::TEMPERATURE), Finding::Clear);
    }
}
