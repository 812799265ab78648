//! The free pool as it ships: per-thread shards of free lists with
//! stealing, through `SlotArena` (two shards under loom; see the crate docs
//! for which loom thread has which home shard). Checks exact capacity (a
//! store is never told "full" while a slot is free, whichever shard or
//! list holds it, also while a thief flips a shard's two lists) and that
//! stealing never hands an index out twice.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;
use slotarena::{MessageToken, SlotArena};
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
    // slots is free for whoever stores. In the second run thread 1 moves
    // home between its rounds (onto main's shard 0, as a thread that met
    // another on its shard does): its first free sits on shard 1, which
    // its second store no longer tries first, and it may take main's
    // freed slot from shard 0 instead; main's full look must still find
    // the slot left on shard 1 (a look confirmed by loads could miss it:
    // mutation `free_list_snapshot_load`).
    for moves in [false, true] {
        model(move || {
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
                        if moves && id == 10 {
                            slotarena::__loom::rehome();
                        }
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
                // Quiescent, one slot is free: the given-back one, or the
                // other if main's store took the given-back one (a store
                // that met the reserver on shard 0 moves to shard 1).
                let (value, _) = Probe::new(2);
                let second = arena
                    .insert(value)
                    .unwrap_or_else(|_| panic!("main refused the free slot"));
                assert_ne!(second.index(), mine.index(), "a live slot handed out");
                assert!(
                    arena.get(key).is_err(),
                    "a dropped entry's key reached a value"
                );
                assert_eq!(arena.get(second).unwrap().read(), 2);
            }
        });
    }
}

#[test]
fn a_thief_that_flips_a_shards_lists_never_hides_a_free_slot() {
    // Both slots start on shard 0's hot list. Thread 1 (shard 1) stores:
    // it finds shard 0's cold list empty, takes from the hot list and
    // flips the two, which races main (shard 0) storing, freeing (onto
    // whichever list it read as hot) and storing again. Whichever list each
    // touches, no store is refused while a slot is free, no slot is handed
    // out twice, and once quiescent the arena is exactly full.
    model(|| {
        let arena = SlotArena::new(2);
        let thief = {
            let arena = arena.clone();
            thread::spawn(move || {
                let (value, _) = Probe::new(10);
                arena
                    .insert(value)
                    .unwrap_or_else(|_| panic!("thread 1 refused with a slot free"))
            })
        };
        let (value, _) = Probe::new(1);
        let first = arena
            .insert(value)
            .unwrap_or_else(|_| panic!("main refused with a slot free"));
        arena.remove(first).unwrap();
        let (value, _) = Probe::new(2);
        let mine = arena
            .insert(value)
            .unwrap_or_else(|_| panic!("main refused the slot it freed"));
        let theirs = thief.join().unwrap();
        assert_ne!(mine.index(), theirs.index(), "one index handed out twice");
        assert_eq!(arena.get(mine).unwrap().read(), 2);
        assert_eq!(arena.get(theirs).unwrap().read(), 10);
        let (value, _) = Probe::new(3);
        assert!(arena.insert(value).is_err(), "more values than slots");
        // Quiescent: the slot thread 1 held, freed by main, comes back.
        arena.remove(theirs).unwrap();
        let (value, _) = Probe::new(4);
        arena
            .insert(value)
            .unwrap_or_else(|_| panic!("main refused the last free slot"));
    });
}

#[test]
fn a_producer_batching_a_consumers_frees_is_never_refused_while_a_slot_is_free() {
    // W5 in miniature. Thread 1 (shard 1) produces: it stores x (stealing
    // from shard 0 and flipping its lists), hands x to main, then stores y.
    // Main (shard 0) consumes: it frees x onto its hot list, whichever that
    // is by now, and stores w. At each store at least one slot is free, on
    // one of shard 0's two lists: neither store may be refused.
    model(|| {
        let arena = SlotArena::new(2);
        let handoff = Arc::new(AtomicU64::new(u64::MAX));
        let producer = {
            let (arena, handoff) = (arena.clone(), handoff.clone());
            thread::spawn(move || {
                let (value, _) = Probe::new(10);
                let x = arena
                    .insert(value)
                    .unwrap_or_else(|_| panic!("thread 1 refused with a slot free"));
                handoff.store(x.to_bits(), Ordering::Release);
                let (value, _) = Probe::new(11);
                arena
                    .insert(value)
                    .unwrap_or_else(|_| panic!("thread 1 refused its second slot"))
            })
        };
        let x = loop {
            match handoff.load(Ordering::Acquire) {
                u64::MAX => thread::yield_now(),
                bits => break MessageToken::from_bits(bits),
            }
        };
        assert_eq!(arena.take(x).unwrap().read(), 10);
        let (value, _) = Probe::new(1);
        let w = arena
            .insert(value)
            .unwrap_or_else(|_| panic!("main refused with a slot free"));
        let y = producer.join().unwrap();
        assert_ne!(w.index(), y.index(), "one index handed out twice");
        assert_eq!(arena.get(w).unwrap().read(), 1);
        assert_eq!(arena.get(y).unwrap().read(), 11);
    });
}
