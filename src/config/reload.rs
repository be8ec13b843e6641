//! Live reload: what a new configuration may change in a running robot, the sections
//! that tune reloading itself (`[reload]`, `[log]`), the run's config generation, and
//! the channel through which actors see the configuration in force.
//!
//! [`diff`] compares the configuration in force with a new one, key by key, and sorts
//! every change into one that applies live or one that needs a restart (a reload that
//! has any of the latter is refused whole). Live: quota groups and actor assignments
//! (`quotas.groups.*`, `quotas.actors.*`), the safety thresholds
//! (`safety.stale_periods`, `safety.battery_low_v`, `safety.battery_hysteresis_v`), the
//! motion limits (`motion.max_power`, `motion.ramp_pct_per_s`), the behaviour thresholds
//! (`behaviour.cruise_power`, `behaviour.avoid_distance_m`, `behaviour.stop_distance_m`,
//! `behaviour.line_threshold`), `log.level` and `reload.probation_s`. Everything else
//! needs a restart: the backend and devices, the tree's layout (`behaviour.mode`), every
//! rate and period (they size the dead-man's and the watchdog's deadlines, which run
//! outside the actors), the endpoint, the recorder and the audit trail, the runtime and bulkhead membership
//! (moving a running actor to another runtime means stopping it, which a reload must
//! not do to the motors' controller), supervision intensity (held by running
//! supervisors), `quotas.sample_interval_ms` and the system monitor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use nevil_actors::Problems;
use serde::Deserialize;

use super::Config;

/// `[reload]`: how a SIGHUP reload is watched.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// Seconds after a reload during which an escalation or a restart storm rolls it
    /// back (1–600; default 30). See `app::reload` for what a storm is.
    pub probation_s: f64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self { probation_s: 30.0 }
    }
}

impl ReloadConfig {
    /// The probation window.
    pub fn probation(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.probation_s)
    }

    pub(super) fn check(&self, p: &mut Problems) {
        p.range("reload.probation_s", self.probation_s, 1.0, 600.0);
    }
}

/// `[log]`: the log filter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter such as `"info"` or `"warn,nevil::robot=debug"`; unset keeps
    /// the command's default (or `RUST_LOG`). Changes live on SIGHUP.
    pub level: Option<String>,
}

impl LogConfig {
    pub(super) fn check(&self, p: &mut Problems) {
        if let Some(level) = &self.level {
            if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
                p.push("log.level", format!("not a log filter: {e} (is {level:?})"));
            }
        }
    }
}

/// How a reload would change the robot: the keys that change live and those that need
/// a restart, each in the config's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Changed keys that apply to the running robot.
    pub live: Vec<String>,
    /// Changed keys that cannot change without a restart.
    pub restart: Vec<String>,
}

impl Diff {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.restart.is_empty()
    }

    /// One message per key that needs a restart, e.g. `robot.backend cannot change
    /// without a restart`.
    pub fn refusals(&self) -> Vec<String> {
        self.restart
            .iter()
            .map(|key| format!("{key} cannot change without a restart"))
            .collect()
    }
}

struct Differ<'a> {
    diff: &'a mut Diff,
}

impl Differ<'_> {
    fn live(&mut self, key: impl Into<String>, changed: bool) {
        if changed {
            self.diff.live.push(key.into());
        }
    }

    fn restart(&mut self, key: impl Into<String>, changed: bool) {
        if changed {
            self.diff.restart.push(key.into());
        }
    }

    /// Each key of two maps whose entry differs (added, removed or changed), as
    /// `section.key`: all live.
    fn live_map<V: PartialEq>(
        &mut self,
        section: &str,
        old: &std::collections::BTreeMap<String, V>,
        new: &std::collections::BTreeMap<String, V>,
    ) {
        let keys: std::collections::BTreeSet<_> = old.keys().chain(new.keys()).collect();
        for key in keys {
            let shown = if key.contains('/') || key.contains('.') {
                format!("{section}.\"{key}\"")
            } else {
                format!("{section}.{key}")
            };
            self.live(shown, old.get(key) != new.get(key));
        }
    }
}

