//! The system monitor: samples the host (CPU, memory, temperature, disk) every period,
//! rates each resource `ok` / `warn` / `critical` against `[monitor]`'s thresholds, and
//! makes the rest of the robot act on it.
//!
//! At each sample, in this order:
//! 1. each level change is logged once, as one structured event (resource, value,
//!    threshold, level);
//! 2. the tree's [`Pressure`] is set from CPU and memory ([`Levels::pressure`]): while it
//!    is critical, the supervisors enforce tightened quotas;
//! 3. the gauges are set (`nevil_host_*`, see [`describe_metrics`]);
//! 4. the sample and levels become the [`HostStatus`] readers share (HTTP readiness, tree);
//! 5. a [`HostHealth`] is published on the bus: the safety watchdog engages the e-stop
//!    while the temperature is critical.
//!
//! A monitor that stops releases the pressure: with nobody watching the host, quotas fall
//! back to the groups' own. The levels outlive an incarnation, though (the next one reads
//! them back from the [`HostStatus`] and restores the pressure they imply before its
//! first sample), so a restart neither repeats nor loses a change.

pub mod sampler;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nevil_actors::{Pressure, PressureLevel};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;

use crate::bus::{Bus, HostHealth};
use crate::core::clock::Clock;
use crate::core::ticker::{self, Timer};

use crate::core::levels::{HostResource, Level, LevelChange, Levels, ThresholdSet};
pub use sampler::{DiskUsage, HostSample, HostSampler, MemoryUsage, SysinfoSampler, Temperature};

/// Makes the sampler of each incarnation.
pub type SamplerFactory = Arc<dyn Fn() -> Box<dyn HostSampler> + Send + Sync>;

/// The latest look at the host, as readers get it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostReport {
    /// Seconds since the run started.
    pub at_s: f64,
    /// What was read.
    pub sample: HostSample,
    /// The level of each resource.
    pub levels: Levels,
    /// The pressure put on the actor tree's quotas.
    pub pressure: PressureLevel,
}

/// The latest [`HostReport`], shared: clone it freely; the monitor writes, anyone reads.
#[derive(Debug, Clone, Default)]
pub struct HostStatus(Arc<Mutex<Option<HostReport>>>);

impl HostStatus {
    /// The latest report; `None` until the first sample.
    pub fn latest(&self) -> Option<HostReport> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, report: HostReport) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(report);
    }
}

/// Describes the `nevil_host_*` gauges to the installed metrics recorder (help text and
/// unit). The monitor calls it when it starts; call it again after installing a recorder
/// later than that.
pub fn describe_metrics() {
    use metrics::{describe_gauge, Unit};
    describe_gauge!(
        "nevil_host_cpu_ratio",
        "Share of all host CPUs busy over the last sample period, 0-1"
    );
    describe_gauge!(
        "nevil_host_memory_used_bytes",
        Unit::Bytes,
        "Host RAM in use (total - available)"
    );
    describe_gauge!("nevil_host_memory_total_bytes", Unit::Bytes, "Host RAM");
    describe_gauge!(
        "nevil_host_memory_used_ratio",
        "Share of host RAM in use (used / total), 0-1"
    );
    describe_gauge!(
        "nevil_host_temperature_celsius",
        "Host temperature by sensor, where the platform exposes it"
    );
    describe_gauge!(
        "nevil_host_disk_used_ratio",
        "Share of the watched filesystem used, by mount point, 0-1"
    );
    describe_gauge!(
        "nevil_host_pressure_level",
        "Host resource level: 0 ok, 1 warn, 2 critical"
    );
}

/// Sets the `nevil_host_*` gauges from `report`; a resource not measured is left unset.
pub fn export_metrics(report: &HostReport) {
    use metrics::gauge;
    let s = &report.sample;
    if let Some(cpu) = s.cpu_ratio {
        gauge!("nevil_host_cpu_ratio").set(cpu);
    }
    if let Some(m) = s.memory {
        gauge!("nevil_host_memory_used_bytes").set(m.used_bytes as f64);
        gauge!("nevil_host_memory_total_bytes").set(m.total_bytes as f64);
        if m.total_bytes > 0 {
            gauge!("nevil_host_memory_used_ratio").set(m.used_bytes as f64 / m.total_bytes as f64);
        }
    }
    for t in &s.temperatures {
        gauge!("nevil_host_temperature_celsius", "sensor" => t.sensor.clone()).set(t.celsius);
    }
    if let Some(d) = &s.disk {
        gauge!("nevil_host_disk_used_ratio", "mount" => d.mount.clone()).set(d.used_ratio());
    }
    for r in HostResource::ALL {
        if s.reading(r).is_some() {
            gauge!("nevil_host_pressure_level", "resource" => r.as_str())
                .set(report.levels.get(r).gauge());
        }
    }
}

fn log_change(c: &LevelChange) {
    let (resource, level, from) = (c.resource.as_str(), c.to.as_str(), c.from.as_str());
    let (value, threshold) = (c.value, c.threshold);
    match c.to {
        Level::Critical => {
            tracing::error!(
                resource,
                value,
                threshold,
                level,
                from,
                "host level changed"
            );
        }
        Level::Warn => {
            tracing::warn!(
                resource,
                value,
                threshold,
                level,
                from,
                "host level changed"
            );
        }
        Level::Ok => {
            tracing::info!(
                resource,
                value,
                threshold,
                level,
                from,
                "host level changed"
            );
        }
    }
}

