//! The `SlotArena<T>` contract, one promise per test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use slotarena::arena::{OwnedReadGuard, ReadGuard, WriteGuard};
use slotarena::{MemoryError, MessageToken, SlotArena, TakeError};

/// A value that counts its drops.
#[derive(Debug)]
struct Counted {
    id: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn counted(drops: &Arc<AtomicUsize>, id: u64) -> Counted {
    Counted {
        id,
        drops: Arc::clone(drops),
    }
}

/// Runs `f` on a thread; fails if it does not finish within 10 s, so an
/// operation that waits (or deadlocks) fails instead of hanging the suite.
fn never_waits<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (done, wait) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(f());
    });
    wait.recv_timeout(Duration::from_secs(10))
        .expect("the operation waited")
}

#[test]
fn errors_come_in_the_contract_order() {
    let arena = SlotArena::new(2);
    assert_eq!(
        arena.get(MessageToken::INVALID).err(),
        Some(MemoryError::BadToken)
    );
    assert_eq!(
        arena.get(MessageToken::new(2, 0)).err(),
        Some(MemoryError::BadToken)
    );
    let old = arena.insert(1u32).unwrap();
    assert_eq!(arena.take(old), Ok(1));
    for answer in [
        arena.get(old).err(),
        arena.get_mut(old).err(),
        arena.remove(old).err(),
        arena.take(old).err().map(MemoryError::from),
    ] {
        assert_eq!(answer, Some(MemoryError::NotAllocated), "a dead token");
    }
    let new = arena.insert(2).unwrap();
    assert_eq!(new.index(), old.index(), "LIFO reuse");
    assert_ne!(new.generation(), old.generation());
    assert_eq!(arena.get(old).err(), Some(MemoryError::StaleToken));
    // Every locking form checks the generation in the CAS that locks, the
    // write forms too (a stale write lock once slipped through a retry).
    assert_eq!(arena.get_mut(old).err(), Some(MemoryError::StaleToken));
    assert_eq!(arena.try_get_mut(old).err(), Some(MemoryError::StaleToken));
    assert_eq!(
        arena.get_mut_owned(old).err(),
        Some(MemoryError::StaleToken)
    );
    assert_eq!(arena.try_get(old).err(), Some(MemoryError::StaleToken));
    assert!(
        arena.try_get_mut(new).is_ok(),
        "the stale calls took no lock"
    );
    assert_eq!(arena.remove(old), Err(MemoryError::StaleToken));
    assert_eq!(
        *arena.get(new).unwrap(),
        2,
        "the stale calls changed nothing"
    );
}

#[test]
fn remove_never_waits_and_the_last_guard_drops_the_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(1);
    let token = arena.insert(counted(&drops, 7)).unwrap();
    let first = arena.get(token).unwrap();
    let second = arena.get_owned(token).unwrap();
    let remover = arena.clone();
    never_waits(move || remover.remove(token)).unwrap();
    assert!(!arena.contains(token), "the token dies at once");
    assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
    assert_eq!(arena.remove(token), Err(MemoryError::NotAllocated));
    assert_eq!((first.id, second.id), (7, 7), "guards still read the value");
    assert_eq!(
        arena
            .insert(counted(&drops, 8))
            .unwrap_err()
            .into_inner()
            .id,
        8
    );
    drop(first);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "only the rejected value so far"
    );
    thread::spawn(move || drop(second)).join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 2, "the last guard dropped it");
    assert_eq!(arena.len(), 0);
    arena
        .insert(counted(&drops, 9))
        .expect("the slot came back");
}

#[test]
fn remove_under_the_removers_own_write_guard_drops_at_unlock() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(1);
    let token = arena.insert(counted(&drops, 1)).unwrap();
    let mut guard = arena.get_mut(token).unwrap();
    guard.id = 2;
    let remover = arena.clone();
    never_waits(move || remover.remove(token)).unwrap();
    assert_eq!(guard.id, 2);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(guard);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(arena.is_empty());
}

#[test]
fn take_waits_for_guards_and_try_take_does_not() {
    let arena = SlotArena::new(1);
    let token = arena.insert(String::from("v")).unwrap();
    let reader = arena.get_owned(token).unwrap();
    assert_eq!(
        arena.try_take(token),
        Err(TakeError::Refused(MemoryError::BorrowActive))
    );
    assert!(arena.contains(token), "a refused try_take changes nothing");
    let taker = {
        let arena = arena.clone();
        thread::spawn(move || arena.take(token))
    };
    // The token dies as soon as the take starts waiting.
    while arena.contains(token) {
        thread::yield_now();
    }
    assert!(
        !taker.is_finished(),
        "take returned while a reader was live"
    );
    assert_eq!(*reader, "v");
    drop(reader);
    assert_eq!(taker.join().unwrap().unwrap(), "v");
    assert_eq!(arena.len(), 0);
}

