//! Model-based property tests: random operation sequences applied to each
//! manager and to the reference model in `support/model.rs`.

mod support;

use proptest::prelude::*;
#[cfg(feature = "std")]
use slotarena::ConcurrentMemoryManager;
#[cfg(feature = "alloc")]
use slotarena::HeapMemoryManager;
use slotarena::StaticMemoryManager;
use support::model::{Model, Op, Subject};

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u64>().prop_map(Op::Store),
        2 => any::<usize>().prop_map(Op::Read),
        1 => any::<usize>().prop_map(Op::TryRead),
        2 => (any::<usize>(), any::<u64>()).prop_map(|(t, v)| Op::Write(t, v)),
        1 => any::<usize>().prop_map(Op::Peek),
        2 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::Take),
        1 => any::<u64>().prop_map(Op::Forged),
    ]
}

fn run(subject: &mut dyn Subject, capacity: usize, ops: &[Op]) {
    let mut model = Model::new(capacity);
    for op in ops {
        model.step(subject, op);
    }
}

proptest! {
    #[cfg(feature = "alloc")]
    #[test]
    fn heap_manager_matches_the_model(capacity in 0usize..6, ops in prop::collection::vec(op(), 1..80)) {
        run(&mut HeapMemoryManager::new(capacity), capacity, &ops);
    }

    #[test]
    fn static_manager_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        run(&mut StaticMemoryManager::<u64, 8>::new(), 8, &ops);
    }

    #[cfg(feature = "std")]
    #[test]
    fn concurrent_manager_matches_the_model(capacity in 0usize..6, ops in prop::collection::vec(op(), 1..80)) {
        run(&mut ConcurrentMemoryManager::new(capacity), capacity, &ops);
    }
}
