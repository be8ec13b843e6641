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

/// Which restart to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCase {
    /// One child under `one_for_one`.
    OneForOne,
    /// A `rest_for_one` chain of 3: kill the first, time until the third answers.
    RestForOneChainOf3,
    /// One child under a minimal hand-written ractor supervisor: the floor.
    BareRactor,
}

impl RestartCase {
    /// Every case, in report order.
    pub const ALL: [Self; 3] = [Self::OneForOne, Self::RestForOneChainOf3, Self::BareRactor];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::OneForOne => "one_for_one",
            Self::RestForOneChainOf3 => "rest_for_one_chain_of_3",
            Self::BareRactor => "bare_ractor",
        }
    }
}

/// The supervisor under test in a [`RestartScenario`].
enum Under {
    Tree(Tree),
    Bare(ActorRef<()>),
}

/// Children that are killed and restarted over and over, announcing each incarnation.
pub struct RestartScenario {
    under: Under,
    victim: ActorRef<EchoMsg>,
    restarted_per_kill: usize,
    announced: mpsc::UnboundedReceiver<ActorRef<EchoMsg>>,
}

impl RestartScenario {
    /// Starts the supervisor and children of `case` and waits until they all run.
    pub async fn start(case: RestartCase) -> Result<Self, BenchError> {
        let (tx, mut announced) = mpsc::unbounded_channel();
        let (under, n) = match case {
            RestartCase::BareRactor => {
                let (sup, _) = Actor::spawn(None, BareSupervisor { announce: tx }, ())
                    .await
                    .map_err(fail)?;
                (Under::Bare(sup), 1)
            }
            RestartCase::OneForOne | RestartCase::RestForOneChainOf3 => {
                let (strategy, n) = match case {
                    RestartCase::OneForOne => (Strategy::OneForOne, 1),
                    _ => (Strategy::RestForOne, 3),
                };
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
                (Under::Tree(tree), n)
            }
        };
        let mut first = None;
        for _ in 0..n {
            let child = announced
                .recv()
                .await
                .ok_or_else(|| fail("child never ran"))?;
            first.get_or_insert(child);
        }
        Ok(Self {
            under,
            victim: first.ok_or_else(|| fail("no child"))?,
            restarted_per_kill: n,
            announced,
        })
    }

    /// Kills the first child; returns the time until the last restarted child answered.
    pub async fn restart_once(&mut self) -> Result<Duration, BenchError> {
        let t0 = Instant::now();
        self.victim.kill();
        let mut restarted = Vec::with_capacity(self.restarted_per_kill);
        for _ in 0..self.restarted_per_kill {
            let child = self.announced.recv().await;
            restarted.push(child.ok_or_else(|| fail("no replacement announced"))?);
        }
        let last = restarted.last().ok_or_else(|| fail("nothing restarted"))?;
        ping(last).await?;
        let took = t0.elapsed();
        self.victim = restarted.swap_remove(0);
        Ok(took)
    }

    /// Stops the supervisor and its children.
    pub async fn stop(self) {
        match self.under {
            Under::Tree(tree) => {
                tree.shutdown().await;
            }
            Under::Bare(sup) => {
                sup.stop(None);
                let _ = sup.wait(None).await;
            }
        }
    }
}

/// Runs `case` for `n` restarts and returns each one's latency.
pub async fn restart_samples(case: RestartCase, n: u64) -> Result<Vec<Duration>, BenchError> {
    let mut scenario = RestartScenario::start(case).await?;
    let mut samples = Vec::with_capacity(n as usize);
    for _ in 0..n {
        samples.push(scenario.restart_once().await?);
    }
    scenario.stop().await;
    Ok(samples)
}

/// The floor: a hand-written ractor supervisor that respawns its one child on any exit.
struct BareSupervisor {
    announce: mpsc::UnboundedSender<ActorRef<EchoMsg>>,
}

impl BareSupervisor {
    async fn spawn_child(&self, myself: &ActorRef<()>) -> Result<(), ActorProcessingErr> {
        let echo = Echo {
            announce: self.announce.clone(),
        };
        Actor::spawn_linked(None, echo, (), myself.get_cell()).await?;
        Ok(())
    }
}

impl Actor for BareSupervisor {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        self.spawn_child(&myself).await
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        event: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(..) | SupervisionEvent::ActorFailed(..) => {
                self.spawn_child(&myself).await
            }
            _ => Ok(()),
        }
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
        for case in RestartCase::ALL {
            assert_eq!(restart_samples(case, 3).await.unwrap().len(), 3);
        }
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
