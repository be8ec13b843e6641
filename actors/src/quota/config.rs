//! The `[quotas]` section of a configuration: overrides of the built-in groups, new
//! groups, and which group each actor belongs to.
//!
//! Parsing rejects unknown keys; [`QuotaConfig::check`] then names every remaining
//! problem by its key path; [`QuotaConfig::group_for`] resolves an actor's quota and
//! [`QuotaConfig::is_critical`] says whether it is a critical one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Escalation, HardAction, Limits, QuotaGroup, Resource};
use crate::problems::{Problem, Problems};

/// A quota section of a configuration (`[quotas]` in the examples below: the caller
/// chooses the key, see [`QuotaConfig::check`]): how often children are sampled, group
/// overrides and actor assignments.
///
/// Every key is optional. An actor no entry names belongs to the default group,
/// [`QuotaConfig::DEFAULT_GROUP`] (`standard`, with any overrides of it).
///
/// ```toml
/// [quotas]
/// sample_interval_ms = 100            # default 100
///
/// [quotas.groups.heavy]               # override a built-in group ...
/// hard_action = "terminate"
/// memory = { soft = 100e6, hard = 200e6 }   # burst: midway, 150e6
/// escalation = { suspend_after_ms = 3000 }
///
/// [quotas.groups.camera]              # ... or define one; it governs only what it names
/// cpu = { soft = 0.5, burst = 0.6, hard = 0.9 }
///
/// [quotas.groups.vital]               # a critical group: warn and restart only
/// critical = true                     # (hard_action must then be "restart")
/// stall = { soft = 0.2, hard = 0.5 }  # seconds with messages waiting, none started
///
/// [quotas.actors.executor]              # an actor by name ...
/// group = "lightweight"
/// [quotas.actors."root/control/executor"]   # ... or by path, which wins
/// group = "standard"
/// cpu = { hard = 0.4 }
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Milliseconds between two samples of every managed child; default 100, between
    /// 10 and 10 000. A breach is acted on within two intervals.
    #[serde(default = "default_sample_interval_ms")]
    pub sample_interval_ms: u64,
    /// Groups by name: a built-in name overrides that group, any other name defines a
    /// group that starts governing nothing (hard action `restart`, default escalation
    /// and recovery).
    #[serde(default)]
    pub groups: BTreeMap<String, GroupConfig>,
    /// Actors by name (`executor`) or path (`root/control/executor`): their group and limit
    /// overrides.
    #[serde(default)]
    pub actors: BTreeMap<String, ActorQuotaConfig>,
}

fn default_sample_interval_ms() -> u64 {
    100
}

/// `[quotas.groups.NAME]`: what a group changes; unset keys keep the base group's value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// CPU share limits (1.0 = one core), e.g. `cpu = { soft = 0.2, hard = 0.4 }`.
    pub cpu: Option<LimitsConfig>,
    /// Memory limits in bytes.
    pub memory: Option<LimitsConfig>,
    /// Mailbox depth limits in messages.
    pub mailbox: Option<LimitsConfig>,
    /// Handled-message rate limits in messages per second.
    pub rate: Option<LimitsConfig>,
    /// Stall limits in seconds: how long messages may wait with none started.
    pub stall: Option<LimitsConfig>,
    /// Whether the group is critical (see [`QuotaGroup::critical`]): its children are only
    /// ever warned and restarted, and pressure never tightens it. A critical group's
    /// `hard_action` must be `"restart"`; the built-in `critical` group stays critical.
    pub critical: Option<bool>,
    /// At a hard limit: `"throttle"`, `"suspend"`, `"restart"` or `"terminate"`.
    pub hard_action: Option<HardAction>,
    /// Escalation delays, e.g. `escalation = { throttle_after_ms = 2000 }`.
    pub escalation: Option<EscalationConfig>,
    /// Milliseconds every governed resource must stay below 80 % of its soft limit before
    /// a child recovers; built-in default 2000.
    pub recovery_ms: Option<u64>,
}

