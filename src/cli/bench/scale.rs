//! Scale: large trees of idle managed actors, and what one idle actor costs.
//!
//! - **[`LargeTree`]**: `n` idle workers, 100 to a supervisor: how long the tree takes to
//!   start, to snapshot and to render as `/metrics`, and how long one restart inside it
//!   takes (kill a worker → its replacement answers a call).
//! - **[`idle_actor_bytes`]**: the heap one idle actor holds, bare ractor against a managed
//!   worker in a tree, from the allocator's own count of bytes in use.

use std::time::{Duration, Instant};

use nevil_actors::{ChildSpec, Strategy, Tree};
use ractor::{Actor, ActorRef};
use tokio::sync::mpsc;

use super::{bench_flags, fail, ping, BenchError, Echo, EchoMsg};

/// Workers per supervisor in a [`LargeTree`].
pub const PER_SUPERVISOR: usize = 100;

/// A tree of idle [`Echo`] workers, [`PER_SUPERVISOR`] to a supervisor (`root/gG/wI`),
/// whose `/metrics` text is rendered as the endpoint renders it.
pub struct LargeTree {
    tree: Tree,
    announced: mpsc::UnboundedReceiver<ActorRef<EchoMsg>>,
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    telemetry: crate::services::telemetry::Telemetry,
    /// How long [`LargeTree::start`] took until every worker ran.
    pub started_in: Duration,
}

/// The children of a tree of `actors` [`Echo`] workers, [`PER_SUPERVISOR`] to a
/// supervisor, each announcing its incarnations on `announce`.
fn groups(actors: usize, announce: &mpsc::UnboundedSender<ActorRef<EchoMsg>>) -> Vec<ChildSpec> {
    let echo = Echo {
        announce: announce.clone(),
    };
    (0..actors.div_ceil(PER_SUPERVISOR))
        .map(|g| {
            let workers = (0..PER_SUPERVISOR.min(actors - g * PER_SUPERVISOR))
                .map(|i| ChildSpec::worker(format!("w{i}"), echo.clone(), ()))
                .collect();
            ChildSpec::supervisor(format!("g{g}"), bench_flags(Strategy::OneForOne), workers)
        })
        .collect()
}

impl LargeTree {
    /// Starts `actors` workers (the last supervisor takes the remainder) and waits
    /// until every one has run.
    ///
    /// # Errors
    ///
    /// [`BenchError`] if the tree does not start or a worker never runs.
    pub async fn start(actors: usize) -> Result<Self, BenchError> {
        let (announce, mut announced) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        let tree = Tree::start(
            "root",
            bench_flags(Strategy::OneForOne),
            groups(actors, &announce),
        )
        .await
        .map_err(fail)?;
        for _ in 0..actors {
            announced
                .recv()
                .await
                .ok_or_else(|| fail("a worker never ran"))?;
        }
        let started_in = t0.elapsed();
        let recorder = crate::services::telemetry::Telemetry::recorder().map_err(fail)?;
        let telemetry = crate::services::telemetry::Telemetry::from_handle(recorder.handle());
        Ok(Self {
            tree,
            announced,
            recorder,
            telemetry,
            started_in,
        })
    }

    /// Takes one snapshot of the whole tree: how long it took and how many nodes it holds.
    pub fn snapshot_once(&self) -> (Duration, usize) {
        let t0 = Instant::now();
        let snapshot = self.tree.snapshot();
        (t0.elapsed(), snapshot.root.walk().len())
    }

    /// Renders once, as a scrape does (snapshot, process figures, text): the time it
    /// took and the text's size in bytes.
    pub fn render_once(&self) -> (Duration, usize) {
        metrics::with_local_recorder(&self.recorder, || {
            let t0 = Instant::now();
            let text = self.telemetry.render(
                &self.tree.snapshot(),
                &crate::services::telemetry::ProcessStats::read(),
            );
            (t0.elapsed(), text.len())
        })
    }

    /// Builds the observer's `state` event once, as `/events` does each second for its
    /// open pages: the time it took and its size in bytes.
    pub fn observer_state_once(&self) -> (Duration, usize) {
        let endpoint = crate::ops::http::Endpoint {
            tree: self.tree.view(),
            telemetry: self.telemetry.clone(),
            estops: crate::robot::safety::EStopLatch::default(),
            analytics: crate::services::analytics::AnalyticsHandle::new(
                Default::default(),
                crate::core::clock::Clock::start(),
            ),
            generation: crate::config::reload::Generation::new(),
            timeline: crate::ops::observer::Timeline::default(),
            robot: crate::ops::observer::RobotSources {
                jitter: std::sync::Arc::default(),
                host: crate::services::monitor::HostStatus::default(),
                sim: None,
            },
            controls: None,
            fleet: crate::ops::fleet::peers::Peers::alone("bench"),
        };
        let t0 = Instant::now();
        let json = crate::ops::observer::state::state_json(&endpoint, 0);
        (t0.elapsed(), json.len())
    }

