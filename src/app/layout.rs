//! The tree's layout: which workers run under which group supervisor, each built from
//! the config and the shared [`Parts`], and the bulkhead runtime some are placed on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use nevil_actors::{
    ActorPath, ChildSpec, EventFeed, Pressure, Strategy, SupervisorFlags, TreeContext,
};

use nevil_actors::process::JailLimits;
use nevil_actors::Shutdown;

use super::placement::remote::{self, Keys};
use super::placement::{
    Launch, LocalGroup, NodeGroup, NodeGroupMsg, ProcessGroup, ProcessGroupMsg, GRACE,
};
use super::{AppError, RunOptions};
use crate::bus::Bus;
use crate::config::reload::{Generation, LiveConfig};
use crate::config::{Backend, Config, Mode, NodePlacement, Placement, SensorConfig};
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

/// A supervisor group of the tree: its workers and nested groups, in start order.
pub(super) struct Group {
    pub(super) name: &'static str,
    pub(super) strategy: Strategy,
    pub(super) members: Vec<Member>,
}

/// One child of a [`Group`]: a worker, or a group of its own (which a `[placement]`
/// may move into another process).
pub(super) enum Member {
    /// A worker.
    Worker(ChildSpec),
    /// A nested group.
    Group(Group),
}

impl Group {
    fn of_workers(name: &'static str, strategy: Strategy, workers: Vec<ChildSpec>) -> Self {
        Self {
            name,
            strategy,
            members: workers.into_iter().map(Member::Worker).collect(),
        }
    }
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
        )
        .with_tree(&p.events, p.clock)
        .with_shutdown(p.latch.clone(), p.clock);
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
    let behaviours = behaviour_workers(config, &p.bus, &p.live);
    let motion = worker(
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
    );
    let watchdog = Watchdog::from_config(
        config,
        p.live.clone(),
        p.bus.clone(),
        p.clock,
        p.latch.clone(),
        p.deadman.clone(),
    );
    vec![
        Group::of_workers("management", Strategy::OneForOne, management),
        Group::of_workers("drivers", Strategy::OneForOne, drivers),
        // The behaviours depend on motion (they steer through it), not on each other:
        // motion's restart restarts them all (rest_for_one), one's crash only itself.
        Group {
            name: "control",
            strategy: Strategy::RestForOne,
            members: vec![
                Member::Worker(motion),
                Member::Group(behaviours_group(behaviours)),
            ],
        },
        Group::of_workers(
            "safety",
            Strategy::OneForOne,
            vec![worker("watchdog", watchdog, || WatchdogMsg::Noop)],
        ),
    ]
}

/// The behaviours the config asks for, as workers: obstacle avoidance, and line
/// following in that mode. Built from the bus and the live config alone, so that a
/// process of their own (`[placement] behaviours = "process"`) builds the same.
pub(super) fn behaviour_workers(config: &Config, bus: &Bus, live: &LiveConfig) -> Vec<ChildSpec> {
    let max_steer = config.motion.max_steer_deg;
    let mut behaviours = vec![worker(
        "obstacle_avoidance",
        BehaviourActor {
            node: ObstacleAvoidance::new(config.behaviour, max_steer),
            bus: bus.clone(),
            live: live.clone(),
        },
        || BehaviourMsg::Noop,
    )];
    if config.behaviour.mode == Mode::LineFollowing {
        behaviours.push(worker(
            "line_follower",
            BehaviourActor {
                node: LineFollower::new(config.behaviour, max_steer),
                bus: bus.clone(),
                live: live.clone(),
            },
            || BehaviourMsg::Noop,
        ));
    }
    behaviours
}

/// The behaviours' group: the one group without a safety-critical actor, so the one a
/// `[placement]` may move into a process of its own.
pub(super) fn behaviours_group(workers: Vec<ChildSpec>) -> Group {
    Group::of_workers(BEHAVIOURS, Strategy::OneForOne, workers)
}

/// The behaviours' group's name.
pub(super) const BEHAVIOURS: &str = "behaviours";

impl Group {
    /// The group as the tree will hold it (without its quotas, runtimes and placement,
    /// which do not change its shape).
    pub(super) fn shape(&self) -> ChildSpec {
        let flags = SupervisorFlags::new(self.strategy);
        let children = self
            .members
            .iter()
            .map(|m| match m {
                Member::Worker(w) => w.clone(),
                Member::Group(g) => g.shape(),
            })
            .collect();
        ChildSpec::supervisor(self.name, flags, children)
    }
}

/// A supervisor of `strategy` with the restart intensity and backoff of
/// `[supervision]`.
pub(super) fn supervisor_flags(config: &Config, strategy: Strategy) -> SupervisorFlags {
    let sup = &config.supervision;
    let flags = SupervisorFlags::new(strategy)
        .intensity(sup.max_restarts, Duration::from_secs_f64(sup.period_s));
    match sup.backoff() {
        Some(backoff) => flags.backoff(backoff),
        None => flags,
    }
}

/// What turns the layout into child specs: quotas, the bulkhead and the supervisors'
/// flags, all from the config.
pub(super) struct Build<'a> {
    pub(super) config: &'a Config,
    pub(super) bulkhead: Option<tokio::runtime::Handle>,
    /// How to start a group's process, when the config places one in a process.
    pub(super) process: Option<Arc<Launch>>,
    /// How to reach a group's node, when the config places one on a node.
    pub(super) nodes: Option<Nodes>,
}

