//! The quota of a kind of child: [`QuotaGroup`], its [`HardAction`] and its
//! [`Escalation`] delays, with the built-in groups and their validation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::limits::{Limits, QuotaLimits, Resource};
use super::state::Action;

/// The action a group applies when a hard limit is reached: the configurable subset of
/// [`Action`] (`"throttle"`, `"suspend"`, `"restart"`, `"terminate"` in configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HardAction {
    /// Throttle, the factor set by the excess over the hard limit.
    Throttle,
    /// Suspend delivery.
    Suspend,
    /// Restart the child.
    Restart,
    /// Terminate the child.
    Terminate,
}

impl HardAction {
    /// The snake_case name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::Suspend => "suspend",
            Self::Restart => "restart",
            Self::Terminate => "terminate",
        }
    }

    /// The action to take, throttling by `factor` if this is a throttle.
    pub(super) fn action(self, factor: f64) -> Action {
        match self {
            Self::Throttle => Action::Throttle { factor },
            Self::Suspend => Action::Suspend,
            Self::Restart => Action::Restart,
            Self::Terminate => Action::Terminate,
        }
    }
}

/// How long a violation may last before the child is throttled, suspended, terminated,
/// each measured from the violation's first sample.
///
/// Seed 001 waits 30 s / 5 min / 10 min, a server's patience. The defaults here are
/// 1 s / 5 s / 10 s, for a 50 Hz control loop on two cores: a child hogging a core for
/// half a minute would starve the loop while what it controls keeps moving. One
/// second is 10 samples at the default interval, enough not to punish a single spike
/// with more than a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Escalation {
    /// Throttle a child still violating this long after the violation began.
    pub throttle_after: Duration,
    /// Suspend a child still violating this long after the violation began.
    pub suspend_after: Duration,
    /// Terminate a child still violating this long after the violation began.
    pub terminate_after: Duration,
}

impl Default for Escalation {
    fn default() -> Self {
        Self {
            throttle_after: Duration::from_secs(1),
            suspend_after: Duration::from_secs(5),
            terminate_after: Duration::from_secs(10),
        }
    }
}

impl Escalation {
    /// The action a violation that has lasted `elapsed` calls for by itself.
    pub(super) fn action(&self, elapsed: Duration, factor: f64) -> Action {
        if elapsed >= self.terminate_after {
            Action::Terminate
        } else if elapsed >= self.suspend_after {
            Action::Suspend
        } else if elapsed >= self.throttle_after {
            Action::Throttle { factor }
        } else {
            Action::Warn
        }
    }
}

/// The quota of a kind of child: limits per resource, the action at a hard limit, the
/// escalation delays and the recovery window.
///
/// The named defaults ([`lightweight`](Self::lightweight), [`standard`](Self::standard),
/// [`heavy`](Self::heavy)) take memory and CPU soft and hard limits from seed 001 (CPU
/// percent of a core as a share), `burst` midway between, and mailbox and rate limits
/// sized for 50 Hz streams; each documents its numbers. They leave stall ungoverned. The
/// fourth, [`critical`](Self::critical), is for children whose silence is dangerous.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuotaGroup {
    /// CPU share limits; `None`: not governed.
    pub cpu: Option<Limits>,
    /// Memory limits in bytes; `None`: not governed.
    pub memory: Option<Limits>,
    /// Mailbox depth limits in messages; `None`: not governed.
    pub mailbox: Option<Limits>,
    /// Handled-message rate limits per second; `None`: not governed.
    pub rate: Option<Limits>,
    /// Stall limits in seconds (messages waiting, none started); `None`: not governed.
    pub stall: Option<Limits>,
    /// Whether its children's silence is dangerous: its quota may warn and restart them,
    /// never throttle, suspend or terminate them (burst → warn, hard → restart,
    /// escalation by age at most a warning), and pressure never tightens it. Its
    /// `hard_action` must be [`HardAction::Restart`] ([`check`](Self::check) says so).
    pub critical: bool,
    /// What to do at a hard limit.
    pub hard_action: HardAction,
    /// Delays of escalation while a violation lasts.
    pub escalation: Escalation,
    /// How long every governed resource must stay below 80 % of its soft limit before a
    /// child recovers.
    pub recovery: Duration,
}

