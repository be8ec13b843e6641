//! The robot's life: open the devices, start the tree (then its drills), dump it on
//! request, and shut it down with the motors first.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nevil_actors::{
    ActorPath, ChildSpec, EventFeed, ExitReason, Pressure, PressurePolicy, StartError, Strategy,
    Tree, TreeContext,
};
use ractor::ActorRef;

use super::drills::{
    check_busy, check_drills, resolve, schedule, unplug_later, DrillTargetError, FiredDrills,
};
use super::inject::{Fault, Injection};
use super::layout::{bulkhead_runtime, layout, supervisor_flags, Build, Bulkhead, Nodes, Parts};
use super::placement::{Launch, RobotEnd};
use super::reload::{LogFilter, Reloads};
use super::RunReport;
use crate::bus::{Bus, EStop};
use crate::config::reload::{Generation, LiveConfigSender};
use crate::config::{Backend, Config};
use crate::core::clock::Clock;
use crate::core::jitter::Jitter;
use crate::hw::sim::Sim;
use crate::hw::{self, Hardware, HwError};
use crate::ops::observer::Timeline;
use crate::robot::safety::{DeadMan, EStopLatch};
use crate::services::analytics::AnalyticsHandle;
use crate::services::audit::{Audit, Watch};
use crate::services::monitor::HostStatus;
use crate::services::tree::TreeServiceMsg;

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

/// Options of a run that are not in the config file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where tree dumps go.
    pub tree_dump: PathBuf,
    /// Record the bus here (overrides the config's recorder path).
    pub record: Option<PathBuf>,
    /// Fault drills to run.
    pub inject: Vec<Injection>,
    /// The audit trail to append the tree's events and the e-stop's changes to.
    pub audit: Option<Audit>,
    /// What drives the control loop.
    pub loop_timer: crate::core::ticker::Timer,
    /// The config file a reload re-reads (`None`: the embedded default).
    pub config_path: Option<PathBuf>,
    /// Sets the log filter when a reload changes `log.level`.
    pub log_filter: Option<LogFilter>,
    /// Workers added after the `management` group's own (the soak's probe).
    pub extra: ExtraWorkers,
    /// The `nevil` binary a process-placed group runs in (default: this executable).
    pub group_exe: Option<PathBuf>,
    /// Arguments a group's process gets before its subcommand (e.g. the log format).
    pub group_args: Vec<std::ffi::OsString>,
}

/// Workers a caller adds to the `management` group, after its own: `nevil soak` adds
/// its suspend/resume probe this way, so the probe lives in the same tree as the robot.
#[derive(Clone, Default)]
pub struct ExtraWorkers(pub Vec<ChildSpec>);

impl std::fmt::Debug for ExtraWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(ChildSpec::name))
            .finish()
    }
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
    /// The bridge to a process-placed group could not listen.
    #[error("cannot open the bridge to the process-placed groups: {0}")]
    Bridge(crate::bus::bridge::BridgeError),
    /// The network session (`[zenoh]`) could not be opened.
    #[error("{0}")]
    Net(crate::bus::net::NetError),
    /// The binary a process-placed group runs in is unknown.
    #[error("cannot find the nevil binary to run a group's process in: {0}")]
    Exe(std::io::Error),
}

