//! `nevil group` (internal): one group of the robot's tree in a process of its own, as
//! a `nevil run` with `[placement] <group> = "process"` starts it. Exit 0 when told to
//! stop, 1 when the group failed (its supervisor gave up, the bridge broke), 2 for bad
//! input.

use std::process::ExitCode;

use super::GroupArgs;
use crate::app::placement::{run_group, GroupError};

/// Runs the group `args` names until its stdin ends or a signal stops it.
pub fn main(args: &GroupArgs) -> ExitCode {
    let config = match super::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match super::robot_runtime("nevil group", &config) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(run_group(config, &args.name, &args.bridge)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ GroupError::UnknownGroup(_)) => {
            eprintln!("nevil group: {e}");
            ExitCode::from(super::BAD_INPUT)
        }
        Err(e) => {
            eprintln!("nevil group {}: {e}", args.name);
            ExitCode::FAILURE
        }
    }
}