impl QuotaGroup {
    /// The names of the built-in groups: the three by weight, lightest first, then
    /// `critical`.
    pub const NAMES: [&'static str; 4] = ["lightweight", "standard", "heavy", "critical"];

    /// The recovery window of the built-in groups: 2 s, twice the period of the slowest
    /// periodic load it was sized for (1 Hz telemetry), so a periodic burst cannot slip
    /// under it, yet short enough that a throttled consumer of a stream is back soon.
    pub const DEFAULT_RECOVERY: Duration = Duration::from_secs(2);

    /// Small actors (device drivers, services): memory 50 / 75 / 100 MB, CPU 5 / 7.5 / 10 % of a
    /// core (seed 001), mailbox 32 / 48 / 64 messages (32 is the bus's queue per
    /// subscriber: over half a second behind a 50 Hz stream), rate 500 / 750 / 1000 msgs/s
    /// (10× the fastest 50 Hz stream). At a hard limit: throttle (seed 001's CPU action
    /// for this group; a small actor over its limit is slowed, and escalation does the rest).
    pub fn lightweight() -> Self {
        Self {
            cpu: Some(Limits::midway(0.05, 0.10)),
            memory: Some(Limits::midway(50e6, 100e6)),
            mailbox: Some(Limits::midway(32.0, 64.0)),
            rate: Some(Limits::midway(500.0, 1000.0)),
            stall: None,
            critical: false,
            hard_action: HardAction::Throttle,
            escalation: Escalation::default(),
            recovery: Self::DEFAULT_RECOVERY,
        }
    }

    /// Most actors (behaviours, the control loop) and the default group: memory 200 / 350
    /// / 500 MB, CPU 15 / 22.5 / 30 % of a core (seed 001), mailbox 64 / 96 / 128, rate
    /// 2000 / 3000 / 4000 msgs/s. At a hard limit: restart — the OTP answer to a child in
    /// a bad state, bounded by its supervisor's restart intensity.
    pub fn standard() -> Self {
        Self {
            cpu: Some(Limits::midway(0.15, 0.30)),
            memory: Some(Limits::midway(200e6, 500e6)),
            mailbox: Some(Limits::midway(64.0, 128.0)),
            rate: Some(Limits::midway(2000.0, 4000.0)),
            stall: None,
            critical: false,
            hard_action: HardAction::Restart,
            escalation: Escalation::default(),
            recovery: Self::DEFAULT_RECOVERY,
        }
    }

    /// Computation-heavy actors: memory 1 / 1.5 / 2 GB, CPU 40 / 60 / 80 % of a core
    /// (seed 001), mailbox 256 / 384 / 512 (they may batch), rate 10 000 / 15 000 /
    /// 20 000 msgs/s. At a hard limit: suspend (seed 001's memory action for this group:
    /// a restart would throw away expensive work; escalation terminates it if it persists).
    pub fn heavy() -> Self {
        Self {
            cpu: Some(Limits::midway(0.40, 0.80)),
            memory: Some(Limits::midway(1e9, 2e9)),
            mailbox: Some(Limits::midway(256.0, 512.0)),
            rate: Some(Limits::midway(10_000.0, 20_000.0)),
            stall: None,
            critical: false,
            hard_action: HardAction::Suspend,
            escalation: Escalation::default(),
            recovery: Self::DEFAULT_RECOVERY,
        }
    }

    /// Actors whose silence is dangerous (`critical: true`): memory 200 / 500 MB, mailbox
    /// 64 / 128 and rate 2000 / 4000 msgs/s as [`standard`](Self::standard); CPU 25 / 50 %
    /// of a core, more room than standard because a restart costs such an actor more than
    /// a busy spell, yet half a core is surely a runaway; and stall 0.1 / 0.2 s (burst
    /// midway), so a wedged child is restarted within about three sampling intervals at the
    /// default 100 ms. At a hard limit: restart, the only drastic action a critical group
    /// takes.
    pub fn critical() -> Self {
        Self {
            cpu: Some(Limits::midway(0.25, 0.50)),
            stall: Some(Limits::midway(0.1, 0.2)),
            critical: true,
            ..Self::standard()
        }
    }

    /// A group that governs nothing (hard action restart, not critical, default escalation
    /// and recovery): the base of a group a config defines from scratch.
    pub fn ungoverned() -> Self {
        Self {
            cpu: None,
            memory: None,
            mailbox: None,
            rate: None,
            stall: None,
            ..Self::standard()
        }
    }

    /// The built-in group called `name`, if there is one.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "lightweight" => Some(Self::lightweight()),
            "standard" => Some(Self::standard()),
            "heavy" => Some(Self::heavy()),
            "critical" => Some(Self::critical()),
            _ => None,
        }
    }

    /// The limits of every resource at once.
    pub fn all_limits(&self) -> QuotaLimits {
        QuotaLimits {
            cpu: self.cpu,
            memory: self.memory,
            mailbox: self.mailbox,
            rate: self.rate,
            stall: self.stall,
        }
    }

    /// The limits of `resource`; `None` when it is not governed.
    pub fn limits(&self, resource: Resource) -> Option<Limits> {
        match resource {
            Resource::Cpu => self.cpu,
            Resource::Memory => self.memory,
            Resource::Mailbox => self.mailbox,
            Resource::Rate => self.rate,
            Resource::Stall => self.stall,
        }
    }

    /// Sets (or with `None` clears) the limits of `resource`.
    pub fn set_limits(&mut self, resource: Resource, limits: Option<Limits>) {
        match resource {
            Resource::Cpu => self.cpu = limits,
            Resource::Memory => self.memory = limits,
            Resource::Mailbox => self.mailbox = limits,
            Resource::Rate => self.rate = limits,
            Resource::Stall => self.stall = limits,
        }
    }

    /// Every problem with this group as `(key path, message)`, keys under `key` (e.g.
    /// `quotas.groups.heavy`) named as in a config: `memory.hard`,
    /// `escalation.suspend_after_ms`, `hard_action` of a critical group that would do
    /// anything but restart. Empty when valid.
    pub fn check(&self, key: &str) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.critical && self.hard_action != HardAction::Restart {
            problems.push((
                format!("{key}.hard_action"),
                format!(
                    "a critical group may only restart (is \"{}\")",
                    self.hard_action.as_str()
                ),
            ));
        }
        for resource in Resource::ALL {
            if let Some(limits) = self.limits(resource) {
                problems.extend(limits.check(&format!("{key}.{resource}")));
            }
        }
        let e = &self.escalation;
        if e.suspend_after < e.throttle_after {
            problems.push((
                format!("{key}.escalation.suspend_after_ms"),
                format!(
                    "must be >= throttle_after_ms (is {}, throttle_after_ms is {})",
                    e.suspend_after.as_millis(),
                    e.throttle_after.as_millis()
                ),
            ));
        }
        if e.terminate_after < e.suspend_after {
            problems.push((
                format!("{key}.escalation.terminate_after_ms"),
                format!(
                    "must be >= suspend_after_ms (is {}, suspend_after_ms is {})",
                    e.terminate_after.as_millis(),
                    e.suspend_after.as_millis()
                ),
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Action, QuotaStatus};
    use super::*;

    #[test]
    fn built_in_groups_are_valid() {
        for name in QuotaGroup::NAMES {
            let g = QuotaGroup::named(name).unwrap();
            assert_eq!(g.check(name), Vec::<(String, String)>::new(), "{name}");
            for r in Resource::ALL {
                // Only the critical group governs stall; the others leave it alone.
                let Some(l) = g.limits(r) else {
                    assert!(r == Resource::Stall && !g.critical, "{name}.{r} ungoverned");
                    continue;
                };
                assert!(l.soft < l.burst && l.burst < l.hard, "{name}.{r}: {l:?}");
            }
            assert_eq!(g.critical, name == "critical", "{name}");
        }
        assert_eq!(QuotaGroup::named("huge"), None);
        assert_eq!(QuotaGroup::lightweight().hard_action, HardAction::Throttle);
        assert_eq!(QuotaGroup::standard().hard_action, HardAction::Restart);
        assert_eq!(QuotaGroup::heavy().hard_action, HardAction::Suspend);
        let critical = QuotaGroup::critical();
        assert_eq!(critical.hard_action, HardAction::Restart);
        assert_eq!(critical.stall, Some(Limits::midway(0.1, 0.2)));
        assert_eq!(critical.cpu, Some(Limits::midway(0.25, 0.5)));
        assert_eq!(critical.memory, QuotaGroup::standard().memory);
        assert_eq!(
            QuotaGroup::lightweight().cpu,
            Some(Limits::midway(0.05, 0.1))
        );
        assert_eq!(QuotaGroup::heavy().memory, Some(Limits::midway(1e9, 2e9)));
    }

    #[test]
    fn limits_checks_name_the_key() {
        let key = "quotas.groups.heavy.memory";
        let bad = |soft, burst, hard| Limits { soft, burst, hard }.check(key);
        assert_eq!(bad(1.0, 1.0, 1.0), []);
        assert_eq!(
            bad(2.0, 1.5, 1.0),
            [(
                "quotas.groups.heavy.memory.hard".to_string(),
                "must be >= soft (is 1, soft is 2)".to_string()
            )]
        );
        assert_eq!(bad(1.0, 3.0, 2.0)[0].0, "quotas.groups.heavy.memory.burst");
        assert_eq!(bad(1.0, 0.5, 2.0)[0].0, "quotas.groups.heavy.memory.burst");
        let neg = bad(-1.0, -0.5, f64::INFINITY);
        assert_eq!(
            neg.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            [
                "quotas.groups.heavy.memory.soft",
                "quotas.groups.heavy.memory.hard"
            ]
        );
        assert_eq!(neg[0].1, "must be a finite number >= 0 (is -1)");
        let nan = bad(0.0, f64::NAN, 1.0);
        assert_eq!(nan[0].0, "quotas.groups.heavy.memory.burst");
    }

    #[test]
    fn escalation_order_is_checked() {
        let mut g = QuotaGroup::standard();
        g.escalation.suspend_after = Duration::from_millis(500);
        let problems = g.check("quotas.groups.standard");
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].0,
            "quotas.groups.standard.escalation.suspend_after_ms"
        );
        g.escalation = Escalation {
            terminate_after: Duration::from_secs(4),
            ..Escalation::default()
        };
        let problems = g.check("q");
        assert_eq!(problems[0].0, "q.escalation.terminate_after_ms");
    }
    #[test]
    fn a_critical_group_may_only_restart() {
        for action in [
            HardAction::Throttle,
            HardAction::Suspend,
            HardAction::Terminate,
        ] {
            let g = QuotaGroup {
                hard_action: action,
                ..QuotaGroup::critical()
            };
            assert_eq!(
                g.check("quotas.groups.mine"),
                [(
                    "quotas.groups.mine.hard_action".to_string(),
                    format!(
                        "a critical group may only restart (is \"{}\")",
                        action.as_str()
                    )
                )]
            );
            // Not critical, the same action is fine.
            let g = QuotaGroup {
                critical: false,
                ..g
            };
            assert_eq!(g.check("q"), Vec::<(String, String)>::new());
        }
    }

    #[test]
    fn names_are_snake_case() {
        let names: Vec<_> = Resource::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["cpu", "memory", "mailbox", "rate", "stall"]);
        assert_eq!(Action::Throttle { factor: 0.5 }.as_str(), "throttle");
        assert_eq!(QuotaStatus::Throttled(0.5).as_str(), "throttled");
        assert_eq!(HardAction::Terminate.as_str(), "terminate");
    }
}
