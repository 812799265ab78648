//! One limen-core graph, run on limen-core's own `ConcurrentMemoryManager`
//! and on slotarena's `LimenConcurrentManager`, with only the manager type
//! changed; prints the throughput of both and checks that nothing leaked.
//!
//! ```text
//! source ──e0──▶ double ──e1──▶ increment ──e2──▶ sink     (one thread each)
//! ```
//!
//! The graph runs on limen-core's concurrent scoped runtime as it ships,
//! whose scheduler sleeps 50 µs when a node has no input and 200 µs under
//! backpressure. Each manager runs it [`ROUNDS`] times, interleaved with
//! the other so that both see the same machine load; the median and the
//! range are printed.
//!
//! `cargo run --release --features limen --example limen_pipeline [frames]`
//! (default 200000). Exits non-zero if a frame leaked, was lost or was
//! corrupted.

#[path = "../tests/support/limen_graph.rs"]
mod limen_graph;

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use limen_core::memory::concurrent_manager::ConcurrentMemoryManager;
use limen_core::memory::manager::ScopedManager;
use limen_graph::{EDGES, Frame, Pipeline, edge_policy, run_until};
use slotarena::compat::limen::LimenConcurrentManager;

const EDGE_CAPACITY: usize = 64;
/// A full edge, plus one message being stored and one being freed.
const MANAGER_CAPACITY: usize = EDGE_CAPACITY + 2;
const LIMIT: Duration = Duration::from_secs(600);
/// Runs per manager.
const ROUNDS: usize = 3;

/// Runs the graph on managers from `make`; returns frames per second, or
/// what went wrong.
fn run<M: ScopedManager<Frame>>(frames: u64, make: impl Fn(usize) -> M) -> Result<f64, String> {
    let policy = edge_policy(EDGE_CAPACITY, EDGE_CAPACITY);
    let mut graph = Pipeline::new(frames, policy, [0, 1, 2].map(|_| make(MANAGER_CAPACITY)));
    let (elapsed, finished) = run_until(&mut graph, LIMIT, |ledger| ledger.received() == frames);
    let ledger = graph.ledger().clone();
    let slots = graph.slots_in_use();
    drop(graph);
    if !finished {
        return Err(format!(
            "timed out: the sink got {} of {frames}",
            ledger.received()
        ));
    }
    if ledger.received() != frames || ledger.corrupt() != 0 {
        return Err(format!(
            "the sink got {} of {frames} frames, {} corrupt",
            ledger.received(),
            ledger.corrupt()
        ));
    }
    if slots != [0; EDGES] || ledger.alive() != 0 {
        return Err(format!(
            "leak: slots in use {slots:?}, {} frames alive",
            ledger.alive()
        ));
    }
    Ok(frames as f64 / elapsed.as_secs_f64())
}

fn main() -> ExitCode {
    let frames = match std::env::args().nth(1).map(|arg| arg.parse::<u64>()) {
        None => 200_000,
        Some(Ok(frames)) if frames > 0 => frames,
        Some(_) => {
            eprintln!("usage: limen_pipeline [frames > 0]");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "limen-core graph: 4 nodes, 3 edges of {EDGE_CAPACITY}, {frames} frames, {} cores",
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut rates = [Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        let results = [
            run(frames, ConcurrentMemoryManager::<Frame>::new),
            run(frames, LimenConcurrentManager::<Frame>::new),
        ];
        for (rates, result) in rates.iter_mut().zip(results) {
            match result {
                Ok(rate) => rates.push(rate),
                Err(error) => {
                    eprintln!("FAILED: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let mut medians = [0.0; 2];
    for (i, manager) in [
        "limen-core ConcurrentMemoryManager",
        "slotarena LimenConcurrentManager",
    ]
    .into_iter()
    .enumerate()
    {
        let rates = &mut rates[i];
        rates.sort_by(f64::total_cmp);
        medians[i] = rates[rates.len() / 2];
        println!(
            "{manager:<35} {:>10.0} frames/s  (range {:.0}–{:.0})",
            medians[i],
            rates[0],
            rates[rates.len() - 1]
        );
    }
    println!(
        "slotarena / limen-core (medians): {:.2}×",
        medians[1] / medians[0]
    );
    println!("every frame arrived intact; every message stored was freed");
    ExitCode::SUCCESS
}
