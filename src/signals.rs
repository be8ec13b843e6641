//! The run loop's signals: SIGUSR1 dumps the tree (and the robot keeps running);
//! SIGTERM and SIGINT end the run gracefully, as does the end of `--duration`.

use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::app::Robot;

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

/// The run's signal handlers. Install them before the robot starts: a SIGUSR1 or
/// SIGTERM that arrives during start-up then waits for the run loop instead of taking
/// the default action (ending the process with the motors in whatever state).
pub struct Signals {
    usr1: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers for SIGUSR1, SIGTERM and SIGINT.
    ///
    /// # Errors
    ///
    /// The OS error if a handler cannot be installed.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            usr1: signal(SignalKind::user_defined1())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Runs until the robot should stop, dumping the tree on every SIGUSR1.
    pub async fn run_until_stopped(&mut self, robot: &Robot, duration: Option<Duration>) -> End {
        let Self { usr1, term, int } = self;
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
        loop {
            tokio::select! {
                _ = usr1.recv() => {
                    if let Err(e) = robot.dump_tree().await {
                        tracing::error!(error = %e, "tree dump on SIGUSR1 failed");
                    }
                }
                _ = term.recv() => return End::Signal("SIGTERM"),
                _ = int.recv() => return End::Signal("SIGINT"),
                _ = &mut timer => return End::Duration,
                exit = &mut escalation => return End::Escalated(exit.to_string()),
            }
        }
    }
}
