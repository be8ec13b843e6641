//! Leaf types: what every layer may use and which uses nothing else of ours — the
//! clock, [`Problems`](problems::Problems) (key-path errors in settings), the host's
//! levels, the metric names, the precise ticker and the control loop's jitter.

pub mod clock;
pub mod jitter;
pub mod levels;
pub mod metrics;
pub mod problems;
pub mod ticker;
