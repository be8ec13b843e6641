//! Live reload on SIGHUP, with probation and rollback.
//!
//! A reload re-reads the file the run was started with and validates it whole, as at
//! start ([`Config::load`]). It is refused whole — the robot runs on under the
//! configuration in force, and an error names every key — when the file is invalid or
//! when it changes a key that needs a restart ([`diff`]); a file that changes nothing
//! is only logged. Otherwise its live keys are put in force at once: quota groups (in
//! the tree's [`LiveQuotas`], by worker path), the thresholds and limits the actors read
//! from [`LiveConfig`](crate::config::reload::LiveConfig), and the log filter; the
//! config generation goes up by one.
//!
//! **Probation.** For `reload.probation_s` after it (the new file's value), the reload
//! is on probation. It fails, and is rolled back, when within that window:
//! - any supervisor of the tree gives up ([`TreeEvent::Escalated`]), or
//! - the tree restarts children more than `supervision.max_restarts` times within any
//!   `supervision.period_s` ([`TreeEvent::ChildRestarted`], counted over the whole
//!   tree): more than one supervisor's intensity allows, so a storm, whichever
//!   supervisor it hits (one subscriber losing events to lag counts as a storm too).
//!
//! A rollback puts the last configuration that passed its probation back in force (the
//! start's, if none has yet) and is a generation of its own: generations only go up, so
//! a scraper sees every change (start 1, reload 2, rollback 3 with generation 1's
//! content). A reload during a probation ends that probation without passing it: a
//! rollback then still returns to the last good configuration. The robot keeps running
//! throughout; only the root giving up ends a run, as always.
//!
//! Every outcome is a [`ReloadEvent`] on a broadcast channel ([`Reloads::subscribe`]),
//! for whoever records them (an audit trail).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nevil_actors::quota::LiveQuotas;
use nevil_actors::{ChildKind, TreeEvent, TreeView};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::config::reload::{diff, Generation, LiveConfigSender};
use crate::config::Config;
use crate::services::audit::{Audit, ConfigOutcome};

/// Sets the log filter to `Some(filter)` (`log.level`), or `None` for the run's
/// default; why it could not.
pub type SetFilter = dyn Fn(Option<&str>) -> Result<(), String> + Send + Sync;

/// How a reload changes the log filter (the CLI's logging, which this layer cannot name).
#[derive(Clone)]
pub struct LogFilter(pub Arc<SetFilter>);

impl std::fmt::Debug for LogFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogFilter")
    }
}

/// The outcome of one reload, as published on the reload channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadEvent {
    /// The new configuration is in force (and on probation).
    Applied {
        /// The generation now in force.
        generation: u64,
        /// The keys it changed.
        keys: Vec<String>,
    },
    /// The reload was refused; the configuration in force did not change.
    Refused {
        /// The generation still in force.
        generation: u64,
        /// Why: each a key and what is wrong with it.
        problems: Vec<String>,
    },
    /// A reload failed its probation and the last good configuration is back.
    RolledBack {
        /// The generation now in force (a new one, holding `restored`'s content).
        generation: u64,
        /// The generation whose configuration was put back.
        restored: u64,
        /// The keys the rollback changed back.
        keys: Vec<String>,
        /// What failed the probation.
        cause: String,
    },
}

/// How many reload events a subscriber may fall behind.
const CHANNEL: usize = 64;

/// The run's reload machinery as its robot holds it: a SIGHUP asks it to reload, and
/// anyone may subscribe to the outcomes.
pub struct Reloads {
    requests: mpsc::UnboundedSender<()>,
    events: broadcast::Sender<ReloadEvent>,
    generation: Generation,
    task: tokio::task::JoinHandle<()>,
    /// The task appending outcomes to the audit trail, if the run has one.
    audit: Option<tokio::task::JoinHandle<()>>,
}

