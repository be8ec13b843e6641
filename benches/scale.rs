//! A tree of 10,000 idle managed workers under 100 supervisors: one snapshot, one
//! `/metrics` render, and one restart inside it (the scenarios behind `nevil bench`'s
//! `tree_10k_*` figures). Start time and the heap per idle actor are one-shot figures:
//! `nevil bench --json` reports them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, Criterion};
use nevil::cli::bench::scale::LargeTree;

fn tree_10k(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut tree = rt.block_on(LargeTree::start(10_000)).unwrap();
    println!("10,000-actor tree started in {:?}", tree.started_in);
    // The first render registers every series; the steady state is what repeats.
    tree.render_once();
    let mut group = c.benchmark_group("tree_10k");
    group.sample_size(20);
    group.bench_function("snapshot", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| tree.snapshot_once().0).sum())
    });
    group.bench_function("metrics_render", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| tree.render_once().0).sum())
    });
    group.bench_function("restart", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    total += tree.restart_once("root/g50/w50").await.unwrap();
                }
                total
            })
        })
    });
    group.finish();
    rt.block_on(tree.stop());
}

criterion_group!(benches, tree_10k);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
