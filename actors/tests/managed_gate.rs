//! The managed actor's gate and accounting: suspend/resume without loss or reordering,
//! throttling by a token bucket, and the counters the quota enforcer reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{CountingAlloc, Mailbox, SupervisorFlags, Tree};
use support::{idle, log, settle, Probe, ProbeMsg};
use tokio::time::Instant;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

async fn one(name: &str) -> (Tree, support::Events, Mailbox<ProbeMsg>) {
    let (log, mut events) = log();
    let tree = Tree::start(
        "root",
        SupervisorFlags::default(),
        vec![Probe::new(name, &log).spec()],
    )
    .await
    .unwrap();
    events.take(1).await;
    let mailbox = tree
        .view()
        .mailbox::<ProbeMsg>(&format!("root/{name}"))
        .unwrap();
    (tree, events, mailbox)
}

/// Suspend, keep sending, resume: every message is handled exactly once and in order,
/// and while suspended they wait (the depth shows them).
#[tokio::test(start_paused = true)]
async fn suspend_resume_loses_and_reorders_nothing() {
    let (tree, mut events, mailbox) = one("s").await;
    let counters = tree.view().counters("root/s").unwrap();
    for v in 0..10 {
        mailbox.cast(ProbeMsg::Record(v)).unwrap();
    }
    assert_eq!(events.take(10).await.last().unwrap(), "got s#1 9");

    assert!(tree.view().suspend("root/s"));
    for v in 10..60 {
        mailbox.cast(ProbeMsg::Record(v)).unwrap();
        if v % 10 == 0 {
            idle().await;
        }
    }
    idle().await;
    assert!(
        events.drain().is_empty(),
        "nothing is handled while suspended"
    );
    assert_eq!(counters.mailbox_depth(), 50);
    assert_eq!(counters.gate_state(), "suspended");
    assert_eq!(tree.snapshot().root.find("s").unwrap().mailbox_depth, 50);

    assert!(tree.view().resume("root/s"));
    for v in 60..70 {
        mailbox.cast(ProbeMsg::Record(v)).unwrap();
    }
    let got = events.take(60).await;
    let expected: Vec<_> = (10..70).map(|v| format!("got s#1 {v}")).collect();
    assert_eq!(got, expected);
    settle(&tree).await;
    assert!(events.drain().is_empty(), "each exactly once");
    assert_eq!(counters.mailbox_depth(), 0);
}

/// A throttle of 10 messages/s: after the bucket's one-second burst, messages are
/// handled 100 ms apart (virtual time, so exactly).
#[tokio::test(start_paused = true)]
async fn throttle_spaces_messages_by_the_token_bucket() {
    let (tree, mut events, mailbox) = one("t").await;
    tokio::time::sleep(Duration::from_secs(2)).await; // the bucket fills
    assert!(tree.view().throttle("root/t", Some(10.0), None));
    let t0 = Instant::now();
    for v in 0..30 {
        mailbox.cast(ProbeMsg::Record(v)).unwrap();
    }
    events.take(10).await;
    assert!(
        t0.elapsed() < Duration::from_millis(1),
        "the burst passes at once"
    );
    events.take(20).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1990) && took <= Duration::from_millis(2010),
        "{took:?}"
    );

    assert!(tree.view().resume("root/t"));
    let t1 = Instant::now();
    for v in 0..30 {
        mailbox.cast(ProbeMsg::Record(v)).unwrap();
    }
    events.take(30).await;
    assert!(t1.elapsed() < Duration::from_millis(1), "unthrottled again");
}

/// Memory an actor allocates and keeps is charged to it; handler time accrues.
#[tokio::test(start_paused = true)]
async fn memory_and_handler_time_are_accounted() {
    let (tree, _events, mailbox) = one("m").await;
    let counters = tree.view().counters("root/m").unwrap();
    let before = counters.memory_bytes();
    for _ in 0..4 {
        mailbox.cast(ProbeMsg::Hold(1 << 20)).unwrap();
    }
    mailbox
        .cast(ProbeMsg::Busy(Duration::from_millis(30)))
        .unwrap();
    settle(&tree).await;
    idle().await;
    let held = counters.memory_bytes() - before;
    assert!(held >= 4 << 20, "held {held} bytes");
    assert!(held < 5 << 20, "charged more than it holds: {held}");
    assert!(
        counters.cpu_seconds() >= 0.025,
        "{}",
        counters.cpu_seconds()
    );
    let node = tree.snapshot().root.find("m").cloned().unwrap();
    assert_eq!(node.memory_bytes, counters.memory_bytes());
    assert!(node.cpu_seconds >= 0.025);
}