impl Reloads {
    /// Starts the reloader of a run whose configuration `config` came from `path` (the
    /// embedded default when `None`), for the running `tree`.
    pub(super) fn start(
        config: Arc<Config>,
        path: Option<PathBuf>,
        tree: &TreeView,
        live: LiveConfigSender,
        generation: Generation,
        log: Option<LogFilter>,
    ) -> Self {
        let (requests, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(CHANNEL);
        let workers = tree
            .snapshot()
            .root
            .walk()
            .into_iter()
            .filter(|n| n.kind == ChildKind::Worker)
            .map(|n| n.path.to_string())
            .collect();
        let reloader = Reloader {
            path,
            good: (config.clone(), generation.get()),
            current: config,
            probation: None,
            generation: generation.clone(),
            live,
            quotas: tree.pressure().live().clone(),
            workers,
            log,
            events: events.clone(),
        };
        let task = tokio::spawn(reloader.run(rx, tree.subscribe()));
        Self {
            requests,
            events,
            generation,
            task,
            audit: None,
        }
    }

    /// Appends every outcome from now on to `audit` as a `config` entry: its
    /// generation, the outcome, `origin` (the file) and the keys changed, refused (each
    /// problem), or rolled back (then last, `cause: …`).
    pub(super) fn audit_to(&mut self, audit: Audit, origin: Option<String>) {
        let mut rx = self.subscribe();
        self.audit = Some(tokio::spawn(async move {
            loop {
                let event = match rx.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::error!(lost = n, "audit: reload outcomes lost");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let origin = origin.as_deref();
                match event {
                    ReloadEvent::Applied { generation, keys } => {
                        audit.config(generation, ConfigOutcome::Applied, origin, &keys);
                    }
                    ReloadEvent::Refused {
                        generation,
                        problems,
                    } => audit.config(generation, ConfigOutcome::Refused, origin, &problems),
                    ReloadEvent::RolledBack {
                        generation,
                        mut keys,
                        cause,
                        ..
                    } => {
                        keys.push(format!("cause: {cause}"));
                        audit.config(generation, ConfigOutcome::RolledBack, origin, &keys);
                    }
                }
            }
        }));
    }

    /// Asks for a reload (SIGHUP); it runs beside the caller.
    pub fn request(&self) {
        if self.requests.send(()).is_err() {
            tracing::error!("reload requested, but the reloader has stopped");
        }
    }

    /// A receiver of every reload outcome from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ReloadEvent> {
        self.events.subscribe()
    }

    /// The run's config generation.
    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    /// Stops the reloader (at shutdown).
    pub(super) fn stop(&self) {
        self.task.abort();
        if let Some(audit) = &self.audit {
            audit.abort();
        }
    }
}

/// A reload on probation.
struct Probation {
    since: Instant,
    until: Instant,
    /// When the tree restarted a child since, within the last intensity period.
    restarts: VecDeque<Instant>,
}

struct Reloader {
    path: Option<PathBuf>,
    current: Arc<Config>,
    /// The last configuration that passed probation (or the start's), and its generation.
    good: (Arc<Config>, u64),
    probation: Option<Probation>,
    generation: Generation,
    live: LiveConfigSender,
    quotas: LiveQuotas,
    /// Every worker's path: the tree's layout does not change live.
    workers: Vec<String>,
    log: Option<LogFilter>,
    events: broadcast::Sender<ReloadEvent>,
}

