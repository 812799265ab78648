//! The linear memory under loom: no overlapping or doubly handed-out
//! blocks, exclusive `mut_mem`, free racing `mut_mem`, growth racing alloc.
//!
//! Most models use 1100-byte blocks, just above the size classes, which
//! take a few granules from the memory's pool directly (best fit); the
//! others run small blocks through the size classes' spans: pinning,
//! freeing from another controller, unpinning and retiring, and the claim
//! racing a free on a span's block word. Sizes are
//! chosen so that a block covers few granules: every granule's directory
//! word is an atomic that loom must schedule around (a span names all of
//! its granules, a large block its anchors: the first granule and one per
//! 16 granules under loom).
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::AtomicBool;
use loom::sync::atomic::Ordering::SeqCst;
use loom::thread;
use slotarena::linear::{LinearMemoryController, LinearMemoryError, SharedLinearMemory};

/// A linear memory's model, with room for its set-up's branches.
fn model(f: impl Fn() + Sync + Send + 'static) {
    slotarena_loom_tests::model_with_branches(10_000, f);
}

const LEN: u32 = 1100;
/// The 448-byte size class: two blocks per span, so spans fill, list and
/// retire within a few operations.
const SMALL: u32 = 400;

#[test]
fn concurrent_allocs_never_overlap_or_repeat() {
    model(|| {
        let memory = SharedLinearMemory::new(2, 2).unwrap();
        let other = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                let ptr = c.alloc(LEN).unwrap();
                c.mut_mem(ptr, LEN).unwrap().fill(1);
                ptr
            })
        };
        let mut c = LinearMemoryController::new(&memory);
        let mine = c.alloc(LEN).unwrap();
        c.mut_mem(mine, LEN).unwrap().fill(2);
        let theirs = other.join().unwrap();
        assert!(
            mine.abs_diff(theirs) >= LEN,
            "blocks {mine} and {theirs} overlap"
        );
        assert!(c.mut_mem(mine, LEN).unwrap().iter().all(|&b| b == 2));
        assert!(c.mut_mem(theirs, LEN).unwrap().iter().all(|&b| b == 1));
        c.free(mine, LEN).unwrap();
        c.free(theirs, LEN).unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

#[test]
fn alloc_racing_free_never_hands_out_a_live_block() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut c = LinearMemoryController::new(&memory);
        let first = c.alloc(LEN).unwrap();
        let freer = {
            let memory = memory.clone();
            thread::spawn(move || {
                LinearMemoryController::new(&memory)
                    .free(first, LEN)
                    .unwrap()
            })
        };
        let second = c.alloc(LEN).unwrap();
        c.mut_mem(second, LEN).unwrap().fill(7);
        freer.join().unwrap();
        // If the place was reused, the free had finished: it is ours now.
        assert!(c.mut_mem(second, LEN).unwrap().iter().all(|&b| b == 7));
        c.free(second, LEN).unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

#[test]
fn mut_mem_is_exclusive_across_handles() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let ptr = LinearMemoryController::new(&memory).alloc(LEN).unwrap();
        let other = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                match c.mut_mem(ptr, 8) {
                    Ok(bytes) => {
                        bytes.copy_from_slice(b"theirs!!");
                        assert_eq!(bytes, b"theirs!!", "someone else wrote into our claim");
                        true
                    }
                    Err(e) => {
                        assert_eq!(e, LinearMemoryError::Busy);
                        false
                    }
                }
            })
        };
        let mut c = LinearMemoryController::new(&memory);
        let mine = match c.mut_mem(ptr, 8) {
            Ok(bytes) => {
                bytes.copy_from_slice(b"mine!!!!");
                assert_eq!(bytes, b"mine!!!!", "someone else wrote into our claim");
                true
            }
            Err(e) => {
                assert_eq!(e, LinearMemoryError::Busy);
                false
            }
        };
        let theirs = other.join().unwrap();
        assert!(mine || theirs, "one of the two must get the bytes");
        c.free(ptr, LEN).unwrap();
    });
}

#[test]
fn free_racing_mut_mem_never_frees_claimed_bytes() {
    free_racing_mut_mem(LEN);
}

#[test]
fn free_racing_mut_mem_never_frees_claimed_bytes_of_a_small_block() {
    free_racing_mut_mem(SMALL);
}

