//! The concurrent manager's borrow rules, poisoning, fan-out shares and growth.

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader};
use support::{DropCounter, msg};

#[test]
fn free_with_a_live_guard_answers_borrow_active_on_the_same_thread() {
    let m = ConcurrentMemoryManager::new(2);
    let token = m.store_shared(msg(1)).unwrap();
    let read = m.read_shared(token).unwrap();
    assert_eq!(m.free_shared(token), Err(MemoryError::BorrowActive));
    assert_eq!(m.take_shared(token).err(), Some(MemoryError::BorrowActive));
    drop(read);
    let header = m.peek_header_shared(token).unwrap();
    assert_eq!(m.free_shared(token), Err(MemoryError::BorrowActive));
    drop(header);
    let write = m.read_mut_shared(token).unwrap();
    assert_eq!(m.free_shared(token), Err(MemoryError::BorrowActive));
    drop(write);
    m.free_shared(token).unwrap();
    assert_eq!(m.available(), 2);
}

#[test]
fn free_with_a_guard_on_another_thread_answers_borrow_active_without_waiting() {
    let m = ConcurrentMemoryManager::new(2);
    let token = m.store_shared(msg(1)).unwrap();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let holder = {
        let m = m.clone();
        thread::spawn(move || {
            let _guard = m.read_mut_shared(token).unwrap();
            locked_tx.send(()).unwrap();
            done_rx.recv().unwrap();
        })
    };
    locked_rx.recv().unwrap();
    assert_eq!(m.free_shared(token), Err(MemoryError::BorrowActive));
    assert_eq!(
        m.try_read_shared(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    assert_eq!(
        m.try_read_mut_shared(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    done_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(*m.try_read_shared(token).unwrap().payload(), 1);
    m.free_shared(token).unwrap();
}

#[test]
fn readers_share_and_writers_exclude() {
    let m = ConcurrentMemoryManager::new(1);
    let token = m.store_shared(msg(3)).unwrap();
    let first = m.read_shared(token).unwrap();
    let second = m.try_read_shared(token).unwrap();
    assert_eq!(*first.payload() + *second.payload(), 6);
    assert_eq!(
        m.try_read_mut_shared(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    drop((first, second));
    let writer = m.try_read_mut_shared(token).unwrap();
    assert_eq!(
        m.try_read_shared(token).err(),
        Some(MemoryError::AlreadyBorrowed)
    );
    drop(writer);
}

#[test]
fn a_blocked_reader_proceeds_when_the_writer_leaves() {
    let m = ConcurrentMemoryManager::new(1);
    let token = m.store_shared(msg(0)).unwrap();
    let mut writer = m.read_mut_shared(token).unwrap();
    let reader = {
        let m = m.clone();
        thread::spawn(move || *m.read_shared(token).unwrap().payload())
    };
    thread::sleep(Duration::from_millis(20));
    *writer.payload_mut() = 42;
    drop(writer);
    assert_eq!(reader.join().unwrap(), 42);
}

#[test]
fn a_stale_token_never_waits_on_the_new_owner() {
    let m = ConcurrentMemoryManager::new(1);
    let old = m.store_shared(msg(1)).unwrap();
    m.free_shared(old).unwrap();
    let new = m.store_shared(msg(2)).unwrap();
    let _writer = m.read_mut_shared(new).unwrap();
    // Same thread, same slot, write-locked: must answer, not deadlock.
    assert_eq!(m.read_shared(old).err(), Some(MemoryError::StaleToken));
    assert_eq!(m.read_mut_shared(old).err(), Some(MemoryError::StaleToken));
    assert_eq!(m.free_shared(old), Err(MemoryError::StaleToken));
}

#[test]
fn a_panicking_writer_poisons_the_message_until_it_is_freed() {
    let counter = DropCounter::default();
    let m = ConcurrentMemoryManager::new(1);
    let token = m.store_shared(counter.message(1)).unwrap();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut guard = m.read_mut_shared(token).unwrap();
        guard.payload_mut().id = 2;
        panic!("writer failed halfway");
    }));
    assert!(result.is_err());
    assert_eq!(m.read_shared(token).err(), Some(MemoryError::Poisoned));
    assert_eq!(m.try_read_shared(token).err(), Some(MemoryError::Poisoned));
    assert_eq!(m.read_mut_shared(token).err(), Some(MemoryError::Poisoned));
    assert_eq!(
        m.peek_header_shared(token).err(),
        Some(MemoryError::Poisoned)
    );
    assert_eq!(
        m.take_shared(token).err(),
        Some(MemoryError::Poisoned),
        "take releases, reports the poison"
    );
    assert_eq!(counter.drops(), 1);
    assert_eq!(m.available(), 1);
    let fresh = m.store_shared(counter.message(3)).unwrap();
    assert_eq!(
        m.read_shared(fresh).unwrap().payload().id,
        3,
        "the reused slot is healthy"
    );
    m.free_shared(fresh).unwrap();
}

#[test]
fn a_poisoned_message_can_be_freed() {
    let m = ConcurrentMemoryManager::new(1);
    let token = m.store_shared(msg(1)).unwrap();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let _guard = m.read_mut_shared(token).unwrap();
        panic!("boom");
    }));
    m.free_shared(token).unwrap();
    assert_eq!(m.available(), 1);
}

