//! The flight recorder: writes every bus message, in the order it receives them, to a
//! rotating recording (see [`crate::services::recorder::recording`]), so a run seen on the robot can be
//! replayed on a laptop with `nevil replay`.
//!
//! Given the tree's event feed ([`Recorder::with_tree`]), it also records what the
//! supervisors did — restarts, exits and escalations ([`Record::Tree`]) — on the run's
//! clock, so a plot of the run can show them.
//!
//! Given the e-stop latch ([`Recorder::with_shutdown`]), a recorder stopped before its
//! mailbox reached the shutdown's e-stop (throttled by its quota, say: a stop does not
//! wait for queued messages) writes that e-stop as it stops, dated then, so a recording
//! always ends with it.
//!
//! It is an ordinary bus subscriber, so if it falls behind, the bus drops (and counts)
//! messages to it rather than slowing anyone down. The actor only queues: the file I/O
//! runs on a writer thread ([`sink`]), which flushes every 100 ms, `fsync`s every second,
//! before each rotation and when the recorder stops.
//!
//! It never takes the robot down: a write error (a full disk) turns recording off for
//! the run with one error event while the actor keeps running, and a restart of the
//! actor continues the current file instead of rotating, so a crash loop cannot push the
//! good recordings out. A new run of the process rotates.

pub mod recording;
pub mod sink;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nevil_actors::{EventFeed, Mailbox, TreeEvent};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::task::JoinHandle;

use crate::bus::{Bus, EStop};
use crate::core::clock::Clock;
use crate::core::ticker::{self, Timer};
use crate::robot::safety::latch::SHUTDOWN;
use crate::robot::safety::EStopLatch;
use crate::services::recorder::recording::{Record, TreeKind, TreeRecord};
use crate::services::recorder::sink::{Open, Sink};

/// Messages of the [`Recorder`].
pub enum RecorderMsg {
    /// A bus message to write.
    Record(Record),
    /// Time to flush.
    Flush,
    /// Does nothing: any number of them is harmless, so a mailbox flood (a fault
    /// injected into the tree) is made of them.
    Noop,
}

/// The flight recorder actor.
#[derive(Clone)]
pub struct Recorder {
    /// Where to write.
    pub path: PathBuf,
    /// Rotation size.
    pub max_file_bytes: u64,
    /// Rotated files kept.
    pub keep_files: u32,
    /// The bus.
    pub bus: Bus,
    /// The writer thread, shared by the actor's incarnations within a run.
    run: Arc<Mutex<RunSink>>,
    /// The tree's events, if recorded.
    tree: Option<TreeFeed>,
    /// The e-stop latch and the run's clock: the shutdown's e-stop is written at the stop
    /// if the mailbox did not bring it.
    shutdown: Option<(EStopLatch, Clock)>,
}

/// The tree's event feed as the recorder reads it: the receiver, kept across
/// incarnations, and the run's clock that dates the events.
#[derive(Clone)]
struct TreeFeed {
    events: Arc<tokio::sync::Mutex<Receiver<TreeEvent>>>,
    clock: Clock,
}

/// The record of a tree event: restarts, exits and escalations; `None` for the others
/// (quota actions). Dated on `clock`, the run's clock that dates the bus messages.
pub fn tree_record(event: &TreeEvent, clock: &Clock) -> Option<Record> {
    let (kind, path, detail) = match event {
        TreeEvent::ChildRestarted { path, restarts, .. } => {
            (TreeKind::Restart, path, format!("restart {restarts}"))
        }
        TreeEvent::ChildExited {
            path,
            reason,
            restart,
            ..
        } => {
            let then = if *restart {
                "restarting"
            } else {
                "not restarted"
            };
            (TreeKind::Exit, path, format!("{reason} ({then})"))
        }
        TreeEvent::Escalated {
            path,
            child,
            reason,
            ..
        } => (TreeKind::Escalation, path, format!("{child}: {reason}")),
        TreeEvent::QuotaEnforced { .. } => return None,
    };
    let t_us = u64::try_from(clock.since_start(event.at()).as_micros()).unwrap_or(u64::MAX);
    Some(Record::Tree(TreeRecord {
        t_us,
        kind,
        path: path.to_string(),
        detail,
    }))
}

