//! Prometheus metrics: the process-wide recorder (the names of DESIGN.md's contract
//! are in [`crate::core::metrics`]), and the export of the actor tree's counters at each scrape.
//!
//! Most series go through the `metrics` facade into metrics-exporter-prometheus, whose
//! recorder this module installs: any module may set a gauge or record a histogram
//! with the `metrics` macros. The tree's per-actor figures are copied in at scrape
//! time from one [`TreeSnapshot`], so the actors pay nothing per message for them.
//! Two counters are fractional — `nevil_actor_cpu_seconds_total` and
//! `process_cpu_seconds_total` — which the facade's integer counters cannot carry;
//! [`Telemetry::render`] writes those two families itself, after the exporter's text.

mod process;

use std::fmt::Write as _;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use nevil_actors::{NodeSnapshot, TreeSnapshot};

pub use process::ProcessStats;

use crate::core::metrics::{
    ACTOR_CPU, ACTOR_MAILBOX, ACTOR_MEMORY, ACTOR_MESSAGES, ACTOR_PID, ACTOR_RESTARTS, BATTERY,
    BUILD_INFO, DEADMAN_TRIPS, ESTOP, LOOP_JITTER, PROCESS_CPU, PROCESS_RSS, QUOTA_ENFORCEMENTS,
    READY, SENSOR_READ_ERRORS,
};

/// Upper bounds of the control-loop jitter buckets, in seconds: 50 µs to 100 ms, dense
/// around the 1 ms alert threshold.
const JITTER_BUCKETS: [f64; 12] = [
    50e-6, 100e-6, 250e-6, 500e-6, 750e-6, 1e-3, 2e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3,
];

/// The process's metrics: the exporter's handle plus the tree export.
#[derive(Clone)]
pub struct Telemetry {
    handle: PrometheusHandle,
}

/// Why the metrics recorder could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The exporter refused its configuration.
    #[error("metrics exporter: {0}")]
    Build(#[from] metrics_exporter_prometheus::BuildError),
    /// Another recorder was installed first.
    #[error("metrics recorder already installed")]
    Installed,
}

impl Telemetry {
    /// Builds the recorder without installing it: for tests, which pass it to
    /// `metrics::with_local_recorder`.
    pub fn recorder() -> Result<metrics_exporter_prometheus::PrometheusRecorder, TelemetryError> {
        Ok(PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(LOOP_JITTER.to_string()), &JITTER_BUCKETS)?
            .build_recorder())
    }

    /// Installs the process-wide recorder and describes every metric of the contract.
    /// Call once, before anything records a metric.
    ///
    /// # Errors
    ///
    /// [`TelemetryError`] if the exporter rejects its buckets or a recorder exists.
    pub fn install() -> Result<Self, TelemetryError> {
        let recorder = Self::recorder()?;
        let telemetry = Self::from_handle(recorder.handle());
        metrics::set_global_recorder(recorder).map_err(|_| TelemetryError::Installed)?;
        describe();
        Ok(telemetry)
    }

    /// Wraps the handle of a recorder built by [`Telemetry::recorder`].
    pub fn from_handle(handle: PrometheusHandle) -> Self {
        Self { handle }
    }

    /// The exposition text: the tree's figures from `tree` and the process's from
    /// `process` are copied into the recorder, then everything is rendered.
    pub fn render(&self, tree: &TreeSnapshot, process: &ProcessStats) -> String {
        export_tree(tree);
        metrics::gauge!(PROCESS_RSS).set(process.resident_bytes as f64);
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        // Histograms are drained into their buckets here; without a scrape the raw
        // samples would pile up, so the server also runs this on a timer.
        self.handle.run_upkeep();
        let mut out = self.handle.render();
        write_float_counters(&mut out, tree, process);
        out
    }

    /// Folds recorded histogram samples into their buckets (bounded memory between
    /// scrapes).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Gives every metric of the contract its help text (promtool requires one).
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(ACTOR_MESSAGES, "Messages the actor has handled.");
    describe_counter!(ACTOR_RESTARTS, "Times the actor's supervisor restarted it.");
    describe_gauge!(
        ACTOR_MAILBOX,
        "Messages sent to the actor and not yet handled."
    );
    describe_gauge!(
        ACTOR_MEMORY,
        Unit::Bytes,
        "Heap the actor's current incarnation allocated and still holds."
    );
    describe_counter!(
        QUOTA_ENFORCEMENTS,
        "Quota enforcement actions taken on the actor by its supervisor."
    );
    describe_histogram!(
        LOOP_JITTER,
        Unit::Seconds,
        "How late each control-loop tick ran against its schedule."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version label names the build.");
    describe_gauge!(
        READY,
        "1 while the robot is ready (every permanent actor running, no e-stop)."
    );
    describe_gauge!(BATTERY, "Battery voltage.");
    describe_gauge!(ESTOP, "1 while the emergency stop is engaged.");
    describe_counter!(
        DEADMAN_TRIPS,
        "Times the dead-man zeroed the motors by itself (no command, no safety heartbeat, or e-stop)."
    );
    describe_counter!(
        SENSOR_READ_ERRORS,
        "Sensor reads that failed; the driver published nothing for them."
    );
    describe_gauge!(PROCESS_RSS, Unit::Bytes, "Resident memory size in bytes.");
    describe_gauge!(
        crate::core::metrics::CONFIG_GENERATION,
        "The config generation in force: 1 at start, one more per reload or rollback."
    );
    describe_counter!(
        crate::core::metrics::RECORDER_WRITE_ERRORS,
        "Failed flight-recorder writes; the first one turns recording off for the run."
    );
    describe_counter!(
        crate::core::metrics::RECORDER_DROPPED,
        "Bus messages the flight recorder dropped because its writer thread fell behind."
    );
    describe_gauge!(
        crate::core::metrics::RECORDER_RECORDING,
        "1 while the flight recorder writes its file, else 0."
    );
    describe_gauge!(
        ACTOR_PID,
        "The OS process an actor of a process-placed group runs in."
    );
    describe_counter!(
        crate::core::metrics::BRIDGE_MESSAGES,
        "Bus messages that crossed the bridge between processes, by topic and direction."
    );
    describe_counter!(
        crate::core::metrics::BRIDGE_REJECTED,
        "Bridge frames refused on arrival: another schema version, or undecodable."
    );
    describe_counter!(
        crate::core::metrics::BRIDGE_DROPPED,
        "Bus messages a bridge export dropped because its hand-off queue was full."
    );
    describe_counter!(
        crate::core::metrics::BRIDGE_LOST,
        "Bus messages a bridge import never received (gaps in the sequence numbers)."
    );
}

