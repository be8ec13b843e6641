//! `[placement]`: where each supervisor group runs — in the robot's process (the
//! default), or in a child `nevil` process of its own that the kernel governs.
//!
//! ```toml
//! [placement]
//! behaviours = "process"
//! ```
//!
//! Only a group without safety-critical actors may leave the process: stopping the
//! motors must never depend on a process that can be frozen, throttled or killed, and
//! the motors, their dead-man and the e-stop latch live in the robot's process.

use std::collections::BTreeMap;
use std::fmt;

use nevil_actors::Problems;
use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Where a group runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    /// In the robot's process (the default).
    #[default]
    InProcess,
    /// In a child `nevil` process, in a cgroup of its own.
    Process,
    /// In `nevil node --name NAME` on another host (not built yet: refused by the check).
    Node(String),
}

impl Placement {
    /// `in_process`, `process` or `node:NAME`, as written in the config.
    pub fn as_config(&self) -> String {
        match self {
            Self::InProcess => "in_process".into(),
            Self::Process => "process".into(),
            Self::Node(name) => format!("node:{name}"),
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_config())
    }
}

impl<'de> Deserialize<'de> for Placement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "in_process" => Ok(Self::InProcess),
            "process" => Ok(Self::Process),
            _ => match s.strip_prefix("node:") {
                Some(name) => Ok(Self::Node(name.to_string())),
                None => Err(de::Error::custom(format!(
                    "unknown placement {s:?} (expected \"in_process\", \"process\" or \"node:NAME\")"
                ))),
            },
        }
    }
}

/// The supervisor groups of the robot's tree, by name.
pub const GROUPS: [&str; 5] = ["management", "drivers", "control", "behaviours", "safety"];

/// The groups that hold a safety-critical actor ([`super::CRITICAL`]), and which one:
/// they stay in the robot's process.
const HOLDS_CRITICAL: [(&str, &str); 4] = [
    ("management", "system_monitor"),
    ("drivers", "motors"),
    ("control", "motion"),
    ("safety", "watchdog"),
];

/// `[placement]`: group name → where it runs; a group not named runs in-process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct PlacementConfig(pub BTreeMap<String, Placement>);

impl PlacementConfig {
    /// Where `group` runs.
    pub fn of(&self, group: &str) -> Placement {
        self.0.get(group).cloned().unwrap_or_default()
    }

    /// The groups placed in a process of their own.
    pub fn process_groups(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(|(_, p)| **p == Placement::Process)
            .map(|(g, _)| g.as_str())
    }

    /// Every problem, with its key path: an unknown group, a group with a critical
    /// actor placed out of the process, a node placement (not available yet).
    pub fn check(&self, p: &mut Problems) {
        for (group, placement) in &self.0 {
            let key = format!("placement.{group}");
            if !GROUPS.contains(&group.as_str()) {
                p.push(
                    key,
                    format!(
                        "unknown group {group:?} (expected one of: {})",
                        GROUPS.join(", ")
                    ),
                );
                continue;
            }
            match placement {
                Placement::InProcess => {}
                Placement::Process => {
                    if let Some((_, actor)) = HOLDS_CRITICAL.iter().find(|(g, _)| g == group) {
                        p.push(
                            key,
                            format!(
                                "cannot run in another process: it holds the safety-critical \
                                 {actor}, and stopping the motors must not depend on another \
                                 process (place \"behaviours\" instead)"
                            ),
                        );
                    }
                }
                Placement::Node(name) => p.push(
                    key,
                    format!(
                        "\"node:{name}\": placement on another host is not available in this \
                         version (expected \"in_process\" or \"process\")"
                    ),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<PlacementConfig, String> {
        #[derive(Deserialize)]
        struct Wrap {
            placement: PlacementConfig,
        }
        toml::from_str::<Wrap>(toml)
            .map(|w| w.placement)
            .map_err(|e| e.to_string())
    }

    fn problems(toml: &str) -> Vec<String> {
        let mut p = Problems::default();
        parse(toml).unwrap().check(&mut p);
        p.0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn parses_each_placement() {
        let c = parse("[placement]\nbehaviours = \"process\"\ncontrol = \"in_process\"\n").unwrap();
        assert_eq!(c.of("behaviours"), Placement::Process);
        assert_eq!(c.of("control"), Placement::InProcess);
        assert_eq!(c.of("safety"), Placement::InProcess);
        assert_eq!(c.process_groups().collect::<Vec<_>>(), ["behaviours"]);
        assert!(problems("[placement]\nbehaviours = \"process\"\n").is_empty());
    }

    #[test]
    fn refuses_what_cannot_be_placed_naming_the_key() {
        let err = parse("[placement]\nbehaviours = \"elsewhere\"\n").unwrap_err();
        assert!(err.contains("unknown placement \"elsewhere\""), "{err}");
        let p = problems("[placement]\nplanner = \"process\"\n");
        assert!(
            p[0].starts_with("placement.planner: unknown group"),
            "{p:?}"
        );
        let p = problems("[placement]\ncontrol = \"process\"\n");
        assert!(p[0].starts_with("placement.control: cannot run"), "{p:?}");
        assert!(p[0].contains("motion"), "{p:?}");
        let p = problems("[placement]\nbehaviours = \"node:laptop\"\n");
        assert!(
            p[0].starts_with("placement.behaviours: \"node:laptop\""),
            "{p:?}"
        );
    }
}
