//! The L1 (or L2) workload alone, for instruction counts that the
//! machine's noise does not move, and for `perf record`:
//! `valgrind --tool=callgrind target/release/linear_profile [steps] [slotarena|system] [1|2]`
//! (20 000 steps of slotarena's linear memory on one thread by default).
//! Subtract a run with fewer steps to drop the set-up: (I refs at 40 000 −
//! I refs at 20 000) ÷ 20 000 is the cost of one step.

use std::sync::Arc;

use slotarena_bench::linear::{self as lin, Allocator, Ours, System, Working};

fn run<A: Allocator>(steps: u64, threads: u32) {
    let allocator = Arc::new(A::new());
    if threads == 2 {
        lin::l2(&allocator, steps);
    } else {
        let mut working = Working::new(&allocator, 1);
        working.steps(steps);
        working.finish();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let steps = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let system = args.next().as_deref() == Some("system");
    let threads = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    if system {
        run::<System>(steps, threads);
    } else {
        run::<Ours>(steps, threads);
    }
}
