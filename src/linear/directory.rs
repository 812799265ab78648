//! Out-of-band maps: which span or large block last named each granule of
//! the memory (a span names all of its granules, a large block only its
//! [`anchors`]), where freed allocations started once their granules
//! changed hands, and never-moving storage for the descriptors they name.
//!
//! All grow with the memory's use, never with its maximum: the directory
//! allocates a leaf per 1 MiB of address space the memory has grown over,
//! a leaf makes a freed-start bitmap per 64 KiB on its first mark there, and
//! [`Stable`] adds segments as descriptors are needed. None frees
//! anything before the memory drops, so a reference into them stays valid
//! for the memory's life and readers need no reclamation scheme: a reader
//! that raced a reuse reads a consistent but stale descriptor, which the
//! block word then rejects (`allocator/lookup.rs`, L2).
//!
//! # Freed starts
//!
//! DESIGN: `free` answers `DoubleFree` for a pointer that was allocated and
//! already freed, and `UnknownPointer` for one never allocated. While a
//! freed block's span or descriptor still holds its place, the block's word
//! says so (`allocator/lookup.rs`, L1/L3). Once its granules go back to the pool,
//! another span or block may take them and the directory no longer leads
//! to that word; a bit per 8-byte offset (every allocation starts 8-byte
//! aligned) remembers the start instead. Bits are set only where granules
//! go back to the pool (a span retiring, a large block freed: one bit),
//! before they do, and read only by a `free` that found no allocation
//! starting at its pointer: a small block's alloc and free never touch
//! them. A memory that
//! never gives granules back makes no bitmap; one that does pays 1 KiB
//! (1/64) per 64 KiB it gave granules back in.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::classes::GRANULE_SHIFT;
use crate::sync::{AtomicU32, AtomicU64, OnceLock, Ordering};

/// Granules per directory leaf (16 KiB of words): 1 MiB of address space (fewer under loom,
/// whose atomics are costly to create).
#[cfg(not(loom))]
const LEAF_SHIFT: u32 = 12;
#[cfg(loom)]
const LEAF_SHIFT: u32 = 8;
const LEAF: usize = 1 << LEAF_SHIFT;

/// Granules per freed-start bitmap: 64 KiB of address space, 1 KiB of bits
/// (4 KiB and 8 words under loom).
#[cfg(not(loom))]
const FREED_SHIFT: u32 = 8;
#[cfg(loom)]
const FREED_SHIFT: u32 = 4;
/// Every allocation starts 8-byte aligned: one bit per 8 bytes.
const START_ALIGN_SHIFT: u32 = 3;
/// `log2` of the bits in one freed-start bitmap.
const FREED_BITS_SHIFT: u32 = FREED_SHIFT + GRANULE_SHIFT - START_ALIGN_SHIFT;
/// `u64` words of one freed-start bitmap.
const FREED_WORDS: usize = 1 << (FREED_BITS_SHIFT - 6);

/// The bits of one stretch of `1 << FREED_SHIFT` granules, made on its
/// first mark.
type FreedBitmap = OnceLock<Box<[AtomicU64]>>;

/// One leaf: the owner word of each of its granules, and the freed-start
/// bitmaps of its stretches.
struct Leaf {
    owners: Box<[AtomicU32]>,
    freed: Box<[FreedBitmap]>,
}

/// What owns a granule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// Never handed out.
    Nobody,
    /// Span descriptor `desc` of size class `class` (it may since have
    /// been retired, or reused for a span elsewhere).
    Span { class: u8, desc: u32 },
    /// Large-block descriptor `desc` (the block may since have been freed).
    Large { desc: u32 },
}

/// Owner words: kind in bits 30–31, class in bits 25–29, descriptor in
/// bits 0–24. A memory has at most 2^24 granules, so at most 2^24 spans or
/// large blocks at once, and descriptors are reused: indexes fit 25 bits.
const KIND_SHIFT: u32 = 30;
const KIND_SPAN: u32 = 1;
const KIND_LARGE: u32 = 2;
const CLASS_SHIFT: u32 = 25;
const DESC_MASK: u32 = (1 << CLASS_SHIFT) - 1;

