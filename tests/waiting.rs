//! Waiting for room instead of failing: blocking, timeout and async forms,
//! woken by whatever frees a slot, first come first served, cancel-safe.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader, SlotArena};

/// Polls a future once with a waker that does nothing.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Waits (without a time limit in the assertion) until `arena` has a
/// registered waiter, i.e. the other thread is parked in `insert_wait`.
fn until_full_and_waiting<T>(arena: &SlotArena<T>, waiter: &thread::JoinHandle<impl Send>) {
    // The waiter cannot finish while the arena is full; give it time to
    // register so the test exercises the wake-up, not the fast path.
    thread::sleep(Duration::from_millis(20));
    assert!(
        !waiter.is_finished(),
        "insert_wait returned while the arena was full"
    );
    assert_eq!(arena.len(), arena.capacity());
}

#[test]
fn insert_wait_is_woken_by_remove_take_and_a_last_guard() {
    let arena = SlotArena::new(1);
    // remove
    let held = arena.insert(0).unwrap();
    let waiter = {
        let arena = arena.clone();
        thread::spawn(move || arena.insert_wait(1).unwrap())
    };
    until_full_and_waiting(&arena, &waiter);
    arena.remove(held).unwrap();
    let held = waiter.join().unwrap();
    // take
    let waiter = {
        let arena = arena.clone();
        thread::spawn(move || arena.insert_wait(2).unwrap())
    };
    until_full_and_waiting(&arena, &waiter);
    assert_eq!(arena.take(held), Ok(1));
    let held = waiter.join().unwrap();
    // the last guard of a removed value
    let guard = arena.get_owned(held).unwrap();
    arena.remove(held).unwrap();
    let waiter = {
        let arena = arena.clone();
        thread::spawn(move || arena.insert_wait(3).unwrap())
    };
    until_full_and_waiting(&arena, &waiter);
    drop(guard);
    let last = waiter.join().unwrap();
    assert_eq!(*arena.get(last).unwrap(), 3);
}

#[test]
fn store_wait_is_woken_by_free_take_and_the_last_release() {
    let manager = ConcurrentMemoryManager::new(1);
    let message = |n: u8| Message::new(MessageHeader::empty(), n);
    let held = manager.store_shared(message(0)).unwrap();
    manager.retain_shared(held, 2).unwrap();
    let waiter = {
        let manager = manager.clone();
        thread::spawn(move || manager.store_wait(message(1)).unwrap())
    };
    thread::sleep(Duration::from_millis(20));
    assert_eq!(manager.release_shared(held), Ok(1));
    assert!(!waiter.is_finished(), "a non-last release frees nothing");
    assert_eq!(manager.release_shared(held), Ok(0));
    let held = waiter.join().unwrap();
    let waiter = {
        let manager = manager.clone();
        thread::spawn(move || manager.store_wait(message(2)).unwrap())
    };
    thread::sleep(Duration::from_millis(20));
    manager.free_shared(held).unwrap();
    let held = waiter.join().unwrap();
    let waiter = {
        let manager = manager.clone();
        thread::spawn(move || manager.store_wait(message(3)).unwrap())
    };
    thread::sleep(Duration::from_millis(20));
    assert_eq!(*manager.take_shared(held).unwrap().payload(), 2);
    let last = waiter.join().unwrap();
    assert_eq!(*manager.read_shared(last).unwrap().payload(), 3);
}

#[test]
fn timeouts_hand_the_value_back_and_change_nothing() {
    let arena = SlotArena::new(1);
    let held = arena.insert(String::from("kept")).unwrap();
    let late = arena.insert_timeout(String::from("late"), Duration::from_millis(10));
    assert_eq!(late.unwrap_err().into_inner(), "late");
    assert_eq!(*arena.get(held).unwrap(), "kept");
    let manager = ConcurrentMemoryManager::new(0);
    assert_eq!(
        manager.store_timeout(Message::new(MessageHeader::empty(), ()), Duration::ZERO),
        Err(MemoryError::NoFreeSlots)
    );
    assert_eq!(
        manager.store_wait(Message::new(MessageHeader::empty(), ())),
        Err(MemoryError::NoFreeSlots),
        "a manager that can never have room does not wait forever"
    );
    let empty = SlotArena::new(0);
    assert!(futures_ready(empty.insert_async(1)).is_err());
}

