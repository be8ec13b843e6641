//! Runtime micro-benchmark scenarios, shared by `benches/` (criterion) so that every
//! figure comes from one implementation of each scenario.
//!
//! - **restart**: kill a supervised child and time until its replacement (for a
//!   `rest_for_one` chain: the last restarted sibling) answers a call;
//! - **bare restart**: the same under a minimal hand-written ractor supervisor, the floor
//!   that supervision overhead is measured against;
//! - **throughput**: casts into a counting actor, bare or supervised, then one call that
//!   returns once all were handled;
//! - **call**: one request/reply round trip to a supervised actor;
//! - **suspend → resume**: with the actor suspended and a call held at its gate, the time
//!   from `resume()` to the reply.
//!
//! - **scale** ([`scale`]): a 10,000-actor tree's start, snapshot, `/metrics` render and
//!   one restart inside it; the heap of one idle actor, bare and managed.
//!
//! - **bridge** ([`bridge`]): one small message's hop between two bus bridges over a
//!   unix socket, and the bridge's throughput of small messages.
//!
//! - **hop between hosts** ([`remote`]): `nevil bench --hop` / `--echo`, a message's
//!   round trip between two processes (on two hosts) over the same bridges.
//!
//! [`run_all`] runs them all for `nevil bench`.

pub mod bridge;
pub mod placement;
pub mod remote;
pub mod scale;

use std::process::ExitCode;
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
    /// Allocate and keep this many bytes (charged to the actor).
    Hold(usize),
}

/// A worker that answers pings, counts casts, and announces each incarnation once it runs.
#[derive(Clone)]
pub struct Echo {
    announce: mpsc::UnboundedSender<ActorRef<EchoMsg>>,
}

/// State of an [`Echo`]: its count and what it was told to hold.
#[derive(Default)]
pub struct EchoState {
    count: u64,
    held: Vec<Vec<u8>>,
}

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = EchoState;
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ActorRef<EchoMsg>,
        _: (),
    ) -> Result<EchoState, ActorProcessingErr> {
        Ok(EchoState::default())
    }

    async fn post_start(
        &self,
        myself: ActorRef<EchoMsg>,
        _: &mut EchoState,
    ) -> Result<(), ActorProcessingErr> {
        // A closed channel only means nobody listens any more.
        let _ = self.announce.send(myself);
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<EchoMsg>,
        msg: EchoMsg,
        state: &mut EchoState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EchoMsg::Ping(reply) => {
                let _ = reply.send(state.count);
            }
            EchoMsg::Count => state.count += 1,
            EchoMsg::Hold(n) => state.held.push(vec![1; n]),
        }
        Ok(())
    }
}

async fn ping(actor: &ActorRef<EchoMsg>) -> Result<u64, BenchError> {
    ractor::call!(actor, EchoMsg::Ping).map_err(fail)
}

/// Restart budget for benches: never the limit being measured.
/// Where the supervised scenarios' [`Echo`] sits.
const ECHO: &str = "bench/echo";

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

impl ThroughputScenario {
    /// One call round trip.
    pub async fn call_once(&self) -> Result<Duration, BenchError> {
        let t0 = Instant::now();
        ping(&self.actor).await?;
        Ok(t0.elapsed())
    }

    /// Suspends the actor, queues a call behind its gate, resumes it; returns the time
    /// from `resume()` to the reply. Meant for a current-thread runtime.
    pub async fn suspend_resume_once(&self) -> Result<Duration, BenchError> {
        let view = self
            .tree
            .as_ref()
            .map(Tree::view)
            .ok_or_else(|| fail("suspend needs the supervised scenario"))?;
        if !view.suspend(ECHO) {
            return Err(fail(format!("no worker at {ECHO}")));
        }
        let actor = self.actor.clone();
        let call = tokio::spawn(async move { ping(&actor).await });
        // On a current-thread runtime, these yields run the caller (which sends) and the
        // actor (which takes the message and waits at its gate) before we resume.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        let t0 = Instant::now();
        view.resume(ECHO);
        call.await.map_err(fail)??;
        Ok(t0.elapsed())
    }
}

