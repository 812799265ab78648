//! Size classes of small blocks and the geometry of their spans.
//!
//! Classes step by 8 bytes up to 64, then four per power of two up to
//! [`SMALL_MAX`] (80, 96, 112, 128, 160, …, 512), so rounding a request up
//! to its class wastes at most 20% (about 8% on average). The 8-byte
//! blocks come in two classes, lengths 1–7 and exactly 8: a block's
//! state is a packed field of two state bits and the bits that tell its
//! length apart within its class (`fields.rs`), and an 8-byte block must
//! cost under 0.8 bytes of bookkeeping in all, which leaves no room for
//! length bits (issue 19, defect 4).
//!
//! A span of a class is a run of whole granules from the pool holding
//! about [`span_bytes`] bytes of blocks (4 KiB for 8- and 16-byte blocks,
//! 2 KiB above), at most [`MAX_BLOCKS`]: big enough that its descriptor
//! and directory words cost a few percent of it, small enough that a class
//! with few live blocks holds little memory. A span may hold fewer blocks
//! when the memory has no room for a whole one (`allocator/spans.rs`).
//!
//! Classes stop at 512 bytes: larger classes would take fewer trips to
//! the pool but spread a churning memory further (with classes up to
//! 4 KiB on 2 KiB spans, the churn test of `tests/linear_contract.rs`
//! spread to 1.5x its peak live bytes).

/// The pool's unit: spans and large blocks are whole granules, aligned to
/// a granule.
pub(super) const GRANULE: u32 = 256;
/// `log2(GRANULE)`.
pub(super) const GRANULE_SHIFT: u32 = 8;
/// Largest request served by a size class; larger ones take granules from
/// the pool directly (best fit).
pub(super) const SMALL_MAX: u32 = 512;
/// Most blocks in one span: a span's free count and block indexes fit in
/// 16 bits.
pub(super) const MAX_BLOCKS: u32 = 512;

/// Number of size classes.
pub(super) const CLASS_COUNT: usize = 21;

/// Block size of each class.
const SIZES: [u32; CLASS_COUNT] = {
    let mut sizes = [8; CLASS_COUNT];
    let mut i = 1;
    while i < 9 {
        sizes[i] = 8 * i as u32;
        i += 1;
    }
    while i < CLASS_COUNT {
        let power = 64 << ((i - 9) / 4);
        sizes[i] = power + power / 4 * ((i - 9) % 4 + 1) as u32;
        i += 1;
    }
    sizes
};

/// The class of a request of `len` bytes (`1..=SMALL_MAX`).
#[inline]
pub(super) fn class_of(len: u32) -> usize {
    debug_assert!((1..=SMALL_MAX).contains(&len), "{len}");
    if len <= 64 {
        // 1–7 → 0, 8 → 1, 9–16 → 2, …
        return (len as usize).div_ceil(8) - usize::from(len < 8);
    }
    let n = len - 1;
    let log = 31 - n.leading_zeros(); // 6..=9
    9 + (log as usize - 6) * 4 + ((n >> (log - 2)) & 3) as usize
}

/// Block size of `class`.
#[inline]
pub(super) const fn block_size(class: usize) -> u32 {
    SIZES[class]
}

/// The longest request `class` serves.
#[inline]
const fn max_len(class: usize) -> u32 {
    if class == 0 { 7 } else { SIZES[class] }
}

/// The shortest request `class` serves.
#[inline]
pub(super) const fn min_len(class: usize) -> u32 {
    if class == 0 {
        1
    } else {
        max_len(class - 1) + 1
    }
}

/// Bits that tell the lengths of `class` apart: `len - min_len(class)`
/// fits them.
pub(super) const fn len_bits(class: usize) -> u32 {
    let lengths = max_len(class) - min_len(class) + 1;
    u32::BITS - (lengths - 1).leading_zeros()
}

/// Bytes of blocks a whole span of `class` aims for.
const fn span_bytes(class: usize) -> u32 {
    if SIZES[class] <= 32 { 4096 } else { 2048 }
}

/// Blocks in one whole span of `class`.
#[inline]
pub(super) const fn span_blocks(class: usize) -> u32 {
    let blocks = span_bytes(class) / SIZES[class];
    if blocks < MAX_BLOCKS {
        blocks
    } else {
        MAX_BLOCKS
    }
}

/// Blocks in a new span of `class` whose class has made `descriptors`
/// span descriptors so far: 1 KiB of blocks for its first, 2 KiB for its
/// second, then whole spans. A class with few live blocks (most classes of
/// a churning memory) keeps few bytes in its span, and a class that holds
/// many gets spans big enough that their descriptors cost little.
#[inline]
pub(super) const fn span_blocks_after(class: usize, descriptors: u32) -> u32 {
    let whole = span_blocks(class);
    if descriptors >= 2 {
        return whole;
    }
    let blocks = (1024 << descriptors) / SIZES[class];
    if blocks < whole { blocks } else { whole }
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
            assert!(
                (min_len(class)..=max_len(class)).contains(&len),
                "{len} → {class}"
            );
            if class > 0 {
                assert!(max_len(class - 1) < len, "{len} → {class}");
            }
        }
        assert_eq!(block_size(CLASS_COUNT - 1), SMALL_MAX);
        assert_eq!((class_of(7), class_of(8), class_of(9)), (0, 1, 2));
        assert!(SIZES[1..].windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn length_bits_tell_every_length_of_a_class_apart() {
        for class in 0..CLASS_COUNT {
            let lengths = max_len(class) - min_len(class) + 1;
            assert!(lengths <= 1 << len_bits(class), "{class}");
            assert!(len_bits(class) == 0 || lengths > 1 << (len_bits(class) - 1));
        }
        // An exact 8-byte block needs none: two state bits in all.
        assert_eq!(len_bits(1), 0);
        // 449–512.
        assert_eq!(len_bits(CLASS_COUNT - 1), 6);
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
    fn a_class_starts_with_small_spans_and_grows_to_whole_ones() {
        for class in 0..CLASS_COUNT {
            let sizes = [0, 1, 2, 100].map(|made| span_blocks_after(class, made));
            assert!(
                sizes[0] >= 2 && sizes[0] * block_size(class) <= 1024,
                "{class}"
            );
            assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{class}");
            assert_eq!(sizes[2..], [span_blocks(class); 2], "{class}");
        }
    }

    #[test]
    fn spans_hold_four_to_512_blocks_and_little_slack() {
        for class in 0..CLASS_COUNT {
            let blocks = span_blocks(class);
            let bytes = granules_for(class, blocks) * GRANULE;
            assert!((4..=MAX_BLOCKS).contains(&blocks), "{class}");
            assert!(blocks * block_size(class) <= bytes);
            assert!(
                bytes - blocks * block_size(class) < GRANULE,
                "class {class}: {blocks} blocks in {bytes}"
            );
        }
    }
}
