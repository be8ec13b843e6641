//! The group's side (`nevil group`): one group of the robot's tree run in this process,
//! under its own supervisor at the path it has in the whole tree, its topics bridged to
//! the robot's process over Zenoh, its tree reported on stdout, fault drills taken on
//! stdin. End of stdin (the robot stopping it, or gone) stops the group; so do SIGTERM
//! and SIGINT. The root of this tree giving up ends the process with status 1, which
//! the robot's supervisor sees as the group's exit.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nevil_actors::{ExitReason, Fault, Tree, TreeContext, TreeView};
use tokio::io::{AsyncWriteExt, BufReader};

use super::protocol::{self, ToChild, ToParent};
use super::{away_members, group_path, recv, signal, Crossing, End, BRIDGE_PREFIX};
use crate::app::layout::BEHAVIOURS;
use crate::bus::bridge::{Bridge, BridgeError};
use crate::bus::Bus;
use crate::config::reload::LiveConfigSender;
use crate::config::Config;

/// How often the group reports its tree to the robot.
const REPORT_EVERY: Duration = Duration::from_millis(200);

/// How long the group waits for the robot's end of the bridge.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a group's process failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// No group of that name may run in a process.
    #[error("unknown group {0:?}: only \"behaviours\" runs in a process of its own")]
    UnknownGroup(String),
    /// The bridge to the robot's process failed.
    #[error("bridge: {0}")]
    Bridge(#[from] BridgeError),
    /// The group's tree did not start.
    #[error("the group did not start: {0}")]
    Start(#[from] nevil_actors::StartError),
    /// Its supervisor gave up (intensity exceeded).
    #[error("the group's supervisor gave up: {0}")]
    Escalated(ExitReason),
    /// Its stdout (the robot's end) is gone.
    #[error("cannot report to the robot: {0}")]
    Report(std::io::Error),
}

/// Runs the group `name` of `config` until told to stop, bridged at `socket`.
///
/// # Errors
///
/// [`GroupError`]: an unknown group, a bridge that cannot reach the robot, a tree that
/// does not start or whose supervisor gives up, a robot that stopped listening.
pub async fn run_group(config: Config, name: &str, socket: &Path) -> Result<(), GroupError> {
    if name != BEHAVIOURS {
        return Err(GroupError::UnknownGroup(name.to_string()));
    }
    let bridge = Bridge::connect(socket, BRIDGE_PREFIX).await?;
    let bus = Bus::new(config.bus.queue);
    let _crossing = Crossing::behaviours(&bridge, &bus, End::Group).await?;
    bridge.wait_peer(PEER_TIMEOUT).await?;
    let live = LiveConfigSender::new(Arc::new(config.clone()));
    let Some((flags, children)) = away_members(&config, name, &bus, &live.subscribe()) else {
        return Err(GroupError::UnknownGroup(name.to_string()));
    };
    let path = group_path(name);
    let tree = Tree::start_at(path, flags, children, TreeContext::default()).await?;
    let result = serve(&tree).await;
    tree.shutdown().await;
    bridge.log_stats();
    result
}

/// Reports the tree and takes drills until stdin ends or a signal says stop.
async fn serve(tree: &Tree) -> Result<(), GroupError> {
    let view = tree.view();
    let mut out = tokio::io::stdout();
    let ready = ToParent::Ready {
        pid: std::process::id(),
    };
    write(&mut out, &protocol::encode(&ready)).await?;
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut buf = Vec::new();
    let mut ticks = tokio::time::interval(REPORT_EVERY);
    let mut term = signal(tokio::signal::unix::SignalKind::terminate());
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt());
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let line = protocol::encode(&ToParent::Tree(Box::new(view.snapshot().root)));
                write(&mut out, &line).await?;
            }
            msg = protocol::read::<ToChild, _>(&mut stdin, &mut buf) => match msg {
                Ok(Some(ToChild::Inject { path, fault })) => inject(&view, &path, &fault).await,
                Ok(None) => return Ok(()),
                Err(e) => {
                    tracing::error!(error = %e, "bad instruction from the robot: stopping");
                    return Ok(());
                }
            },
            reason = tree.wait() => return Err(GroupError::Escalated(reason)),
            _ = recv(&mut term) => return Ok(()),
            _ = recv(&mut int) => return Ok(()),
        }
    }
}

async fn write(out: &mut tokio::io::Stdout, line: &str) -> Result<(), GroupError> {
    out.write_all(line.as_bytes())
        .await
        .map_err(GroupError::Report)?;
    out.flush().await.map_err(GroupError::Report)
}

/// Carries out a drill the robot forwarded.
async fn inject(view: &TreeView, path: &str, fault: &str) {
    let fault: Fault = match fault.parse() {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(path, error = %e, "drill refused");
            return;
        }
    };
    match view.inject(path, fault).await {
        Ok(path) => tracing::warn!(%path, fault = %fault, "fault drill injected"),
        Err(e) => tracing::error!(path, error = %e, "drill failed"),
    }
}
