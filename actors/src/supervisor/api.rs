//! The calls a running supervisor answers (OTP's API section): start, stop, restart and
//! look up children, list and count them. Each is a message to the supervisor, served in
//! turn with the exits it handles, so an answer reflects every exit it has seen. Both
//! sides live here: the [`SupervisorRef`] methods that send a request and the
//! supervisor's `handle` that serves it.

use ractor::{ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::children::Phase;
use super::restart::Next;
use super::spec::{ChildKind, ChildSpec};
use super::SupervisorState;
use crate::error::{CallError, StartError};
use crate::path::ActorPath;

/// A request to a supervisor; built by [`SupervisorRef`]'s methods.
pub(crate) struct SupervisorMsg(pub(super) Request);

pub(super) enum Request {
    StartChild(Box<ChildSpec>, RpcReplyPort<Result<ActorCell, StartError>>),
    StopChild(String, RpcReplyPort<Result<(), CallError>>),
    RestartChild(String, RpcReplyPort<Result<ActorCell, CallError>>),
    Child(String, RpcReplyPort<Option<ActorCell>>),
    WhichChildren(RpcReplyPort<Vec<ChildInfo>>),
    CountChildren(RpcReplyPort<ChildCounts>),
    /// A scheduled (backed-off or retried) restart of `ids`, in start order.
    Restart {
        ids: Vec<u64>,
        generation: u64,
    },
    /// Time to measure governed children and enforce their quotas.
    Sample,
}

/// What a child is now, in [`ChildInfo`]: OTP's `Child | restarting | undefined`.
#[derive(Debug, Clone)]
pub enum Incarnation {
    /// It runs: its live incarnation.
    Live(ActorCell),
    /// It exited and its supervisor is starting it again (possibly after a backoff).
    Restarting,
    /// It is not running and will not be restarted by itself (a transient child that
    /// exited normally, a child terminated for its quota): see
    /// [`SupervisorRef::restart_child`].
    Undefined,
}

/// One child as [`SupervisorRef::which_children`] lists it.
#[derive(Debug, Clone)]
pub struct ChildInfo {
    /// Its name, unique among its siblings (OTP's child id).
    pub name: String,
    /// Its live incarnation, or why it has none.
    pub incarnation: Incarnation,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

/// How many children a supervisor has, as [`SupervisorRef::count_children`] counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildCounts {
    /// Every child it has a spec for, running or not.
    pub specs: usize,
    /// Children with a live incarnation.
    pub active: usize,
    /// Children that are supervisors, running or not.
    pub supervisors: usize,
    /// Children that are workers, running or not.
    pub workers: usize,
}

/// A handle on a running supervisor: add, stop, restart, look up, list and count its
/// children.
#[derive(Clone)]
pub struct SupervisorRef {
    actor: ActorRef<SupervisorMsg>,
    path: ActorPath,
}

impl SupervisorRef {
    pub(crate) fn new(actor: ActorRef<SupervisorMsg>, path: ActorPath) -> Self {
        Self { actor, path }
    }

    /// The supervisor's path.
    pub fn path(&self) -> &ActorPath {
        &self.path
    }

    /// The supervisor's cell (to link, monitor or stop it).
    pub fn cell(&self) -> ActorCell {
        self.actor.get_cell()
    }

    /// Sends a request and waits for its reply; `None` if the supervisor is gone.
    async fn request<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> Request,
    ) -> Option<T> {
        match self.actor.call(|r| SupervisorMsg(build(r)), None).await {
            Ok(ractor::rpc::CallResult::Success(reply)) => Some(reply),
            _ => None,
        }
    }

    /// Starts a dynamic child after the existing ones (last in start order, first to stop).
    ///
    /// # Errors
    ///
    /// [`StartError::Spec`] for a duplicate or invalid name; [`StartError::Child`] if its
    /// `pre_start` failed (the child is then not kept, as OTP's `start_child`);
    /// [`StartError::Unreachable`] if the supervisor is gone.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<ActorCell, StartError> {
        self.request(|r| Request::StartChild(Box::new(spec), r))
            .await
            .unwrap_or_else(|| Err(StartError::Unreachable(self.path.clone())))
    }

    /// Stops the child `name` by its shutdown policy and removes it (OTP's
    /// `terminate_child` then `delete_child`).
    ///
    /// # Errors
    ///
    /// [`CallError::NoSuchChild`], or [`CallError::Unreachable`] if the supervisor is gone.
    pub async fn stop_child(&self, name: &str) -> Result<(), CallError> {
        let name = name.to_string();
        self.request(|r| Request::StopChild(name, r))
            .await
            .unwrap_or_else(|| Err(CallError::Unreachable(self.path.clone())))
    }

    /// Starts again the child `name`, which is not running and is not being restarted
    /// (a transient child that exited normally or with [`ExitReason::Shutdown`], a child
    /// terminated for its quota), with its spec; OTP's `restart_child`. The restart does
    /// not count against the supervisor's intensity and is not retried if it fails.
    ///
    /// # Errors
    ///
    /// [`CallError::NoSuchChild`] (a temporary child is removed when it exits, so it is
    /// never found); [`CallError::Running`] or [`CallError::Restarting`] if it is up or
    /// on its way back; [`CallError::StartFailed`] if its `pre_start` failed (it then
    /// stays down); [`CallError::Unreachable`] if the supervisor is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use nevil_actors::{ChildSpec, ExitReason, Restart, SupervisorFlags, Tree};
    /// # use ractor::{Actor, ActorProcessingErr, ActorRef};
    /// # #[derive(Clone)] struct Worker;
    /// # impl Actor for Worker {
    /// #     type Msg = (); type State = (); type Arguments = ();
    /// #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let spec = ChildSpec::worker("job", Worker, ()).restart(Restart::Transient);
    /// let tree = Tree::start("root", SupervisorFlags::default(), vec![spec]).await.unwrap();
    /// let root = tree.root();
    /// assert!(root.restart_child("job").await.is_err(), "it is running");
    ///
    /// // A transient child that shuts down stays down...
    /// let job = root.child("job").await.unwrap().unwrap();
    /// job.stop_and_wait(Some(ExitReason::SHUTDOWN.into()), None).await.unwrap();
    /// assert!(root.child("job").await.unwrap().is_none());
    /// let node = tree.snapshot().root.find("root/job").cloned().unwrap();
    /// assert_eq!(node.last_exit, Some(ExitReason::Shutdown));
    ///
    /// // ...until it is restarted by hand.
    /// let again = root.restart_child("job").await.unwrap();
    /// assert_ne!(again.get_id(), job.get_id());
    /// tree.shutdown().await;
    /// # }
    /// ```
    ///
    /// [`ExitReason::Shutdown`]: crate::ExitReason::Shutdown
    pub async fn restart_child(&self, name: &str) -> Result<ActorCell, CallError> {
        let name = name.to_string();
        self.request(|r| Request::RestartChild(name, r))
            .await
            .unwrap_or_else(|| Err(CallError::Unreachable(self.path.clone())))
    }

    /// Every child in start order, with its live incarnation (or why it has none) and
    /// its kind; OTP's `which_children`.
    ///
    /// # Errors
    ///
    /// [`CallError::Unreachable`] if the supervisor is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use nevil_actors::{ChildKind, ChildSpec, Incarnation, SupervisorFlags, Tree};
    /// # use ractor::{Actor, ActorProcessingErr, ActorRef};
    /// # #[derive(Clone)] struct Worker;
    /// # impl Actor for Worker {
    /// #     type Msg = (); type State = (); type Arguments = ();
    /// #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let workers = ChildSpec::supervisor("workers", SupervisorFlags::default(), vec![]);
    /// let children = vec![ChildSpec::worker("first", Worker, ()), workers];
    /// let tree = Tree::start("root", SupervisorFlags::default(), children).await.unwrap();
    /// let listed = tree.root().which_children().await.unwrap();
    /// let names: Vec<_> = listed.iter().map(|c| (c.name.as_str(), c.kind)).collect();
    /// assert_eq!(names, [("first", ChildKind::Worker), ("workers", ChildKind::Supervisor)]);
    /// assert!(matches!(listed[0].incarnation, Incarnation::Live(_)));
    /// tree.shutdown().await;
    /// # }
    /// ```
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, CallError> {
        self.request(Request::WhichChildren)
            .await
            .ok_or_else(|| CallError::Unreachable(self.path.clone()))
    }

    /// How many children the supervisor has: specs, live ones, supervisors and workers;
    /// OTP's `count_children`.
    ///
    /// # Errors
    ///
    /// [`CallError::Unreachable`] if the supervisor is gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use nevil_actors::{ChildCounts, ChildSpec, SupervisorFlags, Tree};
    /// # use ractor::{Actor, ActorProcessingErr, ActorRef};
    /// # #[derive(Clone)] struct Worker;
    /// # impl Actor for Worker {
    /// #     type Msg = (); type State = (); type Arguments = ();
    /// #     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> { Ok(()) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let children = vec![
    ///     ChildSpec::worker("a", Worker, ()),
    ///     ChildSpec::worker("b", Worker, ()),
    ///     ChildSpec::supervisor("more", SupervisorFlags::default(), vec![]),
    /// ];
    /// let tree = Tree::start("root", SupervisorFlags::default(), children).await.unwrap();
    /// assert_eq!(
    ///     tree.root().count_children().await.unwrap(),
    ///     ChildCounts { specs: 3, active: 3, supervisors: 1, workers: 2 }
    /// );
    /// tree.shutdown().await;
    /// # }
    /// ```
    pub async fn count_children(&self) -> Result<ChildCounts, CallError> {
        self.request(Request::CountChildren)
            .await
            .ok_or_else(|| CallError::Unreachable(self.path.clone()))
    }

    /// The live incarnation of the child `name`, if it is running.
    ///
    /// # Errors
    ///
    /// [`CallError::Unreachable`] if the supervisor is gone.
    pub async fn child(&self, name: &str) -> Result<Option<ActorCell>, CallError> {
        let name = name.to_string();
        self.request(|r| Request::Child(name, r))
            .await
            .ok_or_else(|| CallError::Unreachable(self.path.clone()))
    }
}

