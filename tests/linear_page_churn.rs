//! A block freed and taken again on the same page costs no system call
//! and no page fault: the pool keeps the newest wholly free pages committed
//! (`pool.rs`, P6). Before, every free of a page's last block handed the
//! page back to the OS and the next block on it faulted it in again: a host
//! passing 1 KiB values one after another into a guest paid a `madvise`
//! and a fault per value (T1 in bench_report: 8.6 µs per value instead of
//! 1.1 µs). Alone in its own binary (it counts this thread's faults).
#![cfg(all(feature = "std", target_os = "linux", not(miri)))]

#[path = "process/faults.rs"]
mod faults;

use faults::minor_faults;
use slotarena::linear::SharedLinearMemory;

#[test]
fn alloc_and_free_on_one_page_fault_no_page_in_again() {
    const ROUNDS: u64 = 2_000;
    let memory = SharedLinearMemory::new(2, 16).unwrap();
    let mut handle = memory.controller();
    // Page 0 (which holds the never handed out first bytes, so it is never
    // wholly free) is taken: the churn runs on page 1, alone.
    let page_zero = handle.alloc(65536 - 256).unwrap();
    let mut churn = |rounds: u64| {
        for round in 0..rounds {
            // A large block alone on its pages, as a 1 KiB value is.
            let len = 1024 + (round % 4) as u32 * 256;
            let ptr = handle.alloc(len).unwrap();
            let bytes = handle.mut_mem(ptr, len).unwrap();
            bytes[0] = round as u8;
            bytes[len as usize - 1] = round as u8;
            handle.free(ptr, len).unwrap();
        }
    };
    churn(16); // the pages it uses are committed once
    let before = minor_faults();
    churn(ROUNDS);
    let faults = minor_faults() - before;
    handle.free(page_zero, 65536 - 256).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
    assert!(
        faults < ROUNDS / 100,
        "{faults} page faults in {ROUNDS} rounds of alloc, write, free on one page"
    );
}