/// Limits of one resource; unset keys keep the base's value.
///
/// `burst`, when unset but `soft` or `hard` is set here, is midway between the resulting
/// soft and hard. A resource the base does not govern needs both `soft` and `hard`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Warn at or above this.
    pub soft: Option<f64>,
    /// Throttle at or above this.
    pub burst: Option<f64>,
    /// The group's hard action at or above this.
    pub hard: Option<f64>,
}

/// Escalation delays in milliseconds from the start of a violation; unset keys keep the
/// base's (built-in: 1000 / 5000 / 10 000).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    /// Throttle a child still violating this long after the violation began.
    pub throttle_after_ms: Option<u64>,
    /// Suspend it this long after.
    pub suspend_after_ms: Option<u64>,
    /// Terminate it this long after.
    pub terminate_after_ms: Option<u64>,
}

/// `[quotas.actors.NAME_OR_PATH]`: an actor's group and its own limit overrides.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorQuotaConfig {
    /// The group's name: built-in or defined under `quotas.groups`.
    pub group: String,
    /// CPU share limits over the group's.
    pub cpu: Option<LimitsConfig>,
    /// Memory limits over the group's, in bytes.
    pub memory: Option<LimitsConfig>,
    /// Mailbox limits over the group's, in messages.
    pub mailbox: Option<LimitsConfig>,
    /// Rate limits over the group's, in messages per second.
    pub rate: Option<LimitsConfig>,
    /// Stall limits over the group's, in seconds.
    pub stall: Option<LimitsConfig>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            sample_interval_ms: default_sample_interval_ms(),
            groups: BTreeMap::new(),
            actors: BTreeMap::new(),
        }
    }
}

impl QuotaConfig {
    /// The group of an actor no entry names, and of one whose group is unknown.
    pub const DEFAULT_GROUP: &'static str = "standard";

    /// The sampling interval.
    pub fn sample_interval(&self) -> Duration {
        Duration::from_millis(self.sample_interval_ms)
    }

    /// Every problem, by key path: e.g. `quotas.groups.heavy.memory.hard: must be >= soft
    /// (is 1, soft is 2)`; empty when the section is valid.
    ///
    /// Checked: the sampling interval's range; each group's limits once overrides are
    /// applied (finite, `>= 0`, `soft <= burst <= hard`, `soft` and `hard` given for a
    /// resource the base does not govern), escalation order, and that a critical group
    /// only restarts (and the built-in `critical` stays critical); each actor's group
    /// exists and its own overrides give valid limits.
    ///
    /// `key` is where the section sits in the caller's configuration (e.g. `quotas`);
    /// every problem's key path starts with it.
    pub fn check(&self, key: &str) -> Vec<Problem> {
        let section = key;
        let mut problems = Problems::default();
        if !(10..=10_000).contains(&self.sample_interval_ms) {
            problems.push(
                format!("{section}.sample_interval_ms"),
                format!(
                    "must be between 10 and 10000 (is {})",
                    self.sample_interval_ms
                ),
            );
        }
        for (name, overrides) in &self.groups {
            let key = format!("{section}.groups.{name}");
            let base = QuotaGroup::named(name).unwrap_or_else(QuotaGroup::ungoverned);
            if base.critical && overrides.critical == Some(false) {
                problems.push(
                    format!("{key}.critical"),
                    "the built-in critical group cannot be made non-critical".to_string(),
                );
            }
            let group = overrides.apply(base, &key, &mut problems);
            for (key, message) in group.check(&key) {
                problems.push(key, message);
            }
        }
        for (actor, entry) in &self.actors {
            let key = format!("{section}.actors.{actor}");
            match self.group(&entry.group) {
                Some(group) => {
                    let group = entry.apply(group, &key, &mut problems);
                    for resource in entry.overridden() {
                        if let Some(limits) = group.limits(resource) {
                            for (key, message) in limits.check(&format!("{key}.{resource}")) {
                                problems.push(key, message);
                            }
                        }
                    }
                }
                None => problems.push(
                    format!("{key}.group"),
                    format!(
                        "unknown group \"{}\" (known: {})",
                        entry.group,
                        self.group_names().join(", ")
                    ),
                ),
            }
        }
        problems.0
    }

