//! The flight recording format: what the recorder writes and `nevil replay` reads.
//!
//! A file starts with the 8 magic bytes `NEVILREC` and a little-endian `u32` format
//! version (2; version 1 files, which hold no [`Record::Tree`], are read too), then holds records, each a little-endian `u32` length followed by that many
//! bytes of a bincode-2 (standard config) [`Record`]. A file that ends inside a record —
//! the robot lost power mid-write — yields the records before it and says how many bytes
//! were cut off; anything else malformed is an error naming the file and offset.
//!
//! [`Reader`] reads a recording as a stream, one record at a time; [`Writer`] appends
//! to one, rotating it by size and syncing it to disk.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use bincode::{Decode, Encode};

mod writer;
pub use writer::{rotate, rotated, sync_dir, Writer};

use crate::bus::{Battery, Command, Drive, EStop, Line, Micros, Range};

const MAGIC: &[u8; 8] = b"NEVILREC";
/// The format written: 2 added [`Record::Tree`] after the bus messages' variants, so a
/// version 1 file decodes unchanged (bincode numbers enum variants in order).
const VERSION: u32 = 2;
/// The versions read.
const READABLE: [u32; 2] = [1, 2];
/// No record is anywhere near this; a larger length means a corrupt file.
const MAX_RECORD: u32 = 1 << 20;

/// How records are decoded: bincode's standard configuration (what [`Writer`] encodes
/// with), limited to [`MAX_RECORD`] bytes. bincode allocates for a string or a vector
/// from its length field before reading its bytes, so without the limit a corrupt or
/// hostile length (2^40) aborts the process; with it, the record fails to decode.
fn decoding() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ MAX_RECORD as usize }>()
}

/// One bus message, or one of the tree's supervision events, as recorded.
///
/// New variants go at the end only: bincode numbers them in order, and older files
/// must keep decoding.
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
    /// Something the supervision tree did (format version 2): not a bus message, so a
    /// replay does not feed it to the nodes.
    Tree(TreeRecord),
}

/// What a supervisor did to an actor, as recorded (from the tree's event feed).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct TreeRecord {
    /// When, on the run's clock (as the bus messages' `t_us`).
    pub t_us: Micros,
    /// What happened.
    pub kind: TreeKind,
    /// The actor's path (for an escalation, the supervisor's).
    pub path: String,
    /// The exit reason, the restart count, or the child that escalated and why.
    pub detail: String,
}

/// The kinds of [`TreeRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum TreeKind {
    /// A new incarnation of the actor started.
    Restart,
    /// An incarnation ended (crash, normal stop, failed start, quota action).
    Exit,
    /// A supervisor exceeded its restart intensity and gave up.
    Escalation,
}

impl TreeKind {
    /// Its name: `restart`, `exit` or `escalation`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Exit => "exit",
            Self::Escalation => "escalation",
        }
    }
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
///
/// Holds every record at once: for tests and small files. `nevil replay` streams with
/// a [`Reader`] instead.
#[derive(Debug)]
pub struct Recording {
    /// Records in the order they were written.
    pub records: Vec<Record>,
    /// Bytes of an incomplete last record (0 for a cleanly closed file).
    pub truncated_bytes: usize,
}

/// Reads a whole recording file into memory (through a [`Reader`]).
///
/// # Errors
///
/// [`RecordingError::Io`] when it cannot be read, [`RecordingError::Corrupt`] when it is
/// not a recording or a record does not decode.
pub fn read(path: &Path) -> Result<Recording, RecordingError> {
    let mut reader = Reader::open(path)?;
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record);
    }
    Ok(Recording {
        records,
        truncated_bytes: usize::try_from(reader.truncated_bytes()).unwrap_or(usize::MAX),
    })
}

/// Reads a recording one record at a time from any byte stream, holding at most one
/// record (≤ 1 MiB, and never more than the stream actually has) in memory.
///
/// A stream that ends inside a record — or whose rest is all zero bytes, as a file
/// system may leave after a power cut — ends the records cleanly and reports the
/// cut-off bytes in [`Reader::truncated_bytes`]; anything else malformed is a
/// [`RecordingError::Corrupt`] naming the byte offset.
pub struct Reader<R> {
    inner: R,
    path: PathBuf,
    /// Offset of the end of the last complete record (or header).
    offset: u64,
    started: bool,
    done: bool,
    truncated: u64,
    body: Vec<u8>,
    version: u32,
}

