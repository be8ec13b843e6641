//! The observer page (`GET /`) in a real browser against the real binary: Debian's
//! `/usr/bin/chromium`, headless, driven by `tests/browser/observer.mjs` (playwright-core).
//!
//! Needs node, `npm ci --prefix tests/browser` and Debian's chromium; `.ci/run` installs
//! them. Without them these tests fail and say what to install, rather than pass unchecked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use util::fleet::{listening_at, robot_config};
use util::{config_with, nevil, scratch, Running};

/// The control token of the `controls` scenario's robot.
const TOKEN: &str = "observer-test-token-0123456789";

/// One browser test at a time: a robot and a Chromium each already load two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory (the binary is `target/<profile>/nevil`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_nevil"))
        .ancestors()
        .nth(2)
        .expect("target dir")
        .to_path_buf()
}

/// Fails with instructions when node, the test's npm packages or chromium are missing.
fn require_browser_tools() {
    let install = "run `bash .ci/run` (it installs them) or: apt-get install nodejs npm chromium \
                   && npm ci --prefix tests/browser";
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("`node --version` failed ({}): {install}", out.status),
        Err(e) => {
            panic!("node is not installed ({e}), so the observer page cannot be tested: {install}")
        }
    }
    let playwright = repo().join("tests/browser/node_modules/playwright-core/package.json");
    assert!(
        playwright.exists(),
        "{} is missing: the browser test's packages are not installed: {install}",
        playwright.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing, so the observer page cannot be tested: {install}"
    );
}

/// `node tests/browser/observer.mjs`, with its browser started and waiting for a URL on stdin.
struct Browser {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Browser {
    fn launch(scenario: &str, screenshot: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new("node")
            .arg(repo().join("tests/browser/observer.mjs"))
            .args(["--url", "-", "--scenario", scenario, "--screenshot"])
            .arg(screenshot)
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node");
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut browser = Self {
            child,
            lines,
            seen: Vec::new(),
        };
        browser.wait_for("browser ready");
        browser
    }

    fn wait_for(&mut self, needle: &str) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return;
                    }
                }
                Err(_) => panic!(
                    "the browser test never said {needle:?}:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Opens `url` and waits for the scenario's verdict: its exit code and its output.
    fn open(mut self, url: &str) -> (bool, String) {
        let mut stdin = self.child.stdin.take().expect("stdin");
        writeln!(stdin, "{url}").expect("write the URL");
        drop(stdin);
        let status = self.child.wait().expect("wait for node");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        (status.success(), self.seen.join("\n"))
    }
}

/// Runs `scenario` against a robot started with `args` (after the browser is up, so the
/// page is open before the robot's drills fire); the browser test's output.
fn scenario(scenario: &str, args: &[&str], extra: &[&str]) -> (String, PathBuf) {
    require_browser_tools();
    let _turn = one_at_a_time();
    let screenshot = target_dir().join(match scenario {
        "faults" => "observer.png".to_string(),
        other => format!("observer-{other}.png"),
    });
    let _ = std::fs::remove_file(&screenshot);
    let browser = Browser::launch(scenario, &screenshot, extra);
    let mut robot = Running::spawn(nevil(args));
    let base = robot.http_base();
    let (ok, output) = browser.open(&base);
    robot.signal("TERM");
    let (code, lines) = robot.finish();
    let drills: Vec<&String> = lines.iter().filter(|l| l.contains("drill")).collect();
    assert!(
        ok,
        "the browser test failed:\n{output}\nthe robot's drill lines:\n{drills:#?}"
    );
    assert_eq!(code, Some(0), "the robot did not stop cleanly");
    eprintln!("{output}");
    (output, screenshot)
}

/// Asserts `path` is a PNG of a whole page (a full-page screenshot is at least the viewport).
fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    // IHDR: width and height, big-endian, at bytes 16..24.
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(
        width >= 1000 && height >= 800,
        "the screenshot is {width}x{height}"
    );
    assert!(
        bytes.len() > 30_000,
        "the screenshot has {} bytes: an empty page?",
        bytes.len()
    );
}