/// Copies every actor's figures into the recorder.
fn export_tree(tree: &TreeSnapshot) {
    for node in tree.root.walk() {
        export_node(node);
    }
}

fn export_node(node: &NodeSnapshot) {
    let path = node.path.as_str().to_string();
    metrics::counter!(ACTOR_RESTARTS, "path" => path.clone()).absolute(node.restarts);
    metrics::counter!(ACTOR_MESSAGES, "path" => path.clone()).absolute(node.messages_handled);
    metrics::gauge!(ACTOR_MAILBOX, "path" => path.clone()).set(node.mailbox_depth as f64);
    metrics::gauge!(ACTOR_MEMORY, "path" => path.clone()).set(node.memory_bytes as f64);
    // Where it runs, for the actors of a process-placed group (the others run in this
    // process: `process_*`).
    if node.placement != "in_process" {
        let isolation = node.isolation.clone().unwrap_or_default();
        metrics::gauge!(ACTOR_PID, "path" => path.clone(), "placement" => node.placement.clone(), "isolation" => isolation)
            .set(f64::from(node.pid));
    }
    if let Some(quota) = &node.quota {
        for (action, n) in &quota.enforcements_by_action {
            metrics::counter!(QUOTA_ENFORCEMENTS, "path" => path.clone(), "action" => action.clone())
                .absolute(*n);
        }
    }
}

/// Writes the two fractional counters in the exposition format.
fn write_float_counters(out: &mut String, tree: &TreeSnapshot, process: &ProcessStats) {
    let _ = writeln!(
        out,
        "# HELP {ACTOR_CPU} CPU time spent in the actor's handlers.\n# TYPE {ACTOR_CPU} counter"
    );
    for node in tree.root.walk() {
        let _ = writeln!(
            out,
            "{ACTOR_CPU}{{path=\"{}\"}} {}",
            escape_label(node.path.as_str()),
            node.cpu_seconds
        );
    }
    let _ = writeln!(
        out,
        "\n# HELP {PROCESS_CPU} Total user and system CPU time spent in seconds.\n\
         # TYPE {PROCESS_CPU} counter\n{PROCESS_CPU} {}",
        process.cpu_seconds
    );
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nevil_actors::{quota::QuotaStatus, ActorPath, ChildKind, QuotaSnapshot};

    fn tree() -> TreeSnapshot {
        let mut root = NodeSnapshot::new(ActorPath::root("root"), ChildKind::Supervisor);
        let mut worker = NodeSnapshot::new(root.path.child("spinner"), ChildKind::Worker);
        worker.restarts = 3;
        worker.messages_handled = 42;
        worker.cpu_seconds = 0.25;
        worker.quota = Some(QuotaSnapshot {
            group: "heavy".into(),
            state: QuotaStatus::Ok.as_str().into(),
            enforcements_total: 2,
            history: Vec::new(),
            enforcements_by_action: [("throttle", 2), ("warn", 0)]
                .into_iter()
                .map(|(a, n)| (a.to_string(), n))
                .collect(),
            usage: None,
            limits: Default::default(),
        });
        root.children.push(worker);
        TreeSnapshot {
            pid: 1,
            uptime_s: 1.0,
            root,
        }
    }

    fn render(tree: &TreeSnapshot) -> String {
        let recorder = Telemetry::recorder().unwrap();
        let telemetry = Telemetry::from_handle(recorder.handle());
        metrics::with_local_recorder(&recorder, || {
            describe();
            metrics::histogram!(LOOP_JITTER).record(0.0003);
            let process = ProcessStats {
                cpu_seconds: 1.5,
                resident_bytes: 4096,
            };
            telemetry.render(tree, &process)
        })
    }

    #[test]
    fn renders_the_contract_names_from_the_tree() {
        let text = render(&tree());
        for line in [
            "nevil_actor_restarts_total{path=\"root/spinner\"} 3",
            "nevil_actor_messages_total{path=\"root/spinner\"} 42",
            "nevil_actor_mailbox_depth{path=\"root/spinner\"} 0",
            "nevil_actor_memory_bytes{path=\"root/spinner\"} 0",
            "nevil_actor_cpu_seconds_total{path=\"root/spinner\"} 0.25",
            "nevil_quota_enforcements_total{path=\"root/spinner\",action=\"throttle\"} 2",
            "nevil_build_info{version=\"",
            "process_cpu_seconds_total 1.5",
            "process_resident_memory_bytes 4096",
            "nevil_control_loop_jitter_seconds_bucket{le=\"0.0005\"} 1",
            "# TYPE nevil_control_loop_jitter_seconds histogram",
            "# HELP nevil_actor_restarts_total ",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn every_family_has_help_and_type() {
        let text = render(&tree());
        let families: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert!(families.len() >= 9, "{families:?}");
        for family in families {
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{family} has no help"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("a\nb"), "a\\nb");
    }
}
