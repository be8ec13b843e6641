//! Error signatures: what makes two errors "the same error".
//!
//! A signature is the exit kind, the actor's path and the message with its variable parts
//! replaced (seed `000_…`'s `_create_error_signature` / `_extract_error_key`): ISO
//! timestamps become `<ts>`, UUIDs `<uuid>`, hex ids (`0x…`, or a run of 8+ hex digits
//! mixing letters and digits) `<hex>`, and any other run of digits `N`; the result is cut
//! to [`MAX_MESSAGE_CHARS`]. Timestamps, UUIDs and hex ids are replaced first (the seed
//! replaced digits first, which left its UUID and timestamp patterns nothing to match).
//!
//! The normaliser is hand-written: four fixed ASCII shapes scanned in one pass, where the
//! `regex` crate would add a dependency and four lazily compiled patterns whose
//! construction can fail.

use std::fmt::Write as _;

use nevil_actors::ActorPath;
use serde::Serialize;

/// How many characters of a normalised message a signature keeps (seed 000: 100).
pub const MAX_MESSAGE_CHARS: usize = 100;

/// What identifies one error: its kind, the actor and its normalised message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Signature {
    /// The exit kind (`ExitReason::kind`): `panic`, `error`, `killed`, `startup_failure`,
    /// `quota`, `oom`.
    pub kind: &'static str,
    /// The actor.
    pub path: ActorPath,
    /// The message, normalised.
    pub message: String,
}

impl Signature {
    /// The signature of an error of `kind` at `path` with `message`.
    pub fn new(kind: &'static str, path: &ActorPath, message: &str) -> Self {
        Self {
            kind,
            path: path.clone(),
            message: normalise(message),
        }
    }

    /// A short stable id: 16 hex digits of the 64-bit FNV-1a hash of
    /// `kind|path|message` (the seed used 16 hex digits of an MD5), the same in every run.
    pub fn id(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let parts = [self.kind, self.path.as_str(), &self.message];
        for (i, part) in parts.iter().enumerate() {
            let sep: &[u8] = if i == 0 { b"" } else { b"|" };
            for &byte in sep.iter().chain(part.as_bytes()) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        let mut id = String::with_capacity(16);
        let _ = write!(id, "{hash:016x}");
        id
    }
}

/// `message` with timestamps, UUIDs, hex ids and numbers replaced, at most
/// [`MAX_MESSAGE_CHARS`] long.
///
/// ```
/// use nevil::services::analytics::model::signature::normalise;
/// assert_eq!(
///     normalise("read 12 bytes from 0x14 at 2024-05-01T10:00:00Z"),
///     "read N bytes from <hex> at <ts>"
/// );
/// ```
pub fn normalise(message: &str) -> String {
    let b = message.as_bytes();
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS));
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        let at_word_start = i == 0 || !is_word(b[i - 1]);
        let shaped = if at_word_start {
            timestamp(b, i)
                .map(|n| (n, "<ts>"))
                .or_else(|| uuid(b, i).map(|n| (n, "<uuid>")))
                .or_else(|| hex_id(b, i).map(|n| (n, "<hex>")))
        } else {
            None
        };
        // Matches start at an ASCII byte, so `i` and `copied` stay on char boundaries.
        match shaped.or_else(|| digits(b, i).map(|n| (n, "N"))) {
            Some((len, token)) => {
                out.push_str(&message[copied..i]);
                out.push_str(token);
                i += len;
                copied = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&message[copied..]);
    match out.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => out[..cut].to_string(),
        None => out,
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Whether a match of `len` bytes at `i` ends at a word boundary.
fn ends_word(b: &[u8], i: usize, len: usize) -> bool {
    b.get(i + len).is_none_or(|&c| !is_word(c))
}

/// The length of `shape` at `i`, where `D` is a digit, `H` a hex digit and `S` a date/time
/// separator (`T` or a space); any other byte stands for itself.
fn shaped(b: &[u8], i: usize, shape: &[u8]) -> Option<usize> {
    let s = b.get(i..i + shape.len())?;
    let fits = s.iter().zip(shape).all(|(&c, &p)| match p {
        b'D' => c.is_ascii_digit(),
        b'H' => c.is_ascii_hexdigit(),
        b'S' => c == b'T' || c == b' ',
        _ => c == p,
    });
    fits.then_some(shape.len())
}

fn run(b: &[u8], i: usize, class: fn(&u8) -> bool) -> usize {
    b.get(i..)
        .map_or(0, |s| s.iter().take_while(|c| class(c)).count())
}

/// `YYYY-MM-DD[T ]hh:mm:ss`, then optional `.fraction` and `Z` or `±hh[:]mm`.
fn timestamp(b: &[u8], i: usize) -> Option<usize> {
    let mut n = shaped(b, i, b"DDDD-DD-DDSDD:DD:DD")?;
    if b.get(i + n) == Some(&b'.') {
        let frac = run(b, i + n + 1, u8::is_ascii_digit);
        if frac > 0 {
            n += 1 + frac;
        }
    }
    match b.get(i + n) {
        Some(b'Z') => n += 1,
        Some(b'+' | b'-') => {
            if let Some(m) = shaped(b, i + n + 1, b"DD:DD").or(shaped(b, i + n + 1, b"DDDD")) {
                n += 1 + m;
            }
        }
        _ => {}
    }
    ends_word(b, i, n).then_some(n)
}

/// `8-4-4-4-12` hex digits.
fn uuid(b: &[u8], i: usize) -> Option<usize> {
    let n = shaped(b, i, b"HHHHHHHH-HHHH-HHHH-HHHH-HHHHHHHHHHHH")?;
    ends_word(b, i, n).then_some(n)
}

/// `0x` and hex digits, or 8+ hex digits with at least one letter and one digit.
fn hex_id(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'0') && matches!(b.get(i + 1), Some(b'x' | b'X')) {
        let n = run(b, i + 2, u8::is_ascii_hexdigit);
        return (n > 0 && ends_word(b, i, n + 2)).then_some(n + 2);
    }
    let n = run(b, i, u8::is_ascii_hexdigit);
    let s = &b[i..i + n];
    let mixed = s.iter().any(u8::is_ascii_digit) && s.iter().any(u8::is_ascii_alphabetic);
    (n >= 8 && mixed && ends_word(b, i, n)).then_some(n)
}

