//! The names of the metrics in DESIGN.md's contract, which any layer may set through
//! the `metrics` macros; [`crate::services::telemetry`] installs the recorder that
//! exports them.

/// Messages an actor handled (per `path`).
pub const ACTOR_MESSAGES: &str = "nevil_actor_messages_total";
/// Restarts of an actor (per `path`).
pub const ACTOR_RESTARTS: &str = "nevil_actor_restarts_total";
/// Messages waiting for an actor (per `path`).
pub const ACTOR_MAILBOX: &str = "nevil_actor_mailbox_depth";
/// CPU time of an actor's handlers (per `path`).
pub const ACTOR_CPU: &str = "nevil_actor_cpu_seconds_total";
/// Memory an actor's current incarnation holds (per `path`).
pub const ACTOR_MEMORY: &str = "nevil_actor_memory_bytes";
/// The OS process an actor of a process-placed group runs in (per `path`, with its
/// `placement` and `isolation`).
pub const ACTOR_PID: &str = "nevil_actor_pid";
/// Quota enforcement actions (per `path` and `action`).
pub const QUOTA_ENFORCEMENTS: &str = "nevil_quota_enforcements_total";
/// How late the control loop's ticks ran (histogram).
pub const LOOP_JITTER: &str = "nevil_control_loop_jitter_seconds";
/// Always 1, labelled with the build's `version`.
pub const BUILD_INFO: &str = "nevil_build_info";
/// 1 while `/health/ready` answers 200, else 0.
pub const READY: &str = "nevil_ready";
/// The battery's voltage.
pub const BATTERY: &str = "nevil_battery_volts";
/// 1 while the emergency stop is engaged.
pub const ESTOP: &str = "nevil_estop_engaged";
/// Times the dead-man at the motors zeroed them by itself.
pub const DEADMAN_TRIPS: &str = "nevil_deadman_trips_total";
/// Failed reads of a sensor driver (per `sensor`: `ultrasonic`, `grayscale`, `battery`).
pub const SENSOR_READ_ERRORS: &str = "nevil_sensor_read_errors_total";
/// The config generation in force: 1 at start, one more per reload or rollback.
pub const CONFIG_GENERATION: &str = "nevil_config_generation";
/// Lines written to the audit trail.
pub const AUDIT_ENTRIES: &str = "nevil_audit_entries_total";
/// Audit entries lost because the trail's writer fell behind.
pub const AUDIT_LOST: &str = "nevil_audit_lost_total";
/// 1 while the audit trail is written, 0 once a write error disabled it.
pub const AUDIT_ENABLED: &str = "nevil_audit_enabled";
/// Failed writes that turned the flight recorder off for the run (at most 1 per run).
pub const RECORDER_WRITE_ERRORS: &str = "nevil_recorder_write_errors_total";
/// Bus messages the flight recorder dropped because its writer thread fell behind.
pub const RECORDER_DROPPED: &str = "nevil_recorder_records_dropped_total";
/// 1 while the flight recorder has a file open and writes to it, else 0.
pub const RECORDER_RECORDING: &str = "nevil_recorder_recording";
/// Messages that crossed the bus bridge (per `topic` and `direction`: `export`, `import`).
pub const BRIDGE_MESSAGES: &str = "nevil_bridge_messages_total";
/// Bridge frames refused on arrival (per `topic` and `reason`: `schema`, `decode`).
pub const BRIDGE_REJECTED: &str = "nevil_bridge_rejected_total";
/// Messages an export dropped because its hand-off queue was full (per `topic`).
pub const BRIDGE_DROPPED: &str = "nevil_bridge_dropped_total";
/// Messages an import never received: gaps in the export's sequence numbers (per `topic`).
pub const BRIDGE_LOST: &str = "nevil_bridge_lost_total";
/// Process CPU time (user + system).
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
/// Process resident memory.
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";

/// Every metric a test's `DebuggingRecorder` holds, as `name{label=value,…}` and its
/// value: one reading for the unit tests of any layer that sets metrics.
#[cfg(test)]
pub(crate) fn recorded(
    snapshotter: &metrics_util::debugging::Snapshotter,
) -> Vec<(String, metrics_util::debugging::DebugValue)> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<_> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}
