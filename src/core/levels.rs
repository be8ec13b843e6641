//! Threshold evaluation for the host's resources: the pure part of the system monitor.
//!
//! Each watched resource has a [`Level`] (`ok`, `warn`, `critical`) and [`Thresholds`]
//! (`warn < critical`, and a hysteresis band below each). A reading raises the level as
//! soon as it reaches a threshold, and lowers it only once it is below that threshold
//! *minus the hysteresis*: a value hovering at a threshold changes the level once, not at
//! every sample (seed 003's "cooldown, prevent alert fatigue"). A reading that is not a
//! number, or missing, leaves the level as it is: a broken meter neither raises nor
//! clears an alarm.
//!
//! [`Levels::assess`] takes one sample of readings and returns each change as a
//! [`LevelChange`], the event the monitor logs, publishes and acts on.

use serde::Serialize;

use nevil_actors::quota::{Cause, Resource};
use nevil_actors::PressureLevel;

/// A resource of the host that the system monitor watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HostResource {
    /// Share of all CPUs busy, 0–1.
    Cpu,
    /// Share of RAM in use (total − available), 0–1.
    Memory,
    /// The hottest temperature sensor, in °C.
    Temperature,
    /// Share of the watched filesystem that is used, 0–1.
    Disk,
}

impl HostResource {
    /// Every resource, in the order they are reported.
    pub const ALL: [Self; 4] = [Self::Cpu, Self::Memory, Self::Temperature, Self::Disk];

    /// The snake_case name, as in config keys and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Temperature => "temperature",
            Self::Disk => "disk",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How close a resource is to running out (or, for temperature, to overheating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Below the warn threshold.
    #[default]
    Ok,
    /// At or above warn.
    Warn,
    /// At or above critical.
    Critical,
}

impl Level {
    /// The snake_case name: `ok`, `warn`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Critical => "critical",
        }
    }

    /// The value of the `nevil_host_pressure_level` gauge: 0 ok, 1 warn, 2 critical.
    pub fn gauge(self) -> f64 {
        f64::from(self as u8)
    }
}

/// The thresholds of one resource, in its unit (a ratio, or °C).
///
/// Valid when `0 < warn < critical` and `0 <= hysteresis < warn` (checked with the
/// config, see `crate::config::monitor`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    /// Warn at or above this.
    pub warn: f64,
    /// Critical at or above this.
    pub critical: f64,
    /// A level is left only below its threshold minus this.
    pub hysteresis: f64,
}

impl Thresholds {
    /// The level `value` puts a resource in, coming from `level`, and the threshold it
    /// crossed; `None` when the level stays (including for a NaN reading).
    ///
    /// # Examples
    ///
    /// ```
    /// use nevil::core::levels::{Level, Thresholds};
    /// let t = Thresholds { warn: 0.7, critical: 0.9, hysteresis: 0.05 };
    /// assert_eq!(t.next(Level::Ok, 0.92), Some((Level::Critical, 0.9)));
    /// assert_eq!(t.next(Level::Critical, 0.87), None); // within the band below 0.9
    /// assert_eq!(t.next(Level::Critical, 0.84), Some((Level::Warn, 0.85)));
    /// ```
    pub fn next(&self, level: Level, value: f64) -> Option<(Level, f64)> {
        if value.is_nan() {
            return None;
        }
        let reached = if value >= self.critical {
            Level::Critical
        } else if value >= self.warn {
            Level::Warn
        } else {
            Level::Ok
        };
        if reached > level {
            let threshold = if reached == Level::Critical {
                self.critical
            } else {
                self.warn
            };
            return Some((reached, threshold));
        }
        let (critical_clear, warn_clear) =
            (self.critical - self.hysteresis, self.warn - self.hysteresis);
        let held = if value >= critical_clear {
            Level::Critical
        } else if value >= warn_clear {
            Level::Warn
        } else {
            Level::Ok
        };
        let lowered = level.min(held);
        if lowered == level {
            return None;
        }
        let threshold = if lowered == Level::Warn {
            critical_clear
        } else {
            warn_clear
        };
        Some((lowered, threshold))
    }
}

/// The thresholds of every resource, by [`HostResource`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThresholdSet(pub [Thresholds; 4]);

impl ThresholdSet {
    /// The thresholds of `resource`.
    pub fn get(&self, resource: HostResource) -> Thresholds {
        self.0[resource.index()]
    }
}

/// One level change, as logged (one event), published and exported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LevelChange {
    /// The resource.
    pub resource: HostResource,
    /// The reading that changed it.
    pub value: f64,
    /// The threshold crossed (for a lower level, the threshold minus the hysteresis).
    pub threshold: f64,
    /// The level before.
    pub from: Level,
    /// The level now.
    pub to: Level,
}