fn free_racing_mut_mem(len: u32) {
    model(move || {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let ptr = LinearMemoryController::new(&memory).alloc(len).unwrap();
        // Set once the free succeeded: a reader still holding its slice
        // must never see it.
        let freed_flag = Arc::new(AtomicBool::new(false));
        let reader = {
            let memory = memory.clone();
            let freed_flag = freed_flag.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                match c.mut_mem(ptr, len) {
                    Ok(bytes) => {
                        bytes.fill(9);
                        thread::yield_now(); // let the free race the live slice
                        assert!(bytes.iter().all(|&b| b == 9));
                        assert!(!freed_flag.load(SeqCst), "a claimed block was freed");
                        true
                    }
                    Err(e) => {
                        assert_eq!(e, LinearMemoryError::UnknownPointer, "only after the free");
                        false
                    }
                }
            })
        };
        let mut freer = LinearMemoryController::new(&memory);
        let freed = freer.free(ptr, len);
        if freed.is_ok() {
            freed_flag.store(true, SeqCst);
        }
        let claimed = reader.join().unwrap();
        if let Err(e) = freed {
            // Refused only while the reader held its claim.
            assert_eq!(e, LinearMemoryError::Busy);
            assert!(claimed);
            freer.free(ptr, len).unwrap(); // the reader's handle is gone
        }
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

#[test]
fn growth_racing_alloc_keeps_blocks_apart() {
    model(|| {
        let memory = SharedLinearMemory::new(0, 2).unwrap();
        let grower = {
            let memory = memory.clone();
            thread::spawn(move || memory.grow(1).unwrap())
        };
        let mut c = LinearMemoryController::new(&memory);
        let a = c.alloc(LEN).unwrap();
        let b = c.alloc(LEN).unwrap();
        let old = grower.join().unwrap();
        assert!(old <= 1, "the two blocks fit one page");
        assert!(memory.size_pages() > old);
        assert_ne!(a, 0);
        assert!(a.abs_diff(b) >= LEN);
        assert!(memory.size_pages() <= 2);
        c.free(a, LEN).unwrap();
        c.free(b, LEN).unwrap();
    });
}

#[test]
fn small_blocks_from_two_controllers_never_overlap_and_spans_go_back() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut c = LinearMemoryController::new(&memory);
        let shared = c.alloc(SMALL).unwrap();
        let other = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                let ptr = c.alloc(SMALL).unwrap();
                c.mut_mem(ptr, SMALL).unwrap().fill(1);
                c.free(shared, SMALL).unwrap(); // a free into another controller's span
                ptr
            })
        };
        let mine = c.alloc(SMALL).unwrap();
        c.mut_mem(mine, SMALL).unwrap().fill(2);
        let theirs = other.join().unwrap();
        assert!(
            mine.abs_diff(theirs) >= SMALL,
            "blocks {mine} and {theirs} overlap"
        );
        assert!(c.mut_mem(theirs, SMALL).unwrap().iter().all(|&b| b == 1));
        assert!(c.mut_mem(mine, SMALL).unwrap().iter().all(|&b| b == 2));
        c.free(theirs, SMALL).unwrap();
        c.free(mine, SMALL).unwrap();
        drop(c);
        assert_eq!(memory.allocated_bytes(), 0);
        // Every span went back: the whole page is free for one large block.
        let mut c = LinearMemoryController::new(&memory);
        let big = c.alloc(60_000).unwrap();
        c.free(big, 60_000).unwrap();
    });
}

/// Granule of the pool (`classes.rs`).
const GRANULE: u32 = 256;