#[test]
fn a_stale_token_never_waits_for_the_slots_new_owner() {
    let arena = SlotArena::new(1);
    let stale = arena.insert(1u8).unwrap();
    arena.remove(stale).unwrap();
    let fresh = arena.insert(2u8).unwrap();
    let _writer = arena.get_mut_owned(fresh).unwrap();
    let other = arena.clone();
    let answers = never_waits(move || {
        [
            other.get(stale).err(),
            other.get_mut(stale).err(),
            other.take(stale).err().map(MemoryError::from),
            other.get_owned(stale).err(),
        ]
    });
    assert_eq!(answers, [Some(MemoryError::StaleToken); 4]);
}

#[test]
fn try_forms_answer_already_borrowed_and_never_wait() {
    let arena = SlotArena::new(1);
    let token = arena.insert(0u8).unwrap();
    let writer = arena.get_mut_owned(token).unwrap();
    let other = arena.clone();
    let answers = never_waits(move || {
        [
            other.try_get(token).err(),
            other.try_get_mut(token).err(),
            other.try_get_owned(token).err(),
            other.try_get_mut_owned(token).err(),
        ]
    });
    assert_eq!(answers, [Some(MemoryError::AlreadyBorrowed); 4]);
    drop(writer);
    let _reader = arena.get(token).unwrap();
    assert!(arena.try_get(token).is_ok(), "readers share");
    assert_eq!(
        arena.try_get_mut(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
}

#[test]
fn a_panicking_writer_poisons_and_take_frees_the_slot() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(2);
    let token = arena.insert(counted(&drops, 1)).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut guard = arena.get_mut(token).unwrap();
        guard.id = 99;
        panic!("half-way through an update");
    }));
    assert!(result.is_err());
    assert_eq!(arena.get(token).err(), Some(MemoryError::Poisoned));
    assert_eq!(arena.get_mut(token).err(), Some(MemoryError::Poisoned));
    assert!(arena.contains(token));
    let poisoned = arena.take(token).unwrap_err();
    assert_eq!(poisoned.error(), MemoryError::Poisoned);
    assert_eq!(arena.len(), 0, "take freed the slot");
    assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
    drop(poisoned);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    let again = arena.insert(counted(&drops, 2)).unwrap();
    assert_eq!(arena.get(again).unwrap().id, 2, "the reused slot is clean");
}

#[test]
fn a_guard_taken_while_already_panicking_does_not_poison() {
    struct TouchOnDrop(SlotArena<u8>, MessageToken);
    impl Drop for TouchOnDrop {
        fn drop(&mut self) {
            *self.0.get_mut(self.1).unwrap() = 5;
        }
    }
    let arena = SlotArena::new(1);
    let token = arena.insert(0u8).unwrap();
    let unwinding = TouchOnDrop(arena.clone(), token);
    let _ = catch_unwind(AssertUnwindSafe(move || {
        let _unwinding = unwinding;
        panic!("unwinding");
    }));
    assert_eq!(*arena.get(token).unwrap(), 5);
}

#[test]
fn a_panicking_drop_does_not_lose_the_slot() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("drop panics");
        }
    }
    let arena = SlotArena::new(1);
    let token = arena.insert(Bomb).unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| arena.remove(token))).is_err());
    assert_eq!(arena.len(), 0);
    let token = arena
        .insert(Bomb)
        .expect("the slot was freed before the drop");
    std::mem::forget(arena.take(token).unwrap());
}

#[test]
fn owned_guards_outlive_every_handle_and_cross_threads() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(2);
    let token = arena.insert(counted(&drops, 3)).unwrap();
    let guard = arena.get_owned(token).unwrap();
    let id = OwnedReadGuard::map(guard, |value| &value.id);
    drop(arena);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "the guard keeps the arena alive"
    );
    let seen = thread::spawn(move || *id).join().unwrap();
    assert_eq!(seen, 3);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the last handle dropped the value"
    );
}

