//! The robot's actor tree, built from a [`Config`], and its life: start, fault drills,
//! tree dumps, and a shutdown that stops the motors first.
//!
//! ```text
//! root (one_for_one)
//! ├── management (one_for_one): tree_service, system_monitor, error_analytics,
//! │                              recorder (when recording)
//! ├── drivers    (one_for_one): ultrasonic, grayscale, battery, motors, steering
//! ├── control    (rest_for_one): motion → obstacle_avoidance → line_follower
//! └── safety     (one_for_one): watchdog
//! ```
//!
//! `control` is `rest_for_one` because the behaviours command the motion controller: when
//! it restarts, they restart after it. `line_follower` runs only in `line_following`
//! mode (obstacle avoidance then guards it). Every supervisor's intensity comes from
//! `[supervision]`; the root giving up ends [`Robot::wait`] with the escalation. The
//! whole tree shares one quota [`Pressure`], which the system monitor raises while the
//! host's CPU or memory is critical.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nevil_actors::{
    ActorPath, ChildSpec, EventFeed, ExitReason, Pressure, PressurePolicy, StartError, Strategy,
    SupervisorFlags, Tree, TreeContext, TreeView,
};
use ractor::{ActorRef, Message};
use serde::Serialize;

use crate::bus::{Bus, EStop, TopicStats};
use crate::bus::{Line, Range};
use crate::config::{Backend, Config, Mode, SensorConfig};
use crate::core::clock::Clock;
use crate::core::jitter::{Jitter, JitterSummary};
use crate::drill::{DrillMsg, Fault, Injection};
use crate::hw::sim::{Sim, SimReport, SimSensor};
use crate::hw::{self, Hardware, HwError, Shared};
use crate::robot::drivers::motors::{Motors, MotorsMsg};
use crate::robot::drivers::sensor::{
    BatteryMonitor, Grayscale, Sensor, SensorDriver, SensorMsg, Ultrasonic,
};
use crate::robot::drivers::steering::{Steering, SteeringMsg};
use crate::robot::nodes::line_follower::LineFollower;
use crate::robot::nodes::motion::{MotionActor, MotionMsg};
use crate::robot::nodes::obstacle_avoidance::ObstacleAvoidance;
use crate::robot::nodes::{BehaviourActor, BehaviourMsg};
use crate::robot::safety::{DeadMan, EStopEvent, EStopLatch, Watchdog, WatchdogMsg};
use crate::services::analytics::{AnalyticsHandle, ErrorAnalytics, ErrorAnalyticsMsg};
use crate::services::monitor::{
    HostSample, HostSampler, HostStatus, SysinfoSampler, SystemMonitor, SystemMonitorMsg,
    Temperature,
};
use crate::services::recorder::{Recorder, RecorderMsg};
use crate::services::tree::{TreeService, TreeServiceMsg};

/// The robot's devices and, for the simulated backend, its world.
pub struct Devices {
    /// The devices the drivers use.
    pub hw: Hardware,
    /// The simulated world, when the backend is `sim`.
    pub sim: Option<Sim>,
}

impl Devices {
    /// Opens the backend `config` names, on the run's clock.
    ///
    /// # Errors
    ///
    /// [`HwError::Open`] naming the device that could not be opened.
    pub fn open(config: &Config, clock: Clock) -> Result<Self, HwError> {
        match config.robot.backend {
            Backend::Sim => {
                let sim = Sim::new(&config.sim, move || clock.elapsed());
                Ok(Self {
                    hw: sim.hardware(),
                    sim: Some(sim),
                })
            }
            Backend::Picarx => Ok(Self {
                hw: hw::picarx::open(&config.picarx)?,
                sim: None,
            }),
        }
    }
}

/// Sends drill messages to one incarnation of a worker; `false` once it is gone.
type DrillSender = Box<dyn Fn(DrillMsg) -> bool + Send>;
/// Finds the live incarnation at a path, for a worker of a known message type.
type DrillSend = fn(&TreeView, &str) -> Option<DrillSender>;

