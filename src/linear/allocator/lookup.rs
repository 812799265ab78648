//! Pointer → block (L1–L4): the directory names the span or large block
//! that last took each granule, the descriptor gives the block's word (a
//! large block's) or field (a small block's, `fields.rs`), and that (or
//! the directory's freed-start mark) decides the exact answer: a live
//! block, `DoubleFree` or `UnknownPointer`.
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
//!   written); the descriptor gives the word or field of the place that
//!   holds a byte. A large block's other granules keep naming their
//!   earlier owners, so a byte whose own granule leads to no live block
//!   that holds it is looked for behind, back to its anchor floor, where
//!   any large block that holds it is named (`large_behind`; only claims
//!   need this: a block's start is always on its own entry). Freed words
//!   and fields keep saying so until their descriptor is remade (L3), so
//!   freeing one again answers `DoubleFree`, and a place never allocated
//!   says `NEVER` (`UnknownPointer`).
//!   Before a freed block's granules go back to the pool (its span
//!   retiring, or it being large), the directory marks its start, which
//!   answers for it once another owner has its granules (L4).
//! - L3: a descriptor is remade only once its span or block is gone and
//!   no granule of the directory names it any more (`Names`: the assign
//!   that takes a granule over counts the previous owner down; a large
//!   block counts its anchors), so a freed
//!   block's own word answers `DoubleFree` until its place is taken by
//!   another allocation (and its mark after, L4).
//! - L2: a lookup that raced a reuse may read a stale descriptor. A large
//!   block's word names its own range, so every answer is decided by the
//!   word read: a live word always describes the one live allocation at
//!   that range, and every transition is a compare-and-swap from the exact
//!   word read. A small block's field names no range, so a lookup acts on
//!   one only under a *pin* on its span: a compare-and-swap that counts
//!   the lookup in the span's state word, and only in a published span
//!   (generation not 0). A pinned span's descriptor is not remade (S6)
//!   until the lookup unpins, so the start and block count it reads after
//!   pinning are the span's it acts on: it acts only if `ptr` lies in
//!   that span (else the directory named a descriptor remade elsewhere
//!   since, and the lookup reads the directory again), and the field it
//!   then reads and swaps is the block at `ptr`. The span may retire under
//!   the pin, but only with every block free: its fields then say freed
//!   or never (S2), and a swap, which needs a live field, fails. A pin
//!   delays no retirement, so it keeps no room from an allocation; a
//!   remake skips a pinned descriptor for another. No tag or generation
//!   is compared, so nothing can wrap.
//!   Claims are pinned the same way while they are taken (a claimed block
//!   keeps its span from retiring after, C2), and the free's count of its
//!   block back into the span ends the pin in the same compare-and-swap.
//! - L4: a free that finds no allocation, live or freed, starting at its
//!   pointer answers by the directory's freed-start mark, and whatever led
//!   it there is ordered after the mark: it read the place's new owner in
//!   the directory (an assign, Release, by whoever took the granules from
//!   the pool after the mark), or a descriptor remade since (its pin's
//!   Acquire reads the state published after the remake, which came after
//!   the descriptor went spare, so after its granules went back to the
//!   pool). A start marked before the free began is never missed.

#[cfg(debug_assertions)]
use alloc::vec::Vec;

use super::super::LinearMemoryError;
use super::super::block::{Block, BlockId, BlockWord, Place};
use super::super::classes::{GRANULE, block_size, granules_for, min_len};
use super::super::directory::{Owner, anchor_floor, anchors};
use super::super::fields::{Field, FieldRef};
#[cfg(debug_assertions)]
use super::super::pool::PAGE_GRANULES;
use super::Allocator;
use super::large::LargeDesc;
use super::spans::{SpanDesc, SpanPin};
use crate::sync::{AtomicU32, Ordering};

/// What a lookup found: the block's word, and which block it is.
pub(super) struct Found<'a> {
    pub(super) word: Word<'a>,
    pub(super) block: BlockId,
    /// A small block's span stays pinned while the answer lives (L2).
    _pin: Option<SpanPin<'a>>,
}

impl<'a> Found<'a> {
    fn large(desc: u32, large: &'a LargeDesc) -> Found<'a> {
        Found {
            word: Word::Large(&large.word),
            block: BlockId::large(desc),
            _pin: None,
        }
    }
}

/// A block's lifecycle: a large block's word, or a small block's field
/// read as one (its start and length from its pinned span's geometry).
pub(super) enum Word<'a> {
    Large(&'a BlockWord),
    Small {
        field: FieldRef<'a>,
        /// The block's start.
        start: u32,
        /// Its class's shortest length.
        min_len: u32,
    },
}

impl Word<'_> {
    /// The block now (`BlockWord::load`'s orderings).
    #[inline]
    pub(super) fn load(&self) -> Block {
        match self {
            Word::Large(word) => word.load(),
            Word::Small {
                field,
                start,
                min_len,
            } => field.load().block(*start, *min_len),
        }
    }

