//! The real supervisor against a reference model of OTP's `supervisor.erl` (tests/model):
//! random trees (strategy, intensity, period, 1–6 children of random restart types, some
//! of which fail their first starts: nevil retries them, OTP would not start) go
//! through random sequences of events (a child exits normally, by shutdown, by panic, by
//! error or killed, possibly with its restarts failing; `start_child`, `stop_child`,
//! `restart_child`; time passes), and after each event the supervisor must have taken
//! the model's decisions in the model's order: the exits and restarts it published (with
//! their backoff delays), the starts and stops its children saw, its calls' answers, its
//! child table (`which_children`, `count_children`), its escalation. Half the trees have
//! a restart backoff (nevil's, not OTP's: see tests/model).
//!
//! Each case runs on a paused tokio clock with real actors ([`Probe`]s), so the model
//! knows the time of every event to the nanosecond; when two backed-off restarts fall
//! due in the same millisecond tick, their order is the timer wheel's and the case stops
//! being compared there (under 1 % of cases). The number of cases is `PROPTEST_CASES`
//! (default 256, a few seconds in debug); the long run and its count are in the actors
//! README. Shrunk counterexamples become the named tests at the end of this file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod model;
mod support;

use std::sync::Once;
use std::time::Duration;

use model::Strategy as Policy;
use model::{
    Backoff, CallResult, Decision, Flags, Life, Listed, Model, Reason, RestartType, State,
};
use nevil_actors::{
    CallError, ChildSpec, EventFeed, ExitReason, Incarnation, Restart, StartError, SupervisorFlags,
    Tree, TreeContext, TreeEvent,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use support::{idle, settle, Log, Probe, ProbeMsg};
use tokio::sync::broadcast;
use tokio::time::Instant;

/// One thing that happens to the supervisor. Children are picked by index, modulo the
/// children there are when it happens, so that any sequence means something and shrinks.
#[derive(Debug, Clone)]
enum Op {
    /// The `child`-th running child exits with `reason`; its next `failing_starts`
    /// starts fail.
    Exit {
        child: usize,
        reason: Reason,
        failing_starts: u32,
    },
    /// `start_child` of a new child (or, with `duplicate`, of the first child's name);
    /// with `fail`, its start fails.
    StartChild {
        restart: RestartType,
        fail: bool,
        duplicate: bool,
    },
    /// `stop_child` of the `child`-th child in the table (one past the end: a name that
    /// is not there).
    StopChild { child: usize },
    /// `restart_child` of the `child`-th child in the table (one past the end: a name
    /// that is not there); with `fail`, its start fails.
    RestartChild { child: usize, fail: bool },
    /// Time passes.
    Wait { ms: u64 },
}

/// A tree and what happens to it.
#[derive(Debug, Clone)]
struct Case {
    strategy: Policy,
    intensity: u32,
    period_ms: u64,
    /// nevil's restart backoff: base, max and reset_after in ms, and the jitter's seed.
    backoff: Option<(u64, u64, u64, u64)>,
    /// Each child's restart type, and how many of its first starts fail.
    children: Vec<(RestartType, u32)>,
    ops: Vec<Op>,
}

impl Case {
    fn backoff(&self) -> Option<Backoff> {
        self.backoff.map(|(base, max, reset_after, seed)| Backoff {
            base: Duration::from_millis(base),
            max: Duration::from_millis(max),
            reset_after: Duration::from_millis(reset_after),
            seed,
        })
    }
}

fn restart_type() -> impl Strategy<Value = RestartType> {
    prop_oneof![
        Just(RestartType::Permanent),
        Just(RestartType::Transient),
        Just(RestartType::Temporary),
    ]
}

fn reason() -> impl Strategy<Value = Reason> {
    prop_oneof![
        Just(Reason::Normal),
        Just(Reason::Shutdown),
        Just(Reason::Error),
        Just(Reason::Panic),
        Just(Reason::Killed),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..6usize, reason(), prop_oneof![4 => Just(0u32), 1 => 1..=3u32]).prop_map(
            |(child, reason, failing_starts)| Op::Exit { child, reason, failing_starts }
        ),
        1 => (restart_type(), prop::bool::weighted(0.2), prop::bool::weighted(0.1)).prop_map(
            |(restart, fail, duplicate)| Op::StartChild { restart, fail, duplicate }
        ),
        1 => (0..7usize).prop_map(|child| Op::StopChild { child }),
        2 => (0..7usize, prop::bool::weighted(0.2))
            .prop_map(|(child, fail)| Op::RestartChild { child, fail }),
        2 => (0..400u64).prop_map(|ms| Op::Wait { ms }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just(Policy::OneForOne),
            Just(Policy::RestForOne),
            Just(Policy::OneForAll),
        ],
        0..=5u32,
        1..=300u64,
        prop::option::of((5..=60u64, 20..=300u64, 0..=400u64, any::<u64>())),
        prop::collection::vec(
            (restart_type(), prop_oneof![6 => Just(0u32), 1 => 1..=3u32]),
            1..=6,
        ),
        prop::collection::vec(op(), 1..=30),
    )
        .prop_map(
            |(strategy, intensity, period_ms, backoff, children, ops)| Case {
                strategy,
                intensity,
                period_ms,
                backoff,
                children,
                ops,
            },
        )
}

