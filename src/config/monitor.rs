//! `[monitor]`: the system monitor — how often it samples the host, the warn and critical
//! thresholds of each resource, and how host pressure tightens the actors' quotas.
//!
//! ```toml
//! [monitor]
//! period_s = 1.0                 # one sample per second
//! pressure_factor = 0.5          # quotas halved while host CPU or memory is critical
//! pressure_exempt = []           # quota groups never tightened
//! # disk_path = "/var/lib/nevil" # default: the recorder's directory, else "/"
//!
//! [monitor.cpu]                  # share of all CPUs busy
//! warn = 0.70
//! critical = 0.90
//! hysteresis = 0.05              # default: 5 % of warn
//! ```

use std::path::PathBuf;

use nevil_actors::Problems;
use serde::Deserialize;

use crate::core::levels::{HostResource, ThresholdSet, Thresholds};

/// `[monitor]`: the system monitor. Every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Seconds between two samples of the host (0.1–60; default 1.0). Example:
    /// `period_s = 2.0`.
    #[serde(default = "default_period_s")]
    pub period_s: f64,
    /// The filesystem to watch is the one holding this path (it need not exist yet).
    /// Default: the flight recorder's directory when it records, else `/`.
    #[serde(default)]
    pub disk_path: Option<PathBuf>,
    /// While host CPU or memory is critical, the CPU, memory and message-rate limits of
    /// every quota group not in `pressure_exempt` are multiplied by this, so runaway
    /// actors are dealt with sooner (0 < factor <= 1, 1 turns it off; default 0.5).
    #[serde(default = "default_pressure_factor")]
    pub pressure_factor: f64,
    /// Quota groups never tightened under pressure (each a built-in group or one defined
    /// under `[quotas.groups]`; default none). Example: `pressure_exempt = ["heavy"]`.
    #[serde(default)]
    pub pressure_exempt: Vec<String>,
    /// Share of all CPUs busy (0–1]: warn 0.70, critical 0.90 by default (seed 003).
    /// Critical CPU puts the tree under pressure.
    #[serde(default = "default_cpu")]
    pub cpu: ThresholdsConfig,
    /// Share of RAM in use (0–1]: warn 0.80, critical 0.95 by default (seed 003).
    /// Critical memory puts the tree under pressure.
    #[serde(default = "default_memory")]
    pub memory: ThresholdsConfig,
    /// The hottest temperature sensor in °C (1–150): warn 70, critical 80 by default
    /// (a Raspberry Pi throttles its CPU from 80–85 °C). Critical engages the e-stop.
    /// Hosts without sensors (most VMs) report no temperature.
    #[serde(default = "default_temperature")]
    pub temperature: ThresholdsConfig,
    /// Share of the watched filesystem used (0–1]: warn 0.85, critical 0.95 by default.
    #[serde(default = "default_disk")]
    pub disk: ThresholdsConfig,
}

/// `[monitor.RESOURCE]`: one resource's thresholds, in its unit.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsConfig {
    /// Warn at or above this.
    pub warn: f64,
    /// Critical at or above this; must be above `warn`.
    pub critical: f64,
    /// A level is left only once the reading is this far below its threshold, so a value
    /// hovering at a threshold does not flap (>= 0 and < warn; default 5 % of `warn`).
    pub hysteresis: Option<f64>,
}

impl ThresholdsConfig {
    const fn new(warn: f64, critical: f64) -> Self {
        Self {
            warn,
            critical,
            hysteresis: None,
        }
    }

    /// The thresholds, with the default hysteresis filled in.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            warn: self.warn,
            critical: self.critical,
            hysteresis: self.hysteresis.unwrap_or(self.warn * 0.05),
        }
    }

    fn check(&self, key: &str, lo: f64, hi: f64, p: &mut Problems) {
        let in_range = |v: f64| v > lo && v <= hi;
        for (field, value) in [("warn", self.warn), ("critical", self.critical)] {
            if !in_range(value) {
                p.push(
                    format!("{key}.{field}"),
                    format!("must be > {lo} and <= {hi} (is {value})"),
                );
            }
        }
        if in_range(self.warn) && in_range(self.critical) && self.critical <= self.warn {
            p.push(
                format!("{key}.critical"),
                format!(
                    "must be > warn (is {}, warn is {})",
                    self.critical, self.warn
                ),
            );
        }
        if let Some(h) = self.hysteresis {
            if !(h >= 0.0 && h < self.warn) {
                p.push(
                    format!("{key}.hysteresis"),
                    format!("must be >= 0 and < warn (is {h}, warn is {})", self.warn),
                );
            }
        }
    }
}

