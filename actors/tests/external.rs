//! A managed worker standing for work in another OS process ([`nevil_actors::external`]):
//! a fake `External`, attached in the worker's `pre_start`, is sampled, governed, killed,
//! shown in the tree and handed faults by the supervisor — on the paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nevil_actors::external::{self, External, Placement, Subtree};
use nevil_actors::quota::{Action, HardAction, Limits, QuotaGroup, Resource};
use nevil_actors::{
    ActorPath, ChildKind, ChildSpec, ExitReason, Fault, InjectError, NodeSnapshot, Strategy,
    SupervisorFlags, Tree, TreeEvent, TreeSnapshot,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::time::Instant;

const SAMPLE: Duration = Duration::from_millis(100);

/// What the fake process does and what was done to it: CPU burnt at `cores` (virtual
/// time), memory held, every call recorded with the instant it was made.
struct Process {
    /// CPU seconds burnt until `.1`, and the cores it burns since.
    cpu: Mutex<(f64, Instant, f64)>,
    memory: AtomicU64,
    calls: Mutex<Vec<(Instant, String)>>,
    injected: Mutex<Vec<(String, Fault)>>,
    subtree: Subtree,
}

impl Process {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            cpu: Mutex::new((0.0, Instant::now(), 0.0)),
            memory: AtomicU64::new(0),
            calls: Mutex::new(Vec::new()),
            injected: Mutex::new(Vec::new()),
            subtree: Subtree::default(),
        })
    }

    /// Burns `cores` from now on.
    fn burn(&self, cores: f64) {
        let mut cpu = self.cpu.lock().unwrap();
        let now = Instant::now();
        *cpu = (cpu.0 + cpu.2 * (now - cpu.1).as_secs_f64(), now, cores);
    }

    /// CPU seconds burnt so far.
    fn cpu_seconds(&self) -> f64 {
        let (burnt, since, cores) = *self.cpu.lock().unwrap();
        burnt + cores * since.elapsed().as_secs_f64()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push((Instant::now(), call));
    }

    fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    fn called_at(&self, call: &str) -> Option<Instant> {
        let calls = self.calls.lock().unwrap();
        calls.iter().find(|(_, c)| c == call).map(|(at, _)| *at)
    }
}

/// The fake: an `External` over a shared [`Process`].
struct Fake(Arc<Process>);

impl External for Fake {
    fn cpu_seconds(&self) -> Option<f64> {
        Some(self.0.cpu_seconds())
    }

    fn memory_bytes(&self) -> Option<u64> {
        Some(self.0.memory.load(Ordering::Relaxed))
    }

    fn suspend(&self) {
        self.0.record("suspend".into());
    }

    fn resume(&self) {
        self.0.record("resume".into());
    }

    fn throttle(&self, cores: f64) {
        self.0.record(format!("throttle {cores:.3}"));
    }

    fn kill(&self) {
        self.0.record("kill".into());
    }

    fn placement(&self) -> Placement {
        Placement {
            placement: "process".into(),
            pid: 4242,
            isolation: Some("cgroup_v1".into()),
        }
    }

    fn subtree(&self) -> Option<NodeSnapshot> {
        self.0.subtree.get()
    }

    fn inject(&self, path: &ActorPath, fault: Fault) -> Result<(), String> {
        if path.name() == "refuses" {
            return Err("the group is restarting".into());
        }
        self.0
            .injected
            .lock()
            .unwrap()
            .push((path.to_string(), fault));
        Ok(())
    }
}

/// The parent's worker for a group: attaches the fake in its first incarnation only
/// (a later one would attach its new process's), records its own stop.
#[derive(Clone)]
struct Group {
    process: Arc<Process>,
    starts: Arc<AtomicU32>,
}

impl Actor for Group {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        if self.starts.fetch_add(1, Ordering::SeqCst) == 0 {
            assert!(external::attach(Arc::new(Fake(self.process.clone()))));
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<()>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        self.process.record("worker stopped".into());
        Ok(())
    }
}

#[derive(Clone)]
struct Plain;

