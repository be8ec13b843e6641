//! The node's side (`nevil node --name NAME`): runs the groups that a robot's config
//! places on `node:NAME`, when and as long as the robot asks, on the network session of
//! `[zenoh]`.
//!
//! The node announces itself with a liveliness token. A robot asks it to start a group
//! (naming its worker's incarnation), to stop it, or to carry out a fault drill in it;
//! the node reports the group's tree every [`REPORT_EVERY`] and says when the group's
//! supervisor gave up. The group's bus topics cross on the bridge under
//! `nevil/<robot>/bus`. When the robot's token for the group goes (the robot stopped or
//! died, or the link has been down for the lease), the node stops the group: a robot
//! that cannot hear the node's commands must not be sent them once it can again.

use std::collections::HashMap;
use std::sync::Arc;

use nevil_actors::{ExitReason, Fault, Tree, TreeContext};
use tokio::sync::mpsc;
use zenoh::query::Query;
use zenoh::sample::SampleKind;

use super::remote::{self, Exit, Inject, Keys, Report, Start, Started, Stop, REPORT_EVERY};
use super::{away_members, group_path, recv, signal, Crossing, End};
use crate::bus::bridge::Bridge;
use crate::bus::net;
use crate::bus::Bus;
use crate::config::reload::LiveConfigSender;
use crate::config::Config;

/// Why a node could not run.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The node's name is no key chunk.
    #[error("node name {0}")]
    Name(String),
    /// The config gives no way onto the network.
    #[error("the config has no [zenoh] listen or connect endpoint: a node must reach its robot")]
    NoNetwork,
    /// The config places no group on this node.
    #[error("the config places no group on node:{0} (set [placement] behaviours = \"node:{0}\")")]
    NothingPlaced(String),
    /// The network session failed.
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// Zenoh refused a declaration.
    #[error("zenoh: {0}")]
    Zenoh(String),
}

/// A group the node runs now.
struct Running {
    incarnation: u64,
    tree: Arc<Tree>,
    _crossing: Crossing,
    bridge: Bridge,
    _live: LiveConfigSender,
}

/// What reaches the node's loop from Zenoh's callbacks and the groups' watchers.
enum Event {
    /// The robot's token for `group`'s incarnation went.
    Unplaced { group: String, incarnation: u64 },
    /// A group's supervisor gave up.
    GaveUp {
        group: String,
        incarnation: u64,
        reason: ExitReason,
    },
}

/// Runs node `name` for the robot of `config` until SIGTERM or SIGINT.
///
/// # Errors
///
/// [`NodeError`]: a bad name, no network in the config, no group placed here, a
/// session that does not open.
pub async fn run_node(config: Config, name: &str) -> Result<(), NodeError> {
    crate::config::network::check_name(name).map_err(NodeError::Name)?;
    if !config.zenoh.enabled() {
        return Err(NodeError::NoNetwork);
    }
    let groups: Vec<String> = config
        .placement
        .node_groups()
        .filter(|(_, node)| node.name == name)
        .map(|(group, _)| group.to_string())
        .collect();
    if groups.is_empty() {
        return Err(NodeError::NothingPlaced(name.to_string()));
    }
    let session = net::open(&config.zenoh).await?;
    let keys = Keys::new(&config.robot.id, name);
    let z = |e: zenoh::Error| NodeError::Zenoh(e.to_string());
    let _alive = session
        .liveliness()
        .declare_token(keys.alive())
        .await
        .map_err(z)?;
    let requests = session
        .declare_queryable(keys.requests())
        .await
        .map_err(z)?;
    let (events, mut inbox) = mpsc::unbounded_channel();
    let unplaced = events.clone();
    let _placed_watch = session
        .liveliness()
        .declare_subscriber(format!("{}/*", keys.placed("*")))
        .callback(move |sample| {
            if sample.kind() != SampleKind::Delete {
                return;
            }
            let key = sample.key_expr().as_str();
            let mut chunks = key.rsplit('/');
            let (Some(incarnation), Some(group)) = (chunks.next(), chunks.next()) else {
                return;
            };
            if let Ok(incarnation) = incarnation.parse() {
                let group = group.to_string();
                let _ = unplaced.send(Event::Unplaced { group, incarnation });
            }
        })
        .await
        .map_err(z)?;
    tracing::info!(node = name, robot = %config.robot.id, groups = ?groups, "node running");
    let mut node = Node {
        config,
        keys,
        session,
        groups,
        running: HashMap::new(),
        events,
    };
    let mut ticks = tokio::time::interval(REPORT_EVERY);
    let mut term = signal(tokio::signal::unix::SignalKind::terminate());
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt());
    loop {
        tokio::select! {
            query = requests.recv_async() => match query {
                Ok(query) => node.answer(query).await,
                Err(_) => break,
            },
            Some(event) = inbox.recv() => node.on(event).await,
            _ = ticks.tick() => node.report().await,
            _ = recv(&mut term) => break,
            _ = recv(&mut int) => break,
        }
    }
    tracing::info!(node = name, "node stopping");
    for group in node.running.keys().cloned().collect::<Vec<_>>() {
        node.stop(&group).await;
    }
    Ok(())
}

/// The node's state, for its loop.
struct Node {
    config: Config,
    keys: Keys,
    session: zenoh::Session,
    /// The groups the config places here.
    groups: Vec<String>,
    running: HashMap<String, Running>,
    events: mpsc::UnboundedSender<Event>,
}

