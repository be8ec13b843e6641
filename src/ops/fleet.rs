//! The fleet view's robot side: what a robot with a network session (`[zenoh]`) tells
//! the fleet, under [`robot_prefix`] `nevil/<id>/`:
//!
//! - `alive`: a liveliness token, declared for the run's life. A robot that stops,
//!   dies or is cut off disappears from `nevil/*/alive` within the lease.
//! - queryables `tree` (the `/tree` document), `health` ([`RobotHealth`]) and
//!   `metrics` (the `/metrics` text), each answered from a snapshot, as the HTTP
//!   endpoint answers: no actor is asked anything;
//! - `events`: each new timeline entry (restart, exit, escalation, quota enforcement,
//!   e-stop, config, control) published as one JSON object, as the observer page's
//!   `/events` stream sends it; a query on `events` answers the entries kept so far
//!   (a JSON list, oldest first), so a follower misses nothing from before it came.
//!
//! It all runs on a thread of its own (a one-worker runtime: Zenoh refuses tokio's
//! current-thread one), so answering the fleet takes no time from the robot's actors,
//! and publishing an event is a hand-off from the timeline's broadcast.

pub mod health;
pub mod peers;
pub mod query;

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::oneshot;
use zenoh::handlers::FifoChannelHandler;
use zenoh::query::{Query, Queryable};

pub use health::RobotHealth;

use crate::bus::net::{locators, robot_prefix};
use crate::core::clock::unix_ms;
use crate::ops::http::Endpoint;
use crate::ops::observer::timeline::Stamped;
use crate::services::audit::Entry;

/// The key of robot `id`'s `what` (`alive`, `tree`, `health`, `metrics`, `events`):
/// `nevil/<id>/<what>`.
pub fn key(id: &str, what: &str) -> String {
    format!("{}/{what}", robot_prefix(id))
}

/// Every robot's liveliness token, for listing the fleet.
pub const ALIVE_ALL: &str = "nevil/*/alive";

/// The robot `id` of a liveliness key `nevil/<id>/alive`.
pub fn id_of_alive(key: &str) -> Option<&str> {
    key.strip_prefix("nevil/")?.strip_suffix("/alive")
}

/// Why the fleet side could not start.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// Its thread or runtime could not be created.
    #[error("cannot start the fleet view's thread: {0}")]
    Start(std::io::Error),
}