fn default_period_s() -> f64 {
    1.0
}

fn default_pressure_factor() -> f64 {
    0.5
}

fn default_cpu() -> ThresholdsConfig {
    ThresholdsConfig::new(0.70, 0.90)
}

fn default_memory() -> ThresholdsConfig {
    ThresholdsConfig::new(0.80, 0.95)
}

fn default_temperature() -> ThresholdsConfig {
    ThresholdsConfig::new(70.0, 80.0)
}

fn default_disk() -> ThresholdsConfig {
    ThresholdsConfig::new(0.85, 0.95)
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            period_s: default_period_s(),
            disk_path: None,
            pressure_factor: default_pressure_factor(),
            pressure_exempt: Vec::new(),
            cpu: default_cpu(),
            memory: default_memory(),
            temperature: default_temperature(),
            disk: default_disk(),
        }
    }
}

impl MonitorConfig {
    /// The sampling period.
    pub fn period(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.period_s)
    }

    /// The configured thresholds of `resource`.
    pub fn resource(&self, resource: HostResource) -> &ThresholdsConfig {
        match resource {
            HostResource::Cpu => &self.cpu,
            HostResource::Memory => &self.memory,
            HostResource::Temperature => &self.temperature,
            HostResource::Disk => &self.disk,
        }
    }

    /// Every resource's thresholds, hysteresis defaults filled in.
    pub fn thresholds(&self) -> ThresholdSet {
        ThresholdSet(HostResource::ALL.map(|r| self.resource(r).thresholds()))
    }

    /// Records every problem of this section; `known_group` says whether a quota group
    /// of that name exists.
    pub fn check(&self, key: &str, known_group: impl Fn(&str) -> bool, p: &mut Problems) {
        p.range(format!("{key}.period_s"), self.period_s, 0.1, 60.0);
        if !(self.pressure_factor > 0.0 && self.pressure_factor <= 1.0) {
            p.push(
                format!("{key}.pressure_factor"),
                format!("must be > 0 and <= 1 (is {})", self.pressure_factor),
            );
        }
        for (i, group) in self.pressure_exempt.iter().enumerate() {
            if !known_group(group) {
                p.push(
                    format!("{key}.pressure_exempt[{i}]"),
                    format!("unknown quota group {group:?}"),
                );
            }
        }
        for resource in HostResource::ALL {
            let (lo, hi) = match resource {
                HostResource::Temperature => (0.0, 150.0),
                _ => (0.0, 1.0),
            };
            let sub = format!("{key}.{}", resource.as_str());
            self.resource(resource).check(&sub, lo, hi, p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(c: &MonitorConfig) -> Vec<String> {
        let mut p = Problems::default();
        c.check("monitor", |g| g == "standard", &mut p);
        p.0.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn defaults_are_valid_and_follow_seed_003() {
        let c = MonitorConfig::default();
        assert!(problems(&c).is_empty(), "{:?}", problems(&c));
        let t = c.thresholds();
        assert_eq!(t.get(HostResource::Cpu).warn, 0.70);
        assert_eq!(t.get(HostResource::Cpu).critical, 0.90);
        assert_eq!(t.get(HostResource::Memory).warn, 0.80);
        assert_eq!(t.get(HostResource::Memory).critical, 0.95);
        assert!((t.get(HostResource::Temperature).hysteresis - 3.5).abs() < 1e-9);
    }

    #[test]
    fn each_problem_is_named_by_key() {
        let c = MonitorConfig {
            period_s: 0.0,
            pressure_factor: 1.5,
            pressure_exempt: vec!["standard".into(), "vip".into()],
            cpu: ThresholdsConfig::new(0.9, 0.7),
            memory: ThresholdsConfig {
                hysteresis: Some(0.9),
                ..ThresholdsConfig::new(0.8, 0.95)
            },
            temperature: ThresholdsConfig::new(70.0, 200.0),
            disk: ThresholdsConfig::new(f64::NAN, 0.95),
            ..MonitorConfig::default()
        };
        let got = problems(&c);
        let keys: Vec<_> = got.iter().map(|p| p.split(':').next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "monitor.period_s",
                "monitor.pressure_factor",
                "monitor.pressure_exempt[1]",
                "monitor.cpu.critical",
                "monitor.memory.hysteresis",
                "monitor.temperature.critical",
                "monitor.disk.warn",
            ],
            "{got:?}"
        );
        assert!(
            got[3].ends_with("must be > warn (is 0.7, warn is 0.9)"),
            "{got:?}"
        );
    }
}
