//! Issue 19: the linear memory's promises at their edges. Each test
//! reproduces one defect the issue found on the code before its fix.

use std::future::Future;
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use slotarena::linear::{
    AsyncMemoryController, LinearMemoryController, LinearMemoryError, PAGE_SIZE,
    SharedLinearMemory, WaitPolicy,
};

/// The first bytes of every memory, never handed out.
const GRANULE: u32 = 256;

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Runs `f` on another thread and fails if it has not answered within a
/// few seconds: a wait for the impossible fails the test, not the run.
fn answers_at_once<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the call waited instead of answering")
}

/// Defect 1's layout on a 2-page memory: sixteen free 4096-byte runs and
/// one free 4352-byte run (all on one size list of the pool, the fitting
/// one behind the sixteen), each fenced by a live granule, the rest full.
fn holes(memory: &SharedLinearMemory) -> LinearMemoryController {
    let mut c = memory.controller();
    let mut holes = Vec::new();
    for _ in 0..16 {
        holes.push((c.alloc(4096).unwrap(), 4096));
        c.alloc_aligned(8, 256).unwrap();
    }
    let fitting = c.alloc(4352).unwrap();
    c.alloc_aligned(8, 256).unwrap();
    let rest = 2 * PAGE_SIZE - GRANULE - 16 * (4096 + 256) - (4352 + 256);
    assert_eq!(rest, 221 * 256);
    c.alloc(rest).unwrap();
    c.free(fitting, 4352).unwrap();
    for (ptr, len) in holes {
        c.free(ptr, len).unwrap();
    }
    c
}

/// Before the fix: `alloc(4352)` answered `OutOfMemory` (the pool looked at
/// the first 16 runs of the request's own size list, then only at longer
/// lists), and `alloc_wait` slept.
#[test]
fn a_fitting_free_run_behind_sixteen_shorter_ones_is_found() {
    let memory = SharedLinearMemory::new(2, 2).unwrap();
    let mut c = holes(&memory);
    let ptr = c.alloc(4352).expect("a free run of 4352 bytes exists");
    c.free(ptr, 4352).unwrap();
    let mut waiter = memory.controller();
    let ptr = answers_at_once(move || waiter.alloc_wait(4352)).unwrap();
    assert!(ptr > 0);
}

/// Before the fix: below the maximum, the memory grew to a third page
/// instead of reusing the fitting run.
#[test]
fn a_fitting_free_run_is_reused_before_the_memory_grows() {
    let memory = SharedLinearMemory::new(2, 4).unwrap();
    let mut c = holes(&memory);
    c.alloc(4352).unwrap();
    assert_eq!(memory.size_pages(), 2, "grew though a free run fitted");
}

/// Before the fix: every length in `(max - 256, max]` answered
/// `OutOfMemory`, and `alloc_wait` waited for ever (still waiting after 3 s).
#[test]
fn a_length_that_can_never_fit_is_refused_at_once_by_every_form() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut c = memory.controller();
    for len in [PAGE_SIZE, PAGE_SIZE - GRANULE + 1] {
        assert_eq!(
            c.alloc(len),
            Err(LinearMemoryError::LengthTooLarge),
            "{len}"
        );
        assert_eq!(
            c.alloc_timeout(len, Duration::from_secs(60)),
            Err(LinearMemoryError::LengthTooLarge),
            "{len}"
        );
        let mut waiter = memory.controller();
        let answer = answers_at_once(move || waiter.alloc_wait(len));
        assert_eq!(answer, Err(LinearMemoryError::LengthTooLarge), "{len}");
        assert_eq!(
            poll_once(pin!(c.alloc_async(len))),
            Poll::Ready(Err(LinearMemoryError::LengthTooLarge))
        );
        let mut waiting = memory.controller().with_wait_policy(WaitPolicy::Wait);
        assert_eq!(
            poll_once(pin!(AsyncMemoryController::alloc(&mut waiting, len))),
            Poll::Ready(Err(LinearMemoryError::LengthTooLarge))
        );
        assert_eq!(
            c.transfer(&vec![0; (len - 4) as usize]),
            Err(LinearMemoryError::LengthTooLarge)
        );
    }
    // An alignment can make a length impossible too: nothing starts below
    // the first granule, so a page-aligned block never fits one page.
    assert_eq!(
        c.alloc_aligned(8, PAGE_SIZE),
        Err(LinearMemoryError::LengthTooLarge)
    );
    assert_eq!(
        c.alloc_aligned(PAGE_SIZE - 2 * GRANULE + 1, 2 * GRANULE),
        Err(LinearMemoryError::LengthTooLarge)
    );
    // The largest that can ever fit does.
    let ptr = c
        .alloc_aligned(PAGE_SIZE - 2 * GRANULE, 2 * GRANULE)
        .unwrap();
    c.free(ptr, PAGE_SIZE - 2 * GRANULE).unwrap();
    let ptr = c.alloc(PAGE_SIZE - GRANULE).unwrap();
    assert_eq!(ptr, GRANULE);
    // A possible request on a full memory still waits (and times out).
    assert_eq!(
        c.alloc_timeout(8, Duration::from_millis(5)),
        Err(LinearMemoryError::OutOfMemory)
    );
}

