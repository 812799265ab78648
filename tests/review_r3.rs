//! Review R3 of helper H6's one-thread cuts (issue 22 item 3): the guessed
//! compare-and-swaps of `remove`/`free`/`take`, the one-compare read
//! unlock, frees that push the slot they hold with the word they stored,
//! the insert whose pop hands back its slot, and the batched steals.
//! Each test drives one of those paths at a boundary where a shortcut
//! could silently change meaning: the last generation (retire, S4), a
//! retained or poisoned word, a parked writer, a removed value's last
//! reader, and the exact capacity across shards.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use slotarena::{
    ConcurrentMemoryManager, MemoryError, Message, MessageHeader, MessageToken, SlotArena,
};

/// Scaled down under Miri.
const ROUNDS: usize = if cfg!(miri) { 20 } else { 20_000 };

#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// How a test frees the value in the slot at its last generation.
#[derive(Clone, Copy, Debug)]
enum FreePath {
    /// `remove` of an idle value: the guessed CAS (`Slot::remove`).
    RemoveIdle,
    /// `remove` under a read guard; the guard's drop is the last reader
    /// (`word::last_reader_has_work`, `Held::unlock_read`).
    RemoveUnderRead,
    /// As above with an owned read guard dropped on another thread.
    RemoveUnderOwnedReadElsewhere,
    /// `remove` under a write guard; its unlock reclaims.
    RemoveUnderWrite,
    /// `take` of an idle value: the guessed CAS (`Slot::begin_take`).
    TakeIdle,
    /// `try_take` of an idle value (`lock_for_take`).
    TryTakeIdle,
    /// `take` that waits for a reader on another thread.
    TakeWaitingForReader,
    /// `remove` of a poisoned value: the guess fails on the poison bit.
    RemovePoisoned,
}

const PATHS: [FreePath; 8] = [
    FreePath::RemoveIdle,
    FreePath::RemoveUnderRead,
    FreePath::RemoveUnderOwnedReadElsewhere,
    FreePath::RemoveUnderWrite,
    FreePath::TakeIdle,
    FreePath::TryTakeIdle,
    FreePath::TakeWaitingForReader,
    FreePath::RemovePoisoned,
];

fn free_by(arena: &SlotArena<Counted>, token: MessageToken, path: FreePath) {
    match path {
        FreePath::RemoveIdle => arena.remove(token).unwrap(),
        FreePath::RemoveUnderRead => {
            let guard = arena.get(token).unwrap();
            arena.remove(token).unwrap();
            drop(guard);
        }
        FreePath::RemoveUnderOwnedReadElsewhere => {
            let guard = arena.get_owned(token).unwrap();
            arena.remove(token).unwrap();
            thread::spawn(move || drop(guard)).join().unwrap();
        }
        FreePath::RemoveUnderWrite => {
            let guard = arena.get_mut(token).unwrap();
            arena.remove(token).unwrap();
            drop(guard);
        }
        FreePath::TakeIdle => drop(arena.take(token).map_err(|_| "take").unwrap()),
        FreePath::TryTakeIdle => drop(arena.try_take(token).map_err(|_| "try_take").unwrap()),
        FreePath::TakeWaitingForReader => {
            let guard = arena.get_owned(token).unwrap();
            let reader = thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                drop(guard);
            });
            drop(arena.take(token).map_err(|_| "take").unwrap());
            reader.join().unwrap();
        }
        FreePath::RemovePoisoned => {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                let _guard = arena.get_mut(token).unwrap();
                panic!("poison the value");
            }));
            assert_eq!(arena.get(token).err(), Some(MemoryError::Poisoned));
            arena.remove(token).unwrap();
        }
    }
}

