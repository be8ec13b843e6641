//! The operations endpoint: `/metrics`, `/tree`, `/health/live`, `/health/ready`, the
//! observer page (`/`, `/events`, the controls: see [`crate::ops::observer`]) and the
//! fleet it can switch to (`/fleet`, `/fleet/<id>/{tree,events}`: see [`fleet`]).
//!
//! It runs on a thread and async runtime of its own, so neither rendering a large tree
//! nor a slow client takes time from the robot's actors: every answer is computed from
//! a snapshot read off the supervisors' tables, without messaging any actor. At most
//! `max_connections` clients are served at once (the rest wait in the kernel's
//! backlog) and each connection is cut after `timeout`, so a client that trickles its
//! request or never reads the answer only holds one slot for that long. An observer's
//! live stream gives its slot back once open and is exempt from `timeout`: a quarter of
//! `max_connections` (at least one) may be open at once, and each is cut once it has
//! been unable to take an event for `timeout` (a page that stopped reading).

mod client;
pub mod fleet;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::http::HeaderMap;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use nevil_actors::TreeView;
use tokio::sync::{oneshot, Semaphore};

use crate::config::reload::Generation;
use crate::core::metrics::READY;
use crate::ops::fleet::peers::Peers;
use crate::ops::health::{self, Health};
use crate::ops::observer::{self, events, Controls, RobotSources, Timeline};
use crate::robot::safety::EStopLatch;
use crate::services::analytics::AnalyticsHandle;
use crate::services::telemetry::{ProcessStats, Telemetry};
use crate::services::tree::tree_document;

pub use client::{get, tree_url, ClientError};

/// The paths served, for 404 answers and docs (and the observer's files, and
/// `POST /actors/<path>/{restart,suspend,resume}`).
pub const PATHS: [&str; 7] = [
    "/",
    "/events",
    "/fleet",
    "/metrics",
    "/tree",
    "/health/live",
    "/health/ready",
];

/// A response body: a whole answer or the observer's live stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The server's thread or runtime could not be created.
    #[error("cannot start the HTTP server: {0}")]
    Start(std::io::Error),
}

/// What the endpoint reads its answers from.
#[derive(Clone)]
pub struct Endpoint {
    /// The robot's tree.
    pub tree: TreeView,
    /// The metrics recorder's handle.
    pub telemetry: Telemetry,
    /// The safety watchdog's e-stop changes.
    pub estops: EStopLatch,
    /// The error analytics, served in `/tree` as in the SIGUSR1 dump.
    pub analytics: AnalyticsHandle,
    /// The run's config generation, in `/tree` and `/health/ready`.
    pub generation: Generation,
    /// The observer's timeline of the run.
    pub timeline: Timeline,
    /// The robot's state the observer shows.
    pub robot: RobotSources,
    /// The observer's controls; `None` (read-only) without `[http] control_token`.
    pub controls: Option<Controls>,
    /// The other robots on the network session, for `/fleet` (only this one without).
    pub fleet: Peers,
}

