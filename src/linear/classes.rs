//! Size classes of small blocks and the geometry of their spans.
//!
//! Classes step by 8 bytes up to 64, then four per power of two up to
//! [`SMALL_MAX`] (80, 96, 112, 128, 160, …, 512), so rounding a request up
//! to its class wastes at most 20% (about 8% on average). A span of a class
//! is a run of whole granules from the pool holding at most 32 blocks,
//! about [`SPAN_TARGET`] bytes: small, so that a class with few live blocks
//! holds little memory, and one span's free blocks fit in the low half of
//! its state word. A span may hold fewer blocks when the memory has no
//! room for a whole one (`allocator/spans.rs`).
//!
//! Classes stop at 512 bytes, the largest whose span holds two blocks: a
//! one-block span costs a descriptor and a trip to the pool per block,
//! which a large block does more cheaply (with the same rounding).
//! Larger classes or spans would take fewer trips to the pool but spread a
//! churning memory further: with classes up to 4 KiB on 2 KiB spans, the
//! churn test of `tests/linear_contract.rs` spreads to 1.5x its peak live
//! bytes instead of 1.24x.

/// The pool's unit: spans and large blocks are whole granules, aligned to
/// a granule.
pub(super) const GRANULE: u32 = 256;
/// `log2(GRANULE)`.
pub(super) const GRANULE_SHIFT: u32 = 8;
/// Largest request served by a size class; larger ones take granules from
/// the pool directly (best fit).
pub(super) const SMALL_MAX: u32 = 512;
/// Bytes a span aims for.
const SPAN_TARGET: u32 = 1024;
/// Most blocks in one span: one bit each in the low half of a `u64`.
pub(super) const MAX_BLOCKS: u32 = 32;

/// Number of size classes.
pub(super) const CLASS_COUNT: usize = 20;

/// Block size of each class.
const SIZES: [u32; CLASS_COUNT] = {
    let mut sizes = [0; CLASS_COUNT];
    let mut i = 0;
    while i < 8 {
        sizes[i] = 8 * (i as u32 + 1);
        i += 1;
    }
    while i < CLASS_COUNT {
        let power = 64 << ((i - 8) / 4);
        sizes[i] = power + power / 4 * ((i - 8) % 4 + 1) as u32;
        i += 1;
    }
    sizes
};

/// The class of a request of `len` bytes (`1..=SMALL_MAX`).
#[inline]
pub(super) fn class_of(len: u32) -> usize {
    debug_assert!((1..=SMALL_MAX).contains(&len), "{len}");
    if len <= 64 {
        return (len as usize).div_ceil(8) - 1;
    }
    let n = len - 1;
    let log = 31 - n.leading_zeros(); // 6..=9
    8 + (log as usize - 6) * 4 + ((n >> (log - 2)) & 3) as usize
}

/// Block size of `class`.
#[inline]
pub(super) const fn block_size(class: usize) -> u32 {
    SIZES[class]
}

/// Blocks in one span of `class`.
#[inline]
pub(super) const fn span_blocks(class: usize) -> u32 {
    let size = SIZES[class];
    let granules = span_granules(class);
    let fit = granules * GRANULE / size;
    if fit < MAX_BLOCKS { fit } else { MAX_BLOCKS }
}

/// Granules in one whole span of `class`.
const fn span_granules(class: usize) -> u32 {
    let size = SIZES[class];
    let mut blocks = SPAN_TARGET / size;
    if blocks > MAX_BLOCKS {
        blocks = MAX_BLOCKS;
    }
    if blocks == 0 {
        blocks = 1;
    }
    granules_for(class, blocks)
}

/// Granules that hold `blocks` blocks of `class`.
#[inline]
pub(super) const fn granules_for(class: usize, blocks: u32) -> u32 {
    (blocks * SIZES[class]).div_ceil(GRANULE)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn every_length_gets_the_smallest_class_that_holds_it() {
        for len in 1..=SMALL_MAX {
            let class = class_of(len);
            assert!(block_size(class) >= len, "{len} → {class}");
            if class > 0 {
                assert!(block_size(class - 1) < len, "{len} → {class}");
            }
        }
        assert_eq!(block_size(CLASS_COUNT - 1), SMALL_MAX);
        assert!(SIZES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn classes_waste_at_most_a_fifth_and_stay_eight_byte_aligned() {
        for len in 9..=SMALL_MAX {
            let size = block_size(class_of(len));
            assert!(size * 4 <= len * 5 + 32, "{len} → {size}");
        }
        assert!(SIZES.iter().all(|size| size % 8 == 0));
    }

    #[test]
    fn spans_hold_two_to_thirty_two_blocks_and_little_slack() {
        for class in 0..CLASS_COUNT {
            let blocks = span_blocks(class);
            let bytes = span_granules(class) * GRANULE;
            assert!((2..=MAX_BLOCKS).contains(&blocks), "{class}");
            assert!(blocks * block_size(class) <= bytes);
            assert!(
                bytes - blocks * block_size(class) < GRANULE.max(bytes / 8),
                "class {class}: {blocks} blocks in {bytes}"
            );
        }
        // The next class up would get one-block spans.
        assert_eq!(SPAN_TARGET / (SMALL_MAX + SMALL_MAX / 4), 1);
    }
}
