//! The linear memory's bookkeeping lives in the heap and grows with the
//! pages in use, never with the maximum (issue 10): a counting global
//! allocator measures what a memory takes up front and after use.
//! Prints the figures (`cargo test --test linear_metadata -- --nocapture`).
#![cfg(not(miri))]

#[path = "process/heap.rs"]
mod heap;

use heap::live_bytes;
use slotarena::linear::{LinearMemoryController, SharedLinearMemory};

/// Heap bytes `make` leaves allocated, and its value.
fn heap_of<T>(make: impl FnOnce() -> T) -> (isize, T) {
    let before = live_bytes();
    let value = make();
    (live_bytes() - before, value)
}

// One test only: the counter is process-wide, and tests run in parallel.
#[test]
fn bookkeeping_follows_the_pages_in_use_not_the_maximum() {
    let (one_page, small) = heap_of(|| SharedLinearMemory::new(1, 1).unwrap());
    let (largest, large) = heap_of(|| SharedLinearMemory::new(1, 65_536).unwrap());
    println!("up front: new(1, 1) {one_page} bytes, new(1, 65536) {largest} bytes");
    assert!(
        one_page <= 16 << 10,
        "a 1-page memory took {one_page} bytes"
    );
    assert!(largest <= 256 << 10, "a 4 GiB maximum took {largest} bytes");

    // A page full of 64-byte blocks, then 1 MiB of 1 KiB ones.
    let (in_use, live) = heap_of(|| {
        let mut c = LinearMemoryController::new(&large);
        let mut live: Vec<(u32, u32)> = Vec::with_capacity(2048);
        for len in std::iter::repeat_n(64, 900).chain(std::iter::repeat_n(1024, 1024)) {
            live.push((c.alloc(len).unwrap(), len));
        }
        (c, live)
    });
    let used = large.high_water_bytes();
    // Subtract the test's own vector of blocks.
    let bookkeeping = in_use - (live.1.capacity() * size_of::<(u32, u32)>()) as isize;
    println!(
        "after use: {bookkeeping} bytes of bookkeeping for {used} bytes handed out ({:.1}%)",
        bookkeeping as f64 * 100.0 / used as f64
    );
    assert!(
        (bookkeeping as f64) < 0.1 * used as f64,
        "{bookkeeping} bytes of bookkeeping for {used} bytes in use"
    );
    let (mut c, mut blocks) = live;
    // The first free of a large block marks its start for `DoubleFree`
    // (`directory.rs`, freed starts): a 1 KiB bitmap for the 64 KiB around
    // it, never a table sized by the maximum (regression: 114 KiB here).
    let (ptr, len) = blocks.pop().unwrap();
    let (marked, freed) = heap_of(|| c.free(ptr, len));
    freed.unwrap();
    println!("the first free of a large block: {marked} bytes");
    assert!(
        marked <= 4 << 10,
        "one free took {marked} bytes of bookkeeping"
    );
    for (ptr, len) in blocks {
        c.free(ptr, len).unwrap();
    }
    drop((c, small, large));

    // Every block size, lengths that do not fill their class included: at
    // most 20 bytes per block plus 10% of the bytes handed out, as the
    // README says (`linear_bookkeeping` checks its tighter bound, a tenth
    // of the bytes in use, for lengths that fill their class).
    for len in [8u32, 16, 24, 48, 64, 100, 128, 256, 512, 513, 4096, 65536] {
        let count = (800_000 / len).clamp(200, 100_000);
        let memory = SharedLinearMemory::new(1, 65_536).unwrap();
        let mut c = memory.controller();
        let mut ptrs = Vec::with_capacity(count as usize);
        let (bookkeeping, ()) = heap_of(|| {
            for _ in 0..count {
                ptrs.push(c.alloc(len).unwrap());
            }
        });
        // Bytes handed out, as above (blocks rounded up to their class or
        // granules, and the spans that hold them).
        let in_use = memory.high_water_bytes() as f64;
        println!(
            "{count} blocks of {len} bytes: {bookkeeping} bytes of bookkeeping ({:.1}%)",
            bookkeeping as f64 * 100.0 / in_use
        );
        assert!(
            (bookkeeping as f64) <= 20.0 * f64::from(count) + 0.1 * in_use,
            "{bookkeeping} bytes of bookkeeping for {count} blocks of {len} bytes"
        );
        if len >= 512 {
            assert!((bookkeeping as f64) < 0.1 * in_use, "{len}-byte blocks");
        }
        for ptr in ptrs {
            c.free(ptr, len).unwrap();
        }
    }
}
