//! The run's clock, on tokio's clock so that tests can pause and advance it, and the
//! timestamp it gives every bus message.

/// Microseconds since the run started: the timestamp of every bus message.
pub type Micros = u64;

/// The run's clock: time since start on tokio's clock (so tests can pause it).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: tokio::time::Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn start() -> Self {
        Self {
            start: tokio::time::Instant::now(),
        }
    }

    /// Time since start.
    pub fn elapsed(&self) -> std::time::Duration {
        self.start.elapsed()
    }

    /// Time from the start to `at` (zero for an instant before the start).
    pub fn since_start(&self, at: tokio::time::Instant) -> std::time::Duration {
        at.saturating_duration_since(self.start)
    }

    /// Microseconds since start, the bus timestamp.
    pub fn now_us(&self) -> Micros {
        self.elapsed().as_micros() as Micros
    }
}
