//! The linear memory's contract: pointers, alignment, every error, exclusive
//! `mut_mem`, growth to the maximum, space efficiency, async use.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::thread;

use slotarena::linear::{
    AsyncMemoryController, LinearMemoryController, LinearMemoryError, PAGE_SIZE, SharedLinearMemory,
};

fn setup(initial: u32, max: u32) -> (SharedLinearMemory, LinearMemoryController) {
    let memory = SharedLinearMemory::new(initial, max).unwrap();
    let controller = LinearMemoryController::new(&memory);
    (memory, controller)
}

/// Runs a future that never waits (our controller's never do).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

#[test]
fn bad_page_counts_are_refused() {
    assert_eq!(
        SharedLinearMemory::new(3, 2).err(),
        Some(LinearMemoryError::InvalidPageCount)
    );
    assert_eq!(
        SharedLinearMemory::new(0, 65_537).err(),
        Some(LinearMemoryError::InvalidPageCount)
    );
    let empty = SharedLinearMemory::new(0, 0).unwrap();
    assert_eq!(
        LinearMemoryController::new(&empty).alloc(1),
        Err(LinearMemoryError::LengthTooLarge)
    );
}

/// The whole 4 GiB `u32` space as the maximum: sizes are computed in `u64`
/// or checked, so on a 32-bit target (Miri on i686 in CI) this either
/// works or answers `OutOfMemory`; it never overflows or touches memory it
/// does not own.
#[test]
fn the_largest_memory_never_overflows_its_size_arithmetic() {
    let memory = match SharedLinearMemory::new(1, slotarena::linear::MAX_PAGES) {
        Ok(memory) => memory,
        Err(error) => {
            assert_eq!(error, LinearMemoryError::OutOfMemory);
            return;
        }
    };
    assert_eq!(memory.max_pages(), 65_536);
    assert_eq!(memory.size_bytes(), u64::from(PAGE_SIZE));
    let mut controller = LinearMemoryController::new(&memory);
    let ptr = controller.alloc(1000).unwrap();
    controller.mut_mem(ptr, 1000).unwrap().fill(0xa5);
    assert!(
        controller
            .mut_mem(ptr, 1000)
            .unwrap()
            .iter()
            .all(|&b| b == 0xa5)
    );
    assert_eq!(
        controller.mut_mem(u32::MAX, 2).err(),
        Some(LinearMemoryError::UnknownPointer)
    );
    controller.free(ptr, 1000).unwrap();
}

#[test]
fn pointers_are_never_zero_and_always_aligned() {
    let (_memory, mut c) = setup(1, 64);
    let mut live = Vec::new();
    for len in [
        1u32, 3, 7, 8, 9, 15, 100, 1000, 4096, 5000, 40_000, 70_000, 200_000,
    ] {
        for _ in 0..3 {
            let ptr = c.alloc(len).unwrap();
            assert_ne!(ptr, 0);
            assert_eq!(ptr % 8, 0, "{len} bytes at {ptr}");
            live.push((ptr, len));
        }
    }
    for align in [16u32, 64, 4096, PAGE_SIZE] {
        let ptr = c.alloc_aligned(10, align).unwrap();
        assert_eq!(ptr % align, 0);
        live.push((ptr, 10));
    }
    live.sort_unstable();
    for pair in live.windows(2) {
        assert!(pair[0].0 + pair[0].1 <= pair[1].0, "overlap: {pair:?}");
    }
    for (ptr, len) in live {
        c.free(ptr, len).unwrap();
    }
    assert_eq!(c.memory().allocated_bytes(), 0);
}

