//! Arbitrary operation sequences applied to every manager and to the
//! reference model of `tests/support/model.rs`, comparing every answer.
#![no_main]

#[path = "../../tests/support/model.rs"]
#[allow(dead_code)]
mod model;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use model::{Model, Op, Subject};
use slotarena::{ConcurrentMemoryManager, HeapMemoryManager, StaticMemoryManager};

fn op(u: &mut Unstructured<'_>) -> Result<Op> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 => Op::Store(u.arbitrary()?),
        1 => Op::Read(u.arbitrary()?),
        2 => Op::TryRead(u.arbitrary()?),
        3 => Op::Write(u.arbitrary()?, u.arbitrary()?),
        4 => Op::Peek(u.arbitrary()?),
        5 => Op::Free(u.arbitrary()?),
        6 => Op::Take(u.arbitrary()?),
        _ => Op::Forged(u.arbitrary()?),
    })
}

fn run(subject: &mut dyn Subject, capacity: usize, ops: &[Op]) {
    let mut model = Model::new(capacity);
    for op in ops {
        model.step(subject, op);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(capacity) = u.int_in_range(0..=8usize) else { return };
    // `Unstructured` keeps answering defaults once the data runs out, so
    // stop at the end of the data (and at a bound, to keep runs short).
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < 512 {
        let Ok(next) = op(&mut u) else { break };
        ops.push(next);
    }
    run(&mut HeapMemoryManager::new(capacity), capacity, &ops);
    run(&mut ConcurrentMemoryManager::new(capacity), capacity, &ops);
    run(&mut StaticMemoryManager::<u64, 8>::new(), 8, &ops);
});
