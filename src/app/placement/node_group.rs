//! The robot's side of a node-placed group (`placement = "node:NAME"`): one managed
//! worker that asks the node to run the group, stands for it in the tree
//! ([`External`]: the node's reports of the group's tree are grafted in place), and
//! exits with `node lost: NAME` when the node's liveliness token goes (the node died,
//! or the link is down for the lease), so that its supervisor's strategy applies.
//!
//! While the node is unreachable the worker waits for it, asking again with backoff
//! (and at once when its token reappears); with `fallback = "local"` it runs the group
//! in the robot's process meanwhile, and moves it back when the node returns. Either
//! way no behaviour commands while the group is nowhere, and motion's dead-man holds
//! the car: the commands a node sends carry the robot's reading timestamps, so nothing
//! stale from across the link moves it either.
//!
//! A migratable group (`migrate_to = NAME`) runs in the robot's process ("home") and
//! moves to the node only when its supervisor decides so under sustained host pressure
//! ([`nevil_actors::quota::migrate`]), through [`External::migrate`]; it comes home the
//! same way, or by a restart when the node is lost while it runs there. Each move stops
//! the group where it was before starting it where it goes: never two commanders.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nevil_actors::quota::Site as Where;
use nevil_actors::{
    external, ActorPath, ChildSpec, External, Fault, NodeLost, NodeSnapshot, Placement, Subtree,
    SupervisorFlags, Tree, TreeContext,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use zenoh::liveliness::LivelinessToken;
use zenoh::pubsub::Subscriber;
use zenoh::sample::SampleKind;

use super::remote::{self, Exit, Inject, Keys, Report, Start, Started, Stop, ASK_TIMEOUT};
use super::{Crossing, End};
use crate::bus::bridge::Bridge;
use crate::bus::Bus;
use crate::config::Fallback;

/// The first wait before asking an absent node again; doubled up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between two asks.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The group's members, to run it in the robot's process (`fallback = "local"`).
#[derive(Clone)]
pub(crate) struct LocalGroup {
    pub(crate) flags: SupervisorFlags,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) context: TreeContext,
}

/// The worker that stands for a node-placed group.
#[derive(Clone)]
pub(crate) struct NodeGroup {
    /// The group's name (`behaviours`).
    pub(crate) group: &'static str,
    /// The group's path in the whole tree.
    pub(crate) path: ActorPath,
    /// The node's name.
    pub(crate) node: String,
    pub(crate) fallback: Fallback,
    pub(crate) session: zenoh::Session,
    pub(crate) keys: Keys,
    /// The robot's bus, whose topics cross to the node.
    pub(crate) bus: Bus,
    /// How to run the group here (used with `fallback = "local"`, and at home by a
    /// migratable group).
    pub(crate) local: LocalGroup,
    /// Whether the group is migratable: at home here, on the node only when its
    /// supervisor moves it there.
    pub(crate) migratable: bool,
}

/// Messages of a [`NodeGroup`].
#[derive(Debug)]
pub(crate) enum NodeGroupMsg {
    /// Ask the node to run the group (or, failing that, fall back).
    Try,
    /// The node's liveliness token appeared.
    NodeUp,
    /// The node's liveliness token went.
    NodeDown,
    /// The node's group's supervisor gave up.
    Exited(Exit),
    /// The local group's supervisor gave up.
    LocalExited(nevil_actors::ExitReason),
    /// The supervisor moves a migratable group.
    Migrate(Where),
    /// Does nothing (what a `flood` drill sends).
    Noop,
}

/// Where the group runs now.
enum Site {
    /// Nowhere: waiting for the node; the next ask's backoff.
    Waiting(Duration),
    /// On the node.
    Node(Box<OnNode>),
    /// In the robot's process (`fallback = "local"`).
    Local(Arc<Tree>),
}

/// What the robot holds while the node runs the group.
struct OnNode {
    _placed: LivelinessToken,
    _crossing: Crossing,
    bridge: Bridge,
    _reports: Subscriber<()>,
    _exits: Subscriber<()>,
}

/// The worker's state.
pub(crate) struct State {
    incarnation: u64,
    site: Site,
    /// What the tree shows (shared with the [`External`]).
    shown: Shown,
    /// Whether a delayed [`NodeGroupMsg::Try`] is on its way.
    retry_armed: bool,
    _node_watch: Subscriber<()>,
}

