//! The process's own CPU time and resident memory, for the standard `process_*` series.

/// CPU time and memory of this process at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time since the process started, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size in bytes (0 where the platform does not say).
    pub resident_bytes: u64,
}

impl ProcessStats {
    /// Reads them now: `getrusage` for CPU, `/proc/self/statm` for memory.
    pub fn read() -> Self {
        Self {
            cpu_seconds: cpu_seconds(),
            resident_bytes: resident_bytes().unwrap_or(0),
        }
    }
}

#[allow(unsafe_code)]
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass; a zeroed rusage is a valid value.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Resident pages (`/proc/self/statm`'s second field) times the page size.
#[allow(unsafe_code)]
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plausible_figures() {
        // Burn a little CPU so the counter cannot be zero by accident.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let stats = ProcessStats::read();
        assert!(stats.cpu_seconds > 0.0, "{stats:?}");
        if cfg!(target_os = "linux") {
            assert!(stats.resident_bytes > 1 << 20, "{stats:?}");
        }
    }
}
