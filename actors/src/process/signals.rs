//! The signals fallback and the system calls every backend shares: signalling a process
//! group or one task, and accounting one process from `/proc`.
//!
//! Unsafe code is allowed here by name, for `kill(2)` and `sysconf(3)`: neither touches
//! memory of ours, and each call's arguments are checked first.

#![allow(unsafe_code)]

use std::io;

/// Sends `sig` to the process group `pgid` (the jail's child, which leads its group).
///
/// Refuses ids 0 and 1: `kill(-0)` would signal our own group and `kill(-1)` every process
/// we may signal.
pub(super) fn signal_group(pgid: u32, sig: libc::c_int) -> io::Result<()> {
    let id = checked(pgid)?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; `id` > 1, so
    // -id names exactly one process group.
    if unsafe { libc::kill(-id, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `sig` to the one task `pid` (a pid read from a cgroup's `cgroup.procs`).
pub(super) fn signal_task(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let id = checked(pid)?;
    // SAFETY: as in `signal_group`; a positive id names one process.
    if unsafe { libc::kill(id, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn checked(pid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(id) if id > 1 => Ok(id),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing to signal pid {pid}"),
        )),
    }
}

/// Whether a pid still names the process that was started at `start` (field 22 of
/// `/proc/<pid>/stat`, in clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Identity {
    /// The same process, running or exited and not yet reaped.
    Same,
    /// No process has the pid now.
    Gone,
    /// Another process got the pid.
    Other,
}

/// See [`Identity`]; a start time that could not be read counts as the same process.
pub(super) fn identify(pid: u32, start: Option<u64>) -> Identity {
    match (start_time(pid), start) {
        (None, _) => Identity::Gone,
        (Some(now), Some(then)) if now != then => Identity::Other,
        _ => Identity::Same,
    }
}

/// Field 22 (`starttime`) of `/proc/<pid>/stat`.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The child's CPU seconds: `utime + stime + cutime + cstime` of `/proc/<pid>/stat` (its
/// own time and that of the children it has reaped).
pub(super) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_ticks(&stat)?;
    Some(ticks as f64 / sysconf(libc::_SC_CLK_TCK)? as f64)
}

/// The child's resident set in bytes, from the second field of `/proc/<pid>/statm`.
pub(super) fn memory_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * sysconf(libc::_SC_PAGESIZE)?)
}

/// `utime + stime + cutime + cstime` (fields 14 to 17) of a `/proc/<pid>/stat` line, in
/// clock ticks. The command name (field 2) may hold spaces and parentheses: fields are
/// counted from the last `)`.
pub(super) fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = stat.rsplit_once(')')?.1;
    // After ")": field 3 (state) is index 0, so field n is index n - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let mut sum = 0u64;
    for i in 11..=14 {
        sum += fields.get(i)?.parse::<u64>().ok()?;
    }
    Some(sum)
}

fn sysconf(name: libc::c_int) -> Option<u64> {
    // SAFETY: sysconf(3) reads a configuration value; no memory of ours is involved.
    let v = unsafe { libc::sysconf(name) };
    u64::try_from(v).ok().filter(|&v| v > 0)
}

/// A signal's name: `SIGSEGV` for 11.
pub(super) fn name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        _ => "unknown signal",
    }
}