/// Every key on which `new` differs from `old`, sorted into live and restart (see the
/// module docs). Both must be whole, checked configurations.
pub fn diff(old: &Config, new: &Config) -> Diff {
    let mut diff = Diff::default();
    let mut d = Differ { diff: &mut diff };
    // Destructured without `..`: a new section does not compile until it is sorted here.
    let Config {
        robot,
        drivers,
        motion,
        behaviour,
        safety,
        bus,
        supervision,
        recorder,
        audit,
        runtime,
        quotas,
        http,
        monitor,
        sim,
        picarx,
        reload,
        log,
        placement,
        zenoh,
    } = new;
    d.restart("robot.backend", robot.backend != old.robot.backend);
    d.restart("robot.id", robot.id != old.robot.id);
    d.restart("zenoh", *zenoh != old.zenoh);
    for ((name, s), (_, o)) in drivers.sensors().into_iter().zip(old.drivers.sensors()) {
        d.restart(format!("drivers.{name}.rate_hz"), s.rate_hz != o.rate_hz);
    }
    let (m, o) = (motion, &old.motion);
    d.restart("motion.loop_hz", m.loop_hz != o.loop_hz);
    d.live("motion.max_power", m.max_power != o.max_power);
    d.live(
        "motion.ramp_pct_per_s",
        m.ramp_pct_per_s != o.ramp_pct_per_s,
    );
    // The behaviours steer within it too, and the steering servo's range bounds it.
    d.restart("motion.max_steer_deg", m.max_steer_deg != o.max_steer_deg);
    let (b, o) = (behaviour, &old.behaviour);
    d.restart("behaviour.mode", b.mode != o.mode);
    d.live("behaviour.cruise_power", b.cruise_power != o.cruise_power);
    d.live(
        "behaviour.avoid_distance_m",
        b.avoid_distance_m != o.avoid_distance_m,
    );
    d.live(
        "behaviour.stop_distance_m",
        b.stop_distance_m != o.stop_distance_m,
    );
    d.live(
        "behaviour.line_threshold",
        b.line_threshold != o.line_threshold,
    );
    let (s, o) = (safety, &old.safety);
    d.restart("safety.watch", s.watch != o.watch);
    d.live("safety.stale_periods", s.stale_periods != o.stale_periods);
    d.live("safety.battery_low_v", s.battery_low_v != o.battery_low_v);
    d.live(
        "safety.battery_hysteresis_v",
        s.battery_hysteresis_v != o.battery_hysteresis_v,
    );
    d.restart("safety.check_hz", s.check_hz != o.check_hz);
    d.restart("bus.queue", bus.queue != old.bus.queue);
    let (s, o) = (supervision, &old.supervision);
    d.restart("supervision.max_restarts", s.max_restarts != o.max_restarts);
    d.restart("supervision.period_s", s.period_s != o.period_s);
    d.restart("supervision.backoff_s", s.backoff_s != o.backoff_s);
    d.restart(
        "supervision.backoff_max_s",
        s.backoff_max_s != o.backoff_max_s,
    );
    let (r, o) = (recorder, &old.recorder);
    d.restart("recorder.path", r.path != o.path);
    d.restart(
        "recorder.max_file_bytes",
        r.max_file_bytes != o.max_file_bytes,
    );
    d.restart("recorder.keep_files", r.keep_files != o.keep_files);
    // The trail is opened once, at start, with the start's configuration.
    let (a, o) = (audit, &old.audit);
    d.restart("audit.path", a.path != o.path);
    d.restart("audit.max_file_bytes", a.max_file_bytes != o.max_file_bytes);
    d.restart("audit.keep_files", a.keep_files != o.keep_files);
    let (r, o) = (runtime, &old.runtime);
    d.restart(
        "runtime.worker_threads",
        r.worker_threads != o.worker_threads,
    );
    d.restart("runtime.bulkhead", r.bulkhead != o.bulkhead);
    d.restart(
        "runtime.bulkhead_threads",
        r.bulkhead_threads != o.bulkhead_threads,
    );
    d.restart(
        "quotas.sample_interval_ms",
        quotas.sample_interval_ms != old.quotas.sample_interval_ms,
    );
    d.live_map("quotas.groups", &old.quotas.groups, &quotas.groups);
    d.live_map("quotas.actors", &old.quotas.actors, &quotas.actors);
    let (h, o) = (http, &old.http);
    d.restart("http.listen", h.listen != o.listen);
    d.restart("http.allow_remote", h.allow_remote != o.allow_remote);
    d.restart(
        "http.max_connections",
        h.max_connections != o.max_connections,
    );
    d.restart("http.timeout_s", h.timeout_s != o.timeout_s);
    d.restart("http.control_token", h.control_token != o.control_token);
    d.restart("monitor", *monitor != old.monitor);
    d.restart("sim", *sim != old.sim);
    d.restart("picarx", *picarx != old.picarx);
    d.live(
        "reload.probation_s",
        reload.probation_s != old.reload.probation_s,
    );
    d.live("log.level", log.level != old.log.level);
    // A group moves between processes only with a restart of the robot.
    let groups: std::collections::BTreeSet<_> =
        placement.0.keys().chain(old.placement.0.keys()).collect();
    for g in groups {
        d.restart(
            format!("placement.{g}"),
            placement.of(g) != old.placement.of(g),
        );
    }
    diff
}

