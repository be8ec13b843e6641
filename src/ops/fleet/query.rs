//! Asking the fleet over a Zenoh session: which robots are there (their `alive`
//! tokens), one robot's health, or any of its queryables' answers. `nevil fleet` and
//! the observer page's `/fleet` routes both ask this way, each with its own timeout.

use std::time::Duration;

use super::{id_of_alive, key, RobotHealth, ALIVE_ALL};

/// The ids of the robots whose token is there, sorted, waiting at most `timeout`.
///
/// # Errors
///
/// The query could not be sent, naming the key.
pub async fn alive(session: &zenoh::Session, timeout: Duration) -> Result<Vec<String>, String> {
    let replies = session
        .liveliness()
        .get(ALIVE_ALL)
        .timeout(timeout)
        .await
        .map_err(|e| format!("{ALIVE_ALL}: {e}"))?;
    let mut ids = Vec::new();
    while let Ok(reply) = replies.recv_async().await {
        if let Ok(sample) = reply.result() {
            if let Some(id) = id_of_alive(sample.key_expr().as_str()) {
                ids.push(id.to_string());
            }
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// Why a query on a key got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// The query could not be sent.
    #[error("{key}: {why}")]
    Send {
        /// The key asked.
        key: String,
        /// What Zenoh said.
        why: String,
    },
    /// Nobody answered within the timeout (the robot is gone or cut off).
    #[error("{key}: no answer within {timeout:?}")]
    NoAnswer {
        /// The key asked.
        key: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// The queryable answered with an error.
    #[error("{key}: {why}")]
    Refused {
        /// The key asked.
        key: String,
        /// The error it replied.
        why: String,
    },
}

/// The first answer to a query on `key`, as text, waiting at most `timeout`.
///
/// # Errors
///
/// [`AskError`], naming the key.
pub async fn get(
    session: &zenoh::Session,
    key: &str,
    timeout: Duration,
) -> Result<String, AskError> {
    let replies = session
        .get(key)
        .timeout(timeout)
        .await
        .map_err(|e| AskError::Send {
            key: key.to_string(),
            why: e.to_string(),
        })?;
    match replies.recv_async().await {
        Ok(reply) => match reply.result() {
            Ok(sample) => Ok(String::from_utf8_lossy(&sample.payload().to_bytes()).into_owned()),
            Err(e) => Err(AskError::Refused {
                key: key.to_string(),
                why: String::from_utf8_lossy(&e.payload().to_bytes()).into_owned(),
            }),
        },
        Err(_) => Err(AskError::NoAnswer {
            key: key.to_string(),
            timeout,
        }),
    }
}

/// Robot `id`'s health, asked on `nevil/<id>/health`.
///
/// # Errors
///
/// No answer, or one that is not a robot's health, naming the key.
pub async fn health(
    session: &zenoh::Session,
    id: &str,
    timeout: Duration,
) -> Result<RobotHealth, String> {
    let key = key(id, "health");
    let json = get(session, &key, timeout)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&json).map_err(|e| format!("{key}: not a robot's health: {e}"))
}