impl Reader<BufReader<File>> {
    /// Opens the recording at `path` (errors name it).
    ///
    /// # Errors
    ///
    /// [`RecordingError::Io`] if it cannot be opened.
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let file = File::open(path).map_err(|source| RecordingError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::named(BufReader::new(file), path))
    }
}

impl<R: Read> Reader<R> {
    /// Reads a recording from `inner` (errors call it `recording`); for bytes in
    /// memory, `Reader::new(&bytes[..])`.
    pub fn new(inner: R) -> Self {
        Self::named(inner, Path::new("recording"))
    }

    /// Reads a recording from `inner`, naming `path` in errors.
    pub fn named(inner: R, path: &Path) -> Self {
        Self {
            inner,
            path: path.to_path_buf(),
            offset: 0,
            started: false,
            done: false,
            truncated: 0,
            body: Vec::new(),
            version: 0,
        }
    }

    /// Bytes of an incomplete (or zero-filled) tail after the last complete record; 0
    /// until the stream has been read to its end, and for a cleanly closed file.
    pub fn truncated_bytes(&self) -> u64 {
        self.truncated
    }

    /// The file's format version (1 or 2), once the header has been read (0 before).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The byte offset just after the last complete record read: where a writer
    /// appending to this file continues.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, `None` at the end of the records.
    ///
    /// # Errors
    ///
    /// [`RecordingError::Io`] on a read error, [`RecordingError::Corrupt`] for a stream
    /// that is not a recording or a record that is malformed before the end.
    pub fn next_record(&mut self) -> Result<Option<Record>, RecordingError> {
        if self.done {
            return Ok(None);
        }
        if !self.started {
            self.header()?;
        }
        let mut len = [0u8; 4];
        let got = self.fill(&mut len)?;
        if got < len.len() {
            return Ok(self.end(got as u64));
        }
        let len = u32::from_le_bytes(len);
        if len == 0 {
            // No record is empty. Zeros to the end are what a power cut can leave.
            let rest = self.zeros_to_end()?;
            return match rest {
                Some(rest) => Ok(self.end(4 + rest)),
                None => Err(self.corrupt("record length 0 before the end of the file".into())),
            };
        }
        if len > MAX_RECORD {
            return Err(self.corrupt(format!("record length {len} is implausible")));
        }
        self.body.clear();
        // Grows only as bytes arrive: a length the stream does not back allocates nothing.
        let read = (&mut self.inner)
            .take(u64::from(len))
            .read_to_end(&mut self.body);
        read.map_err(|e| self.io(e))?;
        if self.body.len() < len as usize {
            return Ok(self.end(4 + self.body.len() as u64));
        }
        match bincode::decode_from_slice::<Record, _>(&self.body, decoding()) {
            Ok((record, used)) if used == self.body.len() => {
                self.offset += 4 + u64::from(len);
                Ok(Some(record))
            }
            Ok(_) => Err(self.corrupt("record has trailing bytes".into())),
            Err(e) => Err(self.corrupt(format!("record does not decode: {e}"))),
        }
    }

    fn header(&mut self) -> Result<(), RecordingError> {
        self.started = true;
        let mut head = [0u8; 12];
        let got = self.fill(&mut head)?;
        if got < head.len() || &head[..8] != MAGIC {
            self.done = true;
            return Err(self.corrupt("not a nevil recording (no NEVILREC header)".into()));
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if !READABLE.contains(&version) {
            self.done = true;
            self.offset = 8;
            return Err(self.corrupt(format!(
                "format version {version}, expected one of {READABLE:?}"
            )));
        }
        self.version = version;
        self.offset = 12;
        Ok(())
    }

    /// Reads into `buf` until it is full or the stream ends; how many bytes it got.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, RecordingError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(got)
    }

    /// `Some(n)` if the rest of the stream is `n` zero bytes, `None` at a non-zero byte.
    fn zeros_to_end(&mut self) -> Result<Option<u64>, RecordingError> {
        let mut buf = [0u8; 4096];
        let mut n = 0u64;
        loop {
            let got = self.fill(&mut buf)?;
            if buf[..got].iter().any(|b| *b != 0) {
                return Ok(None);
            }
            n += got as u64;
            if got < buf.len() {
                return Ok(Some(n));
            }
        }
    }

