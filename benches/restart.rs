//! Restart latency: kill a supervised child, time until its replacement answers a call.
//!
//! Cases (from `nevil::cli::bench`): one child under `one_for_one`, a `rest_for_one` chain of 3
//! (kill the first, time until the third answers), and the single-child restart under a
//! hand-written bare ractor supervisor as the floor. After criterion's estimates,
//! `cargo bench` prints p50/p99 over individual restarts. DESIGN.md's target: p50 ≤ 50 µs
//! (goal ≤ 5 µs for one child, ≤ 15 µs for a chain of 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, Criterion};
use nevil::cli::bench::{percentile, restart_samples, RestartCase};
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
    for case in RestartCase::ALL {
        group.bench_function(case.name(), |b| {
            b.iter_custom(|iters| {
                let samples = rt.block_on(restart_samples(case, iters)).unwrap();
                samples.iter().sum()
            })
        });
    }
    group.finish();
}

/// p50/p99 over single restarts, which criterion's per-sample means do not show.
fn percentiles() {
    const N: u64 = 5000;
    let rt = runtime();
    for case in RestartCase::ALL {
        let mut samples = rt.block_on(restart_samples(case, N)).unwrap();
        let p50 = percentile(&mut samples, 0.5);
        let p99 = percentile(&mut samples, 0.99);
        println!(
            "restart/{}: p50 {:.1} µs, p99 {:.1} µs over {N} restarts",
            case.name(),
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
}

criterion_group!(benches, restart);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        percentiles();
    }
}
