//! The linear memory's bookkeeping follows the most each block size ever
//! held, not what is live now (review of issue 19): span descriptors are
//! kept for reuse while the memory lives, one table per size class, so a
//! memory that each size class filled in turn keeps every class's
//! descriptors. The README says exactly this; the bound is per class, at
//! its peak, and repeating the same use adds nothing.
//! Alone in its own binary: the heap counter is process-wide.
#![cfg(not(miri))]

#[path = "process/heap.rs"]
mod heap;

use heap::live_bytes;
use slotarena::linear::{LinearMemoryController, LinearMemoryError, PAGE_SIZE, SharedLinearMemory};

/// One length per size class, smallest to largest.
const CLASSES: [u32; 20] = [
    8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512,
];

/// Fills the memory with blocks of each class in turn and frees them;
/// returns how many blocks each class held at its peak.
fn each_class_fills_the_page(c: &mut LinearMemoryController, ptrs: &mut Vec<u32>) -> Vec<u32> {
    CLASSES
        .iter()
        .map(|&len| {
            loop {
                match c.alloc(len) {
                    Ok(ptr) => ptrs.push(ptr),
                    Err(LinearMemoryError::OutOfMemory) => break,
                    Err(e) => panic!("{e:?}"),
                }
            }
            let peak = ptrs.len() as u32;
            for ptr in ptrs.drain(..) {
                c.free(ptr, len).unwrap();
            }
            peak
        })
        .collect()
}

// One test only: the counter is process-wide, and tests run in parallel.
#[test]
fn bookkeeping_follows_each_size_classs_peak_not_what_is_live() {
    let mut ptrs: Vec<u32> = Vec::with_capacity(1 << 14);
    let before = live_bytes();
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let up_front = live_bytes() - before;
    let mut c = memory.controller();
    let peaks = each_class_fills_the_page(&mut c, &mut ptrs);
    assert_eq!(memory.allocated_bytes(), 0);
    // Now one 512-byte block is all the memory holds.
    let ptr = c.alloc(512).unwrap();
    let bookkeeping = live_bytes() - before;
    // README: per size class, at most 20 bytes per block plus 10% of the
    // bytes handed out, at the class's peak (each filled the whole page).
    let page = f64::from(PAGE_SIZE);
    let allowed: f64 = up_front as f64
        + peaks
            .iter()
            .map(|&blocks| 20.0 * f64::from(blocks) + 0.1 * page)
            .sum::<f64>();
    let live_now = up_front as f64 + 20.0 + 0.1 * page;
    println!(
        "up front {up_front} B; after each class filled and freed the page, with one \
         512-byte block live: {bookkeeping} B of bookkeeping (each class at its peak \
         allows {allowed:.0}; what is live now would allow {live_now:.0})"
    );
    assert!(
        (bookkeeping as f64) <= allowed,
        "{bookkeeping} bytes of bookkeeping, above the sum of each class's peak ({allowed:.0})"
    );
    // It follows the peaks, not the time: the same use again stays within
    // the bound, and once the lists' capacities have settled (the second
    // round: a few hundred bytes) it adds nothing.
    c.free(ptr, 512).unwrap();
    let mut settled = None;
    for round in 2..=4 {
        assert_eq!(each_class_fills_the_page(&mut c, &mut ptrs), peaks);
        let ptr = c.alloc(512).unwrap();
        let now = live_bytes() - before;
        println!("after round {round}: {now} B");
        assert!((now as f64) <= allowed, "round {round}: {now} bytes");
        let settled = *settled.get_or_insert(now);
        assert!(
            now <= settled,
            "round {round} of the same use grew the bookkeeping from {settled} to {now} bytes"
        );
        c.free(ptr, 512).unwrap();
    }
}