#[test]
fn every_error_is_distinct_and_changes_nothing() {
    let (_memory, mut c) = setup(1, 4);
    assert_eq!(c.alloc(0), Err(LinearMemoryError::ZeroLength));
    assert_eq!(
        c.alloc(5 * PAGE_SIZE),
        Err(LinearMemoryError::LengthTooLarge)
    );
    assert_eq!(c.alloc_aligned(8, 3), Err(LinearMemoryError::BadAlignment));
    assert_eq!(
        c.alloc_aligned(8, 2 * PAGE_SIZE),
        Err(LinearMemoryError::BadAlignment)
    );
    let ptr = c.alloc(100).unwrap();
    c.mut_mem(ptr, 100).unwrap().fill(7);
    assert_eq!(c.free(0, 100), Err(LinearMemoryError::UnknownPointer));
    assert_eq!(
        c.free(ptr + 8, 100),
        Err(LinearMemoryError::UnknownPointer),
        "interior pointer"
    );
    assert_eq!(
        c.free(3 * PAGE_SIZE, 100),
        Err(LinearMemoryError::UnknownPointer),
        "beyond the size"
    );
    assert_eq!(c.free(ptr, 99), Err(LinearMemoryError::LengthMismatch));
    assert_eq!(
        c.mut_mem(ptr, 101).err(),
        Some(LinearMemoryError::OutOfBounds)
    );
    assert_eq!(
        c.mut_mem(ptr + 50, 51).err(),
        Some(LinearMemoryError::OutOfBounds)
    );
    assert_eq!(
        c.mut_mem(ptr, u32::MAX).err(),
        Some(LinearMemoryError::OutOfBounds),
        "ptr + len overflows"
    );
    assert_eq!(
        c.mut_mem(0, 1).err(),
        Some(LinearMemoryError::UnknownPointer)
    );
    assert!(
        c.mut_mem(ptr, 100).unwrap().iter().all(|&b| b == 7),
        "refusals disturbed nothing"
    );
    c.free(ptr, 100).unwrap();
    assert_eq!(c.free(ptr, 100), Err(LinearMemoryError::DoubleFree));
    assert_eq!(
        c.mut_mem(ptr, 1).err(),
        Some(LinearMemoryError::UnknownPointer),
        "use after free"
    );
    let large = c.alloc(3 * PAGE_SIZE / 2).unwrap();
    c.free(large, 3 * PAGE_SIZE / 2).unwrap();
    assert_eq!(
        c.free(large, 3 * PAGE_SIZE / 2),
        Err(LinearMemoryError::DoubleFree)
    );
}

#[test]
fn mut_mem_is_exclusive_until_the_holders_next_call() {
    let (memory, mut a) = setup(1, 4);
    let mut b = LinearMemoryController::new(&memory);
    let ptr = a.alloc(64).unwrap();
    a.mut_mem(ptr, 8).unwrap().copy_from_slice(b"guest!!!");
    assert_eq!(
        b.mut_mem(ptr + 32, 8).err(),
        Some(LinearMemoryError::Busy),
        "any byte of the block"
    );
    assert_eq!(
        b.free(ptr, 64),
        Err(LinearMemoryError::Busy),
        "free waits for nobody"
    );
    let other = a.alloc(64).unwrap(); // a's next call releases the claim
    assert_eq!(b.mut_mem(ptr, 8).unwrap(), b"guest!!!");
    {
        let guard = a.lock(other, 64).unwrap();
        assert_eq!(guard.len(), 64);
        assert_eq!(b.mut_mem(other, 1).err(), Some(LinearMemoryError::Busy));
    }
    assert!(b.mut_mem(other, 1).is_ok(), "the guard's drop released it");
    drop(b); // dropping a handle releases its claim
    a.free(other, 64).unwrap();
    a.free(ptr, 64).unwrap();
}

