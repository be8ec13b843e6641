//! Robots of a fleet on loopback: robot `id` with Zenoh listening on a port of the OS's
//! choosing, or connecting to another's, read from its `zenoh listening` log line.

use std::path::PathBuf;

use super::{config_with, scratch};

/// The default (simulated) config as robot `id`, with `[zenoh]` set to `zenoh` (e.g.
/// `listen = ["tcp/127.0.0.1:0"]`) and `http` (e.g. `control_token = "..."`) added to
/// `[http]`; written to a scratch directory of its own.
pub fn robot_config(id: &str, zenoh: &str, http: &str) -> PathBuf {
    let dir = scratch(&format!("fleet-{id}"));
    let path = config_with(
        &dir,
        &[
            (
                "backend = \"sim\"",
                &format!("id = \"{id}\"\nbackend = \"sim\""),
            ),
            ("timeout_s = 5\n", &format!("timeout_s = 5\n{http}\n")),
        ],
    );
    let mut toml = std::fs::read_to_string(&path).expect("read config");
    toml.push_str(&format!("\n[zenoh]\n{zenoh}\n"));
    std::fs::write(&path, toml).expect("write config");
    path
}

/// The loopback endpoint (`tcp/127.0.0.1:PORT`) in a `zenoh listening` log line.
pub fn listening_at(line: &str) -> String {
    let start = line.find("tcp/127.0.0.1:").expect("a loopback locator");
    line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect()
}
