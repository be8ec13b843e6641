//! Migration under host pressure ([`nevil_actors::quota::migrate`]): a `migratable`
//! worker's supervisor moves its work away after sustained critical pressure and home
//! once it has cleared for a while, through the worker's `External`; each move is one
//! `migrate` action in its history, its counts and the tree's events, recorded once the
//! move got there. A move the external refuses (no host to go to), or one that ends
//! elsewhere, is not recorded and is retried only a whole delay later. Virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nevil_actors::external::{self, External, Placement};
use nevil_actors::quota::{
    Action, Cause, Migration, Pressure, PressureLevel, PressurePolicy, Resource, Site,
};
use nevil_actors::{ChildSpec, SupervisorFlags, Tree, TreeContext, TreeEvent};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

const SAMPLE: Duration = Duration::from_millis(100);
const AFTER: Duration = Duration::from_secs(3);
const BACK_AFTER: Duration = Duration::from_secs(5);

/// Where the fake work is, whether a host is there to take it, each move asked, and
/// whether moves take a while (then `moving` holds until the test ends the move).
#[derive(Default)]
struct Work {
    site: Mutex<Option<Site>>,
    host_missing: Mutex<bool>,
    asked: Mutex<Vec<(Instant, Site)>>,
    slow: Mutex<bool>,
    moving: Mutex<bool>,
    /// The worker's current incarnation, which fails on any message.
    worker: Mutex<Option<ActorRef<()>>>,
}

struct Fake(Arc<Work>);

impl External for Fake {
    fn cpu_seconds(&self) -> Option<f64> {
        None
    }
    fn memory_bytes(&self) -> Option<u64> {
        None
    }
    fn suspend(&self) {}
    fn resume(&self) {}
    fn throttle(&self, _: f64) {}
    fn kill(&self) {}
    fn placement(&self) -> Placement {
        Placement::in_process()
    }
    fn site(&self) -> Option<Site> {
        *self.0.site.lock().unwrap()
    }
    fn migrate(&self, to: Site) -> Result<(), String> {
        self.0.asked.lock().unwrap().push((Instant::now(), to));
        if *self.0.host_missing.lock().unwrap() {
            return Err("no host connected".into());
        }
        if *self.0.slow.lock().unwrap() {
            *self.0.moving.lock().unwrap() = true;
        } else {
            *self.0.site.lock().unwrap() = Some(to);
        }
        Ok(())
    }
    fn moving(&self) -> bool {
        *self.0.moving.lock().unwrap()
    }
}

#[derive(Clone)]
struct Worker(Arc<Work>);

impl Actor for Worker {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, me: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        *self.0.site.lock().unwrap() = Some(Site::Home);
        *self.0.moving.lock().unwrap() = false;
        *self.0.worker.lock().unwrap() = Some(me);
        assert!(external::attach(Arc::new(Fake(self.0.clone()))));
        Ok(())
    }

    async fn handle(&self, _: ActorRef<()>, (): (), _: &mut ()) -> Result<(), ActorProcessingErr> {
        Err("told to fail".into())
    }
}

async fn start(work: &Arc<Work>) -> (Tree, Pressure) {
    let pressure = Pressure::new(PressurePolicy::default());
    let flags = SupervisorFlags::default().sample_every(SAMPLE);
    let policy = Migration {
        after: AFTER,
        back_after: BACK_AFTER,
    };
    let children = vec![ChildSpec::worker("group", Worker(work.clone()), ()).migratable(policy)];
    let context = TreeContext {
        pressure: pressure.clone(),
        ..TreeContext::default()
    };
    let tree = Tree::start_in("root", flags, children, context)
        .await
        .unwrap();
    (tree, pressure)
}

fn critical_cpu(pressure: &Pressure) {
    pressure.set_cause(Some(Cause {
        resource: Resource::Cpu,
        usage: 0.97,
        limit: 0.9,
    }));
    pressure.set(PressureLevel::Critical);
}

fn migrations(tree: &Tree) -> (Vec<Action>, u64) {
    let snap = tree.snapshot();
    let quota = snap.root.find("root/group").unwrap().quota.clone().unwrap();
    let actions = quota.history.iter().map(|e| e.action).collect();
    (actions, quota.enforcements_by_action["migrate"])
}

