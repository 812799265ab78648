//! A large block names only its anchors in the directory (its first
//! granule and one per 16 KiB, `directory::anchors`); every other granule
//! may still name whatever owned it before (spans, other large blocks).
//! Lookups of any byte stay exact: `mut_mem` anywhere inside a large block
//! finds it, from any handle (no hint), and a pointer that is no block's
//! start answers as before.
#![cfg(feature = "std")]

use slotarena::linear::{LinearMemoryError, PAGE_SIZE, SharedLinearMemory};

const PAGES: u32 = 4;

/// Leaves every granule of the memory with a stale owner: spans of every
/// class and large blocks of several sizes (their anchors at other
/// places than the blocks made afterwards), all freed, their handle dropped
/// so no span stays pinned.
fn litter(memory: &SharedLinearMemory) {
    let mut handle = memory.controller();
    let mut live = Vec::new();
    let sizes = [8, 24, 300, 513, 700, 1500, 5000, 20_000, 40_000];
    for round in 0.. {
        let len = sizes[round % sizes.len()];
        match handle.alloc(len) {
            Ok(ptr) => live.push((ptr, len)),
            // Smaller blocks may still fit.
            Err(LinearMemoryError::OutOfMemory) if len > 512 => {}
            Err(LinearMemoryError::OutOfMemory) => break,
            Err(other) => panic!("alloc({len}): {other:?}"),
        }
    }
    assert!(
        live.len() > 50,
        "the memory filled with {} blocks",
        live.len()
    );
    for (ptr, len) in live {
        handle.free(ptr, len).unwrap();
    }
}

#[test]
fn every_byte_of_a_large_block_over_stale_owners_is_claimable_from_any_handle() {
    let memory = SharedLinearMemory::new(PAGES, PAGES).unwrap();
    for len in [PAGES * PAGE_SIZE - 256, 100_000, 16_385, 1000] {
        litter(&memory);
        let mut owner = memory.controller();
        let ptr = owner.alloc(len).unwrap();
        let mut other = memory.controller();
        // Every granule, and the bytes either side of each 16 KiB anchor.
        for offset in (0..len).step_by(256).chain((1..len).step_by(16_384 - 1)) {
            let at = ptr + offset;
            let bytes = other.mut_mem(at, 1).unwrap_or_else(|error| {
                panic!("len {len}: byte {offset} of the block answered {error:?}")
            });
            bytes[0] = offset as u8;
        }
        assert_eq!(other.mut_mem(ptr + len - 1, 1).map(|b| b.len()), Ok(1));
        assert_eq!(other.mut_mem(ptr + len, 0).map(|b| b.len()), Ok(0));
        assert_eq!(other.mut_mem(ptr, len).map(|b| b.len()), Ok(len as usize));
        assert_eq!(
            other.mut_mem(ptr + len - 1, 2).err(),
            Some(LinearMemoryError::OutOfBounds)
        );
        // The claim is exclusive whichever granule found it.
        let _held = other.mut_mem(ptr + len / 2, 1).unwrap();
        assert_eq!(
            owner.mut_mem(ptr + len - 1, 1).err(),
            Some(LinearMemoryError::Busy)
        );
        other.release();
        // No interior byte is a start; its own granule's stale owner
        // must not make it one.
        for offset in (8..len).step_by(248) {
            let answer = other.free(ptr + offset, 8);
            assert!(
                matches!(
                    answer,
                    Err(LinearMemoryError::UnknownPointer | LinearMemoryError::DoubleFree)
                ),
                "len {len}: free inside the block at {offset} answered {answer:?}"
            );
        }
        owner.free(ptr, len).unwrap();
        assert_eq!(
            other.free(ptr, len).err(),
            Some(LinearMemoryError::DoubleFree)
        );
        assert_eq!(
            other.mut_mem(ptr + len / 2, 1).err(),
            Some(LinearMemoryError::UnknownPointer)
        );
    }
    assert_eq!(memory.allocated_bytes(), 0);
}

#[test]
fn a_byte_past_a_large_block_in_free_space_is_no_blocks() {
    let memory = SharedLinearMemory::new(PAGES, PAGES).unwrap();
    litter(&memory);
    let mut owner = memory.controller();
    let len = 40_000;
    let ptr = owner.alloc(len).unwrap();
    let mut other = memory.controller();
    let past = (ptr + len).next_multiple_of(256);
    for offset in (0..20_000).step_by(256) {
        assert_eq!(
            other.mut_mem(past + offset, 1).err(),
            Some(LinearMemoryError::UnknownPointer),
            "{offset} bytes past the block's last granule"
        );
    }
    owner.free(ptr, len).unwrap();
}
