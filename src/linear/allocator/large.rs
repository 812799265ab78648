//! Large blocks (over 512 bytes, or aligned beyond 8 bytes): whole
//! granules from the pool, best fit (`pool.rs`), one descriptor each,
//! named in the directory only at its anchors (`directory::anchors`: the
//! first granule and one per 16 KiB), so a block costs the same few
//! directory writes whatever its size; `lookup::Allocator::holder` finds
//! a block from any of its bytes.

use alloc::vec::Vec;

use super::super::LinearMemoryError;
use super::super::block::{Block, BlockId, BlockWord};
use super::super::classes::GRANULE;
use super::super::directory::{Owner, anchors};
use super::super::pool::Pool;
use super::lookup::Names;
use super::{Allocator, Growth};

/// One large block (or a freed one, waiting for reuse).
#[derive(Default)]
pub(super) struct LargeDesc {
    pub(super) word: BlockWord,
    /// Which granules still name it in the directory (L3).
    pub(super) names: Names,
}

/// What is under the pool's lock.
pub(super) struct PoolState {
    pub(super) pool: Pool,
    pub(super) large_spare: Vec<u32>,
    pub(super) large_made: u32,
}

impl PoolState {
    /// Lists a freed large block's descriptor for reuse (L3: exactly once).
    pub(super) fn make_spare(&mut self, desc: u32) {
        debug_assert!(
            !self.large_spare.contains(&desc),
            "L3: {desc} made spare twice"
        );
        self.large_spare.push(desc);
    }
}

impl Allocator {
    #[cold]
    pub(super) fn alloc_large(
        &self,
        len: u32,
        align: u32,
        claimed: bool,
    ) -> Result<(u32, BlockId), LinearMemoryError> {
        let granules = len.div_ceil(GRANULE);
        let (start, (desc, large)) = self.take_granules_then(
            granules,
            (align / GRANULE).max(1),
            Growth::Yes,
            |state, start| {
                let anchors = anchors(start, granules).count() as u32;
                // The block freed at this very start, if only its first
                // anchor, which we now own, still names it: its descriptor
                // serves again in place, sparing the lock that making it
                // spare takes (the usual free then alloc of one size).
                if let Owner::Large { desc } = self.directory.owner_of_granule(start)
                    && let Some(large) = self.large.get(desc)
                    && large.names.retaken(anchors)
                {
                    return Ok((desc, large));
                }
                // A spare descriptor, else a new one; taken only once it exists.
                let desc = state.large_spare.last().copied();
                let desc = desc.unwrap_or(state.large_made);
                let large = self
                    .large
                    .get_or_make(desc, LargeDesc::default)
                    .ok_or(LinearMemoryError::OutOfMemory)?;
                if state.large_spare.pop().is_none() {
                    state.large_made += 1;
                }
                large.names.taken(anchors);
                Ok((desc, large))
            },
        )?;
        let offset = start * GRANULE;
        let word = Block::live(offset, len).claimed_if(claimed);
        #[cfg(slotarena_mutation = "large_publish_before_assign")]
        large.word.publish(word);
        // The directory names every anchor before the word is live (L1):
        // a free of the pointer (a guess, a double free) that races the
        // allocation finds the descriptor's dead word and answers
        // `UnknownPointer` or `DoubleFree`, and so cannot hand the granules
        // back while `assign` still writes them.
        self.name_anchors(start, granules, desc);
        #[cfg(not(slotarena_mutation = "large_publish_before_assign"))]
        large.word.publish(word);
        Ok((offset, BlockId::large(desc)))
    }

    /// Gives a freed large block's granules back to the pool (its word
    /// already says freed), and its descriptor once no granule names it.
    pub(super) fn free_large(&self, desc: u32, large: &LargeDesc, ptr: u32, len: u32) {
        // Its start must outlive its granules (L1).
        self.directory.mark_freed_start(ptr);
        let mut state = self.pool.lock();
        self.region
            .decommit_clean(state.pool.give_back(ptr / GRANULE, len.div_ceil(GRANULE)));
        if large.names.gone() {
            state.make_spare(desc);
        }
    }
}
