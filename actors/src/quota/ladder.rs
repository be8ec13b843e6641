//! The state machine: [`QuotaState::assess`] takes one sample and climbs (or leaves) the
//! ladder ok → warned → throttled → suspended → terminated, by the rules in the
//! [module docs](crate::quota).

use tokio::time::Instant;

use super::group::QuotaGroup;
use super::limits::{throttle_factor, Limits, Resource, Usage};
use super::state::{Action, Decision, QuotaStatus};
use super::RECOVERY_FRACTION;

/// How far over its limits one resource reads.
#[derive(Debug, Clone, Copy)]
struct Breach {
    resource: Resource,
    /// 1 soft, 2 burst, 3 hard: the highest limit crossed.
    level: u8,
    usage: f64,
    limit: f64,
}

impl Breach {
    /// The breach of `usage` against `limits`, if it reaches the soft limit.
    fn of(resource: Resource, usage: f64, limits: Limits) -> Option<Self> {
        let (level, limit) = if usage >= limits.hard {
            (3, limits.hard)
        } else if usage >= limits.burst {
            (2, limits.burst)
        } else if usage >= limits.soft {
            (1, limits.soft)
        } else {
            return None;
        };
        Some(Self {
            resource,
            level,
            usage,
            limit,
        })
    }

    /// `(usage − limit) / limit`, infinite over a zero limit.
    fn excess(&self) -> f64 {
        if self.limit > 0.0 {
            (self.usage - self.limit) / self.limit
        } else if self.usage > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }

    /// Over a higher limit, or as high and further over it.
    fn worse_than(&self, other: &Self) -> bool {
        self.level > other.level || (self.level == other.level && self.excess() > other.excess())
    }
}

/// One child's standing with its quota: the state machine [`assess`](Self::assess) drives,
/// one sample at a time. See the [module docs](crate::quota) for the rules.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaState {
    status: QuotaStatus,
    /// When it entered `status`.
    since: Instant,
    /// The resource whose breach put it in `status` (meaningless while `Ok`).
    cause: Resource,
    /// The first sample of the current violation, if one is going on.
    violating_since: Option<Instant>,
    /// The last sample at which some governed resource read at or above 80 % of its soft
    /// limit; recovery waits for a whole window after it.
    last_high: Option<Instant>,
}

impl QuotaState {
    /// A child within its limits, as of `now` (its start or its restart).
    pub fn new(now: Instant) -> Self {
        Self {
            status: QuotaStatus::Ok,
            since: now,
            cause: Resource::Cpu,
            violating_since: None,
            last_high: None,
        }
    }

    /// Where the child stands now.
    pub fn status(&self) -> QuotaStatus {
        self.status
    }

    /// When it entered its current status.
    pub fn since(&self) -> Instant {
        self.since
    }

    /// When the current violation began (its first sample at or above a soft limit);
    /// `None` when there is none.
    pub fn violating_since(&self) -> Option<Instant> {
        self.violating_since
    }

    /// The last sample at which some governed resource read at or above 80 % of its soft
    /// limit; `None` if none has yet.
    pub fn last_high(&self) -> Option<Instant> {
        self.last_high
    }

    /// Takes the sample `usage`, measured at `now`, under `group`, and returns what to do
    /// to the child if its state changes (see the [module docs](crate::quota)); `None` when
    /// nothing changes.
    ///
    /// Samples must come in time order; `now` earlier than a previous sample counts as
    /// no time having passed.
    pub fn assess(&mut self, now: Instant, usage: &Usage, group: &QuotaGroup) -> Option<Decision> {
        if self.status == QuotaStatus::Terminated {
            return None;
        }
        let mut worst: Option<Breach> = None;
        let mut calm = true;
        for resource in Resource::ALL {
            let Some(limits) = group.limits(resource) else {
                continue;
            };
            if matches!(resource, Resource::Mailbox | Resource::Stall)
                && self.status == QuotaStatus::Suspended
                && self.cause != resource
            {
                // Its messages wait at the gate because it is suspended: not its doing.
                continue;
            }
            let value = usage.get(resource);
            // Asked this way round so that NaN is not calm: a broken meter must not let a
            // child recover.
            let below = value < RECOVERY_FRACTION * limits.soft;
            if !below {
                calm = false;
            }
            if let Some(breach) = Breach::of(resource, value, limits) {
                if worst.is_none_or(|w| breach.worse_than(&w)) {
                    worst = Some(breach);
                }
            }
        }
        if !calm {
            self.last_high = Some(now);
        }
        match worst {
            Some(breach) => self.violation(now, breach, group),
            None => {
                self.violating_since = None;
                if calm {
                    self.recovery(now, usage, group)
                } else {
                    None
                }
            }
        }
    }

    /// A sample with `breach` the worst resource: escalate if the ladder or the
    /// violation's age calls for more than the current state.
    fn violation(&mut self, now: Instant, breach: Breach, group: &QuotaGroup) -> Option<Decision> {
        let began = *self.violating_since.get_or_insert(now);
        let factor = throttle_factor(breach.usage, breach.limit);
        let ladder = match breach.level {
            // A critical child is only ever restarted, whatever its hard action says.
            3 if group.critical => Action::Restart,
            3 => group.hard_action.action(factor),
            2 if !group.critical => Action::Throttle { factor },
            _ => Action::Warn,
        };
        let aged = if group.critical {
            // Age escalates a critical child no further than a warning.
            Action::Warn
        } else {
            group
                .escalation
                .action(now.saturating_duration_since(began), factor)
        };
        let action = if aged.severity() > ladder.severity() {
            aged
        } else {
            ladder
        };
        let change = match (action, self.status) {
            (Action::Throttle { factor }, QuotaStatus::Throttled(current)) => factor < current,
            _ => action.severity() > self.status.severity(),
        };
        if !change {
            return None;
        }
        let state_after = match action {
            Action::Warn => QuotaStatus::Warned,
            Action::Throttle { factor } => QuotaStatus::Throttled(factor),
            Action::Suspend => QuotaStatus::Suspended,
            Action::Terminate => QuotaStatus::Terminated,
            Action::Restart | Action::Recover => QuotaStatus::Ok,
            // Never from the ladder: the supervisor decides moves on host pressure.
            Action::Migrate { .. } => self.status,
        };
        if action == Action::Restart {
            *self = Self::new(now);
        } else {
            self.status = state_after;
            self.since = now;
            self.cause = breach.resource;
        }
        Some(Decision {
            action,
            resource: breach.resource,
            usage: breach.usage,
            limit: breach.limit,
            state_after,
        })
    }

    /// A calm sample: recover if the child is not `Ok` and has been calm for the whole
    /// recovery window.
    fn recovery(&mut self, now: Instant, usage: &Usage, group: &QuotaGroup) -> Option<Decision> {
        if self.status == QuotaStatus::Ok {
            return None;
        }
        if let Some(last_high) = self.last_high {
            if now.saturating_duration_since(last_high) < group.recovery {
                return None;
            }
        }
        let resource = self.cause;
        let limit = group
            .limits(resource)
            .map_or(0.0, |l| RECOVERY_FRACTION * l.soft);
        self.status = QuotaStatus::Ok;
        self.since = now;
        Some(Decision {
            action: Action::Recover,
            resource,
            usage: usage.get(resource),
            limit,
            state_after: QuotaStatus::Ok,
        })
    }
}
