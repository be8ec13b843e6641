//! A governed actor: a worker with a memory quota that its supervisor enforces.
//!
//! The worker keeps 1 MiB more with each message (a leak). Its quota group says:
//! soft 2 MiB, burst 3 MiB, hard 4 MiB, and a restart at the hard limit. The supervisor
//! samples every 100 ms; when the worker holds more than 4 MiB it is restarted, which
//! returns its memory. The example prints the enforcement actions as they happen, then
//! the worker's quota history.
//!
//! The per-actor memory count needs the counting allocator as the global allocator.
//!
//! Run: `cargo run -p nevil-actors --example governed_actor`

use std::time::Duration;

use nevil_actors::quota::{HardAction, Limits, QuotaGroup, Resource};
use nevil_actors::{ChildSpec, CountingAlloc, SupervisorFlags, Tree, TreeEvent};
use ractor::{Actor, ActorProcessingErr, ActorRef};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const MIB: usize = 1 << 20;

/// Keeps 1 MiB more for each message it handles.
#[derive(Clone)]
struct Leaky;

impl Actor for Leaky {
    type Msg = ();
    type State = Vec<Vec<u8>>;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<Self::State, ActorProcessingErr> {
        Ok(Vec::new())
    }

    async fn handle(
        &self,
        _: ActorRef<()>,
        _: (),
        held: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Written, so the pages are really held.
        held.push(vec![0xa5; MIB]);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib = MIB as f64;
    let mut group = QuotaGroup::ungoverned();
    group.set_limits(
        Resource::Memory,
        Some(Limits {
            soft: 2.0 * mib,
            burst: 3.0 * mib,
            hard: 4.0 * mib,
        }),
    );
    group.hard_action = HardAction::Restart;

    let flags = SupervisorFlags::default()
        .intensity(5, Duration::from_secs(10))
        .sample_every(Duration::from_millis(100));
    let worker = ChildSpec::worker("leaky", Leaky, ()).quota("bounded", group);
    let tree = Tree::start("root", flags, vec![worker]).await?;
    let mut events = tree.subscribe();

    // One message every 50 ms: the worker crosses 4 MiB after about 250 ms.
    let mut restarted = false;
    for _ in 0..40 {
        if let Some(leaky) = tree.view().mailbox::<()>("root/leaky") {
            let _ = leaky.cast(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        while let Ok(event) = events.try_recv() {
            match event {
                TreeEvent::QuotaEnforced {
                    path,
                    resource,
                    usage,
                    limit,
                    action,
                    ..
                } => println!(
                    "{path}: {resource} at {:.1} MiB (limit {:.1} MiB): {action}",
                    usage / mib,
                    limit / mib
                ),
                TreeEvent::ChildRestarted { path, .. } => {
                    println!("{path} restarted");
                    restarted = true;
                }
                _ => {}
            }
        }
        if restarted {
            break;
        }
    }

    let snapshot = tree.snapshot();
    let node = snapshot.root.find("root/leaky").ok_or("no worker")?;
    println!(
        "leaky now holds {:.1} MiB after {} restart(s); last exit: {}",
        node.memory_bytes as f64 / mib,
        node.restarts,
        node.last_exit
            .as_ref()
            .map_or("-".into(), |e| e.to_string())
    );
    if let Some(quota) = &node.quota {
        for entry in &quota.history {
            println!("history: {}", serde_json::to_string(entry)?);
        }
    }
    tree.shutdown().await;
    if !restarted {
        return Err("the quota never restarted the leaking worker".into());
    }
    Ok(())
}