fn real_strategy(s: Policy) -> nevil_actors::Strategy {
    match s {
        Policy::OneForOne => nevil_actors::Strategy::OneForOne,
        Policy::RestForOne => nevil_actors::Strategy::RestForOne,
        Policy::OneForAll => nevil_actors::Strategy::OneForAll,
    }
}

fn real_restart(r: RestartType) -> Restart {
    match r {
        RestartType::Permanent => Restart::Permanent,
        RestartType::Transient => Restart::Transient,
        RestartType::Temporary => Restart::Temporary,
    }
}

fn model_reason(r: &ExitReason) -> Option<Reason> {
    Some(match r {
        ExitReason::Normal => Reason::Normal,
        ExitReason::Shutdown => Reason::Shutdown,
        ExitReason::Error(_) => Reason::Error,
        ExitReason::Panic(_) => Reason::Panic,
        ExitReason::Killed => Reason::Killed,
        ExitReason::StartupFailure(_) => Reason::StartupFailure,
        ExitReason::Quota(_) | ExitReason::Oom | ExitReason::NodeLost(_) => return None,
    })
}

/// What the real supervisor published, as the model's decisions (anything the model
/// has no word for is kept as text, so that it fails the comparison).
fn decisions(events: &mut broadcast::Receiver<TreeEvent>) -> Vec<Result<Decision, String>> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        out.push(match event {
            TreeEvent::ChildExited {
                path,
                reason,
                restart,
                delay,
                ..
            } => match model_reason(&reason) {
                Some(reason) => Ok(Decision::Exited {
                    name: path.name().to_string(),
                    reason,
                    restart,
                    delay,
                }),
                None => Err(format!("{path} exited: {reason}")),
            },
            TreeEvent::ChildRestarted { path, restarts, .. } => Ok(Decision::Restarted {
                name: path.name().to_string(),
                restarts,
            }),
            TreeEvent::Escalated { child, .. } => Ok(Decision::Escalated {
                child: child.name().to_string(),
            }),
            other => Err(format!("{other:?}")),
        });
    }
    out
}

/// The real supervisor's child table as the model lists it.
fn listed(children: Vec<nevil_actors::ChildInfo>) -> Vec<Result<Listed, String>> {
    children
        .into_iter()
        .map(|c| {
            let state = match c.incarnation {
                Incarnation::Live(_) => State::Live,
                Incarnation::Restarting => State::Restarting,
                Incarnation::Undefined => State::Undefined,
            };
            Ok(Listed {
                name: c.name,
                state,
            })
        })
        .collect()
}

fn start_result(r: Result<ractor::ActorCell, StartError>) -> Result<CallResult, String> {
    match r {
        Ok(_) => Ok(CallResult::Ok),
        Err(StartError::Child { .. }) => Ok(CallResult::StartFailed),
        Err(StartError::Spec(_)) => Ok(CallResult::Duplicate),
        Err(other) => Err(other.to_string()),
    }
}

fn call_result<T>(r: Result<T, CallError>) -> Result<CallResult, String> {
    match r {
        Ok(_) => Ok(CallResult::Ok),
        Err(CallError::NoSuchChild { .. }) => Ok(CallResult::NoSuchChild),
        Err(CallError::Running(_)) => Ok(CallResult::Running),
        Err(CallError::Restarting(_)) => Ok(CallResult::Restarting),
        Err(CallError::StartFailed { .. }) => Ok(CallResult::StartFailed),
        Err(other) => Err(other.to_string()),
    }
}

/// The real supervisor and where it reports.
struct Real {
    tree: Tree,
    log: Log,
    lives: support::Events,
    events: broadcast::Receiver<TreeEvent>,
}

/// What a supervisor whose start failed reported.
struct Failed {
    lives: support::Events,
    events: broadcast::Receiver<TreeEvent>,
}

