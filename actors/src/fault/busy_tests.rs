//! The `busy` fault on a real tree: the worker holds its thread for good while the rest
//! of the tree keeps working. Run on a multi-threaded runtime of its own, which is leaked:
//! the stuck thread is never joined (the test process's exit ends it).

use std::sync::atomic::Ordering;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{gate, Fault};
use crate::{ChildSpec, SupervisorFlags, Tree};

/// Counts what it handles (its counters do).
#[derive(Clone)]
struct Worker;

impl Actor for Worker {
    type Msg = u32;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<u32>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(&self, _: ActorRef<u32>, _: u32, _: &mut ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Waits (briefly sleeping, never asserting on time) until `done` holds.
///
/// Sleeps the test's own thread, not on tokio's timer: the runtime's timers are driven by
/// whichever idle worker parks on the driver, and when the worker that held it is the one
/// now spinning, the other worker stays parked on its condvar and a timer never fires
/// (this test hung that way in CI once). Nothing in the tree's message path needs a timer.
async fn until(mut done: impl FnMut() -> bool) {
    while !done() {
        std::thread::sleep(Duration::from_millis(1));
        tokio::task::yield_now().await;
    }
}

/// Where the scenario is, for the failure message of a hang: the step it never left.
static STEP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const STEPS: [&str; 6] = [
    "starting the tree",
    "injecting the fault",
    "waiting for the victim to take it",
    "waiting for the sibling's hundred messages",
    "asking the supervisor to count its children",
    "done",
];

fn step(n: usize) {
    STEP.store(n, Ordering::SeqCst);
}

async fn scenario() {
    let children = vec![
        ChildSpec::worker("victim", Worker, ()),
        ChildSpec::worker("fine", Worker, ()),
    ];
    let tree = Tree::start("root", SupervisorFlags::default(), children)
        .await
        .unwrap();
    let view = tree.view();
    let victim = view.counters("root/victim").unwrap();
    step(1);
    assert_eq!(
        view.inject("victim", Fault::Busy).await.unwrap().as_str(),
        "root/victim"
    );
    // Taken by the idle worker (its helper's poke): from then on its thread spins, as
    // taking and committing happen in one poll.
    step(2);
    until(|| {
        !victim.gate.is_raised(gate::FAULT) && victim.faults.pending.load(Ordering::Acquire) == 0
    })
    .await;
    let handled = victim.messages_handled();
    let to_victim = view.mailbox::<u32>("root/victim").unwrap();
    for n in 0..3 {
        to_victim.cast(n).unwrap();
    }
    // The rest of the tree works on: a hundred messages to its sibling, all handled.
    let fine = view.counters("root/fine").unwrap();
    let to_fine = view.mailbox::<u32>("root/fine").unwrap();
    step(3);
    for n in 0..100 {
        to_fine.cast(n).unwrap();
    }
    until(|| fine.messages_handled() == 100).await;

    let snap = view.snapshot();
    let stuck = snap.root.find("root/victim").unwrap();
    assert_eq!((stuck.messages_handled, stuck.mailbox_depth), (handled, 3));
    let sibling = snap.root.find("root/fine").unwrap();
    assert_eq!((sibling.messages_handled, sibling.mailbox_depth), (100, 0));
    // The supervisor still answers too.
    step(4);
    assert_eq!(tree.root().count_children().await.unwrap().active, 2);
    step(5);
    // Not shut down: the victim would never stop. Leaked with its runtime.
    std::mem::forget(tree);
}

#[test]
fn busy_holds_its_thread_for_good_while_the_rest_of_the_tree_works() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    // The scenario runs on a thread of its own and the bound is kept here, off tokio's
    // timer (which a spinning worker can leave undriven, see `until`), so that a
    // regression fails instead of hanging the harness (a bound, not a figure).
    std::thread::spawn(move || {
        runtime.block_on(scenario());
        let _ = done.send(());
        // Dropping the runtime would wait for the stuck thread forever.
        std::mem::forget(runtime);
    });
    if finished.recv_timeout(Duration::from_secs(60)).is_err() {
        panic!(
            "the rest of the tree stopped working while {}, or the scenario failed (its \
             panic is above)",
            STEPS[STEP.load(Ordering::SeqCst)]
        );
    }
}
