//! The flight recording decoder, as `nevil replay` runs it: the bytes are streamed through
//! [`nevil::services::recorder::recording::Reader`] one record at a time and every record
//! that decodes is fed to the [`nevil::cli::replay::Replayer`] of the default config and
//! to its plot ([`nevil::cli::replay::plot::Plot`], as `--plot` draws it, every time).
//! None may panic, abort or allocate from a length field it has not checked: a
//! hostile file gets an error naming it and the byte.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nevil::cli::replay::plot::Plot;
use nevil::cli::replay::Replayer;
use nevil::config::Config;
use nevil::services::recorder::recording::Reader;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config::load(None).expect("the embedded default config is valid"))
}

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz.rec");
    let mut reader = Reader::named(data, name);
    let mut replayer = Replayer::new(config());
    let mut plot = Plot::new(config());
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                plot.feed(&record);
                replayer.feed(record);
            }
            Ok(None) => break,
            Err(e) => {
                // The error names the file; nothing before it was lost.
                assert!(e.to_string().contains("fuzz.rec"), "{e}");
                return;
            }
        }
    }
    assert!(reader.truncated_bytes() <= data.len() as u64);
    assert!(reader.offset() + reader.truncated_bytes() <= data.len() as u64);
    let records = replayer.records();
    let report = replayer.finish();
    assert_eq!(report.records, records);
    assert!(report.commands_matched <= report.commands_checked);
    assert!(report.drives_matched <= report.drives_checked);
    let svg = plot.render("fuzz.rec");
    assert!(svg.ends_with("</svg>\n") && !svg.contains("NaN"), "{svg}");
});
