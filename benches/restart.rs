//! Restart latency: kill a supervised child, time until its replacement answers a call.
//!
//! Scenarios (from `nevil::bench`): one child under `one_for_one`, a `rest_for_one` chain
//! of 3 (kill the first, time until the third answers), and the same single-child restart
//! under a hand-written bare ractor supervisor as the floor. After criterion's estimates,
//! `cargo bench` prints p50/p99 over individual restarts. DESIGN.md's target: p50 ≤ 50 µs
//! (goal ≤ 5 µs for one child, ≤ 15 µs for a chain of 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, Criterion};
use nevil::bench::{percentile, BareRestartScenario, RestartScenario};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn restart(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("restart");
    group.bench_function("one_for_one", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut s = RestartScenario::one_for_one().await.unwrap();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += s.restart_once().await.unwrap();
                }
                s.stop().await;
                total
            })
        })
    });
    group.bench_function("rest_for_one_chain_of_3", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut s = RestartScenario::rest_for_one_chain(3).await.unwrap();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += s.restart_once().await.unwrap();
                }
                s.stop().await;
                total
            })
        })
    });
    group.bench_function("bare_ractor", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut s = BareRestartScenario::start().await.unwrap();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += s.restart_once().await.unwrap();
                }
                s.stop().await;
                total
            })
        })
    });
    group.finish();
}

/// p50/p99 over single restarts, which criterion's per-sample means do not show.
fn percentiles() {
    const N: usize = 5000;
    let rt = runtime();
    rt.block_on(async {
        let report = |name: &str, mut samples: Vec<Duration>| {
            let p50 = percentile(&mut samples, 0.5);
            let p99 = percentile(&mut samples, 0.99);
            println!(
                "restart/{name}: p50 {:.1} µs, p99 {:.1} µs over {N} restarts",
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6
            );
        };
        let mut s = RestartScenario::one_for_one().await.unwrap();
        let mut samples = Vec::with_capacity(N);
        for _ in 0..N {
            samples.push(s.restart_once().await.unwrap());
        }
        s.stop().await;
        report("one_for_one", samples);

        let mut s = RestartScenario::rest_for_one_chain(3).await.unwrap();
        let mut samples = Vec::with_capacity(N);
        for _ in 0..N {
            samples.push(s.restart_once().await.unwrap());
        }
        s.stop().await;
        report("rest_for_one_chain_of_3", samples);

        let mut s = BareRestartScenario::start().await.unwrap();
        let mut samples = Vec::with_capacity(N);
        for _ in 0..N {
            samples.push(s.restart_once().await.unwrap());
        }
        s.stop().await;
        report("bare_ractor", samples);
    });
}

criterion_group!(benches, restart);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        percentiles();
    }
}
