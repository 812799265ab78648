//! Pointer → block (L1–L4): the directory names the span or large block
//! that last took each granule, the descriptor gives the block's word, and
//! the word (or the directory's freed-start mark) decides the exact answer:
//! a live block, `DoubleFree` or `UnknownPointer`.
//!
//! ## Lookups
//!
//! - L1: the directory maps each granule of a span to the span, and each
//!   anchor of a large block (its first granule and one per 16 KiB,
//!   `directory::anchors`) to the block, the last owner to take it (a new
//!   span's entries are written before its state is published, so nothing
//!   can retire it and hand its granules on before they name it; a large
//!   block's word is published live only after its anchors are written,
//!   so nothing can free it and hand its granules on while they are being
//!   written); the descriptor gives the block word of the place that holds
//!   a byte. A large block's other granules keep naming their earlier
//!   owners, so a byte whose own granule leads to no live block that holds
//!   it is looked for behind, back to its anchor floor, where any large
//!   block that holds it is named (`large_behind`; only claims need this:
//!   a block's start is always on its own entry). Words of freed blocks keep their
//!   range until their descriptor is remade (L3), so freeing one again
//!   answers `DoubleFree`, and a place never allocated has a `NEVER` word
//!   (`UnknownPointer`).
//!   Before a freed block's granules go back to the pool (its span
//!   retiring, or it being large), the directory marks its start, which
//!   answers for it once another owner has its granules (L4).
//! - L3: a descriptor is remade only once its span or block is gone and
//!   no granule of the directory names it any more (`Names`: the assign
//!   that takes a granule over counts the previous owner down; a large
//!   block counts its anchors), so a freed
//!   block's own word answers `DoubleFree` until its place is taken by
//!   another allocation (and its mark after, L4).
//! - L2: a lookup that raced a reuse may read a stale descriptor and land
//!   on the wrong word; every answer is decided by the word it read (or by
//!   a mark, L4), which names its own range: a live word always describes
//!   the one live allocation at that range (a live block's span cannot be
//!   retired), and every transition is a compare-and-swap from the exact
//!   word read.
//! - L4: a free that finds no allocation, live or freed, starting at its
//!   pointer answers by the directory's freed-start mark, and whatever led
//!   it there is ordered after the mark: it read the place's new owner in
//!   the directory (an assign, Release, by whoever took the granules from
//!   the pool after the mark), or a descriptor remade since (its `start`
//!   and block words are stored with Release when remade, after it went
//!   spare, so after its granules went back to the pool). A start marked
//!   before the free began is never missed.

#[cfg(debug_assertions)]
use alloc::vec::Vec;

use super::super::LinearMemoryError;
use super::super::block::{BlockId, BlockWord, Place};
use super::super::classes::{GRANULE, block_size};
use super::super::directory::{Owner, anchor_floor, anchors};
#[cfg(debug_assertions)]
use super::super::pool::PAGE_GRANULES;
use super::Allocator;
use super::large::LargeDesc;
use super::spans::SpanDesc;
use crate::sync::{AtomicU32, Ordering};

/// What a lookup found: the block's word, and where the block lives.
pub(super) struct Found<'a> {
    pub(super) word: &'a BlockWord,
    pub(super) place: FoundPlace<'a>,
}

pub(super) enum FoundPlace<'a> {
    /// Block `index` of `span`, span descriptor `desc` of `class`.
    Small {
        class: u8,
        desc: u32,
        span: &'a SpanDesc,
        index: u8,
    },
    /// Large-block descriptor `desc` (`large`).
    Large { desc: u32, large: &'a LargeDesc },
}

impl Found<'_> {
    pub(super) fn block(&self) -> BlockId {
        match self.place {
            FoundPlace::Small {
                class, desc, index, ..
            } => BlockId::small(class, desc, index),
            FoundPlace::Large { desc, .. } => BlockId::large(desc),
        }
    }
}

/// How many granules the directory maps to a descriptor, and whether its
/// span or block is gone (retired, freed): `granules << 1 | GONE`. The
/// descriptor can be remade only when both say so (L3), and exactly one
/// thread sees that happen: the one whose read-modify-write completes it.
#[derive(Default)]
pub(super) struct Names(AtomicU32);

