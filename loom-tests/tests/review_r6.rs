//! Review R6: models of 3834153 (a small free swaps its field from the
//! word it read, `FieldRef::exchange_seen`): the compare-and-swap that
//! fails because a neighbour's field in the same word changed must retry
//! on the block's own field, never answer for a field it did not check,
//! and a free must never swap a field claimed since its read. Both passed
//! (kept as evidence).
#![cfg(loom)]

use loom::thread;
use slotarena::linear::{LinearMemoryController, LinearMemoryError, SharedLinearMemory};

/// A linear memory's model, with room for its set-up's branches.
fn model(f: impl Fn() + Sync + Send + 'static) {
    slotarena_loom_tests::model_with_branches(10_000, f);
}

/// The 448-byte class: two blocks per span, both fields in one word.
const SMALL: u32 = 400;

/// Two live blocks whose fields share one word, allocated by a handle
/// that is gone.
fn neighbours(memory: &SharedLinearMemory) -> (u32, u32) {
    let mut owner = LinearMemoryController::new(memory);
    let a = owner.alloc(SMALL).unwrap();
    let b = owner.alloc(SMALL).unwrap();
    (a, b)
}

/// One thread frees `a`; the other frees `a`'s neighbour `b` (same field
/// word) and then `a` again: exactly one free of `a` succeeds, the other
/// answers `DoubleFree`, and no byte stays counted.
#[test]
fn r6_neighbour_frees_in_one_word_and_a_racing_double_free() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let (a, b) = neighbours(&memory);
        let other = {
            let memory = memory.clone();
            thread::spawn(move || LinearMemoryController::new(&memory).free(a, SMALL))
        };
        let mut c = LinearMemoryController::new(&memory);
        c.free(b, SMALL).unwrap();
        let mine = c.free(a, SMALL);
        let theirs = other.join().unwrap();
        match (mine, theirs) {
            (Ok(()), Err(LinearMemoryError::DoubleFree))
            | (Err(LinearMemoryError::DoubleFree), Ok(())) => {}
            answers => panic!("two frees of one block: {answers:?}"),
        }
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// A claim on `a` by one handle races a free of `a` from another, whose
/// field word also changes under it (the neighbour `b` freed first): the
/// free answers `Busy` while the claim holds and never frees claimed
/// bytes; once the claimer is gone it succeeds.
#[test]
fn r6_a_free_whose_word_changed_never_swaps_a_claimed_field() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let (a, b) = neighbours(&memory);
        let claimer = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                match c.mut_mem(a, 4) {
                    Ok(bytes) => {
                        bytes.copy_from_slice(&[1, 2, 3, 4]);
                        assert_eq!(bytes, [1, 2, 3, 4], "bytes changed under a claim");
                        true
                    }
                    Err(e) => {
                        assert_eq!(e, LinearMemoryError::UnknownPointer);
                        false
                    }
                }
            })
        };
        let mut c = LinearMemoryController::new(&memory);
        c.free(b, SMALL).unwrap();
        let freed = c.free(a, SMALL);
        let claimed = claimer.join().unwrap();
        match freed {
            Ok(()) => {}
            Err(LinearMemoryError::Busy) => {
                assert!(claimed);
                c.free(a, SMALL).unwrap();
            }
            Err(e) => panic!("{e:?}"),
        }
        assert_eq!(memory.allocated_bytes(), 0);
    });
}