impl Real {
    async fn start(case: &Case, names: &[String]) -> Result<Self, Failed> {
        let (log, lives) = support::log();
        let feed = EventFeed::default();
        let events = feed.subscribe();
        let specs: Vec<ChildSpec> = names
            .iter()
            .zip(&case.children)
            .map(|(name, (r, failing))| {
                if *failing > 0 {
                    log.fail_starts(name, *failing);
                }
                Probe::new(name, &log).spec().restart(real_restart(*r))
            })
            .collect();
        let mut flags = SupervisorFlags::new(real_strategy(case.strategy))
            .intensity(case.intensity, Duration::from_millis(case.period_ms));
        if let Some(b) = case.backoff() {
            flags = flags
                .backoff(nevil_actors::Backoff {
                    base: b.base,
                    max: b.max,
                    reset_after: b.reset_after,
                })
                .seed(b.seed);
        }
        let context = TreeContext {
            events: feed,
            ..TreeContext::default()
        };
        match Tree::start_in("root", flags, specs, context).await {
            Ok(tree) => Ok(Self {
                tree,
                log,
                lives,
                events,
            }),
            Err(StartError::Escalated(_)) => Err(Failed { lives, events }),
            Err(other) => panic!("the tree did not start: {other}"),
        }
    }

    /// Makes the live child `name` exit with `reason`.
    fn exit(&self, name: &str, reason: Reason) {
        let path = format!("root/{name}");
        let cell = support::cell_of(&self.tree, &path);
        match reason {
            Reason::Normal => support::tell(&self.tree, &path, ProbeMsg::Exit),
            Reason::Shutdown => cell.stop(Some(ExitReason::SHUTDOWN.into())),
            Reason::Error => support::tell(&self.tree, &path, ProbeMsg::Fail),
            Reason::Panic => support::tell(&self.tree, &path, ProbeMsg::Panic),
            Reason::Killed => cell.kill(),
            Reason::StartupFailure => unreachable!("not an op"),
        }
    }

    /// Everything the children and the supervisor reported since the last call.
    fn reported(&mut self) -> (Vec<Result<Decision, String>>, Vec<String>) {
        (decisions(&mut self.events), self.lives.drain())
    }
}

/// Waits until the supervisor has done everything the last event calls for (two ticks
/// of the paused clock), and whatever restart falls due in the tick it ends in.
async fn settled(tree: &Tree) {
    idle().await;
    settle(tree).await;
    idle().await;
    caught_up(tree).await;
}

/// Lets every task woken in this tick run (a backed-off restart due now sends its
/// message), then waits until the supervisor has handled it: so a restart due in the
/// tick an event happens in comes first, as the model has it.
async fn caught_up(tree: &Tree) {
    tokio::task::yield_now().await;
    settle(tree).await;
}

fn expected(model: &mut Model) -> (Vec<Result<Decision, String>>, Vec<String>) {
    let (decisions, lives) = model.take();
    (
        decisions.into_iter().map(Ok).collect(),
        lives.iter().map(Life::to_string).collect(),
    )
}

