//! Real-thread checks of what the loom models cannot reach within their
//! preemption bound: many threads churning the free-list shards at once.
//!
//! The loom models (`loom-tests/tests/free_pool.rs`) show that a store is
//! never refused while a slot is free when one other thread moves slots
//! between shards. A store gives up only after a scan of every shard that
//! saw no list change, or after several scans raced by other threads'
//! frees and allocations (`free_pool.rs`, `RESCANS`); that second exit
//! needs more preemptions than loom explores, so here real threads churn
//! hard while each holds at most one slot, so that at every instant at
//! least one slot is free, and every store must succeed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use slotarena::SlotArena;

const THREADS: usize = 4;
const ROUNDS: usize = if cfg!(miri) { 100 } else { 200_000 };

#[test]
fn a_store_is_never_refused_while_a_slot_is_free() {
    // One slot more than threads: each thread holds at most one at a time.
    let arena = SlotArena::new(THREADS + 1);
    let refused = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (arena, refused, start) = (arena.clone(), refused.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for round in 0..ROUNDS {
                    match arena.insert((t, round)) {
                        Ok(token) => {
                            assert_eq!(*arena.get(token).unwrap(), (t, round));
                            arena.remove(token).unwrap();
                        }
                        Err(_) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(
        refused.load(Ordering::Relaxed),
        0,
        "stores refused while at least one slot was free"
    );
    assert_eq!(arena.len(), 0);
    // Quiescent: one thread can take every slot, whoever freed them.
    for n in 0..=THREADS {
        arena.insert((usize::MAX, n)).expect("exact capacity");
    }
}

#[test]
fn a_store_is_never_refused_while_slots_migrate_between_threads() {
    // Producers store and hand each token to their consumer, which removes
    // it, so every slot is freed to the consumer's shard and every store
    // steals. A rendezvous channel bounds what a pair holds to two slots
    // (one in the producer's hand, one in the consumer's); one slot more
    // than all pairs can hold is always free, on some shard.
    const PAIRS: usize = 2;
    const HANDOFFS: usize = if cfg!(miri) { 50 } else { 20_000 };
    let arena = SlotArena::new(2 * PAIRS + 1);
    let mut threads = Vec::new();
    for pair in 0..PAIRS {
        let (send, receive) = std::sync::mpsc::sync_channel(0);
        let producer = arena.clone();
        threads.push(thread::spawn(move || {
            for n in 0..HANDOFFS {
                let token = producer.insert((pair, n)).unwrap_or_else(|_| {
                    panic!("store {n} of pair {pair} refused with a slot free")
                });
                send.send((token, n)).unwrap();
            }
        }));
        let consumer = arena.clone();
        threads.push(thread::spawn(move || {
            for (token, n) in receive {
                assert_eq!(*consumer.get(token).unwrap(), (pair, n));
                consumer.remove(token).unwrap();
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(arena.len(), 0);
    for n in 0..=2 * PAIRS {
        arena.insert((usize::MAX, n)).expect("exact capacity");
    }
}

/// Vacant entries held, filled and dropped by real threads, with a thread
/// clearing the arena through `&self` meanwhile: no slot is lost or handed
/// out twice, every value drops exactly once, and a dropped entry's key
/// never reaches a value.
#[test]
fn vacant_entries_and_clear_race_without_loss_or_double_hand_out() {
    const ROUNDS: usize = if cfg!(miri) { 50 } else { 20_000 };
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    let arena = SlotArena::new(THREADS + 1);
    let made = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(THREADS + 1));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (arena, made, dropped, start) =
                (arena.clone(), made.clone(), dropped.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for round in 0..ROUNDS {
                    // Each thread holds at most one slot: the entry, or the
                    // value it became (until `clear` or its own remove).
                    let entry = arena
                        .vacant_entry()
                        .unwrap_or_else(|_| panic!("thread {t} refused with a slot free"));
                    let key = entry.key();
                    if round % 3 == 0 {
                        drop(entry);
                        assert!(
                            arena.get(key).is_err(),
                            "a dropped entry's key reached a value"
                        );
                        continue;
                    }
                    made.fetch_add(1, Ordering::Relaxed);
                    assert_eq!(entry.insert(Counted(dropped.clone())), key);
                    // `clear` may have removed it already.
                    let _ = arena.remove(key);
                }
            })
        })
        .collect();
    let clearer = {
        let arena = arena.clone();
        thread::spawn(move || {
            start.wait();
            for _ in 0..ROUNDS / 10 {
                arena.clear();
            }
        })
    };
    for worker in workers {
        worker.join().unwrap();
    }
    clearer.join().unwrap();
    assert_eq!(arena.len(), 0);
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        made.load(Ordering::Relaxed),
        "every value dropped exactly once"
    );
    // Quiescent: every slot is free for one thread.
    for n in 0..=THREADS {
        arena
            .insert(Counted(dropped.clone()))
            .unwrap_or_else(|_| panic!("slot {n} lost"));
    }
}
