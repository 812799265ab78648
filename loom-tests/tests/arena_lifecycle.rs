//! The lifecycle word, through `SlotArena<Probe>`: stale tokens, deferred
//! removal, `take` waiting (and parking) for guards, poisoning, owned
//! guards, and read/write exclusion.
//!
//! Every value is a [`Probe`]: an access overlapping a writer, an access to
//! a dropped value, a drop during an access or a second drop panics, and a
//! value never dropped fails the model as a leak. Each arena has one slot
//! unless said otherwise, so a value that is not reclaimed shows up as a
//! refused insert.
#![cfg(loom)]

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use loom::thread;
use slotarena::{MemoryError, SlotArena};
use slotarena_loom_tests::{Probe, model};

/// Inserts into a one-slot arena that must have its slot free.
fn insert_into_free_slot(arena: &SlotArena<Probe>, id: u32) -> slotarena::MessageToken {
    let (probe, _) = Probe::new(id);
    arena
        .insert(probe)
        .unwrap_or_else(|_| panic!("the slot was not reclaimed"))
}

#[test]
fn a_stale_reader_racing_remove_and_reuse_never_reaches_the_new_value() {
    model(|| {
        let arena = SlotArena::new(1);
        let (first, first_state) = Probe::new(1);
        let old = arena.insert(first).unwrap();
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || match arena.get(old) {
                Ok(guard) => assert_eq!(guard.read(), 1, "a stale token reached a newer value"),
                Err(e) => assert!(
                    matches!(e, MemoryError::NotAllocated | MemoryError::StaleToken),
                    "{e:?}"
                ),
            })
        };
        arena.remove(old).unwrap();
        let (second, second_state) = Probe::new(2);
        // The reader's guard may still hold the removed value, and its slot.
        let new = match arena.insert(second) {
            Ok(new) => {
                reader.join().unwrap();
                new
            }
            Err(refused) => {
                reader.join().unwrap();
                arena.insert(refused.into_inner()).unwrap()
            }
        };
        assert_eq!(new.index(), old.index());
        assert_eq!(first_state.drops(), 1);
        assert_eq!(arena.get(old).err(), Some(MemoryError::StaleToken));
        assert_eq!(arena.take(new).unwrap().read(), 2);
        assert_eq!(second_state.drops(), 1);
    });
}

#[test]
fn a_deferred_removal_is_dropped_once_by_whichever_thread_is_last() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || {
                if let Ok(guard) = arena.get(token) {
                    assert_eq!(guard.read(), 1);
                }
            })
        };
        // Never waits, never fails because of the reader's guard.
        arena.remove(token).unwrap();
        assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
        reader.join().unwrap();
        assert_eq!(state.drops(), 1, "the removed value was not dropped");
        assert_eq!(arena.len(), 0);
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn a_slot_at_its_last_generation_retires_by_whichever_thread_is_last() {
    model(|| {
        let mut arena = SlotArena::new(1);
        assert!(arena.__set_free_generation(0, u32::MAX));
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || {
                if let Ok(guard) = arena.get(token) {
                    assert_eq!(guard.read(), 1);
                }
            })
        };
        arena.remove(token).unwrap();
        reader.join().unwrap();
        assert_eq!(state.drops(), 1, "the removed value was not dropped");
        // Retired, whichever thread reclaimed it: never handed out again.
        assert_eq!(
            (arena.capacity(), arena.len()),
            (0, 0),
            "the slot did not retire"
        );
        let (again, _) = Probe::new(2);
        assert!(arena.insert(again).is_err(), "a retired slot was reused");
        assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
    });
}