pub(super) const GONE: u32 = 1;

pub(super) const NAMED: u32 = 2;

impl Names {
    /// A descriptor taken for a new span or block of `granules` granules;
    /// only its taker writes it now (it came from no list, or from the
    /// spare list, which only unnamed, gone descriptors reach).
    pub(super) fn taken(&self, granules: u32) {
        self.0.store(granules * NAMED, Ordering::Relaxed);
    }

    /// Takes a gone descriptor that only the granule at its place's start
    /// still names, for a new block of `granules` anchors whose taker owns
    /// that granule (so nothing else counts it down: L3 holds, and the
    /// taker's assign finds the descriptor itself there, which counts
    /// nothing); false if it is named elsewhere or not gone.
    pub(super) fn retaken(&self, granules: u32) -> bool {
        // Acquire: after whatever its last block's free did.
        self.0
            .compare_exchange(
                NAMED | GONE,
                granules * NAMED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// Its span or block is gone; true if no granule names it any more
    /// (the caller makes it spare).
    pub(super) fn gone(&self) -> bool {
        // AcqRel: ordered with `unnamed` on other threads (one of the two
        // sees both facts).
        self.0.fetch_or(GONE, Ordering::AcqRel) == 0
    }

    /// `granules` granules name another owner now; true if none names it
    /// any more and it is gone (the caller makes it spare).
    pub(super) fn unnamed(&self, granules: u32) -> bool {
        let before = self.0.fetch_sub(granules * NAMED, Ordering::AcqRel);
        debug_assert!(before >= granules * NAMED, "L3: every naming is counted");
        before == (granules * NAMED) | GONE
    }
}

impl Allocator {
    /// The block whose place holds byte `ptr` (L1), and its word, which
    /// decides (L2).
    #[inline]
    pub(super) fn lookup(&self, ptr: u32) -> Option<Found<'_>> {
        match self.directory.owner_of(ptr) {
            Owner::Nobody => None,
            Owner::Span { class, desc } => {
                let span = self.classes.get(usize::from(class))?.descs.get(desc)?;
                // Acquire: the directory's Acquire ordered the value it
                // named (L2 covers a racing reuse), and a remade span's
                // start comes after the marks of its previous blocks (L4).
                let span_start = span.start.load(Ordering::Acquire);
                let index = ptr.checked_sub(span_start)? / block_size(usize::from(class));
                let word = span.blocks.get(index as usize)?;
                Some(Found {
                    word,
                    place: FoundPlace::Small {
                        class,
                        desc,
                        span,
                        index: index as u8,
                    },
                })
            }
            Owner::Large { desc } => {
                let large = self.large.get(desc)?;
                Some(Found {
                    word: &large.word,
                    place: FoundPlace::Large { desc, large },
                })
            }
        }
    }

    /// The large blocks named at the granules behind `ptr`'s, down to its
    /// anchor floor, nearest first: the candidates for a byte that its own
    /// granule does not lead to. A large block names only its anchors
    /// (L1), so one that holds `ptr` names its start or the floor, and
    /// every granule in between may still name an earlier owner: each
    /// candidate's word decides (L2).
    pub(super) fn large_behind(&self, ptr: u32) -> impl Iterator<Item = Found<'_>> {
        let granule = ptr / GRANULE;
        (anchor_floor(granule)..granule).rev().filter_map(|behind| {
            match self.directory.owner_of_granule(behind) {
                Owner::Large { desc } => {
                    let large = self.large.get(desc)?;
                    Some(Found {
                        word: &large.word,
                        place: FoundPlace::Large { desc, large },
                    })
                }
                Owner::Span { .. } | Owner::Nobody => None,
            }
        })
    }

    /// The word of `block`; `None` only for a lookup's descriptor that
    /// does not exist (never for a block someone allocated).
    #[inline]
    pub(super) fn word(&self, block: BlockId) -> Option<&BlockWord> {
        match block.place() {
            Place::Small { class, desc, index } => self
                .classes
                .get(usize::from(class))?
                .descs
                .get(desc)?
                .blocks
                .get(usize::from(index)),
            Place::Large { desc } => Some(&self.large.get(desc)?.word),
        }
    }

