//! Driving the real `nevil` binary: commands, scratch directories, and a running robot
//! whose log lines can be awaited (no sleep-and-hope: we wait for what it says).
#![allow(dead_code)]

pub mod fleet;
pub mod netns;
pub mod pki;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// `nevil` with `args`, run from the repository root.
pub fn nevil(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nevil"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    // Tests run robots side by side: each serves its endpoint on a port of its own.
    if args.contains(&"run") && !args.contains(&"--listen") {
        cmd.args(["--listen", "127.0.0.1:0"]);
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

/// Runs `nevil args` to completion.
pub fn output(args: &[&str]) -> Output {
    nevil(args).output().expect("run nevil")
}

/// stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nevil-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The default config with `from` replaced by `to` (each must occur), written to `dir`.
pub fn config_with(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = nevil::config::DEFAULT_TOML.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "default config has no {from:?}");
        text = text.replace(from, to);
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Reads a JSON file.
pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// A `nevil run` in the background whose stderr lines can be awaited.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Starts `nevil args` (JSON logs, so lines can be matched exactly).
    pub fn start(args: &[&str]) -> Self {
        Self::spawn(nevil(args))
    }

    /// Starts `cmd` (a `nevil run`, perhaps behind a wrapper such as `setpriv`).
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn nevil");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (up to a minute, as a failsafe) for a stderr line containing `needle`.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line containing {needle:?}; got:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the endpoint to listen; its base URL (`http://127.0.0.1:PORT`).
    pub fn http_base(&mut self) -> String {
        let line = self.wait_for("http endpoint listening");
        let start = line.find("127.0.0.1:").expect("a loopback address");
        let addr: String = line[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect();
        format!("http://{addr}")
    }

    /// Sends a signal by name (`USR1`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit; its exit code and every stderr line.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let status = self.child.wait().expect("wait");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status.code(), self.seen)
    }
}

/// Asserts that a tree JSON node (and its subtree) has DESIGN.md's schema.
pub fn assert_node_schema(node: &serde_json::Value) {
    let obj = node.as_object().expect("node is an object");
    for key in [
        "name",
        "path",
        "kind",
        "strategy",
        "status",
        "restarts",
        "last_exit",
        "mailbox_depth",
        "messages_handled",
        "cpu_seconds",
        "memory_bytes",
        "quota",
        "placement",
        "pid",
        "isolation",
        "children",
    ] {
        assert!(obj.contains_key(key), "node {} lacks {key}", node["path"]);
    }
    assert_eq!(obj.len(), 16, "unexpected keys in {node}");
    // Where it runs: `in_process`, or a group's process (with its isolation).
    assert!(node["placement"].is_string() && node["pid"].is_u64());
    assert!(node["isolation"].is_null() || node["isolation"].is_string());
    assert!(node["name"].is_string() && node["path"].is_string());
    let kind = node["kind"].as_str().expect("kind");
    assert!(kind == "supervisor" || kind == "worker");
    match kind {
        "supervisor" => assert!(["one_for_one", "rest_for_one", "one_for_all"]
            .contains(&node["strategy"].as_str().expect("strategy"))),
        _ => assert!(node["strategy"].is_null()),
    }
    assert!(node["status"].is_string());
    assert!(node["restarts"].is_u64() && node["messages_handled"].is_u64());
    assert!(node["mailbox_depth"].is_u64() && node["memory_bytes"].is_u64());
    assert!(node["cpu_seconds"].is_f64());
    assert!(node["last_exit"].is_null() || node["last_exit"].is_string());
    assert!(node["quota"].is_null() || node["quota"].is_object());
    for child in node["children"].as_array().expect("children") {
        assert_node_schema(child);
    }
}

/// Asserts DESIGN.md's top-level tree JSON, plus the error analytics beside it.
pub fn assert_tree_schema(tree: &serde_json::Value) {
    assert!(tree["config_generation"].is_u64(), "{tree}");
    assert!(tree["pid"].is_u64(), "{tree}");
    assert!(tree["uptime_s"].is_f64());
    assert_eq!(tree["root"]["path"], "root");
    assert_node_schema(&tree["root"]);
    let keys: Vec<_> = tree
        .as_object()
        .expect("tree is an object")
        .keys()
        .collect();
    assert_eq!(keys.len(), 5, "top-level keys: {keys:?}");
    assert_analytics_schema(&tree["analytics"]);
}

/// Asserts the shape of the tree document's `analytics` object.
pub fn assert_analytics_schema(a: &serde_json::Value) {
    let obj = a.as_object().expect("analytics is an object");
    for key in ["errors_total", "correlations_total", "events_lost"] {
        assert!(
            obj.get(key).is_some_and(|v| v.is_u64()),
            "analytics.{key}: {a}"
        );
    }
    assert!(a["at_s"].is_f64() && a["params"].is_object() && a["evicted"].is_object());
    let list = |key: &str| {
        a[key]
            .as_array()
            .unwrap_or_else(|| panic!("analytics.{key}: {a}"))
    };
    for s in list("signatures") {
        assert!(s["id"].is_string() && s["kind"].is_string() && s["path"].is_string());
        assert!(s["message"].is_string() && s["count"].is_u64() && s["in_window"].is_u64());
        assert!(s["first_seen_s"].is_f64() && s["last_seen_s"].is_f64());
    }
    for p in list("patterns") {
        assert!(p["signature"].is_string() && p["path"].is_string() && p["occurrences"].is_u64());
    }
    for c in list("correlations") {
        assert!(c["a"].is_string() && c["b"].is_string() && c["count"].is_u64());
        assert!(["siblings", "parent"].contains(&c["relation"].as_str().expect("relation")));
    }
    for r in list("risk") {
        let score = r["score"].as_f64().expect("score");
        assert!((0.0..=1.0).contains(&score), "{r}");
        assert!(r["path"].is_string() && r["errors"].is_u64() && r["last_error_s"].is_f64());
    }
}

/// The node at `path` in a tree JSON.
pub fn node<'a>(tree: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    find_node(tree, path).unwrap_or_else(|| panic!("no node {path}"))
}