    /// The group called `name` with this section's overrides applied: a built-in group or
    /// one defined under `groups`; `None` if neither.
    pub fn group(&self, name: &str) -> Option<QuotaGroup> {
        let base = QuotaGroup::named(name);
        let overrides = self.groups.get(name);
        let base = match (base, overrides) {
            (Some(base), _) => base,
            (None, Some(_)) => QuotaGroup::ungoverned(),
            (None, None) => return None,
        };
        Some(match overrides {
            Some(o) => o.apply(base, "", &mut Problems::default()),
            None => base,
        })
    }

    /// The name of the group of the actor at `path` (e.g. `root/control/executor`): its
    /// entry by exact path, else by name (the path's last segment); the default group
    /// when neither exists or the entry's group is unknown.
    pub fn group_name_for(&self, path: &str) -> &str {
        match self.entry(path) {
            Some(entry) if self.group(&entry.group).is_some() => &entry.group,
            _ => Self::DEFAULT_GROUP,
        }
    }

    /// The quota of the actor at `path`: its group (found as by
    /// [`group_name_for`](Self::group_name_for)) with the entry's own limit overrides.
    ///
    /// # Examples
    ///
    /// ```
    /// use nevil_actors::quota::{QuotaConfig, QuotaGroup};
    ///
    /// let config: QuotaConfig = serde_json::from_str(r#"{
    ///     "actors": { "executor": { "group": "lightweight", "cpu": { "hard": 0.2 } } }
    /// }"#).unwrap();
    /// assert!(config.check("quotas").is_empty());
    /// let executor = config.group_for("root/control/executor");
    /// assert_eq!(executor.cpu.map(|l| l.hard), Some(0.2));
    /// assert_eq!(executor.memory, QuotaGroup::lightweight().memory);
    /// assert_eq!(config.group_for("root/io/poller"), QuotaGroup::standard());
    /// ```
    pub fn group_for(&self, path: &str) -> QuotaGroup {
        let default = || {
            self.group(Self::DEFAULT_GROUP)
                .unwrap_or_else(QuotaGroup::standard)
        };
        let Some(entry) = self.entry(path) else {
            return default();
        };
        match self.group(&entry.group) {
            Some(group) => entry.apply(group, "", &mut Problems::default()),
            None => default(),
        }
    }

    /// Whether the actor at `path_or_name` (a path such as `root/guard/heartbeat`, or a
    /// bare name) belongs to a critical group, resolved as by
    /// [`group_for`](Self::group_for): what a caller checks before trusting its vital
    /// actors to their quota.
    ///
    /// # Examples
    ///
    /// ```
    /// use nevil_actors::quota::QuotaConfig;
    ///
    /// let config: QuotaConfig = serde_json::from_str(r#"{
    ///     "actors": { "heartbeat": { "group": "critical" } }
    /// }"#).unwrap();
    /// assert!(config.is_critical("root/guard/heartbeat"));
    /// assert!(config.is_critical("heartbeat"));
    /// assert!(!config.is_critical("root/plant/gauge")); // standard, by default
    /// ```
    pub fn is_critical(&self, path_or_name: &str) -> bool {
        self.group_for(path_or_name).critical
    }

    /// The entry of the actor at `path`: by exact path first, then by name.
    fn entry(&self, path: &str) -> Option<&ActorQuotaConfig> {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.actors.get(path).or_else(|| self.actors.get(name))
    }

    /// Built-in and configured group names, sorted and without duplicates.
    fn group_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = QuotaGroup::NAMES.to_vec();
        names.extend(self.groups.keys().map(String::as_str));
        names.sort_unstable();
        names.dedup();
        names
    }
}

impl GroupConfig {
    /// `base` with these overrides; problems of missing limits go to `problems`.
    fn apply(&self, mut base: QuotaGroup, key: &str, problems: &mut Problems) -> QuotaGroup {
        let limits = [
            (Resource::Cpu, self.cpu),
            (Resource::Memory, self.memory),
            (Resource::Mailbox, self.mailbox),
            (Resource::Rate, self.rate),
            (Resource::Stall, self.stall),
        ];
        apply_limits(&mut base, &limits, key, problems);
        if let Some(action) = self.hard_action {
            base.hard_action = action;
        }
        if let Some(critical) = self.critical {
            base.critical = critical;
        }
        if let Some(e) = self.escalation {
            base.escalation = e.apply(base.escalation);
        }
        if let Some(ms) = self.recovery_ms {
            base.recovery = Duration::from_millis(ms);
        }
        base
    }
}

