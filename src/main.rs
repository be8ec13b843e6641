//! `nevil`: the onboard runtime of a small robot. Parses the command line, sets up
//! logging, runs the subcommand and maps its outcome to the exit code:
//! 0 success, 1 the robot failed (hardware, escalation, replay mismatch), 2 bad input
//! (arguments, config, drill, recording).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use nevil::app::{Devices, Robot, RunOptions};
use nevil::cli::{Cli, Command, LogFormat, RunArgs};
use nevil::config::Config;
use nevil::core::clock::Clock;
use nevil::ops::http::{Endpoint, Limits, Server};
use nevil::ops::signals::{End, Signals};
use nevil::services::telemetry::Telemetry;

const BAD_INPUT: u8 = 2;

/// Charges each allocation to the actor whose handler made it, so the tree shows each
/// actor's memory and quotas can govern it (see `nevil_actors::managed::alloc`).
#[global_allocator]
static ALLOC: nevil_actors::CountingAlloc = nevil_actors::CountingAlloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The bench restarts actors thousands of times: log only errors unless asked.
    let level = match cli.command {
        Command::Bench { .. } => "error",
        _ => "info",
    };
    init_logging(cli.log_format, level);
    match cli.command {
        Command::Run(args) => run(args),
        Command::CheckConfig { path } => check_config(&path),
        Command::HwCheck(a) => hw_check(a.config.as_deref(), a.dry_run, a.trace.as_deref()),
        Command::HwStop(a) => hw_stop(a.config.as_deref(), a.dry_run, a.trace.as_deref()),
        Command::Replay { file, config, json } => replay(&file, config.as_deref(), json),
        Command::Bench { json } => bench(json),
        Command::Tree { url, json } => tree(&url, json),
    }
}

