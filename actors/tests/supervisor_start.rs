//! Ordered start, startup failures, dynamic children and scoped names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{CallError, ExitReason, SpecError, StartError, SupervisorFlags, Tree};
use support::{incarnation, log, settle, tell, Probe, ProbeMsg};

/// The second of three children fails to start twice: each failure counts as a crash and
/// is retried, and the third child starts only once the second is up.
#[tokio::test(start_paused = true)]
async fn startup_failure_of_second_child_is_retried() {
    let (log, mut events) = log();
    log.fail_starts("b", 2);
    let flags = SupervisorFlags::default().intensity(3, Duration::from_secs(5));
    let children = ["a", "b", "c"].map(|n| Probe::new(n, &log).spec()).to_vec();
    let tree = Tree::start("root", flags, children).await.unwrap();
    assert_eq!(
        events.drain(),
        [
            "start a#1",
            "start b#1",
            "start b#2",
            "start b#3",
            "start c#1"
        ]
    );
    let snap = tree.snapshot();
    let b = snap.root.find("b").unwrap();
    assert_eq!(b.restarts, 2);
    assert_eq!(
        b.last_exit,
        Some(ExitReason::StartupFailure("b refuses to start".into()))
    );
}

/// When the second child keeps failing to start, the supervisor gives up: the first child
/// is stopped again, the third is never started, and the tree's start fails.
#[tokio::test(start_paused = true)]
async fn startup_failure_beyond_intensity_fails_the_tree() {
    let (log, mut events) = log();
    log.fail_starts("b", u32::MAX);
    let flags = SupervisorFlags::default().intensity(2, Duration::from_secs(5));
    let children = ["a", "b", "c"].map(|n| Probe::new(n, &log).spec()).to_vec();
    let err = Tree::start("root", flags, children).await.err().unwrap();
    match &err {
        StartError::Escalated(e) => {
            assert_eq!(e.path.as_str(), "root");
            assert!(e.cause.contains("root/b: startup failure"), "{e}");
        }
        other => panic!("expected escalation, got {other}"),
    }
    assert_eq!(
        events.drain(),
        [
            "start a#1",
            "start b#1",
            "start b#2",
            "start b#3",
            "stop a#1"
        ]
    );
}

/// A child that fails to start during a restart is a crash too: retried, counted.
#[tokio::test(start_paused = true)]
async fn startup_failure_during_restart_is_retried() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::new(nevil_actors::Strategy::RestForOne)
        .intensity(5, Duration::from_secs(5));
    let children = ["a", "b"].map(|n| Probe::new(n, &log).spec()).to_vec();
    let tree = Tree::start("root", flags, children).await.unwrap();
    events.take(2).await;
    log.fail_starts("a", 1);
    tell(&tree, "root/a", ProbeMsg::Panic);
    assert_eq!(
        events.take(5).await,
        [
            "stop a#1",
            "stop b#1",
            "start a#2",
            "start a#3",
            "start b#2"
        ]
    );
    settle(&tree).await;
    let snap = tree.snapshot();
    assert_eq!(snap.root.find("a").unwrap().restarts, 2);
    assert_eq!(snap.root.find("b").unwrap().restarts, 1);
}

