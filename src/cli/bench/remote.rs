//! A message hop between two `nevil` processes on two hosts (`nevil bench --hop` and
//! `nevil bench --echo`), over the same bus bridges a group on a node uses.
//!
//! The far end (`--echo ENDPOINT`) listens on a Zenoh endpoint and sends every
//! [`Command`] it receives straight back; the near end (`--hop ENDPOINT`) connects to it
//! and times round trips, one at a time, on its own clock: from `publish` on its bus to
//! the echo's delivery on its bus. Each way is a bridge export → Zenoh → bridge import,
//! as a command from a behaviour on a node to the robot's motion controller. The one-way
//! hop is half the round trip (the hosts need share no clock). `scripts/net-hop` runs the
//! two ends in two network namespaces linked by a veth.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use nevil_actors::Problems;
use serde::Serialize;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::{fail, percentile, BenchError};
use crate::bus::{net, Bridge, Bus, Command, Source};
use crate::config::ZenohConfig;

/// The key prefix of the commands going out to the echo.
const OUT: &str = "nevil/bench/hop/out";
/// The key prefix of the commands the echo sends back.
const BACK: &str = "nevil/bench/hop/back";

/// How long the near end waits for the echo to answer at all.
const REACH: Duration = Duration::from_secs(10);
/// How long one probe waits before the next is sent while reaching the echo.
const PROBE: Duration = Duration::from_millis(200);
/// The longest one round trip may take before the measurement gives up.
const FAILSAFE: Duration = Duration::from_secs(10);
/// Round trips before the ones measured (connections warm, caches filled).
const WARM_UP: usize = 100;

/// `nevil bench --hop`'s figures.
#[derive(Debug, Clone, Serialize)]
pub struct HopReport {
    /// The echo's endpoint.
    pub endpoint: String,
    /// Round trips measured.
    pub round_trips: usize,
    /// Round trip, median (µs).
    pub round_trip_p50_us: f64,
    /// Round trip, 99th percentile (µs).
    pub round_trip_p99_us: f64,
    /// One-way hop (half a round trip), median (µs).
    pub hop_p50_us: f64,
    /// One-way hop (half a round trip), 99th percentile (µs).
    pub hop_p99_us: f64,
}

/// The `[zenoh]` of one end: `endpoint` to listen on (`listen`) or to connect to; the
/// problem, naming the flag, if it is no endpoint.
pub fn end_config(flag: &str, endpoint: &str, listen: bool) -> Result<ZenohConfig, String> {
    let endpoints = vec![endpoint.to_string()];
    let zenoh = if listen {
        ZenohConfig {
            listen: endpoints,
            ..ZenohConfig::default()
        }
    } else {
        ZenohConfig {
            connect: endpoints,
            ..ZenohConfig::default()
        }
    };
    let mut p = Problems::default();
    zenoh.check(&mut p);
    match p.0.first() {
        None => Ok(zenoh),
        Some(problem) => Err(format!("{flag} {}", problem.message)),
    }
}

fn command(seq: u64) -> Command {
    Command {
        t_us: seq,
        source: Source::ObstacleAvoidance,
        power: 30.0,
        steer_deg: -5.0,
        urgent: false,
    }
}

/// `nevil bench`: the far end with `echo`, the hop with `hop`, else the
/// micro-benchmarks ([`super::main`]). A bad endpoint exits 2, naming its flag.
pub fn main(json: bool, hop: Option<&str>, hops: usize, echo: Option<&str>) -> ExitCode {
    let end = match (hop, echo) {
        (Some(endpoint), _) => end_config("--hop", endpoint, false),
        (None, Some(endpoint)) => end_config("--echo", endpoint, true),
        (None, None) => return super::main(json),
    };
    match end {
        Err(problem) => {
            eprintln!("nevil bench: {problem}");
            ExitCode::from(super::super::BAD_INPUT)
        }
        Ok(zenoh) if hop.is_some() => hop_main(zenoh, hops.max(1), json),
        Ok(zenoh) => echo_main(zenoh),
    }
}