impl Owner {
    fn pack(self) -> u32 {
        match self {
            Owner::Nobody => 0,
            Owner::Span { class, desc } => {
                debug_assert!(desc <= DESC_MASK && class < 32);
                (KIND_SPAN << KIND_SHIFT) | (u32::from(class) << CLASS_SHIFT) | desc
            }
            Owner::Large { desc } => {
                debug_assert!(desc <= DESC_MASK);
                (KIND_LARGE << KIND_SHIFT) | desc
            }
        }
    }

    fn unpack(word: u32) -> Owner {
        match word >> KIND_SHIFT {
            KIND_SPAN => Owner::Span {
                class: ((word >> CLASS_SHIFT) & 31) as u8,
                desc: word & DESC_MASK,
            },
            KIND_LARGE => Owner::Large {
                desc: word & DESC_MASK,
            },
            _ => Owner::Nobody,
        }
    }
}

/// `log2` of the granules between a large block's anchors: 64 granules
/// (16 KiB) of address space, 16 under loom (whose memories are a page).
#[cfg(not(loom))]
const ANCHOR_SHIFT: u32 = 6;
#[cfg(loom)]
const ANCHOR_SHIFT: u32 = 4;

/// The granules whose words name a large block of `len` granules at
/// `start`: its first, and each multiple of `1 << ANCHOR_SHIFT` inside it.
/// A lookup of any byte of the block finds one at most `1 << ANCHOR_SHIFT`
/// granules back ([`anchor_floor`]), so the block costs one directory
/// write per 16 KiB (one for every block up to 16 KiB) instead of one per
/// granule.
pub(super) fn anchors(start: u32, len: u32) -> impl Iterator<Item = u32> {
    debug_assert!(len > 0);
    let last = start + len - 1;
    let first_inner = ((start >> ANCHOR_SHIFT) + 1) << ANCHOR_SHIFT;
    core::iter::once(start).chain((first_inner..=last).step_by(1 << ANCHOR_SHIFT))
}

/// The lowest granule a walk back from `granule` looks at: a large block
/// that holds `granule` names `max(its start, anchor_floor(granule))`.
pub(super) fn anchor_floor(granule: u32) -> u32 {
    granule >> ANCHOR_SHIFT << ANCHOR_SHIFT
}

/// One owner word per granule, in lazily made leaves.
pub(super) struct Directory {
    leaves: Box<[OnceLock<Box<Leaf>>]>,
    /// Words per leaf: [`LEAF`], or fewer for a memory smaller than one
    /// leaf (a 1-page memory needs 256 words, not 4096).
    leaf_len: usize,
}

impl Directory {
    /// A directory for up to `max_granules` granules; allocates no leaf.
    pub(super) fn new(max_granules: u64) -> Directory {
        let leaves = max_granules.div_ceil(LEAF as u64) as usize;
        Directory {
            leaves: (0..leaves).map(|_| OnceLock::new()).collect(),
            leaf_len: max_granules.min(LEAF as u64) as usize,
        }
    }

    /// Makes the leaves for granules `..end`. Call with the pool locked
    /// (leaves are made by one thread at a time), before anything in that
    /// range can be looked up.
    pub(super) fn cover(&self, end: u64) {
        let leaves = end.div_ceil(LEAF as u64) as usize;
        for leaf in &self.leaves[..leaves.min(self.leaves.len())] {
            leaf.get_or_init(|| {
                Box::new(Leaf {
                    owners: (0..self.leaf_len).map(|_| AtomicU32::new(0)).collect(),
                    freed: (0..self.leaf_len.div_ceil(1 << FREED_SHIFT))
                        .map(|_| OnceLock::new())
                        .collect(),
                })
            });
        }
    }

    fn leaf(&self, granule: u32) -> Option<&Leaf> {
        self.leaves
            .get((granule >> LEAF_SHIFT) as usize)?
            .get()
            .map(|leaf| &**leaf)
    }

    fn word(&self, granule: u32) -> Option<&AtomicU32> {
        self.leaf(granule)?
            .owners
            .get(granule as usize & (LEAF - 1))
    }

