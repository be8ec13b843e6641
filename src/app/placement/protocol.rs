//! The lines a group's process and its parent exchange on the child's stdin and stdout:
//! one JSON object per line. The bus traffic does not pass here (it crosses on the Zenoh
//! bridge); these are the supervision channel: ready, tree reports, fault drills.

use nevil_actors::NodeSnapshot;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The longest line either side accepts: a tree report of a group of a thousand actors
/// fits many times over; anything longer is a broken peer, not a report.
pub(super) const MAX_LINE: usize = 4 << 20;

/// What the group's process tells its parent (on its stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ToParent {
    /// Its tree started and its bridge reached the parent: it is running.
    Ready {
        /// Its process id.
        pid: u32,
    },
    /// Its tree now; the root node has the group's path in the whole tree.
    Tree(Box<NodeSnapshot>),
}

/// What the parent tells the group's process (on its stdin). End of input means: stop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ToChild {
    /// Make the worker at `path` commit the fault named `fault` (a fault drill).
    Inject {
        /// The worker's path in the whole tree.
        path: String,
        /// The fault's name (`panic`, `busy`, ...).
        fault: String,
    },
}

/// A line as JSON with its newline.
pub(super) fn encode<T: Serialize>(msg: &T) -> String {
    // These types always serialize: strings, numbers and a tree snapshot.
    let mut line = serde_json::to_string(msg).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode a placement message");
        String::from("null")
    });
    line.push('\n');
    line
}

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum LineError {
    /// Reading failed.
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    /// The line exceeds [`MAX_LINE`].
    #[error("a line longer than {MAX_LINE} bytes")]
    TooLong,
    /// The line is no message of the protocol.
    #[error("not a placement message: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Reads the next message from `input`; `Ok(None)` at end of input. A line longer than
/// [`MAX_LINE`] is an error before it is held whole.
pub(super) async fn read<T, R>(input: &mut R, buf: &mut Vec<u8>) -> Result<Option<T>, LineError>
where
    T: for<'de> Deserialize<'de>,
    R: AsyncBufRead + Unpin,
{
    buf.clear();
    loop {
        let chunk = input.fill_buf().await?;
        if chunk.is_empty() {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Ok(Some(serde_json::from_slice(buf)?))
            };
        }
        let (used, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if buf.len() + used > MAX_LINE {
            return Err(LineError::TooLong);
        }
        buf.extend_from_slice(&chunk[..used]);
        input.consume(used);
        if done {
            return Ok(Some(serde_json::from_slice(buf)?));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip_line_by_line() {
        let text = encode(&ToChild::Inject {
            path: "root/control/behaviours/obstacle_avoidance".into(),
            fault: "busy".into(),
        }) + &encode(&ToParent::Ready { pid: 7 });
        let mut input = text.as_bytes();
        let mut buf = Vec::new();
        let first: ToChild = read(&mut input, &mut buf).await.unwrap().unwrap();
        let ToChild::Inject { path, fault } = first;
        assert_eq!(
            (path.as_str(), fault.as_str()),
            ("root/control/behaviours/obstacle_avoidance", "busy")
        );
        let second: ToParent = read(&mut input, &mut buf).await.unwrap().unwrap();
        assert!(matches!(second, ToParent::Ready { pid: 7 }));
        assert!(read::<ToParent, _>(&mut input, &mut buf)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn an_endless_or_foreign_line_is_an_error() {
        let long = vec![b'x'; MAX_LINE + 10];
        let mut input = long.as_slice();
        let mut buf = Vec::new();
        let err = read::<ToParent, _>(&mut input, &mut buf).await.unwrap_err();
        assert!(matches!(err, LineError::TooLong), "{err}");
        let mut input = "{\"nonsense\": 1}\n".as_bytes();
        let err = read::<ToParent, _>(&mut input, &mut buf).await.unwrap_err();
        assert!(matches!(err, LineError::Decode(_)), "{err}");
    }
}
