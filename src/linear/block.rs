//! The lifecycle word of one large block: where it is, how long its
//! allocation is, and whether that allocation is live and claimed, in one
//! `AtomicU64`; and [`Block`], the decoded shape of it that a small
//! block's packed field (`fields.rs`) is read as, so one set of checks
//! answers for both.
//!
//! This is the linear memory's counterpart of an arena slot's word
//! (`arena/word.rs`): every transition of an allocation (alloc, free,
//! claim, release) is one atomic operation on it. Unlike an arena slot's
//! word it needs no generation, because it describes itself: its start
//! and length are in the word, so a compare-and-swap that succeeds on a
//! word whose range holds the caller's bytes acted on exactly the live
//! allocation that holds them, however stale the lookup that found the
//! word (blocks never overlap, so that allocation is the only one).
//!
//! Layout (high to low): start ÷ 8 (29 bits; every block starts 8-byte
//! aligned) | length (32 bits) | `CLAIMED` | `LIVE` | `EVER`.

use core::num::NonZeroU64;

use crate::sync::{AtomicU64, Ordering};

const EVER: u64 = 1;
const LIVE: u64 = 1 << 1;
const CLAIMED: u64 = 1 << 2;
const LEN_SHIFT: u32 = 3;
const START_SHIFT: u32 = 35;

/// Which block word: a place in a span, or a large block's descriptor,
/// packed in one non-zero `u64` so that a claim (and `Option` of one) is
/// two aligned words: the controller stores its claim on every `mut_mem`
/// and loads it at its next call, and a claim of odd-sized fields made
/// that load wait for the stores it straddled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct BlockId(NonZeroU64);

/// A [`BlockId`] unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    /// Block `index` of span descriptor `desc` of `class`.
    Small { class: u8, desc: u32, index: u16 },
    /// Large-block descriptor `desc`.
    Large { desc: u32 },
}

/// `BlockId` layout: descriptor in bits 0–31, index 32–47, class 48–55,
/// and one of the two kind bits (so the value is never zero).
const ID_SMALL: NonZeroU64 = NonZeroU64::new(1 << 56).unwrap();
const ID_LARGE: NonZeroU64 = NonZeroU64::new(1 << 57).unwrap();

impl BlockId {
    pub(super) fn small(class: u8, desc: u32, index: u16) -> BlockId {
        BlockId(ID_SMALL | (u64::from(class) << 48) | (u64::from(index) << 32) | u64::from(desc))
    }

    pub(super) fn large(desc: u32) -> BlockId {
        BlockId(ID_LARGE | u64::from(desc))
    }

    #[inline]
    pub(super) fn place(self) -> Place {
        let bits = self.0.get();
        if bits & ID_SMALL.get() != 0 {
            Place::Small {
                class: (bits >> 48) as u8,
                desc: bits as u32,
                index: (bits >> 32) as u16,
            }
        } else {
            Place::Large { desc: bits as u32 }
        }
    }
}

impl core::fmt::Debug for BlockId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.place().fmt(f)
    }
}

/// A decoded block word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Block(u64);

impl Block {
    /// Never allocated since its place was (re)made: `UnknownPointer`.
    pub(super) const NEVER: Block = Block(0);

    /// A live, unclaimed allocation of `len` bytes at `start` (a multiple
    /// of 8).
    pub(super) fn live(start: u32, len: u32) -> Block {
        debug_assert!(
            start.is_multiple_of(8),
            "block start {start} is 8-byte aligned"
        );
        Block((u64::from(start >> 3) << START_SHIFT) | (u64::from(len) << LEN_SHIFT) | LIVE | EVER)
    }

    /// An allocation at `start` (a multiple of 8) that was freed, its
    /// length forgotten: a small block's freed field.
    pub(super) fn freed_at(start: u32) -> Block {
        Block((u64::from(start >> 3) << START_SHIFT) | EVER)
    }

    pub(super) fn start(self) -> u32 {
        ((self.0 >> START_SHIFT) as u32) << 3
    }

    pub(super) fn len(self) -> u32 {
        (self.0 >> LEN_SHIFT) as u32
    }

    pub(super) fn end(self) -> u64 {
        u64::from(self.start()) + u64::from(self.len())
    }

    pub(super) fn is_live(self) -> bool {
        self.0 & LIVE != 0
    }

    /// Allocated at least once since its place was made (so a free of a
    /// dead one is a double free).
    pub(super) fn was_allocated(self) -> bool {
        self.0 & EVER != 0
    }

    pub(super) fn is_claimed(self) -> bool {
        self.0 & CLAIMED != 0
    }

    fn claimed(self) -> Block {
        Block(self.0 | CLAIMED)
    }

    /// This word, claimed if `claimed`: a new allocation published with
    /// its first claim already taken (`Allocator::alloc_claimed`).
    pub(super) fn claimed_if(self, claimed: bool) -> Block {
        if claimed { self.claimed() } else { self }
    }

    /// The same allocation, freed: start and length stay (for `DoubleFree`).
    fn freed(self) -> Block {
        Block(self.0 & !(LIVE | CLAIMED))
    }

