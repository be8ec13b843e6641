//! The tree as indented text, one actor per line: the one renderer behind the log dump
//! ([`NodeSnapshot`]'s `Display`) and any tool that prints a tree from its JSON.
//!
//! A line reads `name (strategy) [status] restarts=N`; then, on the line of a group placed
//! in another process, where it runs (`process pid 4242 cgroup_v1`); then, when the caller has them,
//! a worker's figures (`handled=N mailbox=N cpu=S.SSSs mem=SIZE`) and its quota
//! (`quota=GROUP:STATE`); then `last_exit="…"` if an incarnation ended. Children follow
//! in start order, two spaces deeper.

use std::fmt;

use super::NodeSnapshot;

/// One actor's line of the tree's text, borrowed from whatever holds the tree (a
/// snapshot, or the tree JSON as `GET /tree` serves it).
///
/// # Examples
///
/// ```
/// use nevil_actors::{TreeLine, WorkerFigures};
///
/// let line = TreeLine {
///     name: "writer",
///     status: "restarting",
///     restarts: 2,
///     figures: Some(WorkerFigures {
///         messages_handled: 10,
///         mailbox_depth: 1,
///         cpu_seconds: 0.0125,
///         memory_bytes: 1536,
///     }),
///     last_exit: Some("panic: boom"),
///     ..TreeLine::default()
/// };
/// let mut text = String::new();
/// line.write(&mut text, 1).unwrap();
/// assert_eq!(
///     text,
///     "  writer [restarting] restarts=2 handled=10 mailbox=1 cpu=0.013s mem=1.5 KiB \
///      last_exit=\"panic: boom\"\n"
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TreeLine<'a> {
    /// Its name.
    pub name: &'a str,
    /// A supervisor's strategy, as in the tree JSON (`one_for_one`).
    pub strategy: Option<&'a str>,
    /// Its status, as in the tree JSON (`running`).
    pub status: &'a str,
    /// Cumulative restarts.
    pub restarts: u64,
    /// Where it runs — placement, pid, isolation — on the line of a group whose process
    /// differs from its parent's (`None` elsewhere).
    pub placement: Option<(&'a str, u32, Option<&'a str>)>,
    /// A worker's figures, when the text shows them.
    pub figures: Option<WorkerFigures>,
    /// Its quota group and state, when the text shows them.
    pub quota: Option<(&'a str, &'a str)>,
    /// Why its last incarnation ended.
    pub last_exit: Option<&'a str>,
}

/// A worker's figures on its [`TreeLine`], as in the tree JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerFigures {
    /// Messages its handlers took, cumulative.
    pub messages_handled: u64,
    /// Messages waiting for it now.
    pub mailbox_depth: u64,
    /// Time its handlers ran, in seconds, cumulative.
    pub cpu_seconds: f64,
    /// Bytes its current incarnation holds.
    pub memory_bytes: u64,
}

impl TreeLine<'_> {
    /// Writes the line indented for `depth` (two spaces each), newline included.
    ///
    /// # Errors
    ///
    /// Only what `out` returns.
    pub fn write(&self, out: &mut impl fmt::Write, depth: usize) -> fmt::Result {
        write!(out, "{:indent$}{}", "", self.name, indent = depth * 2)?;
        if let Some(strategy) = self.strategy {
            write!(out, " ({strategy})")?;
        }
        write!(out, " [{}] restarts={}", self.status, self.restarts)?;
        if let Some((placement, pid, isolation)) = self.placement {
            write!(out, " {placement} pid {pid}")?;
            if let Some(isolation) = isolation {
                write!(out, " {isolation}")?;
            }
        }
        if let Some(f) = self.figures {
            write!(
                out,
                " handled={} mailbox={} cpu={:.3}s mem={}",
                f.messages_handled,
                f.mailbox_depth,
                f.cpu_seconds,
                bytes(f.memory_bytes)
            )?;
        }
        if let Some((group, state)) = self.quota {
            write!(out, " quota={group}:{state}")?;
        }
        if let Some(exit) = self.last_exit {
            write!(out, " last_exit={exit:?}")?;
        }
        writeln!(out)
    }
}

/// `1536` → `1.5 KiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl NodeSnapshot {
    /// Writes this subtree as the log dump shows it: name, strategy, status, restarts,
    /// where a group placed in another process runs, and last exit (no figures, no quota).
    /// `parent` is the process the parent runs in (`None` for the root).
    fn write_indented(
        &self,
        f: &mut fmt::Formatter<'_>,
        depth: usize,
        parent: Option<u32>,
    ) -> fmt::Result {
        let strategy = self.strategy.map(|s| s.to_string());
        let last_exit = self.last_exit.as_ref().map(ToString::to_string);
        TreeLine {
            name: &self.name,
            strategy: strategy.as_deref(),
            status: self.status.as_str(),
            restarts: self.restarts,
            placement: self.placement_line(parent),
            figures: None,
            quota: None,
            last_exit: last_exit.as_deref(),
        }
        .write(f, depth)?;
        self.children
            .iter()
            .try_for_each(|c| c.write_indented(f, depth + 1, Some(self.pid)))
    }

    /// Its placement for its [`TreeLine`]: shown where it runs in another process than
    /// its parent (`parent`), and is not placed in process.
    pub fn placement_line(&self, parent: Option<u32>) -> Option<(&str, u32, Option<&str>)> {
        let moved = parent.is_some_and(|p| p != self.pid);
        (moved && self.placement != crate::Placement::IN_PROCESS).then_some((
            self.placement.as_str(),
            self.pid,
            self.isolation.as_deref(),
        ))
    }
}

/// Indented text, one actor per line, as the tree dump writes it to the log.
impl fmt::Display for NodeSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_indented(f, 0, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_in_another_process_says_where_it_runs() {
        let line = TreeLine {
            name: "behaviours",
            strategy: Some("one_for_one"),
            status: "running",
            placement: Some(("process", 4242, Some("cgroup_v1"))),
            ..TreeLine::default()
        };
        let mut text = String::new();
        line.write(&mut text, 2).unwrap();
        assert_eq!(
            text,
            "    behaviours (one_for_one) [running] restarts=0 process pid 4242 cgroup_v1\n"
        );
    }

    #[test]
    fn sizes_are_binary_with_one_decimal() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(5 << 40), "5120.0 GiB");
    }
}
