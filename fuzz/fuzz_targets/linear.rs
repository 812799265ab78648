//! Arbitrary alloc/free/mut_mem/grow sequences through several controllers,
//! hostile pointers and lengths included, against the interval model of
//! `tests/support/linear_model.rs`: no call panics, every answer matches,
//! written bytes survive until freed.
#![no_main]

#[path = "../../tests/support/linear_model.rs"]
mod linear_model;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use linear_model::{LinearModel, LinearOp};

/// Mostly small lengths, sometimes large or hostile ones.
fn length(u: &mut Unstructured<'_>) -> Result<u32> {
    Ok(match u.int_in_range(0..=9u8)? {
        0..=5 => u.int_in_range(1..=256)?,
        6 | 7 => u.int_in_range(256..=5000)?,
        8 => u.int_in_range(30_000..=200_000)?,
        _ => u.arbitrary()?,
    })
}

fn op(u: &mut Unstructured<'_>) -> Result<LinearOp> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => LinearOp::Alloc(length(u)?),
        1 => LinearOp::AllocAligned(length(u)?, u.arbitrary()?),
        2 => LinearOp::Free(u.arbitrary()?),
        3 => LinearOp::FreeWrongLength(u.arbitrary()?, u.arbitrary()?),
        4 => LinearOp::FreeRaw(u.arbitrary()?, length(u)?),
        5 => LinearOp::Write { pick: u.arbitrary()?, offset: u.arbitrary()?, len: u.arbitrary()?, byte: u.arbitrary()? },
        6 => LinearOp::RawAccess(u.int_in_range(0..=8 * 65_536)?, length(u)?),
        7 => LinearOp::Verify(u.arbitrary()?),
        8 => LinearOp::Switch(u.arbitrary()?),
        _ => LinearOp::Grow(u.int_in_range(0..=3)?),
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(initial), Ok(extra)) = (u.int_in_range(0..=2u32), u.int_in_range(0..=6u32)) else { return };
    let mut model = LinearModel::new(initial, initial + extra);
    // `Unstructured` keeps answering defaults once the data runs out, so
    // stop at the end of the data (and at a bound, to keep runs short).
    for _ in 0..512 {
        if u.is_empty() {
            break;
        }
        let Ok(next) = op(&mut u) else { break };
        model.step(&next);
    }
    model.finish();
});
