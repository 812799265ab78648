//! The free pool as it ships: per-thread shards of free lists with
//! stealing, through `SlotArena` (two shards under loom; see the crate docs
//! for which loom thread has which home shard). Checks exact capacity (a
//! store is never told "full" while a slot is free, whichever shard holds
//! it) and that stealing never hands an index out twice.
#![cfg(loom)]

use loom::thread;
use slotarena::SlotArena;
use slotarena_loom_tests::{Probe, model};

#[test]
fn a_store_succeeds_while_another_thread_moves_slots_to_its_own_shard() {
    // Two slots, both on shard 0 (main's). Thread 1 (shard 1) steals one
    // from shard 0 and frees it to shard 1, so one slot is always free for
    // main, on one list or the other: main's store must never be refused.
    // (Before v2, a steal took shard 0's whole chain, putting every free
    // slot on no list for a moment.)
    model(|| {
        let arena = SlotArena::new(2);
        let churner = {
            let arena = arena.clone();
            thread::spawn(move || {
                let (value, state) = Probe::new(1);
                let token = arena
                    .insert(value)
                    .unwrap_or_else(|_| panic!("thread 1 refused with a slot free"));
                arena.remove(token).unwrap();
                assert_eq!(state.drops(), 1);
            })
        };
        let (value, _) = Probe::new(2);
        let mine = arena
            .insert(value)
            .unwrap_or_else(|_| panic!("main refused with a slot free"));
        churner.join().unwrap();
        // Quiescent, one slot free wherever thread 1 left it: main gets it.
        let (value, _) = Probe::new(3);
        let second = arena
            .insert(value)
            .unwrap_or_else(|_| panic!("main refused the last free slot"));
        assert_ne!(mine.index(), second.index());
        assert_eq!(arena.get(mine).unwrap().read(), 2);
        assert_eq!(arena.get(second).unwrap().read(), 3);
        assert_eq!(arena.len(), 2);
    });
}

#[test]
fn two_threads_stealing_from_a_third_threads_shard_never_share_an_index() {
    model(|| {
        let arena = SlotArena::new(2);
        // Thread 1 (shard 1) takes both slots from shard 0 and frees them
        // to its own shard, then ends: every free slot is on shard 1.
        {
            let arena = arena.clone();
            thread::spawn(move || {
                let (a, _) = Probe::new(10);
                let (b, _) = Probe::new(11);
                let refused = |_| panic!("thread 1 refused with a slot free");
                let a = arena.insert(a).unwrap_or_else(refused);
                let b = arena.insert(b).unwrap_or_else(refused);
                arena.remove(a).unwrap();
                arena.remove(b).unwrap();
            })
            .join()
            .unwrap();
        }
        // Thread 2 and main both have shard 0, which is empty: both steal.
        let thief = {
            let arena = arena.clone();
            thread::spawn(move || {
                let (value, _) = Probe::new(2);
                let token = arena
                    .insert(value)
                    .unwrap_or_else(|_| panic!("thread 2 refused with a slot free"));
                (token, arena.get(token).unwrap().read())
            })
        };
        let (value, _) = Probe::new(1);
        let mine = arena
            .insert(value)
            .unwrap_or_else(|_| panic!("main refused with a slot free"));
        let (theirs, their_read) = thief.join().unwrap();
        assert_ne!(mine.index(), theirs.index(), "one index handed out twice");
        assert_eq!(their_read, 2);
        assert_eq!(arena.get(mine).unwrap().read(), 1);
        assert_eq!(arena.get(theirs).unwrap().read(), 2);
    });
}

#[test]
fn a_thread_churning_twice_never_starves_another_of_the_free_slot() {
    // As above, with two rounds on each side: main's slots go back to
    // shard 0, thread 1's to shard 1, and at every moment one of the two
    // slots is free for whoever stores.
    model(|| {
        let arena = SlotArena::new(2);
        let churner = {
            let arena = arena.clone();
            thread::spawn(move || {
                for id in [10, 11] {
                    let (value, _) = Probe::new(id);
                    let token = arena
                        .insert(value)
                        .unwrap_or_else(|_| panic!("thread 1 refused with a slot free"));
                    arena.remove(token).unwrap();
                }
            })
        };
        for id in [1, 2] {
            let (value, _) = Probe::new(id);
            let token = arena
                .insert(value)
                .unwrap_or_else(|_| panic!("main refused with a slot free"));
            assert_eq!(arena.take(token).unwrap().read(), id);
        }
        churner.join().unwrap();
        assert_eq!(arena.len(), 0);
    });
}

#[test]
fn a_vacant_entry_stolen_and_given_back_is_never_handed_out_twice() {
    // Thread 1 (shard 1) reserves a slot (stealing it from shard 0), then
    // either fills it or drops the entry, which pushes the slot to shard 1
    // with its generation moved on. Main stores meanwhile and after: it is
    // never refused while a slot is free, no slot is handed out twice, and
    // the dropped entry's key never reaches a value.
    for fill in [false, true] {
        model(move || {
            let arena = SlotArena::new(2);
            let reserver = {
                let arena = arena.clone();
                thread::spawn(move || {
                    let entry = arena
                        .vacant_entry()
                        .unwrap_or_else(|_| panic!("thread 1 refused with a slot free"));
                    let key = entry.key();
                    if fill {
                        let (value, _) = Probe::new(10);
                        assert_eq!(entry.insert(value), key);
                    } else {
                        drop(entry);
                    }
                    key
                })
            };
            let (value, _) = Probe::new(1);
            let mine = arena
                .insert(value)
                .unwrap_or_else(|_| panic!("main refused with a slot free"));
            let key = reserver.join().unwrap();
            assert_ne!(mine, key, "a reserved slot was handed out twice");
            assert_eq!(arena.get(mine).unwrap().read(), 1);
            if fill {
                assert_eq!(arena.get(key).unwrap().read(), 10);
                assert_eq!(arena.len(), 2);
            } else {
                // Quiescent, the given-back slot is free on shard 1.
                let (value, _) = Probe::new(2);
                let second = arena
                    .insert(value)
                    .unwrap_or_else(|_| panic!("main refused the given-back slot"));
                assert_eq!(second.index(), key.index());
                assert!(
                    arena.get(key).is_err(),
                    "a dropped entry's key reached a value"
                );
                assert_eq!(arena.get(second).unwrap().read(), 2);
            }
        });
    }
}
