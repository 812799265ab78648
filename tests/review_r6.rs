//! Review R6: reproducers against main's linear-memory instruction cuts
//! (pool `move_free`, fields' `exchange_seen`, inlined `decommit_clean`)
//! and h12-w1's free-pool change (`hot` tells the compiler `side < 2`).
//! Each test says whether it passed; the passing ones are kept as evidence
//! of what was attacked.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use slotarena::SlotArena;
use slotarena::linear::{LinearMemoryController, LinearMemoryError, PAGE_SIZE, SharedLinearMemory};

/// `done` once it reaches `n`, or after 120 s: a watchdog that turns a
/// waiter that never wakes into a failed assertion instead of a hang.
fn count_within_120_s(done: &AtomicUsize, n: usize) -> usize {
    for _ in 0..1200 {
        if done.load(Ordering::SeqCst) == n {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    done.load(Ordering::SeqCst)
}

/// A small deterministic generator (xorshift).
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// A length that mixes exact small classes, in-class lengths and large
/// blocks that split and merge runs onto other pool lists (`move_free`).
fn length(seed: &mut u64) -> u32 {
    match next(seed) % 6 {
        0 => 1 + (next(seed) % 64) as u32,
        1 => 65 + (next(seed) % 448) as u32,
        2 => 513 + (next(seed) % 3584) as u32,
        3 => 4097 + (next(seed) % 12_000) as u32,
        4 => 256 * (1 + (next(seed) % 40) as u32),
        _ => 16_001 + (next(seed) % 30_000) as u32,
    }
}

/// The largest block a memory of `max` pages can ever hold: all of it but
/// the first 256 bytes (never handed out).
fn largest(max: u32) -> u32 {
    max * PAGE_SIZE - 256
}

/// Several controllers on different threads allocate a mix of lengths and
/// alignments and free each other's blocks; afterwards, with every one of
/// them still alive and idle (caches and pinned spans in place), the
/// memory holds no byte and one block of the whole memory fits: no pool
/// run was lost by a split or a merge, no cache hides room.
/// Result: PASSED on r6-review (main aca1251 + h12-w1).
#[test]
fn r6_idle_handles_never_hide_room_and_the_pool_loses_no_run() {
    const MAX: u32 = 8;
    const THREADS: u64 = 4;
    let memory = SharedLinearMemory::new(1, MAX).unwrap();
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..THREADS).map(|_| mpsc::channel::<(u32, u32)>()).unzip();
    let receivers: Vec<_> = receivers.into_iter().map(Mutex::new).collect();
    let receivers = Arc::new(receivers);
    let oom = Arc::new(AtomicUsize::new(0));
    let controllers: Vec<LinearMemoryController> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let memory = memory.clone();
                let to_next = senders[((t + 1) % THREADS) as usize].clone();
                let receivers = Arc::clone(&receivers);
                let oom = Arc::clone(&oom);
                s.spawn(move || {
                    let mut c = memory.controller();
                    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (t + 1);
                    for step in 0..4000u32 {
                        let len = length(&mut seed);
                        let got = if step.is_multiple_of(5) {
                            let align = 8 << (next(&mut seed) % 10);
                            c.alloc_aligned(len, align)
                        } else {
                            c.alloc(len)
                        };
                        match got {
                            Ok(ptr) => {
                                c.mut_mem(ptr, len).unwrap()[0] = t as u8;
                                // The claim ends before another handle frees.
                                c.release();
                                if next(&mut seed).is_multiple_of(3) {
                                    c.free(ptr, len).unwrap();
                                } else {
                                    to_next.send((ptr, len)).unwrap();
                                }
                            }
                            Err(LinearMemoryError::OutOfMemory) => {
                                oom.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                        // Free what the previous thread handed over.
                        let rx = receivers[t as usize].lock().unwrap();
                        while let Ok((ptr, len)) = rx.try_recv() {
                            c.free(ptr, len).unwrap();
                        }
                    }
                    c
                })
            })
            .collect();
        drop(senders);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut controllers = controllers;
    // Blocks still in flight when their freer finished.
    for rx in receivers.iter() {
        let rx = rx.lock().unwrap();
        while let Ok((ptr, len)) = rx.try_recv() {
            controllers[0].free(ptr, len).unwrap();
        }
    }
    assert_eq!(memory.allocated_bytes(), 0, "every block was freed");
    let mut fresh = memory.controller();
    let all = fresh
        .alloc(largest(MAX))
        .expect("one block of the whole memory fits beside idle handles");
    fresh.free(all, largest(MAX)).unwrap();
    // The same through a handle that cached and pinned.
    let all = controllers[1].alloc(largest(MAX)).unwrap();
    controllers[2].free(all, largest(MAX)).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
    assert!(memory.size_pages() <= MAX);
}

/// The same single-threaded, with a long random history of splits and
/// merges of large blocks of every alignment, checked after each round:
/// the whole memory fits again once every block is freed.
/// Result: PASSED on r6-review.
#[test]
fn r6_a_long_split_and_merge_history_leaves_the_whole_memory_free() {
    const MAX: u32 = 6;
    let memory = SharedLinearMemory::new(1, MAX).unwrap();
    let mut c = memory.controller();
    let mut seed = 0xDEAD_BEEF_1234_5678u64;
    for round in 0..40 {
        let mut live: Vec<(u32, u32)> = Vec::new();
        for _ in 0..400 {
            if !live.is_empty() && next(&mut seed) % 5 < 2 {
                let at = (next(&mut seed) % live.len() as u64) as usize;
                let (ptr, len) = live.swap_remove(at);
                c.free(ptr, len).unwrap();
                continue;
            }
            let len = length(&mut seed);
            let align = 8u32 << (next(&mut seed) % 14);
            match c.alloc_aligned(len, align.min(PAGE_SIZE)) {
                Ok(ptr) => {
                    assert_eq!(ptr % align.min(PAGE_SIZE), 0);
                    live.push((ptr, len));
                }
                Err(LinearMemoryError::OutOfMemory) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        // Free in a shuffled order so merges join runs from both sides.
        while !live.is_empty() {
            let at = (next(&mut seed) % live.len() as u64) as usize;
            let (ptr, len) = live.swap_remove(at);
            c.free(ptr, len).unwrap();
        }
        assert_eq!(memory.allocated_bytes(), 0, "round {round}");
        let all = c
            .alloc(largest(MAX))
            .unwrap_or_else(|e| panic!("round {round}: the whole memory: {e:?}"));
        c.free(all, largest(MAX)).unwrap();
    }
}

/// Threads race to free one block: exactly one succeeds, every other one
/// answers `DoubleFree` (or `LengthMismatch` for a wrong length while the
/// block is live), never `Ok` twice and never `UnknownPointer` for a block
/// that was allocated. Small blocks share their field's word with others
/// being allocated and freed meanwhile (exchange_seen's retry path).
/// Result: PASSED on r6-review.
#[test]
fn r6_racing_frees_of_one_block_answer_one_ok_and_exact_errors() {
    const RACERS: usize = 3;
    let memory = SharedLinearMemory::new(1, 16).unwrap();
    let barrier = Arc::new(Barrier::new(RACERS + 1));
    let slot = Arc::new(Mutex::new((0u32, 0u32)));
    let stop = Arc::new(AtomicBool::new(false));
    let oks = Arc::new(AtomicUsize::new(0));
    // A neighbour churner: allocates and frees blocks of the same class,
    // so the racing block's field word changes under the racers.
    let churn = {
        let (memory, stop) = (memory.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut c = memory.controller();
            while !stop.load(Ordering::Relaxed) {
                let ptrs: Vec<u32> = (0..8).map(|_| c.alloc(24).unwrap()).collect();
                for p in ptrs {
                    c.free(p, 24).unwrap();
                }
            }
        })
    };
    let racers: Vec<_> = (0..RACERS)
        .map(|r| {
            let (memory, barrier, slot, oks) = (
                memory.clone(),
                Arc::clone(&barrier),
                Arc::clone(&slot),
                Arc::clone(&oks),
            );
            thread::spawn(move || {
                let mut c = memory.controller();
                loop {
                    barrier.wait();
                    let (ptr, len) = *slot.lock().unwrap();
                    if ptr == 0 {
                        return;
                    }
                    let asked = if r == 2 { len + 1 } else { len };
                    match c.free(ptr, asked) {
                        Ok(()) => {
                            assert_eq!(asked, len, "freed with the wrong length");
                            oks.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(LinearMemoryError::DoubleFree) => {}
                        Err(LinearMemoryError::LengthMismatch) if asked != len => {}
                        Err(e) => panic!("racer {r}: free({ptr}, {asked}) of {len}: {e:?}"),
                    }
                    barrier.wait();
                }
            })
        })
        .collect();
    let mut c = memory.controller();
    let mut seed = 42u64;
    for round in 0..3000 {
        let len = match round % 3 {
            0 => 17 + (next(&mut seed) % 7) as u32,
            1 => 24,
            _ => 4096 + (next(&mut seed) % 9000) as u32,
        };
        let ptr = c.alloc(len).unwrap();
        *slot.lock().unwrap() = (ptr, len);
        barrier.wait();
        barrier.wait();
        assert_eq!(oks.swap(0, Ordering::SeqCst), 1, "round {round}");
    }
    *slot.lock().unwrap() = (0, 0);
    barrier.wait();
    for r in racers {
        r.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    drop(c);
    assert_eq!(memory.allocated_bytes(), 0);
}

/// A claimed block is `Busy` to every racing free until the claim ends,
/// then exactly one free wins; a `free_async`/`lock_wait` style waiter is
/// not needed: the plain free must never free under a claim.
/// Result: PASSED on r6-review.
#[test]
fn r6_a_claimed_block_is_busy_to_racing_frees_until_released() {
    let memory = SharedLinearMemory::new(1, 4).unwrap();
    let mut owner = memory.controller();
    for round in 0..2000u32 {
        let len = if round.is_multiple_of(2) { 40 } else { 5000 };
        let ptr = owner.alloc(len).unwrap();
        owner.mut_mem(ptr, len).unwrap()[0] = 1;
        let freed = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    let mut c = memory.controller();
                    for _ in 0..50 {
                        match c.free(ptr, len) {
                            Err(LinearMemoryError::Busy) => {}
                            Ok(()) => {
                                freed.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                });
            }
        });
        assert_eq!(freed.load(Ordering::SeqCst), 0, "freed under a claim");
        owner.release();
        owner.free(ptr, len).unwrap();
    }
    assert_eq!(memory.allocated_bytes(), 0);
}

/// Lost wake-up: a waiter in `alloc_wait` / `lock_wait` registering while
/// the holder frees / releases. Each round must finish; a watchdog turns a
/// hang into a failure.
/// Result: PASSED on r6-review.
#[test]
fn r6_alloc_wait_and_lock_wait_never_miss_the_free_or_release() {
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            for _ in 0..1200 {
                if done.load(Ordering::SeqCst) {
                    return;
                }
                thread::sleep(Duration::from_millis(100));
            }
            panic!("a waiter missed its wake-up (120 s)");
        })
    };
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let big = 40_000;
    let mut holder = memory.controller();
    for round in 0..1500u32 {
        let ptr = holder.alloc(big).unwrap();
        let waiter = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = memory.controller();
                let got = c.alloc_wait(big).unwrap();
                c.free(got, big).unwrap();
            })
        };
        if round.is_multiple_of(2) {
            thread::yield_now();
        }
        holder.free(ptr, big).unwrap();
        waiter.join().unwrap();
        // A claim waiter.
        let small = holder.alloc(16).unwrap();
        holder.mut_mem(small, 16).unwrap()[0] = 7;
        let waiter = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = memory.controller();
                let guard = c.lock_wait(small, 16).unwrap();
                assert_eq!(guard[0], 7);
            })
        };
        if round.is_multiple_of(3) {
            thread::yield_now();
        }
        holder.release();
        waiter.join().unwrap();
        holder.free(small, 16).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// Arena: producer → consumer batches (W5's flipped lists) on two threads,
