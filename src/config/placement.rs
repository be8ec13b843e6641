//! `[placement]`: where each supervisor group runs — in the robot's process (the
//! default), or in a child `nevil` process of its own that the kernel governs.
//!
//! ```toml
//! [placement]
//! behaviours = "process"
//! # or on another host, in `nevil node --name laptop`:
//! # behaviours = "node:laptop"
//! # and, while that node is unreachable, in the robot's process rather than not at all:
//! # behaviours = { node = "laptop", fallback = "local" }
//! # or in the robot's process, migrating to node "laptop" while host CPU or memory has
//! # been critical for 10 s, and back once it has been below critical for 60 s:
//! # behaviours = { migrate_to = "laptop", after_s = 10.0, back_after_s = 60.0 }
//! ```
//!
//! Only a group without safety-critical actors may leave the process: stopping the
//! motors must never depend on a process that can be frozen, throttled or killed, and
//! the motors, their dead-man and the e-stop latch live in the robot's process.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use nevil_actors::quota::Migration;
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
    /// In `nevil node --name NAME`, on another host or this one.
    Node(NodePlacement),
}

/// A group placed on a node: which node, and what runs while it is unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlacement {
    /// The node's name (`nevil node --name NAME`).
    pub name: String,
    /// What the group does while the node is unreachable.
    pub fallback: Fallback,
    /// `Some` for a migratable group (`migrate_to = NAME`): it runs in the robot's
    /// process and moves to the node only under sustained host pressure.
    pub migrate: Option<Migration>,
}

/// When a migratable group moves unless its table says (seed 001's `migrate` action):
/// host CPU or memory critical for `after_s` (0.5–3600, default 10) → to its node;
/// below critical for `back_after_s` (0.5–3600, default 60) → back.
pub const DEFAULT_MIGRATION: Migration = Migration {
    after: Duration::from_secs(10),
    back_after: Duration::from_secs(60),
};

/// Where a node-placed group runs while its node is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// Nowhere: the robot waits for the node, retrying with backoff (the default). The
    /// group's commands stop, so motion's dead-man holds the car.
    #[default]
    Wait,
    /// In the robot's process, until the node is back.
    Local,
}

impl Placement {
    /// `in_process`, `process` or `node:NAME`, as written in the config.
    pub fn as_config(&self) -> String {
        match self {
            Self::InProcess => "in_process".into(),
            Self::Process => "process".into(),
            Self::Node(node) => match (node.migrate, node.fallback) {
                (Some(_), _) => format!("in_process (migrates to node:{})", node.name),
                (None, Fallback::Wait) => format!("node:{}", node.name),
                (None, Fallback::Local) => format!("node:{} (fallback local)", node.name),
            },
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
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Plain(String),
            Table(Table),
        }
        let expected = "(expected \"in_process\", \"process\", \"node:NAME\", \
                        { node = \"NAME\", fallback = \"wait\" | \"local\" } or \
                        { migrate_to = \"NAME\", after_s = S, back_after_s = S })";
        match Written::deserialize(d) {
            Ok(Written::Plain(s)) => match s.as_str() {
                "in_process" => Ok(Self::InProcess),
                "process" => Ok(Self::Process),
                _ => match s.strip_prefix("node:") {
                    Some(name) => Ok(Self::Node(NodePlacement {
                        name: name.to_string(),
                        fallback: Fallback::Wait,
                        migrate: None,
                    })),
                    None => Err(de::Error::custom(format!(
                        "unknown placement {s:?} {expected}"
                    ))),
                },
            },
            Ok(Written::Table(t)) => t.placement().map(Self::Node).map_err(de::Error::custom),
            Err(_) => Err(de::Error::custom(format!("not a placement {expected}"))),
        }
    }
}

/// The table forms: `{ node = "NAME", fallback = "wait" | "local" }` and
/// `{ migrate_to = "NAME", after_s = S, back_after_s = S }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    node: Option<String>,
    fallback: Option<Fallback>,
    migrate_to: Option<String>,
    after_s: Option<f64>,
    back_after_s: Option<f64>,
}