/// The running fleet side; [`Fleet::stop`] withdraws it.
pub struct Fleet {
    stop: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<()>,
    /// `None` once stopped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Fleet {
    /// Declares robot `id`'s token, queryables and events on `session`, answering from
    /// `endpoint`, on a thread of its own. Logs `zenoh listening` with the session's
    /// locators (`listen`, with the ports the OS picked for port 0) once everything is
    /// declared (a problem declaring is logged: the robot
    /// runs on without a fleet view).
    ///
    /// # Errors
    ///
    /// [`FleetError::Start`] if the thread cannot be created.
    pub fn start(
        session: zenoh::Session,
        id: &str,
        listen: Vec<String>,
        endpoint: Endpoint,
    ) -> Result<Self, FleetError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nevil-fleet")
            .enable_all()
            .build()
            .map_err(FleetError::Start)?;
        let (stop, stopped) = oneshot::channel();
        let (finished, done) = oneshot::channel();
        let id = id.to_string();
        runtime.spawn(async move {
            if let Err(e) = serve(&session, &id, &listen, &endpoint, stopped).await {
                tracing::error!(error = %e, id, "fleet view: cannot declare on the network");
            }
            let _ = finished.send(());
        });
        Ok(Self {
            stop: Some(stop),
            done,
            runtime: Some(runtime),
        })
    }

    /// Undeclares the token (the fleet sees the robot go now, not after the lease)
    /// and the rest, and ends the thread.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.done).await;
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Fleet {
    /// Dropped unstopped (an unwind): the thread goes without blocking, as dropping a
    /// runtime inside the robot's async context may not.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

type Queries = Queryable<FifoChannelHandler<Query>>;

async fn serve(
    session: &zenoh::Session,
    id: &str,
    listen: &[String],
    endpoint: &Endpoint,
    mut stopped: oneshot::Receiver<()>,
) -> zenoh::Result<()> {
    let token = session.liveliness().declare_token(key(id, "alive")).await?;
    let tree: Queries = session.declare_queryable(key(id, "tree")).await?;
    let health: Queries = session.declare_queryable(key(id, "health")).await?;
    let metrics: Queries = session.declare_queryable(key(id, "metrics")).await?;
    let kept: Queries = session.declare_queryable(key(id, "events")).await?;
    let events = session.declare_publisher(key(id, "events")).await?;
    let (_, mut live) = endpoint.timeline.subscribe();
    match locators(session, listen).await {
        Ok(list) => tracing::info!(id, locators = %list.join(" "), "zenoh listening"),
        Err(e) => tracing::warn!(id, error = %e, "zenoh listening (its locators unknown)"),
    }
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            q = tree.recv_async() => match q {
                Ok(q) => answer(&q, endpoint.tree_json(endpoint.tree.snapshot())
                    .map_err(|e| e.to_string())).await,
                Err(_) => break,
            },
            q = health.recv_async() => match q {
                Ok(q) => answer(&q, health_json(id, endpoint)).await,
                Err(_) => break,
            },
            q = metrics.recv_async() => match q {
                Ok(q) => answer(&q, Ok(endpoint.metrics_text(&endpoint.tree.snapshot()))).await,
                Err(_) => break,
            },
            q = kept.recv_async() => match q {
                Ok(q) => answer(&q, kept_json(endpoint)).await,
                Err(_) => break,
            },
            entry = live.recv() => {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(RecvError::Lagged(count)) => Arc::new(Stamped {
                        ts_ms: unix_ms(),
                        entry: Entry::Lost { count, source: "fleet events".into() },
                    }),
                    Err(RecvError::Closed) => break,
                };
                match serde_json::to_string(&*entry) {
                    Ok(json) => {
                        if let Err(e) = events.put(json).await {
                            tracing::debug!(error = %e, "fleet view: an event was not published");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "fleet view: an event is not JSON"),
                }
            }
        }
    }
    // A session already closed has withdrawn the token with everything else.
    if let Err(e) = token.undeclare().await {
        tracing::debug!(error = %e, "fleet view: the token was already withdrawn");
    }
    Ok(())
}

/// Robot `id`'s [`RobotHealth`] now, from `endpoint`'s sources.
pub fn own_health(id: &str, endpoint: &Endpoint) -> RobotHealth {
    let snapshot = endpoint.tree.snapshot();
    let ready = endpoint.ready(&snapshot);
    RobotHealth::of(id, &snapshot, ready, endpoint.estops.reasons())
}

/// Robot `id`'s [`RobotHealth`] as JSON.
fn health_json(id: &str, endpoint: &Endpoint) -> Result<String, String> {
    serde_json::to_string(&own_health(id, endpoint)).map_err(|e| e.to_string())
}

/// The timeline entries kept, oldest first, as a JSON list (what `nevil/<id>/events`
/// answers a query with).
///
/// # Errors
///
/// Serialisation's, as text.
pub fn kept_json(endpoint: &Endpoint) -> Result<String, String> {
    let (kept, _) = endpoint.timeline.subscribe();
    let kept: Vec<&Stamped> = kept.iter().map(|e| &**e).collect();
    serde_json::to_string(&kept).map_err(|e| e.to_string())
}

/// Replies `body` (or the error) to `query`; a querier that went is not an error.
async fn answer(query: &Query, body: Result<String, String>) {
    let sent = match body {
        Ok(body) => query.reply(query.key_expr().clone(), body).await,
        Err(e) => query.reply_err(e).await,
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, key = %query.key_expr(), "fleet view: a reply was not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_under_the_robots_prefix() {
        assert_eq!(key("picar-1", "health"), "nevil/picar-1/health");
        assert_eq!(id_of_alive("nevil/picar-1/alive"), Some("picar-1"));
        assert_eq!(id_of_alive("nevil/picar-1/health"), None);
        assert_eq!(id_of_alive("other/picar-1/alive"), None);
    }
}