    /// The bitmap that holds `start`'s bit, the word in it, and the bit.
    fn freed_bit(&self, start: u32) -> Option<(&FreedBitmap, usize, u64)> {
        let granule = start >> GRANULE_SHIFT;
        let bitmap = self
            .leaf(granule)?
            .freed
            .get((granule as usize & (LEAF - 1)) >> FREED_SHIFT)?;
        let bit = (start >> START_ALIGN_SHIFT) as usize & ((1 << FREED_BITS_SHIFT) - 1);
        Some((bitmap, bit >> 6, 1 << (bit & 63)))
    }

    /// Remembers that an allocation started at `start` and was freed. Call
    /// before its granules go back to the pool: the Release here, then the
    /// pool's lock, then whatever the next owner publishes with Release
    /// orders the bit before every read that can see the place changed.
    pub(super) fn mark_freed_start(&self, start: u32) {
        debug_assert_eq!(start % (1 << START_ALIGN_SHIFT), 0, "8-byte aligned");
        let Some((bitmap, word, bit)) = self.freed_bit(start) else {
            debug_assert!(false, "start {start} beyond the memory's size");
            return;
        };
        let bitmap = bitmap.get_or_init(|| (0..FREED_WORDS).map(|_| AtomicU64::new(0)).collect());
        // Release: see above.
        bitmap[word].fetch_or(bit, Ordering::Release);
    }

    /// Whether an allocation that started at `start` was freed before its
    /// granules went back to the pool (never for an unaligned `start`,
    /// where no allocation starts).
    pub(super) fn is_freed_start(&self, start: u32) -> bool {
        if !start.is_multiple_of(1 << START_ALIGN_SHIFT) {
            return false;
        }
        let Some((bitmap, word, bit)) = self.freed_bit(start) else {
            return false;
        };
        // Acquire pairs with `mark_freed_start`'s Release.
        bitmap
            .get()
            .is_some_and(|bits| bits[word].load(Ordering::Acquire) & bit != 0)
    }

    /// The owner of the granule that holds byte `offset`.
    #[inline]
    pub(super) fn owner_of(&self, offset: u32) -> Owner {
        self.owner_of_granule(offset >> GRANULE_SHIFT)
    }

    /// The owner word of granule `granule` (not of a byte offset).
    #[inline]
    pub(super) fn owner_of_granule(&self, granule: u32) -> Owner {
        self.word(granule).map_or(Owner::Nobody, |word| {
            // Acquire pairs with `assign`'s Release: whoever finds an owner
            // also sees the descriptor fields written before it.
            Owner::unpack(word.load(Ordering::Acquire))
        })
    }

    /// Makes `owner` the owner of granule `granule`, which the caller took
    /// from the pool (as for [`assign`](Self::assign)), and answers its
    /// previous owner: one word, for a large block's anchor.
    #[inline]
    pub(super) fn name(&self, granule: u32, owner: Owner) -> Owner {
        let Some(word) = self.word(granule) else {
            debug_assert!(false, "granule {granule} has no leaf");
            return Owner::Nobody;
        };
        // Relaxed, then Release: as in `assign`.
        let old = word.load(Ordering::Relaxed);
        word.store(owner.pack(), Ordering::Release);
        Owner::unpack(old)
    }

