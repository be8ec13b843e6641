//! Unit tests of the file formats and of the v2 backend against a fake directory (this
//! development machine offers cgroup v2 without controllers; the v1 backend and the
//! signals fallback run for real in `tests/process_jail.rs`).

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use super::detect::{own_dir, parse_mountinfo, parse_self_cgroup, Mount};
use super::signals::{identify, parse_stat_ticks, start_time, Identity};
use super::{exit_reason, files, v2, Backend, Isolation, Jail, JailLimits};
use crate::ExitReason;

const PI_MOUNTINFO: &str = "\
22 27 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 22 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

const V1_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /outer /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/my\\040unified rw,relatime - cgroup2 cgroup2 rw
";

#[test]
fn mountinfo_lines_give_type_point_root_and_controllers() {
    let pi = parse_mountinfo(PI_MOUNTINFO);
    assert_eq!(pi.len(), 2);
    assert_eq!(pi[1].fstype, "cgroup2");
    assert_eq!(pi[1].point, Path::new("/sys/fs/cgroup"));
    let v1 = parse_mountinfo(V1_MOUNTINFO);
    assert_eq!(v1[1].options, ["rw", "cpu", "cpuacct"]);
    assert_eq!(v1[2].root, "/outer");
    assert_eq!(
        v1[3].point,
        Path::new("/sys/fs/cgroup/my unified"),
        "\\040 is a space"
    );
    assert!(parse_mountinfo("garbage\n\n").is_empty());
}

#[test]
fn own_cgroup_is_found_relative_to_the_mounted_root() {
    let cg = parse_self_cgroup(
        "4:memory:/outer/inner\n2:cpu,cpuacct:/\n0::/system.slice/nevil.service\n",
    );
    assert_eq!(
        cg[0],
        (vec!["memory".to_string()], "/outer/inner".to_string())
    );
    assert_eq!(cg[1].0, ["cpu", "cpuacct"]);
    assert_eq!(cg[2], (vec![], "/system.slice/nevil.service".to_string()));
    let v1 = parse_mountinfo(V1_MOUNTINFO);
    assert_eq!(
        own_dir(&v1[2], &cg[0].1),
        Some(PathBuf::from("/sys/fs/cgroup/memory/inner"))
    );
    assert_eq!(own_dir(&v1[2], "/elsewhere"), None);
    let pi = parse_mountinfo(PI_MOUNTINFO);
    let m: &Mount = &pi[1];
    assert_eq!(
        own_dir(m, &cg[2].1),
        Some(PathBuf::from("/sys/fs/cgroup/system.slice/nevil.service"))
    );
}

#[test]
fn flat_keyed_files_parse() {
    let cpu_stat = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n\
                    nr_periods 10\nnr_throttled 9\nthrottled_usec 1500000\n";
    assert_eq!(files::keyed(cpu_stat, "nr_throttled"), Some(9));
    assert_eq!(files::keyed(cpu_stat, "usage"), None, "whole keys only");
    assert_eq!(v2::demand_seconds(cpu_stat), Some(4.0));
    assert_eq!(
        v2::demand_seconds("usage_usec 1000000\n"),
        Some(1.0),
        "no CFS bandwidth"
    );
    assert_eq!(v2::demand_seconds("nr_periods 3\n"), None);
    let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
    assert_eq!(files::keyed(events, "oom_kill"), Some(1));
    assert_eq!(files::keyed(events, "oom"), Some(1));
}

#[test]
fn cpu_max_lines() {
    assert_eq!(v2::cpu_max(None), "max 100000");
    assert_eq!(v2::cpu_max(Some(0.5)), "50000 100000");
    assert_eq!(v2::cpu_max(Some(2.0)), "200000 100000");
    assert_eq!(
        v2::cpu_max(Some(0.001)),
        "1000 100000",
        "the kernel's minimum quota"
    );
}

#[test]
fn proc_stat_ticks_skip_a_command_with_spaces_and_parens() {
    let stat = "4242 (we ird) x) R 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 7 3 20 0 1 0 9 0 0";
    assert_eq!(parse_stat_ticks(stat), Some(250 + 50 + 7 + 3));
    assert_eq!(parse_stat_ticks("4242 (short) R 1"), None);
}

