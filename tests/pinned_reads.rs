//! Pinned reads (`SlotArena::reader`): one promise of `Reader`/`PinnedRef`
//! per test, then stress tests under real threads.

mod support;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Duration;

use slotarena::arena::PinnedRef;
use slotarena::{MemoryError, MessageToken, SlotArena, TakeError};
use support::within;

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

/// How long a test lets a thread that must wait try to get through.
const SHOULD_WAIT: Duration = Duration::from_millis(100);
/// How long a thread that must get through may take.
const MUST_FINISH: Duration = Duration::from_secs(10);

#[test]
fn a_pinned_read_answers_every_error_as_try_get_does() {
    let arena = SlotArena::new(2);
    let mut reader = arena.reader();
    assert_eq!(
        reader.try_get(MessageToken::new(7, 0)).err(),
        Some(MemoryError::BadToken)
    );
    let key = arena.insert(1).unwrap();
    assert_eq!(*reader.try_get(key).unwrap(), 1);
    assert_eq!(PinnedRef::key(&reader.get(key).unwrap()), key);
    let writer = arena.get_mut(key).unwrap();
    assert_eq!(
        reader.try_get(key).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    drop(writer);
    arena.remove(key).unwrap();
    assert_eq!(reader.try_get(key).err(), Some(MemoryError::NotAllocated));
    assert_eq!(reader.get(key).err(), Some(MemoryError::NotAllocated));
    let newer = arena.insert(2).unwrap();
    assert_eq!(newer.index(), key.index());
    assert_eq!(reader.try_get(key).err(), Some(MemoryError::StaleToken));
    let poisoned = arena.insert(3).unwrap();
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _writer = arena.get_mut(poisoned).unwrap();
        panic!("poison the value");
    }));
    assert_eq!(reader.try_get(poisoned).err(), Some(MemoryError::Poisoned));
    assert_eq!(reader.get(poisoned).err(), Some(MemoryError::Poisoned));
}

slotarena::new_key_type! { struct Id; }

#[test]
fn a_pinned_ref_answers_the_arenas_key_type() {
    let arena: SlotArena<u8, Id> = SlotArena::with_key(2);
    let id: Id = arena.insert(4).unwrap();
    let mut reader = arena.reader();
    let pinned = reader.get(id).unwrap();
    let key: Id = PinnedRef::key(&pinned);
    assert_eq!((key, *pinned), (id, 4));
}

#[test]
fn a_reader_keeps_a_handle_so_exclusive_access_waits_for_its_drop() {
    let mut arena = SlotArena::new(1);
    let key = arena.insert(1).unwrap();
    let reader = arena.reader();
    assert!(arena.exclusive().is_none(), "a reader is a handle");
    drop(reader);
    assert_eq!(arena.exclusive().unwrap().get_mut(key), Ok(&mut 1));
}

