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
//! - `ts_ms` is the wall clock (unix milliseconds) when it happened. Lines are in the
//!   order the writer received them: a tree event (read by a task) may follow an
//!   e-stop change (handed over at once) that happened after it; `ts_ms` tells.
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

use nevil_actors::quota::{Action, Resource};
use nevil_actors::{EventFeed, TreeEvent};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::core::clock::{unix_ms, unix_ms_at};
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
    /// An operator's request through the observer page's controls, granted or refused.
    Control {
        /// The actor it was for.
        path: String,
        /// `restart`, `suspend` or `resume`.
        action: String,
        /// `done`, or `refused: ` and why.
        outcome: String,
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
        self.send(unix_ms(), entry);
    }

    fn send(&self, ts_ms: u64, entry: Entry) {
        match self.tx.try_send(Cmd::Entry(ts_ms, entry)) {
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

    /// Appends the entry of a tree event, stamped when it happened (not when it
    /// reached the trail).
    pub fn tree_event(&self, event: &TreeEvent) {
        self.send(unix_ms_at(event.at()), Entry::from_tree(event));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::robot::safety::EStopLatch;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nevil-audit-h-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("audit.jsonl")
    }

    fn kinds(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn entries_serialize_with_their_kind_and_flat_fields() {
        let quota = Entry::Quota {
            path: "root/control/motion".into(),
            resource: Resource::Cpu,
            usage: 0.9,
            limit: 0.5,
            action: Action::Throttle { factor: 0.7 },
        };
        assert_eq!(
            serde_json::to_value(&quota).unwrap(),
            serde_json::json!({"kind": "quota", "path": "root/control/motion", "resource": "cpu",
                "usage": 0.9, "limit": 0.5, "action": "throttle", "factor": 0.7})
        );
        let config = Entry::config(3, ConfigOutcome::RolledBack, None, &["a.b".into()]);
        assert_eq!(
            serde_json::to_value(&config).unwrap(),
            serde_json::json!({"kind": "config", "generation": 3, "outcome": "rolled_back",
                "origin": null, "keys": ["a.b"]})
        );
    }

    #[test]
    fn each_tree_event_has_its_entry() {
        use nevil_actors::{ActorPath, ExitReason};
        let at = tokio::time::Instant::now();
        let drivers = ActorPath::root("root").child("drivers");
        let grayscale = drivers.child("grayscale");
        let exit = TreeEvent::ChildExited {
            at,
            path: grayscale.clone(),
            reason: ExitReason::Normal,
            restart: true,
            delay: Some(std::time::Duration::from_millis(250)),
        };
        assert_eq!(
            serde_json::to_value(Entry::from_tree(&exit)).unwrap(),
            serde_json::json!({"kind": "exit", "path": "root/drivers/grayscale",
                "reason": ExitReason::Normal.to_string(), "restart": true, "delay_ms": 250.0})
        );
        let restart = TreeEvent::ChildRestarted {
            at,
            path: grayscale.clone(),
            restarts: 2,
        };
        assert_eq!(
            Entry::from_tree(&restart),
            Entry::Restart {
                path: "root/drivers/grayscale".into(),
                restarts: 2
            }
        );
        let quota = TreeEvent::QuotaEnforced {
            at,
            path: grayscale.clone(),
            resource: Resource::Mailbox,
            usage: 300.0,
            limit: 200.0,
            action: Action::Suspend,
        };
        assert_eq!(
            serde_json::to_value(Entry::from_tree(&quota)).unwrap(),
            serde_json::json!({"kind": "quota", "path": "root/drivers/grayscale",
                "resource": "mailbox", "usage": 300.0, "limit": 200.0, "action": "suspend"})
        );
        let escalated = TreeEvent::Escalated {
            at,
            path: drivers,
            child: grayscale,
            reason: ExitReason::Normal,
        };
        assert_eq!(
            Entry::from_tree(&escalated),
            Entry::Escalation {
                supervisor: "root/drivers".into(),
                child: "root/drivers/grayscale".into(),
                reason: ExitReason::Normal.to_string()
            }
        );
    }

    #[test]
    fn long_text_and_long_key_lists_are_bounded() {
        let long = "é".repeat(MAX_TEXT);
        let clipped = clip(long);
        assert!(
            clipped.len() <= MAX_TEXT && clipped.ends_with('…'),
            "{}",
            clipped.len()
        );
        let keys: Vec<String> = (0..100).map(|i| format!("quotas.k{i}")).collect();
        let Entry::Config { keys, .. } = Entry::config(2, ConfigOutcome::Applied, None, &keys)
        else {
            unreachable!()
        };
        assert_eq!(keys.len(), MAX_KEYS + 1);
        assert_eq!(keys.last().map(String::as_str), Some("… and 68 more"));
    }

    #[tokio::test]
    async fn the_latch_and_config_entries_reach_the_file_in_order_and_verify() {
        let path = tmp("latch");
        let audit = Audit::open(&path, 1 << 20, 0).unwrap();
        audit.config(1, ConfigOutcome::Loaded, Some("default config"), &[]);
        let latch = EStopLatch::default();
        let observer = audit.clone();
        latch.observe(move |e| observer.estop(e));
        latch.set("shutdown", "shutdown".into(), 1.5);
        audit.close().await;
        audit.append(Entry::Recovered { torn_bytes: 1 }); // after close: dropped
        let lines = kinds(&path);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["kind"], "config");
        assert_eq!(lines[0]["origin"], "default config");
        assert_eq!(
            (&lines[1]["kind"], &lines[1]["engaged"], &lines[1]["reason"]),
            (&"estop".into(), &true.into(), &"shutdown".into())
        );
        assert_eq!(verify::verify(&path).unwrap().lines, 2);
    }

    #[tokio::test]
    async fn a_write_error_disables_the_trail_and_the_caller_runs_on() {
        // Every write to /dev/full fails with ENOSPC: a full disk.
        let audit = Audit::open(Path::new("/dev/full"), 4096, 0).unwrap();
        assert!(audit.enabled());
        audit.append(Entry::Recovered { torn_bytes: 1 });
        audit.close().await;
        assert!(!audit.enabled());
        // Later entries are dropped without a word.
        audit.append(Entry::Recovered { torn_bytes: 2 });
        audit.close().await;
    }

    #[tokio::test]
    async fn entries_the_queue_refused_are_written_as_one_lost_line() {
        let path = tmp("lost");
        let audit = Audit::open(&path, 1 << 20, 0).unwrap();
        // As `append` counts them when the queue is full.
        audit.shared.lost.fetch_add(5, Ordering::Relaxed);
        audit.append(Entry::Recovered { torn_bytes: 0 });
        audit.close().await;
        let lines = kinds(&path);
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (&lines[1]["kind"], &lines[1]["count"], &lines[1]["source"]),
            (&"lost".into(), &5.into(), &"audit queue".into())
        );
    }

    #[tokio::test]
    async fn a_flood_is_written_or_counted_entry_for_entry() {
        let path = tmp("full");
        let audit = Audit::open(&path, 1 << 30, 0).unwrap();
        // Far more than the queue holds, faster than the writer drains: some are lost.
        let n = (QUEUE * 20) as u64;
        for i in 0..n {
            audit.append(Entry::Recovered { torn_bytes: i });
        }
        audit.close().await;
        let lines = kinds(&path);
        let lost: u64 = lines
            .iter()
            .filter(|l| l["kind"] == "lost")
            .map(|l| l["count"].as_u64().unwrap())
            .sum();
        let written = lines.iter().filter(|l| l["kind"] == "recovered").count() as u64;
        assert_eq!(
            written + lost,
            n,
            "every entry is written or counted as lost"
        );
        assert_eq!(verify::verify(&path).unwrap().lines, lines.len() as u64);
    }
}