    /// Makes `owner` the owner of granules `start..start + len`, which the
    /// caller took from the pool (so their leaves exist, and nobody else
    /// writes their words until the caller gives them back), and reports
    /// each previous owner with how many of the granules it had, a run at
    /// a time (`allocator/lookup.rs`: a descriptor is reused only once no granule
    /// names it).
    pub(super) fn assign(
        &self,
        start: u32,
        len: u32,
        owner: Owner,
        mut previous: impl FnMut(Owner, u32),
    ) {
        let packed = owner.pack();
        let (mut granule, end) = (start as usize, start as usize + len as usize);
        let mut run: Option<(u32, u32)> = None;
        // Leaf by leaf: one lookup per leaf, then a run of plain stores.
        while granule < end {
            let Some(leaf) = self
                .leaves
                .get(granule >> LEAF_SHIFT)
                .and_then(OnceLock::get)
                .map(|leaf| &leaf.owners)
            else {
                debug_assert!(false, "granule {granule} has no leaf");
                return;
            };
            let first = granule & (LEAF - 1);
            let last = (end - (granule - first)).min(leaf.len());
            for word in &leaf[first..last] {
                // Relaxed: only the caller writes this word now, and every
                // earlier write happened before the granule reached the pool.
                let old = word.load(Ordering::Relaxed);
                match &mut run {
                    Some((word, count)) if *word == old => *count += 1,
                    _ => {
                        if let Some((word, count)) = run.replace((old, 1)) {
                            previous(Owner::unpack(word), count);
                        }
                    }
                }
                // Release pairs with `owner_of`'s Acquire.
                word.store(packed, Ordering::Release);
            }
            granule += last - first;
        }
        if let Some((word, count)) = run {
            previous(Owner::unpack(word), count);
        }
    }
}

/// A vector that grows in segments that never move, so `&T` stays valid
/// while it grows. Segment `k` holds `16 << k` items.
pub(super) struct Stable<T> {
    segments: Box<[OnceLock<Box<[T]>>]>,
}

const FIRST_SEGMENT_SHIFT: u32 = 4;

impl<T> Stable<T> {
    /// Room for up to `max_items` items (at least one segment); allocates
    /// only the table of segments, a few words each.
    pub(super) fn new(max_items: u32) -> Stable<T> {
        let segments = Self::locate(max_items.saturating_sub(1)).0 + 1;
        Stable {
            segments: (0..segments).map(|_| OnceLock::new()).collect(),
        }
    }

    fn locate(index: u32) -> (usize, usize) {
        let shifted = u64::from(index) + (1 << FIRST_SEGMENT_SHIFT);
        let segment = 63 - shifted.leading_zeros() - FIRST_SEGMENT_SHIFT;
        let offset = shifted - (1u64 << (segment + FIRST_SEGMENT_SHIFT));
        (segment as usize, offset as usize)
    }

    /// Item `index`, if its segment exists.
    #[inline]
    pub(super) fn get(&self, index: u32) -> Option<&T> {
        let (segment, offset) = Self::locate(index);
        self.segments.get(segment)?.get()?.get(offset)
    }

    /// Item `index`, making its segment (with `make` for each item) if
    /// needed. Call from one thread at a time per `Stable` (under a lock).
    pub(super) fn get_or_make(&self, index: u32, make: impl Fn() -> T) -> Option<&T> {
        let (segment, offset) = Self::locate(index);
        let items = self.segments.get(segment)?.get_or_init(|| {
            let len = 1usize << (segment as u32 + FIRST_SEGMENT_SHIFT);
            let mut items = Vec::with_capacity(len);
            items.resize_with(len, &make);
            items.into_boxed_slice()
        });
        items.get(offset)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip() {
        for owner in [
            Owner::Nobody,
            Owner::Span {
                class: 23,
                desc: DESC_MASK,
            },
            Owner::Large { desc: 7 },
        ] {
            assert_eq!(Owner::unpack(owner.pack()), owner);
        }
    }

    #[test]
    fn every_granule_of_a_large_block_has_an_anchor_at_most_its_floor_behind() {
        let step = 1u32 << ANCHOR_SHIFT;
        for start in [0, 1, step - 1, step, step + 5, 3 * step - 1] {
            for len in [1, 2, step - 1, step, step + 1, 2 * step, 5 * step + 3] {
                let anchors: Vec<u32> = anchors(start, len).collect();
                assert_eq!(anchors[0], start);
                assert!(anchors.windows(2).all(|pair| pair[0] < pair[1]));
                assert!(anchors.iter().all(|&a| (start..start + len).contains(&a)));
                // One write per 16 KiB, plus the start.
                assert!(
                    anchors.len() as u32 <= 1 + len.div_ceil(step),
                    "{start} {len}"
                );
                for granule in start..start + len {
                    let floor = anchor_floor(granule).max(start);
                    assert!(
                        anchors.iter().any(|a| (floor..=granule).contains(a)),
                        "{start} {len}: granule {granule} has no anchor at or after {floor}"
                    );
                }
            }
        }
    }

    #[test]
    fn stable_indexes_fill_segments_in_order() {
        let mut expected = 0;
        for index in 0..2000u32 {
            let (segment, offset) = Stable::<u8>::locate(index);
            if offset == 0 && index > 0 {
                expected += 1;
            }
            assert_eq!(segment, expected, "{index}");
            assert!(offset < 16 << segment);
        }
        let stable = Stable::<u32>::new(u32::MAX);
        assert!(stable.get(40).is_none());
        assert_eq!(stable.get_or_make(40, || 5), Some(&5));
        assert_eq!(stable.get(41), Some(&5));
        assert_eq!(Stable::<u8>::locate(u32::MAX).0, 28);
    }

    /// Bitmaps made so far.
    fn freed_bitmaps(directory: &Directory) -> usize {
        directory
            .leaves
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|leaf| leaf.freed.iter())
            .filter(|bitmap| bitmap.get().is_some())
            .count()
    }

