//! Claims (C1–C3): the exclusive `mut_mem` of one allocation, one
//! compare-and-swap on its block word.
//!
//! ## Claims (exclusive `mut_mem`)
//!
//! - C1: a claim sets the `claimed` flag of a live block's word with a
//!   compare-and-swap from a word whose range holds the claimed bytes; one
//!   claim at a time per allocation.
//! - C2: a free is a compare-and-swap from a live, unclaimed word, so a
//!   claimed allocation is never freed and its bytes never go to another
//!   allocation (S1, S2) until the claim ends.
//! - C3: live allocations never overlap (spans and large blocks are
//!   disjoint runs of granules, blocks within a span disjoint), so two
//!   claims never cover the same byte.

use super::super::LinearMemoryError;
use super::super::block::{BlockId, Place};
use super::super::region::Claim;
use super::Allocator;
use super::lookup::Word;

impl Allocator {
    /// Claims `ptr..ptr + len` inside one live allocation (C1); `len == 0`
    /// also accepts the empty range at an allocation's end.
    pub(in crate::linear) fn claim(&self, ptr: u32, len: u32) -> Result<Claim, LinearMemoryError> {
        let end = u64::from(ptr) + u64::from(len);
        let at = self.claim_in(ptr, ptr, end);
        if let Ok(Some(claim)) = at {
            return Ok(claim);
        }
        // An empty range is also the end of the allocation before `ptr`,
        // which serves when the one starting at `ptr` is missing or claimed.
        if len == 0
            && ptr > 0
            && let Some(claim) = self.claim_in(ptr - 1, ptr, end)?
        {
            return Ok(claim);
        }
        at?.ok_or(LinearMemoryError::UnknownPointer)
    }

    /// [`claim`](Self::claim), trying first `hint` (the caller's latest
    /// allocation); the answer is the same, since a live word that holds
    /// `ptr` describes the one allocation the directory would lead to (C3).
    #[inline]
    pub(in crate::linear) fn claim_hinted(
        &self,
        ptr: u32,
        len: u32,
        hint: Option<BlockId>,
    ) -> Result<Claim, LinearMemoryError> {
        if let Some(block) = hint {
            let end = u64::from(ptr) + u64::from(len);
            // Any other answer is the full lookup's to give (an empty
            // range may belong to the allocation before `ptr`).
            if let Ok(Some(claim)) = self.claim_block(block, ptr, end) {
                return Ok(claim);
            }
        }
        self.claim(ptr, len)
    }

    /// Claims `ptr..end` in the allocation whose place holds byte `probe`;
    /// `None` if no live allocation there holds `ptr`.
    pub(super) fn claim_in(
        &self,
        probe: u32,
        ptr: u32,
        end: u64,
    ) -> Result<Option<Claim>, LinearMemoryError> {
        if let Some(found) = self.lookup(probe)
            && let Some(claim) = Self::claim_word(found.block, &found.word, ptr, end)?
        {
            return Ok(Some(claim));
        }
        // Inside a large block, `probe`'s own granule may name an earlier
        // owner (a large block names only its anchors, L1).
        for found in self.large_behind(probe) {
            if let Some(claim) = Self::claim_word(found.block, &found.word, ptr, end)? {
                return Ok(Some(claim));
            }
        }
        Ok(None)
    }

    /// Claims `ptr..end` in the allocation of `block`; `None` if that
    /// block is not live or does not hold `ptr`.
    #[inline]
    pub(super) fn claim_block(
        &self,
        block: BlockId,
        ptr: u32,
        end: u64,
    ) -> Result<Option<Claim>, LinearMemoryError> {
        match self.found(block) {
            Some(found) => Self::claim_word(block, &found.word, ptr, end),
            None => Ok(None),
        }
    }

    /// Claims `ptr..end` in the allocation of `block`, whose word is `word`
    /// (a small block's span pinned by the caller, L2).
    #[inline]
    pub(super) fn claim_word(
        block: BlockId,
        word: &Word<'_>,
        ptr: u32,
        end: u64,
    ) -> Result<Option<Claim>, LinearMemoryError> {
        let mut seen = word.load();
        loop {
            if !seen.is_live() || !seen.holds(ptr, end) {
                return Ok(None);
            }
            if end > seen.end() {
                return Err(LinearMemoryError::OutOfBounds);
            }
            if seen.is_claimed() {
                // A read-modify-write before answering, so a claim
                // waiter's last look never misses a release (Q1).
                let now = word.touch();
                if now == seen {
                    return Err(LinearMemoryError::Busy);
                }
                seen = now;
                continue;
            }
            match word.claim(seen) {
                // C1 holds: we set the flag on a live word that holds the range.
                Ok(()) => return Ok(Some(Claim::new(block, ptr, (end - u64::from(ptr)) as u32))),
                Err(now) => seen = now,
            }
        }
    }

    /// Gives a claim up; its bytes must no longer be referenced.
    pub(in crate::linear) fn release(&self, claim: Claim) {
        // A claimed block cannot be freed (C2), so its word is still there,
        // and its span can be neither retired nor remade (S2): no pin needed.
        match claim.block().place() {
            Place::Small { class, desc, index } => {
                let class = usize::from(class);
                self.span_desc(class, desc)
                    .fields(class)
                    .release(u32::from(index));
            }
            Place::Large { desc } => match self.large.get(desc) {
                Some(large) => large.word.release(),
                None => debug_assert!(false, "claimed block {:?} vanished", claim.block()),
            },
        }
        self.claims_room.notify_all();
    }

    /// The claimed bytes, exclusive while `claim` is borrowed mutably.
    pub(in crate::linear) fn bytes_mut<'a>(&'a self, claim: &'a mut Claim) -> &'a mut [u8] {
        self.region.bytes_mut(claim)
    }

    /// The claimed bytes, read-only.
    pub(in crate::linear) fn bytes<'a>(&'a self, claim: &'a Claim) -> &'a [u8] {
        self.region.bytes(claim)
    }
}
