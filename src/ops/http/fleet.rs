//! The observer page's view of the fleet: `GET /fleet` (the robots reachable, this one
//! marked `self`, each with its health), `GET /fleet/<id>/tree` and
//! `GET /fleet/<id>/events` (a robot's tree, and the events it kept as a JSON list).
//! Another robot's are asked over the network session (see [`Peers`](crate::ops::fleet::peers::Peers)); this robot's
//! are answered here, as its own queryables would. Read-only: no control crosses
//! robots through these routes.

use hyper::{Method, Response, StatusCode};

use super::{not_allowed, text, with_type, Body, Endpoint};
use crate::config::network::check_name;
use crate::ops::fleet::peers::{Listed, PeerError};
use crate::ops::fleet::{kept_json, own_health};

/// A request under `/fleet`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/fleet`: the list.
    List,
    /// `/fleet/<id>/tree`.
    Tree(&'a str),
    /// `/fleet/<id>/events`.
    Events(&'a str),
}

/// Why a path under `/fleet` is no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The robot id is malformed (`400`).
    BadId(String),
    /// No such route (`404`).
    NotFound,
}

/// The route of `path`: `None` when it is not under `/fleet`.
pub fn route(path: &str) -> Option<Result<Route<'_>, RouteError>> {
    let rest = path.strip_prefix("/fleet")?;
    if rest.is_empty() {
        return Some(Ok(Route::List));
    }
    let rest = rest.strip_prefix('/')?;
    let Some((id, what)) = rest.rsplit_once('/') else {
        return Some(Err(RouteError::NotFound));
    };
    let route = match what {
        "tree" => Route::Tree(id),
        "events" => Route::Events(id),
        _ => return Some(Err(RouteError::NotFound)),
    };
    Some(match check_name(id) {
        Ok(()) => Ok(route),
        Err(why) => Err(RouteError::BadId(format!("robot id {why}"))),
    })
}

/// The answer to `method` on `path`, a route under `/fleet` (see [`route`]).
pub async fn respond(endpoint: &Endpoint, method: &Method, path: &str) -> Response<Body> {
    let route = match route(path) {
        None | Some(Err(RouteError::NotFound)) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("not found: {path} (try /fleet, /fleet/<id>/tree, /fleet/<id>/events)\n"),
            )
        }
        Some(Err(RouteError::BadId(why))) => {
            return text(StatusCode::BAD_REQUEST, format!("{path}: {why}\n"))
        }
        Some(Ok(route)) => route,
    };
    if method != Method::GET && method != Method::HEAD {
        return not_allowed(method, path, "GET, HEAD");
    }
    let peers = &endpoint.fleet;
    let answer = match route {
        Route::List => {
            let mut listed = vec![Listed {
                id: peers.id().to_string(),
                own: true,
                health: Some(own_health(peers.id(), endpoint)),
                error: None,
            }];
            listed.extend(peers.others().await);
            serde_json::to_string(&listed).map_err(|e| e.to_string())
        }
        Route::Tree(id) if id == peers.id() => endpoint
            .tree_json(endpoint.tree.snapshot())
            .map_err(|e| e.to_string()),
        Route::Events(id) if id == peers.id() => kept_json(endpoint),
        Route::Tree(id) | Route::Events(id) => {
            let what = if matches!(route, Route::Tree(_)) {
                "tree"
            } else {
                "events"
            };
            return match peers.ask(id, what).await {
                Ok(json) => match serde_json::from_str::<serde_json::Value>(&json) {
                    Ok(_) => with_type(StatusCode::OK, "application/json", json),
                    Err(e) => text(
                        StatusCode::BAD_GATEWAY,
                        format!("robot {id:?} answered {what} with no JSON: {e}\n"),
                    ),
                },
                Err(e @ (PeerError::Unknown(_) | PeerError::Silent { .. })) => {
                    text(StatusCode::NOT_FOUND, format!("{e}\n"))
                }
                Err(e @ PeerError::Failed { .. }) => {
                    text(StatusCode::BAD_GATEWAY, format!("{e}\n"))
                }
            };
        }
    };
    match answer {
        Ok(json) => with_type(StatusCode::OK, "application/json", json),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_fleet_are_routes_with_checked_ids() {
        assert_eq!(route("/fleet"), Some(Ok(Route::List)));
        assert_eq!(
            route("/fleet/picar-2/tree"),
            Some(Ok(Route::Tree("picar-2")))
        );
        assert_eq!(
            route("/fleet/picar_2/events"),
            Some(Ok(Route::Events("picar_2")))
        );
        assert_eq!(
            route("/fleet/picar-2/metrics"),
            Some(Err(RouteError::NotFound))
        );
        assert_eq!(route("/fleet/picar-2"), Some(Err(RouteError::NotFound)));
        assert_eq!(route("/fleet/"), Some(Err(RouteError::NotFound)));
        for bad in ["/fleet/a/b/tree", "/fleet/pi%20car/tree", "/fleet//tree"] {
            match route(bad) {
                Some(Err(RouteError::BadId(why))) => {
                    assert!(why.starts_with("robot id "), "{bad}: {why}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(route("/fleetx"), None);
        assert_eq!(route("/tree"), None);
    }
}
