//! The linear memory under real threads, each test bounded in time
//! (`LINEAR_STRESS_SECS`, default 3): spans retired and remade while
//! others allocate large blocks in a nearly full memory, and claims of
//! random ranges racing handles that fill and check their own blocks.
//! (Written as reproducers by the adversarial review of the block-word
//! allocator; the first failed before the fix that assigns a fresh span's
//! directory entries before publishing its state.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use slotarena::linear::{LinearMemoryController, LinearMemoryError, SharedLinearMemory};

/// Granule of the pool (`classes.rs`): 256 bytes.
const GRANULE: u32 = 256;

fn deadline() -> Instant {
    let secs = std::env::var("LINEAR_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    Instant::now() + Duration::from_secs(secs)
}

/// Two threads make and retire spans of the 448-byte class in a memory
/// with 8 free granules while two others allocate 4-granule large blocks
/// and look each one up through a handle with no hint: a span retired by
/// a reclaim must never take a live block's granules in the directory
/// (the std-thread twin of the loom model of the same name).
#[test]
fn a_reclaimed_fresh_span_never_takes_over_another_blocks_granules() {
    let deadline = deadline();
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut filler = LinearMemoryController::new(&memory);
    // Leave 8 granules free: two spans of the 448-byte class, or two
    // 4-granule large blocks.
    let fill_len = (255 - 8) * GRANULE;
    let fill = filler.alloc(fill_len).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (memory, stop) = (memory.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // A fresh handle each time: every alloc acquires a fresh span.
                let mut c = LinearMemoryController::new(&memory);
                if let Ok(ptr) = c.alloc(400) {
                    c.free(ptr, 400).unwrap();
                }
            }
            0u64
        }));
    }
    for _ in 0..2 {
        let (memory, stop) = (memory.clone(), stop.clone());
        threads.push(thread::spawn(move || {
            let mut large = LinearMemoryController::new(&memory);
            // Never allocates, so its lookups always go through the directory.
            let mut reader = LinearMemoryController::new(&memory);
            let mut got = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Ok(ptr) = large.alloc_aligned(1000, 16) {
                    got += 1;
                    let seen = reader.mut_mem(ptr, 1000).map(|bytes| bytes.len());
                    reader.release();
                    let freed = large.free(ptr, 1000);
                    if seen != Ok(1000) || freed.is_err() {
                        stop.store(true, Ordering::Relaxed);
                        panic!("live large block {ptr} lost: mut_mem {seen:?}, free {freed:?}");
                    }
                }
            }
            got
        }));
    }
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    let mut allocated = 0;
    for thread in threads {
        allocated += thread.join().expect("a worker found a lost block");
    }
    eprintln!("{allocated} large blocks allocated and checked");
    filler.free(fill, fill_len).unwrap();
}

/// Two handles allocate and free mixed sizes (small, large, aligned) in a
/// tight 2-page memory and fill and re-check a block inside each claim,
/// while an intruder claims random ranges (sub-ranges and empty ranges)
/// and zeroes what it gets: no claimed byte is ever written by another
/// handle, no free of a live block fails but for `Busy`, and every block
/// is freed once.
#[test]
fn claims_never_overlap_under_churn() {
    let deadline = deadline();
    let memory = SharedLinearMemory::new(1, 2).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for id in 0..2u64 {
        let (memory, stop) = (memory.clone(), stop.clone());
        workers.push(thread::spawn(move || {
            let mut rng = 0x1234_5678_9abc_def0u64 ^ (id << 32);
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut c = LinearMemoryController::new(&memory);
            let mut live: Vec<(u32, u32)> = Vec::new();
            let mut stamp = 0u8;
            while !stop.load(Ordering::Relaxed) {
                if live.len() < 24 && next() % 3 != 0 {
                    let len = match next() % 4 {
                        0 => 1 + (next() % 64) as u32,
                        1 => 1 + (next() % 1024) as u32,
                        2 => 1025 + (next() % 6000) as u32,
                        _ => 1 + (next() % 300) as u32,
                    };
                    let got = if next() % 5 == 0 {
                        c.alloc_aligned(len, 1 << (next() % 12))
                    } else {
                        c.alloc(len)
                    };
                    if let Ok(ptr) = got {
                        live.push((ptr, len));
                    }
                } else if !live.is_empty() {
                    let (ptr, len) = live.swap_remove((next() % live.len() as u64) as usize);
                    match c.free(ptr, len) {
                        // The intruder holds it: try again later.
                        Err(LinearMemoryError::Busy) => live.push((ptr, len)),
                        other => assert_eq!(other, Ok(()), "a live block {ptr}+{len} was lost"),
                    }
                    continue;
                }
                if let Some(&(ptr, len)) = live.get((next() % live.len().max(1) as u64) as usize) {
                    stamp = stamp.wrapping_add(1) | 1;
                    let Ok(mut bytes) = c.lock(ptr, len) else {
                        continue;
                    };
                    bytes.fill(stamp);
                    for _ in 0..(next() % 200) {
                        std::hint::spin_loop();
                    }
                    assert!(
                        bytes.iter().all(|&b| b == stamp),
                        "another handle wrote into {ptr}+{len} while it was claimed"
                    );
                }
            }
            (c, live)
        }));
    }
    let intruder = {
        let (memory, stop) = (memory.clone(), stop.clone());
        thread::spawn(move || {
            let mut rng = 0xdead_beef_u64;
            let mut c = LinearMemoryController::new(&memory);
            let mut got = 0u64;
            while !stop.load(Ordering::Relaxed) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let ptr = ((rng % (2 * 65_536)) as u32) & !7;
                let len = ((rng >> 20) % 40) as u32 * 8;
                if let Ok(bytes) = c.mut_mem(ptr, len) {
                    bytes.fill(0);
                    got += 1;
                }
            }
            got
        })
    };
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        if workers.iter().any(|w| w.is_finished()) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let got = intruder.join().unwrap();
    for worker in workers {
        let (mut c, live) = worker.join().expect("a worker found overlapping claims");
        for (ptr, len) in live {
            c.free(ptr, len).unwrap();
        }
    }
    assert_eq!(memory.allocated_bytes(), 0, "every block freed once");
    eprintln!("the intruder claimed {got} ranges");
}

