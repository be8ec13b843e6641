//! The robot's configuration: TOML mirrored by serde structs, checked as a whole before
//! anything starts.
//!
//! Loading has two stages. Parsing ([`Config::parse`]) rejects unknown keys and wrong
//! types, naming the key; checking ([`Config::check`]) then collects *every* problem —
//! out-of-range values and references between sections (a sensor the watchdog watches
//! must be a configured driver) — each with its key path, e.g.
//! `drivers.ultrasonic.rate_hz: must be between 1 and 200 (is 0)`.
//!
//! Without `--config` the robot runs [`DEFAULT_TOML`]: `config/default.toml`, the
//! simulated robot, embedded in the binary.

pub mod monitor;
pub mod network;
pub mod placement;
pub mod reload;

use std::path::Path;
use std::time::Duration;

use nevil_actors::{Problem, Problems};
use serde::Deserialize;

pub use monitor::MonitorConfig;
pub use network::{TlsConfig, ZenohConfig};
pub use placement::{Fallback, NodePlacement, Placement, PlacementConfig};
pub use reload::{LogConfig, ReloadConfig};

/// `config/default.toml`, embedded: the simulated robot.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Which hardware to drive.
    pub robot: RobotConfig,
    /// Sensor and actuator drivers, by name.
    pub drivers: DriversConfig,
    /// The motion controller (the control loop).
    pub motion: MotionConfig,
    /// The behaviour that steers the car.
    pub behaviour: BehaviourConfig,
    /// The safety watchdog.
    pub safety: SafetyConfig,
    /// The publish/subscribe bus between actors.
    #[serde(default)]
    pub bus: BusConfig,
    /// Restart policy of the supervisors.
    #[serde(default)]
    pub supervision: SupervisionConfig,
    /// The flight recorder.
    #[serde(default)]
    pub recorder: RecorderConfig,
    /// The audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
    /// The async runtime.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Per-actor resource quotas, enforced by the supervisors.
    #[serde(default)]
    pub quotas: nevil_actors::quota::QuotaConfig,
    /// The operations endpoint: `/metrics`, `/tree`, `/health/*`.
    #[serde(default)]
    pub http: HttpConfig,
    /// The system monitor: host thresholds and host pressure on quotas.
    #[serde(default)]
    pub monitor: MonitorConfig,
    /// The simulated world (backend `sim`).
    #[serde(default)]
    pub sim: crate::hw::sim::SimConfig,
    /// The real robot's HAT (backend `picarx`).
    #[serde(default)]
    pub picarx: crate::hw::picarx::PicarxConfig,
    /// Live reload on SIGHUP: the probation window ([`reload`]).
    #[serde(default)]
    pub reload: ReloadConfig,
    /// The log filter, which a reload may change.
    #[serde(default)]
    pub log: LogConfig,
    /// Where each supervisor group runs ([`placement`]).
    #[serde(default)]
    pub placement: PlacementConfig,
    /// The network session to nodes and fleet views ([`network`]).
    #[serde(default)]
    pub zenoh: ZenohConfig,
}

/// `[robot]`: which hardware backend runs the robot, and its name in a fleet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotConfig {
    /// `"sim"` (default: the built-in simulated world) or `"picarx"` (the real robot).
    pub backend: Backend,
    /// The robot's id, its key prefix `nevil/<id>/…` on the network (default: the
    /// host's name).
    #[serde(default = "network::default_robot_id")]
    pub id: String,
}

/// The hardware backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The deterministic simulated world.
    Sim,
    /// The PiCar-X on a Robot HAT, through rppal.
    Picarx,
}

/// `[drivers.*]`: one table per sensor driver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriversConfig {
    /// The ultrasonic ranger.
    pub ultrasonic: SensorConfig,
    /// The grayscale line sensor.
    pub grayscale: SensorConfig,
    /// The battery monitor.
    pub battery: SensorConfig,
}

impl DriversConfig {
    /// The sensor drivers by name, in start order.
    pub fn sensors(&self) -> [(&'static str, &SensorConfig); 3] {
        [
            ("ultrasonic", &self.ultrasonic),
            ("grayscale", &self.grayscale),
            ("battery", &self.battery),
        ]
    }
}

/// A sensor driver's sampling.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorConfig {
    /// Samples per second (1–200). Example: `rate_hz = 20`.
    pub rate_hz: f64,
}

impl SensorConfig {
    /// The sampling period.
    pub fn period(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(1.0 / self.rate_hz)
    }
}

/// `[motion]`: the motion controller's loop and limits.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MotionConfig {
    /// Control loop rate in Hz (10–500; default 50).
    pub loop_hz: f64,
    /// Largest motor power the controller commands, in percent (1–100).
    pub max_power: f64,
    /// Largest change of power per second, in percent per second (ramping; > 0 and
    /// <= 10000, so a ramp always limits: 300 takes 0.2 s from 0 to 60 %).
    pub ramp_pct_per_s: f64,
    /// Largest steering angle in degrees (1–30).
    pub max_steer_deg: f64,
}

impl MotionConfig {
    /// The control loop period.
    pub fn period(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(1.0 / self.loop_hz)
    }
}

/// `[behaviour]`: what drives the car.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BehaviourConfig {
    /// `"obstacle_avoidance"` or `"line_following"`.
    pub mode: Mode,
    /// Forward power when the way is clear, in percent (0–100, at most
    /// `motion.max_power`).
    pub cruise_power: f64,
    /// Obstacle avoidance turns away when the ranger reads less than this, in metres
    /// (0.05–3).
    pub avoid_distance_m: f64,
    /// Obstacle avoidance backs up when the ranger reads less than this, in metres
    /// (0.02–3, below `avoid_distance_m`).
    pub stop_distance_m: f64,
    /// Line following: raw grayscale values below this are the line (0–4095).
    pub line_threshold: u16,
}

