//! A pure reference model of one supervisor's decisions: OTP's `supervisor.erl`
//! (`do_restart/3`, `restart/2,3`, `add_restart/1`, `restart_multiple_children/3`,
//! `handle_start_child/2`, `terminate_child`, `restart_child`), restated over plain data,
//! with no actors, no tokio and no code shared with `nevil_actors`.
//!
//! It is fed what happens to a supervisor (a child exits, a call is made, time passes) and
//! says what the supervisor must do, in order: the decisions it publishes on the tree's
//! event feed ([`Decision`]), the starts and stops its children see ([`Life`]), what its
//! calls answer ([`CallResult`]) and its child table afterwards ([`Listed`]).
//!
//! Where nevil deliberately differs from OTP, the model encodes nevil's documented
//! semantics and says so at the spot (search for "OTP:"):
//!
//! - `stop_child` is `terminate_child` followed by `delete_child`.
//! - A retried restart under `one_for_all` starts only the failed child and the children
//!   after it (the ones before it already run their new incarnation); OTP's
//!   `try_again_restart` stops and restarts all of them again.
//! - Reasons are nevil's `ExitReason`s: `Killed` and `StartupFailure` are abnormal, as in
//!   OTP; there is no `{shutdown, Term}`.
//! - Backoff (seed 004): OTP restarts at once. With a backoff, nevil counts the restart
//!   when the child exits but starts the group after a delay, `min(base·2ⁿ, max)` times
//!   a jitter in 0.8–1.2 drawn from the supervisor's seeded source, n the child's
//!   consecutive restarts (0 again once it stayed up `reset_after`); meanwhile the group
//!   is `restarting`. The model draws the jitter from its own `fastrand` generator with
//!   the supervisor's seed (one draw per counted restart, as nevil documents), and keeps
//!   its own timers, due on the tokio timer wheel's millisecond tick.
//! - A child that fails its first start is retried as a crash while the intensity
//!   allows (OTP's `init` fails the supervisor's start at once).
//! - Each child counts its restarts (OTP keeps no such count): one per restart it is
//!   planned into, a retry of its own failed start included, but not again when a plan
//!   it waits for is replaced by another; a manual `restart_child` counts too.
//! - Quota kills and `auto_shutdown`/significant children are not modelled (the
//!   property test runs without quotas).
//!
//! What is the same as OTP: permanent children always restart; transient ones only
//! after an abnormal exit, and otherwise stay in the table with no incarnation until
//! `restart_child`; temporary ones never, and are removed. `rest_for_one` restarts the
//! child and those started after it, `one_for_all` every child; siblings are stopped last
//! started first and temporary siblings are dropped. Each restart (a retry of a failed
//! restart included) is counted first: when the restarts within the period, this one
//! included, are more than the intensity, the supervisor stops all its children, last
//! started first, and gives up (escalates). A manual `restart_child` is not counted. A
//! child whose dynamic start fails is not kept.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::Duration;

/// nevil's restart backoff, as configured.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub reset_after: Duration,
    /// The seed of the supervisor's jitter source.
    pub seed: u64,
}

/// Which siblings restart with a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    OneForOne,
    RestForOne,
    OneForAll,
}

/// When a child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartType {
    Permanent,
    Transient,
    Temporary,
}

/// Why an incarnation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Normal,
    Shutdown,
    Error,
    Panic,
    Killed,
    StartupFailure,
}

impl Reason {
    /// OTP: anything but `normal`, `shutdown` (and `{shutdown, _}`) is abnormal.
    pub fn is_abnormal(self) -> bool {
        !matches!(self, Self::Normal | Self::Shutdown)
    }
}

/// The supervisor's flags.
#[derive(Debug, Clone, Copy)]
pub struct Flags {
    pub strategy: Strategy,
    /// MaxR.
    pub intensity: u32,
    /// MaxT.
    pub period: Duration,
    /// nevil's restart delay, if any.
    pub backoff: Option<Backoff>,
}

/// What the supervisor publishes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A child's incarnation ended by itself (or failed to start), and whether the
    /// supervisor restarts it.
    Exited {
        name: String,
        reason: Reason,
        restart: bool,
        /// The backoff delay before that restart.
        delay: Option<Duration>,
    },
    /// A new incarnation of a child that had one before is up; `restarts` is its count
    /// of restarts, this one included.
    Restarted { name: String, restarts: u64 },
    /// The supervisor gave up; `child` is the one whose exit was one too many.
    Escalated { child: String },
}

