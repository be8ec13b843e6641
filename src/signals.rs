//! The run loop's signals: SIGUSR1 dumps the tree (and the robot keeps running);
//! SIGTERM and SIGINT end the run gracefully, as does the end of `--duration`.

use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

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

/// Runs until the robot should stop, dumping the tree on every SIGUSR1.
///
/// # Errors
///
/// The OS error if the signal handlers cannot be installed.
pub async fn run_until_stopped(robot: &Robot, duration: Option<Duration>) -> std::io::Result<End> {
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
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
            _ = term.recv() => return Ok(End::Signal("SIGTERM")),
            _ = int.recv() => return Ok(End::Signal("SIGINT")),
            _ = &mut timer => return Ok(End::Duration),
            exit = &mut escalation => return Ok(End::Escalated(exit.to_string())),
        }
    }
}
