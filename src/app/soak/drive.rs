//! The soak's loop: start the robot, play the schedule, gather the trace, check the
//! invariants every tick, and shut down with the motors first.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use nevil_actors::{ChildSpec, TreeEvent, TreeView};
use ractor::ActorId;
use tokio::sync::broadcast::error::TryRecvError;

use super::escalation::EscalationCheck;
use super::probe::{self, Probe, ProbeLog, ProbeMsg, Round};
use super::rss::{self, RssCheck};
use super::schedule::{self, Action, Step};
use super::stops::{StopCheck, Trace};
use super::{invariant, Progress, SoakOptions, Summary, Violation, STOP_CEILING};
use crate::app::inject::Fault;
use crate::app::{AppError, Devices, ExtraWorkers, Robot, RunOptions};
use crate::config::{Backend, Config};
use crate::core::clock::Clock;
use crate::hw::sim::{DriveCommand, Sim, SimSensor};
use crate::services::telemetry::ProcessStats;

/// How often the loop looks: steps and endings fire on this grid.
const TICK: Duration = Duration::from_millis(50);
/// How often the trace is gathered and the stop times checked.
const GATHER: Duration = Duration::from_millis(250);
/// How far behind now the trace is taken as complete: a latch change or a tree event
/// stamped just before a gather may reach it only after.
const LAG: Duration = Duration::from_millis(400);
/// How often resident memory is sampled.
const RSS_EVERY: Duration = Duration::from_secs(1);
/// How long a resumed probe has to handle its round's messages.
const PROBE_GRACE: Duration = Duration::from_secs(2);
/// How often a progress line is due.
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// Why a soak could not run.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// The config is not the simulated robot's.
    #[error("the soak runs the simulated robot only; this config's backend is {0:?}")]
    NotSim(Backend),
    /// The robot did not start.
    #[error(transparent)]
    Start(#[from] AppError),
    /// The simulated devices did not open.
    #[error(transparent)]
    Devices(#[from] crate::hw::HwError),
    /// No schedule could be drawn.
    #[error(transparent)]
    Schedule(#[from] schedule::ScheduleError),
}

/// Something the soak must undo later.
#[derive(Debug)]
enum Ending {
    /// Kill this incarnation of the worker at `path`, if it is still alive.
    Kill { path: String, id: ActorId },
    /// Plug the sensor back.
    Replug(SimSensor),
    /// Resume the worker.
    Resume(String),
    /// Resume the probe: its round's messages are due.
    ResumeProbe,
}

/// A probe round under way.
#[derive(Debug)]
struct ProbeRound {
    sent: Range<u64>,
    incarnation: u64,
    /// Set at the resume: the round is judged by then.
    deadline: Option<Duration>,
}

/// Runs a soak of `opts` on the simulated robot of `config`, calling `progress` once a
/// minute. The returned summary says whether every invariant held.
///
/// # Errors
///
/// [`SoakError`] when it cannot start: not the simulated robot, the robot did not
/// start, or the tree has no worker to inject into.
pub async fn soak(
    config: &Config,
    opts: SoakOptions,
    mut progress: impl FnMut(&Progress),
) -> Result<Summary, SoakError> {
    if config.robot.backend != Backend::Sim {
        return Err(SoakError::NotSim(config.robot.backend));
    }
    let clock = Clock::start();
    let devices = Devices::open(config, clock)?;
    let sim = devices.sim.clone().ok_or(SoakError::NotSim(Backend::Sim))?;
    // However the soak is left, the motors stop.
    let _motors = crate::robot::safety::emergency::MotorGuard::new(devices.hw.drive.clone());
    let log = ProbeLog::default();
    let probe_spec =
        ChildSpec::worker(probe::NAME, Probe { log: log.clone() }, ()).flood(|| ProbeMsg::Noop);
    let run = RunOptions {
        tree_dump: std::env::temp_dir().join(format!("nevil-soak-{}.json", std::process::id())),
        loop_timer: crate::core::ticker::Timer::Precise,
        extra: ExtraWorkers(vec![probe_spec]),
        ..RunOptions::default()
    };
    let robot = Robot::start(config, devices, clock, &run).await?;
    let view = robot.tree().view();
    let events = view.subscribe();
    let probe_path = format!("root/management/{}", probe::NAME);
    let targets: Vec<String> = view
        .snapshot()
        .root
        .walk()
        .into_iter()
        .filter(|n| n.kind == nevil_actors::ChildKind::Worker && n.path.as_str() != probe_path)
        .map(|n| n.path.to_string())
        .collect();
    let steps = schedule::steps(opts.seed, opts.length(), &targets)?;
    let sup = &config.supervision;
    let mut soak = Soak {
        clock,
        view,
        sim,
        log,
        probe_path,
        stops: StopCheck::new(STOP_CEILING.as_secs_f64()),
        escalation: EscalationCheck::new(sup.max_restarts, Duration::from_secs_f64(sup.period_s)),
        rss: RssCheck::new(
            rss::warmup(opts.length()),
            schedule::leak_budget(&steps) + rss::SLACK,
        ),
        events,
        pending: Vec::new(),
        endings: Vec::new(),
        power_seen: 0,
        latch_seen: 0,
        round: None,
        next_seq: 0,
        counts: Counts::default(),
        violation: None,
    };
    let ended = {
        let wait = robot.wait();
        tokio::pin!(wait);
        soak.play(&robot, &steps, opts.length(), &mut wait, &mut progress)
            .await
    };
    // The motors first, as `nevil run` does.
    robot.stop_motors("shutdown");
    soak.gather(&robot, None);
    let (exit, _report) = robot.shutdown().await;
    soak.finish(ended, &exit);
    Ok(soak.summary(opts, &exit))
}

#[derive(Debug, Default)]
struct Counts {
    steps: u64,
    faults: BTreeMap<&'static str, u64>,
    skipped: u64,
    killed: u64,
    suspends: u64,
    rounds: u64,
    void: u64,
    messages: u64,
    estops: u64,
    lost: u64,
}

struct Soak {
    clock: Clock,
    view: TreeView,
    sim: Sim,
    log: ProbeLog,
    probe_path: String,
    stops: StopCheck,
    escalation: EscalationCheck,
    rss: RssCheck,
    events: tokio::sync::broadcast::Receiver<TreeEvent>,
    /// Trace items gathered but not yet complete up to their time.
    pending: Vec<Trace>,
    /// What to undo when, oldest first.
    endings: Vec<(Duration, Ending)>,
    /// Power changes and latch changes read so far (counting those dropped).
    power_seen: u64,
    latch_seen: u64,
    round: Option<ProbeRound>,
    next_seq: u64,
    counts: Counts,
    violation: Option<Violation>,
}

/// Invariant `clean_exit`: the root did not give up during the soak (`gave_up`), the
/// tree's shutdown ended normally (`exit`), and the motors' last command, after the
/// shutdown, is zero.
///
/// # Errors
///
/// The first of those that does not hold.
fn check_exit(
    gave_up: Option<&nevil_actors::ExitReason>,
    exit: &nevil_actors::ExitReason,
    last_drive: Option<DriveCommand>,
) -> Result<(), String> {
    if let Some(reason) = gave_up {
        return Err(format!("the root supervisor gave up: {reason}"));
    }
    if exit.is_abnormal() {
        return Err(format!("the tree ended abnormally: {exit}"));
    }
    match last_drive {
        Some(d) if d.left != 0.0 || d.right != 0.0 => Err(format!(
            "the motors are still powered after the shutdown: left {} %, right {} % since {:.3} s",
            d.left, d.right, d.at_s
        )),
        _ => Ok(()),
    }
}

/// Whether the exit of the actor at `path` (a worker, or a group supervisor taking its
/// workers down) must stop the motors: the motion path and the safety watchdog.
fn stops_motion(path: &str) -> bool {
    const MOTION: [&str; 7] = [
        "root/drivers/motors",
        "root/drivers/steering",
        "root/control/motion",
        "root/safety/watchdog",
        "root/drivers",
        "root/control",
        "root/safety",
    ];
    MOTION.contains(&path)
}

impl Soak {
    fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    fn fail(&mut self, invariant: &'static str, detail: String) {
        if self.violation.is_none() {
            let at_s = self.now().as_secs_f64();
            self.violation = Some(Violation {
                invariant,
                detail,
                at_s,
            });
        }
    }

    /// Plays `steps` until `length` or the first violation; `Some(reason)` if the root
    /// gave up meanwhile.
    async fn play(
        &mut self,
        robot: &Robot,
        steps: &[Step],
        length: Duration,
        wait: &mut std::pin::Pin<&mut impl std::future::Future<Output = nevil_actors::ExitReason>>,
        progress: &mut impl FnMut(&Progress),
    ) -> Option<nevil_actors::ExitReason> {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next = steps.iter().peekable();
        let (mut gathered, mut sampled, mut reported) = (Duration::ZERO, Duration::ZERO, 1);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                exit = wait.as_mut() => return Some(exit),
            }
            let now = self.now();
            if now >= length || self.violation.is_some() {
                return None;
            }
            while let Some(step) = next.next_if(|s| s.at <= now) {
                self.act(&step.action).await;
            }
            self.end_due(now);
            self.judge_round(now);
            if now - gathered >= GATHER {
                gathered = now;
                self.gather(robot, Some(now.saturating_sub(LAG)));
            }
            if now - sampled >= RSS_EVERY {
                sampled = now;
                let bytes = ProcessStats::read().resident_bytes;
                if let Err(e) = self.rss.sample(now, bytes) {
                    self.fail(invariant::RSS_FLAT, e);
                }
            }
            if now >= PROGRESS_EVERY * reported {
                reported += 1;
                progress(&self.progress(now));
            }
        }
    }

    fn progress(&self, now: Duration) -> Progress {
        Progress {
            at_s: now.as_secs_f64(),
            faults: self.counts.faults.values().sum(),
            restarts: self.escalation.restarts(),
            escalations: self.escalation.escalations(),
            rss_bytes: ProcessStats::read().resident_bytes,
            worst_stop_ms: self.stops.worst().0 * 1e3,
        }
    }

    fn later(&mut self, dwell: Duration, ending: Ending) {
        let at = self.now() + dwell;
        let i = self.endings.partition_point(|(t, _)| *t <= at);
        self.endings.insert(i, (at, ending));
    }

    async fn act(&mut self, action: &Action) {
        self.counts.steps += 1;
        let at_s = self.now().as_secs_f64();
        match action {
            Action::Fault {
                target,
                fault: Fault::Unplug,
                dwell,
            } => {
                let Some(sensor) = target.rsplit('/').next().and_then(|s| s.parse().ok()) else {
                    return;
                };
                self.sim.unplug(sensor);
                *self.counts.faults.entry("unplug").or_default() += 1;
                self.later(*dwell, Ending::Replug(sensor));
            }
            Action::Fault {
                target,
                fault: Fault::Actor(fault),
                dwell,
            } => {
                let Some(id) = self.view.actor(target).map(|c| c.get_id()) else {
                    self.counts.skipped += 1;
                    return;
                };
                if self.view.inject(target, *fault).await.is_err() {
                    self.counts.skipped += 1;
                    return;
                }
                *self.counts.faults.entry(fault.name()).or_default() += 1;
                use nevil_actors::Fault as F;
                if matches!(fault, F::Hang | F::Spin) && stops_motion(target) {
                    // Only a stop answers it: the dead-man or the watchdog must act within
                    // the ceiling, whether or not the actor is replaced (the soak's own
                    // kill at the dwell's end must not pass for a stop).
                    self.pending.push(Trace::Hazard {
                        at_s,
                        what: format!("{fault} injected into {target}"),
                        key: format!("{fault} {target}"),
                    });
                }
                if schedule::is_lasting(Fault::Actor(*fault)) {
                    let path = target.clone();
                    self.later(*dwell, Ending::Kill { path, id });
                }
            }
            Action::Suspend { target, dwell } => {
                if self.view.suspend(target) {
                    self.counts.suspends += 1;
                    self.later(*dwell, Ending::Resume(target.clone()));
                }
            }
            Action::Probe { messages, dwell } => self.start_round(*messages, *dwell),
        }
    }

    fn end_due(&mut self, now: Duration) {
        let due = self.endings.partition_point(|(t, _)| *t <= now);
        for (_, ending) in self.endings.drain(..due).collect::<Vec<_>>() {
            match ending {
                Ending::Kill { path, id } => {
                    if let Some(cell) = self.view.actor(&path).filter(|c| c.get_id() == id) {
                        cell.kill();
                        self.counts.killed += 1;
                    }
                }
                Ending::Replug(sensor) => self.sim.replug(sensor),
                Ending::Resume(path) => {
                    self.view.resume(&path);
                }
                Ending::ResumeProbe => {
                    self.view.resume(&self.probe_path);
                    if let Some(round) = &mut self.round {
                        round.deadline = Some(now + PROBE_GRACE);
                    }
                }
            }
        }
    }

    /// Suspends the probe and sends it `messages` numbered messages; resumed after
    /// `dwell`. One round at a time: a step due during a round is skipped.
    fn start_round(&mut self, messages: u32, dwell: Duration) {
        if self.round.is_some() || !self.view.suspend(&self.probe_path) {
            return;
        }
        self.log.take();
        let incarnation = self.log.incarnation();
        let start = self.next_seq;
        let mut sent = start;
        if let Some(mailbox) = self.view.mailbox::<ProbeMsg>(&self.probe_path) {
            for _ in 0..messages {
                if mailbox.cast(ProbeMsg::Seq(sent)).is_err() {
                    break;
                }
                sent += 1;
            }
        }
        self.next_seq = sent;
        if sent == start {
            // The probe is between incarnations: no round.
            self.view.resume(&self.probe_path);
            return;
        }
        self.counts.messages += sent - start;
        self.round = Some(ProbeRound {
            sent: start..sent,
            incarnation,
            deadline: None,
        });
        self.later(dwell, Ending::ResumeProbe);
    }

    /// Judges the round under way once the probe has handled it all or its grace ended.
    fn judge_round(&mut self, now: Duration) {
        let Some(round) = &self.round else { return };
        let Some(deadline) = round.deadline else {
            return;
        };
        let want = round.sent.end - round.sent.start;
        if (self.log.len() as u64) < want && now < deadline {
            return;
        }
        let handled = self.log.take();
        let verdict = if self.log.incarnation() != round.incarnation {
            Ok(Round::Void)
        } else {
            probe::check_round(round.sent.clone(), round.incarnation, &handled)
        };
        self.round = None;
        match verdict {
            Ok(Round::Held) => self.counts.rounds += 1,
            Ok(Round::Void) => self.counts.void += 1,
            Err(e) => self.fail(invariant::SUSPEND_ORDER, e),
        }
    }

    /// Reads what happened since the last gather — power changes, e-stop changes, tree
    /// events — and feeds the checks what is complete up to `horizon` (everything when
    /// `None`).
    fn gather(&mut self, robot: &Robot, horizon: Option<Duration>) {
        let report = self.sim.report();
        let total = report.power_log_dropped + report.power_log.len() as u64;
        let fresh = usize::try_from(total - self.power_seen.min(total)).unwrap_or(usize::MAX);
        let skip = report.power_log.len().saturating_sub(fresh);
        self.power_seen = total;
        self.pending
            .extend(report.power_log[skip..].iter().map(|c| Trace::Power {
                at_s: c.at_s,
                powered: c.left != 0.0 || c.right != 0.0,
            }));
        let latch = robot.estops();
        let events = latch.events();
        let total = latch.events_dropped() + events.len() as u64;
        let fresh = usize::try_from(total - self.latch_seen.min(total)).unwrap_or(usize::MAX);
        self.latch_seen = total;
        for e in &events[events.len().saturating_sub(fresh)..] {
            self.pending.push(if e.engaged {
                self.counts.estops += 1;
                Trace::Engaged {
                    at_s: e.at_s,
                    reason: e.reason.clone(),
                }
            } else {
                Trace::Released { at_s: e.at_s }
            });
        }
        self.drain_events();
        self.pending.sort_by(|a, b| a.at_s().total_cmp(&b.at_s()));
        let horizon_s = horizon.map_or(f64::INFINITY, |h| h.as_secs_f64());
        let complete = self.pending.partition_point(|t| t.at_s() <= horizon_s);
        for item in self.pending.drain(..complete) {
            self.stops.feed(item);
        }
        let check_at = horizon.unwrap_or_else(|| self.now()).as_secs_f64();
        if let Err(e) = self.stops.check(check_at) {
            self.fail(invariant::MOTORS_SAFE, e);
        }
    }

    fn drain_events(&mut self) {
        loop {
            let event = match self.events.try_recv() {
                Ok(event) => event,
                Err(TryRecvError::Lagged(n)) => {
                    self.counts.lost += n;
                    self.escalation.lagged(self.now().as_secs_f64());
                    continue;
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            };
            let at_s = self.clock.since_start(event.at()).as_secs_f64();
            match &event {
                TreeEvent::ChildExited { path, reason, .. } if stops_motion(path.as_str()) => {
                    self.pending.push(Trace::Hazard {
                        at_s,
                        what: format!("{path} exited ({reason})"),
                        key: path.to_string(),
                    });
                }
                TreeEvent::Escalated { path, .. } if stops_motion(path.as_str()) => {
                    self.pending.push(Trace::Hazard {
                        at_s,
                        what: format!("{path} escalated"),
                        key: path.to_string(),
                    });
                }
                TreeEvent::ChildRestarted { path, .. } if stops_motion(path.as_str()) => {
                    self.pending.push(Trace::Cleared {
                        at_s,
                        key: path.to_string(),
                    });
                }
                _ => {}
            }
            if let Err(e) = self.escalation.feed(at_s, &event) {
                self.fail(invariant::ESCALATION_EXPLAINED, e);
            }
        }
    }

    /// The end's own checks ([`check_exit`]).
    fn finish(
        &mut self,
        gave_up: Option<nevil_actors::ExitReason>,
        exit: &nevil_actors::ExitReason,
    ) {
        let last = self.sim.report().last_drive;
        if let Err(e) = check_exit(gave_up.as_ref(), exit, last) {
            self.fail(invariant::CLEAN_EXIT, e);
        }
    }

    fn summary(&self, opts: SoakOptions, exit: &nevil_actors::ExitReason) -> Summary {
        let minutes = opts.minutes;
        let (worst_s, worst_what) = self.stops.worst();
        Summary {
            seed: opts.seed,
            minutes,
            duration_s: self.now().as_secs_f64(),
            passed: self.violation.is_none(),
            violation: self.violation.clone(),
            replay: Summary::replay_command(minutes, opts.seed),
            steps: self.counts.steps,
            faults: self.counts.faults.clone(),
            faults_injected: self.counts.faults.values().sum(),
            faults_skipped: self.counts.skipped,
            faults_ended_by_kill: self.counts.killed,
            suspends: self.counts.suspends,
            probe_rounds: self.counts.rounds,
            probe_rounds_void: self.counts.void,
            probe_messages: self.counts.messages,
            restarts: self.escalation.restarts(),
            escalations: self.escalation.escalations(),
            escalations_unjudged: self.escalation.unjudged(),
            events_lost: self.counts.lost,
            estops: self.counts.estops,
            hazards: self.stops.hazards(),
            worst_stop_ms: worst_s * 1e3,
            worst_stop_hazard: worst_what.to_string(),
            stop_ceiling_ms: self.stops.ceiling() * 1e3,
            peak_rss_bytes: self.rss.peak(),
            warmup_peak_rss_bytes: self.rss.warmup_peak(),
            rss_bound_bytes: self.rss.bound(),
            exit: exit.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nevil_actors::ExitReason;

    #[test]
    fn a_clean_exit_holds_and_anything_else_fails() {
        let stopped = DriveCommand {
            left: 0.0,
            right: 0.0,
            at_s: 9.0,
        };
        check_exit(None, &ExitReason::Normal, Some(stopped)).unwrap();
        check_exit(None, &ExitReason::Shutdown, None).unwrap();
        let gave_up = ExitReason::Error("root: restart intensity exceeded".into());
        let e = check_exit(Some(&gave_up), &gave_up, Some(stopped)).unwrap_err();
        assert!(e.starts_with("the root supervisor gave up: "), "{e}");
        let e = check_exit(None, &ExitReason::Killed, Some(stopped)).unwrap_err();
        assert!(e.starts_with("the tree ended abnormally"), "{e}");
        let moving = DriveCommand {
            left: 20.0,
            ..stopped
        };
        let e = check_exit(None, &ExitReason::Normal, Some(moving)).unwrap_err();
        assert!(
            e.contains("still powered after the shutdown: left 20 %"),
            "{e}"
        );
    }

    #[test]
    fn the_motion_path_is_the_motors_steering_controller_and_watchdog() {
        for path in ["root/drivers/motors", "root/control/motion", "root/drivers"] {
            assert!(stops_motion(path), "{path}");
        }
        for path in ["root/drivers/ultrasonic", "root/management", "root"] {
            assert!(!stops_motion(path), "{path}");
        }
    }
}
