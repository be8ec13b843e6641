//! A [`Jail`] governing real child processes through the kernel: the cgroup it finds here
//! (v1 on the development machines and in CI, as root), and the signals fallback.
//!
//! The cgroup tests need root and a writable cgroupfs; elsewhere they print why they are
//! skipped. Waiting is a bounded retry loop on what the kernel reports (CPU seconds, the
//! process state), never a sleep-and-hope; the one time-based check is a generous ratio.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nevil_actors::process::{exit_reason, Isolation, Jail, JailLimits};
use nevil_actors::ExitReason;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const STEP: Duration = Duration::from_millis(10);
/// Bounded waits: at most this many steps (5 s), for a kernel that is slow under load.
const TRIES: u32 = 500;

fn name(test: &str) -> String {
    format!("nevil-test-{}-{test}", std::process::id())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        .unwrap_or(false)
}

/// A cgroup jail, or `None` (printing why) where this machine gives none: not root, or
/// a cgroupfs we may not write. As root, any other fallback is a failure.
fn cgroup_jail(test: &str, limits: &JailLimits) -> Option<Jail> {
    let jail = Jail::new(&name(test), limits);
    if jail.isolation() != Isolation::Signals {
        return Some(jail);
    }
    let why = jail.fallback_reason().unwrap().to_string();
    let unwritable = ["Permission denied", "Read-only file system"];
    if !is_root() || unwritable.iter().any(|w| why.contains(w)) {
        eprintln!(
            "SKIPPED {test}: no writable cgroup here (root: {}): {why}",
            is_root()
        );
        return None;
    }
    panic!("{test}: running as root, yet the jail fell back to signals: {why}");
}

fn spinner() -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "while :; do :; done"]).kill_on_drop(true);
    cmd
}

/// Field `n` (1-based, as in proc(5)) of `/proc/<pid>/stat`; `None` once it is gone.
fn stat_field(pid: u32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(n - 3).map(String::from)
}

/// Polls `cond` every [`STEP`] until it holds; false after [`TRIES`].
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..TRIES {
        if cond() {
            return true;
        }
        tokio::time::sleep(STEP).await;
    }
    false
}

fn cpu(jail: &Jail) -> f64 {
    jail.cpu_seconds().expect("the jail's CPU seconds")
}

/// Whether the jail's CPU demand grows by 50 ms from now (bounded wait).
async fn grows(jail: &Jail) -> bool {
    let start = cpu(jail);
    eventually(|| cpu(jail) > start + 0.05).await
}

/// Whether the jail's CPU time stops moving: two readings 50 ms apart are equal.
async fn settles(jail: &Jail) -> bool {
    for _ in 0..TRIES / 5 {
        let before = cpu(jail);
        tokio::time::sleep(5 * STEP).await;
        if cpu(jail) == before {
            return true;
        }
    }
    false
}

/// `key value` from a flat-keyed cgroup file.
fn keyed(path: &Path, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in {}", path.display()))
}