impl Node {
    /// Answers one request from the robot.
    async fn answer(&mut self, query: Query) {
        let key = query.key_expr().as_str().to_string();
        let payload = query
            .payload()
            .map(|p| p.to_bytes().into_owned())
            .unwrap_or_default();
        let outcome = match self.keys.parse_request(&key) {
            Some((_, group)) if !self.groups.iter().any(|g| g == group) => {
                Err(format!("group {group:?} is not placed on this node"))
            }
            Some(("start", group)) => match remote::decode::<Start>(&payload) {
                Ok(start) => self.start(group, start.incarnation).await,
                Err(e) => Err(e),
            },
            Some(("stop", group)) => match remote::decode::<Stop>(&payload) {
                Ok(stop) => {
                    if self
                        .running
                        .get(group)
                        .is_some_and(|r| r.incarnation == stop.incarnation)
                    {
                        self.stop(group).await;
                    }
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            },
            Some(("inject", group)) => match remote::decode::<Inject>(&payload) {
                Ok(inject) => self.inject(group, inject).await,
                Err(e) => Err(e),
            },
            _ => Err(format!("unknown request {key}")),
        };
        let replied = match outcome {
            Ok(answer) => query.reply(key, answer).await,
            Err(why) => {
                tracing::warn!(request = %query.key_expr(), error = %why, "request refused");
                query.reply_err(why).await
            }
        };
        if let Err(e) = replied {
            tracing::warn!(error = %e, "cannot answer the robot");
        }
    }

    /// Starts `group` for the robot's worker `incarnation`, stopping an older one.
    async fn start(&mut self, group: &str, incarnation: u64) -> Result<Vec<u8>, String> {
        if self.running.contains_key(group) {
            self.stop(group).await;
        }
        let bridge =
            Bridge::over(self.session.clone(), &self.keys.bus()).map_err(|e| e.to_string())?;
        let bus = Bus::new(self.config.bus.queue);
        let crossing = Crossing::behaviours(&bridge, &bus, End::Group)
            .await
            .map_err(|e| e.to_string())?;
        let live = LiveConfigSender::new(Arc::new(self.config.clone()));
        let (flags, children) = away_members(&self.config, group, &bus, &live.subscribe())
            .ok_or_else(|| format!("group {group:?} cannot run on a node"))?;
        let tree = Tree::start_at(group_path(group), flags, children, TreeContext::default())
            .await
            .map_err(|e| format!("the group did not start: {e}"))?;
        let tree = Arc::new(tree);
        let (watched, events, name) = (tree.clone(), self.events.clone(), group.to_string());
        tokio::spawn(async move {
            let reason = watched.wait().await;
            let _ = events.send(Event::GaveUp {
                group: name,
                incarnation,
                reason,
            });
        });
        tracing::info!(group, incarnation, "group started for the robot");
        self.running.insert(
            group.to_string(),
            Running {
                incarnation,
                tree,
                _crossing: crossing,
                bridge,
                _live: live,
            },
        );
        Ok(remote::encode(&Started {
            pid: std::process::id(),
        }))
    }

    /// Stops `group` if it runs.
    async fn stop(&mut self, group: &str) {
        if let Some(running) = self.running.remove(group) {
            running.tree.shutdown().await;
            running.bridge.log_stats();
            tracing::info!(group, incarnation = running.incarnation, "group stopped");
        }
    }

    /// Carries out a drill in `group`.
    async fn inject(&self, group: &str, inject: Inject) -> Result<Vec<u8>, String> {
        let running = self.running.get(group).ok_or("the group is not running")?;
        let fault: Fault = inject.fault.parse().map_err(|e| format!("{e}"))?;
        let path = running
            .tree
            .view()
            .inject(&inject.path, fault)
            .await
            .map_err(|e| e.to_string())?;
        tracing::warn!(%path, %fault, "fault drill injected");
        Ok(Vec::new())
    }

    async fn on(&mut self, event: Event) {
        match event {
            Event::Unplaced { group, incarnation } => {
                if self
                    .running
                    .get(&group)
                    .is_some_and(|r| r.incarnation == incarnation)
                {
                    tracing::warn!(group, incarnation, "the robot no longer holds the group (stopped, or the link is down): stopping it");
                    self.stop(&group).await;
                }
            }
            Event::GaveUp {
                group,
                incarnation,
                reason,
            } => {
                if self
                    .running
                    .get(&group)
                    .is_some_and(|r| r.incarnation == incarnation)
                {
                    tracing::error!(group, %reason, "the group's supervisor gave up");
                    self.running.remove(&group);
                    let exit = Exit {
                        incarnation,
                        reason: reason.to_string(),
                    };
                    let key = self.keys.about("exit", &group);
                    if let Err(e) = self.session.put(key, remote::encode(&exit)).await {
                        tracing::warn!(error = %e, "cannot tell the robot the group gave up");
                    }
                }
            }
        }
    }

    /// Reports each running group's tree.
    async fn report(&self) {
        for (group, running) in &self.running {
            let report = Report {
                incarnation: running.incarnation,
                tree: running.tree.snapshot().root,
            };
            let key = self.keys.about("tree", group);
            if let Err(e) = self.session.put(key, remote::encode(&report)).await {
                tracing::warn!(error = %e, "cannot report the group's tree");
            }
        }
    }
}
