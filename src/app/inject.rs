//! Fault drills: `--inject ACTOR:FAULT@SECS` makes a robot actor misbehave on purpose, so
//! operators and tests can watch supervision and safety respond on the real tree.
//!
//! | fault | what the actor does |
//! |---|---|
//! | `panic` | its handler panics |
//! | `error` | its handler returns `Err` |
//! | `exit` | it stops itself normally |
//! | `hang` | its handler awaits forever (it stops handling messages) |
//! | `spin` | its handler burns CPU, yielding every millisecond, forever |
//! | `leak` | it allocates and holds ~1 MiB more every 100 ms |
//! | `flood` | its mailbox receives messages faster than it handles them |
//! | `busy` | its handler spins forever without ever yielding (only a process placement stops it) |
//! | `unplug` | its simulated sensor stops answering: every read fails (sensor drivers only) |
//!
//! Every fault but `unplug` belongs to the actor system ([`nevil_actors::fault`]): it is
//! injected through the tree ([`nevil_actors::TreeView::inject`]) and carried out by the
//! worker's supervision wrapper, so no actor's message type knows of drills. A worker is
//! flooded with the messages its `ChildSpec::flood` makes.
//!
//! A drill targets one incarnation: after that incarnation ends (restarted, say), the
//! leak and the flood stop — a restart is how the robot recovers from them. `unplug`
//! acts on the device, not the actor ([`crate::hw::sim::Sim::unplug`]), so it outlives
//! restarts; it applies to the sensor drivers (`ultrasonic`, `grayscale`, `battery`) on
//! the simulated backend only. Targets are workers, named by name or path; an unknown
//! target or fault, or an `unplug` the run cannot carry out, is refused before start.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One of the faults of the module docs: the actor system's own, which any worker can
/// commit ([`nevil_actors::fault`]), or the robot's `unplug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A fault the worker commits itself, injected through the tree.
    Actor(nevil_actors::Fault),
    /// The simulated sensor the driver reads stops answering.
    Unplug,
}

impl Fault {
    /// The command-line name of `unplug`.
    const UNPLUG: &'static str = "unplug";

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Actor(fault) => fault.name(),
            Self::Unplug => Self::UNPLUG,
        }
    }

    /// Every fault's command-line name.
    pub fn names() -> impl Iterator<Item = &'static str> {
        nevil_actors::Fault::ALL
            .iter()
            .map(|(n, _)| *n)
            .chain([Self::UNPLUG])
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = String;

    /// A fault by its command-line name; the error says which names there are.
    fn from_str(name: &str) -> Result<Self, String> {
        if name == Self::UNPLUG {
            return Ok(Self::Unplug);
        }
        name.parse().map(Self::Actor).map_err(|_| {
            let names: Vec<_> = Self::names().collect();
            format!(
                "unknown fault {name:?} (expected one of: {})",
                names.join(", ")
            )
        })
    }
}

/// A parsed `--inject ACTOR:FAULT@SECS`.
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    /// The actor's name or path.
    pub target: String,
    /// What to do to it.
    pub fault: Fault,
    /// When, after start.
    pub at: Duration,
}

/// The latest `--inject …@SECS`: one day after start, in seconds.
pub const MAX_INJECT_AT_S: f64 = 86_400.0;

/// A malformed `--inject` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--inject {spec:?}: {reason}")]
pub struct InjectError {
    /// The value as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Injection {
    type Err = InjectError;

    fn from_str(spec: &str) -> Result<Self, InjectError> {
        let err = |reason: String| InjectError {
            spec: spec.to_string(),
            reason,
        };
        let (target, rest) = spec
            .split_once(':')
            .ok_or_else(|| err("expected ACTOR:FAULT@SECS".into()))?;
        let (fault, secs) = rest
            .split_once('@')
            .ok_or_else(|| err("expected ACTOR:FAULT@SECS (missing @SECS)".into()))?;
        if target.is_empty() {
            return Err(err("the actor is empty".into()));
        }
        let fault = fault.parse::<Fault>().map_err(err)?;
        let at = secs
            .parse::<f64>()
            .ok()
            .filter(|s| (0.0..=MAX_INJECT_AT_S).contains(s))
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| {
                err(format!(
                    "bad time {secs:?} (seconds after start, >= 0 and at most \
                     {MAX_INJECT_AT_S}: one day)"
                ))
            })?;
        Ok(Self {
            target: target.to_string(),
            fault,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nevil_actors::Fault as ActorFault;

    #[test]
    fn parses_specs() {
        let i: Injection = "root/drivers/ultrasonic:hang@1.5".parse().unwrap();
        assert_eq!(i.target, "root/drivers/ultrasonic");
        assert_eq!(i.fault, Fault::Actor(ActorFault::Hang));
        assert_eq!(i.at, Duration::from_millis(1500));
        let i: Injection = "motion:panic@0".parse().unwrap();
        assert_eq!(
            (i.target.as_str(), i.fault),
            ("motion", Fault::Actor(ActorFault::Panic))
        );
        let i: Injection = "ultrasonic:unplug@2".parse().unwrap();
        assert_eq!((i.target.as_str(), i.fault), ("ultrasonic", Fault::Unplug));
        assert_eq!(Fault::Unplug.to_string(), "unplug");
    }

    #[test]
    fn rejects_bad_specs_clearly() {
        let e = "motion:melt@1"
            .parse::<Injection>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown fault \"melt\""), "{e}");
        assert!(
            e.contains("panic, error, exit, hang, spin, leak, flood, busy, unplug"),
            "{e}"
        );
        let e = "motion:panic".parse::<Injection>().unwrap_err().to_string();
        assert!(e.contains("missing @SECS"), "{e}");
        let e = "motion:panic@-1"
            .parse::<Injection>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad time"), "{e}");
        for secs in ["1e20", "inf", "NaN", "-0.5", "86400.1"] {
            let e = format!("motion:panic@{secs}")
                .parse::<Injection>()
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("bad time \"{secs}\"")) && e.contains("at most 86400"),
                "{e}"
            );
        }
        let last: Injection = "motion:panic@86400".parse().unwrap();
        assert_eq!(last.at, Duration::from_secs(86_400));
        assert!("nocolon".parse::<Injection>().is_err());
        assert!(":panic@1".parse::<Injection>().is_err());
    }
}
