//! A real Prometheus server (Debian's `prometheus` package, which `.ci/run` installs)
//! scrapes a running nevil on loopback; after an injected fault its query API reports
//! the restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::{scratch, try_http_get, Running};

/// A Prometheus server that is killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
}

impl Prometheus {
    /// Starts one scraping `target` (`HOST:PORT`) every second.
    fn start(name: &str, target: &str) -> Self {
        let dir = scratch(name);
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: nevil\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        // A free port: bound, read, released (the server binds it a moment later).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus not found: run `bash .ci/run`, which installs Debian's prometheus");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The value of an instant query's first sample, if it has one now.
    fn query(&self, query: &str) -> Option<String> {
        let url = format!("{}/api/v1/query?query={}", self.base, encode(query));
        // Refused until the server listens: that is "no value yet".
        let (status, body) = try_http_get(&url).ok()?;
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        Some(v["data"]["result"][0]["value"][1].as_str()?.to_string())
    }

    /// Waits (failsafe: two minutes) until `query` reads `want`.
    fn await_value(&self, query: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.query(query);
            if last.as_deref() == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("{query} never read {want}; last {last:?}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Percent-encodes a query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn prometheus_scrapes_the_restart_after_an_injected_fault() {
    let mut robot = Running::start(&["run", "--duration", "300", "--inject", "motion:panic@2"]);
    let base = robot.http_base();
    let target = base.trim_start_matches("http://").to_string();
    robot.wait_for("child exited");
    let prometheus = Prometheus::start("prometheus", &target);
    prometheus.await_value(r#"up{job="nevil"}"#, "1");
    // rest_for_one: the panic restarts motion and the behaviours' group after it.
    prometheus.await_value(
        r#"nevil_actor_restarts_total{path="root/control/motion"}"#,
        "1",
    );
    prometheus.await_value(
        r#"nevil_actor_restarts_total{path="root/control/behaviours"}"#,
        "1",
    );
    prometheus.await_value(
        r#"sum(nevil_actor_restarts_total{path=~"root/drivers/.*"})"#,
        "0",
    );
    // The error analytics saw it too, and rated the actor.
    prometheus.await_value(
        r#"nevil_actor_errors_total{path="root/control/motion",kind="panic"}"#,
        "1",
    );
    prometheus.await_value(
        r#"count(nevil_actor_risk_score{path="root/control/motion"} > 0)"#,
        "1",
    );
    prometheus.await_value("nevil_ready", "1");
    drop(prometheus);
    robot.signal("TERM");
    assert_eq!(robot.finish().0, Some(0));
}
