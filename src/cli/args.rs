//! The command line's arguments (clap): the subcommands and their options.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::inject::Injection;

/// nevil: the onboard runtime of a small robot.
#[derive(Debug, Parser)]
#[command(name = "nevil", version, about)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the robot (the simulated one unless the config says otherwise).
    Run(RunArgs),
    /// Validate a config file: exit 0 if valid, else 2 listing every problem.
    CheckConfig {
        /// The TOML file.
        path: PathBuf,
    },
    /// Bring-up self-test of the PiCar-X hardware (wheels up!).
    ///
    /// Without `--config`: the built-in `[picarx]` defaults.
    HwCheck(HwArgs),
    /// Bring every motor output to zero (MCU reset, every PWM channel 0, motor
    /// directions low): for after the robot's process died (the unit's ExecStopPost).
    ///
    /// Without `--config`: the embedded simulated robot, which has nothing to stop.
    HwStop(HwArgs),
    /// Runtime micro-benchmarks: throughput, call, restart and suspend/resume latency.
    Bench {
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
        /// Instead: time a message's round trip to a `nevil bench --echo` at this Zenoh
        /// endpoint (another host), over the bus bridges a node uses.
        #[arg(long, value_name = "ENDPOINT", conflicts_with = "echo")]
        hop: Option<String>,
        /// Round trips `--hop` measures.
        #[arg(long, default_value_t = 2000, requires = "hop")]
        hops: usize,
        /// Instead: be `--hop`'s far end, listening on this Zenoh endpoint and sending
        /// every message back, until SIGTERM.
        #[arg(long, value_name = "ENDPOINT")]
        echo: Option<String>,
    },
    /// Print a running nevil's actor tree as indented text (reads its `/tree`).
    Tree {
        /// The robot's endpoint, or the full URL of its tree.
        #[arg(long, default_value = "http://127.0.0.1:9464")]
        url: String,
        /// Print the JSON as served instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The robots reachable over Zenoh, with their health; one robot's tree
    /// (`--tree ID`) or its events as they come (`--follow ID`). Exit 1 when nothing
    /// is reachable or the robot is not found.
    Fleet(FleetArgs),
    /// Chaos soak: random faults, suspensions and e-stops on the simulated robot for
    /// minutes, with the invariants checked; exit 0 if all held, 1 naming the broken one.
    Soak(SoakArgs),
    /// Feed a flight recording back through the nodes and check the motor commands;
    /// with `--plot`, also draw the run as SVG.
    Replay {
        /// The recording (written by `run --record`).
        file: PathBuf,
        /// The config the recorded run used (the built-in default otherwise).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also draw the run as one SVG file: the path (dead reckoning from the motor
        /// commands), the motor commands over time, e-stops and the tree's restarts.
        #[arg(long, value_name = "OUT.svg")]
        plot: Option<PathBuf>,
    },
    /// Check an audit trail (written by `run --audit`).
    Audit {
        /// What to do with it.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Internal: run one group of the robot's tree in this process, for a `nevil run`
    /// that places it here (`[placement] behaviours = "process"`). Started by the robot,
    /// not by hand: it reports on stdout and stops when its stdin ends.
    #[command(hide = true)]
    Group(GroupArgs),
    /// Run the groups a robot's config places on this node (`[placement] behaviours =
    /// "node:NAME"`), for that robot, over `[zenoh]`: start it on the other host with
    /// the robot's config. Stops on SIGTERM or SIGINT.
    Node(NodeArgs),
}

/// Options of `nevil node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// The node's name, as the robot's `[placement]` names it (`node:NAME`).
    #[arg(long)]
    pub name: String,
    /// The robot's config (its `[robot] id`, `[zenoh]` and `[placement]`; the built-in
    /// default without one).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Options of the internal `nevil group`.
#[derive(Debug, clap::Args)]
pub struct GroupArgs {
    /// The group to run (`behaviours`).
    #[arg(long)]
    pub name: String,
    /// The robot's config (the built-in default without one).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The socket where the robot's end of the bridge listens.
    #[arg(long)]
    pub bridge: PathBuf,
}

/// `nevil audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of a trail and its rotated files (FILE.n … FILE.1, FILE):
    /// exit 0 when intact, 1 naming the first bad line, 2 if a file cannot be read.
    Verify {
        /// The trail.
        path: PathBuf,
    },
}