#[test]
fn mapped_guards_keep_the_lock() {
    let arena = SlotArena::new(1);
    let token = arena.insert((1u8, vec![1u8])).unwrap();
    let mut part = WriteGuard::map(arena.get_mut(token).unwrap(), |pair| &mut pair.1);
    part.push(2);
    assert_eq!(
        arena.try_get(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    drop(part);
    let read = ReadGuard::map(arena.get(token).unwrap(), |pair| &pair.1);
    assert_eq!(*read, [1, 2]);
    assert_eq!(
        arena.try_get_mut(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
}

#[test]
fn iter_skips_write_locked_values_without_waiting_and_retain_removes() {
    let arena = SlotArena::new(8);
    let tokens: Vec<MessageToken> = (0..6u32).map(|n| arena.insert(n).unwrap()).collect();
    let locked = arena.get_mut_owned(tokens[1]).unwrap();
    let other = arena.clone();
    let mut seen: Vec<(MessageToken, u32)> =
        never_waits(move || other.iter().map(|(t, v)| (t, *v)).collect());
    seen.sort_unstable_by_key(|&(_, v)| v);
    let expected: Vec<(MessageToken, u32)> = tokens
        .iter()
        .copied()
        .zip(0..)
        .filter(|&(_, v)| v != 1)
        .collect();
    assert_eq!(seen, expected);
    drop(locked);
    arena.retain(|_, value| {
        *value += 10;
        *value % 2 == 0
    });
    let mut kept: Vec<u32> = arena.iter().map(|(_, v)| *v).collect();
    kept.sort_unstable();
    assert_eq!(kept, [10, 12, 14]);
    assert_eq!(arena.len(), 3);
}

/// From a quiescent state with `k` free slots, one thread inserts `k`
/// values, whichever threads freed them.
#[test]
fn capacity_is_exact_whichever_threads_freed_the_slots() {
    const SLOTS: usize = 1000;
    let arena = SlotArena::new(SLOTS);
    thread::scope(|s| {
        for t in 0..4 {
            let arena = &arena;
            s.spawn(move || {
                let tokens: Vec<MessageToken> = (0..SLOTS / 4)
                    .map(|i| arena.insert(t * 10_000 + i).unwrap())
                    .collect();
                for token in tokens {
                    arena.remove(token).unwrap();
                }
            });
        }
    });
    let tokens: Vec<MessageToken> = (0..SLOTS)
        .map(|i| {
            arena
                .insert(i)
                .unwrap_or_else(|_| panic!("insert {i} of {SLOTS}"))
        })
        .collect();
    assert_eq!(arena.len(), SLOTS);
    assert!(arena.insert(0).is_err(), "and not one more");
    let mut indexes: Vec<usize> = tokens.iter().map(|t| t.index()).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), SLOTS, "each slot handed out once");
}

#[test]
fn growth_keeps_tokens_and_guards_and_stops_at_the_maximum() {
    let arena = SlotArena::growable(2, 100);
    let first = arena.insert(0usize).unwrap();
    let guard = arena.get(first).unwrap();
    let tokens: Vec<MessageToken> = (1..100).map(|i| arena.insert(i).unwrap()).collect();
    assert_eq!(arena.capacity(), 100);
    assert_eq!(arena.insert(100).unwrap_err().into_inner(), 100);
    assert_eq!(*guard, 0);
    for (i, token) in tokens.into_iter().enumerate() {
        assert_eq!(*arena.get(token).unwrap(), i + 1);
    }
}

#[test]
fn dropping_the_arena_drops_every_value_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::growable(4, 64);
    let tokens: Vec<MessageToken> = (0..40)
        .map(|i| arena.insert(counted(&drops, i)).unwrap())
        .collect();
    for token in &tokens[..10] {
        arena.remove(*token).unwrap();
    }
    drop(arena.take(tokens[10]).unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 11);
    drop(arena);
    assert_eq!(drops.load(Ordering::SeqCst), 40);
}

#[test]
fn insert_error_hands_the_value_back_and_reads_as_no_free_slots() {
    let arena = SlotArena::new(0);
    let error = arena.insert(String::from("kept")).unwrap_err();
    assert_eq!(error.error(), MemoryError::NoFreeSlots);
    assert_eq!(error.to_string(), MemoryError::NoFreeSlots.to_string());
    let boxed: Box<dyn std::error::Error> = Box::new(error.clone());
    assert!(boxed.to_string().contains("full"));
    assert_eq!(MemoryError::from(error.clone()), MemoryError::NoFreeSlots);
    assert_eq!(error.into_inner(), "kept");
}

#[test]
fn readers_share_and_writers_exclude_under_real_threads() {
    const ROUNDS: usize = if cfg!(miri) { 50 } else { 20_000 };
    let arena = SlotArena::new(1);
    let token = arena.insert((0u64, 0u64)).unwrap();
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..ROUNDS {
                    let mut pair = arena.get_mut(token).unwrap();
                    pair.0 += 1;
                    pair.1 += 1;
                }
            });
        }
        s.spawn(|| {
            for _ in 0..ROUNDS {
                let pair = arena.get(token).unwrap();
                assert_eq!(pair.0, pair.1, "a reader saw a write in progress");
            }
        });
    });
    assert_eq!(
        *arena.get(token).unwrap(),
        (2 * ROUNDS as u64, 2 * ROUNDS as u64)
    );
}

/// Review finding: `map` forgot the guard before calling the closure, so a
/// panicking closure leaked the lock (std and parking_lot drop the guard).
#[test]
fn a_panicking_map_closure_drops_the_guard() {
    let arena = SlotArena::new(2);
    let token = arena.insert((1u8, String::from("x"))).unwrap();
    let mapped = catch_unwind(AssertUnwindSafe(|| {
        let _ = ReadGuard::map(arena.get(token).unwrap(), |_| -> &str { panic!("map") });
    }));
    assert!(mapped.is_err());
    assert!(
        arena.try_get_mut(token).is_ok(),
        "the read lock was released"
    );
    let mapped = catch_unwind(AssertUnwindSafe(|| {
        let _ = WriteGuard::map(arena.get_mut(token).unwrap(), |_| -> &mut str {
            panic!("map")
        });
    }));
    assert!(mapped.is_err());
    assert_eq!(
        arena.try_get(token).err(),
        Some(MemoryError::Poisoned),
        "the write lock was released, poisoning the value"
    );
    arena.remove(token).unwrap();
    assert_eq!(arena.len(), 0);
    let drops = Arc::new(AtomicUsize::new(0));
    let owned_arena = SlotArena::new(1);
    let token = owned_arena.insert(counted(&drops, 1)).unwrap();
    let mapped = catch_unwind(AssertUnwindSafe(|| {
        let _ = OwnedReadGuard::map(owned_arena.get_owned(token).unwrap(), |_| -> &u8 {
            panic!("map")
        });
    }));
    assert!(mapped.is_err());
    drop(owned_arena);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the owned guard's arena handle was released"
    );
}