impl EscalationConfig {
    fn apply(&self, base: Escalation) -> Escalation {
        let ms = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_millis);
        Escalation {
            throttle_after: ms(self.throttle_after_ms, base.throttle_after),
            suspend_after: ms(self.suspend_after_ms, base.suspend_after),
            terminate_after: ms(self.terminate_after_ms, base.terminate_after),
        }
    }
}

impl ActorQuotaConfig {
    fn limits(&self) -> [(Resource, Option<LimitsConfig>); Resource::ALL.len()] {
        [
            (Resource::Cpu, self.cpu),
            (Resource::Memory, self.memory),
            (Resource::Mailbox, self.mailbox),
            (Resource::Rate, self.rate),
            (Resource::Stall, self.stall),
        ]
    }

    /// The resources whose limits this entry overrides.
    fn overridden(&self) -> impl Iterator<Item = Resource> {
        self.limits().into_iter().filter_map(|(r, l)| l.map(|_| r))
    }

    /// `group` with this actor's limit overrides.
    fn apply(&self, mut group: QuotaGroup, key: &str, problems: &mut Problems) -> QuotaGroup {
        apply_limits(&mut group, &self.limits(), key, problems);
        group
    }
}

/// Applies each given override to `group`'s limits of its resource.
fn apply_limits(
    group: &mut QuotaGroup,
    overrides: &[(Resource, Option<LimitsConfig>)],
    key: &str,
    problems: &mut Problems,
) {
    for &(resource, o) in overrides {
        if let Some(o) = o {
            let key = format!("{key}.{resource}");
            let limits = o.apply(group.limits(resource), resource, &key, problems);
            group.set_limits(resource, limits);
        }
    }
}

