//! The bus bridge between processes: one small message's hop over a unix socket, and
//! the throughput of small messages (the scenario of `nevil bench`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, Criterion};
use nevil::cli::bench::bridge::{BridgeScenario, Link};
use tokio::runtime::Runtime;

/// Zenoh needs a multi-threaded runtime.
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn bridge(c: &mut Criterion) {
    let rt = runtime();
    let mut scenario = rt.block_on(BridgeScenario::start(Link::Unix)).unwrap();
    let mut group = c.benchmark_group("bridge");
    group.bench_function("hop_small_command", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += scenario.hop_once().await.unwrap();
                }
                total
            })
        })
    });
    group.throughput(criterion::Throughput::Elements(1000));
    group.bench_function("1000_small_commands", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += scenario.throughput(1000).await.unwrap();
                }
                total
            })
        })
    });
    group.finish();
    rt.block_on(async { scenario.stop() });
}

criterion_group!(benches, bridge);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
