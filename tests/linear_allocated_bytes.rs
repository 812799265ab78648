//! Review: `SharedLinearMemory::allocated_bytes` ("bytes of live
//! allocations") sums per-thread shards with wrapping adds, one Relaxed
//! load at a time. A block allocated through a handle on one shard and
//! freed through a handle on another can be counted freed but not yet
//! allocated by a reader that passes the first shard before the
//! allocation and the second after the free: it reads about 2^64 bytes
//! for a memory of a few pages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use slotarena::linear::{PAGE_SIZE, SharedLinearMemory};

#[test]
fn allocated_bytes_never_exceeds_the_memory() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let max = u64::from(PAGE_SIZE);
    let stop = Arc::new(AtomicBool::new(false));
    // 0: empty; else a block of 8 bytes for the freer.
    let handoff = Arc::new(AtomicU32::new(0));
    let allocator = {
        let (memory, stop, handoff) = (memory.clone(), stop.clone(), handoff.clone());
        thread::spawn(move || {
            let mut c = memory.controller();
            while !stop.load(Ordering::Relaxed) {
                if handoff.load(Ordering::Acquire) == 0 {
                    let ptr = c.alloc(8).unwrap();
                    handoff.store(ptr, Ordering::Release);
                }
            }
        })
    };
    let freer = {
        let (memory, stop, handoff) = (memory.clone(), stop.clone(), handoff.clone());
        thread::spawn(move || {
            let mut c = memory.controller();
            while !stop.load(Ordering::Relaxed) {
                let ptr = handoff.load(Ordering::Acquire);
                if ptr != 0 {
                    c.free(ptr, 8).unwrap();
                    handoff.store(0, Ordering::Release);
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut reads = 0u64;
    let mut worst = None;
    while Instant::now() < deadline {
        reads += 1;
        let seen = memory.allocated_bytes();
        if seen > max {
            worst = Some(seen);
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    allocator.join().unwrap();
    freer.join().unwrap();
    if let Some(seen) = worst {
        panic!(
            "allocated_bytes() read {seen} for a {max}-byte memory holding at most one \
             8-byte block (read {reads})"
        );
    }
}
