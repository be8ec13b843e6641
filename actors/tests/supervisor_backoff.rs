//! Restart backoff on the paused tokio clock: exponential, jittered 0.8–1.2, reset after
//! a healthy run. Time here is virtual, so the delays are exact, not wall-clock guesses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{Backoff, Status, Strategy, SupervisorFlags, Tree};
use support::{log, settle, tell, Events, Log, Probe, ProbeMsg};
use tokio::time::Instant;

fn flags() -> SupervisorFlags {
    SupervisorFlags::new(Strategy::RestForOne)
        .intensity(100, Duration::from_secs(60))
        .backoff(Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            reset_after: Duration::from_secs(30),
        })
        .seed(42)
}

async fn tree(log: &Log) -> Tree {
    let children = ["a", "b"].map(|n| Probe::new(n, log).spec()).to_vec();
    Tree::start("root", flags(), children).await.unwrap()
}

/// Crashes `a` and returns the virtual time from its exit to its restart.
async fn crash_and_time(tree: &Tree, events: &mut Events) -> Duration {
    tell(tree, "root/a", ProbeMsg::Panic);
    let stopped = events.take(2).await; // a's cleanup, then b stopped at once
    assert!(stopped[0].starts_with("stop a#") && stopped[1].starts_with("stop b#"));
    let t0 = Instant::now();
    let started = events.take(2).await;
    assert!(started[0].starts_with("start a#") && started[1].starts_with("start b#"));
    t0.elapsed()
}

fn within(d: Duration, nominal_ms: f64) -> bool {
    let ms = d.as_secs_f64() * 1000.0;
    ms >= nominal_ms * 0.8 - 0.001 && ms <= nominal_ms * 1.2 + 0.001
}

#[tokio::test(start_paused = true)]
async fn delays_grow_exponentially_with_jitter_and_cap() {
    let (log, mut events) = log();
    let tree = tree(&log).await;
    events.take(2).await;

    let mut delays = Vec::new();
    for _ in 0..6 {
        delays.push(crash_and_time(&tree, &mut events).await);
    }
    for (n, d) in delays.iter().enumerate() {
        let nominal = (100.0 * 2f64.powi(n as i32)).min(1000.0);
        assert!(
            within(*d, nominal),
            "restart {n}: {d:?} vs nominal {nominal} ms"
        );
    }
    assert!(delays[3] > delays[0], "{delays:?}");
}

#[tokio::test(start_paused = true)]
async fn restarting_children_show_in_the_tree_and_nothing_starts_early() {
    let (log, mut events) = log();
    let tree = tree(&log).await;
    events.take(2).await;

    tell(&tree, "root/a", ProbeMsg::Panic);
    events.take(2).await;
    settle(&tree).await;
    let statuses: Vec<_> = tree
        .snapshot()
        .root
        .children
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [Status::Restarting, Status::Restarting]);
    // 79 ms is below the shortest possible first delay (0.8 × 100 ms).
    tokio::time::sleep(Duration::from_millis(79)).await;
    assert!(events.drain().is_empty());
    // The supervisor keeps serving requests while the restart is pending.
    assert!(tree.root().child("a").await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn backoff_resets_after_a_healthy_run() {
    let (log, mut events) = log();
    let tree = tree(&log).await;
    events.take(2).await;
    for _ in 0..3 {
        crash_and_time(&tree, &mut events).await;
    }
    tokio::time::sleep(Duration::from_secs(31)).await;
    let d = crash_and_time(&tree, &mut events).await;
    assert!(within(d, 100.0), "{d:?}");
}
