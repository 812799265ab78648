//! Shard hints across threads that come and go: which shard a new thread
//! is given, hints handed back on every exit path, poisoning by a
//! never-reused identity, and exact counts across short-lived threads.
//! (From review R7; the two burst tests failed when hints were the lowest
//! free number, unbounded, masked to a shard.)
//!
//! A thread's home shard is seen from outside (`process/hints.rs`).
//! Hints are process-wide, so every test here takes `serial()`, and touches
//! arenas only from threads it spawns and joins (`JoinHandle::join` returns
//! after the thread's thread-local destructors ran, so its hint is back):
//! the libtest threads never hold a hint, and each test starts with no
//! hint held by anyone.

use std::cell::RefCell;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use slotarena::linear::SharedLinearMemory;
use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader, SlotArena};

#[path = "process/hints.rs"]
mod hints;

use hints::{home_shard, serial, shard_count};

/// A thread that took its hint (reported as its home shard) and holds it,
/// alive, until it is told to exit.
struct Live {
    shard: usize,
    exit: Sender<()>,
    handle: JoinHandle<()>,
}

impl Live {
    fn spawn() -> Live {
        let (shard_tx, shard_rx) = channel();
        let (exit, exit_rx) = channel::<()>();
        let handle = thread::spawn(move || {
            shard_tx.send(home_shard()).unwrap();
            let _ = exit_rx.recv();
        });
        // One at a time: each thread has its hint before the next starts.
        let shard = shard_rx.recv().unwrap();
        Live {
            shard,
            exit,
            handle,
        }
    }

    /// Ends the thread; its hint is back when this returns.
    fn exit(self) {
        drop(self.exit);
        self.handle.join().unwrap();
    }
}

/// The shard a newly spawned thread gets, after it has exited.
fn shard_of_a_new_thread() -> usize {
    thread::spawn(home_shard).join().unwrap()
}

// === which shard a new thread is given ===

/// `shards` threads alive at once from a clean
/// start each have a shard of their own.
#[test]
fn threads_up_to_the_shard_count_from_a_clean_start_have_shards_of_their_own() {
    let _serial = serial();
    let live: Vec<Live> = (0..shard_count()).map(|_| Live::spawn()).collect();
    let mut shards: Vec<usize> = live.iter().map(|t| t.shard).collect();
    live.into_iter().for_each(Live::exit);
    shards.sort_unstable();
    assert_eq!(shards, (0..shard_count()).collect::<Vec<_>>());
}

/// While no more threads live than there are shards, no two were given
/// one shard, however many came and went before. With hints the lowest
/// free number, unbounded, masked to a shard: a burst of `shards + 1` threads leaves its last thread on
/// number `shards`, shard 0; once the burst's other threads exit, the
/// next thread gets the lowest free number, 0, also shard 0. Two live
/// threads, one shard.
#[test]
fn the_next_thread_is_not_given_the_shard_of_a_survivor_of_a_burst() {
    let _serial = serial();
    let shards = shard_count();
    let mut burst: Vec<Live> = (0..=shards).map(|_| Live::spawn()).collect();
    let survivor = burst.pop().unwrap();
    burst.into_iter().for_each(Live::exit);
    let newcomer = Live::spawn();
    let (survivor_shard, newcomer_shard) = (survivor.shard, newcomer.shard);
    newcomer.exit();
    survivor.exit();
    assert_ne!(
        survivor_shard, newcomer_shard,
        "2 live threads share shard {survivor_shard} of {shards}"
    );
}

/// W5's shape: a long-lived producer that first touched its arena while
/// a pool of `shards` workers lived, and a consumer spawned per
/// repetition after the workers are gone. Every consumer lands on the
/// producer's shard, the bimodal case that recycling hints removes, on
/// every repetition (with hints the lowest free number, masked).
#[test]
fn later_threads_are_not_given_the_shard_of_a_producer_that_outlived_a_pool() {
    let _serial = serial();
    let shards = shard_count();
    let workers: Vec<Live> = (0..shards).map(|_| Live::spawn()).collect();
    let producer = Live::spawn();
    workers.into_iter().for_each(Live::exit);
    let consumers: Vec<usize> = (0..3).map(|_| shard_of_a_new_thread()).collect();
    let producer_shard = producer.shard;
    producer.exit();
    assert!(
        consumers.iter().all(|&c| c != producer_shard),
        "producer on shard {producer_shard} of {shards}, consumers on {consumers:?}"
    );
}

// === hints handed back on every exit path ===

/// A thread that panics hands its hint back: the next thread gets it.
#[test]
fn a_panicking_thread_hands_its_hint_back() {
    let _serial = serial();
    let (tx, rx) = channel();
    let panicked = thread::spawn(move || {
        tx.send(home_shard()).unwrap();
        panic!("after taking a hint");
    })
    .join();
    assert!(panicked.is_err());
    let first = rx.recv().unwrap();
    assert_eq!(shard_of_a_new_thread(), first);
}

