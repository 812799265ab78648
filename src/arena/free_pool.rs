//! Free slot indexes spread over per-thread shards, so threads that store
//! and free on their own do not fight over one list head.
//!
//! A pool is one [`FreeList`] per shard. Each thread has a home shard (its
//! [`thread_hint`] masked): it frees into it and allocates from it first,
//! so a slot a thread frees is the next one it gets, still in its core's
//! cache. Fresh slots (the initial ones and those added by growth) are
//! dealt to the shards in runs of adjacent indexes, so two threads working
//! from their own shards touch different cache lines without padding every
//! slot. When the home shard is empty a thread pops from the other shards,
//! one index at a time.
//!
//! Invariant F1: every free index is on exactly one list at every moment,
//! and nothing ever moves an index from one list to another: a pop hands
//! it to the popper, who fills it; a push takes it back from its owner.
//! So there is no window in which a free slot sits on no list, and from a
//! quiescent state any one thread can pop every free index, whichever
//! threads freed them (the arena's "exact capacity").

use alloc::boxed::Box;

use super::free_list::{FreeList, Links, NIL};
use crate::sync::{shard_count, thread_hint};

/// Upper bound on shards (see `sync::shard_count`), sizing head snapshots.
const MAX_SHARDS: usize = 64;

/// Adjacent fresh indexes dealt to one shard at a time: 16 slots of 8 bytes
/// or more span at least two 64-byte cache lines.
const RUN: usize = 16;

/// How many times `pop` rescans when every list looked empty but some list
/// changed during the scan (a free and an allocation raced it).
const RESCANS: usize = 4;

#[derive(Debug)]
pub(crate) struct FreePool {
    shards: Box<[FreeList]>,
    mask: usize,
}

impl FreePool {
    pub(crate) fn new() -> FreePool {
        let count = shard_count().min(MAX_SHARDS);
        debug_assert!(count.is_power_of_two(), "{count} shards");
        FreePool {
            shards: (0..count).map(|_| FreeList::new()).collect(),
            mask: count - 1,
        }
    }

    #[inline]
    fn home(&self) -> usize {
        thread_hint() & self.mask
    }

    /// Takes a free index, or `None` when every list is empty.
    #[inline]
    pub(crate) fn pop(&self, links: &impl Links) -> Option<u32> {
        let home = self.home();
        self.shards[home]
            .pop(links)
            .or_else(|| self.pop_elsewhere(home, links))
    }

    /// Pops from the other shards in turn. Answers `None` only after a scan
    /// that found every list empty while no list changed (the head tags did
    /// not move), or after [`RESCANS`] scans raced by frees and allocations.
    #[cold]
    fn pop_elsewhere(&self, home: usize, links: &impl Links) -> Option<u32> {
        // Mutation `pop_elsewhere_home_only`: no stealing from other shards.
        if cfg!(slotarena_mutation = "pop_elsewhere_home_only") {
            return None;
        }
        // The common case (a consumer thread's frees sit on its own list):
        // one pass over the other lists, without snapshots.
        if let Some(index) = self.scan(home, 1, links) {
            return Some(index);
        }
        for _ in 0..RESCANS {
            let mut before = [0u64; MAX_SHARDS];
            let before = self.snapshot(&mut before);
            if let Some(index) = self.scan(home, 0, links) {
                return Some(index);
            }
            let mut after = [0u64; MAX_SHARDS];
            if self.snapshot(&mut after) == before {
                return None;
            }
        }
        None
    }

    /// Pops from the lists `home + from`, `home + from + 1`, … (wrapping).
    #[inline]
    fn scan(&self, home: usize, from: usize, links: &impl Links) -> Option<u32> {
        (from..self.shards.len())
            .find_map(|offset| self.shards[(home + offset) & self.mask].pop(links))
    }

    /// [`pop`](Self::pop) for a registered waiter: every list is popped or
    /// touched with a read-modify-write (`FreeList::pop_or_touch`), home
    /// first, so a push racing the registration is never missed.
    pub(crate) fn pop_or_touch(&self, links: &impl Links) -> Option<u32> {
        let home = self.home();
        (0..self.shards.len())
            .find_map(|offset| self.shards[(home + offset) & self.mask].pop_or_touch(links))
    }

    /// Every head.
    fn snapshot<'s>(&self, into: &'s mut [u64; MAX_SHARDS]) -> &'s [u64] {
        for (slot, shard) in into.iter_mut().zip(self.shards.iter()) {
            *slot = shard.snapshot();
        }
        &into[..self.shards.len()]
    }

    /// Returns an index the caller owns to the caller's home shard.
    #[inline]
    pub(crate) fn push(&self, index: u32, links: &impl Links) {
        self.shards[self.home()].push(index, links);
    }

    /// Empties every list and deals `indexes` (ascending, every one owned
    /// by the caller) to the shards by runs of [`RUN`], as fresh slots
    /// are: for an arena held exclusively, whose lists nothing else
    /// touches meanwhile.
    pub(crate) fn relist(&self, indexes: &[u32], links: &impl Links) {
        for list in self.shards.iter() {
            list.empty_exclusive();
        }
        // Highest first, so each list hands out its lowest index first.
        for &index in indexes.iter().rev() {
            let shard = (index as usize / RUN) & self.mask;
            self.shards[shard].push(index, links);
        }
    }

    /// Deals fresh indexes `first..first + len`, which the caller owns, to
    /// the shards in runs of [`RUN`] adjacent indexes, lowest first.
    pub(crate) fn push_fresh(&self, first: usize, len: usize, links: &impl Links) {
        let shards = self.shards.len();
        for (shard, list) in self.shards.iter().enumerate() {
            // This shard's runs are runs number shard, shard + shards, …
            let runs = (0..len.div_ceil(RUN)).skip(shard).step_by(shards);
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
                list.push_chain(head, last, links);
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

    #[test]
    fn fresh_runs_are_adjacent_and_frees_return_home() {
        let links = VecLinks((0..100).map(|_| AtomicU32::new(NIL)).collect());
        let pool = FreePool::new();
        pool.push_fresh(0, 100, &links);
        let first: Vec<u32> = (0..RUN as u32).map(|_| pool.pop(&links).unwrap()).collect();
        let start = first[0];
        assert_eq!(start as usize % RUN, 0, "a run starts on a run boundary");
        assert_eq!(first, (start..start + RUN as u32).collect::<Vec<_>>());
        pool.push(first[3], &links);
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
    fn a_thread_can_pop_every_index_another_thread_freed() {
        let links = VecLinks((0..64).map(|_| AtomicU32::new(NIL)).collect());
        let pool = FreePool::new();
        pool.push_fresh(0, 64, &links);
        std::thread::scope(|s| {
            s.spawn(|| {
                let all: Vec<u32> = core::iter::from_fn(|| pool.pop(&links)).collect();
                assert_eq!(all.len(), 64);
                for index in all {
                    pool.push(index, &links);
                }
            });
        });
        let mut all: Vec<u32> = core::iter::from_fn(|| pool.pop(&links)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..64).collect::<Vec<_>>());
    }
}