/// A restart of the actor frees what the old incarnation held (its state is dropped):
/// the memory the enforcer sees returns, so a restart cures a leak.
#[tokio::test(start_paused = true)]
async fn memory_returns_after_a_restart() {
    let (tree, mut events, mailbox) = one("r").await;
    let counters = tree.view().counters("root/r").unwrap();
    for _ in 0..8 {
        mailbox.cast(ProbeMsg::Hold(1 << 20)).unwrap();
    }
    settle(&tree).await;
    idle().await;
    assert!(counters.memory_bytes() >= 8 << 20);
    mailbox.cast(ProbeMsg::Fail).unwrap();
    assert_eq!(events.take(2).await, ["stop r#1", "start r#2"]);
    idle().await;
    assert!(
        counters.memory_bytes() < 1 << 20,
        "{}",
        counters.memory_bytes()
    );
}

/// Messages crossing actors do not creep into either side's memory: the sender is not
/// charged for what it sends, the receiver gets no credit for what it drops.
#[tokio::test(start_paused = true)]
async fn sending_does_not_creep_into_memory() {
    let (log, mut events) = log();
    let children = vec![Probe::new("a", &log).spec(), Probe::new("b", &log).spec()];
    let tree = Tree::start("root", SupervisorFlags::default(), children)
        .await
        .unwrap();
    events.take(2).await;
    let (a, b) = (
        tree.view().mailbox::<ProbeMsg>("root/a").unwrap(),
        tree.view().mailbox::<ProbeMsg>("root/b").unwrap(),
    );
    for _ in 0..20 {
        a.cast(ProbeMsg::SendTo(b.clone(), 500)).unwrap();
    }
    events.take(10_000).await;
    settle(&tree).await;
    let (ca, cb) = (
        tree.view().counters("root/a").unwrap(),
        tree.view().counters("root/b").unwrap(),
    );
    assert!(
        ca.memory_bytes() < 4096,
        "sender charged {} bytes",
        ca.memory_bytes()
    );
    assert!(
        cb.memory_bytes() < 4096,
        "receiver charged {} bytes",
        cb.memory_bytes()
    );
    b.cast(ProbeMsg::Hold(100_000)).unwrap();
    settle(&tree).await;
    idle().await;
    assert!(
        cb.memory_bytes() >= 100_000,
        "a real hold still shows: {}",
        cb.memory_bytes()
    );
}

/// Pins the calling thread to CPU 0.
#[allow(unsafe_code)]
fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only
    // read and write that local set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// Handler time is CPU time, not wall time: the actor's thread and a competing spinner
/// share one CPU, so its busy handlers get about half a core. Timed by the TSC alone
/// they would count their whole wall time; calibrated against the thread CPU clock they
/// count what the thread really ran. (A ratio, robust to other load: more contention
/// only lowers it.)
#[test]
fn handler_time_is_calibrated_against_thread_cpu_time() {
    let busy_each = Duration::from_millis(200);
    let runs = 6u32;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let competitor = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            pin_to_cpu0();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        })
    };
    let cpu = std::thread::spawn(move || {
        pin_to_cpu0();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tree, _events, mailbox) = one("busy").await;
            for _ in 0..runs {
                mailbox.cast(ProbeMsg::Busy(busy_each)).unwrap();
            }
            settle(&tree).await;
            let c = tree.view().counters("root/busy").unwrap();
            let seconds = c.cpu_seconds();
            tree.shutdown().await;
            seconds
        })
    })
    .join()
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    competitor.join().unwrap();
    let wall = (busy_each * runs).as_secs_f64();
    assert!(
        cpu < 0.8 * wall,
        "counted {cpu:.3} s of {wall:.3} s wall: not calibrated"
    );
    assert!(cpu > 0.1 * wall, "counted only {cpu:.3} s");
}