impl State {
    /// Stops the group running in the robot's process, if it does; the worker then
    /// waits for its next placement.
    async fn stop_local(&mut self) {
        if let Site::Local(tree) = &self.site {
            tree.shutdown().await;
            self.shown
                .local
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            self.site = Site::Waiting(BACKOFF_MIN);
        }
    }
}

impl Drop for State {
    /// A worker killed outright (no `post_stop`) still stops a local group.
    fn drop(&mut self) {
        if let Site::Local(tree) = &self.site {
            tree.root().cell().stop(None);
        }
    }
}

/// What the tree shows of the group, wherever it runs.
#[derive(Clone)]
struct Shown {
    placement: Arc<Mutex<Placement>>,
    subtree: Subtree,
    /// The local group, for its snapshot and drills.
    local: Arc<Mutex<Option<Arc<Tree>>>>,
    /// Where drills go on the node: (session, key), and the incarnation.
    node: Arc<Mutex<Option<(zenoh::Session, String)>>>,
    /// For a migratable group: where it runs now (`None` until it runs somewhere).
    site: Arc<Mutex<Option<Where>>>,
    /// Whether the node's token is there (kept by the token's subscriber).
    node_up: Arc<AtomicBool>,
    /// Whether a move the supervisor asked for is under way (set as it is asked,
    /// cleared when the worker has carried it out or failed to).
    moving: Arc<AtomicBool>,
    /// The node's name, for the supervisor's logs.
    node_name: String,
    /// The worker, which carries out moves (`None` unless migratable).
    mover: Option<ActorRef<NodeGroupMsg>>,
}

impl Shown {
    fn new(placement: Placement, node_name: String, mover: Option<ActorRef<NodeGroupMsg>>) -> Self {
        Self {
            placement: Arc::new(Mutex::new(placement)),
            subtree: Subtree::default(),
            local: Arc::default(),
            node: Arc::default(),
            site: Arc::default(),
            node_up: Arc::default(),
            moving: Arc::default(),
            node_name,
            mover,
        }
    }

    fn set_site(&self, site: Where) {
        if self.mover.is_some() {
            *self.site.lock().unwrap_or_else(PoisonError::into_inner) = Some(site);
        }
    }

    /// The group no longer runs on the node: no node to ask, no node's tree to show.
    fn forget_node(&self) {
        self.node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.subtree.clear();
    }

    fn set(&self, placement: Placement) {
        *self
            .placement
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = placement;
    }

