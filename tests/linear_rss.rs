//! Resident memory follows live bytes: a 256 MiB burst of allocations,
//! written and then freed, gives its pages back to the OS. Alone in its
//! own test binary, so no other test moves the process's resident size.
#![cfg(all(target_os = "linux", not(miri)))]

#[path = "process/resident.rs"]
mod resident;

use resident::resident_bytes;
use slotarena::linear::{PAGE_SIZE, SharedLinearMemory};

#[test]
fn a_freed_burst_goes_back_to_the_os() {
    const BURST: u64 = 256 << 20;
    let memory = SharedLinearMemory::new(1, 8192).unwrap(); // up to 512 MiB
    let mut c = memory.controller();
    let before = resident_bytes();
    let mut live = Vec::new();
    let mut total = 0u64;
    let mut i = 0u32;
    while total < BURST {
        // Mostly 64 KiB blocks, with small and medium ones mixed in.
        let len = match i % 8 {
            0 => 100,
            1 => 3000,
            _ => PAGE_SIZE,
        };
        let ptr = c.alloc(len).unwrap();
        c.mut_mem(ptr, len).unwrap().fill(0xa5);
        live.push((ptr, len));
        total += u64::from(len);
        i += 1;
    }
    let peak = resident_bytes();
    for (ptr, len) in live {
        c.free(ptr, len).unwrap();
    }
    drop(c);
    let after = resident_bytes();
    println!(
        "resident: {:.1} MiB before, {:.1} MiB with the 256 MiB burst live, {:.1} MiB after freeing it",
        before as f64 / f64::from(1 << 20),
        peak as f64 / f64::from(1 << 20),
        after as f64 / f64::from(1 << 20),
    );
    assert!(peak >= before + BURST * 9 / 10, "the burst was resident");
    assert!(
        after < before + (16 << 20),
        "at most a few MiB of freed pages stay resident"
    );
    assert_eq!(memory.allocated_bytes(), 0);
}