/// Touches an arena for the first time from its destructor.
struct TouchOnDrop(Option<Sender<usize>>);

impl Drop for TouchOnDrop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(home_shard());
        }
    }
}

thread_local! {
    static TOUCH_ON_DROP: RefCell<TouchOnDrop> = const { RefCell::new(TouchOnDrop(None)) };
}

/// A thread whose first arena use is in another thread-local's
/// destructor (the crate's holder is registered during thread exit)
/// still hands its hint back.
#[test]
fn a_hint_first_taken_in_a_thread_local_destructor_is_handed_back() {
    let _serial = serial();
    let (tx, rx) = channel();
    thread::spawn(move || TOUCH_ON_DROP.with(|t| t.borrow_mut().0 = Some(tx)))
        .join()
        .unwrap();
    let in_destructor = rx.recv().unwrap();
    assert_eq!(shard_of_a_new_thread(), in_destructor);
}

/// A thread that exits while a guard it took lives on elsewhere hands its
/// hint back, and the guard still works and releases on the other thread.
#[test]
fn a_thread_that_exits_holding_an_owned_guard_hands_its_hint_back() {
    let _serial = serial();
    let arena = SlotArena::<u64>::new(16 * 64);
    let key = thread::spawn({
        let arena = arena.clone();
        move || arena.insert(1).unwrap()
    })
    .join()
    .unwrap();
    let (tx, rx) = channel();
    let (guard, shard) = thread::spawn({
        let arena = arena.clone();
        move || {
            let shard = home_shard();
            let guard = arena.get_mut_owned(key).unwrap();
            tx.send(()).unwrap();
            (guard, shard)
        }
    })
    .join()
    .unwrap();
    rx.recv().unwrap();
    assert_eq!(shard_of_a_new_thread(), shard);
    let next = thread::spawn(move || {
        let mut guard = guard;
        *guard += 1;
        drop(guard);
        (home_shard(), *arena.get(key).unwrap())
    })
    .join()
    .unwrap();
    assert_eq!(next, (shard, 2));
}

// === poisoning across threads that reuse a hint ===

/// On drop during unwinding, takes a write guard of `key` and sends it
/// away: a guard seen only while its thread was already panicking.
struct GuardInUnwind {
    arena: SlotArena<u64>,
    key: slotarena::MessageToken,
    out: Sender<(slotarena::arena::OwnedWriteGuard<u64>, usize)>,
}

impl Drop for GuardInUnwind {
    fn drop(&mut self) {
        assert!(thread::panicking());
        let guard = self.arena.get_mut_owned(self.key).unwrap();
        let _ = self.out.send((guard, home_shard()));
    }
}

/// A guard made while thread A unwinds (seen only panicking), A exits,
/// and a new thread B on A's old hint panics with it, untouched: the
/// guard moved unseen, so it poisons, as it did when hints were never
/// reused. Had poisoning kept comparing hints, B would pass for A and the
/// value would not be poisoned.
#[test]
fn a_guard_from_an_exited_thread_poisons_on_the_thread_that_got_its_hint() {
    let _serial = serial();
    let arena = SlotArena::<u64>::new(16 * 64);
    let key = thread::spawn({
        let arena = arena.clone();
        move || arena.insert(7).unwrap()
    })
    .join()
    .unwrap();
    let (out, guards) = channel();
    let a = thread::spawn({
        let arena = arena.clone();
        move || {
            let _on_unwind = GuardInUnwind { arena, key, out };
            panic!("A unwinds");
        }
    })
    .join();
    assert!(a.is_err());
    let (guard, shard_of_a) = guards.recv().unwrap();
    let (tx, rx) = channel();
    let b = thread::spawn(move || {
        tx.send(home_shard()).unwrap();
        let _guard = guard;
        panic!("B panics holding the guard");
    })
    .join();
    assert!(b.is_err());
    assert_eq!(rx.recv().unwrap(), shard_of_a, "B took A's old hint");
    let read = thread::spawn(move || arena.get(key).map(|v| *v).err())
        .join()
        .unwrap();
    assert_eq!(read, Some(MemoryError::Poisoned));
}

/// The same guard dropped by the thread that made it while unwinding,
/// still unwinding: no poison (seen only panicking, on that thread).
#[test]
fn a_guard_made_and_dropped_in_one_unwinding_does_not_poison() {
    let _serial = serial();
    let arena = SlotArena::<u64>::new(16 * 64);
    let key = thread::spawn({
        let arena = arena.clone();
        move || arena.insert(7).unwrap()
    })
    .join()
    .unwrap();
    struct MakeAndDrop(SlotArena<u64>, slotarena::MessageToken);
    impl Drop for MakeAndDrop {
        fn drop(&mut self) {
            let mut guard = self.0.get_mut_owned(self.1).unwrap();
            *guard = 8;
        }
    }
    let a = thread::spawn({
        let arena = arena.clone();
        move || {
            let _on_unwind = MakeAndDrop(arena, key);
            panic!("A unwinds");
        }
    })
    .join();
    assert!(a.is_err());
    let read = thread::spawn(move || arena.get(key).map(|v| *v))
        .join()
        .unwrap();
    assert_eq!(read, Ok(8));
}

