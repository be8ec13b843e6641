//! An [`ExitReason`] read back from its text (`Display`), as the tree JSON carries it:
//! a group placed in another process reports its tree to the parent as JSON lines.

use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::exit::ExitReason;

/// Text that is no [`ExitReason`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown exit reason {0:?} (expected normal, shutdown, killed, oom, or error/panic/startup failure/quota/oom/node lost: TEXT)")]
pub struct UnknownExitReason(pub String);

impl FromStr for ExitReason {
    type Err = UnknownExitReason;

    /// Parses what `Display` writes: `normal`, `shutdown`, `killed`, `error: …`,
    /// `panic: …`, `startup failure: …`, `quota: …`, `node lost: …`, and `oom` / `oom: …`.
    fn from_str(text: &str) -> Result<Self, UnknownExitReason> {
        match text {
            "normal" => return Ok(Self::Normal),
            "shutdown" => return Ok(Self::Shutdown),
            "killed" => return Ok(Self::Killed),
            "oom" => return Ok(Self::Oom),
            _ => {}
        }
        let (kind, message) = text
            .split_once(": ")
            .ok_or_else(|| UnknownExitReason(text.to_string()))?;
        let message = message.to_string();
        Ok(match kind {
            "error" => Self::Error(message),
            "panic" => Self::Panic(message),
            "startup failure" => Self::StartupFailure(message),
            "quota" => Self::Quota(message),
            "node lost" => Self::NodeLost(message),
            // An OOM kill carries no text of its own; whatever follows is a detail.
            "oom" => Self::Oom,
            _ => return Err(UnknownExitReason(text.to_string())),
        })
    }
}

/// Read back from the text it serializes as.
impl<'de> Deserialize<'de> for ExitReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_from_its_text() {
        let reasons = [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::Killed,
            ExitReason::Error("fault drill: error".into()),
            ExitReason::Panic("boom: it said".into()),
            ExitReason::StartupFailure("no device".into()),
            ExitReason::Quota("cpu 0.9 over limit 0.5 (restart)".into()),
            ExitReason::NodeLost("laptop".into()),
        ];
        for reason in reasons {
            assert_eq!(reason.to_string().parse::<ExitReason>(), Ok(reason.clone()));
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(serde_json::from_str::<ExitReason>(&json).unwrap(), reason);
        }
    }

    #[test]
    fn oom_reads_back_with_or_without_a_detail() {
        assert_eq!("oom".parse(), Ok(ExitReason::Oom));
        assert_eq!("oom: memory.max 64 MiB".parse(), Ok(ExitReason::Oom));
        let json = serde_json::to_string(&ExitReason::Oom).unwrap();
        assert_eq!(
            serde_json::from_str::<ExitReason>(&json).unwrap(),
            ExitReason::Oom
        );
    }

    #[test]
    fn unknown_text_is_named() {
        let e = "exploded".parse::<ExitReason>().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown exit reason \"exploded\""),
            "{e}"
        );
        let e = serde_json::from_str::<ExitReason>("\"melted: down\"").unwrap_err();
        assert!(e.to_string().contains("\"melted: down\""), "{e}");
    }
}
