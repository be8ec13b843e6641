//! Leaf types: what every layer may use and which uses nothing else of ours — the
//! clock, the host's levels, the metric names, the precise ticker and the control
//! loop's jitter. Settings are checked with [`nevil_actors::Problems`] (key-path
//! errors), the one definition the quota section uses too.

pub mod clock;
pub mod jitter;
pub mod levels;
pub mod metrics;
pub mod ticker;
