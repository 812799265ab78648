//! A limen-core graph (four nodes, three edges) on limen-core's concurrent
//! scoped runtime, run end to end on each memory manager with exact
//! accounting: every frame created is dropped exactly once, and at any
//! stop each manager holds exactly the messages its edge holds.
#![cfg(feature = "limen")]

#[path = "support/limen_graph.rs"]
mod limen_graph;

use std::time::Duration;

use limen_core::memory::concurrent_manager::ConcurrentMemoryManager;
use limen_core::memory::manager::ScopedManager;
use limen_graph::{EDGES, Frame, Pipeline, edge_policy, run_until};
use slotarena::compat::limen::LimenConcurrentManager;

/// Items an edge holds at most.
const EDGE_CAPACITY: usize = 8;
/// What a manager must hold beside a full edge: one message its producer
/// stored but has not pushed yet, one its consumer popped but has not freed.
const MANAGER_CAPACITY: usize = EDGE_CAPACITY + 2;
/// Long enough never to be reached on a healthy run.
const LIMIT: Duration = Duration::from_secs(120);

fn frames() -> u64 {
    if cfg!(miri) { 50 } else { 2_000 }
}

/// The graph that never evicts, on managers built by `make`.
fn lossless<M: ScopedManager<Frame>>(total: u64, make: impl Fn(usize) -> M) -> Pipeline<M> {
    let policy = edge_policy(EDGE_CAPACITY, EDGE_CAPACITY);
    Pipeline::new(total, policy, [0, 1, 2].map(|_| make(MANAGER_CAPACITY)))
}

fn every_frame_arrives_and_every_message_is_freed<M: ScopedManager<Frame>>(
    make: impl Fn(usize) -> M,
) {
    let total = frames();
    let mut graph = lossless(total, make);
    let (_, finished) = run_until(&mut graph, LIMIT, |ledger| ledger.received() == total);
    let ledger = graph.ledger().clone();
    assert!(
        finished,
        "the sink got {} of {total} frames",
        ledger.received()
    );
    assert_eq!(ledger.corrupt(), 0);
    assert_eq!(
        ledger.created(),
        3 * total,
        "source, double and increment each make one"
    );
    assert_eq!(ledger.alive(), 0, "a frame outlived the run");
    assert_eq!(graph.edge_items(), [0; EDGES]);
    assert_eq!(graph.slots_in_use(), [0; EDGES]);
    for manager in graph.managers() {
        assert_eq!(manager.available(), MANAGER_CAPACITY);
    }
}

fn a_run_stopped_midway_holds_exactly_what_its_edges_hold<M: ScopedManager<Frame>>(
    make: impl Fn(usize) -> M,
) {
    let total = 1_000_000; // more than the run gets through before it stops
    let mut graph = lossless(total, make);
    let (_, finished) = run_until(&mut graph, LIMIT, |ledger| {
        ledger.received() >= frames() / 2
    });
    assert!(finished);
    let ledger = graph.ledger().clone();
    assert_eq!(ledger.corrupt(), 0);
    let items = graph.edge_items();
    assert_eq!(
        graph.slots_in_use(),
        items,
        "slots in use per edge vs items per edge"
    );
    assert_eq!(ledger.alive(), items.iter().sum::<usize>() as u64);
    drop(graph);
    assert_eq!(
        ledger.alive(),
        0,
        "dropping the graph drops every stored message"
    );
}

fn evicting_edges_free_every_message_they_evict<M: ScopedManager<Frame>>(
    make: impl Fn(usize) -> M,
) {
    let total = frames();
    // Past two items the producer evicts the oldest, and limen-core frees
    // the evicted token ignoring the result.
    let policy = edge_policy(EDGE_CAPACITY, 2);
    let mut graph = Pipeline::new(total, policy, [0, 1, 2].map(|_| make(MANAGER_CAPACITY)));
    let (_, finished) = run_until(&mut graph, LIMIT, |ledger| ledger.drained());
    let ledger = graph.ledger().clone();
    assert!(finished, "{} frames still alive", ledger.alive());
    assert_eq!(ledger.corrupt(), 0);
    assert!(ledger.received() <= total);
    assert_eq!(graph.edge_items(), [0; EDGES]);
    assert_eq!(graph.slots_in_use(), [0; EDGES]);
}

macro_rules! on_manager {
    ($suite:ident, $make:expr) => {
        mod $suite {
            use super::*;

            #[test]
            fn every_frame_arrives_and_every_message_is_freed() {
                super::every_frame_arrives_and_every_message_is_freed($make);
            }

            #[test]
            fn a_run_stopped_midway_holds_exactly_what_its_edges_hold() {
                super::a_run_stopped_midway_holds_exactly_what_its_edges_hold($make);
            }

            #[test]
            fn evicting_edges_free_every_message_they_evict() {
                super::evicting_edges_free_every_message_they_evict($make);
            }
        }
    };
}

// The adapter, and limen-core's own manager as the reference it must match.
on_manager!(adapter, LimenConcurrentManager::<Frame>::new);
on_manager!(limen_own, ConcurrentMemoryManager::<Frame>::new);
