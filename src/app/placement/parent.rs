//! The robot's side of a process-placed group: one managed worker that runs the group's
//! process in a [`Jail`], stands for it in the tree ([`External`]), and ends as the
//! process ends, so that its supervisor's strategy, intensity and escalation apply to
//! the process as to any child.
//!
//! | the process | the worker's exit |
//! |---|---|
//! | exited with status 0 | `normal` |
//! | killed by SIGKILL (a `kill -9`) | `killed` |
//! | killed by the kernel's OOM killer | `oom` |
//! | another signal, another status | `error` naming it |
//! | killed by its quota (the kernel's kill) | `quota`, as for any child |
//!
//! A graceful stop closes the process's stdin (it stops its tree and exits) and waits
//! [`GRACE`]; then the jail kills it. A worker killed outright (no `post_stop`) still kills
//! its process: dropping its state does. The process also dies with the robot's
//! process (`PR_SET_PDEATHSIG`) and when its stdin closes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use nevil_actors::process::{exit_reason, Jail, JailLimits};
use nevil_actors::{
    external, ActorPath, ExitReason, External, Fault, NodeSnapshot, Placement, Subtree,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

use super::protocol::{self, ToChild, ToParent};

/// How long a stopping group's process may take to stop its tree before it is killed.
pub(crate) const GRACE: Duration = Duration::from_secs(2);

/// How long a new process may take to start its tree and reach the bridge.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// What every process-placed group's process is started with, whichever the group.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The `nevil` binary to run (this one).
    pub(crate) exe: PathBuf,
    /// The config file the robot runs (none: the embedded default).
    pub(crate) config: Option<PathBuf>,
    /// The bridge's socket, where the robot's end listens.
    pub(crate) socket: PathBuf,
    /// Arguments before the subcommand, e.g. `--log-format json`.
    pub(crate) global_args: Vec<OsString>,
}

impl Launch {
    /// The command that runs `group` in a process of its own.
    fn command(&self, group: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.exe);
        cmd.args(&self.global_args)
            .arg("group")
            .arg("--name")
            .arg(group)
            .arg("--bridge")
            .arg(&self.socket);
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        cmd
    }
}

/// The worker that stands for a process-placed group.
#[derive(Clone)]
pub(crate) struct ProcessGroup {
    /// The group's name (`behaviours`).
    pub(crate) group: &'static str,
    pub(crate) launch: Arc<Launch>,
    /// The kernel's limits for the group (its quota's hard memory).
    pub(crate) limits: JailLimits,
}

/// Messages of a [`ProcessGroup`].
#[derive(Debug)]
pub(crate) enum ProcessGroupMsg {
    /// The process ended: the worker ends the same way.
    Exited(ExitReason),
    /// Does nothing (what a `flood` drill sends).
    Noop,
}

/// A live process of the group.
pub(crate) struct Running {
    jail: Arc<Jail>,
    /// The process's stdin, through its writer task; dropping it asks the process to stop.
    to_child: Option<mpsc::Sender<ToChild>>,
    /// Set once the process has exited, with how.
    exited: watch::Receiver<Option<ExitReason>>,
}

impl Drop for Running {
    /// A worker killed outright (its state dropped, no `post_stop`) takes its process along.
    fn drop(&mut self) {
        if self.exited.borrow().is_none() {
            self.jail.kill();
        }
    }
}

/// The group's process as its supervisor samples, governs and shows it.
///
/// It holds the jail weakly: the worker's state and the task that waits for the process
/// hold it, so the cgroup goes (its directories removed) with the process, while the
/// supervisor may keep this until the worker's next incarnation attaches a new one.
struct GroupProcess {
    jail: Weak<Jail>,
    placement: Placement,
    subtree: Subtree,
    /// Weak too: only the worker's own handle keeps the process's stdin open, so that
    /// its `post_stop` closing it is the end of input.
    to_child: mpsc::WeakSender<ToChild>,
}

