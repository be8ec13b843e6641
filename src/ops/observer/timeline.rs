//! The observer's timeline: the latest enforcement actions, exits, restarts,
//! escalations, e-stop changes, config generations and control requests of the run, in
//! memory, for a page opened at any time; and a live feed of new ones.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use nevil_actors::{EventFeed, TreeEvent};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::core::clock::{unix_ms, unix_ms_at};
use crate::robot::safety::EStopEvent;
use crate::services::audit::Entry;

/// Entries kept for a page that opens later.
pub const KEPT: usize = 500;

/// New entries a slow page may fall behind before it is resynchronised.
const LIVE: usize = 256;

/// One timeline entry: what happened (the audit trail's [`Entry`]) and when (unix ms).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stamped {
    /// Wall clock, unix milliseconds.
    pub ts_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub entry: Entry,
}

/// The timeline; clones share it. Appending never waits on a reader.
#[derive(Debug, Clone)]
pub struct Timeline {
    kept: Arc<Mutex<VecDeque<Arc<Stamped>>>>,
    live: broadcast::Sender<Arc<Stamped>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Self {
            kept: Arc::new(Mutex::new(VecDeque::with_capacity(KEPT))),
            live: broadcast::channel(LIVE).0,
        }
    }
}

impl Timeline {
    /// Appends `entry`, stamped now.
    pub fn push(&self, entry: Entry) {
        self.push_at(unix_ms(), entry);
    }

    fn push_at(&self, ts_ms: u64, entry: Entry) {
        let stamped = Arc::new(Stamped { ts_ms, entry });
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(stamped.clone());
        // Sent under the lock, so a subscriber's backlog and live feed neither miss
        // nor repeat an entry. No receiver is not an error.
        let _ = self.live.send(stamped);
    }

    /// Appends the entry of a tree event, stamped when it happened.
    pub fn tree_event(&self, event: &TreeEvent) {
        self.push_at(unix_ms_at(event.at()), Entry::from_tree(event));
    }

    /// Appends the entry of an e-stop change (the latch's observer calls it: cheap,
    /// never waits on a reader).
    pub fn estop(&self, event: &EStopEvent) {
        self.push(Entry::from_estop(event));
    }

    /// The entries kept, oldest first, and a receiver of every entry after them.
    pub fn subscribe(&self) -> (Vec<Arc<Stamped>>, broadcast::Receiver<Arc<Stamped>>) {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        (kept.iter().cloned().collect(), self.live.subscribe())
    }

    /// Appends every event of `feed` from a task on the current tokio runtime, for as
    /// long as the feed lasts; subscribes now (call it before the tree starts, to miss
    /// nothing). Events the task fell behind on are counted in one [`Entry::Lost`].
    pub fn watch(&self, feed: &EventFeed) -> tokio::task::JoinHandle<()> {
        let mut events = feed.subscribe();
        let timeline = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => timeline.tree_event(&event),
                    Err(RecvError::Lagged(count)) => timeline.push(Entry::Lost {
                        count,
                        source: "tree events".into(),
                    }),
                    Err(RecvError::Closed) => break,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restart(path: &str, restarts: u64) -> Entry {
        Entry::Restart {
            path: path.into(),
            restarts,
        }
    }

    /// The ring keeps the newest [`KEPT`]; a subscriber gets them, then only what
    /// follows, each once.
    #[test]
    fn keeps_the_latest_and_feeds_what_follows() {
        let timeline = Timeline::default();
        for n in 0..(KEPT as u64 + 10) {
            timeline.push(restart("root/a", n));
        }
        let (backlog, mut live) = timeline.subscribe();
        assert_eq!(backlog.len(), KEPT);
        assert_eq!(backlog[0].entry, restart("root/a", 10));
        timeline.push(restart("root/b", 1));
        assert_eq!(live.try_recv().unwrap().entry, restart("root/b", 1));
        assert!(live.try_recv().is_err());
        let json = serde_json::to_value(&*backlog[0]).unwrap();
        assert_eq!(json["kind"], "restart");
        assert_eq!(json["path"], "root/a");
        assert!(json["ts_ms"].as_u64().unwrap() > 0);
    }
}
