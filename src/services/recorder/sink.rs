//! The recorder's writer thread: all of the recording's file I/O (create, rotate,
//! write, flush, `fsync`) runs on this one OS thread, fed by a bounded channel, so a
//! slow or full disk never blocks a tokio worker.
//!
//! It is made once per run and outlives the recorder actor's incarnations: a recorder
//! that stops gracefully has it sync, one that crashes just leaves it, and the next
//! incarnation takes it over, so the recording simply continues in order (one writer,
//! never two). Only if the thread itself died (a bug) does a successor start another,
//! which continues the file with [`Writer::append`]. It ends, synced, when the run drops
//! the last handle. A failed write or open disables the sink for the run: it logs one
//! error, counts it in `nevil_recorder_write_errors_total`, drops the file and ends, and
//! the robot runs on without recording.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::core::metrics::{RECORDER_DROPPED, RECORDER_RECORDING, RECORDER_WRITE_ERRORS};
use crate::services::recorder::recording::{Record, Writer};

/// Records (and requests) queued for the thread at most: about ten seconds of the
/// robot's bus traffic (~100 messages/s), in a buffer of about 64 KiB allocated once
/// per run.
pub const QUEUE: usize = 1024;

/// Every this many flushes (100 ms apart), the flush is also an `fsync`: a power cut
/// loses at most about a second of records, and an SD card sees one sync a second, not
/// ten.
pub const SYNC_EVERY_FLUSHES: u32 = 10;

/// How long [`Sink::sync`] waits for the thread to write out and sync: a disk that
/// hangs must not hold up the shutdown (wall-clock time, on a blocking thread, so a
/// paused tokio clock does not cut it short).
pub const SYNC_WAIT: Duration = Duration::from_secs(5);

/// How the thread opens its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// A new run: rotate an existing file away and start a fresh one.
    Create,
    /// A restart within the run: continue the file.
    Append,
}

enum Job {
    Record(Record),
    Flush,
    /// Write out and sync what came before; then answer.
    Sync(SyncSender<()>),
}

/// What the thread reports back.
#[derive(Debug, Default)]
struct Status {
    failed: AtomicBool,
    finished: AtomicBool,
}

/// A handle on the writer thread (cheap to clone).
#[derive(Clone)]
pub struct Sink {
    tx: SyncSender<Job>,
    status: Arc<Status>,
}

/// What [`Sink::record`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Queued for writing.
    Yes,
    /// Dropped: the queue was full (counted in `nevil_recorder_records_dropped_total`).
    Full,
    /// Dropped: the sink is disabled (or its thread died).
    Off,
}

impl Sink {
    /// Starts the writer thread for the recording at `path`.
    ///
    /// # Errors
    ///
    /// The OS error if the thread cannot be started.
    pub fn spawn(path: &Path, max_file_bytes: u64, keep: u32, open: Open) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let status = Arc::new(Status::default());
        let thread = Thread {
            path: path.to_path_buf(),
            max_file_bytes,
            keep,
            status: status.clone(),
        };
        std::thread::Builder::new()
            .name("nevil-recorder".into())
            .spawn(move || thread.run(open, rx))?;
        Ok(Self { tx, status })
    }

    /// Queues a record; never blocks.
    pub fn record(&self, record: Record) -> Queued {
        if self.failed() {
            return Queued::Off;
        }
        match self.tx.try_send(Job::Record(record)) {
            Ok(()) => Queued::Yes,
            Err(TrySendError::Full(_)) => {
                metrics::counter!(RECORDER_DROPPED).increment(1);
                Queued::Full
            }
            Err(TrySendError::Disconnected(_)) => Queued::Off,
        }
    }

    /// Asks for the queued records to be pushed to the OS (and, every
    /// [`SYNC_EVERY_FLUSHES`]th time, synced to disk); never blocks.
    pub fn flush(&self) {
        // A full queue flushes anyway: a later tick asks again.
        let _ = self.tx.try_send(Job::Flush);
    }

    /// Writes out everything queued before it and syncs it to disk; returns once that
    /// is done (at once if the thread has ended), or after [`SYNC_WAIT`] with a warning
    /// if the disk does not answer. The thread carries on.
    pub async fn sync(&self) {
        let tx = self.tx.clone();
        let waited = tokio::task::spawn_blocking(move || sync_within(&tx, SYNC_WAIT)).await;
        if let Ok(false) = waited {
            tracing::warn!(
                "flight recorder: the writer did not sync within {SYNC_WAIT:?}; going on without waiting"
            );
        }
    }

    /// Whether a write failed and recording is off for the rest of the run.
    pub fn failed(&self) -> bool {
        self.status.failed.load(Ordering::Acquire)
    }

    /// Whether the thread has ended (failed, died, or every handle was dropped).
    pub fn finished(&self) -> bool {
        self.status.finished.load(Ordering::Acquire)
    }
}

/// Asks the thread to sync and waits for it, `wait` at most (the queue may be full:
/// the request waits for room too). `false` if it did not finish in time.
fn sync_within(tx: &SyncSender<Job>, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let (ack, done) = mpsc::sync_channel(1);
    let mut job = Job::Sync(ack);
    loop {
        match tx.try_send(job) {
            Ok(()) => break,
            // Already ended: nothing left to wait for.
            Err(TrySendError::Disconnected(_)) => return true,
            Err(TrySendError::Full(back)) => {
                if Instant::now() >= deadline {
                    return false;
                }
                job = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    match done.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        // Answered, or ended without answering (a failure): done either way.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => true,
        Err(mpsc::RecvTimeoutError::Timeout) => false,
    }
}

struct Thread {
    path: PathBuf,
    max_file_bytes: u64,
    keep: u32,
    status: Arc<Status>,
}

/// Marks the thread finished however it ends, a panic included.
struct Finished(Arc<Status>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::Release);
    }
}

