//! Review of issue 21: promises of the exclusive view and of reserve that
//! the code does not keep.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use slotarena::{MemoryError, SlotArena};

/// Counts its drops; panics in its drop if `bomb`.
struct Counted {
    drops: Arc<AtomicUsize>,
    bomb: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.bomb && !std::thread::panicking() {
            panic!("bomb");
        }
    }
}

/// `Exclusive::clear` documents: "If a value's `Drop` panics, the values not
/// yet dropped stay in the arena (and are dropped with it)." The `Drain` that
/// `clear` consumes keeps evicting and dropping in its own `Drop` while the
/// panic unwinds, so nothing stays.
#[test]
fn exclusive_clear_keeps_the_values_not_yet_dropped_when_a_drop_panics() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut arena = SlotArena::new(4);
    for bomb in [true, false, false] {
        arena
            .insert(Counted {
                drops: Arc::clone(&drops),
                bomb,
            })
            .ok()
            .unwrap();
    }
    let panicked = catch_unwind(AssertUnwindSafe(|| arena.exclusive().unwrap().clear())).is_err();
    assert!(panicked, "the first value's drop panics");
    assert_eq!(
        (arena.len(), drops.load(Ordering::SeqCst)),
        (2, 1),
        "documented: after the first drop panics, the two values not yet dropped stay in the arena \
         (len, drops so far)"
    );
}

/// `try_reserve` documents `Ok` as "the values fit" and `NoFreeSlots` "if
/// `additional` more values would pass the maximum capacity". With a vacant
/// entry outstanding (its slot "still counts as free in `len`"), it answers
/// `Ok(())` for a value that does not fit: the next insert answers full.
#[test]
fn try_reserve_ok_yet_the_value_does_not_fit_beside_a_vacant_entry() {
    let arena = SlotArena::<u8>::new(1);
    let entry = arena.vacant_entry().unwrap();
    let reserved = arena.try_reserve(1);
    let inserted = arena.insert(1).map_err(|error| error.error());
    drop(entry);
    assert!(
        reserved.is_err() || inserted.is_ok(),
        "try_reserve(1) answered {reserved:?}, then insert answered {inserted:?}"
    );
    let _ = MemoryError::NoFreeSlots;
}

/// `Slot::evict` (behind `Exclusive::drain`/`clear`) recovers the slots of
/// guards passed to `mem::forget`, but a `VacantEntry` passed to
/// `mem::forget` (safe code) loses its slot for good: it is vacant, on no
/// free list, and `drain`/`clear` skip vacant slots. Afterwards the arena
/// says `capacity() == 2`, `len() == 0`, yet the second insert answers
/// `NoFreeSlots` (capacity is documented exact from a quiescent state).
#[test]
fn exclusive_clear_gives_back_the_slot_of_a_forgotten_vacant_entry() {
    let mut arena = SlotArena::<u8>::new(2);
    std::mem::forget(arena.vacant_entry().unwrap());
    arena.exclusive().unwrap().clear();
    assert_eq!((arena.len(), arena.capacity()), (0, 2));
    let first = arena.insert(1).map_err(|error| error.error());
    let second = arena.insert(2).map_err(|error| error.error());
    assert!(
        first.is_ok() && second.is_ok(),
        "len 0 of capacity 2 after exclusive().clear(), yet inserts answer {first:?}, {second:?}"
    );
}
