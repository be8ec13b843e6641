//! Live quotas: a running tree's quota group for a worker, changed by path through its
//! pressure handle's `LiveQuotas`, is enforced from the supervisor's next sample and
//! outlives a restart of that supervisor (whose spec still holds the old group).
//! Virtual time, so "within two sampling intervals" is exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::quota::{HardAction, Limits, QuotaGroup};
use nevil_actors::{ChildSpec, CountingAlloc, ExitReason, SupervisorFlags, Tree};
use support::{log, settle_at, Probe, ProbeMsg};
use tokio::time::Instant;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SAMPLE: Duration = Duration::from_millis(100);
const MIB: f64 = (1 << 20) as f64;

/// Memory limits soft / burst / hard in MiB, restart at the hard one.
fn group(soft: f64, burst: f64, hard: f64) -> QuotaGroup {
    let mut g = QuotaGroup::ungoverned();
    g.memory = Some(Limits {
        soft: soft * MIB,
        burst: burst * MIB,
        hard: hard * MIB,
    });
    g.hard_action = HardAction::Restart;
    g
}

fn group_of(tree: &Tree, path: &str) -> String {
    let snap = tree.snapshot();
    let node = snap.root.find(path).unwrap();
    node.quota.as_ref().unwrap().group.clone()
}

#[tokio::test(start_paused = true)]
async fn a_live_group_is_enforced_at_the_next_sample_and_outlives_a_supervisor_restart() {
    let (log, mut events) = log();
    let flags = || {
        SupervisorFlags::default()
            .intensity(10, Duration::from_secs(10))
            .sample_every(SAMPLE)
    };
    let workers = ChildSpec::supervisor(
        "workers",
        flags(),
        vec![Probe::new("busy", &log)
            .spec()
            .quota("loose", group(4.0, 5.0, 6.0))],
    );
    let tree = Tree::start("root", flags(), vec![workers]).await.unwrap();
    assert_eq!(events.take(1).await, ["start busy#1"]);
    let path = "root/workers/busy";
    let hold = ProbeMsg::Hold((3.5 * MIB) as usize);
    tree.view()
        .mailbox::<ProbeMsg>(path)
        .unwrap()
        .cast(hold)
        .unwrap();
    tokio::time::sleep(SAMPLE * 10).await;
    assert!(
        events.drain().is_empty(),
        "3.5 MiB is within the loose group"
    );
    assert_eq!(group_of(&tree, path), "loose");

    // Tightened live: hard 3 MiB, so 3.5 MiB is restarted within two samples.
    let tightened = Instant::now();
    tree.view()
        .pressure()
        .live()
        .set(path, "tight", group(1.0, 2.0, 3.0));
    assert_eq!(events.take(2).await, ["stop busy#1", "start busy#2"]);
    assert!(
        tightened.elapsed() <= SAMPLE * 2,
        "took {:?}",
        tightened.elapsed()
    );
    let snap = tree.snapshot();
    let busy = snap.root.find(path).unwrap();
    match &busy.last_exit {
        Some(ExitReason::Quota(why)) => assert!(why.starts_with("memory "), "{why}"),
        other => panic!("expected a quota exit, got {other:?}"),
    }
    settle_at(&tree, "root/workers").await;
    tokio::time::sleep(SAMPLE * 2).await;
    assert_eq!(group_of(&tree, path), "tight");

    // The supervisor restarts: its spec says `loose`, the live table `tight`.
    let before = tree.snapshot().root.find("root/workers").unwrap().restarts;
    tree.actor("root/workers").unwrap().kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tree.snapshot().root.find("root/workers").unwrap().restarts == before {
        assert!(Instant::now() < deadline, "root/workers was not restarted");
        tokio::time::sleep(SAMPLE).await;
    }
    settle_at(&tree, "root/workers").await;
    tokio::time::sleep(SAMPLE * 2).await;
    assert_eq!(
        group_of(&tree, path),
        "tight",
        "looked up again after the restart"
    );
    tree.shutdown().await;
}