/// Review finding: the arena's drop stopped at the first value whose
/// `Drop` panicked; the rest leaked.
#[test]
fn dropping_the_arena_drops_every_value_even_if_one_drop_panics() {
    struct Item(Arc<AtomicUsize>, bool);
    impl Drop for Item {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
            if self.1 && !thread::panicking() {
                panic!("payload drop failed");
            }
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(8);
    for panics in [false, true, false, false] {
        arena.insert(Item(drops.clone(), panics)).unwrap();
    }
    assert!(catch_unwind(AssertUnwindSafe(|| drop(arena))).is_err());
    assert_eq!(drops.load(Ordering::SeqCst), 4);
}

/// Allocation takes no lock: inserts and removes go on while another
/// thread holds read and write guards on every other value.
#[test]
fn insert_and_remove_never_wait_for_other_values_guards() {
    let arena = SlotArena::new(64);
    let held: Vec<MessageToken> = (0..32).map(|n| arena.insert(n).unwrap()).collect();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let holder = {
        let arena = arena.clone();
        thread::spawn(move || {
            let writers: Vec<_> = held[..16]
                .iter()
                .map(|&t| arena.get_mut_owned(t).unwrap())
                .collect();
            let readers: Vec<_> = held[16..]
                .iter()
                .map(|&t| arena.get_owned(t).unwrap())
                .collect();
            locked_tx.send(()).unwrap();
            done_rx.recv().unwrap();
            drop((writers, readers));
        })
    };
    locked_rx.recv().unwrap();
    let other = arena.clone();
    never_waits(move || {
        for round in 0..if cfg!(miri) { 20 } else { 1000 } {
            let token = other.insert(1000 + round).unwrap();
            assert_eq!(*other.get(token).unwrap(), 1000 + round);
            other.remove(token).unwrap();
        }
    });
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(arena.len(), 32);
}

// Issue 21, items 6–9: limits and tokens answer errors, never panics or
// fine print.

/// Item 6: the reader limit answers an error, and a dropped guard makes
/// room again. `__forget_read_locks` stands for 2²⁶ − 4 forgotten guards.
#[test]
fn too_many_read_guards_answer_an_error_until_one_drops() {
    let arena = SlotArena::new(2);
    let token = arena.insert(7u8).unwrap();
    let max = SlotArena::<u8>::MAX_READERS as u64;
    assert_eq!(max, (1 << 26) - 2);
    assert_eq!(
        arena.__forget_read_locks(token, max + 1),
        Err(MemoryError::TooManyReaders)
    );
    arena.__forget_read_locks(token, max - 2).unwrap();
    let last_but_one = arena.get(token).unwrap();
    let last = arena.get_owned(token).unwrap();
    let full = Some(MemoryError::TooManyReaders);
    let blocking = arena.clone();
    assert_eq!(never_waits(move || blocking.get(token).err()), full);
    assert_eq!(arena.try_get(token).err(), full);
    assert_eq!(arena.get_owned(token).err(), full);
    assert_eq!(arena.try_get_owned(token).err(), full);
    assert_eq!(arena.iter().count(), 0, "iter skips the value");
    drop(last_but_one);
    assert_eq!(*arena.get(token).unwrap(), 7);
    assert_eq!(*last, 7);
}

/// A read unlock guesses the word a lone reader leaves; every other word
/// (more readers, a removal, a write waiting) takes the subtraction. Either
/// way the value is as lockable afterwards as before, and the last reader
/// of a removed value drops it and frees its slot.
#[test]
fn every_read_unlock_leaves_the_word_as_the_locks_found_it() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(1);
    let token = arena.insert(counted(&drops, 1)).unwrap();
    for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2]] {
        let mut guards = [
            Some(arena.get(token).unwrap()),
            Some(arena.get(token).unwrap()),
            Some(arena.try_get(token).unwrap()),
        ];
        for (dropped, &which) in order.iter().enumerate() {
            assert_eq!(
                arena.try_get_mut(token).err(),
                Some(MemoryError::AlreadyBorrowed),
                "{} readers live",
                3 - dropped
            );
            guards[which] = None;
        }
        assert_eq!(arena.try_get_mut(token).unwrap().id, 1);
    }
    // An owned guard, the lone reader, then a writer that was waiting.
    drop(arena.get_owned(token).unwrap());
    let reader = arena.get(token).unwrap();
    let writer = {
        let arena = arena.clone();
        thread::spawn(move || arena.get_mut(token).unwrap().id)
    };
    thread::sleep(Duration::from_millis(20));
    drop(reader);
    assert_eq!(writer.join().unwrap(), 1);
    // Removed under two readers: the last one drops it, and the slot is free.
    let (first, second) = (arena.get(token).unwrap(), arena.get(token).unwrap());
    arena.remove(token).unwrap();
    drop(first);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(second);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    let next = arena.insert(counted(&drops, 2)).unwrap();
    assert_eq!(arena.get(next).unwrap().id, 2);
    assert_eq!(arena.get(token).err(), Some(MemoryError::StaleToken));
}

