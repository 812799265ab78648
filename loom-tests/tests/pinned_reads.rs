//! Pinned reads (`src/arena/pins.rs`, P1–P4) against writers and removal,
//! through `SlotArena<Probe>` and its `Reader`: a pinned read never
//! overlaps a writer (P1), the writer's accesses are ordered with the
//! reader's (P2), and a removed value is dropped exactly once, after every
//! pinned read of it, by whichever thread lets go last (P3, P4).
//!
//! The models use the real registry and lifecycle word, with no epoch
//! library: crossbeam-epoch cannot be model-checked at preemption bound 2
//! (VERIFY.md), which is why the protocol keeps its own reader records.
//! Each arena has one slot, so a value that is never reclaimed shows up as
//! a refused insert (and as a leak of its probe).
#![cfg(loom)]

use loom::thread;
use slotarena::{MemoryError, SlotArena};
use slotarena_loom_tests::{Probe, model};

#[test]
fn a_pinned_reader_and_a_writer_never_overlap() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let mut reader = arena.reader();
        let pinned = thread::spawn(move || match reader.try_get(token) {
            Ok(value) => assert_eq!(value.read(), 1),
            Err(e) => assert_eq!(e, MemoryError::AlreadyBorrowed),
        });
        // Waits for the pinned read, if the reader got in first.
        assert_eq!(arena.get_mut(token).unwrap().write(), 1);
        pinned.join().unwrap();
        assert_eq!(arena.take(token).unwrap().id(), 1);
        assert_eq!(state.drops(), 1);
    });
}

#[test]
fn a_reader_claiming_its_record_while_a_writer_works_still_excludes_it() {
    // The record is claimed inside the model: a record that appears after
    // a writer looked must still keep that writer out (P1's last sentence).
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let pinned = {
            let arena = arena.clone();
            thread::spawn(move || {
                if let Ok(value) = arena.reader().try_get(token) {
                    assert_eq!(value.read(), 1);
                }
            })
        };
        assert_eq!(arena.get_mut(token).unwrap().write(), 1);
        pinned.join().unwrap();
        drop(arena);
        assert_eq!(state.drops(), 1);
    });
}

#[test]
fn take_waits_for_a_pinned_reader() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let mut reader = arena.reader();
        let pinned = thread::spawn(move || match reader.try_get(token) {
            Ok(value) => assert_eq!(value.read(), 1),
            Err(e) => assert_eq!(e, MemoryError::NotAllocated),
        });
        let mut taken = arena.take(token).unwrap();
        assert_eq!(taken.write(), 1);
        drop(taken);
        assert_eq!(state.drops(), 1);
        pinned.join().unwrap();
    });
}

#[test]
fn a_pinned_reader_racing_remove_drops_the_value_once_after_the_read() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let mut reader = arena.reader();
        let pinned = thread::spawn(move || match reader.try_get(token) {
            Ok(value) => assert_eq!(value.read(), 1),
            Err(e) => assert_eq!(e, MemoryError::NotAllocated),
        });
        // Never waits for the reader.
        arena.remove(token).unwrap();
        assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
        pinned.join().unwrap();
        assert_eq!(state.drops(), 1, "the removed value was not dropped");
        let (again, _) = Probe::new(2);
        assert!(arena.insert(again).is_ok(), "the slot was not freed");
    });
}

#[test]
fn two_pinned_readers_racing_remove_leave_the_drop_to_the_last() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let mut reader = arena.reader();
                thread::spawn(move || {
                    if let Ok(value) = reader.try_get(token) {
                        assert_eq!(value.read(), 1);
                    }
                })
            })
            .collect();
        arena.remove(token).unwrap();
        for reader in readers {
            reader.join().unwrap();
        }
        assert_eq!(state.drops(), 1, "the removed value was not dropped");
        assert_eq!(arena.len(), 0);
    });
}

#[test]
fn a_stale_pin_never_keeps_a_newer_value_from_its_drop() {
    // The reader's record names the slot, not the value: a pin of an old
    // key may hold up the drop of the slot's next value, and must then
    // drop it itself.
    model(|| {
        let arena = SlotArena::new(1);
        let (first, first_state) = Probe::new(1);
        let old = arena.insert(first).unwrap();
        arena.remove(old).unwrap();
        let (second, second_state) = Probe::new(2);
        let new = arena.insert(second).unwrap();
        let mut reader = arena.reader();
        let stale = thread::spawn(move || {
            let answer = reader.try_get(old).err();
            assert!(
                matches!(
                    answer,
                    Some(MemoryError::StaleToken | MemoryError::NotAllocated)
                ),
                "{answer:?}"
            );
        });
        arena.remove(new).unwrap();
        stale.join().unwrap();
        assert_eq!(first_state.drops(), 1);
        assert_eq!(second_state.drops(), 1, "the newer value was not dropped");
        assert_eq!(arena.len(), 0);
    });
}

#[test]
fn a_failed_pin_racing_the_last_read_guard_of_a_removed_value_drops_it_once() {
    // The last read guard of a removed value unlocks with a `fetch_sub`
    // that leaves the word "removed, no guard, no writer" for a moment
    // before its store of `WRITER` (`Slot::after_last_reader`): the same
    // word `leave_to_pinned` uses for "drop pending". A reader unpinning in
    // that moment (here a pin that finds the key dead) must not take that
    // word for a drop left to it.
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let guard = arena.get(token).unwrap();
        arena.remove(token).unwrap();
        let mut reader = arena.reader();
        let failed = thread::spawn(move || {
            assert_eq!(reader.try_get(token).err(), Some(MemoryError::NotAllocated));
        });
        drop(guard);
        failed.join().unwrap();
        assert_eq!(state.drops(), 1, "the removed value was not dropped");
        assert_eq!(arena.len(), 0);
    });
}
