//! Critical quota groups on real actors: a wedged child is found by its stall and killed
//! at once (not after its shutdown grace), a non-critical group leaves stall alone, and a
//! critical child over its CPU limit is restarted, never throttled. Virtual time, so the
//! sampling intervals are exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::quota::{Action, QuotaGroup, Resource};
use nevil_actors::{CountingAlloc, ExitReason, NodeSnapshot, Shutdown, SupervisorFlags, Tree};
use support::{idle, incarnation, log, settle, Probe, ProbeMsg};
use tokio::time::Instant;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SAMPLE: Duration = Duration::from_millis(100);
/// The graceful shutdown a wedged child must not be waited for.
const GRACE: Duration = Duration::from_secs(5);

/// `root/NAME` in quota group `group` (named `group_name`), with a 5 s shutdown grace;
/// returns once it started and a few baseline samples were taken.
async fn governed(name: &str, group_name: &str, group: QuotaGroup) -> (Tree, support::Events) {
    let (log, mut events) = log();
    let flags = SupervisorFlags::default()
        .intensity(10, Duration::from_secs(10))
        .sample_every(SAMPLE);
    let spec = Probe::new(name, &log)
        .spec()
        .shutdown(Shutdown::Timeout(GRACE))
        .quota(group_name, group);
    let tree = Tree::start("root", flags, vec![spec]).await.unwrap();
    assert_eq!(events.take(1).await, [format!("start {name}#1")]);
    tokio::time::sleep(SAMPLE * 3).await;
    (tree, events)
}

/// The actions in `node`'s enforcement history, oldest first.
fn actions(node: &NodeSnapshot) -> Vec<&'static str> {
    let quota = node.quota.as_ref().unwrap();
    quota.history.iter().map(|e| e.action.as_str()).collect()
}

/// A critical child whose handler hangs while its mailbox fills is restarted for its
/// stall within three sampling intervals of the hang — killed at once, so well before its
/// 5 s shutdown grace would have run out — and the exit says it was the stall.
#[tokio::test(start_paused = true)]
async fn a_wedged_critical_child_is_killed_and_restarted_for_its_stall() {
    let (tree, mut events) = governed("vital", "critical", QuotaGroup::critical()).await;
    let mailbox = tree.view().mailbox::<ProbeMsg>("root/vital").unwrap();
    mailbox.cast(ProbeMsg::Hang).unwrap();
    let hung = Instant::now();
    for v in 0..10 {
        mailbox.cast(ProbeMsg::Record(v)).unwrap();
    }
    // Killed, so its post_stop does not run: the next event is the new incarnation.
    assert_eq!(events.take(1).await, ["start vital#2"]);
    let took = hung.elapsed();
    assert!(took <= SAMPLE * 3, "hang -> restart took {took:?}");
    assert!(took < GRACE / 10, "waited for the shutdown grace: {took:?}");
    assert_eq!(
        incarnation(&tree, "root/vital").await,
        2,
        "the replacement runs"
    );
    settle(&tree).await;

    let snap = tree.snapshot();
    let node = snap.root.find("vital").unwrap();
    match &node.last_exit {
        Some(ExitReason::Quota(why)) => assert!(why.starts_with("stall "), "{why}"),
        other => panic!("expected a quota exit, got {other:?}"),
    }
    assert_eq!(node.restarts, 1);
    assert_eq!(actions(node), ["warn", "restart"]);
    let last = *node.quota.as_ref().unwrap().history.last().unwrap();
    assert_eq!((last.resource, last.limit), (Resource::Stall, 0.2));
    let counters = tree.view().counters("root/vital").unwrap();
    assert_eq!(
        counters.dead_letters(),
        10,
        "what waited died with the mailbox"
    );
    assert!(events.drain().is_empty());
}

