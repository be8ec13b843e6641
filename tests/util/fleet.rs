//! Robots of a fleet on loopback: robot `id` with Zenoh listening on a port of the OS's
//! choosing, or connecting to another's, read from its `zenoh listening` log line.

use std::path::PathBuf;

use super::{assert_tree_schema, config_with, node, scratch};

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
    locator_at(line, "tcp/127.0.0.1:")
}

/// The endpoint starting with `prefix` (e.g. `tcp/10.0.0.1:`) in a `zenoh listening`
/// log line.
pub fn locator_at(line: &str, prefix: &str) -> String {
    let start = line
        .find(prefix)
        .unwrap_or_else(|| panic!("no locator {prefix}… in {line}"));
    line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect()
}

/// What `nevil fleet` printed: its exit code, stdout and stderr.
pub type Printed = (Option<i32>, String, String);

/// Checks robot `id`'s tree as `nevil fleet` shows it: `json` is what `--tree ID --json`
/// printed (the robot listed with its tree, whose motion is a worker) and `text` what
/// `--tree ID` printed (the tree as `nevil tree` prints it).
pub fn assert_fleet_tree(id: &str, json: &Printed, text: &Printed) {
    let (code, stdout, stderr) = json;
    assert_eq!(*code, Some(0), "{stderr}");
    let listed: serde_json::Value = serde_json::from_str(stdout).expect(stdout);
    let robot = listed
        .as_array()
        .expect("a list")
        .iter()
        .find(|r| r["id"] == id)
        .expect(id);
    assert_tree_schema(&robot["tree"]);
    assert_eq!(
        node(&robot["tree"], "root/control/motion")["kind"],
        "worker"
    );

    let (code, stdout, stderr) = text;
    assert_eq!(*code, Some(0), "{stderr}");
    assert!(stdout.starts_with("pid "), "{stdout}");
    assert!(stdout.contains("\n    motion [running]"), "{stdout}");
}
