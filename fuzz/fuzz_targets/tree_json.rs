//! `nevil tree`'s input: the `/tree` JSON document a robot serves, rendered as text by
//! [`nevil::services::tree::text::render`]. Any text gets a rendering or a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    match nevil::services::tree::text::render(json) {
        Ok(text) => assert!(text.starts_with("pid ")),
        Err(e) => assert!(!e.is_empty()),
    }
});
