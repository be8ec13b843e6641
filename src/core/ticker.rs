//! Periodic ticks for actors, carrying the instant each tick was due.
//!
//! Two timers, because tokio's timer wheel has a resolution of 1 ms: a tokio deadline
//! fires at the first millisecond boundary after it, so a 50 Hz loop on it runs up to
//! 1 ms late on every tick.
//! - [`Timer::Precise`]: a dedicated OS thread sleeping to each deadline with
//!   `clock_nanosleep` (tens of µs late on an idle Linux machine). For the control loop.
//! - [`Timer::Tokio`]: a tokio interval. Follows tokio's clock, so tests that pause and
//!   advance time drive it; the right choice for anything not latency-critical.
//!
//! Both are drift-free (deadlines are `start + n·period`; a late tick does not push the
//! next one) and stop once the actor is gone.

use std::time::Duration;

use nevil_actors::Mailbox;
use ractor::{ActorRef, Message};
use tokio::time::Instant;

/// Which clock drives a ticker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timer {
    /// An OS thread with precise sleeps (the default for real runs).
    #[default]
    Precise,
    /// A tokio interval (follows tokio's, possibly paused, clock).
    Tokio,
}

/// Sends `tick(due)` to `actor` every `period`, the first one `period` from now, through
/// its counting mailbox (call it from the actor's `pre_start`).
///
/// # Errors
///
/// The OS error if the [`Timer::Precise`] thread cannot be started.
pub fn spawn<M, F>(
    timer: Timer,
    name: &str,
    period: Duration,
    actor: ActorRef<M>,
    tick: F,
) -> std::io::Result<()>
where
    M: Message,
    F: Fn(Instant) -> M + Send + 'static,
{
    let actor = Mailbox::own(&actor);
    match timer {
        Timer::Tokio => {
            tokio::spawn(async move {
                let start = Instant::now() + period;
                let mut interval = tokio::time::interval_at(start, period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    let due = interval.tick().await;
                    if actor.cast(tick(due)).is_err() {
                        break;
                    }
                }
            });
        }
        Timer::Precise => {
            let spawned = std::thread::Builder::new()
                .name(format!("tick-{name}"))
                .spawn(move || {
                    let start = std::time::Instant::now();
                    for n in 1u32.. {
                        let due = start + period * n;
                        let now = std::time::Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        } else if now - due > period {
                            // Hopelessly behind (the machine was suspended): skip ahead.
                            continue;
                        }
                        if actor.cast(tick(Instant::from_std(due))).is_err() {
                            break;
                        }
                    }
                })?;
            drop(spawned);
        }
    }
    Ok(())
}
