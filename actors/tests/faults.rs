//! Fault injection through the tree (`Tree::inject`): each fault carried out by the
//! worker's own `Managed` wrapper, on a plain worker whose message type knows nothing of
//! faults — including an idle one that receives no message at all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{
    fault, ChildSpec, CountingAlloc, ExitReason, Fault, InjectError, Restart, Shutdown,
    SupervisorFlags, Tree, TreeEvent,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use support::idle;
use tokio::sync::mpsc;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const PATH: &str = "root/plain";

/// A worker with an ordinary message type; it reports what it handles and its stop.
#[derive(Clone)]
struct Plain {
    log: mpsc::UnboundedSender<String>,
}

#[derive(Debug)]
enum PlainMsg {
    Work(u32),
}

impl Plain {
    fn emit(&self, event: String) {
        nevil_actors::managed::uncharged(|| {
            let _ = self.log.send(event);
        });
    }
}

impl Actor for Plain {
    type Msg = PlainMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<PlainMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        self.emit("start".into());
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<PlainMsg>,
        msg: PlainMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let PlainMsg::Work(n) = msg;
        self.emit(format!("work {n}"));
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<PlainMsg>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        self.emit("stop".into());
        Ok(())
    }
}

/// A tree of one plain worker (floodable with `Work(0)`), plus what it reports.
async fn plain_tree(restart: Restart) -> (Tree, mpsc::UnboundedReceiver<String>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let spec = ChildSpec::worker("plain", Plain { log: tx }, ())
        .restart(restart)
        .shutdown(Shutdown::BrutalKill)
        .flood(|| PlainMsg::Work(0));
    let flags = SupervisorFlags::default().intensity(10, Duration::from_secs(5));
    let tree = Tree::start("root", flags, vec![spec]).await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), "start");
    (tree, rx)
}