/// Regression (review): `acquire_span` published a fresh (empty, pinned)
/// span's state before it assigned the span's granules in the directory. A
/// pool that ran dry in between made another thread's `reclaim_empty_spans` retire that span,
/// take its granules for its own block and assign them; the late
/// `directory.assign` of the first thread then pointed those granules back
/// at the retired span's descriptor, and the other thread's live block was
/// lost: `mut_mem` and `free` answered `UnknownPointer` for it.
#[test]
fn a_reclaimed_fresh_span_never_takes_over_another_blocks_granules() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut filler = LinearMemoryController::new(&memory);
        // Granule 0 is never handed out: leave exactly 4 granules free.
        let fill_len = (255 - 4) * GRANULE;
        let fill = filler.alloc(fill_len).unwrap();
        let small = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                if let Ok(ptr) = c.alloc(SMALL) {
                    c.free(ptr, SMALL).unwrap();
                }
            })
        };
        let mut large = LinearMemoryController::new(&memory);
        // Large (aligned beyond 8): 4 granules from the pool directly.
        let got = large.alloc_aligned(1000, 16);
        small.join().unwrap();
        if let Ok(ptr) = got {
            // A fresh handle: no hint, so the lookup goes through the directory.
            let mut reader = LinearMemoryController::new(&memory);
            assert_eq!(
                reader.mut_mem(ptr, 1000).map(|bytes| bytes.len()),
                Ok(1000),
                "the live large block at {ptr} is reachable"
            );
            drop(reader);
            assert_eq!(large.free(ptr, 1000), Ok(()));
        } else {
            assert_eq!(got, Err(LinearMemoryError::OutOfMemory));
        }
        filler.free(fill, fill_len).unwrap();
        drop(large);
        drop(filler);
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// `transfer` allocates and writes its block without a window in which
/// another handle can claim it: a handle that guessed the pointer and
/// claims it at any moment never makes the transfer fail (and leak its
/// block); it gets the bytes only once they are written.
#[test]
fn transfer_never_loses_its_block_to_a_guessing_claim() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        // Where the next 12-byte block lands: the same place again.
        let mut host = LinearMemoryController::new(&memory);
        let guess = host.alloc(12).unwrap();
        host.free(guess, 12).unwrap();
        let intruder = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                if let Ok(bytes) = c.mut_mem(guess, 12) {
                    assert_eq!(bytes[..4], 8u32.to_le_bytes(), "only a written value");
                }
            })
        };
        let sent = host.transfer(b"8 bytes!");
        intruder.join().unwrap();
        let ptr = sent.expect("a transfer never fails because of another handle");
        assert_eq!(ptr, guess);
        assert_eq!(host.receive(ptr).unwrap(), b"8 bytes!");
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// In a full memory, a handle takes a free block from a span another
/// handle pins while that handle allocates from it: exactly one of them
/// gets the span's last free block.
#[test]
fn a_pinned_spans_last_block_goes_to_exactly_one_handle() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut owner = LinearMemoryController::new(&memory);
        let first = owner.alloc(SMALL).unwrap(); // pins a 2-block span (4 granules)
        let mut other = LinearMemoryController::new(&memory);
        // Granule 0 and the span aside, the page is one large block.
        let fill_len = (255 - 4) * GRANULE;
        let fill = other.alloc_aligned(fill_len, 256).unwrap();
        let owner_thread = thread::spawn(move || {
            let got = owner.alloc(SMALL).ok();
            (owner, got)
        });
        let theirs = other.alloc(SMALL).ok();
        let (mut owner, ours) = owner_thread.join().unwrap();
        assert!(
            ours.is_some() != theirs.is_some(),
            "one block, one taker: {ours:?} {theirs:?}"
        );
        let second = ours.or(theirs).unwrap();
        assert_ne!(second, first);
        owner.free(first, SMALL).unwrap();
        owner.free(second, SMALL).unwrap();
        other.free(fill, fill_len).unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// `len` granule-aligned bytes, retried while the memory is out of them:
/// for a thread waiting on another thread's free or retirement.
fn alloc_once_freed(c: &mut LinearMemoryController, len: u32) -> u32 {
    loop {
        match c.alloc_aligned(len, GRANULE) {
            Ok(ptr) => return ptr,
            Err(e) => {
                assert_eq!(e, LinearMemoryError::OutOfMemory);
                thread::yield_now();
            }
        }
    }
}

