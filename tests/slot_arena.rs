//! The `SlotArena<T>` contract, one promise per test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use slotarena::arena::{OwnedReadGuard, ReadGuard, WriteGuard};
use slotarena::{MemoryError, MessageToken, SlotArena};

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
        arena.take(old).err(),
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
    assert_eq!(arena.try_take(token), Err(MemoryError::BorrowActive));
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
            other.take(stale).err(),
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
fn a_panicking_writer_poisons_and_removal_still_works() {
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
    assert_eq!(arena.take(token).err(), Some(MemoryError::Poisoned));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        1,
        "take dropped the poisoned value"
    );
    assert_eq!(arena.len(), 0, "and freed its slot");
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
