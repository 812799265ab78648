//! Free slot indices spread over per-thread shards, so threads that store
//! and free on their own do not fight over one list head.
//!
//! A pool is a shared [`FreeList`] (slots that no thread freed yet: the
//! initial ones and those added by growth) plus one `FreeList` per shard.
//! Each thread has a home shard (its [`thread_hint`] masked): it frees into
//! it and allocates from it first, so a slot a thread frees is the next one
//! it gets, still in its core's cache. When the home shard is empty the
//! thread takes from the shared list, then steals another shard's whole
//! chain at once. Threads beyond the shard count share shards: that costs
//! contention, never correctness.
//!
//! Every index is on at most one list at a time, and every list is the
//! ABA-safe stack of `free_list.rs`, so the pool inherits its guarantees.
//! `pop` answers `None` only after seeing every list empty twice with no
//! operation in between (the head tags did not move), so "full" is never
//! reported while a slot sat free the whole time.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::free_list::{FreeList, NIL};
use crate::sync::{AtomicU32, Ordering, shard_count, thread_hint};

/// Upper bound on shards (see `sync::shard_count`), sizing stack snapshots.
const MAX_SHARDS: usize = 64;

#[derive(Debug)]
pub(crate) struct FreePool {
    shared: FreeList,
    shards: Box<[FreeList]>,
    mask: usize,
}

impl FreePool {
    pub(crate) fn new() -> FreePool {
        let count = shard_count().min(MAX_SHARDS);
        debug_assert!(count.is_power_of_two(), "{count} shards");
        FreePool {
            shared: FreeList::new(),
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
    pub(crate) fn pop<'a>(&self, links: impl Fn(u32) -> &'a AtomicU32 + Copy) -> Option<u32> {
        let home = self.home();
        self.shards[home]
            .pop(links)
            .or_else(|| self.pop_elsewhere(home, links))
    }

    #[cold]
    fn pop_elsewhere<'a>(
        &self,
        home: usize,
        links: impl Fn(u32) -> &'a AtomicU32 + Copy,
    ) -> Option<u32> {
        loop {
            let mut before = [0u64; MAX_SHARDS + 1];
            let before = self.snapshot(&mut before);
            if let Some(index) = self.shared.pop(links) {
                return Some(index);
            }
            for offset in 0..self.shards.len() {
                let victim = (home + offset) & self.mask;
                let Some(first) = self.shards[victim].take_all() else {
                    continue;
                };
                // We own the whole chain: keep its first index, move the
                // rest to our home shard for the next pops.
                // Relaxed: ordered by `take_all`'s Acquire.
                let rest = links(first).load(Ordering::Relaxed);
                if rest != NIL {
                    self.shards[home].push_chain(rest, Self::last_of(rest, links), links);
                }
                return Some(first);
            }
            let mut after = [0u64; MAX_SHARDS + 1];
            if before.iter().all(|&head| FreeList::is_empty_snapshot(head))
                && self.snapshot(&mut after) == before
            {
                return None;
            }
        }
    }

    /// Follows an owned chain to its last index.
    fn last_of<'a>(mut index: u32, links: impl Fn(u32) -> &'a AtomicU32) -> u32 {
        loop {
            // Relaxed: the chain is owned by the caller (see `take_all`).
            match links(index).load(Ordering::Relaxed) {
                NIL => return index,
                next => index = next,
            }
        }
    }

    /// Every head, shared list first.
    fn snapshot<'s>(&self, into: &'s mut [u64; MAX_SHARDS + 1]) -> &'s [u64] {
        into[0] = self.shared.snapshot();
        for (slot, shard) in into[1..].iter_mut().zip(self.shards.iter()) {
            *slot = shard.snapshot();
        }
        &into[..=self.shards.len()]
    }

    /// Returns an index the caller owns to the caller's home shard.
    #[inline]
    pub(crate) fn push<'a>(&self, index: u32, links: impl Fn(u32) -> &'a AtomicU32) {
        self.shards[self.home()].push(index, links);
    }

    /// Adds a linked chain of fresh indexes to the shared list.
    pub(crate) fn push_chain<'a>(
        &self,
        first: u32,
        last: u32,
        links: impl Fn(u32) -> &'a AtomicU32,
    ) {
        self.shared.push_chain(first, last, links);
    }

    /// Empties every list and returns the indexes, now owned by the caller.
    pub(crate) fn drain<'a>(&self, links: impl Fn(u32) -> &'a AtomicU32 + Copy) -> Vec<u32> {
        let mut drained = Vec::new();
        for list in core::iter::once(&self.shared).chain(self.shards.iter()) {
            let mut next = list.take_all();
            while let Some(index) = next {
                drained.push(index);
                // Relaxed: the chain is owned (see `take_all`).
                next = Some(links(index).load(Ordering::Relaxed)).filter(|&n| n != NIL);
            }
        }
        drained
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn frees_return_home_and_steals_take_whole_chains() {
        let links: Vec<AtomicU32> = (0..6)
            .map(|i| AtomicU32::new(if i < 5 { i + 1 } else { NIL }))
            .collect();
        let link = |i: u32| &links[i as usize];
        let pool = FreePool::new();
        pool.push_chain(0, 5, link);
        let taken: Vec<u32> = (0..6).map(|_| pool.pop(link).unwrap()).collect();
        assert_eq!(taken, [0, 1, 2, 3, 4, 5]);
        assert_eq!(pool.pop(link), None);
        pool.push(4, link);
        pool.push(2, link);
        assert_eq!(pool.pop(link), Some(2), "the home shard is LIFO");
        let other = std::thread::scope(|s| {
            s.spawn(|| {
                pool.push(0, link);
                pool.push(1, link);
            });
            s.spawn(|| pool.pop(link)).join().unwrap()
        });
        assert!(other.is_some(), "a thread with an empty home steals");
        let mut rest = pool.drain(link);
        rest.extend(other);
        rest.sort_unstable();
        assert_eq!(rest, [0, 1, 4]);
        assert_eq!(pool.pop(link), None);
    }
}
