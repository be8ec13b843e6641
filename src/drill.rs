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
//! | `unplug` | its simulated sensor stops answering: every read fails (sensor drivers only) |
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

use ractor::{ActorCell, ActorProcessingErr};

/// One of the faults of the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Handler panics.
    Panic,
    /// Handler returns `Err`.
    Error,
    /// Actor stops itself normally.
    Exit,
    /// Handler awaits forever.
    Hang,
    /// Handler burns CPU, yielding each millisecond.
    Spin,
    /// Actor allocates and holds ~1 MiB more per 100 ms.
    Leak,
    /// Mailbox receives a flood of messages.
    Flood,
    /// The simulated sensor the driver reads stops answering.
    Unplug,
}

impl Fault {
    /// Every fault, as named on the command line.
    pub const ALL: [(&'static str, Fault); 8] = [
        ("panic", Fault::Panic),
        ("error", Fault::Error),
        ("exit", Fault::Exit),
        ("hang", Fault::Hang),
        ("spin", Fault::Spin),
        ("leak", Fault::Leak),
        ("flood", Fault::Flood),
        ("unplug", Fault::Unplug),
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
        let fault = Fault::ALL
            .iter()
            .find(|(n, _)| *n == fault)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<_> = Fault::ALL.iter().map(|(n, _)| *n).collect();
                err(format!(
                    "unknown fault {fault:?} (expected one of: {})",
                    names.join(", ")
                ))
            })?;
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

/// What a drill sends to the actor it targets. Every robot worker's message type has a
/// variant for it and hands it to [`Ballast::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillMsg {
    /// Misbehave now (the one-shot faults).
    Fault(Fault),
    /// Hold ~1 MiB more (sent every 100 ms by a `leak` drill).
    LeakTick,
    /// One message of a `flood`; costs a little time to handle.
    FloodItem,
}

/// Implements `From<DrillMsg>` for an actor message type with a `Drill(DrillMsg)`
/// variant, so drills can be sent to it.
#[macro_export]
macro_rules! drill_variant {
    ($msg:ty) => {
        impl From<$crate::drill::DrillMsg> for $msg {
            fn from(d: $crate::drill::DrillMsg) -> Self {
                Self::Drill(d)
            }
        }
    };
}

/// Memory a leaking actor holds; part of every robot worker's state.
#[derive(Debug, Default)]
pub struct Ballast(Vec<Box<[u8]>>);

/// How much a `LeakTick` holds.
pub const LEAK_STEP: usize = 1 << 20;
/// How long handling one `FloodItem` takes (busy), so a flood outpaces the handler.
pub const FLOOD_ITEM_COST: Duration = Duration::from_micros(50);

fn burn(d: Duration) {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < d {
        std::hint::spin_loop();
    }
}

impl Ballast {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|b| b.len()).sum()
    }

    /// Carries out a drill message inside the target's handler.
    ///
    /// # Errors
    ///
    /// Returns `Err` for [`Fault::Error`], as the drill asks.
    pub async fn apply(
        &mut self,
        msg: DrillMsg,
        myself: &ActorCell,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DrillMsg::Fault(fault) => {
                tracing::warn!(%fault, "fault drill");
                match fault {
                    Fault::Panic => panic!("fault drill: panic"),
                    Fault::Error => return Err("fault drill: error".into()),
                    Fault::Exit => myself.stop(Some("fault drill: exit".into())),
                    Fault::Hang => std::future::pending::<()>().await,
                    Fault::Spin => loop {
                        burn(Duration::from_millis(1));
                        tokio::task::yield_now().await;
                    },
                    // Driven by their ticks and items, below; an unplug goes to the
                    // simulated device, never to the actor.
                    Fault::Leak | Fault::Flood | Fault::Unplug => {}
                }
            }
            DrillMsg::LeakTick => {
                // Written, so the pages are really held (RSS grows), not just reserved.
                self.0.push(vec![0xa5; LEAK_STEP].into_boxed_slice());
            }
            DrillMsg::FloodItem => burn(FLOOD_ITEM_COST),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let i: Injection = "root/drivers/ultrasonic:hang@1.5".parse().unwrap();
        assert_eq!(i.target, "root/drivers/ultrasonic");
        assert_eq!(i.fault, Fault::Hang);
        assert_eq!(i.at, Duration::from_millis(1500));
        let i: Injection = "motion:panic@0".parse().unwrap();
        assert_eq!((i.target.as_str(), i.fault), ("motion", Fault::Panic));
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
            e.contains("panic, error, exit, hang, spin, leak, flood, unplug"),
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
