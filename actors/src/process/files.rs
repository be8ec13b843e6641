//! Reading and writing cgroupfs files, and the flat-keyed format most of them share.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

/// Writes `text` to the existing control file `path` in one `write(2)` (cgroupfs takes
/// each write as one command). The error names the file and what was written.
pub(super) fn write(path: &Path, text: &str) -> io::Result<()> {
    let attempt = || -> io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)?;
        file.write_all(text.as_bytes())
    };
    attempt().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("writing {text:?} to {}: {e}", path.display()),
        )
    })
}

/// The file's text, `None` if it cannot be read.
pub(super) fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The file's text parsed as one unsigned integer.
pub(super) fn read_u64(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file (`key value` per line: `cpu.stat`,
/// `memory.events`, `memory.stat`, `memory.oom_control`).
pub(super) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.trim().split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The pids listed in a `cgroup.procs` file (none if it cannot be read).
pub(super) fn pids(path: &Path) -> Vec<u32> {
    read(path)
        .map(|t| {
            t.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// How long [`remove_dir`] keeps retrying while killed tasks drain.
const DRAIN: Duration = Duration::from_secs(1);
const DRAIN_STEP: Duration = Duration::from_millis(10);

/// Removes the cgroup directory `dir`, retrying while it is busy (`EBUSY`: tasks still
/// exiting) for up to about a second. Already gone is success; a directory that stays is
/// logged.
pub(super) fn remove_dir(dir: &Path) {
    let tries = DRAIN.as_millis() / DRAIN_STEP.as_millis();
    for attempt in 0..=tries {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < tries => {
                std::thread::sleep(DRAIN_STEP);
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cgroup directory not removed");
                return;
            }
        }
    }
}
