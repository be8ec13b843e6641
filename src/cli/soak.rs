//! `nevil soak --minutes M --seed S [--json]`: the chaos soak ([`crate::app::soak`]).
//! A progress line a minute on stderr; at the end the summary on stdout (text, or one
//! JSON object with `--json`). Exit 0 when every invariant held; 1 with the broken
//! invariant, the seed and the command that replays it; 2 for bad input.
//!
//! Run it without `RUST_BACKTRACE`: with it, every injected panic captures and prints a
//! backtrace from the panic hook, on the worker thread that panicked — in a debug build,
//! symbolizing the first one maps ~150 MB of debug info, which the RSS check then sees.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::SoakArgs;
use crate::app::soak::rss::mib;
use crate::app::soak::{soak, Progress, SoakError, SoakOptions, Summary};

/// `nevil soak`: runs the soak `args` asks for and reports it.
pub fn main(args: SoakArgs) -> ExitCode {
    let config = match super::load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
        eprintln!(
            "nevil soak: warning: RUST_BACKTRACE is set: each injected panic will print a \
             backtrace, and symbolizing them costs memory the RSS check counts"
        );
    }
    let opts = SoakOptions {
        minutes: args.minutes,
        seed,
    };
    eprintln!(
        "nevil soak: {} min, seed {seed} (replay: {})",
        args.minutes,
        Summary::replay_command(args.minutes, seed)
    );
    let runtime = match super::robot_runtime("nevil soak", &config) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let minutes = args.minutes;
    let summary = runtime.block_on(soak(&config, opts, |p| {
        eprintln!("{}", progress_line(p, minutes));
    }));
    let summary = match summary {
        Ok(s) => s,
        Err(e @ SoakError::NotSim(_)) => {
            eprintln!("nevil soak: {e}");
            return ExitCode::from(super::BAD_INPUT);
        }
        Err(e) => {
            eprintln!("nevil soak: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match serde_json::to_string(&summary) {
            Ok(json) => println!("{json}"),
            Err(e) => eprintln!("nevil soak: cannot write the summary as JSON: {e}"),
        }
    } else {
        print!("{}", text(&summary));
    }
    match &summary.violation {
        None => ExitCode::SUCCESS,
        Some(v) => {
            eprintln!(
                "nevil soak: FAILED: invariant {} broken at {:.1} s: {}\nnevil soak: seed {}; \
                 replay with: {}",
                v.invariant, v.at_s, v.detail, summary.seed, summary.replay
            );
            ExitCode::FAILURE
        }
    }
}

/// One progress line: `soak 3/30 min: 250 faults, 190 restarts, …`.
fn progress_line(p: &Progress, minutes: f64) -> String {
    format!(
        "soak {:.0}/{minutes} min: {} faults, {} restarts, {} escalations, rss {:.1} MiB, \
         worst stop {:.1} ms",
        p.at_s / 60.0,
        p.faults,
        p.restarts,
        p.escalations,
        mib(p.rss_bytes),
        p.worst_stop_ms
    )
}

/// The summary as text.
fn text(s: &Summary) -> String {
    let mut out = String::new();
    let verdict = if s.passed { "passed" } else { "FAILED" };
    let by_kind: Vec<String> = s.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "soak {verdict}: {:.1} s of {} min, seed {}",
        s.duration_s, s.minutes, s.seed
    );
    let _ = writeln!(
        out,
        "  faults injected: {} ({}); skipped {}; {} ended by a kill",
        s.faults_injected,
        by_kind.join(", "),
        s.faults_skipped,
        s.faults_ended_by_kill
    );
    let _ = writeln!(
        out,
        "  suspends: {}; probe rounds: {} held, {} void, {} messages",
        s.suspends, s.probe_rounds, s.probe_rounds_void, s.probe_messages
    );
    let _ = writeln!(
        out,
        "  restarts: {}; escalations: {} ({} not judged: {} events lost)",
        s.restarts, s.escalations, s.escalations_unjudged, s.events_lost
    );
    let _ = writeln!(
        out,
        "  e-stops: {}; hazards: {}; worst stop time: {:.1} ms (ceiling {:.0} ms){}",
        s.estops,
        s.hazards,
        s.worst_stop_ms,
        s.stop_ceiling_ms,
        if s.worst_stop_hazard.is_empty() {
            String::new()
        } else {
            format!(" after {}", s.worst_stop_hazard)
        }
    );
    let _ = writeln!(
        out,
        "  peak RSS: {:.1} MiB (warm-up peak {:.1} MiB, bound {:.1} MiB)",
        mib(s.peak_rss_bytes),
        mib(s.warmup_peak_rss_bytes),
        mib(s.rss_bound_bytes)
    );
    let _ = writeln!(out, "  exit: {}; replay: {}", s.exit, s.replay);
    out
}
