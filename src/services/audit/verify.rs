//! `nevil audit verify`: reads a trail and its rotated files, oldest first, as one
//! chain, and names the first line that breaks it.
//!
//! Checked for each line, in this order: it is complete (the file does not end inside
//! it: a torn line, as after a power cut, is *truncation*); it is a JSON object with the
//! trail's fields; its bytes hash to its `hash` (else it was *tampered*); its `seq`
//! follows the previous line's (a jump means lines were removed, a step back that they
//! were reordered or repeated); its `prev` is the previous line's `hash` (else the chain
//! is *broken*: a line before it was replaced, hash and all). The chain's first line
//! must have `prev` = [`GENESIS`] if its `seq` is 1; a later `seq` means older files
//! were rotated away, and the chain is checked from there.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::chain::{self, LineError, GENESIS};
use super::writer::rotated;

/// Longest line read: an audit line is a few hundred bytes; this bounds memory on a
/// hostile file.
pub const MAX_LINE: u64 = 1 << 20;

/// A chain found intact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intact {
    /// The files read, oldest first.
    pub files: Vec<PathBuf>,
    /// Lines checked.
    pub lines: u64,
    /// The first line's `seq` (1 unless older files were rotated away).
    pub first_seq: Option<u64>,
    /// The last line's `seq` and hash: keep them elsewhere to detect lines cut from the
    /// end later.
    pub last: Option<(u64, String)>,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The file ends inside this line.
    #[error("truncated: the last line is incomplete ({bytes} bytes without a newline), as after a power cut")]
    Truncated {
        /// Bytes of the incomplete line.
        bytes: u64,
    },
    /// Longer than [`MAX_LINE`].
    #[error("longer than {MAX_LINE} bytes: not an audit line")]
    TooLong,
    /// Not UTF-8 text.
    #[error("bad JSON: not UTF-8 text")]
    NotUtf8,
    /// The line itself is unsound.
    #[error(transparent)]
    Line(#[from] LineError),
    /// `seq` jumps forward.
    #[error("sequence gap: seq {found} follows {before} (lines removed or reordered)")]
    Gap {
        /// The previous line's seq.
        before: u64,
        /// This line's.
        found: u64,
    },
    /// `seq` does not move forward.
    #[error("sequence goes back: seq {found} follows {before} (lines reordered or repeated)")]
    Backwards {
        /// The previous line's seq.
        before: u64,
        /// This line's.
        found: u64,
    },
    /// `prev` is not the previous line's hash.
    #[error("broken chain: prev does not match the hash of the line before (a line before it was replaced)")]
    Link,
    /// The chain starts at seq 1 with a `prev` other than genesis.
    #[error("broken chain: seq 1 must have the genesis prev")]
    Genesis,
}

/// The first line that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: line {line}: {problem}", file.display())]
pub struct Broken {
    /// Its file.
    pub file: PathBuf,
    /// Its line number in that file, from 1.
    pub line: u64,
    /// What is wrong.
    pub problem: Problem,
}

/// Why verification could not say intact.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A line breaks the chain.
    #[error(transparent)]
    Broken(#[from] Broken),
}

/// `path`'s rotated files that exist (`path.n` … `path.1`), then `path`: oldest first.
pub fn chain_files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| rotated(path, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_path_buf());
    files
}

/// Verifies the trail at `path` with its rotated files ([`chain_files`]).
///
/// # Errors
///
/// [`VerifyError::Io`] if a file cannot be read; [`VerifyError::Broken`] naming the
/// first bad line.
pub fn verify(path: &Path) -> Result<Intact, VerifyError> {
    let files = chain_files(path);
    let mut state = Intact {
        files: files.clone(),
        lines: 0,
        first_seq: None,
        last: None,
    };
    for file in &files {
        let reader = File::open(file).map_err(|source| VerifyError::Io {
            path: file.clone(),
            source,
        })?;
        verify_file(file, BufReader::new(reader), &mut state)?;
    }
    Ok(state)
}