/// The same wedge in the default group (standard, with its default limits): stall is not
/// governed there, so nothing is done about it.
#[tokio::test(start_paused = true)]
async fn a_non_critical_group_has_no_stall_enforcement() {
    let (tree, mut events) = governed("plain", "standard", QuotaGroup::standard()).await;
    let mailbox = tree.view().mailbox::<ProbeMsg>("root/plain").unwrap();
    mailbox.cast(ProbeMsg::Hang).unwrap();
    for v in 0..10 {
        mailbox.cast(ProbeMsg::Record(v)).unwrap();
    }
    tokio::time::sleep(SAMPLE * 30).await;
    assert!(events.drain().is_empty(), "neither stopped nor restarted");
    let node = tree.snapshot().root.find("plain").cloned().unwrap();
    assert_eq!(node.restarts, 0);
    assert_eq!(node.mailbox_depth, 10, "still wedged");
    assert!(actions(&node).is_empty(), "{:?}", actions(&node));
}

/// A critical child spinning far over its CPU hard limit (half a core) is restarted —
/// stopped gracefully, as a CPU breach does not wedge it — and never throttled.
#[tokio::test(start_paused = true)]
async fn a_critical_child_over_its_cpu_limit_is_restarted_never_throttled() {
    let (tree, mut events) = governed("spin", "critical", QuotaGroup::critical()).await;
    let counters = tree.view().counters("root/spin").unwrap();
    let mailbox = tree.view().mailbox::<ProbeMsg>("root/spin").unwrap();
    // Half a second of handler time at one instant of virtual time: whichever sampling
    // window holds it reads several cores' worth, far over the hard limit of 0.5.
    for _ in 0..5 {
        mailbox
            .cast(ProbeMsg::Busy(Duration::from_millis(100)))
            .unwrap();
    }
    let spun = Instant::now();
    assert_eq!(events.take(2).await, ["stop spin#1", "start spin#2"]);
    assert!(spun.elapsed() <= SAMPLE * 2, "took {:?}", spun.elapsed());
    idle().await;
    assert_eq!(counters.gate_state(), "open", "never throttled");

    let snap = tree.snapshot();
    let node = snap.root.find("spin").unwrap();
    match &node.last_exit {
        Some(ExitReason::Quota(why)) => assert!(why.starts_with("cpu "), "{why}"),
        other => panic!("expected a quota exit, got {other:?}"),
    }
    let quota = node.quota.as_ref().unwrap();
    let last = *quota.history.last().unwrap();
    assert_eq!(
        (last.action, last.resource),
        (Action::Restart, Resource::Cpu)
    );
    for e in &quota.history {
        assert!(
            matches!(e.action, Action::Warn | Action::Restart),
            "{:?}",
            quota.history
        );
    }
    assert!(quota
        .enforcements_by_action
        .iter()
        .all(|(action, &n)| n == 0 || action == "warn" || action == "restart"));
}

/// A critical child restarted for its CPU while its handler will not return (it burnt
/// the CPU, then hangs with nothing else queued, so no stall shows): the graceful stop
/// gets one sampling interval, not its 5 s grace, before the kill.
#[tokio::test(start_paused = true)]
async fn a_critical_child_restarted_for_cpu_gets_one_interval_of_grace() {
    let (tree, mut events) = governed("hot", "critical", QuotaGroup::critical()).await;
    let mailbox = tree.view().mailbox::<ProbeMsg>("root/hot").unwrap();
    for _ in 0..5 {
        mailbox
            .cast(ProbeMsg::Busy(Duration::from_millis(100)))
            .unwrap();
    }
    mailbox.cast(ProbeMsg::Hang).unwrap();
    let t0 = Instant::now();
    assert_eq!(
        events.take(1).await,
        ["start hot#2"],
        "killed (no post_stop) and replaced"
    );
    let took = t0.elapsed();
    assert!(
        took <= SAMPLE * 3,
        "cpu breach -> replacement took {took:?}"
    );
    assert!(took < GRACE / 10, "waited for the shutdown grace: {took:?}");
    let snap = tree.snapshot();
    match &snap.root.find("hot").unwrap().last_exit {
        Some(ExitReason::Quota(why)) => assert!(why.starts_with("cpu "), "{why}"),
        other => panic!("expected a quota exit, got {other:?}"),
    }
}
