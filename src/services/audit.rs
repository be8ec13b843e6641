//! The audit trail: every enforcement action, exit, restart, escalation, e-stop change
//! and config change of a run, appended to a hash-chained JSON-lines file, so an
//! operator can later prove what the robot did and that nobody edited the record
//! (`nevil audit verify FILE`).
//!
//! # Format
//!
//! One JSON object per line (see [`chain`] for the exact bytes and the hash):
//!
//! ```text
//! {"seq":12,"ts_ms":1764505200123,"kind":"restart","path":"root/drivers/grayscale","restarts":1,"prev":"9f…","hash":"3a…"}
//! ```
//!
//! - `seq` counts lines from 1 and never restarts: across runs (a new run appends to the
//!   file and continues the chain from its last line) and across rotated files.
//! - `ts_ms` is the wall clock (unix milliseconds) when the entry was made.
//! - `kind` and its fields are one [`Entry`].
//! - `prev` is the previous line's `hash`; the first line ever has [`chain::GENESIS`].
//! - `hash` is SHA-256 of the line's own bytes before it, so each line commits to the
//!   whole history before it.
//!
//! # Rotation
//!
//! Like the flight recorder's: when the next line would take `FILE` past
//! `max_file_bytes`, `FILE` is fsynced and becomes `FILE.1` (older ones shift to
//! `FILE.2` … `FILE.<keep_files>`, the oldest is deleted) and a fresh `FILE` starts.
//! The chain goes on: the new file's first line has the next `seq` and, as `prev`, the
//! hash of the rotated file's last line, so `FILE.<n>` … `FILE.1`, `FILE` verify as one
//! chain. Once the oldest file is deleted, the oldest kept line's `prev` points at a
//! line that is gone: verify then reports where the chain starts (its `seq`), and
//! checks everything from there.
//!
//! # Durability and failure
//!
//! Entries are made wherever things happen (a latch observer for the e-stop, a task
//! reading the tree's [`EventFeed`]) and handed, without waiting, to one writer thread
//! over a bounded queue: no file I/O runs on the async workers. The writer writes each
//! line with one `write` (a crash of the process loses nothing already handed over) and
//! fsyncs whenever its queue runs empty, on rotation and at [`Audit::close`]. A full
//! queue (more than [`QUEUE`] entries behind) or a tree feed that lagged loses entries;
//! the loss itself is then written as a [`Entry::Lost`] line. A write error (a full
//! disk) disables the trail with one error log line and `nevil_audit_enabled` 0; the
//! robot runs on. A line torn by a power cut (the file does not end with a newline) is
//! cut off when the trail is next opened, and a [`Entry::Recovered`] line says how many
//! bytes were dropped.
//!
//! What the chain cannot show by itself: whole lines cut from the end of the newest
//! file (then the chain is shorter, but sound). Keep the last `seq` and hash that
//! `nevil audit verify` prints elsewhere to detect that.

pub mod chain;
pub mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use nevil_actors::quota::{Action, Resource};
use nevil_actors::{EventFeed, TreeEvent};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::robot::safety::EStopEvent;

pub use writer::AuditError;

/// Entries the writer may fall behind before new ones are lost (and counted).
pub const QUEUE: usize = 1024;

/// Longest text kept in an entry (an exit reason, an e-stop reason, a key), in bytes;
/// longer text is cut at a character boundary and ends with `…`. Keeps every line well
/// under the smallest `max_file_bytes`.
pub const MAX_TEXT: usize = 512;

/// Most config keys listed in one [`Entry::Config`]; more are summarized as a count.
pub const MAX_KEYS: usize = 32;

