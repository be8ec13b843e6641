//! The system monitor on its real path — its actor, the bus, the safety watchdog, the
//! tree's quota pressure — fed by a scripted host instead of sysinfo, on tokio's paused
//! clock, so "within one sample period" is checked exactly.
//!
//! The tree is the robot's management and safety groups with only these two workers: the
//! watchdog watches no sensor and gives the controller an hour, so the host is the only
//! thing that can engage the e-stop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nevil::bus::{Bus, EStop};
use nevil::config::Config;
use nevil::core::clock::Clock;
use nevil::core::levels::Level;
use nevil::robot::safety::{DeadMan, EStopLatch, Watchdog};
use nevil::services::monitor::{
    HostSample, HostSampler, HostStatus, MemoryUsage, SystemMonitor, Temperature,
};
use nevil_actors::{
    ChildSpec, Pressure, PressureLevel, PressurePolicy, SupervisorFlags, Tree, TreeContext,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

const PERIOD: Duration = Duration::from_secs(1);
const CHECK: Duration = Duration::from_millis(10);

/// A host whose next readings the test sets.
#[derive(Clone, Default)]
struct Host(Arc<Mutex<HostSample>>);

impl Host {
    fn set(&self, cpu: f64, celsius: f64) {
        *self.0.lock().unwrap() = HostSample {
            cpu_ratio: Some(cpu),
            memory: Some(MemoryUsage {
                used_bytes: 1 << 30,
                total_bytes: 4 << 30,
            }),
            temperatures: vec![Temperature {
                sensor: "cpu_thermal temp1".into(),
                celsius,
            }],
            disk: None,
        };
    }
}

struct Scripted(Host);

impl HostSampler for Scripted {
    fn sample(&mut self) -> HostSample {
        self.0 .0.lock().unwrap().clone()
    }
}

struct Rig {
    tree: Tree,
    host: Host,
    status: HostStatus,
    estops: mpsc::UnboundedReceiver<EStop>,
    /// The e-stop as last seen.
    engaged: bool,
}

impl Rig {
    async fn start() -> Self {
        let config = Config::load(None).unwrap();
        let (bus, clock) = (Bus::new(32), Clock::start());
        let host = Host::default();
        host.set(0.2, 50.0);
        let (status, pressure) = (
            HostStatus::default(),
            Pressure::new(PressurePolicy {
                critical_factor: 0.5,
                exempt: vec![],
            }),
        );
        let scripted = host.clone();
        let monitor = SystemMonitor {
            period: PERIOD,
            thresholds: config.monitor.thresholds(),
            sampler: Arc::new(move || -> Box<dyn HostSampler> {
                Box::new(Scripted(scripted.clone()))
            }),
            bus: bus.clone(),
            clock,
            status: status.clone(),
            pressure: pressure.clone(),
        };
        let watchdog = Watchdog {
            sensors: vec![],
            controller_limit: Duration::from_secs(3600),
            battery_low_v: 6.4,
            battery_hysteresis_v: 0.2,
            check_period: CHECK,
            bus: bus.clone(),
            clock,
            latch: EStopLatch::default(),
            deadman: DeadMan::new(clock, CHECK * 3, CHECK * 3),
            live: nevil::config::reload::LiveConfig::fixed(
                nevil::config::Config::load(None).unwrap(),
            ),
        };
        let (tx, estops) = mpsc::unbounded_channel();
        bus.estop
            .subscribe_with("test", move |d| tx.send(d.into_inner()).is_ok());
        let group =
            |name, worker| ChildSpec::supervisor(name, SupervisorFlags::default(), vec![worker]);
        let tree = Tree::start_in(
            "root",
            SupervisorFlags::default(),
            vec![
                group(
                    "management",
                    ChildSpec::worker("system_monitor", monitor, ()),
                ),
                group("safety", ChildSpec::worker("watchdog", watchdog, ())),
            ],
            TreeContext {
                pressure,
                ..TreeContext::default()
            },
        )
        .await
        .unwrap();
        Self {
            tree,
            host,
            status,
            estops,
            engaged: false,
        }
    }

    /// The next e-stop change (the watchdog republishes an engaged e-stop every
    /// 100 ms: repeats of the state it is in are not changes); fails if none comes
    /// within a minute (virtual).
    async fn next_estop(&mut self) -> EStop {
        loop {
            let e = tokio::time::timeout(Duration::from_secs(60), self.estops.recv())
                .await
                .expect("no e-stop change within 60 s")
                .unwrap();
            if e.engaged != self.engaged {
                self.engaged = e.engaged;
                return e;
            }
        }
    }

    /// Lets `periods` samples go by, then says whether the e-stop stayed as it was
    /// (republished, perhaps, but not changed).
    async fn quiet_for(&mut self, periods: u32) -> bool {
        tokio::time::sleep(PERIOD * periods).await;
        while let Ok(e) = self.estops.try_recv() {
            if e.engaged != self.engaged {
                return false;
            }
        }
        true
    }
}

/// A critical temperature (82 °C, critical at 80) engages the e-stop within one sample
/// period and one watchdog check, naming the reason. Cooling to 78.5 °C — below 80 but
/// inside the 3 °C hysteresis band — keeps it engaged; 70 °C releases it.
#[tokio::test(start_paused = true)]
async fn critical_temperature_engages_the_estop_until_the_host_cools() {
    let mut rig = Rig::start().await;
    assert!(rig.quiet_for(3).await, "a cool host stops nothing");
    let report = rig.status.latest().expect("a report after a sample");
    assert_eq!(report.levels.temperature, Level::Ok);

    rig.host.set(0.2, 82.0);
    let hot = Instant::now();
    let engaged = rig.next_estop().await;
    assert!(engaged.engaged);
    assert_eq!(engaged.reason, "host temperature critical (82.0 °C)");
    assert!(
        hot.elapsed() <= PERIOD + CHECK,
        "e-stop {:?} after the host got hot",
        hot.elapsed()
    );
    assert_eq!(
        rig.status.latest().unwrap().levels.temperature,
        Level::Critical
    );

    rig.host.set(0.2, 78.5);
    assert!(
        rig.quiet_for(5).await,
        "inside the hysteresis band: still stopped"
    );

    rig.host.set(0.2, 70.0);
    let released = rig.next_estop().await;
    assert!(!released.engaged);
    assert_eq!(
        released.reason, "cleared: host temperature critical (78.5 °C)",
        "the latch keeps the latest reading of a hazard that holds"
    );
    rig.tree.shutdown().await;
}

/// Critical host CPU (0.95, critical at 0.90) raises the pressure the tree's supervisors
/// enforce quotas under, within one sample period; it does not stop the robot. Inside
/// the hysteresis band it holds; below it, it drops; a stopped monitor releases it.
#[tokio::test(start_paused = true)]
async fn critical_cpu_raises_the_pressure_the_enforcer_sees() {
    let mut rig = Rig::start().await;
    let pressure = rig.tree.view().pressure().clone();
    tokio::time::sleep(PERIOD * 2).await;
    assert_eq!(pressure.level(), PressureLevel::Normal);

    rig.host.set(0.95, 50.0);
    tokio::time::sleep(PERIOD).await;
    assert_eq!(pressure.level(), PressureLevel::Critical);
    let report = rig.status.latest().unwrap();
    assert_eq!(report.levels.cpu, Level::Critical);
    assert_eq!(report.pressure, PressureLevel::Critical);
    assert!(
        rig.quiet_for(2).await,
        "host CPU alone does not stop the robot"
    );

    rig.host.set(0.87, 50.0);
    tokio::time::sleep(PERIOD * 2).await;
    assert_eq!(pressure.level(), PressureLevel::Critical, "inside the band");

    rig.host.set(0.75, 50.0);
    tokio::time::sleep(PERIOD).await;
    assert_eq!(
        pressure.level(),
        PressureLevel::Elevated,
        "warn: reported only"
    );

    rig.host.set(0.95, 50.0);
    tokio::time::sleep(PERIOD).await;
    assert_eq!(pressure.level(), PressureLevel::Critical);
    rig.tree.shutdown().await;
    assert_eq!(
        pressure.level(),
        PressureLevel::Normal,
        "nobody watches the host: quotas are the groups' own again"
    );
}

/// A restarted monitor carries on from the levels its predecessor reached: the pressure
/// stays critical across the restart instead of dropping to normal and back.
#[tokio::test(start_paused = true)]
async fn a_restarted_monitor_keeps_the_levels() {
    let rig = Rig::start().await;
    let pressure = rig.tree.view().pressure().clone();
    rig.host.set(0.95, 50.0);
    tokio::time::sleep(PERIOD * 2).await;
    assert_eq!(pressure.level(), PressureLevel::Critical);

    rig.tree
        .inject("root/management/system_monitor", nevil_actors::Fault::Panic)
        .await
        .unwrap();
    tokio::time::sleep(PERIOD / 10).await;
    let snap = rig.tree.snapshot();
    let node = snap.root.find("root/management/system_monitor").unwrap();
    assert_eq!(node.restarts, 1);
    assert_eq!(pressure.level(), PressureLevel::Critical);
    let before = rig.status.latest().unwrap().at_s;
    tokio::time::sleep(PERIOD * 2).await;
    let report = rig.status.latest().unwrap();
    assert!(report.at_s > before, "the new incarnation samples");
    assert_eq!(report.levels.cpu, Level::Critical);
    assert_eq!(pressure.level(), PressureLevel::Critical);
    rig.tree.shutdown().await;
}