/// then from a quiescent state one thread fills every slot: exact
/// capacity, and a growable arena does not grow while free slots sit in
/// another shard's hot list. Drops are exact.
/// Result: PASSED on r6-review.
#[test]
fn r6_batched_frees_stay_reachable_and_capacity_stays_exact() {
    const SLOTS: usize = 96;
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    for growable in [false, true] {
        let arena: SlotArena<Counted> = if growable {
            SlotArena::growable(SLOTS, SLOTS * 4)
        } else {
            SlotArena::new(SLOTS)
        };
        let stored = AtomicUsize::new(0);
        for round in 0..30 {
            let (tx, rx) = mpsc::sync_channel(8);
            thread::scope(|s| {
                s.spawn(|| {
                    for _ in 0..2000 {
                        match arena.insert(Counted(Arc::clone(&drops))) {
                            Ok(key) => {
                                stored.fetch_add(1, Ordering::SeqCst);
                                tx.send(key).unwrap();
                            }
                            Err(_) => thread::yield_now(),
                        }
                    }
                    drop(tx);
                });
                s.spawn(|| {
                    for key in rx {
                        arena.remove(key).unwrap();
                    }
                });
            });
            assert_eq!(arena.len(), 0, "round {round}");
            // Quiescent: this (third) thread takes every slot.
            let keys: Vec<_> = (0..SLOTS)
                .map(|i| {
                    arena
                        .insert(Counted(Arc::clone(&drops)))
                        .unwrap_or_else(|_| panic!("round {round}: full after {i} of {SLOTS}"))
                })
                .collect();
            stored.fetch_add(SLOTS, Ordering::SeqCst);
            assert_eq!(arena.capacity(), SLOTS, "grew with free slots listed");
            for key in keys {
                arena.remove(key).unwrap();
            }
        }
        drop(arena);
        assert_eq!(drops.load(Ordering::SeqCst), stored.load(Ordering::SeqCst));
        drops.store(0, Ordering::SeqCst);
    }
}

