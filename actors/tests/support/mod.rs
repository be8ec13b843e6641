//! Test actors: a probe that reports its lifecycle on a channel and misbehaves on request
//! (OTP's `supervisor_1`), plus helpers to wait on those reports.
//!
//! Events are strings such as `start b#2` (the second incarnation of `b` entered
//! `pre_start`), `stop b#2` (its `post_stop` finished) and `got b#2 7` (it handled
//! message 7), so a test can assert an exact order.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nevil_actors::{ChildSpec, Tree};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::mpsc;

/// Where probes report.
#[derive(Clone)]
pub struct Log {
    tx: mpsc::UnboundedSender<String>,
    incarnations: Arc<Mutex<HashMap<String, u32>>>,
    /// How many more starts of a name should fail.
    failing_starts: Arc<Mutex<HashMap<String, u32>>>,
}

/// The receiving end of a [`Log`].
pub struct Events {
    rx: mpsc::UnboundedReceiver<String>,
}

pub fn log() -> (Log, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let log = Log {
        tx,
        incarnations: Default::default(),
        failing_starts: Default::default(),
    };
    (log, Events { rx })
}

impl Log {
    fn emit(&self, event: impl FnOnce() -> String) {
        // Reporting is done for the test, not the actor: keep it out of its memory.
        nevil_actors::managed::uncharged(|| {
            let _ = self.tx.send(event());
        });
    }

    /// Makes the next `times` starts of `name` fail in `pre_start`.
    pub fn fail_starts(&self, name: &str, times: u32) {
        self.failing_starts
            .lock()
            .unwrap()
            .insert(name.to_string(), times);
    }

    fn next_incarnation(&self, name: &str) -> u32 {
        let mut map = self.incarnations.lock().unwrap();
        let n = map.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    fn should_fail_start(&self, name: &str) -> bool {
        let mut map = self.failing_starts.lock().unwrap();
        match map.get_mut(name) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

impl Events {
    /// The next event; fails the test if none comes within a minute of (virtual) time.
    pub async fn next(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(60), self.rx.recv())
            .await
            .expect("no lifecycle event within 60 s")
            .expect("log closed")
    }

    /// The next `n` events, in order.
    pub async fn take(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// Every event already reported, without waiting.
    pub fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(e) = self.rx.try_recv() {
            out.push(e);
        }
        out
    }
}

/// What a probe can be told to do.
pub enum ProbeMsg {
    /// Reply with the incarnation number.
    Ping(RpcReplyPort<u32>),
    /// Record `got <name>#<n> <value>`.
    Record(u32),
    /// Panic in the handler.
    Panic,
    /// Return `Err` from the handler.
    Fail,
    /// Stop itself normally.
    Exit,
    /// Await forever inside the handler.
    Hang,
    /// Allocate and keep this many bytes.
    Hold(usize),
    /// Burn CPU in the handler for this long.
    Busy(Duration),
    /// Send `n` `Record` messages to another probe.
    SendTo(nevil_actors::Mailbox<ProbeMsg>, u32),
    /// Reply with the name of the thread running the handler.
    Thread(RpcReplyPort<String>),
}

/// A worker that reports its lifecycle to a [`Log`].
#[derive(Clone)]
pub struct Probe {
    pub name: String,
    pub log: Log,
    /// Time `post_stop` takes (awaited on the tokio clock).
    pub stop_delay: Duration,
}

pub struct ProbeState {
    incarnation: u32,
    held: Vec<Vec<u8>>,
}

impl Probe {
    pub fn new(name: &str, log: &Log) -> Self {
        Self {
            name: name.to_string(),
            log: log.clone(),
            stop_delay: Duration::ZERO,
        }
    }

    pub fn slow_stop(mut self, delay: Duration) -> Self {
        self.stop_delay = delay;
        self
    }

    /// A permanent worker spec for this probe.
    pub fn spec(self) -> ChildSpec {
        let name = self.name.clone();
        ChildSpec::worker(name, self, ())
    }
}

impl Actor for Probe {
    type Msg = ProbeMsg;
    type State = ProbeState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<ProbeMsg>,
        _: (),
    ) -> Result<ProbeState, ActorProcessingErr> {
        let incarnation = self.log.next_incarnation(&self.name);
        self.log
            .emit(|| format!("start {}#{incarnation}", self.name));
        if self.log.should_fail_start(&self.name) {
            return Err(format!("{} refuses to start", self.name).into());
        }
        Ok(ProbeState {
            incarnation,
            held: Vec::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ProbeMsg>,
        msg: ProbeMsg,
        state: &mut ProbeState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProbeMsg::Ping(reply) => {
                let _ = reply.send(state.incarnation);
            }
            ProbeMsg::Record(v) => {
                self.log
                    .emit(|| format!("got {}#{} {v}", self.name, state.incarnation));
            }
            ProbeMsg::Panic => panic!("{} was told to panic", self.name),
            ProbeMsg::Fail => return Err(format!("{} was told to fail", self.name).into()),
            ProbeMsg::Exit => myself.stop(None),
            ProbeMsg::Hang => std::future::pending::<()>().await,
            ProbeMsg::Hold(n) => state.held.push(vec![1; n]),
            ProbeMsg::Thread(reply) => {
                let name = std::thread::current().name().unwrap_or("").to_string();
                let _ = reply.send(name);
            }
            ProbeMsg::SendTo(to, n) => {
                for v in 0..n {
                    let _ = to.cast(ProbeMsg::Record(v));
                }
            }
            ProbeMsg::Busy(d) => {
                let t0 = std::time::Instant::now();
                while t0.elapsed() < d {
                    std::hint::spin_loop();
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _: ActorRef<ProbeMsg>,
        state: &mut ProbeState,
    ) -> Result<(), ActorProcessingErr> {
        if !self.stop_delay.is_zero() {
            self.log
                .emit(|| format!("stopping {}#{}", self.name, state.incarnation));
            tokio::time::sleep(self.stop_delay).await;
        }
        self.log
            .emit(|| format!("stop {}#{}", self.name, state.incarnation));
        Ok(())
    }
}

/// Sends `msg` to the live incarnation at `path`.
pub fn tell(tree: &Tree, path: &str, msg: ProbeMsg) {
    let cell = tree
        .actor(path)
        .unwrap_or_else(|| panic!("no live actor at {path}"));
    ActorRef::<ProbeMsg>::from(cell).cast(msg).expect("cast");
}

/// The incarnation number of the live actor at `path`.
pub async fn incarnation(tree: &Tree, path: &str) -> u32 {
    let cell = tree
        .actor(path)
        .unwrap_or_else(|| panic!("no live actor at {path}"));
    ractor::call!(ActorRef::<ProbeMsg>::from(cell), ProbeMsg::Ping).expect("ping")
}

/// Waits until every runnable task has run: on the paused clock, time only advances
/// (and this sleep only ends) once the runtime is otherwise idle.
pub async fn idle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Waits until the root supervisor has handled everything sent to it so far.
pub async fn settle(tree: &Tree) {
    let _ = tree.root().child("-").await;
}

/// Waits until the supervisor at `path` has handled everything sent to it so far.
pub async fn settle_at(tree: &Tree, path: &str) {
    let _ = tree.supervisor(path).expect("supervisor").child("-").await;
}

pub fn cell_of(tree: &Tree, path: &str) -> ActorCell {
    tree.actor(path)
        .unwrap_or_else(|| panic!("no live actor at {path}"))
}
