//! Pressure: an outside signal that the machine as a whole is short of something, which
//! makes every supervisor of a tree enforce its children's quotas more strictly.
//!
//! A [`Pressure`] is a cheap, clonable handle shared by all supervisors of a tree (pass
//! it to [`Tree::start_in`](crate::Tree::start_in) in its [`TreeContext`](crate::TreeContext)). Whoever
//! watches the machine sets its [`PressureLevel`]; each supervisor reads it at its
//! sampling tick, so a change is in force within one sampling interval, and nothing is
//! read between ticks (one atomic load per tick).
//!
//! Under [`PressureLevel::Critical`], the limits of every governed child whose quota group
//! is neither exempt nor [critical](QuotaGroup::critical) are scaled by the policy's
//! `critical_factor` (soft, burst and hard alike) for CPU share, memory and message rate
//! — the resources that load the machine — so that warnings, throttles and hard actions
//! come sooner. Mailbox and stall limits are left as they are: a backlog or a stall is a
//! symptom of slowness, and shrinking their limits would punish children for the very
//! slowdown the machine is suffering. A critical group is never tightened, whatever the
//! exempt list says: its children are the ones the system cannot do without. [`PressureLevel::Elevated`] is
//! reported and changes nothing: the ladder's own escalation is the answer to a busy
//! machine; only a critical one warrants moving the limits. When the level drops, the
//! limits are the group's own again, and children recover by the usual rule.
//!
//! # Examples
//!
//! ```
//! use nevil_actors::quota::{Pressure, PressureLevel, PressurePolicy, QuotaGroup};
//!
//! let pressure = Pressure::new(PressurePolicy { critical_factor: 0.5, exempt: vec![] });
//! let group = QuotaGroup::standard(); // cpu hard 0.30 of a core
//! assert!(pressure.tighten("standard", &group).is_none());
//!
//! pressure.set(PressureLevel::Critical);
//! let tight = pressure.tighten("standard", &group).unwrap();
//! assert_eq!(tight.cpu.unwrap().hard, 0.15);
//! assert_eq!(tight.mailbox, group.mailbox);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use super::{LiveQuotas, QuotaGroup, Resource};

/// How short of resources the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PressureLevel {
    /// Nothing to report: quotas as configured.
    #[default]
    Normal,
    /// Busy; reported, quotas unchanged.
    Elevated,
    /// Critically short: non-exempt quotas are tightened by the policy's factor.
    Critical,
}

impl PressureLevel {
    /// The snake_case name: `normal`, `elevated`, `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Elevated => "elevated",
            Self::Critical => "critical",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Normal,
            1 => Self::Elevated,
            _ => Self::Critical,
        }
    }
}

impl fmt::Display for PressureLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How pressure tightens quotas.
#[derive(Debug, Clone, PartialEq)]
pub struct PressurePolicy {
    /// Under critical pressure, CPU, memory and rate limits are multiplied by this, in
    /// `(0, 1]` (1 disables tightening; values outside are clamped into that range).
    pub critical_factor: f64,
    /// Quota groups (by name) that are never tightened: those whose children the system
    /// cannot do without.
    pub exempt: Vec<String>,
}

impl Default for PressurePolicy {
    /// No tightening at all: the policy of a tree that has no pressure source.
    fn default() -> Self {
        Self {
            critical_factor: 1.0,
            exempt: Vec::new(),
        }
    }
}

impl PressurePolicy {
    /// `group` (called `name`) as enforced at `level`; `None` when it is unchanged (below
    /// critical pressure, a factor of 1, an exempt name, or a critical group).
    pub fn tighten(
        &self,
        level: PressureLevel,
        name: &str,
        group: &QuotaGroup,
    ) -> Option<QuotaGroup> {
        let factor = if self.critical_factor.is_nan() {
            1.0
        } else {
            self.critical_factor.clamp(f64::MIN_POSITIVE, 1.0)
        };
        if level < PressureLevel::Critical
            || factor >= 1.0
            || group.critical
            || self.exempt.iter().any(|g| g == name)
        {
            return None;
        }
        let mut tight = group.clone();
        for resource in [Resource::Cpu, Resource::Memory, Resource::Rate] {
            let scaled = group.limits(resource).map(|mut l| {
                l.soft *= factor;
                l.burst *= factor;
                l.hard *= factor;
                l
            });
            tight.set_limits(resource, scaled);
        }
        Some(tight)
    }
}

struct Inner {
    level: AtomicU8,
    cause: Mutex<Option<Cause>>,
    policy: PressurePolicy,
    live: LiveQuotas,
}

/// The host reading behind a pressure level, for the records of what it made the
/// supervisors do (a migration's resource, usage and limit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cause {
    /// The host resource (CPU share of all cores, or share of memory in use).
    pub resource: Resource,
    /// Its reading.
    pub usage: f64,
    /// Its critical threshold.
    pub limit: f64,
}

/// The shared pressure level of a tree and the policy that turns it into tighter quotas.
///
/// Clones share the level. The default has the no-op [`PressurePolicy::default`].
#[derive(Clone)]
pub struct Pressure(Arc<Inner>);

impl Pressure {
    /// A handle at [`PressureLevel::Normal`] with `policy`.
    pub fn new(policy: PressurePolicy) -> Self {
        Self(Arc::new(Inner {
            level: AtomicU8::new(PressureLevel::Normal as u8),
            cause: Mutex::new(None),
            policy,
            live: LiveQuotas::default(),
        }))
    }