/// `alloc_mut` hands out the new block claimed, small or large, exactly
/// as `mut_mem(ptr, len)` right after `alloc` would: every byte, nothing
/// more, another handle can neither claim nor free it until the holder's
/// next call, and it refuses what `alloc` refuses, changing nothing.
#[test]
fn alloc_mut_claims_the_new_block_until_the_holders_next_call() {
    let (memory, mut a) = setup(1, 4);
    let mut b = LinearMemoryController::new(&memory);
    for len in [1, 24, 512, 513, 5000, 2 * PAGE_SIZE] {
        let (ptr, bytes) = a.alloc_mut(len).unwrap();
        assert_eq!((ptr % 8, bytes.len()), (0, len as usize), "{len}");
        bytes.fill(0x5a);
        assert_eq!(b.mut_mem(ptr, 1).err(), Some(LinearMemoryError::Busy));
        assert_eq!(b.free(ptr, len), Err(LinearMemoryError::Busy));
        a.release();
        assert!(b.mut_mem(ptr, len).unwrap().iter().all(|&x| x == 0x5a));
        b.free(ptr, len).unwrap();
    }
    let (kept, _) = a.alloc_mut(40).unwrap();
    assert_eq!(a.alloc_mut(0).err(), Some(LinearMemoryError::ZeroLength));
    assert_eq!(
        a.alloc_mut(u32::MAX).err(),
        Some(LinearMemoryError::LengthTooLarge)
    );
    assert_eq!(memory.allocated_bytes(), 40, "a refusal allocates nothing");
    assert!(b.mut_mem(kept, 40).is_ok(), "and it released the claim");
    b.free(kept, 40).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

#[test]
fn memory_grows_on_demand_up_to_the_maximum_then_reports_out_of_memory() {
    let (memory, mut c) = setup(0, 3);
    assert_eq!(memory.size_pages(), 0);
    let a = c.alloc(PAGE_SIZE).unwrap();
    assert!(
        memory.size_pages() >= 2,
        "page 0 never starts a large block"
    );
    let b = c.alloc(PAGE_SIZE).unwrap();
    assert_eq!(memory.size_pages(), 3);
    assert_eq!(c.alloc(PAGE_SIZE), Err(LinearMemoryError::OutOfMemory));
    assert_eq!(memory.grow(1), Err(LinearMemoryError::GrowBeyondMaximum));
    assert_eq!(memory.size_pages(), 3);
    c.free(a, PAGE_SIZE).unwrap();
    let again = c.alloc(PAGE_SIZE).unwrap();
    assert_eq!(again, a, "freed pages are reused");
    c.free(again, PAGE_SIZE).unwrap();
    c.free(b, PAGE_SIZE).unwrap();
}

#[test]
fn explicit_grow_follows_memory_grow_semantics() {
    let (memory, _c) = setup(2, 10);
    assert_eq!(memory.grow(0), Ok(2));
    assert_eq!(memory.grow(3), Ok(2));
    assert_eq!(memory.size_pages(), 5);
    assert_eq!(memory.max_pages(), 10);
    assert_eq!(memory.grow(6), Err(LinearMemoryError::GrowBeyondMaximum));
    assert_eq!(
        memory.grow(u32::MAX),
        Err(LinearMemoryError::GrowBeyondMaximum)
    );
    assert_eq!(memory.size_bytes(), 5 * PAGE_SIZE as u64);
}

#[test]
fn four_kib_blocks_use_at_least_three_quarters_of_the_memory() {
    for pages in [1u32, 2, 16] {
        let (memory, mut c) = setup(pages, pages);
        let mut count = 0u64;
        while c.alloc(4096).is_ok() {
            count += 1;
        }
        let usable = count * 4096;
        let total = memory.size_bytes();
        assert!(
            usable * 4 >= total * 3,
            "{pages} pages: {usable} of {total} usable"
        );
    }
}

#[test]
fn freed_space_is_reused_across_many_rounds() {
    let (memory, mut c) = setup(1, 2);
    let rounds = if cfg!(miri) { 60 } else { 2_000u32 };
    for round in 0..rounds {
        let len = 1 + (round * 7919) % 20_000;
        let ptr = c.alloc(len).unwrap();
        c.mut_mem(ptr, len).unwrap().fill(round as u8);
        c.free(ptr, len).unwrap();
    }
    assert!(memory.size_pages() <= 2);
    assert_eq!(memory.allocated_bytes(), 0);
}

#[test]
fn transfer_and_receive_pass_length_prefixed_values() {
    let (memory, mut host) = setup(1, 4);
    let mut guest = LinearMemoryController::new(&memory);
    let ptr = host.transfer(b"").unwrap();
    assert_eq!(guest.receive(ptr).unwrap(), b"");
    let value: Vec<u8> = (0..=255).collect();
    let ptr = host.transfer(&value).unwrap();
    assert_eq!(
        u32::from_le_bytes(guest.mut_mem(ptr, 4).unwrap().try_into().unwrap()),
        256
    );
    assert_eq!(guest.receive(ptr).unwrap(), value);
    assert_eq!(
        guest.receive(ptr),
        Err(LinearMemoryError::UnknownPointer),
        "received values are freed"
    );
    // A hostile prefix that claims more than the allocation holds.
    let ptr = host.alloc(16).unwrap();
    host.mut_mem(ptr, 4)
        .unwrap()
        .copy_from_slice(&1000u32.to_le_bytes());
    host.release();
    assert_eq!(guest.receive(ptr), Err(LinearMemoryError::OutOfBounds));
    host.free(ptr, 16).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// Two handles receiving one value at once: exactly one gets the bytes,
/// the other one of the errors `receive` documents for that race, and
/// nothing stays allocated.
#[test]
fn racing_receives_of_one_value_hand_it_out_once() {
    let (memory, mut host) = setup(1, 4);
    for round in 0..2_000u32 {
        let ptr = host.transfer(&round.to_le_bytes()).unwrap();
        let other = {
            let memory = memory.clone();
            thread::spawn(move || memory.controller().receive(ptr))
        };
        let mine = memory.controller().receive(ptr);
        let theirs = other.join().unwrap();
        let (got, lost) = match (mine, theirs) {
            (Ok(value), Err(e)) | (Err(e), Ok(value)) => (value, e),
            answers => panic!("round {round}: {answers:?}"),
        };
        assert_eq!(got, round.to_le_bytes());
        assert!(
            matches!(
                lost,
                LinearMemoryError::Busy
                    | LinearMemoryError::UnknownPointer
                    | LinearMemoryError::DoubleFree
            ),
            "round {round}: {lost:?}"
        );
        assert_eq!(memory.allocated_bytes(), 0);
    }
}

#[test]
fn async_controllers_work_through_dyn() {
    let memory = SharedLinearMemory::new(1, 4).unwrap();
    let mut controller = LinearMemoryController::new(&memory);
    let dynamic: &mut dyn AsyncMemoryController = &mut controller;
    let ptr = block_on(dynamic.alloc(32)).unwrap();
    dynamic.mut_mem(ptr, 4).unwrap().copy_from_slice(b"ping");
    assert_eq!(dynamic.mut_mem(ptr, 4).unwrap(), b"ping");
    assert_eq!(
        block_on(dynamic.free(ptr, 31)),
        Err(LinearMemoryError::LengthMismatch)
    );
    block_on(dynamic.free(ptr, 32)).unwrap();
    assert_eq!(
        block_on(dynamic.alloc(0)),
        Err(LinearMemoryError::ZeroLength)
    );
    let boxed: Box<dyn AsyncMemoryController> = Box::new(LinearMemoryController::new(&memory));
    thread::spawn(move || drop(boxed)).join().unwrap(); // Send
}

#[test]
fn threads_writing_patterns_never_see_each_others_bytes() {
    let memory = SharedLinearMemory::new(1, if cfg!(miri) { 8 } else { 256 }).unwrap();
    // Miri checks the byte accesses for races and aliasing; a few small
    // blocks per thread are enough for it and keep it fast.
    let rounds = if cfg!(miri) { 16 } else { 5_000 };
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                let mut live: Vec<(u32, u32, u8)> = Vec::new();
                let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ t as u64;
                for round in 0..rounds {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if live.len() < 32 && !seed.is_multiple_of(3) {
                        let len = match seed % 20 {
                            // Mid-sized classes: few slots per page to set up.
                            _ if cfg!(miri) => 200 + (seed >> 8) as u32 % 600,
                            0 => 40_000 + (seed >> 8) as u32 % 100_000,
                            1..=5 => 256 + (seed >> 8) as u32 % 4096,
                            _ => 1 + (seed >> 8) as u32 % 256,
                        };
                        let ptr = c.alloc(len).unwrap();
                        let pattern = t.wrapping_mul(64).wrapping_add(round as u8);
                        c.mut_mem(ptr, len).unwrap().fill(pattern);
                        live.push((ptr, len, pattern));
                    } else if !live.is_empty() {
                        let (ptr, len, pattern) =
                            live.swap_remove((seed >> 16) as usize % live.len());
                        assert!(
                            c.mut_mem(ptr, len).unwrap().iter().all(|&b| b == pattern),
                            "thread {t}: bytes changed"
                        );
                        c.free(ptr, len).unwrap();
                    }
                }
                for (ptr, len, pattern) in live {
                    assert!(c.mut_mem(ptr, len).unwrap().iter().all(|&b| b == pattern));
                    c.free(ptr, len).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(memory.allocated_bytes(), 0);
}

#[test]
fn a_one_page_memory_holds_any_mix_of_sizes() {
    let (memory, mut c) = setup(1, 1);
    let mut live = Vec::new();
    for len in [8u32, 64, 100, 4096, 16384] {
        let ptr = c.alloc(len).unwrap();
        c.mut_mem(ptr, len).unwrap().fill(len as u8);
        live.push((ptr, len));
    }
    for &(ptr, len) in &live {
        assert!(c.mut_mem(ptr, len).unwrap().iter().all(|&b| b == len as u8));
        c.free(ptr, len).unwrap();
    }
    let big = c.alloc(40_000).unwrap();
    assert_eq!(memory.size_pages(), 1);
    c.free(big, 40_000).unwrap();
    // Sixty 1000-byte blocks and a hundred small ones share the page.
    let mut small = Vec::new();
    for i in 0..160u32 {
        let len = if i % 8 == 0 { 1000 } else { 8 + i % 120 };
        small.push((c.alloc(len).unwrap(), len));
    }
    for (ptr, len) in small {
        c.free(ptr, len).unwrap();
    }
    assert_eq!(memory.allocated_bytes(), 0);
}

/// The empty range where one allocation ends and the next begins belongs
/// to both: another handle's claim on the next one does not make it `Busy`.
#[test]
fn an_empty_range_between_two_blocks_is_free_while_the_second_is_claimed() {
    let (memory, mut c) = setup(1, 1);
    let first = c.alloc(8).unwrap();
    let second = c.alloc(8).unwrap();
    assert_eq!(second, first + 8, "neighbours in one span");
    let mut other = memory.controller();
    other.mut_mem(second, 8).unwrap().fill(1); // claimed until other's next call
    assert_eq!(c.mut_mem(second, 0).map(|bytes| bytes.len()), Ok(0));
    assert_eq!(c.mut_mem(second, 1), Err(LinearMemoryError::Busy));
    other.release();
    c.free(first, 8).unwrap();
    c.free(second, 8).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// A full memory still serves a small request from the free blocks of a
/// span another handle pins (a pin is a preference, not an ownership).
#[test]
fn a_small_block_fits_in_another_handles_pinned_span_when_the_memory_is_full() {
    let (memory, mut owner) = setup(1, 1);
    let pinned = owner.alloc(64).unwrap(); // pins a span with free blocks
    let mut other = memory.controller();
    // Everything else in the page: granules are 256 bytes, and the span
    // and granule 0 are not free.
    let mut fill = Vec::new();
    for len in [32_768, 16_384, 8_192, 4_096, 2_048, 1_024, 768, 512] {
        if let Ok(ptr) = other.alloc_aligned(len, 256) {
            fill.push((ptr, len));
        }
    }
    assert_eq!(
        other.alloc_aligned(256, 256),
        Err(LinearMemoryError::OutOfMemory),
        "the pool is dry"
    );
    let mine = other.alloc(64).expect("a free block of the owner's span");
    assert_ne!(mine, pinned);
    other.mut_mem(mine, 64).unwrap().fill(1);
    assert!(owner.mut_mem(pinned, 64).is_ok());
    other.free(mine, 64).unwrap();
    for (ptr, len) in fill {
        other.free(ptr, len).unwrap();
    }
    owner.free(pinned, 64).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

#[test]
fn never_allocated_pointers_are_unknown_and_freed_ones_double_frees() {
    let (_memory, mut c) = setup(1, 4);
    let a = c.alloc(8).unwrap();
    let b = c.alloc(8).unwrap();
    // A block-aligned place in the same span that was never handed out.
    let never = a.max(b) + 64;
    assert_eq!(c.free(never, 8), Err(LinearMemoryError::UnknownPointer));
    assert_eq!(
        c.free(a + 4096 * 3, 8),
        Err(LinearMemoryError::UnknownPointer)
    );
    c.free(a, 8).unwrap();
    assert_eq!(c.free(a, 8), Err(LinearMemoryError::DoubleFree));
    let large = c.alloc(10_000).unwrap();
    assert_eq!(
        c.free(large + 10_240, 8),
        Err(LinearMemoryError::UnknownPointer),
        "past the large block"
    );
    c.free(large, 10_000).unwrap();
    assert_eq!(c.free(large, 10_000), Err(LinearMemoryError::DoubleFree));
    c.free(b, 8).unwrap();
}

#[test]
fn mut_mem_accepts_every_sub_range_and_the_empty_range_at_the_end() {
    let (_memory, mut c) = setup(1, 4);
    let four = c.alloc(4).unwrap();
    let eight = c.alloc(8).unwrap();
    let next = c.alloc(8).unwrap();
    let large = c.alloc(5000).unwrap();
    for (ptr, len) in [(four, 4u32), (eight, 8), (next, 8), (large, 5000)] {
        for offset in [0, 1, len / 2, len - 1, len] {
            for sub in [0, 1, len - offset] {
                if offset == len && sub > 0 {
                    continue; // starts past the allocation: another one's business
                }
                let got = c.mut_mem(ptr + offset, sub);
                if offset + sub <= len {
                    assert_eq!(
                        got.map(|b| b.len()),
                        Ok(sub as usize),
                        "{ptr}+{offset}, {sub}"
                    );
                } else {
                    assert_eq!(got.err(), Some(LinearMemoryError::OutOfBounds));
                }
            }
        }
    }
    assert_eq!(
        c.mut_mem(four + 5, 0).err(),
        Some(LinearMemoryError::UnknownPointer),
        "past the end is outside every allocation"
    );
    c.free(four, 4).unwrap();
    assert_eq!(
        c.mut_mem(four + 4, 0).err(),
        Some(LinearMemoryError::UnknownPointer),
        "the end of a freed block"
    );
    c.free(eight, 8).unwrap();
    c.free(next, 8).unwrap();
    c.free(large, 5000).unwrap();
}

#[test]
fn release_and_drop_end_a_claim_and_controller_is_new() {
    let memory = SharedLinearMemory::new(1, 4).unwrap();
    let mut a = memory.controller();
    let mut b = memory.controller();
    let ptr = a.alloc(16).unwrap();
    a.mut_mem(ptr, 16).unwrap().fill(3);
    assert_eq!(b.mut_mem(ptr, 1).err(), Some(LinearMemoryError::Busy));
    a.release();
    assert_eq!(b.mut_mem(ptr, 16).unwrap(), &[3; 16]);
    assert_eq!(a.free(ptr, 16), Err(LinearMemoryError::Busy));
    drop(b);
    a.free(ptr, 16).unwrap();
}

#[test]
fn ten_sizes_of_a_hundred_blocks_share_few_pages() {
    let (memory, mut c) = setup(0, 64);
    let sizes = [24u32, 80, 200, 500, 900, 1500, 2000, 2500, 3000, 3500];
    let mut live = Vec::new();
    for i in 0..100 {
        let len = sizes[i % sizes.len()];
        live.push((c.alloc(len).unwrap(), len));
    }
    let bytes: u64 = live.iter().map(|&(_, len)| u64::from(len)).sum();
    let pages_needed = bytes.div_ceil(u64::from(PAGE_SIZE));
    assert!(
        u64::from(memory.size_pages()) <= pages_needed + 1,
        "{bytes} live bytes in {} pages",
        memory.size_pages()
    );
    for (ptr, len) in live {
        c.free(ptr, len).unwrap();
    }
}

/// The churn of issue 10: 256 live blocks of 8 B to 4 KiB, freed and
/// replaced at random, spread the memory (the highest end ever handed out)
/// to at most 1.35 times the peak live bytes on average over eight seeds
/// (issue 19's bound for L1), and to at most 1.5 times on any one. One
/// seed alone says little: over these eight the spread runs from 1.24 to
/// 1.43 (mean 1.30). Prints each spread.
#[test]
fn churn_spreads_little_beyond_the_live_bytes() {
    let steps = if cfg!(miri) { 200 } else { 100_000 };
    let spreads: Vec<f64> = (1..=8u64)
        .map(|seed| churn_spread(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), steps))
        .collect();
    let mean = spreads.iter().sum::<f64>() / spreads.len() as f64;
    println!("churn: spreads {spreads:.2?}, mean {mean:.3}");
    for (seed, spread) in (1..).zip(&spreads) {
        assert!(
            *spread <= 1.5,
            "seed {seed}: high water is {spread:.3}x the peak live bytes"
        );
    }
    assert!(
        mean <= 1.35,
        "high water is {mean:.3}x the peak live bytes on average"
    );
}

/// One churn run (see above) from `seed`: the highest end handed out over
/// the most bytes live at once.
fn churn_spread(mut seed: u64, steps: u32) -> f64 {
    let (memory, mut c) = setup(0, 1024);
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let size = move |roll: u64| -> u32 {
        if roll % 95 < 70 {
            8 + (roll >> 8) as u32 % 248
        } else {
            256 + (roll >> 8) as u32 % 3840
        }
    };
    let mut live: Vec<(u32, u32)> = (0..256)
        .map(|_| {
            let len = size(next());
            (c.alloc(len).unwrap(), len)
        })
        .collect();
    let mut peak = 0u64;
    for _ in 0..steps {
        let victim = (next() % 256) as usize;
        let (ptr, len) = live[victim];
        c.free(ptr, len).unwrap();
        let len = size(next());
        live[victim] = (c.alloc(len).unwrap(), len);
        peak = peak.max(live.iter().map(|&(_, len)| u64::from(len)).sum());
    }
    for (ptr, len) in live {
        c.free(ptr, len).unwrap();
    }
    memory.high_water_bytes() as f64 / peak as f64
}

/// Granule of the pool (`classes.rs`): 256 bytes.
const GRANULE: u32 = 256;

/// A freed large block answers `DoubleFree`, also after the next large
/// block lands elsewhere (regression:
/// its descriptor was remade for that block while the directory still
/// sent the freed one's granules to it, and the answer became
/// `UnknownPointer`).
#[test]
fn a_freed_large_block_stays_a_double_free_when_its_descriptor_moves() {
    let memory = SharedLinearMemory::new(4, 4).unwrap();
    let mut c = LinearMemoryController::new(&memory);
    let a = c.alloc(5000).unwrap();
    let b = c.alloc(5000).unwrap(); // keeps `a`'s run from merging forward
    c.free(a, 5000).unwrap();
    assert_eq!(c.free(a, 5000), Err(LinearMemoryError::DoubleFree));
    // Too big for `a`'s 20 granules: lands elsewhere, on `a`'s descriptor.
    let big = c.alloc(15_000).unwrap();
    assert!(
        u64::from(big) >= u64::from(a) + 5120 || u64::from(big) + 15_000 <= u64::from(a),
        "`a`'s place was not reused"
    );
    assert_eq!(
        c.free(a, 5000),
        Err(LinearMemoryError::DoubleFree),
        "`a` was allocated and freed, and nothing reused its place"
    );
    c.free(big, 15_000).unwrap();
    c.free(b, 5000).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// The same for a small block whose span retired and whose class made a
/// new span elsewhere while the block's granule stayed free.
#[test]
fn a_freed_small_block_stays_a_double_free_when_its_span_descriptor_moves() {
    let memory = SharedLinearMemory::new(4, 4).unwrap();
    // 24-byte class: its first span holds 42 blocks in 4 granules.
    let mut a = LinearMemoryController::new(&memory);
    let ptrs: Vec<u32> = (0..20).map(|_| a.alloc(24).unwrap()).collect();
    let span_start = ptrs[0];
    assert_eq!(span_start % GRANULE, 0);
    // Block 11 starts in the span's second granule.
    let victim = ptrs[11];
    assert_eq!((victim - span_start) / GRANULE, 1);
    // A one-granule large block right after the span keeps its granules
    // from merging with the rest of the free space when it retires.
    let mut other = LinearMemoryController::new(&memory);
    let fence = other.alloc_aligned(8, 16).unwrap();
    assert_eq!(fence, span_start + 4 * GRANULE);
    for &ptr in &ptrs {
        a.free(ptr, 24).unwrap();
    }
    drop(a); // unpins the empty span: it retires
    assert_eq!(other.free(victim, 24), Err(LinearMemoryError::DoubleFree));
    // Take the first granule of the retired span (best fit), leaving three.
    let plug = other.alloc_aligned(8, 16).unwrap();
    assert_eq!(plug, span_start);
    // A new span of the class cannot fit in the three granules left: it goes
    // elsewhere, on the retired span's (spare) descriptor.
    let mut d = LinearMemoryController::new(&memory);
    let fresh = d.alloc(24).unwrap();
    assert!(fresh > fence, "the new span is elsewhere");
    assert_eq!(
        other.free(victim, 24),
        Err(LinearMemoryError::DoubleFree),
        "`victim` was allocated and freed, and nothing reused its granule"
    );
    d.free(fresh, 24).unwrap();
    other.free(plug, 8).unwrap();
    other.free(fence, 8).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// DESIGN: `DoubleFree` is for a pointer that was allocated and already
/// freed, whatever happened to its bytes since. Here a large block takes
/// over the freed small block's granule (and is freed in turn), so the
/// directory no longer leads to the small block's word at all.
#[test]
fn a_freed_small_block_is_a_double_free_after_another_block_took_its_place() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut c = LinearMemoryController::new(&memory);
    let first = c.alloc(64).unwrap();
    let small = c.alloc(64).unwrap(); // not at a granule's start
    assert_ne!(small % GRANULE, 0);
    c.free(first, 64).unwrap();
    c.free(small, 64).unwrap();
    drop(c); // unpins the empty span: its granules go back to the pool
    let mut c = LinearMemoryController::new(&memory);
    // Most of the page: certainly over the small block's bytes.
    let big = c.alloc(60_000).unwrap();
    assert!(
        big < small && small < big + 60_000,
        "the large block covers it"
    );
    assert_eq!(
        c.free(small, 64),
        Err(LinearMemoryError::DoubleFree),
        "inside a live block, but once allocated and freed"
    );
    c.free(big, 60_000).unwrap();
    assert_eq!(c.free(small, 64), Err(LinearMemoryError::DoubleFree));
    assert_eq!(c.free(big, 60_000), Err(LinearMemoryError::DoubleFree));
    // Never handed out: still unknown.
    assert_eq!(
        c.free(small + 8, 64),
        Err(LinearMemoryError::UnknownPointer)
    );
    assert_eq!(memory.allocated_bytes(), 0);
}

/// The same for a large block whose granules went to a larger block that
/// starts before it.
#[test]
fn a_freed_large_block_is_a_double_free_after_a_larger_block_took_its_place() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut c = LinearMemoryController::new(&memory);
    let a = c.alloc(1000).unwrap();
    let b = c.alloc(1000).unwrap();
    assert_eq!(b, a + 4 * GRANULE, "side by side");
    c.free(a, 1000).unwrap();
    c.free(b, 1000).unwrap();
    let both = c.alloc(2000).unwrap();
    assert_eq!(both, a, "best fit takes the merged run");
    assert_eq!(
        c.free(b, 1000),
        Err(LinearMemoryError::DoubleFree),
        "inside a live block, but once allocated and freed"
    );
    c.free(both, 2000).unwrap();
    assert_eq!(c.free(b, 1000), Err(LinearMemoryError::DoubleFree));
    assert_eq!(c.free(b + 8, 1000), Err(LinearMemoryError::UnknownPointer));
    assert_eq!(memory.allocated_bytes(), 0);
}
