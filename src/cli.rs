//! The command line: one module per subcommand (`run`, `check-config`, `tree`, `fleet`, `bench`,
//! `hw-check`, `hw-stop`, `replay`, `soak`, `audit`, and the internal `group`), each with a `main` that maps its outcome to the exit
//! code: 0 success, 1 the robot failed (hardware, escalation, replay mismatch), 2 bad
//! input (arguments, config, drill, recording).

pub mod args;
pub mod audit;
pub mod bench;
pub mod check_config;
pub mod fleet;
pub mod group;
pub mod hw_check;
pub mod hw_stop;
pub mod logging;
pub mod node;
pub mod replay;
pub mod run;
pub mod soak;
pub mod tree;

use std::path::Path;
use std::process::ExitCode;

pub use args::{
    AuditCommand, Cli, Command, FleetArgs, GroupArgs, HwArgs, LogFormat, NodeArgs, RunArgs,
    SoakArgs, MAX_RUN_DURATION_S,
};

use crate::config::Config;

/// The exit code for bad input.
const BAD_INPUT: u8 = 2;

/// Runs the subcommand `cli` names, with logging set up for it.
pub fn main(cli: Cli) -> ExitCode {
    // The bench restarts actors thousands of times: log only errors unless asked.
    let level = match cli.command {
        Command::Bench { .. } => "error",
        // The soak's faults are logged by the hundred; its own lines say what matters.
        Command::Soak(_) => "error",
        _ => "info",
    };
    logging::init(cli.log_format, level);
    match cli.command {
        Command::Run(args) => run::main(args, cli.log_format),
        Command::Group(args) => group::main(&args),
        Command::Node(args) => node::main(&args),
        Command::CheckConfig { path } => check_config::main(&path),
        Command::HwCheck(a) => hw_check::main(a.config.as_deref(), a.dry_run, a.trace.as_deref()),
        Command::HwStop(a) => hw_stop::main(a.config.as_deref(), a.dry_run, a.trace.as_deref()),
        Command::Replay {
            file,
            config,
            json,
            plot,
        } => replay::main(&file, config.as_deref(), json, plot.as_deref()),
        Command::Bench {
            json,
            hop,
            hops,
            echo,
        } => bench::remote::main(json, hop.as_deref(), hops, echo.as_deref()),
        Command::Soak(args) => soak::main(args),
        Command::Tree { url, json } => tree::main(&url, json),
        Command::Fleet(args) => fleet::main(args),
        Command::Audit {
            command: AuditCommand::Verify { path },
        } => audit::verify(&path),
    }
}

/// The config at `path` (the built-in default without one); exit 2 naming the problem.
fn load_config(path: Option<&Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("nevil: {e}");
        ExitCode::from(BAD_INPUT)
    })
}

/// The multi-threaded runtime a robot runs on (`runtime.worker_threads` workers), for
/// `run` and `soak`; exit 1 naming `command` if it cannot start.
fn robot_runtime(command: &str, config: &Config) -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.runtime.worker_threads)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("{command}: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
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