#[test]
fn try_forms_refuse_a_pinned_value_and_change_nothing() {
    let arena = SlotArena::new(1);
    let key = arena.insert(String::from("pinned")).unwrap();
    let mut reader = arena.reader();
    let pinned = reader.try_get(key).unwrap();
    assert_eq!(
        arena.try_get_mut(key).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    assert_eq!(
        arena.try_get_mut_owned(key).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    assert_eq!(
        arena.try_take(key),
        Err(TakeError::Refused(MemoryError::BorrowActive))
    );
    // Nothing changed: readers, the key and the value are all still there.
    assert_eq!(*arena.try_get(key).unwrap(), "pinned");
    assert_eq!(*pinned, "pinned");
    assert!(arena.contains(key));
    drop(pinned);
    arena.try_get_mut(key).unwrap().push('!');
    assert_eq!(arena.try_take(key).unwrap(), "pinned!");
}

#[test]
fn remove_never_waits_for_a_pinned_reader_and_the_last_one_drops_the_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(1);
    let key = arena.insert(counted(&drops, 5)).unwrap();
    let (mut first, mut second) = (arena.reader(), arena.reader());
    let one = first.get(key).unwrap();
    let two = second.get(key).unwrap();
    arena.remove(key).unwrap();
    assert!(!arena.contains(key));
    assert_eq!(arena.get(key).err(), Some(MemoryError::NotAllocated));
    assert_eq!((one.id, two.id), (5, 5), "a removed value stays readable");
    assert_eq!(arena.len(), 1, "the value holds its slot for its readers");
    drop(one);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(two);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(arena.len(), 0);
    arena.insert(counted(&drops, 6)).unwrap();
}

#[test]
fn a_removed_value_held_by_a_guard_and_a_pin_is_dropped_by_whichever_lets_go_last() {
    for guard_last in [false, true] {
        let drops = Arc::new(AtomicUsize::new(0));
        let arena = SlotArena::new(1);
        let key = arena.insert(counted(&drops, 1)).unwrap();
        let mut reader = arena.reader();
        let pinned = reader.get(key).unwrap();
        let guard = arena.get(key).unwrap();
        arena.remove(key).unwrap();
        if guard_last {
            drop(pinned);
            assert_eq!(drops.load(Ordering::SeqCst), 0);
            drop(guard);
        } else {
            drop(guard);
            assert_eq!(drops.load(Ordering::SeqCst), 0);
            drop(pinned);
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1, "guard_last {guard_last}");
        assert!(arena.is_empty());
        arena.insert(counted(&drops, 2)).unwrap();
    }
}

#[test]
fn a_failed_pin_of_a_removed_value_leaves_its_drop_to_nobody_else() {
    // A pin attempt that finds the value removed still announced itself in
    // its record; the value must be dropped exactly once all the same.
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(1);
    let key = arena.insert(counted(&drops, 1)).unwrap();
    let mut reader = arena.reader();
    let mut other = arena.reader();
    let pinned = reader.get(key).unwrap();
    arena.remove(key).unwrap();
    assert_eq!(other.try_get(key).err(), Some(MemoryError::NotAllocated));
    drop(pinned);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(arena.is_empty());
}

#[test]
fn get_mut_and_take_wait_for_a_pinned_reader() {
    let arena = SlotArena::new(1);
    let key = arena.insert(1u64).unwrap();
    let mut reader = arena.reader();
    let pinned = reader.get(key).unwrap();
    let (done, finished) = mpsc::channel();
    let writer = {
        let arena = arena.clone();
        thread::spawn(move || {
            *arena.get_mut(key).unwrap() += 1;
            done.send("write").unwrap();
            let taken = arena.take(key).unwrap();
            done.send("take").unwrap();
            taken
        })
    };
    assert!(
        finished.recv_timeout(SHOULD_WAIT).is_err(),
        "get_mut ran beside a pinned read"
    );
    assert_eq!(*pinned, 1);
    drop(pinned);
    assert_eq!(finished.recv_timeout(MUST_FINISH), Ok("write"));
    assert_eq!(finished.recv_timeout(MUST_FINISH), Ok("take"));
    assert_eq!(writer.join().unwrap(), 2);

    // `take` alone, too.
    let key = arena.insert(7).unwrap();
    let pinned = reader.get(key).unwrap();
    let taker = {
        let arena = arena.clone();
        thread::spawn(move || arena.take(key).unwrap())
    };
    thread::sleep(SHOULD_WAIT);
    assert!(!taker.is_finished(), "take moved a pinned value out");
    assert_eq!(*pinned, 7);
    drop(pinned);
    assert_eq!(within(MUST_FINISH, move || taker.join().unwrap()), 7);
}

#[test]
fn retain_waits_for_a_pinned_reader_before_it_drops_a_value() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena = SlotArena::new(2);
    let key = arena.insert(counted(&drops, 1)).unwrap();
    let mut reader = arena.reader();
    let pinned = reader.get(key).unwrap();
    let retaining = {
        let arena = arena.clone();
        thread::spawn(move || arena.retain(|_, _| false))
    };
    thread::sleep(SHOULD_WAIT);
    assert!(!retaining.is_finished(), "retain ran beside a pinned read");
    assert_eq!((pinned.id, drops.load(Ordering::SeqCst)), (1, 0));
    drop(pinned);
    within(MUST_FINISH, move || retaining.join().unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(arena.is_empty());
}

#[test]
fn reader_get_waits_for_a_writer_then_reads_its_write() {
    let arena = SlotArena::new(1);
    let key = arena.insert(1u64).unwrap();
    let mut guard = arena.get_mut(key).unwrap();
    let reading = {
        let arena = arena.clone();
        thread::spawn(move || *arena.reader().get(key).unwrap())
    };
    thread::sleep(SHOULD_WAIT);
    assert!(!reading.is_finished(), "a pinned read ran beside a writer");
    *guard = 2;
    drop(guard);
    assert_eq!(within(MUST_FINISH, move || reading.join().unwrap()), 2);
}

#[test]
fn an_async_write_lock_lets_its_executor_run_while_a_value_is_pinned() {
    let arena = SlotArena::new(1);
    let key = arena.insert(1u64).unwrap();
    let mut reader = arena.reader();
    let pinned = reader.get(key).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (writer_arena, ticks) = (arena.clone(), Arc::new(AtomicU64::new(0)));
    let counter = Arc::clone(&ticks);
    let (write_done, wrote) = mpsc::channel();
    let executor = thread::spawn(move || {
        runtime.block_on(async move {
            // A second task on the one executor thread: it only advances if
            // the write lock's wait hands the thread back.
            let ticker = tokio::spawn(async move {
                loop {
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            });
            let mut guard = writer_arena.get_mut_owned_async(key).await.unwrap();
            *guard += 1;
            drop(guard);
            ticker.abort();
            write_done.send(()).unwrap();
        });
    });
    assert!(wrote.recv_timeout(SHOULD_WAIT).is_err());
    assert!(ticks.load(Ordering::SeqCst) > 1, "the executor was blocked");
    drop(pinned);
    wrote.recv_timeout(MUST_FINISH).unwrap();
    executor.join().unwrap();
    assert_eq!(*arena.get(key).unwrap(), 2);
}

const STRESS_ROUNDS: u64 = if cfg!(miri) { 50 } else { 50_000 };

/// Many words that a writer sets one at a time: a read beside a write
/// sees some of them new and some old.
#[derive(Debug)]
struct Pair([u64; 8]);

impl Pair {
    fn set(&mut self, n: u64) {
        for word in &mut self.0 {
            *word = black_box(n);
        }
    }

    fn consistent(&self) -> bool {
        self.0.iter().all(|&word| word == self.0[0])
    }
}

#[test]
fn pinned_readers_never_see_a_value_half_written() {
    let arena = SlotArena::new(8);
    let keys: Vec<_> = (0..4)
        .map(|_| arena.insert(Pair([0; 8])).unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let torn = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(3));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (arena, keys, stop, torn, start) = (
                arena.clone(),
                keys.clone(),
                stop.clone(),
                torn.clone(),
                start.clone(),
            );
            thread::spawn(move || {
                let mut reader = arena.reader();
                start.wait();
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for &key in &keys {
                        let pair = reader.get(key).unwrap();
                        if !pair.consistent() {
                            torn.fetch_add(1, Ordering::Relaxed);
                        }
                        reads += 1;
                    }
                }
                reads
            })
        })
        .collect();
    start.wait();
    for round in 1..=STRESS_ROUNDS {
        let key = keys[(round % 4) as usize];
        if round % 3 == 0 {
            if let Ok(mut guard) = arena.try_get_mut(key) {
                guard.set(round);
            }
        } else {
            arena.get_mut(key).unwrap().set(round);
        }
        if round.is_multiple_of(64) {
            // On one core (`taskset -c 0`), let the readers run meanwhile.
            thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
    assert_eq!(torn.load(Ordering::Relaxed), 0, "of {reads} pinned reads");
}

#[test]
fn removes_racing_pinned_readers_drop_every_value_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let arena: SlotArena<Counted> = SlotArena::new(4);
    // The key the readers chase: the latest value inserted.
    let latest = Arc::new(AtomicU64::new(MessageToken::INVALID.to_bits()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(3));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (arena, latest, stop, start) =
                (arena.clone(), latest.clone(), stop.clone(), start.clone());
            thread::spawn(move || {
                let mut reader = arena.reader();
                start.wait();
                let mut hits = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = MessageToken::from_bits(latest.load(Ordering::Relaxed));
                    if let Ok(value) = reader.try_get(key) {
                        assert_eq!(u64::from(key.generation()), value.id);
                        hits += 1;
                    }
                }
                hits
            })
        })
        .collect();
    start.wait();
    let mut inserted = 0usize;
    for _ in 0..STRESS_ROUNDS {
        // The slot is free again once its last reader lets go.
        let key = loop {
            let generation_guess = inserted as u64;
            match arena.insert(counted(&drops, generation_guess)) {
                Ok(key) => break key,
                Err(refused) => {
                    // Dropping the refused value counts too.
                    inserted += 1;
                    drop(refused);
                    thread::yield_now();
                }
            }
        };
        inserted += 1;
        // Ids match the generation so a reader can check it reads its key's
        // value: fix the id up now, under the write lock.
        arena.get_mut(key).unwrap().id = u64::from(key.generation());
        latest.store(key.to_bits(), Ordering::Relaxed);
        if inserted.is_multiple_of(64) {
            thread::yield_now();
        }
        arena.remove(key).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let hits: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(
        hits > 0,
        "the readers never pinned a value: the race was not run"
    );
    assert_eq!(drops.load(Ordering::SeqCst), inserted, "{hits} pinned hits");
    assert!(arena.is_empty());
}

