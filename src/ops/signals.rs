//! The run loop's signals: SIGUSR1 dumps the tree and SIGHUP reloads the config (and
//! the robot keeps running); SIGTERM and SIGINT end the run gracefully, as does the end
//! of `--duration`.
//!
//! Install the handlers ([`Signals::install`]) before the robot starts: until then a
//! signal has its default action, and SIGUSR1's and SIGHUP's is to terminate the process. A
//! `systemctl reload` or a test sending SIGUSR1 right after "robot started" (or after
//! systemd's READY=1) must find them in place.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::{FusedFuture, FutureExt};
use nevil_actors::ExitReason;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// What the run loop needs of the running robot: its end, and a tree dump. The app's
/// `Robot` implements it, so this layer names no type above it.
pub trait Running {
    /// Resolves when the root supervisor ends on its own (it gave up), with why.
    fn wait(&self) -> impl Future<Output = ExitReason>;

    /// Dumps the tree, given up after `limit`; the file written.
    ///
    /// # Errors
    ///
    /// Why the dump failed or that it took longer than `limit`.
    fn dump_tree_within(&self, limit: Duration) -> impl Future<Output = Result<PathBuf, String>>;

    /// Asks for a reload of the config (SIGHUP), without waiting for it: it is
    /// validated, applied or refused, and watched on probation beside the run loop.
    fn reload(&self);
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `--duration` elapsed.
    Duration,
    /// SIGTERM or SIGINT, named.
    Signal(&'static str),
    /// The root supervisor gave up (its reason).
    Escalated(String),
}

/// The run's signal handlers, installed; signals that arrive before
/// [`Signals::run_until_stopped`] wait for it.
pub struct Signals {
    usr1: Signal,
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers for SIGUSR1, SIGHUP, SIGTERM and SIGINT.
    ///
    /// # Errors
    ///
    /// The OS error if a handler cannot be installed.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            usr1: signal(SignalKind::user_defined1())?,
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Runs until the robot should stop, dumping the tree on every SIGUSR1 and asking
    /// for a reload on every SIGHUP.
    ///
    /// A dump runs beside the loop, bounded by [`DUMP_TIMEOUT`]: a hung tree service
    /// delays neither SIGTERM nor the end of the run. SIGUSR1s that arrive while a
    /// dump is running make one more dump after it (so none is lost, even one sent the
    /// moment the last dump's file appeared, and a burst costs two dumps at most).
    pub async fn run_until_stopped<R: Running>(
        mut self,
        robot: &R,
        duration: Option<Duration>,
    ) -> End {
        let deadline = duration.map(|d| tokio::time::Instant::now() + d);
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(timer);
        let escalation = robot.wait();
        tokio::pin!(escalation);
        let mut dump = std::pin::pin!(futures::future::Fuse::terminated());
        let mut requests = DumpRequests::default();
        loop {
            tokio::select! {
                _ = self.usr1.recv() => {
                    if requests.signal(!dump.is_terminated()) {
                        dump.set(robot.dump_tree_within(DUMP_TIMEOUT).fuse());
                    } else {
                        tracing::info!("SIGUSR1 while a tree dump is running: another follows it");
                    }
                }
                result = &mut dump, if !dump.is_terminated() => {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "tree dump on SIGUSR1 failed");
                    }
                    if requests.done() {
                        dump.set(robot.dump_tree_within(DUMP_TIMEOUT).fuse());
                    }
                }
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    robot.reload();
                }
                _ = self.term.recv() => return End::Signal("SIGTERM"),
                _ = self.int.recv() => return End::Signal("SIGINT"),
                _ = &mut timer => return End::Duration,
                exit = &mut escalation => return End::Escalated(exit.to_string()),
            }
        }
    }
}

/// Which SIGUSR1s start a dump: one dump runs at a time (the loop's dump future says
/// whether one does), and any signals during it ask for exactly one more after it.
#[derive(Debug, Default)]
struct DumpRequests {
    again: bool,
}

impl DumpRequests {
    /// A SIGUSR1 arrived while a dump is `running` or not: `true` to start one now.
    fn signal(&mut self, running: bool) -> bool {
        self.again |= running;
        !running
    }

    /// The running dump ended: `true` to start the one asked for meanwhile.
    fn done(&mut self) -> bool {
        std::mem::take(&mut self.again)
    }
}

/// How long a tree dump may take before it is given up.
pub const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::DumpRequests;

    #[test]
    fn signals_during_a_dump_ask_for_one_more() {
        let mut r = DumpRequests::default();
        assert!(r.signal(false), "idle: dump now");
        assert!(
            !r.signal(true) && !r.signal(true),
            "a burst while it runs waits"
        );
        assert!(r.done(), "one more after it");
        assert!(!r.done(), "and no more than one");
        assert!(r.signal(false), "idle again: dump now");
        assert!(!r.done());
    }
}