/// Item 9: a generation the slot never reached answers `BadToken`, on an
/// empty slot as on a full one; the slot's own generations keep their
/// errors.
#[test]
fn a_token_from_the_future_is_a_bad_token() {
    let arena = SlotArena::new(1);
    let token = arena.insert(1).unwrap();
    let ahead = |by| MessageToken::new(token.index() as u32, token.generation() + by);
    assert_eq!(arena.get(ahead(1)).err(), Some(MemoryError::BadToken));
    assert_eq!(arena.remove(ahead(1)), Err(MemoryError::BadToken));
    assert!(!arena.contains(ahead(1)));
    arena.remove(token).unwrap();
    // Empty now, its next value gets generation + 1.
    assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
    assert_eq!(arena.get(ahead(1)).err(), Some(MemoryError::NotAllocated));
    assert_eq!(arena.get(ahead(2)).err(), Some(MemoryError::BadToken));
    let next = arena.insert(2).unwrap();
    assert_eq!(next, ahead(1));
    assert_eq!(arena.get(token).err(), Some(MemoryError::StaleToken));
    assert_eq!(arena.get(ahead(2)).err(), Some(MemoryError::BadToken));
}

/// Item 7: a slot whose generation would wrap is retired, not reused.
#[test]
fn a_slot_whose_generation_would_wrap_is_retired() {
    let mut arena = SlotArena::new(2);
    assert!(arena.__set_free_generation(0, u32::MAX - 1));
    assert!(arena.__set_free_generation(1, u32::MAX - 1));
    assert!(
        !arena.__set_free_generation(1, 3),
        "the hook never goes backward"
    );
    let mut last = Vec::new();
    for round in 0..2 {
        let a = arena.insert(round).unwrap();
        let b = arena.insert(round).unwrap();
        assert_eq!(a.generation(), u32::MAX - 1 + round);
        last = vec![a, b];
        arena.remove(a).unwrap();
        assert_eq!(arena.take(b), Ok(round));
    }
    // Both slots gave out their last generation: neither comes back.
    assert_eq!((arena.capacity(), arena.len()), (0, 0));
    assert!(arena.insert(9).is_err(), "a retired slot was reused");
    for token in last {
        assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
    }
}

/// Item 7, counting: a retired slot leaves the capacity exact, and a
/// growable arena grows past it.
#[test]
fn a_retired_slot_shrinks_the_capacity_and_growth_goes_on() {
    let mut arena = SlotArena::growable(2, 64);
    assert!(arena.__set_free_generation(0, u32::MAX));
    let tokens = [arena.insert(0).unwrap(), arena.insert(1).unwrap()];
    let last = *tokens.iter().find(|token| token.index() == 0).unwrap();
    assert_eq!(last.generation(), u32::MAX);
    arena.remove(last).unwrap();
    assert_eq!(arena.get(last).err(), Some(MemoryError::NotAllocated));
    assert_eq!(
        (arena.capacity(), arena.max_capacity(), arena.len()),
        (1, 63, 1)
    );
    let mut inserted = 1;
    while let Ok(token) = arena.insert(inserted) {
        assert_ne!(token.index(), 0, "the retired slot was reused");
        inserted += 1;
    }
    assert_eq!(inserted, 63, "every slot but the retired one holds a value");
    assert_eq!((arena.capacity(), arena.len()), (63, 63));
}

/// Item 8: `take` of a poisoned value hands the value back.
#[test]
fn take_of_a_poisoned_value_hands_it_back() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(1);
    let token = arena.insert(counted(&drops, 1)).unwrap();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut guard = arena.get_mut(token).unwrap();
        guard.id = 2;
        panic!("half-way through an update");
    }));
    let taken = arena.take(token);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "take dropped the poisoned value"
    );
    let Err(TakeError::Poisoned(value)) = taken else {
        panic!("{taken:?}");
    };
    assert_eq!(value.id, 2, "the half-updated value, as the writer left it");
    assert_eq!((arena.len(), arena.capacity()), (0, 1), "its slot is free");
    assert!(arena.try_take(token).unwrap_err().into_inner().is_none());
    drop(value);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

// Issue 21: exclusive `&mut` access, with no guard and no waiting.