/// A span retiring races the large block that takes its granules over:
/// whichever of the two finishes last makes the span's descriptor spare,
/// exactly once (a second listing would give two spans one descriptor;
/// debug assertions check it).
#[test]
fn a_retiring_span_and_the_block_taking_its_granules_make_it_spare_once() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut c = LinearMemoryController::new(&memory);
        let small = c.alloc(SMALL).unwrap(); // a 4-granule span
        let mut other = LinearMemoryController::new(&memory);
        // Granule 0 and the span aside, the page is one large block.
        let fill_len = (255 - 4) * GRANULE;
        let fill = other.alloc_aligned(fill_len, 256).unwrap();
        let retirer = thread::spawn(move || {
            c.free(small, SMALL).unwrap();
            drop(c); // unpins the empty span: it retires
        });
        // Takes the span's granules once they are back in the pool.
        let big = alloc_once_freed(&mut other, 4 * GRANULE);
        retirer.join().unwrap();
        // The large block took the small one's place: its start is now the
        // large block's, which `SMALL` bytes do not describe.
        assert_eq!(big, small);
        assert_eq!(
            other.free(small, SMALL),
            Err(LinearMemoryError::LengthMismatch)
        );
        other.free(big, 4 * GRANULE).unwrap();
        // A new span of the class reuses the spare descriptor.
        let again = other.alloc(SMALL).unwrap();
        other.free(again, SMALL).unwrap();
        other.free(fill, fill_len).unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// A small block freed on one thread, whose span retires there and whose
/// granules another thread's large block then takes: that thread's free
/// of the small block's pointer (now inside its large block) answers
/// `DoubleFree`, never `UnknownPointer`. The retiring thread marks the
/// start before its granules reach the pool (`directory.rs`, freed
/// starts); marked after, the taker can read the mark before it is set.
#[test]
fn a_block_freed_on_another_thread_stays_a_double_free_inside_the_block_that_took_its_place() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut c = LinearMemoryController::new(&memory);
        // Both blocks of one 4-granule span; the second is not at a granule.
        let first = c.alloc(SMALL).unwrap();
        let second = c.alloc(SMALL).unwrap();
        assert_eq!(second, first + 448);
        let mut other = LinearMemoryController::new(&memory);
        let fill_len = (255 - 4) * GRANULE;
        let fill = other.alloc_aligned(fill_len, 256).unwrap();
        let retirer = thread::spawn(move || {
            c.free(first, SMALL).unwrap();
            c.free(second, SMALL).unwrap();
            drop(c); // unpins the empty span: it retires
        });
        let big = alloc_once_freed(&mut other, 4 * GRANULE);
        assert_eq!(big, first);
        assert_eq!(
            other.free(second, SMALL),
            Err(LinearMemoryError::DoubleFree)
        );
        retirer.join().unwrap();
        other.free(big, 4 * GRANULE).unwrap();
        other.free(fill, fill_len).unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// A free that happens after the block's free, but not after its span's
/// retirement, racing the span descriptor's remaking for a new span
/// elsewhere. Its directory load may still name the old descriptor while
/// its load of the descriptor's `start` (or of a block word the remake
/// reset) sees the remake: it then answers by the retirer's mark, which the
/// Release of those stores orders before it (`allocator/lookup.rs`, L4; with them
/// Relaxed the answer was `UnknownPointer`). Found by review.
#[test]
fn a_freed_block_stays_a_double_free_while_its_descriptor_is_remade() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut c = LinearMemoryController::new(&memory);
        // Both blocks of a 4-granule span at granule 1.
        let first = c.alloc(SMALL).unwrap();
        let second = c.alloc(SMALL).unwrap();
        assert_eq!((first, second), (GRANULE, GRANULE + 448));
        let mut other = LinearMemoryController::new(&memory);
        // Leaves 4 free granules at the page's end for the next span.
        let fill_len = (255 - 8) * GRANULE;
        let fill = other.alloc_aligned(fill_len, 256).unwrap();
        c.free(first, SMALL).unwrap();
        c.free(second, SMALL).unwrap();
        // The free happens before the reader's; the retirement does not.
        let reader = {
            let memory = memory.clone();
            thread::spawn(move || LinearMemoryController::new(&memory).free(second, SMALL))
        };
        drop(c); // the span retires: marks both starts, gives its granules back
        let big = other.alloc_aligned(4 * GRANULE, 256).unwrap();
        assert_eq!(
            big, first,
            "takes the span's granules: its descriptor is spare"
        );
        // A new span of the class: the spare descriptor, remade elsewhere.
        let again = other.alloc(SMALL).unwrap();
        assert!(again > big);
        assert_eq!(
            reader.join().unwrap(),
            Err(LinearMemoryError::DoubleFree),
            "{second} was allocated and freed before the reader's free"
        );
        other.free(again, SMALL).unwrap();
        other.free(big, 4 * GRANULE).unwrap();
        other.free(fill, fill_len).unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// Sets up the stale-lookup race of L2 (`allocator/lookup.rs`): the