    #[test]
    fn freed_starts_are_exact_and_make_a_bitmap_only_where_marked() {
        let granules = 3 * LEAF as u32;
        let directory = Directory::new(u64::from(granules));
        directory.cover(u64::from(granules));
        assert_eq!(freed_bitmaps(&directory), 0);
        let bytes_per_bitmap = 1u32 << (FREED_SHIFT + GRANULE_SHIFT);
        let end = granules << GRANULE_SHIFT;
        let marked = [
            8,
            16,
            504,
            512,
            bytes_per_bitmap - 8,
            bytes_per_bitmap + 8,
            end - 8,
        ];
        for start in marked {
            directory.mark_freed_start(start);
            assert!(directory.is_freed_start(start), "{start}");
        }
        for start in [
            0,
            24,
            496,
            520,
            bytes_per_bitmap,
            end - 16,
            end,
            u32::MAX - 7,
        ] {
            assert!(!directory.is_freed_start(start), "{start}");
        }
        // The first, the second and the last stretch.
        assert_eq!(freed_bitmaps(&directory), 3);
    }

    #[test]
    fn a_one_page_directory_has_one_small_bitmap_at_most() {
        let directory = Directory::new(256);
        directory.cover(256);
        let leaf = directory.leaves[0].get().unwrap();
        assert_eq!(leaf.owners.len(), 256);
        assert_eq!(leaf.freed.len(), 256usize.div_ceil(1 << FREED_SHIFT));
        directory.mark_freed_start((256 << GRANULE_SHIFT) - 8);
        assert!(directory.is_freed_start((256 << GRANULE_SHIFT) - 8));
        assert_eq!(FREED_WORDS * 64 * 8, 1 << (FREED_SHIFT + GRANULE_SHIFT));
    }

    #[test]
    fn the_directory_answers_nobody_outside_its_leaves_and_reports_previous_owners() {
        let directory = Directory::new(3 * LEAF as u64);
        assert_eq!(directory.owner_of(0), Owner::Nobody);
        directory.cover(LEAF as u64 + 1);
        let mut previous = Vec::new();
        directory.assign(
            LEAF as u32 - 1,
            2,
            Owner::Large { desc: 3 },
            |owner, count| {
                previous.push((owner, count));
            },
        );
        assert_eq!(previous, [(Owner::Nobody, 2)]);
        directory.assign(LEAF as u32, 1, Owner::Large { desc: 4 }, |owner, count| {
            previous.push((owner, count));
        });
        assert_eq!(previous[1..], [(Owner::Large { desc: 3 }, 1)]);
        let offset = |granule: u32| granule << GRANULE_SHIFT;
        assert_eq!(
            directory.owner_of(offset(LEAF as u32)),
            Owner::Large { desc: 4 }
        );
        assert_eq!(directory.owner_of(offset(LEAF as u32 + 1)), Owner::Nobody);
        assert_eq!(directory.owner_of(u32::MAX), Owner::Nobody);
    }
}
