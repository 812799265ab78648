//! L1–L2 for slotarena's linear memory and its peers, side by side in each
//! benchmark group. `cargo bench -p slotarena-bench --bench linear`.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use slotarena_bench::linear::{self, Allocator, OffsetAllocator, Ours, System, Talc, Working};

fn one<A: Allocator>(c: &mut Criterion) {
    let allocator = Arc::new(A::new());
    let mut working = Working::new(&allocator, 1);
    c.benchmark_group("L1 free+alloc, 256 live, 1 thread")
        .bench_function(BenchmarkId::from_parameter(A::NAME), |b| {
            b.iter_custom(|iters| linear::l1(&mut working, iters))
        });
    working.finish();
    c.benchmark_group("L2 free+alloc, 256 live each, 2 threads")
        .bench_function(BenchmarkId::from_parameter(A::NAME), |b| {
            b.iter_custom(|iters| linear::l2(&allocator, iters))
        });
}

fn allocators(c: &mut Criterion) {
    one::<Ours>(c);
    one::<OffsetAllocator>(c);
    one::<Talc>(c);
    one::<System>(c);
}

criterion_group!(benches, allocators);
criterion_main!(benches);