/// Issue 19: four handles on four threads share a memory too small for
/// all their blocks, so they take free blocks of each other's pinned
/// spans; every block is handed to the next thread, which checks its
/// stamp and frees it through its own handle. A live block whose bytes
/// another live block shares would lose its stamp before its free. Every
/// block is freed once, and once all are, one handle gets the whole memory
/// while the others still live.
#[test]
fn live_blocks_never_overlap_across_handles_that_free_each_others_blocks() {
    const THREADS: usize = 4;
    let deadline = deadline();
    let memory = SharedLinearMemory::new(1, 2).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| std::sync::mpsc::channel()).unzip();
    let mut workers = Vec::new();
    for (id, inbox) in receivers.into_iter().enumerate() {
        let (memory, stop) = (memory.clone(), stop.clone());
        let next_thread = senders[(id + 1) % THREADS].clone();
        workers.push(thread::spawn(move || {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ ((id as u64) << 40);
            let mut next = move || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            let mut c = LinearMemoryController::new(&memory);
            let mut mine: Vec<(u32, u32, u8)> = Vec::new();
            let (mut allocated, mut refused) = (0u64, 0u64);
            let check_and_free = |c: &mut LinearMemoryController, (ptr, len, stamp): (u32, u32, u8)| {
                let bytes = c.mut_mem(ptr, len).unwrap();
                assert!(
                    bytes.iter().all(|&b| b == stamp),
                    "block {ptr}+{len} lost its stamp {stamp}: another live block shares its bytes"
                );
                c.free(ptr, len).unwrap();
            };
            while !stop.load(Ordering::Relaxed) {
                let len = match next() % 8 {
                    0..=4 => 1 + (next() % 512) as u32,
                    5 | 6 => 513 + (next() % 3000) as u32,
                    _ => 4096 + (next() % 12_000) as u32,
                };
                match c.alloc(len) {
                    Ok(ptr) => {
                        let stamp = (id as u8) << 6 | (allocated % 64) as u8;
                        c.mut_mem(ptr, len).unwrap().fill(stamp);
                        mine.push((ptr, len, stamp));
                        allocated += 1;
                    }
                    Err(error) => {
                        assert_eq!(error, LinearMemoryError::OutOfMemory);
                        refused += 1;
                    }
                }
                if mine.len() > 8 || (!mine.is_empty() && next() % 3 == 0) {
                    let block = mine.swap_remove((next() % mine.len() as u64) as usize);
                    c.release(); // the last `mut_mem` may have claimed it
                    if next_thread.send(block).is_err() {
                        check_and_free(&mut c, block);
                    }
                }
                while let Ok(block) = inbox.try_recv() {
                    check_and_free(&mut c, block);
                }
            }
            drop(next_thread);
            (c, mine, inbox, allocated, refused)
        }));
    }
    drop(senders);
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        if workers.iter().any(|w| w.is_finished()) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut totals = (0, 0);
    let mut left = Vec::new();
    for worker in workers {
        let (c, mine, inbox, allocated, refused) =
            worker.join().expect("a worker found overlapping blocks");
        totals = (totals.0 + allocated, totals.1 + refused);
        left.push((c, mine, inbox));
    }
    for (c, mine, inbox) in &mut left {
        for (ptr, len, stamp) in mine.drain(..).chain(inbox.try_iter()) {
            assert!(c.mut_mem(ptr, len).unwrap().iter().all(|&b| b == stamp));
            c.free(ptr, len).unwrap();
        }
    }
    assert_eq!(memory.allocated_bytes(), 0, "every block freed once");
    // All handed back: one handle gets the whole memory, wherever the
    // others' spans were.
    let mut c = LinearMemoryController::new(&memory);
    let all = 2 * 65_536 - GRANULE;
    let ptr = c.alloc(all).expect("nothing stays hidden in a handle");
    c.free(ptr, all).unwrap();
    eprintln!(
        "{} blocks allocated, {} refused for room",
        totals.0, totals.1
    );
}
