//! The tree's event feed: each exit is one `ChildExited` carrying the decision, each new
//! incarnation one `ChildRestarted`, quota actions and escalations are published, nested
//! supervisors publish on the same feed, and a lagging subscriber loses the oldest events
//! (and learns how many) without holding a supervisor up. Paused clock throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::quota::{Action, HardAction, Limits, QuotaGroup, Resource};
use nevil_actors::{
    Backoff, ChildSpec, CountingAlloc, EventFeed, ExitReason, Restart, Strategy, SupervisorFlags,
    Tree, TreeContext, TreeEvent,
};
use support::{incarnation, log, settle, tell, Probe, ProbeMsg};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn flags(strategy: Strategy) -> SupervisorFlags {
    SupervisorFlags::new(strategy).intensity(100, Duration::from_secs(10))
}

/// The next event; fails the test if none comes within a minute of virtual time.
async fn next(rx: &mut Receiver<TreeEvent>) -> TreeEvent {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("no tree event within 60 s")
        .expect("feed open, subscriber not lagging")
}

/// An event as `(variant, path, detail)`, for exact assertions without timestamps.
fn brief(e: &TreeEvent) -> (&'static str, String, String) {
    match e {
        TreeEvent::ChildExited {
            path,
            reason,
            restart,
            ..
        } => (
            "exited",
            path.to_string(),
            format!("{reason}; restart={restart}"),
        ),
        TreeEvent::ChildRestarted { path, restarts, .. } => {
            ("restarted", path.to_string(), restarts.to_string())
        }
        TreeEvent::QuotaEnforced {
            path,
            resource,
            action,
            ..
        } => ("quota", path.to_string(), format!("{resource} {action}")),
        TreeEvent::Escalated {
            path,
            child,
            reason,
            ..
        } => ("escalated", path.to_string(), format!("{child}: {reason}")),
    }
}

fn ev(kind: &'static str, path: &str, detail: &str) -> (&'static str, String, String) {
    (kind, path.to_string(), detail.to_string())
}

#[tokio::test(start_paused = true)]
async fn crash_publishes_exit_then_restart() {
    let (log, mut probes) = log();
    let children = ["a", "b"].map(|n| Probe::new(n, &log).spec()).to_vec();
    let tree = Tree::start("root", flags(Strategy::OneForOne), children)
        .await
        .unwrap();
    let mut rx = tree.subscribe();
    probes.take(2).await;

    tell(&tree, "root/b", ProbeMsg::Panic);
    let exited = next(&mut rx).await;
    match &exited {
        TreeEvent::ChildExited {
            path,
            reason: ExitReason::Panic(msg),
            restart: true,
            delay: None,
            ..
        } => {
            assert_eq!(path.as_str(), "root/b");
            assert_eq!(msg, "b was told to panic");
        }
        other => panic!("expected b's exit, got {other:?}"),
    }
    let restarted = next(&mut rx).await;
    assert_eq!(brief(&restarted), ev("restarted", "root/b", "1"));
    assert!(restarted.at() >= exited.at());
    settle(&tree).await;
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
}