#[tokio::test]
async fn a_spinner_is_counted_suspended_throttled_and_killed() {
    let Some(jail) = cgroup_jail("spin", &JailLimits::default()) else {
        return;
    };
    let dirs = jail.cgroup_dirs();
    assert!(
        !dirs.is_empty() && dirs.iter().all(|d| d.is_dir()),
        "{dirs:?}"
    );
    let mut child = jail.spawn(spinner()).unwrap();
    let pid = child.id().unwrap();
    assert_eq!(jail.pid(), Some(pid));
    assert_eq!(
        stat_field(pid, 5).unwrap(),
        pid.to_string(),
        "its own process group"
    );
    let err = jail.spawn(spinner()).unwrap_err();
    assert_eq!(
        err.kind(),
        std::io::ErrorKind::AlreadyExists,
        "one child per jail"
    );

    assert!(grows(&jail).await, "a spinner's CPU time grows");
    jail.suspend().unwrap();
    assert!(settles(&jail).await, "frozen, it stops");
    let frozen = cpu(&jail);
    tokio::time::sleep(10 * STEP).await;
    assert_eq!(cpu(&jail), frozen, "still frozen");
    jail.resume().unwrap();
    assert!(grows(&jail).await, "thawed, it runs again");

    // Throttled to a tenth of a core it uses about that, but its demand (use plus the
    // time the quota held it back) still reads as a whole core.
    jail.throttle(Some(0.1)).unwrap();
    let cpu_dir = dirs
        .iter()
        .find(|d| d.join("cpu.stat").exists())
        .expect("a cpu.stat");
    let throttled = |d: &Path| {
        let stat = d.join("cpu.stat");
        let text = std::fs::read_to_string(&stat).unwrap();
        if text.contains("throttled_usec") {
            keyed(&stat, "throttled_usec") * 1000
        } else {
            keyed(&stat, "throttled_time")
        }
    };
    let t0 = throttled(cpu_dir);
    assert!(
        eventually(|| throttled(cpu_dir) > t0).await,
        "the quota throttles it"
    );
    let (wall, demand0, throttled0) = (Instant::now(), cpu(&jail), throttled(cpu_dir));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let secs = wall.elapsed().as_secs_f64();
    let demand = (cpu(&jail) - demand0) / secs;
    let held = (throttled(cpu_dir) - throttled0) as f64 / 1e9 / secs;
    let used = demand - held;
    eprintln!("throttled to 0.1 core: demand {demand:.2} cores, used {used:.2}");
    assert!(
        demand > 0.5,
        "demand {demand:.2} cores while throttled to 0.1"
    );
    assert!(used < 0.4, "used {used:.2} cores while throttled to 0.1");

    jail.kill();
    jail.kill(); // idempotent
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(!jail.oom_killed());
    assert_eq!(exit_reason(status, jail.oom_killed()), ExitReason::Killed);
    drop(jail);
    for d in &dirs {
        assert!(!d.exists(), "{} is removed with the jail", d.display());
    }
}

#[tokio::test]
async fn a_leak_is_oom_killed_at_the_memory_limit() {
    let limits = JailLimits {
        memory_max: Some(32 << 20),
    };
    let Some(jail) = cgroup_jail("leak", &limits) else {
        return;
    };
    // `tail` keeps the line it reads: /dev/zero has no newline, so it grows unbounded.
    let mut cmd = Command::new("tail");
    cmd.arg("/dev/zero").kill_on_drop(true);
    let mut child = jail.spawn(cmd).unwrap();
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(jail.oom_killed(), "the kernel's OOM killer ended it");
    assert_eq!(exit_reason(status, jail.oom_killed()), ExitReason::Oom);
}

/// A frozen task does not die of SIGKILL until thawed (v1): kill thaws after signalling.
#[tokio::test]
async fn a_frozen_jail_is_killed() {
    let Some(jail) = cgroup_jail("frozen", &JailLimits::default()) else {
        return;
    };
    let mut child = jail.spawn(spinner()).unwrap();
    assert!(grows(&jail).await, "it spins");
    jail.suspend().unwrap();
    assert!(settles(&jail).await, "frozen");
    jail.kill();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("a frozen child dies of kill")
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
}

#[tokio::test]
async fn kill_takes_the_whole_process_group() {
    let Some(jail) = cgroup_jail("group", &JailLimits::default()) else {
        return;
    };
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 1000 & wait"]).kill_on_drop(true);
    let mut child = jail.spawn(cmd).unwrap();
    let pid = child.id().unwrap();
    // The jail's cgroup holds the shell and, once forked, its `sleep`.
    let procs = jail.cgroup_dirs()[0].join("cgroup.procs");
    let others = || -> Vec<u32> {
        std::fs::read_to_string(&procs)
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .filter(|&p| p != pid)
            .collect()
    };
    assert!(eventually(|| !others().is_empty()).await, "sleep started");
    let sleep = others()[0];
    assert_eq!(
        stat_field(sleep, 5).unwrap(),
        pid.to_string(),
        "in the child's group"
    );
    jail.kill();
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    let dead = |p: u32| stat_field(p, 3).is_none_or(|s| s == "Z");
    assert!(eventually(|| dead(sleep)).await, "the grandchild died too");
}

/// The parent-death signal follows the thread that forks; a jail's children are forked
/// by a thread of their own, so one asked for by a thread that then ends lives on.
#[tokio::test]
async fn the_child_outlives_the_thread_that_asked_for_it() {
    let jail = std::sync::Arc::new(Jail::with_root(
        &std::env::temp_dir(),
        &name("thread"),
        &JailLimits::default(),
    ));
    let (asker, runtime) = (jail.clone(), tokio::runtime::Handle::current());
    let (mut child, tid) = std::thread::spawn(move || {
        let _entered = runtime.enter();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "read x; echo $x; exec sleep 1000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let tid = std::fs::read_link("/proc/thread-self").unwrap();
        (asker.spawn(cmd).unwrap(), tid)
    })
    .join()
    .unwrap();
    // Gone from /proc: the thread has exited, its parent-death signals are sent.
    let task = Path::new("/proc").join(tid);
    assert!(
        eventually(|| !task.exists()).await,
        "{} stays",
        task.display()
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"ping\n").await.unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .await
        .unwrap();
    assert_eq!(line, "ping\n", "the child answers after its asker ended");
    jail.kill();
    assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGKILL));
}

