//! How a managed actor's handler is run when it takes more than one poll: the gate holds
//! it between polls, a throttle's duty pause follows it, and a failure after a yield
//! still runs `post_stop` and is told apart (panic or error).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use nevil_actors::{ChildSpec, CountingAlloc, ExitReason, Mailbox, SupervisorFlags, Tree};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use support::{idle, settle};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// What a [`Step`](StepMsg::Step) does once both its waits are over.
enum Then {
    Finish,
    Panic,
    Fail,
}

enum StepMsg {
    /// Logs `begin v`, waits for the first sender, logs `middle v`, waits for the second,
    /// then does `Then` and logs `end v`: a handler of three polls.
    Step(u32, oneshot::Receiver<()>, oneshot::Receiver<()>, Then),
    /// Logs `got v`.
    Record(u32),
    /// Burns this much CPU in one poll.
    Spin(Duration),
}

#[derive(Clone)]
struct Stepper {
    log: mpsc::UnboundedSender<String>,
}

impl Stepper {
    fn emit(&self, event: String) {
        nevil_actors::managed::uncharged(|| {
            let _ = self.log.send(event);
        });
    }
}

impl Actor for Stepper {
    type Msg = StepMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<StepMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        self.emit("start".into());
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<StepMsg>,
        msg: StepMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            StepMsg::Step(v, first, second, then) => {
                self.emit(format!("begin {v}"));
                let _ = first.await;
                self.emit(format!("middle {v}"));
                let _ = second.await;
                match then {
                    Then::Finish => {}
                    Then::Panic => panic!("step {v} panics"),
                    Then::Fail => return Err(format!("step {v} fails").into()),
                }
                self.emit(format!("end {v}"));
            }
            StepMsg::Record(v) => self.emit(format!("got {v}")),
            StepMsg::Spin(d) => {
                let t0 = std::time::Instant::now();
                while t0.elapsed() < d {
                    std::hint::spin_loop();
                }
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<StepMsg>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        self.emit("stop".into());
        Ok(())
    }
}

struct Rig {
    tree: Tree,
    events: mpsc::UnboundedReceiver<String>,
    mailbox: Mailbox<StepMsg>,
}

impl Rig {
    async fn start() -> Self {
        let (log, mut events) = mpsc::unbounded_channel();
        let flags = SupervisorFlags::default().intensity(10, Duration::from_secs(5));
        let spec = ChildSpec::worker("s", Stepper { log }, ());
        let tree = Tree::start("root", flags, vec![spec]).await.unwrap();
        assert_eq!(events.recv().await.unwrap(), "start");
        let mailbox = tree.view().mailbox::<StepMsg>("root/s").unwrap();
        Self {
            tree,
            events,
            mailbox,
        }
    }

    async fn next(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(60), self.events.recv())
            .await
            .expect("no event within 60 s")
            .expect("log closed")
    }

    fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            out.push(e);
        }
        out
    }

    /// Sends a step; returns the senders that let it go on.
    fn step(&self, v: u32, then: Then) -> (oneshot::Sender<()>, oneshot::Sender<()>) {
        let (go1, first) = oneshot::channel();
        let (go2, second) = oneshot::channel();
        self.mailbox
            .cast(StepMsg::Step(v, first, second, then))
            .unwrap();
        (go1, go2)
    }

    fn last_exit(&self) -> Option<ExitReason> {
        self.tree
            .snapshot()
            .root
            .find("s")
            .unwrap()
            .last_exit
            .clone()
    }
}

/// Suspended while its handler waits: the handler's next poll runs (it was not held
/// yet), but after it yields again it is held until resumed, even once it could go on;
/// the message behind it waits too, and nothing is lost.
#[tokio::test(start_paused = true)]
async fn a_running_handler_is_held_between_polls_until_resumed() {
    let mut rig = Rig::start().await;
    let counters = rig.tree.view().counters("root/s").unwrap();
    let (go1, go2) = rig.step(1, Then::Finish);
    assert_eq!(rig.next().await, "begin 1");

    assert!(rig.tree.view().suspend("root/s"));
    rig.mailbox.cast(StepMsg::Record(2)).unwrap();
    go1.send(()).unwrap();
    assert_eq!(rig.next().await, "middle 1");
    go2.send(()).unwrap();
    idle().await;
    assert!(rig.drain().is_empty(), "held while suspended");
    assert_eq!(counters.mailbox_depth(), 1, "the record waits behind it");

    assert!(rig.tree.view().resume("root/s"));
    assert_eq!(rig.next().await, "end 1");
    assert_eq!(rig.next().await, "got 2");
    settle(&rig.tree).await;
    assert_eq!(counters.messages_handled(), 2);
    assert_eq!(counters.mailbox_depth(), 0);
}

/// A handler that panics on its third poll: `post_stop` runs before the restart, and the
/// exit is recorded as a panic.
#[tokio::test(start_paused = true)]
async fn a_panic_after_yielding_runs_post_stop_and_is_a_panic() {
    let mut rig = Rig::start().await;
    let (go1, go2) = rig.step(1, Then::Panic);
    assert_eq!(rig.next().await, "begin 1");
    go1.send(()).unwrap();
    assert_eq!(rig.next().await, "middle 1");
    go2.send(()).unwrap();
    assert_eq!(rig.next().await, "stop");
    assert_eq!(rig.next().await, "start");
    settle(&rig.tree).await;
    assert_eq!(
        rig.last_exit(),
        Some(ExitReason::Panic("step 1 panics".into()))
    );
}

