//! Free slot indexes spread over per-thread shards, so threads that store
//! and free on their own do not fight over one list head.
//!
//! A pool is a [`Shard`] per thread group. Each thread has a home shard
//! (its [`thread_hint`] masked): it frees into it and allocates from it
//! first, so a slot a thread frees is the next one it gets, still in its
//! core's cache. Fresh slots (the initial ones and those added by growth)
//! are dealt to the shards in runs of adjacent indexes, so two threads
//! working from their own shards touch different cache lines without
//! padding every slot. When the home shard is empty a thread pops from the
//! other shards.
//!
//! Each shard has two lists, and a `side` that says which one is *hot*:
//! its frees go to the hot list, and other threads take from the *cold*
//! one. When a thief finds the cold list empty and the hot one not, it
//! takes from the hot list and flips `side`: the frees gathered there are
//! now a batch that the thief pops without meeting the shard's frees, which
//! go to the other list from then on. That is the producer → consumer
//! shape: the consumer frees onto its hot list while the producer drains
//! the cold one, so the two threads no longer compare-and-swap one list
//! head per message; they meet once per batch (the flip).
//!
//! Two threads can share a home shard (more threads lived than there are
//! shards, and some of them exited; see `sync/threads.rs`). Then every
//! store and free of both meets on one list head, which costs more than a
//! mutex would. So a thread whose store or free on its home shard's hot
//! list loses a compare-and-swap to a thread sharing the shard calls
//! [`rehome`], which moves it to the shard the fewest threads call home
//! if that leaves the two more even, as striped counters (Java's
//! `LongAdder`) spread threads that collide. A thief also moves that
//! head, when it takes the hot list's gathered frees; it flips the lists
//! before it pops, so the shard's thread, seeing the flip after losing,
//! does not take it for a sharer (`Shard::moved_by_a_sharer`). The lists
//! a thread leaves stay where they are, reachable by every thread's
//! steal.
//!
//! Invariant F1: every free index is on exactly one list at every moment,
//! and nothing ever moves an index from one list to another: a pop hands
//! it to the popper, who fills it; a push takes it back from its owner.
//! `side` only steers which list a push or a pop tries first; no list is
//! ever skipped by a thread that would otherwise answer full, grow or
//! sleep. So there is no window in which a free slot sits on no list, and
//! from a quiescent state any one thread can pop every free index,
//! whichever threads freed them (the arena's "exact capacity").

use alloc::boxed::Box;

use super::free_list::{FreeList, Links, NIL};
use crate::sync::{AtomicUsize, CachePadded, Ordering, fence, rehome, shard_count, thread_hint};

/// Upper bound on shards (see `sync::shard_count`).
const MAX_SHARDS: usize = 64;

/// Upper bound on lists (two per shard), sizing head snapshots.
const MAX_LISTS: usize = 2 * MAX_SHARDS;

/// Adjacent fresh indexes dealt to one shard at a time: 16 slots of 8 bytes
/// or more span at least two 64-byte cache lines.
const RUN: usize = 16;

/// How many times `pop` rescans when every list looked empty but some list
/// changed during the scan (a free and an allocation raced it).
const RESCANS: usize = 4;

/// One thread group's free indexes: two lists, one of them hot (see the
/// module docs).
#[derive(Debug)]
struct Shard {
    lists: [FreeList; 2],
    hints: CachePadded<Hints>,
}