/// Options of `nevil run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Config file; the embedded simulated robot otherwise.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run this many seconds, then shut down gracefully and exit 0.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Where SIGUSR1 (and the end of a `--duration` run) writes the tree JSON
    /// [default: nevil-tree-<pid>.json in the temp dir].
    #[arg(long)]
    pub tree_dump: Option<PathBuf>,
    /// Fault drill ACTOR:FAULT@SECS (repeatable); FAULT is panic, error, exit, hang,
    /// spin, leak or flood.
    #[arg(long = "inject", value_name = "SPEC")]
    pub inject: Vec<Injection>,
    /// Record every bus message to this file (overrides `[recorder] path`).
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Append the audit trail (hash-chained JSON lines) here (overrides `[audit] path`).
    #[arg(long, value_name = "PATH")]
    pub audit: Option<PathBuf>,
    /// At exit, write a JSON run report here (jitter, e-stops, bus drops, sim outcome).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Serve /metrics, /tree and /health/* on this address [default: the config's
    /// `[http] listen`, 127.0.0.1:9464]; port 0 picks a free port (logged at start).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
}

/// Options of `nevil fleet`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// A Zenoh endpoint to reach robots at, e.g. `tcp/127.0.0.1:7447` (repeatable;
    /// added to the config's `[zenoh] connect`).
    #[arg(long = "connect", value_name = "ENDPOINT")]
    pub connect: Vec<String>,
    /// A config file whose `[zenoh]` section (connect, lease, TLS) the viewer uses; it
    /// listens on nothing.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print a JSON list of robots (`id`, `health`, and `tree` with `--tree`).
    #[arg(long)]
    pub json: bool,
    /// Print this robot's tree (as `nevil tree` does).
    #[arg(long, value_name = "ID", conflicts_with = "follow")]
    pub tree: Option<String>,
    /// Print this robot's events (JSON lines) as they come, until SIGINT or `--for`.
    #[arg(long, value_name = "ID")]
    pub follow: Option<String>,
    /// With `--follow`: stop after this many seconds.
    #[arg(long = "for", value_name = "SECONDS", requires = "follow", value_parser = parse_for)]
    pub for_secs: Option<std::time::Duration>,
}

/// Parses `--for SECONDS`: a finite number of seconds, > 0 and at most
/// [`MAX_RUN_DURATION_S`].
fn parse_for(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("--for {s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= MAX_RUN_DURATION_S) {
        return Err(format!(
            "--for must be > 0 and at most {MAX_RUN_DURATION_S} seconds (is {s})"
        ));
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("--for {s}: {e}"))
}

