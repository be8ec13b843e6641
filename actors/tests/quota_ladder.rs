//! Quotas enforced by the supervisor on real actors: breach → action within two sampling
//! intervals (virtual time, so exact), restarts that cure, dead letters, and the tree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::quota::{HardAction, Limits, QuotaGroup, Resource};
use nevil_actors::{CountingAlloc, ExitReason, SupervisorFlags, Tree};
use support::{idle, log, settle, Probe, ProbeMsg};
use tokio::time::Instant;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SAMPLE: Duration = Duration::from_millis(100);

fn group(resource: Resource, limits: Limits, action: HardAction) -> QuotaGroup {
    let mut g = QuotaGroup::ungoverned();
    g.set_limits(resource, Some(limits));
    g.hard_action = action;
    g
}

async fn governed(name: &str, g: QuotaGroup) -> (Tree, support::Events) {
    let (log, mut events) = log();
    let flags = SupervisorFlags::default()
        .intensity(10, Duration::from_secs(10))
        .sample_every(SAMPLE);
    let spec = Probe::new(name, &log).spec().quota("test", g);
    let tree = Tree::start("root", flags, vec![spec]).await.unwrap();
    events.take(1).await;
    (tree, events)
}

/// Memory over the hard limit restarts the actor within two sampling intervals; its
/// memory returns, the exit reason and the history say why.
#[tokio::test(start_paused = true)]
async fn memory_breach_restarts_within_two_intervals() {
    let mib = (1 << 20) as f64;
    let g = group(
        Resource::Memory,
        Limits {
            soft: mib,
            burst: 2.0 * mib,
            hard: 3.0 * mib,
        },
        HardAction::Restart,
    );
    let (tree, mut events) = governed("leaky", g).await;
    tokio::time::sleep(SAMPLE * 3).await; // a baseline sample or two
    let mailbox = tree.view().mailbox::<ProbeMsg>("root/leaky").unwrap();
    mailbox.cast(ProbeMsg::Hold(4 << 20)).unwrap();
    settle(&tree).await;
    let breach = Instant::now();
    assert_eq!(events.take(2).await, ["stop leaky#1", "start leaky#2"]);
    let took = breach.elapsed();
    assert!(took <= SAMPLE * 2, "breach -> action took {took:?}");
    idle().await;

    let snap = tree.snapshot();
    let node = snap.root.find("leaky").unwrap();
    match &node.last_exit {
        Some(ExitReason::Quota(why)) => assert!(why.starts_with("memory "), "{why}"),
        other => panic!("expected a quota exit, got {other:?}"),
    }
    assert_eq!(node.restarts, 1);
    assert!(
        node.memory_bytes < 1 << 20,
        "memory returned: {}",
        node.memory_bytes
    );
    let quota = node.quota.as_ref().unwrap();
    assert_eq!(quota.group, "test");
    assert_eq!(quota.state, "ok");
    assert_eq!(quota.history.last().unwrap().action.as_str(), "restart");
    let json = serde_json::to_value(&snap).unwrap();
    assert_eq!(
        json["root"]["children"][0]["quota"]["history"][0]["resource"],
        "memory"
    );
}

/// A mailbox over its hard limit: the configured action (restart) follows; the waiting
/// messages die with the old mailbox as dead letters and none is handled twice.
#[tokio::test(start_paused = true)]
async fn flooded_mailbox_restarts_and_nothing_is_handled_twice() {
    let g = group(
        Resource::Mailbox,
        Limits {
            soft: 10.0,
            burst: 20.0,
            hard: 40.0,
        },
        HardAction::Restart,
    );
    let (tree, mut events) = governed("flood", g).await;
    let counters = tree.view().counters("root/flood").unwrap();
    let mailbox = tree.view().mailbox::<ProbeMsg>("root/flood").unwrap();
    for v in 0..5 {
        mailbox.cast(ProbeMsg::Record(v)).unwrap();
    }
    events.take(5).await;
    assert!(tree.view().suspend("root/flood")); // the actor stops keeping up
    for v in 5..105 {
        mailbox.cast(ProbeMsg::Record(v)).unwrap();
    }
    assert_eq!(counters.mailbox_depth(), 100);
    // Message 5 had left the mailbox and waited at the gate: the graceful stop opens
    // the gate, so it is handled (once) before the stop; the 99 behind it die.
    let got = events.take(3).await;
    assert_eq!(got, ["got flood#1 5", "stop flood#1", "start flood#2"]);
    idle().await;
    assert_eq!(counters.dead_letters(), 99);
    assert_eq!(counters.mailbox_depth(), 0);
    let fresh = tree.view().mailbox::<ProbeMsg>("root/flood").unwrap();
    for v in 200..205 {
        fresh.cast(ProbeMsg::Record(v)).unwrap();
    }
    let after = events.take(5).await;
    let expected: Vec<_> = (200..205).map(|v| format!("got flood#2 {v}")).collect();
    assert_eq!(
        after, expected,
        "the new incarnation handles only new messages, once each"
    );
    settle(&tree).await;
    assert!(events.drain().is_empty());
}

/// Terminate: notice (graceful stop, post_stop runs), no restart, state `terminated`.
#[tokio::test(start_paused = true)]
async fn terminate_stops_for_good() {
    let mib = (1 << 20) as f64;
    let g = group(
        Resource::Memory,
        Limits {
            soft: mib,
            burst: mib,
            hard: mib,
        },
        HardAction::Terminate,
    );
    let (tree, mut events) = governed("t", g).await;
    tokio::time::sleep(SAMPLE * 2).await;
    let mailbox = tree.view().mailbox::<ProbeMsg>("root/t").unwrap();
    mailbox.cast(ProbeMsg::Hold(2 << 20)).unwrap();
    assert_eq!(events.take(1).await, ["stop t#1"]);
    tokio::time::sleep(SAMPLE * 5).await;
    assert!(events.drain().is_empty(), "not restarted");
    let node = tree.snapshot().root.find("t").cloned().unwrap();
    assert_eq!(node.quota.unwrap().state, "terminated");
    assert_eq!(node.status, nevil_actors::Status::Stopped);
    assert!(matches!(node.last_exit, Some(ExitReason::Quota(_))));
}

/// An ungoverned child (no quota) is never acted on, whatever it does.
#[tokio::test(start_paused = true)]
async fn ungoverned_children_are_left_alone() {
    let (log, mut events) = log();
    let flags = SupervisorFlags::default().sample_every(SAMPLE);
    let tree = Tree::start("root", flags, vec![Probe::new("free", &log).spec()])
        .await
        .unwrap();
    events.take(1).await;
    let mailbox = tree.view().mailbox::<ProbeMsg>("root/free").unwrap();
    mailbox.cast(ProbeMsg::Hold(8 << 20)).unwrap();
    tokio::time::sleep(SAMPLE * 10).await;
    assert!(events.drain().is_empty());
    assert!(tree.snapshot().root.find("free").unwrap().quota.is_none());
}
