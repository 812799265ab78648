//! Review R4 (h7-w1): models of the window c998932 opened, where a
//! dropped value's slot keeps its held word (REMOVING or TAKING, WRITER,
//! generation before) until the free-list push writes the vacant word,
//! raced by the store whose one try at its home list 4686103 inlined.
//! Run in release with debug assertions (.ci/loom.sh), so `link_vacant`'s
//! new assertion on the held word is checked in every execution.
#![cfg(loom)]

use loom::thread;
use slotarena::{MemoryError, SlotArena};
use slotarena_loom_tests::{Probe, model};

/// The last pinned reader of a removed value drops it and pushes its slot
/// while another thread stores into the one-slot arena and reads the old
/// key: the store finds the slot or not (then it is free right after the
/// join), the old key never reaches the new value, the value is dropped
/// once.
#[test]
fn a_pinned_reclaim_racing_a_store_and_a_stale_key() {
    model(|| {
        let arena = SlotArena::new(1);
        let (first, first_state) = Probe::new(1);
        let old = arena.insert(first).unwrap();
        let mut reader = arena.reader();
        let pinned = thread::spawn(move || {
            if let Ok(value) = reader.try_get(old) {
                assert_eq!(value.read(), 1);
            }
        });
        arena.remove(old).unwrap();
        let storer = {
            let arena = arena.clone();
            thread::spawn(move || {
                let (second, _) = Probe::new(2);
                match arena.insert(second) {
                    Ok(new) => {
                        match arena.get(old) {
                            Err(MemoryError::StaleToken | MemoryError::NotAllocated) => {}
                            other => panic!("the old key answered {other:?}"),
                        }
                        assert_eq!(arena.take(new).unwrap().read(), 2);
                        true
                    }
                    Err(_) => false,
                }
            })
        };
        pinned.join().unwrap();
        let stored = storer.join().unwrap();
        assert_eq!(
            first_state.drops(),
            1,
            "the removed value was not dropped once"
        );
        let (third, _) = Probe::new(3);
        let new = arena
            .insert(third)
            .unwrap_or_else(|_| panic!("room hidden (the store found it: {stored})"));
        assert_eq!(new.index(), old.index());
        assert_eq!(arena.take(new).unwrap().read(), 3);
    });
}

/// Two slots on two shards: while the last read guard of a removed value
/// reclaims one, a store on another thread always finds the other (it is
/// free the whole time): the one inlined try at the home list, then the
/// rest of the pop, never miss it.
#[test]
fn a_store_never_misses_a_free_slot_while_a_guard_reclaims_the_other() {
    model(|| {
        let arena = SlotArena::new(2);
        let (first, first_state) = Probe::new(1);
        let old = arena.insert(first).unwrap();
        let guard_thread = {
            let arena = arena.clone();
            thread::spawn(move || {
                if let Ok(guard) = arena.get(old) {
                    assert_eq!(guard.read(), 1);
                }
            })
        };
        arena.remove(old).unwrap();
        let storer = {
            let arena = arena.clone();
            thread::spawn(move || {
                let (second, _) = Probe::new(2);
                let new = arena
                    .insert(second)
                    .unwrap_or_else(|_| panic!("a free slot was missed"));
                assert_eq!(arena.take(new).unwrap().read(), 2);
            })
        };
        guard_thread.join().unwrap();
        storer.join().unwrap();
        assert_eq!(first_state.drops(), 1, "the removed value was not dropped");
        assert_eq!(arena.len(), 0);
    });
}
