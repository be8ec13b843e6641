//! Governing a child OS process through the kernel: a [`Jail`].
//!
//! Inside one process, stopping an actor is cooperative: a handler that never reaches an
//! `.await` cannot be stopped, and suspending a leaking actor keeps its memory. Work that
//! runs in a child process can be governed by the kernel instead. A [`Jail`] is one child
//! process and the control group it runs in:
//!
//! | the ladder | cgroup v2 | cgroup v1 | signals (no cgroup permission) |
//! |---|---|---|---|
//! | throttle ([`Jail::throttle`]) | `cpu.max` | `cpu.cfs_quota_us` / `cpu.cfs_period_us` | unsupported |
//! | hard memory ([`JailLimits::memory_max`]) | `memory.max` (and `memory.swap.max` 0) | `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes`) | `RLIMIT_AS` |
//! | suspend / resume | `cgroup.freeze` | `freezer.state` | `SIGSTOP` / `SIGCONT` to the process group |
//! | terminate ([`Jail::kill`]) | `cgroup.kill` | `SIGKILL` to the group and every task, then thaw | `SIGKILL` to the process group |
//! | cpu ([`Jail::cpu_seconds`]) | `cpu.stat` usage + throttled | `cpuacct.usage` + `cpu.stat` throttled_time | `/proc/<pid>/stat` |
//! | memory ([`Jail::memory_bytes`]) | `memory.current` − inactive file | `memory.usage_in_bytes` − inactive file | `/proc/<pid>/statm` resident |
//! | OOM kill ([`Jail::oom_killed`]) | `memory.events` oom_kill | `memory.oom_control` oom_kill | never seen |
//!
//! [`Jail::new`] picks the first of v2, v1 and signals that works here and never fails:
//! why it fell back is logged and kept ([`Jail::fallback_reason`]), so a tree can show
//! `isolation: "signals"` and the reason. cgroupfs is driven directly through its files
//! (a dozen of them); see `process/detect.rs` for why not the `cgroups-rs` crate.
//!
//! **Where jails live.** Under this process's *own* cgroup in each hierarchy (read from
//! `/proc/self/cgroup` and `/proc/self/mountinfo`), named `<own>/<name>`. Under v2 a cgroup
//! that hands controllers to its children may hold no process itself ("no internal
//! processes"), so the first v2 jail of a process that is not in the root cgroup moves
//! this process into a leaf `<own>/supervisor` and enables `+cpu +memory` in
//! `<own>/cgroup.subtree_control`, once per process. Under systemd that needs
//! `Delegate=yes` on the unit.
//!
//! **The child.** [`Jail::spawn`] runs the command in its own process group, with
//! `PR_SET_PDEATHSIG` = `SIGKILL` (no orphans when the parent dies), joined to the jail's
//! cgroups before `exec` (it never runs outside them). The parent-death signal follows
//! the *thread* that forks, so every child is forked by one thread kept for the life of
//! the process: a child dies when this process dies, whichever thread asked for it.
//! `spawn` waits until the child has `exec`ed, as `Command::spawn` does; joining v1
//! cgroups makes that slower (a kernel migration per hierarchy, ~4 ms each here).
//!
//! **Tested** for real on cgroup v1 (the development machines and CI mount cpu, cpuacct,
//! memory and freezer as v1; their cgroup2 mount has no controllers) and with signals;
//! the v2 backend is tested against a fake directory of its files, and its file formats
//! against the kernel's documentation.
//!
//! **Accounting.** [`Jail::cpu_seconds`] counts the CPU time used *plus* the time the CFS
//! quota held the group back: the demand. A throttled spinner still reads as wanting a
//! whole core, so a throttle never hides a breach from the hard limit above it.
//! [`Jail::memory_bytes`] is the working set (charged memory minus the inactive file
//! cache the kernel reclaims first): what a leak grows, without the page cache a read
//! of a large file would add.

mod detect;
mod files;
mod signals;
mod spawn;
mod v1;
mod v2;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Serialize, Serializer};

use crate::ExitReason;