// === exact capacity and counters with short-lived threads ===

/// Short-lived threads free into their shards and exit; a new thread on
/// a recycled hint, and a long-lived one on another, refill every freed
/// slot, never answering full.
#[test]
fn short_lived_freers_never_hide_room_from_the_arena() {
    let _serial = serial();
    let capacity = 16 * 64;
    let arena = SlotArena::<u32>::new(capacity);
    let keys: Vec<_> = thread::spawn({
        let arena = arena.clone();
        move || {
            (0..capacity as u32)
                .map(|v| arena.insert(v).unwrap())
                .collect()
        }
    })
    .join()
    .unwrap();
    let keys = Arc::new(Mutex::new(keys));
    let (refill_tx, refill_rx) = channel::<usize>();
    let (done_tx, done_rx) = channel::<Vec<slotarena::MessageToken>>();
    let long_lived = thread::spawn({
        let arena = arena.clone();
        move || {
            let _ = home_shard();
            for n in refill_rx {
                let got: Vec<_> = (0..n).map(|i| arena.insert(i as u32)).collect();
                let got: Vec<_> = got
                    .into_iter()
                    .map(|r| r.map_err(|e| e.to_string()).unwrap())
                    .collect();
                done_tx.send(got).unwrap();
            }
        }
    });
    for round in 0..200 {
        let n = 1 + round % 7;
        let freed: Vec<_> = keys.lock().unwrap().drain(..n * 2).collect();
        let (first, second) = freed.split_at(n);
        for half in [first.to_vec(), second.to_vec()] {
            let arena = arena.clone();
            thread::spawn(move || half.into_iter().for_each(|k| arena.remove(k).unwrap()))
                .join()
                .unwrap();
        }
        // A new thread (recycled hint) takes one half, the old one the other.
        let fresh: Vec<_> = thread::spawn({
            let arena = arena.clone();
            move || {
                (0..n)
                    .map(|i| arena.insert(i as u32).map_err(|e| e.to_string()).unwrap())
                    .collect::<Vec<_>>()
            }
        })
        .join()
        .unwrap();
        refill_tx.send(n).unwrap();
        let old = done_rx.recv().unwrap();
        let full = thread::spawn({
            let arena = arena.clone();
            move || arena.insert(0).is_err()
        });
        assert!(full.join().unwrap(), "round {round}: full again");
        keys.lock().unwrap().extend(fresh.into_iter().chain(old));
    }
    drop(refill_tx);
    long_lived.join().unwrap();
    assert_eq!(arena.len(), capacity);
}

/// The manager's `available()` stays exact across short-lived threads.
#[test]
fn short_lived_threads_keep_the_managers_count_exact() {
    let _serial = serial();
    let manager = ConcurrentMemoryManager::<u64>::new(64);
    let mut live = Vec::new();
    for round in 0..300u64 {
        let token = thread::spawn({
            let manager = manager.clone();
            move || {
                manager
                    .store_shared(Message::new(MessageHeader::empty(), round))
                    .unwrap()
            }
        })
        .join()
        .unwrap();
        live.push(token);
        if live.len() == 64 {
            // Free on one short-lived thread each, then fill from new ones.
            for token in live.drain(..) {
                let manager = manager.clone();
                thread::spawn(move || manager.free_shared(token).unwrap())
                    .join()
                    .unwrap();
            }
            assert_eq!(manager.available(), 64, "round {round}");
        }
    }
    assert_eq!(manager.available(), 64 - live.len());
}

/// The linear memory's byte counters (sharded by hint) sum exactly when
/// blocks are allocated and freed on short-lived threads on recycled
/// hints, each free on another thread than its allocation.
#[test]
fn short_lived_threads_keep_allocated_bytes_exact() {
    let _serial = serial();
    let memory = SharedLinearMemory::new(1, 4).unwrap();
    let blocks: Arc<Mutex<Vec<(u32, u32)>>> = Arc::default();
    let mut expected = 0u64;
    for round in 0..200u32 {
        let len = [8, 24, 100, 600, 4096][round as usize % 5];
        let ptr = thread::spawn({
            let memory = memory.clone();
            move || memory.controller().alloc(len).unwrap()
        })
        .join()
        .unwrap();
        blocks.lock().unwrap().push((ptr, len));
        expected += u64::from(len);
        if round % 3 == 2 {
            let (ptr, len) = blocks.lock().unwrap().remove(0);
            let memory = memory.clone();
            thread::spawn(move || memory.controller().free(ptr, len).unwrap())
                .join()
                .unwrap();
            expected -= u64::from(len);
        }
        assert_eq!(memory.allocated_bytes(), expected, "round {round}");
    }
}