fn digits(b: &[u8], i: usize) -> Option<usize> {
    let n = run(b, i, u8::is_ascii_digit);
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_n() {
        assert_eq!(normalise("sensor2 read 1500 mm"), "sensorN read N mm");
        assert_eq!(
            normalise("mailbox 12345 over limit 1000 (restart)"),
            "mailbox N over limit N (restart)"
        );
        assert_eq!(normalise("no digits"), "no digits");
        assert_eq!(normalise(""), "");
    }

    #[test]
    fn timestamps_become_ts() {
        for ts in [
            "2024-05-01T10:00:00",
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00.123456Z",
            "2024-05-01 10:00:00+02:00",
            "2024-05-01T10:00:00-0700",
        ] {
            assert_eq!(
                normalise(&format!("stale since {ts}.")),
                "stale since <ts>.",
                "{ts}"
            );
        }
        // A date alone is only numbers.
        assert_eq!(normalise("on 2024-05-01"), "on N-N-N");
    }

    #[test]
    fn uuids_become_uuid() {
        assert_eq!(
            normalise("request 123e4567-e89b-12d3-A456-426614174000 failed"),
            "request <uuid> failed"
        );
        // One digit short of a UUID: hex id and numbers.
        assert_eq!(
            normalise("x 123e4567-e89b-12d3-a456-42661417400"),
            "x <hex>-eNb-NdN-aN-N"
        );
    }

    #[test]
    fn hex_ids_become_hex() {
        assert_eq!(normalise("i2c-1@0x14 nack"), "iNc-N@<hex> nack");
        assert_eq!(normalise("commit 9f426a9c built"), "commit <hex> built");
        // Words made of hex letters stay; a short mixed run is numbers.
        assert_eq!(normalise("deadbeef facade"), "deadbeef facade");
        assert_eq!(normalise("id ab12"), "id abN");
        // 0x needs digits and a boundary.
        assert_eq!(normalise("0x"), "Nx");
        assert_eq!(normalise("0x1fg"), "NxNfg");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(150);
        assert_eq!(normalise(&long).chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(normalise(&format!("ü{}", "1".repeat(500))), "üN");
    }

    #[test]
    fn same_error_different_numbers_share_a_signature() {
        let p = ActorPath::root("root").child("drivers").child("battery");
        let a = Signature::new(
            "error",
            &p,
            "read failed after 3 tries at 2024-01-01T00:00:00Z",
        );
        let b = Signature::new(
            "error",
            &p,
            "read failed after 17 tries at 2025-12-31T23:59:59Z",
        );
        assert_eq!(a, b);
        assert_eq!(a.id(), b.id());
        assert_eq!(a.id().len(), 16);
        let other_kind = Signature::new("panic", &p, "read failed after 3 tries");
        assert_ne!(a.id(), other_kind.id());
        let other_actor = Signature::new("error", &p.child("x"), &a.message);
        assert_ne!(a.id(), other_actor.id());
    }

    #[test]
    fn ids_are_stable_across_runs() {
        // FNV-1a, not std's randomly seeded hasher: a dashboard can keep an id.
        let s = Signature::new("panic", &ActorPath::root("root"), "boom");
        assert_eq!(s.id(), "a4f06397747e08af");
    }
}