/// What a child's own code sees: `start` (its init ran), `stop` (its terminate ran; a
/// killed incarnation runs none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Life {
    Start(String, u32),
    Stop(String, u32),
}

impl std::fmt::Display for Life {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Start(n, i) => write!(f, "start {n}#{i}"),
            Self::Stop(n, i) => write!(f, "stop {n}#{i}"),
        }
    }
}

/// What a call answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    Ok,
    /// A child of that name is already in the table.
    Duplicate,
    NoSuchChild,
    Running,
    Restarting,
    StartFailed,
}

/// What a child is, as `which_children` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// It runs.
    Live,
    /// It waits for its (backed-off) restart.
    Restarting,
    /// It is down and stays down until `restart_child` (OTP: `undefined`).
    Undefined,
}

/// One child as `which_children` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub state: State,
}

/// A restart the supervisor has scheduled (nevil's backoff).
#[derive(Debug, Clone)]
struct Timer {
    due: Duration,
    generation: u64,
    group: Vec<String>,
}

#[derive(Debug, Clone)]
struct Child {
    name: String,
    restart: RestartType,
    /// The incarnation running, if any (OTP: its pid, or `undefined`).
    incarnation: Option<u32>,
    restarts: u64,
    /// Planned for a restart that has not started it yet (a child's restart is counted
    /// once, when it is planned, not again when the plan is retried or replaced).
    waiting: bool,
    /// The restart (generation) it waits for.
    pending: Option<u64>,
    /// When its current or last incarnation started.
    started_at: Option<Duration>,
    /// Its consecutive restarts, for the backoff.
    attempt: u32,
}

/// One supervisor, as OTP would run it.
#[derive(Debug)]
pub struct Model {
    flags: Flags,
    children: Vec<Child>,
    /// Times of the restarts counted, newest first (OTP's `#state.restarts`).
    restarts: Vec<Duration>,
    escalated: bool,
    /// Incarnations ever started per name (a name reused by a new child continues).
    incarnations: HashMap<String, u32>,
    /// How many more starts of a name fail.
    failing_starts: HashMap<String, u32>,
    decisions: Vec<Decision>,
    life: Vec<Life>,
    timers: Vec<Timer>,
    /// Two restarts were scheduled for the same tick (their order is then the timer
    /// wheel's, not the model's).
    tied: bool,
    next_generation: u64,
    /// The jitter source: the same generator, seeded as the supervisor's.
    rng: fastrand::Rng,
    /// When the supervisor's own start ended.
    started_at: Duration,
}

impl Model {
    /// A supervisor with `flags` that starts `children` in order at time zero, the first
    /// `failing` starts of each failing. See [`Model::escalated`] for whether it started
    /// and [`Model::started_at`] for when (a backoff delays the retries).
    pub fn start(flags: Flags, children: &[(String, RestartType, u32)]) -> Self {
        let mut model = Self {
            flags,
            children: Vec::new(),
            restarts: Vec::new(),
            escalated: false,
            incarnations: HashMap::new(),
            failing_starts: HashMap::new(),
            decisions: Vec::new(),
            life: Vec::new(),
            timers: Vec::new(),
            tied: false,
            next_generation: 0,
            rng: fastrand::Rng::with_seed(flags.backoff.map_or(0, |b| b.seed)),
            started_at: Duration::ZERO,
        };
        for (name, restart, failing) in children {
            if *failing > 0 {
                model.fail_starts(name, *failing);
            }
            let mut child = Child::new(name, *restart, 0, Duration::ZERO);
            child.incarnation = None;
            child.started_at = None;
            model.children.push(child);
        }
        let mut now = Duration::ZERO;
        for (name, ..) in children {
            let mut failed = false;
            while let Some(pos) = model.pos(name) {
                if let Some(incarnation) = model.try_start(name) {
                    let child = &mut model.children[pos];
                    child.incarnation = Some(incarnation);
                    child.started_at = Some(now);
                    if failed {
                        let restarts = child.restarts;
                        model.decisions.push(Decision::Restarted {
                            name: name.clone(),
                            restarts,
                        });
                    }
                    break;
                }
                // OTP: a child that fails to start fails the supervisor's own start at
                // once. nevil retries it as a crash, counted against the intensity, after
                // the backoff delay (the supervisor sleeps in its own start).
                failed = true;
                if model.children[pos].restart == RestartType::Temporary {
                    model.exited(name, Reason::StartupFailure, false);
                    model.children.remove(pos);
                    break;
                }
                if !model.add_restart(now) {
                    model.give_up(name, Reason::StartupFailure);
                    model.started_at = now;
                    return model;
                }
                model.children[pos].restarts += 1;
                let delay = model.next_delay(name, now);
                model.exited_after(name, Reason::StartupFailure, true, delay);
                if let Some(delay) = delay {
                    now = tick(now + delay);
                }
            }
        }
        model.started_at = now;
        model
    }