/// The writer of this run, if one was started.
#[derive(Default)]
struct RunSink {
    sink: Option<Sink>,
    started: bool,
}

/// State of the [`Recorder`].
pub struct RecorderState {
    sink: Sink,
    /// Reads the tree's feed into the mailbox; ends with this incarnation.
    forwarder: Option<JoinHandle<()>>,
    /// Whether the shutdown's e-stop came through the mailbox and was written.
    shutdown_written: bool,
}

impl Recorder {
    /// A recorder of `bus` to `path`, rotating at `max_file_bytes` and keeping
    /// `keep_files` rotated files.
    pub fn new(path: PathBuf, max_file_bytes: u64, keep_files: u32, bus: Bus) -> Self {
        Self {
            path,
            max_file_bytes,
            keep_files,
            bus,
            run: Arc::default(),
            tree: None,
            shutdown: None,
        }
    }

    /// Makes sure the recording ends with the shutdown's e-stop: if `latch` holds it when
    /// the recorder stops and its mailbox never brought it, it is written then, dated on
    /// `clock`.
    #[must_use]
    pub fn with_shutdown(mut self, latch: EStopLatch, clock: Clock) -> Self {
        self.shutdown = Some((latch, clock));
        self
    }

    /// Also records the restarts, exits and escalations published on `feed` (subscribed
    /// now: make it before the tree starts to see the start too), dated on `clock`.
    #[must_use]
    pub fn with_tree(mut self, feed: &EventFeed, clock: Clock) -> Self {
        self.tree = Some(TreeFeed {
            events: Arc::new(tokio::sync::Mutex::new(feed.subscribe())),
            clock,
        });
        self
    }

    /// Spawns the task that forwards the tree's events to `myself` as records. The
    /// event that finds this incarnation gone (a crash skips `post_stop`, which stops the
    /// task) goes straight to `sink`, the run's writer, so none is lost to a restart.
    fn forward_tree(&self, myself: &ActorRef<RecorderMsg>, sink: Sink) -> Option<JoinHandle<()>> {
        let tree = self.tree.clone()?;
        let mailbox = Mailbox::own(myself);
        Some(tokio::spawn(async move {
            // Waits for a crashed incarnation's forwarder to be gone (`post_stop`).
            let mut events = tree.events.lock().await;
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "the recorder fell behind the tree's events");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                };
                let Some(record) = tree_record(&event, &tree.clock) else {
                    continue;
                };
                if mailbox.cast(RecorderMsg::Record(record.clone())).is_err() {
                    sink.record(record);
                    break;
                }
            }
        }))
    }

    /// The run's writer: the running one (or the failed one, which keeps recording off),
    /// else a new one that rotates (first start of the run) or appends (the previous
    /// writer thread died).
    fn sink(&self) -> std::io::Result<Sink> {
        let mut run = self.run.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sink) = &run.sink {
            if sink.failed() || !sink.finished() {
                return Ok(sink.clone());
            }
        }
        let open = if run.started {
            Open::Append
        } else {
            Open::Create
        };
        let sink = Sink::spawn(&self.path, self.max_file_bytes, self.keep_files, open)?;
        run.sink = Some(sink.clone());
        run.started = true;
        Ok(sink)
    }
}