impl Reloader {
    async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<()>,
        mut tree: broadcast::Receiver<TreeEvent>,
    ) {
        loop {
            let until = self.probation.as_ref().map(|p| p.until);
            let deadline = async {
                match until {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                request = requests.recv() => match request {
                    Some(()) => self.reload().await,
                    None => return,
                },
                event = tree.recv() => match event {
                    Ok(event) => self.observe(&event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        if self.probation.is_some() {
                            self.roll_back(format!("{n} tree events lost to lag: a storm"));
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = deadline => self.passed(),
            }
        }
    }

    fn publish(&self, event: ReloadEvent) {
        // No subscriber is fine: the log has it too.
        let _ = self.events.send(event);
    }

    fn refuse(&self, problems: Vec<String>) {
        tracing::error!(
            problems = %problems.join("; "),
            generation = self.generation.get(),
            "reload refused; running on under the configuration in force"
        );
        self.publish(ReloadEvent::Refused {
            generation: self.generation.get(),
            problems,
        });
    }

    /// SIGHUP: reads (on the blocking pool, off the async workers), validates, and
    /// applies or refuses.
    async fn reload(&mut self) {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || Config::load(path.as_deref())).await;
        let new = match loaded {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return self.refuse(e.problems()),
            Err(e) => return self.refuse(vec![format!("reading the config failed: {e}")]),
        };
        let d = diff(&self.current, &new);
        if !d.restart.is_empty() {
            return self.refuse(d.refusals());
        }
        if d.is_empty() {
            tracing::info!(
                generation = self.generation.get(),
                "reload: the file changes nothing"
            );
            return;
        }
        let probation = new.reload.probation();
        self.apply(Arc::new(new));
        let generation = self.generation.bump();
        tracing::info!(
            generation,
            keys = %d.live.join(", "),
            probation_s = probation.as_secs_f64(),
            "reload applied; on probation"
        );
        let now = Instant::now();
        self.probation = Some(Probation {
            since: now,
            until: now + probation,
            restarts: VecDeque::new(),
        });
        self.publish(ReloadEvent::Applied {
            generation,
            keys: d.live,
        });
    }

    /// Puts `config` in force: quotas, the actors' live configuration, the log filter.
    fn apply(&mut self, config: Arc<Config>) {
        let quotas = &config.quotas;
        self.quotas.set_all(self.workers.iter().map(|path| {
            (
                path.clone(),
                quotas.group_name_for(path).to_string(),
                quotas.group_for(path),
            )
        }));
        if config.log.level != self.current.log.level {
            if let Some(log) = &self.log {
                if let Err(e) = (log.0)(config.log.level.as_deref()) {
                    tracing::error!(error = %e, "log.level: could not set the log filter");
                }
            }
        }
        self.live.send(config.clone());
        self.current = config;
    }

    /// A tree event: during probation, an escalation or one restart too many fails it.
    fn observe(&mut self, event: &TreeEvent) {
        let Some(p) = self.probation.as_mut() else {
            return;
        };
        if event.at() < p.since {
            return;
        }
        let sup = &self.current.supervision;
        if let Some(cause) = storm(p, event, sup.max_restarts, sup.period_s) {
            self.roll_back(cause);
        }
    }

    /// Probation failed: the last good configuration goes back in force.
    fn roll_back(&mut self, cause: String) {
        self.probation = None;
        let (good, restored) = self.good.clone();
        let keys = diff(&self.current, &good).live;
        self.apply(good);
        let generation = self.generation.bump();
        tracing::error!(
            generation,
            restored,
            %cause,
            keys = %keys.join(", "),
            "reload rolled back"
        );
        self.publish(ReloadEvent::RolledBack {
            generation,
            restored,
            keys,
            cause,
        });
    }

    /// Probation passed: the configuration in force is the new good one.
    fn passed(&mut self) {
        self.probation = None;
        self.good = (self.current.clone(), self.generation.get());
        tracing::info!(
            generation = self.generation.get(),
            "reload passed its probation"
        );
    }
}

/// Whether `event` fails probation `p`: a supervisor gave up, or the tree restarted
/// children more than `max_restarts` times within `period_s`. What failed it, if so.
fn storm(p: &mut Probation, event: &TreeEvent, max_restarts: u32, period_s: f64) -> Option<String> {
    match event {
        TreeEvent::Escalated {
            path,
            child,
            reason,
            ..
        } => Some(format!(
            "{path} gave up (escalated) after {child} exited: {reason}"
        )),
        TreeEvent::ChildRestarted { at, path, .. } => {
            let period = Duration::from_secs_f64(period_s);
            p.restarts.push_back(*at);
            while p
                .restarts
                .front()
                .is_some_and(|t| at.saturating_duration_since(*t) > period)
            {
                p.restarts.pop_front();
            }
            (p.restarts.len() > max_restarts as usize).then(|| {
                format!(
                    "restart storm: {} restarts within {period_s} s (the last of {path}), \
                     more than supervision.max_restarts ({max_restarts})",
                    p.restarts.len()
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nevil_actors::{ActorPath, ExitReason};

    fn probation(at: Instant) -> Probation {
        Probation {
            since: at,
            until: at + Duration::from_secs(30),
            restarts: VecDeque::new(),
        }
    }

    fn restarted(at: Instant) -> TreeEvent {
        TreeEvent::ChildRestarted {
            at,
            path: ActorPath::root("root").child("w"),
            restarts: 1,
        }
    }

    #[test]
    fn more_restarts_than_the_intensity_within_its_period_is_a_storm() {
        let t0 = Instant::now();
        let mut p = probation(t0);
        let s = Duration::from_secs(1);
        // 5 allowed within 10 s: the sixth within 10 s of the first is one too many.
        for i in 0..5 {
            assert_eq!(storm(&mut p, &restarted(t0 + s * i), 5, 10.0), None);
        }
        let cause = storm(&mut p, &restarted(t0 + s * 9), 5, 10.0).unwrap();
        assert!(cause.contains("6 restarts within 10 s"), "{cause}");
    }

    #[test]
    fn restarts_spread_wider_than_the_period_are_no_storm() {
        let t0 = Instant::now();
        let mut p = probation(t0);
        for i in 0..20 {
            let at = t0 + Duration::from_millis(2100) * i;
            assert_eq!(storm(&mut p, &restarted(at), 5, 10.0), None, "restart {i}");
        }
    }

    #[test]
    fn an_escalation_is_a_failure_at_once_and_other_events_are_not() {
        let t0 = Instant::now();
        let mut p = probation(t0);
        let exited = TreeEvent::ChildExited {
            at: t0,
            path: ActorPath::root("root").child("w"),
            reason: ExitReason::Normal,
            restart: true,
            delay: None,
        };
        assert_eq!(storm(&mut p, &exited, 0, 10.0), None);
        let escalated = TreeEvent::Escalated {
            at: t0,
            path: ActorPath::root("root").child("control"),
            child: ActorPath::root("root").child("control").child("w"),
            reason: ExitReason::Normal,
        };
        let cause = storm(&mut p, &escalated, 5, 10.0).unwrap();
        assert!(cause.starts_with("root/control gave up"), "{cause}");
    }

    #[test]
    fn reload_events_serialize_with_their_outcome() {
        let e = ReloadEvent::RolledBack {
            generation: 3,
            restored: 1,
            keys: vec!["quotas.groups.tight".into()],
            cause: "storm".into(),
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["outcome"], "rolled_back");
        assert_eq!(json["restored"], 1);
    }
}
