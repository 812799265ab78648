//! Where freed allocations started, once their place went back to the pool.
//!
//! DESIGN: `free` answers `DoubleFree` for a pointer that was allocated and
//! already freed, and `UnknownPointer` for one never allocated. While a
//! freed block's span or descriptor still holds its place, the block's word
//! says so (`allocator.rs`, L1/L3). Once its granules go back to the pool,
//! another span or block may take them and the directory no longer leads
//! to that word; this bitmap remembers the start instead, one bit per
//! 8-byte offset (every allocation starts 8-byte aligned).
//!
//! Bits are set only where granules go back to the pool (a span retiring,
//! a large block freed), before they do, and read only by a `free` that
//! found no allocation starting at its pointer: neither touches the usual
//! alloc/free path. Leaves are made on first use, one per 1 MiB of address
//! space (16 KiB each), so a memory that never returns granules pays
//! nothing, and one that does pays 1/64 of the space it churned over.
//!
//! Ordering: the Release of the bit's read-modify-write, then the pool's
//! lock, then the new owner's directory write (Release), so a `free` that
//! reads the new owner (Acquire) also sees the bit.

use alloc::boxed::Box;

use crate::sync::{AtomicU64, OnceLock, Ordering};

/// Bytes of address space per leaf: 1 MiB (4 KiB under loom, whose atomics
/// are costly to create).
#[cfg(not(loom))]
const LEAF_SHIFT: u32 = 20;
#[cfg(loom)]
const LEAF_SHIFT: u32 = 12;
/// Starts are 8-byte aligned: one bit per 8 bytes.
const ALIGN_SHIFT: u32 = 3;
/// Bits per leaf word.
const WORD_SHIFT: u32 = 6;

/// One leaf: a bit per 8-byte offset of its stretch of address space.
type Leaf = Box<[AtomicU64]>;

/// Starts of freed allocations whose place went back to the pool.
pub(super) struct FreedStarts {
    /// One leaf per `1 << LEAF_SHIFT` bytes of the maximum memory, made
    /// with the table on the first start marked.
    leaves: OnceLock<Box<[OnceLock<Leaf>]>>,
    /// Leaves for the maximum memory.
    leaf_count: usize,
    /// Words per leaf: a whole leaf's, or fewer for a smaller memory.
    leaf_words: usize,
}

impl FreedStarts {
    /// An empty set for a memory of up to `max_bytes` bytes; allocates
    /// nothing.
    pub(super) fn new(max_bytes: u64) -> FreedStarts {
        let leaf_bytes = 1u64 << LEAF_SHIFT;
        let words_per_leaf = leaf_bytes >> (ALIGN_SHIFT + WORD_SHIFT);
        let words = max_bytes.div_ceil(1 << (ALIGN_SHIFT + WORD_SHIFT));
        FreedStarts {
            leaves: OnceLock::new(),
            leaf_count: max_bytes.div_ceil(leaf_bytes) as usize,
            leaf_words: words.min(words_per_leaf) as usize,
        }
    }

    /// Where `start`'s bit lives: leaf, word in it, bit in the word.
    fn locate(start: u32) -> (usize, usize, u64) {
        let bit = start >> ALIGN_SHIFT;
        let leaf = (start >> LEAF_SHIFT) as usize;
        let word = (bit as usize & ((1 << (LEAF_SHIFT - ALIGN_SHIFT)) - 1)) >> WORD_SHIFT;
        (leaf, word, 1u64 << (bit & ((1 << WORD_SHIFT) - 1)))
    }

    /// Remembers that an allocation started at `start` and was freed.
    /// Call before its granules go back to the pool.
    pub(super) fn mark(&self, start: u32) {
        debug_assert_eq!(start % (1 << ALIGN_SHIFT), 0, "starts are 8-byte aligned");
        let (leaf, word, bit) = Self::locate(start);
        let leaves = self
            .leaves
            .get_or_init(|| (0..self.leaf_count).map(|_| OnceLock::new()).collect());
        let Some(leaf) = leaves.get(leaf) else {
            debug_assert!(false, "start {start} beyond the memory's maximum");
            return;
        };
        let leaf = leaf.get_or_init(|| (0..self.leaf_words).map(|_| AtomicU64::new(0)).collect());
        if let Some(word) = leaf.get(word) {
            // Release: see the module's ordering note.
            word.fetch_or(bit, Ordering::Release);
        }
    }

    /// Whether an allocation that started at `start` was freed and its
    /// place given back to the pool.
    pub(super) fn contains(&self, start: u32) -> bool {
        let (leaf, word, bit) = Self::locate(start);
        self.leaves
            .get()
            .and_then(|leaves| leaves.get(leaf)?.get()?.get(word))
            // Acquire pairs with `mark`'s Release.
            .is_some_and(|word| word.load(Ordering::Acquire) & bit != 0)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn marks_only_the_starts_it_was_given_and_allocates_nothing_before() {
        let starts = FreedStarts::new(4 << 20);
        assert!(starts.leaves.get().is_none());
        assert!(!starts.contains(8));
        for start in [8, 16, 504, 512, (1 << 20) - 8, 1 << 20, (4 << 20) - 8] {
            starts.mark(start);
            assert!(starts.contains(start), "{start}");
        }
        for start in [0, 24, 496, 520, (1 << 20) + 8, (2 << 20)] {
            assert!(!starts.contains(start), "{start}");
        }
        // Only the leaves written to were made.
        let made = starts
            .leaves
            .get()
            .unwrap()
            .iter()
            .filter(|leaf| leaf.get().is_some())
            .count();
        assert_eq!(made, 3);
    }

    #[test]
    fn a_small_memory_gets_a_leaf_of_its_own_size() {
        let starts = FreedStarts::new(64 << 10);
        starts.mark((64 << 10) - 8);
        assert!(starts.contains((64 << 10) - 8));
        assert_eq!(starts.leaf_words, 128);
        assert_eq!(starts.leaf_count, 1);
        assert!(!starts.contains(u32::MAX - 7), "beyond the memory");
    }
}
