//! Review of issue 19: a large block's word is published live before the
//! directory names all of its granules (`allocator/large.rs`: `publish`
//! then `assign`). A free of its pointer from another handle — a guest
//! guessing the pointer the host is about to get, i.e. bad input racing
//! an allocation — succeeds as soon as the first granule names the block,
//! gives the granules back to the pool, and the allocating thread's
//! `assign` then keeps writing the freed descriptor over granules another
//! allocation has taken meanwhile. That allocation's own directory entry
//! is overwritten: a live block answers `UnknownPointer` (or `DoubleFree`)
//! to its owner's `free`, and is lost for good.
//!
//! "Nothing a guest passes panics, corrupts or blocks the host"
//! (DESIGN.md), and `assign`'s comment says "nobody else writes their
//! words until the caller gives them back" — the early free breaks that.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use slotarena::linear::{LinearMemoryController, LinearMemoryError, PAGE_SIZE, SharedLinearMemory};

const PAGES: u32 = 16;
/// Every granule but the first: the allocation's start is known (256).
const LEN: u32 = PAGES * PAGE_SIZE - 256;
const PTR: u32 = 256;

fn secs() -> u64 {
    std::env::var("REVIEW_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

#[test]
fn a_free_racing_the_allocation_never_loses_another_live_block() {
    let memory = SharedLinearMemory::new(PAGES, PAGES).unwrap();
    let started = Arc::new(AtomicU64::new(0));
    let returned = Arc::new(AtomicU64::new(0));
    let checked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(secs());

    let guest = {
        let (memory, started, returned, checked, stop) = (
            memory.clone(),
            started.clone(),
            returned.clone(),
            checked.clone(),
            stop.clone(),
        );
        thread::spawn(move || -> Result<u64, String> {
            let mut guest = LinearMemoryController::new(&memory);
            let mut last = 0;
            let mut early = 0u64;
            loop {
                let round = loop {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(early);
                    }
                    let round = started.load(Ordering::Acquire);
                    if round > last {
                        break round;
                    }
                    thread::yield_now();
                };
                last = round;
                // Guess the host's pointer: free it as soon as it is live.
                let mut freed = false;
                loop {
                    if guest.free(PTR, LEN).is_ok() {
                        freed = true;
                        break;
                    }
                    if returned.load(Ordering::Acquire) == round {
                        break;
                    }
                }
                let mine = if freed {
                    if returned.load(Ordering::Acquire) != round {
                        early += 1;
                    }
                    // One granule, 64 KiB aligned: granule 256, inside the
                    // range the host's `assign` may still be writing.
                    guest.alloc_aligned(8, PAGE_SIZE).ok()
                } else {
                    None
                };
                while returned.load(Ordering::Acquire) != round {
                    thread::yield_now();
                }
                if let Some(ptr) = mine {
                    // The host's allocation has returned: its `assign` is over.
                    let mut checker = LinearMemoryController::new(&memory);
                    let seen = checker.mut_mem(ptr, 8).map(|b| b.len());
                    checker.release();
                    let answer = guest.free(ptr, 8);
                    if seen != Ok(8) || answer != Ok(()) {
                        checked.store(round, Ordering::Release);
                        return Err(format!(
                            "round {round}: the guest's live block at {ptr} (8 bytes) is lost: \
                             mut_mem {seen:?}, free {answer:?} (after {early} frees that raced \
                             the host's allocation)"
                        ));
                    }
                }
                checked.store(round, Ordering::Release);
            }
        })
    };

    let mut host = LinearMemoryController::new(&memory);
    let mut round = 0;
    while Instant::now() < deadline {
        round += 1;
        started.store(round, Ordering::Release);
        let ptr = host.alloc(LEN);
        returned.store(round, Ordering::Release);
        while checked.load(Ordering::Acquire) != round {
            if guest.is_finished() {
                break;
            }
            thread::yield_now();
        }
        if guest.is_finished() {
            break;
        }
        match ptr {
            Ok(ptr) => {
                assert_eq!(ptr, PTR);
                // Ok, or DoubleFree when the guest freed it first.
                let answer = host.free(ptr, LEN);
                assert!(
                    matches!(answer, Ok(()) | Err(LinearMemoryError::DoubleFree)),
                    "{answer:?}"
                );
            }
            Err(error) => panic!("round {round}: host alloc {error:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    match guest.join().unwrap() {
        Ok(early) => eprintln!("{round} rounds, {early} frees raced the allocation, no block lost"),
        Err(report) => panic!("{report}"),
    }
}