    /// When the supervisor's start ended.
    pub fn started_at(&self) -> Duration {
        self.started_at
    }

    /// More restarts than the intensity allows, the last caused by `failing`: the
    /// supervisor stops its children, last started first, and escalates.
    fn give_up(&mut self, failing: &str, reason: Reason) {
        self.exited(failing, reason, false);
        self.decisions.push(Decision::Escalated {
            child: failing.to_string(),
        });
        for name in self.running().into_iter().rev() {
            self.terminate(&name);
        }
        self.escalated = true;
    }

    /// Whether two restarts were ever due in the same millisecond tick: from then on
    /// the order of what they do is the timer wheel's, which the model does not know.
    pub fn tied(&self) -> bool {
        self.tied
    }

    /// Time passes up to `now`: the scheduled restarts due by then run, in order.
    pub fn advance(&mut self, now: Duration) {
        loop {
            let Some(i) = (0..self.timers.len())
                .filter(|&i| self.timers[i].due <= now)
                .min_by_key(|&i| self.timers[i].due)
            else {
                return;
            };
            let timer = self.timers.remove(i);
            if self.escalated {
                return;
            }
            self.run_group(&timer.group, timer.generation, timer.due);
        }
    }

    /// Whether the supervisor has given up.
    pub fn escalated(&self) -> bool {
        self.escalated
    }

    /// The decisions and lifecycle events since the last call, in order.
    pub fn take(&mut self) -> (Vec<Decision>, Vec<Life>) {
        (
            std::mem::take(&mut self.decisions),
            std::mem::take(&mut self.life),
        )
    }

    /// The child table, in start order.
    pub fn which_children(&self) -> Vec<Listed> {
        self.children
            .iter()
            .map(|c| Listed {
                name: c.name.clone(),
                state: match (c.incarnation, c.pending) {
                    (Some(_), _) => State::Live,
                    (None, Some(_)) => State::Restarting,
                    (None, None) => State::Undefined,
                },
            })
            .collect()
    }

    /// The children with a live incarnation, in start order.
    pub fn running(&self) -> Vec<String> {
        self.children
            .iter()
            .filter(|c| c.incarnation.is_some())
            .map(|c| c.name.clone())
            .collect()
    }

    /// Every child in the table, in start order.
    pub fn names(&self) -> Vec<String> {
        self.children.iter().map(|c| c.name.clone()).collect()
    }

    /// The next `times` starts of `name` fail (replacing any count set before).
    pub fn fail_starts(&mut self, name: &str, times: u32) {
        self.failing_starts.insert(name.to_string(), times);
    }

    fn pos(&self, name: &str) -> Option<usize> {
        self.children.iter().position(|c| c.name == name)
    }

    fn child_mut(&mut self, name: &str) -> Option<&mut Child> {
        self.children.iter_mut().find(|c| c.name == name)
    }

    /// Runs a start of `name`'s code: the next incarnation number, logged as started.
    fn begin(&mut self, name: &str) -> u32 {
        let n = self.incarnations.entry(name.to_string()).or_insert(0);
        *n += 1;
        let incarnation = *n;
        self.life.push(Life::Start(name.to_string(), incarnation));
        incarnation
    }

    /// Starts `name`'s code; `None` if this start fails.
    fn try_start(&mut self, name: &str) -> Option<u32> {
        let incarnation = self.begin(name);
        match self.failing_starts.get_mut(name) {
            Some(n) if *n > 0 => {
                *n -= 1;
                None
            }
            _ => Some(incarnation),
        }
    }