/// Before the fix: `alloc(u32::MAX)` on the largest memory answered
/// `OutOfMemory`.
#[test]
fn the_largest_memory_refuses_the_last_bytes_it_never_hands_out() {
    let memory = match SharedLinearMemory::new(1, slotarena::linear::MAX_PAGES) {
        Ok(memory) => memory,
        // 32-bit targets cannot reserve 4 GiB of address space: that is
        // the answer there, and all there is to check.
        Err(error) if cfg!(target_pointer_width = "32") => {
            assert_eq!(error, LinearMemoryError::OutOfMemory);
            return;
        }
        Err(error) => panic!("a 64-bit host refused a 4 GiB reservation: {error}"),
    };
    let mut c = memory.controller();
    assert_eq!(c.alloc(u32::MAX), Err(LinearMemoryError::LengthTooLarge));
    assert_eq!(
        c.alloc(u32::MAX - GRANULE + 2),
        Err(LinearMemoryError::LengthTooLarge)
    );
    let mut waiter = memory.controller();
    let answer = answers_at_once(move || waiter.alloc_wait(u32::MAX));
    assert_eq!(answer, Err(LinearMemoryError::LengthTooLarge));
}

/// A handle with a claim on a block of another handle's memory.
fn claimed(memory: &SharedLinearMemory) -> (LinearMemoryController, u32) {
    let mut c = memory.controller();
    let ptr = c.alloc(8).unwrap();
    c.mut_mem(ptr, 8).unwrap().fill(1);
    (c, ptr)
}

/// Whether `other` can claim the block at `ptr` (it releases it again).
fn unclaimed(other: &mut LinearMemoryController, ptr: u32) -> bool {
    let free = other.mut_mem(ptr, 8).is_ok();
    other.release();
    free
}

/// Before the fix: a `transfer` refused for its length kept the previous
/// claim (another handle's `mut_mem` answered `Busy`).
#[cfg(all(target_pointer_width = "64", not(miri)))]
#[test]
fn a_refused_transfer_releases_the_previous_claim() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let (mut c, ptr) = claimed(&memory);
    // Too long for the length prefix, zeroed and never touched: address
    // space, not resident memory (a 64-bit host with overcommit gives it).
    let len = u32::MAX as usize;
    let layout = std::alloc::Layout::array::<u8>(len).unwrap();
    // SAFETY: the layout's size is not zero.
    let bytes = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(
        !bytes.is_null(),
        "this test needs 4 GiB of untouched address space from the global allocator"
    );
    // SAFETY: `bytes` came from the global allocator with this layout
    // (`len` bytes, alignment 1), all of them initialised (zero).
    let huge = unsafe { Vec::from_raw_parts(bytes, len, len) };
    assert_eq!(c.transfer(&huge), Err(LinearMemoryError::LengthTooLarge));
    assert!(memory.controller().mut_mem(ptr, 8).is_ok());
}