/// A fake v2 cgroup: the files a jail reads, as the kernel writes them.
fn fake_v2(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nevil-fake-v2-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in [
        ("cpu.stat", "usage_usec 300000\nuser_usec 200000\nsystem_usec 100000\nnr_periods 5\nnr_throttled 4\nthrottled_usec 700000\n"),
        ("memory.current", "52428800\n"),
        ("memory.stat", "anon 40000000\nfile 12428800\nactive_file 2428800\ninactive_file 10000000\n"),
        ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
        ("memory.max", "max\n"),
        ("memory.swap.max", "max\n"),
        ("cpu.max", "max 100000\n"),
        ("cgroup.freeze", "0\n"),
        ("cgroup.kill", ""),
        ("cgroup.procs", ""),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

fn fake_jail(dir: &Path) -> Jail {
    Jail {
        name: "fake".into(),
        backend: Backend::V2(v2::Group::at(dir.to_path_buf())),
        fallback: None,
        limits: JailLimits::default(),
        child: std::sync::Mutex::new(None),
    }
}

fn text(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

#[test]
fn v2_backend_reads_and_writes_its_files() {
    let dir = fake_v2("rw");
    let jail = fake_jail(&dir);
    assert_eq!(jail.isolation(), Isolation::CgroupV2);
    assert_eq!(
        jail.cpu_seconds(),
        Some(1.0),
        "usage 0.3 s + throttled 0.7 s"
    );
    assert_eq!(jail.memory_bytes(), Some(52_428_800 - 10_000_000));
    assert!(jail.oom_killed());
    jail.throttle(Some(0.25)).unwrap();
    assert_eq!(text(&dir, "cpu.max"), "25000 100000");
    jail.suspend().unwrap();
    assert_eq!(text(&dir, "cgroup.freeze"), "1");
    jail.resume().unwrap();
    assert_eq!(text(&dir, "cgroup.freeze"), "0");
    assert_eq!(
        text(&dir, "cpu.max"),
        "max 100000",
        "resume lifts the CPU limit"
    );
    let err = jail.throttle(Some(f64::NAN)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    jail.kill();
    assert_eq!(text(&dir, "cgroup.kill"), "1");
    v2::Group::at(dir.clone()).limit_memory(32 << 20).unwrap();
    assert_eq!(text(&dir, "memory.max"), "33554432");
    assert_eq!(text(&dir, "memory.swap.max"), "0");
    // Dropping removes the directory: a fake one is not empty, so it stays (logged).
    drop(jail);
    assert!(dir.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = fake_v2("missing");
    std::fs::remove_file(dir.join("cgroup.freeze")).unwrap();
    std::fs::remove_file(dir.join("cpu.stat")).unwrap();
    let jail = fake_jail(&dir);
    let err = jail.suspend().unwrap_err();
    assert!(err.to_string().contains("cgroup.freeze"), "{err}");
    assert_eq!(jail.cpu_seconds(), None);
    drop(jail);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn exit_statuses_map_onto_exit_reasons() {
    // A wait status: the exit code in bits 8..16, or the signal in bits 0..7.
    let code = |c: i32| ExitStatus::from_raw(c << 8);
    let signal = |s: i32| ExitStatus::from_raw(s);
    let table = [
        (code(0), false, ExitReason::Normal),
        (code(0), true, ExitReason::Normal),
        (
            code(3),
            false,
            ExitReason::Error("exited with status 3".into()),
        ),
        (signal(libc::SIGKILL), true, ExitReason::Oom),
        (signal(libc::SIGKILL), false, ExitReason::Killed),
        (
            signal(libc::SIGSEGV),
            false,
            ExitReason::Error("killed by signal 11 (SIGSEGV)".into()),
        ),
        (
            signal(libc::SIGTERM),
            true,
            ExitReason::Error("killed by signal 15 (SIGTERM)".into()),
        ),
    ];
    for (status, oom, expected) in table {
        assert_eq!(exit_reason(status, oom), expected, "{status:?} oom {oom}");
    }
}

#[test]
fn isolation_names() {
    assert_eq!(Isolation::CgroupV2.as_str(), "cgroup_v2");
    assert_eq!(Isolation::CgroupV1.to_string(), "cgroup_v1");
    assert_eq!(
        serde_json::to_string(&Isolation::Signals).unwrap(),
        "\"signals\""
    );
}

#[test]
fn a_bad_name_falls_back_with_the_reason() {
    for name in ["", "a/b", "..", "."] {
        let jail = Jail::new(name, &JailLimits::default());
        assert_eq!(jail.isolation(), Isolation::Signals);
        assert!(
            jail.fallback_reason()
                .unwrap()
                .contains("not a plain directory name"),
            "{name:?}"
        );
    }
}

#[test]
fn a_pid_is_told_from_a_later_process_with_the_same_pid() {
    let me = std::process::id();
    let start = start_time(me);
    assert!(start.is_some());
    assert_eq!(identify(me, start), Identity::Same);
    assert_eq!(identify(me, start.map(|s| s + 1)), Identity::Other);
    assert_eq!(
        identify(me, None),
        Identity::Same,
        "unknown start: trust the pid"
    );
    assert_eq!(
        identify(0x3fff_fff0, start),
        Identity::Gone,
        "above any pid_max"
    );
}

#[test]
fn a_jail_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Jail>();
    shared::<std::sync::Arc<Jail>>();
}