/// How a [`Jail`] governs its child: which kernel interface it acts through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// The unified cgroup v2 hierarchy with the cpu and memory controllers and the freezer.
    CgroupV2,
    /// The cgroup v1 controllers cpu, cpuacct, memory and freezer.
    CgroupV1,
    /// No cgroup permission: `SIGSTOP`/`SIGCONT`/`SIGKILL` to the process group,
    /// `RLIMIT_AS`, and `/proc` accounting; no CPU throttle.
    Signals,
}

impl Isolation {
    /// `cgroup_v2`, `cgroup_v1` or `signals`: the tree's `isolation` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CgroupV2 => "cgroup_v2",
            Self::CgroupV1 => "cgroup_v1",
            Self::Signals => "signals",
        }
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Isolation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The limits a [`Jail`] sets when it is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JailLimits {
    /// Hard memory limit in bytes: `memory.max` (v2), `memory.limit_in_bytes` (v1), or
    /// `RLIMIT_AS` of the child (signals: address space, not resident memory, so set it
    /// with headroom). Swap is held to the same limit, so a leak is OOM-killed rather
    /// than swapped out. `None`: no limit of its own.
    pub memory_max: Option<u64>,
}

/// The kernel interface a jail acts through.
enum Backend {
    V2(v2::Group),
    V1(v1::Groups),
    Signals,
}

/// One child OS process and the control group(s) it runs in; see the [module docs](self).
///
/// `Send + Sync`, every method takes `&self`: share it in an `Arc` between the actor that
/// waits on the child and the supervisor that governs it. Dropping it kills what is left
/// and removes its cgroups.
pub struct Jail {
    name: String,
    backend: Backend,
    fallback: Option<String>,
    limits: JailLimits,
    /// The child (also its process group), once spawned.
    child: Mutex<Option<Spawned>>,
}

/// A spawned child: its pid, and its start time, which tells it from a later process
/// that got the same pid once it was reaped.
#[derive(Debug, Clone, Copy)]
struct Spawned {
    pid: u32,
    start: Option<u64>,
}

impl Jail {
    /// A jail named `name` (unique per parent: include the parent's pid) under this
    /// process's own cgroup in `/sys/fs/cgroup`: v2 where the unified hierarchy has the
    /// cpu and memory controllers and the freezer usable, else v1 (cpu, cpuacct, memory
    /// and freezer mounted), else signals. Never fails: the reason for a fallback is
    /// logged (a warning, the first time in a process) and kept ([`Jail::fallback_reason`]).
    pub fn new(name: &str, limits: &JailLimits) -> Jail {
        Self::with_root(Path::new(detect::DEFAULT_ROOT), name, limits)
    }

    /// Same as [`Jail::new`], but looking for cgroup file systems mounted under `root`
    /// instead of `/sys/fs/cgroup` (tests; an operator's override).
    pub fn with_root(root: &Path, name: &str, limits: &JailLimits) -> Jail {
        let (backend, fallback) = detect::choose(root, name, limits);
        if let Some(reason) = &fallback {
            detect::warn_fallback(name, reason);
        }
        Jail {
            name: name.to_string(),
            backend,
            fallback,
            limits: limits.clone(),
            child: Mutex::new(None),
        }
    }

    /// Which kernel interface governs the child.
    pub fn isolation(&self) -> Isolation {
        match self.backend {
            Backend::V2(_) => Isolation::CgroupV2,
            Backend::V1(_) => Isolation::CgroupV1,
            Backend::Signals => Isolation::Signals,
        }
    }