/// The configuration in force, as actors that take live changes see it: each reads its
/// part when it starts (so a restarted actor starts under the latest) and again when
/// [`LiveConfig::changed`] says so.
#[derive(Debug, Clone)]
pub struct LiveConfig(tokio::sync::watch::Receiver<Arc<Config>>);

impl LiveConfig {
    /// The configuration in force now.
    pub fn current(&self) -> Arc<Config> {
        self.0.borrow().clone()
    }

    /// The configuration in force, if it changed since this receiver last looked.
    pub fn changed(&mut self) -> Option<Arc<Config>> {
        match self.0.has_changed() {
            Ok(true) => Some(self.0.borrow_and_update().clone()),
            _ => None,
        }
    }

    /// A receiver that never changes: for an actor run outside a reloading robot.
    pub fn fixed(config: Config) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(config));
        drop(tx);
        Self(rx)
    }
}

/// The sending side of [`LiveConfig`]: who reloads puts the configuration in force.
#[derive(Debug, Clone)]
pub struct LiveConfigSender(Arc<tokio::sync::watch::Sender<Arc<Config>>>);

impl LiveConfigSender {
    /// A sender with `config` in force.
    pub fn new(config: Arc<Config>) -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(config)))
    }

    /// A receiver that has seen the configuration in force now.
    pub fn subscribe(&self) -> LiveConfig {
        LiveConfig(self.0.subscribe())
    }

    /// Puts `config` in force.
    pub fn send(&self, config: Arc<Config>) {
        self.0.send_replace(config);
    }
}

/// The run's config generation: 1 for the configuration the robot started with, one
/// more for every configuration put in force since (a reload, or a rollback). Shown in
/// the tree JSON, `/health/ready` and the `nevil_config_generation` gauge.
#[derive(Debug, Clone)]
pub struct Generation(Arc<AtomicU64>);

impl Default for Generation {
    fn default() -> Self {
        Self::new()
    }
}

impl Generation {
    /// Generation 1 (and the gauge set to it).
    pub fn new() -> Self {
        let g = Self(Arc::new(AtomicU64::new(1)));
        g.export(1);
        g
    }

    /// The generation now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// The next generation, now in force.
    pub fn bump(&self) -> u64 {
        let next = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        self.export(next);
        next
    }