impl Actor for Recorder {
    type Msg = RecorderMsg;
    type State = RecorderState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<RecorderMsg>,
        _: (),
    ) -> Result<RecorderState, ActorProcessingErr> {
        let sink = self
            .sink()
            .map_err(|e| format!("{}: writer thread: {e}", self.path.display()))?;
        let b = &self.bus;
        let me = || myself.clone();
        b.range.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Range(d.into_inner()))
        });
        b.line.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Line(d.into_inner()))
        });
        b.battery.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Battery(d.into_inner()))
        });
        b.command.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Command(d.into_inner()))
        });
        b.drive.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::Drive(d.into_inner()))
        });
        b.estop.subscribe("recorder", me(), |d| {
            RecorderMsg::Record(Record::EStop(d.into_inner()))
        });
        ticker::spawn(
            Timer::Tokio,
            "recorder",
            Duration::from_millis(100),
            myself.clone(),
            |_| RecorderMsg::Flush,
        )?;
        let forwarder = self.forward_tree(&myself, sink.clone());
        tracing::info!(path = %self.path.display(), "recording bus messages");
        Ok(RecorderState {
            sink,
            forwarder,
            shutdown_written: false,
        })
    }

    async fn handle(
        &self,
        _: ActorRef<RecorderMsg>,
        msg: RecorderMsg,
        state: &mut RecorderState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RecorderMsg::Record(r) => {
                if let Record::EStop(e) = &r {
                    state.shutdown_written |= e.engaged && e.reason == SHUTDOWN;
                }
                state.sink.record(r);
            }
            RecorderMsg::Flush => state.sink.flush(),
            RecorderMsg::Noop => {}
        }
        Ok(())
    }

    /// A graceful stop (shutdown, or a supervisor stopping it) writes out and syncs
    /// everything it queued; the writer thread stays for a successor. A crash skips
    /// this, and the successor takes over the writer as it is.
    async fn post_stop(
        &self,
        _: ActorRef<RecorderMsg>,
        state: &mut RecorderState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(forwarder) = &state.forwarder {
            forwarder.abort();
        }
        if let Some((latch, clock)) = &self.shutdown {
            if !state.shutdown_written && latch.holds(SHUTDOWN) {
                state.sink.record(Record::EStop(EStop {
                    t_us: clock.now_us(),
                    engaged: true,
                    reason: SHUTDOWN.into(),
                }));
                state.shutdown_written = true;
            }
        }
        if !state.sink.failed() {
            state.sink.sync().await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Range;
    use crate::services::recorder::recording::{read, rotated};

    fn range(t: u64) -> Range {
        Range {
            t_us: t,
            distance_m: None,
        }
    }

    async fn incarnation(recorder: &Recorder) -> ActorRef<RecorderMsg> {
        let (actor, _) = Actor::spawn(None, recorder.clone(), ()).await.unwrap();
        actor
    }

    #[tokio::test(start_paused = true)]
    async fn tree_events_become_dated_records_and_quota_actions_do_not() {
        use nevil_actors::{ActorPath, ExitReason};
        let clock = Clock::start();
        tokio::time::advance(Duration::from_millis(1500)).await;
        let path = ActorPath::from("root/control/motion");
        let now = tokio::time::Instant::now();
        let restarted = TreeEvent::ChildRestarted {
            at: now,
            path: path.clone(),
            restarts: 2,
        };
        assert_eq!(
            tree_record(&restarted, &clock),
            Some(Record::Tree(TreeRecord {
                t_us: 1_500_000,
                kind: TreeKind::Restart,
                path: "root/control/motion".into(),
                detail: "restart 2".into(),
            }))
        );
        let exited = TreeEvent::ChildExited {
            at: now,
            path: path.clone(),
            reason: ExitReason::Panic("injected".into()),
            restart: true,
            delay: None,
        };
        let Some(Record::Tree(r)) = tree_record(&exited, &clock) else {
            panic!("no record");
        };
        assert_eq!(r.kind, TreeKind::Exit);
        assert!(r.detail.contains("panic: injected"), "{}", r.detail);
        let quota = TreeEvent::QuotaEnforced {
            at: now,
            path,
            resource: nevil_actors::quota::Resource::Cpu,
            usage: 1.0,
            limit: 0.5,
            action: nevil_actors::quota::Action::Warn,
        };
        assert_eq!(tree_record(&quota, &clock), None);
    }

    /// The shutdown's e-stop ends the recording once: written at the stop when the
    /// mailbox did not bring it, not again when it did.
    #[tokio::test]
    async fn the_recording_ends_with_the_shutdown_estop_once() {
        let dir = std::env::temp_dir().join(format!("nevil-rec-shut-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let shutdowns = |path: &std::path::Path| {
            read(path)
                .unwrap()
                .records
                .iter()
                .filter(|r| matches!(r, Record::EStop(e) if e.engaged && e.reason == SHUTDOWN))
                .count()
        };
        for via_bus in [false, true] {
            let path = dir.join(format!("run-{via_bus}.rec"));
            let bus = Bus::new(10_000);
            let latch = EStopLatch::default();
            let recorder = Recorder::new(path.clone(), 1 << 20, 0, bus.clone())
                .with_shutdown(latch.clone(), Clock::start());
            let actor = incarnation(&recorder).await;
            assert_eq!(bus.range.publish(range(1)), 1);
            latch.set(SHUTDOWN, SHUTDOWN.into(), 0.0);
            if via_bus {
                bus.estop.publish(EStop {
                    t_us: 2,
                    engaged: true,
                    reason: SHUTDOWN.into(),
                });
                actor.drain_and_wait(None).await.unwrap();
            } else {
                actor.stop_and_wait(None, None).await.unwrap();
            }
            assert_eq!(shutdowns(&path), 1, "via the bus: {via_bus}");
            let last = read(&path).unwrap().records.pop();
            assert!(matches!(last, Some(Record::EStop(_))), "{last:?}");
        }
        // Without the latch holding it, nothing is made up.
        let path = dir.join("none.rec");
        let recorder = Recorder::new(path.clone(), 1 << 20, 0, Bus::new(10))
            .with_shutdown(EStopLatch::default(), Clock::start());
        incarnation(&recorder)
            .await
            .stop_and_wait(None, None)
            .await
            .unwrap();
        assert_eq!(shutdowns(&path), 0);
    }

    /// A graceful stop, a crash and a last graceful stop, all in one run: one file, no
    /// rotation, the records of every incarnation in order (the crashed one's up to
    /// where it was killed).
    #[tokio::test]
    async fn restarts_within_a_run_continue_the_file() {
        let dir = std::env::temp_dir().join(format!("nevil-recorder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.rec");
        // The previous run's file: rotated away once, at the first start.
        std::fs::write(&path, b"previous run").unwrap();
        let bus = Bus::new(10_000);
        let recorder = Recorder::new(path.clone(), 1 << 20, 3, bus.clone());

        let first = incarnation(&recorder).await;
        (0..50).for_each(|t| assert_eq!(bus.range.publish(range(t)), 1));
        first.drain_and_wait(None).await.unwrap();

        let second = incarnation(&recorder).await;
        (50..100).for_each(|t| assert_eq!(bus.range.publish(range(t)), 1));
        second.kill_and_wait(None).await.unwrap();

        let third = incarnation(&recorder).await;
        (100..150).for_each(|t| assert_eq!(bus.range.publish(range(t)), 1));
        third.drain_and_wait(None).await.unwrap();

        assert_eq!(std::fs::read(rotated(&path, 1)).unwrap(), b"previous run");
        assert!(!rotated(&path, 2).exists());
        let got = read(&path).unwrap();
        assert_eq!(got.truncated_bytes, 0);
        let t: Vec<u64> = got
            .records
            .iter()
            .map(|r| match r {
                Record::Range(r) => r.t_us,
                other => panic!("{other:?}"),
            })
            .collect();
        let crashed = t.len() - 100;
        let want: Vec<u64> = (0..50 + crashed as u64).chain(100..150).collect();
        assert_eq!(t, want);
    }
}