impl Actor for Plain {
    type Msg = ();
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

fn group(resource: Resource, limits: Limits, action: HardAction) -> QuotaGroup {
    let mut g = QuotaGroup::ungoverned();
    g.set_limits(resource, Some(limits));
    g.hard_action = action;
    g
}

/// A tree with `plain` (in process) and `group` (the fake's worker, governed by `quota`).
async fn start(process: &Arc<Process>, quota: QuotaGroup) -> (Tree, Arc<AtomicU32>) {
    let starts = Arc::new(AtomicU32::new(0));
    let worker = Group {
        process: process.clone(),
        starts: starts.clone(),
    };
    let flags = SupervisorFlags::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(10))
        .sample_every(SAMPLE);
    let children = vec![
        ChildSpec::worker("plain", Plain, ()),
        ChildSpec::worker("group", worker, ()).quota("test", quota),
    ];
    (Tree::start("root", flags, children).await.unwrap(), starts)
}

/// The tree a child process would report: rooted at the worker's path.
fn remote_tree() -> NodeSnapshot {
    let at = ActorPath::from("root/group");
    let inner = at.child("inner");
    NodeSnapshot {
        strategy: Some(Strategy::RestForOne),
        children: vec![
            NodeSnapshot::new(at.child("a"), ChildKind::Worker),
            NodeSnapshot {
                strategy: Some(Strategy::OneForAll),
                children: vec![
                    NodeSnapshot::new(inner.child("b"), ChildKind::Worker),
                    NodeSnapshot::new(inner.child("refuses"), ChildKind::Worker),
                ],
                ..NodeSnapshot::new(inner, ChildKind::Supervisor)
            },
        ],
        ..NodeSnapshot::new(at, ChildKind::Supervisor)
    }
}

fn cpu(soft: f64, burst: f64, hard: f64) -> Limits {
    Limits { soft, burst, hard }
}

/// CPU the fake burns (its handlers burn none) is what the supervisor samples: over the
/// burst limit, the process is throttled in cores, and the worker's gate follows.
#[tokio::test(start_paused = true)]
async fn cpu_read_from_the_external_throttles_it_in_cores() {
    let process = Process::new();
    let g = group(Resource::Cpu, cpu(0.2, 0.5, 100.0), HardAction::Restart);
    let (tree, _) = start(&process, g).await;
    process.burn(0.8);
    tokio::time::sleep(SAMPLE * 3).await;

    let snap = tree.snapshot();
    let node = snap.root.find("root/group").unwrap();
    let quota = node.quota.as_ref().unwrap();
    let first = quota.history.first().expect("an enforcement");
    let Action::Throttle { factor } = first.action else {
        panic!("expected a throttle, got {:?}", quota.history);
    };
    assert_eq!(first.resource, Resource::Cpu);
    assert!((first.usage - 0.8).abs() < 1e-9, "usage {}", first.usage);
    assert_eq!(process.calls(), [format!("throttle {:.3}", 0.8 * factor)]);
    let counters = tree.view().counters("root/group").unwrap();
    assert_eq!(counters.gate_state(), "throttled");
    assert!(counters.cpu_seconds() < 0.01, "its handlers burnt nothing");
    tree.shutdown().await;
}

