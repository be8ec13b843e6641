//! The operations files in `deploy/` are checked by the tools that will load them:
//! `promtool` for the Prometheus config and alert rules (including their unit tests),
//! `systemd-analyze verify` for the unit, and the Grafana dashboard's queries against
//! the metric names nevil exports.
//!
//! `promtool` comes with Debian's `prometheus` package, which `.ci/run` installs; without
//! it these tests fail and say so rather than pass unchecked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// DESIGN.md's "Prometheus metrics" contract.
const DESIGN_METRICS: &[&str] = &[
    "nevil_actor_restarts_total",
    "nevil_actor_messages_total",
    "nevil_actor_mailbox_depth",
    "nevil_actor_cpu_seconds_total",
    "nevil_actor_memory_bytes",
    "nevil_quota_enforcements_total",
    "nevil_control_loop_jitter_seconds",
    "nevil_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
];

/// The histograms among them: queried through their `_bucket`, `_sum`, `_count` series.
const HISTOGRAMS: &[&str] = &["nevil_control_loop_jitter_seconds"];

/// What the rules and the dashboard need beyond DESIGN.md, as deploy/alerts.yml's
/// header and deploy/README.md list it (`up` is Prometheus' own).
const EXTRA_METRICS: &[&str] = &[
    "up",
    "nevil_ready",
    "nevil_battery_volts",
    "nevil_host_cpu_ratio",
    "nevil_host_memory_used_ratio",
    "nevil_audit_enabled",
];

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).unwrap_or_else(|e| panic!("deploy/{file}: {e}"))
}

/// Runs `promtool args`, failing the test with instructions when it is not installed.
fn promtool(args: &[&str]) -> Output {
    match Command::new("promtool").args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "promtool is not installed, so deploy/ cannot be checked: run `bash .ci/run` \
             (it installs Debian's prometheus package, which provides promtool) or \
             `apt-get install prometheus`"
        ),
        Err(e) => panic!("promtool: {e}"),
    }
}

fn assert_success(what: &str, out: &Output) {
    let (stdout, stderr) = util::text(out);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
fn prometheus_config_is_valid() {
    let config = deploy("prometheus.yml");
    let out = promtool(&["check", "config", config.to_str().unwrap()]);
    assert_success("promtool check config", &out);
    // The rule file is found relative to the config, and checked with it.
    assert!(
        util::text(&out).0.contains("1 rule files found"),
        "{}",
        util::text(&out).0
    );
    assert!(read("prometheus.yml").contains("127.0.0.1:9464"));
}

#[test]
fn alert_rules_are_valid() {
    let out = promtool(&["check", "rules", deploy("alerts.yml").to_str().unwrap()]);
    assert_success("promtool check rules", &out);
}

/// Every alert fires in deploy/alerts_test.yml for a series that should trip it (and
/// the file's neighbouring series check that others stay silent).
#[test]
fn alert_rules_fire_in_promtool_tests() {
    let tests = deploy("alerts_test.yml");
    let out = promtool(&["test", "rules", tests.to_str().unwrap()]);
    assert_success("promtool test rules", &out);
    assert!(util::text(&out).0.contains("SUCCESS"));
    let rules = read("alerts.yml");
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert:"))
        .map(str::trim)
        .collect();
    for name in [
        "NevilDown",
        "NevilActorRestartStorm",
        "NevilQuotaEnforcementBurst",
        "NevilNotReady",
        "NevilControlLoopJitter",
        "NevilBatteryLow",
    ] {
        assert!(alerts.contains(&name), "no alert {name} in {alerts:?}");
    }
    let text = read("alerts_test.yml");
    for name in &alerts {
        // Each alert is expected to fire somewhere (a test whose exp_alerts is not empty).
        let fires = text
            .split("alertname: ")
            .skip(1)
            .any(|t| t.starts_with(&format!("{name}\n")) && !t.contains("exp_alerts: []"));
        assert!(fires, "deploy/alerts_test.yml never expects {name} to fire");
    }
}

/// The metric names a PromQL expression reads: identifiers that are neither functions,
/// keywords, label names (in `{…}` or `by (…)`), nor Grafana variables.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_group = |mut i: usize, open: char, close: char| {
        let mut depth = 0;
        while i < chars.len() {
            if chars[i] == open {
                depth += 1;
            } else if chars[i] == close {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            i += 1;
        }
        i
    };
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' => i = skip_group(i, '{', '}'),
            '[' => i = skip_group(i, '[', ']'),
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '$' | '0'..='9' | '.' => {
                // A Grafana variable or a number (with exponent, or a duration).
                i += 1;
                while i < chars.len() && (ident(chars[i]) || chars[i] == '.') {
                    i += 1;
                }
            }
            c if ident(c) => {
                let start = i;
                while i < chars.len() && ident(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let called = chars.get(next) == Some(&'(');
                match word.as_str() {
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                        if called =>
                    {
                        i = skip_group(next, '(', ')');
                    }
                    "and" | "or" | "unless" | "bool" | "offset" | "group_left" | "group_right" => {}
                    // Aggregations may put their `by (…)` before the parenthesis.
                    "sum" | "min" | "max" | "avg" | "group" | "stddev" | "stdvar" | "count"
                    | "count_values" | "bottomk" | "topk" | "quantile" => {}
                    _ if called => {}
                    _ => {
                        names.insert(word);
                    }
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn metric_names_of_promql() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le) (rate(a_bucket{job="x",le!="1e-3"}[$__rate_interval]))) > 1e-3"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        names("sum(rate(b_total[5m] offset 1h)) by (path) / on(instance) group_left(version) c"),
        ["b_total", "c"]
    );
    assert_eq!(
        names("up == 0 and nevil_ready unless bool x"),
        ["nevil_ready", "up", "x"]
    );
    assert_eq!(
        names("max by (path) (d) - min without (le) (e)"),
        ["d", "e"]
    );
}