impl Endpoint {
    /// The answer to `method` on `path` with `headers`: [`Endpoint::respond`]'s, or for
    /// the fleet's routes (which may ask other robots over the network) [`fleet`]'s.
    pub async fn answer(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response<Body> {
        if fleet::route(path).is_some() {
            fleet::respond(self, method, path).await
        } else {
            self.respond(method, path, headers)
        }
    }

    /// The answer to `method` on `path` with `headers`, at once (all but `/events`,
    /// which [`Server`] streams, and the fleet's routes: see [`Endpoint::answer`]).
    pub fn respond(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response<Body> {
        if let Some((actor, action)) = observer::controls::parse(path) {
            if method != Method::POST {
                return not_allowed(method, path, "POST");
            }
            let Some(action) = action else {
                return text(
                    StatusCode::NOT_FOUND,
                    format!("not found: {path} (actions: restart, suspend, resume)\n"),
                );
            };
            let (status, answer) =
                observer::controls::handle(self.controls.as_ref(), actor, action, headers);
            let json = serde_json::to_string(&answer).unwrap_or_default();
            return with_type(status, "application/json", json);
        }
        if let Some(asset) = observer::asset(path) {
            if method != Method::GET && method != Method::HEAD {
                return not_allowed(method, path, "GET, HEAD");
            }
            let mut response = with_type(StatusCode::OK, asset.content_type, asset.body);
            let headers = response.headers_mut();
            headers.insert(
                hyper::header::CONTENT_SECURITY_POLICY,
                hyper::header::HeaderValue::from_static(observer::CSP),
            );
            headers.insert(
                hyper::header::X_CONTENT_TYPE_OPTIONS,
                hyper::header::HeaderValue::from_static("nosniff"),
            );
            return response;
        }
        if !PATHS.contains(&path) {
            return text(
                StatusCode::NOT_FOUND,
                format!("not found: {path} (try {})\n", PATHS.join(", ")),
            );
        }
        if method != Method::GET && method != Method::HEAD {
            return not_allowed(method, path, "GET, HEAD");
        }
        if path == "/events" {
            // GET is streamed by the server before it gets here.
            return not_allowed(method, path, "GET");
        }
        let snapshot = self.tree.snapshot();
        match path {
            "/metrics" => with_type(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics_text(&snapshot),
            ),
            "/tree" => match self.tree_json(snapshot) {
                Ok(json) => with_type(StatusCode::OK, "application/json", json),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            },
            "/health/live" => health_answer(&health::live(&snapshot)),
            "/health/ready" => health_answer(&self.ready(&snapshot)),
            _ => text(StatusCode::NOT_FOUND, format!("not found: {path}\n")),
        }
    }

    /// `/metrics`' answer: the Prometheus text of `snapshot` and the process, with the
    /// readiness gauge set from it.
    pub fn metrics_text(&self, snapshot: &nevil_actors::TreeSnapshot) -> String {
        let ready = self.ready(snapshot);
        metrics::gauge!(READY).set(if ready.ok { 1.0 } else { 0.0 });
        self.telemetry.render(snapshot, &ProcessStats::read())
    }

    /// `/tree`'s answer: the tree document of `snapshot` (DESIGN.md's contract), as
    /// indented JSON.
    ///
    /// # Errors
    ///
    /// Serialisation's, which a snapshot never gives in practice.
    pub fn tree_json(
        &self,
        snapshot: nevil_actors::TreeSnapshot,
    ) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(&tree_document(snapshot, &self.analytics, &self.generation))
    }

    /// `/health/ready`'s answer for `snapshot`, with the config generation.
    pub fn ready(&self, snapshot: &nevil_actors::TreeSnapshot) -> Health {
        Health {
            config_generation: Some(self.generation.get()),
            ..health::ready(snapshot, self.estops.latest().as_ref())
        }
    }
}

fn not_allowed(method: &Method, path: &str, allow: &'static str) -> Response<Body> {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} not allowed on {path}: use {allow}\n"),
    );
    response.headers_mut().insert(
        hyper::header::ALLOW,
        hyper::header::HeaderValue::from_static(allow),
    );
    response
}

fn health_answer(health: &Health) -> Response<Body> {
    let status = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let json = serde_json::to_string(health).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    with_type(status, "application/json", json)
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    response
}

/// Binds `addr` now, so that a taken port is an error before the robot starts.
///
/// # Errors
///
/// [`HttpError::Bind`] naming the address.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, HttpError> {
    let bind = || {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    };
    bind().map_err(|source| HttpError::Bind { addr, source })
}

/// Limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long one connection may last.
    pub timeout: Duration,
}

/// The running endpoint; [`Server::stop`] ends it.
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Serves `endpoint` on `listener` from a thread of its own.
    ///
    /// # Errors
    ///
    /// [`HttpError::Start`] if the thread or its runtime cannot be created.
    pub fn start(
        listener: std::net::TcpListener,
        endpoint: Endpoint,
        limits: Limits,
    ) -> Result<Self, HttpError> {
        let addr = listener.local_addr().map_err(HttpError::Start)?;
        // One worker, multi-threaded: the fleet's routes query Zenoh, which refuses
        // tokio's current-thread runtime.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nevil-http-worker")
            .enable_all()
            .build()
            .map_err(HttpError::Start)?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("nevil-http".into())
            .spawn(move || runtime.block_on(serve(listener, endpoint, limits, stopped)))
            .map_err(HttpError::Start)?;
        tracing::info!(%addr, "http endpoint listening");
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port the OS picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, drops open connections and waits for the thread.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut();
    }
}