#[test]
fn take_waits_for_a_reader_and_is_woken_by_its_drop() {
    // Under loom a waiter parks at once (no spinning), so whenever the
    // reader holds its guard the take parks, and only the reader's unlock
    // can wake it: a lost wake-up is a deadlock loom reports.
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || match arena.get(token) {
                Ok(guard) => assert_eq!(guard.read(), 1),
                Err(e) => assert_eq!(e, MemoryError::NotAllocated),
            })
        };
        let taken = arena.take(token).unwrap();
        assert_eq!(taken.read(), 1);
        drop(taken);
        assert_eq!(state.drops(), 1);
        reader.join().unwrap();
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn take_waits_for_a_writer_and_is_woken_by_its_drop() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || match arena.get_mut(token) {
                Ok(mut guard) => assert_eq!(guard.write(), 1),
                Err(e) => assert_eq!(e, MemoryError::NotAllocated),
            })
        };
        assert_eq!(arena.take(token).unwrap().read(), 1);
        assert_eq!(state.drops(), 1);
        writer.join().unwrap();
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn try_take_racing_a_reader_answers_borrow_active_or_the_value_and_loses_nothing() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || match arena.get(token) {
                Ok(guard) => assert_eq!(guard.read(), 1),
                Err(e) => assert_eq!(e, MemoryError::NotAllocated),
            })
        };
        match arena.try_take(token) {
            Ok(value) => {
                assert_eq!(value.read(), 1);
                reader.join().unwrap();
            }
            Err(e) => {
                // Refused, changing nothing: the value is still there.
                assert_eq!(e.error(), MemoryError::BorrowActive);
                reader.join().unwrap();
                assert_eq!(arena.try_take(token).unwrap().read(), 1);
            }
        }
        assert_eq!(state.drops(), 1);
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn a_writer_that_panics_poisons_the_value_for_a_racing_reader() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || {
                let unwound = catch_unwind(AssertUnwindSafe(|| {
                    let mut guard = arena.get_mut(token).unwrap();
                    guard.write();
                    // `resume_unwind` skips the panic hook: no noise per
                    // execution, and `thread::panicking()` is still true
                    // while the guard drops.
                    resume_unwind(Box::new("the writer panics"));
                }));
                assert!(unwound.is_err());
            })
        };
        // Before the writer: the value; after it: poisoned (waiting for it
        // in between, woken by the unwinding guard's unlock).
        match arena.get(token) {
            Ok(guard) => assert_eq!(guard.read(), 1),
            Err(e) => assert_eq!(e, MemoryError::Poisoned),
        }
        writer.join().unwrap();
        assert_eq!(
            arena.get(token).err(),
            Some(MemoryError::Poisoned),
            "a panicking writer did not poison the value"
        );
        assert_eq!(arena.try_get_mut(token).err(), Some(MemoryError::Poisoned));
        assert!(arena.contains(token));
        // Take still releases the slot, and hands the value back.
        let poisoned = arena.take(token).unwrap_err();
        assert_eq!(poisoned.error(), MemoryError::Poisoned);
        assert_eq!(state.drops(), 0, "take dropped the poisoned value");
        drop(poisoned);
        assert_eq!(state.drops(), 1);
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn an_owned_read_guard_dropped_on_another_thread_reclaims_a_removed_value() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let guard = arena.get_owned(token).unwrap();
        let holder = thread::spawn(move || {
            assert_eq!(guard.read(), 1);
            drop(guard);
        });
        arena.remove(token).unwrap();
        holder.join().unwrap();
        assert_eq!(state.drops(), 1, "the removed value was not dropped");
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn an_owned_write_guard_dropped_on_another_thread_reclaims_a_removed_value() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let mut guard = arena.get_mut_owned(token).unwrap();
        let holder = thread::spawn(move || {
            assert_eq!(guard.write(), 1);
            drop(guard);
        });
        arena.remove(token).unwrap();
        holder.join().unwrap();
        assert_eq!(state.drops(), 1, "the removed value was not dropped");
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn a_writer_and_a_reader_never_overlap() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || {
                assert_eq!(arena.get_mut(token).unwrap().write(), 1);
            })
        };
        assert_eq!(arena.get(token).unwrap().read(), 1);
        writer.join().unwrap();
        assert_eq!(arena.take(token).unwrap().id(), 1);
        assert_eq!(state.drops(), 1);
    });
}

#[test]
fn two_writers_never_overlap() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || {
                assert_eq!(arena.get_mut(token).unwrap().write(), 1);
            })
        };
        assert_eq!(arena.get_mut(token).unwrap().write(), 1);
        writer.join().unwrap();
        drop(arena);
        assert_eq!(state.drops(), 1);
    });
}

