//! OTP's calls on a running supervisor: `restart_child`, `which_children`,
//! `count_children`, and the `shutdown` exit reason they meet. Paused clock throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{
    Backoff, CallError, ChildCounts, ChildKind, ChildSpec, ExitReason, Incarnation, Restart,
    Status, SupervisorFlags, Tree, TreeEvent,
};
use support::{cell_of, incarnation, log, settle, tell, Log, Probe, ProbeMsg};

fn flags() -> SupervisorFlags {
    SupervisorFlags::default().intensity(10, Duration::from_secs(60))
}

/// Stops the child at `path` with the reason `shutdown` and waits until it is gone (its
/// supervisor has been told by then: the exit event precedes any later call).
async fn shut_down(tree: &Tree, path: &str) {
    cell_of(tree, path)
        .stop_and_wait(Some(ExitReason::SHUTDOWN.into()), None)
        .await
        .unwrap();
}

fn node(tree: &Tree, path: &str) -> nevil_actors::NodeSnapshot {
    tree.snapshot().root.find(path).cloned().unwrap()
}

/// `(name, incarnation kind, child kind)` of each child, in start order.
async fn listed(tree: &Tree) -> Vec<(String, &'static str, ChildKind)> {
    let children = tree.root().which_children().await.unwrap();
    children
        .into_iter()
        .map(|c| {
            let what = match c.incarnation {
                Incarnation::Live(_) => "live",
                Incarnation::Restarting => "restarting",
                Incarnation::Undefined => "undefined",
            };
            (c.name, what, c.kind)
        })
        .collect()
}