impl Table {
    /// The placement a table writes, or what is wrong with it.
    fn placement(self) -> Result<NodePlacement, String> {
        let seconds = |key: &str, value: Option<f64>, default: Duration| match value {
            None => Ok(default),
            Some(s) if (0.5..=3600.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
            Some(s) => Err(format!("{key} must be between 0.5 and 3600 (is {s})")),
        };
        match (self.node, self.migrate_to) {
            (Some(name), None) => {
                if self.after_s.is_some() || self.back_after_s.is_some() {
                    return Err("after_s and back_after_s go with migrate_to, not node".into());
                }
                Ok(NodePlacement {
                    name,
                    fallback: self.fallback.unwrap_or_default(),
                    migrate: None,
                })
            }
            (None, Some(name)) => {
                if self.fallback.is_some() {
                    return Err("a migratable group has no fallback: it runs in the \
                                robot's process unless it has migrated"
                        .into());
                }
                let default = DEFAULT_MIGRATION;
                Ok(NodePlacement {
                    name,
                    fallback: Fallback::Local,
                    migrate: Some(Migration {
                        after: seconds("after_s", self.after_s, default.after)?,
                        back_after: seconds("back_after_s", self.back_after_s, default.back_after)?,
                    }),
                })
            }
            (Some(_), Some(_)) => Err("give node or migrate_to, not both".into()),
            (None, None) => Err("a placement table needs node or migrate_to".into()),
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

    /// The groups placed on a node, with their node.
    pub fn node_groups(&self) -> impl Iterator<Item = (&str, &NodePlacement)> {
        self.0.iter().filter_map(|(g, p)| match p {
            Placement::Node(node) => Some((g.as_str(), node)),
            _ => None,
        })
    }

    /// Every problem, with its key path: an unknown group, a group with a critical
    /// actor placed out of the process, a node's name that is no key chunk.
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
            if *placement == Placement::InProcess {
                continue;
            }
            if let Some((_, actor)) = HOLDS_CRITICAL.iter().find(|(g, _)| g == group) {
                p.push(
                    key.clone(),
                    format!(
                        "cannot run in another process: it holds the safety-critical \
                         {actor}, and stopping the motors must not depend on another \
                         process (place \"behaviours\" instead)"
                    ),
                );
            }
            if let Placement::Node(node) = placement {
                if let Err(why) = super::network::check_name(&node.name) {
                    p.push(key, format!("node name {why}"));
                }
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
        let p = problems("[placement]\nbehaviours = \"node:lap top\"\n");
        assert!(
            p[0].starts_with("placement.behaviours: node name \"lap top\""),
            "{p:?}"
        );
        let p = problems("[placement]\ncontrol = \"node:laptop\"\n");
        assert!(p[0].starts_with("placement.control: cannot run"), "{p:?}");
        let err = parse("[placement]\nbehaviours = { node = \"x\", fallback = \"maybe\" }\n")
            .unwrap_err();
        assert!(err.contains("not a placement"), "{err}");
    }

    #[test]
    fn a_node_placement_is_written_plain_or_as_a_table() {
        let c = parse("[placement]\nbehaviours = \"node:laptop\"\n").unwrap();
        let node = NodePlacement {
            name: "laptop".into(),
            fallback: Fallback::Wait,
            migrate: None,
        };
        assert_eq!(c.of("behaviours"), Placement::Node(node.clone()));
        assert!(problems("[placement]\nbehaviours = \"node:laptop\"\n").is_empty());
        let c = parse("[placement]\nbehaviours = { node = \"laptop\", fallback = \"local\" }\n")
            .unwrap();
        let local = NodePlacement {
            fallback: Fallback::Local,
            ..node
        };
        assert_eq!(
            c.node_groups().collect::<Vec<_>>(),
            [("behaviours", &local)]
        );
        assert_eq!(
            c.of("behaviours").as_config(),
            "node:laptop (fallback local)"
        );
    }

    #[test]
    fn a_migratable_group_is_a_table_with_its_delays() {
        let c = parse("[placement]\nbehaviours = { migrate_to = \"laptop\", after_s = 2.5 }\n")
            .unwrap();
        let Placement::Node(node) = c.of("behaviours") else {
            panic!("not a node placement: {:?}", c.of("behaviours"));
        };
        assert_eq!(node.name, "laptop");
        let after = node.migrate.unwrap();
        assert_eq!(after.after, Duration::from_millis(2500));
        assert_eq!(after.back_after, DEFAULT_MIGRATION.back_after);
        assert_eq!(
            c.of("behaviours").as_config(),
            "in_process (migrates to node:laptop)"
        );
        for (table, why) in [
            (
                "{ migrate_to = \"l\", after_s = 0.1 }",
                "after_s must be between 0.5 and 3600 (is 0.1)",
            ),
            (
                "{ migrate_to = \"l\", fallback = \"local\" }",
                "a migratable group has no fallback",
            ),
            (
                "{ node = \"l\", back_after_s = 5.0 }",
                "after_s and back_after_s go with migrate_to",
            ),
            (
                "{ node = \"l\", migrate_to = \"l\" }",
                "give node or migrate_to, not both",
            ),
            ("{ }", "needs node or migrate_to"),
        ] {
            let err = parse(&format!("[placement]\nbehaviours = {table}\n")).unwrap_err();
            assert!(err.contains(why), "{table}: {err}");
        }
    }
}
