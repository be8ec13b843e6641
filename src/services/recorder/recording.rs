//! The flight recording format: what the recorder writes and `nevil replay` reads.
//!
//! A file starts with the 8 magic bytes `NEVILREC` and a little-endian `u32` format
//! version, then holds records, each a little-endian `u32` length followed by that many
//! bytes of a bincode-2 (standard config) [`Record`]. A file that ends inside a record —
//! the robot lost power mid-write — yields the records before it and says how many bytes
//! were cut off; anything else malformed is an error naming the file and offset.
//!
//! [`Writer`] rotates: when the current file would pass `max_file_bytes`, it becomes
//! `FILE.1` (the older ones shift to `FILE.2` … `FILE.<keep>`, the oldest is deleted) and
//! a fresh `FILE` starts.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bincode::{Decode, Encode};

use crate::bus::{Battery, Command, Drive, EStop, Line, Range};

const MAGIC: &[u8; 8] = b"NEVILREC";
const VERSION: u32 = 1;
/// No record is anywhere near this; a larger length means a corrupt file.
const MAX_RECORD: u32 = 1 << 20;

/// How records are decoded: bincode's standard configuration (what [`Writer`] encodes
/// with), limited to [`MAX_RECORD`] bytes. bincode allocates for a string or a vector
/// from its length field before reading its bytes, so without the limit a corrupt or
/// hostile length (2^40) aborts the process; with it, the record fails to decode.
fn decoding() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_RECORD as usize }>()
}

/// One bus message as recorded.
#[derive(Debug, Clone, PartialEq, Encode, Decode)]
pub enum Record {
    /// A ranger reading.
    Range(Range),
    /// A grayscale reading.
    Line(Line),
    /// A battery reading.
    Battery(Battery),
    /// A behaviour command.
    Command(Command),
    /// A motion controller output.
    Drive(Drive),
    /// An e-stop change.
    EStop(EStop),
}

/// A recording that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is not a nevil recording, or is corrupt.
    #[error("{path}: {reason} (at byte {offset})")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The records of a recording, and how many trailing bytes were cut off mid-record.
#[derive(Debug)]
pub struct Recording {
    /// Records in the order they were written.
    pub records: Vec<Record>,
    /// Bytes of an incomplete last record (0 for a cleanly closed file).
    pub truncated_bytes: usize,
}

/// Reads a whole recording file.
///
/// # Errors
///
/// [`RecordingError::Io`] when it cannot be read, [`RecordingError::Corrupt`] when it is
/// not a recording or a record does not decode.
pub fn read(path: &Path) -> Result<Recording, RecordingError> {
    let io_err = |source| RecordingError::Io {
        path: path.to_path_buf(),
        source,
    };
    let corrupt = |offset: usize, reason: String| RecordingError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_err)?;
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(corrupt(
            0,
            "not a nevil recording (no NEVILREC header)".into(),
        ));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return Err(corrupt(
            8,
            format!("format version {version}, expected {VERSION}"),
        ));
    }
    let mut records = Vec::new();
    let mut at = 12;
    while at < bytes.len() {
        let Some(len) = bytes.get(at..at + 4) else {
            break;
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        if len > MAX_RECORD {
            return Err(corrupt(at, format!("record length {len} is implausible")));
        }
        let Some(body) = bytes.get(at + 4..at + 4 + len as usize) else {
            break;
        };
        let (record, used) = bincode::decode_from_slice(body, decoding())
            .map_err(|e| corrupt(at, format!("record does not decode: {e}")))?;
        if used != body.len() {
            return Err(corrupt(at, "record has trailing bytes".into()));
        }
        records.push(record);
        at += 4 + len as usize;
    }
    Ok(Recording {
        records,
        truncated_bytes: bytes.len() - at,
    })
}

/// Appends records to a file, rotating it by size.
pub struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    max_file_bytes: u64,
    keep: u32,
}