/// A waiter for a large block at the maximum size, while the room it
/// needs sits in small blocks of spans an idle handle pins: another handle
/// on another thread frees those blocks (the spans empty under their idle
/// pinner). The waiter must wake and take the emptied spans' granules,
/// not sleep on room a pin hides.
/// Result: see the run in the report.
#[test]
fn r6_a_large_waiter_wakes_for_spans_emptied_under_an_idle_pinner() {
    for round in 0..200u32 {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut pinner = memory.controller();
        let mut small = Vec::new();
        for len in [512u32, 64, 24, 200, 448] {
            for _ in 0..20 {
                small.push((pinner.alloc(len).unwrap(), len));
            }
        }
        // Fill the rest with large blocks.
        let mut filler = memory.controller();
        let mut large = Vec::new();
        for len in [32_768u32, 16_384, 8_192, 4_096, 2_048, 1_024, 512, 256] {
            while let Ok(ptr) = filler.alloc_aligned(len, 256) {
                large.push((ptr, len));
            }
        }
        // Then free the large ones: the room left is too small for
        // `want` without the small blocks' granules.
        for (ptr, len) in large.drain(..) {
            filler.free(ptr, len).unwrap();
        }
        let used: u32 = small.iter().map(|&(_, len)| len).sum();
        let want = largest(1) - used - 4096;
        assert_eq!(
            filler.alloc(want),
            Err(LinearMemoryError::OutOfMemory),
            "round {round}: the small blocks' spans stand in the way"
        );
        let waiter = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = memory.controller();
                let got = c.alloc_timeout(want, Duration::from_secs(20));
                if let Ok(ptr) = got {
                    c.free(ptr, want).unwrap();
                }
                got
            })
        };
        if round.is_multiple_of(2) {
            thread::sleep(Duration::from_millis(1));
        }
        let freer = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = memory.controller();
                for (ptr, len) in small {
                    c.free(ptr, len).unwrap();
                }
            })
        };
        freer.join().unwrap();
        let got = waiter.join().unwrap();
        assert!(got.is_ok(), "round {round}: the waiter answered {got:?}");
        assert_eq!(memory.allocated_bytes(), 0);
        drop(pinner);
    }
}

