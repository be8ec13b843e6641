//! The sampling side of enforcement: what a supervisor keeps per governed child, and how
//! one sample turns counters into a [`Decision`].
//!
//! Every `sample_interval` the supervisor measures each governed child — CPU share and
//! message rate from the change of its counters since the last sample, memory held and
//! mailbox depth as they stand, stall from the samples that saw it stuck (messages
//! waiting, none started since the previous sample, gate open) — and asks
//! [`QuotaState::assess`]. Stall costs the message path nothing: it is read off the
//! counters the sample reads anyway. A breach seen at a
//! sample is acted on at that sample, so a breach is acted on within one interval of
//! happening (two at most, counting the sample that first sees a rising value under the
//! limit). The gate actions (throttle, suspend, recover) are applied here; restart and
//! terminate go through the supervisor, which owns the child's life.
//!
//! A worker standing for work in another process ([`crate::external`]) is measured through
//! its external instead for CPU and memory (the kernel's accounting of that process), and
//! its gate actions are the kernel's too (see [`apply_gate`]).

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use super::migrate::Migrating;
use super::{
    Action, Cause, Decision, Enforcement, History, Migration, Pressure, QuotaGroup, QuotaLimits,
    QuotaState, QuotaStatus, Resource, Site, Usage,
};
use crate::managed::Counters;

/// Enforcement records kept per child.
const HISTORY: usize = 32;

/// The instant enforcement times are measured from: the first governed child's creation.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

struct Baseline {
    at: Instant,
    handled: u64,
    cpu_seconds: f64,
    /// Whether `cpu_seconds` was the external's ([`crate::external`]) rather than the
    /// handlers': a change of source starts the CPU measure afresh.
    external_cpu: bool,
}

/// A governed child's quota group, state and enforcement history.
pub(crate) struct Governed {
    pub(crate) group_name: String,
    group: QuotaGroup,
    state: QuotaState,
    pub(crate) history: History,
    baseline: Option<Baseline>,
    /// Since when the child has been stuck (see [`Resource::Stall`]), while it is.
    stuck_since: Option<Instant>,
    /// The [`LiveQuotas`](super::LiveQuotas) version last looked at (0: none yet).
    live_seen: u64,
    /// The latest sample's readings and the limits they were judged against (host
    /// pressure included), for the tree to show; `None` until a sample measured.
    last: Option<(Usage, QuotaLimits)>,
    /// When its work moves to another host and back, if it may.
    migration: Option<Migrating>,
}

impl Governed {
    pub(crate) fn new(group_name: String, group: QuotaGroup) -> Self {
        // Records are timed from the first governed child's creation (the tree's start),
        // not from the first record.
        epoch();
        Self {
            group_name,
            group,
            state: QuotaState::new(Instant::now()),
            history: History::new(HISTORY),
            baseline: None,
            stuck_since: None,
            live_seen: 0,
            last: None,
            migration: None,
        }
    }

    /// Lets the child's work migrate under host pressure by `policy`.
    pub(crate) fn migratable(mut self, policy: Option<Migration>) -> Self {
        self.migration = policy.map(Migrating::new);
        self
    }

    /// Whether the child's work may migrate at all.
    pub(crate) fn is_migratable(&self) -> bool {
        self.migration.is_some()
    }

    /// The move due at `now` for work at `at` under `pressure`, if any (see
    /// [`super::migrate`]); none while a move taken earlier is still under way.
    pub(crate) fn migration_due(
        &mut self,
        now: Instant,
        pressure: &Pressure,
        at: Site,
    ) -> Option<Site> {
        let m = self.migration.as_mut()?;
        if m.pending.is_some() {
            return None;
        }
        m.due(now, pressure.level(), at)
    }

    /// Notes a move to `to` that the child's external took at `now` under `pressure`.
    /// It is recorded once the external says it is done ([`Self::migration_settled`]).
    pub(crate) fn migration_taken(&mut self, now: Instant, pressure: &Pressure, to: Site) {
        let cause = pressure.cause().unwrap_or(Cause {
            resource: Resource::Cpu,
            usage: 0.0,
            limit: 0.0,
        });
        let decision = Decision {
            action: Action::Migrate { to },
            resource: cause.resource,
            usage: cause.usage,
            limit: cause.limit,
            state_after: self.state.status(),
        };
        if let Some(m) = &mut self.migration {
            m.pending = Some((now, to, decision));
        }
    }