#[test]
fn racing_takes_of_one_token_hand_the_value_out_once() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let other = {
            let arena = arena.clone();
            thread::spawn(move || {
                arena
                    .take(token)
                    .map(|value| value.read())
                    .map_err(MemoryError::from)
            })
        };
        let mine = arena
            .take(token)
            .map(|value| value.read())
            .map_err(MemoryError::from);
        let results = [mine, other.join().unwrap()];
        assert!(
            results.contains(&Ok(1)) && results.contains(&Err(MemoryError::NotAllocated)),
            "{results:?}"
        );
        assert_eq!(state.drops(), 1);
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn a_take_racing_a_remove_lets_exactly_one_win() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let remover = {
            let arena = arena.clone();
            thread::spawn(move || arena.remove(token))
        };
        let taken = arena
            .take(token)
            .map(|value| value.read())
            .map_err(MemoryError::from);
        let removed = remover.join().unwrap();
        match (taken, removed) {
            (Ok(1), Err(MemoryError::NotAllocated)) | (Err(MemoryError::NotAllocated), Ok(())) => {}
            other => panic!("both or neither won: {other:?}"),
        }
        assert_eq!(state.drops(), 1);
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn the_last_of_two_readers_on_other_threads_reclaims_a_removed_value() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let arena = arena.clone();
                thread::spawn(move || {
                    if let Ok(guard) = arena.get(token) {
                        assert_eq!(guard.read(), 1);
                    }
                })
            })
            .collect();
        arena.remove(token).unwrap();
        for reader in readers {
            reader.join().unwrap();
        }
        assert_eq!(state.drops(), 1, "the removed value was not dropped");
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn a_reader_a_writer_and_a_remove_race_without_overlap_or_loss() {
    model(|| {
        let arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || match arena.get_mut(token) {
                Ok(mut guard) => assert_eq!(guard.write(), 1),
                Err(e) => assert_eq!(e, MemoryError::NotAllocated),
            })
        };
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || match arena.get(token) {
                Ok(guard) => assert_eq!(guard.read(), 1),
                Err(e) => assert_eq!(e, MemoryError::NotAllocated),
            })
        };
        arena.remove(token).unwrap();
        writer.join().unwrap();
        reader.join().unwrap();
        assert_eq!(state.drops(), 1, "the removed value was not dropped");
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn exclusive_access_after_the_other_handle_drops_is_ordered_after_its_accesses() {
    model(|| {
        let mut arena = SlotArena::new(1);
        let (value, state) = Probe::new(1);
        let token = arena.insert(value).unwrap();
        let other = arena.clone();
        let writer = thread::spawn(move || {
            if let Ok(mut guard) = other.get_mut(token) {
                guard.write();
            }
            // `other` drops here: its Arc release is what `exclusive` sees.
        });
        // Exclusive access exists only once the other handle is gone, and
        // its plain `&mut` never overlaps the writer's guard.
        let mut all = loop {
            if let Some(all) = arena.exclusive() {
                break all;
            }
            thread::yield_now();
        };
        assert_eq!(all.get_mut(token).unwrap().write(), 1);
        let drained: Vec<_> = all.drain().collect();
        assert_eq!(drained.len(), 1);
        drop(drained);
        assert_eq!(state.drops(), 1);
        writer.join().unwrap();
        insert_into_free_slot(&arena, 2);
    });
}

#[test]
fn clear_racing_a_reader_drops_every_value_once_and_frees_every_slot() {
    model(|| {
        let arena = SlotArena::new(2);
        let (first, first_state) = Probe::new(1);
        let (second, second_state) = Probe::new(2);
        let a = arena.insert(first).unwrap();
        arena.insert(second).unwrap();
        let reader = {
            let arena = arena.clone();
            thread::spawn(move || {
                if let Ok(guard) = arena.get(a) {
                    assert_eq!(guard.read(), 1);
                }
            })
        };
        arena.clear();
        assert!(!arena.contains(a));
        reader.join().unwrap();
        assert_eq!((first_state.drops(), second_state.drops()), (1, 1));
        assert_eq!(arena.len(), 0);
        for id in 3..5 {
            let (value, _) = Probe::new(id);
            assert!(arena.insert(value).is_ok(), "clear lost a slot");
        }
    });
}
