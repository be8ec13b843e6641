//! `GET /events`: the observer's live stream, as Server-Sent Events.
//!
//! A stream starts with the timeline's backlog and the state now, then gets the state
//! once a second and each new timeline entry as it happens. The state is built once a
//! second for all open streams together (and not at all while none is open). A client
//! that stops reading is cut off once its stream has been unable to take an event for
//! the endpoint's timeout, so a stalled page holds no memory or task for long; a page
//! that fell behind the timeline is sent `resync` and the backlog again.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Bytes, Frame};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, Notify, OwnedSemaphorePermit};

use super::state::state_json;
use super::timeline::Stamped;
use crate::core::clock::unix_ms;
use crate::ops::http::Endpoint;

/// How often the state is sent.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Events queued per stream before the stream counts as stalled.
const QUEUE: usize = 16;

/// One SSE event: `event: <name>` and its data (JSON, one line).
pub fn event(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn timeline_event(entry: &Stamped) -> Bytes {
    let json = serde_json::to_string(entry).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    event("timeline", &json)
}

/// Builds the state once a [`PERIOD`] while any stream is open and sends it to them.
pub async fn broadcast_states(endpoint: Endpoint, states: broadcast::Sender<Bytes>) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if states.receiver_count() > 0 {
            let _ = states.send(event("state", &state_json(&endpoint, unix_ms())));
        }
    }
}

/// The body of one `/events` answer: frames fed by [`forward`].
pub type Frames = mpsc::Receiver<Bytes>;

/// Told when a stream's feed ends (its page went or stalled), on drop.
pub struct Ended(pub Arc<Notify>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Feeds one stream until its client goes or stalls for `stall`: the backlog and
/// the state now, then the shared states and the new timeline entries. `_permit` (a
/// slot among the streams allowed at once) is held for as long; `_ended` tells the
/// connection when it is over.
pub async fn forward(
    endpoint: Endpoint,
    mut states: broadcast::Receiver<Bytes>,
    tx: mpsc::Sender<Bytes>,
    stall: Duration,
    _permit: OwnedSemaphorePermit,
    _ended: Ended,
) {
    let send = |bytes: Bytes| {
        let tx = tx.clone();
        async move {
            matches!(
                tokio::time::timeout(stall, tx.send(bytes)).await,
                Ok(Ok(()))
            )
        }
    };
    let (backlog, mut live) = endpoint.timeline.subscribe();
    if !send(Bytes::from_static(b"retry: 2000\n\n")).await {
        return;
    }
    for entry in &backlog {
        if !send(timeline_event(entry)).await {
            return;
        }
    }
    if !send(event("state", &state_json(&endpoint, unix_ms()))).await {
        return;
    }
    loop {
        let next = tokio::select! {
            state = states.recv() => match state {
                Ok(bytes) => bytes,
                // States only replace each other: the next one will do.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            },
            entry = live.recv() => match entry {
                Ok(entry) => timeline_event(&entry),
                Err(RecvError::Lagged(_)) => {
                    let (backlog, fresh) = endpoint.timeline.subscribe();
                    live = fresh;
                    if !send(event("resync", "{}")).await {
                        break;
                    }
                    for entry in &backlog {
                        if !send(timeline_event(entry)).await {
                            return;
                        }
                    }
                    continue;
                }
                Err(RecvError::Closed) => break,
            },
        };
        if !send(next).await {
            break;
        }
    }
}

/// The stream's frames as a response body.
pub fn body(
    frames: Frames,
) -> impl hyper::body::Body<Data = Bytes, Error = std::convert::Infallible> + Send + 'static {
    let stream = futures::stream::unfold(frames, |mut frames| async move {
        frames
            .recv()
            .await
            .map(|bytes| (Ok(Frame::data(bytes)), frames))
    });
    http_body_util::StreamBody::new(stream)
}

/// A channel for one stream's frames.
pub fn channel() -> (mpsc::Sender<Bytes>, Frames) {
    mpsc::channel(QUEUE)
}

/// Streams allowed at once for `max_connections`: a quarter of them (at least one), so
/// open pages never take every slot from scrapers and probes.
pub fn max_streams(max_connections: usize) -> usize {
    (max_connections / 4).max(1)
}

/// Shared among the server's streams: the states and the slots.
#[derive(Clone)]
pub struct Streams {
    /// The states built once a period.
    pub states: broadcast::Sender<Bytes>,
    /// Streams allowed at once.
    pub slots: Arc<tokio::sync::Semaphore>,
}