/// second of two blocks of a span at granule 1, both freed, its span
/// retiring, its granules then taken by a span of another class (which
/// names them all, so the descriptor goes spare, L3) and its descriptor
/// remade elsewhere with two live blocks of the same length (the second
/// at the freed one's index). `stale` runs on its own thread from before
/// the retirement to the end, with the freed block's pointer; `check`
/// gets its result, the other handle, that pointer and the remade span's
/// second block (live: `check` frees it).
fn race_a_stale_lookup_with_a_remade_span<R: Send + 'static>(
    stale: impl FnOnce(SharedLinearMemory, u32) -> R + Send + 'static,
    check: impl FnOnce(R, &mut LinearMemoryController, u32, u32),
) {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut c = LinearMemoryController::new(&memory);
    let first = c.alloc(SMALL).unwrap();
    let second = c.alloc(SMALL).unwrap();
    assert_eq!((first, second), (GRANULE, GRANULE + 448));
    let mut other = LinearMemoryController::new(&memory);
    // Leaves 4 free granules at the page's end for the remade span.
    let fill_len = (255 - 8) * GRANULE;
    let fill = other.alloc_aligned(fill_len, 256).unwrap();
    c.free(first, SMALL).unwrap();
    c.free(second, SMALL).unwrap();
    let racer = {
        let memory = memory.clone();
        thread::spawn(move || stale(memory, second))
    };
    drop(c); // the span retires
    // The 224-byte class: its first span is 4 blocks in 4 granules.
    let plug = other.alloc(200).unwrap();
    assert_eq!(
        plug, first,
        "takes the span's granules: its descriptor is spare"
    );
    // The spare descriptor, remade at the page's end: block 1 is live
    // again, with the length the stale lookup expects.
    let again = other.alloc(SMALL).unwrap();
    let also = other.alloc(SMALL).unwrap();
    assert_eq!(also, again + 448);
    check(racer.join().unwrap(), &mut other, second, also);
    other.free(again, SMALL).unwrap();
    other.free(plug, 200).unwrap();
    other.free(fill, fill_len).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// L2: a free through a lookup that read the span's descriptor before it
/// retired and was remade elsewhere never frees the remade span's block
/// at the same index with the same length (the field says neither where
/// its block is nor which span it belongs to; the lookup's pin keeps the
/// span from being remade while it acts). Mutation `lookup_unpinned`.
#[test]
fn a_stale_free_racing_a_span_remade_elsewhere_never_frees_another_block() {
    model(|| {
        race_a_stale_lookup_with_a_remade_span(
            |memory, second| LinearMemoryController::new(&memory).free(second, SMALL),
            |answer, other, second, also| {
                assert_eq!(
                    answer,
                    Err(LinearMemoryError::DoubleFree),
                    "{second} was allocated and freed before the racing free"
                );
                assert_eq!(other.free(also, SMALL), Ok(()), "{also} stayed live");
            },
        );
    });
}

/// L2 for claims: a `mut_mem` through a stale lookup never claims the
/// remade span's block at the same index (it may claim the large block
/// that holds those bytes now, which is right).
#[test]
fn a_stale_claim_racing_a_span_remade_elsewhere_never_claims_another_block() {
    model(|| {
        race_a_stale_lookup_with_a_remade_span(
            |memory, second| {
                let mut c = LinearMemoryController::new(&memory);
                let _ = c.mut_mem(second, SMALL);
                c // holds its claim, if any, until the check drops it
            },
            |c, other, _, also| {
                assert_eq!(
                    other.free(also, SMALL),
                    Ok(()),
                    "{also} was claimed through a stale lookup"
                );
                drop(c);
            },
        );
    });
}

/// Issue 19: a handle takes a free block back from a span another handle
/// pins, before the memory grows, while the owner allocates and frees in
/// that span. The span holds four blocks and at most three are ever live
/// at once, so in every interleaving the other handle finds a free one:
/// nothing is handed out twice and the memory never grows. Before the fix
/// the other handle grew the memory for a span of its own.
#[test]
fn a_handle_takes_another_handles_free_block_before_the_memory_grows() {
    /// The 224-byte class: four blocks in a 4-granule span.
    const LEN: u32 = 200;
    model(|| {
        let memory = SharedLinearMemory::new(1, 2).unwrap();
        let mut owner = LinearMemoryController::new(&memory);
        let first = owner.alloc(LEN).unwrap(); // pins the span
        let mut other = LinearMemoryController::new(&memory);
        // Granule 0 and the span aside, the first page is one large block.
        let fill_len = (255 - 4) * GRANULE;
        let fill = other.alloc_aligned(fill_len, GRANULE).unwrap();
        let owner_thread = thread::spawn(move || {
            let second = owner.alloc(LEN).unwrap();
            owner.mut_mem(second, LEN).unwrap().fill(1);
            owner.free(first, LEN).unwrap();
            (owner, second)
        });
        let theirs = other.alloc(LEN).unwrap();
        other.mut_mem(theirs, LEN).unwrap().fill(2);
        let (mut owner, second) = owner_thread.join().unwrap();
        assert_eq!(
            memory.size_pages(),
            1,
            "grew with a free block in a pinned span"
        );
        assert!(
            theirs.abs_diff(second) >= LEN,
            "blocks {theirs} and {second} overlap"
        );
        assert!(owner.mut_mem(second, LEN).unwrap().iter().all(|&b| b == 1));
        assert!(other.mut_mem(theirs, LEN).unwrap().iter().all(|&b| b == 2));
        owner.free(second, LEN).unwrap();
        other.free(theirs, LEN).unwrap();
        other.free(fill, fill_len).unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// Issue 19 (S4): a free on another thread empties the span a handle
/// pins, and keeps it for that handle (counted in the memory's kept
/// spans), while the pinning handle allocates from it: the handle takes
/// one of the span's free blocks either way, and its take counts the kept
/// span out again (an unkept span's count going below zero trips a debug
/// assertion). One block is live at the end; once it is freed, the span is
/// kept and empty, and the whole rest of the page still fits one block
/// (the kept span is reclaimed for it, S5).
#[test]
fn a_free_empties_a_pinned_span_while_its_handle_allocates() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut owner = LinearMemoryController::new(&memory);
        let first = owner.alloc(SMALL).unwrap(); // pins a 2-block span
        let freer = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                c.free(first, SMALL).unwrap();
            })
        };
        let second = owner.alloc(SMALL).unwrap();
        owner.mut_mem(second, SMALL).unwrap().fill(3);
        freer.join().unwrap();
        assert_eq!(memory.allocated_bytes(), u64::from(SMALL));
        assert!(
            owner
                .mut_mem(second, SMALL)
                .unwrap()
                .iter()
                .all(|&b| b == 3)
        );
        owner.free(second, SMALL).unwrap();
        let all = 255 * GRANULE;
        let ptr = owner.alloc(all).expect("every span went back");
        owner.free(ptr, all).unwrap();
    });
}

