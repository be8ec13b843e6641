//! Stopping one child: graceful stop within its timeout, then kill.
//!
//! A graceful stop lets the child finish the message it is handling and run `post_stop`.
//! As OTP's `shutdown/2` does, the supervisor waits for the child to be gone rather than
//! trusting that the request arrived: ractor's stop waiter fires only after `post_stop`.

use std::time::Duration;

use ractor::ActorCell;

use super::spec::Shutdown;
use crate::exit::ExitReason;
use crate::path::ActorPath;

/// How long to wait for a killed child to be gone. A handler that never yields cannot be
/// killed in-process (ractor's kill is cooperative); after this the supervisor stops
/// waiting, logs it and goes on, rather than hanging its whole subtree.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Stops `cell` by `policy`; returns how it ended (`Normal` or `Killed`).
pub(crate) async fn stop(cell: &ActorCell, policy: Shutdown, path: &ActorPath) -> ExitReason {
    let grace = match policy {
        Shutdown::BrutalKill => Some(Duration::ZERO),
        Shutdown::Timeout(d) => Some(d),
        Shutdown::Infinity => None,
    };
    if grace != Some(Duration::ZERO) {
        // Fails only if the child is already gone, which `wait` below then sees.
        cell.stop(None);
        if cell.wait(grace).await.is_ok() {
            return ExitReason::Normal;
        }
        tracing::warn!(%path, ?grace, "child did not stop within its shutdown timeout; killing it");
    }
    cell.kill();
    if cell.wait(Some(KILL_WAIT)).await.is_err() {
        tracing::error!(%path, "killed child is still running (a handler that never yields); abandoning it");
    }
    ExitReason::Killed
}