/// How often histograms are folded into their buckets when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

async fn serve(
    listener: std::net::TcpListener,
    endpoint: Endpoint,
    limits: Limits,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "http endpoint cannot use its socket");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let streams = events::Streams {
        states: tokio::sync::broadcast::channel(4).0,
        slots: Arc::new(Semaphore::new(events::max_streams(limits.max_connections))),
    };
    let states = tokio::spawn(events::broadcast_states(
        endpoint.clone(),
        streams.states.clone(),
    ));
    let mut upkeep = tokio::time::interval(UPKEEP);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Take a slot before accepting: beyond the limit, clients wait in the backlog.
        let slot = tokio::select! {
            _ = &mut stopped => break,
            _ = upkeep.tick() => {
                endpoint.telemetry.upkeep();
                continue;
            }
            slot = slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed");
                continue;
            }
        };
        connections.spawn(connection(
            stream,
            endpoint.clone(),
            streams.clone(),
            limits,
            slot,
        ));
        // Reap finished connections so the set stays small.
        while connections.try_join_next().is_some() {}
    }
    states.abort();
    connections.shutdown().await;
}

/// Serves one connection, holding `slot` until it is done, or until it becomes an
/// observer's stream (which then holds a stream slot instead, and is exempt from the
/// timeout: it ends when its page stops reading).
async fn connection(
    stream: tokio::net::TcpStream,
    endpoint: Endpoint,
    streams: events::Streams,
    limits: Limits,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    let slot = Arc::new(std::sync::Mutex::new(Some(slot)));
    let streaming = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ended = Arc::new(tokio::sync::Notify::new());
    let (service_slot, service_streaming) = (slot.clone(), streaming.clone());
    let service_ended = ended.clone();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        use futures::future::{ready, Either};
        let path = req.uri().path();
        let answer = if path == "/events" && req.method() == Method::GET {
            let ended = events::Ended(service_ended.clone());
            let opened = open_stream(&endpoint, &streams, limits.timeout, ended);
            if opened.status() == StatusCode::OK {
                service_streaming.store(true, std::sync::atomic::Ordering::Release);
                // Hand the connection slot back to scrapers and probes.
                drop(
                    service_slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take(),
                );
            }
            Either::Left(ready(opened))
        } else if fleet::route(path).is_some() {
            // Asked over the network: awaited in this connection's task only.
            let (endpoint, method, path) =
                (endpoint.clone(), req.method().clone(), path.to_string());
            Either::Right(async move { fleet::respond(&endpoint, &method, &path).await })
        } else {
            Either::Left(ready(endpoint.respond(req.method(), path, req.headers())))
        };
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.timeout)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    // Also bounds a client that never reads its answer.
    if tokio::time::timeout(limits.timeout, &mut connection)
        .await
        .is_err()
        && streaming.load(std::sync::atomic::Ordering::Acquire)
    {
        // A stream ends once its page goes or stops reading; a page that stopped
        // reading gets `timeout` more to take what is queued, then is cut off.
        tokio::select! {
            _ = &mut connection => {}
            () = async {
                ended.notified().await;
                tokio::time::sleep(limits.timeout).await;
            } => {}
        }
    }
    drop(slot);
}

/// Opens an observer's stream: `503` when the streams allowed at once are all open.
fn open_stream(
    endpoint: &Endpoint,
    streams: &events::Streams,
    stall: Duration,
    ended: events::Ended,
) -> Response<Body> {
    let Ok(permit) = streams.slots.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many observer pages are open: close one and reload\n".into(),
        );
    };
    let (tx, frames) = events::channel();
    tokio::spawn(events::forward(
        endpoint.clone(),
        streams.states.subscribe(),
        tx,
        stall,
        permit,
        ended,
    ));
    let mut response = Response::new(events::body(frames).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    response
}

#[cfg(test)]
mod tests;
