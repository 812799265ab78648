//! Issue 19: the linear memory's promises at their edges. Each test
//! reproduces one defect the issue found on the code before its fix.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use slotarena::linear::{LinearMemoryController, PAGE_SIZE, SharedLinearMemory};

/// The first bytes of every memory, never handed out.
const GRANULE: u32 = 256;

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