#[test]
fn exclusive_access_needs_the_only_handle_and_never_waits() {
    let mut arena = SlotArena::new(4);
    let a = arena.insert(1).unwrap();
    let b = arena.insert(2).unwrap();
    let clone = arena.clone();
    assert!(
        arena.exclusive().is_none(),
        "a clone reaches the same values"
    );
    drop(clone);
    let owned = arena.get_owned(a).unwrap();
    assert!(arena.exclusive().is_none(), "an owned guard holds a handle");
    drop(owned);
    // A forgotten write guard leaves its lock bit behind, but no borrow:
    // exclusive access neither waits for it nor fails.
    std::mem::forget(arena.get_mut(b).unwrap());
    let mut arena = never_waits(move || {
        *arena.exclusive().unwrap().get_mut(b).unwrap() += 10;
        arena
    });
    let mut all = arena.exclusive().unwrap();
    assert_eq!(all.get(a), Ok(&1));
    assert_eq!(all.get(b), Ok(&12));
    assert_eq!(all.len(), 2);
    let mut keys: Vec<MessageToken> = all.keys().collect();
    keys.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(keys, expected);
    for (_, value) in &mut all {
        *value += 100;
    }
    all.values_mut().for_each(|value| *value *= 2);
    let mut values: Vec<i32> = all.values().copied().collect();
    values.sort();
    assert_eq!(values, [202, 224]);
    assert_eq!(
        all.get(MessageToken::new(a.index() as u32, a.generation() + 1)),
        Err(MemoryError::BadToken)
    );
}

#[test]
fn exclusive_access_skips_poisoned_values_and_drain_drops_them() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut arena = SlotArena::new(4);
    let healthy = arena.insert(counted(&drops, 1)).unwrap();
    let poisoned = arena.insert(counted(&drops, 2)).unwrap();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let _guard = arena.get_mut(poisoned).unwrap();
        panic!("poison it");
    }));
    let mut all = arena.exclusive().unwrap();
    assert_eq!(all.get(poisoned).err(), Some(MemoryError::Poisoned));
    assert_eq!(all.get_mut(poisoned).err(), Some(MemoryError::Poisoned));
    assert!(all.contains(poisoned));
    assert_eq!(
        all.iter().map(|(token, _)| token).collect::<Vec<_>>(),
        [healthy]
    );
    let drained: Vec<(MessageToken, Counted)> = all.drain().collect();
    assert_eq!(drained.len(), 1);
    assert_eq!((drained[0].0, drained[0].1.id), (healthy, 1));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the poisoned value dropped"
    );
    drop(drained);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert!(all.is_empty());
    assert_eq!(arena.get(healthy).err(), Some(MemoryError::NotAllocated));
    assert_eq!(arena.get(poisoned).err(), Some(MemoryError::NotAllocated));
    // Every slot is free again.
    for id in 0..4 {
        arena.insert(counted(&drops, id)).unwrap();
    }
}

#[test]
fn a_drain_dropped_early_and_clear_remove_everything_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut arena = SlotArena::new(8);
    let tokens: Vec<MessageToken> = (0..8)
        .map(|id| arena.insert(counted(&drops, id)).unwrap())
        .collect();
    let first = arena.exclusive().unwrap().drain().next().unwrap();
    assert_eq!(
        drops.load(Ordering::SeqCst),
        7,
        "the rest dropped with the drain"
    );
    drop(first);
    assert!(arena.is_empty());
    assert_eq!(arena.capacity(), 8);
    let again: Vec<MessageToken> = (0..8)
        .map(|id| arena.insert(counted(&drops, id)).unwrap())
        .collect();
    arena.exclusive().unwrap().clear();
    assert_eq!(drops.load(Ordering::SeqCst), 16);
    for token in tokens.into_iter().chain(again) {
        assert!(!arena.contains(token));
    }
    assert_eq!((arena.len(), arena.capacity()), (0, 8));
}

#[test]
fn clear_through_a_shared_handle_removes_like_remove() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(4);
    let held = arena.insert(counted(&drops, 1)).unwrap();
    let other = arena.insert(counted(&drops, 2)).unwrap();
    let guard = arena.get(held).unwrap();
    never_waits({
        let arena = arena.clone();
        move || arena.clear()
    });
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "the unguarded value dropped"
    );
    assert_eq!(arena.get(held).err(), Some(MemoryError::NotAllocated));
    assert_eq!(arena.get(other).err(), Some(MemoryError::NotAllocated));
    assert_eq!(guard.id, 1);
    drop(guard);
    assert_eq!(drops.load(Ordering::SeqCst), 2, "the last guard dropped it");
    assert!(arena.is_empty());
}

