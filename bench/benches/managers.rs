//! W1–W6 for slotarena's concurrent manager and its peers, side by side in
//! each benchmark group (W6 also with `SlotArena`'s pinned reads).
//! `cargo bench -p slotarena-bench --bench managers`.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use slotarena_bench::slots::{
    self, Arena, Dash, LimenBare, LimenHeader, MutexSlab, Ours, SLOTS, Sharded, Store,
};

fn single_thread<S: Store>(c: &mut Criterion) {
    let store = S::new(SLOTS);
    c.benchmark_group("W1 store+read+free, 1 thread")
        .bench_function(BenchmarkId::from_parameter(S::NAME), |b| {
            b.iter_custom(|iters| slots::w1(&store, iters))
        });
    let keys = slots::prefill(&store);
    c.benchmark_group("W2 random reads, 1 thread")
        .bench_function(BenchmarkId::from_parameter(S::NAME), |b| {
            b.iter_custom(|iters| slots::w2(&store, &keys, iters))
        });
}

fn two_threads<S: Store>(c: &mut Criterion) {
    let store = Arc::new(S::new(SLOTS));
    c.benchmark_group("W3 store+read+free, 2 threads")
        .bench_function(BenchmarkId::from_parameter(S::NAME), |b| {
            b.iter_custom(|iters| slots::w3(&store, iters))
        });
    let filled = Arc::new(S::new(SLOTS));
    let keys = Arc::new(slots::prefill(&*filled));
    c.benchmark_group("W4 random reads + 1% writes, 2 threads")
        .bench_function(BenchmarkId::from_parameter(S::NAME), |b| {
            b.iter_custom(|iters| slots::w4(&filled, &keys, iters))
        });
    c.benchmark_group("W5 producer/consumer handoff")
        .bench_function(BenchmarkId::from_parameter(S::NAME), |b| {
            b.iter_custom(|iters| slots::w5(&store, iters))
        });
    let hot = Arc::new(S::new(SLOTS));
    let hot_keys = Arc::new(slots::hot_keys(&*hot));
    c.benchmark_group(W6)
        .bench_function(BenchmarkId::from_parameter(S::NAME), |b| {
            b.iter_custom(|iters| slots::w6(&hot, &hot_keys, iters))
        });
}

const W6: &str = "W6 hot reads: 8 values, 0.1% writes, 2 threads";

fn pinned_reads(c: &mut Criterion) {
    let hot = Arc::new(Arena::new(SLOTS));
    let hot_keys = Arc::new(slots::hot_keys(&*hot));
    c.benchmark_group(W6)
        .bench_function(BenchmarkId::from_parameter(slots::PINNED), |b| {
            b.iter_custom(|iters| slots::w6_pinned(&hot, &hot_keys, iters))
        });
}

fn managers(c: &mut Criterion) {
    single_thread::<Ours>(c);
    single_thread::<Arena>(c);
    single_thread::<LimenHeader>(c);
    single_thread::<LimenBare>(c);
    single_thread::<Sharded>(c);
    single_thread::<MutexSlab>(c);
    single_thread::<Dash>(c);
    two_threads::<Ours>(c);
    two_threads::<Arena>(c);
    two_threads::<LimenHeader>(c);
    two_threads::<LimenBare>(c);
    two_threads::<Sharded>(c);
    two_threads::<MutexSlab>(c);
    two_threads::<Dash>(c);
    pinned_reads(c);
}

criterion_group!(benches, managers);
criterion_main!(benches);
