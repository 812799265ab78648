//! Review of issue 19, item 4 / DESIGN "A page whose blocks are all free
//! goes back to the OS even while idle handles exist": the pool keeps up
//! to 32 wholly free pages (2 MiB) per memory committed until more than
//! that are free (`pool.rs`, `DIRTY_LIMIT`). A memory of at most 2 MiB —
//! one WASM instance's memory, typically — never hands a freed page back,
//! and a host with one memory per instance keeps 2 MiB per instance
//! resident with nothing allocated. Now a memory keeps at most its two
//! newest wholly free pages (128 KiB) committed (`pool.rs`, P6), so that
//! churn on one page faults nothing in again. Alone in its own binary (RSS).
#![cfg(all(target_os = "linux", not(miri)))]

#[path = "process/resident.rs"]
mod resident;

use resident::{MIB, resident_bytes};
use slotarena::linear::{PAGE_SIZE, SharedLinearMemory};

#[test]
fn wholly_free_pages_of_small_memories_go_back_to_the_os() {
    const MEMORIES: usize = 16;
    const PAGES: u32 = 32;
    let memories: Vec<_> = (0..MEMORIES)
        .map(|_| SharedLinearMemory::new(PAGES, PAGES).unwrap())
        .collect();
    let before = resident_bytes();
    let mut handles: Vec<_> = memories.iter().map(|m| m.controller()).collect();
    let len = PAGES * PAGE_SIZE - 256;
    for handle in &mut handles {
        let ptr = handle.alloc(len).unwrap();
        handle.mut_mem(ptr, len).unwrap().fill(0xa5);
        handle.free(ptr, len).unwrap();
    }
    drop(handles);
    let peak_est = MEMORIES as u64 * u64::from(len);
    let after = resident_bytes();
    for memory in &memories {
        assert_eq!(memory.allocated_bytes(), 0);
    }
    println!(
        "resident: {:.1} MiB before, {:.1} MiB after writing and freeing {:.1} MiB, \
         no handle left",
        before as f64 / MIB,
        after as f64 / MIB,
        peak_est as f64 / MIB
    );
    assert!(
        after < before + (4 << 20),
        "{:.1} MiB of wholly free pages stayed resident across {MEMORIES} memories \
         with nothing allocated and no handle alive",
        (after - before) as f64 / MIB
    );
    drop(memories);
}
