//! `nevil replay`: feeds a recording back through the robot's nodes and checks that they
//! compute what the robot computed.
//!
//! The behaviours each consume one topic, so replaying the recorded sensor readings in
//! order must reproduce their commands exactly. The motion controller consumes commands,
//! e-stops and ticks; each recorded output says how many commands and e-stops it had
//! taken, so the replay feeds it exactly those before each tick and compares the output
//! bit for bit. A restart of the controller mid-recording (its counts start over) is
//! reported: outputs after it are checked against a fresh controller from that point.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::bus::{Command, Drive, Source};
use crate::config::{Config, Mode};
use crate::robot::nodes::line_follower::LineFollower;
use crate::robot::nodes::motion::Motion;
use crate::robot::nodes::obstacle_avoidance::ObstacleAvoidance;
use crate::services::recorder::recording::Record;

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    /// Records read.
    pub records: usize,
    /// Behaviour commands compared.
    pub commands_checked: usize,
    /// Of those, equal to the recorded ones.
    pub commands_matched: usize,
    /// Motion controller outputs (motor commands) compared.
    pub drives_checked: usize,
    /// Of those, equal to the recorded ones.
    pub drives_matched: usize,
    /// Times the controller restarted in the recording.
    pub controller_restarts: usize,
    /// The first differences, described.
    pub mismatches: Vec<String>,
}

impl ReplayReport {
    /// Whether everything compared matched (and something was compared).
    pub fn all_match(&self) -> bool {
        self.drives_checked > 0
            && self.commands_matched == self.commands_checked
            && self.drives_matched == self.drives_checked
    }

    fn mismatch(&mut self, what: String) {
        if self.mismatches.len() < 10 {
            self.mismatches.push(what);
        }
    }
}

fn same_drive(a: &Drive, b: &Drive) -> bool {
    a.left == b.left && a.right == b.right && a.steer_deg == b.steer_deg
}

/// Replays `records` through nodes configured by `config`.
pub fn replay(records: &[Record], config: &Config) -> ReplayReport {
    let mut report = ReplayReport {
        records: records.len(),
        ..Default::default()
    };
    let max_steer = config.motion.max_steer_deg;
    let mut oa = ObstacleAvoidance::new(config.behaviour, max_steer);
    let mut lf = (config.behaviour.mode == Mode::LineFollowing)
        .then(|| LineFollower::new(config.behaviour, max_steer));

    // Behaviours: recompute from the sensor readings, in order.
    let mut computed: Vec<Command> = Vec::new();
    for r in records {
        match r {
            Record::Range(range) => computed.extend(oa.on_range(range)),
            Record::Line(line) => computed.extend(lf.as_mut().map(|lf| lf.on_line(line))),
            _ => {}
        }
    }
    let recorded = || {
        records.iter().filter_map(|r| match r {
            Record::Command(c) => Some(*c),
            _ => None,
        })
    };
    for source in [Source::ObstacleAvoidance, Source::LineFollower] {
        let want = recorded().filter(|c| c.source == source);
        let got = computed.iter().filter(|c| c.source == source);
        for (i, (w, g)) in want.zip(got).enumerate() {
            report.commands_checked += 1;
            if w == *g {
                report.commands_matched += 1;
            } else {
                report.mismatch(format!(
                    "{source:?} command #{i}: recorded {w:?}, replayed {g:?}"
                ));
            }
        }
    }

    // Motion: feed each tick exactly the inputs the controller had taken.
    let commands: Vec<Command> = recorded().collect();
    let estops: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::EStop(e) => Some(e),
            _ => None,
        })
        .collect();
    let mut motion = Motion::new(config.motion);
    let (mut next_cmd, mut next_estop) = (0usize, 0usize);
    for r in records {
        let Record::Drive(d) = r else { continue };
        let (seen_cmd, seen_estop) = motion.inputs_seen();
        if d.commands_seen < seen_cmd || d.estops_seen < seen_estop {
            // A new incarnation: it starts from standstill and counts afresh from the
            // inputs published after it subscribed, which is (about) now.
            report.controller_restarts += 1;
            // It starts from the e-stop as latched: as the last change published said.
            let engaged = estops
                .iter()
                .rev()
                .find(|e| e.t_us <= d.t_us)
                .is_some_and(|e| e.engaged);
            motion = Motion::starting(config.motion, engaged);
            next_cmd = commands
                .iter()
                .position(|c| c.t_us >= d.t_us)
                .unwrap_or(commands.len());
            next_estop = estops
                .iter()
                .position(|e| e.t_us >= d.t_us)
                .unwrap_or(estops.len());
        }
        while motion.inputs_seen().0 < d.commands_seen {
            let Some(c) = commands.get(next_cmd) else {
                break;
            };
            motion.on_command(*c);
            next_cmd += 1;
        }
        while motion.inputs_seen().1 < d.estops_seen {
            let Some(e) = estops.get(next_estop) else {
                break;
            };
            motion.on_estop(e);
            next_estop += 1;
        }
        let out = motion.step(d.t_us);
        report.drives_checked += 1;
        if same_drive(&out, d) {
            report.drives_matched += 1;
        } else {
            report.mismatch(format!(
                "motor command at {} us: recorded {d:?}, replayed {out:?}",
                d.t_us
            ));
        }
    }
    report
}

/// `nevil replay`: feeds the recording `file` through the nodes of `config` and
/// prints the report; exit 1 on a mismatch, 2 for bad input.
pub fn main(file: &Path, config: Option<&Path>, json: bool) -> ExitCode {
    let config = match super::load_config(config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let recording = match crate::services::recorder::recording::read(file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("nevil replay: {e}");
            return ExitCode::from(super::BAD_INPUT);
        }
    };
    if recording.truncated_bytes > 0 {
        eprintln!(
            "nevil replay: {}: last record cut off ({} bytes ignored)",
            file.display(),
            recording.truncated_bytes
        );
    }
    let report = replay(&recording.records, &config);
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("nevil replay: {e}"),
        }
    } else {
        println!(
            "{} records; behaviour commands {}/{} match; motor commands {}/{} match; controller restarts {}",
            report.records,
            report.commands_matched,
            report.commands_checked,
            report.drives_matched,
            report.drives_checked,
            report.controller_restarts
        );
        for m in &report.mismatches {
            println!("mismatch: {m}");
        }
    }
    if report.all_match() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
