//! The error analytics service: follows the tree's event feed, feeds every abnormal exit
//! to the [`Analytics`], and exports what they find as metrics.
//!
//! The analytics live in an [`AnalyticsHandle`] shared with the tree service (and the
//! HTTP endpoint), not in the actor's state: a report never waits on the actor, and the
//! history survives the actor's own restart. The feed's receiver is shared by the
//! incarnations too (each reads it while it lives; a crashed one lets go in `post_stop`),
//! so events published while the actor restarts — its own crash included — wait for
//! the next incarnation. If the actor falls more than the feed's capacity behind, the
//! lost events are counted (`events_lost` in the report) and logged.
//!
//! Metrics, updated as events arrive and every [`REFRESH`] (risk decays, patterns expire):
//! - `nevil_actor_errors_total{path,kind}` (counter): abnormal exits by exit kind;
//! - `nevil_actor_risk_score{path}` (gauge, 0–1): the actor's risk, for actors that had
//!   errors (reset to 0 if its record is dropped to stay within bounds);
//! - `nevil_error_patterns` (gauge): recurring patterns active now;
//! - `nevil_error_correlations_total` (counter): correlations found between related
//!   actors' errors.

pub mod model;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nevil_actors::{EventFeed, Mailbox, TreeEvent};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::task::JoinHandle;

use crate::core::clock::Clock;
use crate::core::ticker::{self, Timer};
use crate::services::analytics::model::{Analytics, AnalyticsReport, Params};

/// How often decaying risk and expiring patterns are re-exported.
pub const REFRESH: Duration = Duration::from_secs(5);

/// A shared, cheap-to-clone handle on the run's error analytics.
#[derive(Clone)]
pub struct AnalyticsHandle {
    analytics: Arc<Mutex<Analytics>>,
    clock: Clock,
}