/// Which behaviour steers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Drive around, turning away from obstacles seen by the ranger.
    ObstacleAvoidance,
    /// Follow the line seen by the grayscale sensors.
    LineFollowing,
}

impl Mode {
    /// The name as written in `behaviour.mode`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ObstacleAvoidance => "obstacle_avoidance",
            Self::LineFollowing => "line_following",
        }
    }

    /// The sensors this behaviour drives by; `safety.watch` must include each, so the
    /// motors stop when one of them falls silent. Line following is guarded by obstacle
    /// avoidance, so it uses the ranger too.
    pub fn sensors(self) -> &'static [&'static str] {
        match self {
            Self::ObstacleAvoidance => &["ultrasonic"],
            Self::LineFollowing => &["grayscale", "ultrasonic"],
        }
    }
}

/// `[safety]`: the watchdog.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// Sensors whose silence stops the motors; each a `[drivers.*]` name, listed once.
    /// It must include every sensor the behaviour uses (see [`Mode::sensors`]):
    /// `ultrasonic` for `obstacle_avoidance`; `grayscale` and `ultrasonic` for
    /// `line_following`; and `battery` always, without whose readings a low battery
    /// would go unseen. So `watch = []` is refused: it would turn the check off.
    pub watch: Vec<String>,
    /// A sensor is stale after this many of its sampling periods without a reading
    /// (1.0–10.0; default 1.5, so the motors stop within two periods).
    pub stale_periods: f64,
    /// Below this battery voltage the motors stop, in volts (3–20: a battery pack's
    /// range, e.g. 6.4 for a 2S Li-ion pack; 0 would turn the check off and is refused).
    pub battery_low_v: f64,
    /// The battery e-stop engages below `battery_low_v` and releases only above
    /// `battery_low_v + battery_hysteresis_v`, so a sagging pack hovering at the threshold
    /// does not start and stop the motors in turn. Volts, 0.0–2.0; default 0.2.
    #[serde(default = "default_battery_hysteresis_v")]
    pub battery_hysteresis_v: f64,
    /// How often the watchdog checks, in Hz (1–1000, and ≥ each watched sensor's rate).
    pub check_hz: f64,
}

fn default_battery_hysteresis_v() -> f64 {
    0.2
}

impl SafetyConfig {
    /// How often the watchdog checks (`1 / check_hz`).
    pub fn check_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.check_hz)
    }
}

/// `[bus]`: per-subscriber queues.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// Messages a subscriber may have waiting (1–4096; default 32). Past that, new
    /// messages to it are dropped and counted.
    pub queue: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        Self { queue: 32 }
    }
}

/// `[http]`: the operations endpoint (`/metrics`, `/tree`, `/health/live`,
/// `/health/ready`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to serve on (default `127.0.0.1:9464`; port 0 picks a free one, logged at
    /// start). `run --listen` overrides it.
    pub listen: String,
    /// Allow a `listen` address other than loopback (default false). The endpoint has
    /// no authentication: exposing it to the network must be a deliberate choice.
    pub allow_remote: bool,
    /// Connections served at once (1–1024; default 16); further ones wait in the
    /// kernel's backlog, so a flood of clients cannot take memory or CPU from the robot.
    pub max_connections: usize,
    /// Seconds a client has to send its request and receive the response (0.1–300;
    /// default 5); a slower client is disconnected. The observer's live stream
    /// (`/events`) is exempt once open; it is cut when it falls behind instead.
    pub timeout_s: f64,
    /// The observer page's controls (restart, suspend, resume an actor): offered only
    /// when this is set, and each request must carry it as `Authorization: Bearer
    /// <token>`. 16–256 visible ASCII characters. Unset (the default): read-only.
    pub control_token: Option<ControlToken>,
}

/// The secret that unlocks the observer's controls; never printed (its `Debug` hides
/// it) and compared in constant time.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ControlToken(String);

impl ControlToken {
    /// Whether `presented` is the token; takes the same time wherever they differ.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        let diff = a
            .iter()
            .zip(b)
            .fold(u8::from(a.len() != b.len()), |d, (x, y)| d | (x ^ y));
        diff == 0
    }

    fn check(&self, p: &mut Problems) {
        let n = self.0.chars().count();
        if !(16..=256).contains(&n) {
            p.push(
                "http.control_token",
                format!("must be 16 to 256 characters long (is {n})"),
            );
        } else if !self.0.chars().all(|c| c.is_ascii_graphic()) {
            p.push(
                "http.control_token",
                "must be visible ASCII characters only (no spaces or control characters)",
            );
        }
    }
}

impl std::fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlToken(<hidden>)")
    }
}

impl From<&str> for ControlToken {
    fn from(token: &str) -> Self {
        Self(token.to_string())
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".to_string(),
            allow_remote: false,
            max_connections: 16,
            timeout_s: 5.0,
            control_token: None,
        }
    }
}

impl HttpConfig {
    /// The address to bind: `listen`, or `cli` (`run --listen`) when given; an error
    /// names what is wrong, including a non-loopback address without `allow_remote`.
    pub fn address(&self, cli: Option<&str>) -> Result<std::net::SocketAddr, String> {
        let (text, origin) = match cli {
            Some(text) => (text, "--listen"),
            None => (self.listen.as_str(), "http.listen"),
        };
        self.parse_address(text)
            .map_err(|message| format!("{origin}: {message}"))
    }

