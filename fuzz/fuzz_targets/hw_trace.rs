//! The hw-check trace (`nevil hw-check --trace`, `nevil hw-stop --trace`): nevil writes
//! it, and reads it back as [`Operation`]s (its own tests, tools comparing two runs) and
//! summarises it. The reader is the derived `Deserialize` of [`Operation`] with the
//! hand-written parsing of each transaction (addresses, hex wire bytes, levels, pulses).
//! Any text gets operations or an error; operations that parse summarise without panic
//! and survive a write/read round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nevil::cli::hw_check::{adc_reading, ranging, summary, Operation};

fuzz_target!(|data: &[u8]| {
    let Ok(ops) = serde_json::from_slice::<Vec<Operation>>(data) else {
        return;
    };
    let text = summary(&ops);
    assert!(text.starts_with("hw-check: "));
    for op in &ops {
        let _ = adc_reading(op);
        let _ = ranging(op);
    }
    let written = serde_json::to_string_pretty(&ops).expect("operations serialise");
    let back: Vec<Operation> = serde_json::from_str(&written).expect("a written trace reads back");
    assert_eq!(back, ops);
});