impl AnalyticsHandle {
    /// Empty analytics with `params`, timed by the run's `clock`.
    pub fn new(params: Params, clock: Clock) -> Self {
        Self {
            analytics: Arc::new(Mutex::new(Analytics::new(params))),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Analytics> {
        // Poisoned only if a panic hit mid-update; the counts stay usable.
        self.analytics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The analytics as of now (see [`AnalyticsReport`]).
    pub fn report(&self) -> AnalyticsReport {
        let t = self.clock.elapsed();
        self.lock().report(t)
    }

    /// Records one tree event and updates the metrics. Only exits are errors; other
    /// events are ignored.
    pub fn ingest(&self, event: &TreeEvent) {
        let TreeEvent::ChildExited {
            at, path, reason, ..
        } = event
        else {
            return;
        };
        let t = self.clock.since_start(*at);
        let (recorded, risks, patterns) = {
            let mut analytics = self.lock();
            let Some(recorded) = analytics.record(t, path, reason) else {
                return;
            };
            // The partners' risk rose too.
            let risks: Vec<_> = std::iter::once(path)
                .chain(&recorded.partners)
                .map(|p| (p.to_string(), analytics.risk(t, p)))
                .collect();
            (recorded, risks, analytics.active_patterns(t))
        };
        metrics::counter!(
            "nevil_actor_errors_total",
            "path" => path.to_string(),
            "kind" => recorded.kind
        )
        .increment(1);
        metrics::counter!("nevil_error_correlations_total")
            .increment(recorded.partners.len() as u64);
        for (p, risk) in risks {
            metrics::gauge!("nevil_actor_risk_score", "path" => p).set(risk);
        }
        metrics::gauge!("nevil_error_patterns").set(patterns as f64);
        if let Some(gone) = recorded.evicted_actor {
            metrics::gauge!("nevil_actor_risk_score", "path" => gone.to_string()).set(0.0);
        }
    }

    /// Counts `n` events lost by a lagging subscriber.
    pub fn lost(&self, n: u64) {
        self.lock().lost(n);
    }

    /// Re-exports every actor's risk and the active patterns as of now.
    pub fn refresh(&self) {
        let t = self.clock.elapsed();
        let (risks, patterns): (Vec<_>, _) = {
            let analytics = self.lock();
            let risks = analytics
                .risks(t)
                .map(|(p, r)| (p.to_string(), r))
                .collect();
            (risks, analytics.active_patterns(t))
        };
        for (path, risk) in risks {
            metrics::gauge!("nevil_actor_risk_score", "path" => path).set(risk);
        }
        metrics::gauge!("nevil_error_patterns").set(patterns as f64);
    }
}

/// Gives the metrics their help text and makes the unlabelled ones appear from the start.
fn describe_metrics() {
    metrics::describe_counter!(
        "nevil_actor_errors_total",
        "Abnormal exits of the actor, by exit kind (cumulative)."
    );
    metrics::describe_gauge!(
        "nevil_actor_risk_score",
        "Risk that the actor fails again soon, 0 to 1 (decays as it stays healthy)."
    );
    metrics::describe_gauge!(
        "nevil_error_patterns",
        "Error signatures recurring now (3 or more times within 24 h)."
    );
    metrics::describe_counter!(
        "nevil_error_correlations_total",
        "Errors of related actors (siblings, supervisor and child) within 5 s of each other (cumulative)."
    );
    metrics::counter!("nevil_error_correlations_total").increment(0);
    metrics::gauge!("nevil_error_patterns").increment(0.0);
}

/// Messages of the [`ErrorAnalytics`] service.
pub enum ErrorAnalyticsMsg {
    /// An event from the tree's feed.
    Event(TreeEvent),
    /// The feed dropped this many events before they were read.
    Lagged(u64),
    /// Time to re-export decaying figures.
    Refresh,
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// The error analytics actor.
#[derive(Clone)]
pub struct ErrorAnalytics {
    /// The feed's receiver, kept across incarnations.
    events: Arc<tokio::sync::Mutex<Receiver<TreeEvent>>>,
    handle: AnalyticsHandle,
}

impl ErrorAnalytics {
    /// The service for `feed` (subscribed now: make it before the tree starts to see
    /// the start too), recording into `handle`.
    pub fn new(feed: &EventFeed, handle: AnalyticsHandle) -> Self {
        Self {
            events: Arc::new(tokio::sync::Mutex::new(feed.subscribe())),
            handle,
        }
    }
}

/// State of the [`ErrorAnalytics`] service.
pub struct ErrorAnalyticsState {
    /// Reads the feed into the mailbox; ends with this incarnation.
    forwarder: JoinHandle<()>,
}

impl Actor for ErrorAnalytics {
    type Msg = ErrorAnalyticsMsg;
    type State = ErrorAnalyticsState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<ErrorAnalyticsMsg>,
        _: (),
    ) -> Result<ErrorAnalyticsState, ActorProcessingErr> {
        describe_metrics();
        let events = self.events.clone();
        let mailbox = Mailbox::own(&myself);
        let forwarder = tokio::spawn(async move {
            // Waits for a crashed incarnation's forwarder to be gone (`post_stop`).
            let mut events = events.lock().await;
            loop {
                let msg = match events.recv().await {
                    Ok(event) => ErrorAnalyticsMsg::Event(event),
                    Err(RecvError::Lagged(n)) => ErrorAnalyticsMsg::Lagged(n),
                    Err(RecvError::Closed) => break,
                };
                if mailbox.cast(msg).is_err() {
                    break;
                }
            }
        });
        ticker::spawn(Timer::Tokio, "error_analytics", REFRESH, myself, |_| {
            ErrorAnalyticsMsg::Refresh
        })?;
        Ok(ErrorAnalyticsState { forwarder })
    }

    async fn handle(
        &self,
        _: ActorRef<ErrorAnalyticsMsg>,
        msg: ErrorAnalyticsMsg,
        _: &mut ErrorAnalyticsState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ErrorAnalyticsMsg::Event(event) => self.handle.ingest(&event),
            ErrorAnalyticsMsg::Lagged(n) => {
                tracing::warn!(lost = n, "error analytics fell behind the event feed");
                self.handle.lost(n);
            }
            ErrorAnalyticsMsg::Refresh => self.handle.refresh(),
            ErrorAnalyticsMsg::Noop => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<ErrorAnalyticsMsg>,
        state: &mut ErrorAnalyticsState,
    ) -> Result<(), ActorProcessingErr> {
        state.forwarder.abort();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use nevil_actors::{ActorPath, ChildSpec, ExitReason, SupervisorFlags, Tree, TreeContext};
    use tokio::time::Instant;

    use super::*;
    use nevil_actors::Fault;

    fn path(s: &str) -> ActorPath {
        let mut parts = s.split('/');
        let root = ActorPath::root(parts.next().unwrap_or(""));
        parts.fold(root, |p, n| p.child(n))
    }

    fn exited(at: Instant, p: &str, reason: ExitReason) -> TreeEvent {
        TreeEvent::ChildExited {
            at,
            path: path(p),
            reason,
            restart: true,
            delay: None,
        }
    }

    /// Every metric as `name{label=value,…}` → value.
    fn metrics(snapshotter: &Snapshotter) -> HashMap<String, f64> {
        crate::core::metrics::recorded(snapshotter)
            .into_iter()
            .map(|(key, value)| {
                let value = match value {
                    DebugValue::Counter(n) => n as f64,
                    DebugValue::Gauge(g) => g.0,
                    DebugValue::Histogram(_) => f64::NAN,
                };
                (key, value)
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn ingested_exits_become_metrics() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let handle = AnalyticsHandle::new(Params::default(), Clock::start());
        let t0 = Instant::now();
        let motion = "root/control/motion";
        let oa = "root/control/obstacle_avoidance";
        metrics::with_local_recorder(&recorder, || {
            describe_metrics();
            handle.ingest(&exited(t0, motion, ExitReason::Panic("p".into())));
            handle.ingest(&exited(t0, oa, ExitReason::Error("e 1".into())));
            // Not errors: a normal exit and a restart.
            handle.ingest(&exited(t0, "root/drivers/motors", ExitReason::Normal));
            handle.ingest(&TreeEvent::ChildRestarted {
                at: t0,
                path: path(oa),
                restarts: 1,
            });
        });
        let m = metrics(&snapshotter);
        let errors = |p: &str, kind: &str| {
            m.get(&format!("nevil_actor_errors_total{{path={p},kind={kind}}}"))
                .copied()
        };
        assert_eq!(errors(motion, "panic"), Some(1.0));
        assert_eq!(errors(oa, "error"), Some(1.0));
        assert_eq!(errors("root/drivers/motors", "normal"), None);
        assert_eq!(
            m["nevil_error_correlations_total{}"], 1.0,
            "siblings, same instant"
        );
        assert_eq!(m["nevil_error_patterns{}"], 0.0);
        let risk = |p: &str| m[&format!("nevil_actor_risk_score{{path={p}}}")];
        assert!(risk(motion) > risk(oa) && risk(oa) > 0.0, "{m:?}");
        assert!(!m.contains_key("nevil_actor_risk_score{path=root/drivers/motors}"));

        // The same error twice more: a recurring pattern.
        metrics::with_local_recorder(&recorder, || {
            handle.ingest(&exited(t0, oa, ExitReason::Error("e 2".into())));
            handle.ingest(&exited(t0, oa, ExitReason::Error("e 3".into())));
        });
        // The debugging recorder's counters count since its previous snapshot.
        let m = metrics(&snapshotter);
        assert_eq!(m["nevil_error_patterns{}"], 1.0);
        assert_eq!(
            m["nevil_actor_errors_total{path=root/control/obstacle_avoidance,kind=error}"],
            2.0
        );
        assert_eq!(
            m["nevil_error_correlations_total{}"], 2.0,
            "each with motion's"
        );
        assert_eq!(handle.report().patterns.len(), 1);

        // An hour later, the refreshed risk has decayed (6 half-lives).
        let before = risk(oa);
        tokio::time::advance(Duration::from_secs(3600)).await;
        metrics::with_local_recorder(&recorder, || handle.refresh());
        let after = metrics(&snapshotter)[&format!("nevil_actor_risk_score{{path={oa}}}")];
        assert!(after > 0.0 && after < before / 10.0, "{before} -> {after}");
    }

    /// A worker that does nothing of itself: faults are injected into it through the tree.
    #[derive(Clone)]
    struct Faulty;

    impl Actor for Faulty {
        type Msg = ();
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    /// The next tree event; fails the test if none comes within a minute of virtual time.
    async fn next(events: &mut tokio::sync::broadcast::Receiver<TreeEvent>) -> TreeEvent {
        tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("a tree event within 60 s")
            .expect("an event")
    }

    /// Waits until every runnable task has run (the paused clock only advances, and
    /// this sleep only ends, once the runtime is otherwise idle).
    async fn idle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    /// Through a real tree: a worker's error reaches the analytics by the feed; then the
    /// analytics actor itself panics and is restarted — the history is kept and its own
    /// crash, published while it was down, is recorded by the next incarnation.
    #[tokio::test(start_paused = true)]
    async fn analytics_follow_the_tree_and_survive_their_own_restart() {
        let feed = EventFeed::default();
        let handle = AnalyticsHandle::new(Params::default(), Clock::start());
        let children = vec![
            ChildSpec::worker(
                "error_analytics",
                ErrorAnalytics::new(&feed, handle.clone()),
                (),
            ),
            ChildSpec::worker("faulty", Faulty, ()),
        ];
        let flags = SupervisorFlags::default().intensity(10, Duration::from_secs(60));
        let tree = Tree::start_in(
            "root",
            flags,
            children,
            TreeContext {
                events: feed,
                ..TreeContext::default()
            },
        )
        .await
        .expect("tree starts");
        let mut events = tree.subscribe();
        // Faults go through the tree, whatever each worker's message type.
        let send = |p: &'static str, fault| {
            let view = tree.view();
            async move { view.inject(p, fault).await.is_ok() }
        };
        let restarted = |e: &TreeEvent, p: &str| matches!(e, TreeEvent::ChildRestarted { path, .. } if path.as_str() == p);

        assert!(send("root/faulty", Fault::Error).await);
        while !restarted(&next(&mut events).await, "root/faulty") {}
        idle().await;
        let report = handle.report();
        assert_eq!(report.errors_total, 1, "{report:?}");
        assert_eq!(report.signatures[0].path.as_str(), "root/faulty");
        assert_eq!(report.signatures[0].message, "fault drill: error");

        assert!(send("root/error_analytics", Fault::Panic).await);
        while !restarted(&next(&mut events).await, "root/error_analytics") {}
        idle().await;
        let report = handle.report();
        assert_eq!(report.errors_total, 2, "{report:?}");
        let own = report
            .signatures
            .iter()
            .find(|s| s.path.as_str() == "root/error_analytics")
            .expect("its own crash is recorded");
        assert_eq!(
            (own.kind, own.message.as_str()),
            ("panic", "fault drill: panic")
        );
        assert_eq!(report.events_lost, 0);

        // The new incarnation goes on reading the feed.
        assert!(send("root/faulty", Fault::Error).await);
        while !restarted(&next(&mut events).await, "root/faulty") {}
        idle().await;
        assert_eq!(handle.report().errors_total, 3);
        tree.shutdown().await;
    }
}
