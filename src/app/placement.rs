//! Process placement: a supervisor group run in a child `nevil` process of its own,
//! governed through the kernel (`[placement] behaviours = "process"`).
//!
//! In the robot's tree the group is one worker ([`parent`]): it starts the process in a
//! cgroup ([`nevil_actors::process::Jail`]), stands for it as an
//! [`External`](nevil_actors::External) (so its supervisor samples the cgroup's CPU and
//! memory and its quota ladder throttles, freezes and kills through the kernel), shows
//! the process's actors in place in the tree, and exits as the process exits. The
//! process ([`child`], `nevil group`) runs the group under its own supervisor; its bus
//! topics cross on the Zenoh bridge ([`crate::bus::bridge`]), its tree reports and the
//! fault drills aimed at it on its stdin and stdout ([`protocol`]).
//!
//! Stopping the motors never depends on the group's process: the motors, their
//! dead-man, the e-stop latch and the watchdog stay in the robot's process, and the
//! config refuses to place a group that holds any of them.

mod child;
mod node;
mod node_group;
mod parent;
mod protocol;
pub(crate) mod remote;

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use nevil_actors::{ActorPath, ChildSpec, SupervisorFlags};

use crate::bus::bridge::{Bridge, BridgeError, Export, Import};
use crate::bus::wire::Wire;
use crate::bus::{Bus, Topic};

pub use child::{run_group, GroupError};
pub use node::{run_node, NodeError};
pub(crate) use node_group::{LocalGroup, NodeGroup, NodeGroupMsg};
pub(crate) use parent::{Launch, ProcessGroup, ProcessGroupMsg, GRACE};

use super::layout::{behaviour_workers, behaviours_group, Build, BEHAVIOURS};
use crate::config::reload::LiveConfig;
use crate::config::Config;

/// The key prefix of the bridged topics (`nevil/<robot>/<topic>`). The bridge's peers
/// are only the robot's process and its groups' processes (no scouting), so one name
/// serves every robot.
pub(crate) const BRIDGE_PREFIX: &str = "nevil/robot";

/// The path of a group that may run in a process, in the whole tree.
pub(crate) fn group_path(name: &str) -> ActorPath {
    let root = ActorPath::root("root");
    match name {
        BEHAVIOURS => root.child("control").child(BEHAVIOURS),
        other => root.child(other),
    }
}

/// The supervisor's flags and the members of group `name` of `config` run away from
/// the robot's tree (in a process of its own, or on a node), its topics on `bus`;
/// `None` for a group that cannot run away.
pub(crate) fn away_members(
    config: &Config,
    name: &str,
    bus: &Bus,
    live: &LiveConfig,
) -> Option<(SupervisorFlags, Vec<ChildSpec>)> {
    if name != BEHAVIOURS {
        return None;
    }
    let group = behaviours_group(behaviour_workers(config, bus, live));
    let build = Build {
        config,
        bulkhead: None,
        process: None,
        nodes: None,
    };
    Some(build.members(&group_path(name), group))
}

/// The directory of the robot's end of the bridge: one of this process's in the temp
/// dir, made readable by this user only — whoever can connect to the socket can publish
/// on the bus (steer the car), so no other user may reach it, not even for the moment
/// between the socket's creation and a `chmod`.
fn bridge_dir() -> PathBuf {
    std::env::temp_dir().join(format!("nevil-{}", std::process::id()))
}

/// Which end of the bridge this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The robot's process.
    Robot,
    /// A group's process.
    Group,
}

/// The behaviours' topics, carried across `bridge` for `end`: what they read (`range`,
/// `line`) flows to their process, what they command (`command`) back. One list for
/// both ends, so the two cannot disagree; nothing else crosses.
pub(crate) struct Crossing {
    _exports: Vec<Export>,
    _imports: Vec<Import>,
}

impl Crossing {
    pub(crate) async fn behaviours(
        bridge: &Bridge,
        bus: &Bus,
        end: End,
    ) -> Result<Self, BridgeError> {
        let mut c = Self {
            _exports: Vec::new(),
            _imports: Vec::new(),
        };
        c.carry(bridge, &bus.range, end, End::Group).await?;
        c.carry(bridge, &bus.line, end, End::Group).await?;
        c.carry(bridge, &bus.command, end, End::Robot).await?;
        Ok(c)
    }

    /// Carries `topic` toward `to`: exported at the other end, imported at that one.
    async fn carry<T: Wire>(
        &mut self,
        bridge: &Bridge,
        topic: &Topic<T>,
        end: End,
        to: End,
    ) -> Result<(), BridgeError> {
        if end == to {
            self._imports.push(bridge.import(topic).await?);
        } else {
            self._exports.push(bridge.export(topic).await?);
        }
        Ok(())
    }
}

/// The robot's end of the bridge to its groups' processes: listening for the run's
/// life, sending what the behaviours read, taking what they command.
pub(crate) struct RobotEnd {
    socket: PathBuf,
    _crossing: Crossing,
    bridge: Bridge,
}

impl RobotEnd {
    /// Listens in [`bridge_dir`] and bridges the behaviours' topics of `bus`.
    pub(crate) async fn open(bus: &Bus) -> Result<Self, BridgeError> {
        let dir = bridge_dir();
        // A leftover of an earlier process with this pid is not ours to trust.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| BridgeError::Listen {
                socket: dir.clone(),
                cause: format!("cannot make its private directory: {e}"),
            })?;
        let socket = dir.join("bridge");
        let bridge = Bridge::listen(&socket, BRIDGE_PREFIX).await?;
        let crossing = Crossing::behaviours(&bridge, bus, End::Robot).await?;
        Ok(Self {
            socket,
            _crossing: crossing,
            bridge,
        })
    }

    /// The socket a group's process connects to.
    pub(crate) fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// The bridge's counters.
    pub(crate) fn bridge(&self) -> &Bridge {
        &self.bridge
    }
}

impl Drop for RobotEnd {
    fn drop(&mut self) {
        // The socket and the lock file Zenoh keeps beside it.
        if let Some(dir) = self.socket.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The stream of `kind` signals, if it can be watched (a warning says why not).
fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind)
        .inspect_err(|e| tracing::warn!(error = %e, "cannot watch a signal"))
        .ok()
}

/// The next signal of `signal`; never, if it cannot be watched.
async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