/// The `expr:` values of a rules file (single-line or `|`/`>` block scalars).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let indent = line.len() - line.trim_start().len();
            let block: Vec<&str> = lines[n + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .copied()
                .collect();
            exprs.push(block.join("\n"));
        } else {
            exprs.push(value.to_string());
        }
    }
    exprs
}

/// Every query of the dashboard and the rules.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        // label_values(<series selector>, <label>): the label is not a metric.
        if let Some(q) = var["query"]["query"].as_str() {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(sel, _)| sel)
                .unwrap_or(q);
            exprs.push(inner.to_string());
        }
    }
    exprs
}

fn known(name: &str, allowed: &BTreeSet<String>) -> bool {
    allowed.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|base| HISTOGRAMS.contains(&base))
        })
}

/// The dashboard queries only metrics of DESIGN.md or deploy/alerts.yml, and the two
/// together need exactly the documented extras beyond DESIGN.md (a typo in either file
/// would show up as an unknown name here).
#[test]
fn dashboard_queries_known_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana-dashboard.json")).expect("dashboard is JSON");
    let rule_names: BTreeSet<String> = rule_exprs(&read("alerts.yml"))
        .iter()
        .flat_map(|e| metric_names(e))
        .collect();
    assert!(rule_names.len() >= 5, "{rule_names:?}");
    let allowed: BTreeSet<String> = DESIGN_METRICS
        .iter()
        .map(|s| s.to_string())
        .chain(rule_names.iter().cloned())
        .collect();
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 15, "{exprs:?}");
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr:?}");
        for name in names {
            assert!(
                known(&name, &allowed),
                "dashboard queries {name} (in {expr:?}), which neither DESIGN.md nor deploy/alerts.yml names"
            );
            used.insert(name);
        }
    }
    let beyond: BTreeSet<&str> = used
        .iter()
        .chain(&rule_names)
        .map(String::as_str)
        .filter(|n| !known(n, &DESIGN_METRICS.iter().map(|s| s.to_string()).collect()))
        .collect();
    assert_eq!(
        beyond,
        EXTRA_METRICS.iter().copied().collect(),
        "metrics needed beyond DESIGN.md"
    );
    let readme = read("README.md");
    let header = read("alerts.yml");
    for name in EXTRA_METRICS.iter().filter(|n| **n != "up") {
        assert!(
            readme.contains(name),
            "deploy/README.md does not list {name}"
        );
        assert!(
            header.contains(&format!("#   {name}")),
            "alerts.yml header lacks {name}"
        );
    }
    // The panels the operations guide promises.
    for metric in DESIGN_METRICS
        .iter()
        .filter(|m| **m != "nevil_control_loop_jitter_seconds")
    {
        assert!(used.contains(*metric), "no panel shows {metric}");
    }
    assert!(used.contains("nevil_control_loop_jitter_seconds_bucket"));
}