/// A hard breach kills the process at the deciding sample, before the worker is
/// stopped; the worker restarts with a quota exit, and its new incarnation, which
/// attached nothing, is sampled and shown from its own counters again.
#[tokio::test(start_paused = true)]
async fn a_hard_breach_kills_the_process_at_the_deciding_sample_then_restarts() {
    let process = Process::new();
    let g = group(Resource::Cpu, cpu(0.2, 0.5, 1.0), HardAction::Restart);
    let (tree, starts) = start(&process, g).await;
    let mut events = tree.subscribe();
    tokio::time::sleep(SAMPLE * 2).await;
    process.burn(3.0);

    let decided = loop {
        match events.recv().await.unwrap() {
            TreeEvent::QuotaEnforced {
                at,
                action: Action::Restart,
                ..
            } => break at,
            _ => continue,
        }
    };
    let exit = loop {
        match events.recv().await.unwrap() {
            TreeEvent::ChildExited { reason, .. } => break reason,
            _ => continue,
        }
    };
    assert!(
        matches!(&exit, ExitReason::Quota(why) if why.starts_with("cpu 3")),
        "{exit}"
    );
    assert_eq!(
        process.called_at("kill"),
        Some(decided),
        "killed at the deciding sample"
    );
    assert_eq!(process.calls(), ["kill", "worker stopped"]);
    loop {
        if let TreeEvent::ChildRestarted { restarts: 1, .. } = events.recv().await.unwrap() {
            break;
        }
    }
    assert_eq!(starts.load(Ordering::SeqCst), 2);

    // The new incarnation attached nothing: the process's figures are gone with it.
    tokio::time::sleep(SAMPLE * 5).await;
    let counters = tree.view().counters("root/group").unwrap();
    assert!(counters.external().is_none());
    let snap = tree.snapshot();
    let node = snap.root.find("root/group").unwrap();
    assert_eq!((node.restarts, node.placement.as_str()), (1, "in_process"));
    assert!(node.cpu_seconds < 0.01, "{}", node.cpu_seconds);
    assert_eq!(
        process.calls().len(),
        2,
        "nothing more done to the old process"
    );
    tree.shutdown().await;
}

/// Memory read from the external over its hard limit suspends the process (freezer);
/// back under its soft limit for the recovery window, it is resumed. The worker's gate
/// follows both ways.
#[tokio::test(start_paused = true)]
async fn memory_from_the_external_suspends_and_recovers_it() {
    let mib = 1u64 << 20;
    let limits = cpu(mib as f64, 2.0 * mib as f64, 4.0 * mib as f64);
    let process = Process::new();
    let (tree, _) = start(
        &process,
        group(Resource::Memory, limits, HardAction::Suspend),
    )
    .await;
    tokio::time::sleep(SAMPLE * 2).await;
    process.memory.store(8 * mib, Ordering::Relaxed);
    tokio::time::sleep(SAMPLE * 2).await;
    assert_eq!(process.calls(), ["suspend"]);
    let counters = tree.view().counters("root/group").unwrap();
    assert_eq!(counters.gate_state(), "suspended");
    let node = tree.snapshot().root.find("root/group").unwrap().clone();
    assert_eq!(
        node.memory_bytes,
        8 * mib,
        "the tree shows the process's memory"
    );

    process.memory.store(0, Ordering::Relaxed);
    tokio::time::sleep(QuotaGroup::DEFAULT_RECOVERY + SAMPLE * 3).await;
    assert_eq!(process.calls(), ["suspend", "resume"]);
    assert_eq!(counters.gate_state(), "open");
    tree.shutdown().await;
}

/// Once the process reported its tree, the worker's node is that tree's root in place:
/// a supervisor with its strategy and children, every node of it placed in the process;
/// the rest of the tree stays in this one. The text dump says where the group runs.
/// The whole snapshot reads back from its JSON exactly.
#[tokio::test(start_paused = true)]
async fn the_reported_subtree_is_shown_in_place_and_reads_back_from_json() {
    let process = Process::new();
    let g = group(Resource::Cpu, cpu(0.2, 0.5, 100.0), HardAction::Restart);
    let (tree, _) = start(&process, g).await;
    process.memory.store(3 << 20, Ordering::Relaxed);
    let before = tree.snapshot();
    let node = before.root.find("root/group").unwrap();
    assert_eq!(
        node.kind,
        ChildKind::Worker,
        "no report yet: still a worker"
    );
    assert_eq!((node.placement.as_str(), node.pid), ("process", 4242));

    process.subtree.set(remote_tree());
    process.burn(0.8);
    tokio::time::sleep(SAMPLE * 3).await;
    let snap = tree.snapshot();
    let node = snap.root.find("root/group").unwrap();
    assert_eq!(node.kind, ChildKind::Supervisor);
    assert_eq!(node.strategy, Some(Strategy::RestForOne));
    assert_eq!(node.memory_bytes, 3 << 20);
    assert!(node.cpu_seconds > 0.0);
    assert_eq!(
        node.quota.as_ref().unwrap().state,
        "throttled",
        "the parent's view"
    );
    let grafted: Vec<_> = node.walk().iter().map(|n| n.path.to_string()).collect();
    assert_eq!(
        grafted,
        [
            "root/group",
            "root/group/a",
            "root/group/inner",
            "root/group/inner/b",
            "root/group/inner/refuses"
        ]
    );
    for n in node.walk() {
        assert_eq!(
            (n.placement.as_str(), n.pid, n.isolation.as_deref()),
            ("process", 4242, Some("cgroup_v1")),
            "{}",
            n.path
        );
    }
    let here = std::process::id();
    for path in ["root", "root/plain"] {
        let n = snap.root.find(path).unwrap();
        assert_eq!(
            (n.placement.as_str(), n.pid, n.isolation.as_deref()),
            ("in_process", here, None)
        );
    }

    let text = snap.root.to_string();
    let lines: Vec<_> = text.lines().filter(|l| l.contains("pid 4242")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].trim_start().starts_with("group (rest_for_one)"),
        "{text}"
    );
    assert!(lines[0].ends_with("process pid 4242 cgroup_v1"), "{text}");

    let json = serde_json::to_string(&snap).unwrap();
    let back: TreeSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        "the JSON reads back exactly"
    );
    assert_eq!(back.root.find("root/group/inner/b").unwrap().pid, 4242);
    let history = &back
        .root
        .find("root/group")
        .unwrap()
        .quota
        .as_ref()
        .unwrap()
        .history;
    assert!(matches!(history[0].action, Action::Throttle { .. }));
    tree.shutdown().await;
}

