//! Runtime micro-benchmark scenarios, shared by `benches/` (criterion) so that every
//! figure comes from one implementation of each scenario.
//!
//! - **restart**: kill a supervised child and time until its replacement (for a
//!   `rest_for_one` chain: the last restarted sibling) answers a call;
//! - **bare restart**: the same under a minimal hand-written ractor supervisor, the floor
//!   that supervision overhead is measured against;
//! - **throughput**: casts into a counting actor, bare or supervised, then one call that
//!   returns once all were handled.

use std::time::{Duration, Instant};

use nevil_actors::{ChildSpec, Strategy, SupervisorFlags, Tree};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::mpsc;

/// A bench scenario that could not run: setup failed or an actor did not answer.
#[derive(Debug, thiserror::Error)]
#[error("bench scenario failed: {0}")]
pub struct BenchError(String);

fn fail(what: impl std::fmt::Display) -> BenchError {
    BenchError(what.to_string())
}

/// Messages of [`Echo`].
pub enum EchoMsg {
    /// Reply with the number of casts counted so far.
    Ping(RpcReplyPort<u64>),
    /// Count one message.
    Count,
}

/// A worker that answers pings, counts casts, and announces each incarnation once it runs.
#[derive(Clone)]
pub struct Echo {
    announce: mpsc::UnboundedSender<ActorRef<EchoMsg>>,
}

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<EchoMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn post_start(
        &self,
        myself: ActorRef<EchoMsg>,
        _: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        // A closed channel only means nobody listens any more.
        let _ = self.announce.send(myself);
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<EchoMsg>,
        msg: EchoMsg,
        count: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EchoMsg::Ping(reply) => {
                let _ = reply.send(*count);
            }
            EchoMsg::Count => *count += 1,
        }
        Ok(())
    }
}

async fn ping(actor: &ActorRef<EchoMsg>) -> Result<u64, BenchError> {
    ractor::call!(actor, EchoMsg::Ping).map_err(fail)
}

/// Restart budget for benches: never the limit being measured.
fn bench_flags(strategy: Strategy) -> SupervisorFlags {
    SupervisorFlags::new(strategy).intensity(u32::MAX, Duration::from_secs(1))
}

/// A tree of `n` [`Echo`] children under one supervisor, to be restarted over and over.
pub struct RestartScenario {
    tree: Tree,
    first: String,
    restarted_per_kill: usize,
    announced: mpsc::UnboundedReceiver<ActorRef<EchoMsg>>,
}

impl RestartScenario {
    /// One child under `one_for_one`.
    pub async fn one_for_one() -> Result<Self, BenchError> {
        Self::start(Strategy::OneForOne, 1).await
    }

    /// A `rest_for_one` chain of `n`: killing the first restarts all `n`.
    pub async fn rest_for_one_chain(n: usize) -> Result<Self, BenchError> {
        Self::start(Strategy::RestForOne, n).await
    }

    async fn start(strategy: Strategy, n: usize) -> Result<Self, BenchError> {
        let (tx, mut announced) = mpsc::unbounded_channel();
        let children = (0..n)
            .map(|i| {
                ChildSpec::worker(
                    format!("c{i}"),
                    Echo {
                        announce: tx.clone(),
                    },
                    (),
                )
            })
            .collect();
        let tree = Tree::start("bench", bench_flags(strategy), children)
            .await
            .map_err(fail)?;
        for _ in 0..n {
            announced
                .recv()
                .await
                .ok_or_else(|| fail("child never ran"))?;
        }
        Ok(Self {
            tree,
            first: "bench/c0".into(),
            restarted_per_kill: n,
            announced,
        })
    }

    /// Kills the first child; returns the time until the last restarted child answered.
    pub async fn restart_once(&mut self) -> Result<Duration, BenchError> {
        let victim = self
            .tree
            .actor(&self.first)
            .ok_or_else(|| fail("first child not running"))?;
        let t0 = Instant::now();
        victim.kill();
        let mut last = None;
        for _ in 0..self.restarted_per_kill {
            last = self.announced.recv().await;
        }
        ping(&last.ok_or_else(|| fail("no replacement announced"))?).await?;
        Ok(t0.elapsed())
    }

    /// Stops the tree.
    pub async fn stop(self) {
        self.tree.shutdown().await;
    }
}

/// The floor: a hand-written ractor supervisor that respawns its one child on any exit.
struct BareSupervisor {
    announce: mpsc::UnboundedSender<ActorRef<EchoMsg>>,
}

impl Actor for BareSupervisor {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        let echo = Echo {
            announce: self.announce.clone(),
        };
        Actor::spawn_linked(None, echo, (), myself.get_cell()).await?;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorTerminated(..) | SupervisionEvent::ActorFailed(..) = event {
            let echo = Echo {
                announce: self.announce.clone(),
            };
            Actor::spawn_linked(None, echo, (), myself.get_cell()).await?;
        }
        Ok(())
    }
}

