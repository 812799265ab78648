//! Per-handle caches: the spans one controller pins, one per class, and
//! its latest allocation, so the usual `alloc` and the `mut_mem` right
//! after it touch no shared list.

use super::super::block::BlockId;
use super::super::classes::CLASS_COUNT;
use super::Allocator;
use super::spans::SpanRef;
use crate::sync::thread_hint;

/// The spans one controller pins, one per class at most, its latest
/// allocation, and the shard of the byte counters it updates.
#[derive(Debug)]
pub(in crate::linear) struct SpanCache {
    pub(super) pinned: [Option<SpanRef>; CLASS_COUNT],
    /// Start and block of the latest allocation made through this cache:
    /// a hint that lets the usual `mut_mem` right after `alloc` skip the
    /// directory. Only a hint: the block's word decides (L2).
    pub(super) last: Option<(u32, BlockId)>,
    /// Index into `Allocator::allocated`, chosen once from the creating
    /// thread (looking the thread up on every call costs more than the
    /// rare sharing of a shard by two controllers).
    pub(super) shard: usize,
}

impl SpanCache {
    /// A cache with nothing pinned, for a controller of `allocator`.
    pub(in crate::linear) fn new(allocator: &Allocator) -> SpanCache {
        SpanCache {
            pinned: [None; CLASS_COUNT],
            last: None,
            shard: thread_hint() % allocator.shards.len(),
        }
    }

    /// The shard of the byte counters this controller updates.
    pub(in crate::linear) fn shard(&self) -> usize {
        self.shard
    }

    /// The block of the latest allocation, if it started at `ptr`.
    #[inline]
    pub(in crate::linear) fn hint(&self, ptr: u32) -> Option<BlockId> {
        self.last
            .filter(|&(start, _)| start == ptr)
            .map(|(_, block)| block)
    }
}

impl Allocator {
    /// Unpins every span in `cache`.
    pub(in crate::linear) fn unpin_all(&self, cache: &mut SpanCache) {
        for (class, pinned) in cache.pinned.iter_mut().enumerate() {
            if let Some(span) = pinned.take() {
                self.classes[class].lists.lock().unpinned(span);
                self.unpin(cache.shard, class, span);
            }
        }
        // The spans' free blocks are now everyone's.
        self.made_room();
    }
}