/// Messages of the [`SystemMonitor`].
pub enum SystemMonitorMsg {
    /// Time to sample.
    Sample,
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// The system monitor actor.
#[derive(Clone)]
pub struct SystemMonitor {
    /// Time between samples.
    pub period: Duration,
    /// Thresholds by resource.
    pub thresholds: ThresholdSet,
    /// Makes each incarnation's sampler.
    pub sampler: SamplerFactory,
    /// The bus, for [`HostHealth`].
    pub bus: Bus,
    /// The run clock.
    pub clock: Clock,
    /// Where the latest report goes.
    pub status: HostStatus,
    /// The actor tree's pressure level.
    pub pressure: Pressure,
}

/// State of the [`SystemMonitor`].
pub struct SystemMonitorState {
    sampler: Box<dyn HostSampler>,
    levels: Levels,
}

impl SystemMonitor {
    fn sample(&self, state: &mut SystemMonitorState) {
        let sample = state.sampler.sample();
        for change in state.levels.assess(|r| sample.reading(r), &self.thresholds) {
            log_change(&change);
        }
        let pressure = state.levels.pressure();
        if let Some(cause) = state
            .levels
            .pressure_cause(|r| sample.reading(r), &self.thresholds)
        {
            self.pressure.set_cause(Some(cause));
        }
        let was = self.pressure.set(pressure);
        if was != pressure {
            tracing::warn!(from = %was, level = %pressure, "host pressure on quotas changed");
        }
        let t_us = self.clock.now_us();
        let report = HostReport {
            at_s: t_us as f64 / 1e6,
            levels: state.levels,
            pressure,
            sample,
        };
        export_metrics(&report);
        self.bus.host.publish(HostHealth {
            t_us,
            levels: report.levels,
            temperature_c: report.sample.reading(HostResource::Temperature),
        });
        self.status.set(report);
    }
}

impl Actor for SystemMonitor {
    type Msg = SystemMonitorMsg;
    type State = SystemMonitorState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<SystemMonitorMsg>,
        _: (),
    ) -> Result<SystemMonitorState, ActorProcessingErr> {
        describe_metrics();
        ticker::spawn(Timer::Tokio, "system_monitor", self.period, myself, |_| {
            SystemMonitorMsg::Sample
        })?;
        let levels = self.status.latest().map(|r| r.levels).unwrap_or_default();
        self.pressure.set(levels.pressure());
        Ok(SystemMonitorState {
            sampler: (self.sampler)(),
            levels,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<SystemMonitorMsg>,
        msg: SystemMonitorMsg,
        state: &mut SystemMonitorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SystemMonitorMsg::Sample => self.sample(state),
            SystemMonitorMsg::Noop => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<SystemMonitorMsg>,
        _: &mut SystemMonitorState,
    ) -> Result<(), ActorProcessingErr> {
        if self.pressure.set(PressureLevel::Normal) != PressureLevel::Normal {
            tracing::warn!("system monitor stopped: host pressure released");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    fn report() -> HostReport {
        HostReport {
            at_s: 1.0,
            sample: HostSample {
                cpu_ratio: Some(0.93),
                memory: Some(MemoryUsage {
                    used_bytes: 300,
                    total_bytes: 1000,
                }),
                temperatures: vec![Temperature {
                    sensor: "cpu_thermal temp1".into(),
                    celsius: 81.5,
                }],
                disk: Some(DiskUsage {
                    mount: "/".into(),
                    total_bytes: 100,
                    available_bytes: 25,
                }),
            },
            levels: Levels {
                cpu: Level::Critical,
                temperature: Level::Critical,
                ..Levels::default()
            },
            pressure: PressureLevel::Critical,
        }
    }

    /// A gauge as set: name, labels, value.
    type Set = (String, Vec<(String, String)>, f64);

    fn gauges(report: &HostReport) -> Vec<Set> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || export_metrics(report));
        let mut out: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels = key
                    .labels()
                    .map(|l| (l.key().to_string(), l.value().to_string()))
                    .collect();
                let DebugValue::Gauge(v) = value else {
                    panic!("not a gauge: {key:?}");
                };
                (key.name().to_string(), labels, v.into_inner())
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    #[test]
    fn every_gauge_is_set_from_the_report() {
        let l = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let expected = vec![
            ("nevil_host_cpu_ratio".to_string(), vec![], 0.93),
            ("nevil_host_disk_used_ratio".into(), l("mount", "/"), 0.75),
            ("nevil_host_memory_total_bytes".into(), vec![], 1000.0),
            ("nevil_host_memory_used_bytes".into(), vec![], 300.0),
            ("nevil_host_memory_used_ratio".into(), vec![], 0.3),
            (
                "nevil_host_pressure_level".into(),
                l("resource", "cpu"),
                2.0,
            ),
            (
                "nevil_host_pressure_level".into(),
                l("resource", "disk"),
                0.0,
            ),
            (
                "nevil_host_pressure_level".into(),
                l("resource", "memory"),
                0.0,
            ),
            (
                "nevil_host_pressure_level".into(),
                l("resource", "temperature"),
                2.0,
            ),
            (
                "nevil_host_temperature_celsius".into(),
                l("sensor", "cpu_thermal temp1"),
                81.5,
            ),
        ];
        assert_eq!(gauges(&report()), expected);
    }

    #[test]
    fn a_host_without_sensors_exports_no_temperature() {
        let mut r = report();
        r.sample.temperatures.clear();
        r.sample.cpu_ratio = None;
        let names: Vec<_> = gauges(&r)
            .into_iter()
            .map(|(n, l, _)| format!("{n}{l:?}"))
            .collect();
        assert!(
            !names.iter().any(|n| n.contains("temperature")),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n.contains("cpu")), "{names:?}");
    }
}
