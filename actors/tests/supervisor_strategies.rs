//! Which siblings restart with a crashed child, and in what order, per strategy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{Strategy, SupervisorFlags, Tree};
use support::{incarnation, log, settle, tell, Log, Probe, ProbeMsg};

async fn abc(strategy: Strategy, log: &Log) -> Tree {
    let flags = SupervisorFlags::new(strategy).intensity(10, Duration::from_secs(60));
    let children = ["a", "b", "c"].map(|n| Probe::new(n, log).spec()).to_vec();
    Tree::start("root", flags, children).await.unwrap()
}

fn restarts(tree: &Tree) -> Vec<u64> {
    tree.snapshot()
        .root
        .children
        .iter()
        .map(|c| c.restarts)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_only_the_failed_child() {
    let (log, mut events) = log();
    let tree = abc(Strategy::OneForOne, &log).await;
    assert_eq!(
        events.take(3).await,
        ["start a#1", "start b#1", "start c#1"]
    );

    tell(&tree, "root/b", ProbeMsg::Panic);
    assert_eq!(events.take(2).await, ["stop b#1", "start b#2"]);
    settle(&tree).await;
    assert!(events.drain().is_empty());
    assert_eq!(restarts(&tree), [0, 1, 0]);
    assert_eq!(incarnation(&tree, "root/a").await, 1);
    assert_eq!(incarnation(&tree, "root/b").await, 2);
    assert_eq!(incarnation(&tree, "root/c").await, 1);
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_the_child_and_later_siblings() {
    let (log, mut events) = log();
    let tree = abc(Strategy::RestForOne, &log).await;
    events.take(3).await;

    tell(&tree, "root/b", ProbeMsg::Panic);
    // b cleans up as it crashes; then c (started after b) is stopped, and both come back
    // in start order. a, started before b, is untouched.
    assert_eq!(
        events.take(4).await,
        ["stop b#1", "stop c#1", "start b#2", "start c#2"]
    );
    settle(&tree).await;
    assert!(events.drain().is_empty());
    assert_eq!(restarts(&tree), [0, 1, 1]);
    assert_eq!(incarnation(&tree, "root/a").await, 1);
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_first_child_restarts_all_in_order() {
    let (log, mut events) = log();
    let tree = abc(Strategy::RestForOne, &log).await;
    events.take(3).await;

    tell(&tree, "root/a", ProbeMsg::Fail);
    assert_eq!(
        events.take(6).await,
        [
            "stop a#1",
            "stop c#1",
            "stop b#1",
            "start a#2",
            "start b#2",
            "start c#2"
        ]
    );
    settle(&tree).await;
    assert_eq!(restarts(&tree), [1, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_last_child_restarts_alone() {
    let (log, mut events) = log();
    let tree = abc(Strategy::RestForOne, &log).await;
    events.take(3).await;

    tell(&tree, "root/c", ProbeMsg::Panic);
    assert_eq!(events.take(2).await, ["stop c#1", "start c#2"]);
    settle(&tree).await;
    assert!(events.drain().is_empty());
    assert_eq!(restarts(&tree), [0, 0, 1]);
}

#[tokio::test(start_paused = true)]
async fn one_for_all_restarts_every_child() {
    let (log, mut events) = log();
    let tree = abc(Strategy::OneForAll, &log).await;
    events.take(3).await;

    tell(&tree, "root/b", ProbeMsg::Panic);
    // The others stop last-started first, then all start in order.
    assert_eq!(
        events.take(6).await,
        [
            "stop b#1",
            "stop c#1",
            "stop a#1",
            "start a#2",
            "start b#2",
            "start c#2"
        ]
    );
    settle(&tree).await;
    assert!(events.drain().is_empty());
    assert_eq!(restarts(&tree), [1, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_does_not_restart_temporary_siblings() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::new(Strategy::RestForOne).intensity(10, Duration::from_secs(60));
    let children = vec![
        Probe::new("a", &log).spec(),
        Probe::new("t", &log)
            .spec()
            .restart(nevil_actors::Restart::Temporary),
        Probe::new("c", &log).spec(),
    ];
    let tree = Tree::start("root", flags, children).await.unwrap();
    events.take(3).await;

    tell(&tree, "root/a", ProbeMsg::Panic);
    assert_eq!(
        events.take(5).await,
        ["stop a#1", "stop c#1", "stop t#1", "start a#2", "start c#2"]
    );
    settle(&tree).await;
    let names: Vec<_> = tree
        .snapshot()
        .root
        .children
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["a", "c"], "the temporary sibling is gone");
}
