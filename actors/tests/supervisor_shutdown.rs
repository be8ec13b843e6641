//! Graceful shutdown and the restart path's ordering pitfalls other runtimes shipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{ChildSpec, ExitReason, Shutdown, Strategy, SupervisorFlags, Tree};
use ractor::ActorRef;
use support::{cell_of, log, settle, tell, Probe, ProbeMsg};
use tokio::time::Instant;

/// Stopping the root stops every actor in reverse start order, depth first, and every
/// `post_stop` runs (ractor alone would kill a stopping supervisor's children without it).
#[tokio::test(start_paused = true)]
async fn post_stop_runs_on_graceful_shutdown() {
    let (log, mut events) = log();
    let sub = ChildSpec::supervisor(
        "sub",
        SupervisorFlags::new(Strategy::RestForOne),
        vec![Probe::new("x", &log).spec(), Probe::new("y", &log).spec()],
    );
    let children = vec![
        Probe::new("a", &log).spec(),
        sub,
        Probe::new("b", &log).spec(),
    ];
    let tree = Tree::start("root", SupervisorFlags::default(), children)
        .await
        .unwrap();
    assert_eq!(
        events.take(4).await,
        ["start a#1", "start x#1", "start y#1", "start b#1"]
    );

    assert_eq!(tree.shutdown().await, ExitReason::Normal);
    assert_eq!(
        events.drain(),
        ["stop b#1", "stop y#1", "stop x#1", "stop a#1"]
    );
}

/// A child that outlives its shutdown timeout is killed; its siblings still stop in order.
#[tokio::test(start_paused = true)]
async fn shutdown_timeout_then_kill() {
    let (log, mut events) = log();
    let slow = Probe::new("slow", &log)
        .slow_stop(Duration::from_secs(60))
        .spec()
        .shutdown(Shutdown::Timeout(Duration::from_secs(2)));
    let children = vec![Probe::new("a", &log).spec(), slow];
    let tree = Tree::start("root", SupervisorFlags::default(), children)
        .await
        .unwrap();
    events.take(2).await;

    let t0 = Instant::now();
    tree.shutdown().await;
    let took = t0.elapsed();
    assert_eq!(events.drain(), ["stopping slow#1", "stop a#1"]);
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(60),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn brutal_kill_skips_post_stop() {
    let (log, mut events) = log();
    let children = vec![
        Probe::new("a", &log).spec(),
        Probe::new("k", &log).spec().shutdown(Shutdown::BrutalKill),
    ];
    let tree = Tree::start("root", SupervisorFlags::default(), children)
        .await
        .unwrap();
    events.take(2).await;
    tree.shutdown().await;
    assert_eq!(events.drain(), ["stop a#1"]);
}

/// kameo #387: a restarted child's `pre_start` must not overlap the `post_stop` of the
/// incarnation it replaces, even when that cleanup takes a while.
#[tokio::test(start_paused = true)]
async fn restart_waits_for_previous_post_stop() {
    let (log, mut events) = log();
    let spec = Probe::new("m", &log)
        .slow_stop(Duration::from_millis(500))
        .spec();
    let tree = Tree::start("root", SupervisorFlags::default(), vec![spec])
        .await
        .unwrap();
    events.take(1).await;
    tell(&tree, "root/m", ProbeMsg::Panic);
    assert_eq!(
        events.take(3).await,
        ["stopping m#1", "stop m#1", "start m#2"]
    );
}

/// kameo #345/#363: messages queued for a child when it crashes die with its mailbox;
/// they are not handed to the next incarnation, and a send to the dead incarnation
/// fails and returns the message to the sender instead of losing it silently.
#[tokio::test(start_paused = true)]
async fn messages_queued_for_a_crashed_child_are_dropped() {
    let (log, mut events) = log();
    let tree = Tree::start(
        "root",
        SupervisorFlags::default(),
        vec![Probe::new("q", &log).spec()],
    )
    .await
    .unwrap();
    events.take(1).await;

    let old: ActorRef<ProbeMsg> = cell_of(&tree, "root/q").into();
    old.cast(ProbeMsg::Fail).unwrap();
    old.cast(ProbeMsg::Record(1)).unwrap();
    old.cast(ProbeMsg::Record(2)).unwrap();
    assert_eq!(events.take(2).await, ["stop q#1", "start q#2"]);
    settle(&tree).await;

    match old.cast(ProbeMsg::Record(3)) {
        Err(ractor::MessagingErr::SendErr(ProbeMsg::Record(3))) => {}
        Err(other) => panic!("expected the message back, got {other:?}"),
        Ok(()) => panic!("a dead incarnation accepted a message"),
    }
    tell(&tree, "root/q", ProbeMsg::Record(4));
    assert_eq!(
        events.take(1).await,
        ["got q#2 4"],
        "1 and 2 were not redelivered"
    );
}

/// A supervisor stopped while a child hangs in a handler kills it after its timeout.
#[tokio::test(start_paused = true)]
async fn hanging_child_is_killed_on_shutdown() {
    let (log, mut events) = log();
    let spec = Probe::new("h", &log)
        .spec()
        .shutdown(Shutdown::Timeout(Duration::from_secs(1)));
    let tree = Tree::start("root", SupervisorFlags::default(), vec![spec])
        .await
        .unwrap();
    events.take(1).await;
    tell(&tree, "root/h", ProbeMsg::Hang);
    support::idle().await; // h is now inside its hanging handler
    assert_eq!(tree.shutdown().await, ExitReason::Normal);
    assert!(
        events.drain().is_empty(),
        "the hung child was killed, not stopped"
    );
}