/// S4 on every free path H6 rewrote: the slot that gave out its last
/// generation retires (the capacity shrinks by one, the value drops once)
/// and is never handed out again, while the other slot keeps working.
#[test]
fn every_free_path_retires_a_slot_at_its_last_generation() {
    for path in PATHS {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut arena = SlotArena::new(2);
        for index in 0..2 {
            assert!(arena.__set_free_generation(index, u32::MAX));
        }
        let a = arena.insert(Counted(drops.clone())).unwrap();
        assert_eq!(a.generation(), u32::MAX, "{path:?}");
        free_by(&arena, a, path);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "{path:?}: dropped once");
        assert_eq!(
            (arena.capacity(), arena.len()),
            (1, 0),
            "{path:?}: the slot at its last generation retired"
        );
        let b = arena.insert(Counted(drops.clone())).unwrap();
        assert_ne!(b.index(), a.index(), "{path:?}: a retired slot was reused");
        assert!(
            arena.insert(Counted(drops.clone())).is_err(),
            "{path:?}: a retired slot was reused"
        );
        assert_eq!(
            arena.get(a).err(),
            Some(MemoryError::NotAllocated),
            "{path:?}"
        );
        free_by(&arena, b, path);
        assert_eq!(drops.load(Ordering::SeqCst), 3, "{path:?}");
        assert_eq!((arena.capacity(), arena.max_capacity()), (0, 0), "{path:?}");
    }
}

/// The same paths one generation earlier: the slot comes back (with the
/// last generation), exactly once, and the old key stays dead.
#[test]
fn every_free_path_gives_the_slot_back_once_with_the_next_generation() {
    for path in PATHS {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut arena = SlotArena::new(1);
        assert!(arena.__set_free_generation(0, u32::MAX - 1));
        let a = arena.insert(Counted(drops.clone())).unwrap();
        free_by(&arena, a, path);
        assert_eq!(arena.capacity(), 1, "{path:?}");
        let b = arena.insert(Counted(drops.clone())).unwrap();
        assert_eq!((b.index(), b.generation()), (0, u32::MAX), "{path:?}");
        assert!(arena.insert(Counted(drops.clone())).is_err(), "{path:?}");
        assert_eq!(
            arena.get(a).err(),
            Some(MemoryError::StaleToken),
            "{path:?}"
        );
        drop(arena);
        assert_eq!(drops.load(Ordering::SeqCst), 3, "{path:?}");
    }
}

fn message(value: u64) -> Message<u64> {
    Message::new(MessageHeader::empty(), value)
}

/// `free`'s guessed CAS must fail on a retained word (a free answers
/// `QueueOwned`), on a read-guarded word (`BorrowActive`), and on a stale
/// token, changing nothing; after the last release the message is gone.
#[test]
fn the_guessed_free_refuses_retained_guarded_and_stale_words() {
    let manager = ConcurrentMemoryManager::<u64>::new(1);
    let stale = manager.store_shared(message(6)).unwrap();
    manager.free_shared(stale).unwrap();
    let token = manager.store_shared(message(7)).unwrap();
    assert_eq!(token.index(), stale.index());
    manager.retain_shared(token, 1).unwrap();
    assert_eq!(manager.free_shared(token), Err(MemoryError::QueueOwned));
    assert_eq!(manager.read_shared(token).unwrap().payload(), &7);
    let guard = manager.read_shared(token).unwrap();
    assert_eq!(manager.free_shared(token), Err(MemoryError::BorrowActive));
    drop(guard);
    assert_eq!(manager.free_shared(stale), Err(MemoryError::StaleToken));
    assert_eq!(manager.read_shared(token).unwrap().payload(), &7);
    manager.release_shared(token).unwrap();
    assert_eq!(manager.available(), 1, "the last release freed it");
}

/// The last reader of a removed value reclaims it while a writer is
/// parked on the word (so `PARKED` and `REMOVING` are both set when the
/// one-compare unlock looks): the value drops once, the writer wakes to
/// `NotAllocated`, and the slot comes back.
#[test]
fn the_last_reader_of_a_removed_value_with_a_parked_writer_reclaims_it() {
    for _ in 0..if cfg!(miri) { 2 } else { 50 } {
        let drops = Arc::new(AtomicUsize::new(0));
        let arena = SlotArena::new(1);
        let token = arena.insert(Counted(drops.clone())).unwrap();
        let guard = arena.get(token).unwrap();
        let (started, wait) = mpsc::channel();
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || {
                started.send(()).unwrap();
                arena.get_mut(token).map(|_| ()).err()
            })
        };
        wait.recv().unwrap();
        thread::sleep(Duration::from_millis(5));
        arena.remove(token).unwrap();
        drop(guard);
        assert_eq!(writer.join().unwrap(), Some(MemoryError::NotAllocated));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!((arena.len(), arena.capacity()), (0, 1));
        assert!(arena.insert(Counted(drops.clone())).is_ok());
    }
}

