//! Cast throughput into a counting actor: bare ractor vs supervised (inside `Managed`).
//!
//! Each iteration casts a batch and waits (one call) until all were handled. After
//! criterion's estimates, `cargo bench` prints the supervised/bare throughput ratio over
//! interleaved batches. DESIGN.md's target for managed actors: ≥ 0.9× bare.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use nevil::cli::bench::{percentile, ThroughputScenario};
use tokio::runtime::Runtime;

const BATCH: u64 = 10_000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn casts(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("cast_throughput");
    group.throughput(Throughput::Elements(BATCH));
    for supervised in [false, true] {
        let name = if supervised { "supervised" } else { "bare" };
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut s = if supervised {
                        ThroughputScenario::supervised().await.unwrap()
                    } else {
                        ThroughputScenario::bare().await.unwrap()
                    };
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += s.cast_batch(BATCH).await.unwrap();
                    }
                    s.stop().await;
                    total
                })
            })
        });
    }
    group.finish();
}

/// Median messages/s of each over interleaved batches, and their ratio.
fn ratio() {
    const ROUNDS: usize = 200;
    let rt = runtime();
    rt.block_on(async {
        let mut bare = ThroughputScenario::bare().await.unwrap();
        let mut sup = ThroughputScenario::supervised().await.unwrap();
        let (mut tb, mut ts) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            tb.push(bare.cast_batch(BATCH).await.unwrap());
            ts.push(sup.cast_batch(BATCH).await.unwrap());
        }
        let rate = |d: Duration| BATCH as f64 / d.as_secs_f64();
        let (b, s) = (
            rate(percentile(&mut tb, 0.5)),
            rate(percentile(&mut ts, 0.5)),
        );
        println!(
            "cast_throughput: bare {:.2} M msgs/s, supervised {:.2} M msgs/s, ratio {:.3}",
            b / 1e6,
            s / 1e6,
            s / b
        );
        bare.stop().await;
        sup.stop().await;
    });
}

criterion_group!(benches, casts);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        ratio();
    }
}
