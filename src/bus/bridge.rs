//! The bus across processes: each process that shares topics opens one [`Bridge`], a
//! Zenoh session in peer mode on a unix socket (no router, no multicast or gossip
//! scouting). The parent [`listen`](Bridge::listen)s, a process-placed group's child
//! [`connect`](Bridge::connect)s; each side [`export`](Bridge::export)s the topics it
//! publishes for the other and [`import`](Bridge::import)s those it subscribes to.
//!
//! A message crosses as one frame ([`super::wire`]) on the key `<prefix>/<topic>`. An
//! export never slows the local publisher: its subscription hands each message to a
//! bounded queue (drop-newest, counted) that a task drains into Zenoh. A message never
//! loops back: an import takes remote publications only, and one bridge carries a topic
//! in one direction only.
//!
//! Zenoh blocks in place when a session closes, which Tokio's current-thread runtime
//! forbids: a bridge needs a multi-threaded runtime, and says so instead of panicking.

mod stats;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::mpsc;
use zenoh::pubsub::{Publisher, Subscriber};
use zenoh::qos::CongestionControl;
use zenoh::sample::Locality;

pub use stats::{BridgeStats, Direction};

use super::wire::{self, Wire};
use super::{Delivery, Topic};
use stats::Counters;

/// Messages an export holds for Zenoh before it drops the newest: seconds of any bus
/// topic's rate, so only a stalled peer fills it.
pub const EXPORT_QUEUE: usize = 256;

