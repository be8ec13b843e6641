//! nevil-actors is a library of its own: nothing in it may name the robot it was
//! written for. Reads every source file, example and the README, and fails on each line
//! that uses one of the robot's words (checked whole-word, case-insensitive).

use std::path::{Path, PathBuf};

/// Words that belong to the robot, not to a supervision library.
const ROBOT_WORDS: [&str; 12] = [
    "robot",
    "robots",
    "motor",
    "motors",
    "steering",
    "ultrasonic",
    "battery",
    "estop",
    "e-stop",
    "watchdog",
    "picar",
    "picar-x",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "md") {
            out.push(path);
        }
    }
}

#[test]
fn the_crate_never_names_the_robot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = Vec::new();
    for dir in ["src", "examples"] {
        files(&root.join(dir), &mut all);
    }
    all.push(root.join("README.md"));
    assert!(all.len() > 10, "found only {all:?}");
    let mut offences = Vec::new();
    for path in &all {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            let words = lower.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'));
            if let Some(word) = words.into_iter().find(|w| ROBOT_WORDS.contains(w)) {
                offences.push(format!("{}:{}: {word:?}: {line}", path.display(), n + 1));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "robot words in nevil-actors:\n{}",
        offences.join("\n")
    );
}
