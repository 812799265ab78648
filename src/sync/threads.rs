//! Per-thread numbers: a thread's shard hint, and its identity.
//!
//! Sharded structures (the arena's free pool, the linear memory's byte
//! counters) all have [`shard_count`] shards and take a thread's shard
//! from its *hint*, a number below that count. A pool counts how many
//! live threads call each shard home. A thread's hint is given at its
//! first use, the shard the fewest call home (the lowest of those), and
//! counted back down when the thread exits. So while no more threads live
//! than there are shards, no two of them call one shard home, however
//! many threads came and went before and in whatever order: a pool that
//! spawns a thread per task, a harness that runs each test on a fresh
//! thread, a producer that outlived a burst of workers. Numbers given in
//! order of first use and never reused would instead put every fourth new
//! thread (with four shards) on the shard of the thread that came first;
//! the lowest free number among unbounded numbers would put a survivor of
//! a burst (number 4, masked to shard 0) and the next thread (number 0)
//! on one shard. A producer and a consumer on one shard meet on one
//! free-list head per message.
//!
//! Threads that share a shard all the same (more threads lived than
//! shards, and some of them exited) find out when they meet there, and
//! the one that met moves to the shard the fewest call home ([`rehome`]),
//! if that leaves the two more even; the pool counts the move. A thread
//! alone on its shard never moves, and threads that outnumber the shards
//! stay spread evenly, without taking the pool's lock at every meeting.
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

/// How many live threads call each shard home.
struct HintPool {
    holders: [u32; MAX_SHARDS],
}

impl HintPool {
    const fn new() -> HintPool {
        HintPool {
            holders: [0; MAX_SHARDS],
        }
    }

    /// The shard below `shards` that the fewest live threads call home,
    /// the lowest of those; counted as the caller's.
    fn take(&mut self, shards: usize) -> usize {
        let hint = Self::least_held(&self.holders[..shards.clamp(1, MAX_SHARDS)], usize::MAX);
        self.holders[hint] += 1;
        changed();
        hint
    }

    /// For a thread on shard `from` that met another there: the shard it
    /// should call home, counted as its. Another only if that one has at
    /// least two fewer holders, so the move leaves the two more even;
    /// threads that outnumber the shards, spread evenly, stay put.
    fn move_from(&mut self, from: usize, shards: usize) -> usize {
        let to = Self::least_held(&self.holders[..shards.clamp(1, MAX_SHARDS)], from);
        if to == from || self.holders[to] + 1 >= self.holders[from] {
            return from;
        }
        self.holders[from] -= 1;
        self.holders[to] += 1;
        changed();
        to
    }

    /// Takes back the hint of a thread that exits.
    fn give_back(&mut self, hint: usize) {
        self.holders[hint] -= 1;
        changed();
    }

    /// The index of the smallest count other than `except` (the lowest
    /// of equal ones), or `except` when there is no other.
    fn least_held(holders: &[u32], except: usize) -> usize {
        // `min_by_key` keeps the first of equal minima: the lowest shard.
        (0..holders.len())
            .filter(|&shard| shard != except)
            .min_by_key(|&shard| holders[shard])
            .unwrap_or(except.min(holders.len() - 1))
    }
}

/// Counts the changes to [`HINTS`], so a thread that found no better
/// shard does not take the lock again until something changed.
static CHANGES: AtomicUsize = AtomicUsize::new(0);

/// Called with [`HINTS`] locked, after a change.
fn changed() {
    // Relaxed: a hint for `rehome`, which decides under the lock.
    CHANGES.fetch_add(1, Ordering::Relaxed);
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
    /// The same hint, for handing back at exit (read only then, and
    /// written again by a move).
    static HOLDER: Holder = const { Holder(Cell::new(UNSET)) };
    static IDENTITY: Cell<usize> = const { Cell::new(UNSET) };
    /// [`CHANGES`] when [`rehome`] last found no better shard (`UNSET`,
    /// never a count: none yet).
    static SETTLED: Cell<usize> = const { Cell::new(UNSET) };
}

/// The calling thread's shard, below [`shard_count`]: at its first use the
/// one the fewest live threads call home, so per-thread shards are picked
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

/// For a thread that met another on its shard (see `arena/free_pool.rs`):
/// moves it to the shard the fewest live threads call home, if that
/// leaves the two more even (see `HintPool::move_from`), and counts the
/// move, so threads that come later are not given the shard it moved to
/// and its exit hands back the shard it holds then.
#[cold]
pub(crate) fn rehome() {
    let current = HINT.with(Cell::get);
    // Relaxed: a hint; the lock below decides.
    if current == UNSET || SETTLED.with(Cell::get) == CHANGES.load(Ordering::Relaxed) {
        return;
    }
    // Only a thread whose count the pool holds moves it: one in its
    // thread-local teardown has handed its count back (or never had it
    // held), and moving would take another thread's count instead.
    if HOLDER.try_with(|holder| holder.0.get()) != Ok(current) {
        return;
    }
    let mut pool = HINTS.lock();
    let moved = pool.move_from(current, shard_count());
    if moved == current {
        // Nowhere better while nothing changes: threads that outnumber
        // the shards meet often, and need not take the lock each time.
        SETTLED.with(|settled| settled.set(CHANGES.load(Ordering::Relaxed)));
    } else {
        HINT.with(|hint| hint.set(moved));
        let _ = HOLDER.try_with(|holder| holder.0.set(moved));
    }
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
    fn a_thread_moves_only_where_it_leaves_the_shards_more_even() {
        let mut pool = HintPool::new();
        // Four alone on four shards: a meeting (a thief, a waiter's
        // touch) moves nobody.
        let given: Vec<usize> = (0..4).map(|_| pool.take(4)).collect();
        assert_eq!(given, [0, 1, 2, 3]);
        assert_eq!(pool.move_from(1, 4), 1, "alone on its shard");
        // A fifth shares shard 0; spread evenly, no move helps.
        assert_eq!(pool.take(4), 0);
        assert_eq!(pool.move_from(0, 4), 0, "outnumbered shards stay even");
        // Shard 2's thread exits: one of shard 0's two moves there, and
        // the move is counted, so the next thread is not given shard 2.
        pool.give_back(2);
        assert_eq!(pool.move_from(0, 4), 2);
        assert_eq!(pool.holders[..4], [1, 1, 1, 1]);
        assert_eq!(pool.take(4), 0);
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