    /// The end of the records, with `cut` bytes of an incomplete tail after them.
    fn end(&mut self, cut: u64) -> Option<Record> {
        self.done = true;
        self.truncated = cut;
        None
    }

    fn corrupt(&mut self, reason: String) -> RecordingError {
        self.done = true;
        RecordingError::Corrupt {
            path: self.path.clone(),
            offset: self.offset,
            reason,
        }
    }

    fn io(&mut self, source: io::Error) -> RecordingError {
        self.done = true;
        RecordingError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Record, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
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
            w.write(r).unwrap();
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
            w.write(&range(t)).unwrap();
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
        w.write(&range(1)).unwrap();
        w.write(&range(2)).unwrap();
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

    fn records(bytes: &[u8]) -> (Vec<Record>, u64) {
        let mut reader = Reader::new(bytes);
        let records = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
        (records, reader.truncated_bytes())
    }

    #[test]
    fn the_reader_streams_from_bytes_and_stops_at_a_torn_tail() {
        let path = tmp("stream");
        let mut w = Writer::create(&path, 1 << 20, 0).unwrap();
        for t in 0..5 {
            w.write(&range(t)).unwrap();
        }
        w.flush().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(records(&bytes), ((0..5).map(range).collect(), 0));
        // Cut anywhere inside the last record: the four before it, the rest reported.
        let last = records(&bytes[..bytes.len() - 1]);
        assert_eq!(last.0.len(), 4);
        assert!(last.1 > 0);
        let record_len = (bytes.len() - 12) / 5;
        for cut in 1..record_len {
            let (recs, torn) = records(&bytes[..bytes.len() - cut]);
            assert_eq!(recs.len(), 4, "cut {cut}");
            assert_eq!(torn as usize, record_len - cut, "cut {cut}");
        }
    }

    #[test]
    fn a_zero_filled_tail_is_a_torn_tail_but_zeros_before_data_are_garbage() {
        let path = tmp("zeros");
        let mut w = Writer::create(&path, 1 << 20, 0).unwrap();
        w.write(&range(1)).unwrap();
        w.flush().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0; 5000]);
        assert_eq!(records(&bytes), (vec![range(1)], 5000));

