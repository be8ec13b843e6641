//! [`Writer`]: appends records to a recording file, rotating it by size, and makes them
//! durable with `fsync` when asked, before each rotation, and when a file is given up.
//!
//! Rotation: when the current file would pass `max_file_bytes`, it is synced and becomes
//! `FILE.1` (the older ones shift to `FILE.2` … `FILE.<keep>`, the oldest is deleted), a
//! fresh `FILE` starts, and the directory is synced so the renames survive a power cut.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{Reader, Record, MAGIC, VERSION};

/// Appends records to a file, rotating it by size.
pub struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    max_file_bytes: u64,
    keep: u32,
    syncs: u64,
    rotations: u64,
}

impl Writer {
    /// Starts a new recording at `path` (an existing file there is rotated away first):
    /// what a new run of the robot does.
    ///
    /// # Errors
    ///
    /// The OS error if the file cannot be rotated or created.
    pub fn create(path: &Path, max_file_bytes: u64, keep: u32) -> io::Result<Self> {
        if path.exists() {
            rotate(path, keep)?;
        }
        let (out, written) = start_file(path)?;
        sync_dir(path)?;
        Ok(Self::with(path, out, written, max_file_bytes, keep))
    }

    /// Continues the recording at `path`: what a restart of the recorder within one run
    /// does, so a crash loop cannot push the good recordings out. A torn last record (a
    /// write cut short) is cut off first, so the file stays readable to its end; a file
    /// that is missing, empty or just a torn header starts afresh; one that is not a
    /// readable recording of this format version is rotated away (kept for inspection)
    /// and a fresh one starts.
    ///
    /// # Errors
    ///
    /// The OS error if the file cannot be read, truncated, rotated or opened.
    pub fn append(path: &Path, max_file_bytes: u64, keep: u32) -> io::Result<Self> {
        let len = match std::fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        if len < 12 {
            let (out, written) = start_file(path)?;
            sync_dir(path)?;
            return Ok(Self::with(path, out, written, max_file_bytes, keep));
        }
        match complete_records_end(path)? {
            Some(end) => {
                let file = OpenOptions::new().write(true).open(path)?;
                if end < len {
                    file.set_len(end)?;
                    file.sync_data()?;
                }
                let file = OpenOptions::new().append(true).open(path)?;
                Ok(Self::with(
                    path,
                    BufWriter::new(file),
                    end,
                    max_file_bytes,
                    keep,
                ))
            }
            None => Self::create(path, max_file_bytes, keep),
        }
    }

    fn with(path: &Path, out: BufWriter<File>, written: u64, max: u64, keep: u32) -> Self {
        Self {
            path: path.to_path_buf(),
            out,
            written,
            max_file_bytes: max,
            keep,
            syncs: 0,
            rotations: 0,
        }
    }

    /// Appends one record (buffered: [`Writer::flush`] or [`Writer::sync`] push it out).
    ///
    /// # Errors
    ///
    /// The OS error of a failed write or rotation.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let body = bincode::encode_to_vec(record, bincode::config::standard())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let size = 4 + body.len() as u64;
        if self.written + size > self.max_file_bytes && self.written > 12 {
            self.sync()?;
            rotate(&self.path, self.keep)?;
            (self.out, self.written) = start_file(&self.path)?;
            sync_dir(&self.path)?;
            self.rotations += 1;
        }
        self.out.write_all(&(body.len() as u32).to_le_bytes())?;
        self.out.write_all(&body)?;
        self.written += size;
        Ok(())
    }

    /// Pushes buffered records to the OS (they survive a crash of the process, not a
    /// power cut).
    ///
    /// # Errors
    ///
    /// The OS error of a failed write.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Pushes buffered records to the OS and `fsync`s them to the disk (they survive a
    /// power cut).
    ///
    /// # Errors
    ///
    /// The OS error of a failed write or sync.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.syncs += 1;
        Ok(())
    }

    /// Times the data was synced to disk (on request and before each rotation).
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Times the file was rotated by this writer.
    pub fn rotations(&self) -> u64 {
        self.rotations
    }

    /// Bytes in the current file, header included.
    pub fn file_bytes(&self) -> u64 {
        self.written
    }
}

/// Where the complete records of the recording at `path` end, or `None` if it is not a
/// readable recording of the current format version (no header, an older version, or
/// garbage before its end).
fn complete_records_end(path: &Path) -> io::Result<Option<u64>> {
    let mut reader = match Reader::open(path) {
        Ok(r) => r,
        Err(super::RecordingError::Io { source, .. }) => return Err(source),
        Err(super::RecordingError::Corrupt { .. }) => return Ok(None),
    };
    loop {
        match reader.next_record() {
            // An older format's file is not continued in this one: it is kept, rotated.
            Ok(_) if reader.version() != VERSION => return Ok(None),
            Ok(Some(_)) => {}
            Ok(None) => return Ok(Some(reader.offset())),
            Err(super::RecordingError::Io { source, .. }) => return Err(source),
            Err(super::RecordingError::Corrupt { .. }) => return Ok(None),
        }
    }
}

fn start_file(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    Ok((out, 12))
}

/// Syncs the directory holding `path`, so a file created or renamed in it survives a
/// power cut.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// `FILE.N` for a rotated file.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Shifts `FILE.1` … `FILE.keep-1` up by one (dropping `FILE.keep`) and renames `path`
/// to `FILE.1`; with `keep` 0 it removes `path`. The flight recorder and the audit
/// trail rotate this way.
pub fn rotate(path: &Path, keep: u32) -> io::Result<()> {
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    let oldest = rotated(path, keep);
    if oldest.exists() {
        std::fs::remove_file(&oldest)?;
    }
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            std::fs::rename(&from, rotated(path, n + 1))?;
        }
    }
    std::fs::rename(path, rotated(path, 1))
}
