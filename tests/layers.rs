//! The layer check: `src/`'s modules are layers, and an arrow (a `crate::` path, or a
//! `super::` path that climbs to the crate root) may only point to the same layer or
//! one below. Bottom to top:
//!
//! `core` < `hw` < `config` < `bus` < `robot` < `services` < `ops` < `app` < `cli`
//!
//! `config` sits right above `hw`: it assembles the backends' own settings (each
//! backend checks its section with `nevil_actors::Problems`) and is read by everything
//! from the robot up, so it may use only `core` and `hw`.
//!
//! Every wrong arrow is printed as `file:line: layer X imports higher layer Y`, and the
//! test fails. So does a top-level module missing from the table below, and a folder
//! that README's layout table names but the tree does not have.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` (and each `#[macro_export]` macro, which lives at
/// the crate root) with its layer; a higher rank is a higher layer.
const LAYERS: [(&str, &str, u8); 9] = [
    ("core", "core", 0),
    ("hw", "hw", 1),
    ("config", "config", 2),
    ("bus", "bus", 3),
    ("robot", "robot", 4),
    ("services", "services", 5),
    ("ops", "ops", 6),
    ("app", "app", 7),
    ("cli", "cli", 8),
];

/// The layer (name, rank) of the top-level module `name`.
fn layer(name: &str) -> Option<(&'static str, u8)> {
    LAYERS
        .iter()
        .find(|(module, _, _)| *module == name)
        .map(|&(_, layer, rank)| (layer, rank))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The module path of a file: `src/robot/drivers/motors.rs` is `robot::drivers::motors`.
fn module_path(file: &Path) -> Vec<String> {
    file.strip_prefix(src())
        .unwrap()
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect()
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules one line of code in `module` names: after each `crate::`, and
/// after each `super::` chain that climbs to the crate root.
fn targets(line: &str, module: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = line.as_bytes();
    let starts_path = |i: usize| {
        i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':')
    };
    let mut i = 0;
    while i < line.len() {
        let rest = &line[i..];
        if rest.starts_with("crate::") && starts_path(i) {
            let name = ident(&rest["crate::".len()..]);
            if !name.is_empty() {
                out.push(name.to_string());
            }
            i += "crate::".len();
        } else if rest.starts_with("super::") && starts_path(i) {
            let mut ups = 0;
            let mut tail = rest;
            while let Some(t) = tail.strip_prefix("super::") {
                ups += 1;
                tail = t;
            }
            if ups >= module.len() {
                let name = ident(tail);
                if !name.is_empty() {
                    out.push(name.to_string());
                }
            }
            i += ups * "super::".len();
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// The wrong arrows in `src/`, one message each.
fn wrong_arrows() -> (Vec<String>, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for file in rust_files(&src()) {
        let module = module_path(&file);
        let shown = file.strip_prefix(root).unwrap().display().to_string();
        let top = module[0].as_str();
        if top == "lib" || top == "main" {
            continue; // the table of contents and the binary, above every layer
        }
        let Some((own, own_rank)) = layer(top) else {
            unknown.push(format!(
                "{shown}: module `{top}` has no layer in tests/layers.rs"
            ));
            continue;
        };
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue; // comments and doc comments (doc links are not arrows)
            }
            let code = code.split(" // ").next().unwrap_or(code);
            for target in targets(code, &module) {
                match layer(&target) {
                    Some((other, rank)) if rank > own_rank => wrong.push(format!(
                        "{shown}:{}: layer {own} imports higher layer {other}",
                        n + 1
                    )),
                    Some(_) => {}
                    None => unknown.push(format!(
                        "{shown}:{}: `crate::{target}` is in no layer of tests/layers.rs",
                        n + 1
                    )),
                }
            }
        }
    }
    (wrong, unknown)
}

#[test]
fn arrows_only_point_down() {
    let (wrong, unknown) = wrong_arrows();
    for line in wrong.iter().chain(&unknown) {
        println!("{line}");
    }
    assert!(
        wrong.is_empty() && unknown.is_empty(),
        "{} wrong arrow(s), {} unknown module(s):\n{}",
        wrong.len(),
        unknown.len(),
        wrong
            .iter()
            .chain(&unknown)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Every top-level entry of `src/` is a module of the table (or lib.rs/main.rs).
#[test]
fn every_module_has_a_layer() {
    for entry in fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        assert!(
            layer(&name).is_some(),
            "src/{name}: no layer in tests/layers.rs"
        );
    }
}

/// The check sees the arrows it is meant to see.
#[test]
fn targets_reads_crate_and_climbing_super_paths() {
    let module = |p: &str| p.split("::").map(String::from).collect::<Vec<_>>();
    assert_eq!(
        targets("use crate::bus::{Bus, EStop};", &module("robot::safety")),
        ["bus"]
    );
    assert_eq!(
        targets(
            "metrics::counter!(crate::core::metrics::X); crate::bus::Bus::new(1);",
            &module("robot::drivers::sensor")
        ),
        ["core", "bus"]
    );
    // `super::` inside the module's own tree is not an arrow; climbing to the root is.
    assert!(targets("use super::layout::Group;", &module("app::drills")).is_empty());
    assert_eq!(
        targets("use super::super::ops::http;", &module("robot::drivers")),
        ["ops"]
    );
    // `nevil_actors::` and a path segment that merely ends in `crate` are not arrows.
    assert!(targets("use nevil_actors::Tree; a::crate::b", &module("bus")).is_empty());
}

/// Every directory under `dir`, recursively.
fn directories(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(directories(&path));
            out.push(path);
        }
    }
    out
}

/// README's layout table matches the tree: each `src/` path it names (a row whose first
/// cell starts with `` `src/ ``) exists, each top-level module has a row, and each folder
/// under `src/` has a row or lies under or above one that has.
#[test]
fn readme_layout_matches_the_tree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let listed: Vec<String> = readme
        .lines()
        .filter(|l| l.starts_with("| `src/"))
        .map(|l| {
            l.trim_start_matches("| `")
                .split('`')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    for path in &listed {
        assert!(
            root.join(path).exists(),
            "README's layout table names {path}, which is not in the tree"
        );
    }
    let rows: Vec<&str> = listed.iter().map(|p| p.trim_end_matches('/')).collect();
    for (module, _, _) in LAYERS {
        let dir = format!("src/{module}");
        let file = format!("src/{module}.rs");
        assert!(
            rows.iter()
                .any(|r| *r == dir || *r == file || r.starts_with(&format!("{dir}/"))),
            "README's layout table has no row for {dir}: {listed:?}"
        );
    }
    for dir in directories(&src()) {
        let dir = dir
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            rows.iter().any(|r| dir == *r
                || dir.starts_with(&format!("{r}/"))
                || r.starts_with(&format!("{dir}/"))),
            "README's layout table has no row for {dir}/: {listed:?}"
        );
    }
}