/// Runs `future` on a multi-threaded runtime (Zenoh needs one); exit 1 if it cannot be
/// built.
fn on_runtime<F: std::future::Future<Output = ExitCode>>(future: F) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(future),
        Err(e) => {
            eprintln!("nevil bench: cannot start a runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `nevil bench --echo ENDPOINT`: the far end, until SIGTERM or Ctrl-C.
pub fn echo_main(zenoh: ZenohConfig) -> ExitCode {
    on_runtime(async move {
        match echo(&zenoh).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("nevil bench --echo: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn echo(zenoh: &ZenohConfig) -> Result<(), BenchError> {
    let session = net::open(zenoh).await.map_err(fail)?;
    let locators = net::locators(&session, &zenoh.listen).await.map_err(fail)?;
    let (inbound, outbound) = (
        Bridge::over(session.clone(), OUT).map_err(fail)?,
        Bridge::over(session, BACK).map_err(fail)?,
    );
    // What arrives is published on this bus's command topic, which goes straight back.
    let bus = Bus::new(1024);
    let _import = inbound.import(&bus.command).await.map_err(fail)?;
    let _export = outbound.export(&bus.command).await.map_err(fail)?;
    eprintln!("echo listening on {}", locators.join(" "));
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(fail)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

/// `nevil bench --hop ENDPOINT`: `round_trips` round trips to the echo there; the
/// figures as a table, or one JSON object with `json`.
pub fn hop_main(zenoh: ZenohConfig, round_trips: usize, json: bool) -> ExitCode {
    on_runtime(async move {
        let report = match hop(&zenoh, round_trips).await {
            Ok(report) => report,
            Err(e) => {
                eprintln!("nevil bench --hop: {e}");
                return ExitCode::FAILURE;
            }
        };
        let value = serde_json::to_value(&report).unwrap_or_default();
        if json {
            println!("{value}");
        } else {
            for (key, v) in value.as_object().into_iter().flatten() {
                println!("{key:32} {v}");
            }
        }
        ExitCode::SUCCESS
    })
}

/// The near end's bridges and buses.
struct NearEnd {
    up: Bus,
    back: UnboundedReceiver<(u64, Instant)>,
    sent: u64,
    _bridges: [Bridge; 2],
    _down: Bus,
    _links: (crate::bus::Export, crate::bus::Import),
}

impl NearEnd {
    async fn open(zenoh: &ZenohConfig) -> Result<Self, BenchError> {
        let session = net::open(zenoh).await.map_err(fail)?;
        let (outbound, inbound) = (
            Bridge::over(session.clone(), OUT).map_err(fail)?,
            Bridge::over(session, BACK).map_err(fail)?,
        );
        let (up, down) = (Bus::new(1024), Bus::new(1024));
        let export = outbound.export(&up.command).await.map_err(fail)?;
        let import = inbound.import(&down.command).await.map_err(fail)?;
        let (tx, back) = unbounded_channel();
        down.command.subscribe_with("bench-hop", move |c| {
            let at = Instant::now();
            tx.send((c.t_us, at)).is_ok()
        });
        Ok(Self {
            up,
            back,
            sent: 0,
            _bridges: [outbound, inbound],
            _down: down,
            _links: (export, import),
        })
    }

    /// Sends the next command; its number and when it was sent.
    fn send(&mut self) -> (u64, Instant) {
        let seq = self.sent;
        self.sent += 1;
        let t0 = Instant::now();
        self.up.command.publish(command(seq));
        (seq, t0)
    }

    /// Waits up to `within` for command `seq` to come back (earlier ones, late, are
    /// skipped); when it came, or `None`.
    async fn back_of(&mut self, seq: u64, within: Duration) -> Result<Option<Instant>, BenchError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.back.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err(fail("the bridge's receiving side closed")),
                Ok(Some((got, at))) if got == seq => return Ok(Some(at)),
                Ok(Some(_)) => {}
            }
        }
    }

    /// One round trip.
    async fn round_trip(&mut self) -> Result<Duration, BenchError> {
        let (seq, t0) = self.send();
        match self.back_of(seq, FAILSAFE).await? {
            Some(at) => Ok(at.duration_since(t0)),
            None => Err(fail(format!("command {seq} never came back"))),
        }
    }
}

async fn hop(zenoh: &ZenohConfig, round_trips: usize) -> Result<HopReport, BenchError> {
    let endpoint = zenoh.connect.join(" ");
    let mut near = NearEnd::open(zenoh).await?;
    // Probes until one comes back: the echo is reached and both ways are matched.
    let start = tokio::time::Instant::now();
    loop {
        let (seq, _) = near.send();
        if near.back_of(seq, PROBE).await?.is_some() {
            break;
        }
        if start.elapsed() > REACH {
            return Err(fail(format!(
                "no echo at {endpoint} within {}s (is `nevil bench --echo` running there?)",
                REACH.as_secs()
            )));
        }
    }
    for _ in 0..WARM_UP {
        near.round_trip().await?;
    }
    let mut samples = Vec::with_capacity(round_trips);
    for _ in 0..round_trips {
        samples.push(near.round_trip().await?);
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (p50, p99) = (
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
    );
    Ok(HopReport {
        endpoint,
        round_trips,
        round_trip_p50_us: us(p50),
        round_trip_p99_us: us(p99),
        hop_p50_us: us(p50) / 2.0,
        hop_p99_us: us(p99) / 2.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_endpoint_is_named_with_its_flag() {
        let e = end_config("--hop", "127.0.0.1:7447", false).unwrap_err();
        assert!(e.starts_with("--hop "), "{e}");
        assert!(e.contains("127.0.0.1:7447"), "{e}");
        let zenoh = end_config("--echo", "tcp/127.0.0.1:0", true).unwrap();
        assert_eq!(zenoh.listen, ["tcp/127.0.0.1:0"]);
        assert!(zenoh.connect.is_empty());
    }
}