/// One thing the trail records: its `kind` and fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A supervisor applied a quota action to a child.
    Quota {
        /// The child.
        path: String,
        /// The resource that decided it.
        resource: Resource,
        /// Its reading.
        usage: f64,
        /// The limit crossed (for a recovery, the level it came back under).
        limit: f64,
        /// What was done: `"action"` and, for a throttle, `"factor"`.
        #[serde(flatten)]
        action: Action,
    },
    /// A child ended (or failed to start) by itself or by quota enforcement.
    Exit {
        /// The child.
        path: String,
        /// Why it ended.
        reason: String,
        /// Whether its supervisor starts it again.
        restart: bool,
        /// The backoff before that restart, in milliseconds.
        delay_ms: Option<f64>,
    },
    /// A new incarnation of a child is up.
    Restart {
        /// The child.
        path: String,
        /// Its restarts so far, this one included.
        restarts: u64,
    },
    /// A supervisor exceeded its restart intensity and failed to its parent.
    Escalation {
        /// The supervisor that gave up.
        supervisor: String,
        /// The child whose exit was one too many.
        child: String,
        /// Why that child exited.
        reason: String,
    },
    /// The e-stop engaged or released.
    Estop {
        /// Engaged (true) or released.
        engaged: bool,
        /// The reasons that hold (engaged) or that cleared (released).
        reason: String,
        /// Seconds since the run started.
        at_s: f64,
    },
    /// The config was loaded at start, or a reload was applied, refused or rolled back.
    Config {
        /// The generation in force after this (1 at start).
        generation: u64,
        /// What happened.
        outcome: ConfigOutcome,
        /// Where the config came from: its file, or `default config`.
        origin: Option<String>,
        /// The keys that changed (or that refused the change).
        keys: Vec<String>,
    },
    /// Entries that never reached the trail.
    Lost {
        /// How many.
        count: u64,
        /// Where they were lost: `audit queue` (the writer fell behind) or `tree
        /// events` (the feed lagged).
        source: String,
    },
    /// The trail was reopened after a power cut tore its last line; the torn bytes
    /// were cut off.
    Recovered {
        /// Bytes of the torn line dropped.
        torn_bytes: u64,
    },
}

/// What became of a config (an [`Entry::Config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigOutcome {
    /// Loaded at start.
    Loaded,
    /// A reload was applied.
    Applied,
    /// A reload was refused (invalid, or it changes what cannot change live).
    Refused,
    /// An applied reload was rolled back (it broke the robot within its probation).
    RolledBack,
}

impl Entry {
    /// The entry for a tree event.
    pub fn from_tree(event: &TreeEvent) -> Self {
        match event {
            TreeEvent::QuotaEnforced {
                path,
                resource,
                usage,
                limit,
                action,
                ..
            } => Self::Quota {
                path: path.to_string(),
                resource: *resource,
                usage: *usage,
                limit: *limit,
                action: *action,
            },
            TreeEvent::ChildExited {
                path,
                reason,
                restart,
                delay,
                ..
            } => Self::Exit {
                path: path.to_string(),
                reason: clip(reason.to_string()),
                restart: *restart,
                delay_ms: delay.map(|d| d.as_secs_f64() * 1e3),
            },
            TreeEvent::ChildRestarted { path, restarts, .. } => Self::Restart {
                path: path.to_string(),
                restarts: *restarts,
            },
            TreeEvent::Escalated {
                path,
                child,
                reason,
                ..
            } => Self::Escalation {
                supervisor: path.to_string(),
                child: child.to_string(),
                reason: clip(reason.to_string()),
            },
        }
    }

    /// The entry for an e-stop change.
    pub fn from_estop(event: &EStopEvent) -> Self {
        Self::Estop {
            engaged: event.engaged,
            reason: clip(event.reason.clone()),
            at_s: event.at_s,
        }
    }

    /// The entry for a config generation; at most [`MAX_KEYS`] keys are listed, and
    /// a last `… and N more` stands for the rest.
    pub fn config(
        generation: u64,
        outcome: ConfigOutcome,
        origin: Option<&str>,
        keys: &[String],
    ) -> Self {
        let mut listed: Vec<String> = keys.iter().take(MAX_KEYS).cloned().map(clip).collect();
        if keys.len() > MAX_KEYS {
            listed.push(format!("… and {} more", keys.len() - MAX_KEYS));
        }
        Self::Config {
            generation,
            outcome,
            origin: origin.map(|o| clip(o.to_string())),
            keys: listed,
        }
    }
}

/// `text`, cut to at most [`MAX_TEXT`] bytes at a character boundary.
fn clip(mut text: String) -> String {
    if text.len() > MAX_TEXT {
        let mut end = MAX_TEXT - '…'.len_utf8();
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// The wall clock in unix milliseconds (0 if it reads before 1970).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

enum Cmd {
    Entry(u64, Entry),
    Close(tokio::sync::oneshot::Sender<()>),
}

/// A handle on an open audit trail; clones share it. Appending never waits.
#[derive(Debug, Clone)]
pub struct Audit {
    tx: SyncSender<Cmd>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    /// Entries the queue refused, not yet written as an [`Entry::Lost`].
    lost: AtomicU64,
    enabled: AtomicBool,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Entry(ts, e) => f.debug_tuple("Entry").field(ts).field(e).finish(),
            Self::Close(_) => f.write_str("Close"),
        }
    }
}