    /// Why the jail fell back to signals (which cgroup interface failed, and how); `None`
    /// when it governs through a cgroup.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// The jail's name (its cgroup directories' name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The jail's cgroup directories: one under v2, one per distinct v1 hierarchy, none
    /// under signals. Where an operator looks; gone once the jail is dropped.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V2(g) => vec![g.dir().to_path_buf()],
            Backend::V1(g) => g.dirs(),
            Backend::Signals => Vec::new(),
        }
    }

    /// Spawns `cmd` inside the jail: its own process group, `SIGKILL` when this process
    /// dies (`PR_SET_PDEATHSIG`), joined to the jail's cgroups before `exec` (no window in
    /// which it runs outside them), `RLIMIT_AS` under signals. One child per jail: a
    /// second spawn fails with `AlreadyExists`. Call it inside a tokio runtime (the child
    /// is reaped by it); it blocks until the child has `exec`ed.
    pub fn spawn(&self, mut cmd: tokio::process::Command) -> io::Result<tokio::process::Child> {
        let mut slot = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Spawned { pid, .. }) = *slot {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("jail {} already has its child (pid {pid})", self.name),
            ));
        }
        let procs = match &self.backend {
            Backend::V2(g) => vec![g.procs_file()],
            Backend::V1(g) => g.procs_files(),
            Backend::Signals => Vec::new(),
        };
        let rlimit_as = match self.backend {
            Backend::Signals => self.limits.memory_max,
            _ => None,
        };
        spawn::prepare(&mut cmd, &procs, rlimit_as)?;
        let child = spawn::spawn(cmd)?;
        // Not reaped yet (the caller holds it): its /proc entry is there to read.
        *slot = child.id().map(|pid| Spawned {
            pid,
            start: signals::start_time(pid),
        });
        Ok(child)
    }

    /// The child's pid (and process group id), once spawned.
    pub fn pid(&self) -> Option<u32> {
        self.spawned_child().map(|c| c.pid)
    }

    fn spawned_child(&self) -> Option<Spawned> {
        *self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The child's pid while it is still our child (running, or exited and not yet
    /// reaped), not a later process with the same pid.
    fn live_child(&self) -> Option<u32> {
        let child = self.spawned_child()?;
        (signals::identify(child.pid, child.start) == signals::Identity::Same).then_some(child.pid)
    }

    /// Sends `sig` to the child's process group. Its pid is checked first: once the child
    /// is reaped and the pid names another process, the group is gone (a process group
    /// keeps its id from reuse while it has members) and nothing is sent.
    fn signal_group(&self, sig: libc::c_int) -> io::Result<()> {
        let child = self.spawned_child().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("jail {} has no child yet", self.name),
            )
        })?;
        match signals::identify(child.pid, child.start) {
            signals::Identity::Other => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "jail {}: child {} has exited and its pid is reused",
                    self.name, child.pid
                ),
            )),
            signals::Identity::Same | signals::Identity::Gone => {
                signals::signal_group(child.pid, sig)
            }
        }
    }

    /// Cumulative CPU seconds the jail used plus the time its CFS quota throttled it (the
    /// demand: a throttled spinner still reads as wanting a whole core). Signals: the
    /// child's `utime + stime` (and its reaped children's) from `/proc/<pid>/stat`, no
    /// throttled time. `None` before a spawn (signals) or when the files cannot be read.
    pub fn cpu_seconds(&self) -> Option<f64> {
        match &self.backend {
            Backend::V2(g) => g.cpu_seconds(),
            Backend::V1(g) => g.cpu_seconds(),
            Backend::Signals => signals::cpu_seconds(self.live_child()?),
        }
    }

    /// Memory the jail holds now, in bytes: its working set, the charged memory minus the
    /// inactive file cache (v2 `memory.current`, v1 `memory.usage_in_bytes`, each minus
    /// `inactive_file` of `memory.stat`); signals: the child's resident set from
    /// `/proc/<pid>/statm` (the child alone, not its own children).
    pub fn memory_bytes(&self) -> Option<u64> {
        match &self.backend {
            Backend::V2(g) => g.memory_bytes(),
            Backend::V1(g) => g.memory_bytes(),
            Backend::Signals => signals::memory_bytes(self.live_child()?),
        }
    }

    /// Freezes every task in the jail (v2 `cgroup.freeze`, v1 `freezer.state` `FROZEN`;
    /// signals: `SIGSTOP` to the process group). Returns once the request is made; the
    /// kernel completes the freeze shortly after.
    pub fn suspend(&self) -> io::Result<()> {
        match &self.backend {
            Backend::V2(g) => g.freeze(true),
            Backend::V1(g) => g.freeze(true),
            Backend::Signals => self.signal_group(libc::SIGSTOP),
        }
    }

    /// Thaws the jail (`SIGCONT` under signals) and lifts its CPU limit.
    pub fn resume(&self) -> io::Result<()> {
        match &self.backend {
            Backend::V2(g) => {
                g.freeze(false)?;
                g.throttle(None)
            }
            Backend::V1(g) => {
                g.freeze(false)?;
                g.throttle(None)
            }
            Backend::Signals => self.signal_group(libc::SIGCONT),
        }
    }

    /// Limits the jail to `cores` CPUs' worth of time (CFS quota over a 100 ms period:
    /// v2 `cpu.max`, v1 `cpu.cfs_quota_us`); `None` lifts the limit. Under signals there
    /// is no CPU limit: `Unsupported`. `cores` must be finite and above zero.
    pub fn throttle(&self, cores: Option<f64>) -> io::Result<()> {
        if let Some(c) = cores {
            if !(c.is_finite() && c > 0.0) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("jail {}: cannot throttle to {c} cores", self.name),
                ));
            }
        }
        match &self.backend {
            Backend::V2(g) => g.throttle(cores),
            Backend::V1(g) => g.throttle(cores),
            Backend::Signals => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "jail {}: no CPU throttle without cgroups (isolation signals)",
                    self.name
                ),
            )),
        }
    }

    /// `SIGKILL`s everything in the jail at once: v2 `cgroup.kill`; v1 `SIGKILL` to the
    /// process group and every task in its cgroups, then a thaw (a frozen v1 task dies only
    /// once thawed); signals: the process group. Idempotent and never blocks; errors (the
    /// tasks already gone) are ignored. The process group is signalled only while the
    /// child's pid is still the child's (or free, with group members left): never a later
    /// process that got the pid once the child was reaped.
    pub fn kill(&self) {
        let _ = self.signal_group(libc::SIGKILL);
        match &self.backend {
            Backend::V2(g) => g.kill(),
            Backend::V1(g) => g.kill(),
            Backend::Signals => {}
        }
    }

    /// Whether the kernel OOM-killed a task in the jail since it was made (v2
    /// `memory.events`, v1 `memory.oom_control`: `oom_kill`). Always `false` under
    /// signals, where an `RLIMIT_AS` breach is a failed allocation, not a kill.
    pub fn oom_killed(&self) -> bool {
        match &self.backend {
            Backend::V2(g) => g.oom_kills() > 0,
            Backend::V1(g) => g.oom_kills() > 0,
            Backend::Signals => false,
        }
    }
}