/// Time from a quota breach to its action, in the supervisor's sampling loop: a child
/// whose hard memory limit is 1 MB (action: suspend) is made to hold 2 MB; the time runs
/// from the moment it holds them to the moment its gate is suspended. Needs
/// `CountingAlloc` as the global allocator (as the `nevil` binary has).
pub async fn breach_to_action_once(sample: Duration) -> Result<Duration, BenchError> {
    use nevil_actors::quota::{HardAction, Limits, QuotaGroup, Resource};
    let mut group = QuotaGroup::ungoverned();
    let mib = 1_000_000.0;
    group.set_limits(
        Resource::Memory,
        Some(Limits {
            soft: mib,
            burst: mib,
            hard: mib,
        }),
    );
    group.hard_action = HardAction::Suspend;
    let (announce, mut announced) = mpsc::unbounded_channel();
    let spec = ChildSpec::worker("echo", Echo { announce }, ()).quota("bench", group);
    let flags = bench_flags(Strategy::OneForOne).sample_every(sample);
    let tree = Tree::start("bench", flags, vec![spec])
        .await
        .map_err(fail)?;
    let actor = announced
        .recv()
        .await
        .ok_or_else(|| fail("child never ran"))?;
    let counters = tree
        .view()
        .counters(ECHO)
        .ok_or_else(|| fail("no counters"))?;
    // Let the sampler take its baseline first, at a random phase of its interval.
    tokio::time::sleep(sample + Duration::from_millis(u64::from(fastrand::u8(..)) % 100)).await;
    actor
        .cast(EchoMsg::Hold(2_000_000))
        .map_err(|_| fail("cast failed"))?;
    ping(&actor).await?;
    let t0 = Instant::now();
    while counters.gate_state() != "suspended" {
        if t0.elapsed() > sample * 20 {
            return Err(fail("the breach was never acted on"));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let took = t0.elapsed();
    tree.shutdown().await;
    Ok(took)
}

/// Every figure of `nevil bench --json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    /// Casts per second into a bare ractor actor.
    pub throughput_bare_msgs_per_s: f64,
    /// Casts per second into a supervised (managed) actor.
    pub throughput_managed_msgs_per_s: f64,
    /// managed / bare.
    pub throughput_ratio: f64,
    /// Call round trip to a managed actor, median, µs.
    pub call_p50_us: f64,
    /// Call round trip, 99th percentile, µs.
    pub call_p99_us: f64,
    /// Kill → replacement answers, one child, median, µs.
    pub restart_p50_us: f64,
    /// Same, 99th percentile, µs.
    pub restart_p99_us: f64,
    /// Kill → third of a rest_for_one chain answers, median, µs.
    pub rest_for_one_restart_p50_us: f64,
    /// Bare hand-written ractor restart, median, µs (the floor).
    pub bare_restart_p50_us: f64,
    /// resume() → the held call's reply, median, µs.
    pub suspend_resume_p50_us: f64,
    /// Memory breach → suspension with 100 ms sampling, median, ms.
    pub breach_to_action_ms: f64,
    /// The same, worst of the runs, ms (target: ≤ 2 sampling intervals).
    pub breach_to_action_max_ms: f64,
    /// One `/metrics` render of a 1,000-actor tree, median, ms.
    pub metrics_render_1000_actors_ms: f64,
    /// Its size in bytes.
    pub metrics_bytes_1000_actors: usize,
    /// The observer's `state` event (built once a second while a page is open) for a
    /// 1,000-actor tree, median, ms.
    pub observer_state_1000_actors_ms: f64,
    /// Its size in bytes.
    pub observer_state_bytes_1000_actors: usize,
    /// Heap held by one idle bare ractor actor, bytes (`null` where the allocator
    /// cannot tell).
    pub idle_actor_bytes_bare: Option<f64>,
    /// Heap held by one idle managed worker in a tree, its supervisor's share included
    /// (target: at most bare + 512 B).
    pub idle_actor_bytes_managed: Option<f64>,
    /// Start of a tree of 10,000 idle managed workers under 100 supervisors, until
    /// every worker ran, ms.
    pub tree_10k_start_ms: f64,
    /// One snapshot of that tree, median, ms.
    pub tree_10k_snapshot_ms: f64,
    /// One `/metrics` render of that tree, median, ms.
    pub tree_10k_metrics_ms: f64,
    /// Kill → replacement answers, for a worker inside that tree, median, µs.
    pub tree_10k_restart_p50_us: f64,
    /// One small `Command` from one bus bridge to another over a unix socket, median,
    /// µs (target: p99 < 500 µs).
    pub bridge_hop_p50_us: f64,
    /// The same, 99th percentile, µs.
    pub bridge_hop_p99_us: f64,
    /// Small messages per second across the bridge, none dropped.
    pub bridge_msgs_per_s: f64,
    /// One small `Command` from one bridge to another over TCP on loopback, as between
    /// a robot and its node (the network's own latency comes on top), median, µs.
    pub net_hop_p50_us: f64,
    /// The same, 99th percentile, µs.
    pub net_hop_p99_us: f64,
    /// Small messages per second across that link, none dropped.
    pub net_msgs_per_s: f64,
    /// A process-placed group killed → its new process answers, median, µs.
    pub process_restart_p50_us: f64,
    /// The same, 99th percentile, µs.
    pub process_restart_p99_us: f64,
    /// A never-yielding handler in a process-placed group → its process killed by its
    /// quota, median, ms (one sampling interval, 100 ms, plus the kill is the target).
    pub busy_kill_ms: f64,
    /// The same, worst of the runs, ms.
    pub busy_kill_max_ms: f64,
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn sample<F, Fut>(n: usize, mut once: F) -> Result<Vec<Duration>, BenchError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Duration, BenchError>>,
{
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(once().await?);
    }
    Ok(samples)
}

/// Runs every scenario (on the current runtime; a current-thread one gives the
/// steadiest figures).
///
/// # Errors
///
/// The first scenario that fails.
pub async fn run_all() -> Result<BenchReport, BenchError> {
    const BATCH: u64 = 10_000;
    const ROUNDS: usize = 100;
    let mut bare = ThroughputScenario::bare().await?;
    let mut managed = ThroughputScenario::supervised().await?;
    let (mut tb, mut tm) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        tb.push(bare.cast_batch(BATCH).await?);
        tm.push(managed.cast_batch(BATCH).await?);
    }
    let rate = |d: Duration| BATCH as f64 / d.as_secs_f64();
    let (rb, rm) = (
        rate(percentile(&mut tb, 0.5)),
        rate(percentile(&mut tm, 0.5)),
    );
    let mut calls = sample(5000, || managed.call_once()).await?;
    let mut resumes = sample(1000, || managed.suspend_resume_once()).await?;
    bare.stop().await;
    managed.stop().await;
    let mut restarts = restart_samples(RestartCase::OneForOne, 3000).await?;
    let mut chain = restart_samples(RestartCase::RestForOneChainOf3, 3000).await?;
    let mut floor = restart_samples(RestartCase::BareRactor, 3000).await?;
    let sample_interval = nevil_actors::quota::DEFAULT_SAMPLE_INTERVAL;
    let mut breaches = sample(10, || breach_to_action_once(sample_interval)).await?;
    let scrape = scale::LargeTree::start(1000).await?;
    // The first render registers every series; the steady state is what repeats.
    let (_, metrics_bytes) = scrape.render_once();
    let mut renders: Vec<Duration> = (0..20).map(|_| scrape.render_once().0).collect();
    let (_, state_bytes) = scrape.observer_state_once();
    let mut states: Vec<Duration> = (0..20).map(|_| scrape.observer_state_once().0).collect();
    scrape.stop().await;
    let mut big = scale::LargeTree::start(10_000).await?;
    let mut snapshots: Vec<Duration> = (0..10).map(|_| big.snapshot_once().0).collect();
    big.render_once();
    let mut big_renders: Vec<Duration> = (0..10).map(|_| big.render_once().0).collect();
    let mut big_restarts = Vec::with_capacity(200);
    for _ in 0..200 {
        big_restarts.push(big.restart_once("root/g50/w50").await?);
    }
    let tree_10k_start = big.started_in;
    big.stop().await;
    let idle = scale::idle_actor_bytes(10_000).await?;
    let hop = bridge::measure(bridge::Link::Unix, 2000, 20_000).await?;
    let net_hop = bridge::measure(bridge::Link::Tcp, 2000, 20_000).await?;
    let placed = on_multi_thread("bench-placement", || placement::run(20, 5)).await?;
    Ok(BenchReport {
        throughput_bare_msgs_per_s: rb,
        throughput_managed_msgs_per_s: rm,
        throughput_ratio: rm / rb,
        call_p50_us: us(percentile(&mut calls, 0.5)),
        call_p99_us: us(percentile(&mut calls, 0.99)),
        restart_p50_us: us(percentile(&mut restarts, 0.5)),
        restart_p99_us: us(percentile(&mut restarts, 0.99)),
        rest_for_one_restart_p50_us: us(percentile(&mut chain, 0.5)),
        bare_restart_p50_us: us(percentile(&mut floor, 0.5)),
        suspend_resume_p50_us: us(percentile(&mut resumes, 0.5)),
        breach_to_action_ms: us(percentile(&mut breaches, 0.5)) / 1000.0,
        breach_to_action_max_ms: us(percentile(&mut breaches, 1.0)) / 1000.0,
        metrics_render_1000_actors_ms: us(percentile(&mut renders, 0.5)) / 1000.0,
        metrics_bytes_1000_actors: metrics_bytes,
        observer_state_1000_actors_ms: us(percentile(&mut states, 0.5)) / 1000.0,
        observer_state_bytes_1000_actors: state_bytes,
        idle_actor_bytes_bare: idle.map(|b| b.bare),
        idle_actor_bytes_managed: idle.map(|b| b.managed),
        tree_10k_start_ms: us(tree_10k_start) / 1000.0,
        tree_10k_snapshot_ms: us(percentile(&mut snapshots, 0.5)) / 1000.0,
        tree_10k_metrics_ms: us(percentile(&mut big_renders, 0.5)) / 1000.0,
        tree_10k_restart_p50_us: us(percentile(&mut big_restarts, 0.5)),
        bridge_hop_p50_us: us(hop.hop_p50),
        bridge_hop_p99_us: us(hop.hop_p99),
        bridge_msgs_per_s: hop.msgs_per_s,
        net_hop_p50_us: us(net_hop.hop_p50),
        net_hop_p99_us: us(net_hop.hop_p99),
        net_msgs_per_s: net_hop.msgs_per_s,
        process_restart_p50_us: placed.restart_p50_us,
        process_restart_p99_us: placed.restart_p99_us,
        busy_kill_ms: placed.busy_kill_ms,
        busy_kill_max_ms: placed.busy_kill_max_ms,
    })
}

/// Runs `scenario` on a multi-threaded runtime of its own (two workers, on a thread of
/// its own), whatever runtime awaits this: Zenoh needs one, and the robot runs on one.
pub async fn on_multi_thread<T, F, Fut>(name: &str, scenario: F) -> Result<T, BenchError>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, BenchError>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let figures = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(fail)
                .and_then(|rt| rt.block_on(scenario()));
            let _ = tx.send(figures);
        })
        .map_err(fail)?;
    rx.await
        .map_err(|_| fail(format!("the {name} thread ended without figures")))?
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

/// `nevil bench`: runs every scenario and prints the figures as a table, or as one
/// JSON object with `json`.
pub fn main(json: bool) -> ExitCode {
    // One thread: the steadiest figures, and what the scenarios assume.
    let report = match super::block_on("bench", run_all()) {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            eprintln!("nevil bench: {e}");
            return ExitCode::FAILURE;
        }
        Err(code) => return code,
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("nevil bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let value = serde_json::to_value(&report).unwrap_or_default();
        for (key, v) in value.as_object().into_iter().flatten() {
            println!("{key:32} {v}");
        }
    }
    ExitCode::SUCCESS
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
