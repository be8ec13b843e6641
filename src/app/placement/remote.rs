//! What a robot and its node say to each other about a node-placed group, on the
//! network session: the keys, and the JSON on them. The bus traffic crosses beside it on
//! the bridge (`nevil/<robot>/bus/<topic>`).
//!
//! | key (under `nevil/<robot>/`) | who | what |
//! |---|---|---|
//! | `node/<node>` | node | liveliness: the node is up |
//! | `node/<node>/start/<group>` | robot asks | start (or restart) the group: [`Start`] → [`Started`] |
//! | `node/<node>/stop/<group>` | robot asks | stop it: [`Stop`] |
//! | `node/<node>/inject/<group>` | robot asks | a fault drill: [`Inject`] |
//! | `node/<node>/tree/<group>` | node puts | the group's tree, each [`REPORT_EVERY`]: [`Report`] |
//! | `node/<node>/exit/<group>` | node puts | its supervisor gave up: [`Exit`] |
//! | `placed/<group>` | robot | liveliness: the robot wants the group run; when it goes (the robot died, or the link), the node stops the group |

use std::time::Duration;

use nevil_actors::NodeSnapshot;
use serde::{Deserialize, Serialize};

use crate::bus::net::robot_prefix;

/// How often a node reports a group's tree.
pub(crate) const REPORT_EVERY: Duration = Duration::from_millis(200);

/// How long the robot waits for a node to answer a request.
pub(crate) const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The keys of one robot's groups on one node.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    robot: String,
    node: String,
}

impl Keys {
    /// The keys of robot `robot_id`'s groups on node `node`.
    pub(crate) fn new(robot_id: &str, node: &str) -> Self {
        let robot = robot_prefix(robot_id);
        Self {
            node: format!("{robot}/node/{node}"),
            robot,
        }
    }

    /// The node's liveliness token.
    pub(crate) fn alive(&self) -> &str {
        &self.node
    }

    /// A request to the node or a report of it, about `group`.
    pub(crate) fn about(&self, what: &str, group: &str) -> String {
        format!("{}/{what}/{group}", self.node)
    }

    /// Every request to the node (`start`, `stop`, `inject`), for its queryable.
    pub(crate) fn requests(&self) -> String {
        format!("{}/*/*", self.node)
    }

    /// The robot's liveliness token for a group it wants run.
    pub(crate) fn placed(&self, group: &str) -> String {
        format!("{}/placed/{group}", self.robot)
    }

    /// The key prefix of the bridged bus topics.
    pub(crate) fn bus(&self) -> String {
        format!("{}/bus", self.robot)
    }

    /// The request and group a request's key names, if it is one of [`Self::requests`].
    pub(crate) fn parse_request<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        let rest = key.strip_prefix(&self.node)?.strip_prefix('/')?;
        let (what, group) = rest.split_once('/')?;
        (!group.contains('/')).then_some((what, group))
    }
}

/// Start the group (stopping an older incarnation first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Start {
    /// The robot's worker incarnation asking: reports name it.
    pub(crate) incarnation: u64,
}

/// The group runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Started {
    /// The node's process id.
    pub(crate) pid: u32,
}

/// Stop the group, if this incarnation still runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stop {
    /// The incarnation to stop.
    pub(crate) incarnation: u64,
}

/// A fault drill for a worker of the group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Inject {
    /// The worker's path in the whole tree.
    pub(crate) path: String,
    /// The fault's name.
    pub(crate) fault: String,
}

/// The group's tree now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Report {
    /// The incarnation it belongs to.
    pub(crate) incarnation: u64,
    /// The tree, its root at the group's path in the whole tree.
    pub(crate) tree: NodeSnapshot,
}

/// The group's supervisor gave up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Exit {
    /// The incarnation it belongs to.
    pub(crate) incarnation: u64,
    /// Why, as the supervisor said.
    pub(crate) reason: String,
}

/// JSON bytes of `msg` (these types always serialize).
pub(crate) fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    serde_json::to_vec(msg).unwrap_or_default()
}

/// `msg` from JSON bytes, or why not.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not a placement message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_robot_node_and_group() {
        let k = Keys::new("picar", "laptop");
        assert_eq!(k.alive(), "nevil/picar/node/laptop");
        let start = k.about("start", "behaviours");
        assert_eq!(start, "nevil/picar/node/laptop/start/behaviours");
        assert_eq!(k.parse_request(&start), Some(("start", "behaviours")));
        assert_eq!(k.parse_request("nevil/picar/node/laptop2/start/b"), None);
        assert_eq!(k.parse_request("nevil/picar/node/laptop/start/b/c"), None);
        assert_eq!(k.placed("behaviours"), "nevil/picar/placed/behaviours");
        assert_eq!(k.bus(), "nevil/picar/bus");
        let stop: Stop = decode(&encode(&Stop { incarnation: 3 })).unwrap();
        assert_eq!(stop.incarnation, 3);
        assert!(decode::<Start>(b"{}").is_err());
    }
}
