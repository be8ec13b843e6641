//! `nevil check-config`: validate a config file and list every problem.

use std::path::Path;
use std::process::ExitCode;

use crate::config::Config;

/// `nevil check-config`: exit 0 if the file at `path` is a valid config, else 2
/// listing every problem.
pub fn main(path: &Path) -> ExitCode {
    match Config::load(Some(path)) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            for problem in e.problems() {
                println!("{problem}");
            }
            ExitCode::from(super::BAD_INPUT)
        }
    }
}
