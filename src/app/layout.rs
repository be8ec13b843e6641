//! The tree's layout: which workers run under which group supervisor, each built from
//! the config and the shared [`Parts`], and the bulkhead runtime some are placed on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use nevil_actors::{ActorPath, ChildSpec, EventFeed, Pressure, Strategy, SupervisorFlags};

use super::{AppError, RunOptions};
use crate::bus::Bus;
use crate::config::reload::{Generation, LiveConfig};
use crate::config::{Backend, Config, Mode, SensorConfig};
use crate::core::clock::Clock;
use crate::core::jitter::Jitter;
use crate::hw::{Hardware, Shared};
use crate::robot::drivers::motors::{Motors, MotorsMsg};
use crate::robot::drivers::sensor::{
    BatteryMonitor, Grayscale, Sensor, SensorDriver, SensorMsg, Ultrasonic,
};
use crate::robot::drivers::steering::{Steering, SteeringMsg};
use crate::robot::nodes::line_follower::LineFollower;
use crate::robot::nodes::motion::{MotionActor, MotionMsg};
use crate::robot::nodes::obstacle_avoidance::ObstacleAvoidance;
use crate::robot::nodes::{BehaviourActor, BehaviourMsg};
use crate::robot::safety::{DeadMan, EStopLatch, Watchdog, WatchdogMsg};
use crate::services::analytics::{AnalyticsHandle, ErrorAnalytics, ErrorAnalyticsMsg};
use crate::services::monitor::{
    HostSample, HostSampler, HostStatus, SysinfoSampler, SystemMonitor, SystemMonitorMsg,
    Temperature,
};
use crate::services::recorder::{Recorder, RecorderMsg};
use crate::services::tree::{TreeService, TreeServiceMsg};

/// A worker of the tree, flooded with `noop`s by a `flood` drill: every other message a
/// robot actor takes acts (drives, samples, feeds the dead-man), and a flood must only
/// load the mailbox, as before drills moved into the actor system.
fn worker<A>(name: &str, actor: A, noop: fn() -> A::Msg) -> ChildSpec
where
    A: ractor::Actor<Arguments = ()> + Clone,
{
    ChildSpec::worker(name, actor, ()).flood(noop)
}

pub(super) struct Group {
    pub(super) name: &'static str,
    pub(super) strategy: Strategy,
    pub(super) workers: Vec<ChildSpec>,
}

/// The shared parts every actor is built from.
pub(super) struct Parts {
    pub(super) bus: Bus,
    pub(super) clock: Clock,
    pub(super) hw: Hardware,
    pub(super) jitter: Arc<Jitter>,
    pub(super) latch: EStopLatch,
    pub(super) deadman: DeadMan,
    pub(super) view: Arc<OnceLock<nevil_actors::TreeView>>,
    pub(super) host: HostStatus,
    pub(super) pressure: Pressure,
    /// The tree's event feed, made before the tree so its services see the start.
    pub(super) events: EventFeed,
    pub(super) analytics: AnalyticsHandle,
    /// The configuration in force, for the actors that take a reload live.
    pub(super) live: LiveConfig,
    /// The run's config generation.
    pub(super) generation: Generation,
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
    pub(super) host: SysinfoSampler,
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

pub(super) fn layout(config: &Config, opts: &RunOptions, p: &Parts) -> Vec<Group> {
    let recording = opts.record.clone().or(config.recorder.path.clone());
    let disk_path = recorder_dir(recording.as_deref());
    let mut management = vec![
        worker(
            "tree_service",
            TreeService {
                view: p.view.clone(),
                analytics: p.analytics.clone(),
                path: opts.tree_dump.clone(),
                generation: p.generation.clone(),
            },
            || TreeServiceMsg::Noop,
        ),
        worker(
            "system_monitor",
            system_monitor(config, disk_path, p),
            || SystemMonitorMsg::Noop,
        ),
        worker(
            "error_analytics",
            ErrorAnalytics::new(&p.events, p.analytics.clone()),
            || ErrorAnalyticsMsg::Noop,
        ),
    ];
    if let Some(path) = recording {
        let recorder = Recorder::new(
            path,
            config.recorder.max_file_bytes,
            config.recorder.keep_files,
            p.bus.clone(),
        );
        management.push(worker("recorder", recorder, || RecorderMsg::Noop));
    }
    management.extend(opts.extra.0.iter().cloned());
    let drivers = vec![
        worker(
            "ultrasonic",
            p.sampler(p.hw.ranger.clone(), &config.drivers.ultrasonic, Ultrasonic),
            || SensorMsg::Noop,
        ),
        worker(
            "grayscale",
            p.sampler(p.hw.line.clone(), &config.drivers.grayscale, Grayscale),
            || SensorMsg::Noop,
        ),
        worker(
            "battery",
            p.sampler(
                p.hw.battery.clone(),
                &config.drivers.battery,
                BatteryMonitor,
            ),
            || SensorMsg::Noop,
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
            || MotorsMsg::Noop,
        ),
        worker(
            "steering",
            Steering {
                device: p.hw.steering.clone(),
                blocking: p.hw.blocking,
                bus: p.bus.clone(),
                deadman: p.deadman.clone(),
            },
            || SteeringMsg::Noop,
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
                live: p.live.clone(),
            },
            || MotionMsg::Noop,
        ),
        worker(
            "obstacle_avoidance",
            BehaviourActor {
                node: ObstacleAvoidance::new(config.behaviour, max_steer),
                bus: p.bus.clone(),
                live: p.live.clone(),
            },
            || BehaviourMsg::Noop,
        ),
    ];
    if config.behaviour.mode == Mode::LineFollowing {
        control.push(worker(
            "line_follower",
            BehaviourActor {
                node: LineFollower::new(config.behaviour, max_steer),
                bus: p.bus.clone(),
                live: p.live.clone(),
            },
            || BehaviourMsg::Noop,
        ));
    }
    let watchdog = Watchdog::from_config(
        config,
        p.live.clone(),
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
            workers: vec![worker("watchdog", watchdog, || WatchdogMsg::Noop)],
        },
    ]
}

impl Group {
    /// The group supervisor's path.
    pub(super) fn path(&self) -> ActorPath {
        ActorPath::root("root").child(self.name)
    }

    /// The path of one of its workers.
    pub(super) fn worker_path(&self, w: &ChildSpec) -> ActorPath {
        self.path().child(w.name())
    }

    /// The group as the tree will hold it (without its quotas and runtimes, which do
    /// not change its shape).
    pub(super) fn shape(&self) -> ChildSpec {
        let flags = SupervisorFlags::new(self.strategy);
        ChildSpec::supervisor(self.name, flags, self.workers.clone())
    }
}

/// The bulkhead runtime, if the config isolates any worker.
pub(super) fn bulkhead_runtime(
    config: &Config,
) -> Result<Option<tokio::runtime::Runtime>, AppError> {
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