#[test]
fn a_guard_taken_while_already_panicking_does_not_poison() {
    struct ReadsOnDrop(ConcurrentMemoryManager<u64>, slotarena::MessageToken);
    impl Drop for ReadsOnDrop {
        fn drop(&mut self) {
            let _guard = self.0.read_mut_shared(self.1).unwrap();
        }
    }
    let m = ConcurrentMemoryManager::new(1);
    let token = m.store_shared(msg(1)).unwrap();
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let _cleanup = ReadsOnDrop(m.clone(), token);
        panic!("unrelated");
    }));
    assert_eq!(*m.read_shared(token).unwrap().payload(), 1);
}

#[test]
fn a_panicking_payload_drop_does_not_lose_the_slot() {
    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            if !thread::panicking() {
                panic!("payload drop failed");
            }
        }
    }
    impl slotarena::Payload for PanicsOnDrop {
        fn buffer_descriptor(&self) -> slotarena::BufferDescriptor {
            slotarena::BufferDescriptor::new(0)
        }
    }
    let m = ConcurrentMemoryManager::new(1);
    let token = m
        .store_shared(Message::new(MessageHeader::empty(), PanicsOnDrop))
        .unwrap();
    assert!(catch_unwind(AssertUnwindSafe(|| m.free_shared(token))).is_err());
    assert_eq!(m.available(), 1);
    assert_eq!(m.read_shared(token).err(), Some(MemoryError::NotAllocated));
    let again = m
        .store_shared(Message::new(MessageHeader::empty(), PanicsOnDrop))
        .unwrap();
    std::mem::forget(m.take_shared(again).unwrap());
}

#[test]
fn shares_block_free_and_the_last_release_frees() {
    let counter = DropCounter::default();
    let m = ConcurrentMemoryManager::new(2);
    let token = m.store_shared(counter.message(1)).unwrap();
    assert_eq!(m.release_shared(token), Err(MemoryError::NotShared));
    assert_eq!(m.retain_shared(token, 2), Ok(2));
    assert_eq!(
        m.retain_shared(token, u32::MAX),
        Err(MemoryError::TooManyShares)
    );
    assert_eq!(m.shares(token), Ok(2));
    assert_eq!(m.free_shared(token), Err(MemoryError::QueueOwned));
    assert_eq!(m.take_shared(token).err(), Some(MemoryError::QueueOwned));
    assert_eq!(m.release_shared(token), Ok(1));
    let guard = m.read_shared(token).unwrap();
    assert_eq!(
        m.release_shared(token),
        Err(MemoryError::BorrowActive),
        "last release meets a guard"
    );
    assert_eq!(m.shares(token), Ok(1), "a refused release changes nothing");
    drop(guard);
    assert_eq!(counter.drops(), 0);
    assert_eq!(m.release_shared(token), Ok(0));
    assert_eq!(counter.drops(), 1);
    assert_eq!(m.release_shared(token), Err(MemoryError::NotAllocated));
    assert_eq!(m.available(), 2);
}