    /// `text` as an address this config allows; what is wrong with it otherwise.
    fn parse_address(&self, text: &str) -> Result<std::net::SocketAddr, String> {
        let addr: std::net::SocketAddr = text
            .parse()
            .map_err(|_| format!("{text:?} is not an address like 127.0.0.1:9464"))?;
        if !addr.ip().is_loopback() && !self.allow_remote {
            return Err(format!(
                "{addr} is not a loopback address; the endpoint has no \
                 authentication, so serving it beyond this host needs \
                 `allow_remote = true` in the config's [http] section"
            ));
        }
        Ok(addr)
    }

    /// How long a client may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }

    fn check(&self, p: &mut Problems) {
        if let Err(message) = self.parse_address(&self.listen) {
            p.push("http.listen", message);
        }
        if !(1..=1024).contains(&self.max_connections) {
            p.push("http.max_connections", "must be between 1 and 1024");
        }
        p.range("http.timeout_s", self.timeout_s, 0.1, 300.0);
        if let Some(token) = &self.control_token {
            token.check(p);
        }
    }
}

/// `[supervision]`: restart intensity of every supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisionConfig {
    /// Restarts allowed within `period_s` (0–1000; default 5).
    pub max_restarts: u32,
    /// The intensity window in seconds (> 0 and <= 3600; default 10).
    pub period_s: f64,
    /// Delay before restarting a crashed child, in seconds (0–60; default 0: at once,
    /// as OTP does). Each further restart in a row doubles it up to `backoff_max_s`,
    /// ×0.8–1.2 jitter; a child that stays up for `backoff_max_s` starts over. On a
    /// robot with a flaky device this spaces out retries instead of spending the
    /// restart intensity in a burst.
    #[serde(default)]
    pub backoff_s: f64,
    /// Cap of the restart delay in seconds (≥ backoff_s, <= 3600; default 30).
    #[serde(default = "default_backoff_max_s")]
    pub backoff_max_s: f64,
}

fn default_backoff_max_s() -> f64 {
    30.0
}

impl SupervisionConfig {
    /// The restart backoff, if any.
    pub fn backoff(&self) -> Option<nevil_actors::Backoff> {
        (self.backoff_s > 0.0).then(|| {
            let max = Duration::from_secs_f64(self.backoff_max_s.max(self.backoff_s));
            nevil_actors::Backoff {
                base: Duration::from_secs_f64(self.backoff_s),
                max,
                reset_after: max,
            }
        })
    }
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            period_s: 10.0,
            backoff_s: 0.0,
            backoff_max_s: default_backoff_max_s(),
        }
    }
}

/// `[runtime]`: the async runtime the actors run on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Async worker threads (1–64; default 1). The robot's actors exchange ~500 small
    /// messages a second; on one worker they never wake another thread, which halves the
    /// idle CPU (measured: 0.7 % vs 1.4 % of a core with 2). Device I/O runs on the
    /// blocking pool and the control loop ticks from its own thread either way; more
    /// workers help when handlers are CPU-heavy. Example: `worker_threads = 2`.
    pub worker_threads: usize,
    /// Workers (by name) to run on a runtime of their own — a bulkhead — so that a
    /// CPU-heavy one cannot delay the control loop (default none). Example:
    /// `bulkhead = ["obstacle_avoidance", "line_follower"]`.
    #[serde(default)]
    pub bulkhead: Vec<String>,
    /// Worker threads of the bulkhead runtime (1–64; default 1).
    #[serde(default = "one")]
    pub bulkhead_threads: usize,
}

fn one() -> usize {
    1
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            worker_threads: 1,
            bulkhead: Vec::new(),
            bulkhead_threads: 1,
        }
    }
}

/// The robot's workers by name, as the tree starts them.
pub const WORKERS: [&str; 12] = [
    "tree_service",
    "system_monitor",
    "recorder",
    "ultrasonic",
    "grayscale",
    "battery",
    "motors",
    "steering",
    "motion",
    "obstacle_avoidance",
    "line_follower",
    "watchdog",
];

/// The safety-critical workers, by name and path: the motors and steering drivers, the
/// motion controller and the watchdog, and the system monitor (the only watcher of the
/// host's temperature: suspended or wedged, it would hide an over-temperature). Their
/// quota group must be critical ([`nevil_actors::quota::QuotaGroup::critical`]): quotas
/// and host pressure may warn and restart them, never throttle, suspend or terminate
/// them (docs/safety.md).
pub const CRITICAL: [(&str, &str); 5] = [
    ("motors", "root/drivers/motors"),
    ("steering", "root/drivers/steering"),
    ("motion", "root/control/motion"),
    ("watchdog", "root/safety/watchdog"),
    ("system_monitor", "root/management/system_monitor"),
];

/// `[recorder]`: the flight recorder of bus messages.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RecorderConfig {
    /// Where to write the recording; unset disables the recorder. `--record` overrides.
    pub path: Option<std::path::PathBuf>,
    /// Size of one file before it rotates, in bytes (4096 to 1 GiB = 1073741824;
    /// default 8 MiB).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Rotated files kept besides the current one (0–100; default 3).
    #[serde(default = "default_max_files")]
    pub keep_files: u32,
}

/// `[audit]`: the hash-chained audit trail (see [`crate::services::audit`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where to append the trail; unset disables it. `run --audit` overrides.
    pub path: Option<std::path::PathBuf>,
    /// Size of one file before it rotates, in bytes (4096 to 1 GiB; default 8 MiB).
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Rotated files kept besides the current one (0–100; default 3).
    #[serde(default = "default_max_files")]
    pub keep_files: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_file_bytes: default_max_file_bytes(),
            keep_files: default_max_files(),
        }
    }
}

fn default_max_file_bytes() -> u64 {
    8 << 20
}

fn default_max_files() -> u32 {
    3
}