/// The level of every resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Levels {
    /// CPU.
    pub cpu: Level,
    /// Memory.
    pub memory: Level,
    /// Temperature.
    pub temperature: Level,
    /// Disk.
    pub disk: Level,
}

impl Levels {
    /// The level of `resource`.
    pub fn get(&self, resource: HostResource) -> Level {
        match resource {
            HostResource::Cpu => self.cpu,
            HostResource::Memory => self.memory,
            HostResource::Temperature => self.temperature,
            HostResource::Disk => self.disk,
        }
    }

    fn set(&mut self, resource: HostResource, level: Level) {
        match resource {
            HostResource::Cpu => self.cpu = level,
            HostResource::Memory => self.memory = level,
            HostResource::Temperature => self.temperature = level,
            HostResource::Disk => self.disk = level,
        }
    }

    /// Takes one sample's `reading` of each resource (`None`: not measured) and returns
    /// the changes, in [`HostResource::ALL`] order.
    pub fn assess(
        &mut self,
        reading: impl Fn(HostResource) -> Option<f64>,
        thresholds: &ThresholdSet,
    ) -> Vec<LevelChange> {
        let mut changes = Vec::new();
        for resource in HostResource::ALL {
            let Some(value) = reading(resource) else {
                continue;
            };
            let from = self.get(resource);
            if let Some((to, threshold)) = thresholds.get(resource).next(from, value) {
                self.set(resource, to);
                changes.push(LevelChange {
                    resource,
                    value,
                    threshold,
                    from,
                    to,
                });
            }
        }
        changes
    }

    /// The pressure this puts on the actor tree's quotas: the worse of CPU and memory
    /// (warn → elevated, critical → critical). Temperature and disk are left out: an
    /// overheating host is the safety watchdog's business (it stops the robot), and
    /// tighter quotas do not free disk space.
    pub fn pressure(&self) -> PressureLevel {
        match self.cpu.max(self.memory) {
            Level::Ok => PressureLevel::Normal,
            Level::Warn => PressureLevel::Elevated,
            Level::Critical => PressureLevel::Critical,
        }
    }

    /// The host reading behind [`Levels::pressure`], for the records of what pressure
    /// made the supervisors do: of CPU and memory at the worse level, the reading nearer
    /// its critical threshold; `None` when that resource was not read this time (keep
    /// the last cause: a level outlives a missing reading).
    pub fn pressure_cause(
        &self,
        reading: impl Fn(HostResource) -> Option<f64>,
        thresholds: &ThresholdSet,
    ) -> Option<Cause> {
        let worst = self.cpu.max(self.memory);
        [
            (HostResource::Cpu, Resource::Cpu),
            (HostResource::Memory, Resource::Memory),
        ]
        .into_iter()
        .filter(|(host, _)| self.get(*host) == worst)
        .map(|(host, resource)| {
            let usage = reading(host)?;
            let limit = thresholds.get(host).critical;
            Some((
                usage / limit,
                Cause {
                    resource,
                    usage,
                    limit,
                },
            ))
        })
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, cause)| cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: Thresholds = Thresholds {
        warn: 0.70,
        critical: 0.90,
        hysteresis: 0.05,
    };

    fn walk(t: Thresholds, values: &[f64]) -> Vec<Level> {
        let mut level = Level::Ok;
        values
            .iter()
            .map(|&v| {
                if let Some((next, _)) = t.next(level, v) {
                    level = next;
                }
                level
            })
            .collect()
    }

    #[test]
    fn rises_at_each_threshold() {
        use Level::*;
        assert_eq!(
            walk(CPU, &[0.1, 0.69, 0.70, 0.89, 0.90, 1.0]),
            [Ok, Ok, Warn, Warn, Critical, Critical]
        );
        assert_eq!(
            CPU.next(Ok, 0.95),
            Some((Critical, 0.90)),
            "ok → critical at once"
        );
        assert_eq!(CPU.next(Ok, 0.75), Some((Warn, 0.70)));
    }

    #[test]
    fn a_value_hovering_at_a_threshold_does_not_flap() {
        let hovering = [0.91, 0.89, 0.90, 0.88, 0.91, 0.86, 0.90];
        let levels = walk(CPU, &hovering);
        assert!(levels.iter().all(|&l| l == Level::Critical), "{levels:?}");
        let hovering = [0.71, 0.69, 0.70, 0.66, 0.70];
        assert!(walk(CPU, &hovering).iter().all(|&l| l == Level::Warn));
    }

