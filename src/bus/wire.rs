//! How a bus message travels between processes: a frame of the type's schema version
//! (`u16`, little-endian), the export's sequence number (`u64`, little-endian: the
//! importer counts the gaps as messages lost on the way), then the message in bincode's
//! standard encoding.
//!
//! The frame is read as hostile input: a frame of another schema version, a payload that
//! does not decode, one over [`MAX_FRAME`] bytes or one with bytes left over is refused
//! with a [`FrameError`], never a panic.

use bincode::{Decode, Encode};

use super::{Battery, Command, Drive, EStop, Line, Range};

/// The largest frame accepted or sent, in bytes: far above any bus message (the
/// largest, an [`EStop`] with its reason, is tens of bytes), small enough that a
/// hostile length prefix cannot make the decoder allocate much.
pub const MAX_FRAME: usize = 4096;

/// A message type that may cross the bridge: its schema version travels with every
/// message.
pub trait Wire: Encode + Decode<()> + Clone + Send + Sync + 'static {
    /// Bumped whenever the type's encoding changes; a message of another version is
    /// dropped and counted.
    const SCHEMA: u16;
}

impl Wire for Range {
    const SCHEMA: u16 = 1;
}
impl Wire for Line {
    const SCHEMA: u16 = 1;
}
impl Wire for Battery {
    const SCHEMA: u16 = 1;
}
impl Wire for Command {
    const SCHEMA: u16 = 1;
}
impl Wire for Drive {
    const SCHEMA: u16 = 1;
}
impl Wire for EStop {
    const SCHEMA: u16 = 1;
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Why a frame was refused. [`FrameError::reason`] is its metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame carries another schema version than this build's.
    #[error("schema version {got}, expected {want}")]
    Schema {
        /// The version in the frame.
        got: u16,
        /// This build's [`Wire::SCHEMA`].
        want: u16,
    },
    /// The frame is too short, too long, or its payload does not decode to the type.
    #[error("undecodable frame: {0}")]
    Decode(String),
}

impl FrameError {
    /// The `reason` label of `nevil_bridge_rejected_total`: `schema` or `decode`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Schema { .. } => "schema",
            Self::Decode(_) => "decode",
        }
    }
}

/// The bytes before a frame's message: schema version and sequence number.
pub const HEADER: usize = 2 + 8;

/// The frame of `msg`, the `seq`th its export sends: its schema version, its sequence
/// number, then its encoding. `None` only if the encoding exceeds [`MAX_FRAME`] (no bus
/// message does).
pub fn encode<T: Wire>(msg: &T, seq: u64) -> Option<Vec<u8>> {
    let mut frame = Vec::with_capacity(64);
    frame.extend_from_slice(&T::SCHEMA.to_le_bytes());
    frame.extend_from_slice(&seq.to_le_bytes());
    bincode::encode_into_std_write(msg, &mut frame, config()).ok()?;
    (frame.len() <= MAX_FRAME).then_some(frame)
}

/// The sequence number and message in `frame`, if it is one of this build's `T`.
///
/// # Errors
///
/// [`FrameError::Schema`] for another schema version; [`FrameError::Decode`] for a frame
/// that is too short or too long, does not decode, or has bytes left over.
pub fn decode<T: Wire>(frame: &[u8]) -> Result<(u64, T), FrameError> {
    if frame.len() > MAX_FRAME {
        return Err(FrameError::Decode(format!(
            "{} bytes, over the {MAX_FRAME}-byte limit",
            frame.len()
        )));
    }
    let (head, rest) = frame
        .split_first_chunk::<2>()
        .ok_or_else(|| FrameError::Decode(format!("{} bytes, no schema version", frame.len())))?;
    let got = u16::from_le_bytes(*head);
    if got != T::SCHEMA {
        return Err(FrameError::Schema {
            got,
            want: T::SCHEMA,
        });
    }
    let (seq, payload) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| FrameError::Decode(format!("{} bytes, no sequence number", frame.len())))?;
    let (msg, used) = bincode::decode_from_slice(payload, config())
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != payload.len() {
        return Err(FrameError::Decode(format!(
            "{} bytes left over after the message",
            payload.len() - used
        )));
    }
    Ok((u64::from_le_bytes(*seq), msg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Source;

    fn command() -> Command {
        Command {
            t_us: 42,
            source: Source::LineFollower,
            power: 35.5,
            steer_deg: -12.0,
            urgent: true,
        }
    }

    #[test]
    fn a_frame_round_trips() {
        let frame = encode(&command(), 9).unwrap();
        assert_eq!(&frame[..2], &1u16.to_le_bytes());
        assert_eq!(&frame[2..HEADER], &9u64.to_le_bytes());
        assert_eq!(decode::<Command>(&frame).unwrap(), (9, command()));
        let stop = EStop {
            t_us: 7,
            engaged: true,
            reason: "stale ultrasonic".into(),
        };
        assert_eq!(
            decode::<EStop>(&encode(&stop, u64::MAX).unwrap()).unwrap(),
            (u64::MAX, stop)
        );
    }

    #[test]
    fn another_schema_version_is_refused() {
        let mut frame = encode(&command(), 0).unwrap();
        frame[..2].copy_from_slice(&2u16.to_le_bytes());
        let err = decode::<Command>(&frame).unwrap_err();
        assert_eq!(err, FrameError::Schema { got: 2, want: 1 });
        assert_eq!(err.reason(), "schema");
    }

    #[test]
    fn hostile_frames_are_refused_not_panicked_on() {
        let good = encode(&command(), 1).unwrap();
        let mut trailing = good.clone();
        trailing.push(0);
        let huge_string = {
            // An EStop whose reason claims 2^32 bytes.
            let mut f = 1u16.to_le_bytes().to_vec();
            f.extend_from_slice(&0u64.to_le_bytes());
            f.extend_from_slice(&[7, 1, 252, 0, 0, 0, 1]);
            f
        };
        for frame in [
            &[][..],
            &[1][..],
            &good[..good.len() - 1],
            &trailing[..],
            &[1, 0, 0xff, 0xff, 0xff][..],
            &good[..HEADER][..],
            &vec![1; MAX_FRAME + 1][..],
        ] {
            let err = decode::<Command>(frame).unwrap_err();
            assert_eq!(err.reason(), "decode", "{frame:?}: {err}");
        }
        assert_eq!(
            decode::<EStop>(&huge_string).unwrap_err().reason(),
            "decode"
        );
    }
}