impl Audit {
    /// Opens (or creates) the trail at `path`, continuing its chain, and starts its
    /// writer thread. Files rotate at `max_file_bytes`; `keep_files` rotated ones are
    /// kept.
    ///
    /// # Errors
    ///
    /// [`AuditError::Io`] if the file cannot be opened, read or repaired;
    /// [`AuditError::NotATrail`] if its last line is not an intact audit line (the
    /// chain cannot be continued: move the file aside); [`AuditError::Thread`] if the
    /// writer thread cannot start.
    pub fn open(path: &Path, max_file_bytes: u64, keep_files: u32) -> Result<Self, AuditError> {
        let trail = writer::Trail::open(path, max_file_bytes, keep_files)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            lost: AtomicU64::new(0),
            enabled: AtomicBool::new(true),
        });
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("audit".into())
            .spawn(move || writer::run(trail, &rx, &thread_shared))
            .map_err(AuditError::Thread)?;
        metrics::gauge!(crate::core::metrics::AUDIT_ENABLED).set(1.0);
        tracing::info!(path = %path.display(), "audit trail open");
        Ok(Self { tx, shared })
    }

    /// The trail's file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Whether entries are still written (false after a write error).
    pub fn enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Acquire)
    }

    /// Appends `entry`, stamped now, without waiting. If the writer is [`QUEUE`]
    /// entries behind, the entry is lost and counted (an [`Entry::Lost`] follows);
    /// after a write error, entries are dropped.
    pub fn append(&self, entry: Entry) {
        match self.tx.try_send(Cmd::Entry(now_ms(), entry)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.lost.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(crate::core::metrics::AUDIT_LOST).increment(1);
            }
            // The writer stopped on a write error (already logged) or was closed.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Appends a `config` entry: generation `generation` was `outcome`, from `origin`,
    /// changing (or refused for) `keys`. Called once at start (generation 1,
    /// [`ConfigOutcome::Loaded`]) and for each reload.
    pub fn config(
        &self,
        generation: u64,
        outcome: ConfigOutcome,
        origin: Option<&str>,
        keys: &[String],
    ) {
        self.append(Entry::config(generation, outcome, origin, keys));
    }

    /// Appends the entry of a tree event.
    pub fn tree_event(&self, event: &TreeEvent) {
        self.append(Entry::from_tree(event));
    }

    /// Appends the entry of an e-stop change (the latch's observer calls it).
    pub fn estop(&self, event: &EStopEvent) {
        self.append(Entry::from_estop(event));
    }

    /// Subscribes to `feed` now (call it before the tree starts, to miss nothing) and
    /// appends every event it carries, from a task on the current tokio runtime, until
    /// [`Watch::finish`].
    pub fn watch(&self, feed: &EventFeed) -> Watch {
        let mut events = feed.subscribe();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let audit = self.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    biased;
                    event = events.recv() => match event {
                        Ok(event) => audit.tree_event(&event),
                        Err(RecvError::Lagged(n)) => audit.lost(n, "tree events"),
                        Err(RecvError::Closed) => return,
                    },
                    _ = &mut stopped => break,
                }
            }
            // What was published before the stop is still written.
            loop {
                match events.try_recv() {
                    Ok(event) => audit.tree_event(&event),
                    Err(tokio::sync::broadcast::error::TryRecvError::Lagged(n)) => {
                        audit.lost(n, "tree events");
                    }
                    Err(_) => return,
                }
            }
        });
        Watch { stop, task }
    }

    fn lost(&self, count: u64, source: &str) {
        tracing::warn!(count, source, "audit entries lost");
        self.append(Entry::Lost {
            count,
            source: source.into(),
        });
    }

    /// Writes what is queued, fsyncs and stops the writer: the end of the run. Later
    /// entries are dropped. Waits for the writer without blocking an async worker.
    pub async fn close(&self) {
        let (reply, done) = tokio::sync::oneshot::channel();
        let cmd = Cmd::Close(reply);
        let sent = match self.tx.try_send(cmd) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(_)) => false,
            Err(TrySendError::Full(cmd)) => {
                let tx = self.tx.clone();
                tokio::task::spawn_blocking(move || tx.send(cmd).is_ok())
                    .await
                    .unwrap_or(false)
            }
        };
        if sent {
            // An error means the writer ended on a write error: nothing more to wait for.
            let _ = done.await;
        }
    }
}

/// The task appending a tree's events ([`Audit::watch`]).
#[derive(Debug)]
pub struct Watch {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// Appends what the feed still holds, then ends the task.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
