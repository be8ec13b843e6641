//! The audit trail's file side: open and continue the chain (repairing a torn last
//! line), append, rotate, fsync; and the writer thread's loop.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvError, TryRecvError};

use super::chain::{self, GENESIS};
use super::{Cmd, Entry, Shared};
use crate::core::clock::unix_ms;

/// How much of a file's end is read to find its last line: far more than any line.
const TAIL_BYTES: u64 = 64 * 1024;

/// Why an audit trail could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be opened, read or repaired.
    #[error("audit trail {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file's last line is not an intact audit line, so its chain cannot go on.
    #[error("audit trail {path}: cannot continue its chain: the last line {problem}; move the file aside or check it with `nevil audit verify`")]
    NotATrail {
        /// The file.
        path: PathBuf,
        /// What is wrong with its last line.
        problem: String,
    },
    /// The writer thread could not be started.
    #[error("cannot start the audit writer thread: {0}")]
    Thread(io::Error),
}

/// `path` with `.n` appended (`audit.jsonl.1`): the flight recorder's naming and
/// rotation, shared.
pub use crate::services::recorder::recording::rotated;
use crate::services::recorder::recording::{rotate, sync_dir};

/// An open trail: the current file and where the chain stands.
pub struct Trail {
    path: PathBuf,
    file: File,
    size: u64,
    max_file_bytes: u64,
    keep_files: u32,
    next_seq: u64,
    prev: String,
}

impl Trail {
    /// Opens `path` for appending, continuing the chain from its last line (or, when it
    /// is empty, from `path.1`'s; else from [`GENESIS`]). A torn last line is cut off,
    /// and a [`Entry::Recovered`] line is written first.
    pub fn open(path: &Path, max_file_bytes: u64, keep_files: u32) -> Result<Self, AuditError> {
        let io_err = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err)?;
        let (last, size, torn) = last_line(&mut file, path, true)?;
        let last = match last {
            Some(line) => Some(line),
            None => match File::open(rotated(path, 1)) {
                Ok(mut older) => last_line(&mut older, &rotated(path, 1), false)?.0,
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err(e)),
            },
        };
        let (next_seq, prev) = match last {
            Some((seq, hash)) => (seq + 1, hash),
            None => (1, GENESIS.to_string()),
        };
        let mut trail = Self {
            path: path.to_path_buf(),
            file,
            size,
            max_file_bytes,
            keep_files,
            next_seq,
            prev,
        };
        if torn > 0 {
            tracing::warn!(path = %path.display(), torn_bytes = torn, "audit trail: cut off a torn last line (power cut?)");
            trail
                .append(unix_ms(), &Entry::Recovered { torn_bytes: torn })
                .map_err(io_err)?;
        }
        Ok(trail)
    }

    /// The `seq` the next line gets.
    #[cfg(test)]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends `entry`, stamped `ts_ms`, rotating first if the line would take the file
    /// past its size.
    pub fn append(&mut self, ts_ms: u64, entry: &Entry) -> io::Result<()> {
        let (line, hash) = chain::seal(self.next_seq, ts_ms, entry, &self.prev)?;
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.max_file_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.size += len;
        self.next_seq += 1;
        self.prev = hash;
        metrics::counter!(crate::core::metrics::AUDIT_ENTRIES).increment(1);
        Ok(())
    }

    /// Flushes the file to the disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        rotate(&self.path, self.keep_files)?;
        self.file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)?;
        self.size = 0;
        // The renames and the new file survive a power cut only once the directory is
        // on disk too.
        sync_dir(&self.path)?;
        Ok(())
    }
}

/// The last complete line of `file` as (seq, hash), the file's size after any repair,
/// and how many torn bytes were cut off (`repair`) — a torn tail is an error otherwise.
type LastLine = (Option<(u64, String)>, u64, u64);

fn last_line(file: &mut File, path: &Path, repair: bool) -> Result<LastLine, AuditError> {
    let io_err = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_a_trail = |problem: String| AuditError::NotATrail {
        path: path.to_path_buf(),
        problem,
    };
    let len = file.metadata().map_err(io_err)?.len();
    if len == 0 {
        return Ok((None, 0, 0));
    }
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start)).map_err(io_err)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io_err)?;
    // Where the complete lines end (just after the last newline), in `tail`.
    let end = tail.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
    let complete = match end {
        Some(end) => end,
        None if start == 0 => 0,
        None => return Err(not_a_trail(format!("is over {TAIL_BYTES} bytes long"))),
    };
    let torn = tail.len() - complete;
    if torn > 0 {
        if !repair {
            return Err(not_a_trail("is torn (no newline at the end)".into()));
        }
        file.set_len(start + complete as u64).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
    }
    let size = start + complete as u64;
    if complete == 0 {
        return Ok((None, size, torn as u64));
    }
    let lines = &tail[..complete - 1];
    let begin = match lines.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if start == 0 => 0,
        None => return Err(not_a_trail(format!("is over {TAIL_BYTES} bytes long"))),
    };
    let line =
        std::str::from_utf8(&lines[begin..]).map_err(|_| not_a_trail("is not UTF-8".into()))?;
    let link = chain::check(line).map_err(|e| not_a_trail(format!("is bad: {e}")))?;
    Ok((Some((link.seq, link.hash)), size, torn as u64))
}

/// The writer thread: writes what `rx` brings, fsyncs whenever it has caught up, and
/// ends on [`Cmd::Close`], when every handle is gone, or on the first write error
/// (logged once; the trail is then disabled and the robot runs on).
pub(super) fn run(mut trail: Trail, rx: &Receiver<Cmd>, shared: &Shared) {
    let mut next = rx.recv();
    while let Ok(cmd) = next {
        let ts_entry = match cmd {
            Cmd::Entry(ts_ms, entry) => (ts_ms, entry),
            Cmd::Close(reply) => {
                let synced = write_lost(&mut trail, shared).and_then(|()| trail.sync());
                if let Err(e) = synced {
                    disable(shared, &e);
                }
                let _ = reply.send(());
                return;
            }
        };
        let mut written = trail
            .append(ts_entry.0, &ts_entry.1)
            .and_then(|()| write_lost(&mut trail, shared));
        next = match rx.try_recv() {
            Ok(cmd) => Ok(cmd),
            Err(TryRecvError::Empty) => {
                // Caught up: what is written goes to the disk before the next wait.
                written = written.and_then(|()| trail.sync());
                rx.recv()
            }
            Err(TryRecvError::Disconnected) => Err(RecvError),
        };
        if let Err(e) = written {
            disable(shared, &e);
            return;
        }
    }
    // Every handle is gone.
    let _ = trail.sync();
}

/// Writes an [`Entry::Lost`] for entries the queue refused since the last one.
fn write_lost(trail: &mut Trail, shared: &Shared) -> io::Result<()> {
    let count = shared.lost.swap(0, Ordering::Relaxed);
    if count == 0 {
        return Ok(());
    }
    trail.append(
        unix_ms(),
        &Entry::Lost {
            count,
            source: "audit queue".into(),
        },
    )
}

fn disable(shared: &Shared, e: &io::Error) {
    shared.enabled.store(false, Ordering::Release);
    metrics::gauge!(crate::core::metrics::AUDIT_ENABLED).set(0.0);
    tracing::error!(
        path = %shared.path.display(),
        error = %e,
        "audit trail disabled: a write failed; the robot runs on without it"
    );
}
