//! Permanent, transient and temporary children after normal and abnormal exits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{ChildSpec, ExitReason, Restart, Status, SupervisorFlags, Tree};
use support::{cell_of, log, settle, tell, Log, Probe, ProbeMsg};

async fn single(restart: Restart, log: &Log) -> Tree {
    let flags = SupervisorFlags::default().intensity(10, Duration::from_secs(60));
    let spec = Probe::new("x", log).spec().restart(restart);
    Tree::start("root", flags, vec![spec]).await.unwrap()
}

fn x(tree: &Tree) -> Option<nevil_actors::NodeSnapshot> {
    tree.snapshot().root.find("root/x").cloned()
}

#[tokio::test(start_paused = true)]
async fn permanent_normal() {
    let (log, mut events) = log();
    let tree = single(Restart::Permanent, &log).await;
    events.take(1).await;
    tell(&tree, "root/x", ProbeMsg::Exit);
    assert_eq!(events.take(2).await, ["stop x#1", "start x#2"]);
    settle(&tree).await;
    let node = x(&tree).unwrap();
    assert_eq!(node.restarts, 1);
    assert_eq!(node.last_exit, Some(ExitReason::Normal));
}

#[tokio::test(start_paused = true)]
async fn permanent_abnormal() {
    let (log, mut events) = log();
    let tree = single(Restart::Permanent, &log).await;
    events.take(1).await;
    tell(&tree, "root/x", ProbeMsg::Fail);
    assert_eq!(events.take(2).await, ["stop x#1", "start x#2"]);
}

#[tokio::test(start_paused = true)]
async fn transient_normal() {
    let (log, mut events) = log();
    let tree = single(Restart::Transient, &log).await;
    events.take(1).await;
    tell(&tree, "root/x", ProbeMsg::Exit);
    assert_eq!(events.take(1).await, ["stop x#1"]);
    settle(&tree).await;
    assert!(
        events.drain().is_empty(),
        "a transient child is not restarted after a normal exit"
    );
    let node = x(&tree).unwrap();
    assert_eq!(node.status, Status::Stopped);
    assert_eq!(node.restarts, 0);
    assert_eq!(node.last_exit, Some(ExitReason::Normal));
}

#[tokio::test(start_paused = true)]
async fn transient_abnormal() {
    let (log, mut events) = log();
    let tree = single(Restart::Transient, &log).await;
    events.take(1).await;
    tell(&tree, "root/x", ProbeMsg::Panic);
    assert_eq!(events.take(2).await, ["stop x#1", "start x#2"]);
    settle(&tree).await;
    assert_eq!(x(&tree).unwrap().status, Status::Running);
}

/// ractor reports a kill as `ActorTerminated(.., "killed")`, not as a failure; it is still
/// abnormal (as in OTP), so a killed transient child restarts.
#[tokio::test(start_paused = true)]
async fn transient_killed() {
    let (log, mut events) = log();
    let tree = single(Restart::Transient, &log).await;
    events.take(1).await;
    cell_of(&tree, "root/x").kill();
    // A kill skips post_stop.
    assert_eq!(events.take(1).await, ["start x#2"]);
    settle(&tree).await;
    let node = x(&tree).unwrap();
    assert_eq!(node.last_exit, Some(ExitReason::Killed));
    assert_eq!(node.restarts, 1);
}

#[tokio::test(start_paused = true)]
async fn temporary_abnormal() {
    let (log, mut events) = log();
    let tree = single(Restart::Temporary, &log).await;
    events.take(1).await;
    tell(&tree, "root/x", ProbeMsg::Panic);
    assert_eq!(events.take(1).await, ["stop x#1"]);
    settle(&tree).await;
    assert!(events.drain().is_empty());
    assert!(
        x(&tree).is_none(),
        "a temporary child is removed when it exits"
    );
}

#[tokio::test(start_paused = true)]
async fn temporary_normal() {
    let (log, mut events) = log();
    let tree = single(Restart::Temporary, &log).await;
    events.take(1).await;
    tell(&tree, "root/x", ProbeMsg::Exit);
    assert_eq!(events.take(1).await, ["stop x#1"]);
    settle(&tree).await;
    assert!(x(&tree).is_none());
}

/// ractor's default `handle_supervisor_evt` stops a supervisor when a child exits
/// (ractor #107); ours keeps serving.
#[tokio::test(start_paused = true)]
async fn supervisor_survives_child_exit() {
    let (log, mut events) = log();
    let tree = single(Restart::Temporary, &log).await;
    events.take(1).await;
    tell(&tree, "root/x", ProbeMsg::Exit);
    events.take(1).await;
    let cell = tree
        .root()
        .start_child(ChildSpec::worker("y", Probe::new("y", &log), ()))
        .await
        .expect("the supervisor still takes requests");
    assert_eq!(events.take(1).await, ["start y#1"]);
    assert_eq!(cell.get_status(), ractor::ActorStatus::Running);
    assert_eq!(tree.snapshot().root.status, Status::Running);
}
