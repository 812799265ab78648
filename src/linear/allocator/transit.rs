//! Room in transit (T1–T2): a span leaving the pool is in no list until
//! it is published, and a span retiring is in no list until its granules
//! are back in the pool. An allocation that looked in such a window would
//! find the room nowhere, though it exists at every instant: before the
//! window as free granules (or a span's free blocks), after it as a
//! span's free blocks (or free granules). Such an allocation looks again.
//!
//! - T1: every move of room between the pool and a span that passes
//!   through no list (a new span from taking its granules to publishing
//!   its state; a retiring span from the compare-and-swap that retires it
//!   to its granules back in the pool) runs inside a *transit*: a
//!   read-modify-write on a shard's transit word that counts it started
//!   and in flight, and one after the move that counts it done (both
//!   AcqRel). A retiring span's transit starts before the compare-and-swap
//!   that retires it; a new span's starts under the pool's lock, in the
//!   hold that takes its granules, which a look reads under that lock too
//!   (so a look that failed to take granules started no transit).
//! - T2: an allocation answers `OutOfMemory`, and grows the memory, only
//!   after a *settled* look:
//!   a look that found no room, between a read-modify-write of every
//!   shard's transit word before (no transit in flight) and one after (no
//!   transit started since). Read-modify-writes of one word are totally
//!   ordered, so every transit either ended before the first (its end
//!   synchronizes with it: the look sees the room where the transit put
//!   it) or started after the second (the look synchronizes with its
//!   start: the look saw the room where it was; for a new span, the
//!   pool's lock orders the look's reading of the pool before the take).
//!   Any other look is followed by another.
//!
//! An unsettled look is followed by another at once (with a spin or a
//! yield, `Backoff`): a transit is a few steps that wait for nothing but
//! the pool's lock, so the looks go on only while other calls keep
//! moving room between the pool and spans; nothing here waits for a free.

use super::super::LinearMemoryError;
use super::super::block::BlockId;
use super::{Allocator, SpanCache};
use crate::sync::{AtomicU64, Backoff, Ordering, thread_hint};

/// One transit started: added to a transit word's high half.
const STARTED: u64 = 1 << 32;
/// One transit in flight: the low half.
const IN_FLIGHT: u64 = 1;
const IN_FLIGHT_MASK: u64 = STARTED - 1;

/// A move of room in flight (T1); dropping it ends the move.
#[must_use = "the transit ends when this drops"]
pub(super) struct Transit<'a>(&'a AtomicU64);

impl Drop for Transit<'_> {
    fn drop(&mut self) {
        // AcqRel: Release so a settled look that reads this sees the
        // room where the transit put it (T2).
        self.0.fetch_sub(IN_FLIGHT, Ordering::AcqRel);
    }
}

/// What a look saw of all transit words: transits started, and in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    started: u64,
    in_flight: u64,
}

impl Seen {
    /// Whether a look between `self` (read before it) and `after` (read
    /// after it) is settled (T2): no transit in flight at the first read,
    /// and none started by the second.
    fn settled_by(self, after: Seen) -> bool {
        self.in_flight == 0 && after.started == self.started
    }
}

impl Allocator {
    /// Starts a transit (T1) on byte-counter shard `shard`: call before
    /// the room leaves every list.
    pub(super) fn transit(&self, shard: usize) -> Transit<'_> {
        let word = &self.shards[shard].transit;
        // AcqRel: Acquire so a look that read this word before the
        // transit started happens before the move (T2).
        word.fetch_add(STARTED + IN_FLIGHT, Ordering::AcqRel);
        Transit(word)
    }

    /// [`transit`](Self::transit) on the calling thread's shard, for the
    /// paths that know no handle's shard.
    pub(super) fn transit_here(&self) -> Transit<'_> {
        self.transit(thread_hint() % self.shards.len())
    }

    /// Reads every transit word with a read-modify-write (T2).
    fn transits(&self) -> Seen {
        self.shards.iter().fold(
            Seen {
                started: 0,
                in_flight: 0,
            },
            |seen, shard| {
                // AcqRel: see T2.
                let word = shard.transit.fetch_add(0, Ordering::AcqRel);
                Seen {
                    started: seen.started.wrapping_add(word >> 32),
                    in_flight: seen.in_flight + (word & IN_FLIGHT_MASK),
                }
            },
        )
    }

    /// Whether the look that found no room since `since` was read is
    /// settled (T2), for a growth of the memory: `since` becomes what the
    /// transit words say now, so an unsettled look starts the next one (and
    /// a first look, with nothing read before it, is never settled).
    #[cold]
    pub(super) fn settled_since(&self, since: &mut Option<Seen>) -> bool {
        let now = self.transits();
        let settled = since.is_some_and(|before| before.settled_by(now));
        *since = Some(now);
        settled || cfg!(slotarena_mutation = "growth_unsettled")
    }

    /// `look`'s answer, looking again until a look finds room or is
    /// settled (T2): for an allocation whose first look found no room.
    #[cold]
    pub(super) fn settle<R>(
        &self,
        mut look: impl FnMut() -> Result<R, LinearMemoryError>,
    ) -> Result<R, LinearMemoryError> {
        let backoff = Backoff::new();
        loop {
            let before = self.transits();
            let answer = look();
            if !matches!(answer, Err(LinearMemoryError::OutOfMemory))
                || cfg!(slotarena_mutation = "transit_unseen")
            {
                return answer;
            }
            let after = self.transits();
            if before.settled_by(after) {
                return answer;
            }
            backoff.snooze();
        }
    }

    /// `alloc_small` after a first look found no room: out of line, so the
    /// usual call inlines one copy of it.
    #[cold]
    pub(super) fn alloc_small_settled(
        &self,
        cache: &mut SpanCache,
        class: usize,
        len: u32,
        claimed: bool,
    ) -> Result<(u32, BlockId), LinearMemoryError> {
        self.settle(|| self.alloc_small(cache, class, len, claimed))
    }

    /// `alloc_large` after a first look found no room.
    #[cold]
    pub(super) fn alloc_large_settled(
        &self,
        len: u32,
        align: u32,
        claimed: bool,
    ) -> Result<(u32, BlockId), LinearMemoryError> {
        self.settle(|| self.alloc_large(len, align, claimed))
    }
}