#[test]
fn into_iter_from_iter_and_extend() {
    let arena: SlotArena<u32> = (1..=3).collect();
    assert_eq!((arena.len(), arena.capacity()), (3, 3));
    let shared = arena.clone();
    assert_eq!(
        arena.into_iter().count(),
        0,
        "values stay with the other handle"
    );
    let mut pairs: Vec<(MessageToken, u32)> = shared.clone().into_iter().collect();
    assert_eq!(pairs.len(), 0, "`shared` still has another handle");
    let mut shared = shared;
    shared.extend([4, 5]);
    assert_eq!(shared.len(), 5);
    let tokens: Vec<MessageToken> = shared.iter().map(|(token, _)| token).collect();
    pairs = shared.into_iter().collect();
    pairs.sort_by_key(|&(_, value)| value);
    assert_eq!(
        pairs.iter().map(|&(_, v)| v).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    for (token, _) in &pairs {
        assert!(tokens.contains(token));
    }
}

#[test]
#[should_panic(expected = "full at its maximum capacity")]
fn extend_past_the_maximum_panics_as_documented() {
    let mut arena = SlotArena::new(1);
    arena.extend([1, 2]);
}

// Issue 21: reserve, then fill.

#[test]
fn a_vacant_entry_holds_its_slot_and_dropping_it_gives_the_slot_back_with_a_new_generation() {
    let arena = SlotArena::new(1);
    let entry = arena.vacant_entry().unwrap();
    let reserved = entry.key();
    assert_eq!(arena.vacant_entry().err(), Some(MemoryError::NoFreeSlots));
    assert_eq!(
        arena.insert(1).unwrap_err().into_inner(),
        1,
        "the slot is reserved"
    );
    assert_eq!(arena.get(reserved).err(), Some(MemoryError::NotAllocated));
    drop(entry);
    assert_eq!(arena.get(reserved).err(), Some(MemoryError::NotAllocated));
    let next = arena.insert(2).unwrap();
    assert_eq!(next.index(), reserved.index(), "the slot came back");
    assert_ne!(
        next, reserved,
        "the dropped entry's key names nothing later"
    );
    assert_eq!(arena.get(reserved).err(), Some(MemoryError::StaleToken));
    assert_eq!(arena.take(next), Ok(2));
    let entry = arena.vacant_entry().unwrap();
    let key = entry.key();
    assert_eq!(entry.insert(3), key);
    assert_eq!(*arena.get(key).unwrap(), 3);
}

#[test]
fn insert_with_key_gives_the_value_its_key_and_a_panic_gives_the_slot_back() {
    let arena = SlotArena::new(1);
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        arena.insert_with_key(|_| -> (MessageToken, u8) { panic!("no value after all") })
    }));
    assert!(panicked.is_err());
    assert!(arena.is_empty());
    let key = arena.insert_with_key(|key| (key, 5)).unwrap();
    assert_eq!(*arena.get(key).unwrap(), (key, 5));
    assert_eq!(
        arena.insert_with_key(|key| (key, 6)),
        Err(MemoryError::NoFreeSlots)
    );
}

#[test]
fn every_guard_knows_its_key() {
    let arena = SlotArena::new(2);
    let token = arena.insert((1u8, 2u8)).unwrap();
    let read = arena.get(token).unwrap();
    assert_eq!(ReadGuard::key(&ReadGuard::map(read, |pair| &pair.0)), token);
    assert_eq!(WriteGuard::key(&arena.get_mut(token).unwrap()), token);
    assert_eq!(OwnedReadGuard::key(&arena.get_owned(token).unwrap()), token);
    let owned = arena.get_mut_owned(token).unwrap();
    assert_eq!(slotarena::arena::OwnedWriteGuard::key(&owned), token);
    drop(owned);
    // A removed value's last guard still knows the key it had.
    let guard = arena.get(token).unwrap();
    arena.remove(token).unwrap();
    assert_eq!(ReadGuard::key(&guard), token);
}

#[test]
fn reserve_grows_a_growable_arena_up_to_its_maximum() {
    let arena = SlotArena::<u8>::growable(0, 100);
    arena.insert(1).unwrap();
    let before = arena.capacity();
    arena.reserve(before);
    assert!(
        arena.capacity() - arena.len() >= before,
        "{}",
        arena.capacity()
    );
    assert_eq!(arena.try_reserve(100), Err(MemoryError::NoFreeSlots));
    assert_eq!(arena.try_reserve(99), Ok(()));
    assert_eq!(arena.capacity(), 100);
    arena.reserve(1000);
    assert_eq!(arena.capacity(), 100, "clamped to the maximum");
    let fixed = SlotArena::<u8>::new(4);
    assert_eq!(fixed.try_reserve(4), Ok(()));
    assert_eq!(fixed.try_reserve(5), Err(MemoryError::NoFreeSlots));
}

// Issue 21: typed keys.

slotarena::new_key_type! {
    /// Keys of one arena.
    struct NodeKey;
    struct EdgeKey;
}