/// A free of a large block's pointer racing its allocation (a guest guessing
/// the pointer the host is about to get) never hands the granules back while
/// the allocation still writes their directory entries: the guest's block in
/// those granules stays its own (review of issue 19). The host's block
/// names only its first granule (its one anchor), so the guest's block
/// starts there: a small one, whose span names its granule itself (a
/// large block there would retake the host's descriptor in place).
#[test]
fn a_free_racing_a_large_allocation_never_loses_another_live_block() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut host = LinearMemoryController::new(&memory);
        // Granules 1-3 free (a 600-byte large block), the rest of the page full.
        let ptr = host.alloc(600).unwrap();
        assert_eq!(ptr, 256);
        let mut filler = LinearMemoryController::new(&memory);
        let rest = 252 * 256;
        let fill = filler.alloc(rest).unwrap();
        host.free(ptr, 600).unwrap();
        let guest = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut guest = LinearMemoryController::new(&memory);
                if guest.free(256, 600).is_ok() {
                    // A one-granule span at granule 1, the host's block's
                    // start.
                    guest.alloc(8).ok().map(|w| (guest, w))
                } else {
                    None
                }
            })
        };
        let _ = host.alloc(600);
        if let Some((mut guest, w)) = guest.join().unwrap() {
            let mut checker = LinearMemoryController::new(&memory);
            let seen = checker.mut_mem(w, 8).map(|b| b.len());
            checker.release();
            let freed = guest.free(w, 8);
            assert!(
                seen == Ok(8) && freed == Ok(()),
                "the guest's live block at {w} is lost: mut_mem {seen:?}, free {freed:?}"
            );
        }
        let _ = host.free(256, 600);
        filler.free(fill, rest).unwrap();
    });
}