impl GroupProcess {
    /// Does `act` on the jail while the process is there; logs what failed.
    fn on_jail(&self, what: &str, act: impl FnOnce(&Jail) -> std::io::Result<()>) {
        if let Some(jail) = self.jail.upgrade() {
            if let Err(e) = act(&jail) {
                tracing::warn!(error = %e, "cannot {what} the group's process");
            }
        }
    }
}

impl External for GroupProcess {
    fn cpu_seconds(&self) -> Option<f64> {
        self.jail.upgrade()?.cpu_seconds()
    }

    fn memory_bytes(&self) -> Option<u64> {
        self.jail.upgrade()?.memory_bytes()
    }

    fn suspend(&self) {
        self.on_jail("suspend", Jail::suspend);
    }

    fn resume(&self) {
        self.on_jail("resume", Jail::resume);
    }

    fn throttle(&self, cores: f64) {
        self.on_jail("throttle", |jail| jail.throttle(Some(cores)));
    }

    fn kill(&self) {
        if let Some(jail) = self.jail.upgrade() {
            jail.kill();
        }
    }

    fn placement(&self) -> Placement {
        self.placement.clone()
    }

    fn subtree(&self) -> Option<NodeSnapshot> {
        self.subtree.get()
    }

    fn inject(&self, path: &ActorPath, fault: Fault) -> Result<(), String> {
        let to_child = self
            .to_child
            .upgrade()
            .ok_or("the group's process is stopping")?;
        to_child
            .try_send(ToChild::Inject {
                path: path.to_string(),
                fault: fault.name().into(),
            })
            .map_err(|e| format!("the group's process does not take it: {e}"))
    }
}

impl Actor for ProcessGroup {
    type Msg = ProcessGroupMsg;
    type State = Running;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (): (),
    ) -> Result<Self::State, ActorProcessingErr> {
        let group = self.group;
        // One cgroup per incarnation: the last one's is removed only once its process
        // is gone, which may be after this one started.
        static INCARNATION: AtomicU64 = AtomicU64::new(0);
        let n = INCARNATION.fetch_add(1, Ordering::Relaxed);
        let name = format!("nevil-{}-{group}-{n}", std::process::id());
        let jail = Arc::new(Jail::new(&name, &self.limits));
        let mut child = jail
            .spawn(self.launch.command(self.group))
            .map_err(|e| format!("cannot start the {group} process: {e}"))?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            return Err("the group's process has no stdin or stdout".into());
        };
        let mut stdout = BufReader::new(stdout);
        let subtree = Subtree::default();
        let ready = tokio::time::timeout(READY_TIMEOUT, await_ready(&mut stdout, &subtree)).await;
        let pid = match ready {
            Ok(Ok(pid)) => pid,
            failed => {
                let why = match failed {
                    Ok(Err(e)) => e,
                    _ => format!("not ready within {READY_TIMEOUT:?}"),
                };
                jail.kill();
                let status = child
                    .wait()
                    .await
                    .map(|s| exit_reason(s, jail.oom_killed()));
                let ended = status.map_or_else(|e| e.to_string(), |r| r.to_string());
                return Err(format!(
                    "the {group} process did not start: {why} (it ended: {ended})"
                )
                .into());
            }
        };
        tracing::info!(
            group,
            pid,
            isolation = jail.isolation().as_str(),
            "group process running"
        );
        let (exit_tx, exited) = watch::channel(None);
        tokio::spawn(watch_process(
            stdout,
            child,
            jail.clone(),
            subtree.clone(),
            myself,
            exit_tx,
        ));
        let (to_child, rx) = mpsc::channel(64);
        tokio::spawn(write_lines(stdin, rx));
        external::attach(Arc::new(GroupProcess {
            jail: Arc::downgrade(&jail),
            placement: Placement {
                placement: "process".into(),
                pid,
                isolation: Some(jail.isolation().as_str().into()),
            },
            subtree,
            to_child: to_child.downgrade(),
        }));
        Ok(Running {
            jail,
            to_child: Some(to_child),
            exited,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        _: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProcessGroupMsg::Noop => Ok(()),
            ProcessGroupMsg::Exited(reason) => match reason {
                ExitReason::Normal => {
                    myself.stop(None);
                    Ok(())
                }
                ExitReason::Shutdown => {
                    myself.stop(Some(ExitReason::SHUTDOWN.into()));
                    Ok(())
                }
                ExitReason::Killed => {
                    myself.stop(Some("killed".into()));
                    Ok(())
                }
                ExitReason::Oom => Err(Box::new(nevil_actors::OutOfMemory(format!(
                    "the {} process was killed by the kernel's OOM killer",
                    self.group
                )))),
                other => Err(format!("the {} process {}", self.group, other.message()).into()),
            },
        }
    }

    async fn post_stop(
        &self,
        _: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // A frozen process could not hear it: thaw it (and lift any CPU limit) first.
        if let Err(e) = state.jail.resume() {
            tracing::warn!(group = self.group, error = %e, "cannot resume the group's process to stop it");
        }
        // End of input: the process stops its tree and exits.
        state.to_child.take();
        let mut exited = state.exited.clone();
        let gone = |e: &Option<ExitReason>| e.is_some();
        if tokio::time::timeout(GRACE, exited.wait_for(gone))
            .await
            .is_err()
        {
            tracing::warn!(
                group = self.group,
                "group process did not stop in time: killed"
            );
            state.jail.kill();
            let _ = tokio::time::timeout(GRACE, exited.wait_for(gone)).await;
        }
        Ok(())
    }
}

