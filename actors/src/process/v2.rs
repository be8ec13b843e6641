//! A jail's cgroup in the unified (v2) hierarchy: one directory with every controller.

use std::io;
use std::path::{Path, PathBuf};

use super::files;
use super::signals;

/// The CFS period used for every CPU limit, in microseconds (100 ms, the kernel's default).
pub(super) const PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts, in microseconds.
const MIN_QUOTA_US: u64 = 1_000;

/// One v2 cgroup directory.
#[derive(Debug)]
pub(super) struct Group {
    dir: PathBuf,
}

impl Group {
    /// The cgroup at `dir`, which exists (made by the caller).
    pub(super) fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Sets the hard memory limit: `memory.max`, and `memory.swap.max` 0 where the file
    /// exists (a leak is then OOM-killed at the limit instead of swapped out).
    pub(super) fn limit_memory(&self, bytes: u64) -> io::Result<()> {
        files::write(&self.dir.join("memory.max"), &bytes.to_string())?;
        let swap = self.dir.join("memory.swap.max");
        if swap.exists() {
            files::write(&swap, "0")?;
        }
        Ok(())
    }

    pub(super) fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// `usage_usec + throttled_usec` of `cpu.stat`, in seconds.
    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        demand_seconds(&files::read(&self.dir.join("cpu.stat"))?)
    }

    /// `memory.current` minus `inactive_file` of `memory.stat`.
    pub(super) fn memory_bytes(&self) -> Option<u64> {
        let current = files::read_u64(&self.dir.join("memory.current"))?;
        let stat = files::read(&self.dir.join("memory.stat")).unwrap_or_default();
        let inactive = files::keyed(&stat, "inactive_file").unwrap_or(0);
        Some(current.saturating_sub(inactive))
    }

    pub(super) fn freeze(&self, frozen: bool) -> io::Result<()> {
        files::write(
            &self.dir.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )
    }

    pub(super) fn throttle(&self, cores: Option<f64>) -> io::Result<()> {
        files::write(&self.dir.join("cpu.max"), &cpu_max(cores))
    }

    /// `cgroup.kill` (Linux 5.14+); without it, `SIGKILL` to every task in `cgroup.procs`
    /// (tasks forked meanwhile may escape that one; the frozen ones die all the same,
    /// the v2 freezer lets fatal signals through).
    pub(super) fn kill(&self) {
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() && files::write(&kill, "1").is_ok() {
            return;
        }
        for pid in files::pids(&self.procs_file()) {
            let _ = signals::signal_task(pid, libc::SIGKILL);
        }
    }

    /// `oom_kill` of `memory.events`.
    pub(super) fn oom_kills(&self) -> u64 {
        files::read(&self.dir.join("memory.events"))
            .and_then(|t| files::keyed(&t, "oom_kill"))
            .unwrap_or(0)
    }

    pub(super) fn remove(&self) {
        files::remove_dir(&self.dir);
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The demand in seconds from a v2 `cpu.stat`: `usage_usec + throttled_usec` (a kernel
/// without CFS bandwidth control has no `throttled_usec`: 0).
pub(super) fn demand_seconds(cpu_stat: &str) -> Option<f64> {
    let usage = files::keyed(cpu_stat, "usage_usec")?;
    let throttled = files::keyed(cpu_stat, "throttled_usec").unwrap_or(0);
    Some((usage + throttled) as f64 / 1e6)
}

/// The `cpu.max` line for a limit of `cores` CPUs: `"<quota> <period>"` in microseconds,
/// `"max <period>"` for none.
pub(super) fn cpu_max(cores: Option<f64>) -> String {
    match cores {
        Some(c) => format!("{} {PERIOD_US}", quota_us(c)),
        None => format!("max {PERIOD_US}"),
    }
}

/// The CFS quota for `cores` CPUs over [`PERIOD_US`], at least the kernel's minimum.
pub(super) fn quota_us(cores: f64) -> u64 {
    ((cores * PERIOD_US as f64).round() as u64).max(MIN_QUOTA_US)
}