impl LimitsConfig {
    /// `base` with these overrides; `None` (and a problem per missing key) when the base
    /// does not govern the resource and `soft` or `hard` is missing.
    fn apply(
        &self,
        base: Option<Limits>,
        resource: Resource,
        key: &str,
        problems: &mut Problems,
    ) -> Option<Limits> {
        let soft = self.soft.or(base.map(|b| b.soft));
        let hard = self.hard.or(base.map(|b| b.hard));
        let (Some(soft), Some(hard)) = (soft, hard) else {
            for (field, value) in [("soft", soft), ("hard", hard)] {
                if value.is_none() {
                    problems.push(
                        format!("{key}.{field}"),
                        format!("required: the group does not otherwise govern {resource}"),
                    );
                }
            }
            return None;
        };
        let burst = match (self.burst, base) {
            (Some(burst), _) => burst,
            (None, Some(b)) if self.soft.is_none() && self.hard.is_none() => b.burst,
            (None, _) => Limits::midway(soft, hard).burst,
        };
        Some(Limits { soft, hard, burst })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> QuotaConfig {
        serde_json::from_str(json).unwrap()
    }

    fn keys(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn empty_section_is_the_built_in_defaults() {
        let c = parse("{}");
        assert_eq!(c, QuotaConfig::default());
        assert_eq!(c.sample_interval(), Duration::from_millis(100));
        assert_eq!(c.check("quotas"), []);
        for name in QuotaGroup::NAMES {
            assert_eq!(c.group(name), QuotaGroup::named(name));
        }
        assert_eq!(c.group("camera"), None);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = serde_json::from_str::<QuotaConfig>(r#"{"groups": {"heavy": {"memroy": {}}}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("memroy"), "{e}");
        let e = serde_json::from_str::<QuotaConfig>(
            r#"{"actors": {"m": {"group": "standard", "cpu": {"sfot": 1}}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("sfot"), "{e}");
        let e = serde_json::from_str::<QuotaConfig>(
            r#"{"groups": {"heavy": {"hard_action": "explode"}}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("explode"), "{e}");
    }

    #[test]
    fn group_overrides_apply_over_the_built_in() {
        let c = parse(
            r#"{"groups": {"heavy": {
                "hard_action": "terminate",
                "memory": {"soft": 100, "hard": 200},
                "cpu": {"burst": 0.7},
                "escalation": {"suspend_after_ms": 3000},
                "recovery_ms": 500
            }}}"#,
        );
        assert_eq!(c.check("quotas"), []);
        let g = c.group("heavy").unwrap();
        assert_eq!(g.hard_action, HardAction::Terminate);
        assert_eq!(g.memory, Some(Limits::midway(100.0, 200.0)), "burst midway");
        let cpu = QuotaGroup::heavy().cpu.map(|l| Limits { burst: 0.7, ..l });
        assert_eq!(g.cpu, cpu, "soft and hard kept");
        assert_eq!(g.escalation.suspend_after, Duration::from_secs(3));
        assert_eq!(g.escalation.throttle_after, Duration::from_secs(1));
        assert_eq!(g.recovery, Duration::from_millis(500));
        assert_eq!(g.rate, QuotaGroup::heavy().rate);
    }

    #[test]
    fn a_new_group_governs_only_what_it_names() {
        let c =
            parse(r#"{"groups": {"camera": {"cpu": {"soft": 0.5, "burst": 0.6, "hard": 0.9}}}}"#);
        assert_eq!(c.check("quotas"), []);
        let g = c.group("camera").unwrap();
        assert_eq!(
            g.cpu.map(|l| (l.soft, l.burst, l.hard)),
            Some((0.5, 0.6, 0.9))
        );
        assert_eq!(
            (g.memory, g.mailbox, g.rate, g.stall),
            (None, None, None, None)
        );
        assert_eq!(g.hard_action, HardAction::Restart);
        assert!(!g.critical);
    }

    #[test]
    fn a_critical_group_may_only_restart() {
        let c = parse(
            r#"{"groups": {
                "mine": {"critical": true, "hard_action": "suspend"},
                "critical": {"hard_action": "terminate", "critical": false},
                "fine": {"critical": true, "stall": {"soft": 0.2, "hard": 0.5}}
            }}"#,
        );
        assert_eq!(
            c.check("quotas"),
            [
                Problem::new(
                    "quotas.groups.critical.critical",
                    "the built-in critical group cannot be made non-critical"
                ),
                Problem::new(
                    "quotas.groups.mine.hard_action",
                    "a critical group may only restart (is \"suspend\")"
                ),
            ]
        );
        let c = parse(r#"{"groups": {"critical": {"hard_action": "throttle"}}}"#);
        assert_eq!(
            keys(&c.check("quotas")),
            ["quotas.groups.critical.hard_action"],
            "the built-in critical group too"
        );
        let fine = parse(
            r#"{"groups": {"fine": {"critical": true, "stall": {"soft": 0.2, "hard": 0.5}}}}"#,
        );
        assert_eq!(fine.check("quotas"), []);
        let g = fine.group("fine").unwrap();
        assert!(g.critical);
        assert_eq!(g.stall, Some(Limits::midway(0.2, 0.5)));
        assert_eq!(g.cpu, None, "a new group governs only what it names");
    }

    #[test]
    fn is_critical_resolves_by_path_then_name() {
        let c = parse(
            r#"{"groups": {"vital": {"critical": true}, "lax": {}},
                "actors": {
                    "heartbeat": {"group": "critical"},
                    "root/other/heartbeat": {"group": "lax"},
                    "pump": {"group": "vital", "stall": {"soft": 0.1, "hard": 0.3}},
                    "valve": {"group": "standard"},
                    "ghost": {"group": "nonexistent"}
                }}"#,
        );
        assert_eq!(
            c.check("quotas").len(),
            1,
            "only the unknown group: {:?}",
            c.check("quotas")
        );
        assert!(c.is_critical("root/guard/heartbeat"), "by name");
        assert!(c.is_critical("heartbeat"), "a bare name");
        assert!(
            !c.is_critical("root/other/heartbeat"),
            "the exact path wins"
        );
        assert!(
            c.is_critical("root/plant/pump"),
            "a configured critical group"
        );
        assert_eq!(
            c.group_for("root/plant/pump").stall.map(|l| l.hard),
            Some(0.3),
            "the actor's own stall override"
        );
        assert!(!c.is_critical("root/plant/valve"));
        assert!(!c.is_critical("root/ghost"), "unknown group: the default");
        assert!(!c.is_critical("root/plant/gauge"), "unnamed: the default");
    }

    #[test]
    fn problems_are_named_by_key_path() {
        let c = parse(
            r#"{
                "sample_interval_ms": 0,
                "groups": {
                    "heavy": {"memory": {"soft": 2000, "hard": 1000}},
                    "standard": {"cpu": {"soft": -1}, "escalation": {"terminate_after_ms": 10}},
                    "lightweight": {"mailbox": {"burst": 100}},
                    "camera": {"rate": {"soft": 5}}
                },
                "actors": {
                    "executor": {"group": "turbo"},
                    "root/io/poller": {"group": "lightweight", "cpu": {"hard": 0.01}}
                }
            }"#,
        );
        let problems = c.check("quotas");
        assert_eq!(
            keys(&problems),
            [
                "quotas.sample_interval_ms",
                "quotas.groups.camera.rate.hard",
                "quotas.groups.heavy.memory.hard",
                "quotas.groups.lightweight.mailbox.burst",
                "quotas.groups.standard.cpu.soft",
                "quotas.groups.standard.escalation.terminate_after_ms",
                "quotas.actors.executor.group",
                "quotas.actors.root/io/poller.cpu.hard",
            ],
            "{problems:#?}"
        );
        let message = |key: &str| {
            problems
                .iter()
                .find(|p| p.key == key)
                .map(|p| p.message.as_str())
                .unwrap()
        };
        assert!(message("quotas.groups.heavy.memory.hard").starts_with("must be >= soft"));
        assert_eq!(
            message("quotas.actors.executor.group"),
            "unknown group \"turbo\" (known: camera, critical, heavy, lightweight, standard)"
        );
        assert_eq!(
            message("quotas.groups.camera.rate.hard"),
            "required: the group does not otherwise govern rate"
        );
        assert_eq!(
            message("quotas.sample_interval_ms"),
            "must be between 10 and 10000 (is 0)"
        );
    }

