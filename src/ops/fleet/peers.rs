//! The fleet as the robot serving the observer page sees it: the other robots
//! reachable on its network session, with their health, and their answers on request
//! (`nevil/<id>/tree`, `nevil/<id>/events`), for the page's `/fleet` routes.
//!
//! Read-only by construction: it only queries. The list is asked at most once per
//! [`LIST_FRESH`] however many pages poll (concurrent requests wait for the one
//! asking), and every query waits at most [`ASK_TIMEOUT`], so a robot that went only
//! costs that long.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::query::AskError;
use super::{key, query, RobotHealth};

/// How long the list of robots is reused before it is asked again.
pub const LIST_FRESH: Duration = Duration::from_secs(1);

/// How long a query for the page waits for its answers (the page polls once a second).
pub const ASK_TIMEOUT: Duration = Duration::from_secs(1);

/// One robot in `/fleet`'s list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    /// Its id (`[robot] id`).
    pub id: String,
    /// It is the robot serving the page.
    #[serde(rename = "self")]
    pub own: bool,
    /// Its health; `None` when it did not answer (then `error` says why).
    pub health: Option<RobotHealth>,
    /// Why its health is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why another robot's answer is not there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// It is not among the robots reachable (never was, or went).
    #[error("robot {0:?} is not reachable from here")]
    Unknown(String),
    /// It is listed but did not answer in time.
    #[error("robot {id:?} did not answer: {why}")]
    Silent {
        /// The robot.
        id: String,
        /// The query's error.
        why: AskError,
    },
    /// It answered with an error.
    #[error("robot {id:?} answered with an error: {why}")]
    Failed {
        /// The robot.
        id: String,
        /// The query's error.
        why: AskError,
    },
}

/// The list last asked, and when.
type Cache = Option<(Instant, Vec<Listed>)>;

/// The other robots, as seen from robot `id`'s session (none without one).
#[derive(Clone)]
pub struct Peers {
    id: Arc<str>,
    session: Option<zenoh::Session>,
    cache: Arc<tokio::sync::Mutex<Cache>>,
}

impl Peers {
    /// Robot `id` without a network session: the fleet is itself alone.
    pub fn alone(id: &str) -> Self {
        Self {
            id: id.into(),
            session: None,
            cache: Arc::default(),
        }
    }

    /// Robot `id` on `session`.
    pub fn over(session: zenoh::Session, id: &str) -> Self {
        Self {
            session: Some(session),
            ..Self::alone(id)
        }
    }

    /// The id of the robot serving the page.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The other robots reachable, sorted by id, with their health: asked at most once
    /// per [`LIST_FRESH`]; empty without a session.
    pub async fn others(&self) -> Vec<Listed> {
        let Some(session) = &self.session else {
            return Vec::new();
        };
        let mut cache = self.cache.lock().await;
        if let Some((at, listed)) = &*cache {
            if at.elapsed() < LIST_FRESH {
                return listed.clone();
            }
        }
        let listed = match query::alive(session, ASK_TIMEOUT).await {
            Ok(ids) => {
                let ids: Vec<String> = ids.into_iter().filter(|id| *id != *self.id).collect();
                let healths = futures::future::join_all(
                    ids.iter().map(|id| query::health(session, id, ASK_TIMEOUT)),
                )
                .await;
                ids.into_iter()
                    .zip(healths)
                    .map(|(id, health)| {
                        let (health, error) = match health {
                            Ok(h) => (Some(h), None),
                            Err(e) => (None, Some(e)),
                        };
                        Listed {
                            id,
                            own: false,
                            health,
                            error,
                        }
                    })
                    .collect()
            }
            Err(e) => {
                tracing::debug!(error = %e, "fleet page: the robots could not be listed");
                Vec::new()
            }
        };
        *cache = Some((Instant::now(), listed.clone()));
        listed
    }

    /// Robot `id`'s answer on `nevil/<id>/<what>` (`tree`, `events`), as text.
    ///
    /// # Errors
    ///
    /// [`PeerError::Unknown`] when `id` is not among [`Peers::others`];
    /// [`PeerError::Silent`] when it did not answer within [`ASK_TIMEOUT`];
    /// [`PeerError::Failed`] when it answered an error.
    pub async fn ask(&self, id: &str, what: &str) -> Result<String, PeerError> {
        let listed = self.others().await;
        let (Some(session), true) = (&self.session, listed.iter().any(|l| l.id == id)) else {
            return Err(PeerError::Unknown(id.to_string()));
        };
        query::get(session, &key(id, what), ASK_TIMEOUT)
            .await
            .map_err(|why| match why {
                AskError::NoAnswer { .. } => PeerError::Silent {
                    id: id.to_string(),
                    why,
                },
                _ => PeerError::Failed {
                    id: id.to_string(),
                    why,
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn alone_there_are_no_others_and_nobody_to_ask() {
        let peers = Peers::alone("picar-1");
        assert_eq!(peers.id(), "picar-1");
        assert!(peers.others().await.is_empty());
        assert_eq!(
            peers.ask("picar-2", "tree").await,
            Err(PeerError::Unknown("picar-2".into()))
        );
        assert_eq!(
            PeerError::Unknown("picar-2".into()).to_string(),
            "robot \"picar-2\" is not reachable from here"
        );
    }

    #[test]
    fn a_listed_robot_says_whether_it_is_self() {
        let listed = Listed {
            id: "picar-2".into(),
            own: false,
            health: None,
            error: Some("nevil/picar-2/health: no answer within 1s".into()),
        };
        assert_eq!(
            serde_json::to_value(&listed).unwrap(),
            serde_json::json!({
                "id": "picar-2", "self": false, "health": null,
                "error": "nevil/picar-2/health: no answer within 1s",
            })
        );
    }
}
