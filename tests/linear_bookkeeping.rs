//! Issue 19, defect 4: the linear memory's bookkeeping (heap bytes it
//! allocates for its metadata) stays under 10% of the bytes in use for
//! every block size, 8-byte blocks included: lengths that fill a size
//! class, and a large one. Bytes in use are the lengths the blocks were
//! asked for; bookkeeping is every heap byte the allocations add to a
//! memory and its handle made beforehand, counted by a global allocator,
//! as issue 19 measured (their up-front cost does not grow with use, so it
//! is no share of the bytes in use; `linear_metadata` bounds it).
//! Prints the figures (`cargo test --test linear_bookkeeping -- --nocapture`).
//! Alone in its own binary: the heap counter is process-wide.
#![cfg(not(miri))]

#[path = "process/heap.rs"]
mod heap;

use heap::live_bytes;
use slotarena::linear::SharedLinearMemory;

/// Bookkeeping, in percent of the bytes in use, of a fresh memory (at
/// most 16 MiB) that holds `count` blocks of `len` bytes from one handle.
fn bookkeeping_percent(len: u32, count: u32) -> f64 {
    let mut ptrs = Vec::with_capacity(count as usize);
    let memory = SharedLinearMemory::new(1, 256).unwrap();
    let mut c = memory.controller();
    let before = live_bytes();
    for _ in 0..count {
        ptrs.push(c.alloc(len).unwrap());
    }
    let bookkeeping = live_bytes() - before;
    let in_use = f64::from(len) * f64::from(count);
    let percent = bookkeeping as f64 * 100.0 / in_use;
    println!("{count} blocks of {len} B: {bookkeeping} B of bookkeeping, {percent:.2}%");
    for ptr in ptrs {
        c.free(ptr, len).unwrap();
    }
    percent
}

// One test only: the counter is process-wide, and tests run in parallel.
#[test]
fn bookkeeping_is_under_a_tenth_of_the_bytes_in_use_for_every_block_size() {
    let sizes = [(8, 100_000), (16, 100_000), (24, 100_000), (32, 100_000)]
        .into_iter()
        .chain([(64, 100_000), (128, 100_000), (256, 50_000), (512, 25_000)])
        .chain([(4096, 3_000)]);
    let over: Vec<(u32, f64)> = sizes
        .map(|(len, count)| (len, bookkeeping_percent(len, count)))
        .filter(|&(_, percent)| percent >= 10.0)
        .collect();
    assert!(over.is_empty(), "at or over 10% (size, %): {over:?}");
}