        let good = bytes.len() - 5000;
        bytes.push(7);
        let e = Reader::new(&bytes[..])
            .collect::<Result<Vec<_>, _>>()
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("at byte {good}")), "{e}");
    }

    #[test]
    fn garbage_between_records_is_an_error_at_its_offset() {
        let path = tmp("garbage");
        let mut w = Writer::create(&path, 1 << 20, 0).unwrap();
        w.write(&range(1)).unwrap();
        w.flush().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len();
        bytes.extend_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
        bytes.extend_from_slice(&std::fs::read(&path).unwrap()[12..]);
        let mut reader = Reader::new(&bytes[..]);
        assert_eq!(reader.next_record().unwrap(), Some(range(1)));
        let e = reader.next_record().unwrap_err().to_string();
        assert!(
            e.contains("record does not decode") && e.contains(&format!("at byte {at}")),
            "{e}"
        );
        // It does not go on after an error.
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn append_continues_the_file_without_rotating() {
        let path = tmp("append");
        let mut w = Writer::create(&path, 1 << 20, 2).unwrap();
        w.write(&range(1)).unwrap();
        w.write(&range(2)).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut w = Writer::append(&path, 1 << 20, 2).unwrap();
        w.write(&range(3)).unwrap();
        w.sync().unwrap();
        assert_eq!(w.rotations(), 0);
        assert!(!rotated(&path, 1).exists());
        let r = read(&path).unwrap();
        assert_eq!(r.records, vec![range(1), range(2), range(3)]);
        assert_eq!(r.truncated_bytes, 0);
        assert_eq!(w.file_bytes(), std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn append_after_a_torn_record_cuts_it_off_first() {
        let path = tmp("append-torn");
        let mut w = Writer::create(&path, 1 << 20, 2).unwrap();
        w.write(&range(1)).unwrap();
        w.write(&range(2)).unwrap();
        w.flush().unwrap();
        drop(w);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 2).unwrap();
        let mut w = Writer::append(&path, 1 << 20, 2).unwrap();
        w.write(&range(3)).unwrap();
        w.flush().unwrap();
        let r = read(&path).unwrap();
        assert_eq!(r.records, vec![range(1), range(3)]);
        assert_eq!(r.truncated_bytes, 0);
    }

    #[test]
    fn append_to_a_missing_or_foreign_file_starts_afresh() {
        let path = tmp("append-foreign");
        let mut w = Writer::append(&path, 1 << 20, 2).unwrap();
        w.write(&range(1)).unwrap();
        w.flush().unwrap();
        assert_eq!(read(&path).unwrap().records, vec![range(1)]);

        std::fs::write(&path, b"someone else's file, not a recording").unwrap();
        let mut w = Writer::append(&path, 1 << 20, 2).unwrap();
        w.write(&range(2)).unwrap();
        w.flush().unwrap();
        assert_eq!(read(&path).unwrap().records, vec![range(2)]);
        // The foreign file is kept, rotated away.
        assert_eq!(
            std::fs::read(rotated(&path, 1)).unwrap(),
            b"someone else's file, not a recording"
        );
    }

    #[test]
    fn rotation_syncs_the_file_it_rotates_away() {
        let path = tmp("rot-sync");
        let mut w = Writer::create(&path, 200, 3).unwrap();
        let mut seen = 0;
        for t in 0..100 {
            let (rotations, syncs) = (w.rotations(), w.syncs());
            w.write(&range(t)).unwrap();
            if w.rotations() > rotations {
                // Synced (once) before the rename.
                assert_eq!(w.syncs(), syncs + 1);
                seen += 1;
            } else {
                assert_eq!(w.syncs(), syncs);
            }
        }
        assert!(seen >= 3, "{seen} rotations");
        // Every rotated file is complete: nothing was left in a buffer.
        for n in 1..=3 {
            let r = read(&rotated(&path, n)).unwrap();
            assert!(!r.records.is_empty());
            assert_eq!(r.truncated_bytes, 0);
        }
    }

    /// A file as format version 1 wrote it: the header with version 1, then `records`.
    fn v1_file(records: &[Record]) -> Vec<u8> {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&1u32.to_le_bytes());
        for r in records {
            let body = bincode::encode_to_vec(r, bincode::config::standard()).unwrap();
            file.extend_from_slice(&(body.len() as u32).to_le_bytes());
            file.extend_from_slice(&body);
        }
        file
    }

    fn tree(t: u64) -> Record {
        Record::Tree(TreeRecord {
            t_us: t,
            kind: TreeKind::Restart,
            path: "root/control/motion".into(),
            detail: "restart 1".into(),
        })
    }

    #[test]
    fn version_1_files_still_read_and_version_2_adds_tree_records() {
        let old = vec![
            range(1),
            Record::EStop(EStop {
                t_us: 2,
                engaged: true,
                reason: "shutdown".into(),
            }),
        ];
        let v1 = v1_file(&old);
        let mut reader = Reader::new(&v1[..]);
        let got = reader.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!((got, reader.version()), (old.clone(), 1));

        let path = tmp("v2");
        let mut w = Writer::create(&path, 1 << 20, 0).unwrap();
        let new = vec![range(1), tree(2), old[1].clone()];
        for r in &new {
            w.write(r).unwrap();
        }
        w.flush().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[8..12], 2u32.to_le_bytes());
        assert_eq!(read(&path).unwrap().records, new);

        // Neither an unknown version nor version 0 is taken for one.
        for version in [0u32, 3] {
            let mut file = bytes.clone();
            file[8..12].copy_from_slice(&version.to_le_bytes());
            let e = Reader::new(&file[..])
                .next_record()
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("format version {version}")), "{e}");
        }
    }

    #[test]
    fn a_version_1_file_is_rotated_away_not_continued() {
        let path = tmp("append-v1");
        let v1 = v1_file(&[range(1)]);
        std::fs::write(&path, &v1).unwrap();
        let mut w = Writer::append(&path, 1 << 20, 2).unwrap();
        w.write(&tree(2)).unwrap();
        w.flush().unwrap();
        assert_eq!(read(&path).unwrap().records, vec![tree(2)]);
        assert_eq!(std::fs::read(rotated(&path, 1)).unwrap(), v1);
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
