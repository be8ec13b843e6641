//! `nevil tree`: a running nevil's actor tree as indented text, read from its `/tree`.

use std::process::ExitCode;

/// How long `nevil tree` waits for the robot.
const TREE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `nevil tree`: prints a running robot's tree, read from its `/tree` at `url`, as
/// indented text (or the JSON as served).
pub fn main(url: &str, json: bool) -> ExitCode {
    let url = crate::ops::http::tree_url(url);
    let answer = match super::block_on("tree", crate::ops::http::get(&url, TREE_TIMEOUT)) {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    let body = match answer {
        Ok((200, body)) => body,
        Ok((status, body)) => {
            eprintln!("nevil tree: {url}: HTTP {status}: {}", body.trim());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("nevil tree: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        print!("{body}");
        return ExitCode::SUCCESS;
    }
    match crate::services::tree::text::render(&body) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nevil tree: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}
