//! `nevil run`: the robot itself. Opens the devices (and the audit trail, if any),
//! starts the tree, serves the endpoint, tells systemd, and runs until the end of
//! `--duration`, SIGTERM/SIGINT or an escalation; then stops the motors first and
//! writes the run report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::RunArgs;
use crate::app::reload::LogFilter;
use crate::app::{Devices, Robot, RunOptions};
use crate::config::Config;
use crate::core::clock::Clock;
use crate::ops::fleet::peers::Peers;
use crate::ops::fleet::Fleet;
use crate::ops::http::{Endpoint, Limits, Server};
use crate::ops::observer::{Controls, Layout, RobotSources};
use crate::ops::signals::{End, Signals};
use crate::services::audit::{Audit, AuditError, ConfigOutcome};
use crate::services::telemetry::Telemetry;

/// `nevil run`: runs the robot of `args.config` until `--duration` ends, a signal
/// stops it or its root supervisor gives up.
pub fn main(args: RunArgs, log_format: super::LogFormat) -> ExitCode {
    let config = match super::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Before the hardware opens: an unplug drill on the real robot is bad input, not a
    // failure to open the HAT.
    if let Err(e) = crate::app::check_drills(&config, &args.inject) {
        eprintln!("nevil: {e}");
        return ExitCode::from(super::BAD_INPUT);
    }
    let addr = match config.http.address(args.listen.as_deref()) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("nevil: {e}");
            return ExitCode::from(super::BAD_INPUT);
        }
    };
    // Bound before anything moves: a taken port stops the start, not a running robot.
    let listener = match crate::ops::http::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nevil: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match Telemetry::install() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("nevil: {e}");
            return ExitCode::FAILURE;
        }
    };
    let http = Http {
        listener,
        telemetry,
        limits: Limits {
            max_connections: config.http.max_connections,
            timeout: config.http.timeout(),
        },
    };
    let runtime = match super::robot_runtime("nevil", &config) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(run_robot(config, args, http, log_format))
}

/// Opens the audit trail `--audit` or `[audit] path` names, if any, and records the
/// config the run starts with (generation 1). Exit 2 for a file that is not a trail,
/// 1 if it cannot be opened.
fn open_audit(
    config: &Config,
    audit: Option<PathBuf>,
    origin: Option<PathBuf>,
) -> Result<Option<Audit>, ExitCode> {
    let Some(path) = audit.as_ref().or(config.audit.path.as_ref()) else {
        return Ok(None);
    };
    let audit =
        Audit::open(path, config.audit.max_file_bytes, config.audit.keep_files).map_err(|e| {
            eprintln!("nevil: {e}");
            match e {
                AuditError::NotATrail { .. } => ExitCode::from(super::BAD_INPUT),
                _ => ExitCode::FAILURE,
            }
        })?;
    let origin = origin
        .as_ref()
        .map_or_else(|| "default config".to_string(), |p| p.display().to_string());
    audit.config(1, ConfigOutcome::Loaded, Some(&origin), &[]);
    Ok(Some(audit))
}

/// The endpoint's socket and settings, until the robot it reports on has started.
struct Http {
    listener: std::net::TcpListener,
    telemetry: Telemetry,
    limits: Limits,
}

