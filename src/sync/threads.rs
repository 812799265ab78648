//! Per-thread numbers: a thread's shard hint, and its identity.
//!
//! Sharded structures (the arena's free pool, the linear memory's byte
//! counters) pick a thread's shard from its *hint*, masked to the shard
//! count. A hint is the lowest number no live thread holds, given out at a
//! thread's first use and handed back when the thread exits. So while no
//! more threads live than there are shards, no two of them share a shard,
//! however many threads came and went before: a pool that spawns a thread
//! per task, a harness that runs each test on a fresh thread. Numbers
//! given out in order of first use and never reused would instead put
//! every fourth new thread (with four shards) on the shard of the thread
//! that came first, and a producer and a consumer on one shard meet on one
//! free-list head per message.
//!
//! A hint steers and decides nothing: a thread whose hint was handed back
//! (it touches an arena from a thread-local destructor that runs after
//! ours) keeps using it, and at worst shares a shard for a moment. Code
//! that must tell two threads apart uses [`thread_identity`], which is
//! never reused.

use alloc::collections::BinaryHeap;
use core::cell::Cell;
use core::cmp::Reverse;

use super::{AtomicUsize, Mutex, Ordering};

/// What a thread-local number holds before the thread's first use.
const UNSET: usize = usize::MAX;

/// The hints no live thread holds: every number from `next` up, and the
/// handed-back ones below it.
struct HintPool {
    /// Handed back by exited threads, lowest first.
    returned: BinaryHeap<Reverse<usize>>,
    /// The lowest number never given out.
    next: usize,
}

impl HintPool {
    const fn new() -> HintPool {
        HintPool {
            returned: BinaryHeap::new(),
            next: 0,
        }
    }

    /// The lowest number no live thread holds.
    fn take(&mut self) -> usize {
        match self.returned.pop() {
            Some(Reverse(hint)) => hint,
            None => {
                self.next += 1;
                self.next - 1
            }
        }
    }

    /// Takes back the hint of a thread that exits.
    fn give_back(&mut self, hint: usize) {
        self.returned.push(Reverse(hint));
    }
}

static HINTS: Mutex<HintPool> = Mutex::new(HintPool::new());

/// Hands a thread's hint back when its thread-local storage is destroyed.
struct Holder(Cell<usize>);

impl Drop for Holder {
    fn drop(&mut self) {
        let hint = self.0.get();
        if hint != UNSET {
            HINTS.lock().give_back(hint);
        }
    }
}

std::thread_local! {
    /// The hint, read on every store and free: a plain cell with no
    /// destructor, so reading it checks nothing but `UNSET`.
    static HINT: Cell<usize> = const { Cell::new(UNSET) };
    /// The same hint, for handing back at exit (read only then).
    static HOLDER: Holder = const { Holder(Cell::new(UNSET)) };
    static IDENTITY: Cell<usize> = const { Cell::new(UNSET) };
}

/// A small number that stays the same for the calling thread and that no
/// other live thread holds (the lowest such when the thread first asked),
/// so per-thread shards can be picked with a mask, without hashing or
/// locking (see the module docs).
#[inline]
pub(crate) fn thread_hint() -> usize {
    HINT.with(|hint| match hint.get() {
        UNSET => first_hint(hint),
        known => known,
    })
}

#[cold]
fn first_hint(cell: &Cell<usize>) -> usize {
    let hint = HINTS.lock().take();
    // A thread already past our thread-local destructor cannot hand the
    // number back; it stays taken, which costs one number of `usize`.
    let _ = HOLDER.try_with(|holder| holder.0.set(hint));
    cell.set(hint);
    hint
}

/// A number that stays the same for the calling thread and that no other
/// thread of the process ever gets, before or after (assigned in order of
/// first use).
#[inline]
pub(crate) fn thread_identity() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    IDENTITY.with(|identity| match identity.get() {
        UNSET => {
            // Relaxed: only uniqueness matters, not ordering.
            let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
            identity.set(fresh);
            fresh
        }
        known => known,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn the_pool_gives_the_lowest_free_number_and_takes_numbers_back() {
        let mut pool = HintPool::new();
        let first: Vec<usize> = (0..4).map(|_| pool.take()).collect();
        assert_eq!(first, [0, 1, 2, 3]);
        pool.give_back(2);
        pool.give_back(0);
        assert_eq!(pool.take(), 0, "the lowest handed-back number first");
        assert_eq!(pool.take(), 2);
        assert_eq!(pool.take(), 4, "then numbers never given out");
    }

    /// Threads that run one after another get their numbers back: with
    /// numbers never reused, each new thread's hint would be above every
    /// earlier one's. Other tests' threads take hints meanwhile, so the
    /// check is that a thread at least once got a number at or below the
    /// one its predecessor handed back.
    #[test]
    fn a_thread_that_exits_hands_its_hint_to_a_later_thread() {
        let hint_of_a_new_thread = || std::thread::spawn(thread_hint).join().unwrap();
        let mut previous = hint_of_a_new_thread();
        let mut reused = false;
        for _ in 0..100 {
            let next = hint_of_a_new_thread();
            reused |= next <= previous;
            previous = next;
        }
        assert!(reused, "hints only grew, up to {previous}");
    }

    #[test]
    fn live_threads_hold_distinct_hints_and_identities() {
        let barrier = std::sync::Barrier::new(8);
        let numbers: Vec<(usize, usize)> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let numbers = (thread_hint(), thread_identity());
                        // Every thread holds its hint until all have one.
                        barrier.wait();
                        assert_eq!((thread_hint(), thread_identity()), numbers, "stable");
                        numbers
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut hints: Vec<usize> = numbers.iter().map(|n| n.0).collect();
        let mut identities: Vec<usize> = numbers.iter().map(|n| n.1).collect();
        hints.sort_unstable();
        hints.dedup();
        identities.sort_unstable();
        identities.dedup();
        assert_eq!((hints.len(), identities.len()), (8, 8));
    }
}
