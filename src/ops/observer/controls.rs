//! The observer's controls: `POST /actors/<path>/{restart,suspend,resume}`, offered only
//! when `[http] control_token` is set and obeyed only with `Authorization: Bearer
//! <token>`. Each request, granted or refused, is logged, put on the timeline and
//! appended to the audit trail when the run has one.
//!
//! What they can do is bounded by safety: a restart goes through the actor's
//! supervisor like any exit (its strategy applies, and it counts against the
//! supervisor's intensity); nothing here touches the e-stop latch, which no restart can
//! clear; a safety-critical actor may be restarted but not suspended (its silence
//! would stop the motors anyway, and quotas may not suspend it either); and the root
//! is not restarted (stopping the robot is SIGTERM's job).

use std::sync::Arc;

use hyper::http::HeaderMap;
use hyper::StatusCode;
use nevil_actors::{ChildKind, Restart, TreeView};
use serde::Serialize;

use super::timeline::Timeline;
use crate::config::ControlToken;
use crate::services::audit::{Audit, Entry};

/// The stop reason of an actor restarted from the page: its exit is `normal`, and its
/// supervisor starts it again as it would after any exit of a permanent child.
pub const RESTART_REASON: &str = "restart requested by an operator";

/// What the controls act on and record to.
#[derive(Clone)]
pub struct Controls {
    /// The token every request must carry.
    pub token: ControlToken,
    /// The tree acted on.
    pub tree: TreeView,
    /// Whether the actor at a path is safety-critical (may not be suspended).
    pub critical: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// The timeline each request goes on.
    pub timeline: Timeline,
    /// The audit trail each request is appended to, when the run has one.
    pub audit: Option<Audit>,
}

/// An action the page can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop the actor; its supervisor restarts it.
    Restart,
    /// Hold its messages, in order, until resumed.
    Suspend,
    /// Lift a suspension or a throttle.
    Resume,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
        }
    }
}

/// A request path `/actors/<path>/<action>` split into its actor path and action;
/// `None` when it is not one.
pub fn parse(path: &str) -> Option<(&str, Option<Action>)> {
    let rest = path.strip_prefix("/actors/")?;
    let (actor, action) = rest.rsplit_once('/')?;
    let action = match action {
        "restart" => Some(Action::Restart),
        "suspend" => Some(Action::Suspend),
        "resume" => Some(Action::Resume),
        _ => None,
    };
    Some((actor, action))
}

/// The JSON answer to a control request.
#[derive(Debug, Serialize, PartialEq)]
pub struct Answer {
    /// Whether it was done.
    pub ok: bool,
    /// The actor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    /// What was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn refused(status: StatusCode, error: String) -> (StatusCode, Answer) {
    let answer = Answer {
        ok: false,
        path: None,
        action: None,
        message: None,
        error: Some(error),
    };
    (status, answer)
}

/// Whether `headers` carry `token` as a bearer token.
fn authorized(token: &ControlToken, headers: &HeaderMap) -> bool {
    headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|presented| token.matches(presented.trim()))
}

/// Carries out `action` on the actor at `path` if `headers` hold the token; the
/// status and answer to send. `controls` is `None` when no token is configured.
pub fn handle(
    controls: Option<&Controls>,
    path: &str,
    action: Action,
    headers: &HeaderMap,
) -> (StatusCode, Answer) {
    let Some(controls) = controls else {
        return refused(
            StatusCode::FORBIDDEN,
            "controls are off: set [http] control_token in the config to enable them".into(),
        );
    };
    if !authorized(&controls.token, headers) {
        tracing::warn!(%path, action = action.name(), "control refused: missing or wrong token");
        return refused(
            StatusCode::FORBIDDEN,
            "missing or wrong token (send Authorization: Bearer <[http] control_token>)".into(),
        );
    }
    let outcome = act(controls, path, action);
    let recorded = match &outcome {
        Ok(_) => "done".to_string(),
        Err((_, why)) => format!("refused: {why}"),
    };
    match &outcome {
        Ok(message) => tracing::warn!(%path, action = action.name(), %message, "operator control"),
        Err((_, why)) => {
            tracing::warn!(%path, action = action.name(), reason = %why, "operator control refused");
        }
    }
    let entry = Entry::Control {
        path: path.to_string(),
        action: action.name().to_string(),
        outcome: recorded,
    };
    if let Some(audit) = &controls.audit {
        audit.append(entry.clone());
    }
    controls.timeline.push(entry);
    match outcome {
        Ok(message) => (
            StatusCode::OK,
            Answer {
                ok: true,
                path: Some(path.to_string()),
                action: Some(action.name()),
                message: Some(message),
                error: None,
            },
        ),
        Err((status, why)) => refused(status, why),
    }
}

/// Carries out `action`: what was done, or the status and reason of a refusal.
fn act(controls: &Controls, path: &str, action: Action) -> Result<String, (StatusCode, String)> {
    let snapshot = controls.tree.snapshot();
    if path == snapshot.root.path.as_str() {
        return Err((
            StatusCode::CONFLICT,
            format!("{path} is the root: stop the robot with SIGTERM instead"),
        ));
    }
    let Some(node) = snapshot.root.find(path) else {
        return Err((StatusCode::NOT_FOUND, format!("no actor at {path}")));
    };
    let conflict = |why: String| Err((StatusCode::CONFLICT, why));
    if action != Action::Restart && node.kind == ChildKind::Supervisor {
        return conflict(format!(
            "{path} is a supervisor: only workers can be suspended or resumed"
        ));
    }
    if action == Action::Suspend && (controls.critical)(path) {
        return conflict(format!(
            "{path} is safety-critical: it can be restarted, not suspended"
        ));
    }
    match action {
        Action::Restart => match controls.tree.actor(path) {
            Some(cell) => {
                cell.stop(Some(RESTART_REASON.to_string()));
                Ok(if node.restart == Restart::Permanent {
                    format!("{path} stopped; its supervisor restarts it")
                } else {
                    format!("{path} stopped; a {:?} child stays stopped", node.restart)
                })
            }
            None => conflict(format!(
                "{path} is not running now (its supervisor is restarting it, or it runs \
                 in another process, whose own supervisor governs it)"
            )),
        },
        Action::Suspend | Action::Resume => {
            let done = if action == Action::Suspend {
                controls.tree.suspend(path)
            } else {
                controls.tree.resume(path)
            };
            if done {
                Ok(format!("{path} {}d", action.name()))
            } else {
                conflict(format!(
                    "{path} runs in another process: its own supervisor governs it"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actor_paths_and_actions() {
        assert_eq!(
            parse("/actors/root/control/motion/restart"),
            Some(("root/control/motion", Some(Action::Restart)))
        );
        assert_eq!(
            parse("/actors/root/a/suspend"),
            Some(("root/a", Some(Action::Suspend)))
        );
        assert_eq!(parse("/actors/root/a/explode"), Some(("root/a", None)));
        assert_eq!(parse("/tree"), None);
        assert_eq!(parse("/actors/restart"), None);
    }

    #[test]
    fn only_the_bearer_token_authorizes() {
        let token = ControlToken::from("0123456789abcdef");
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(hyper::header::AUTHORIZATION, value.parse().unwrap());
            h
        };
        assert!(authorized(&token, &with("Bearer 0123456789abcdef")));
        assert!(!authorized(&token, &with("Bearer 0123456789abcdeX")));
        assert!(!authorized(&token, &with("Basic 0123456789abcdef")));
        assert!(!authorized(&token, &with("0123456789abcdef")));
        assert!(!authorized(&token, &HeaderMap::new()));
    }
}