    fn local(&self) -> Option<Arc<Tree>> {
        self.local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl External for Shown {
    fn cpu_seconds(&self) -> Option<f64> {
        None
    }

    fn memory_bytes(&self) -> Option<u64> {
        None
    }

    // The robot's kernel cannot reach a node's process: the node's own supervisors
    // govern its actors (their quotas come from the same config).
    fn suspend(&self) {}

    fn resume(&self) {}

    fn throttle(&self, _: f64) {}

    fn kill(&self) {}

    fn placement(&self) -> Placement {
        self.placement
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn subtree(&self) -> Option<NodeSnapshot> {
        match self.local() {
            Some(tree) => Some(tree.snapshot().root),
            None => self.subtree.get(),
        }
    }

    fn site(&self) -> Option<Where> {
        *self.site.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn migrate(&self, to: Where) -> Result<(), String> {
        let mover = self.mover.as_ref().ok_or("the group is not migratable")?;
        if to == Where::Away && !self.node_up.load(Ordering::Acquire) {
            return Err(format!("node {} is not connected", self.node_name));
        }
        self.moving.store(true, Ordering::Release);
        mover.send_message(NodeGroupMsg::Migrate(to)).map_err(|e| {
            self.moving.store(false, Ordering::Release);
            format!("the group's worker is stopping: {e}")
        })
    }

    fn moving(&self) -> bool {
        self.moving.load(Ordering::Acquire)
    }

    fn inject(&self, path: &ActorPath, fault: Fault) -> Result<(), String> {
        if let Some(tree) = self.local() {
            let (view, path) = (tree.view(), path.to_string());
            tokio::spawn(async move {
                if let Err(e) = view.inject(&path, fault).await {
                    tracing::error!(%path, error = %e, "drill failed");
                }
            });
            return Ok(());
        }
        let (session, key) = self
            .node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or("the group runs nowhere now (its node is unreachable)")?;
        let ask = remote::encode(&Inject {
            path: path.to_string(),
            fault: fault.name().into(),
        });
        tokio::spawn(async move {
            if let Err(e) = ask_node(&session, &key, ask, ASK_TIMEOUT).await {
                tracing::error!(%key, error = %e, "drill not taken by the node");
            }
        });
        Ok(())
    }
}

/// How long a stopping worker waits for the node to confirm the stop: the node stops
/// the group anyway when the worker's token goes, so a node out of reach must not hold
/// up the robot's shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// Asks the node at `key` with `payload`, for up to `timeout`; its answer's bytes, or
/// why there is none.
async fn ask_node(
    session: &zenoh::Session,
    key: &str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let replies = session
        .get(key)
        .payload(payload)
        .timeout(timeout)
        .await
        .map_err(|e| e.to_string())?;
    match replies.recv_async().await {
        Ok(reply) => match reply.result() {
            Ok(sample) => Ok(sample.payload().to_bytes().into_owned()),
            Err(e) => Err(String::from_utf8_lossy(&e.payload().to_bytes()).into_owned()),
        },
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

impl NodeGroup {
    fn waiting_placement(&self) -> Placement {
        Placement {
            placement: format!("node:{} (waiting)", self.node),
            pid: 0,
            isolation: None,
        }
    }

    /// Whether the node's token is there now.
    async fn node_is_up(&self) -> bool {
        match self
            .session
            .liveliness()
            .get(self.keys.alive())
            .timeout(Duration::from_secs(1))
            .await
        {
            Ok(replies) => replies.recv_async().await.is_ok_and(|r| r.result().is_ok()),
            Err(_) => false,
        }
    }

    /// Has the node run the group: the robot's token first (the node stops the group
    /// when it goes), then the ask, then the bus topics.
    async fn start_on_node(
        &self,
        incarnation: u64,
        myself: &ActorRef<NodeGroupMsg>,
        shown: &Shown,
    ) -> Result<(OnNode, u32), String> {
        let e = |e: zenoh::Error| e.to_string();
        let placed = self
            .session
            .liveliness()
            .declare_token(format!("{}/{incarnation}", self.keys.placed(self.group)))
            .await
            .map_err(e)?;
        let to_me = myself.clone();
        let subtree = shown.subtree.clone();
        let reports = self
            .session
            .declare_subscriber(self.keys.about("tree", self.group))
            .callback(move |sample| {
                if let Ok(report) = remote::decode::<Report>(&sample.payload().to_bytes()) {
                    if report.incarnation == incarnation {
                        subtree.set(report.tree);
                    }
                }
            })
            .await
            .map_err(e)?;
        let exits = self
            .session
            .declare_subscriber(self.keys.about("exit", self.group))
            .callback(move |sample| {
                if let Ok(exit) = remote::decode::<Exit>(&sample.payload().to_bytes()) {
                    if exit.incarnation == incarnation {
                        let _ = to_me.send_message(NodeGroupMsg::Exited(exit));
                    }
                }
            })
            .await
            .map_err(e)?;
        let answer = ask_node(
            &self.session,
            &self.keys.about("start", self.group),
            remote::encode(&Start { incarnation }),
            ASK_TIMEOUT,
        )
        .await?;
        let started: Started = remote::decode(&answer)?;
        let bridge =
            Bridge::over(self.session.clone(), &self.keys.bus()).map_err(|e| e.to_string())?;
        let crossing = Crossing::behaviours(&bridge, &self.bus, End::Robot)
            .await
            .map_err(|e| e.to_string())?;
        *shown.node.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((self.session.clone(), self.keys.about("inject", self.group)));
        Ok((
            OnNode {
                _placed: placed,
                _crossing: crossing,
                bridge,
                _reports: reports,
                _exits: exits,
            },
            started.pid,
        ))
    }

    /// Runs the group in the robot's process.
    async fn start_local(
        &self,
        myself: &ActorRef<NodeGroupMsg>,
        shown: &Shown,
    ) -> Result<Arc<Tree>, String> {
        let l = &self.local;
        let tree = Tree::start_at(
            self.path.clone(),
            l.flags,
            l.children.clone(),
            l.context.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let tree = Arc::new(tree);
        let (watched, to_me) = (tree.clone(), myself.clone());
        tokio::spawn(async move {
            let reason = watched.wait().await;
            let _ = to_me.send_message(NodeGroupMsg::LocalExited(reason));
        });
        *shown.local.lock().unwrap_or_else(PoisonError::into_inner) = Some(tree.clone());
        let placement = if self.migratable {
            format!("in_process (migrates to node:{})", self.node)
        } else {
            format!("in_process (node:{} unreachable)", self.node)
        };
        shown.set(Placement {
            placement,
            pid: std::process::id(),
            isolation: None,
        });
        shown.set_site(Where::Home);
        Ok(tree)
    }

    /// Asks the node to stop this incarnation's group (best effort: it also stops it
    /// when the robot's token goes).
    async fn stop_on_node(&self, incarnation: u64) {
        let key = self.keys.about("stop", self.group);
        let stop = remote::encode(&Stop { incarnation });
        if let Err(e) = ask_node(&self.session, &key, stop, STOP_TIMEOUT).await {
            tracing::warn!(group = self.group, node = %self.node, error = %e, "the node did not confirm the stop");
        }
    }

    /// One try: the node if it is up, else the fallback, else a later try.
    async fn try_place(
        &self,
        myself: &ActorRef<NodeGroupMsg>,
        state: &mut State,
    ) -> Result<(), ActorProcessingErr> {
        if matches!(state.site, Site::Node(_)) {
            return Ok(());
        }
        if self.migratable {
            // At home unless moved: the node's coming and going moves nothing by itself.
            if matches!(state.site, Site::Waiting(_)) {
                let tree = self.start_local(myself, &state.shown).await?;
                state.site = Site::Local(tree);
            }
            return Ok(());
        }
        if self.node_is_up().await {
            // Never two commanders: the local group stops before the node's starts.
            state.stop_local().await;
            match self
                .start_on_node(state.incarnation, myself, &state.shown)
                .await
            {
                Ok((on_node, pid)) => {
                    tracing::info!(group = self.group, node = %self.node, pid, "group running on its node");
                    state.shown.set(Placement {
                        placement: format!("node:{}", self.node),
                        pid,
                        isolation: None,
                    });
                    state.site = Site::Node(Box::new(on_node));
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(group = self.group, node = %self.node, error = %e, "the node did not start the group");
                }
            }
        }
        match (&state.site, self.fallback) {
            (Site::Waiting(_), Fallback::Local) => {
                tracing::warn!(group = self.group, node = %self.node, "node unreachable: the group runs in the robot's process");
                let tree = self.start_local(myself, &state.shown).await?;
                state.site = Site::Local(tree);
            }
            // One retry armed at a time: a token that comes and goes while starts fail
            // must not start a second chain of asks.
            (Site::Waiting(backoff), Fallback::Wait) if !state.retry_armed => {
                let backoff = *backoff;
                state.site = Site::Waiting((backoff * 2).min(BACKOFF_MAX));
                state.retry_armed = true;
                let to_me = myself.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(backoff).await;
                    let _ = to_me.send_message(NodeGroupMsg::Try);
                });
            }
            // Local: back to the node when its token reappears.
            _ => {}
        }
        Ok(())
    }
}

impl NodeGroup {
    /// Moves a migratable group where its supervisor decided: stops it where it runs,
    /// then starts it where it goes (never two commanders). A move to the node that
    /// fails leaves the group at home.
    async fn migrate(
        &self,
        myself: &ActorRef<NodeGroupMsg>,
        state: &mut State,
        to: Where,
    ) -> Result<(), ActorProcessingErr> {
        let began = std::time::Instant::now();
        match (to, &state.site) {
            (Where::Away, Site::Local(_)) => {
                state.stop_local().await;
                // A fresh incarnation per stay on the node: the node cannot mistake the
                // end of an earlier stay for the end of this one.
                state.incarnation = next_incarnation();
                match self
                    .start_on_node(state.incarnation, myself, &state.shown)
                    .await
                {
                    Ok((on_node, pid)) => {
                        state.shown.set(Placement {
                            placement: format!("node:{} (migrated)", self.node),
                            pid,
                            isolation: None,
                        });
                        state.shown.set_site(Where::Away);
                        state.site = Site::Node(Box::new(on_node));
                        let ms = began.elapsed().as_secs_f64() * 1e3;
                        tracing::warn!(group = self.group, node = %self.node, pid, moved_ms = ms, "group migrated to its node");
                    }
                    Err(e) => {
                        tracing::error!(group = self.group, node = %self.node, error = %e, "migration failed: the group stays in the robot's process");
                        let tree = self.start_local(myself, &state.shown).await?;
                        state.site = Site::Local(tree);
                    }
                }
            }
            (Where::Home, Site::Node(_)) => {
                if let Site::Node(on_node) =
                    std::mem::replace(&mut state.site, Site::Waiting(BACKOFF_MIN))
                {
                    on_node.bridge.log_stats();
                    drop(on_node);
                    self.stop_on_node(state.incarnation).await;
                }
                state.shown.forget_node();
                let tree = self.start_local(myself, &state.shown).await?;
                state.site = Site::Local(tree);
                let ms = began.elapsed().as_secs_f64() * 1e3;
                tracing::warn!(group = self.group, node = %self.node, moved_ms = ms, "group migrated back to the robot's process");
            }
            // Already there (or waiting to start at home).
            _ => {}
        }
        Ok(())
    }
}

/// A number for each incarnation of a node worker and each stay of a migrated group on
/// its node, unique in the process.
fn next_incarnation() -> u64 {
    static INCARNATION: AtomicU64 = AtomicU64::new(0);
    INCARNATION.fetch_add(1, Ordering::Relaxed)
}

impl Actor for NodeGroup {
    type Msg = NodeGroupMsg;
    type State = State;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (): (),
    ) -> Result<Self::State, ActorProcessingErr> {
        let incarnation = next_incarnation();
        let shown = Shown::new(
            self.waiting_placement(),
            self.node.clone(),
            self.migratable.then(|| myself.clone()),
        );
        let (to_me, node_up) = (myself.clone(), shown.node_up.clone());
        let node_watch = self
            .session
            .liveliness()
            .declare_subscriber(self.keys.alive())
            .history(true)
            .callback(move |sample| {
                let up = sample.kind() == SampleKind::Put;
                node_up.store(up, Ordering::Release);
                let _ = to_me.send_message(if up {
                    NodeGroupMsg::NodeUp
                } else {
                    NodeGroupMsg::NodeDown
                });
            })
            .await
            .map_err(|e| format!("cannot watch node {}: {e}", self.node))?;
        external::attach(Arc::new(shown.clone()));
        // Not awaited here: the supervisor (which holds motion) never waits on the link.
        myself.send_message(NodeGroupMsg::Try)?;
        Ok(State {
            incarnation,
            site: Site::Waiting(BACKOFF_MIN),
            shown,
            retry_armed: false,
            _node_watch: node_watch,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NodeGroupMsg::Noop => Ok(()),
            NodeGroupMsg::Try => {
                state.retry_armed = false;
                self.try_place(&myself, state).await
            }
            NodeGroupMsg::NodeUp => self.try_place(&myself, state).await,
            NodeGroupMsg::NodeDown => match &state.site {
                Site::Node(_) => {
                    tracing::error!(group = self.group, node = %self.node, "node lost");
                    // Nothing to ask the node on the way out: it stops the group itself
                    // when the robot's token goes, which it does here.
                    state.site = Site::Waiting(BACKOFF_MIN);
                    state.shown.forget_node();
                    Err(Box::new(NodeLost(self.node.clone())))
                }
                _ => Ok(()),
            },
            NodeGroupMsg::Exited(exit) => Err(format!(
                "the {} group on node {} gave up: {}",
                self.group, self.node, exit.reason
            )
            .into()),
            NodeGroupMsg::Migrate(to) => {
                let moved = self.migrate(&myself, state, to).await;
                // Over, wherever the group ended up: the supervisor reads the site now.
                state.shown.moving.store(false, Ordering::Release);
                moved
            }
            NodeGroupMsg::LocalExited(reason) => match &state.site {
                Site::Local(_) => Err(format!("the {} group gave up: {reason}", self.group).into()),
                _ => Ok(()),
            },
        }
    }

    async fn post_stop(
        &self,
        _: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match std::mem::replace(&mut state.site, Site::Waiting(BACKOFF_MIN)) {
            Site::Node(on_node) => {
                on_node.bridge.log_stats();
                drop(on_node);
                self.stop_on_node(state.incarnation).await;
            }
            Site::Local(tree) => {
                tree.shutdown().await;
            }
            Site::Waiting(_) => {}
        }
        Ok(())
    }
}