/// Reads the process's reports until it says it is ready; its pid.
async fn await_ready(
    stdout: &mut BufReader<ChildStdout>,
    subtree: &Subtree,
) -> Result<u32, String> {
    let mut buf = Vec::new();
    loop {
        match protocol::read::<ToParent, _>(stdout, &mut buf).await {
            Ok(Some(ToParent::Ready { pid })) => return Ok(pid),
            Ok(Some(ToParent::Tree(tree))) => subtree.set(*tree),
            Ok(None) => return Err("it exited before it was ready".into()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Keeps the group's tree as the process reports it until its stdout ends, then waits
/// for the process and tells the worker how it ended. A report that is no report is a
/// broken process: it is killed.
async fn watch_process(
    mut stdout: BufReader<ChildStdout>,
    mut child: Child,
    jail: Arc<Jail>,
    subtree: Subtree,
    worker: ActorRef<ProcessGroupMsg>,
    exited: watch::Sender<Option<ExitReason>>,
) {
    let mut buf = Vec::new();
    loop {
        match protocol::read::<ToParent, _>(&mut stdout, &mut buf).await {
            Ok(Some(ToParent::Tree(tree))) => subtree.set(*tree),
            Ok(Some(ToParent::Ready { .. })) => {}
            Ok(None) => break,
            Err(e) => {
                tracing::error!(error = %e, "group process sent a bad report: killed");
                jail.kill();
                break;
            }
        }
    }
    let reason = match child.wait().await {
        Ok(status) => exit_reason(status, jail.oom_killed()),
        Err(e) => ExitReason::Error(format!("cannot wait for the process: {e}")),
    };
    // Its actors are gone with it: the tree no longer shows them running.
    subtree.clear();
    tracing::info!(pid = ?jail.pid(), reason = %reason, "group process ended");
    let _ = exited.send(Some(reason.clone()));
    // The worker may be gone already (stopped, which is why the process ended).
    let _ = worker.send_message(ProcessGroupMsg::Exited(reason));
}

/// Writes each message to the process's stdin; the channel closing closes stdin.
async fn write_lines(mut stdin: ChildStdin, mut rx: mpsc::Receiver<ToChild>) {
    while let Some(msg) = rx.recv().await {
        if let Err(e) = stdin.write_all(protocol::encode(&msg).as_bytes()).await {
            tracing::warn!(error = %e, "cannot write to the group's process");
            return;
        }
    }
}
