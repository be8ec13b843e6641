//! `nevil`: the onboard runtime of a small robot. Parses the command line and runs the
//! subcommand ([`nevil::cli`]), whose outcome is the exit code: 0 success, 1 the robot
//! failed (hardware, escalation, replay mismatch), 2 bad input (arguments, config,
//! drill, recording).

use std::process::ExitCode;

use clap::Parser;

/// Charges each allocation to the actor whose handler made it, so the tree shows each
/// actor's memory and quotas can govern it (see `nevil_actors::managed::alloc`).
#[global_allocator]
static ALLOC: nevil_actors::CountingAlloc = nevil_actors::CountingAlloc;

fn main() -> ExitCode {
    nevil::cli::main(nevil::cli::Cli::parse())
}