/// rest_for_one: one exit event for the child that failed, one restart event for it and
/// for each later sibling; the siblings the supervisor stopped publish no exit.
#[tokio::test(start_paused = true)]
async fn rest_for_one_publishes_one_exit_and_each_restart() {
    let (log, mut probes) = log();
    let children = ["a", "b", "c"].map(|n| Probe::new(n, &log).spec()).to_vec();
    let tree = Tree::start("root", flags(Strategy::RestForOne), children)
        .await
        .unwrap();
    let mut rx = tree.subscribe();
    probes.take(3).await;

    tell(&tree, "root/b", ProbeMsg::Fail);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(brief(&next(&mut rx).await));
    }
    assert_eq!(
        got,
        [
            ev(
                "exited",
                "root/b",
                "error: b was told to fail; restart=true"
            ),
            ev("restarted", "root/b", "1"),
            ev("restarted", "root/c", "1"),
        ]
    );
    settle(&tree).await;
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[tokio::test(start_paused = true)]
async fn temporary_exit_is_published_without_restart() {
    let (log, mut probes) = log();
    let spec = Probe::new("t", &log).spec().restart(Restart::Temporary);
    let tree = Tree::start("root", flags(Strategy::OneForOne), vec![spec])
        .await
        .unwrap();
    let mut rx = tree.subscribe();
    probes.take(1).await;

    tell(&tree, "root/t", ProbeMsg::Panic);
    assert_eq!(
        brief(&next(&mut rx).await),
        ev(
            "exited",
            "root/t",
            "panic: t was told to panic; restart=false"
        )
    );
    settle(&tree).await;
    assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[tokio::test(start_paused = true)]
async fn escalation_is_published_after_the_exit_it_follows() {
    let (log, mut probes) = log();
    let flags = SupervisorFlags::new(Strategy::OneForOne).intensity(1, Duration::from_secs(10));
    let tree = Tree::start("root", flags, vec![Probe::new("a", &log).spec()])
        .await
        .unwrap();
    let mut rx = tree.subscribe();
    probes.take(1).await;

    tell(&tree, "root/a", ProbeMsg::Panic);
    probes.take(2).await;
    tell(&tree, "root/a", ProbeMsg::Fail);
    assert!(matches!(tree.wait().await, ExitReason::Error(_)));
    let mut got = Vec::new();
    while let Ok(e) = rx.try_recv() {
        got.push(brief(&e));
    }
    assert_eq!(
        got,
        [
            ev(
                "exited",
                "root/a",
                "panic: a was told to panic; restart=true"
            ),
            ev("restarted", "root/a", "1"),
            ev(
                "exited",
                "root/a",
                "error: a was told to fail; restart=false"
            ),
            ev("escalated", "root", "root/a: error: a was told to fail"),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn nested_supervisors_publish_on_the_tree_feed() {
    let (log, mut probes) = log();
    let group = ChildSpec::supervisor(
        "g",
        flags(Strategy::OneForOne),
        vec![Probe::new("a", &log).spec()],
    );
    let tree = Tree::start("root", flags(Strategy::OneForOne), vec![group])
        .await
        .unwrap();
    let mut rx = tree.view().subscribe();
    probes.take(1).await;

    tell(&tree, "root/g/a", ProbeMsg::Exit);
    assert_eq!(
        brief(&next(&mut rx).await),
        ev("exited", "root/g/a", "normal; restart=true")
    );
    assert_eq!(
        brief(&next(&mut rx).await),
        ev("restarted", "root/g/a", "1")
    );
}

/// A feed made before the tree sees the start itself: a child that failed to start and
/// was retried.
#[tokio::test(start_paused = true)]
async fn start_failures_are_published_to_early_subscribers() {
    let (log, mut probes) = log();
    log.fail_starts("a", 1);
    let feed = EventFeed::default();
    let mut rx = feed.subscribe();
    let tree = Tree::start_in(
        "root",
        flags(Strategy::OneForOne),
        vec![Probe::new("a", &log).spec()],
        TreeContext {
            events: feed,
            ..TreeContext::default()
        },
    )
    .await
    .unwrap();
    probes.take(2).await;
    assert_eq!(
        brief(&next(&mut rx).await),
        ev(
            "exited",
            "root/a",
            "startup failure: a refuses to start; restart=true"
        )
    );
    assert_eq!(brief(&next(&mut rx).await), ev("restarted", "root/a", "1"));
    tree.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn backoff_delay_is_in_the_exit_event() {
    let (log, mut probes) = log();
    let flags = flags(Strategy::OneForOne)
        .backoff(Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            reset_after: Duration::from_secs(30),
        })
        .seed(7);
    let tree = Tree::start("root", flags, vec![Probe::new("a", &log).spec()])
        .await
        .unwrap();
    let mut rx = tree.subscribe();
    probes.take(1).await;

    tell(&tree, "root/a", ProbeMsg::Panic);
    let exited = next(&mut rx).await;
    let TreeEvent::ChildExited {
        restart: true,
        delay: Some(delay),
        ..
    } = exited
    else {
        panic!("expected a backed-off restart, got {exited:?}");
    };
    assert!(
        (80..=120).contains(&delay.as_millis()),
        "first delay is the base ±20 %: {delay:?}"
    );
    let restarted = next(&mut rx).await;
    // tokio's timers tick in whole milliseconds.
    let waited = restarted.at() - exited.at();
    assert!(
        waited >= delay && waited <= delay + Duration::from_millis(1),
        "restarted {waited:?} after the exit, delay {delay:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn quota_enforcement_is_published_with_the_restart_it_causes() {
    let mib = (1u64 << 20) as f64;
    let mut group = QuotaGroup::ungoverned();
    group.set_limits(
        Resource::Memory,
        Some(Limits {
            soft: mib,
            burst: 2.0 * mib,
            hard: 3.0 * mib,
        }),
    );
    group.hard_action = HardAction::Restart;
    let (log, mut probes) = log();
    let flags = flags(Strategy::OneForOne).sample_every(Duration::from_millis(100));
    let spec = Probe::new("leaky", &log).spec().quota("test", group);
    let tree = Tree::start("root", flags, vec![spec]).await.unwrap();
    let mut rx = tree.subscribe();
    probes.take(1).await;

    tell(&tree, "root/leaky", ProbeMsg::Hold(4 << 20));
    let mut got = Vec::new();
    loop {
        let e = next(&mut rx).await;
        if let TreeEvent::QuotaEnforced {
            action: Action::Restart,
            usage,
            limit,
            resource,
            ..
        } = &e
        {
            assert_eq!(*resource, Resource::Memory);
            assert!(*usage > *limit && *limit == 3.0 * mib, "{e:?}");
        }
        let done = matches!(e, TreeEvent::ChildRestarted { .. });
        got.push(brief(&e));
        if done {
            break;
        }
    }
    let n = got.len();
    assert!(n >= 3, "{got:?}");
    assert_eq!(got[n - 3], ev("quota", "root/leaky", "memory restart"));
    assert_eq!(got[n - 2].0, "exited");
    assert!(
        got[n - 2].2.starts_with("quota: memory") && got[n - 2].2.ends_with("restart=true"),
        "{got:?}"
    );
    assert_eq!(got[n - 1], ev("restarted", "root/leaky", "1"));
    assert!(
        got[..n - 3].iter().all(|e| e.0 == "quota"),
        "only milder quota actions before: {got:?}"
    );
}

/// A subscriber that does not read falls behind: it loses the oldest events, its next
/// `recv` says how many, and it then reads the newest ones. The supervisor went on
/// restarting meanwhile (publishing never waits).
#[tokio::test(start_paused = true)]
async fn lagging_subscriber_learns_how_many_it_lost() {
    let (log, mut probes) = log();
    let feed = EventFeed::new(4);
    let mut rx = feed.subscribe();
    let tree = Tree::start_in(
        "root",
        flags(Strategy::OneForOne),
        vec![Probe::new("a", &log).spec()],
        TreeContext {
            events: feed,
            ..TreeContext::default()
        },
    )
    .await
    .unwrap();
    probes.take(1).await;

    for n in 1..=5 {
        tell(&tree, "root/a", ProbeMsg::Panic);
        assert_eq!(
            probes.take(2).await,
            [format!("stop a#{n}"), format!("start a#{}", n + 1)]
        );
    }
    settle(&tree).await;
    assert_eq!(
        incarnation(&tree, "root/a").await,
        6,
        "no restart was held up"
    );

    // 5 crashes published 10 events; the 4 newest are kept.
    assert_eq!(rx.recv().await.unwrap_err(), RecvError::Lagged(6));
    let kept: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|e| brief(&e))
        .collect();
    assert_eq!(
        kept,
        [
            ev(
                "exited",
                "root/a",
                "panic: a was told to panic; restart=true"
            ),
            ev("restarted", "root/a", "4"),
            ev(
                "exited",
                "root/a",
                "panic: a was told to panic; restart=true"
            ),
            ev("restarted", "root/a", "5"),
        ]
    );
}