/// Runs a future that must complete without waiting.
fn futures_ready<F: Future>(future: F) -> F::Output {
    match poll_once(pin!(future)) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the future waited"),
    }
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let arena = SlotArena::new(1);
    let held = arena.insert(0).unwrap();
    let mut first = pin!(arena.insert_async(1));
    let mut second = pin!(arena.insert_async(2));
    let mut third = pin!(arena.insert_async(3));
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    assert!(poll_once(third.as_mut()).is_pending());
    // A newcomer does not barge ahead of the registered waiters.
    assert!(arena.insert_timeout(9, Duration::ZERO).is_err());
    arena.remove(held).unwrap();
    assert!(
        poll_once(third.as_mut()).is_pending(),
        "the last to come was served first"
    );
    assert!(
        poll_once(second.as_mut()).is_pending(),
        "the second was served first"
    );
    let token = match poll_once(first.as_mut()) {
        Poll::Ready(Ok(token)) => token,
        other => panic!("the first waiter was not served: {other:?}"),
    };
    assert_eq!(arena.take(token), Ok(1));
    let token = match poll_once(second.as_mut()) {
        Poll::Ready(Ok(token)) => token,
        other => panic!("the second waiter was not served next: {other:?}"),
    };
    assert_eq!(*arena.get(token).unwrap(), 2);
}

#[test]
fn a_cancelled_waiter_passes_its_wake_up_on_and_holds_nothing() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let arena = SlotArena::new(1);
    let held = arena.insert(Counted(drops.clone())).unwrap();
    let mut first = Box::pin(arena.insert_async(Counted(drops.clone())));
    let mut second = pin!(arena.insert_async(Counted(drops.clone())));
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    drop(arena.take(held).unwrap()); // notifies `first`
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(first); // cancelled after its notification: drops its value, passes the wake-up on
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert!(matches!(poll_once(second.as_mut()), Poll::Ready(Ok(_))));
    assert_eq!(arena.len(), 1, "the cancelled waiter holds no slot");
}

/// Reads the CPU time (user + system, in clock ticks) a thread has used.
#[cfg(target_os = "linux")]
fn cpu_ticks(tid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// A waiter sleeps: no polling loop, no sleep-and-retry.
#[cfg(target_os = "linux")]
#[test]
fn a_waiter_uses_no_cpu_while_it_waits() {
    let arena = SlotArena::new(1);
    let held = arena.insert(0u64).unwrap();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let waiter = {
        let arena = arena.clone();
        thread::spawn(move || {
            let me = std::fs::read_link("/proc/thread-self").unwrap();
            tid_tx
                .send(me.file_name().unwrap().to_string_lossy().into_owned())
                .unwrap();
            arena.insert_wait(1).unwrap()
        })
    };
    let tid = tid_rx.recv().unwrap();
    thread::sleep(Duration::from_millis(50));
    let before = cpu_ticks(&tid);
    thread::sleep(Duration::from_millis(500));
    let used = cpu_ticks(&tid) - before;
    // Ticks are 10 ms; a polling waiter would use about 50 of them.
    assert!(used <= 5, "the waiter used {used} ticks of CPU in 500 ms");
    arena.remove(held).unwrap();
    waiter.join().unwrap();
}

#[test]
fn a_tokio_producer_waits_for_a_consumer() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        const MESSAGES: u64 = 2_000;
        let manager = ConcurrentMemoryManager::new(4);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let consumer = {
            let manager = manager.clone();
            tokio::spawn(async move {
                let mut sum = 0;
                while let Some(token) = rx.recv().await {
                    sum += manager.take_shared(token).unwrap().into_parts().1;
                }
                sum
            })
        };
        for n in 0..MESSAGES {
            let token = manager
                .store_async(Message::new(MessageHeader::empty(), n))
                .await
                .unwrap();
            tx.send(token).unwrap();
        }
        drop(tx);
        assert_eq!(consumer.await.unwrap(), MESSAGES * (MESSAGES - 1) / 2);
        assert_eq!(manager.available(), 4);
    });
}