    /// The block now, read with a read-modify-write (Q1).
    pub(super) fn touch(&self) -> Block {
        match self {
            Word::Large(word) => word.touch(),
            Word::Small {
                field,
                start,
                min_len,
            } => field.touch().field.block(*start, *min_len),
        }
    }

    /// Claims `seen` (live, unclaimed) if the block still is `seen` (C1).
    #[inline]
    pub(super) fn claim(&self, seen: Block) -> Result<(), Block> {
        debug_assert!(seen.is_live() && !seen.is_claimed());
        match self {
            Word::Large(word) => word.claim(seen),
            Word::Small { min_len, .. } => {
                self.exchange(seen, Field::live(seen.len() - min_len, true))
            }
        }
    }

    /// A small block's field from `seen` to `to`.
    fn exchange(&self, seen: Block, to: Field) -> Result<(), Block> {
        let Word::Small {
            field,
            start,
            min_len,
        } = self
        else {
            unreachable!("only small blocks have fields")
        };
        let seen = Field::live(seen.len() - min_len, seen.is_claimed());
        field
            .exchange(seen, to)
            .map_err(|now| now.block(*start, *min_len))
    }
}

/// A small block found under a pin on its span (`Allocator::pinned_block`).
pub(super) struct PinnedBlock<'a> {
    pub(super) span: &'a SpanDesc,
    pub(super) pin: SpanPin<'a>,
    /// The span's start.
    pub(super) start: u32,
    /// The block's index in the span.
    pub(super) index: u32,
    /// Whether the pointer looked up is the block's start.
    pub(super) at_start: bool,
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
    /// decides (L2); a small block's span is pinned while the answer lives.
    #[inline]
    pub(super) fn lookup(&self, ptr: u32) -> Option<Found<'_>> {
        self.at_place(
            ptr,
            |class, desc| self.small_at(class, desc, ptr),
            |desc, large| Some(Found::large(desc, large)),
        )
        .flatten()
    }

    /// `small(class, desc)` or `large(desc, descriptor)` at the place the
    /// directory names for byte `ptr` (L1); `None` where it names nobody.
    /// `small` answers `Err` when the span is not at `ptr`'s place any
    /// more (remade elsewhere since the directory named it, L2): then the
    /// directory names another owner now, else the place holds no block.
    #[inline]
    pub(super) fn at_place<'a, R>(
        &'a self,
        ptr: u32,
        mut small: impl FnMut(usize, u32) -> Result<R, ()>,
        large: impl FnOnce(u32, &'a LargeDesc) -> R,
    ) -> Option<R> {
        let mut owner = self.directory.owner_of(ptr);
        loop {
            match owner {
                Owner::Nobody => return None,
                Owner::Span { class, desc } => match small(usize::from(class), desc) {
                    Ok(answer) => return Some(answer),
                    Err(()) => {
                        let now = self.directory.owner_of(ptr);
                        if now == owner {
                            return None;
                        }
                        owner = now;
                    }
                },
                Owner::Large { desc } => return Some(large(desc, self.large.get(desc)?)),
            }
        }
    }

    /// Block `index` of span `desc` of `class`, pinned (L2); `None` if
    /// the descriptor has no published span.
    #[inline]
    pub(super) fn small_block(&self, class: usize, desc: u32, index: u16) -> Option<Found<'_>> {
        let span = self.classes.get(class)?.descs.get(desc)?;
        let pin = self.pin_span(class, desc, span)?;
        let (start, blocks) = pin.geometry();
        if u32::from(index) >= blocks {
            return None;
        }
        Some(Self::small_found(
            class,
            desc,
            span,
            start,
            u32::from(index),
            pin,
        ))
    }

    /// The block of span `desc` of `class` that holds `ptr`, pinned (L2):
    /// `Ok(None)` if the span's place holds no block there (or it has no
    /// published span), `Err` if the span is not at `ptr`'s place any more.
    #[inline]
    fn small_at(&self, class: usize, desc: u32, ptr: u32) -> Result<Option<Found<'_>>, ()> {
        Ok(self.pinned_block(class, desc, ptr)?.map(|block| {
            Self::small_found(class, desc, block.span, block.start, block.index, block.pin)
        }))
    }

    /// Span `desc` of `class` pinned (L2) and the block in it that holds
    /// `ptr`. `Ok(None)` if the span's place
    /// holds no block there (or it has no published span), `Err` if the
    /// span is not at `ptr`'s place any more (the directory named a
    /// descriptor remade elsewhere since).
    #[inline]
    pub(super) fn pinned_block(
        &self,
        class: usize,
        desc: u32,
        ptr: u32,
    ) -> Result<Option<PinnedBlock<'_>>, ()> {
        let Some(span) = self.classes.get(class).and_then(|c| c.descs.get(desc)) else {
            return Ok(None);
        };
        let Some(pin) = self.pin_span(class, desc, span) else {
            return Ok(None);
        };
        let (start, blocks) = pin.geometry();
        let Some(offset) = ptr.checked_sub(start) else {
            return Err(());
        };
        if offset >= granules_for(class, blocks) * GRANULE {
            return Err(());
        }
        let size = block_size(class);
        let index = offset / size;
        if index >= blocks {
            return Ok(None); // the slack past its last block
        }
        Ok(Some(PinnedBlock {
            span,
            pin,
            start,
            index,
            at_start: index * size == offset,
        }))
    }

    fn small_found<'a>(
        class: usize,
        desc: u32,
        span: &'a SpanDesc,
        start: u32,
        index: u32,
        pin: SpanPin<'a>,
    ) -> Found<'a> {
        Found {
            word: Word::Small {
                field: span.fields(class).at(index),
                start: start + index * block_size(class),
                min_len: min_len(class),
            },
            block: BlockId::small(class as u8, desc, index as u16),
            _pin: Some(pin),
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
                Owner::Large { desc } => Some(Found::large(desc, self.large.get(desc)?)),
                Owner::Span { .. } | Owner::Nobody => None,
            }
        })
    }

    /// The block `block` names, its span pinned (L2); `None` only for a
    /// descriptor with no block there now.
    #[inline]
    pub(super) fn found(&self, block: BlockId) -> Option<Found<'_>> {
        match block.place() {
            Place::Small { class, desc, index } => {
                self.small_block(usize::from(class), desc, index)
            }
            Place::Large { desc } => Some(Found::large(desc, self.large.get(desc)?)),
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::super::SpanCache;
    use super::*;

    /// L2, step by step on one thread: a lookup of a freed small block
    /// found its span, then the span retired, a span of another class took
    /// its granules (so no granule names its descriptor any more, L3) and
    /// a new span of the class was made elsewhere with a live block at the
    /// freed block's index and length. The lookup must not reach that
    /// block: its pin keeps the descriptor from being remade, so the new
    /// span gets another one (mutation `lookup_unpinned`: the lookup reads
    /// the remade span's live block through the old span's geometry).
    #[test]
    fn a_stale_lookup_never_acts_on_a_span_remade_elsewhere() {
        const SMALL: u32 = 400; // the 448-byte class: 2 blocks in 4 granules
        const OTHER: u32 = 200; // the 224-byte class: 4 blocks in 4 granules
        let allocator = Allocator::new(1, 1).unwrap();
        let (mut c, mut other) = (SpanCache::new(&allocator), SpanCache::new(&allocator));
        let first = allocator.alloc(&mut c, SMALL, 8).unwrap();
        let second = allocator.alloc(&mut c, SMALL, 8).unwrap();
        assert_eq!((first, second), (GRANULE, GRANULE + 448));
        let fill_len = (255 - 8) * GRANULE;
        let fill = allocator.alloc(&mut other, fill_len, 256).unwrap();
        allocator.free(c.shard(), first, SMALL).unwrap();
        allocator.free(c.shard(), second, SMALL).unwrap();
        // The racing free's lookup, before the span retires.
        let stale = allocator.lookup(second).expect("the span holds it");
        allocator.unpin_all(&mut c); // the span retires
        let plug = allocator.alloc(&mut other, OTHER, 8).unwrap();
        assert_eq!(plug, first, "the other class's span took the granules");
        let again = allocator.alloc(&mut other, SMALL, 8).unwrap();
        let also = allocator.alloc(&mut other, SMALL, 8).unwrap();
        assert_eq!(also, again + 448);
        // The racing free goes on with what it found.
        let seen = stale.word.load();
        assert!(
            !seen.is_live(),
            "the stale lookup reads the remade span's block {also}: {seen:?}"
        );
        drop(stale);
        assert_eq!(
            allocator.free(other.shard(), second, SMALL),
            Err(LinearMemoryError::DoubleFree)
        );
        for (ptr, len) in [
            (again, SMALL),
            (also, SMALL),
            (plug, OTHER),
            (fill, fill_len),
        ] {
            allocator.free(other.shard(), ptr, len).unwrap();
        }
        allocator.unpin_all(&mut other);
    }
}
