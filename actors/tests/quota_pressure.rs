//! Quotas under pressure: a tree started with a shared [`Pressure`] enforces tighter
//! limits while its level is critical, in nested supervisors too, except for exempt
//! groups; back to normal, the groups' own limits apply again. Virtual time, so "within
//! two sampling intervals" is exact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::quota::{
    HardAction, Limits, Pressure, PressureLevel, PressurePolicy, QuotaGroup,
};
use nevil_actors::{ChildSpec, CountingAlloc, ExitReason, SupervisorFlags, Tree, TreeContext};
use support::{idle, log, settle_at, Probe, ProbeMsg};
use tokio::time::Instant;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SAMPLE: Duration = Duration::from_millis(100);
const MIB: usize = 1 << 20;

/// Memory 4 / 5 / 6 MiB, restart at the hard limit; halved under critical pressure.
fn group() -> QuotaGroup {
    let mut g = QuotaGroup::ungoverned();
    g.memory = Some(Limits {
        soft: 4.0 * MIB as f64,
        burst: 5.0 * MIB as f64,
        hard: 6.0 * MIB as f64,
    });
    g.hard_action = HardAction::Restart;
    g
}

/// `root/workers/{busy,vital}`, both holding 3.5 MiB — under their limits — with `vital`
/// in an exempt group.
async fn loaded_tree() -> (Tree, Pressure, support::Events) {
    let (log, mut events) = log();
    let pressure = Pressure::new(PressurePolicy {
        critical_factor: 0.5,
        exempt: vec!["vital".into()],
    });
    let flags = || {
        SupervisorFlags::default()
            .intensity(10, Duration::from_secs(10))
            .sample_every(SAMPLE)
    };
    let workers = ChildSpec::supervisor(
        "workers",
        flags(),
        vec![
            Probe::new("busy", &log).spec().quota("standard", group()),
            Probe::new("vital", &log).spec().quota("vital", group()),
        ],
    );
    let tree = Tree::start_in(
        "root",
        flags(),
        vec![workers],
        TreeContext {
            pressure: pressure.clone(),
            ..TreeContext::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(events.take(2).await, ["start busy#1", "start vital#1"]);
    for name in ["busy", "vital"] {
        let path = format!("root/workers/{name}");
        let mailbox = tree.view().mailbox::<ProbeMsg>(&path).unwrap();
        mailbox.cast(ProbeMsg::Hold(3 * MIB + MIB / 2)).unwrap();
    }
    (tree, pressure, events)
}

/// Normal pressure: 3.5 MiB is under the 4 MiB soft limit, nothing happens. Critical
/// pressure halves the limits (hard 3 MiB): the non-exempt child is restarted within two
/// sampling intervals, by a decision recorded against the tightened limit; the exempt
/// one is left alone.
#[tokio::test(start_paused = true)]
async fn critical_pressure_tightens_non_exempt_quotas() {
    let (tree, pressure, mut events) = loaded_tree().await;
    tokio::time::sleep(SAMPLE * 10).await;
    assert!(events.drain().is_empty(), "no action under normal pressure");
    assert_eq!(tree.view().pressure().level(), PressureLevel::Normal);

    pressure.set(PressureLevel::Critical);
    assert_eq!(tree.view().pressure().level(), PressureLevel::Critical);
    let raised = Instant::now();
    assert_eq!(events.take(2).await, ["stop busy#1", "start busy#2"]);
    assert!(
        raised.elapsed() <= SAMPLE * 2,
        "took {:?}",
        raised.elapsed()
    );
    settle_at(&tree, "root/workers").await;
    tokio::time::sleep(SAMPLE * 10).await;
    assert!(events.drain().is_empty(), "the exempt child is untouched");

    let snap = tree.snapshot();
    let busy = snap.root.find("root/workers/busy").unwrap();
    match &busy.last_exit {
        Some(ExitReason::Quota(why)) => assert!(why.starts_with("memory "), "{why}"),
        other => panic!("expected a quota exit, got {other:?}"),
    }
    let last = busy
        .quota
        .as_ref()
        .unwrap()
        .history
        .last()
        .copied()
        .unwrap();
    assert_eq!(last.limit, 3.0 * MIB as f64, "the tightened hard limit");
    let vital = snap.root.find("root/workers/vital").unwrap();
    assert_eq!(vital.restarts, 0);
    assert!(vital.quota.as_ref().unwrap().history.is_empty());
    tree.shutdown().await;
}

/// Back to normal, the groups' own limits apply again: the same load is left alone.
#[tokio::test(start_paused = true)]
async fn limits_return_when_pressure_drops() {
    let (tree, pressure, mut events) = loaded_tree().await;
    pressure.set(PressureLevel::Critical);
    assert_eq!(events.take(2).await, ["stop busy#1", "start busy#2"]);
    pressure.set(PressureLevel::Elevated);
    let mailbox = tree
        .view()
        .mailbox::<ProbeMsg>("root/workers/busy")
        .unwrap();
    mailbox.cast(ProbeMsg::Hold(3 * MIB + MIB / 2)).unwrap();
    idle().await;
    tokio::time::sleep(SAMPLE * 10).await;
    assert!(
        events.drain().is_empty(),
        "elevated pressure changes nothing"
    );
    let busy = tree
        .snapshot()
        .root
        .find("root/workers/busy")
        .cloned()
        .unwrap();
    assert_eq!(busy.restarts, 1);
    assert_eq!(busy.quota.unwrap().state, "ok");
    tree.shutdown().await;
}

/// The tree shows each governed child's latest readings next to the limits in force:
/// the group's own under normal pressure, the tightened ones under critical pressure
/// (the exempt child keeps its own).
#[tokio::test(start_paused = true)]
async fn the_snapshot_shows_usage_against_the_limits_in_force() {
    let (tree, pressure, mut events) = loaded_tree().await;
    let quota = |name: &str| {
        let path = format!("root/workers/{name}");
        tree.snapshot()
            .root
            .find(&path)
            .unwrap()
            .quota
            .clone()
            .unwrap()
    };
    assert_eq!(quota("busy").limits.memory.unwrap().hard, 6.0 * MIB as f64);
    assert!(quota("busy").limits.cpu.is_none(), "cpu is not governed");
    tokio::time::sleep(SAMPLE * 3).await;
    let busy = quota("busy");
    let held = busy.usage.expect("sampled").memory;
    assert!(
        held >= 3.5 * MIB as f64 && held < 4.0 * MIB as f64,
        "{held}"
    );
    assert_eq!(busy.limits.memory.unwrap().hard, 6.0 * MIB as f64);

    pressure.set(PressureLevel::Critical);
    assert_eq!(events.take(2).await, ["stop busy#1", "start busy#2"]);
    tokio::time::sleep(SAMPLE * 3).await;
    assert_eq!(quota("busy").limits.memory.unwrap().hard, 3.0 * MIB as f64);
    assert_eq!(quota("vital").limits.memory.unwrap().hard, 6.0 * MIB as f64);
    tree.shutdown().await;
}