fn drain(rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// The next exit the tree reports.
async fn next_exit(events: &mut tokio::sync::broadcast::Receiver<TreeEvent>) -> ExitReason {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), events.recv())
            .await
            .expect("an exit within a minute")
            .expect("feed open");
        if let TreeEvent::ChildExited { path, reason, .. } = event {
            assert_eq!(path.as_str(), PATH);
            return reason;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn one_shot_faults_fire_on_an_idle_worker_and_end_it_as_its_own_code_would() {
    let cases = [
        (Fault::Panic, ExitReason::Panic("fault drill: panic".into())),
        (Fault::Error, ExitReason::Error("fault drill: error".into())),
        (Fault::Exit, ExitReason::Normal),
    ];
    for (fault, expected) in cases {
        let (tree, mut rx) = plain_tree(Restart::Permanent).await;
        let mut events = tree.subscribe();
        // The worker receives no message: the fault alone must wake it.
        assert_eq!(tree.inject("plain", fault).await.unwrap().as_str(), PATH);
        assert_eq!(next_exit(&mut events).await, expected, "{fault}");
        idle().await;
        // Its post_stop ran (a failure too, as for a handler's), then it was restarted.
        assert_eq!(drain(&mut rx), ["stop", "start"], "{fault}");
        // The next incarnation has no fault pending.
        let mailbox = tree.view().mailbox::<PlainMsg>(PATH).unwrap();
        mailbox.cast(PlainMsg::Work(1)).unwrap();
        idle().await;
        assert_eq!(drain(&mut rx), ["work 1"], "{fault}");
        tree.shutdown().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_fault_pending_when_a_message_comes_is_carried_out_in_its_place() {
    let (tree, mut rx) = plain_tree(Restart::Permanent).await;
    let mut events = tree.subscribe();
    let mailbox = tree.view().mailbox::<PlainMsg>(PATH).unwrap();
    // Sent before the inject: the message reaches the worker ahead of the helper's poke,
    // and its slow path picks the fault up.
    mailbox.cast(PlainMsg::Work(1)).unwrap();
    tree.inject(PATH, Fault::Error).await.unwrap();
    assert_eq!(
        next_exit(&mut events).await,
        ExitReason::Error("fault drill: error".into())
    );
    idle().await;
    assert_eq!(drain(&mut rx), ["stop", "start"]);
    tree.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_worker_handles_nothing_more() {
    let (tree, mut rx) = plain_tree(Restart::Permanent).await;
    let counters = tree.view().counters(PATH).unwrap();
    tree.inject(PATH, Fault::Hang).await.unwrap();
    idle().await;
    let mailbox = tree.view().mailbox::<PlainMsg>(PATH).unwrap();
    mailbox.cast(PlainMsg::Work(1)).unwrap();
    mailbox.cast(PlainMsg::Work(2)).unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(drain(&mut rx).is_empty());
    assert_eq!(counters.mailbox_depth(), 2);
    assert!(tree.actor(PATH).is_some(), "hung, not gone");
}

#[tokio::test(start_paused = true)]
async fn a_spinning_worker_burns_cpu_and_handles_nothing_more() {
    let (tree, mut rx) = plain_tree(Restart::Permanent).await;
    let counters = tree.view().counters(PATH).unwrap();
    tree.inject(PATH, Fault::Spin).await.unwrap();
    let mailbox = tree.view().mailbox::<PlainMsg>(PATH).unwrap();
    // The first may carry the fault in (consumed); the second waits behind the spin.
    mailbox.cast(PlainMsg::Work(1)).unwrap();
    mailbox.cast(PlainMsg::Work(2)).unwrap();
    // The spin yields each millisecond it burns: let it run (time cannot advance while it
    // is always runnable, so no sleep here).
    for _ in 0..10_000 {
        if counters.cpu_seconds() >= 0.005 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(
        counters.cpu_seconds() >= 0.005,
        "{}",
        counters.cpu_seconds()
    );
    assert!(drain(&mut rx).is_empty());
    assert!(counters.mailbox_depth() >= 1);
}

#[tokio::test(start_paused = true)]
async fn a_leak_grows_the_workers_memory_until_its_incarnation_ends() {
    let (tree, mut rx) = plain_tree(Restart::Permanent).await;
    let counters = tree.view().counters(PATH).unwrap();
    let before = counters.memory_bytes();
    tree.inject(PATH, Fault::Leak).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    let leaked = counters.memory_bytes() - before;
    let step = fault::LEAK_STEP as u64;
    assert!((10 * step..=12 * step).contains(&leaked), "{leaked}");
    // It still handles its messages meanwhile.
    let mailbox = tree.view().mailbox::<PlainMsg>(PATH).unwrap();
    mailbox.cast(PlainMsg::Work(1)).unwrap();
    idle().await;
    assert_eq!(drain(&mut rx), ["work 1"]);

    // A restart ends the leak: the next incarnation holds nothing and keeps it so.
    let mut events = tree.subscribe();
    tree.inject(PATH, Fault::Panic).await.unwrap();
    next_exit(&mut events).await;
    idle().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        counters.memory_bytes() < step,
        "{}",
        counters.memory_bytes()
    );
    tree.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_flood_deepens_the_mailbox_until_its_incarnation_ends() {
    let (tree, mut rx) = plain_tree(Restart::Permanent).await;
    let counters = tree.view().counters(PATH).unwrap();
    tree.inject(PATH, Fault::Flood).await.unwrap();
    let mut deepest = 0;
    for _ in 0..1_000 {
        deepest = deepest.max(counters.mailbox_depth());
        if deepest >= 100 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(deepest >= 100, "{deepest}");
    // Bursts keep coming: 500 every 10 ms.
    tokio::time::sleep(Duration::from_millis(95)).await;
    let sent = counters.messages_sent();
    assert!(sent >= 10 * fault::FLOOD_BURST as u64, "{sent}");
    assert!(drain(&mut rx).iter().all(|e| e == "work 0"));

    // The flood dies with the incarnation it targeted.
    let mut events = tree.subscribe();
    tree.inject(PATH, Fault::Error).await.unwrap();
    next_exit(&mut events).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after = counters.messages_sent();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(counters.messages_sent(), after);
    tree.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn bad_targets_are_refused_clearly() {
    let (tree, _rx) = plain_tree(Restart::Permanent).await;
    let e = tree.inject("lidar", Fault::Panic).await.unwrap_err();
    assert_eq!(
        e,
        InjectError::NoSuchActor {
            target: "lidar".into(),
            workers: vec![PATH.into()],
        }
    );
    assert_eq!(e.to_string(), "no such actor (workers: root/plain)");
    let e = tree.inject("root", Fault::Panic).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "root is a supervisor; faults are injected into workers"
    );
    tree.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_flood_needs_one_on_the_spec() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let specs = vec![
        ChildSpec::worker("plain", Plain { log: tx.clone() }, ()),
        // A flood closure of another message type than the worker's.
        ChildSpec::worker("odd", Plain { log: tx }, ()).flood(|| 7_u32),
    ];
    let tree = Tree::start("root", SupervisorFlags::default(), specs)
        .await
        .unwrap();
    let e = tree.inject("plain", Fault::Flood).await.unwrap_err();
    assert_eq!(e, InjectError::NoFlood { path: PATH.into() });
    let e = tree.inject("odd", Fault::Flood).await.unwrap_err();
    assert!(matches!(e, InjectError::FloodType { .. }), "{e}");
    tree.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_worker_not_running_is_refused() {
    let (tree, _rx) = plain_tree(Restart::Temporary).await;
    let mut events = tree.subscribe();
    tree.inject(PATH, Fault::Exit).await.unwrap();
    next_exit(&mut events).await;
    // A temporary child is gone from its supervisor after it exits.
    let e = tree.inject(PATH, Fault::Panic).await.unwrap_err();
    assert!(matches!(e, InjectError::NoSuchActor { .. }), "{e}");
    tree.shutdown().await;
}

#[test]
fn targets_resolve_against_the_spec_before_start() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let specs = [ChildSpec::supervisor(
        "io",
        SupervisorFlags::default(),
        vec![ChildSpec::worker("plain", Plain { log: tx }, ())],
    )];
    let path = fault::resolve("root", &specs, "plain").unwrap();
    assert_eq!(path.as_str(), "root/io/plain");
    let path = fault::resolve("root", &specs, "root/io/plain").unwrap();
    assert_eq!(path.as_str(), "root/io/plain");
    let e = fault::resolve("root", &specs, "io").unwrap_err();
    assert_eq!(
        e.to_string(),
        "root/io is a supervisor; faults are injected into workers"
    );
    let e = fault::resolve("root", &specs, "lidar").unwrap_err();
    assert_eq!(e.to_string(), "no such actor (workers: root/io/plain)");
}

#[tokio::test(start_paused = true)]
async fn a_fault_waits_at_a_suspended_gate_as_a_message_would() {
    let (tree, mut rx) = plain_tree(Restart::Permanent).await;
    let mut events = tree.subscribe();
    assert!(tree.view().suspend(PATH));
    tree.inject(PATH, Fault::Panic).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(drain(&mut rx).is_empty(), "suspended: nothing happens yet");
    assert!(tree.view().resume(PATH));
    assert_eq!(
        next_exit(&mut events).await,
        ExitReason::Panic("fault drill: panic".into())
    );
    tree.shutdown().await;
}