/// Before the fix: `set_wait_policy` kept the claim.
#[test]
fn set_wait_policy_releases_the_previous_claim() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let (mut c, ptr) = claimed(&memory);
    c.set_wait_policy(WaitPolicy::Wait);
    assert!(memory.controller().mut_mem(ptr, 8).is_ok());
}

/// Before the fix: the async forms released the claim only when first
/// polled, so a future made but not yet polled kept it.
#[test]
fn async_forms_release_the_previous_claim_when_called() {
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut other = memory.controller();
    let (mut c, ptr) = claimed(&memory);
    {
        let _alloc = c.alloc_async(8);
        assert!(unclaimed(&mut other, ptr), "alloc_async");
    }
    c.mut_mem(ptr, 8).unwrap();
    {
        let _lock = c.lock_async(ptr, 8);
        assert!(unclaimed(&mut other, ptr), "lock_async");
    }
    c.mut_mem(ptr, 8).unwrap();
    {
        let _free = c.free_async(ptr, 8);
        assert!(unclaimed(&mut other, ptr), "free_async");
    }
    for policy in [WaitPolicy::Immediate, WaitPolicy::Wait] {
        c.set_wait_policy(policy);
        c.mut_mem(ptr, 8).unwrap();
        {
            let dynamic: &mut dyn AsyncMemoryController = &mut c;
            let _alloc = dynamic.alloc(8);
            assert!(unclaimed(&mut other, ptr), "{policy:?} alloc");
        }
        c.mut_mem(ptr, 8).unwrap();
        {
            let dynamic: &mut dyn AsyncMemoryController = &mut c;
            let _free = dynamic.free(ptr, 8);
            assert!(unclaimed(&mut other, ptr), "{policy:?} free");
        }
    }
    other.free(ptr, 8).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// surrealism's async controller releases when called too.
#[cfg(feature = "surrealism")]
#[test]
fn surrealism_async_forms_release_the_previous_claim_when_called() {
    use surrealism_types::controller::AsyncMemoryController as Surrealism;
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut other = memory.controller();
    let (mut c, ptr) = claimed(&memory);
    {
        let _alloc = Surrealism::alloc(&mut c, 8);
        assert!(unclaimed(&mut other, ptr), "alloc");
    }
    c.mut_mem(ptr, 8).unwrap();
    {
        let _free = Surrealism::free(&mut c, ptr, 8);
        assert!(unclaimed(&mut other, ptr), "free");
    }
    assert_eq!(
        memory.allocated_bytes(),
        8,
        "an unpolled free frees nothing"
    );
}

/// The decision of issue 19: a free block in a span another handle pins is
/// everyone's. Before the fix, a small request on a memory whose pool was
/// dry grew the memory (here to 2 pages) while the owner's pinned span had
/// fifteen free blocks of its class.
#[test]
fn a_small_request_takes_another_handles_free_block_before_growing() {
    let memory = SharedLinearMemory::new(1, 2).unwrap();
    let mut owner = memory.controller();
    let pinned = owner.alloc(64).unwrap(); // pins a span with free blocks
    let mut other = memory.controller();
    // The rest of the first page: granule 0 and the span's 4 granules
    // (16 blocks of 64 bytes) aside.
    let fill_len = (255 - 4) * GRANULE;
    let fill = other.alloc_aligned(fill_len, GRANULE).unwrap();
    assert_eq!(memory.size_pages(), 1);
    let mine = other.alloc(64).unwrap();
    assert_eq!(
        memory.size_pages(),
        1,
        "grew while another handle's span had free blocks"
    );
    assert!(mine < fill, "a block of the owner's span");
    other.free(mine, 64).unwrap();
    owner.free(pinned, 64).unwrap();
    other.free(fill, fill_len).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// Room in transit between the pool and a span is still room (brief H2,
/// item 1). One page with room for exactly one two-block span of the
/// 448-byte class beside the filler; two threads each allocate one block
/// and free it, over and over, so at every instant a free block or the
/// span's granules exist for each of them. Before the fix a plain `alloc`
/// answered `OutOfMemory` when it looked while the other thread's new
/// span had left the pool but was not yet published, or while the other
/// thread's last free had retired the span but not yet handed its
/// granules back.
#[test]
fn a_plain_alloc_never_answers_out_of_memory_while_room_is_in_transit() {
    const SMALL: u32 = 400;
    let memory = SharedLinearMemory::new(1, 1).unwrap();
    let mut filler = memory.controller();
    // Granule 0 never, granules 1..=251 the filler: 4 granules left.
    let fill = filler.alloc(251 * GRANULE).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let churn = |memory: SharedLinearMemory| {
        move || {
            let mut c = memory.controller();
            let mut rounds = 0u64;
            while std::time::Instant::now() < deadline {
                for _ in 0..1000 {
                    let ptr = c.alloc(SMALL).map_err(|e| (e, rounds))?;
                    c.free(ptr, SMALL).unwrap();
                    rounds += 1;
                }
            }
            Ok::<u64, (LinearMemoryError, u64)>(rounds)
        }
    };
    let (tx, rx) = mpsc::channel();
    for _ in 0..2 {
        let (tx, work) = (tx.clone(), churn(memory.clone()));
        thread::spawn(move || tx.send(work()).unwrap());
    }
    for _ in 0..2 {
        let answer = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("an alloc waited or spun instead of answering");
        match answer {
            Ok(rounds) => println!("{rounds} rounds, every alloc answered Ok"),
            Err((error, rounds)) => panic!(
                "alloc answered {error:?} after {rounds} rounds, with room for both blocks at every instant"
            ),
        }
    }
    filler.free(fill, 251 * GRANULE).unwrap();
    assert_eq!(memory.allocated_bytes(), 0);
}

/// Review R5 (the loom model `linear::an_alloc_racing_a_kept_span_reclaim_never_grows_the_memory`
/// with real threads): a span kept empty for its handle is the only room
/// of a one-page memory that may grow to two, and two handles allocate 3
/// granules and 1 granule at once. Both fit the span's 4 granules in every
/// order. Before the fix, a handle that looked while the other's reclaim
/// had retired the span but not yet given its granules back grew the
/// memory.
#[test]
fn an_alloc_racing_a_kept_span_reclaim_never_grows_the_memory() {
    const SMALL: u32 = 400; // the 448-byte class: a 4-granule span
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut rounds = 0u64;
    while std::time::Instant::now() < deadline {
        let memory = SharedLinearMemory::new(1, 2).unwrap();
        let mut owner = memory.controller();
        let block = owner.alloc(SMALL).unwrap(); // the span at granules 1..5
        let mut a = memory.controller();
        let fill = a.alloc(251 * GRANULE).unwrap();
        owner.free(block, SMALL).unwrap(); // emptied, kept for `owner`
        let mut b = memory.controller();
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let go = std::sync::Arc::clone(&start);
        let other = thread::spawn(move || {
            go.wait();
            let got = b.alloc_aligned(16, GRANULE).unwrap(); // one granule
            (b, got)
        });
        start.wait();
        let mine = a.alloc(3 * GRANULE - 100).unwrap();
        let (mut b, theirs) = other.join().unwrap();
        assert_eq!(
            memory.size_pages(),
            1,
            "round {rounds}: grew with a 4-granule kept span for 3 + 1 granules"
        );
        a.free(mine, 3 * GRANULE - 100).unwrap();
        b.free(theirs, 16).unwrap();
        a.free(fill, 251 * GRANULE).unwrap();
        drop(owner);
        assert_eq!(memory.allocated_bytes(), 0);
        rounds += 1;
    }
    println!("{rounds} rounds, the memory never grew");
}
