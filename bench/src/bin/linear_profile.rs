//! The L1 (or L2) workload alone, for instruction counts that the
//! machine's noise does not move, and for `perf record`:
//! `valgrind --tool=callgrind target/release/linear_profile [steps] [slotarena|system] [1|2]`
//! (20 000 steps of slotarena's linear memory on one thread by default).
//! Subtract a run with fewer steps to drop the set-up: (I refs at 40 000 −
//! I refs at 20 000) ÷ 20 000 is the cost of one step.
//!
//! `linear_profile [steps] pair [len]` instead allocates and frees one
//! block of `len` bytes (1024 by default) `steps` times through one
//! handle: the cost of an alloc+free pair of one size alone.
//!
//! One thread's run also prints the highest end handed out over the most
//! bytes live at once (bench_report's "span ÷ peak live"), which depends on
//! the steps, not on the machine.

use std::sync::Arc;

use slotarena::linear::SharedLinearMemory;
use slotarena_bench::linear::{self as lin, Allocator, Ours, System, Working};

fn run<A: Allocator>(steps: u64, threads: u32) {
    let allocator = Arc::new(A::new());
    if threads == 2 {
        lin::l2(&allocator, steps);
    } else {
        let mut working = Working::new(&allocator, 1);
        working.steps(steps);
        // bench_report's space column without its timing runs.
        if let Some(span) = allocator.span() {
            eprintln!(
                "span / peak live: {:.3}",
                span as f64 / working.peak_live_bytes() as f64
            );
        }
        working.finish();
    }
}

/// `steps` alloc+free pairs of `len` bytes through one handle.
fn pairs(steps: u64, len: u32) {
    let memory = SharedLinearMemory::new(1, lin::SPACE / slotarena::linear::PAGE_SIZE).unwrap();
    let mut handle = memory.controller();
    for _ in 0..steps {
        let ptr = handle.alloc(std::hint::black_box(len)).expect("room");
        handle.free(std::hint::black_box(ptr), len).expect("live");
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let steps = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    match args.next().as_deref() {
        Some("pair") => pairs(
            steps,
            args.next().and_then(|a| a.parse().ok()).unwrap_or(1024),
        ),
        which => {
            let threads = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
            if which == Some("system") {
                run::<System>(steps, threads);
            } else {
                run::<Ours>(steps, threads);
            }
        }
    }
}
