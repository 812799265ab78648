//! The linear memory's waiting forms: allocations that wait for free bytes
//! at the maximum size, claims and frees that wait for another handle's
//! claim to end, and the async controller's wait policy.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use slotarena::linear::{AsyncMemoryController, LinearMemoryError, SharedLinearMemory, WaitPolicy};

/// Almost all of a one-page memory (the first 256 bytes are reserved).
const BIG: u32 = 40_000;

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn alloc_wait_sleeps_until_a_free_makes_room() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut first = memory.controller();
    let held = first.alloc(BIG).unwrap();
    let waiter = {
        let memory = memory.clone();
        thread::spawn(move || memory.controller().alloc_wait(BIG))
    };
    thread::sleep(Duration::from_millis(20));
    assert!(
        !waiter.is_finished(),
        "alloc_wait returned while the memory was full"
    );
    first.free(held, BIG).unwrap();
    let ptr = waiter.join().unwrap().unwrap();
    assert!(ptr > 0);
    assert_eq!(memory.allocated_bytes(), u64::from(BIG));
}

#[test]
fn alloc_timeout_answers_out_of_memory_and_other_errors_at_once() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut controller = memory.controller();
    controller.alloc(BIG).unwrap();
    assert_eq!(
        controller.alloc_timeout(BIG, Duration::from_millis(5)),
        Err(LinearMemoryError::OutOfMemory)
    );
    // Errors that waiting cannot cure come back at once.
    assert_eq!(controller.alloc_wait(0), Err(LinearMemoryError::ZeroLength));
    assert_eq!(
        controller.alloc_wait(u32::MAX),
        Err(LinearMemoryError::LengthTooLarge)
    );
}

#[test]
fn lock_wait_sleeps_until_the_other_handles_claim_ends() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut guest = memory.controller();
    let ptr = guest.alloc(16).unwrap();
    guest.mut_mem(ptr, 16).unwrap().fill(9);
    let host = {
        let memory = memory.clone();
        thread::spawn(move || {
            let mut host = memory.controller();
            host.lock_wait(ptr, 16).unwrap().to_vec()
        })
    };
    thread::sleep(Duration::from_millis(20));
    assert!(
        !host.is_finished(),
        "lock_wait returned while the guest held its claim"
    );
    guest.release();
    assert_eq!(host.join().unwrap(), [9; 16]);
    assert_eq!(
        memory.controller().lock_wait(ptr + 8, 16).err(),
        Some(LinearMemoryError::OutOfBounds),
        "errors other than Busy come back at once"
    );
}

#[test]
fn the_async_controller_answers_at_once_by_default_and_awaits_with_the_wait_policy() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut holder = memory.controller();
    let held = holder.alloc(BIG).unwrap();
    holder.mut_mem(held, 1).unwrap()[0] = 1; // keeps a claim on it

    let mut immediate = memory.controller();
    let answer = poll_once(pin!(AsyncMemoryController::alloc(&mut immediate, BIG)));
    assert_eq!(answer, Poll::Ready(Err(LinearMemoryError::OutOfMemory)));
    let answer = poll_once(pin!(AsyncMemoryController::free(&mut immediate, held, BIG)));
    assert_eq!(answer, Poll::Ready(Err(LinearMemoryError::Busy)));

    let mut freer = memory.controller().with_wait_policy(WaitPolicy::Wait);
    let mut free = pin!(AsyncMemoryController::free(&mut freer, held, BIG));
    assert!(
        poll_once(free.as_mut()).is_pending(),
        "the holder's claim is live"
    );
    let mut waiting = memory.controller().with_wait_policy(WaitPolicy::Wait);
    let mut alloc = pin!(AsyncMemoryController::alloc(&mut waiting, BIG));
    assert!(poll_once(alloc.as_mut()).is_pending(), "the memory is full");
    holder.release();
    assert_eq!(poll_once(free.as_mut()), Poll::Ready(Ok(())));
    assert!(matches!(poll_once(alloc.as_mut()), Poll::Ready(Ok(_))));
}

#[test]
fn a_cancelled_async_alloc_or_lock_holds_nothing() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut holder = memory.controller();
    let held = holder.alloc(BIG).unwrap();
    holder.mut_mem(held, 4).unwrap();
    {
        let mut other = memory.controller();
        let mut alloc = Box::pin(other.alloc_async(BIG));
        assert!(poll_once(alloc.as_mut()).is_pending());
    }
    {
        let mut other = memory.controller();
        let mut lock = Box::pin(other.lock_async(held, 4));
        assert!(poll_once(lock.as_mut()).is_pending());
    }
    assert_eq!(memory.allocated_bytes(), u64::from(BIG));
    holder.free(held, BIG).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
    let mut again = memory.controller();
    let ptr = again.alloc(BIG).unwrap();
    assert_eq!(again.lock(ptr, BIG).unwrap().len(), BIG as usize);
}

#[test]
fn tokio_guests_share_a_full_memory_through_the_wait_policy() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        const TASKS: usize = 4;
        const ROUNDS: usize = 200;
        let memory = SharedLinearMemory::new(1, 1).unwrap();
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let memory = memory.clone();
                tokio::spawn(async move {
                    let mut controller = memory.controller().with_wait_policy(WaitPolicy::Wait);
                    for round in 0..ROUNDS {
                        // Two of these never fit at once: every task waits for the others.
                        let ptr = AsyncMemoryController::alloc(&mut controller, BIG)
                            .await
                            .unwrap();
                        let stamp = (t * ROUNDS + round) as u32;
                        controller
                            .mut_mem(ptr, 4)
                            .unwrap()
                            .copy_from_slice(&stamp.to_le_bytes());
                        tokio::task::yield_now().await;
                        let seen = controller.mut_mem(ptr, 4).unwrap().to_vec();
                        assert_eq!(seen, stamp.to_le_bytes());
                        AsyncMemoryController::free(&mut controller, ptr, BIG)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(memory.allocated_bytes(), 0);
    });
}