/// Two `alloc_wait`s racing for the only span the memory has room for:
/// either may look while the other's span is taken but unpublished (review
/// of issue 19). A look in that window looks again once the span is
/// published (`transit.rs`, T2) and takes its second block, so neither
/// sleeps for room that exists: with the look not repeated (mutation
/// `transit_unseen`), the waiter sleeps and nobody wakes it.
#[test]
fn a_waiter_wakes_for_the_free_block_of_a_span_another_handle_makes() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        // Everything but 4 granules: room for one span of the class.
        let mut filler = LinearMemoryController::new(&memory);
        let fill = filler.alloc(251 * 256).unwrap();
        let waiter = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                let ptr = c.alloc_wait(SMALL).unwrap();
                c.free(ptr, SMALL).unwrap();
            })
        };
        let mut other = LinearMemoryController::new(&memory);
        // The span's second block stays free for the waiter.
        let ptr = other.alloc_wait(SMALL).unwrap();
        waiter.join().unwrap();
        other.free(ptr, SMALL).unwrap();
        filler.free(fill, 251 * 256).unwrap();
    });
}

/// A plain `alloc` racing another handle's new span (brief H2, item 1):
/// from taking its granules from the pool to publishing its state, the
/// span is in no list, yet its second block is room at every instant
/// (before, as the granules). Neither `alloc` may answer `OutOfMemory`.
/// Before the fix, one that looked in that window did (`transit.rs`, T2).
#[test]
fn a_plain_alloc_finds_the_free_block_of_a_span_another_handle_makes() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        // Everything but 4 granules: room for one span of the class.
        let mut filler = LinearMemoryController::new(&memory);
        let fill = filler.alloc(251 * GRANULE).unwrap();
        let other = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                let got = c.alloc(SMALL);
                assert_eq!(got.err(), None, "room for two blocks");
                (c, got.unwrap())
            })
        };
        let mut c = LinearMemoryController::new(&memory);
        let mine = c.alloc(SMALL);
        assert_eq!(mine.err(), None, "room for two blocks");
        let (mut theirs_c, theirs) = other.join().unwrap();
        theirs_c.free(theirs, SMALL).unwrap();
        c.free(mine.unwrap(), SMALL).unwrap();
        filler.free(fill, 251 * GRANULE).unwrap();
    });
}

/// A plain `alloc` racing the free that retires a span (brief H2, item
/// 1): from the compare-and-swap that retires it to its granules back in
/// the pool, the span's room is in no list, yet it exists at every
/// instant (before, as the span's free block; after, as free granules).
/// The `alloc` may not answer `OutOfMemory`. Before the fix, one that
/// looked in that window did (`transit.rs`, T2).
#[test]
fn a_plain_alloc_finds_the_granules_of_a_span_another_handle_retires() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut filler = LinearMemoryController::new(&memory);
        let fill = filler.alloc(251 * GRANULE).unwrap();
        // A two-block span on the last 4 granules, one block live.
        let mut owner = LinearMemoryController::new(&memory);
        let live = owner.alloc(SMALL).unwrap();
        let freer = thread::spawn(move || {
            owner.free(live, SMALL).unwrap(); // the span's last block: it retires
        });
        let mut c = LinearMemoryController::new(&memory);
        let got = c.alloc(SMALL);
        assert_eq!(got.err(), None, "room for a block at every instant");
        freer.join().unwrap();
        c.free(got.unwrap(), SMALL).unwrap();
        filler.free(fill, 251 * GRANULE).unwrap();
    });
}