impl Writer {
    /// Starts a new recording at `path` (an existing file there is rotated away first).
    ///
    /// # Errors
    ///
    /// The OS error if the file cannot be created.
    pub fn create(path: &Path, max_file_bytes: u64, keep: u32) -> io::Result<Self> {
        if path.exists() {
            rotate(path, keep)?;
        }
        let (out, written) = start_file(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            written,
            max_file_bytes,
            keep,
        })
    }

    /// Appends one record.
    ///
    /// # Errors
    ///
    /// The OS error of a failed write or rotation.
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        let body = bincode::encode_to_vec(record, bincode::config::standard())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let size = 4 + body.len() as u64;
        if self.written + size > self.max_file_bytes && self.written > 12 {
            self.out.flush()?;
            rotate(&self.path, self.keep)?;
            (self.out, self.written) = start_file(&self.path)?;
        }
        self.out.write_all(&(body.len() as u32).to_le_bytes())?;
        self.out.write_all(&body)?;
        self.written += size;
        Ok(())
    }

    /// Pushes buffered records to the OS.
    ///
    /// # Errors
    ///
    /// The OS error of a failed write.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn start_file(path: &Path) -> io::Result<(BufWriter<File>, u64)> {
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    Ok((out, 12))
}

/// `FILE.N` for a rotated file.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn rotate(path: &Path, keep: u32) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nevil-rec-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("run.rec")
    }

    fn range(t: u64) -> Record {
        Record::Range(Range {
            t_us: t,
            distance_m: Some(t as f64 / 100.0),
        })
    }

    #[test]
    fn round_trip() {
        let path = tmp("rt");
        let mut w = Writer::create(&path, 1 << 20, 2).unwrap();
        let recs = vec![
            range(1),
            Record::EStop(EStop {
                t_us: 2,
                engaged: true,
                reason: "stale ultrasonic".into(),
            }),
            Record::Line(Line {
                t_us: 3,
                raw: [1, 2, 3],
            }),
        ];
        for r in &recs {
            w.append(r).unwrap();
        }
        w.flush().unwrap();
        let read = read(&path).unwrap();
        assert_eq!(read.records, recs);
        assert_eq!(read.truncated_bytes, 0);
    }

    #[test]
    fn rotates_and_bounds_files() {
        let path = tmp("rot");
        let mut w = Writer::create(&path, 200, 2).unwrap();
        for t in 0..100 {
            w.append(&range(t)).unwrap();
        }
        w.flush().unwrap();
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        for p in [path.clone(), rotated(&path, 1)] {
            assert!(std::fs::metadata(&p).unwrap().len() <= 200);
        }
        let last = read(&path).unwrap().records;
        assert_eq!(last.last(), Some(&range(99)));
    }

    #[test]
    fn truncated_tail_is_tolerated_and_garbage_is_named() {
        let path = tmp("trunc");
        let mut w = Writer::create(&path, 1 << 20, 0).unwrap();
        w.append(&range(1)).unwrap();
        w.append(&range(2)).unwrap();
        w.flush().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        let r = read(&path).unwrap();
        assert_eq!(r.records, vec![range(1)]);
        assert!(r.truncated_bytes > 0);

        std::fs::write(&path, b"hello world, not a recording").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("not a nevil recording"), "{e}");
    }

    /// A record whose e-stop reason claims `claimed` bytes it does not have: 28 bytes in
    /// all for a claim of 2^40.
    fn hostile(claimed: u64) -> Vec<u8> {
        // Record::EStop (variant 5), t_us 0, engaged, then the reason's length as a
        // bincode varint: 0xFD and 8 little-endian bytes.
        let mut body = vec![5, 0, 1, 0xFD];
        body.extend_from_slice(&claimed.to_le_bytes());
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&VERSION.to_le_bytes());
        file.extend_from_slice(&(body.len() as u32).to_le_bytes());
        file.extend_from_slice(&body);
        file
    }

    #[test]
    fn a_length_that_claims_more_than_the_record_holds_is_named_not_allocated() {
        let path = tmp("hostile");
        for claimed in [1 << 40, u64::MAX, u64::from(MAX_RECORD) + 1] {
            let file = hostile(claimed);
            std::fs::write(&path, &file).unwrap();
            let e = read(&path).unwrap_err().to_string();
            assert!(
                e.contains("record does not decode") && e.contains("at byte 12"),
                "{e}"
            );
        }
        assert_eq!(hostile(1 << 40).len(), 28);
    }
}