fn send_drill<M: From<DrillMsg> + Message>(view: &TreeView, path: &str) -> Option<DrillSender> {
    let mailbox = view.mailbox::<M>(path)?;
    Some(Box::new(move |d| mailbox.cast(M::from(d)).is_ok()))
}

struct Worker {
    spec: ChildSpec,
    drill: DrillSend,
}

fn worker<A>(name: &str, actor: A, drill: DrillSend) -> Worker
where
    A: ractor::Actor<Arguments = ()> + Clone,
{
    Worker {
        spec: ChildSpec::worker(name, actor, ()),
        drill,
    }
}

struct Group {
    name: &'static str,
    strategy: Strategy,
    workers: Vec<Worker>,
}

/// Options of a run that are not in the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where tree dumps go.
    pub tree_dump: PathBuf,
    /// Record the bus here (overrides the config's recorder path).
    pub record: Option<PathBuf>,
    /// Fault drills to run.
    pub inject: Vec<Injection>,
    /// What drives the control loop.
    pub loop_timer: crate::core::ticker::Timer,
}

/// A drill that is not possible on this tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--inject {target:?}: {reason}")]
pub struct DrillTargetError {
    /// The target as given.
    pub target: String,
    /// Why it cannot be used.
    pub reason: String,
}

/// The sensor an `unplug` drill on `target` (a driver's name or path) disconnects.
fn unplug_target(target: &str) -> Option<SimSensor> {
    let drivers = ActorPath::root("root").child("drivers");
    SimSensor::ALL
        .into_iter()
        .find(|s| drivers.child(s.name()).matches(target))
}

/// Checks what [`Robot::start`] cannot tell from the tree alone: an `unplug` drill must
/// name a sensor driver and the config must simulate the robot. Cheap, and needs no
/// device: call it before opening the hardware.
///
/// # Errors
///
/// [`DrillTargetError`] for the first `unplug` the run cannot carry out.
pub fn check_drills(config: &Config, inject: &[Injection]) -> Result<(), DrillTargetError> {
    for i in inject.iter().filter(|i| i.fault == Fault::Unplug) {
        let err = |reason: String| DrillTargetError {
            target: i.target.clone(),
            reason,
        };
        if unplug_target(&i.target).is_none() {
            return Err(err(
                "unplug applies to the sensor drivers only (ultrasonic, grayscale, battery)".into(),
            ));
        }
        if config.robot.backend != Backend::Sim {
            return Err(err(format!(
                "unplug needs the simulated robot (backend \"sim\"); this config's backend is \"{}\"",
                format!("{:?}", config.robot.backend).to_lowercase()
            )));
        }
    }
    Ok(())
}

