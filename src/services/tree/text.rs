//! The tree JSON (DESIGN.md's contract, as `/tree` serves it) as indented text, one
//! actor per line, for `nevil tree`. It reads the JSON rather than the library's
//! snapshot type, so it prints any nevil's tree, older or newer, and shows what it
//! finds.

use std::fmt::Write as _;

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
    let _ = writeln!(out, "pid {pid}, up {uptime:.1} s");
    node(&mut out, root, 0)?;
    Ok(out)
}

fn node(out: &mut String, n: &Value, depth: usize) -> Result<(), String> {
    let name = n
        .get("name")
        .and_then(Value::as_str)
        .ok_or("a node without a \"name\"")?;
    let _ = write!(out, "{:indent$}{name}", "", indent = depth * 2);
    if let Some(strategy) = n.get("strategy").and_then(Value::as_str) {
        let _ = write!(out, " ({strategy})");
    }
    let text = |key: &str| n.get(key).and_then(Value::as_str).unwrap_or("?");
    let num = |key: &str| n.get(key).and_then(Value::as_f64).unwrap_or_default();
    let _ = write!(out, " [{}] restarts={}", text("status"), num("restarts"));
    if n.get("kind").and_then(Value::as_str) == Some("worker") {
        let _ = write!(
            out,
            " handled={} mailbox={} cpu={:.3}s mem={}",
            num("messages_handled"),
            num("mailbox_depth"),
            num("cpu_seconds"),
            bytes(num("memory_bytes")),
        );
    }
    if let Some(quota) = n.get("quota").filter(|q| !q.is_null()) {
        let q = |key: &str| quota.get(key).and_then(Value::as_str).unwrap_or("?");
        let _ = write!(out, " quota={}:{}", q("group"), q("state"));
    }
    if let Some(exit) = n.get("last_exit").and_then(Value::as_str) {
        let _ = write!(out, " last_exit={exit:?}");
    }
    out.push('\n');
    for child in n
        .get("children")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        node(out, child, depth + 1)?;
    }
    Ok(())
}

/// `1536` → `1.5 KiB`.
fn bytes(n: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n;
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
    fn a_document_without_root_is_named() {
        assert_eq!(
            render("{}").unwrap_err(),
            "no \"root\" in the tree document"
        );
        assert!(render("<html>").unwrap_err().starts_with("not JSON"));
    }
}
