//! A plain supervision tree: a reader driver that crashes now and then under a
//! `one_for_one` supervisor, and a controller chain under `rest_for_one`.
//!
//! The reader panics on every third reading; its supervisor restarts it (and only it),
//! within a restart intensity of 5 per 10 s. The example prints each exit and restart as
//! the tree reports them, then the tree with its restart counts, and shuts down in order.
//!
//! Run: `cargo run -p nevil-actors --example supervision_tree`

use std::time::Duration;

use nevil_actors::{
    ChildSpec, ExitReason, Strategy, SupervisorFlags, Tree, TreeEvent, TreeSnapshot,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};

/// A reader driver: counts the readings it is asked for and fails on every third one.
#[derive(Clone)]
struct Reader;

impl Actor for Reader {
    type Msg = ();
    type State = u32;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<u32, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<()>,
        _: (),
        readings: &mut u32,
    ) -> Result<(), ActorProcessingErr> {
        *readings += 1;
        if *readings == 3 {
            panic!("the source glitched");
        }
        Ok(())
    }
}

/// A node that does nothing but exist: enough to show where it sits in the tree.
#[derive(Clone)]
struct Node;

impl Actor for Node {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

fn print_tree(snapshot: &TreeSnapshot) {
    for node in snapshot.root.walk() {
        let depth = node.path.to_string().matches('/').count();
        let exit = node
            .last_exit
            .as_ref()
            .map_or(String::new(), |e| format!(", last exit: {e}"));
        println!(
            "{:indent$}{} ({:?}, restarts {}{exit})",
            "",
            node.name,
            node.status,
            node.restarts,
            indent = depth * 2
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One line per panic: the tree reports the rest.
    std::panic::set_hook(Box::new(|info| eprintln!("panicked: {info}")));
    let io = ChildSpec::supervisor(
        "io",
        SupervisorFlags::new(Strategy::OneForOne).intensity(5, Duration::from_secs(10)),
        vec![ChildSpec::worker("reader", Reader, ())],
    );
    let control = ChildSpec::supervisor(
        "control",
        SupervisorFlags::new(Strategy::RestForOne),
        vec![
            ChildSpec::worker("planner", Node, ()),
            ChildSpec::worker("executor", Node, ()),
        ],
    );
    let tree = Tree::start("root", SupervisorFlags::default(), vec![io, control]).await?;
    let mut events = tree.subscribe();

    // Seven readings: the third fails; the restarted reader counts from zero again, so
    // the sixth (its third) fails too.
    for _ in 0..7 {
        let reader = tree
            .view()
            .mailbox::<()>("root/io/reader")
            .ok_or("no reader")?;
        // A cast to an incarnation that just died is lost, as in Erlang: fine here.
        let _ = reader.cast(());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    while let Ok(event) = events.try_recv() {
        match event {
            TreeEvent::ChildExited { path, reason, .. } => println!("{path} exited: {reason}"),
            TreeEvent::ChildRestarted { path, restarts, .. } => {
                println!("{path} restarted (restart {restarts})")
            }
            _ => {}
        }
    }
    print_tree(&tree.snapshot());

    let reason = tree.shutdown().await;
    assert_eq!(reason, ExitReason::Normal);
    println!("shut down: {reason}");
    Ok(())
}
