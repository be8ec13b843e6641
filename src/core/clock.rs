//! The run's clock, on tokio's clock so that tests can pause and advance it, and the
//! timestamp it gives every bus message.

/// The wall clock in unix milliseconds (0 if it reads before 1970): the time stamp of
/// what people read later (audit lines, the observer's timeline).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall clock in unix milliseconds when tokio's clock read `at` (in the past):
/// for an event stamped on tokio's clock and recorded later.
pub fn unix_ms_at(at: tokio::time::Instant) -> u64 {
    let ago = tokio::time::Instant::now().saturating_duration_since(at);
    unix_ms().saturating_sub(u64::try_from(ago.as_millis()).unwrap_or(u64::MAX))
}

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

    /// The wall clock in unix milliseconds when the run started: what turns a time
    /// since start into a time people (and other processes) can compare.
    pub fn start_unix_ms(&self) -> u64 {
        unix_ms_at(self.start)
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