    /// Kills the worker at `path` (e.g. `root/g50/w50`) and returns the time until its
    /// replacement answered a call.
    ///
    /// # Errors
    ///
    /// [`BenchError`] if there is no such worker or no replacement answers.
    pub async fn restart_once(&mut self, path: &str) -> Result<Duration, BenchError> {
        let victim = self
            .tree
            .view()
            .mailbox::<EchoMsg>(path)
            .ok_or_else(|| fail(format!("no worker at {path}")))?;
        let t0 = Instant::now();
        victim.actor().kill();
        let replacement = self
            .announced
            .recv()
            .await
            .ok_or_else(|| fail("no replacement announced"))?;
        ping(&replacement).await?;
        Ok(t0.elapsed())
    }

    /// Stops the tree.
    pub async fn stop(self) {
        self.tree.shutdown().await;
    }
}

/// Heap bytes in use, by the allocator's own count (glibc's `mallinfo2`, every arena);
/// `None` where that count is not available.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_in_use() -> Option<usize> {
    // SAFETY: `mallinfo2` takes no arguments and only reads the allocator's statistics.
    #[allow(unsafe_code)]
    let info = unsafe { libc::mallinfo2() };
    Some(info.uordblks + info.hblkhd)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_in_use() -> Option<usize> {
    None
}

/// Bytes of heap per idle actor: (bare ractor, managed worker in a tree).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdleActorBytes {
    /// An actor spawned directly with ractor, its reference kept.
    pub bare: f64,
    /// A managed worker in a tree, 100 to a supervisor (the supervisors' share included).
    pub managed: f64,
}

/// Measures [`IdleActorBytes`] over `actors` actors of each kind (after a warm-up
/// round, so one-time allocations are not counted); `None` where the allocator cannot
/// tell its bytes in use.
///
/// # Errors
///
/// [`BenchError`] if an actor does not start.
pub async fn idle_actor_bytes(actors: usize) -> Result<Option<IdleActorBytes>, BenchError> {
    if heap_in_use().is_none() || actors == 0 {
        return Ok(None);
    }
    // Warm-up: the runtime, ractor and the tree allocate some things once.
    bare_bytes(actors.min(PER_SUPERVISOR)).await?;
    managed_bytes(actors.min(PER_SUPERVISOR)).await?;
    let bare = bare_bytes(actors).await?;
    let managed = managed_bytes(actors).await?;
    Ok(bare.zip(managed).map(|(bare, managed)| IdleActorBytes {
        bare: bare as f64 / actors as f64,
        managed: managed as f64 / actors as f64,
    }))
}

/// The heap `actors` idle bare ractor actors hold.
async fn bare_bytes(actors: usize) -> Result<Option<usize>, BenchError> {
    let (announce, mut announced) = mpsc::unbounded_channel();
    let echo = Echo { announce };
    let mut refs = Vec::with_capacity(actors);
    let before = heap_in_use();
    for _ in 0..actors {
        let (actor, _) = Actor::spawn(None, echo.clone(), ()).await.map_err(fail)?;
        refs.push(actor);
    }
    for _ in 0..actors {
        announced.recv().await;
    }
    let after = heap_in_use();
    for actor in &refs {
        actor.stop(None);
    }
    for actor in refs {
        let _ = actor.wait(None).await;
    }
    Ok(before.zip(after).map(|(b, a)| a.saturating_sub(b)))
}

/// The heap a tree of `actors` idle managed workers holds.
async fn managed_bytes(actors: usize) -> Result<Option<usize>, BenchError> {
    let (announce, mut announced) = mpsc::unbounded_channel();
    let children = groups(actors, &announce);
    drop(announce);
    let before = heap_in_use();
    let tree = Tree::start("root", bench_flags(Strategy::OneForOne), children)
        .await
        .map_err(fail)?;
    for _ in 0..actors {
        announced.recv().await;
    }
    let after = heap_in_use();
    tree.shutdown().await;
    Ok(before.zip(after).map(|(b, a)| a.saturating_sub(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_tree_snapshots_renders_and_restarts() {
        let mut tree = LargeTree::start(250).await.unwrap();
        // root, 3 supervisors, 250 workers.
        assert_eq!(tree.snapshot_once().1, 1 + 3 + 250);
        let (_, bytes) = tree.render_once();
        assert!(bytes > 0);
        tree.restart_once("root/g2/w49").await.unwrap();
        let snapshot = tree.tree.snapshot();
        let node = snapshot.root.find("root/g2/w49").unwrap();
        assert_eq!(node.restarts, 1);
        assert!(tree.restart_once("root/g9/w0").await.is_err());
        tree.stop().await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn metrics_scenario_renders_every_actor() {
        let small = LargeTree::start(150).await.unwrap();
        let (_, bytes_150) = small.render_once();
        let text = metrics::with_local_recorder(&small.recorder, || {
            small
                .telemetry
                .render(&small.tree.snapshot(), &Default::default())
        });
        assert!(text.contains("nevil_actor_messages_total{path=\"root/g1/w49\"}"));
        assert!(
            !text.contains("root/g1/w50"),
            "150 actors: g0 has 100, g1 50"
        );
        small.stop().await;
        let large = LargeTree::start(300).await.unwrap();
        let (_, bytes_300) = large.render_once();
        large.stop().await;
        let ratio = bytes_300 as f64 / bytes_150 as f64;
        assert!(
            (1.8..2.2).contains(&ratio),
            "size grows with the tree: {ratio}"
        );
    }
}
