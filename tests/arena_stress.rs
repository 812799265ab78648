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

/// W5's shape: producers store and send keys over a bounded channel,
/// consumers read and free them. A consumer frees onto its own shard, so
/// the producers' stores steal those slots back in batches (a shard's two
/// lists flip). Each store happens while at least one slot is free (the
/// channel holds at most `BOUND` keys, each consumer one, each other
/// producer one in hand), so none may be refused; once quiescent, one
/// thread takes every slot and no more.
#[test]
fn producers_batching_consumers_frees_are_never_refused_and_capacity_stays_exact() {
    use std::sync::mpsc::sync_channel;
    const BOUND: usize = 8;
    const MESSAGES: usize = if cfg!(miri) { 200 } else { 200_000 };
    for (producers, consumers) in [(1, 1), (2, 2)] {
        let capacity = BOUND + consumers + producers;
        let arena = SlotArena::new(capacity);
        let (tx, rx) = sync_channel::<slotarena::MessageToken>(BOUND);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let consumed = Arc::new(AtomicUsize::new(0));
        let consumer_threads: Vec<_> = (0..consumers)
            .map(|_| {
                let (arena, rx, consumed) = (arena.clone(), rx.clone(), consumed.clone());
                thread::spawn(move || {
                    loop {
                        // The lock is held only to receive, so a consumer
                        // holds at most one key while it reads and frees.
                        let Ok(key) = rx.lock().unwrap().recv() else {
                            break;
                        };
                        let (p, n) = *arena.get(key).unwrap();
                        assert!(p < producers && n < MESSAGES, "{p} {n}");
                        arena.remove(key).unwrap();
                        consumed.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let producer_threads: Vec<_> = (0..producers)
            .map(|p| {
                let (arena, tx) = (arena.clone(), tx.clone());
                thread::spawn(move || {
                    for n in 0..MESSAGES {
                        let key = arena.insert((p, n)).unwrap_or_else(|_| {
                            panic!("store {n} of producer {p} refused with a slot free")
                        });
                        tx.send(key).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for producer in producer_threads {
            producer.join().unwrap();
        }
        for consumer in consumer_threads {
            consumer.join().unwrap();
        }
        assert_eq!(consumed.load(Ordering::Relaxed), producers * MESSAGES);
        assert_eq!(arena.len(), 0);
        // Quiescent: this thread takes every slot, whichever lists the
        // consumers' frees and the producers' flips left them on.
        for n in 0..capacity {
            arena.insert((usize::MAX, n)).expect("exact capacity");
        }
        assert!(
            arena.insert((usize::MAX, capacity)).is_err(),
            "more than capacity"
        );
    }
}
