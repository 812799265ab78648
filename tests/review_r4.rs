//! Review R4 of two speed branches, by reproducers: `h7-w1` (a dropped
//! value's slot keeps its held word until the free-list push writes the
//! vacant word, c998932; a store's one inlined try at its home list,
//! 4686103; the one-compare read unlock, 0437e9d; the unchecked home
//! shard, 17adf11) and `h8-l1` (a free that reads the directory once and
//! acts on a small block's field directly, 1b5b00d; `FieldRef`, 2dc756c).
//!
//! Each test drives a promise of README "What it promises" / DESIGN.md
//! through the changed path with real threads: exact capacity, a removed
//! value dropped exactly once and never reachable by its key, tokens that
//! never reach a later value, and the linear memory's exact free answers
//! (`DoubleFree`, `LengthMismatch`, `UnknownPointer`, `Busy`) under races.
//! Each has its own verdict timeout (a hang fails the test, not the run).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use slotarena::linear::{LinearMemoryController, LinearMemoryError, SharedLinearMemory};
use slotarena::{MemoryError, MessageToken, SlotArena};

/// Scaled down under Miri.
const ROUNDS: usize = if cfg!(miri) { 30 } else { 20_000 };

/// Runs `body` on its own thread and fails if it does not finish in time.
fn within(secs: u64, body: impl FnOnce() + Send + 'static) {
    let (done, verdict) = mpsc::channel();
    let worker = thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match verdict.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The body panicked: report its panic.
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("no verdict in {secs} s: a hang"),
    }
}