    /// The supervisor stops child `name` (graceful: its terminate runs); a restart it
    /// waited for is called off (the one that replaces it, if any, is the same restart).
    fn terminate(&mut self, name: &str) {
        if let Some(child) = self.child_mut(name) {
            child.pending = None;
            if let Some(incarnation) = child.incarnation.take() {
                self.life.push(Life::Stop(name.to_string(), incarnation));
            }
        }
    }

    /// OTP's `add_restart/1`: the restart at `now` joins those within the period; more
    /// than the intensity and the supervisor must give up.
    fn add_restart(&mut self, now: Duration) -> bool {
        let period = self.flags.period;
        let mut kept = vec![now];
        kept.extend(
            self.restarts
                .iter()
                .copied()
                .filter(|&then| now.saturating_sub(then) <= period),
        );
        if kept.len() > self.flags.intensity as usize {
            return false;
        }
        self.restarts = kept;
        true
    }

    /// The child at `name` exited by itself with `reason` at `now`; `kill` when it was
    /// killed (then its terminate does not run).
    pub fn exit(&mut self, name: &str, reason: Reason, now: Duration) {
        let Some(pos) = self.pos(name) else {
            return;
        };
        let Some(incarnation) = self.children[pos].incarnation.take() else {
            return;
        };
        if reason != Reason::Killed {
            self.life.push(Life::Stop(name.to_string(), incarnation));
        }
        let restart = self.children[pos].restart;
        // OTP's do_restart/3.
        let restarts = match (restart, reason) {
            (RestartType::Permanent, _) => true,
            (RestartType::Transient, r) => r.is_abnormal(),
            (RestartType::Temporary, _) => false,
        };
        if !restarts {
            self.exited(name, reason, false);
            if restart == RestartType::Temporary {
                self.children.remove(pos);
            }
            return;
        }
        let group: Vec<String> = match self.flags.strategy {
            Strategy::OneForOne => vec![name.to_string()],
            Strategy::RestForOne => self.children[pos..]
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            Strategy::OneForAll => self.names(),
        };
        // Siblings stop last started first; temporary ones are dropped, not restarted.
        for sibling in group.iter().rev().filter(|s| *s != name) {
            self.terminate(sibling);
        }
        let temporary: Vec<String> = group
            .iter()
            .filter(|s| *s != name)
            .filter(|s| {
                self.children
                    .iter()
                    .any(|c| &c.name == *s && c.restart == RestartType::Temporary)
            })
            .cloned()
            .collect();
        self.children.retain(|c| !temporary.contains(&c.name));
        let group: Vec<String> = group
            .into_iter()
            .filter(|s| !temporary.contains(s))
            .collect();
        self.restart(name, reason, group, now);
    }

    fn exited(&mut self, name: &str, reason: Reason, restart: bool) {
        self.exited_after(name, reason, restart, None);
    }

    fn exited_after(&mut self, name: &str, reason: Reason, restart: bool, delay: Option<Duration>) {
        self.decisions.push(Decision::Exited {
            name: name.to_string(),
            reason,
            restart,
            delay,
        });
    }

    /// nevil's backoff delay before restarting `name` at `now`, advancing its run of
    /// consecutive restarts.
    fn next_delay(&mut self, name: &str, now: Duration) -> Option<Duration> {
        let backoff = self.flags.backoff?;
        let child = self.children.iter_mut().find(|c| c.name == name)?;
        let healthy = child
            .started_at
            .is_some_and(|t| now.saturating_sub(t) >= backoff.reset_after);
        let attempt = if healthy { 0 } else { child.attempt };
        child.attempt = attempt.saturating_add(1);
        let nominal = (backoff.base.as_secs_f64() * 2f64.powi(attempt.min(1023) as i32))
            .min(backoff.max.as_secs_f64());
        let jitter = 0.8 + (1.2 - 0.8) * self.rng.f64();
        Some(Duration::try_from_secs_f64(nominal * jitter).unwrap_or(Duration::MAX))
    }

