//! Resource governance costs: call round trip to a managed actor, the suspend → resume
//! round trip, and quota breach → action (the same scenarios as `nevil bench`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, Criterion};
use nevil::cli::bench::{breach_to_action_once, ThroughputScenario};
use nevil_actors::CountingAlloc;
use tokio::runtime::Runtime;

/// Memory quotas need allocations charged to actors, as in the `nevil` binary.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn governance(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("governance");
    group.bench_function("call_round_trip", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let s = ThroughputScenario::supervised().await.unwrap();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += s.call_once().await.unwrap();
                }
                s.stop().await;
                total
            })
        })
    });
    group.bench_function("suspend_resume_round_trip", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let s = ThroughputScenario::supervised().await.unwrap();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += s.suspend_resume_once().await.unwrap();
                }
                s.stop().await;
                total
            })
        })
    });
    group.sample_size(10);
    group.bench_function("breach_to_action_100ms_sampling", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += breach_to_action_once(Duration::from_millis(100))
                        .await
                        .unwrap();
                }
                total
            })
        })
    });
    group.finish();
}

criterion_group!(benches, governance);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