#[test]
fn concurrent_releases_free_exactly_once() {
    for _ in 0..if cfg!(miri) { 5 } else { 200 } {
        let counter = DropCounter::default();
        let m = ConcurrentMemoryManager::new(1);
        let token = m.store_shared(counter.message(1)).unwrap();
        m.retain_shared(token, 4).unwrap();
        let zeros: usize = (0..4)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || {
                    loop {
                        match m.release_shared(token) {
                            Ok(left) => return usize::from(left == 0),
                            Err(MemoryError::BorrowActive) => thread::yield_now(),
                            Err(e) => panic!("{e:?}"),
                        }
                    }
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(zeros, 1);
        assert_eq!(counter.drops(), 1);
        assert_eq!(m.available(), 1);
    }
}

#[test]
fn growth_adds_segments_up_to_the_maximum_and_keeps_guards_valid() {
    let m = ConcurrentMemoryManager::growable(2, 7);
    assert_eq!((m.capacity(), m.max_capacity(), m.available()), (2, 7, 2));
    let tokens: Vec<_> = (0..7).map(|i| m.store_shared(msg(i)).unwrap()).collect();
    assert_eq!((m.capacity(), m.available()), (7, 0));
    assert_eq!(m.store_shared(msg(99)), Err(MemoryError::NoFreeSlots));
    let back = m.try_store_shared(msg(100)).unwrap_err();
    assert_eq!(
        *back.payload(),
        100,
        "try_store_shared hands the message back"
    );
    for (i, token) in tokens.iter().enumerate() {
        assert_eq!(*m.read_shared(*token).unwrap().payload(), i as u64);
    }
    let guard = m.read_shared(tokens[0]).unwrap();
    for token in &tokens[1..] {
        m.free_shared(*token).unwrap();
    }
    assert_eq!(*guard.payload(), 0);
    assert_eq!(m.available(), 6);
}

#[test]
fn growth_under_concurrent_stores_loses_no_slot() {
    let per_thread: u64 = if cfg!(miri) { 25 } else { 250 };
    let m = ConcurrentMemoryManager::growable(1, 4 * per_thread as usize);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let m = m.clone();
            thread::spawn(move || {
                (0..per_thread)
                    .map(|i| m.store_shared(msg(t * 1000 + i)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let tokens: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!((m.capacity(), m.available()), (4 * per_thread as usize, 0));
    let mut indexes: Vec<_> = tokens.iter().map(|t| t.index()).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(
        indexes.len(),
        4 * per_thread as usize,
        "every store got its own slot"
    );
}

// Issue 18, item 2: write guards are `Send`, so the panic that poisons must
// be the one in flight on the thread that drops the guard. Before the fix a
// guard compared "panicking now" on the dropping thread with "panicking
// when made" on the creating thread.

/// Sends an owned write guard, made while its thread unwinds, to `to`.
struct GuardMadeWhileUnwinding {
    arena: slotarena::SlotArena<(u64, u64)>,
    token: slotarena::MessageToken,
    to: mpsc::Sender<slotarena::arena::OwnedWriteGuard<(u64, u64)>>,
}

impl Drop for GuardMadeWhileUnwinding {
    fn drop(&mut self) {
        assert!(thread::panicking());
        self.to
            .send(self.arena.get_mut_owned(self.token).unwrap())
            .unwrap();
    }
}

#[test]
fn a_guard_made_while_unwinding_poisons_when_its_next_thread_panics_mid_update() {
    // Failed before the fix: the value was not poisoned, and `get` read
    // the half-written pair (1, 0).
    let arena = slotarena::SlotArena::new(1);
    let token = arena.insert((0u64, 0u64)).unwrap();
    let (to, from) = mpsc::channel();
    let maker = GuardMadeWhileUnwinding {
        arena: arena.clone(),
        token,
        to,
    };
    let unwound = thread::spawn(move || {
        let _maker = maker;
        panic!("the thread that makes the guard is unwinding");
    })
    .join();
    assert!(unwound.is_err());
    let mut guard = from.recv().unwrap();
    // The update keeps the two halves equal; it panics between them.
    let updater = thread::spawn(move || {
        guard.0 = 1;
        panic!("halfway through the update");
    })
    .join();
    assert!(updater.is_err());
    assert_eq!(arena.get(token).err(), Some(MemoryError::Poisoned));
}

/// Takes over, while its thread unwinds, a write guard it receives only
/// then, and finishes a whole update through it.
struct FinishesAnUpdateWhileUnwinding(
    mpsc::Receiver<slotarena::arena::OwnedWriteGuard<(u64, u64)>>,
);

impl Drop for FinishesAnUpdateWhileUnwinding {
    fn drop(&mut self) {
        assert!(thread::panicking());
        let mut guard = self.0.recv().unwrap();
        *guard = (8, 8);
    }
}

#[test]
fn a_guard_an_unwinding_thread_takes_over_and_finishes_with_does_not_poison() {
    // Failed before the fix: `get` answered Poisoned, though the update
    // made during the unwinding ran to completion.
    let arena = slotarena::SlotArena::new(1);
    let token = arena.insert((7u64, 7u64)).unwrap();
    let (to, from) = mpsc::channel();
    let (unwinding_tx, unwinding_rx) = mpsc::channel();
    let finisher = thread::spawn(move || {
        let _finisher = FinishesAnUpdateWhileUnwinding(from);
        unwinding_tx.send(()).unwrap();
        panic!("this thread unwinds before it gets the guard");
    });
    unwinding_rx.recv().unwrap();
    to.send(arena.get_mut_owned(token).unwrap()).unwrap();
    assert!(finisher.join().is_err());
    assert_eq!(*arena.get(token).unwrap(), (8, 8));
}

#[test]
fn a_guard_sent_to_a_thread_that_panics_mid_update_poisons() {
    let arena = slotarena::SlotArena::new(1);
    let token = arena.insert((0u64, 0u64)).unwrap();
    let mut guard = arena.get_mut_owned(token).unwrap();
    let updater = thread::spawn(move || {
        guard.0 = 1;
        panic!("halfway through the update");
    })
    .join();
    assert!(updater.is_err());
    assert_eq!(arena.get(token).err(), Some(MemoryError::Poisoned));
}

/// Pending once, then ready: an `.await` at which a work-stealing runtime
/// may move the task to another worker thread.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }
}

#[test]
fn a_task_resumed_on_another_thread_that_panics_mid_update_poisons() {
    // From a review of the first fix, which remembered only the threads
    // that reached the value through the guard: the task takes `&mut`
    // before its `.await` on one thread, and writes through it after the
    // `.await` on another, which never touches the guard itself.
    use std::future::Future;
    use std::task::{Context, Waker};
    async fn update(pair: &mut (u64, u64)) {
        pair.0 = 1;
        YieldOnce(false).await;
        panic!("halfway through the update, on the thread the task moved to");
    }
    let arena = slotarena::SlotArena::new(1);
    let token = arena.insert((0u64, 0u64)).unwrap();
    let task_arena = arena.clone();
    let mut task: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let mut guard = task_arena.get_mut_owned(token).unwrap();
        update(&mut guard).await;
    });
    let mut context = Context::from_waker(Waker::noop());
    assert!(task.as_mut().poll(&mut context).is_pending());
    let resumed = thread::spawn(move || {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let _ = task.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        }));
        drop(task);
        outcome.is_err()
    })
    .join()
    .unwrap();
    assert!(resumed, "the task panicked on the second thread");
    assert_eq!(arena.get(token).err(), Some(MemoryError::Poisoned));
}