    /// Sets the gauge again (after a metrics recorder was installed).
    pub fn export(&self, value: u64) {
        // A gauge is f64: generations stay far below 2^53.
        metrics::gauge!(crate::core::metrics::CONFIG_GENERATION).set(value as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default config's text with each `(from, to)` replaced once.
    fn edited(edits: &[(&str, &str)]) -> String {
        let mut text = crate::config::DEFAULT_TOML.to_string();
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        text
    }

    fn base() -> Config {
        Config::parse(crate::config::DEFAULT_TOML, "default").unwrap()
    }

    /// The default config with `old` replaced by `new` in its text.
    fn replaced(old: &str, new: &str) -> Config {
        assert!(crate::config::DEFAULT_TOML.contains(old), "{old}");
        Config::parse(&crate::config::DEFAULT_TOML.replacen(old, new, 1), "test").unwrap()
    }

    #[test]
    fn the_same_config_changes_nothing() {
        assert!(diff(&base(), &base()).is_empty());
    }

    #[test]
    fn quotas_thresholds_limits_and_log_level_are_live() {
        let text = edited(&[
            ("# level = \"info\"", "level = \"debug\""),
            ("probation_s = 30", "probation_s = 5"),
        ]);
        let new = Config::parse(
            &format!(
                "{text}\n[quotas.groups.tight]\nrate = {{ soft = 1, hard = 2 }}\n\
                 [quotas.actors.\"root/management/tree_service\"]\ngroup = \"tight\"\n"
            ),
            "test",
        )
        .unwrap();
        let d = diff(&base(), &new);
        assert_eq!(
            d.live,
            [
                "quotas.groups.tight",
                "quotas.actors.\"root/management/tree_service\"",
                "reload.probation_s",
                "log.level"
            ]
        );
        assert!(d.restart.is_empty());
        let d = diff(
            &base(),
            &replaced("battery_low_v = 6.4", "battery_low_v = 7.0"),
        );
        assert_eq!(
            (d.live, d.restart),
            (vec!["safety.battery_low_v".into()], vec![])
        );
        let d = diff(&base(), &replaced("max_power = 60", "max_power = 50"));
        assert_eq!(d.live, ["motion.max_power"]);
        let d = diff(
            &base(),
            &replaced("avoid_distance_m = 0.5", "avoid_distance_m = 0.7"),
        );
        assert_eq!(d.live, ["behaviour.avoid_distance_m"]);
    }

    #[test]
    fn a_changed_actor_group_is_named_by_its_key() {
        let new = replaced(
            "[quotas.actors.obstacle_avoidance]\ngroup = \"lightweight\"",
            "[quotas.actors.obstacle_avoidance]\ngroup = \"standard\"",
        );
        assert_eq!(
            diff(&base(), &new).live,
            ["quotas.actors.obstacle_avoidance"]
        );
    }

    #[test]
    fn backend_layout_rates_and_endpoint_need_a_restart() {
        let cases = [
            (
                ("backend = \"sim\"", "backend = \"picarx\""),
                "robot.backend",
            ),
            (
                ("mode = \"obstacle_avoidance\"", "mode = \"line_following\""),
                "behaviour.mode",
            ),
            (
                ("rate_hz = 20", "rate_hz = 25"),
                "drivers.ultrasonic.rate_hz",
            ),
            (("loop_hz = 50", "loop_hz = 60"), "motion.loop_hz"),
            (
                ("listen = \"127.0.0.1:9464\"", "listen = \"127.0.0.1:9465\""),
                "http.listen",
            ),
            (
                ("max_restarts = 5", "max_restarts = 6"),
                "supervision.max_restarts",
            ),
            (
                (
                    "bulkhead = [\"obstacle_avoidance\", \"line_follower\"]",
                    "bulkhead = []",
                ),
                "runtime.bulkhead",
            ),
            (
                ("sample_interval_ms = 100", "sample_interval_ms = 200"),
                "quotas.sample_interval_ms",
            ),
            (("period_s = 1.0", "period_s = 2.0"), "monitor"),
        ];
        for ((old, new), key) in cases {
            let d = diff(&base(), &replaced(old, new));
            assert_eq!(d.restart, [key], "{old} -> {new}");
            assert_eq!(
                d.refusals(),
                [format!("{key} cannot change without a restart")]
            );
        }
        let d = diff(
            &base(),
            &replaced("[recorder]\n", "[recorder]\npath = \"/tmp/x.rec\"\n"),
        );
        assert!(d.restart.contains(&"recorder.path".to_string()), "{d:?}");
    }

    #[test]
    fn a_mixed_change_lists_both_kinds() {
        let new = replaced("battery_low_v = 6.4", "battery_low_v = 7.0").clone();
        let mut text =
            crate::config::DEFAULT_TOML.replacen("battery_low_v = 6.4", "battery_low_v = 7.0", 1);
        text = text.replacen("backend = \"sim\"", "backend = \"picarx\"", 1);
        let both = Config::parse(&text, "test").unwrap();
        assert_eq!(diff(&base(), &new).restart.len(), 0);
        let d = diff(&base(), &both);
        assert_eq!(
            (d.live, d.restart),
            (
                vec!["safety.battery_low_v".to_string()],
                vec!["robot.backend".to_string()]
            )
        );
    }

    #[test]
    fn a_bad_log_filter_or_probation_is_a_problem_at_its_key() {
        let text = edited(&[
            ("# level = \"info\"", "level = \"info,[[[\""),
            ("probation_s = 30", "probation_s = 0"),
        ]);
        let err = Config::parse(&text, "test").unwrap_err().problems();
        assert!(err.iter().any(|p| p.starts_with("log.level:")), "{err:?}");
        assert!(
            err.iter().any(|p| p.starts_with("reload.probation_s:")),
            "{err:?}"
        );
    }

    #[test]
    fn generations_count_up_from_one() {
        let g = Generation::new();
        assert_eq!(g.get(), 1);
        assert_eq!(g.bump(), 2);
        assert_eq!(g.clone().bump(), 3);
        assert_eq!(g.get(), 3);
    }

    #[test]
    fn a_live_config_sees_each_change_once() {
        let tx = LiveConfigSender::new(Arc::new(base()));
        let mut rx = tx.subscribe();
        assert!(rx.changed().is_none());
        let new = replaced("battery_low_v = 6.4", "battery_low_v = 7.0");
        tx.send(Arc::new(new));
        assert_eq!(rx.changed().unwrap().safety.battery_low_v, 7.0);
        assert!(rx.changed().is_none());
        assert_eq!(rx.current().safety.battery_low_v, 7.0);
        assert_eq!(LiveConfig::fixed(base()).changed().map(|_| ()), None);
    }
}