    /// OTP's `restart/2`: counts the restart caused by `failing`, then starts `group`
    /// in order (after the backoff delay, if any), or gives up.
    fn restart(&mut self, failing: &str, reason: Reason, group: Vec<String>, now: Duration) {
        if !self.add_restart(now) {
            self.give_up(failing, reason);
            return;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        for name in &group {
            if let Some(child) = self.child_mut(name) {
                if !child.waiting {
                    child.restarts += 1;
                }
                child.waiting = true;
                child.pending = Some(generation);
            }
        }
        let delay = self.next_delay(failing, now);
        self.exited_after(failing, reason, true, delay);
        match delay {
            None => self.run_group(&group, generation, now),
            Some(delay) => {
                let due = tick(now + delay);
                self.tied |= self.timers.iter().any(|t| t.due == due);
                self.timers.push(Timer {
                    due,
                    generation,
                    group,
                });
            }
        }
    }

    /// Starts the members of `group` still waiting for restart `generation`, in order;
    /// a failed start is a crash of that child, and the rest of the group is planned
    /// again.
    fn run_group(&mut self, group: &[String], generation: u64, now: Duration) {
        for (i, name) in group.iter().enumerate() {
            let Some(child) = self.child_mut(name) else {
                continue;
            };
            if child.pending != Some(generation) {
                continue;
            }
            child.pending = None;
            child.waiting = false;
            match self.try_start(name) {
                Some(incarnation) => {
                    let child = self.child_mut(name).expect("in the table");
                    child.incarnation = Some(incarnation);
                    child.started_at = Some(now);
                    let restarts = child.restarts;
                    self.decisions.push(Decision::Restarted {
                        name: name.clone(),
                        restarts,
                    });
                }
                None => {
                    // A failed start is a crash of that child (no temporary child is in a
                    // restart group: temporary children are never restarted). OTP: retried
                    // by `try_again_restart`, counted again; for `rest_for_one` it restarts
                    // the child and those after it, as here; for `one_for_all` OTP stops
                    // and restarts every child again, nevil only the rest of the group.
                    self.restart(name, Reason::StartupFailure, group[i..].to_vec(), now);
                    return;
                }
            }
        }
    }

    /// `start_child`: a new child, last in start order; one that fails to start is not
    /// kept (OTP's `handle_start_child/2`).
    pub fn start_child(&mut self, name: &str, restart: RestartType, now: Duration) -> CallResult {
        // OTP: `already_started` or `already_present`; nothing is started.
        if self.pos(name).is_some() {
            return CallResult::Duplicate;
        }
        match self.try_start(name) {
            Some(incarnation) => {
                self.children
                    .push(Child::new(name, restart, incarnation, now));
                CallResult::Ok
            }
            None => {
                // nevil reports the failed start like any exit, with no restart.
                self.exited(name, Reason::StartupFailure, false);
                CallResult::StartFailed
            }
        }
    }

    /// `stop_child`. OTP: `terminate_child` then `delete_child`, in one call.
    pub fn stop_child(&mut self, name: &str) -> CallResult {
        let Some(pos) = self.pos(name) else {
            return CallResult::NoSuchChild;
        };
        self.terminate(name);
        self.children.remove(pos);
        CallResult::Ok
    }

    /// `restart_child`: starts a child that is down; not counted against the intensity.
    pub fn restart_child(&mut self, name: &str, now: Duration) -> CallResult {
        let Some(pos) = self.pos(name) else {
            return CallResult::NoSuchChild;
        };
        if self.children[pos].incarnation.is_some() {
            return CallResult::Running;
        }
        if self.children[pos].pending.is_some() {
            return CallResult::Restarting;
        }
        self.children[pos].restarts += 1;
        match self.try_start(name) {
            Some(incarnation) => {
                let child = &mut self.children[pos];
                child.incarnation = Some(incarnation);
                child.started_at = Some(now);
                let restarts = child.restarts;
                self.decisions.push(Decision::Restarted {
                    name: name.to_string(),
                    restarts,
                });
                CallResult::Ok
            }
            None => {
                self.exited(name, Reason::StartupFailure, false);
                CallResult::StartFailed
            }
        }
    }

    /// The supervisor is stopped: its children stop, last started first.
    pub fn shutdown(&mut self) {
        for name in self.running().into_iter().rev() {
            self.terminate(&name);
        }
    }
}

impl Child {
    fn new(name: &str, restart: RestartType, incarnation: u32, now: Duration) -> Self {
        Self {
            name: name.to_string(),
            restart,
            incarnation: Some(incarnation),
            restarts: 0,
            waiting: false,
            pending: None,
            started_at: Some(now),
            attempt: 0,
        }
    }
}

/// When a timer set for `at` fires: tokio's timer wheel counts whole milliseconds and
/// rounds a deadline up to the next one.
pub fn tick(at: Duration) -> Duration {
    let ms = at.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}