/// A large block names only its anchors in the directory (its first
/// granule and, under loom, one per 16 granules): a claim of a byte past
/// its second anchor walks back to it. Racing the block being made again
/// in place (its freed descriptor retaken, its anchors renamed to the same
/// descriptor) and then freed, a guessed claim there either holds the
/// live block (whose free then answers `Busy` until released), finds it
/// held (`Busy`) or answers `UnknownPointer`; once the block is made, another handle finds it there.
#[test]
fn a_claim_behind_a_large_blocks_anchor_races_its_remaking_and_free() {
    const BIG: u32 = 20 * GRANULE;
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut owner = LinearMemoryController::new(&memory);
        // Granule 0 is never handed out: granules 1..21, anchors 1 and 16.
        let first = owner.alloc(BIG).unwrap();
        assert_eq!(first, GRANULE);
        owner.free(first, BIG).unwrap();
        let guess = first + 18 * GRANULE + 8;
        let guesser = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                match c.mut_mem(guess, 1) {
                    Ok(bytes) => bytes[0] = 7,
                    // Busy: the live block, which the reader below holds.
                    Err(e) => assert!(
                        matches!(
                            e,
                            LinearMemoryError::UnknownPointer | LinearMemoryError::Busy
                        ),
                        "{e:?}"
                    ),
                }
            })
        };
        let big = owner.alloc(BIG).unwrap();
        assert_eq!(big, first, "made again in place");
        // A fresh handle (no hint) finds the live block from that byte.
        let mut reader = LinearMemoryController::new(&memory);
        match reader.mut_mem(guess, 1) {
            Ok(_) | Err(LinearMemoryError::Busy) => {} // Busy: the guesser holds it
            Err(e) => panic!("byte {guess} of the live block answered {e:?}"),
        }
        drop(reader);
        loop {
            match owner.free(big, BIG) {
                Err(LinearMemoryError::Busy) => thread::yield_now(),
                done => break assert_eq!(done, Ok(())),
            }
        }
        guesser.join().unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// Issue 19 (S4): the free that empties a span its handle pins keeps the
/// span for that handle, yet its granules stay room for everyone: a
/// waiter for them, asleep while the span's block is live, wakes at that
/// free and takes the kept span back (`reclaim_empty_spans`) instead of
/// sleeping for ever while the owner idles. With kept spans skipped by
/// the reclaim (mutation `reclaim_skips_kept`), the waiter never wakes.
#[test]
fn a_waiter_takes_the_granules_of_a_span_kept_for_an_idle_handle() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut owner = LinearMemoryController::new(&memory);
        // A 4-granule span at granule 1, then the rest of the page.
        let block = owner.alloc(SMALL).unwrap();
        let mut filler = LinearMemoryController::new(&memory);
        let rest = 251 * GRANULE;
        let fill = filler.alloc(rest).unwrap();
        let waiter = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = LinearMemoryController::new(&memory);
                let ptr = c.alloc_wait(4 * GRANULE).unwrap();
                c.free(ptr, 4 * GRANULE).unwrap();
            })
        };
        // Kept: `owner` still pins the emptied span, and idles.
        owner.free(block, SMALL).unwrap();
        waiter.join().unwrap();
        filler.free(fill, rest).unwrap();
        assert_eq!(memory.allocated_bytes(), 0);
    });
}

/// Review R5: a span kept empty for its handle (S4) is the only room of a
/// one-page memory that may grow to two; two handles allocate 3 and 1
/// granules (large blocks) at once. Both fit the span's 4 granules in
/// every order. A handle that looked while the other's reclaim had
/// retired the span but not yet given its granules back grew the memory
/// ("grew with a 4-granule kept span ... left: 2 right: 1"): a growth is
/// now decided by a settled look, like an `OutOfMemory` (T2).
#[test]
fn an_alloc_racing_a_kept_span_reclaim_never_grows_the_memory() {
    model(|| {
        let memory = SharedLinearMemory::new(1, 2).unwrap();
        let mut owner = LinearMemoryController::new(&memory);
        let block = owner.alloc(SMALL).unwrap(); // a span at granules 1..5
        let mut a = LinearMemoryController::new(&memory);
        let fill_len = (255 - 4) * GRANULE;
        let fill = a.alloc(fill_len).unwrap();
        owner.free(block, SMALL).unwrap(); // emptied, kept for `owner`
        let mut b = LinearMemoryController::new(&memory);
        let other = thread::spawn(move || {
            let got = b.alloc_aligned(16, GRANULE).unwrap(); // one granule
            (b, got)
        });
        let mine = a.alloc(3 * GRANULE - 100).unwrap();
        let (mut b, theirs) = other.join().unwrap();
        assert_eq!(
            memory.size_pages(),
            1,
            "grew with a 4-granule kept span for 3 + 1 (blocks {mine}, {theirs})"
        );
        a.free(mine, 3 * GRANULE - 100).unwrap();
        b.free(theirs, 16).unwrap();
        a.free(fill, fill_len).unwrap();
        drop(owner);
        assert_eq!(memory.allocated_bytes(), 0);
    });
}