/// Why a bridge could not be opened or a topic not bridged.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The key prefix is not a plain key expression.
    #[error("bridge key prefix {prefix:?}: {why}")]
    Prefix {
        /// The prefix given.
        prefix: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A topic's name cannot be one chunk of a key expression.
    #[error("bus topic {name:?} cannot cross the bridge: {why}")]
    TopicName {
        /// The topic's name.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The socket's path cannot be a Zenoh locator.
    #[error("bridge socket {socket}: {why}")]
    SocketPath {
        /// The path given.
        socket: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The parent's end could not listen on its socket.
    #[error("bridge cannot listen on {socket}: {cause}")]
    Listen {
        /// The socket.
        socket: PathBuf,
        /// Zenoh's or the file system's error.
        cause: String,
    },
    /// A child's end found nobody listening on the socket.
    #[error("nobody listens on the bridge socket {socket}: {cause}")]
    NoListener {
        /// The socket.
        socket: PathBuf,
        /// Zenoh's error.
        cause: String,
    },
    /// The bridge was opened outside a multi-threaded Tokio runtime.
    #[error("the bridge needs a multi-threaded tokio runtime: {0}")]
    Runtime(&'static str),
    /// Zenoh refused to declare a publisher or subscriber.
    #[error("bridge key {key}: {cause}")]
    Declare {
        /// The key expression.
        key: String,
        /// Zenoh's error.
        cause: String,
    },
    /// The topic already crosses this bridge the other way: bridging it both ways
    /// would loop its messages between the processes.
    #[error(
        "bus topic {topic:?} already crosses this bridge as an {existing}: a topic crosses one way"
    )]
    BothWays {
        /// The topic.
        topic: &'static str,
        /// The direction it already has.
        existing: Direction,
    },
    /// No peer connected within the wait.
    #[error("no peer connected to the bridge on {place} within {timeout:?}")]
    NoPeer {
        /// Where the bridge is: its socket, or the network session.
        place: String,
        /// How long it waited.
        timeout: Duration,
    },
    /// No subscriber of an export's key appeared within the wait.
    #[error("nobody across the bridge subscribed to {key} within {timeout:?}")]
    NotMatched {
        /// The export's key.
        key: String,
        /// How long it waited.
        timeout: Duration,
    },
}

/// Characters with a meaning in Zenoh key expressions, refused in a prefix or name.
const SPECIAL: [char; 4] = ['*', '$', '#', '?'];

fn check_prefix(prefix: &str) -> Result<(), BridgeError> {
    let why = if prefix.is_empty() {
        Some("empty")
    } else if prefix.contains(SPECIAL) {
        Some("contains one of `*`, `$`, `#`, `?`")
    } else if prefix.split('/').any(str::is_empty) {
        Some("has an empty chunk (a leading, trailing or doubled `/`)")
    } else {
        None
    };
    match why {
        Some(why) => Err(BridgeError::Prefix {
            prefix: prefix.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

fn check_topic(name: &str) -> Result<(), BridgeError> {
    let why = if name.is_empty() {
        Some("empty")
    } else if name.contains(SPECIAL) || name.contains('/') {
        Some("contains one of `*`, `$`, `#`, `?`, `/`")
    } else {
        None
    };
    match why {
        Some(why) => Err(BridgeError::TopicName {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

/// The peer-mode configuration shared by both ends: no scouting of any kind.
fn config(socket: &Path, listen: bool) -> Result<zenoh::Config, BridgeError> {
    let path = socket.to_str().ok_or_else(|| BridgeError::SocketPath {
        socket: socket.to_path_buf(),
        why: "not valid UTF-8",
    })?;
    if path.contains(['"', '\\']) {
        return Err(BridgeError::SocketPath {
            socket: socket.to_path_buf(),
            why: "contains a quote or backslash",
        });
    }
    let endpoint = format!("[\"unixsock-stream/{path}\"]");
    let (listen_on, connect_to) = if listen {
        (endpoint.as_str(), "[]")
    } else {
        ("[]", endpoint.as_str())
    };
    let mut config = zenoh::Config::default();
    let settings = [
        ("mode", "\"peer\""),
        ("listen/endpoints", listen_on),
        ("connect/endpoints", connect_to),
        // A child connects once, to a parent that already listens: fail, don't retry.
        ("connect/timeout_ms", "0"),
        ("connect/exit_on_failure", "true"),
        ("scouting/multicast/enabled", "false"),
        ("scouting/gossip/enabled", "false"),
    ];
    for (key, value) in settings {
        // The keys and values are fixed but for the path, already checked above.
        config
            .insert_json5(key, value)
            .map_err(|_| BridgeError::SocketPath {
                socket: socket.to_path_buf(),
                why: "not usable in a zenoh locator",
            })?;
    }
    Ok(config)
}

fn check_runtime() -> Result<(), BridgeError> {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::CurrentThread => {
            Err(BridgeError::Runtime("this one is current-thread"))
        }
        Ok(_) => Ok(()),
        Err(_) => Err(BridgeError::Runtime("none is running")),
    }
}

/// One process's end of the bridge: a Zenoh session in peer mode, no scouting, on a
/// unix socket.
pub struct Bridge {
    session: zenoh::Session,
    prefix: String,
    /// Where it is, for messages: its socket, or the network session.
    place: String,
    counters: Arc<Mutex<Vec<Arc<Counters>>>>,
    ways: Mutex<HashMap<&'static str, Direction>>,
}

/// Names each export's subscription on its local topic uniquely in the process.
static NEXT_EXPORT: AtomicU64 = AtomicU64::new(0);

impl Bridge {
    /// The parent's end: listens on `socket` (removing a stale file first). `prefix`
    /// is the key prefix, e.g. `nevil/<robot_id>`.
    ///
    /// # Errors
    ///
    /// [`BridgeError`] for a bad prefix or socket path, outside a multi-threaded
    /// runtime, or if Zenoh cannot listen there.
    pub async fn listen(socket: &Path, prefix: &str) -> Result<Self, BridgeError> {
        check_prefix(prefix)?;
        check_runtime()?;
        let config = config(socket, true)?;
        match std::fs::remove_file(socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BridgeError::Listen {
                    socket: socket.to_path_buf(),
                    cause: format!("removing the stale socket: {e}"),
                })
            }
            _ => {}
        }
        let session = zenoh::open(config).await.map_err(|e| BridgeError::Listen {
            socket: socket.to_path_buf(),
            cause: e.to_string(),
        })?;
        Ok(Self::new(session, &socket.display().to_string(), prefix))
    }

    /// A bridge on a session opened elsewhere, e.g. the network session of
    /// [`super::net`], between a robot and its node: the same frames and counters, on
    /// keys under `prefix`.
    ///
    /// # Errors
    ///
    /// [`BridgeError::Prefix`] for a bad prefix.
    pub fn over(session: zenoh::Session, prefix: &str) -> Result<Self, BridgeError> {
        check_prefix(prefix)?;
        Ok(Self::new(session, "the network session", prefix))
    }

    /// A child's end: connects to `socket`.
    ///
    /// # Errors
    ///
    /// [`BridgeError::NoListener`], naming the socket, if nobody listens on it; the
    /// other [`BridgeError`]s for a bad prefix or path, or outside a multi-threaded
    /// runtime.
    pub async fn connect(socket: &Path, prefix: &str) -> Result<Self, BridgeError> {
        check_prefix(prefix)?;
        check_runtime()?;
        let config = config(socket, false)?;
        let session = zenoh::open(config)
            .await
            .map_err(|e| BridgeError::NoListener {
                socket: socket.to_path_buf(),
                cause: e.to_string(),
            })?;
        Ok(Self::new(session, &socket.display().to_string(), prefix))
    }

    fn new(session: zenoh::Session, place: &str, prefix: &str) -> Self {
        Self {
            session,
            prefix: prefix.to_string(),
            place: place.to_string(),
            counters: Arc::default(),
            ways: Mutex::default(),
        }
    }

    /// The key of `topic` on this bridge: `<prefix>/<topic name>`.
    fn key(&self, name: &'static str, direction: Direction) -> Result<String, BridgeError> {
        check_topic(name)?;
        let mut ways = self.ways.lock().unwrap_or_else(PoisonError::into_inner);
        match ways.get(name) {
            Some(&existing) if existing != direction => {
                return Err(BridgeError::BothWays {
                    topic: name,
                    existing,
                })
            }
            _ => ways.insert(name, direction),
        };
        Ok(format!("{}/{name}", self.prefix))
    }

    fn counters(&self, topic: &'static str, direction: Direction) -> Arc<Counters> {
        let counters = Arc::new(Counters::new(topic, direction));
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(counters.clone());
        counters
    }

    /// Sends every message published on the local `topic` to the other side (key
    /// `<prefix>/<topic name>`). Never blocks or slows the local publisher: messages go
    /// through a queue of [`EXPORT_QUEUE`] (drop-newest, counted).
    ///
    /// # Errors
    ///
    /// [`BridgeError::BothWays`] if this bridge imports the topic; [`BridgeError::Declare`]
    /// if Zenoh refuses the publisher.
    pub async fn export<T: Wire>(&self, topic: &Topic<T>) -> Result<Export, BridgeError> {
        let key = self.key(topic.name(), Direction::Export)?;
        let publisher = self
            .session
            .declare_publisher(key.clone())
            // Our queue drops (and counts); Zenoh's may only make the drain wait.
            .congestion_control(CongestionControl::Block)
            .express(true)
            .allowed_destination(Locality::Remote)
            .await
            .map_err(|e| BridgeError::Declare {
                key: key.clone(),
                cause: e.to_string(),
            })?;
        let publisher = Arc::new(publisher);
        let counters = self.counters(topic.name(), Direction::Export);
        let (tx, rx) = mpsc::channel(EXPORT_QUEUE);
        tokio::spawn(forward(rx, publisher.clone(), counters.clone()));
        let name = format!("bridge-{}", NEXT_EXPORT.fetch_add(1, Ordering::Relaxed));
        topic.subscribe_with(&name, handoff(tx, counters));
        let local = topic.clone();
        Ok(Export {
            key,
            publisher,
            unsubscribe: Box::new(move || {
                local.unsubscribe(&name);
            }),
        })
    }

    /// Publishes on the local `topic` every message that arrives for it from the other
    /// side; frames of another schema version or that do not decode are dropped and
    /// counted.
    ///
    /// # Errors
    ///
    /// [`BridgeError::BothWays`] if this bridge exports the topic; [`BridgeError::Declare`]
    /// if Zenoh refuses the subscriber.
    pub async fn import<T: Wire>(&self, topic: &Topic<T>) -> Result<Import, BridgeError> {
        let key = self.key(topic.name(), Direction::Import)?;
        let counters = self.counters(topic.name(), Direction::Import);
        let local = topic.clone();
        let subscriber = self
            .session
            .declare_subscriber(key.clone())
            // Never this session's own publications.
            .allowed_origin(Locality::Remote)
            .callback(move |sample| {
                let frame = sample.payload().to_bytes();
                match wire::decode::<T>(&frame) {
                    Ok((seq, msg)) => {
                        counters.passed(frame.len());
                        counters.sequenced(seq);
                        local.publish(msg);
                    }
                    Err(e) => counters.rejected(&e),
                }
            })
            .await
            .map_err(|e| BridgeError::Declare {
                key,
                cause: e.to_string(),
            })?;
        Ok(Import {
            _subscriber: subscriber,
        })
    }

    /// Counters per topic and direction, one entry per export or import made.
    pub fn stats(&self) -> Vec<BridgeStats> {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|c| c.stats())
            .collect()
    }

    /// Logs every counter, one line per topic and direction: what crossed, and what did
    /// not (dropped before, lost on the way, refused on arrival).
    pub fn log_stats(&self) {
        for s in self.stats() {
            tracing::info!(
                topic = s.topic,
                direction = %s.direction,
                messages = s.messages,
                dropped = s.dropped,
                lost = s.lost,
                rejected = s.rejected_schema + s.rejected_decode,
                "bridge counters"
            );
        }
    }

    /// Waits until a peer is connected (the child at the parent, the parent at the
    /// child), up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`BridgeError::NoPeer`] when none connected in time.
    pub async fn wait_peer(&self, timeout: Duration) -> Result<(), BridgeError> {
        let waiting = async {
            while self.session.info().peers_zid().await.next().is_none() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        tokio::time::timeout(timeout, waiting)
            .await
            .map_err(|_| BridgeError::NoPeer {
                place: self.place.clone(),
                timeout,
            })
    }
}

/// The subscription an export puts on its local topic: a non-blocking hand-off to the
/// export's queue; a full queue drops the message (the newest) and counts it, for the
/// topic as a drop of this subscriber and for the bridge.
fn handoff<T: Send + 'static>(
    tx: mpsc::Sender<T>,
    counters: Arc<Counters>,
) -> impl Fn(Delivery<T>) -> bool + Send + Sync + 'static {
    move |delivery| match tx.try_send(delivery.into_inner()) {
        Ok(()) => true,
        Err(_) => {
            counters.dropped();
            false
        }
    }
}

/// Drains an export's queue into Zenoh until the export is dropped.
async fn forward<T: Wire>(
    mut rx: mpsc::Receiver<T>,
    publisher: Arc<Publisher<'static>>,
    counters: Arc<Counters>,
) {
    let mut seq = 0;
    while let Some(msg) = rx.recv().await {
        // Numbered as they go out: what is dropped before (a full hand-off queue) is
        // counted here as dropped, what goes missing after as lost at the other end.
        let frame = wire::encode(&msg, seq);
        seq += 1;
        let Some(frame) = frame else {
            tracing::warn!(key = %publisher.key_expr(), "bridge: message over the frame limit, dropped");
            counters.dropped();
            continue;
        };
        let len = frame.len();
        match publisher.put(frame).await {
            Ok(()) => counters.passed(len),
            Err(e) => {
                tracing::warn!(key = %publisher.key_expr(), "bridge: put failed: {e}");
                counters.dropped();
            }
        }
    }
}

/// An export's handle: dropping it unsubscribes from the local topic; the queue
/// drains and the Zenoh publisher is undeclared.
pub struct Export {
    key: String,
    publisher: Arc<Publisher<'static>>,
    unsubscribe: Box<dyn Fn() + Send + Sync>,
}

impl Export {
    /// The key this export publishes on.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Waits until a subscriber across the bridge matches this export's key, up to
    /// `timeout`: from then on its messages reach that side.
    ///
    /// # Errors
    ///
    /// [`BridgeError::NotMatched`] when none appeared in time.
    pub async fn wait_matched(&self, timeout: Duration) -> Result<(), BridgeError> {
        let waiting = async {
            loop {
                match self.publisher.matching_status().await {
                    Ok(status) if status.matching() => return,
                    _ => tokio::time::sleep(Duration::from_millis(2)).await,
                }
            }
        };
        tokio::time::timeout(timeout, waiting)
            .await
            .map_err(|_| BridgeError::NotMatched {
                key: self.key.clone(),
                timeout,
            })
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        (self.unsubscribe)();
    }
}

/// An import's handle: dropping it undeclares its Zenoh subscriber.
pub struct Import {
    _subscriber: Subscriber<()>,
}

#[cfg(test)]
mod tests;
