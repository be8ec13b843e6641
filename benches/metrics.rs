//! `/metrics` render time of a 1,000-actor tree (the scenario behind `nevil bench`'s
//! `metrics_render_1000_actors_ms`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, Criterion};
use nevil::cli::bench::scale::LargeTree;

fn metrics_render(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let scenario = rt.block_on(LargeTree::start(1000)).unwrap();
    let (_, bytes) = scenario.render_once();
    println!("metrics text for 1,000 actors: {bytes} bytes");
    c.bench_function("metrics_render_1000_actors", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| scenario.render_once().0).sum())
    });
    rt.block_on(scenario.stop());
}

criterion_group!(benches, metrics_render);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