/// A running robot.
pub struct Robot {
    bulkhead: Option<Bulkhead>,
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
    reloads: Reloads,
    audit: Option<(Audit, Watch)>,
    /// The bridge to process-placed groups, when the config places any.
    placement: Option<RobotEnd>,
    /// The network session (`[zenoh]`), when an endpoint is configured.
    net: Option<zenoh::Session>,
    /// The observer's timeline: the tree's events and the e-stop's changes.
    timeline: Timeline,
    timeline_watch: tokio::task::JoinHandle<()>,
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
        let live = LiveConfigSender::new(Arc::new(config.clone()));
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
            live: live.subscribe(),
            generation: Generation::new(),
        };
        let groups = layout(config, opts, &parts);
        let targets = opts
            .inject
            .iter()
            .map(|i| {
                let path = resolve(&groups, &i.target)?;
                check_busy(config, i, &path)?;
                Ok((i.clone(), path))
            })
            .collect::<Result<Vec<_>, DrillTargetError>>()?;
        check_drills(config, &opts.inject)?;
        let bulkhead = bulkhead_runtime(config)?;
        let net = if config.zenoh.enabled() {
            Some(
                crate::bus::net::open(&config.zenoh)
                    .await
                    .map_err(AppError::Net)?,
            )
        } else {
            None
        };
        parts
            .deadman
            .spawn(opts.loop_timer, parts.hw.drive.clone(), parts.latch.clone())
            .map_err(AppError::DeadMan)?;
        let placement = match config.placement.process_groups().next() {
            Some(_) => Some(RobotEnd::open(&parts.bus).await.map_err(AppError::Bridge)?),
            None => None,
        };
        let process = match &placement {
            Some(end) => Some(Arc::new(Launch {
                exe: match &opts.group_exe {
                    Some(exe) => exe.clone(),
                    None => std::env::current_exe().map_err(AppError::Exe)?,
                },
                config: opts.config_path.clone(),
                socket: end.socket().to_path_buf(),
                global_args: opts.group_args.clone(),
            })),
            None => None,
        };
        let context = TreeContext {
            pressure: parts.pressure.clone(),
            events: parts.events.clone(),
        };
        let nodes = net.as_ref().map(|session| Nodes {
            session: session.clone(),
            robot_id: config.robot.id.clone(),
            bus: parts.bus.clone(),
            context: context.clone(),
        });
        let build = Build {
            config,
            bulkhead: bulkhead.as_ref().and_then(Bulkhead::handle),
            process,
            nodes,
        };
        let root = ActorPath::root("root");
        let children = groups.into_iter().map(|g| build.group(&root, g)).collect();
        // Before the tree starts: its first events and e-stop changes are audited and
        // on the observer's timeline too.
        let timeline = Timeline::default();
        let timeline_watch = timeline.watch(&parts.events);
        let audit = opts.audit.clone().map(|audit| {
            let watch = audit.watch(&parts.events);
            (audit, watch)
        });
        let (observer, audited) = (timeline.clone(), opts.audit.clone());
        parts.latch.observe(move |event| {
            observer.estop(event);
            if let Some(audit) = &audited {
                audit.estop(event);
            }
        });
        let started = Tree::start_in(
            "root",
            supervisor_flags(config, Strategy::OneForOne),
            children,
            context,
        )
        .await;
        let tree = started.inspect_err(|_| parts.deadman.stop())?;
        // Set once, right after start; the tree service reads it on each dump.
        let _ = parts.view.set(tree.view());
        let fired = FiredDrills::new(clock);
        let drills = targets
            .into_iter()
            .map(|(injection, path)| match injection.fault {
                Fault::Unplug => unplug_later(devices.sim.clone(), injection, path, fired.clone()),
                Fault::Actor(fault) => schedule(tree.view(), injection, fault, path, fired.clone()),
            })
            .collect();
        let mut reloads = Reloads::start(
            Arc::new(config.clone()),
            opts.config_path.clone(),
            &tree.view(),
            live,
            parts.generation,
            opts.log_filter.clone(),
        );
        if let Some((audit, _)) = &audit {
            let origin = opts
                .config_path
                .as_ref()
                .map_or_else(|| "default config".to_string(), |p| p.display().to_string());
            reloads.audit_to(audit.clone(), Some(origin));
        }
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
            reloads,
            audit,
            placement,
            net,
            timeline,
            timeline_watch,
        })
    }

    /// The network session (`[zenoh]`: nodes, fleet views), when an endpoint is
    /// configured; everything the robot says there is under
    /// [`robot_prefix`](crate::bus::net::robot_prefix)`(config.robot.id)`.
    pub fn net(&self) -> Option<&zenoh::Session> {
        self.net.as_ref()
    }

    /// Config reloads: ask for one, follow their outcomes ([`ReloadEvent`]s), read the
    /// config generation.
    ///
    /// [`ReloadEvent`]: super::reload::ReloadEvent
    pub fn reloads(&self) -> &Reloads {
        &self.reloads
    }

    /// The run's error analytics (see [`crate::services::analytics::model`]).
    pub fn analytics(&self) -> &AnalyticsHandle {
        &self.analytics
    }

    /// The audit trail, when the run has one: a config reload appends its outcome with
    /// [`Audit::config`].
    pub fn audit(&self) -> Option<&Audit> {
        self.audit.as_ref().map(|(audit, _)| audit)
    }

    /// The run's timeline for the observer page: the tree's events and the e-stop's
    /// changes (the page's control requests join it).
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The control loop's lateness.
    pub fn jitter(&self) -> &Arc<Jitter> {
        &self.jitter
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
        self.stop_motors(crate::robot::safety::latch::SHUTDOWN);
        tracing::info!("motors stopped; stopping the actor tree");
        for drill in &self.drills {
            drill.abort();
        }
        self.reloads.stop();
        let exit = self.tree.shutdown().await;
        self.timeline_watch.abort();
        self.deadman.stop();
        if let Some(end) = &self.placement {
            end.bridge().log_stats();
        }
        if let Some((audit, watch)) = self.audit {
            // Every event of the run, the shutdown's e-stop included, is on disk.
            watch.finish().await;
            audit.close().await;
        }
        // Its actors are stopped; its threads go without blocking this one.
        drop(self.bulkhead);
        let restarts = self
            .tree
            .snapshot()
            .root
            .walk()
            .iter()
            .map(|n| n.restarts)
            .sum();
        let report = RunReport {
            started_unix_ms: self.clock.start_unix_ms(),
            duration_s: self.clock.elapsed().as_secs_f64(),
            exit: exit.to_string(),
            jitter: self.jitter.summary(),
            estops: self.latch.events(),
            estops_dropped: self.latch.events_dropped(),
            deadman_trips: self.deadman.trips(),
            drills: self.fired.list(),
            bus: self.bus.stats(),
            bridge: self
                .placement
                .as_ref()
                .map(|end| end.bridge().stats())
                .unwrap_or_default(),
            restarts,
            sim: self.devices.sim.as_ref().map(Sim::report),
        };
        (exit, report)
    }
}

impl crate::ops::signals::Running for Robot {
    fn wait(&self) -> impl std::future::Future<Output = ExitReason> {
        Robot::wait(self)
    }

    fn dump_tree_within(
        &self,
        limit: Duration,
    ) -> impl std::future::Future<Output = Result<PathBuf, String>> {
        Robot::dump_tree_within(self, limit)
    }

    fn reload(&self) {
        self.reloads.request();
    }
}