/// Why the robot could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A fault drill names no worker of this tree.
    #[error(transparent)]
    Drill(#[from] DrillTargetError),
    /// The tree did not start.
    #[error("the actor tree did not start: {0}")]
    Start(#[from] StartError),
    /// The bulkhead runtime could not be built.
    #[error("cannot start the bulkhead runtime: {0}")]
    Runtime(std::io::Error),
    /// The dead-man's checker thread could not be started.
    #[error("cannot start the dead-man's thread: {0}")]
    DeadMan(std::io::Error),
}

/// The shared parts every actor is built from.
struct Parts {
    bus: Bus,
    clock: Clock,
    hw: Hardware,
    jitter: Arc<Jitter>,
    latch: EStopLatch,
    deadman: DeadMan,
    view: Arc<OnceLock<nevil_actors::TreeView>>,
    host: HostStatus,
    pressure: Pressure,
    /// The tree's event feed, made before the tree so its services see the start.
    events: EventFeed,
    analytics: AnalyticsHandle,
}

impl Parts {
    /// The driver sampling `device` as `cfg` says.
    fn sampler<S: Sensor>(
        &self,
        device: Shared<S::Device>,
        cfg: &SensorConfig,
        sensor: S,
    ) -> SensorDriver<S> {
        SensorDriver {
            device,
            period: cfg.period(),
            bus: self.bus.clone(),
            clock: self.clock,
            sensor,
            blocking: self.hw.blocking,
        }
    }
}

/// The directory the recorder writes to — its disk is the one that fills up — else `/`.
fn recorder_dir(recording: Option<&Path>) -> PathBuf {
    match recording.and_then(Path::parent) {
        Some(dir) if dir.as_os_str().is_empty() => PathBuf::from("."),
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("/"),
    }
}

/// The system monitor of `config`, watching the filesystem of `disk_path` unless the
/// config names one.
fn system_monitor(config: &Config, disk_path: PathBuf, p: &Parts) -> SystemMonitor {
    let disk_path = config.monitor.disk_path.clone().unwrap_or(disk_path);
    let sim_celsius = match config.robot.backend {
        Backend::Sim => config.sim.cpu_temperature_c,
        Backend::Picarx => None,
    };
    SystemMonitor {
        period: config.monitor.period(),
        thresholds: config.monitor.thresholds(),
        sampler: Arc::new(move || -> Box<dyn HostSampler> {
            let host = SysinfoSampler::new(&disk_path);
            match sim_celsius {
                Some(celsius) => Box::new(SimTemperature { host, celsius }),
                None => Box::new(host),
            }
        }),
        bus: p.bus.clone(),
        clock: p.clock,
        status: p.host.clone(),
        pressure: p.pressure.clone(),
    }
}

/// The host as sysinfo sees it, but with the simulated Pi's CPU temperature
/// (`[sim] cpu_temperature_c`) as its only temperature sensor.
struct SimTemperature {
    host: SysinfoSampler,
    celsius: f64,
}

impl HostSampler for SimTemperature {
    fn sample(&mut self) -> HostSample {
        let mut sample = self.host.sample();
        sample.temperatures = vec![Temperature {
            sensor: "sim cpu".into(),
            celsius: self.celsius,
        }];
        sample
    }
}

fn layout(config: &Config, opts: &RunOptions, p: &Parts) -> Vec<Group> {
    let recording = opts.record.clone().or(config.recorder.path.clone());
    let disk_path = recorder_dir(recording.as_deref());
    let mut management = vec![
        worker(
            "tree_service",
            TreeService {
                view: p.view.clone(),
                analytics: p.analytics.clone(),
                path: opts.tree_dump.clone(),
            },
            send_drill::<TreeServiceMsg>,
        ),
        worker(
            "system_monitor",
            system_monitor(config, disk_path, p),
            send_drill::<SystemMonitorMsg>,
        ),
        worker(
            "error_analytics",
            ErrorAnalytics::new(&p.events, p.analytics.clone()),
            send_drill::<ErrorAnalyticsMsg>,
        ),
    ];
    if let Some(path) = recording {
        let recorder = Recorder {
            path,
            max_file_bytes: config.recorder.max_file_bytes,
            keep_files: config.recorder.keep_files,
            bus: p.bus.clone(),
        };
        management.push(worker("recorder", recorder, send_drill::<RecorderMsg>));
    }
    let drivers = vec![
        worker(
            "ultrasonic",
            p.sampler(p.hw.ranger.clone(), &config.drivers.ultrasonic, Ultrasonic),
            send_drill::<SensorMsg>,
        ),
        worker(
            "grayscale",
            p.sampler(p.hw.line.clone(), &config.drivers.grayscale, Grayscale),
            send_drill::<SensorMsg>,
        ),
        worker(
            "battery",
            p.sampler(
                p.hw.battery.clone(),
                &config.drivers.battery,
                BatteryMonitor,
            ),
            send_drill::<SensorMsg>,
        ),
        worker(
            "motors",
            Motors {
                device: p.hw.drive.clone(),
                blocking: p.hw.blocking,
                bus: p.bus.clone(),
                latch: p.latch.clone(),
                deadman: p.deadman.clone(),
            },
            send_drill::<MotorsMsg>,
        ),
        worker(
            "steering",
            Steering {
                device: p.hw.steering.clone(),
                blocking: p.hw.blocking,
                bus: p.bus.clone(),
                deadman: p.deadman.clone(),
            },
            send_drill::<SteeringMsg>,
        ),
    ];
    let max_steer = config.motion.max_steer_deg;
    let mut control = vec![
        worker(
            "motion",
            MotionActor {
                cfg: config.motion,
                bus: p.bus.clone(),
                clock: p.clock,
                jitter: p.jitter.clone(),
                timer: opts.loop_timer,
                latch: p.latch.clone(),
                deadman: p.deadman.clone(),
            },
            send_drill::<MotionMsg>,
        ),
        worker(
            "obstacle_avoidance",
            BehaviourActor {
                node: ObstacleAvoidance::new(config.behaviour, max_steer),
                bus: p.bus.clone(),
            },
            send_drill::<BehaviourMsg<Range>>,
        ),
    ];
    if config.behaviour.mode == Mode::LineFollowing {
        control.push(worker(
            "line_follower",
            BehaviourActor {
                node: LineFollower::new(config.behaviour, max_steer),
                bus: p.bus.clone(),
            },
            send_drill::<BehaviourMsg<Line>>,
        ));
    }
    let watchdog = Watchdog::from_config(
        config,
        p.bus.clone(),
        p.clock,
        p.latch.clone(),
        p.deadman.clone(),
    );
    vec![
        Group {
            name: "management",
            strategy: Strategy::OneForOne,
            workers: management,
        },
        Group {
            name: "drivers",
            strategy: Strategy::OneForOne,
            workers: drivers,
        },
        Group {
            name: "control",
            strategy: Strategy::RestForOne,
            workers: control,
        },
        Group {
            name: "safety",
            strategy: Strategy::OneForOne,
            workers: vec![worker("watchdog", watchdog, send_drill::<WatchdogMsg>)],
        },
    ]
}

impl Group {
    /// The group supervisor's path.
    fn path(&self) -> ActorPath {
        ActorPath::root("root").child(self.name)
    }

    /// The path of one of its workers.
    fn worker_path(&self, w: &Worker) -> ActorPath {
        self.path().child(w.spec.name())
    }
}

/// Finds the worker a drill names (by path or name) in `groups`.
fn resolve(groups: &[Group], target: &str) -> Result<(String, DrillSend), DrillTargetError> {
    let err = |reason: String| DrillTargetError {
        target: target.to_string(),
        reason,
    };
    let root = ActorPath::root("root");
    let mut workers = Vec::new();
    for g in groups {
        for supervisor in [&root, &g.path()] {
            if supervisor.matches(target) {
                return Err(err(format!(
                    "{supervisor} is a supervisor; faults are injected into workers"
                )));
            }
        }
        for w in &g.workers {
            let path = g.worker_path(w);
            if path.matches(target) {
                return Ok((path.to_string(), w.drill));
            }
            workers.push(path.to_string());
        }
    }
    Err(err(format!(
        "no such actor (workers: {})",
        workers.join(", ")
    )))
}

/// The bulkhead runtime, if the config isolates any worker.
fn bulkhead_runtime(config: &Config) -> Result<Option<tokio::runtime::Runtime>, AppError> {
    if config.runtime.bulkhead.is_empty() {
        return Ok(None);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.runtime.bulkhead_threads)
        .thread_name("nevil-bulkhead")
        .enable_all()
        .build()
        .map(Some)
        .map_err(AppError::Runtime)
}

/// A running robot.
pub struct Robot {
    bulkhead: Option<tokio::runtime::Runtime>,
    tree: Tree,
    bus: Bus,
    clock: Clock,
    devices: Devices,
    jitter: Arc<Jitter>,
    latch: EStopLatch,
    deadman: DeadMan,
    host: HostStatus,
    pressure: Pressure,
    drills: Vec<tokio::task::JoinHandle<()>>,
    fired: FiredDrills,
    analytics: AnalyticsHandle,
}

/// What a run did, written by `run --report`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Seconds from start to the end of shutdown.
    pub duration_s: f64,
    /// How the tree ended: `normal`, or the escalation.
    pub exit: String,
    /// Control loop lateness.
    pub jitter: JitterSummary,
    /// The e-stop's engages and releases (the last [`crate::robot::safety::latch::EVENTS_KEPT`]).
    pub estops: Vec<EStopEvent>,
    /// Older e-stop changes, counted but not kept.
    pub estops_dropped: u64,
    /// Times the dead-man zeroed the motors by itself.
    pub deadman_trips: u64,
    /// The fault drills that fired, and when.
    pub drills: Vec<FiredDrill>,
    /// Bus counters by topic.
    pub bus: Vec<(&'static str, TopicStats)>,
    /// Restarts of every actor, summed.
    pub restarts: u64,
    /// The simulated world's outcome (`sim` backend only).
    pub sim: Option<SimReport>,
}

impl Robot {
    /// Starts the robot of `config` on `devices`, then its fault drills.
    ///
    /// # Errors
    ///
    /// [`AppError::Drill`] (before anything starts) for a drill naming no worker, or an
    /// `unplug` it cannot carry out ([`check_drills`]);
    /// [`AppError::Start`] if the tree did not start.
    pub async fn start(
        config: &Config,
        devices: Devices,
        clock: Clock,
        opts: &RunOptions,
    ) -> Result<Self, AppError> {
        let (command_deadline, heartbeat_deadline) =
            DeadMan::deadlines(config.motion.period(), config.safety.check_period());
        let parts = Parts {
            bus: Bus::new(config.bus.queue),
            clock,
            hw: devices.hw.clone(),
            jitter: Arc::default(),
            latch: EStopLatch::default(),
            deadman: DeadMan::new(clock, command_deadline, heartbeat_deadline),
            view: Arc::default(),
            host: HostStatus::default(),
            pressure: Pressure::new(PressurePolicy {
                critical_factor: config.monitor.pressure_factor,
                exempt: config.monitor.pressure_exempt.clone(),
            }),
            events: EventFeed::default(),
            analytics: AnalyticsHandle::new(Default::default(), clock),
        };
        let groups = layout(config, opts, &parts);
        let targets = opts
            .inject
            .iter()
            .map(|i| resolve(&groups, &i.target).map(|(path, send)| (i.clone(), path, send)))
            .collect::<Result<Vec<_>, _>>()?;
        check_drills(config, &opts.inject)?;
        let sup = &config.supervision;
        let flags = |strategy| {
            let flags = SupervisorFlags::new(strategy)
                .intensity(sup.max_restarts, Duration::from_secs_f64(sup.period_s));
            match sup.backoff() {
                Some(backoff) => flags.backoff(backoff),
                None => flags,
            }
        };
        let bulkhead = bulkhead_runtime(config)?;
        parts
            .deadman
            .spawn(opts.loop_timer, parts.hw.drive.clone(), parts.latch.clone())
            .map_err(AppError::DeadMan)?;
        let quotas = &config.quotas;
        let children = groups
            .into_iter()
            .map(|g| {
                let paths: Vec<_> = g.workers.iter().map(|w| g.worker_path(w)).collect();
                let specs = g
                    .workers
                    .into_iter()
                    .zip(paths)
                    .map(|(w, path)| {
                        let path = path.as_str();
                        let group = quotas.group_name_for(path).to_string();
                        let spec = w.spec.quota(group, quotas.group_for(path));
                        match &bulkhead {
                            Some(rt)
                                if config.runtime.bulkhead.iter().any(|n| n == spec.name()) =>
                            {
                                spec.on_runtime(rt.handle().clone())
                            }
                            _ => spec,
                        }
                    })
                    .collect();
                let sampled = flags(g.strategy).sample_every(quotas.sample_interval());
                ChildSpec::supervisor(g.name, sampled, specs)
            })
            .collect();
        let context = TreeContext {
            pressure: parts.pressure.clone(),
            events: parts.events,
        };
        let started = Tree::start_in("root", flags(Strategy::OneForOne), children, context).await;
        let tree = started.inspect_err(|_| parts.deadman.stop())?;
        // Set once, right after start; the tree service reads it on each dump.
        let _ = parts.view.set(tree.view());
        let fired = FiredDrills::new(clock);
        let drills = targets
            .into_iter()
            .map(|(injection, path, send)| match injection.fault {
                Fault::Unplug => unplug_later(devices.sim.clone(), injection, path, fired.clone()),
                _ => schedule(tree.view(), injection, path, send, fired.clone()),
            })
            .collect();
        tracing::info!(backend = ?config.robot.backend, "robot started");
        Ok(Self {
            bulkhead,
            tree,
            bus: parts.bus,
            clock,
            devices,
            jitter: parts.jitter,
            latch: parts.latch,
            deadman: parts.deadman,
            host: parts.host,
            pressure: parts.pressure,
            drills,
            fired,
            analytics: parts.analytics,
        })
    }

    /// The run's error analytics (see [`crate::services::analytics::model`]).
    pub fn analytics(&self) -> &AnalyticsHandle {
        &self.analytics
    }

    /// The actor tree.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// The e-stop latch: its reasons now and its changes (readiness reads it).
    pub fn estops(&self) -> &EStopLatch {
        &self.latch
    }

    /// The bus.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// The system monitor's latest look at the host (shared; clone it to keep reading).
    pub fn host_status(&self) -> &HostStatus {
        &self.host
    }

    /// The quota pressure the system monitor sets for the whole tree.
    pub fn pressure(&self) -> &Pressure {
        &self.pressure
    }

    /// The simulated world, if any.
    pub fn sim(&self) -> Option<&Sim> {
        self.devices.sim.as_ref()
    }

    /// Asks the tree service to dump the tree; returns the file written.
    ///
    /// # Errors
    ///
    /// Why the dump failed (the service is down, the file could not be written).
    pub async fn dump_tree(&self) -> Result<PathBuf, String> {
        let cell = self
            .tree
            .actor("root/management/tree_service")
            .ok_or("the tree service is not running")?;
        let service = ActorRef::<TreeServiceMsg>::from(cell);
        match ractor::call!(service, |r| TreeServiceMsg::Dump(Some(r))) {
            Ok(result) => result,
            Err(e) => Err(format!("tree service: {e}")),
        }
    }

    /// [`Robot::dump_tree`], given up after `limit` (a hung tree service must not hold
    /// up a signal or the end of the run).
    ///
    /// # Errors
    ///
    /// As [`Robot::dump_tree`], or that it took longer than `limit`.
    pub async fn dump_tree_within(&self, limit: Duration) -> Result<PathBuf, String> {
        tokio::time::timeout(limit, self.dump_tree())
            .await
            .unwrap_or_else(|_| Err(format!("the tree service did not answer within {limit:?}")))
    }

    /// Waits until the root supervisor ends on its own (it gave up).
    pub async fn wait(&self) -> ExitReason {
        self.tree.wait().await
    }

    /// Stops the motors now and keeps them stopped: engages the e-stop latch (which the
    /// motors driver and the dead-man obey) with reason `why`, tells the controller on
    /// the bus, and zeroes the motors straight at the device. Asks no actor, so it
    /// works whatever hangs.
    pub fn stop_motors(&self, why: &str) {
        let at_s = self.clock.elapsed().as_secs_f64();
        if let crate::robot::safety::Change::Engaged(reason) = self.latch.set(why, why.into(), at_s)
        {
            tracing::warn!(%reason, "e-stop engaged");
        }
        self.bus.estop.publish(EStop {
            t_us: self.clock.now_us(),
            engaged: true,
            reason: why.into(),
        });
        if let Err(e) = self.devices.hw.drive.lock().set_power(0.0, 0.0) {
            tracing::error!(error = %e, "could not stop the motors");
        }
    }

    /// Stops the robot: the motors first (straight at the device, and by e-stop so
    /// nothing drives them again), then every actor in reverse start order.
    pub async fn shutdown(self) -> (ExitReason, RunReport) {
        self.stop_motors("shutdown");
        tracing::info!("motors stopped; stopping the actor tree");
        for drill in &self.drills {
            drill.abort();
        }
        let exit = self.tree.shutdown().await;
        self.deadman.stop();
        if let Some(rt) = self.bulkhead {
            // Its actors are stopped; its threads go without blocking this one.
            rt.shutdown_background();
        }
        let restarts = self
            .tree
            .snapshot()
            .root
            .walk()
            .iter()
            .map(|n| n.restarts)
            .sum();
        let report = RunReport {
            duration_s: self.clock.elapsed().as_secs_f64(),
            exit: exit.to_string(),
            jitter: self.jitter.summary(),
            estops: self.latch.events(),
            estops_dropped: self.latch.events_dropped(),
            deadman_trips: self.deadman.trips(),
            drills: self.fired.list(),
            bus: self.bus.stats(),
            restarts,
            sim: self.devices.sim.as_ref().map(Sim::report),
        };
        (exit, report)
    }
}

/// Runs an `unplug` drill: at its time, the simulated sensor of the driver at `path`
/// stops answering (for good: restarts do not replug it).
fn unplug_later(
    sim: Option<Sim>,
    injection: Injection,
    path: String,
    fired: FiredDrills,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(injection.at).await;
        match (sim, unplug_target(&path)) {
            (Some(sim), Some(sensor)) => {
                tracing::warn!(%path, %sensor, "injecting fault: unplugging the simulated sensor");
                sim.unplug(sensor);
                fired.push(&injection, &path);
            }
            // `check_drills` refused these before start, unless the devices do not
            // match the config.
            _ => tracing::warn!(%path, "no simulated sensor to unplug; drill skipped"),
        }
    })
}