/// A value that knows its id and counts its drops.
#[derive(Debug)]
struct Tracked {
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// 4686103 + c998932: with capacity exactly `THREADS * PER`, a thread that
/// holds fewer than `PER` values always finds room, whichever shard its
/// slots went back to and whichever reclaimer (remover, last read guard,
/// last pinned reader) pushed them. An insert that fails here hid room.
#[test]
fn r4_store_never_fails_while_this_thread_is_under_its_share() {
    const THREADS: usize = 3;
    const PER: usize = 4;
    within(120, || {
        let arena = SlotArena::<Tracked>::new(THREADS * PER);
        let drops = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(THREADS));
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (arena, drops, made, start) =
                    (arena.clone(), drops.clone(), made.clone(), start.clone());
                thread::spawn(move || {
                    let mut reader = arena.reader();
                    start.wait();
                    for round in 0..ROUNDS / 4 {
                        let mut keys = Vec::with_capacity(PER);
                        for n in 0..PER {
                            let id = ((t * ROUNDS + round) * PER + n) as u64;
                            let value = Tracked {
                                id,
                                drops: drops.clone(),
                            };
                            match arena.insert(value) {
                                Ok(key) => keys.push((key, id)),
                                Err(_) => panic!(
                                    "thread {t} round {round}: insert {n} failed holding {n} of \
                                     its {PER} (capacity {})",
                                    THREADS * PER
                                ),
                            }
                            made.fetch_add(1, Ordering::SeqCst);
                        }
                        // Free them by every reclaimer in turn.
                        for (n, &(key, id)) in keys.iter().enumerate() {
                            match (round + n) % 3 {
                                0 => arena.remove(key).unwrap(),
                                1 => {
                                    let guard = arena.get(key).unwrap();
                                    assert_eq!(guard.id, id);
                                    arena.remove(key).unwrap();
                                    drop(guard);
                                }
                                _ => {
                                    let pinned = reader.get(key).unwrap();
                                    assert_eq!(pinned.id, id);
                                    arena.remove(key).unwrap();
                                    drop(pinned);
                                }
                            }
                            // Free, or already another thread's next value.
                            let after = arena.get(key).err();
                            assert!(
                                matches!(
                                    after,
                                    Some(MemoryError::NotAllocated | MemoryError::StaleToken)
                                ),
                                "a removed key read {after:?}"
                            );
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(arena.len(), 0);
        assert_eq!(drops.load(Ordering::SeqCst), made.load(Ordering::SeqCst));
        // Every slot is free again, and exactly that many.
        let keys: Vec<_> = (0..THREADS * PER)
            .map(|n| {
                arena
                    .insert(Tracked {
                        id: n as u64,
                        drops: drops.clone(),
                    })
                    .unwrap_or_else(|_| panic!("only {n} of {} slots found", THREADS * PER))
            })
            .collect();
        assert!(
            arena
                .insert(Tracked {
                    id: 0,
                    drops: drops.clone()
                })
                .is_err()
        );
        assert_eq!(keys.len(), THREADS * PER);
    });
}

/// c998932: while a removed value's slot sits between the drop and the
/// push (held word, generation before), stale keys of that slot, read by
/// guards and by pinned readers on other threads, never reach another
/// value, and every value is dropped exactly once.
#[test]
fn r4_stale_keys_never_reach_a_later_value() {
    within(120, || {
        // One slot: every insert reuses it.
        let arena = SlotArena::<Tracked>::new(1);
        let drops = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(AtomicU64::new(u64::MAX));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (arena, last, stop) = (arena.clone(), last.clone(), stop.clone());
                thread::spawn(move || {
                    let mut reader = arena.reader();
                    let mut seen = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        let raw = last.load(Ordering::Acquire);
                        if raw == u64::MAX {
                            continue;
                        }
                        // The key's id is its raw token; a value's id is
                        // the raw token it was stored under.
                        let key = MessageToken::from_bits(raw);
                        let got = if r == 0 {
                            reader.try_get(key).map(|v| v.id)
                        } else {
                            arena.try_get(key).map(|v| v.id)
                        };
                        match got {
                            Ok(id) => {
                                assert_eq!(id, raw, "key {raw:#x} reached value of {id:#x}");
                                seen += 1;
                            }
                            Err(
                                MemoryError::NotAllocated
                                | MemoryError::StaleToken
                                | MemoryError::AlreadyBorrowed,
                            ) => {}
                            Err(other) => panic!("key {raw:#x}: {other:?}"),
                        }
                    }
                    seen
                })
            })
            .collect();
        let mut made = 0;
        for _ in 0..ROUNDS {
            // The slot is free by the time the remove returned or the
            // last guard let go; a reader's guard may still hold it.
            let value = Tracked {
                id: 0,
                drops: drops.clone(),
            };
            let key = match arena.insert(value) {
                Ok(key) => key,
                Err(value) => {
                    // A reader's guard holds the removed value: wait.
                    drop(value);
                    drops.fetch_sub(1, Ordering::SeqCst);
                    thread::yield_now();
                    continue;
                }
            };
            made += 1;
            let raw = key.to_bits();
            arena.get_mut(key).unwrap().id = raw;
            last.store(raw, Ordering::Release);
            arena.remove(key).unwrap();
        }
        stop.store(true, Ordering::Release);
        for reader in readers {
            reader.join().unwrap();
        }
        assert_eq!(arena.len(), 0);
        assert_eq!(drops.load(Ordering::SeqCst), made);
    });
}

/// 1b5b00d: two handles free the same small block at once: exactly one
/// `Ok`, the other `DoubleFree` (the field says freed, or the freed-start
/// mark once the span retired), never `UnknownPointer`.
#[test]
fn r4_racing_frees_of_one_block_one_wins_the_other_double_free() {
    for len in [24u32, 8, 1000] {
        within(120, move || {
            let memory = SharedLinearMemory::new(4, 4).unwrap();
            let rounds = ROUNDS / 10;
            let turn = Arc::new(Barrier::new(3));
            let ptr = Arc::new(AtomicU32::new(0));
            let (answers, verdicts) = mpsc::channel();
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let (memory, turn, ptr, answers) =
                        (memory.clone(), turn.clone(), ptr.clone(), answers.clone());
                    thread::spawn(move || {
                        let mut handle = LinearMemoryController::new(&memory);
                        for _ in 0..rounds {
                            turn.wait();
                            let answer = handle.free(ptr.load(Ordering::Acquire), len);
                            answers.send(answer).unwrap();
                            turn.wait();
                        }
                    })
                })
                .collect();
            let mut owner = LinearMemoryController::new(&memory);
            for round in 0..rounds {
                // Sometimes a neighbour keeps the span alive, sometimes not.
                let neighbour = (round % 2 == 0).then(|| owner.alloc(len).unwrap());
                let p = owner.alloc(len).unwrap();
                ptr.store(p, Ordering::Release);
                turn.wait();
                let a = verdicts.recv().unwrap();
                let b = verdicts.recv().unwrap();
                let mut both = [a, b];
                both.sort_by_key(|answer| answer.is_err());
                assert_eq!(
                    both,
                    [Ok(()), Err(LinearMemoryError::DoubleFree)],
                    "len {len} round {round} at {p}"
                );
                if let Some(n) = neighbour {
                    owner.free(n, len).unwrap();
                }
                turn.wait();
            }
            for racer in racers {
                racer.join().unwrap();
            }
            assert_eq!(memory.allocated_bytes(), 0);
        });
    }
}

