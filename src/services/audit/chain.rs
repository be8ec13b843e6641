//! One line of the audit trail and the hash chain through the lines.
//!
//! A line is the JSON object `{"seq":…,"ts_ms":…,"kind":…,<fields>,"prev":"<hex>","hash":"<hex>"}`
//! followed by `\n`. `hash` is the SHA-256, in lowercase hex, of the line's exact bytes
//! with its trailing `,"hash":"…"` removed (that is, of the object up to and including
//! `prev`, closed by `}`). `prev` is the previous line's `hash`, and so commits to every
//! byte of it; the first line ever written has `prev` = [`GENESIS`]. Verifying needs no
//! canonical JSON: it hashes the bytes as they are on disk, so a change to any byte,
//! whitespace included, is seen.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Entry;

/// `prev` of the first line of a chain: 64 zeros (no line hashes to it).
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Length of a hash in hex.
pub const HASH_HEX: usize = 64;

/// `,"hash":"` — what precedes the hash at the end of a line.
const HASH_KEY: &str = ",\"hash\":\"";

/// The bytes a line ends with, after its body: `,"hash":"` + 64 hex + `"}`.
const TAIL: usize = HASH_KEY.len() + HASH_HEX + 2;

/// A line before its hash: what the hash covers, in this key order.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    ts_ms: u64,
    #[serde(flatten)]
    entry: &'a Entry,
    prev: &'a str,
}

/// SHA-256 of `bytes`, as lowercase hex.
pub fn hash(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// The line (with its `\n`) for entry `seq`, written at `ts_ms` (unix ms), chained to
/// the line whose hash is `prev`; and its own hash.
///
/// # Errors
///
/// If the entry cannot be serialized (a map key that is not a string: none of ours).
pub fn seal(
    seq: u64,
    ts_ms: u64,
    entry: &Entry,
    prev: &str,
) -> serde_json::Result<(String, String)> {
    let body = serde_json::to_string(&Body {
        seq,
        ts_ms,
        entry,
        prev,
    })?;
    let hash = hash(body.as_bytes());
    // `body` ends with `}`: reopen it for the hash.
    let mut line = String::with_capacity(body.len() + TAIL + 1);
    line.push_str(&body[..body.len() - 1]);
    line.push_str(HASH_KEY);
    line.push_str(&hash);
    line.push_str("\"}\n");
    Ok((line, hash))
}

/// What a line (without its `\n`) says about its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its sequence number.
    pub seq: u64,
    /// The hash it claims for the line before.
    pub prev: String,
    /// Its own hash, recomputed from its bytes and equal to the one it carries.
    pub hash: String,
}

/// Why a line is not a sound link of a chain (its neighbours not considered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not a JSON object.
    #[error("bad JSON: {0}")]
    Json(String),
    /// A field the format requires is missing or of the wrong type.
    #[error("field `{0}` is missing or malformed")]
    Field(&'static str),
    /// The hash is not the last field, as written by nevil.
    #[error("`hash` is not the line's last field as nevil writes it (the line was edited)")]
    Layout,
    /// The bytes do not hash to the hash the line carries.
    #[error("hash mismatch: the line was changed after it was written (tampered)")]
    Tampered,
}

/// Checks one line (without its `\n`): JSON, fields, and that its bytes hash to its
/// `hash`.
///
/// # Errors
///
/// The first [`LineError`] found, in the order of the variants.
pub fn check(line: &str) -> Result<Link, LineError> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| LineError::Json(e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| LineError::Json("not an object".into()))?;
    let seq = obj
        .get("seq")
        .and_then(|v| v.as_u64())
        .ok_or(LineError::Field("seq"))?;
    obj.get("ts_ms")
        .and_then(|v| v.as_u64())
        .ok_or(LineError::Field("ts_ms"))?;
    obj.get("kind")
        .and_then(|v| v.as_str())
        .ok_or(LineError::Field("kind"))?;
    let prev = hex_field(obj, "prev")?;
    let claimed = hex_field(obj, "hash")?;
    if line.len() < TAIL || !line.is_char_boundary(line.len() - TAIL) {
        return Err(LineError::Layout);
    }
    let (body, tail) = line.split_at(line.len() - TAIL);
    if tail != format!("{HASH_KEY}{claimed}\"}}") {
        return Err(LineError::Layout);
    }
    let mut hashed = Sha256::new();
    hashed.update(body.as_bytes());
    hashed.update(b"}");
    let actual = format!("{:x}", hashed.finalize());
    if actual != claimed {
        return Err(LineError::Tampered);
    }
    Ok(Link {
        seq,
        prev,
        hash: actual,
    })
}

fn hex_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &'static str,
) -> Result<String, LineError> {
    obj.get(key)
        .and_then(|v| v.as_str())
        .filter(|s| {
            s.len() == HASH_HEX && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .map(str::to_string)
        .ok_or(LineError::Field(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::audit::ConfigOutcome;

    fn entry() -> Entry {
        Entry::Config {
            generation: 1,
            outcome: ConfigOutcome::Loaded,
            origin: Some("default config".into()),
            keys: vec![],
        }
    }

    #[test]
    fn a_sealed_line_checks_and_carries_its_hash_last() {
        let (line, h) = seal(1, 1_700_000_000_000, &entry(), GENESIS).unwrap();
        assert!(line.ends_with(&format!(",\"hash\":\"{h}\"}}\n")), "{line}");
        assert!(
            line.starts_with("{\"seq\":1,\"ts_ms\":1700000000000,\"kind\":\"config\""),
            "{line}"
        );
        let link = check(line.trim_end()).unwrap();
        assert_eq!(
            link,
            Link {
                seq: 1,
                prev: GENESIS.into(),
                hash: h
            }
        );
    }

    #[test]
    fn any_changed_byte_is_seen() {
        let (line, _) = seal(7, 5, &entry(), GENESIS).unwrap();
        let line = line.trim_end();
        assert_eq!(
            check(&line.replace("\"generation\":1", "\"generation\":2")),
            Err(LineError::Tampered)
        );
        assert_eq!(
            check(&line.replace("\"seq\":7", "\"seq\": 7")),
            Err(LineError::Tampered),
            "whitespace counts"
        );
        assert!(matches!(
            check(&line[..line.len() - 1]),
            Err(LineError::Json(_))
        ));
        assert_eq!(check("{\"seq\":1}"), Err(LineError::Field("ts_ms")));
        // The hash moved before another field: valid JSON, but not nevil's layout.
        let moved = line
            .replacen("{\"seq\":7,", "{", 1)
            .replace("\"}", "\",\"seq\":7}");
        assert_eq!(check(&moved), Err(LineError::Layout));
    }
}
