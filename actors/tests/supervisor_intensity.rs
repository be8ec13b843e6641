//! Restart intensity: beyond `max_restarts` in `period` a supervisor stops its children in
//! reverse start order and fails to its parent; the root's failure ends `Tree::wait`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{ChildSpec, ExitReason, Strategy, SupervisorFlags, Tree};
use support::{log, settle, settle_at, tell, Probe, ProbeMsg};

#[tokio::test(start_paused = true)]
async fn one_for_one_escalation() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::new(Strategy::OneForOne).intensity(2, Duration::from_secs(10));
    let children = ["a", "b", "c"].map(|n| Probe::new(n, &log).spec()).to_vec();
    let tree = Tree::start("root", flags, children).await.unwrap();
    events.take(3).await;

    for n in 1..=2 {
        tell(&tree, "root/b", ProbeMsg::Panic);
        assert_eq!(
            events.take(2).await,
            [format!("stop b#{n}"), format!("start b#{}", n + 1)]
        );
    }
    tell(&tree, "root/b", ProbeMsg::Panic);
    // The third restart within 10 s is one too many: the remaining children stop, last
    // started first, and the supervisor gives up.
    assert_eq!(events.take(3).await, ["stop b#3", "stop c#1", "stop a#1"]);
    match tree.wait().await {
        ExitReason::Error(e) => {
            assert!(e.contains("restart intensity exceeded"), "{e}");
            assert!(e.contains("root/b: panic: b was told to panic"), "{e}");
        }
        other => panic!("expected an escalation, got {other}"),
    }
    assert!(
        events.drain().is_empty(),
        "nothing restarts after escalation"
    );
}

#[tokio::test(start_paused = true)]
async fn restarts_outside_the_period_are_forgotten() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::new(Strategy::OneForOne).intensity(2, Duration::from_secs(10));
    let tree = Tree::start("root", flags, vec![Probe::new("a", &log).spec()])
        .await
        .unwrap();
    events.take(1).await;

    tell(&tree, "root/a", ProbeMsg::Fail);
    events.take(2).await;
    tokio::time::advance(Duration::from_secs(11)).await;
    for _ in 0..2 {
        tell(&tree, "root/a", ProbeMsg::Fail);
        events.take(2).await;
    }
    settle(&tree).await;
    assert_eq!(tree.snapshot().root.children[0].restarts, 3);
    tell(&tree, "root/a", ProbeMsg::Fail);
    events.take(1).await;
    assert!(matches!(tree.wait().await, ExitReason::Error(_)));
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_escalation() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::new(Strategy::RestForOne).intensity(1, Duration::from_secs(5));
    let children = ["a", "b", "c"].map(|n| Probe::new(n, &log).spec()).to_vec();
    let tree = Tree::start("root", flags, children).await.unwrap();
    events.take(3).await;

    tell(&tree, "root/a", ProbeMsg::Panic);
    events.take(6).await;
    tell(&tree, "root/b", ProbeMsg::Panic);
    assert_eq!(events.take(3).await, ["stop b#2", "stop c#2", "stop a#2"]);
    assert!(matches!(tree.wait().await, ExitReason::Error(_)));
}

/// A nested supervisor that gives up is a crashed child of its parent, which restarts
/// the whole subtree (within its own intensity).
#[tokio::test(start_paused = true)]
async fn nested_escalation_restarts_the_subtree() {
    let (log, mut events) = log();
    let sub = ChildSpec::supervisor(
        "sub",
        SupervisorFlags::new(Strategy::OneForOne).intensity(1, Duration::from_secs(5)),
        vec![Probe::new("x", &log).spec(), Probe::new("y", &log).spec()],
    );
    let root_flags = SupervisorFlags::default().intensity(5, Duration::from_secs(5));
    let tree = Tree::start("root", root_flags, vec![Probe::new("a", &log).spec(), sub])
        .await
        .unwrap();
    assert_eq!(
        events.take(3).await,
        ["start a#1", "start x#1", "start y#1"]
    );

    tell(&tree, "root/sub/x", ProbeMsg::Panic);
    events.take(2).await;
    tell(&tree, "root/sub/x", ProbeMsg::Panic);
    assert_eq!(
        events.take(4).await,
        ["stop x#2", "stop y#1", "start x#3", "start y#2"]
    );
    settle(&tree).await;
    settle_at(&tree, "root/sub").await;
    assert!(events.drain().is_empty(), "a is untouched");
    let snap = tree.snapshot();
    let sub = snap.root.find("root/sub").unwrap();
    assert_eq!(sub.restarts, 1);
    let exit = sub.last_exit.as_ref().unwrap().to_string();
    assert!(
        exit.starts_with("error: root/sub: restart intensity exceeded"),
        "{exit}"
    );
    assert_eq!(sub.children.len(), 2);
    assert_eq!(snap.root.status, nevil_actors::Status::Running);
}

#[tokio::test(start_paused = true)]
async fn zero_intensity_escalates_at_first_exit() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::default().intensity(0, Duration::from_secs(5));
    let tree = Tree::start("root", flags, vec![Probe::new("a", &log).spec()])
        .await
        .unwrap();
    events.take(1).await;
    tell(&tree, "root/a", ProbeMsg::Fail);
    assert!(matches!(tree.wait().await, ExitReason::Error(_)));
}