    /// The level now.
    pub fn level(&self) -> PressureLevel {
        PressureLevel::from_u8(self.0.level.load(Ordering::Relaxed))
    }

    /// Sets the level; returns the previous one.
    pub fn set(&self, level: PressureLevel) -> PressureLevel {
        PressureLevel::from_u8(self.0.level.swap(level as u8, Ordering::Relaxed))
    }

    /// Sets the host reading behind the level (the worst of CPU and memory against its
    /// critical threshold), kept for records; `None`: nothing measured.
    pub fn set_cause(&self, cause: Option<Cause>) {
        *self.0.cause.lock().unwrap_or_else(PoisonError::into_inner) = cause;
    }

    /// The host reading behind the level, as last set.
    pub fn cause(&self) -> Option<Cause> {
        *self.0.cause.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The policy.
    pub fn policy(&self) -> &PressurePolicy {
        &self.0.policy
    }

    /// The tree's quota groups set at run time ([`LiveQuotas`]): what its supervisors
    /// enforce besides the level, changed from outside the tree like it.
    pub fn live(&self) -> &LiveQuotas {
        &self.0.live
    }

    /// `group` (called `name`) as enforced at the current level; `None` when unchanged.
    pub fn tighten(&self, name: &str, group: &QuotaGroup) -> Option<QuotaGroup> {
        self.0.policy.tighten(self.level(), name, group)
    }
}

impl Default for Pressure {
    fn default() -> Self {
        Self::new(PressurePolicy::default())
    }
}

impl fmt::Debug for Pressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pressure")
            .field("level", &self.level())
            .field("policy", &self.0.policy)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PressurePolicy {
        PressurePolicy {
            critical_factor: 0.5,
            exempt: vec!["heavy".into()],
        }
    }

    #[test]
    fn only_critical_tightens() {
        let g = QuotaGroup::lightweight();
        let p = policy();
        assert_eq!(p.tighten(PressureLevel::Normal, "lightweight", &g), None);
        assert_eq!(p.tighten(PressureLevel::Elevated, "lightweight", &g), None);
        let t = p
            .tighten(PressureLevel::Critical, "lightweight", &g)
            .unwrap();
        let (cpu, orig) = (t.cpu.unwrap(), g.cpu.unwrap());
        assert_eq!(
            (cpu.soft, cpu.burst, cpu.hard),
            (orig.soft * 0.5, orig.burst * 0.5, orig.hard * 0.5)
        );
        assert_eq!(t.memory.unwrap().hard, g.memory.unwrap().hard * 0.5);
        assert_eq!(t.rate.unwrap().soft, g.rate.unwrap().soft * 0.5);
        assert_eq!(t.mailbox, g.mailbox, "mailbox limits are left alone");
        assert_eq!(t.hard_action, g.hard_action);
        assert!(t.check("t").is_empty(), "scaled limits stay valid");
    }

    #[test]
    fn exempt_groups_and_a_factor_of_one_change_nothing() {
        let g = QuotaGroup::heavy();
        assert_eq!(policy().tighten(PressureLevel::Critical, "heavy", &g), None);
        let off = PressurePolicy {
            critical_factor: 1.0,
            exempt: vec![],
        };
        assert_eq!(off.tighten(PressureLevel::Critical, "heavy", &g), None);
        let nan = PressurePolicy {
            critical_factor: f64::NAN,
            exempt: vec![],
        };
        assert_eq!(nan.tighten(PressureLevel::Critical, "heavy", &g), None);
    }

    #[test]
    fn critical_groups_are_never_tightened() {
        let p = PressurePolicy {
            critical_factor: 0.1,
            exempt: vec![],
        };
        let g = QuotaGroup::critical();
        assert_eq!(p.tighten(PressureLevel::Critical, "critical", &g), None);
        // A config's own critical group, under any name, exempt or not.
        let mine = QuotaGroup {
            critical: true,
            ..QuotaGroup::lightweight()
        };
        assert_eq!(p.tighten(PressureLevel::Critical, "mine", &mine), None);
        // The same limits without the flag are tightened; stall limits never are.
        let plain = QuotaGroup {
            critical: false,
            ..QuotaGroup::critical()
        };
        let t = p.tighten(PressureLevel::Critical, "plain", &plain).unwrap();
        assert!(t.cpu.unwrap().hard < plain.cpu.unwrap().hard);
        assert_eq!(t.stall, plain.stall);
    }

    #[test]
    fn ungoverned_resources_stay_ungoverned() {
        let mut g = QuotaGroup::ungoverned();
        g.memory = Some(super::super::Limits::midway(10.0, 20.0));
        let t = policy()
            .tighten(PressureLevel::Critical, "custom", &g)
            .unwrap();
        assert_eq!(t.cpu, None);
        assert_eq!(t.rate, None);
        assert_eq!(t.memory.unwrap().hard, 10.0);
    }

    #[test]
    fn clones_share_the_level() {
        let p = Pressure::new(policy());
        let q = p.clone();
        assert_eq!(q.set(PressureLevel::Critical), PressureLevel::Normal);
        assert_eq!(p.level(), PressureLevel::Critical);
        assert_eq!(p.set(PressureLevel::Elevated), PressureLevel::Critical);
        assert_eq!(q.level(), PressureLevel::Elevated);
    }
}
