//! The flight recording decoder, as `nevil replay` runs it: the bytes become a file,
//! the file is read ([`nevil::services::recorder::recording::read`]) and whatever decodes
//! is replayed through the default config's nodes. Neither may panic, abort or allocate
//! from a length field it has not checked: a hostile file gets an error.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nevil::cli::replay::replay;
use nevil::config::Config;
use nevil::services::recorder::recording;

/// One scratch file per fuzzing process (in RAM where there is a /dev/shm).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = PathBuf::from("/dev/shm");
        let dir = if dir.is_dir() {
            dir
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("nevil-fuzz-recording-{}.rec", std::process::id()))
    })
}

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| Config::load(None).expect("the embedded default config is valid"))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("the scratch file is writable");
    let read = recording::read(path);
    // Removed each time: nothing is left behind when the process ends.
    let _ = std::fs::remove_file(path);
    match read {
        Ok(rec) => {
            assert!(rec.truncated_bytes <= data.len());
            let report = replay(&rec.records, config());
            assert_eq!(report.records, rec.records.len());
            assert!(report.commands_matched <= report.commands_checked);
            assert!(report.drives_matched <= report.drives_checked);
        }
        Err(e) => {
            // The error names the file.
            assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
        }
    }
});
