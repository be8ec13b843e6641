//! The bus bridge's hop: two [`Bridge`]s in this process (one clock on both ends), over
//! a unix socket as between the robot and a group's process, or over TCP on loopback
//! as between a robot and its node ([`Link`]); a parent exporting `command` and a child
//! importing it.
//!
//! - **hop**: one small [`Command`], from `publish` on the parent's topic to its
//!   delivery on the child's, one at a time;
//! - **throughput**: small commands published back to back with at most [`WINDOW`] in
//!   flight, so that none is dropped: the rate the bridge sustains.
//!
//! Zenoh needs a multi-threaded runtime: [`measure`] runs the scenario on one of its
//! own (two workers), whatever runtime calls it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::{fail, percentile, BenchError};
use crate::bus::{net, Bridge, Bus, Command, Direction, Export, Import, Source};
use crate::config::ZenohConfig;

/// What the two bridges talk over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A unix socket (a group's process).
    Unix,
    /// TCP on loopback, through [`net::open`]'s sessions (a node).
    Tcp,
}

/// Commands in flight at most during the throughput run: below the export's queue, so
/// nothing is dropped.
pub const WINDOW: u64 = 128;

/// The longest any one message may take before the scenario gives up.
const FAILSAFE: Duration = Duration::from_secs(10);

/// A parent and a child bridge carrying `command` from the first to the second.
pub struct BridgeScenario {
    up: Bus,
    received: UnboundedReceiver<(u64, Instant)>,
    sent: u64,
    _export: Export,
    _import: Import,
    parent: Bridge,
    _child: Bridge,
    socket: PathBuf,
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

impl BridgeScenario {
    /// Opens both ends over `link` and waits until the child's import matches.
    pub async fn start(link: Link) -> Result<Self, BenchError> {
        let socket = std::env::temp_dir().join(format!(
            "nevil-bench-bridge-{}-{}.sock",
            std::process::id(),
            fastrand::u32(..)
        ));
        let (parent, child) = match link {
            Link::Unix => {
                let parent = Bridge::listen(&socket, "nevil/bench").await.map_err(fail)?;
                let child = Bridge::connect(&socket, "nevil/bench")
                    .await
                    .map_err(fail)?;
                (parent, child)
            }
            Link::Tcp => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map_err(fail)?
                    .port();
                let endpoint = format!("tcp/127.0.0.1:{port}");
                let listen = ZenohConfig {
                    listen: vec![endpoint.clone()],
                    ..ZenohConfig::default()
                };
                let connect = ZenohConfig {
                    connect: vec![endpoint],
                    ..ZenohConfig::default()
                };
                let parent = net::open(&listen).await.map_err(fail)?;
                let child = net::open(&connect).await.map_err(fail)?;
                (
                    Bridge::over(parent, "nevil/bench").map_err(fail)?,
                    Bridge::over(child, "nevil/bench").map_err(fail)?,
                )
            }
        };
        let (up, down) = (Bus::new(1024), Bus::new(1024));
        let import = child.import(&down.command).await.map_err(fail)?;
        let export = parent.export(&up.command).await.map_err(fail)?;
        export.wait_matched(FAILSAFE).await.map_err(fail)?;
        let (tx, received) = unbounded_channel();
        down.command.subscribe_with("bench", move |d| {
            let at = Instant::now();
            tx.send((d.t_us, at)).is_ok()
        });
        Ok(Self {
            up,
            received,
            sent: 0,
            _export: export,
            _import: import,
            parent,
            _child: child,
            socket,
        })
    }

    fn publish(&mut self) -> u64 {
        let seq = self.sent;
        self.sent += 1;
        self.up.command.publish(command(seq));
        seq
    }

    async fn receive(&mut self) -> Result<(u64, Instant), BenchError> {
        tokio::time::timeout(FAILSAFE, self.received.recv())
            .await
            .map_err(|_| fail("a command never crossed the bridge"))?
            .ok_or_else(|| fail("the bridge's receiving side closed"))
    }

    /// One command from the parent's publish to the child's delivery.
    pub async fn hop_once(&mut self) -> Result<Duration, BenchError> {
        let t0 = Instant::now();
        let seq = self.publish();
        let (got, at) = self.receive().await?;
        if got != seq {
            return Err(fail(format!("sent command {seq}, received {got}")));
        }
        Ok(at.duration_since(t0))
    }

    /// Sends `n` commands with at most [`WINDOW`] in flight; the time until the last
    /// arrived. Fails if any was lost or came out of order.
    pub async fn throughput(&mut self, n: u64) -> Result<Duration, BenchError> {
        let first = self.sent;
        let mut next_expected = first;
        let t0 = Instant::now();
        while next_expected < first + n {
            if self.sent < first + n && self.sent - next_expected < WINDOW {
                self.publish();
                continue;
            }
            let (got, _) = self.receive().await?;
            if got != next_expected {
                return Err(fail(format!("expected command {next_expected}, got {got}")));
            }
            next_expected += 1;
        }
        let took = t0.elapsed();
        let dropped: u64 = self
            .parent
            .stats()
            .iter()
            .filter(|s| s.direction == Direction::Export)
            .map(|s| s.dropped)
            .sum();
        if dropped > 0 {
            return Err(fail(format!("the export dropped {dropped} commands")));
        }
        Ok(took)
    }

    /// Closes both ends and removes the socket.
    pub fn stop(self) {
        let socket = self.socket.clone();
        drop(self);
        let _ = std::fs::remove_file(socket);
    }
}

/// The bridge's figures for `nevil bench`.
#[derive(Debug, Clone, Copy)]
pub struct BridgeFigures {
    /// One-way hop, median.
    pub hop_p50: Duration,
    /// One-way hop, 99th percentile.
    pub hop_p99: Duration,
    /// Small messages per second, none dropped.
    pub msgs_per_s: f64,
}

async fn run(link: Link, hops: usize, messages: u64) -> Result<BridgeFigures, BenchError> {
    let mut scenario = BridgeScenario::start(link).await?;
    for _ in 0..100 {
        scenario.hop_once().await?;
    }
    let mut samples = Vec::with_capacity(hops);
    for _ in 0..hops {
        samples.push(scenario.hop_once().await?);
    }
    let took = scenario.throughput(messages).await?;
    scenario.stop();
    Ok(BridgeFigures {
        hop_p50: percentile(&mut samples, 0.5),
        hop_p99: percentile(&mut samples, 0.99),
        msgs_per_s: messages as f64 / took.as_secs_f64(),
    })
}

/// Measures `hops` single hops and the throughput of `messages` commands over `link`,
/// on a multi-threaded runtime of its own (in a thread of its own), and hands the
/// figures back to whatever runtime awaits them.
pub async fn measure(link: Link, hops: usize, messages: u64) -> Result<BridgeFigures, BenchError> {
    super::on_multi_thread("bench-bridge", move || run(link, hops, messages)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn runs_from_a_current_thread_runtime_and_counts() {
        for link in [Link::Unix, Link::Tcp] {
            let figures = measure(link, 20, 500).await.unwrap();
            assert!(figures.hop_p50 <= figures.hop_p99);
            assert!(figures.hop_p50 > Duration::ZERO);
            assert!(figures.msgs_per_s.is_finite() && figures.msgs_per_s > 0.0);
        }
    }
}