/// Grafana would load it: unique panel ids, panels inside the 24-column grid, every
/// query on the dashboard's own Prometheus data source variable.
#[test]
fn dashboard_is_well_formed() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana-dashboard.json")).expect("dashboard is JSON");
    assert_eq!(dashboard["uid"], "nevil-robot");
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let vars: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["datasource", "instance"]);
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        let (x, w, h) = (g["x"].as_u64(), g["w"].as_u64(), g["h"].as_u64());
        let (Some(x), Some(w), Some(h)) = (x, w, h) else {
            panic!("{title}: bad gridPos {g}");
        };
        assert!(
            x + w <= 24 && w > 0 && h > 0 && g["y"].is_u64(),
            "{title}: {g}"
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let expr = t["expr"].as_str().unwrap();
            assert!(
                expr.contains(r#"instance=~"$instance""#),
                "{title}: {expr} ignores the robot selector"
            );
        }
    }
}

/// `key=value` settings of a unit file, in order, comments dropped.
fn unit_settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn setting<'a>(settings: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The unit's contract with the runtime: notify + watchdog, restarts, the nevil user
/// with only gpio/i2c, and a sandbox in which the real config can write what it writes.
#[test]
fn unit_matches_the_runtime() {
    let unit = read("nevil.service");
    let s = unit_settings(&unit);
    assert_eq!(setting(&s, "Type"), ["notify"]);
    assert_eq!(setting(&s, "NotifyAccess"), ["main"]);
    assert_eq!(setting(&s, "Restart"), ["on-failure"]);
    assert_eq!(setting(&s, "User"), ["nevil"]);
    assert_eq!(setting(&s, "SupplementaryGroups"), ["gpio i2c"]);
    assert_eq!(setting(&s, "CapabilityBoundingSet"), [""]);
    assert_eq!(setting(&s, "NoNewPrivileges"), ["yes"]);
    assert_eq!(setting(&s, "ProtectSystem"), ["strict"]);
    let watchdog = setting(&s, "WatchdogSec");
    assert!(watchdog == ["2s"], "WatchdogSec {watchdog:?}");
    let exec = setting(&s, "ExecStart");
    let args: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(
        &args[..4],
        [
            "/usr/local/bin/nevil",
            "run",
            "--config",
            "/etc/nevil/picarx.toml"
        ]
    );
    // ProtectSystem=strict leaves only the state directory writable: the recorder of
    // the real robot's config and the tree dumps must be in it.
    let state = setting(&s, "StateDirectory");
    assert_eq!(state, ["nevil"]);
    let writable = Path::new("/var/lib").join(state[0]);
    let picarx = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/picarx.toml");
    let config = nevil::config::Config::load(Some(&picarx)).expect("config/picarx.toml loads");
    let recorder = config.recorder.path.expect("picarx.toml records");
    assert!(
        recorder.starts_with(&writable),
        "recorder {} is outside the unit's writable {}",
        recorder.display(),
        writable.display()
    );
    let dump = args
        .windows(2)
        .find(|w| w[0] == "--tree-dump")
        .map(|w| Path::new(w[1]))
        .expect("ExecStart sets --tree-dump");
    assert!(dump.starts_with(&writable), "{}", dump.display());
    // Process placement makes sub-cgroups: the unit delegates its subtree and leaves
    // the cgroup file system writable (nevil-actors' process::Jail).
    assert_eq!(setting(&s, "Delegate"), ["yes"]);
    assert_eq!(setting(&s, "ProtectControlGroups"), ["no"]);
    // SIGTERM to nevil alone: it stops its groups' processes in the tree's order.
    assert_eq!(setting(&s, "KillMode"), ["mixed"]);
    // The devices rppal opens on the HAT.
    let devices = setting(&s, "DeviceAllow");
    for dev in ["/dev/i2c-1 rw", "char-gpiochip rw", "/dev/gpiomem rw"] {
        assert!(
            devices.contains(&dev),
            "DeviceAllow lacks {dev}: {devices:?}"
        );
    }
}

