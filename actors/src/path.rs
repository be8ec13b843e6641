//! Actor paths: where an actor sits in its tree, e.g. `root/io/reader`.
//!
//! Names are scoped to their supervisor: a child is identified by its parent's path plus
//! its own name, never by ractor's process-global registry. Two copies of the same tree in
//! one process therefore never clash, and a restarted child keeps its path.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The slash-separated location of an actor in a supervision tree.
///
/// Cheap to clone (one `Arc`). Built from the root name by [`ActorPath::child`].
///
/// # Examples
///
/// ```
/// use nevil_actors::ActorPath;
/// let io = ActorPath::root("root").child("io");
/// assert_eq!(io.child("reader").as_str(), "root/io/reader");
/// assert_eq!(io.name(), "io");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorPath(Arc<str>);

impl ActorPath {
    /// The path of a tree's root actor.
    pub fn root(name: &str) -> Self {
        Self(Arc::from(name))
    }

    /// The path of a child called `name` under this actor.
    pub fn child(&self, name: &str) -> Self {
        Self(Arc::from(format!("{}/{name}", self.0)))
    }

    /// The last segment: the actor's own name.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The whole path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `query` names this actor: its full path, or its name alone.
    pub fn matches(&self, query: &str) -> bool {
        self.as_str() == query || self.name() == query
    }
}

/// A path written out, such as `root/io/writer` from the tree JSON or a log line.
impl From<&str> for ActorPath {
    fn from(path: &str) -> Self {
        Self(Arc::from(path))
    }
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for ActorPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Read back as written: the path's text.
impl<'de> Deserialize<'de> for ActorPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::from(&*text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_paths_nest() {
        let root = ActorPath::root("root");
        let p = root.child("control").child("executor");
        assert_eq!(p.as_str(), "root/control/executor");
        assert_eq!(p.name(), "executor");
        assert_eq!(root.name(), "root");
        assert_eq!(
            ActorPath::from("root/control/executor"),
            p,
            "written out, the same path"
        );
    }

    #[test]
    fn matches_by_name_or_path() {
        let p = ActorPath::root("root").child("io").child("reader");
        assert!(p.matches("reader"));
        assert!(p.matches("root/io/reader"));
        assert!(!p.matches("io/reader"));
        assert!(!p.matches("ultra"));
    }
}