async fn transient(log: &Log, flags: SupervisorFlags) -> Tree {
    let children = vec![
        Probe::new("a", log).spec(),
        Probe::new("x", log).spec().restart(Restart::Transient),
    ];
    Tree::start("root", flags, children).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_transient_child_that_shuts_down_stays_down() {
    let (log, mut events) = log();
    let tree = transient(&log, flags()).await;
    events.take(2).await;
    let mut feed = tree.subscribe();
    shut_down(&tree, "root/x").await;
    assert_eq!(events.take(1).await, ["stop x#1"]);
    settle(&tree).await;
    assert!(events.drain().is_empty(), "not restarted");
    let x = node(&tree, "root/x");
    assert_eq!(x.status, Status::Stopped);
    assert_eq!(x.restarts, 0);
    assert_eq!(x.last_exit, Some(ExitReason::Shutdown));
    // The tree JSON names it `shutdown`.
    let json = serde_json::to_value(&x).unwrap();
    assert_eq!(json["last_exit"], "shutdown");
    match feed.try_recv().unwrap() {
        TreeEvent::ChildExited {
            path,
            reason,
            restart,
            ..
        } => {
            assert_eq!(path.as_str(), "root/x");
            assert_eq!(reason, ExitReason::Shutdown);
            assert!(!restart);
        }
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_permanent_child_that_shuts_down_is_restarted() {
    let (log, mut events) = log();
    let spec = Probe::new("p", &log).spec();
    let tree = Tree::start("root", flags(), vec![spec]).await.unwrap();
    events.take(1).await;
    shut_down(&tree, "root/p").await;
    assert_eq!(events.take(2).await, ["stop p#1", "start p#2"]);
    settle(&tree).await;
    let p = node(&tree, "root/p");
    assert_eq!((p.restarts, p.last_exit), (1, Some(ExitReason::Shutdown)));
}

#[tokio::test(start_paused = true)]
async fn the_supervisors_own_stops_still_record_normal() {
    // OTP would say `shutdown`; the tree JSON's `last_exit` of a child its supervisor
    // stopped (here a rest_for_one sibling) stays `normal`, as the contract has it.
    let (log, mut events) = log();
    let flags = SupervisorFlags::new(nevil_actors::Strategy::RestForOne)
        .intensity(10, Duration::from_secs(60));
    let children = vec![
        Probe::new("a", &log).spec(),
        Probe::new("b", &log).spec().restart(Restart::Temporary),
        Probe::new("c", &log).spec(),
    ];
    let tree = Tree::start("root", flags, children).await.unwrap();
    events.take(3).await;
    tell(&tree, "root/a", ProbeMsg::Fail);
    events.take(5).await; // a, c, b stopped; a, c started
    settle(&tree).await;
    assert_eq!(node(&tree, "root/c").last_exit, Some(ExitReason::Normal));
    assert!(tree.snapshot().root.find("root/b").is_none());
}

#[tokio::test(start_paused = true)]
async fn restart_child_brings_a_stopped_child_back() {
    let (log, mut events) = log();
    let tree = transient(&log, flags()).await;
    events.take(2).await;
    shut_down(&tree, "root/x").await;
    events.take(1).await;
    let mut feed = tree.subscribe();
    let cell = tree.root().restart_child("x").await.unwrap();
    assert_eq!(events.take(1).await, ["start x#2"]);
    assert_eq!(cell.get_id(), cell_of(&tree, "root/x").get_id());
    assert_eq!(incarnation(&tree, "root/x").await, 2);
    let x = node(&tree, "root/x");
    assert_eq!((x.status, x.restarts), (Status::Running, 1));
    match feed.try_recv().unwrap() {
        TreeEvent::ChildRestarted { path, restarts, .. } => {
            assert_eq!((path.as_str(), restarts), ("root/x", 1));
        }
        other => panic!("unexpected event {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn restart_child_refuses_running_unknown_and_temporary_children() {
    let (log, mut events) = log();
    let children = vec![
        Probe::new("a", &log).spec(),
        Probe::new("t", &log).spec().restart(Restart::Temporary),
    ];
    let tree = Tree::start("root", flags(), children).await.unwrap();
    events.take(2).await;
    let root = tree.root();
    assert_eq!(
        root.restart_child("a").await.unwrap_err(),
        CallError::Running("root/a".into())
    );
    assert!(matches!(
        root.restart_child("nope").await.unwrap_err(),
        CallError::NoSuchChild { name, .. } if name == "nope"
    ));
    // A temporary child is forgotten when it exits, so it cannot be restarted (as OTP).
    shut_down(&tree, "root/t").await;
    assert!(matches!(
        root.restart_child("t").await.unwrap_err(),
        CallError::NoSuchChild { name, .. } if name == "t"
    ));
    assert_eq!(events.take(1).await, ["stop t#1"]);
    settle(&tree).await;
    assert!(events.drain().is_empty(), "nothing was started");
}

#[tokio::test(start_paused = true)]
async fn restart_child_refuses_a_child_waiting_for_its_backoff() {
    let (log, mut events) = log();
    let flags = flags().backoff(Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(1),
        reset_after: Duration::from_secs(30),
    });
    let tree = transient(&log, flags).await;
    events.take(2).await;
    tell(&tree, "root/x", ProbeMsg::Panic);
    assert_eq!(events.take(1).await, ["stop x#1"]);
    settle(&tree).await;
    assert_eq!(
        tree.root().restart_child("x").await.unwrap_err(),
        CallError::Restarting("root/x".into())
    );
    assert_eq!(
        listed(&tree).await,
        [
            ("a".to_string(), "live", ChildKind::Worker),
            ("x".to_string(), "restarting", ChildKind::Worker),
        ]
    );
    // The scheduled restart still happens, once.
    assert_eq!(events.take(1).await, ["start x#2"]);
    settle(&tree).await;
    assert_eq!(node(&tree, "root/x").restarts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_restart_child_leaves_the_child_down() {
    let (log, mut events) = log();
    let tree = transient(&log, flags()).await;
    events.take(2).await;
    shut_down(&tree, "root/x").await;
    events.take(1).await;
    log.fail_starts("x", 1);
    let err = tree.root().restart_child("x").await.unwrap_err();
    match err {
        CallError::StartFailed { path, reason } => {
            assert_eq!(path.as_str(), "root/x");
            assert_eq!(
                reason,
                ExitReason::StartupFailure("x refuses to start".into())
            );
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(events.take(1).await, ["start x#2"]);
    settle(&tree).await;
    assert!(
        events.drain().is_empty(),
        "a failed restart_child is not retried"
    );
    assert_eq!(node(&tree, "root/x").status, Status::Stopped);
    assert_eq!(listed(&tree).await[1].1, "undefined");
    // It can be asked again.
    tree.root().restart_child("x").await.unwrap();
    assert_eq!(events.take(1).await, ["start x#3"]);
}

#[tokio::test(start_paused = true)]
async fn restart_child_does_not_count_against_the_intensity() {
    let (log, mut events) = log();
    // No restart allowed at all: a crash would escalate.
    let flags = SupervisorFlags::default().intensity(0, Duration::from_secs(60));
    let tree = transient(&log, flags).await;
    events.take(2).await;
    for n in 2..=4 {
        shut_down(&tree, "root/x").await;
        tree.root().restart_child("x").await.unwrap();
        assert_eq!(
            events.take(2).await,
            [format!("stop x#{}", n - 1), format!("start x#{n}")]
        );
    }
    assert_eq!(node(&tree, "root").status, Status::Running);
    assert_eq!(tree.shutdown().await, ExitReason::Normal);
}

#[tokio::test(start_paused = true)]
async fn which_children_lists_every_child_in_start_order() {
    let (log, mut events) = log();
    let inner = ChildSpec::supervisor("inner", flags(), vec![Probe::new("i", &log).spec()]);
    let children = vec![
        Probe::new("a", &log).spec(),
        inner,
        Probe::new("x", &log).spec().restart(Restart::Transient),
    ];
    let tree = Tree::start("root", flags(), children).await.unwrap();
    events.take(3).await;
    assert_eq!(
        listed(&tree).await,
        [
            ("a".to_string(), "live", ChildKind::Worker),
            ("inner".to_string(), "live", ChildKind::Supervisor),
            ("x".to_string(), "live", ChildKind::Worker),
        ]
    );
    let live = tree.root().which_children().await.unwrap();
    match &live[0].incarnation {
        Incarnation::Live(cell) => assert_eq!(cell.get_id(), cell_of(&tree, "root/a").get_id()),
        other => panic!("a is {other:?}"),
    }
    shut_down(&tree, "root/x").await;
    assert_eq!(listed(&tree).await[2].1, "undefined");
    // A nested supervisor answers for its own children.
    let inner = tree.supervisor("root/inner").unwrap();
    let names: Vec<_> = inner
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["i"]);
}

#[tokio::test(start_paused = true)]
async fn count_children_counts_specs_live_ones_and_kinds() {
    let (log, mut events) = log();
    let inner = ChildSpec::supervisor("inner", flags(), vec![Probe::new("i", &log).spec()]);
    let children = vec![
        Probe::new("a", &log).spec(),
        inner,
        Probe::new("x", &log).spec().restart(Restart::Transient),
    ];
    let tree = Tree::start("root", flags(), children).await.unwrap();
    events.take(3).await;
    let root = tree.root();
    let all = ChildCounts {
        specs: 3,
        active: 3,
        supervisors: 1,
        workers: 2,
    };
    assert_eq!(root.count_children().await.unwrap(), all);
    shut_down(&tree, "root/x").await;
    assert_eq!(
        root.count_children().await.unwrap(),
        ChildCounts { active: 2, ..all },
        "a stopped child keeps its spec"
    );
    root.stop_child("x").await.unwrap();
    assert_eq!(
        root.count_children().await.unwrap(),
        ChildCounts {
            specs: 2,
            active: 2,
            supervisors: 1,
            workers: 1
        }
    );
    let inner = tree.supervisor("root/inner").unwrap();
    assert_eq!(
        inner.count_children().await.unwrap(),
        ChildCounts {
            specs: 1,
            active: 1,
            supervisors: 0,
            workers: 1
        }
    );
}

#[tokio::test(start_paused = true)]
async fn calls_on_a_stopped_supervisor_say_unreachable() {
    let (log, mut events) = log();
    let tree = transient(&log, flags()).await;
    events.take(2).await;
    let root = tree.root();
    tree.shutdown().await;
    let unreachable = CallError::Unreachable("root".into());
    assert_eq!(root.restart_child("x").await.unwrap_err(), unreachable);
    assert_eq!(root.which_children().await.unwrap_err(), unreachable);
    assert_eq!(root.count_children().await.unwrap_err(), unreachable);
}