/// A span emptied under its idle pinner is kept for it (S4); a large
/// request on another handle that only those granules can serve must take
/// them back: no `OutOfMemory` at the maximum, no growth below it.
/// Result: see the run in the report.
#[test]
fn r6_a_kept_empty_span_serves_a_large_request_before_oom_or_growth() {
    for (max, len) in [(1u32, 512u32), (2, 512), (1, 64), (2, 24), (1, 8)] {
        let memory = SharedLinearMemory::new(1, max).unwrap();
        let mut pinner = memory.controller();
        let a = pinner.alloc(len).unwrap();
        let mut filler = memory.controller();
        let mut large = Vec::new();
        for fill in [32_768u32, 16_384, 8_192, 4_096, 2_048, 1_024, 512, 256] {
            while memory.size_pages() == 1 {
                match filler.alloc_aligned(fill, 256) {
                    Ok(ptr) if memory.size_pages() == 1 => large.push((ptr, fill)),
                    Ok(ptr) => {
                        // It grew: that block is past the first page.
                        filler.free(ptr, fill).unwrap();
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        // The first page is full but for the pinner's span.
        pinner.free(a, len).unwrap();
        let mut other = memory.controller();
        let got = other.alloc(1024);
        assert!(
            got.is_ok(),
            "max {max}, class of {len}: {got:?} with an empty kept span"
        );
        let ptr = got.unwrap();
        assert!(
            ptr < PAGE_SIZE,
            "max {max}, class of {len}: grew (block at {ptr}) with an empty kept span"
        );
        other.free(ptr, 1024).unwrap();
        for (ptr, fill) in large {
            filler.free(ptr, fill).unwrap();
        }
        assert_eq!(memory.allocated_bytes(), 0);
    }
}

/// A value counting its drops.
struct Dropped(Arc<AtomicUsize>);
impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Every way a value leaves its slot, at the slot's last generation
/// (`u32::MAX`): the slot retires (the capacity drops by one and stays
/// exact), the old key never reaches a later value, the value drops once,
/// and a vacant entry dropped at the last generation never lets its key
/// reach a value.
/// Result: see the run in the report.
#[test]
fn r6_every_removal_at_the_last_generation_retires_the_slot() {
    type Path = fn(&mut SlotArena<Dropped>, slotarena::MessageToken);
    let paths: [(&str, Path); 10] = [
        ("remove", |a, k| a.remove(k).unwrap()),
        ("take", |a, k| drop(a.take(k).ok().unwrap())),
        ("try_take", |a, k| drop(a.try_take(k).ok().unwrap())),
        ("clear", |a, _| a.clear()),
        ("retain", |a, _| a.retain(|_, _| false)),
        ("exclusive.drain dropped unconsumed", |a, _| {
            drop(a.exclusive().unwrap().drain())
        }),
        ("exclusive.clear", |a, _| a.exclusive().unwrap().clear()),
        ("exclusive.drain", |a, _| {
            drop(a.exclusive().unwrap().drain().collect::<Vec<_>>())
        }),
        ("remove under a read guard", |a, k| {
            let guard = a.get(k).unwrap();
            a.remove(k).unwrap();
            drop(guard);
        }),
        ("remove under a pinned reader", |a, k| {
            let mut reader = a.reader();
            let pinned = reader.try_get(k).ok().unwrap();
            a.remove(k).unwrap();
            drop(pinned);
            drop(reader);
        }),
    ];
    for (name, path) in paths {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut arena = SlotArena::<Dropped>::new(2);
        assert!(arena.__set_free_generation(0, u32::MAX), "{name}");
        assert!(arena.__set_free_generation(1, u32::MAX), "{name}");
        let last = arena.insert(Dropped(Arc::clone(&drops))).unwrap();
        assert_eq!(last.generation(), u32::MAX, "{name}");
        path(&mut arena, last);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{name}: dropped once");
        assert_eq!(arena.capacity(), 1, "{name}: the slot retired");
        let next = arena.insert(Dropped(Arc::clone(&drops))).unwrap();
        assert_ne!(
            next.index(),
            last.index(),
            "{name}: a retired slot was reused"
        );
        assert!(
            arena.get(last).is_err(),
            "{name}: the old key reached a value"
        );
        assert!(
            arena.insert(Dropped(Arc::clone(&drops))).is_err(),
            "{name}: exact"
        );
        drop(arena);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            3,
            "{name}: every value dropped once"
        );
    }
    // A vacant entry at the last generation, dropped: its key never
    // reaches a value.
    let mut arena = SlotArena::<u32>::new(1);
    assert!(arena.__set_free_generation(0, u32::MAX));
    let entry = arena.vacant_entry().unwrap();
    let key = entry.key();
    drop(entry);
    if let Ok(next) = arena.insert(7) {
        assert_ne!(next, key, "a dropped entry's key reached a value");
    }
    // The same through insert_with_key whose maker panics.
    let mut arena = SlotArena::<u32>::new(1);
    assert!(arena.__set_free_generation(0, u32::MAX));
    let seen = Mutex::new(None);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena
            .insert_with_key(|key| {
                *seen.lock().unwrap() = Some(key);
                panic!("maker")
            })
            .ok()
    }));
    assert!(panicked.is_err());
    let key = seen.lock().unwrap().unwrap();
    if let Ok(next) = arena.insert(7) {
        assert_ne!(next, key, "a panicked maker's key reached a value");
    }
}

/// The exact fit promise at alignments: on an empty memory at its maximum,
/// the longest block that fits at each alignment is allocated, one byte
/// more answers `LengthTooLarge` (never `OutOfMemory`, which a waiter
/// would wait on forever), and each block is aligned.
/// Result: see the run in the report.
#[test]
fn r6_the_longest_block_at_each_alignment_fits_exactly() {
    for max in [1u32, 2, 3] {
        for shift in 3..=16 {
            let align = 1u32 << shift;
            let memory = SharedLinearMemory::new(max, max).unwrap();
            let mut c = memory.controller();
            // The first aligned start past the never-handed-out bytes.
            let first = 256u32.next_multiple_of(align);
            let end = max * PAGE_SIZE;
            if first >= end {
                assert_eq!(
                    c.alloc_aligned(8, align),
                    Err(LinearMemoryError::LengthTooLarge),
                    "max {max}, align {align}: nothing ever fits"
                );
                continue;
            }
            let longest = end - first;
            let got = c.alloc_aligned(longest, align);
            assert!(
                got.is_ok(),
                "max {max}, align {align}: {longest} bytes: {got:?}"
            );
            let ptr = got.unwrap();
            assert_eq!(ptr % align, 0);
            c.free(ptr, longest).unwrap();
            assert_eq!(
                c.alloc_aligned(longest + 1, align),
                Err(LinearMemoryError::LengthTooLarge),
                "max {max}, align {align}: {} bytes can never fit",
                longest + 1
            );
            // Small lengths at large alignments, many of them.
            let mut small = Vec::new();
            for len in [8u32, 24, 100, 512] {
                if let Ok(ptr) = c.alloc_aligned(len, align) {
                    assert_eq!(ptr % align, 0, "max {max}, align {align}, len {len}");
                    small.push((ptr, len));
                }
            }
            for (ptr, len) in small {
                c.free(ptr, len).unwrap();
            }
            assert_eq!(memory.allocated_bytes(), 0);
        }
    }
}