/// A shard's hints, which steer its threads and thieves but decide
/// nothing: every path that must not miss a free index looks at every
/// list, so any value read, however stale, is correct. On a line of their
/// own: the shard's freeing thread reads `side` on every free, its
/// stealing thread reads `victim` on every steal, and each is written once
/// per batch.
#[derive(Debug, Default)]
struct Hints {
    /// Counts the flips; its low bit is the hot list's number.
    side: AtomicUsize,
    /// The shard this shard's threads last stole from: where they look
    /// first next time (a producer's consumer).
    victim: AtomicUsize,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            lists: [FreeList::new(), FreeList::new()],
            hints: CachePadded::new(Hints::default()),
        }
    }

    /// The flip count: its low bit is the hot list's number.
    #[inline]
    fn side(&self) -> usize {
        // Relaxed: a hint (see `Hints`); nothing is published through it.
        self.hints.side.load(Ordering::Relaxed)
    }

    /// The hot list's number.
    #[inline]
    fn hot(&self) -> usize {
        self.side() & 1
    }

    /// Pops for another shard's thread: the cold list first; once it is
    /// drained, the hot list's gathered frees become the next batch (the
    /// flip), so the shard's frees and the thief's pops stop meeting on one
    /// list head.
    #[inline]
    fn steal(&self, links: &impl Links) -> Option<u32> {
        let side = self.side();
        let hot = side & 1;
        if let Some(index) = self.lists[hot ^ 1].pop(links) {
            return Some(index);
        }
        // Mutation `steal_ignores_hot_list`: a thief leaves the gathering
        // batch to the shard's own threads (as a thread-local free list
        // would), hiding it from a store that would otherwise answer full.
        if cfg!(slotarena_mutation = "steal_ignores_hot_list") {
            return None;
        }
        // Flip before popping, and only a list with something to take: a
        // home thread whose compare-and-swap this pop beats then sees the
        // flip (`moved_by_a_sharer`) and does not take the thief for a
        // thread sharing its shard. Relaxed: a hint, published to that
        // thread by the releasing pop. If another thief flipped first,
        // leave it; the list is cold now either way.
        if self.lists[hot].looks_empty() {
            return None;
        }
        let _ = self.hints.side.compare_exchange(
            side,
            side.wrapping_add(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.lists[hot].pop_releasing(links)
    }

    /// Whether a home thread's compare-and-swap on the hot list, begun
    /// when the flip count was `side`, lost to a thread that shares the
    /// shard: it `met` someone, and no thief flipped the lists meanwhile
    /// (a thief flips before it pops the hot list, and the lost
    /// compare-and-swap acquired the thief's pop).
    #[inline]
    fn moved_by_a_sharer(&self, met: bool, side: usize) -> bool {
        met && self.side() == side
    }

    /// Pushes a freed index onto the hot list.
    #[inline]
    fn push(&self, index: u32, links: &impl Links) {
        self.lists[self.hot()].push(index, links);
    }

    /// [`push`](Self::push), with `set_next` writing the index's link;
    /// whether it met a thread that shares the shard.
    #[inline]
    fn push_with(&self, index: u32, set_next: impl Fn(u32)) -> bool {
        let side = self.side();
        let met = self.lists[side & 1].push_with(index, set_next);
        if met {
            // Acquire what the thread that moved the head did before (a
            // thief's flip), read by the failed compare-and-swap.
            fence(Ordering::Acquire);
        }
        self.moved_by_a_sharer(met, side)
    }
}

/// Where a store's one try at its home shard (`FreePool::try_pop_home`)
/// left off.
pub(crate) struct Missed {
    home: usize,
    /// The hot list's number if the try found it empty; `None` if the try
    /// lost a race on it.
    hot: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct FreePool {
    shards: Box<[Shard]>,
    mask: usize,
}

impl FreePool {
    pub(crate) fn new() -> FreePool {
        // At least one: `shard` relies on `mask` being `len - 1`.
        let count = shard_count().clamp(1, MAX_SHARDS);
        debug_assert!(count.is_power_of_two(), "{count} shards");
        FreePool {
            shards: (0..count).map(|_| Shard::new()).collect(),
            mask: count - 1,
        }
    }

    #[inline]
    fn home(&self) -> usize {
        thread_hint() & self.mask
    }

    /// Shard `number & mask`: any number names a shard, so no bounds
    /// check, which the compiler could not drop (every store and free
    /// would pay for it).
    #[inline]
    fn shard(&self, number: usize) -> &Shard {
        let index = number & self.mask;
        debug_assert!(index < self.shards.len(), "shard {index}");
        // SAFETY: `mask` is `shards.len() - 1` (`new`), so
        // `index <= mask < shards.len()`.
        unsafe { self.shards.get_unchecked(index) }
    }

    /// Every list, shard by shard from `home`.
    fn lists_from(&self, home: usize) -> impl Iterator<Item = &FreeList> {
        (0..self.shards.len())
            .flat_map(move |offset| &self.shards[(home + offset) & self.mask].lists)
    }

    /// Takes a free index, or `None` when every list is empty: the home
    /// shard's hot list (LIFO: the slot this thread freed last), then its
    /// cold one, then the other shards.
    ///
    /// Only the first pop is inlined: it is the whole of a thread that
    /// frees what it stores, and each further list inlined kept registers
    /// busy on that path.
    #[inline]
    pub(crate) fn pop(&self, links: &impl Links) -> Option<u32> {
        let home = self.home();
        let shard = self.shard(home);
        let hot = shard.hot();
        if let Some(index) = shard.lists[hot].pop(links) {
            return Some(index);
        }
        self.pop_cold(home, hot, links)
    }

    /// One try at the home shard's hot list, for a store's fast path (see
    /// `FreeList::try_pop_node`, which answers the index's node too). On a
    /// miss the caller goes on with [`pop_missed`](Self::pop_missed).
    #[inline]
    pub(crate) fn try_pop_home<N>(
        &self,
        node: impl Fn(u32) -> (N, u32),
    ) -> Result<(u32, N), Missed> {
        let home = self.home();
        let shard = self.shard(home);
        let side = shard.side();
        let hot = side & 1;
        match shard.lists[hot].try_pop_node(node) {
            Ok(Some(popped)) => Ok(popped),
            Ok(None) => Err(Missed {
                home,
                hot: Some(hot),
            }),
            Err(met) => {
                if shard.moved_by_a_sharer(met, side) {
                    rehome();
                }
                Err(Missed { home, hot: None })
            }
        }
    }

    /// The rest of [`pop`](Self::pop) after a [`try_pop_home`](Self::try_pop_home)
    /// missed: past the hot list if the try found it empty, else (it lost
    /// a race) the whole pop again.
    #[inline]
    pub(crate) fn pop_missed(&self, missed: Missed, links: &impl Links) -> Option<u32> {
        match missed.hot {
            Some(hot) => self.pop_cold(missed.home, hot, links),
            None => self.pop_again(links),
        }
    }

    /// [`pop`](Self::pop), out of line: the rare retry of a store whose
    /// one try lost a race.
    #[cold]
    #[inline(never)]
    fn pop_again(&self, links: &impl Links) -> Option<u32> {
        self.pop(links)
    }

    /// [`pop`](Self::pop) past the home shard's hot list (number `hot`).
    #[inline(never)]
    fn pop_cold(&self, home: usize, hot: usize, links: &impl Links) -> Option<u32> {
        if let Some(index) = self.shard(home).lists[hot ^ 1].pop(links) {
            return Some(index);
        }
        self.pop_elsewhere(home, links)
    }

    /// Pops from the other shards in turn. Answers `None` only after a scan
    /// that found every list empty while no list changed (the head tags did
    /// not move), or after [`RESCANS`] scans raced by frees and allocations.
    #[inline]
    fn pop_elsewhere(&self, home: usize, links: &impl Links) -> Option<u32> {
        // Mutation `pop_elsewhere_home_only`: no stealing from other shards.
        if cfg!(slotarena_mutation = "pop_elsewhere_home_only") {
            return None;
        }
        // The common case, a producer's: its consumer's frees sit on the
        // consumer's shard, where this shard's threads stole last time,
        // and the batch there is its cold list. That pop is inlined here;
        // the rest is `steal_elsewhere`, out of line.
        // Relaxed: a hint (see `Hints`).
        let victim = self.shard(home).hints.victim.load(Ordering::Relaxed) & self.mask;
        if victim != home {
            let shard = &self.shards[victim];
            if let Some(index) = shard.lists[shard.hot() ^ 1].pop(links) {
                return Some(index);
            }
        }
        self.steal_elsewhere(home, victim, links)
    }

    /// [`pop_elsewhere`](Self::pop_elsewhere) once the victim's cold list
    /// was empty: the victim's whole steal (its hot list, flipping), then
    /// the other shards.
    #[cold]
    #[inline(never)]
    fn steal_elsewhere(&self, home: usize, victim: usize, links: &impl Links) -> Option<u32> {
        if victim != home
            && let Some(index) = self.shards[victim].steal(links)
        {
            return Some(index);
        }
        let hints = &self.shard(home).hints;
        // Else one pass over the other shards, without snapshots.
        if let Some((shard, index)) = self.scan(home, 1, links) {
            hints.victim.store(shard, Ordering::Relaxed);
            return Some(index);
        }
        for _ in 0..RESCANS {
            let mut before = [0u64; MAX_LISTS];
            let before = self.snapshot(&mut before);
            if let Some((_, index)) = self.scan(home, 0, links) {
                return Some(index);
            }
            // Read-modify-writes: unchanged since `before` means unchanged
            // up to now (see `FreeList::newest`).
            if self
                .lists_from(0)
                .map(FreeList::newest)
                .eq(before.iter().copied())
            {
                return None;
            }
        }
        None
    }

    /// Steals from the shards `home + from`, `home + from + 1`, … (wrapping),
    /// both lists of each; answers the shard and the index.
    #[inline]
    fn scan(&self, home: usize, from: usize, links: &impl Links) -> Option<(usize, u32)> {
        (from..self.shards.len()).find_map(|offset| {
            let shard = (home + offset) & self.mask;
            self.shards[shard].steal(links).map(|index| (shard, index))
        })
    }

    /// [`pop`](Self::pop) for a registered waiter: every list is popped or
    /// touched with a read-modify-write (`FreeList::pop_or_touch`), home
    /// first, so a push racing the registration is never missed.
    pub(crate) fn pop_or_touch(&self, links: &impl Links) -> Option<u32> {
        self.lists_from(self.home())
            .find_map(|list| list.pop_or_touch(links))
    }

    /// Every head, as this thread last saw it or newer.
    fn snapshot<'s>(&self, into: &'s mut [u64; MAX_LISTS]) -> &'s [u64] {
        let mut count = 0;
        for (slot, list) in into.iter_mut().zip(self.lists_from(0)) {
            *slot = list.snapshot();
            count += 1;
        }
        &into[..count]
    }

    /// Returns an index the caller owns to the caller's home shard;
    /// `set_next` writes the index's link (see `FreeList::push_with`). A
    /// push that met another thread there moves the caller's home.
    #[inline]
    pub(crate) fn push_with(&self, index: u32, set_next: impl Fn(u32)) {
        if self.shard(self.home()).push_with(index, set_next) {
            rehome();
        }
    }

    /// Empties every list and deals `indexes` (ascending, every one owned
    /// by the caller) to the shards by runs of [`RUN`], as fresh slots
    /// are: for an arena held exclusively, whose lists nothing else
    /// touches meanwhile.
    pub(crate) fn relist(&self, indexes: &[u32], links: &impl Links) {
        for list in self.lists_from(0) {
            list.empty_exclusive();
        }
        // Highest first, so each list hands out its lowest index first.
        for &index in indexes.iter().rev() {
            let shard = (index as usize / RUN) & self.mask;
            self.shards[shard].push(index, links);
        }
    }

    /// Deals fresh indexes `first..first + len`, which the caller owns, to
    /// the shards' hot lists in runs of [`RUN`] adjacent indexes, lowest
    /// first.
    pub(crate) fn push_fresh(&self, first: usize, len: usize, links: &impl Links) {
        let shards = self.shards.len();
        for (number, shard) in self.shards.iter().enumerate() {
            // This shard's runs are runs number `number`, `number + shards`, …
            let runs = (0..len.div_ceil(RUN)).skip(number).step_by(shards);
            let mut chain: Option<(u32, u32)> = None;
            for run in runs {
                let start = first + run * RUN;
                let end = (start + RUN).min(first + len);
                for index in start..end {
                    let index = index as u32;
                    links.set_next(index, NIL);
                    chain = match chain {
                        None => Some((index, index)),
                        Some((head, last)) => {
                            links.set_next(last, index);
                            Some((head, index))
                        }
                    };
                }
            }
            if let Some((head, last)) = chain {
                shard.lists[shard.hot()].push_chain(head, last, links);
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::free_list::tests::VecLinks;
    use super::*;
    use crate::sync::AtomicU32;
    use std::vec::Vec;

    /// What the arena's frees do, with the links in `links`.
    fn push(pool: &FreePool, index: u32, links: &VecLinks) {
        pool.push_with(index, |top| links.set_next(index, top));
    }

    #[test]
    fn fresh_runs_are_adjacent_and_frees_return_home() {
        let links = VecLinks((0..100).map(|_| AtomicU32::new(NIL)).collect());
        let pool = FreePool::new();
        pool.push_fresh(0, 100, &links);
        let first: Vec<u32> = (0..RUN as u32).map(|_| pool.pop(&links).unwrap()).collect();
        let start = first[0];
        assert_eq!(start as usize % RUN, 0, "a run starts on a run boundary");
        assert_eq!(first, (start..start + RUN as u32).collect::<Vec<_>>());
        push(&pool, first[3], &links);
        assert_eq!(pool.pop(&links), Some(first[3]), "the home shard is LIFO");
        let mut rest: Vec<u32> = core::iter::from_fn(|| pool.pop(&links)).collect();
        rest.extend(&first);
        rest.sort_unstable();
        assert_eq!(
            rest,
            (0..100).collect::<Vec<_>>(),
            "every index exactly once"
        );
    }

    #[test]
    fn a_thief_takes_gathered_frees_as_one_batch_and_flips_the_lists() {
        let links = VecLinks((0..16).map(|_| AtomicU32::new(NIL)).collect());
        let shard = Shard::new();
        for index in 0..4 {
            shard.push(index, &links);
        }
        assert_eq!(shard.hot(), 0);
        // The cold list is empty: the thief takes from the hot one, which
        // becomes the cold one, the batch.
        assert_eq!(shard.steal(&links), Some(3));
        assert_eq!(shard.hot(), 1);
        // The shard's next free goes to the other list, away from the batch.
        shard.push(9, &links);
        let batch: Vec<u32> = (0..3).map(|_| shard.steal(&links).unwrap()).collect();
        assert_eq!(batch, [2, 1, 0]);
        assert_eq!(shard.hot(), 1, "no flip while the batch lasts");
        // Batch drained: the free gathered meanwhile is the next batch.
        assert_eq!(shard.steal(&links), Some(9));
        assert_eq!(shard.hot(), 0);
        assert_eq!(shard.steal(&links), None);
        // The shard's own thread pops its hot list first, then the cold one.
        let pool = FreePool::new();
        let home = &pool.shards[pool.home()];
        home.lists[home.hot() ^ 1].push(5, &links);
        home.push(6, &links);
        assert_eq!(pool.pop(&links), Some(6));
        assert_eq!(pool.pop(&links), Some(5));
        assert_eq!(pool.pop(&links), None);
    }

    #[test]
    fn a_home_thread_tells_a_thread_sharing_its_shard_from_a_thief() {
        let links = VecLinks((0..4).map(|_| AtomicU32::new(NIL)).collect());
        let shard = Shard::new();
        assert!(!shard.push_with(0, |top| links.set_next(0, top)), "alone");
        // Another push lands between this push's read of the head and its
        // compare-and-swap: a thread that shares the shard.
        let met = shard.push_with(1, |top| {
            if top == 0 {
                shard.push(2, &links);
            }
            links.set_next(1, top);
        });
        assert!(met, "met a thread sharing the shard");
        // A thief takes the hot list's top meanwhile (the cold list is
        // empty): it flips the lists first, so this is no sharer.
        let met = shard.push_with(3, |top| {
            if top == 1 {
                assert_eq!(shard.steal(&links), Some(1));
            }
            links.set_next(3, top);
        });
        assert!(!met, "a thief taken for a thread sharing the shard");
        let mut left: Vec<u32> = core::iter::from_fn(|| shard.steal(&links)).collect();
        left.sort_unstable();
        assert_eq!(left, [0, 2, 3], "every index but the stolen one on a list");
    }

    #[test]
    fn a_thread_can_pop_every_index_another_thread_freed() {
        let links = VecLinks((0..64).map(|_| AtomicU32::new(NIL)).collect());
        let pool = FreePool::new();
        pool.push_fresh(0, 64, &links);
        std::thread::scope(|s| {
            s.spawn(|| {
                let all: Vec<u32> = core::iter::from_fn(|| pool.pop(&links)).collect();
                assert_eq!(all.len(), 64);
                for index in all {
                    push(&pool, index, &links);
                }
            });
        });
        let mut all: Vec<u32> = core::iter::from_fn(|| pool.pop(&links)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..64).collect::<Vec<_>>());
    }
}
