//! The operations endpoint: `/metrics`, `/tree`, `/health/live`, `/health/ready`.
//!
//! It runs on a thread and async runtime of its own, so neither rendering a large tree
//! nor a slow client takes time from the robot's actors: every answer is computed from
//! a snapshot read off the supervisors' tables, without messaging any actor. At most
//! `max_connections` clients are served at once (the rest wait in the kernel's
//! backlog) and each connection is cut after `timeout`, so a client that trickles its
//! request or never reads the answer only holds one slot for that long.

mod client;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use nevil_actors::TreeView;
use tokio::sync::{oneshot, Semaphore};

use crate::config::reload::Generation;
use crate::core::metrics::READY;
use crate::ops::health::{self, Health};
use crate::robot::safety::EStopLatch;
use crate::services::analytics::AnalyticsHandle;
use crate::services::telemetry::{ProcessStats, Telemetry};
use crate::services::tree::tree_document;

pub use client::{get, tree_url, ClientError};

/// The paths served, for 404 answers and docs.
pub const PATHS: [&str; 4] = ["/metrics", "/tree", "/health/live", "/health/ready"];

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
}

impl Endpoint {
    /// The answer to `method` on `path`.
    pub fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        if !PATHS.contains(&path) {
            return text(
                StatusCode::NOT_FOUND,
                format!("not found: {path} (try {})\n", PATHS.join(", ")),
            );
        }
        if method != Method::GET && method != Method::HEAD {
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} not allowed on {path}: use GET\n"),
            );
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            return response;
        }
        let snapshot = self.tree.snapshot();
        match path {
            "/metrics" => {
                let ready = self.ready(&snapshot);
                metrics::gauge!(READY).set(if ready.ok { 1.0 } else { 0.0 });
                let body = self.telemetry.render(&snapshot, &ProcessStats::read());
                with_type(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    body,
                )
            }
            "/tree" => {
                match serde_json::to_string_pretty(&tree_document(
                    snapshot,
                    &self.analytics,
                    &self.generation,
                )) {
                    Ok(json) => with_type(StatusCode::OK, "application/json", json),
                    Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
                }
            }
            "/health/live" => health_answer(&health::live(&snapshot)),
            _ => health_answer(&self.ready(&snapshot)),
        }
    }

    fn ready(&self, snapshot: &nevil_actors::TreeSnapshot) -> Health {
        Health {
            config_generation: Some(self.generation.get()),
            ..health::ready(snapshot, self.estops.latest().as_ref())
        }
    }
}

fn health_answer(health: &Health) -> Response<Full<Bytes>> {
    let status = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let json = serde_json::to_string(health).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    with_type(status, "application/json", json)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    with_type(status, "text/plain; charset=utf-8", body)
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
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
        let runtime = tokio::runtime::Builder::new_current_thread()
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
        let endpoint = endpoint.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let response = endpoint.respond(req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.timeout)
                .serve_connection(TokioIo::new(stream), service);
            // Also bounds a client that never reads its answer.
            let _ = tokio::time::timeout(limits.timeout, connection).await;
            drop(slot);
        });
        // Reap finished connections so the set stays small.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

#[cfg(test)]
mod tests;