    /// Whether `ptr` is a byte of this allocation, or its end for an empty
    /// range (`end == ptr`). Whether `end` fits is the caller's next
    /// question (`OutOfBounds`).
    pub(super) fn holds(self, ptr: u32, end: u64) -> bool {
        self.start() <= ptr
            && (u64::from(ptr) < self.end() || (end == u64::from(ptr) && end == self.end()))
    }
}

/// One block's word.
#[derive(Debug, Default)]
pub(super) struct BlockWord(AtomicU64);

impl BlockWord {
    /// The word now. Acquire pairs with the Release of `publish`, `free`
    /// and `release`: whoever acts on what it read sees the bytes'
    /// previous owner done with them.
    #[inline]
    pub(super) fn load(&self) -> Block {
        Block(self.0.load(Ordering::Acquire))
    }

    /// Publishes a new allocation in a block the caller took exclusively
    /// (from its span's bitmap or the pool). A store suffices: every other
    /// transition is a compare-and-swap from a live word, and the word is
    /// dead now, so none can interleave.
    #[inline]
    pub(super) fn publish(&self, block: Block) {
        debug_assert!(!self.load().is_live(), "the block was free");
        // Release pairs with `load`'s Acquire.
        self.0.store(block.0, Ordering::Release);
    }

    /// Frees `seen` (live, unclaimed) if the word still is `seen`.
    #[inline]
    pub(super) fn free(&self, seen: Block) -> Result<(), Block> {
        debug_assert!(seen.is_live() && !seen.is_claimed());
        // AcqRel: Acquire for the last claim's writes (C2), Release so the
        // next owner of the bytes is ordered after us.
        self.0
            .compare_exchange(seen.0, seen.freed().0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(Block)
    }

    /// Claims `seen` (live, unclaimed) if the word still is `seen` (C1).
    #[inline]
    pub(super) fn claim(&self, seen: Block) -> Result<(), Block> {
        debug_assert!(seen.is_live() && !seen.is_claimed());
        // Acquire: the previous holder's writes happen before ours.
        self.0
            .compare_exchange(
                seen.0,
                seen.claimed().0,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .map(|_| ())
            .map_err(Block)
    }

    /// Ends the claim the caller holds. A read-modify-write so a claim
    /// waiter's last look never misses it (Q1, `wait_queue`).
    #[inline]
    pub(super) fn release(&self) {
        // Release pairs with the Acquire of the next claim or free.
        let before = self.0.fetch_and(!CLAIMED, Ordering::AcqRel);
        debug_assert!(Block(before).is_claimed() && Block(before).is_live());
    }

    /// A read-modify-write that changes nothing: a registered claim
    /// waiter's last look (Q1).
    pub(super) fn touch(&self) -> Block {
        Block(self.0.fetch_or(0, Ordering::AcqRel))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_word_round_trips_every_start_and_length() {
        for (start, len) in [(8, 1), (!7, u32::MAX), (1 << 20, 4096), (0, 0)] {
            let block = Block::live(start, len);
            assert_eq!((block.start(), block.len()), (start, len));
            assert!(block.is_live() && block.was_allocated() && !block.is_claimed());
            let freed = block.claimed().freed();
            assert_eq!((freed.start(), freed.len()), (start, len));
            assert!(!freed.is_live() && freed.was_allocated() && !freed.is_claimed());
        }
        assert!(!Block::NEVER.was_allocated());
    }

    #[test]
    fn block_ids_round_trip_and_a_claim_is_two_words() {
        for place in [
            Place::Small {
                class: 19,
                desc: u32::MAX,
                index: 511,
            },
            Place::Small {
                class: 0,
                desc: 0,
                index: 0,
            },
            Place::Large { desc: 0 },
            Place::Large { desc: u32::MAX },
        ] {
            let id = match place {
                Place::Small { class, desc, index } => BlockId::small(class, desc, index),
                Place::Large { desc } => BlockId::large(desc),
            };
            assert_eq!(id.place(), place);
        }
        assert_eq!(size_of::<Option<super::super::region::Claim>>(), 16);
    }

    #[test]
    fn a_block_holds_its_bytes_and_its_empty_end() {
        let block = Block::live(64, 10);
        assert!(block.holds(64, 74) && block.holds(73, 74) && block.holds(74, 74));
        assert!(!block.holds(74, 75) && !block.holds(56, 64) && !block.holds(74, 76));
    }

    #[test]
    fn transitions_act_only_on_the_word_they_saw() {
        let word = BlockWord::default();
        let first = Block::live(64, 10);
        word.publish(first);
        assert_eq!(word.claim(first), Ok(()));
        assert_eq!(
            word.free(first),
            Err(first.claimed()),
            "a claimed block is not freed"
        );
        word.release();
        assert_eq!(word.free(first), Ok(()));
        assert_eq!(
            word.claim(first),
            Err(first.freed()),
            "a freed block is not claimed"
        );
        word.publish(Block::live(64, 12));
        assert!(
            word.free(first).is_err(),
            "the next allocation is not the old one"
        );
    }
}