/// [`RestartScenario`] under [`BareSupervisor`].
pub struct BareRestartScenario {
    supervisor: ActorRef<()>,
    child: ActorRef<EchoMsg>,
    announced: mpsc::UnboundedReceiver<ActorRef<EchoMsg>>,
}

impl BareRestartScenario {
    /// Starts the bare supervisor and its child.
    pub async fn start() -> Result<Self, BenchError> {
        let (announce, mut announced) = mpsc::unbounded_channel();
        let (supervisor, _) = Actor::spawn(None, BareSupervisor { announce }, ())
            .await
            .map_err(fail)?;
        let child = announced
            .recv()
            .await
            .ok_or_else(|| fail("child never ran"))?;
        Ok(Self {
            supervisor,
            child,
            announced,
        })
    }

    /// Kills the child; returns the time until its replacement answered.
    pub async fn restart_once(&mut self) -> Result<Duration, BenchError> {
        let t0 = Instant::now();
        self.child.kill();
        self.child = self
            .announced
            .recv()
            .await
            .ok_or_else(|| fail("no replacement announced"))?;
        ping(&self.child).await?;
        Ok(t0.elapsed())
    }

    /// Stops the supervisor (and so its child).
    pub async fn stop(self) {
        self.supervisor.stop(None);
        let _ = self.supervisor.wait(None).await;
    }
}

/// A counting [`Echo`] to cast into: bare (spawned directly) or supervised (in a tree).
pub struct ThroughputScenario {
    actor: ActorRef<EchoMsg>,
    tree: Option<Tree>,
    expected: u64,
}

impl ThroughputScenario {
    /// An [`Echo`] spawned with plain ractor.
    pub async fn bare() -> Result<Self, BenchError> {
        let (announce, _) = mpsc::unbounded_channel();
        let (actor, _) = Actor::spawn(None, Echo { announce }, ())
            .await
            .map_err(fail)?;
        Ok(Self {
            actor,
            tree: None,
            expected: 0,
        })
    }

    /// An [`Echo`] as the child of a supervisor (run inside `Managed`).
    pub async fn supervised() -> Result<Self, BenchError> {
        let (announce, mut announced) = mpsc::unbounded_channel();
        let spec = ChildSpec::worker("echo", Echo { announce }, ());
        let tree = Tree::start("bench", bench_flags(Strategy::OneForOne), vec![spec])
            .await
            .map_err(fail)?;
        let actor = announced
            .recv()
            .await
            .ok_or_else(|| fail("child never ran"))?;
        Ok(Self {
            actor,
            tree: Some(tree),
            expected: 0,
        })
    }

    /// Casts `n` messages, then waits (one call) until all were handled.
    pub async fn cast_batch(&mut self, n: u64) -> Result<Duration, BenchError> {
        let t0 = Instant::now();
        for _ in 0..n {
            self.actor
                .cast(EchoMsg::Count)
                .map_err(|_| fail("cast failed"))?;
        }
        let counted = ping(&self.actor).await?;
        let took = t0.elapsed();
        self.expected += n;
        if counted != self.expected {
            return Err(fail(format!("counted {counted}, sent {}", self.expected)));
        }
        Ok(took)
    }

    /// Stops the actor (and its tree).
    pub async fn stop(self) {
        match self.tree {
            Some(tree) => {
                tree.shutdown().await;
            }
            None => {
                self.actor.stop(None);
                let _ = self.actor.wait(None).await;
            }
        }
    }
}

/// The value below which `q` (0–1) of `samples` lie (nearest rank); zero if empty.
pub fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let mut s: Vec<_> = (1..=100).rev().map(Duration::from_micros).collect();
        assert_eq!(percentile(&mut s, 0.5), Duration::from_micros(50));
        assert_eq!(percentile(&mut s, 0.99), Duration::from_micros(99));
        assert_eq!(percentile(&mut s, 1.0), Duration::from_micros(100));
        assert_eq!(percentile(&mut [], 0.5), Duration::ZERO);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn scenarios_run_and_count() {
        let mut one = RestartScenario::one_for_one().await.unwrap();
        one.restart_once().await.unwrap();
        one.stop().await;
        let mut chain = RestartScenario::rest_for_one_chain(3).await.unwrap();
        chain.restart_once().await.unwrap();
        chain.stop().await;
        let mut bare = BareRestartScenario::start().await.unwrap();
        bare.restart_once().await.unwrap();
        bare.stop().await;
        for mut s in [
            ThroughputScenario::bare().await.unwrap(),
            ThroughputScenario::supervised().await.unwrap(),
        ] {
            s.cast_batch(1000).await.unwrap();
            s.cast_batch(10).await.unwrap();
            s.stop().await;
        }
    }
}