fn verify_file(
    path: &Path,
    mut reader: impl BufRead,
    state: &mut Intact,
) -> Result<(), VerifyError> {
    let mut buf = Vec::new();
    for number in 1.. {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|source| VerifyError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            return Ok(());
        }
        let broken = |problem| Broken {
            file: path.to_path_buf(),
            line: number,
            problem,
        };
        let Some(line) = buf.strip_suffix(b"\n") else {
            let problem = if n as u64 > MAX_LINE {
                Problem::TooLong
            } else {
                Problem::Truncated { bytes: n as u64 }
            };
            return Err(broken(problem).into());
        };
        let line = std::str::from_utf8(line).map_err(|_| broken(Problem::NotUtf8))?;
        let link = chain::check(line).map_err(|e| broken(e.into()))?;
        match &state.last {
            None if link.seq == 1 && link.prev != GENESIS => {
                return Err(broken(Problem::Genesis).into())
            }
            None => state.first_seq = Some(link.seq),
            Some((before, hash)) => {
                let before = *before;
                if link.seq > before + 1 {
                    return Err(broken(Problem::Gap {
                        before,
                        found: link.seq,
                    })
                    .into());
                }
                if link.seq <= before {
                    return Err(broken(Problem::Backwards {
                        before,
                        found: link.seq,
                    })
                    .into());
                }
                if &link.prev != hash {
                    return Err(broken(Problem::Link).into());
                }
            }
        }
        state.lines += 1;
        state.last = Some((link.seq, link.hash));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::audit::writer::Trail;
    use crate::services::audit::Entry;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nevil-audit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("audit.jsonl")
    }

    fn restart(n: u64) -> Entry {
        Entry::Restart {
            path: "root/drivers/grayscale".into(),
            restarts: n,
        }
    }

    /// A trail of `n` restart lines at `path` (in one file, unless `max` is small).
    fn write(path: &Path, n: u64, max: u64, keep: u32) {
        let mut trail = Trail::open(path, max, keep).unwrap();
        for i in 0..n {
            trail.append(1_000 + i, &restart(i)).unwrap();
        }
        trail.sync().unwrap();
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn rewrite(path: &Path, lines: &[String]) {
        std::fs::write(
            path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
    }

    fn broken(path: &Path) -> Broken {
        match verify(path) {
            Err(VerifyError::Broken(b)) => b,
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    #[test]
    fn an_untouched_trail_is_intact() {
        let path = tmp("intact");
        write(&path, 5, 1 << 20, 0);
        let intact = verify(&path).unwrap();
        assert_eq!(intact.lines, 5);
        assert_eq!(intact.first_seq, Some(1));
        assert_eq!(intact.last.as_ref().map(|l| l.0), Some(5));
        assert!(lines(&path)[0].contains(GENESIS));
    }

    #[test]
    fn a_tampered_field_is_named_by_its_line() {
        let path = tmp("tamper");
        write(&path, 5, 1 << 20, 0);
        let mut l = lines(&path);
        l[2] = l[2].replace("\"restarts\":2", "\"restarts\":9");
        rewrite(&path, &l);
        let b = broken(&path);
        assert_eq!((b.line, b.problem), (3, Problem::Line(LineError::Tampered)));
    }

    #[test]
    fn a_line_rewritten_with_a_fresh_hash_breaks_the_next_link() {
        let path = tmp("forge");
        write(&path, 5, 1 << 20, 0);
        let mut l = lines(&path);
        let link = chain::check(&l[1]).unwrap();
        let (forged, _) = chain::seal(2, 0, &restart(42), &link.prev).unwrap();
        l[1] = forged.trim_end().to_string();
        rewrite(&path, &l);
        let b = broken(&path);
        assert_eq!((b.line, b.problem), (3, Problem::Link));
    }

    #[test]
    fn a_deleted_line_is_a_sequence_gap() {
        let path = tmp("delete");
        write(&path, 5, 1 << 20, 0);
        let mut l = lines(&path);
        l.remove(1);
        rewrite(&path, &l);
        let b = broken(&path);
        assert_eq!(
            (b.line, b.problem),
            (
                2,
                Problem::Gap {
                    before: 1,
                    found: 3
                }
            )
        );
    }

    #[test]
    fn reordered_lines_are_named() {
        let path = tmp("reorder");
        write(&path, 5, 1 << 20, 0);
        let mut l = lines(&path);
        l.swap(2, 3);
        rewrite(&path, &l);
        let b = broken(&path);
        assert_eq!(
            (b.line, b.problem),
            (
                3,
                Problem::Gap {
                    before: 2,
                    found: 4
                }
            )
        );
        // Swapping the first line away shows as a chain not starting at genesis.
        let mut l = lines(&path);
        l.swap(0, 1);
        rewrite(&path, &l);
        let b = broken(&path);
        assert_eq!(
            (b.line, b.problem),
            (
                2,
                Problem::Backwards {
                    before: 2,
                    found: 1
                }
            )
        );
    }

    #[test]
    fn a_torn_last_line_is_truncation_and_garbage_is_bad_json() {
        let path = tmp("torn");
        write(&path, 3, 1 << 20, 0);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 10).unwrap();
        let b = broken(&path);
        assert_eq!(b.line, 3);
        assert!(matches!(b.problem, Problem::Truncated { .. }), "{b}");
        assert!(b.to_string().contains("line 3: truncated"), "{b}");

        std::fs::write(&path, "hello\n").unwrap();
        let b = broken(&path);
        assert_eq!(b.line, 1);
        assert!(b.to_string().contains("bad JSON"), "{b}");
        std::fs::write(&path, [0xffu8, b'\n']).unwrap();
        assert_eq!(broken(&path).problem, Problem::NotUtf8);
        std::fs::write(&path, vec![b'x'; MAX_LINE as usize + 10]).unwrap();
        assert_eq!(broken(&path).problem, Problem::TooLong);
    }

    #[test]
    fn an_empty_trail_is_intact_and_a_missing_one_is_an_io_error() {
        let path = tmp("empty");
        std::fs::write(&path, "").unwrap();
        assert_eq!(verify(&path).unwrap().lines, 0);
        assert!(matches!(
            verify(&path.with_extension("nope")),
            Err(VerifyError::Io { .. })
        ));
    }

    #[test]
    fn rotation_keeps_one_chain_across_files() {
        let path = tmp("rotate");
        write(&path, 60, 4096, 2);
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        for p in chain_files(&path) {
            assert!(
                std::fs::metadata(&p).unwrap().len() <= 4096,
                "{}",
                p.display()
            );
        }
        let intact = verify(&path).unwrap();
        assert_eq!(intact.files.len(), 3);
        assert_eq!(intact.last.as_ref().map(|l| l.0), Some(60));
        let first = intact.first_seq.unwrap();
        assert!(first > 1, "the oldest file was rotated away");
        assert_eq!(intact.lines, 60 - first + 1);
        // The newest file's first line links to the rotated file's last.
        let mut l = lines(&path);
        l[0] = l[0].replace("\"restarts\":", "\"restarts\":1");
        rewrite(&path, &l);
        let b = broken(&path);
        assert_eq!((b.file, b.line), (path.clone(), 1));
    }

    #[test]
    fn a_reopened_trail_continues_its_chain() {
        let path = tmp("reopen");
        write(&path, 3, 1 << 20, 0);
        write(&path, 2, 1 << 20, 0);
        let intact = verify(&path).unwrap();
        assert_eq!((intact.lines, intact.first_seq), (5, Some(1)));
        // After a rotation leaves the current file empty, the chain continues from `.1`.
        std::fs::rename(&path, rotated(&path, 1)).unwrap();
        write(&path, 1, 1 << 20, 1);
        assert_eq!(verify(&path).unwrap().lines, 6);
    }

    #[test]
    fn a_torn_tail_is_cut_off_on_reopen_and_recorded() {
        let path = tmp("recover");
        write(&path, 3, 1 << 20, 0);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"seq\":4,\"ts_m").unwrap();
        assert!(matches!(
            broken(&path).problem,
            Problem::Truncated { bytes: 14 }
        ));
        let trail = Trail::open(&path, 1 << 20, 0).unwrap();
        assert_eq!(trail.next_seq(), 5, "the recovery line took seq 4");
        drop(trail);
        assert_eq!(verify(&path).unwrap().lines, 4);
        assert!(lines(&path)[3].contains("\"kind\":\"recovered\",\"torn_bytes\":14"));
    }

    #[test]
    fn a_file_that_is_not_a_trail_is_refused_at_open() {
        let path = tmp("foreign");
        std::fs::write(&path, "just some log\n").unwrap();
        let e = Trail::open(&path, 1 << 20, 0).err().unwrap().to_string();
        assert!(
            e.contains("cannot continue its chain") && e.contains("bad JSON"),
            "{e}"
        );
    }
}
