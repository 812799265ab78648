//! Model-based property tests of the linear memory: alloc/free/mut_mem/grow
//! sequences through several controllers, hostile pointers and lengths
//! included, against an interval set.

mod support;

use proptest::prelude::*;
use slotarena::linear::PAGE_SIZE;
use support::linear_model::{LinearModel, LinearOp};

fn length() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 1u32..256,
        3 => 256u32..5000,
        1 => 30_000u32..3 * PAGE_SIZE,
        1 => Just(0u32),
        1 => any::<u32>(),
    ]
}

fn op() -> impl Strategy<Value = LinearOp> {
    prop_oneof![
        6 => length().prop_map(LinearOp::Alloc),
        1 => (length(), any::<u8>()).prop_map(|(len, shift)| LinearOp::AllocAligned(len, shift)),
        4 => any::<usize>().prop_map(LinearOp::Free),
        1 => (any::<usize>(), any::<u32>()).prop_map(|(p, d)| LinearOp::FreeWrongLength(p, d)),
        1 => (any::<u32>(), length()).prop_map(|(p, l)| LinearOp::FreeRaw(p, l)),
        1 => ((0u32..8 * PAGE_SIZE), length()).prop_map(|(p, l)| LinearOp::FreeRaw(p & !7, l)),
        3 => (any::<usize>(), any::<u32>(), any::<u32>(), any::<u8>())
            .prop_map(|(pick, offset, len, byte)| LinearOp::Write { pick, offset, len, byte }),
        2 => ((0u32..8 * PAGE_SIZE), 0u32..300).prop_map(|(p, l)| LinearOp::RawAccess(p, l)),
        1 => (0u32..8 * PAGE_SIZE).prop_map(|p| LinearOp::RawAccess(p & !3, 0)),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(p, l)| LinearOp::RawAccess(p, l)),
        2 => any::<usize>().prop_map(LinearOp::Verify),
        1 => (0u32..3).prop_map(LinearOp::Grow),
        3 => any::<u8>().prop_map(LinearOp::Switch),
    ]
}

proptest! {
    // 128 cases, or as many as PROPTEST_CASES asks for (a deeper local run).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(128),
        ..ProptestConfig::default()
    })]

    #[test]
    fn linear_memory_matches_the_interval_model(
        initial in 0u32..3,
        extra in 0u32..6,
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let mut model = LinearModel::new(initial, initial + extra);
        for op in &ops {
            model.step(op);
        }
        model.finish();
    }
}