#[tokio::test(start_paused = true)]
async fn sustained_pressure_moves_the_work_away_and_cleared_pressure_brings_it_home() {
    let work = Arc::new(Work::default());
    let (tree, pressure) = start(&work).await;
    let mut events = tree.view().events().subscribe();
    tokio::time::sleep(SAMPLE * 20).await;
    assert!(
        work.asked.lock().unwrap().is_empty(),
        "no pressure, no move"
    );

    critical_cpu(&pressure);
    let raised = Instant::now();
    tokio::time::sleep(AFTER + SAMPLE * 2).await;
    let asked = work.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].1, Site::Away);
    let waited = asked[0].0 - raised;
    assert!(
        waited >= AFTER && waited <= AFTER + SAMPLE * 2,
        "moved {waited:?} after the pressure rose"
    );
    let (actions, count) = migrations(&tree);
    assert_eq!(actions, [Action::Migrate { to: Site::Away }]);
    assert_eq!(count, 1);
    let last = tree
        .snapshot()
        .root
        .find("root/group")
        .unwrap()
        .quota
        .clone()
        .unwrap();
    let record = last.history.last().unwrap();
    assert_eq!(
        (record.resource, record.usage, record.limit),
        (Resource::Cpu, 0.97, 0.9)
    );
    match events.recv().await.unwrap() {
        TreeEvent::QuotaEnforced { path, action, .. } => {
            assert_eq!(path.as_str(), "root/group");
            assert_eq!(action, Action::Migrate { to: Site::Away });
        }
        other => panic!("expected the move's event, got {other:?}"),
    }

    // Pressure that dips below critical and rises again does not bring it home.
    pressure.set(PressureLevel::Elevated);
    tokio::time::sleep(BACK_AFTER - SAMPLE * 10).await;
    critical_cpu(&pressure);
    tokio::time::sleep(SAMPLE * 5).await;
    pressure.set(PressureLevel::Normal);
    let cleared = Instant::now();
    tokio::time::sleep(BACK_AFTER + SAMPLE * 2).await;
    let asked = work.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[1].1, Site::Home);
    assert!(asked[1].0 - cleared >= BACK_AFTER);
    assert_eq!(
        migrations(&tree),
        (
            vec![
                Action::Migrate { to: Site::Away },
                Action::Migrate { to: Site::Home }
            ],
            2
        )
    );
    tree.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_move_is_recorded_once_it_got_there_and_one_that_did_not_is_not() {
    let work = Arc::new(Work::default());
    *work.slow.lock().unwrap() = true;
    let (tree, pressure) = start(&work).await;
    critical_cpu(&pressure);
    tokio::time::sleep(AFTER + SAMPLE * 2).await;
    assert_eq!(work.asked.lock().unwrap().len(), 1);
    // Under way for a while: not recorded yet, and not asked again.
    tokio::time::sleep(AFTER * 2).await;
    assert_eq!(work.asked.lock().unwrap().len(), 1, "one move at a time");
    assert_eq!(migrations(&tree), (vec![], 0), "not there yet");

    // It gets there: recorded at the next sample, once.
    *work.site.lock().unwrap() = Some(Site::Away);
    *work.moving.lock().unwrap() = false;
    tokio::time::sleep(SAMPLE * 2).await;
    assert_eq!(
        migrations(&tree),
        (vec![Action::Migrate { to: Site::Away }], 1)
    );

    // The move home ends with the work still away (its start there failed, say): not
    // recorded, and tried again only a whole delay after it was asked.
    pressure.set(PressureLevel::Normal);
    tokio::time::sleep(BACK_AFTER + SAMPLE * 2).await;
    let asked = work.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[1].1, Site::Home);
    *work.moving.lock().unwrap() = false;
    tokio::time::sleep(SAMPLE * 2).await;
    assert_eq!(
        migrations(&tree).1,
        1,
        "a move that did not get there is no move"
    );
    tokio::time::sleep(BACK_AFTER).await;
    let asked = work.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(asked[2].0 - asked[1].0 >= BACK_AFTER);
    tree.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_move_over_just_before_the_worker_fails_is_still_recorded() {
    let work = Arc::new(Work::default());
    *work.slow.lock().unwrap() = true;
    let (tree, pressure) = start(&work).await;
    let mut events = tree.view().events().subscribe();
    critical_cpu(&pressure);
    tokio::time::sleep(AFTER + SAMPLE * 2).await;
    assert_eq!(work.asked.lock().unwrap().len(), 1);

    // The move gets there and the worker fails before the supervisor samples again.
    *work.site.lock().unwrap() = Some(Site::Away);
    *work.moving.lock().unwrap() = false;
    let worker = work.worker.lock().unwrap().clone().unwrap();
    worker.send_message(()).unwrap();
    loop {
        match events.recv().await.unwrap() {
            TreeEvent::QuotaEnforced { action, .. } => {
                assert_eq!(action, Action::Migrate { to: Site::Away });
                break;
            }
            TreeEvent::ChildRestarted { .. } => panic!("restarted before the move was recorded"),
            _ => {}
        }
    }
    tokio::time::sleep(SAMPLE * 2).await;
    assert_eq!(
        migrations(&tree),
        (vec![Action::Migrate { to: Site::Away }], 1)
    );
    assert_eq!(
        *work.site.lock().unwrap(),
        Some(Site::Home),
        "restarted at home"
    );
    tree.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_move_is_not_recorded_and_is_retried_a_whole_delay_later() {
    let work = Arc::new(Work::default());
    *work.host_missing.lock().unwrap() = true;
    let (tree, pressure) = start(&work).await;
    critical_cpu(&pressure);
    tokio::time::sleep(AFTER * 2 + SAMPLE * 2).await;
    let asked = work.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "one try per delay: {asked:?}");
    assert!(asked[1].0 - asked[0].0 >= AFTER);
    assert_eq!(
        migrations(&tree),
        (vec![], 0),
        "nothing moved, nothing recorded"
    );

    *work.host_missing.lock().unwrap() = false;
    tokio::time::sleep(AFTER + SAMPLE * 2).await;
    assert_eq!(work.site.lock().unwrap().unwrap(), Site::Away);
    assert_eq!(migrations(&tree).1, 1);
    tree.shutdown().await;
}
