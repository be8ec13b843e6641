//! Exit reasons as recorded per child: normal, error, panic, killed, startup failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{ExitReason, Restart, SupervisorFlags, Tree};
use support::{cell_of, log, settle, tell, Probe, ProbeMsg};

fn last_exit(tree: &Tree, path: &str) -> Option<ExitReason> {
    tree.snapshot().root.find(path).unwrap().last_exit.clone()
}

/// ractor turns a panic into the same string error as a returned `Err`; the supervisor
/// still tells them apart. This test is also run in the release profile by `.ci/run`, so a
/// profile that sets `panic = "abort"` (ractor #214) cannot slip in unnoticed.
#[tokio::test(start_paused = true)]
async fn panic_and_error_are_distinguished() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::default().intensity(10, Duration::from_secs(5));
    let children = vec![Probe::new("p", &log).spec(), Probe::new("e", &log).spec()];
    let tree = Tree::start("root", flags, children).await.unwrap();
    events.take(2).await;

    tell(&tree, "root/p", ProbeMsg::Panic);
    events.take(2).await;
    tell(&tree, "root/e", ProbeMsg::Fail);
    events.take(2).await;
    settle(&tree).await;
    assert_eq!(
        last_exit(&tree, "root/p"),
        Some(ExitReason::Panic("p was told to panic".into()))
    );
    assert_eq!(
        last_exit(&tree, "root/e"),
        Some(ExitReason::Error("e was told to fail".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn killed_and_normal() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::default().intensity(10, Duration::from_secs(5));
    let children = vec![
        Probe::new("k", &log).spec(),
        Probe::new("n", &log).spec().restart(Restart::Transient),
    ];
    let tree = Tree::start("root", flags, children).await.unwrap();
    events.take(2).await;
    cell_of(&tree, "root/k").kill();
    events.take(1).await;
    tell(&tree, "root/n", ProbeMsg::Exit);
    events.take(1).await;
    settle(&tree).await;
    assert_eq!(last_exit(&tree, "root/k"), Some(ExitReason::Killed));
    assert_eq!(last_exit(&tree, "root/n"), Some(ExitReason::Normal));
    let json = serde_json::to_value(tree.snapshot()).unwrap();
    assert_eq!(json["root"]["children"][0]["last_exit"], "killed");
}

#[tokio::test(start_paused = true)]
async fn siblings_stopped_by_the_strategy_record_it() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::new(nevil_actors::Strategy::OneForAll);
    let children = vec![Probe::new("a", &log).spec(), Probe::new("b", &log).spec()];
    let tree = Tree::start("root", flags, children).await.unwrap();
    events.take(2).await;
    tell(&tree, "root/b", ProbeMsg::Panic);
    events.take(4).await;
    settle(&tree).await;
    assert_eq!(last_exit(&tree, "root/a"), Some(ExitReason::Normal));
    assert!(matches!(
        last_exit(&tree, "root/b"),
        Some(ExitReason::Panic(_))
    ));
}