/// Exact capacity across the batched steals: a producer stores, a
/// consumer on another thread frees what it is sent (onto its own shard),
/// both stop; then one thread stores `capacity` values, whichever shard
/// and list each free slot sits on, and every value dropped exactly once.
#[test]
fn after_a_producer_consumer_run_one_thread_refills_every_slot() {
    const CAPACITY: usize = 64;
    for _ in 0..if cfg!(miri) { 1 } else { 20 } {
        let drops = Arc::new(AtomicUsize::new(0));
        let arena = SlotArena::new(CAPACITY);
        let (send, receive) = mpsc::sync_channel::<MessageToken>(CAPACITY / 2);
        let consumer = {
            let arena = arena.clone();
            thread::spawn(move || {
                for token in receive {
                    arena.remove(token).unwrap();
                }
            })
        };
        let mut stored = 0;
        let mut refused = 0;
        while stored < ROUNDS {
            match arena.insert(Counted(drops.clone())) {
                Ok(token) => {
                    send.send(token).unwrap();
                    stored += 1;
                }
                Err(error) => {
                    drop(error.into_inner());
                    refused += 1;
                    thread::yield_now();
                }
            }
        }
        drop(send);
        consumer.join().unwrap();
        let mut refill = Vec::new();
        for i in 0..CAPACITY {
            match arena.insert(Counted(drops.clone())) {
                Ok(token) => refill.push(token),
                Err(_) => panic!("refused after {i} of {CAPACITY} with every slot free"),
            }
        }
        assert!(arena.insert(Counted(drops.clone())).is_err());
        drop(arena);
        // The refused values come back and drop too, as does the last one.
        assert_eq!(
            drops.load(Ordering::SeqCst),
            ROUNDS + refused + CAPACITY + 1,
            "every value dropped exactly once"
        );
    }
}

/// Several threads storing and removing at once on a small arena, each
/// freeing onto its own shard and stealing from the others: no value is
/// dropped twice or lost, no key ever reaches another value, and from the
/// quiescent end one thread refills every slot.
#[test]
fn racing_threads_keep_keys_values_and_capacity_exact() {
    const CAPACITY: usize = 8;
    const THREADS: usize = 4;
    let drops = Arc::new(AtomicUsize::new(0));
    let arena: SlotArena<(usize, usize, Counted)> = SlotArena::new(CAPACITY);
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|id| {
            let arena = arena.clone();
            let drops = drops.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                let mut made = 0;
                let mut old = Vec::new();
                for round in 0..ROUNDS / THREADS {
                    let Ok(token) = arena.insert((id, round, Counted(drops.clone()))) else {
                        continue;
                    };
                    made += 1;
                    {
                        let guard = arena.get(token).unwrap();
                        assert_eq!(
                            (guard.0, guard.1),
                            (id, round),
                            "a key reached another value"
                        );
                    }
                    match round % 3 {
                        0 => arena.remove(token).unwrap(),
                        1 => drop(arena.take(token).map_err(|_| "take").unwrap()),
                        _ => {
                            let guard = arena.get(token).unwrap();
                            arena.remove(token).unwrap();
                            drop(guard);
                        }
                    }
                    if old.len() < 64 {
                        old.push(token);
                    }
                }
                for token in old {
                    if let Ok(guard) = arena.get(token) {
                        panic!("an old key reached {:?}", (guard.0, guard.1));
                    }
                }
                made
            })
        })
        .collect();
    let made: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        made,
        "every value dropped exactly once"
    );
    for i in 0..CAPACITY {
        assert!(
            arena.insert((0, 0, Counted(drops.clone()))).is_ok(),
            "refused after {i} of {CAPACITY} with every slot free"
        );
    }
}