/// The unit's last line of defence for the motors: once the main process is gone (any
/// exit, SIGKILL included), `nevil hw-stop` runs with the very config `run` used, so it
/// stops the HAT `run` drove.
#[test]
fn unit_runs_hw_stop_after_the_main_process() {
    let unit = read("nevil.service");
    let s = unit_settings(&unit);
    let config_of = |line: &str| {
        let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        let config = args
            .windows(2)
            .find(|w| w[0] == "--config")
            .map(|w| w[1].clone());
        (args, config)
    };
    let start = setting(&s, "ExecStart");
    let (_, run_config) = config_of(start[0]);
    let run_config = run_config.expect("ExecStart passes --config");
    let post = setting(&s, "ExecStopPost");
    assert_eq!(post.len(), 1, "one ExecStopPost: {post:?}");
    let (args, stop_config) = config_of(post[0]);
    assert_eq!(
        args,
        [
            "/usr/local/bin/nevil",
            "hw-stop",
            "--config",
            run_config.as_str()
        ],
        "ExecStopPost={}",
        post[0]
    );
    assert_eq!(stop_config.as_deref(), Some("/etc/nevil/picarx.toml"));
    // Not ExecStop: that one is skipped when the main process died on its own.
    assert!(setting(&s, "ExecStop").is_empty());
    // hw-stop itself knows the command line the unit gives it.
    let out = util::output(&["hw-stop", "--help"]);
    assert!(out.status.success());
    assert!(util::text(&out).0.contains("--config"));
}

/// `systemd-analyze verify` on a copy of the unit whose ExecStart is the binary under
/// test (the installed path does not exist here). Skipped, saying why, only where
/// systemd-analyze is missing or cannot verify even a trivial unit.
#[test]
fn unit_passes_systemd_analyze_verify() {
    let dir = util::scratch("deploy-verify");
    let verify = |unit: &Path| {
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(unit)
            .output()
    };
    let probe = dir.join("nevil-probe.service");
    std::fs::write(&probe, "[Service]\nType=oneshot\nExecStart=/bin/true\n").unwrap();
    match verify(&probe) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: systemd-analyze is not installed");
            return;
        }
        Err(e) => panic!("systemd-analyze: {e}"),
        Ok(out) if !out.status.success() => {
            let (o, e) = util::text(&out);
            eprintln!("SKIPPED: systemd-analyze cannot verify even a trivial unit here:\n{o}{e}");
            return;
        }
        Ok(_) => {}
    }
    let unit = read("nevil.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/nevil "));
    let copy = dir.join("nevil.service");
    let binary = env!("CARGO_BIN_EXE_nevil");
    std::fs::write(
        &copy,
        unit.replace(
            "ExecStart=/usr/local/bin/nevil ",
            &format!("ExecStart={binary} "),
        )
        .replace(
            "ExecStopPost=/usr/local/bin/nevil ",
            &format!("ExecStopPost={binary} "),
        ),
    )
    .unwrap();
    let out = verify(&copy).unwrap();
    let (stdout, stderr) = util::text(&out);
    assert!(
        out.status.success(),
        "systemd-analyze verify deploy/nevil.service:\n{stdout}{stderr}"
    );
    // Warnings about the unit are prefixed with its name; there must be none.
    assert!(
        !stderr.contains("nevil.service:"),
        "systemd-analyze warns:\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