/// The simulated robot with a motion panic and a behaviour spinning: the page shows the
/// tree, motion's restart (row and timeline, within 2 s of it on the robot's clock), the
/// throttled behaviour, the world, the jitter histogram; no controls without a token.
/// The spin fires at 6 s: motion's restart restarts the behaviours (rest_for_one), and a
/// drill aimed at an actor that is restarting is skipped (the robot logs "drill skipped").
#[test]
fn page_shows_tree_faults_and_world_without_controls() {
    let (output, screenshot) = scenario(
        "faults",
        &[
            "run",
            "--inject",
            "motion:panic@2",
            "--inject",
            "obstacle_avoidance:spin@6",
        ],
        &[],
    );
    for step in [
        "the tree shows the robot's actors",
        "the spin drill shows the throttled state",
        "no control buttons and no token field",
        "alone, with no robot selector",
        "scenario faults: passed",
    ] {
        assert!(output.contains(step), "missing {step:?} in:\n{output}");
    }
    assert_png(&screenshot);
}

/// With `[http] control_token`: a restart from the page restarts the actor (page and
/// /tree), a wrong token shows the 403, and a POST without the header gets 403.
#[test]
fn page_controls_restart_an_actor_with_the_token() {
    let dir = scratch("observer-controls");
    let config = config_with(
        &dir,
        &[(
            "timeout_s = 5\n",
            &format!("timeout_s = 5\ncontrol_token = \"{TOKEN}\"\n"),
        )],
    );
    let (output, _) = scenario(
        "controls",
        &["run", "--config", config.to_str().unwrap()],
        &["--token", TOKEN],
    );
    for step in [
        "a POST without the token, or with a wrong one, gets 403",
        "a wrong token shows: 403",
        "the page restarted root/control/behaviours/obstacle_avoidance (0 -> 1)",
        "scenario controls: passed",
    ] {
        assert!(output.contains(step), "missing {step:?} in:\n{output}");
    }
}

/// Two robots: A (with a control token) serves the page, B connects to A and restarts
/// its motion (a drill). The page lists both; switched to B it shows B's id, pid, tree
/// and events and no control; switched back, A live with its controls and the token.
#[test]
fn page_switches_to_another_robot_read_only_and_back() {
    require_browser_tools();
    let _turn = one_at_a_time();
    let screenshot = target_dir().join("observer-fleet.png");
    let _ = std::fs::remove_file(&screenshot);
    let both_tokens = format!("control_token = \"{TOKEN}\"");
    let a_config = robot_config("robot-a", "listen = [\"tcp/127.0.0.1:0\"]", &both_tokens);
    let mut a = Running::start(&["run", "--config", a_config.to_str().unwrap()]);
    let base = a.http_base();
    let at_a = listening_at(&a.wait_for("zenoh listening"));
    // B has controls too: the page must not offer them, B's own token or not.
    let b_config = robot_config("robot-b", &format!("connect = [\"{at_a}\"]"), &both_tokens);
    let mut b = Running::start(&[
        "run",
        "--config",
        b_config.to_str().unwrap(),
        "--inject",
        "motion:panic@1",
    ]);
    b.wait_for("zenoh listening");
    let b_pid = b.pid().to_string();
    let browser = Browser::launch(
        "fleet",
        &screenshot,
        &[
            "--token",
            TOKEN,
            "--self",
            "robot-a",
            "--peer",
            "robot-b",
            "--peer-pid",
            &b_pid,
        ],
    );
    let (ok, output) = browser.open(&base);
    for robot in [b, a] {
        robot.signal("TERM");
        let (code, lines) = robot.finish();
        assert_eq!(
            code,
            Some(0),
            "a robot did not stop cleanly:\n{}",
            lines.join("\n")
        );
    }
    assert!(ok, "the browser test failed:\n{output}");
    for step in [
        "the selector lists robot-a and robot-b",
        "the page shows robot-b's tree (pid",
        "and events, and no controls",
        "switching back shows robot-a live, with its controls and the token",
        "scenario fleet: passed",
    ] {
        assert!(output.contains(step), "missing {step:?} in:\n{output}");
    }
    eprintln!("{output}");
    assert_png(&screenshot);
}

/// 1,021 actors (the browser test serves the page's files and a synthetic stream itself):
/// large supervisors start folded (their children not in the page), an update changes only
/// the row whose actor changed and keeps unfolded subtrees and the scroll position, the
/// filter keeps matches and their ancestors, and the search opens, counts and selects.
#[test]
fn page_stays_usable_with_a_thousand_actors() {
    require_browser_tools();
    let _turn = one_at_a_time();
    let out = Command::new("node")
        .arg(repo().join("tests/browser/observer.mjs"))
        .args(["--scenario", "scale"])
        .output()
        .expect("run node");
    let (stdout, stderr) = util::text(&out);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("scenario scale: passed"), "{stdout}");
    eprintln!("{stdout}");
}