/// 1b5b00d: a free with the wrong length, racing the owner's reuse of the
/// same place by allocations of the same class, never frees the owner's
/// block: it answers `LengthMismatch`, `DoubleFree` or `UnknownPointer`
/// (`Busy` only for a claimed block, and nothing is claimed here), and
/// the owner's own frees all succeed.
#[test]
fn r4_a_stale_free_never_acts_on_another_block() {
    // 20 and 24 share the 24-byte class; 1000 and 1008 are large blocks
    // of the same granules.
    for (owned, wrong) in [(24u32, 20u32), (1000, 1008)] {
        within(120, move || {
            let memory = SharedLinearMemory::new(4, 4).unwrap();
            let last = Arc::new(AtomicU32::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let guesser = {
                let (memory, last, stop) = (memory.clone(), last.clone(), stop.clone());
                thread::spawn(move || {
                    let mut handle = LinearMemoryController::new(&memory);
                    let mut mismatches = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        let p = last.load(Ordering::Acquire);
                        if p == 0 {
                            continue;
                        }
                        match handle.free(p, wrong) {
                            Err(LinearMemoryError::LengthMismatch) => mismatches += 1,
                            Err(
                                LinearMemoryError::DoubleFree | LinearMemoryError::UnknownPointer,
                            ) => {}
                            other => {
                                panic!("free({p}, {wrong}) of a {owned}-byte block: {other:?}")
                            }
                        }
                        // An interior pointer is never a block.
                        match handle.free(p + 8, owned) {
                            Err(
                                LinearMemoryError::UnknownPointer | LinearMemoryError::DoubleFree,
                            ) => {}
                            other => panic!("free({}, {owned}): {other:?}", p + 8),
                        }
                    }
                    mismatches
                })
            };
            let mut owner = LinearMemoryController::new(&memory);
            for round in 0..ROUNDS {
                let p = owner.alloc(owned).unwrap();
                last.store(p, Ordering::Release);
                if round % 3 == 0 {
                    thread::yield_now();
                }
                owner
                    .free(p, owned)
                    .unwrap_or_else(|error| panic!("round {round}: own free of {p}: {error:?}"));
            }
            stop.store(true, Ordering::Release);
            let mismatches = guesser.join().unwrap();
            assert_eq!(memory.allocated_bytes(), 0);
            eprintln!("{owned}/{wrong}: {mismatches} LengthMismatch answers");
        });
    }
}

/// 1b5b00d: a free of a claimed (locked) block answers `Busy` and changes
/// nothing; after the claim ends the same free succeeds, and a second one
/// answers `DoubleFree`. The exact answers' order: `LengthMismatch` before
/// `Busy`.
#[test]
fn r4_free_of_a_claimed_block_is_busy_then_frees() {
    for len in [24u32, 8, 1000] {
        let memory = SharedLinearMemory::new(4, 4).unwrap();
        let mut owner = LinearMemoryController::new(&memory);
        let mut other = LinearMemoryController::new(&memory);
        let p = owner.alloc(len).unwrap();
        {
            let _guard = owner.lock(p, len).unwrap();
            assert_eq!(other.free(p, len), Err(LinearMemoryError::Busy), "{len}");
            if len > 8 {
                assert_eq!(
                    other.free(p, len - 1),
                    Err(LinearMemoryError::LengthMismatch),
                    "{len}"
                );
            }
        }
        assert_eq!(other.free(p, len), Ok(()));
        assert_eq!(other.free(p, len), Err(LinearMemoryError::DoubleFree));
        assert_eq!(memory.allocated_bytes(), 0);
    }
}