/// Options of `nevil soak`.
#[derive(Debug, clap::Args)]
pub struct SoakArgs {
    /// How long, in minutes (fractions allowed: 0.5 is 30 s).
    #[arg(long, value_parser = parse_minutes)]
    pub minutes: f64,
    /// The schedule's seed: the same seed plays the same faults at the same times
    /// [default: a random one, printed].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Config file (a simulated robot); the embedded default otherwise.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The longest soak: one day, in minutes.
pub const MAX_SOAK_MINUTES: f64 = 1440.0;

/// Parses `--minutes M`: a finite number > 0 and at most [`MAX_SOAK_MINUTES`].
fn parse_minutes(s: &str) -> Result<f64, String> {
    let minutes: f64 = s
        .parse()
        .map_err(|_| format!("--minutes {s:?} is not a number of minutes"))?;
    if !(minutes > 0.0 && minutes <= MAX_SOAK_MINUTES) {
        return Err(format!(
            "--minutes must be > 0 and at most {MAX_SOAK_MINUTES} (one day) (is {s})"
        ));
    }
    Ok(minutes)
}

/// The longest `run --duration`: 30 days, in seconds.
pub const MAX_RUN_DURATION_S: f64 = 30.0 * 86_400.0;

/// The arguments of the commands that talk to the PiCar-X hardware directly.
#[derive(Debug, clap::Args)]
pub struct HwArgs {
    /// Config file (its `[picarx]` section).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Record the bus transactions instead of touching the devices.
    #[arg(long)]
    pub dry_run: bool,
    /// Write every step's bus transactions as JSON here.
    #[arg(long)]
    pub trace: Option<PathBuf>,
}

/// Parses `--duration SECS`: a finite number of seconds, > 0 and at most
/// [`MAX_RUN_DURATION_S`]; the error names the argument and the bound.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("--duration {s:?} is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= MAX_RUN_DURATION_S) {
        return Err(format!(
            "--duration must be > 0 and at most {MAX_RUN_DURATION_S} seconds (30 days) \
             (is {s})"
        ));
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("--duration {s}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_must_be_finite_positive_and_bounded() {
        assert_eq!(
            parse_duration("1.5"),
            Ok(std::time::Duration::from_millis(1500))
        );
        assert_eq!(
            parse_duration("2592000"),
            Ok(std::time::Duration::from_secs(2_592_000))
        );
        for bad in ["1e20", "inf", "-inf", "NaN", "0", "-3", "2592000.5"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(
                e.starts_with("--duration must be > 0 and at most 2592000 seconds (30 days)"),
                "{bad}: {e}"
            );
            assert!(e.ends_with(&format!("(is {bad})")), "{e}");
        }
        let e = parse_duration("soon").unwrap_err();
        assert_eq!(e, "--duration \"soon\" is not a number of seconds");
    }

    #[test]
    fn fleet_for_must_be_finite_positive_and_bounded() {
        assert_eq!(parse_for("0.5"), Ok(std::time::Duration::from_millis(500)));
        for bad in ["0", "-1", "inf", "NaN", "2592001"] {
            let e = parse_for(bad).unwrap_err();
            assert!(e.starts_with("--for must be > 0"), "{bad}: {e}");
        }
        assert_eq!(
            parse_for("later").unwrap_err(),
            "--for \"later\" is not a number of seconds"
        );
    }

    #[test]
    fn fleet_arguments_are_checked_by_the_parser() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from([&["nevil", "fleet"], args].concat()).map(|cli| cli.command)
        };
        let Ok(Command::Fleet(a)) = parse(&[
            "--connect",
            "tcp/127.0.0.1:1",
            "--connect",
            "tcp/127.0.0.1:2",
            "--follow",
            "picar-1",
            "--for",
            "3",
        ]) else {
            panic!("a good fleet command line was refused");
        };
        assert_eq!(a.connect.len(), 2);
        assert_eq!(a.follow.as_deref(), Some("picar-1"));
        assert_eq!(a.for_secs, Some(std::time::Duration::from_secs(3)));
        let e = parse(&["--for", "3"]).unwrap_err();
        assert!(e.to_string().contains("--follow"), "{e}");
        let e = parse(&["--tree", "a", "--follow", "b"]).unwrap_err();
        assert!(e.to_string().contains("cannot be used with"), "{e}");
    }

    #[test]
    fn soak_minutes_must_be_finite_positive_and_bounded() {
        assert_eq!(parse_minutes("0.5"), Ok(0.5));
        assert_eq!(parse_minutes("1440"), Ok(1440.0));
        for bad in ["0", "-1", "inf", "NaN", "1440.5"] {
            let e = parse_minutes(bad).unwrap_err();
            assert!(
                e.starts_with("--minutes must be > 0 and at most 1440"),
                "{bad}: {e}"
            );
        }
        assert!(parse_minutes("long")
            .unwrap_err()
            .contains("not a number of minutes"));
    }
}