/// A configuration that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown key, wrong type, …).
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or `default config`.
        origin: String,
        /// What toml said, with the key and line.
        message: String,
    },
    /// The file parsed but has problems.
    #[error("{origin}: {} problem(s):\n{}", .problems.len(), list(.problems))]
    Invalid {
        /// The file, or `default config`.
        origin: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// Every problem as `key: message` lines (one for a read or parse error).
    pub fn problems(&self) -> Vec<String> {
        match self {
            Self::Invalid { problems, .. } => problems.iter().map(|p| p.to_string()).collect(),
            other => vec![other.to_string()],
        }
    }
}

impl Config {
    /// Parses TOML text; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Parse`] for bad TOML, unknown keys or wrong types;
    /// [`ConfigError::Invalid`] listing every problem [`Config::check`] finds.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let mut config = config;
        config.assign_critical();
        let problems = config.check();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }

    /// Loads a file, or the embedded default when `path` is `None`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] if the file cannot be read, else as [`Config::parse`].
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Self::parse(DEFAULT_TOML, "default config"),
            Some(path) => {
                let origin = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: origin.clone(),
                    source,
                })?;
                Self::parse(&text, &origin)
            }
        }
    }

    /// Puts each [`CRITICAL`] worker that `[quotas.actors]` does not name into the
    /// built-in `critical` group: a config need not say it, and cannot say otherwise
    /// ([`Config::check`] refuses a non-critical group for them).
    pub fn assign_critical(&mut self) {
        for (name, path) in CRITICAL {
            let actors = &mut self.quotas.actors;
            if !actors.contains_key(name) && !actors.contains_key(path) {
                actors.insert(
                    name.to_string(),
                    nevil_actors::quota::ActorQuotaConfig {
                        group: "critical".into(),
                        cpu: None,
                        memory: None,
                        mailbox: None,
                        rate: None,
                        stall: None,
                    },
                );
            }
        }
    }

    /// The safety-critical workers in a group quotas may throttle, suspend or
    /// terminate, as problems at their `[quotas.actors]` entry.
    fn check_critical(&self, p: &mut Problems) {
        for (name, path) in CRITICAL {
            if self.quotas.is_critical(path) {
                continue;
            }
            let key = if self.quotas.actors.contains_key(path) {
                format!("quotas.actors.\"{path}\".group")
            } else {
                format!("quotas.actors.{name}.group")
            };
            p.push(
                key,
                format!(
                    "{name} is safety-critical: its group must be a critical one, which quotas \
                     may warn and restart but never throttle, suspend or terminate (is {:?})",
                    self.quotas.group_name_for(path)
                ),
            );
        }
    }

    /// Every problem of a parsed configuration, with key paths; empty when valid.
    pub fn check(&self) -> Vec<Problem> {
        let mut p = Problems::default();
        self.check_critical(&mut p);
        for (name, sensor) in self.drivers.sensors() {
            p.range(
                format!("drivers.{name}.rate_hz"),
                sensor.rate_hz,
                1.0,
                200.0,
            );
        }
        let m = &self.motion;
        p.range("motion.loop_hz", m.loop_hz, 10.0, 500.0);
        p.range("motion.max_power", m.max_power, 1.0, 100.0);
        p.above("motion.ramp_pct_per_s", m.ramp_pct_per_s, 0.0, 10_000.0);
        p.range("motion.max_steer_deg", m.max_steer_deg, 1.0, 30.0);

        let b = &self.behaviour;
        p.range("behaviour.cruise_power", b.cruise_power, 0.0, 100.0);
        if b.cruise_power > m.max_power {
            p.push(
                "behaviour.cruise_power",
                format!("must be <= motion.max_power ({})", m.max_power),
            );
        }
        p.range("behaviour.avoid_distance_m", b.avoid_distance_m, 0.05, 3.0);
        p.range("behaviour.stop_distance_m", b.stop_distance_m, 0.02, 3.0);
        if b.stop_distance_m >= b.avoid_distance_m {
            p.push(
                "behaviour.stop_distance_m",
                "must be < behaviour.avoid_distance_m",
            );
        }
        if b.line_threshold > 4095 {
            p.push("behaviour.line_threshold", "must be between 0 and 4095");
        }

        let s = &self.safety;
        let sensors = self.drivers.sensors();
        for (i, name) in s.watch.iter().enumerate() {
            if let Some(first) = s.watch[..i].iter().position(|n| n == name) {
                p.push(
                    format!("safety.watch[{i}]"),
                    format!("{name:?} is listed twice (also safety.watch[{first}])"),
                );
                continue;
            }
            match sensors.iter().find(|(n, _)| n == name) {
                None => p.push(
                    format!("safety.watch[{i}]"),
                    format!(
                        "unknown sensor {name:?} (expected one of: {})",
                        sensors.map(|(n, _)| n).join(", ")
                    ),
                ),
                Some((_, sensor)) if s.check_hz < sensor.rate_hz => p.push(
                    "safety.check_hz",
                    format!("must be >= drivers.{name}.rate_hz ({})", sensor.rate_hz),
                ),
                Some(_) => {}
            }
        }
        for sensor in b.mode.sensors() {
            if !s.watch.iter().any(|n| n == sensor) {
                p.push(
                    "safety.watch",
                    format!(
                        "must include {sensor:?}: behaviour.mode {:?} uses it",
                        b.mode.name()
                    ),
                );
            }
        }
        if !s.watch.iter().any(|n| n == "battery") {
            p.push(
                "safety.watch",
                "must include \"battery\": without its readings a low battery goes unseen",
            );
        }
        p.range("safety.stale_periods", s.stale_periods, 1.0, 10.0);
        p.range("safety.battery_low_v", s.battery_low_v, 3.0, 20.0);
        p.range(
            "safety.battery_hysteresis_v",
            s.battery_hysteresis_v,
            0.0,
            2.0,
        );
        p.range("safety.check_hz", s.check_hz, 1.0, 1000.0);

        if !(1..=4096).contains(&self.bus.queue) {
            p.push(
                "bus.queue",
                format!("must be between 1 and 4096 (is {})", self.bus.queue),
            );
        }
        p.range(
            "supervision.max_restarts",
            self.supervision.max_restarts.into(),
            0.0,
            1000.0,
        );
        p.above(
            "supervision.period_s",
            self.supervision.period_s,
            0.0,
            3600.0,
        );
        p.range(
            "supervision.backoff_s",
            self.supervision.backoff_s,
            0.0,
            60.0,
        );
        p.range(
            "supervision.backoff_max_s",
            self.supervision.backoff_max_s,
            0.0,
            3600.0,
        );
        if self.supervision.backoff_max_s < self.supervision.backoff_s {
            p.push(
                "supervision.backoff_max_s",
                "must be >= supervision.backoff_s",
            );
        }
        self.http.check(&mut p);
        if !(4096..=1 << 30).contains(&self.recorder.max_file_bytes) {
            p.push(
                "recorder.max_file_bytes",
                format!(
                    "must be between 4096 and 1073741824 (1 GiB) (is {})",
                    self.recorder.max_file_bytes
                ),
            );
        }
        if self.recorder.keep_files > 100 {
            p.push(
                "recorder.keep_files",
                format!(
                    "must be between 0 and 100 (is {})",
                    self.recorder.keep_files
                ),
            );
        }
        if !(4096..=1 << 30).contains(&self.audit.max_file_bytes) {
            p.push(
                "audit.max_file_bytes",
                format!(
                    "must be between 4096 and 1073741824 (1 GiB) (is {})",
                    self.audit.max_file_bytes
                ),
            );
        }
        if self.audit.keep_files > 100 {
            p.push(
                "audit.keep_files",
                format!("must be between 0 and 100 (is {})", self.audit.keep_files),
            );
        }
        if !(1..=64).contains(&self.runtime.worker_threads) {
            p.push(
                "runtime.worker_threads",
                format!(
                    "must be between 1 and 64 (is {})",
                    self.runtime.worker_threads
                ),
            );
        }
        p.0.extend(self.quotas.check("quotas"));
        self.monitor
            .check("monitor", |g| self.quotas.group(g).is_some(), &mut p);
        for (i, name) in self.runtime.bulkhead.iter().enumerate() {
            if !WORKERS.contains(&name.as_str()) {
                p.push(
                    format!("runtime.bulkhead[{i}]"),
                    format!(
                        "unknown worker {name:?} (expected one of: {})",
                        WORKERS.join(", ")
                    ),
                );
            }
        }
        if !(1..=64).contains(&self.runtime.bulkhead_threads) {
            p.push("runtime.bulkhead_threads", "must be between 1 and 64");
        }
        self.sim.check("sim", &mut p);
        self.picarx.check("picarx", &mut p);
        self.reload.check(&mut p);
        self.log.check(&mut p);
        self.placement.check(&mut p);
        self.zenoh.check(&mut p);
        if !self.zenoh.enabled() {
            for (group, node) in self.placement.node_groups() {
                p.push(
                    format!("placement.{group}"),
                    format!(
                        "\"node:{}\" needs the network: set [zenoh] listen or connect",
                        node.name
                    ),
                );
            }
        }
        if let Err(why) = network::check_name(&self.robot.id) {
            p.push("robot.id", why);
        }
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let config = Config::load(None).unwrap();
        assert_eq!(config.robot.backend, Backend::Sim);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = DEFAULT_TOML.replace("[motion]", "[motion]\nspeeed = 3");
        let err = Config::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(err.contains("speeed"), "{err}");
        assert!(err.starts_with("t.toml"), "{err}");
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let text = DEFAULT_TOML
            .replace("rate_hz = 20", "rate_hz = 0")
            .replace("max_power = 60", "max_power = 160")
            .replace(
                r#"watch = ["ultrasonic", "grayscale", "battery"]"#,
                r#"watch = ["ultrasonic", "lidar", "battery"]"#,
            );
        let err = Config::parse(&text, "t.toml").unwrap_err();
        let problems = err.problems();
        let keys: Vec<_> = problems
            .iter()
            .map(|p| p.split(':').next().unwrap())
            .collect();
        assert!(keys.contains(&"drivers.ultrasonic.rate_hz"), "{problems:?}");
        assert!(keys.contains(&"motion.max_power"), "{problems:?}");
        assert!(keys.contains(&"safety.watch[1]"), "{problems:?}");
        assert!(problems
            .iter()
            .any(|p| p.contains("unknown sensor \"lidar\"")));
    }

    #[test]
    fn quota_problems_are_named() {
        let text = format!(
            "{DEFAULT_TOML}\n[quotas.groups.heavy]\nmemory = {{ soft = 9e6, hard = 1e6 }}\n"
        );
        let problems = Config::parse(&text, "t").unwrap_err().problems();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("quotas.groups.heavy.memory.hard")),
            "{problems:?}"
        );
    }

    #[test]
    fn remote_listen_needs_an_explicit_choice() {
        let text = DEFAULT_TOML.replace("listen = \"127.0.0.1:9464\"", "listen = \"0.0.0.0:9464\"");
        let problems = Config::parse(&text, "t").unwrap_err().problems();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("http.listen: 0.0.0.0:9464 is not a loopback")),
            "{problems:?}"
        );
        let allowed = text.replace("allow_remote = false", "allow_remote = true");
        let config = Config::parse(&allowed, "t").unwrap();
        assert_eq!(config.http.address(None).unwrap().port(), 9464);
        let cli = Config::load(None)
            .unwrap()
            .http
            .address(Some("192.168.1.5:80"));
        assert!(cli.unwrap_err().starts_with("--listen: 192.168.1.5:80"));
        let bad = Config::load(None).unwrap().http.address(Some("localhost"));
        assert!(bad.unwrap_err().contains("not an address"));
    }

    #[test]
    fn backoff_comes_from_supervision() {
        let config = Config::load(None).unwrap();
        assert!(config.supervision.backoff().is_none(), "off by default");
        let text = DEFAULT_TOML.replace("period_s = 10", "period_s = 10\nbackoff_s = 0.5");
        let b = Config::parse(&text, "t")
            .unwrap()
            .supervision
            .backoff()
            .unwrap();
        assert_eq!(b.base, Duration::from_millis(500));
        let text = DEFAULT_TOML.replace(
            "period_s = 10",
            "period_s = 10\nbackoff_s = 5\nbackoff_max_s = 1",
        );
        let problems = Config::parse(&text, "t").unwrap_err().problems();
        assert!(problems
            .iter()
            .any(|p| p.starts_with("supervision.backoff_max_s")));
    }

    #[test]
    fn monitor_problems_are_named() {
        let text = DEFAULT_TOML.replace("warn = 0.80", "warn = 0.96");
        let problems = Config::parse(&text, "t").unwrap_err().problems();
        assert!(
            problems
                .iter()
                .any(|p| p == "monitor.memory.critical: must be > warn (is 0.95, warn is 0.96)"),
            "{problems:?}"
        );
    }

    /// The problems of the default config with each `(from, to)` edit applied.
    fn problems_with(edits: &[(&str, &str)]) -> Vec<Problem> {
        let mut text = DEFAULT_TOML.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "default config has no {from:?}");
            text = text.replacen(from, to, 1);
        }
        match Config::parse(&text, "t") {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid { problems, .. }) => problems,
            Err(other) => panic!("{edits:?}: {other}"),
        }
    }

    /// Each edit alone makes the default config invalid with a problem at `key`, whose
    /// message shows the bad value.
    fn assert_refused(cases: &[(&str, &str, &str)]) {
        for (from, to, key) in cases {
            let problems = problems_with(&[(from, to)]);
            let value = to.rsplit("= ").next().unwrap().trim();
            assert!(
                problems.iter().any(|p| p.key == *key
                    && p.message
                        .contains(&format!("(is {}", value.replace("nan", "NaN")))),
                "{to:?}: expected a problem at {key} in {problems:?}"
            );
        }
    }

    #[test]
    fn driver_and_motion_numbers_are_finite_and_bounded() {
        assert_refused(&[
            (
                "rate_hz = 20",
                "rate_hz = inf",
                "drivers.ultrasonic.rate_hz",
            ),
            (
                "rate_hz = 20",
                "rate_hz = nan",
                "drivers.ultrasonic.rate_hz",
            ),
            ("rate_hz = 2\n", "rate_hz = -2\n", "drivers.battery.rate_hz"),
            ("loop_hz = 50", "loop_hz = inf", "motion.loop_hz"),
            ("loop_hz = 50", "loop_hz = 0", "motion.loop_hz"),
            ("max_power = 60", "max_power = nan", "motion.max_power"),
            (
                "ramp_pct_per_s = 300",
                "ramp_pct_per_s = inf",
                "motion.ramp_pct_per_s",
            ),
            (
                "ramp_pct_per_s = 300",
                "ramp_pct_per_s = nan",
                "motion.ramp_pct_per_s",
            ),
            (
                "ramp_pct_per_s = 300",
                "ramp_pct_per_s = 0",
                "motion.ramp_pct_per_s",
            ),
            (
                "ramp_pct_per_s = 300",
                "ramp_pct_per_s = -5",
                "motion.ramp_pct_per_s",
            ),
            (
                "ramp_pct_per_s = 300",
                "ramp_pct_per_s = 10001",
                "motion.ramp_pct_per_s",
            ),
            (
                "max_steer_deg = 30",
                "max_steer_deg = -inf",
                "motion.max_steer_deg",
            ),
        ]);
        assert!(problems_with(&[("ramp_pct_per_s = 300", "ramp_pct_per_s = 10000")]).is_empty());
    }

    #[test]
    fn behaviour_numbers_are_finite_and_bounded() {
        assert_refused(&[
            (
                "cruise_power = 35",
                "cruise_power = nan",
                "behaviour.cruise_power",
            ),
            (
                "cruise_power = 35",
                "cruise_power = -1",
                "behaviour.cruise_power",
            ),
            (
                "avoid_distance_m = 0.5",
                "avoid_distance_m = inf",
                "behaviour.avoid_distance_m",
            ),
            (
                "stop_distance_m = 0.2",
                "stop_distance_m = nan",
                "behaviour.stop_distance_m",
            ),
            (
                "stop_distance_m = 0.2",
                "stop_distance_m = 0",
                "behaviour.stop_distance_m",
            ),
        ]);
    }

    #[test]
    fn safety_numbers_cannot_switch_the_checks_off() {
        assert_refused(&[
            (
                "battery_low_v = 6.4",
                "battery_low_v = 0",
                "safety.battery_low_v",
            ),
            (
                "battery_low_v = 6.4",
                "battery_low_v = 2.9",
                "safety.battery_low_v",
            ),
            (
                "battery_low_v = 6.4",
                "battery_low_v = inf",
                "safety.battery_low_v",
            ),
            (
                "battery_low_v = 6.4",
                "battery_low_v = nan",
                "safety.battery_low_v",
            ),
            (
                "battery_low_v = 6.4",
                "battery_low_v = -6.4",
                "safety.battery_low_v",
            ),
            (
                "stale_periods = 1.5",
                "stale_periods = inf",
                "safety.stale_periods",
            ),
            (
                "stale_periods = 1.5",
                "stale_periods = 0",
                "safety.stale_periods",
            ),
            (
                "stale_periods = 1.5",
                "stale_periods = 11",
                "safety.stale_periods",
            ),
            ("check_hz = 100", "check_hz = inf", "safety.check_hz"),
            ("check_hz = 100", "check_hz = nan", "safety.check_hz"),
        ]);
    }

    #[test]
    fn battery_hysteresis_defaults_and_is_bounded() {
        let config = Config::load(None).unwrap();
        assert_eq!(config.safety.battery_hysteresis_v, 0.2);
        let unset = DEFAULT_TOML.replace("battery_hysteresis_v = 0.2", "");
        assert_ne!(unset, DEFAULT_TOML, "the default config sets it");
        let config = Config::parse(&unset, "t").unwrap();
        assert_eq!(config.safety.battery_hysteresis_v, 0.2, "the serde default");
        let key = "battery_hysteresis_v = 0.2";
        assert_refused(&[
            (
                key,
                "battery_hysteresis_v = -0.1",
                "safety.battery_hysteresis_v",
            ),
            (
                key,
                "battery_hysteresis_v = 2.5",
                "safety.battery_hysteresis_v",
            ),
            (
                key,
                "battery_hysteresis_v = nan",
                "safety.battery_hysteresis_v",
            ),
            (
                key,
                "battery_hysteresis_v = inf",
                "safety.battery_hysteresis_v",
            ),
        ]);
        assert!(problems_with(&[(key, "battery_hysteresis_v = 0")]).is_empty());
        // The issue's reproduction: an e-stop at the first reading, never released.
        assert!(problems_with(&[("battery_low_v = 6.4", "battery_low_v = 20.0")]).is_empty());
    }

    #[test]
    fn watch_must_cover_the_behaviour_sensors() {
        let watch = r#"watch = ["ultrasonic", "grayscale", "battery"]"#;
        let messages = |edits: &[(&str, &str)]| -> Vec<String> {
            problems_with(edits)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            messages(&[(watch, "watch = []")]),
            [
                "safety.watch: must include \"ultrasonic\": behaviour.mode \"obstacle_avoidance\" uses it",
                "safety.watch: must include \"battery\": without its readings a low battery goes unseen",
            ]
        );
        assert_eq!(
            messages(&[(watch, r#"watch = ["ultrasonic"]"#)]),
            ["safety.watch: must include \"battery\": without its readings a low battery goes unseen"]
        );
        assert!(messages(&[(watch, r#"watch = ["ultrasonic", "battery"]"#)]).is_empty());
        let line = ("mode = \"obstacle_avoidance\"", "mode = \"line_following\"");
        assert!(messages(&[line]).is_empty());
        assert_eq!(
            messages(&[line, (watch, r#"watch = ["battery"]"#)]),
            [
                "safety.watch: must include \"grayscale\": behaviour.mode \"line_following\" uses it",
                "safety.watch: must include \"ultrasonic\": behaviour.mode \"line_following\" uses it",
            ]
        );
        assert_eq!(
            messages(&[line, (watch, r#"watch = ["grayscale", "battery"]"#)]),
            ["safety.watch: must include \"ultrasonic\": behaviour.mode \"line_following\" uses it"]
        );
    }

    #[test]
    fn watch_duplicates_are_named() {
        let problems = problems_with(&[(
            r#"watch = ["ultrasonic", "grayscale", "battery"]"#,
            r#"watch = ["ultrasonic", "grayscale", "ultrasonic", "battery"]"#,
        )]);
        let got: Vec<_> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            ["safety.watch[2]: \"ultrasonic\" is listed twice (also safety.watch[0])"]
        );
    }

    /// The control token is optional, checked for length and characters, and never
    /// printed.
    #[test]
    fn the_control_token_is_checked_and_hidden() {
        let from = "# control_token = \"a-long-random-string\"";
        assert!(Config::load(None).unwrap().http.control_token.is_none());
        let ok = problems_with(&[(from, "control_token = \"0123456789abcdef\"")]);
        assert!(ok.is_empty(), "{ok:?}");
        for (bad, what) in [
            ("control_token = \"short\"", "(is 5)"),
            (
                "control_token = \"has a space in it, so no\"",
                "visible ASCII",
            ),
        ] {
            let problems = problems_with(&[(from, bad)]);
            assert!(
                problems
                    .iter()
                    .any(|p| p.key == "http.control_token" && p.message.contains(what)),
                "{bad}: {problems:?}"
            );
        }
        let token = ControlToken::from("0123456789abcdef");
        assert!(token.matches("0123456789abcdef"));
        assert!(!token.matches("0123456789abcdeF"));
        assert!(!token.matches("0123456789abcde"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("0123"));
    }

    #[test]
    fn audit_sizes_are_bounded() {
        assert_refused(&[
            (
                "max_file_bytes = 1048576",
                "max_file_bytes = 100",
                "audit.max_file_bytes",
            ),
            (
                "max_file_bytes = 1048576",
                "max_file_bytes = 1099511627776",
                "audit.max_file_bytes",
            ),
            ("keep_files = 8", "keep_files = 101", "audit.keep_files"),
        ]);
        assert!(problems_with(&[("keep_files = 8", "keep_files = 0")]).is_empty());
        let config = Config::parse(
            &DEFAULT_TOML.replace("# path = \"audit.jsonl\"", "path = \"a.jsonl\""),
            "test",
        )
        .unwrap();
        assert_eq!(config.audit.path.as_deref(), Some(Path::new("a.jsonl")));
        assert_eq!(Config::load(None).unwrap().audit.path, None);
    }

    #[test]
    fn bus_http_recorder_and_runtime_numbers_are_bounded() {
        assert_refused(&[
            ("queue = 32", "queue = 0", "bus.queue"),
            ("queue = 32", "queue = 5000", "bus.queue"),
            ("timeout_s = 5", "timeout_s = inf", "http.timeout_s"),
            ("timeout_s = 5", "timeout_s = nan", "http.timeout_s"),
            ("timeout_s = 5", "timeout_s = 0", "http.timeout_s"),
            (
                "max_file_bytes = 8388608",
                "max_file_bytes = 100",
                "recorder.max_file_bytes",
            ),
            (
                "max_file_bytes = 8388608",
                "max_file_bytes = 1099511627776",
                "recorder.max_file_bytes",
            ),
            ("keep_files = 3", "keep_files = 101", "recorder.keep_files"),
            (
                "worker_threads = 1",
                "worker_threads = 0",
                "runtime.worker_threads",
            ),
        ]);
        let p = problems_with(&[("max_connections = 16", "max_connections = 0")]);
        assert!(p.iter().any(|p| p.key == "http.max_connections"), "{p:?}");
        assert!(problems_with(&[("keep_files = 3", "keep_files = 0")]).is_empty());
    }

    #[test]
    fn supervision_numbers_are_finite_and_bounded() {
        let period = "period_s = 10";
        assert_refused(&[
            (period, "period_s = inf", "supervision.period_s"),
            (period, "period_s = nan", "supervision.period_s"),
            (period, "period_s = 0", "supervision.period_s"),
            (period, "period_s = -1", "supervision.period_s"),
            (period, "period_s = 3601", "supervision.period_s"),
            (
                period,
                "period_s = 10\nbackoff_s = inf",
                "supervision.backoff_s",
            ),
            (
                period,
                "period_s = 10\nbackoff_s = nan",
                "supervision.backoff_s",
            ),
            (
                period,
                "period_s = 10\nbackoff_s = -1",
                "supervision.backoff_s",
            ),
            (
                period,
                "period_s = 10\nbackoff_max_s = inf",
                "supervision.backoff_max_s",
            ),
            (
                period,
                "period_s = 10\nbackoff_max_s = nan",
                "supervision.backoff_max_s",
            ),
            (
                period,
                "period_s = 10\nbackoff_max_s = 3601",
                "supervision.backoff_max_s",
            ),
        ]);
        assert!(problems_with(&[(period, "period_s = 3600\nbackoff_max_s = 3600")]).is_empty());
    }

    #[test]
    fn monitor_sim_and_picarx_sections_are_checked() {
        let problems = problems_with(&[
            ("period_s = 1.0", "period_s = inf"),
            ("pressure_factor = 0.5", "pressure_factor = nan"),
            ("hysteresis = 3.0", "hysteresis = inf"),
            (
                "[monitor]",
                "[sim]\nroom = { width_m = inf, height_m = 3.0 }\nbattery = { noise_v = nan }\n\n\
                 [picarx]\nsteering_trim_deg = 12.0\n\n[monitor]",
            ),
        ]);
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        for key in [
            "monitor.period_s",
            "monitor.pressure_factor",
            "monitor.temperature.hysteresis",
            "sim.room.width_m",
            "sim.battery.noise_v",
            "picarx.steering_trim_deg",
        ] {
            assert!(keys.contains(&key), "{key} missing in {problems:?}");
        }
    }

    #[test]
    fn shipped_picarx_config_is_valid() {
        let text = include_str!("../config/picarx.toml");
        let config = Config::parse(text, "picarx.toml").unwrap();
        assert_eq!(config.safety.battery_hysteresis_v, 0.2);
    }

    #[test]
    fn safety_critical_workers_are_critical_and_cannot_be_moved() {
        let config = Config::load(None).unwrap();
        for (name, path) in CRITICAL {
            assert!(config.quotas.is_critical(path), "{name}");
            assert_eq!(config.quotas.group_name_for(path), "critical");
        }
        assert!(!config.quotas.is_critical("root/drivers/ultrasonic"));
        let text = format!(
            "{DEFAULT_TOML}\n[quotas.actors.motors]\ngroup = \"standard\"\n\
             [quotas.actors.\"root/safety/watchdog\"]\ngroup = \"heavy\"\n"
        );
        let problems = Config::parse(&text, "t").unwrap_err().problems();
        assert!(
            problems.iter().any(|p| p
                .starts_with("quotas.actors.motors.group: motors is safety-critical")
                && p.ends_with("(is \"standard\")")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with(
                "quotas.actors.\"root/safety/watchdog\".group: watchdog is safety-critical"
            )),
            "{problems:?}"
        );
        // A critical group of one's own, with its own limits, is fine.
        let own = format!(
            "{DEFAULT_TOML}\n[quotas.groups.mine]\ncritical = true\nhard_action = \"restart\"\n\
             [quotas.actors.motion]\ngroup = \"mine\"\n"
        );
        let config = Config::parse(&own, "t").unwrap();
        assert_eq!(config.quotas.group_name_for("root/control/motion"), "mine");
    }

    #[test]
    fn cross_field_rules() {
        let text = DEFAULT_TOML.replace("stop_distance_m = 0.2", "stop_distance_m = 0.9");
        let problems = Config::parse(&text, "t").unwrap_err().problems();
        assert!(problems
            .iter()
            .any(|p| p.starts_with("behaviour.stop_distance_m: must be <")));
    }
}