    #[test]
    fn actor_problems_are_not_repeated_from_its_group() {
        let c = parse(
            r#"{"groups": {"heavy": {"memory": {"hard": 1}}},
                "actors": {"planner": {"group": "heavy"}}}"#,
        );
        assert_eq!(
            keys(&c.check("quotas")),
            ["quotas.groups.heavy.memory.hard"]
        );
    }

    #[test]
    fn group_resolution_by_path_then_name_then_default() {
        let c = parse(
            r#"{"groups": {"standard": {"recovery_ms": 700}},
                "actors": {
                    "executor": {"group": "lightweight"},
                    "root/control/executor": {"group": "heavy", "cpu": {"hard": 0.95}},
                    "ghost": {"group": "nonexistent"}
                }}"#,
        );
        // Exact path wins over the name.
        assert_eq!(c.group_name_for("root/control/executor"), "heavy");
        let g = c.group_for("root/control/executor");
        assert_eq!(g.hard_action, HardAction::Suspend);
        assert_eq!(g.cpu.map(|l| (l.soft, l.hard)), Some((0.4, 0.95)));
        assert!(
            (g.cpu.unwrap().burst - 0.675).abs() < 1e-12,
            "midway 0.4..0.95"
        );
        // Another actor called executor, elsewhere: matched by name.
        assert_eq!(c.group_name_for("root/sim/executor"), "lightweight");
        assert_eq!(c.group_for("root/sim/executor"), QuotaGroup::lightweight());
        assert_eq!(c.group_name_for("executor"), "lightweight");
        // Neither, or an unknown group: the default group, with its overrides.
        let standard = QuotaGroup {
            recovery: Duration::from_millis(700),
            ..QuotaGroup::standard()
        };
        assert_eq!(c.group_name_for("root/io/poller"), "standard");
        assert_eq!(c.group_for("root/io/poller"), standard);
        assert_eq!(c.group_name_for("root/ghost"), "standard");
        assert_eq!(c.group_for("root/ghost"), standard);
        // A path is matched whole: a suffix of several segments is not a name.
        assert_eq!(c.group_name_for("root/x/control/executor"), "lightweight");
    }
}
