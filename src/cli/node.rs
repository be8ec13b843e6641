//! `nevil node --name NAME [--config PATH]`: the groups a robot's config places on
//! `node:NAME`, run on this host for that robot over `[zenoh]`. Exit 0 when stopped by
//! SIGTERM or SIGINT, 1 when the network session fails, 2 for bad input.

use std::process::ExitCode;

use super::NodeArgs;
use crate::app::placement::{run_node, NodeError};

/// Runs node `args.name` until a signal stops it.
pub fn main(args: &NodeArgs) -> ExitCode {
    let config = match super::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match super::robot_runtime("nevil node", &config) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(run_node(config, &args.name)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (NodeError::Name(_) | NodeError::NoNetwork | NodeError::NothingPlaced(_))) => {
            eprintln!("nevil node: {e}");
            ExitCode::from(super::BAD_INPUT)
        }
        Err(e) => {
            eprintln!("nevil node {}: {e}", args.name);
            ExitCode::FAILURE
        }
    }
}