    /// The end of a move taken earlier, once the external no longer says `moving`: where
    /// the work is now (`site`) tells whether it got there. A move that got there is one
    /// enforcement in the history (at the time it was decided), to log and publish; one
    /// that did not is not recorded: where it was going and what happened instead.
    pub(crate) fn migration_settled(
        &mut self,
        site: Option<Site>,
        moving: bool,
    ) -> Option<Result<Decision, (Site, String)>> {
        let m = self.migration.as_mut()?;
        if moving {
            return None;
        }
        let (at, to, decision) = m.pending.take()?;
        if site != Some(to) {
            let now = site.map_or("nowhere", Site::as_str);
            return Some(Err((
                to,
                format!("the move did not complete (the work is {now})"),
            )));
        }
        self.history.push(Enforcement::new(
            at.saturating_duration_since(epoch()),
            &decision,
        ));
        Some(Ok(decision))
    }

    /// A new incarnation starts within its quota, measured afresh.
    pub(crate) fn restarted(&mut self) {
        self.state = QuotaState::new(Instant::now());
        self.baseline = None;
        self.stuck_since = None;
        self.last = None;
        if let Some(m) = &mut self.migration {
            m.restarted();
        }
    }

    /// The latest readings (`None` before the first measured sample of this
    /// incarnation) and the limits in force: those of the latest sample, else the
    /// group's own.
    pub(crate) fn reading(&self) -> (Option<Usage>, QuotaLimits) {
        match self.last {
            Some((usage, limits)) => (Some(usage), limits),
            None => (None, self.group.all_limits()),
        }
    }

    /// Whether the child's group is critical (see [`QuotaGroup::critical`]).
    pub(crate) fn critical(&self) -> bool {
        self.group.critical
    }

    /// The child's quota state.
    pub(crate) fn status(&self) -> QuotaStatus {
        self.state.status()
    }

    /// Measures `counters` at `now`, sampled every `interval`, under the tree's
    /// `pressure`; returns the decision to apply, if the state changes, after recording
    /// it. The first sample only sets the baseline for rates, and a sample less than half
    /// an interval after the baseline is skipped: rates over a few milliseconds (samples
    /// bunched after the runtime stalled) are noise, not usage.
    ///
    /// Stall: a sample sees the child stuck when its mailbox is not empty, it started no
    /// message since the previous sample and its gate is open. The first such sample
    /// counts the child stuck since the previous sample, but at most one `interval`
    /// before it (a long gap between samples is the runtime's stall, not the child's);
    /// each further one adds the time since. Progress, an empty mailbox or a closed gate
    /// ends it.
    ///
    /// First, if the tree's [`LiveQuotas`](super::LiveQuotas) changed since the last
    /// look, the child at `path` adopts the group set for it there, if any.
    pub(crate) fn sample(
        &mut self,
        path: &str,
        counters: &Counters,
        now: Instant,
        interval: Duration,
        pressure: &Pressure,
    ) -> Option<(Decision, Usage)> {
        self.adopt_live(path, pressure);
        let min_window = interval / 2;
        if let Some(b) = &self.baseline {
            if now.saturating_duration_since(b.at) < min_window {
                return None;
            }
        }
        let handled = counters.messages_handled();
        // Work in another process is measured by the kernel: its CPU and memory, read
        // through the external, the handlers' counters while those are unreadable.
        let external = counters.external();
        let external_cpu = external.as_ref().and_then(|e| e.cpu_seconds());
        let memory = external
            .as_ref()
            .and_then(|e| e.memory_bytes())
            .unwrap_or_else(|| counters.memory_bytes());
        let cpu_seconds = external_cpu.unwrap_or_else(|| counters.cpu_seconds());
        let previous = self.baseline.replace(Baseline {
            at: now,
            handled,
            cpu_seconds,
            external_cpu: external_cpu.is_some(),
        })?;
        let dt = now.saturating_duration_since(previous.at).as_secs_f64();
        if dt <= 0.0 {
            return None;
        }
        // Two sources' totals do not subtract: no CPU reading over this window.
        let cpu_used = if previous.external_cpu == external_cpu.is_some() {
            (cpu_seconds - previous.cpu_seconds).max(0.0)
        } else {
            0.0
        };
        let depth = counters.mailbox_depth();
        let stuck = depth > 0 && handled == previous.handled && counters.gate.is_unrestricted();
        let stall = if stuck {
            let since = *self.stuck_since.get_or_insert_with(|| {
                now.checked_sub(interval)
                    .map_or(previous.at, |t| t.max(previous.at))
            });
            now.saturating_duration_since(since).as_secs_f64()
        } else {
            self.stuck_since = None;
            0.0
        };
        let usage = Usage::default()
            .with(Resource::Cpu, cpu_used / dt)
            .with(
                Resource::Rate,
                handled.saturating_sub(previous.handled) as f64 / dt,
            )
            .with(Resource::Memory, memory as f64)
            .with(Resource::Mailbox, depth as f64)
            .with(Resource::Stall, stall);
        let tightened = pressure.tighten(&self.group_name, &self.group);
        let group = tightened.as_ref().unwrap_or(&self.group);
        self.last = Some((usage, group.all_limits()));
        let decision = self.state.assess(now, &usage, group)?;
        self.history.push(Enforcement::new(
            now.saturating_duration_since(epoch()),
            &decision,
        ));
        Some((decision, usage))
    }
}