#[tokio::test(start_paused = true)]
async fn dynamic_children() {
    let (log, mut events) = log();
    let tree = Tree::start(
        "root",
        SupervisorFlags::default(),
        vec![Probe::new("a", &log).spec()],
    )
    .await
    .unwrap();
    events.take(1).await;
    let root = tree.root();

    root.start_child(Probe::new("d", &log).spec())
        .await
        .unwrap();
    assert_eq!(events.take(1).await, ["start d#1"]);
    let names: Vec<_> = tree
        .snapshot()
        .root
        .children
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["a", "d"]);

    let dup = root.start_child(Probe::new("d", &log).spec()).await;
    assert!(matches!(
        dup,
        Err(StartError::Spec(SpecError::DuplicateChild { .. }))
    ));
    let bad = root.start_child(Probe::new("x/y", &log).spec()).await;
    assert!(matches!(
        bad,
        Err(StartError::Spec(SpecError::InvalidName { .. }))
    ));

    // A dynamic child is supervised like any other.
    tell(&tree, "root/d", ProbeMsg::Panic);
    assert_eq!(events.take(2).await, ["stop d#1", "start d#2"]);

    root.stop_child("d").await.unwrap();
    assert_eq!(events.take(1).await, ["stop d#2"]);
    assert_eq!(tree.snapshot().root.children.len(), 1);
    assert_eq!(
        root.stop_child("d").await,
        Err(CallError::NoSuchChild {
            supervisor: tree.snapshot().root.path.clone(),
            name: "d".into()
        })
    );

    log.fail_starts("f", 1);
    let failed = root.start_child(Probe::new("f", &log).spec()).await;
    assert!(matches!(
        failed,
        Err(StartError::Child {
            reason: ExitReason::StartupFailure(_),
            ..
        })
    ));
    assert_eq!(
        tree.snapshot().root.children.len(),
        1,
        "a failed dynamic child is not kept"
    );
}

/// Names are scoped to their supervisor: two copies of one tree run side by side.
#[tokio::test(start_paused = true)]
async fn two_trees_with_the_same_names() {
    let (log1, mut events1) = log();
    let (log2, mut events2) = log();
    let flags = SupervisorFlags::default().intensity(5, Duration::from_secs(5));
    let spec = |log| ["a", "b"].map(|n| Probe::new(n, log).spec()).to_vec();
    let one = Tree::start("root", flags, spec(&log1)).await.unwrap();
    let two = Tree::start("root", flags, spec(&log2)).await.unwrap();
    events1.take(2).await;
    events2.take(2).await;

    tell(&one, "root/b", ProbeMsg::Panic);
    assert_eq!(events1.take(2).await, ["stop b#1", "start b#2"]);
    settle(&one).await;
    settle(&two).await;
    assert!(events2.drain().is_empty());
    assert_eq!(incarnation(&two, "root/b").await, 1);
    assert_eq!(incarnation(&one, "root/b").await, 2);
    assert_eq!(two.snapshot().root.find("b").unwrap().restarts, 0);
}

/// A bulkhead: a child on its own runtime runs its handlers on that runtime's threads,
/// and is supervised as usual (a crash there is restarted from here).
#[test]
fn bulkhead_runs_a_child_on_its_own_runtime() {
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("main-rt")
        .enable_all()
        .build()
        .unwrap();
    let bulkhead = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bulkhead-rt")
        .enable_all()
        .build()
        .unwrap();
    let handle = bulkhead.handle().clone();
    main.block_on(async move {
        let (log, mut events) = log();
        let children = vec![
            Probe::new("near", &log).spec(),
            Probe::new("far", &log).spec().on_runtime(handle),
        ];
        let tree = Tree::start("root", SupervisorFlags::default(), children)
            .await
            .unwrap();
        events.take(2).await;
        let thread = |path: &'static str| {
            let cell = tree
                .actor(path)
                .unwrap_or_else(|| panic!("no {path}:\n{}", tree.snapshot().root));
            async move {
                ractor::call!(ractor::ActorRef::<ProbeMsg>::from(cell), ProbeMsg::Thread).unwrap()
            }
        };
        assert_eq!(thread("root/near").await, "main-rt");
        assert_eq!(thread("root/far").await, "bulkhead-rt");
        tell(&tree, "root/far", ProbeMsg::Panic);
        assert_eq!(events.take(2).await, ["stop far#1", "start far#2"]);
        // "start far#2" comes from its pre_start; the supervisor records the new
        // incarnation just after: wait until it has handled everything so far.
        settle(&tree).await;
        assert_eq!(
            thread("root/far").await,
            "bulkhead-rt",
            "restarted on its bulkhead"
        );
        tree.shutdown().await;
    });
    bulkhead.shutdown_background();
}