    /// Makes `owner` the owner of granules `start..start + granules` in the
    /// directory, and makes spare every gone descriptor that no granule
    /// names any more (L3).
    pub(super) fn assign(&self, start: u32, granules: u32, owner: Owner) {
        self.directory
            .assign(start, granules, owner, |previous, count| {
                self.unname(previous, count);
            });
    }

    /// Makes the large block `desc` the owner of its anchors (L1) in the
    /// directory, as [`assign`](Self::assign) does for every granule.
    pub(super) fn name_anchors(&self, start: u32, granules: u32, desc: u32) {
        let owner = Owner::Large { desc };
        for anchor in anchors(start, granules) {
            let previous = self.directory.name(anchor, owner);
            // Only a descriptor `retaken` in place names its own start.
            if previous != owner {
                self.unname(previous, 1);
            }
        }
    }

    /// `count` granules that named `previous` name another owner now;
    /// makes its descriptor spare if that was the last of them and it is
    /// gone (L3).
    fn unname(&self, previous: Owner, count: u32) {
        match previous {
            Owner::Nobody => {}
            Owner::Span { class, desc } => {
                let class = usize::from(class);
                if self.span_desc(class, desc).names.unnamed(count) {
                    self.classes[class].lists.lock().make_spare(desc);
                }
            }
            Owner::Large { desc } => {
                let large = self.large.get(desc).expect("a named descriptor exists");
                if large.names.unnamed(count) {
                    self.pool.lock().make_spare(desc);
                }
            }
        }
    }

    /// The answer to a free of `ptr`, where no allocation, live or freed,
    /// starts in the directory's view: `DoubleFree` if one started there
    /// and was freed before its place went to another owner (L1).
    #[cold]
    pub(super) fn not_a_start(&self, ptr: u32) -> LinearMemoryError {
        if self.directory.is_freed_start(ptr) {
            LinearMemoryError::DoubleFree
        } else {
            LinearMemoryError::UnknownPointer
        }
    }
}

/// L3 at the end of a memory's life, in debug builds: every descriptor's
/// count of naming granules matches the directory, and every descriptor
/// that no granule names and whose span or block is gone was made spare
/// exactly once (none lost to a race between the two).
#[cfg(debug_assertions)]
impl Drop for Allocator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // a failing test is already reported
        }
        let mut spans: Vec<Vec<u32>> = self
            .classes
            .iter()
            .map(|class| alloc::vec![0; class.lists.lock().made as usize])
            .collect();
        let mut large = alloc::vec![0u32; self.pool.lock().large_made as usize];
        let granules = self.size_pages() * PAGE_GRANULES;
        for granule in 0..granules {
            match self.directory.owner_of(granule * GRANULE) {
                Owner::Nobody => {}
                Owner::Span { class, desc } => spans[usize::from(class)][desc as usize] += 1,
                Owner::Large { desc } => large[desc as usize] += 1,
            }
        }
        let check = |names: &Names, named: u32, spare: &[u32], desc: u32| {
            let value = names.0.load(Ordering::Relaxed);
            debug_assert_eq!(value / NAMED, named, "L3: descriptor {desc}'s count");
            let listed = spare.iter().filter(|&&d| d == desc).count();
            let should = usize::from(value == GONE);
            debug_assert_eq!(
                listed, should,
                "L3: descriptor {desc} listed {listed} times"
            );
        };
        for (class, counts) in spans.iter().enumerate() {
            let lists = self.classes[class].lists.lock();
            for (desc, &named) in (0..).zip(counts) {
                if let Some(span) = self.classes[class].descs.get(desc) {
                    check(&span.names, named, &lists.spare, desc);
                }
            }
        }
        let state = self.pool.lock();
        for (desc, &named) in (0..).zip(&large) {
            if let Some(block) = self.large.get(desc) {
                check(&block.names, named, &state.large_spare, desc);
            }
        }
    }
}