impl Drop for Jail {
    /// Kills what is left, then removes the cgroup directories, retrying for up to about
    /// a second while the killed tasks drain. A directory that stays is logged, never a
    /// panic.
    fn drop(&mut self) {
        self.kill();
        match &self.backend {
            Backend::V2(g) => g.remove(),
            Backend::V1(g) => g.remove(),
            Backend::Signals => {}
        }
    }
}

impl fmt::Debug for Jail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jail")
            .field("name", &self.name)
            .field("isolation", &self.isolation())
            .field("fallback", &self.fallback)
            .field("pid", &self.pid())
            .finish()
    }
}

/// How a child process's exit maps onto supervision: status 0 → [`ExitReason::Normal`];
/// `SIGKILL` with an OOM kill in its jail → [`ExitReason::Oom`]; `SIGKILL` otherwise →
/// [`ExitReason::Killed`]; any other signal → `Error("killed by signal 11 (SIGSEGV)")`;
/// a non-zero status → `Error("exited with status 3")`.
pub fn exit_reason(status: std::process::ExitStatus, oom_killed: bool) -> ExitReason {
    if let Some(code) = status.code() {
        return if code == 0 {
            ExitReason::Normal
        } else {
            ExitReason::Error(format!("exited with status {code}"))
        };
    }
    match status.signal() {
        Some(libc::SIGKILL) if oom_killed => ExitReason::Oom,
        Some(libc::SIGKILL) => ExitReason::Killed,
        Some(sig) => ExitReason::Error(format!("killed by signal {sig} ({})", signals::name(sig))),
        None => ExitReason::Error(format!("ended without status or signal ({status})")),
    }
}