/// Set in the environment of the helper process of [`the_child_dies_with_its_parent`].
const HELPER: &str = "NEVIL_JAIL_TEST_PARENT";

/// Not a test of its own: the parent process of [`the_child_dies_with_its_parent`],
/// which runs it with `--ignored`. Spawns a child in a jail, prints its pid, waits.
#[tokio::test]
#[ignore = "a helper process of the_child_dies_with_its_parent"]
async fn parent_helper() {
    assert!(
        std::env::var_os(HELPER).is_some(),
        "run by the_child_dies_with_its_parent"
    );
    let jail = Jail::with_root(
        &std::env::temp_dir(),
        &name("parent"),
        &JailLimits::default(),
    );
    let mut cmd = Command::new("sleep");
    cmd.arg("1000");
    let child = jail.spawn(cmd).unwrap();
    println!("child-pid {}", child.id().unwrap());
    std::future::pending::<()>().await;
}

/// No orphans: SIGKILL the parent, and its jailed child dies too (`PR_SET_PDEATHSIG`).
#[tokio::test]
async fn the_child_dies_with_its_parent() {
    let mut parent = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "parent_helper",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER, "1")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // libtest writes "test parent_helper ... " before it on the same line.
    let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
    let read_pid = async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the helper prints its child's pid");
            if let Some((_, pid)) = line.split_once("child-pid ") {
                break pid.trim().parse::<u32>().unwrap();
            }
        }
    };
    let pid = tokio::time::timeout(Duration::from_secs(30), read_pid)
        .await
        .expect("the helper's child-pid line within 30 s");
    assert!(
        stat_field(pid, 3).is_some_and(|s| s != "Z"),
        "the child runs"
    );
    parent.kill().await.unwrap();
    let dead = || stat_field(pid, 3).is_none_or(|s| s == "Z");
    assert!(eventually(dead).await, "pid {pid} outlived its parent");
}

#[tokio::test]
async fn without_cgroups_signals_govern_the_child() {
    let dir = std::env::temp_dir().join(name("no-cgroupfs"));
    std::fs::create_dir_all(&dir).unwrap();
    let limits = JailLimits {
        memory_max: Some(256 << 20),
    };
    let jail = Jail::with_root(&dir, &name("signals"), &limits);
    assert_eq!(jail.isolation(), Isolation::Signals);
    let why = jail.fallback_reason().unwrap();
    assert!(
        why.contains("cgroup v2: no cgroup2 file system mounted under"),
        "{why}"
    );
    assert!(
        why.contains("cgroup v1: no cpu hierarchy mounted under"),
        "{why}"
    );
    assert!(jail.cgroup_dirs().is_empty());
    assert_eq!(
        jail.suspend().unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );

    let mut child = jail.spawn(spinner()).unwrap();
    let pid = child.id().unwrap();
    assert_eq!(
        stat_field(pid, 5).unwrap(),
        pid.to_string(),
        "its own process group"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let address = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))
        .unwrap();
    assert!(address.contains("268435456"), "RLIMIT_AS: {address}");
    assert!(
        eventually(|| jail.cpu_seconds().unwrap_or(0.0) > 0.05).await,
        "it spins"
    );
    assert!(jail.memory_bytes().unwrap() > 0);

    let state = || stat_field(pid, 3).unwrap();
    jail.suspend().unwrap();
    assert!(
        eventually(|| state() == "T").await,
        "SIGSTOP stops it: {}",
        state()
    );
    jail.resume().unwrap();
    assert!(eventually(|| state() != "T").await, "SIGCONT continues it");
    let err = jail.throttle(Some(0.5)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");

    jail.kill();
    let status = child.wait().await.unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(!jail.oom_killed());
    assert_eq!(exit_reason(status, jail.oom_killed()), ExitReason::Killed);
    std::fs::remove_dir_all(&dir).unwrap();
}