async fn run_robot(
    config: Config,
    args: RunArgs,
    http: Http,
    log_format: super::LogFormat,
) -> ExitCode {
    if let Some(level) = &config.log.level {
        if let Err(e) = super::logging::set_filter(Some(level)) {
            tracing::error!(error = %e, "log.level: could not set the log filter");
        }
    }
    let clock = Clock::start();
    let devices = match Devices::open(&config, clock) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("nevil: {e}");
            return ExitCode::FAILURE;
        }
    };
    // However `run_robot` is left (a return or an unwind), the motors stop.
    let _motors = crate::robot::safety::emergency::MotorGuard::new(devices.hw.drive.clone());
    // After the devices (without them, theirs is the error to report) and the metrics
    // recorder (the trail's metrics count from its first line); its file I/O off the
    // async workers.
    let audit = {
        let (config, path, origin) = (config.clone(), args.audit.clone(), args.config.clone());
        tokio::task::spawn_blocking(move || open_audit(&config, path, origin)).await
    };
    let audit = match audit {
        Ok(Ok(audit)) => audit,
        Ok(Err(code)) => return code,
        Err(e) => {
            eprintln!("nevil: opening the audit trail failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Before the robot starts: a signal right after "robot started" must be handled.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nevil: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tree_dump = args.tree_dump.clone().unwrap_or_else(default_dump_path);
    let opts = RunOptions {
        tree_dump: tree_dump.clone(),
        record: args.record.clone(),
        inject: args.inject.clone(),
        audit,
        loop_timer: crate::core::ticker::Timer::Precise,
        config_path: args.config.clone(),
        log_filter: Some(LogFilter(Arc::new(super::logging::set_filter))),
        // A group's process logs as the robot does.
        group_args: vec!["--log-format".into(), log_format.name().into()],
        ..RunOptions::default()
    };
    let robot = match Robot::start(&config, devices, clock, &opts).await {
        Ok(r) => r,
        Err(e @ crate::app::AppError::Drill(_)) => {
            eprintln!("nevil: {e}");
            return ExitCode::from(super::BAD_INPUT);
        }
        Err(e) => {
            eprintln!("nevil: {e}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = Endpoint {
        tree: robot.tree().view(),
        telemetry: http.telemetry,
        estops: robot.estops().clone(),
        analytics: robot.analytics().clone(),
        generation: robot.reloads().generation().clone(),
        timeline: robot.timeline().clone(),
        robot: RobotSources {
            jitter: robot.jitter().clone(),
            host: robot.host_status().clone(),
            sim: robot
                .sim()
                .map(|sim| (sim.clone(), Arc::new(Layout::of(&config.sim)))),
        },
        controls: config.http.control_token.clone().map(|token| {
            let quotas = config.quotas.clone();
            Controls {
                token,
                tree: robot.tree().view(),
                critical: Arc::new(move |path: &str| quotas.is_critical(path)),
                timeline: robot.timeline().clone(),
                audit: robot.audit().cloned(),
            }
        }),
        fleet: match robot.net() {
            Some(session) => Peers::over(session.clone(), &config.robot.id),
            None => Peers::alone(&config.robot.id),
        },
    };
    let fleet_endpoint = robot.net().map(|_| endpoint.clone());
    let server = match Server::start(http.listener, endpoint, http.limits) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("nevil: {e}");
            robot.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    // After the endpoint: the fleet answers from the same sources.
    let fleet = match (robot.net(), fleet_endpoint) {
        (Some(session), Some(endpoint)) => {
            let listen = config.zenoh.listen.clone();
            match Fleet::start(session.clone(), &config.robot.id, listen, endpoint) {
                Ok(fleet) => Some(fleet),
                Err(e) => {
                    tracing::error!(error = %e, "no fleet view");
                    None
                }
            }
        }
        _ => None,
    };
    // The endpoint serves first: READY=1 then means scrapes and probes answer.
    // Under systemd: READY=1 now, watchdog pings while the root supervisor runs.
    let systemd = crate::ops::systemd::Service::ready(robot.tree());
    let end = signals.run_until_stopped(&robot, args.duration).await;
    // The motors first, before anything that could wait on an actor.
    robot.stop_motors("shutdown");
    tracing::info!(?end, "stopping");
    systemd.stopping(&format!("{end:?}")).await;
    if end == End::Duration && args.tree_dump.is_some() {
        if let Err(e) = robot
            .dump_tree_within(crate::ops::signals::DUMP_TIMEOUT)
            .await
        {
            tracing::error!(error = %e, "final tree dump failed");
        }
    }
    let (exit, report) = robot.shutdown().await;
    // After the shutdown's events are out: the fleet sees them, then the robot go.
    if let Some(fleet) = fleet {
        fleet.stop().await;
    }
    server.stop();
    tracing::info!(
        jitter_p50_us = report.jitter.p50_s * 1e6,
        jitter_p99_us = report.jitter.p99_s * 1e6,
        ticks = report.jitter.ticks,
        restarts = report.restarts,
        "run finished"
    );
    if let Some(path) = &args.report {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json));
        if let Err(e) = written {
            eprintln!("nevil: run report {}: {e}", path.display());
        }
    }
    match end {
        End::Escalated(reason) => {
            eprintln!("nevil: the root supervisor gave up: {reason}");
            ExitCode::FAILURE
        }
        _ if exit.is_abnormal() => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    }
}

/// `nevil-tree-<pid>.json` in the temp dir.
fn default_dump_path() -> PathBuf {
    std::env::temp_dir().join(format!("nevil-tree-{}.json", std::process::id()))
}