/// How long `nevil tree` waits for the robot.
const TREE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn tree(url: &str, json: bool) -> ExitCode {
    let url = nevil::ops::http::tree_url(url);
    let answer = match block_on("tree", nevil::ops::http::get(&url, TREE_TIMEOUT)) {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    let body = match answer {
        Ok((200, body)) => body,
        Ok((status, body)) => {
            eprintln!("nevil tree: {url}: HTTP {status}: {}", body.trim());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("nevil tree: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        print!("{body}");
        return ExitCode::SUCCESS;
    }
    match nevil::services::tree::text::render(&body) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nevil tree: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    std::panic::set_hook(Box::new(log_panic));
}

/// Logs a panic as one error event instead of the default hook's loose stderr lines:
/// `--log-format json` output stays one JSON object per line, and a panic inside an
/// actor carries that actor's path (the hook runs in the panicking handler's span).
/// The supervisor catches the panic and logs the exit and restart separately.
fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    // First, before anything that allocates: a panic may be the start of the process
    // going down, and the wheels must not keep turning (docs/safety.md). A supervised
    // actor's panic stops them for one control period; the controller's next command
    // drives them again.
    nevil::robot::safety::emergency::stop_motors();
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-text payload");
    let location = info.location().map(ToString::to_string);
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    // Captured only when RUST_BACKTRACE (or RUST_LIB_BACKTRACE) asks for it.
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        tracing::error!(panic = message, location, thread, %backtrace, "panicked");
    } else {
        tracing::error!(panic = message, location, thread, "panicked");
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("nevil: {e}");
        ExitCode::from(BAD_INPUT)
    })
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(Some(path)) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            for problem in e.problems() {
                println!("{problem}");
            }
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn hw_check(config: Option<&Path>, dry_run: bool, trace: Option<&Path>) -> ExitCode {
    let picarx = match config {
        Some(path) => match load_config(Some(path)) {
            Ok(c) => c.picarx,
            Err(code) => return code,
        },
        None => Default::default(),
    };
    let ops = match nevil::cli::hw_check::run(&picarx, dry_run) {
        Ok(ops) => ops,
        Err(e) => {
            eprintln!("nevil hw-check: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", nevil::cli::hw_check::summary(&ops));
    if let Some(path) = trace {
        if let Err(e) = nevil::cli::hw_check::write_trace(&ops, path) {
            eprintln!("nevil hw-check: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn hw_stop(config: Option<&Path>, dry_run: bool, trace: Option<&Path>) -> ExitCode {
    use nevil::cli::hw_stop::Target;
    let write_trace = |ops: &[nevil::cli::hw_check::Operation]| match trace {
        Some(path) => nevil::cli::hw_check::write_trace(ops, path).map_err(|e| {
            eprintln!("nevil hw-stop: {}: {e}", path.display());
        }),
        None => Ok(()),
    };
    let picarx = match nevil::cli::hw_stop::target(config) {
        Target::Sim => {
            println!("hw-stop: the config runs the simulated robot: no motor outputs to stop");
            return match write_trace(&[]) {
                Ok(()) => ExitCode::SUCCESS,
                Err(()) => ExitCode::FAILURE,
            };
        }
        Target::Picarx(picarx) => picarx,
        Target::Fallback(picarx, why) => {
            eprintln!("nevil hw-stop: {why}");
            eprintln!("nevil hw-stop: stopping the PiCar-X HAT at its default address anyway");
            picarx
        }
    };
    let report = nevil::hw::picarx::stop::stop(&picarx, dry_run);
    print!(
        "{}",
        nevil::cli::hw_stop::summary(&picarx, &report, dry_run)
    );
    for line in nevil::cli::hw_stop::problems(&picarx, &report) {
        eprintln!("nevil hw-stop: {line}");
    }
    // The trace is written whatever happened: it shows what did go through.
    let traced = write_trace(&nevil::cli::hw_stop::operations(&report));
    if report.motors_stopped && traced.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn replay(file: &Path, config: Option<&Path>, json: bool) -> ExitCode {
    let config = match load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let recording = match nevil::services::recorder::recording::read(file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nevil replay: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    if recording.truncated_bytes > 0 {
        eprintln!(
            "nevil replay: {}: last record cut off ({} bytes ignored)",
            file.display(),
            recording.truncated_bytes
        );
    }
    let report = nevil::cli::replay::replay(&recording.records, &config);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("nevil replay: {e}"),
        }
    } else {
        println!(
            "{} records; behaviour commands {}/{} match; motor commands {}/{} match; controller restarts {}",
            report.records,
            report.commands_matched,
            report.commands_checked,
            report.drives_matched,
            report.drives_checked,
            report.controller_restarts
        );
        for m in &report.mismatches {
            println!("mismatch: {m}");
        }
    }
    if report.all_match() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs `future` to completion on a current-thread runtime, for a one-shot
/// subcommand; exit 1 naming `command` if the runtime cannot start.
fn block_on<F: std::future::Future>(command: &str, future: F) -> Result<F::Output, ExitCode> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Ok(rt.block_on(future)),
        Err(e) => {
            eprintln!("nevil {command}: cannot start the async runtime: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn bench(json: bool) -> ExitCode {
    // One thread: the steadiest figures, and what the scenarios assume.
    let report = match block_on("bench", nevil::cli::bench::run_all()) {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => {
            eprintln!("nevil bench: {e}");
            return ExitCode::FAILURE;
        }
        Err(code) => return code,
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("nevil bench: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let value = serde_json::to_value(&report).unwrap_or_default();
        for (key, v) in value.as_object().into_iter().flatten() {
            println!("{key:32} {v}");
        }
    }
    ExitCode::SUCCESS
}

fn run(args: RunArgs) -> ExitCode {
    let config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Before the hardware opens: an unplug drill on the real robot is bad input, not a
    // failure to open the HAT.
    if let Err(e) = nevil::app::check_drills(&config, &args.inject) {
        eprintln!("nevil: {e}");
        return ExitCode::from(BAD_INPUT);
    }
    let addr = match config.http.address(args.listen.as_deref()) {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("nevil: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    // Bound before anything moves: a taken port stops the start, not a running robot.
    let listener = match nevil::ops::http::bind(addr) {
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.runtime.worker_threads)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("nevil: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run_robot(config, args, http))
}

/// The endpoint's socket and settings, until the robot it reports on has started.
struct Http {
    listener: std::net::TcpListener,
    telemetry: Telemetry,
    limits: Limits,
}

async fn run_robot(config: Config, args: RunArgs, http: Http) -> ExitCode {
    let clock = Clock::start();
    let devices = match Devices::open(&config, clock) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("nevil: {e}");
            return ExitCode::FAILURE;
        }
    };
    // However `run_robot` is left (a return or an unwind), the motors stop.
    let _motors = nevil::robot::safety::emergency::MotorGuard::new(devices.hw.drive.clone());
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
        loop_timer: nevil::core::ticker::Timer::Precise,
    };
    let robot = match Robot::start(&config, devices, clock, &opts).await {
        Ok(r) => r,
        Err(e @ nevil::app::AppError::Drill(_)) => {
            eprintln!("nevil: {e}");
            return ExitCode::from(BAD_INPUT);
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
    };
    let server = match Server::start(http.listener, endpoint, http.limits) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("nevil: {e}");
            robot.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    // The endpoint serves first: READY=1 then means scrapes and probes answer.
    // Under systemd: READY=1 now, watchdog pings while the root supervisor runs.
    let systemd = nevil::ops::systemd::Service::ready(robot.tree());
    let end = signals.run_until_stopped(&robot, args.duration).await;
    // The motors first, before anything that could wait on an actor.
    robot.stop_motors("shutdown");
    tracing::info!(?end, "stopping");
    systemd.stopping(&format!("{end:?}")).await;
    if end == End::Duration && args.tree_dump.is_some() {
        if let Err(e) = robot
            .dump_tree_within(nevil::ops::signals::DUMP_TIMEOUT)
            .await
        {
            tracing::error!(error = %e, "final tree dump failed");
        }
    }
    let (exit, report) = robot.shutdown().await;
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

fn default_dump_path() -> PathBuf {
    std::env::temp_dir().join(format!("nevil-tree-{}.json", std::process::id()))
}
