//! The tree JSON (DESIGN.md's contract, as `/tree` serves it) as indented text, one
//! actor per line, for `nevil tree`. It reads the JSON rather than the library's
//! snapshot type, so it prints any nevil's tree, older or newer, and shows what it
//! finds; the lines themselves are [`TreeLine`]'s, the renderer the log dump uses too,
//! here with each worker's figures and quota.

use std::fmt::Write as _;

use nevil_actors::{TreeLine, WorkerFigures};
use serde_json::Value;

/// Renders `json` (the whole `/tree` document) as text.
///
/// # Errors
///
/// A message naming what is missing when `json` is not a tree document.
pub fn render(json: &str) -> Result<String, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let root = doc.get("root").ok_or("no \"root\" in the tree document")?;
    let mut out = String::new();
    let pid = doc.get("pid").and_then(Value::as_u64).unwrap_or_default();
    let uptime = doc
        .get("uptime_s")
        .and_then(Value::as_f64)
        .unwrap_or_default();
    let _ = write!(out, "pid {pid}, up {uptime:.1} s");
    // Absent from an older nevil's tree: shown when there.
    if let Some(generation) = doc.get("config_generation").and_then(Value::as_u64) {
        let _ = write!(out, ", config generation {generation}");
    }
    out.push('\n');
    node(&mut out, root, 0, None)?;
    Ok(out)
}

/// Writes node `n` and its subtree; `parent` is the pid its parent runs in (`None` for the
/// root), to show where a group placed in another process runs.
fn node(out: &mut String, n: &Value, depth: usize, parent: Option<u64>) -> Result<(), String> {
    let name = n
        .get("name")
        .and_then(Value::as_str)
        .ok_or("a node without a \"name\"")?;
    let text = |key: &str| n.get(key).and_then(Value::as_str);
    let num = |key: &str| n.get(key).and_then(Value::as_u64).unwrap_or_default();
    let worker = n.get("kind").and_then(Value::as_str) == Some("worker");
    let figures = worker.then(|| WorkerFigures {
        messages_handled: num("messages_handled"),
        mailbox_depth: num("mailbox_depth"),
        cpu_seconds: n
            .get("cpu_seconds")
            .and_then(Value::as_f64)
            .unwrap_or_default(),
        memory_bytes: num("memory_bytes"),
    });
    let quota = n.get("quota").filter(|q| !q.is_null()).map(|quota| {
        let q = |key: &str| quota.get(key).and_then(Value::as_str).unwrap_or("?");
        (q("group"), q("state"))
    });
    // Absent from an older nevil's tree: shown when there.
    let pid = n.get("pid").and_then(Value::as_u64);
    let placement = text("placement")
        .filter(|p| *p != nevil_actors::Placement::IN_PROCESS)
        .zip(pid.filter(|pid| parent.is_some_and(|p| p != *pid)))
        .map(|(p, pid)| (p, pid as u32, text("isolation")));
    let line = TreeLine {
        name,
        strategy: text("strategy"),
        status: text("status").unwrap_or("?"),
        restarts: num("restarts"),
        placement,
        figures,
        quota,
        last_exit: text("last_exit"),
    };
    line.write(out, depth).map_err(|e| e.to_string())?;
    for child in n
        .get("children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        node(out, child, depth + 1, pid.or(parent))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_nodes_indented_with_their_figures() {
        let json = r#"{"pid": 7, "uptime_s": 2.5, "root": {
            "name": "root", "path": "root", "kind": "supervisor", "strategy": "one_for_one",
            "status": "running", "restarts": 0, "last_exit": null, "quota": null,
            "children": [{"name": "motors", "path": "root/motors", "kind": "worker",
                "strategy": null, "status": "restarting", "restarts": 2,
                "last_exit": "panic: boom", "mailbox_depth": 1, "messages_handled": 10,
                "cpu_seconds": 0.0125, "memory_bytes": 1536,
                "quota": {"group": "standard", "state": "throttled"}, "children": []}]}}"#;
        let text = render(json).unwrap();
        assert_eq!(
            text,
            "pid 7, up 2.5 s\n\
             root (one_for_one) [running] restarts=0\n  \
             motors [restarting] restarts=2 handled=10 mailbox=1 cpu=0.013s mem=1.5 KiB \
             quota=standard:throttled last_exit=\"panic: boom\"\n"
        );
    }

    #[test]
    fn a_group_in_another_process_says_where_it_runs_once() {
        let json = r#"{"pid": 7, "uptime_s": 2.5, "root": {
            "name": "root", "kind": "supervisor", "strategy": "one_for_one",
            "status": "running", "restarts": 0, "placement": "in_process", "pid": 7,
            "children": [{"name": "behaviours", "kind": "supervisor",
                "strategy": "one_for_all", "status": "running", "restarts": 1,
                "placement": "process", "pid": 4242, "isolation": "cgroup_v1",
                "children": [{"name": "wander", "kind": "supervisor",
                    "strategy": "one_for_one", "status": "running", "restarts": 0,
                    "placement": "process", "pid": 4242, "isolation": "cgroup_v1"}]}]}}"#;
        let text = render(json).unwrap();
        assert_eq!(
            text,
            "pid 7, up 2.5 s\n\
             root (one_for_one) [running] restarts=0\n  \
             behaviours (one_for_all) [running] restarts=1 process pid 4242 cgroup_v1\n    \
             wander (one_for_one) [running] restarts=0\n"
        );
    }

    #[test]
    fn the_config_generation_is_in_the_header_when_there() {
        let json = r#"{"config_generation": 3, "pid": 7, "uptime_s": 2.5, "root": {
            "name": "root", "path": "root", "kind": "supervisor", "strategy": "one_for_one",
            "status": "running", "restarts": 0, "children": []}}"#;
        let text = render(json).unwrap();
        assert!(
            text.starts_with("pid 7, up 2.5 s, config generation 3\n"),
            "{text}"
        );
    }

    #[test]
    fn a_document_without_root_is_named() {
        assert_eq!(
            render("{}").unwrap_err(),
            "no \"root\" in the tree document"
        );
        assert!(render("<html>").unwrap_err().starts_with("not JSON"));
    }
}
