//! Which actors' errors may be related: those under the same supervisor (siblings, which
//! in nevil's tree is the same group), and a supervisor with its own children (a child's
//! crash, then its supervisor's escalation).

use nevil_actors::ActorPath;
use serde::Serialize;

/// How two actors are related.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Children of the same supervisor.
    Siblings,
    /// One is the other's supervisor.
    Parent,
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(parent, _)| parent)
}

/// How `a` and `b` are related, if they are (an actor is not related to itself).
pub fn relation(a: &ActorPath, b: &ActorPath) -> Option<Relation> {
    let (a, b) = (a.as_str(), b.as_str());
    if a == b {
        return None;
    }
    let (pa, pb) = (parent(a), parent(b));
    if pa.is_some() && pa == pb {
        Some(Relation::Siblings)
    } else if pa == Some(b) || pb == Some(a) {
        Some(Relation::Parent)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ActorPath {
        ActorPath::from(s)
    }

    #[test]
    fn relations() {
        let motion = p("root/control/motion");
        let oa = p("root/control/obstacle_avoidance");
        assert_eq!(relation(&motion, &oa), Some(Relation::Siblings));
        assert_eq!(relation(&oa, &motion), Some(Relation::Siblings));
        assert_eq!(
            relation(&motion, &p("root/control")),
            Some(Relation::Parent)
        );
        assert_eq!(
            relation(&p("root/control"), &motion),
            Some(Relation::Parent)
        );
        assert_eq!(
            relation(&p("root/control"), &p("root/drivers")),
            Some(Relation::Siblings)
        );
        assert_eq!(relation(&motion, &p("root/drivers/motors")), None);
        assert_eq!(relation(&motion, &p("root")), None, "grandparent");
        assert_eq!(relation(&motion, &motion), None);
        assert_eq!(relation(&p("root"), &p("other")), None, "two roots");
    }
}
