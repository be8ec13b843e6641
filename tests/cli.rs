//! The `nevil` binary, driven as an operator would run it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn reports_its_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_nevil")).output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("nevil {}", env!("CARGO_PKG_VERSION"))
    );
}
