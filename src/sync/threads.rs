//! Per-thread numbers: a thread's shard hint, and its identity.
//!
//! Sharded structures (the arena's free pool, the linear memory's byte
//! counters) all have [`shard_count`] shards and take a thread's shard
//! from its *hint*, a number below that count. A thread's hint is given at
//! its first use: the shard the fewest live threads were given (the lowest
//! of those), counted back down when a thread exits. So while no more
//! threads live than there are shards, no two of them were given one
//! shard, however many threads came and went before and in whatever
//! order: a pool that spawns a thread per task, a harness that runs each
//! test on a fresh thread, a producer that outlived a burst of workers.
//! Numbers given in order of first use and never reused would instead put
//! every fourth new thread (with four shards) on the shard of the thread
//! that came first; the lowest free number among unbounded numbers would
//! put a survivor of a burst (number 4, masked to shard 0) and the next
//! thread (number 0) on one shard. A producer and a consumer on one shard
//! meet on one free-list head per message.
//!
//! Threads that share a shard all the same (more of them than shards, or
//! one moved onto another's) find out when they meet there, and the one
//! that met moves on ([`rehome`]); the pool counts the shard each thread
//! was given, not where it moved, so a move is a write to the thread's own
//! cell and nothing else.
//!
//! A hint steers and decides nothing: a thread whose hint was handed back
//! (it touches an arena from a thread-local destructor that runs after
//! ours) keeps using it, and at worst shares a shard for a moment. Code
//! that must tell two threads apart uses [`thread_identity`], which is
//! never reused.

use core::cell::Cell;

use super::{AtomicUsize, Mutex, Ordering, shard_count};

/// What a thread-local number holds before the thread's first use.
const UNSET: usize = usize::MAX;

/// Upper bound on [`shard_count`].
const MAX_SHARDS: usize = 64;

/// How many live threads were given each shard.
struct HintPool {
    holders: [u32; MAX_SHARDS],
}

impl HintPool {
    const fn new() -> HintPool {
        HintPool {
            holders: [0; MAX_SHARDS],
        }
    }

    /// The shard below `shards` that the fewest live threads were given,
    /// the lowest of those; counted as given.
    fn take(&mut self, shards: usize) -> usize {
        let shards = shards.clamp(1, MAX_SHARDS);
        // `min_by_key` keeps the first of equal minima: the lowest shard.
        let hint = (0..shards)
            .min_by_key(|&shard| self.holders[shard])
            .unwrap_or(0);
        self.holders[hint] += 1;
        hint
    }

    /// Takes back the hint of a thread that exits.
    fn give_back(&mut self, hint: usize) {
        self.holders[hint] -= 1;
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

/// The calling thread's shard, below [`shard_count`]: at its first use the
/// one the fewest live threads were given, so per-thread shards are picked
/// without hashing or locking (see the module docs). It stays the same
/// unless the thread moves ([`rehome`]).
#[inline]
pub(crate) fn thread_hint() -> usize {
    HINT.with(|hint| match hint.get() {
        UNSET => first_hint(hint),
        known => known,
    })
}

#[cold]
fn first_hint(cell: &Cell<usize>) -> usize {
    let hint = HINTS.lock().take(shard_count());
    // A thread already past our thread-local destructor cannot hand the
    // hint back; its shard stays counted as held, one thread too many.
    let _ = HOLDER.try_with(|holder| holder.0.set(hint));
    cell.set(hint);
    hint
}

/// Moves the calling thread to the next shard (wrapping): for a thread
/// that met another on its shard (see `arena/free_pool.rs`). The hint
/// handed back at exit stays the one the thread was given.
#[cold]
pub(crate) fn rehome() {
    HINT.with(|hint| {
        if hint.get() != UNSET {
            hint.set((hint.get() + 1) % shard_count());
        }
    });
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
    fn the_pool_gives_the_shard_the_fewest_hold_and_counts_exits() {
        let mut pool = HintPool::new();
        let first: Vec<usize> = (0..6).map(|_| pool.take(4)).collect();
        assert_eq!(first, [0, 1, 2, 3, 0, 1], "round the shards, lowest first");
        // Everyone but the last thread, on shard 1, exits.
        for hint in [0, 1, 2, 3, 0] {
            pool.give_back(hint);
        }
        let next: Vec<usize> = (0..4).map(|_| pool.take(4)).collect();
        assert_eq!(next, [0, 2, 3, 0], "shard 1 not again: a survivor holds it");
    }

    #[test]
    fn a_move_wraps_within_the_shard_count() {
        std::thread::spawn(|| {
            let shards = shard_count();
            let given = thread_hint();
            for step in 1..=shards {
                rehome();
                assert_eq!(thread_hint(), (given + step) % shards);
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn live_threads_hold_stable_hints_and_distinct_identities() {
        let barrier = std::sync::Barrier::new(8);
        let numbers: Vec<(usize, usize)> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let numbers = (thread_hint(), thread_identity());
                        // Every thread holds its numbers until all have them.
                        barrier.wait();
                        assert_eq!((thread_hint(), thread_identity()), numbers, "stable");
                        numbers
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert!(numbers.iter().all(|n| n.0 < shard_count()));
        let mut identities: Vec<usize> = numbers.iter().map(|n| n.1).collect();
        identities.sort_unstable();
        identities.dedup();
        assert_eq!(identities.len(), 8);
    }
}