impl Governed {
    /// Adopts the group the tree's live table sets for `path`, when the table changed
    /// since the last look.
    fn adopt_live(&mut self, path: &str, pressure: &Pressure) {
        let live = pressure.live();
        let version = live.version();
        if version == self.live_seen {
            return;
        }
        self.live_seen = version;
        if let Some((name, group)) = live.get(path) {
            if name != self.group_name || group != self.group {
                tracing::info!(%path, group = %name, "quota group changed live");
            }
            self.group_name = name;
            self.group = group;
        }
    }
}

/// Applies the gate part of `decision` to the child's counters; returns `false` for the
/// actions the supervisor carries out (restart, terminate).
///
/// A throttle acts on the resource that was measured over its limit: CPU → a duty cycle
/// of `factor` × its measured share; rate → `factor` × its measured message rate. For
/// memory, mailbox and stall breaches a throttle only records the state: slowing the
/// actor frees no memory and makes a backlog (or a wedge) worse (seen in a leak drill:
/// a rate-throttled consumer fell behind its producers until its mailbox tripped) — the
/// group's hard action deals with them. Suspend holds its messages; recover opens the gate.
///
/// A worker standing for work in another process ([`crate::external`]) has the same
/// actions carried out by the kernel on that process: a CPU throttle to `factor` × its
/// measured share in cores, a suspension by freezing it, a recovery by thawing it and
/// lifting its CPU limit. Its own gate follows as for any worker, so that `gate_state`
/// and the tree agree, and so that while the process is frozen the messages the worker
/// would forward to it wait, in order, in its mailbox here (none lost in a frozen peer's
/// buffers); the worker's own handlers only forward, so a duty cycle on them costs nothing.
pub(crate) fn apply_gate(decision: &Decision, usage: &Usage, counters: &Counters) -> bool {
    let external = || counters.external();
    match decision.action {
        Action::Warn => true,
        Action::Throttle { factor } => {
            match decision.resource {
                Resource::Cpu => {
                    let cpu = usage.get(Resource::Cpu);
                    if let Some(external) = external() {
                        external.throttle((cpu * factor).max(0.001));
                    }
                    counters.throttle(None, Some((cpu * factor).clamp(0.001, 1.0)));
                }
                Resource::Rate => {
                    let rate = usage.get(Resource::Rate);
                    counters.throttle(Some((rate * factor).max(1.0)), None);
                }
                Resource::Memory | Resource::Mailbox | Resource::Stall => {}
            }
            true
        }
        Action::Suspend => {
            if let Some(external) = external() {
                external.suspend();
            }
            counters.suspend();
            true
        }
        Action::Recover => {
            if let Some(external) = external() {
                external.resume();
            }
            counters.resume();
            true
        }
        Action::Restart | Action::Terminate => false,
        // Carried out through the child's external before it is recorded.
        Action::Migrate { .. } => true,
    }
}