/// Runs `case` on the real supervisor and the model side by side.
async fn check(case: Case) -> Result<(), TestCaseError> {
    let names: Vec<String> = (0..case.children.len()).map(|i| format!("c{i}")).collect();
    let specs: Vec<(String, RestartType, u32)> = names
        .iter()
        .cloned()
        .zip(case.children.iter().copied())
        .map(|(name, (r, failing))| (name, r, failing))
        .collect();
    let t0 = Instant::now();
    let started = Real::start(&case, &names).await;
    let mut model = Model::start(
        Flags {
            strategy: case.strategy,
            intensity: case.intensity,
            period: Duration::from_millis(case.period_ms),
            backoff: case.backoff(),
        },
        &specs,
    );
    prop_assert_eq!(t0.elapsed(), model.started_at(), "its start took");
    let mut real = match started {
        Ok(real) => real,
        Err(mut failed) => {
            prop_assert!(model.escalated(), "the supervisor failed to start");
            let reported = (decisions(&mut failed.events), failed.lives.drain());
            prop_assert_eq!(reported, expected(&mut model), "at a failed start");
            return Ok(());
        }
    };
    prop_assert!(!model.escalated(), "the supervisor started");
    settled(&real.tree).await;
    prop_assert_eq!(real.reported(), expected(&mut model), "at start");

    let mut added = 0;
    for (step, op) in case.ops.iter().enumerate() {
        let now = t0.elapsed();
        let mut answers = None;
        match *op {
            Op::Exit {
                child,
                reason,
                failing_starts,
            } => {
                let running = model.running();
                if running.is_empty() {
                    continue;
                }
                let name = &running[child % running.len()];
                if failing_starts > 0 {
                    real.log.fail_starts(name, failing_starts);
                    model.fail_starts(name, failing_starts);
                }
                real.exit(name, reason);
                model.exit(name, reason, now);
            }
            Op::StartChild {
                restart,
                fail,
                duplicate,
            } => {
                let name = match model.names().first() {
                    Some(first) if duplicate => first.clone(),
                    _ => {
                        added += 1;
                        format!("d{added}")
                    }
                };
                if fail {
                    real.log.fail_starts(&name, 1);
                    model.fail_starts(&name, 1);
                }
                let spec = Probe::new(&name, &real.log)
                    .spec()
                    .restart(real_restart(restart));
                let got = start_result(real.tree.root().start_child(spec).await);
                answers = Some((got, model.start_child(&name, restart, now)));
            }
            Op::StopChild { child } => {
                let name = pick(&model.names(), child);
                let got = call_result(real.tree.root().stop_child(&name).await);
                answers = Some((got, model.stop_child(&name)));
            }
            Op::RestartChild { child, fail } => {
                let name = pick(&model.names(), child);
                if fail {
                    real.log.fail_starts(&name, 1);
                    model.fail_starts(&name, 1);
                }
                let got = call_result(real.tree.root().restart_child(&name).await);
                answers = Some((got, model.restart_child(&name, now)));
            }
            Op::Wait { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
        settled(&real.tree).await;
        model.advance(t0.elapsed());
        if model.tied() {
            // Two restarts fell due in one tick: their order was the timer wheel's,
            // which the model does not know. The case ends here.
            break;
        }
        if let Some((got, want)) = answers {
            prop_assert_eq!(got, Ok(want), "step {}: {:?}", step, op);
        }
        prop_assert_eq!(
            real.reported(),
            expected(&mut model),
            "step {}: {:?} at {:?}",
            step,
            op,
            now
        );
        if model.escalated() {
            let outcome = real.tree.wait().await;
            prop_assert!(
                matches!(&outcome, ExitReason::Error(m) if m.starts_with("escalated")),
                "step {}: the supervisor escalated, but ended with {}",
                step,
                outcome
            );
            return Ok(());
        }
        let table = real.tree.root().which_children().await.unwrap();
        let want: Vec<Result<Listed, String>> =
            model.which_children().into_iter().map(Ok).collect();
        prop_assert_eq!(listed(table), want.clone(), "step {}: {:?}", step, op);
        let counts = real.tree.root().count_children().await.unwrap();
        let live = want
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    Ok(Listed {
                        state: State::Live,
                        ..
                    })
                )
            })
            .count();
        prop_assert_eq!(
            (
                counts.specs,
                counts.active,
                counts.workers,
                counts.supervisors
            ),
            (want.len(), live, want.len(), 0),
            "step {}: count_children after {:?}",
            step,
            op
        );
    }
    real.tree.shutdown().await;
    model.shutdown();
    prop_assert_eq!(real.reported(), expected(&mut model), "at shutdown");
    Ok(())
}

/// The `index`-th of `names`; one past the end is a name that is not there.
fn pick(names: &[String], index: usize) -> String {
    let index = index % (names.len() + 1);
    names
        .get(index)
        .cloned()
        .unwrap_or_else(|| "ghost".to_string())
}

/// Runs one case on a fresh current-thread runtime with a paused clock.
fn run(case: Case) -> Result<(), TestCaseError> {
    quiet_panics();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(check(case))
}

/// Probes panic on purpose, thousands of times: keep those panics out of the output.
fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let told = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.ends_with("was told to panic"));
            if !told {
                default(info);
            }
        }));
    });
}

/// How many cases: `PROPTEST_CASES`, else 256.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_supervisor_decides_as_the_model(case in case()) {
        run(case)?;
    }
}

// Shrunk counterexamples, each a named case.

/// Found by the model (backoff): under `rest_for_one`, `c1` exits and waits for its
/// backed-off restart with `d1`; then `c0` exits, and its restart takes in `c1` and `d1`.
/// The supervisor "stopped" the waiting siblings again and counted a second restart of
/// each for their one new incarnation (`restarts` 2 for `start c1#2` and `start d1#2`).
#[test]
fn a_sibling_waiting_for_its_backed_off_restart_is_counted_once() {
    run(Case {
        strategy: Policy::RestForOne,
        intensity: 3,
        period_ms: 1,
        backoff: Some((5, 20, 0, 0)),
        children: vec![(RestartType::Permanent, 0), (RestartType::Permanent, 0)],
        ops: vec![
            Op::StartChild {
                restart: RestartType::Permanent,
                fail: false,
                duplicate: false,
            },
            Op::Exit {
                child: 1,
                reason: Reason::Normal,
                failing_starts: 0,
            },
            Op::Exit {
                child: 0,
                reason: Reason::Normal,
                failing_starts: 0,
            },
            Op::Wait { ms: 1 },
        ],
    })
    .unwrap();
}