/// Drops of `Tallied` values: a plain static, so that a value dropped
/// twice only counts twice (no heap handle to free twice).
static TALLY_DROPS: AtomicUsize = AtomicUsize::new(0);

struct Tallied;

impl Drop for Tallied {
    fn drop(&mut self) {
        TALLY_DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_failed_pin_racing_the_last_read_guard_of_a_removed_value_drops_it_once() {
    // The last read guard of a removed value unlocks with a `fetch_sub`
    // that leaves the word "removed, no guard, no writer" for a moment
    // before it stores `WRITER` (`Slot::after_last_reader`): the word that
    // means "drop pending" to an unpinning reader. A reader whose pin of
    // the dead key fails, in that moment, claims the drop, and so does the
    // guard. Loom model of the same name in loom-tests.
    let arena: SlotArena<Tallied> = SlotArena::new(1);
    let latest = Arc::new(AtomicU64::new(MessageToken::INVALID.to_bits()));
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let (arena, latest, stop) = (arena.clone(), latest.clone(), stop.clone());
        thread::spawn(move || {
            let mut reader = arena.reader();
            while !stop.load(Ordering::Relaxed) {
                let key = MessageToken::from_bits(latest.load(Ordering::Relaxed));
                drop(black_box(reader.try_get(key)));
            }
        })
    };
    // Every value made is dropped exactly once: those inserted, and those
    // a refused insert handed back (dropped with its error).
    let (mut inserted, mut made) = (0, 0);
    let mut refused = None;
    for _ in 0..200_000 {
        // A failed pin may hold up the last drop for a moment (then the
        // spinner does it): wait for the slot, but not for ever.
        let deadline = std::time::Instant::now() + MUST_FINISH;
        let key = loop {
            made += 1;
            match arena.insert(Tallied) {
                Ok(key) => break Some(key),
                Err(_) if std::time::Instant::now() < deadline => thread::yield_now(),
                Err(error) => {
                    refused = Some(format!("{error:?}"));
                    break None;
                }
            }
        };
        let Some(key) = key else { break };
        inserted += 1;
        let guard = arena.get(key).unwrap();
        arena.remove(key).unwrap();
        latest.store(key.to_bits(), Ordering::Relaxed);
        drop(guard);
    }
    stop.store(true, Ordering::Relaxed);
    spinner.join().unwrap();
    assert_eq!(refused, None, "insert refused after {inserted} values");
    assert_eq!(
        TALLY_DROPS.load(Ordering::SeqCst),
        made,
        "values made ({inserted} of them inserted and removed) vs drops"
    );
    assert!(arena.is_empty());
}

#[test]
fn a_thread_holding_a_pin_can_still_read_the_value_while_a_writer_waits() {
    // A PinnedRef "is a read lock, as a read guard is". A thread holding a
    // read guard may take another read of the same value while another
    // thread waits in `get_mut` (the writer waits without locking). A
    // thread holding a PinnedRef may not: `get_mut` takes `WRITER` first
    // and then spins for the pinned reader, so the holder's second read
    // (`get`, or another `Reader::get`) waits for a writer that waits for
    // it. The read guard runs first, as the control.
    for pin in [false, true] {
        let arena = SlotArena::new(1);
        let key = arena.insert(1u64).unwrap();
        let (held, holding) = mpsc::channel();
        let (go, told) = mpsc::channel::<()>();
        let (read, second) = mpsc::channel();
        let holder = {
            let arena = arena.clone();
            thread::spawn(move || {
                let mut reader = arena.reader();
                let first_read = if pin {
                    *reader.get(key).unwrap()
                } else {
                    *arena.get(key).unwrap()
                };
                let _pinned = pin.then(|| reader.get(key).unwrap());
                let _guard = (!pin).then(|| arena.get(key).unwrap());
                held.send(first_read).unwrap();
                told.recv().unwrap();
                let _ = read.send(*arena.get(key).unwrap());
            })
        };
        assert_eq!(holding.recv_timeout(MUST_FINISH), Ok(1));
        let writer = {
            let arena = arena.clone();
            thread::spawn(move || *arena.get_mut(key).unwrap() = 2)
        };
        // Let the writer reach its wait.
        thread::sleep(SHOULD_WAIT);
        assert!(!writer.is_finished(), "get_mut ran beside a read");
        go.send(()).unwrap();
        assert_eq!(
            second.recv_timeout(MUST_FINISH),
            Ok(1),
            "pin {pin}: the second read of a thread holding a read never came"
        );
        holder.join().unwrap();
        within(MUST_FINISH, move || writer.join().unwrap());
        assert_eq!(*arena.get(key).unwrap(), 2);
    }
}

#[test]
fn a_refused_try_get_mut_on_a_pinned_value_never_refuses_a_concurrent_read() {
    // `try_get_mut` on a value a Reader holds pinned takes `WRITER`, finds
    // the pin, and unlocks again (`Core::after_write_lock`): for that
    // moment every other thread's `try_get` of the value answers
    // `AlreadyBorrowed`, though no writer ever gets it. Refused against a
    // read guard instead (the control, run first), `try_get_mut` writes
    // nothing and the reads all succeed.
    for pin in [false, true] {
        let arena = SlotArena::new(1);
        let key = arena.insert(1u64).unwrap();
        let mut reader = arena.reader();
        let _pinned = pin.then(|| reader.get(key).unwrap());
        let _guard = (!pin).then(|| arena.get(key).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let refusing = {
            let (arena, stop) = (arena.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let refused = arena.try_get_mut(key).err();
                    assert_eq!(refused, Some(MemoryError::AlreadyBorrowed));
                }
            })
        };
        let mut failed = Vec::new();
        for _ in 0..200_000 {
            if let Err(error) = arena.try_get(key) {
                failed.push(error);
            }
        }
        stop.store(true, Ordering::Relaxed);
        refusing.join().unwrap();
        assert_eq!(
            (failed.len(), failed.first()),
            (0, None),
            "pin {pin}: reads of a value no writer got were refused"
        );
    }
}
