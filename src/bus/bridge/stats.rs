//! The counters of one export or import: kept in atomics for [`super::Bridge::stats`]
//! and mirrored into the `nevil_bridge_*` metrics.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::Counter;
use serde::Serialize;

use crate::bus::wire::FrameError;
use crate::core::metrics::{BRIDGE_DROPPED, BRIDGE_MESSAGES, BRIDGE_REJECTED};

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
}

/// The live counters behind one [`BridgeStats`].
pub(super) struct Counters {
    topic: &'static str,
    direction: Direction,
    messages: AtomicU64,
    bytes: AtomicU64,
    rejected_schema: AtomicU64,
    rejected_decode: AtomicU64,
    dropped: AtomicU64,
    messages_metric: Counter,
    schema_metric: Counter,
    decode_metric: Counter,
    dropped_metric: Counter,
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
            messages_metric: metrics::counter!(
                BRIDGE_MESSAGES, "topic" => topic, "direction" => direction.as_str()
            ),
            schema_metric: metrics::counter!(BRIDGE_REJECTED, "topic" => topic, "reason" => "schema"),
            decode_metric: metrics::counter!(BRIDGE_REJECTED, "topic" => topic, "reason" => "decode"),
            dropped_metric: metrics::counter!(BRIDGE_DROPPED, "topic" => topic),
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
        }
    }
}
