//! A jail's cgroups in the v1 hierarchies: one directory per mounted controller (cpu and
//! cpuacct may share one).

use std::io;
use std::path::PathBuf;

use super::files;
use super::signals;
use super::v2::{quota_us, PERIOD_US};

/// The jail's directory in each v1 hierarchy it uses.
#[derive(Debug)]
pub(super) struct Groups {
    pub(super) cpu: PathBuf,
    pub(super) cpuacct: PathBuf,
    pub(super) memory: PathBuf,
    pub(super) freezer: PathBuf,
}

impl Groups {
    /// The distinct directories, in the order they are made (and a task joins them).
    pub(super) fn dirs(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for d in [&self.cpu, &self.cpuacct, &self.memory, &self.freezer] {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }

    /// Sets the hard memory limit: `memory.limit_in_bytes`, and the same for memory plus
    /// swap (`memory.memsw.limit_in_bytes`) where swap accounting exists.
    pub(super) fn limit_memory(&self, bytes: u64) -> io::Result<()> {
        files::write(
            &self.memory.join("memory.limit_in_bytes"),
            &bytes.to_string(),
        )?;
        let memsw = self.memory.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            files::write(&memsw, &bytes.to_string())?;
        }
        Ok(())
    }

    pub(super) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs().iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// `cpuacct.usage` plus `throttled_time` of `cpu.stat` (both nanoseconds), in seconds.
    pub(super) fn cpu_seconds(&self) -> Option<f64> {
        let usage = files::read_u64(&self.cpuacct.join("cpuacct.usage"))?;
        let stat = files::read(&self.cpu.join("cpu.stat")).unwrap_or_default();
        let throttled = files::keyed(&stat, "throttled_time").unwrap_or(0);
        Some((usage + throttled) as f64 / 1e9)
    }

    /// `memory.usage_in_bytes` minus `total_inactive_file` of `memory.stat`.
    pub(super) fn memory_bytes(&self) -> Option<u64> {
        let usage = files::read_u64(&self.memory.join("memory.usage_in_bytes"))?;
        let stat = files::read(&self.memory.join("memory.stat")).unwrap_or_default();
        let inactive = files::keyed(&stat, "total_inactive_file").unwrap_or(0);
        Some(usage.saturating_sub(inactive))
    }

    pub(super) fn freeze(&self, frozen: bool) -> io::Result<()> {
        let state = if frozen { "FROZEN" } else { "THAWED" };
        files::write(&self.freezer.join("freezer.state"), state)
    }

    /// Period first, then quota (`-1` lifts it).
    pub(super) fn throttle(&self, cores: Option<f64>) -> io::Result<()> {
        files::write(&self.cpu.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
        let quota = match cores {
            Some(c) => quota_us(c).to_string(),
            None => "-1".to_string(),
        };
        files::write(&self.cpu.join("cpu.cfs_quota_us"), &quota)
    }

    /// `SIGKILL` to every task of every directory, then a thaw: a frozen v1 task does not
    /// die until it is thawed. (The caller has signalled the process group already.)
    pub(super) fn kill(&self) {
        for dir in self.dirs() {
            for pid in files::pids(&dir.join("cgroup.procs")) {
                let _ = signals::signal_task(pid, libc::SIGKILL);
            }
        }
        let _ = self.freeze(false);
    }

    /// `oom_kill` of `memory.oom_control` (Linux 4.13+).
    pub(super) fn oom_kills(&self) -> u64 {
        files::read(&self.memory.join("memory.oom_control"))
            .and_then(|t| files::keyed(&t, "oom_kill"))
            .unwrap_or(0)
    }

    pub(super) fn remove(&self) {
        for dir in self.dirs() {
            files::remove_dir(&dir);
        }
    }
}