/// Lost wake-up on the arena: a one-slot arena shared by threads that
/// wait for the slot without limit and threads whose waits time out
/// (a notified listener dropped by a timeout must pass its notification
/// on). Every waiter must finish; a watchdog turns a hang into a failure.
/// Result: see the run in the report.
#[test]
fn r6_arena_waiters_and_timed_out_waiters_never_lose_a_wake_up() {
    const ROUNDS: usize = 3000;
    let done = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::<usize>::new(1);
    let forever: Vec<_> = (0..3)
        .map(|t| {
            let (arena, done) = (arena.clone(), Arc::clone(&done));
            thread::spawn(move || {
                for round in 0..ROUNDS {
                    let key = arena.insert_wait(t * ROUNDS + round).ok().unwrap();
                    assert_eq!(*arena.get(key).unwrap(), t * ROUNDS + round);
                    arena.remove(key).unwrap();
                }
                done.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    let timed: Vec<_> = (0..2)
        .map(|t| {
            let arena = arena.clone();
            thread::spawn(move || {
                for round in 0..ROUNDS {
                    if let Ok(key) = arena.insert_timeout(round, Duration::from_micros(50 + t * 30))
                    {
                        arena.remove(key).unwrap();
                    }
                }
            })
        })
        .collect();
    assert_eq!(
        count_within_120_s(&done, 3),
        3,
        "a waiter of insert_wait still sleeps after 120 s (len {})",
        arena.len()
    );
    for t in forever.into_iter().chain(timed) {
        t.join().unwrap();
    }
    assert_eq!(arena.len(), 0);
}

/// The same on the linear memory: one block of 40 000 bytes fits a
/// one-page memory; threads wait for it without limit, others with short
/// timeouts, and others wait on one block's claim with `lock_wait` while
/// short `lock` holders come and go. Every unlimited waiter must finish.
/// Result: see the run in the report.
#[test]
fn r6_linear_waiters_and_timed_out_waiters_never_lose_a_wake_up() {
    const ROUNDS: usize = 2000;
    const BIG: u32 = 40_000;
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let shared = memory.controller().alloc(64).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..2 {
        let (memory, done) = (memory.clone(), Arc::clone(&done));
        threads.push(thread::spawn(move || {
            let mut c = memory.controller();
            for _ in 0..ROUNDS {
                let ptr = c.alloc_wait(BIG).unwrap();
                c.free(ptr, BIG).unwrap();
                let mut guard = c.lock_wait(shared, 64).unwrap();
                guard[0] = t as u8;
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    for t in 0..2u64 {
        let memory = memory.clone();
        threads.push(thread::spawn(move || {
            let mut c = memory.controller();
            for _ in 0..ROUNDS {
                if let Ok(ptr) = c.alloc_timeout(BIG, Duration::from_micros(40 + t * 25)) {
                    c.free(ptr, BIG).unwrap();
                }
                if let Ok(mut guard) = c.lock(shared, 64) {
                    guard[1] = 1;
                }
            }
        }));
    }
    assert_eq!(
        count_within_120_s(&done, 2),
        2,
        "an alloc_wait or lock_wait still sleeps after 120 s ({} bytes allocated)",
        memory.allocated_bytes()
    );
    for t in threads {
        t.join().unwrap();
    }
    memory.controller().free(shared, 64).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// Kept empty spans of many classes (S4) under an idle pinner: the
/// longest block another handle gets at once must be the longest it gets
/// once the pinner is dropped (its spans then retire). Built twice the
/// same way, single-threaded.
/// Result: see the run in the report.
#[test]
fn r6_kept_spans_of_many_classes_never_shorten_the_longest_block() {
    fn build() -> (SharedLinearMemory, LinearMemoryController, Vec<(u32, u32)>) {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut pinner = memory.controller();
        let mut filler = memory.controller();
        let mut blocks = Vec::new();
        let lens = [8u32, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];
        for &len in &lens {
            blocks.push((pinner.alloc(len).unwrap(), len));
        }
        let mut large = Vec::new();
        for fill in [32_768u32, 16_384, 8_192, 4_096, 2_048, 1_024, 768, 513] {
            while let Ok(ptr) = filler.alloc(fill) {
                large.push((ptr, fill));
            }
        }
        // Free every other large block, so kept spans sit between holes.
        for (ptr, len) in large.iter().step_by(2) {
            filler.free(*ptr, *len).unwrap();
        }
        let mut other = memory.controller();
        for (ptr, len) in blocks {
            other.free(ptr, len).unwrap();
        }
        let rest: Vec<_> = large.into_iter().skip(1).step_by(2).collect();
        (memory, pinner, rest)
    }
    let longest = |memory: &SharedLinearMemory| {
        let mut c = memory.controller();
        let (mut lo, mut hi) = (513u32, largest(1));
        let mut found = 0;
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            match c.alloc(mid) {
                Ok(ptr) => {
                    c.free(ptr, mid).unwrap();
                    found = mid;
                    lo = mid + 1;
                }
                Err(_) => hi = mid - 1,
            }
        }
        found
    };
    let (memory, pinner, _rest) = build();
    drop(pinner);
    let dropped = longest(&memory);
    println!("longest once the pinner dropped: {dropped}");
    let (memory, _pinner, _rest) = build();
    let mut c = memory.controller();
    let got = c.alloc(dropped);
    assert!(
        got.is_ok(),
        "{dropped} bytes fit once the pinner dropped, but beside it: {got:?}"
    );
}

/// Stale frees under descriptor reuse, with real threads: one thread
/// frees a long-freed 24-byte block again and again while another thread
/// reuses its place for blocks of every other length and class (spans
/// retired and remade there, large blocks over it). The stale free never
/// succeeds: it answers `DoubleFree`, `LengthMismatch`, `UnknownPointer`
/// or `Busy`; the other thread's frees all succeed.
/// Result: see the run in the report.
#[test]
fn r6_a_stale_free_never_acts_on_a_later_block_of_another_length() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut first = memory.controller();
    let p = first.alloc(24).unwrap();
    first.free(p, 24).unwrap();
    drop(first);
    let stop = Arc::new(AtomicBool::new(false));
    let stale = {
        let (memory, stop) = (memory.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut c = memory.controller();
            let mut answers = [0usize; 4];
            while !stop.load(Ordering::Relaxed) {
                match c.free(p, 24) {
                    Err(LinearMemoryError::DoubleFree) => answers[0] += 1,
                    Err(LinearMemoryError::LengthMismatch) => answers[1] += 1,
                    Err(LinearMemoryError::UnknownPointer) => answers[2] += 1,
                    Err(LinearMemoryError::Busy) => answers[3] += 1,
                    other => panic!("a stale free of {p} answered {other:?}"),
                }
            }
            answers
        })
    };
    let mut c = memory.controller();
    let mut seed = 7u64;
    let mut at_p = 0usize;
    for _ in 0..20_000 {
        let mut live = Vec::new();
        for _ in 0..8 {
            let mut len = length(&mut seed);
            if len == 24 {
                len = 23;
            }
            if let Ok(ptr) = c.alloc(len) {
                at_p += usize::from(ptr <= p && p < ptr + len);
                c.mut_mem(ptr, len).unwrap()[0] = 1;
                live.push((ptr, len));
            }
        }
        for (ptr, len) in live {
            c.free(ptr, len).unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let answers = stale.join().unwrap();
    println!("blocks over p: {at_p}; stale answers (double, length, unknown, busy): {answers:?}");
    assert_eq!(memory.allocated_bytes(), 0);
}

/// Pinned readers with stale and fresh keys, writers keeping a pair equal,
/// removers and storers on a two-slot arena, with real threads: a pinned
/// read never sees a torn pair or a later value through an old key, every
/// value drops once, and the capacity is exact afterwards.
/// Result: see the run in the report.
#[test]
fn r6_pinned_readers_writers_and_removals_keep_keys_and_drops_exact() {
    const ROUNDS: u64 = 20_000;
    struct Pair(u64, u64, Arc<AtomicUsize>);
    impl Drop for Pair {
        fn drop(&mut self) {
            self.2.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::<Pair>::new(2);
    let current = Arc::new(Mutex::new(Vec::<(slotarena::MessageToken, u64)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (arena, current, stop) = (arena.clone(), Arc::clone(&current), Arc::clone(&stop));
            thread::spawn(move || {
                let mut reader = arena.reader();
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let keys = current.lock().unwrap().clone();
                    for (key, id) in keys {
                        if let Ok(pair) = reader.try_get(key) {
                            assert_eq!(pair.0 >> 32, id, "an old key reached a later value");
                            assert_eq!(pair.0, pair.1, "a pinned read saw a torn pair");
                            seen += 1;
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let writer = {
        let (arena, current, stop) = (arena.clone(), Arc::clone(&current), Arc::clone(&stop));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let keys = current.lock().unwrap().clone();
                for (key, _) in keys {
                    if let Ok(mut pair) = arena.try_get_mut(key) {
                        pair.0 += 1;
                        pair.1 += 1;
                    }
                }
            }
        })
    };
    for id in 0..ROUNDS {
        let value = Pair(id << 32, id << 32, Arc::clone(&drops));
        // After a `remove` (round id - 1 ≡ 0 mod 3), a reader or the writer
        // may still hold the removed value: its slot comes back when they
        // let go, which must wake the waiting store. After `take` and
        // `retain` (which wait for them) the slot is free at once.
        let key = if id % 3 == 1 {
            arena.insert_wait(value).ok().unwrap()
        } else {
            arena
                .insert(value)
                .unwrap_or_else(|_| panic!("round {id}: full with a slot free"))
        };
        made.fetch_add(1, Ordering::SeqCst);
        let old = {
            let mut current = current.lock().unwrap();
            current.push((key, id));
            (current.len() > 1).then(|| current.remove(0))
        };
        if let Some((old, old_id)) = old {
            match id % 3 {
                0 => arena.remove(old).unwrap(),
                1 => assert_eq!(arena.take(old).ok().unwrap().0 >> 32, old_id),
                _ => arena.retain(|key, _| key != old),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let seen: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    writer.join().unwrap();
    println!("pinned reads: {seen}");
    for (key, _) in current.lock().unwrap().drain(..) {
        arena.remove(key).unwrap();
    }
    assert_eq!(drops.load(Ordering::SeqCst), made.load(Ordering::SeqCst));
    let a = arena.insert(Pair(0, 0, Arc::clone(&drops))).is_ok();
    let b = arena.insert(Pair(0, 0, Arc::clone(&drops))).is_ok();
    assert!(a && b, "exact capacity");
}

/// The slot of a removed value comes back when its last pinned reader
/// lets go: a store asleep in `insert_wait` by then must be woken by that
/// reader's release, whichever thread it runs on.
/// Result: see the run in the report.
#[test]
fn r6_the_last_pinned_readers_release_wakes_a_sleeping_store() {
    for round in 0..300u32 {
        let arena = SlotArena::<u32>::new(1);
        let key = arena.insert(round).unwrap();
        let (pinned_tx, pinned_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || {
                let mut reader = arena.reader();
                let value = reader.try_get(key).ok().unwrap();
                pinned_tx.send(*value).unwrap();
                release_rx.recv().unwrap();
                drop(value);
            })
        };
        assert_eq!(pinned_rx.recv().unwrap(), round);
        arena.remove(key).unwrap();
        let waiter = {
            let arena = arena.clone();
            thread::spawn(move || {
                arena
                    .insert_timeout(round + 1, Duration::from_secs(20))
                    .ok()
            })
        };
        if round.is_multiple_of(2) {
            thread::sleep(Duration::from_millis(2));
        }
        release_tx.send(()).unwrap();
        reader.join().unwrap();
        let stored = waiter.join().unwrap();
        assert!(
            stored.is_some(),
            "round {round}: the store slept through the last pinned reader's release"
        );
        assert_eq!(*arena.get(stored.unwrap()).unwrap(), round + 1);
    }
}

/// A growable arena whose first slot retired (last generation used): it
/// still stores exactly `max - 1` values, growing for them, and
/// `reserve`/`try_reserve` count the retired slot out.
/// Result: see the run in the report.
#[test]
fn r6_a_growable_arena_with_a_retired_slot_stores_exactly_the_rest() {
    for (initial, max) in [(1usize, 2usize), (1, 40), (16, 17), (3, 100)] {
        let mut arena = SlotArena::<usize>::growable(initial, max);
        assert!(arena.__set_free_generation(0, u32::MAX));
        // Take slot 0 (the home list may hand out another first).
        let mut keys = Vec::new();
        let last = loop {
            let key = arena.insert(0).unwrap();
            if key.index() == 0 {
                break key;
            }
            keys.push(key);
        };
        arena.remove(last).unwrap();
        for key in keys.drain(..) {
            arena.remove(key).unwrap();
        }
        assert_eq!(arena.max_capacity(), max - 1, "({initial}, {max})");
        assert!(
            arena.try_reserve(max - 1).is_ok(),
            "({initial}, {max}): reserve"
        );
        assert_eq!(
            arena.capacity(),
            max - 1,
            "({initial}, {max}): capacity after reserve"
        );
        let stored: Vec<_> = (0..max).map_while(|n| arena.insert(n).ok()).collect();
        assert_eq!(stored.len(), max - 1, "({initial}, {max}): exact");
        assert!(
            stored.iter().all(|k| k.index() != 0),
            "({initial}, {max}): retired reused"
        );
        assert_eq!(arena.len(), max - 1);
    }
}

/// `free_async` and `alloc_async` on a multi-threaded runtime: a free
/// waiting for another handle's claim completes when the claim's guard
/// drops on a plain thread, and an `alloc_async` at the maximum completes
/// when that free lands; a lost wake-up shows as a timeout.
/// Result: see the run in the report.
#[test]
fn r6_free_async_and_alloc_async_wake_on_a_release_and_a_free() {
    const BIG: u32 = 40_000;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    for round in 0..300u32 {
        let mut holder = memory.controller();
        let ptr = holder.alloc(BIG).unwrap();
        let (claimed_tx, claimed_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let claimer = {
            let memory = memory.clone();
            thread::spawn(move || {
                let mut c = memory.controller();
                let guard = c.lock(ptr, BIG).unwrap();
                claimed_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                drop(guard);
            })
        };
        claimed_rx.recv().unwrap();
        let free = {
            let memory = memory.clone();
            runtime.spawn(async move {
                let mut c = memory.controller();
                c.free_async(ptr, BIG).await
            })
        };
        let alloc = {
            let memory = memory.clone();
            runtime.spawn(async move {
                let mut c = memory.controller();
                let got = c.alloc_async(BIG).await;
                if let Ok(p) = got {
                    c.free(p, BIG).unwrap();
                }
                got.map(|_| ())
            })
        };
        if round.is_multiple_of(2) {
            thread::sleep(Duration::from_millis(1));
        }
        release_tx.send(()).unwrap();
        claimer.join().unwrap();
        let (freed, allocated) = runtime.block_on(async {
            let deadline = Duration::from_secs(20);
            let wait = |h: tokio::task::JoinHandle<Result<(), LinearMemoryError>>| async move {
                let start = std::time::Instant::now();
                while !h.is_finished() {
                    assert!(
                        start.elapsed() < deadline,
                        "round {round}: a future never woke"
                    );
                    tokio::task::yield_now().await;
                    std::thread::sleep(Duration::from_micros(100));
                }
                h.await.unwrap()
            };
            (wait(free).await, wait(alloc).await)
        });
        assert_eq!(freed, Ok(()), "round {round}");
        assert_eq!(allocated, Ok(()), "round {round}");
        drop(holder);
        assert_eq!(memory.allocated_bytes(), 0);
    }
}

/// `exclusive().clear()` relists the free slots (`FreePool::relist`) after
/// threads spread them over shards and flipped batches: afterwards one
/// thread stores exactly the capacity less the slots that retired in the
/// clear (last generation), never in a retired slot; then threads churn
/// again and the capacity is still exact.
/// Result: see the run in the report.
#[test]
fn r6_a_relist_after_batches_keeps_capacity_exact_and_retired_slots_out() {
    const SLOTS: usize = 64;
    let mut arena = SlotArena::<usize>::new(SLOTS);
    let churn = |arena: &SlotArena<usize>| {
        let (tx, rx) = mpsc::sync_channel(16);
        thread::scope(|s| {
            s.spawn(|| {
                for n in 0..5000 {
                    if let Ok(key) = arena.insert(n) {
                        tx.send(key).unwrap();
                    }
                }
                drop(tx);
            });
            s.spawn(|| {
                for key in rx {
                    arena.remove(key).unwrap();
                }
            });
        });
    };
    churn(&arena);
    for index in [5usize, 9, 40] {
        assert!(arena.__set_free_generation(index, u32::MAX));
    }
    // Fill every slot (the last-generation ones included), then clear.
    let keys: Vec<_> = (0..SLOTS).map(|n| arena.insert(n).unwrap()).collect();
    let retiring: Vec<_> = keys.iter().filter(|k| k.generation() == u32::MAX).collect();
    assert_eq!(retiring.len(), 3);
    arena.exclusive().unwrap().clear();
    assert_eq!(arena.capacity(), SLOTS - 3);
    for round in 0..3 {
        churn(&arena);
        let stored: Vec<_> = (0..SLOTS).map_while(|n| arena.insert(n).ok()).collect();
        assert_eq!(stored.len(), SLOTS - 3, "round {round}: exact");
        assert!(
            stored.iter().all(|k| ![5, 9, 40].contains(&k.index())),
            "round {round}: a retired slot was reused"
        );
        for key in stored {
            arena.remove(key).unwrap();
        }
    }
}

/// Handles dropped by a thread-local destructor at thread exit (after
/// the thread's other thread-locals may be gone): a controller holding a
/// claim and pinned spans, an owned write guard on a removed value, a
/// pinned reader. Nothing panics, the claim ends, the value drops once
/// and its slot comes back.
/// Result: see the run in the report.
#[test]
fn r6_handles_dropped_by_a_thread_local_destructor_give_everything_back() {
    /// Held only to be dropped by the thread-local's destructor.
    struct Held {
        _controller: LinearMemoryController,
        _guard: slotarena::arena::OwnedWriteGuard<Dropped, Dropped>,
        _reader: slotarena::arena::Reader<Dropped>,
    }
    thread_local! {
        static HELD: std::cell::RefCell<Option<Held>> = const { std::cell::RefCell::new(None) };
    }
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let arena = SlotArena::<Dropped>::new(1);
    let drops = Arc::new(AtomicUsize::new(0));
    let key = arena.insert(Dropped(Arc::clone(&drops))).unwrap();
    let ptr = {
        let (memory, arena, drops) = (memory.clone(), arena.clone(), Arc::clone(&drops));
        thread::spawn(move || {
            let mut controller = memory.controller();
            let small = controller.alloc(24).unwrap();
            controller.free(small, 24).unwrap();
            let ptr = controller.alloc(100).unwrap();
            controller.mut_mem(ptr, 100).unwrap()[0] = 1;
            let guard = arena.get_mut_owned(key).unwrap();
            arena.remove(key).unwrap();
            let reader = arena.reader();
            HELD.with(|held| {
                *held.borrow_mut() = Some(Held {
                    _controller: controller,
                    _guard: guard,
                    _reader: reader,
                })
            });
            let _ = drops;
            ptr
        })
        .join()
        .unwrap()
    };
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the removed value dropped once"
    );
    let mut c = memory.controller();
    c.free(ptr, 100).expect("the claim ended with the thread");
    assert_eq!(memory.allocated_bytes(), 0);
    assert!(
        arena.insert(Dropped(Arc::clone(&drops))).is_ok(),
        "the slot came back"
    );
}

/// Frees contending on one field word (32 exact 8-byte blocks share a
/// word): two threads free interleaved blocks of one word at once, so
/// most compare-and-swaps fail on a neighbour's change and retry from
/// the word they got (`exchange_seen`). Every free succeeds once, a
/// second free of each is `DoubleFree`, and the bytes count ends at 0.
/// Result: see the run in the report.
#[test]
fn r6_frees_contending_on_one_field_word_all_land_once() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut owner = memory.controller();
    let barrier = Barrier::new(2);
    for round in 0..3000 {
        let blocks: Vec<u32> = (0..32).map(|_| owner.alloc(8).unwrap()).collect();
        thread::scope(|s| {
            for half in 0..2 {
                let (memory, blocks, barrier) = (&memory, &blocks, &barrier);
                s.spawn(move || {
                    let mut c = memory.controller();
                    barrier.wait();
                    for &ptr in blocks.iter().skip(half).step_by(2) {
                        c.free(ptr, 8)
                            .unwrap_or_else(|e| panic!("round {round}: free({ptr}): {e:?}"));
                    }
                    for &ptr in blocks.iter().skip(half).step_by(2) {
                        assert_eq!(c.free(ptr, 8), Err(LinearMemoryError::DoubleFree));
                    }
                });
            }
        });
        assert_eq!(memory.allocated_bytes(), 0, "round {round}");
    }
}

/// As the large-request case, for a small request of another class: a
/// span kept empty for an idle pinner (S4), the memory full at its
/// maximum otherwise, and another handle asks for a block of a class the
/// kept span is not: its granules must be taken back for a new span
/// rather than answering `OutOfMemory`.
/// Result: see the run in the report.
#[test]
fn r6_a_kept_empty_span_serves_a_small_request_of_another_class() {
    for (len, want) in [(512u32, 40u32), (64, 200), (24, 8), (8, 512)] {
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let mut pinner = memory.controller();
        let a = pinner.alloc(len).unwrap();
        let mut filler = memory.controller();
        let mut large = Vec::new();
        for fill in [32_768u32, 16_384, 8_192, 4_096, 2_048, 1_024, 512, 256] {
            while let Ok(ptr) = filler.alloc_aligned(fill, 256) {
                large.push((ptr, fill));
            }
        }
        pinner.free(a, len).unwrap();
        let mut other = memory.controller();
        let got = other.alloc(want);
        assert!(
            got.is_ok(),
            "kept span of the {len}-byte class, a {want}-byte request: {got:?}"
        );
        other.free(got.unwrap(), want).unwrap();
        for (ptr, fill) in large {
            filler.free(ptr, fill).unwrap();
        }
        assert_eq!(memory.allocated_bytes(), 0);
    }
}

/// Bad input never panics and changes nothing: every 8th pointer of a
/// memory holding live small and large blocks (and pointers past it),
/// with lengths 0, 1, 7, 8 and `u32::MAX`, through `free`, `mut_mem`,
/// `lock` and `receive`: the live blocks and the byte count stay as they
/// were, unless the call named a live block exactly.
/// Result: see the run in the report.
#[test]
fn r6_guessed_pointers_and_lengths_never_panic_or_change_live_blocks() {
    let memory = SharedLinearMemory::new(1, 2).unwrap();
    let mut owner = memory.controller();
    let live: Vec<(u32, u32)> = [8u32, 24, 100, 512, 600, 5000]
        .iter()
        .map(|&len| (owner.alloc(len).unwrap(), len))
        .collect();
    let before = memory.allocated_bytes();
    let mut guesser = memory.controller();
    let size = memory.size_pages() * PAGE_SIZE;
    let pointers = (0..size + 4096)
        .step_by(8)
        .chain([u32::MAX - 7, u32::MAX - 1, u32::MAX]);
    for ptr in pointers {
        for len in [0u32, 1, 7, 9, u32::MAX] {
            if live.iter().any(|&(p, l)| p == ptr && l == len) {
                continue;
            }
            match guesser.free(ptr, len) {
                Ok(()) => panic!("free({ptr}, {len}) freed something"),
                Err(
                    LinearMemoryError::UnknownPointer
                    | LinearMemoryError::LengthMismatch
                    | LinearMemoryError::DoubleFree,
                ) => {}
                Err(e) => panic!("free({ptr}, {len}): {e:?}"),
            }
            let _ = guesser.mut_mem(ptr, len);
            let _ = guesser.lock(ptr, len).map(|guard| guard.len());
        }
        if !live.iter().any(|&(p, _)| p == ptr) {
            assert!(guesser.receive(ptr).is_err(), "receive({ptr})");
        }
    }
    assert_eq!(memory.allocated_bytes(), before);
    for (ptr, len) in live {
        owner.free(ptr, len).unwrap();
    }
    assert_eq!(memory.allocated_bytes(), 0);
}

/// A store's wake-up goes to the first listener (`notify_one`): when that
/// is an `insert_async` future that is dropped without being polled
/// again, the notification must pass to the thread asleep behind it.
/// Result: see the run in the report.
#[test]
fn r6_a_cancelled_notified_insert_async_passes_its_wake_up_on() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    for round in 0..50u32 {
        let arena = SlotArena::<u32>::new(1);
        let key = arena.insert(0).unwrap();
        {
            // Boxed, so that `drop(first)` drops the future itself.
            let mut first = Box::pin(arena.insert_async(1));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(matches!(first.as_mut().poll(&mut cx), Poll::Pending));
            let sleeper = {
                let arena = arena.clone();
                thread::spawn(move || arena.insert_timeout(2, Duration::from_secs(10)).ok())
            };
            thread::sleep(Duration::from_millis(20));
            arena.remove(key).unwrap();
            if round.is_multiple_of(2) {
                thread::sleep(Duration::from_millis(2));
            }
            // `first` drops here, unpolled since its notification.
            drop(first);
            let stored = sleeper.join().unwrap();
            assert!(
                stored.is_some(),
                "round {round}: the sleeper never got the cancelled future's wake-up"
            );
        }
    }
}