/// The sampling period a supervisor uses when quotas are on.
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(100);

    /// A governed child of the built-in critical group (stall 0.1 / 0.15 / 0.2 s).
    fn critical() -> Governed {
        Governed::new("critical".into(), QuotaGroup::critical())
    }

    /// Samples at `t0 + ms` with `sent` and `handled` so far; the stall read and the
    /// action decided.
    fn at(
        g: &mut Governed,
        c: &Counters,
        t0: Instant,
        ms: u64,
        (sent, handled): (u64, u64),
    ) -> (f64, Option<Action>) {
        c.set_counts(sent, handled);
        let now = t0 + Duration::from_millis(ms);
        let out = g.sample("root/x", c, now, TICK, &Pressure::default());
        let stall = g
            .stuck_since
            .map_or(0.0, |s| now.saturating_duration_since(s).as_secs_f64());
        (stall, out.map(|(d, _)| d.action))
    }

    #[test]
    fn stall_counts_from_one_interval_before_the_first_stuck_sample() {
        let (mut g, c, t0) = (critical(), Counters::default(), Instant::now());
        assert_eq!(at(&mut g, &c, t0, 0, (1, 1)), (0.0, None), "baseline");
        // Started the message it hangs in; two more wait: progress, not stuck.
        assert_eq!(at(&mut g, &c, t0, 100, (4, 2)), (0.0, None));
        assert_eq!(at(&mut g, &c, t0, 200, (6, 2)), (0.1, Some(Action::Warn)));
        assert_eq!(
            at(&mut g, &c, t0, 300, (9, 2)),
            (0.2, Some(Action::Restart))
        );
    }

    #[test]
    fn progress_an_empty_mailbox_or_a_closed_gate_ends_a_stall() {
        let (mut g, c, t0) = (critical(), Counters::default(), Instant::now());
        at(&mut g, &c, t0, 0, (5, 1));
        assert_eq!(at(&mut g, &c, t0, 100, (5, 1)).0, 0.1);
        assert_eq!(
            at(&mut g, &c, t0, 200, (5, 2)).0,
            0.0,
            "one message started"
        );
        assert_eq!(at(&mut g, &c, t0, 300, (5, 2)).0, 0.1);
        assert_eq!(at(&mut g, &c, t0, 400, (5, 5)).0, 0.0, "nothing waiting");
        assert_eq!(at(&mut g, &c, t0, 500, (5, 5)).0, 0.0, "idle is not stuck");
        c.suspend();
        assert_eq!(at(&mut g, &c, t0, 600, (8, 5)).0, 0.0, "held at its gate");
        assert_eq!(at(&mut g, &c, t0, 700, (8, 5)).0, 0.0);
        c.resume();
        assert_eq!(at(&mut g, &c, t0, 800, (8, 5)).0, 0.1);
    }

    #[test]
    fn a_runtime_stall_counts_as_one_interval_not_a_wedge() {
        let (mut g, c, t0) = (critical(), Counters::default(), Instant::now());
        at(&mut g, &c, t0, 0, (1, 1));
        // Nothing ran for 2 s, the sampling neither: one interval's stall, a warning.
        assert_eq!(at(&mut g, &c, t0, 2000, (3, 1)), (0.1, Some(Action::Warn)));
        // The child runs again as soon as the runtime does.
        assert_eq!(at(&mut g, &c, t0, 2100, (3, 3)), (0.0, None));
    }

    #[test]
    fn other_built_in_groups_read_stall_but_never_act_on_it() {
        for name in ["lightweight", "standard", "heavy"] {
            let mut g = Governed::new(name.into(), QuotaGroup::named(name).unwrap());
            let (c, t0) = (Counters::default(), Instant::now());
            at(&mut g, &c, t0, 0, (2, 1));
            for ms in (100..=3000).step_by(100) {
                let (stall, action) = at(&mut g, &c, t0, ms, (2, 1));
                assert!(stall > 0.0);
                assert_eq!(action, None, "{name} at {ms} ms");
            }
        }
    }

    #[test]
    fn a_live_group_is_adopted_at_the_next_sample_and_after_a_restart() {
        let pressure = Pressure::default();
        let mut g = Governed::new("lightweight".into(), QuotaGroup::lightweight());
        let (c, t0) = (Counters::default(), Instant::now());
        // A group that restarts at 1 message per second.
        let mut tight = QuotaGroup::lightweight();
        tight.rate = Some(crate::quota::Limits::midway(0.5, 1.0));
        tight.hard_action = crate::quota::HardAction::Restart;
        pressure.live().set("root/other", "tight", tight.clone());
        c.set_counts(0, 0);
        assert!(g.sample("root/x", &c, t0, TICK, &pressure).is_none());
        assert_eq!(
            g.group_name, "lightweight",
            "another path's entry changes nothing"
        );
        pressure.live().set("root/x", "tight", tight);
        c.set_counts(10, 10);
        let (d, _) = g
            .sample("root/x", &c, t0 + TICK, TICK, &pressure)
            .expect("100 msgs/s is over the new hard limit");
        assert_eq!(
            (g.group_name.as_str(), d.action),
            ("tight", Action::Restart)
        );
        // A new child (its supervisor restarted, its spec says lightweight) adopts it too.
        let mut fresh = Governed::new("lightweight".into(), QuotaGroup::lightweight());
        assert!(fresh.sample("root/x", &c, t0, TICK, &pressure).is_none());
        assert_eq!(fresh.group_name, "tight");
    }

    #[test]
    fn a_throttle_on_stall_only_records_the_state() {
        let c = Counters::default();
        let d = Decision {
            action: Action::Throttle { factor: 0.5 },
            resource: Resource::Stall,
            usage: 1.0,
            limit: 0.2,
            state_after: QuotaStatus::Throttled(0.5),
        };
        assert!(apply_gate(&d, &Usage::default(), &c));
        assert_eq!(c.gate_state(), "open");
    }
}
