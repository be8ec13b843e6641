//! `nevil audit verify FILE`: checks an audit trail's hash chain
//! ([`crate::services::audit::verify`]). Exit 0 and `N lines intact` when sound; 1
//! naming the first bad line's file, number and fault (tampered, broken link, bad
//! JSON, sequence gap, truncation); 2 if a file cannot be read.

use std::path::Path;
use std::process::ExitCode;

use crate::services::audit::verify::{verify as check, VerifyError};

/// `nevil audit verify PATH`.
pub fn verify(path: &Path) -> ExitCode {
    match check(path) {
        Ok(intact) => {
            let files = intact.files.len();
            let span = match (intact.first_seq, &intact.last) {
                (Some(first), Some((last, hash))) => {
                    let from = if first > 1 {
                        format!(" (older lines rotated away: the chain starts at seq {first})")
                    } else {
                        String::new()
                    };
                    format!(", seq {first}..{last}, last hash {hash}{from}")
                }
                _ => String::new(),
            };
            println!(
                "{}: {} lines intact in {files} file(s){span}",
                path.display(),
                intact.lines
            );
            ExitCode::SUCCESS
        }
        Err(VerifyError::Broken(broken)) => {
            eprintln!("nevil audit verify: {broken}");
            ExitCode::FAILURE
        }
        Err(e @ VerifyError::Io { .. }) => {
            eprintln!("nevil audit verify: {e}");
            ExitCode::from(super::BAD_INPUT)
        }
    }
}