    #[test]
    fn falls_only_below_the_hysteresis_band() {
        use Level::*;
        assert_eq!(CPU.next(Critical, 0.86), None);
        assert_eq!(CPU.next(Critical, 0.849), Some((Warn, CPU.critical - 0.05)));
        assert_eq!(CPU.next(Warn, 0.66), None);
        assert_eq!(CPU.next(Warn, 0.64), Some((Ok, CPU.warn - 0.05)));
        // A sudden drop goes straight to ok, naming the lower threshold.
        assert_eq!(CPU.next(Critical, 0.1), Some((Ok, CPU.warn - 0.05)));
    }

    #[test]
    fn a_broken_reading_changes_nothing() {
        assert_eq!(CPU.next(Level::Critical, f64::NAN), None);
        assert_eq!(CPU.next(Level::Ok, f64::NAN), None);
    }

    fn set() -> ThresholdSet {
        let ratio = |warn, critical| Thresholds {
            warn,
            critical,
            hysteresis: 0.02,
        };
        ThresholdSet([
            CPU,
            ratio(0.80, 0.95),
            Thresholds {
                warn: 70.0,
                critical: 80.0,
                hysteresis: 3.0,
            },
            ratio(0.85, 0.95),
        ])
    }

    #[test]
    fn assess_reports_each_change_once_and_skips_missing_readings() {
        let mut levels = Levels::default();
        let hot = |r| match r {
            HostResource::Cpu => Some(0.95),
            HostResource::Temperature => Some(81.0),
            HostResource::Memory => Some(0.5),
            HostResource::Disk => None,
        };
        let changes = levels.assess(hot, &set());
        assert_eq!(
            changes,
            [
                LevelChange {
                    resource: HostResource::Cpu,
                    value: 0.95,
                    threshold: 0.90,
                    from: Level::Ok,
                    to: Level::Critical,
                },
                LevelChange {
                    resource: HostResource::Temperature,
                    value: 81.0,
                    threshold: 80.0,
                    from: Level::Ok,
                    to: Level::Critical,
                },
            ]
        );
        assert!(levels.assess(hot, &set()).is_empty(), "no change, no event");
        let cooler = |r| (r == HostResource::Temperature).then_some(78.0);
        assert!(levels.assess(cooler, &set()).is_empty(), "within the band");
        let cool = |r| (r == HostResource::Temperature).then_some(60.0);
        let changes = levels.assess(cool, &set());
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].from, changes[0].to),
            (Level::Critical, Level::Ok)
        );
        assert_eq!(
            levels.cpu,
            Level::Critical,
            "a missing reading keeps the level"
        );
    }

    #[test]
    fn pressure_follows_the_worse_of_cpu_and_memory() {
        let mut l = Levels::default();
        assert_eq!(l.pressure(), PressureLevel::Normal);
        l.temperature = Level::Critical;
        l.disk = Level::Critical;
        assert_eq!(l.pressure(), PressureLevel::Normal);
        l.memory = Level::Warn;
        assert_eq!(l.pressure(), PressureLevel::Elevated);
        l.cpu = Level::Critical;
        assert_eq!(l.pressure(), PressureLevel::Critical);
    }

    #[test]
    fn the_pressure_cause_is_the_worse_of_cpu_and_memory() {
        let set = set();
        let mut levels = Levels::default();
        let reading = |cpu: f64, mem: f64| {
            move |r: HostResource| match r {
                HostResource::Cpu => Some(cpu),
                HostResource::Memory => Some(mem),
                _ => None,
            }
        };
        levels.assess(reading(0.97, 0.5), &set);
        let cause = levels.pressure_cause(reading(0.97, 0.5), &set).unwrap();
        assert_eq!(cause.resource, Resource::Cpu);
        assert_eq!(
            (cause.usage, cause.limit),
            (0.97, set.get(HostResource::Cpu).critical)
        );
        // Both ok: the one nearer its critical threshold.
        let levels = Levels::default();
        let cause = levels.pressure_cause(reading(0.1, 0.9), &set).unwrap();
        assert_eq!(cause.resource, Resource::Memory);
        assert!(levels.pressure_cause(|_| None, &set).is_none());
        // Critical CPU with no CPU reading this time: no cause, not memory's.
        let mut levels = Levels::default();
        levels.assess(reading(0.97, 0.1), &set);
        let no_cpu = |r: HostResource| (r == HostResource::Memory).then_some(0.1);
        assert!(levels.pressure_cause(no_cpu, &set).is_none());
    }
}