/// A drill that fired: when it was due and when it was sent, for the run report (the
/// safety matrix measures stop times from `fired_s`).
#[derive(Debug, Clone, Serialize)]
pub struct FiredDrill {
    /// The target's path.
    pub path: String,
    /// The fault's name.
    pub fault: &'static str,
    /// Seconds after start it was due (`@SECS`).
    pub due_s: f64,
    /// Seconds since start when it was sent (or the sensor unplugged).
    pub fired_s: f64,
}

/// The drills that fired so far, shared with their tasks.
#[derive(Debug, Clone)]
struct FiredDrills {
    clock: Clock,
    fired: Arc<std::sync::Mutex<Vec<FiredDrill>>>,
}

impl FiredDrills {
    fn new(clock: Clock) -> Self {
        Self {
            clock,
            fired: Arc::default(),
        }
    }

    fn push(&self, injection: &Injection, path: &str) {
        let drill = FiredDrill {
            path: path.to_string(),
            fault: injection.fault.name(),
            due_s: injection.at.as_secs_f64(),
            fired_s: self.clock.elapsed().as_secs_f64(),
        };
        self.fired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(drill);
    }

    fn list(&self) -> Vec<FiredDrill> {
        self.fired
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Runs one drill: at its time, the fault goes to the incarnation then alive; a leak or
/// flood continues until that incarnation is gone.
fn schedule(
    view: nevil_actors::TreeView,
    injection: Injection,
    path: String,
    send: DrillSend,
    fired: FiredDrills,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(injection.at).await;
        let Some(send) = send(&view, &path) else {
            tracing::warn!(%path, fault = %injection.fault, "drill target not running; drill skipped");
            return;
        };
        tracing::warn!(%path, fault = %injection.fault, "injecting fault");
        fired.push(&injection, &path);
        match injection.fault {
            Fault::Leak => {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                while send(DrillMsg::LeakTick) {
                    tick.tick().await;
                }
            }
            Fault::Flood => {
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                'flood: loop {
                    for _ in 0..500 {
                        if !send(DrillMsg::FloodItem) {
                            break 'flood;
                        }
                    }
                    tick.tick().await;
                }
            }
            fault => {
                send(DrillMsg::Fault(fault));
            }
        }
    })
}