/// The same with a returned error: `post_stop` runs, the exit is an error.
#[tokio::test(start_paused = true)]
async fn an_error_after_yielding_runs_post_stop_and_is_an_error() {
    let mut rig = Rig::start().await;
    let (go1, go2) = rig.step(1, Then::Fail);
    assert_eq!(rig.next().await, "begin 1");
    go1.send(()).unwrap();
    go2.send(()).unwrap();
    assert_eq!(rig.next().await, "middle 1");
    assert_eq!(rig.next().await, "stop");
    assert_eq!(rig.next().await, "start");
    settle(&rig.tree).await;
    assert_eq!(
        rig.last_exit(),
        Some(ExitReason::Error("step 1 fails".into()))
    );
}

/// Throttled to half a core, a handler that burned CPU is followed by a pause at least as
/// long as the handler time it was charged (paused clock: the pause is the only thing
/// that moves it); unthrottled, no pause.
#[tokio::test(start_paused = true)]
async fn a_duty_throttle_pauses_after_the_handler() {
    let mut rig = Rig::start().await;
    let counters = rig.tree.view().counters("root/s").unwrap();
    let spin = Duration::from_millis(5);

    let t0 = Instant::now();
    rig.mailbox.cast(StepMsg::Spin(spin)).unwrap();
    rig.mailbox.cast(StepMsg::Record(1)).unwrap();
    assert_eq!(rig.next().await, "got 1");
    assert_eq!(t0.elapsed(), Duration::ZERO, "no pause while open");

    assert!(rig.tree.view().throttle("root/s", None, Some(0.5)));
    let cpu_before = counters.cpu_seconds();
    let t0 = Instant::now();
    rig.mailbox.cast(StepMsg::Spin(spin)).unwrap();
    rig.mailbox.cast(StepMsg::Record(2)).unwrap();
    assert_eq!(rig.next().await, "got 2");
    let charged = counters.cpu_seconds() - cpu_before;
    let paused = t0.elapsed().as_secs_f64();
    assert!(charged > 0.0);
    assert!(
        paused >= charged,
        "paused {paused} s after {charged} s of handler time"
    );
}

/// An actor that takes its own [`Mailbox`] in `pre_start` and sends through it.
#[derive(Clone)]
struct OwnMailbox;

enum OwnMsg {
    /// Sends itself `Bounce(n - 1)` through its own mailbox, down to 0, which it answers.
    Bounce(u32, Option<oneshot::Sender<()>>),
    /// Hands out a clone of its own mailbox.
    Give(oneshot::Sender<Mailbox<OwnMsg>>),
}

impl Actor for OwnMailbox {
    type Msg = OwnMsg;
    type State = Mailbox<OwnMsg>;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<OwnMsg>,
        _: (),
    ) -> Result<Mailbox<OwnMsg>, ActorProcessingErr> {
        Ok(Mailbox::own(&myself))
    }

    async fn handle(
        &self,
        _: ActorRef<OwnMsg>,
        msg: OwnMsg,
        own: &mut Mailbox<OwnMsg>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            OwnMsg::Bounce(0, done) => {
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            OwnMsg::Bounce(n, done) => {
                let _ = own.cast(OwnMsg::Bounce(n - 1, done));
            }
            OwnMsg::Give(reply) => {
                let _ = reply.send(Mailbox::own(own.actor()));
            }
        }
        Ok(())
    }
}

/// `Mailbox::own` (the `Arc::from_raw` on the running actor's counters) counts into the
/// actor's own counters, in `pre_start` and in a handler; outside an actor it counts into
/// fresh ones; and a mailbox taken inside keeps the counters alive after the child is
/// gone (under valgrind, a missing strong count would be a use after free here).
#[tokio::test(start_paused = true)]
async fn own_mailbox_counts_into_the_actors_counters_and_keeps_them_alive() {
    let spec = ChildSpec::worker("own", OwnMailbox, ());
    let tree = Tree::start("root", SupervisorFlags::default(), vec![spec])
        .await
        .unwrap();
    let counters = tree.view().counters("root/own").unwrap();
    let outside: ActorRef<OwnMsg> = tree.actor("root/own").unwrap().into();

    let (done, finished) = oneshot::channel();
    outside.cast(OwnMsg::Bounce(5, Some(done))).unwrap();
    finished.await.unwrap();
    assert_eq!(
        counters.messages_sent(),
        5,
        "five bounces through its own mailbox"
    );

    // Outside any actor: fresh counters, the actor's are untouched.
    let stray = Mailbox::own(&outside);
    stray.cast(OwnMsg::Bounce(0, None)).unwrap();
    settle(&tree).await;
    idle().await;
    assert_eq!(counters.messages_sent(), 5);

    let (reply, given) = oneshot::channel();
    outside.cast(OwnMsg::Give(reply)).unwrap();
    let given = given.await.unwrap();
    drop(counters);
    tree.root().stop_child("own").await.unwrap();
    assert!(
        tree.view().counters("root/own").is_none(),
        "the child is gone"
    );
    // The mailbox's strong count is now the last one: a send counts (and, the actor
    // being gone, fails and un-counts) on live memory, which memcheck checks. Whether
    // ractor refuses it at once or drops it later is ractor's business.
    let _ = given.cast(OwnMsg::Bounce(0, None));
    drop(given);
    tree.shutdown().await;
}