#[test]
fn typed_keys_name_values_of_their_own_arena_only_and_cost_nothing() {
    use slotarena::Key;
    let nodes: SlotArena<&str, NodeKey> = SlotArena::with_key(4);
    let edges = SlotArena::<(NodeKey, NodeKey), EdgeKey>::growable_with_key(0, 8);
    let a = nodes.insert("a").unwrap();
    let b = nodes.insert_with_key(|_| "b").unwrap();
    let ab = edges.insert((a, b)).unwrap();
    assert_eq!(*nodes.get(edges.get(ab).unwrap().1).unwrap(), "b");
    assert_eq!(std::mem::size_of::<Option<NodeKey>>(), 8);
    assert_eq!(std::mem::size_of::<Option<MessageToken>>(), 8);
    assert_eq!(NodeKey::default().to_token(), MessageToken::INVALID);
    assert_eq!(
        format!("{:?}", NodeKey::from_token(MessageToken::new(2, 1))),
        "NodeKey(2v1)"
    );
    // Every API speaks the arena's key type.
    let keys: Vec<NodeKey> = nodes.iter().map(|(key, _)| key).collect();
    assert_eq!(keys.len(), 2);
    let mut nodes = nodes;
    let mut all = nodes.exclusive().unwrap();
    assert_eq!(all.get_mut(a), Ok(&mut "a"));
    let drained: Vec<(NodeKey, &str)> = all.drain().collect();
    assert_eq!(drained.len(), 2);
    assert_eq!(nodes.get(a).err(), Some(MemoryError::NotAllocated));
    let entry = nodes.vacant_entry().unwrap();
    let key: NodeKey = entry.key();
    assert_eq!(entry.insert("c"), key);
    let collected: SlotArena<u8, EdgeKey> = [1, 2].into_iter().collect();
    let pairs: Vec<(EdgeKey, u8)> = collected.into_iter().collect();
    assert_eq!(pairs.len(), 2);
}

/// Every guard kind answers the arena's own key type, also after `map`,
/// and the key round-trips to the one the value was stored under; an
/// owned guard's arena is the typed arena, so it takes the same keys.
#[test]
fn every_guard_answers_the_arenas_key_type() {
    use slotarena::arena::OwnedWriteGuard;
    let arena: SlotArena<(u8, String), NodeKey> = SlotArena::with_key(2);
    let key = arena.insert((1, String::from("one"))).unwrap();
    let other = arena.insert((2, String::from("two"))).unwrap();

    let read = arena.get(key).unwrap();
    let typed: NodeKey = ReadGuard::key(&read);
    assert_eq!(typed, key);
    let mapped = ReadGuard::map(read, |pair| &pair.1);
    let typed: NodeKey = ReadGuard::key(&mapped);
    assert_eq!((typed, &**mapped), (key, "one"));
    drop(mapped);

    let write = arena.get_mut(other).unwrap();
    let typed: NodeKey = WriteGuard::key(&write);
    assert_eq!(typed, other);
    let mut mapped = WriteGuard::map(write, |pair| &mut pair.0);
    *mapped += 1;
    let typed: NodeKey = WriteGuard::key(&mapped);
    assert_eq!(typed, other);
    drop(mapped);

    let owned = arena.get_owned(key).unwrap();
    let typed: NodeKey = OwnedReadGuard::key(&owned);
    assert_eq!(typed, key);
    let mapped = OwnedReadGuard::map(owned, |pair| &pair.0);
    let typed: NodeKey = OwnedReadGuard::key(&mapped);
    assert_eq!(typed, key);
    let same: &SlotArena<(u8, String), NodeKey> = OwnedReadGuard::arena(&mapped);
    assert_eq!(same.get(typed).unwrap().1, "one");
    drop(mapped);

    let owned = arena.get_mut_owned(other).unwrap();
    let typed: NodeKey = OwnedWriteGuard::key(&owned);
    assert_eq!(typed, other);
    let mapped = OwnedWriteGuard::map(owned, |pair| &mut pair.1);
    let typed: NodeKey = OwnedWriteGuard::key(&mapped);
    assert_eq!(typed, other);
    let same: &SlotArena<(u8, String), NodeKey> = OwnedWriteGuard::arena(&mapped);
    assert_eq!(
        same.try_get(typed).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    drop(mapped);
    assert_eq!(arena.get(other).unwrap().0, 3);

    // The walk's guards too: each guard's key is the key it is yielded with.
    for (yielded, guard) in &arena {
        let typed: NodeKey = ReadGuard::key(&guard);
        assert_eq!(typed, yielded);
    }
}

/// The async owned guards answer the typed key and arena too.
#[test]
fn async_owned_guards_answer_the_arenas_key_type() {
    use slotarena::arena::OwnedWriteGuard;
    let arena: SlotArena<u8, EdgeKey> = SlotArena::with_key(1);
    let key = arena.insert(4).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let read = arena.get_owned_async(key).await.unwrap();
        let typed: EdgeKey = OwnedReadGuard::key(&read);
        assert_eq!(typed, key);
        drop(read);
        let write = arena.get_mut_owned_async(key).await.unwrap();
        let typed: EdgeKey = OwnedWriteGuard::key(&write);
        assert_eq!(typed, key);
        let same: &SlotArena<u8, EdgeKey> = OwnedWriteGuard::arena(&write);
        assert!(same.contains(typed));
    });
}
