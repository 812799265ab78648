//! The L1 workload alone, for instruction counts that do not depend on the
//! machine's noise:
//! `valgrind --tool=callgrind target/release/l1_profile [steps] [system]`
//! (20 000 steps of slotarena's linear memory by default; `system` runs the
//! system allocator instead). Subtract a run with fewer steps to drop the
//! set-up: (I refs at 40 000 − I refs at 20 000) ÷ 20 000 is the cost of
//! one step.

use std::sync::Arc;

use slotarena_bench::linear::{Allocator, Ours, System, Working};

fn run<A: Allocator>(steps: u64) {
    let allocator = Arc::new(A::new());
    let mut working = Working::new(&allocator, 1);
    working.steps(steps);
    working.finish();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let steps = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    match args.next().as_deref() {
        Some("system") => run::<System>(steps),
        _ => run::<Ours>(steps),
    }
}
