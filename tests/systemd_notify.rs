//! `nevil run` under a stand-in for systemd: the notifications a `Type=notify` unit with
//! a watchdog relies on arrive, in order (READY, watchdog pings, STOPPING).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod util;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Runs `nevil run --duration 2` with `NOTIFY_SOCKET` on a socket of the test's and
/// `env`; returns every notification line, checking it ends with STOPPING=1 and that
/// nothing follows it.
fn notifications(name: &str, env: &[(&str, &str)]) -> Vec<String> {
    let dir = util::scratch(name);
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut child = util::nevil(&["run", "--duration", "2"])
        .env("NOTIFY_SOCKET", &path)
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // A minute at most, as a failsafe.
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut lines = Vec::new();
    let mut buf = [0u8; 1024];
    while lines.last().is_none_or(|l| l != "STOPPING=1") {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no STOPPING=1 ({e}); got {lines:?}"));
        lines.extend(String::from_utf8_lossy(&buf[..n]).lines().map(String::from));
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    // The process has exited: whatever it sent after STOPPING=1 is in the queue.
    socket.set_nonblocking(true).unwrap();
    let after = socket.recv(&mut buf).map(|n| buf[..n].to_vec());
    assert!(after.is_err(), "datagram after STOPPING=1: {after:?}");
    let _ = std::fs::remove_dir_all(&dir);
    lines
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

#[test]
fn run_notifies_ready_watchdog_stopping() {
    let lines = notifications("systemd_notify", &[("WATCHDOG_USEC", "200000")]);
    assert_eq!(lines[0], "READY=1", "READY=1 comes first: {lines:?}");
    assert_eq!(count(&lines, "READY=1"), 1, "{lines:?}");
    assert_eq!(count(&lines, "STOPPING=1"), 1, "{lines:?}");
    assert!(
        count(&lines, "WATCHDOG=1") >= 1,
        "no watchdog ping between READY=1 and STOPPING=1: {lines:?}"
    );
    assert!(
        lines.iter().all(
            |l| ["READY=1", "WATCHDOG=1", "STOPPING=1"].contains(&l.as_str())
                || l.starts_with("STATUS=")
        ),
        "unexpected notification: {lines:?}"
    );
}

#[test]
fn run_without_watchdog_for_this_pid_sends_no_ping() {
    // systemd sets WATCHDOG_PID to the main process; a variable inherited by another
    // process (here: naming PID 1) is not ours to serve.
    let lines = notifications(
        "systemd_notify_pid",
        &[("WATCHDOG_USEC", "200000"), ("WATCHDOG_PID", "1")],
    );
    assert_eq!(lines[0], "READY=1", "{lines:?}");
    assert_eq!(count(&lines, "WATCHDOG=1"), 0, "{lines:?}");
}