#[test]
fn many_blocking_producers_and_consumers_lose_nothing() {
    const PER_PRODUCER: usize = if cfg!(miri) { 20 } else { 20_000 };
    let arena = SlotArena::new(8);
    let (tx, rx) = std::sync::mpsc::channel();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    thread::scope(|s| {
        for p in 0..3 {
            let (arena, tx) = (&arena, tx.clone());
            s.spawn(move || {
                for n in 0..PER_PRODUCER {
                    tx.send(arena.insert_wait(p * PER_PRODUCER + n).unwrap())
                        .unwrap();
                }
            });
        }
        drop(tx);
        for _ in 0..2 {
            let (arena, rx) = (&arena, rx.clone());
            s.spawn(move || {
                loop {
                    let next = rx.lock().unwrap().recv();
                    match next {
                        Ok(token) => {
                            arena.take(token).unwrap();
                        }
                        Err(_) => return,
                    }
                }
            });
        }
    });
    assert!(arena.is_empty());
}

#[test]
fn an_async_lock_awaits_the_guard_and_a_cancelled_one_holds_nothing() {
    let arena = SlotArena::new(2);
    let token = arena.insert(0u32).unwrap();
    let reader = arena.get_owned(token).unwrap();
    let mut writer = pin!(arena.get_mut_owned_async(token));
    assert!(poll_once(writer.as_mut()).is_pending(), "a reader is live");
    let mut cancelled = Box::pin(arena.get_mut_owned_async(token));
    assert!(poll_once(cancelled.as_mut()).is_pending());
    drop(cancelled);
    drop(reader);
    let mut guard = match poll_once(writer.as_mut()) {
        Poll::Ready(Ok(guard)) => guard,
        other => panic!("the writer did not get the lock: {other:?}"),
    };
    *guard += 1;
    let mut reader = pin!(arena.get_owned_async(token));
    assert!(poll_once(reader.as_mut()).is_pending(), "a writer is live");
    drop(guard);
    match poll_once(reader.as_mut()) {
        Poll::Ready(Ok(guard)) => assert_eq!(*guard, 1),
        other => panic!("the reader did not get the lock: {other:?}"),
    }
    arena.remove(token).unwrap();
    assert!(matches!(
        futures_ready(arena.get_mut_owned_async(token)),
        Err(MemoryError::NotAllocated)
    ));
}

#[test]
fn tokio_tasks_wake_each_other_through_async_locks() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        const TASKS: u64 = 4;
        const ROUNDS: u64 = 500;
        let arena = SlotArena::new(1);
        let token = arena.insert(0u64).unwrap();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let arena = arena.clone();
                tokio::spawn(async move {
                    for _ in 0..ROUNDS {
                        let mut guard = arena.get_mut_owned_async(token).await.unwrap();
                        *guard += 1;
                        tokio::task::yield_now().await; // hold it across an await
                        *guard += 1;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*arena.get(token).unwrap(), 2 * TASKS * ROUNDS);
    });
}

#[test]
fn a_free_with_a_waiter_registered_still_never_waits_for_a_guard() {
    // With a thread parked in store_wait, a free also wakes it through the
    // wait queue (issue 18, item 3: that wake-up takes event-listener's
    // internal lock for its length); it still never waits for a guard.
    let manager: ConcurrentMemoryManager<u64> = ConcurrentMemoryManager::new(2);
    let guarded = manager
        .store_shared(Message::new(MessageHeader::empty(), 1))
        .unwrap();
    let other = manager
        .store_shared(Message::new(MessageHeader::empty(), 2))
        .unwrap();
    let read = manager.read_shared(guarded).unwrap();
    let waiter = {
        let manager = manager.clone();
        thread::spawn(move || {
            manager
                .store_wait(Message::new(MessageHeader::empty(), 3))
                .unwrap()
        })
    };
    thread::sleep(Duration::from_millis(20));
    assert!(
        !waiter.is_finished(),
        "store_wait returned while the manager was full"
    );
    let (done, frees) = std::sync::mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| {
            let answers = (manager.free_shared(guarded), manager.free_shared(other));
            done.send(answers).unwrap();
        });
        let answers = frees
            .recv_timeout(Duration::from_secs(10))
            .expect("a free waited with a waiter registered");
        assert_eq!(answers, (Err(MemoryError::BorrowActive), Ok(())));
    });
    let stored = waiter.join().unwrap();
    assert_eq!(*manager.read_shared(stored).unwrap().payload(), 3);
    drop(read);
}