/// The node at `path` in a tree JSON, if it has one.
pub fn find_node<'a>(tree: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    fn find<'a>(n: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
        if n["path"] == path {
            return Some(n);
        }
        n["children"].as_array()?.iter().find_map(|c| find(c, path))
    }
    find(&tree["root"], path)
}

/// Every node below the root (workers and group supervisors) in a tree JSON, with its
/// restart count.
pub fn restarts(tree: &serde_json::Value) -> Vec<(String, u64)> {
    fn walk(n: &serde_json::Value, out: &mut Vec<(String, u64)>) {
        if n["path"] != "root" {
            out.push((
                n["path"].as_str().unwrap_or("").to_string(),
                n["restarts"].as_u64().unwrap_or(0),
            ));
        }
        for c in n["children"].as_array().into_iter().flatten() {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    walk(&tree["root"], &mut out);
    out
}

/// GETs `url` with nevil's own client: the status code and body, or what failed.
pub fn try_http_get(url: &str) -> Result<(u16, String), nevil::ops::http::ClientError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(nevil::ops::http::get(url, Duration::from_secs(30)))
}

/// GETs `url`: the status code and body (panics naming what failed).
pub fn http_get(url: &str) -> (u16, String) {
    try_http_get(url).unwrap_or_else(|e| panic!("{e}"))
}

/// POSTs an empty body to `url` (`http://127.0.0.1:PORT/path`), with `token` as a
/// bearer token when given: the status code and body.
pub fn http_post(url: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// url");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// A Zenoh endpoint on a free TCP port of loopback (`tcp/127.0.0.1:PORT`), the port
/// released for a process under test to take: both sides must name it before either
/// starts.
pub fn free_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local address").port();
    format!("tcp/127.0.0.1:{port}")
}

/// `nevil node --name laptop --config CONFIG`: the node [`node_configs`] places the
/// behaviours on.
pub fn start_node(config: &Path) -> Running {
    Running::start(&[
        "node",
        "--name",
        "laptop",
        "--config",
        config.to_str().unwrap(),
    ])
}

/// A robot's config and a node's for it (`[placement] behaviours = PLACEMENT`), the
/// robot listening on `endpoint` (e.g. `tcp/127.0.0.1:7447`) and the node connecting
/// there; written to `dir` and `dir/node`.
pub fn node_configs(dir: &Path, placement: &str, endpoint: &str) -> (PathBuf, PathBuf) {
    let placed = format!("[placement]\nbehaviours = {placement}\n\n[robot]\nid = \"it\"");
    let robot = config_with(
        dir,
        &[(
            "[robot]",
            &format!("[zenoh]\nlisten = [\"{endpoint}\"]\n\n{placed}"),
        )],
    );
    let node_dir = dir.join("node");
    std::fs::create_dir_all(&node_dir).expect("node dir");
    let node = config_with(
        &node_dir,
        &[(
            "[robot]",
            &format!("[zenoh]\nconnect = [\"{endpoint}\"]\n\n{placed}"),
        )],
    );
    (robot, node)
}

/// The motors' power changes in a run report (`sim.power_log`): (at_s, left, right).
pub fn power_log(report: &serde_json::Value) -> Vec<(f64, f64, f64)> {
    report["sim"]["power_log"]
        .as_array()
        .expect("sim.power_log")
        .iter()
        .map(|c| {
            let f = |k: &str| c[k].as_f64().expect("a number");
            (f("at_s"), f("left"), f("right"))
        })
        .collect()
}

/// A robot's `/tree`, watched for the node of one group (a node-placed group's worker).
pub struct GroupWatch {
    /// The endpoint's base URL.
    pub base: String,
    /// The group's path.
    pub group: &'static str,
}

impl GroupWatch {
    /// The tree now.
    pub fn tree(&self) -> serde_json::Value {
        let (status, body) = http_get(&format!("{}/tree", self.base));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("tree JSON")
    }

    /// Polls the tree until `done` holds of the group's node (and the whole tree); that
    /// node. A minute at most, as a failsafe.
    pub fn until(
        &self,
        what: &str,
        done: impl Fn(&serde_json::Value, &serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut last = serde_json::Value::Null;
        while std::time::Instant::now() < deadline {
            last = self.tree();
            if let Some(group) = find_node(&last, self.group) {
                if done(group, &last) {
                    return group.clone();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("never saw {what}; last tree:\n{last:#}");
    }
}
