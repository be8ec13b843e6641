//! The counters of one export or import: kept in atomics for [`super::Bridge::stats`]
//! and mirrored into the `nevil_bridge_*` metrics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::Counter;
use serde::Serialize;

use crate::bus::wire::FrameError;
use crate::core::metrics::{BRIDGE_DROPPED, BRIDGE_LOST, BRIDGE_MESSAGES, BRIDGE_REJECTED};

/// Which way a topic crosses a bridge, as seen from this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Local publications sent to the other side.
    Export,
    /// The other side's publications published locally.
    Import,
}

impl Direction {
    /// The `direction` label: `export` or `import`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Import => "import",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters of one topic in one direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BridgeStats {
    /// The topic's name.
    pub topic: &'static str,
    /// Which way it crosses.
    pub direction: Direction,
    /// Messages that crossed (sent for an export, published locally for an import).
    pub messages: u64,
    /// Their frames' bytes.
    pub bytes: u64,
    /// Frames refused for another schema version (imports).
    pub rejected_schema: u64,
    /// Frames refused because they did not decode (imports).
    pub rejected_decode: u64,
    /// Messages dropped because the hand-off queue was full or Zenoh refused them
    /// (exports).
    pub dropped: u64,
    /// Messages the other side sent that never arrived: the gaps in the sequence numbers
    /// (imports).
    pub lost: u64,
}

/// [`Counters::next_seq`] before the first frame.
const NO_FRAME_YET: u64 = u64::MAX;

/// The live counters behind one [`BridgeStats`].
pub(super) struct Counters {
    topic: &'static str,
    direction: Direction,
    messages: AtomicU64,
    bytes: AtomicU64,
    rejected_schema: AtomicU64,
    rejected_decode: AtomicU64,
    dropped: AtomicU64,
    lost: AtomicU64,
    /// The sequence number the next frame should carry (imports); [`NO_FRAME_YET`]
    /// before the first.
    next_seq: AtomicU64,
    messages_metric: Counter,
    schema_metric: Counter,
    decode_metric: Counter,
    dropped_metric: Counter,
    lost_metric: Counter,
}

impl Counters {
    /// Counters for `topic` in `direction`, registered with the metrics recorder in
    /// force now.
    pub(super) fn new(topic: &'static str, direction: Direction) -> Self {
        Self {
            topic,
            direction,
            messages: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            rejected_schema: AtomicU64::new(0),
            rejected_decode: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            next_seq: AtomicU64::new(NO_FRAME_YET),
            messages_metric: metrics::counter!(
                BRIDGE_MESSAGES, "topic" => topic, "direction" => direction.as_str()
            ),
            schema_metric: metrics::counter!(BRIDGE_REJECTED, "topic" => topic, "reason" => "schema"),
            decode_metric: metrics::counter!(BRIDGE_REJECTED, "topic" => topic, "reason" => "decode"),
            dropped_metric: metrics::counter!(BRIDGE_DROPPED, "topic" => topic),
            lost_metric: metrics::counter!(BRIDGE_LOST, "topic" => topic),
        }
    }

    /// One message of `bytes` crossed.
    pub(super) fn passed(&self, bytes: usize) {
        self.messages.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.messages_metric.increment(1);
    }

    /// One frame was refused; the first refusal of each counter is logged.
    pub(super) fn rejected(&self, why: &FrameError) {
        let (count, metric) = match why {
            FrameError::Schema { .. } => (&self.rejected_schema, &self.schema_metric),
            FrameError::Decode(_) => (&self.rejected_decode, &self.decode_metric),
        };
        if count.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(topic = self.topic, "bridge: frame refused: {why}");
        }
        metric.increment(1);
    }

    /// A frame numbered `seq` arrived: the numbers it skipped were lost on the way. The
    /// first frame sets where counting starts (what the other side sent before this
    /// import subscribed was sent to nobody), and a number below the one expected is a
    /// new export (the other process restarted), which counts from 0 again.
    pub(super) fn sequenced(&self, seq: u64) {
        let expected = self.next_seq.swap(seq.saturating_add(1), Ordering::Relaxed);
        if expected != NO_FRAME_YET && seq > expected {
            let gap = seq - expected;
            if self.lost.fetch_add(gap, Ordering::Relaxed) == 0 {
                tracing::warn!(topic = self.topic, gap, "bridge: messages lost on the way");
            }
            self.lost_metric.increment(gap);
        }
    }

    /// One message was dropped before it crossed.
    pub(super) fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.dropped_metric.increment(1);
    }

    /// The counters now.
    pub(super) fn stats(&self) -> BridgeStats {
        BridgeStats {
            topic: self.topic,
            direction: self.direction,
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            rejected_schema: self.rejected_schema.load(Ordering::Relaxed),
            rejected_decode: self.rejected_decode.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
        }
    }
}