/// What a node-placed group's worker needs of the robot: the network session, the
/// robot's id, its bus, and its tree's context (for a local fallback).
#[derive(Clone)]
pub(super) struct Nodes {
    pub(super) session: zenoh::Session,
    pub(super) robot_id: String,
    pub(super) bus: Bus,
    pub(super) context: TreeContext,
}

impl Build<'_> {
    /// `worker` at `path` under its quota, on the bulkhead if the config puts it there.
    fn worker(&self, path: &ActorPath, worker: ChildSpec) -> ChildSpec {
        let quotas = &self.config.quotas;
        let spec = worker.quota(
            quotas.group_name_for(path.as_str()),
            quotas.group_for(path.as_str()),
        );
        match &self.bulkhead {
            Some(rt)
                if self
                    .config
                    .runtime
                    .bulkhead
                    .iter()
                    .any(|n| n == spec.name()) =>
            {
                spec.on_runtime(rt.clone())
            }
            _ => spec,
        }
    }

    /// The supervisor of `group` under `parent`, its members built recursively — or, for
    /// a group the config places in a process, the worker that runs that process.
    pub(super) fn group(&self, parent: &ActorPath, group: Group) -> ChildSpec {
        let path = parent.child(group.name);
        match (
            self.config.placement.of(group.name),
            &self.process,
            &self.nodes,
        ) {
            (Placement::Process, Some(launch), _) => {
                return self.process_group(&path, group.name, launch)
            }
            (Placement::Node(node), _, Some(nodes)) => {
                return self.node_group(&path, group, &node, nodes)
            }
            _ => {}
        }
        let name = group.name;
        let (flags, children) = self.members(&path, group);
        ChildSpec::supervisor(name, flags, children)
    }

    /// The flags and children of the supervisor of `group` at `path`.
    pub(super) fn members(
        &self,
        path: &ActorPath,
        group: Group,
    ) -> (SupervisorFlags, Vec<ChildSpec>) {
        let children = group
            .members
            .into_iter()
            .map(|m| match m {
                Member::Worker(w) => self.worker(&path.child(w.name()), w),
                Member::Group(g) => self.group(path, g),
            })
            .collect();
        let flags = supervisor_flags(self.config, group.strategy)
            .sample_every(self.config.quotas.sample_interval());
        (flags, children)
    }

    /// The worker at `path` that runs the group `name` in a process of its own, under
    /// the quota the config gives that path: the kernel holds the process to the quota's
    /// hard memory limit, and the supervisor's sampling governs the rest through it.
    fn process_group(
        &self,
        path: &ActorPath,
        name: &'static str,
        launch: &Arc<Launch>,
    ) -> ChildSpec {
        let quotas = &self.config.quotas;
        let quota = quotas.group_for(path.as_str());
        let limits = JailLimits {
            memory_max: quota.memory.map(|m| m.hard as u64),
        };
        let worker = ProcessGroup {
            group: name,
            launch: launch.clone(),
            limits,
        };
        ChildSpec::worker(name, worker, ())
            .flood(|| ProcessGroupMsg::Noop)
            .quota(quotas.group_name_for(path.as_str()), quota)
            .shutdown(Shutdown::Timeout(2 * GRACE + Duration::from_secs(1)))
    }
}

impl Build<'_> {
    /// The worker at `path` that has group `group` run on its node (or, while that is
    /// unreachable, waits or runs it here).
    fn node_group(
        &self,
        path: &ActorPath,
        group: Group,
        node: &NodePlacement,
        nodes: &Nodes,
    ) -> ChildSpec {
        let name = group.name;
        let (flags, children) = self.members(path, group);
        let worker = NodeGroup {
            group: name,
            path: path.clone(),
            node: node.name.clone(),
            fallback: node.fallback,
            session: nodes.session.clone(),
            keys: Keys::new(&nodes.robot_id, &node.name),
            bus: nodes.bus.clone(),
            local: LocalGroup {
                flags,
                children,
                context: nodes.context.clone(),
            },
            migratable: node.migrate.is_some(),
        };
        // No quota of its own: the node's supervisor governs the group's actors (their
        // quotas come from the same config), as the local group's does here.
        let spec = ChildSpec::worker(name, worker, ())
            .flood(|| NodeGroupMsg::Noop)
            .shutdown(Shutdown::Timeout(remote::ASK_TIMEOUT + GRACE));
        match node.migrate {
            Some(policy) => spec.migratable(policy),
            None => spec,
        }
    }
}

/// The bulkhead runtime, let go without blocking when dropped: a robot whose start
/// fails part-way drops it inside the async start, where a blocking drop would panic.
pub(super) struct Bulkhead(Option<tokio::runtime::Runtime>);

impl Bulkhead {
    /// A handle to spawn on it.
    pub(super) fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|rt| rt.handle().clone())
    }
}

impl Drop for Bulkhead {
    /// Its actors are stopped (or never started); its threads go on their own.
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// The bulkhead runtime, if the config isolates any worker.
pub(super) fn bulkhead_runtime(config: &Config) -> Result<Option<Bulkhead>, AppError> {
    if config.runtime.bulkhead.is_empty() {
        return Ok(None);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.runtime.bulkhead_threads)
        .thread_name("nevil-bulkhead")
        .enable_all()
        .build()
        .map(|rt| Some(Bulkhead(Some(rt))))
        .map_err(AppError::Runtime)
}