/// A fault injected into a worker of the reported subtree, by path or by name, goes to
/// the external; its refusal is an error naming the worker and why.
#[tokio::test(start_paused = true)]
async fn faults_for_the_subtree_go_to_the_external() {
    let process = Process::new();
    let (tree, _) = start(&process, QuotaGroup::ungoverned()).await;
    process.subtree.set(remote_tree());

    let path = tree
        .inject("root/group/inner/b", Fault::Busy)
        .await
        .unwrap();
    assert_eq!(path.as_str(), "root/group/inner/b");
    tree.inject("a", Fault::Panic).await.unwrap();
    assert_eq!(
        *process.injected.lock().unwrap(),
        [
            ("root/group/inner/b".to_string(), Fault::Busy),
            ("root/group/a".to_string(), Fault::Panic)
        ]
    );
    let e = tree.inject("refuses", Fault::Hang).await.unwrap_err();
    assert_eq!(
        e,
        InjectError::External {
            path: "root/group/inner/refuses".into(),
            reason: "the group is restarting".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "root/group/inner/refuses runs in another process, which did not take the fault: \
         the group is restarting"
    );
    let e = tree.inject("group", Fault::Panic).await.unwrap_err();
    assert!(matches!(e, InjectError::Supervisor { .. }), "{e}");
    // The in-process worker is untouched by all this.
    assert_eq!(process.injected.lock().unwrap().len(), 2);
    tree.shutdown().await;
}

/// The hand controls reach the process too: suspend freezes it, throttle limits its
/// cores, resume thaws it; the worker's gate follows each.
#[tokio::test(start_paused = true)]
async fn hand_controls_act_on_the_process() {
    let process = Process::new();
    let (tree, _) = start(&process, QuotaGroup::ungoverned()).await;
    let view = tree.view();
    let counters = view.counters("root/group").unwrap();
    assert!(view.suspend("root/group"));
    assert_eq!(counters.gate_state(), "suspended");
    assert!(view.throttle("root/group", None, Some(0.25)));
    assert_eq!(counters.gate_state(), "throttled");
    assert!(
        view.throttle("root/group", Some(10.0), None),
        "a rate alone: the gate's"
    );
    assert!(view.resume("root/group"));
    assert_eq!(counters.gate_state(), "open");
    assert_eq!(process.calls(), ["suspend", "throttle 0.250", "resume"]);
    tree.shutdown().await;
}

/// `attach` outside a managed actor attaches nothing.
#[test]
fn attach_outside_an_actor_is_refused() {
    assert!(!external::attach(Arc::new(Fake(Process::new_blocking()))));
}

impl Process {
    /// A process for a test with no runtime (its clock is tokio's, read on first use).
    fn new_blocking() -> Arc<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async { Process::new() })
    }
}