impl Thread {
    fn run(self, open: Open, rx: Receiver<Job>) {
        let _finished = Finished(self.status.clone());
        let opened = match open {
            Open::Create => Writer::create(&self.path, self.max_file_bytes, self.keep),
            Open::Append => Writer::append(&self.path, self.max_file_bytes, self.keep),
        };
        let mut writer = match opened {
            Ok(w) => w,
            Err(e) => return self.fail("open", &e),
        };
        metrics::gauge!(RECORDER_RECORDING).set(1.0);
        let mut flushes = 0u32;
        for job in rx {
            let done = match job {
                Job::Record(r) => writer.write(&r),
                Job::Flush => {
                    flushes = flushes.wrapping_add(1);
                    if flushes % SYNC_EVERY_FLUSHES == 0 {
                        writer.sync()
                    } else {
                        writer.flush()
                    }
                }
                Job::Sync(ack) => {
                    let synced = writer.sync();
                    // Answered after the sync, failed or not: the asker waits no longer.
                    let _ = ack.send(());
                    synced
                }
            };
            if let Err(e) = done {
                return self.fail("write", &e);
            }
        }
        // Every handle is gone (the run is over): make what was written durable.
        if let Err(e) = writer.sync() {
            self.fail("sync", &e);
        }
        metrics::gauge!(RECORDER_RECORDING).set(0.0);
    }

    /// The one error event of a failed sink; it ends the thread (and drops the queue).
    fn fail(&self, what: &str, e: &std::io::Error) {
        self.status.failed.store(true, Ordering::Release);
        metrics::counter!(RECORDER_WRITE_ERRORS).increment(1);
        metrics::gauge!(RECORDER_RECORDING).set(0.0);
        tracing::error!(
            path = %self.path.display(),
            error = %e,
            "flight recorder: {what} failed; recording is off for the rest of this run, the robot runs on"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Range;
    use crate::services::recorder::recording::{read, rotated};

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nevil-sink-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("run.rec")
    }

    fn range(t: u64) -> Record {
        Record::Range(Range {
            t_us: t,
            distance_m: None,
        })
    }

    #[tokio::test]
    async fn sync_writes_everything_and_the_thread_carries_on() {
        let path = tmp("sync");
        let sink = Sink::spawn(&path, 1 << 20, 2, Open::Create).unwrap();
        for t in 0..100 {
            assert_eq!(sink.record(range(t)), Queued::Yes);
        }
        sink.sync().await;
        assert_eq!(read(&path).unwrap().records.len(), 100);
        assert_eq!(sink.record(range(100)), Queued::Yes);
        sink.sync().await;
        assert!(!sink.finished() && !sink.failed());
        let all = read(&path).unwrap().records;
        assert_eq!(all, (0..=100).map(range).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_new_run_rotates_and_a_replacement_thread_appends() {
        let path = tmp("rotate");
        let sink = Sink::spawn(&path, 1 << 20, 2, Open::Create).unwrap();
        sink.record(range(1));
        sink.sync().await;
        drop(sink);
        let sink = Sink::spawn(&path, 1 << 20, 2, Open::Create).unwrap();
        sink.record(range(2));
        sink.sync().await;
        drop(sink);
        let sink = Sink::spawn(&path, 1 << 20, 2, Open::Append).unwrap();
        sink.record(range(3));
        sink.sync().await;
        assert_eq!(read(&rotated(&path, 1)).unwrap().records, vec![range(1)]);
        assert_eq!(read(&path).unwrap().records, vec![range(2), range(3)]);
        assert!(!rotated(&path, 2).exists());
    }

    #[tokio::test]
    async fn a_failed_open_disables_the_sink_without_panicking() {
        let path = tmp("fail").with_file_name("no-such-dir").join("run.rec");
        let sink = Sink::spawn(&path, 1 << 20, 2, Open::Create).unwrap();
        // The thread ends on its own; a sync waits for that.
        sink.sync().await;
        assert!(sink.failed() && sink.finished());
        assert_eq!(sink.record(range(1)), Queued::Off);
    }

    #[test]
    fn sync_gives_up_on_a_writer_that_does_not_answer() {
        // A queue nobody reads, full: the sync request itself cannot get in.
        let (tx, rx) = mpsc::sync_channel(1);
        tx.try_send(Job::Flush).unwrap();
        assert!(!sync_within(&tx, Duration::ZERO));
        // Room, but nobody answers.
        let _ = rx.try_recv();
        assert!(!sync_within(&tx, Duration::ZERO));
        // Nobody there at all: nothing to wait for.
        drop(rx);
        assert!(sync_within(&tx, Duration::ZERO));
    }

    #[test]
    fn a_full_queue_drops_and_never_blocks() {
        // A thread that cannot open stays alive no longer than its open: use a sender
        // whose receiver is held but not read, to fill the queue deterministically.
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let sink = Sink {
            tx,
            status: Arc::new(Status::default()),
        };
        for t in 0..QUEUE as u64 {
            assert_eq!(sink.record(range(t)), Queued::Yes);
        }
        assert_eq!(sink.record(range(0)), Queued::Full);
        drop(rx);
        assert_eq!(sink.record(range(0)), Queued::Off);
    }
}