impl SupervisorState {
    /// Serves one request (inside the supervisor's span).
    pub(super) async fn handle(
        &mut self,
        myself: ActorRef<SupervisorMsg>,
        request: Request,
    ) -> Result<(), ActorProcessingErr> {
        match request {
            Request::StartChild(spec, reply) => {
                let _ = reply.send(self.start_child(&myself.get_cell(), *spec).await);
            }
            Request::StopChild(name, reply) => {
                let id = self.table().by_name(&name).map(|c| c.id);
                let result = match id {
                    None => Err(self.no_such_child(name)),
                    Some(id) => {
                        self.stop_child(id).await;
                        self.table().remove(id);
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            Request::RestartChild(name, reply) => {
                let found = self
                    .table()
                    .by_name(&name)
                    .map(|c| (c.id, c.phase, c.path.clone()));
                let result = match found {
                    None => Err(self.no_such_child(name)),
                    Some((_, Phase::Running, path)) => Err(CallError::Running(path)),
                    Some((_, Phase::Starting | Phase::Restarting, path)) => {
                        Err(CallError::Restarting(path))
                    }
                    Some((id, Phase::Stopped, path)) => {
                        self.restart_by_hand(&myself.get_cell(), id, path).await
                    }
                };
                let _ = reply.send(result);
            }
            Request::Child(name, reply) => {
                let cell = self.table().by_name(&name).and_then(|c| c.cell.clone());
                let _ = reply.send(cell);
            }
            Request::WhichChildren(reply) => {
                let _ = reply.send(self.shared.which_children());
            }
            Request::CountChildren(reply) => {
                let _ = reply.send(self.shared.count_children());
            }
            Request::Restart { ids, generation } => {
                self.run_group(&myself, &ids, generation).await?;
            }
            Request::Sample => self.sample(&myself).await?,
        }
        Ok(())
    }

    /// Starts again the child `id` (at `path`), which is down and not being restarted;
    /// OTP's `restart_child`. Not counted against the intensity.
    async fn restart_by_hand(
        &mut self,
        myself: &ActorCell,
        id: u64,
        path: ActorPath,
    ) -> Result<ActorCell, CallError> {
        if let Some(c) = self.table().get_mut(id) {
            c.restarts += 1;
        }
        if let Err(reason) = self.start_one(myself, id).await {
            self.report_exit(id, &reason, Next::Stop);
            return Err(CallError::StartFailed { path, reason });
        }
        self.table()
            .get(id)
            .and_then(|c| c.cell.clone())
            .ok_or_else(|| CallError::Unreachable(self.path().clone()))
    }
    /// Adds and starts a dynamic child; a child that fails to start is not kept (OTP's
    /// `start_child`), and the caller gets the error.
    async fn start_child(
        &mut self,
        myself: &ActorCell,
        spec: ChildSpec,
    ) -> Result<ActorCell, StartError> {
        let id = self.add(spec)?;
        match self.start_one(myself, id).await {
            Ok(()) => self
                .table()
                .get(id)
                .and_then(|c| c.cell.clone())
                .ok_or_else(|| StartError::Unreachable(self.path().clone())),
            Err(reason) => {
                self.report_exit(id, &reason, Next::Stop);
                let path = self.table().get(id).map(|c| c.path.clone());
                self.table().remove(id);
                Err(StartError::Child {
                    path: path.unwrap_or_else(|| self.path().clone()),
                    reason,
                })
            }
        }
    }

    fn no_such_child(&self, name: String) -> CallError {
        CallError::NoSuchChild {
            supervisor: self.path().clone(),
            name,
        }
    }
}
