//! Small blocks: size classes on spans (S1–S6). A span is a run of
//! granules from the pool holding blocks of one class; each block's state
//! is a packed field (`fields.rs`), and the span's state word counts its
//! free blocks. Handles pin spans to allocate from (`cache.rs`), partly
//! free spans nobody pins wait on their class's partial list, and an empty
//! span goes back to the pool.
//!
//! ## Span states
//!
//! A span descriptor's `state` word is
//! `generation << 40 | flags << 32 | lookups << 16 | free`: `free` counts
//! its blocks that nobody holds or has reserved, `lookups` the lookups
//! that pin it (L2, `lookup.rs`). The generation changes each time the
//! descriptor starts a new span, so a controller's pin
//! `(descriptor, generation)` does not reach the next span that reuses the
//! descriptor (a pin is only a preference: two controllers allocating from
//! one span would still take distinct fields).
//!
//! - S1: a block is taken in two steps: the compare-and-swap on the state
//!   that counts `free` down (a reservation), then the compare-and-swap
//!   on a free field (never allocated, or freed) that makes it live. It
//!   is given back in two as well: the compare-and-swap that marks its
//!   live field freed, then the one that counts `free` up. So free fields
//!   are never fewer than `free` plus the reservations not yet used, and
//!   a reserver always finds one (it looks until it does).
//! - S2: a span is retired (`RETIRED`, its granules back in the pool) only
//!   by the compare-and-swap that sees every block free (`free` equal to
//!   its blocks); nothing reserves a block of a retired span, so its
//!   granules hold no live block and no claim, and its fields say freed
//!   or never allocated until it is remade (a lookup that pins it reads
//!   them, and swaps none: a swap needs a live field).
//! - S3: generation 0 means "never published" (a descriptor being made);
//!   every published span has a generation in `1..2^24`, wrapping past 0,
//!   so reclaiming and taking from any span never skip a published one.
//! - S4: a free that leaves a span empty retires it, unless a handle pins
//!   it and fewer than [`KEPT_SPANS`] spans of the memory are kept: then
//!   the span stays pinned and empty (`KEPT`), so a handle that allocates
//!   and frees one lone block does not make and retire a span each time.
//!   `KEPT` is set only by the compare-and-swap that empties a pinned span
//!   after `kept_spans` counted it, and cleared (and counted down) by the
//!   one that takes its next block, retires it or unpins it; so at most
//!   [`KEPT_SPANS`] empty spans (on at most twice as many pages: a span
//!   may straddle two) stay committed while their handles idle, and every
//!   other empty span goes back at once. A kept span's blocks stay
//!   reachable like any pinned span's (S5), its granules are taken back
//!   (`reclaim_kept_spans`) before the memory grows, and
//!   `reclaim_empty_spans` retires it for a pool that ran dry (a span a
//!   handle just took from the pool is empty until its first allocation,
//!   which follows at once; that covers the window too).
//! - S6: a descriptor is remade (its state set to generation 0, then its
//!   start, block count and fields written) only by the compare-and-swap
//!   that sees it retired (or never published) with no lookup pinning it;
//!   a lookup pins only a published span, so what a pinned lookup reads of
//!   a span stays that span's until it unpins (L2).
//! - S5: every pinned span is on its class's `pinned` list while pinned,
//!   and a handle that needs a new span takes a free block of a span
//!   another handle pins, or a smaller span the pool holds, before the
//!   memory grows: a pin is a preference, never a reason to grow, sleep
//!   or answer `OutOfMemory`, and the memory grows only for a request
//!   that nothing free as it is can serve. An allocation (or a waiter
//!   for bytes) that looked while a span was being made looks again once
//!   it is published (`transit.rs`, T2), so publishing wakes nobody.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem::ManuallyDrop;

use super::super::LinearMemoryError;
use super::super::block::BlockId;
use super::super::classes::{
    CLASS_COUNT, GRANULE, block_size, granules_for, len_bits, min_len, span_blocks,
    span_blocks_after,
};
use super::super::directory::{Owner, Stable};
use super::super::fields::{Field, Fields, Packing};
use super::lookup::Names;
use super::transit::Transit;
use super::{Allocator, Growth, SpanCache};
use crate::sync::{AtomicU32, AtomicU64, Mutex, OnceLock, Ordering};

/// The count of free blocks in a span's state word.
pub(super) const FREE_MASK: u64 = 0xffff;

/// One lookup pinning the span (L2).
pub(super) const LOOKUP: u64 = 1 << 16;

/// The count of lookups pinning the span.
const LOOKUP_MASK: u64 = 0xffff << 16;

/// On its class's partial list (has free blocks, nobody pins it).
pub(super) const LISTED: u64 = 1 << 32;

/// A controller allocates from it.
pub(super) const PINNED: u64 = 1 << 33;

/// Its granules went back to the pool (S2).
pub(super) const RETIRED: u64 = 1 << 34;

/// Empty, and counted in the memory's `kept_spans` (S4).
pub(super) const KEPT: u64 = 1 << 35;

/// Most empty spans a memory keeps for their pinning handles (S4): enough
/// for a guest churning short-lived strings and vectors of a dozen
/// classes (T2 of bench_report, measured when the keep was added: 2 788
/// instructions per round with 16, 4 094 with 2, 5 778 with none). Each is at most 16 granules (4 KiB), so the pages they
/// sit on (at most 32: a span may straddle two) are all that a memory of
/// idle handles keeps committed beyond the pool's own `KEPT_PAGES`.
pub(super) const KEPT_SPANS: u32 = 16;

pub(super) const GENERATION_SHIFT: u32 = 40;

/// The largest generation: the state word's top 24 bits.
pub(super) const GENERATION_MAX: u32 = u32::MAX >> (GENERATION_SHIFT - 32);

pub(super) fn generation(state: u64) -> u32 {
    (state >> GENERATION_SHIFT) as u32
}

/// The generation of the next span a descriptor of generation `previous`
/// starts: `1..=GENERATION_MAX`, wrapping past 0, which only a descriptor
/// never published has (S3).
pub(super) fn next_generation(previous: u32) -> u32 {
    if previous >= GENERATION_MAX {
        1
    } else {
        previous + 1
    }
}

/// Blocks nobody holds or has reserved (S1).
pub(super) fn free_count(state: u64) -> u32 {
    (state & FREE_MASK) as u32
}

/// Lookups pinning the span (L2).
pub(super) fn lookups(state: u64) -> u32 {
    ((state & LOOKUP_MASK) >> 16) as u32
}

/// How each class packs its blocks' fields.
const PACKINGS: [Packing; CLASS_COUNT] = {
    let mut packings = [Packing::new(0); CLASS_COUNT];
    let mut class = 0;
    while class < CLASS_COUNT {
        packings[class] = Packing::new(len_bits(class));
        class += 1;
    }
    packings
};

/// One span of a size class (or a retired one, waiting for reuse).
pub(super) struct SpanDesc {
    pub(super) state: AtomicU64,
    /// Byte offset of the span's first block.
    start: AtomicU32,
    /// Blocks the span holds (fewer than its class's whole span when the
    /// memory had no room for one).
    blocks: AtomicU32,
    /// Its blocks' fields, made with the descriptor's first span (sized
    /// for a whole span), so descriptors made ahead in a segment cost
    /// only their own few words.
    fields: OnceLock<Box<[AtomicU64]>>,
    /// Which granules still name it in the directory (L3).
    pub(super) names: Names,
}

impl SpanDesc {
    pub(super) fn new() -> SpanDesc {
        SpanDesc {
            state: AtomicU64::new(0),
            start: AtomicU32::new(0),
            blocks: AtomicU32::new(0),
            fields: OnceLock::new(),
            names: Names::default(),
        }
    }

    /// The fields of this span of `class`: only for a span made at least
    /// once, read under a pin or a reservation (or by its retirer).
    #[inline]
    pub(super) fn fields(&self, class: usize) -> Fields<'_> {
        Fields {
            words: self.fields.get().expect("a made span has fields"),
            packing: PACKINGS[class],
        }
    }

    /// Start and block count. Relaxed: written before the span was
    /// published, and read by whoever got its state with an Acquire (a
    /// pin, a reservation) or retired it.
    #[inline]
    pub(super) fn geometry(&self) -> (u32, u32) {
        (
            self.start.load(Ordering::Relaxed),
            self.blocks.load(Ordering::Relaxed),
        )
    }

    /// Starts remaking this descriptor (S6): from retired (or never
    /// published) with no lookup pinning it to generation 0; the
    /// generation it had, or `None` if a lookup pins it.
    fn begin_remake(&self) -> Option<u32> {
        // Relaxed: the compare-and-swap below decides.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            debug_assert!(
                generation(state) == 0 || state & RETIRED != 0,
                "S6: {state:#x}"
            );
            if lookups(state) != 0 {
                return None;
            }
            // Acquire pairs with the Release of the last lookup's unpin:
            // its reads of the fields happen before we reset them. Release
            // orders the marks of the span it had (before it went spare)
            // before a lookup that sees generation 0 (L4).
            match self.state.compare_exchange_weak(
                state,
                RETIRED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(generation(state)),
                Err(now) => state = now,
            }
        }
    }

    /// Takes a free block and makes its field `to` (S1), as long as
    /// `usable` accepts the span's state: the reservation's
    /// compare-and-swap counts `free` down and clears `KEPT` (the span is
    /// not empty any more, S4), then a free field is taken. The block's
    /// index and the state it was reserved from, else the state that
    /// stopped it (no free block, or not usable).
    #[inline]
    fn take_free_block(
        &self,
        class: usize,
        usable: impl Fn(u64) -> bool,
        to: Field,
    ) -> Result<(u32, u64), u64> {
        // Relaxed: the compare-and-swap below decides, with Acquire.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if free_count(state) == 0 || !usable(state) {
                return Err(state);
            }
            #[cfg(not(slotarena_mutation = "take_keeps_kept"))]
            let taken = (state - 1) & !KEPT;
            // Mutation: the span stays marked kept (and counted) once not empty.
            #[cfg(slotarena_mutation = "take_keeps_kept")]
            let taken = state - 1;
            // Acquire pairs with the Release of the publishing store: the
            // span's geometry and fields are this span's.
            match self.state.compare_exchange_weak(
                state,
                taken,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        // The reservation keeps the span from retiring (S2), and a free
        // field exists for it (S1).
        Ok((self.fields(class).take(to), state))
    }

    /// Whether `state` has every block of this span free. Relaxed: written
    /// before the span was published, and read by whoever got its state
    /// with an Acquire or under its class's lock.
    pub(super) fn is_empty(&self, state: u64) -> bool {
        free_count(state) == self.blocks.load(Ordering::Relaxed)
    }
}

/// A lookup's pin on a span (L2): while it lives, the span's descriptor is
/// not remade (S6), so its geometry and fields are those of the span the
/// lookup acts on. The span may retire meanwhile (or have retired), but
/// only once every block is free: then its fields say freed or never
/// allocated, and the lookup only reads them (S2).
/// Dropping it unpins; [`freed`](Self::freed) unpins and gives back the
/// block the lookup freed, in one compare-and-swap.
#[must_use = "the span stays pinned until this drops"]
pub(super) struct SpanPin<'a> {
    allocator: &'a Allocator,
    span: &'a SpanDesc,
    class: usize,
    desc: u32,
}

impl SpanPin<'_> {
    /// The pinned span's start and block count.
    #[inline]
    pub(super) fn geometry(&self) -> (u32, u32) {
        self.span.geometry()
    }

    /// Unpins, giving back the block whose field the caller just marked
    /// freed (S1), on byte-counter shard `shard`.
    #[inline]
    pub(super) fn freed(self, shard: usize) {
        let pin = ManuallyDrop::new(self);
        pin.allocator
            .unpin_freed(shard, pin.class, pin.desc, pin.span);
    }
}

impl Drop for SpanPin<'_> {
    /// Counts the lookup out, and nothing else: a lookup that gave no
    /// block back left the span as full as it found it, so there is
    /// nothing to list, keep or retire.
    fn drop(&mut self) {
        // Release pairs with the Acquire of `begin_remake`: our reads of
        // the fields happen before a remake resets them (S6).
        #[cfg(not(slotarena_mutation = "lookup_unpinned"))]
        let before = self.span.state.fetch_sub(LOOKUP, Ordering::Release);
        #[cfg(not(slotarena_mutation = "lookup_unpinned"))]
        debug_assert!(lookups(before) > 0, "L2: the pin is counted");
    }
}

/// A controller's pin on a span: which descriptor, in which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SpanRef {
    pub(super) desc: u32,
    pub(super) generation: u32,
}

/// What is under a class's lock.
pub(super) struct ClassLists {
    /// Spans with free blocks that nobody pins, by `(desc, generation)`;
    /// entries whose span changed since are skipped.
    pub(super) partial: Vec<(u32, u32)>,
    /// Spans that handles pin, by `(desc, generation)`, one entry per pin
    /// (a handle removes its entry when it drops the pin): where another
    /// handle finds their free blocks before it grows the memory (S5).
    /// Entries whose span was retired or remade since are skipped.
    pub(super) pinned: Vec<(u32, u32)>,
    /// Retired descriptors, for reuse.
    pub(super) spare: Vec<u32>,
    /// Descriptors made so far.
    pub(super) made: u32,
}

impl ClassLists {
    /// Forgets the pin `span` (its handle dropped it).
    pub(super) fn unpinned(&mut self, span: SpanRef) {
        if let Some(at) = self
            .pinned
            .iter()
            .position(|&entry| entry == (span.desc, span.generation))
        {
            self.pinned.swap_remove(at);
        }
    }

    /// Lists a retired descriptor for reuse (L3: exactly once).
    pub(super) fn make_spare(&mut self, desc: u32) {
        debug_assert!(!self.spare.contains(&desc), "L3: {desc} made spare twice");
        self.spare.push(desc);
    }
}

pub(super) struct Class {
    pub(super) descs: Stable<SpanDesc>,
    pub(super) lists: Mutex<ClassLists>,
    /// Mirror of `lists.made` for lock-free scans.
    pub(super) made: AtomicU32,
}

/// How many blocks a new span may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SpanSize {
    /// The size its class has grown to (`classes::span_blocks_after`).
    Whole,
    /// The most blocks, halving from a whole span, that fit.
    Halving,
}

/// Outcome of taking a block from a pinned span.
pub(super) enum Take {
    /// The block's index in the span, and its start.
    Block(u32, u32),
    Full,
    /// Retired or reused since it was pinned.
    Gone,
}

/// What an unpin must do after its compare-and-swap.
enum AfterUnpin {
    Nothing,
    List(u32),
    Retire,
}

impl Allocator {
    // Always: the usual allocation's path, called from `alloc_block` and,
    // cold, from `alloc_small_settled`, which would keep it out of line.
    #[inline(always)]
    pub(super) fn alloc_small(
        &self,
        cache: &mut SpanCache,
        class: usize,
        len: u32,
        claimed: bool,
    ) -> Result<(u32, BlockId), LinearMemoryError> {
        let mut dropped = None;
        let to = Field::live(len - min_len(class), claimed);
        let mut kept_taken_back = false;
        let (desc_index, index, start) = loop {
            if let Some(span) = cache.pinned[class] {
                match self.take_block(class, span, to) {
                    Take::Block(index, start) => break (span.desc, index, start),
                    Take::Full => self.unpin(cache.shard, class, span),
                    Take::Gone => {}
                }
                cache.pinned[class] = None;
                dropped = Some(span);
            }
            // A span nobody pins, or a whole new one the pool holds now.
            match self.acquire_span(
                cache.shard,
                class,
                dropped.take(),
                SpanSize::Whole,
                Growth::No,
            ) {
                Ok(span) => {
                    cache.pinned[class] = Some(span);
                    continue;
                }
                Err(LinearMemoryError::OutOfMemory) => {}
                Err(error) => return Err(error),
            }
            // Before the memory grows: a free block of a span another
            // handle pins (S5), or a smaller span the pool holds now.
            if let Some(block) = self.steal_block(class, to) {
                break block;
            }
            match self.acquire_span(cache.shard, class, None, SpanSize::Halving, Growth::No) {
                Ok(span) => {
                    cache.pinned[class] = Some(span);
                    continue;
                }
                Err(LinearMemoryError::OutOfMemory) => {}
                Err(error) => return Err(error),
            }
            // The granules of spans kept for their handles (S4), once.
            if !kept_taken_back && self.has_kept_spans() {
                kept_taken_back = true;
                if self.reclaim_kept_spans() > 0 {
                    continue;
                }
            }
            match self.acquire_span(cache.shard, class, None, SpanSize::Halving, Growth::Yes) {
                Ok(span) => cache.pinned[class] = Some(span),
                Err(LinearMemoryError::OutOfMemory) => {
                    break self
                        .take_any_block(class, to)
                        .ok_or(LinearMemoryError::OutOfMemory)?;
                }
                Err(error) => return Err(error),
            }
        };
        let block = BlockId::small(class as u8, desc_index, index as u16);
        Ok((start, block))
    }

    pub(super) fn span_desc(&self, class: usize, desc: u32) -> &SpanDesc {
        self.classes[class]
            .descs
            .get(desc)
            .expect("a pinned or recorded span's descriptor exists")
    }

    /// Takes a free block of the pinned `span` and makes its field `to`
    /// (S1). Always inlined into its one caller, `alloc_small`'s loop:
    /// as a call it cost a frame, six saved registers and an enum
    /// returned through memory on every small alloc.
    #[inline(always)]
    pub(super) fn take_block(&self, class: usize, span: SpanRef, to: Field) -> Take {
        let pinned = |state: u64| generation(state) == span.generation && state & RETIRED == 0;
        match self.take_from(class, self.span_desc(class, span.desc), pinned, to) {
            Ok((index, start)) => Take::Block(index, start),
            Err(state) if pinned(state) => Take::Full,
            Err(_) => Take::Gone,
        }
    }

    /// [`SpanDesc::take_free_block`], counting a kept span down (S4):
    /// the block's index and start.
    #[inline]
    fn take_from(
        &self,
        class: usize,
        span: &SpanDesc,
        usable: impl Fn(u64) -> bool,
        to: Field,
    ) -> Result<(u32, u32), u64> {
        let (index, state) = span.take_free_block(class, usable, to)?;
        if state & KEPT != 0 {
            self.unkeep();
        }
        // The reservation's Acquire ordered the span's geometry before us.
        let (span_start, _) = span.geometry();
        Ok((index, span_start + index * block_size(class)))
    }

    /// Counts a kept span in, if fewer than [`KEPT_SPANS`] are (S4).
    /// Relaxed: the count only bounds how many stay committed; each
    /// `KEPT` flag is set and cleared by its span's own compare-and-swap.
    fn try_keep(&self) -> bool {
        self.kept_spans
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| {
                (kept < KEPT_SPANS).then_some(kept + 1)
            })
            .is_ok()
    }

    /// Counts a kept span out: its `KEPT` flag was just cleared (S4).
    fn unkeep(&self) {
        let before = self.kept_spans.fetch_sub(1, Ordering::Relaxed);
        debug_assert!(before > 0, "S4: every KEPT flag is counted");
    }

    /// A free block of `class` in a span another handle pins, made `to`,
    /// as `(descriptor, index, start)`: taken before the memory grows for a new
    /// span (S5). The reservation decides who gets it (S1); a retired or
    /// remade span is skipped (S2).
    #[cold]
    pub(super) fn steal_block(&self, class: usize, to: Field) -> Option<(u32, u32, u32)> {
        let lists = self.classes[class].lists.lock();
        lists.pinned.iter().find_map(|&(desc, generation_pinned)| {
            let pinned =
                |state: u64| generation(state) == generation_pinned && state & RETIRED == 0;
            let (index, start) = self
                .take_from(class, self.span_desc(class, desc), pinned, to)
                .ok()?;
            Some((desc, index, start))
        })
    }

    /// For a memory out of granules: a free block of `class` in any span,
    /// pinned by another controller or not, as `(descriptor, index,
    /// start)`. A pin
    /// is only a preference; the reservation decides who gets a block
    /// (S1), and a retired span is never taken from (S2). Without this,
    /// free blocks in spans other controllers pin could not serve this one
    /// until they unpinned.
    #[cold]
    pub(super) fn take_any_block(&self, class: usize, to: Field) -> Option<(u32, u32, u32)> {
        let class_state = &self.classes[class];
        // Acquire pairs with `acquire_span`'s Release.
        let made = class_state.made.load(Ordering::Acquire);
        for desc in 0..made {
            let Some(span) = class_state.descs.get(desc) else {
                continue;
            };
            let live = |state: u64| generation(state) != 0 && state & RETIRED == 0;
            if let Ok((index, start)) = self.take_from(class, span, live, to) {
                return Some((desc, index, start));
            }
        }
        None
    }

    /// Pins a span of `class` for the caller: one from the partial list, or
    /// a new one from the pool.
    #[cold]
    pub(super) fn acquire_span(
        &self,
        shard: usize,
        class: usize,
        dropped: Option<SpanRef>,
        size: SpanSize,
        growth: Growth,
    ) -> Result<SpanRef, LinearMemoryError> {
        let class_state = &self.classes[class];
        {
            let mut lists = class_state.lists.lock();
            if let Some(span) = dropped {
                lists.unpinned(span);
            }
            while let Some((desc, generation_listed)) = lists.partial.pop() {
                let span_desc = self.span_desc(class, desc);
                // Relaxed: the CAS below re-reads with Acquire.
                let mut state = span_desc.state.load(Ordering::Relaxed);
                loop {
                    let listed = generation(state) == generation_listed
                        && state & (RETIRED | PINNED) == 0
                        && state & LISTED != 0;
                    if !listed {
                        break;
                    }
                    match span_desc.state.compare_exchange_weak(
                        state,
                        (state & !LISTED) | PINNED,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            lists.pinned.push((desc, generation_listed));
                            return Ok(SpanRef {
                                desc,
                                generation: generation_listed,
                            });
                        }
                        Err(now) => state = now,
                    }
                }
            }
        }
        // T1: the granules are in no list from the pool until the state
        // below publishes them as this span's free blocks.
        let (start, blocks, transit) = self.take_span_granules(shard, class, size, growth)?;
        let granules = granules_for(class, blocks);
        let mut lists = class_state.lists.lock();
        // A spare descriptor that no lookup pins (S6), else a new one.
        let mut pinned_spares = Vec::new();
        let mut made = None;
        while let Some(desc) = lists.spare.pop() {
            let span_desc = self.span_desc(class, desc);
            match span_desc.begin_remake() {
                Some(previous) => {
                    made = Some((desc, span_desc, previous));
                    break;
                }
                None => pinned_spares.push(desc),
            }
        }
        lists.spare.append(&mut pinned_spares);
        let (desc, span_desc, previous) = match made {
            Some(made) => made,
            None => {
                let desc = lists.made;
                let Some(span_desc) = class_state.descs.get_or_make(desc, SpanDesc::new) else {
                    drop(lists);
                    self.give_granules(start, granules);
                    return Err(LinearMemoryError::OutOfMemory);
                };
                lists.made += 1;
                // Release pairs with `reclaim_empty_spans`' Acquire.
                class_state.made.store(lists.made, Ordering::Release);
                // Never named in the directory, so no lookup pins it.
                let previous = span_desc.begin_remake();
                debug_assert!(previous.is_some(), "S6: a new descriptor is unpinned");
                (desc, span_desc, previous.unwrap_or(0))
            }
        };
        let generation = next_generation(previous);
        // Skipped until the state below publishes this generation.
        lists.pinned.push((desc, generation));
        let words = span_desc.fields.get_or_init(|| {
            let words = PACKINGS[class].words(span_blocks(class));
            (0..words).map(|_| AtomicU64::new(0)).collect()
        });
        drop(lists);
        // Nobody else reads or writes the descriptor now (S6): generation
        // 0 turns lookups and takers away, and no lookup pinned it.
        // Relaxed: published by the state's Release store below.
        span_desc.start.store(start * GRANULE, Ordering::Relaxed);
        span_desc.blocks.store(blocks, Ordering::Relaxed);
        Fields {
            words,
            packing: PACKINGS[class],
        }
        .reset(blocks);
        // L1: the directory names the span before its state is published.
        // Published first, the empty span could be retired by another
        // thread's `reclaim_empty_spans` and its granules handed to another
        // block before this assign, which would then point that block's
        // granules back at this descriptor (its lookups lost for good).
        span_desc.names.taken(granules);
        self.assign(
            start,
            granules,
            Owner::Span {
                class: class as u8,
                desc,
            },
        );
        // Release publishes the fields above to whoever acquires the
        // state: a reserver, a lookup's pin.
        span_desc.state.store(
            (u64::from(generation) << GENERATION_SHIFT) | PINNED | u64::from(blocks),
            Ordering::Release,
        );
        // S5: its blocks are free for any handle's allocation now; a look
        // that raced this span being made looks again (T2).
        drop(transit);
        Ok(SpanRef { desc, generation })
    }

    /// Granules for a new span of `class`, how many blocks it holds, and
    /// the transit of its room (T1), started on shard `shard` as the
    /// granules leave the pool: a span of the size its class has grown to
    /// (`classes::span_blocks_after`) if the pool has room for one (or,
    /// with `Growth::Yes`, if the memory can grow or take back empty spans
    /// for one), else, with `SpanSize::Halving`, the most blocks (halving)
    /// that fit, so a fragmented or small memory can still use its last
    /// bytes.
    pub(super) fn take_span_granules(
        &self,
        shard: usize,
        class: usize,
        size: SpanSize,
        growth: Growth,
    ) -> Result<(u32, u32, Transit<'_>), LinearMemoryError> {
        // Relaxed: a size hint; any value is a valid span size.
        let made = self.classes[class].made.load(Ordering::Relaxed);
        let mut blocks = span_blocks_after(class, made);
        loop {
            // The transit starts under the pool's lock, once the granules
            // are taken: a look that failed to take them starts none, so
            // it does not make another look come after it (T2).
            let taken = self.take_granules_then(granules_for(class, blocks), 1, growth, |_, _| {
                Ok(self.transit(shard))
            });
            match taken {
                Ok((start, transit)) => return Ok((start, blocks, transit)),
                Err(LinearMemoryError::OutOfMemory) if blocks > 1 && size == SpanSize::Halving => {
                    blocks /= 2;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Gives up the pin on `span`: it goes back to the pool if empty, on
    /// the partial list if it has free blocks.
    pub(super) fn unpin(&self, shard: usize, class: usize, span: SpanRef) {
        let desc = self.span_desc(class, span.desc);
        let mut state = desc.state.load(Ordering::Relaxed);
        // T1: from the compare-and-swap that retires the span to its
        // granules back in the pool.
        let mut transit = None;
        loop {
            if generation(state) != span.generation || state & RETIRED != 0 {
                return; // taken back by `reclaim_empty_spans`
            }
            let mut next = state & !(PINNED | KEPT);
            if desc.is_empty(state) {
                next |= RETIRED;
                transit.get_or_insert_with(|| self.transit(shard));
            } else {
                transit = None;
                if free_count(state) != 0 {
                    next |= LISTED;
                }
            }
            // Release: our allocations' effects before whoever takes it next.
            match desc
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    if state & KEPT != 0 {
                        self.unkeep();
                    }
                    if next & RETIRED != 0 {
                        self.retire(class, span.desc);
                    } else if next & LISTED != 0 {
                        self.classes[class]
                            .lists
                            .lock()
                            .partial
                            .push((span.desc, span.generation));
                    }
                    return;
                }
                Err(now) => state = now,
            }
        }
    }

    /// Pins span `desc` (`span`) of `class` for a lookup (L2); `None` if
    /// it has no published span (generation 0: never published, or being
    /// remade, S6).
    #[inline]
    pub(super) fn pin_span<'a>(
        &'a self,
        class: usize,
        desc: u32,
        span: &'a SpanDesc,
    ) -> Option<SpanPin<'a>> {
        // Acquire, here and when the compare-and-swap fails: a lookup
        // that sees generation 0 answers by the freed-start marks (L4),
        // and a descriptor being remade went spare after the marks of the
        // span it had (`begin_remake` publishes generation 0 with Release).
        let mut state = span.state.load(Ordering::Acquire);
        loop {
            if generation(state) == 0 {
                return None;
            }
            if state & LOOKUP_MASK == LOOKUP_MASK {
                // 65 535 lookups pin it at once: wait for one to end.
                crate::sync::spin_loop();
                state = span.state.load(Ordering::Acquire);
                continue;
            }
            // Acquire pairs with the Release of the store that published
            // the span: its geometry and fields are this span's.
            #[cfg(not(slotarena_mutation = "lookup_unpinned"))]
            let pinned = span.state.compare_exchange_weak(
                state,
                state + LOOKUP,
                Ordering::Acquire,
                Ordering::Acquire,
            );
            // Mutation: the lookup reads the span without pinning it, so
            // the span may be retired and remade under it.
            #[cfg(slotarena_mutation = "lookup_unpinned")]
            let pinned: Result<u64, u64> = Ok(span.state.load(Ordering::Acquire));
            match pinned {
                Ok(_) => {
                    return Some(SpanPin {
                        allocator: self,
                        span,
                        class,
                        desc,
                    });
                }
                Err(now) => state = now,
            }
        }
    }

    /// Ends a lookup's pin on span `desc` (`span`) of `class` and gives
    /// back the block it freed (its field already says freed, S1), keeping,
    /// retiring (S2, S4) or listing the span as needed.
    fn unpin_freed(&self, shard: usize, class: usize, desc: u32, span: &SpanDesc) {
        // Relaxed: the compare-and-swap below decides.
        let mut state = span.state.load(Ordering::Relaxed);
        // T1: from the compare-and-swap that retires the span to its
        // granules back in the pool.
        let mut transit = None;
        loop {
            #[cfg(not(slotarena_mutation = "lookup_unpinned"))]
            debug_assert!(lookups(state) > 0, "L2: the pin is counted");
            #[cfg(not(slotarena_mutation = "lookup_unpinned"))]
            let mut next = state - LOOKUP + 1;
            #[cfg(slotarena_mutation = "lookup_unpinned")]
            let mut next = state + 1;
            debug_assert!(state & KEPT == 0, "S4: a kept span is empty");
            let mut after = AfterUnpin::Nothing;
            let mut keeping = false;
            // The block freed under the pin kept the span from emptying,
            // so from retiring (S2).
            debug_assert!(state & RETIRED == 0, "S2: a retired span has no live block");
            if span.is_empty(next) {
                // Kept for its pinning handle, if few are (S4); else back
                // to the pool at once: a page whose blocks are all free
                // goes back to the OS even while an idle handle pins a
                // span on it. The pinning handle finds its span `Gone` at
                // its next allocation.
                if state & PINNED != 0 && self.try_keep() {
                    next |= KEPT;
                    keeping = true;
                } else {
                    next |= RETIRED;
                    after = AfterUnpin::Retire;
                    transit.get_or_insert_with(|| self.transit(shard));
                }
            } else if state & (PINNED | LISTED) == 0 {
                next |= LISTED;
                after = AfterUnpin::List(generation(state));
            }
            if !matches!(after, AfterUnpin::Retire) {
                transit = None;
            }
            // Release pairs with the Acquire of the next reservation (its
            // taker's accesses to the block after ours) and of the remake
            // (our reads of the fields before it resets them, S6).
            match span
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    match after {
                        AfterUnpin::Nothing => {}
                        AfterUnpin::List(generation) => self.classes[class]
                            .lists
                            .lock()
                            .partial
                            .push((desc, generation)),
                        AfterUnpin::Retire => self.retire(class, desc),
                    }
                    drop(transit);
                    return;
                }
                Err(now) => {
                    if keeping {
                        self.unkeep();
                    }
                    state = now;
                }
            }
        }
    }

    /// Returns a retired span's granules and descriptor (S2: the caller's
    /// compare-and-swap retired it).
    pub(super) fn retire(&self, class: usize, desc: u32) {
        let span_desc = self.span_desc(class, desc);
        let (start, blocks) = span_desc.geometry();
        // Every block is free (S2); their starts must outlive the span (L1).
        let fields = span_desc.fields(class);
        for index in 0..blocks {
            if fields.load(index) == Field::FREED {
                self.directory
                    .mark_freed_start(start + index * block_size(class));
            }
        }
        self.give_granules(start / GRANULE, granules_for(class, blocks));
        if span_desc.names.gone() {
            self.classes[class].lists.lock().make_spare(desc);
        }
    }

    /// Whether some span is kept for its handle (S4). Relaxed: a span kept
    /// after this look was a live block's during it.
    pub(super) fn has_kept_spans(&self) -> bool {
        self.kept_spans.load(Ordering::Relaxed) != 0
    }

    /// Retires every span kept for its handle (S4), for a request that
    /// would otherwise grow the memory; returns how many.
    #[cold]
    pub(super) fn reclaim_kept_spans(&self) -> usize {
        self.reclaim_spans(|state| state & KEPT != 0)
    }

    /// Retires every empty span, pinned or not, for a pool that ran dry;
    /// returns how many.
    #[cold]
    pub(super) fn reclaim_empty_spans(&self) -> usize {
        self.reclaim_spans(|_| true)
    }

    /// Retires every empty span whose state `wanted` accepts; returns how
    /// many. A controller whose pin is taken finds its span `Gone` at its
    /// next allocation.
    fn reclaim_spans(&self, wanted: impl Fn(u64) -> bool) -> usize {
        let mut reclaimed = 0;
        for (class, class_state) in self.classes.iter().enumerate() {
            // Acquire pairs with `acquire_span`'s Release.
            let made = class_state.made.load(Ordering::Acquire);
            for desc in 0..made {
                let Some(span_desc) = class_state.descs.get(desc) else {
                    continue;
                };
                // Acquire: `is_empty` reads the span's fields.
                let mut state = span_desc.state.load(Ordering::Acquire);
                // Mutation: a kept span's room stays hidden from whoever needs it.
                #[cfg(slotarena_mutation = "reclaim_skips_kept")]
                if state & KEPT != 0 {
                    continue;
                }
                while generation(state) != 0
                    && state & RETIRED == 0
                    && span_desc.is_empty(state)
                    && wanted(state)
                {
                    // T1: until `retire` has the granules back in the pool.
                    let transit = self.transit_here();
                    match span_desc.state.compare_exchange_weak(
                        state,
                        (state | RETIRED) & !KEPT,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            if state & KEPT != 0 {
                                self.unkeep();
                            }
                            self.retire(class, desc);
                            drop(transit);
                            reclaimed += 1;
                            break;
                        }
                        Err(now) => state = now,
                    }
                }
            }
        }
        reclaimed
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::linear::PAGE_SIZE;

    /// The class of the 8-byte blocks these tests allocate.
    const EIGHT: usize = 1;

    /// Issue 19, defect 3: after 2^24 - 1 spans on one descriptor, the
    /// next one's generation wrapped to 0, which reads as "never
    /// published": an idle handle's empty span on it was never reclaimed,
    /// and a request for the rest of the memory answered `OutOfMemory`
    /// with nothing allocated. Here the descriptor starts at the last
    /// generation instead of being remade 2^24 - 1 times.
    #[test]
    fn a_span_generation_never_wraps_to_never_published() {
        assert_eq!(next_generation(GENERATION_MAX - 1), GENERATION_MAX);
        assert_eq!(next_generation(GENERATION_MAX), 1);
        let allocator = Allocator::new(1, 1).unwrap();
        let desc = allocator.classes[EIGHT]
            .descs
            .get_or_make(0, SpanDesc::new)
            .unwrap();
        desc.state.store(
            (u64::from(GENERATION_MAX) << GENERATION_SHIFT) | RETIRED,
            Ordering::Relaxed,
        );
        let (mut a, mut b) = (SpanCache::new(&allocator), SpanCache::new(&allocator));
        // `a` pins an empty span made on that descriptor.
        let small = allocator.alloc(&mut a, 8, 8).unwrap();
        allocator.free(a.shard(), small, 8).unwrap();
        assert_ne!(generation(desc.state.load(Ordering::Relaxed)), 0);
        let rest = PAGE_SIZE - GRANULE;
        let large = allocator.alloc(&mut b, rest, 8);
        assert!(large.is_ok(), "{large:?} with nothing allocated");
        allocator.free(b.shard(), large.unwrap(), rest).unwrap();
        allocator.unpin_all(&mut a);
    }

    fn state_of_span(allocator: &Allocator, desc: u32) -> u64 {
        allocator
            .span_desc(EIGHT, desc)
            .state
            .load(Ordering::Relaxed)
    }

    /// A handle that allocated and freed one lone block, again and again,
    /// made and retired a span each round (S4 retired every emptied span
    /// at once): about 2 800 instructions per round instead of a few
    /// hundred, and T2 of bench_report at 8.8x dlmalloc.
    #[test]
    fn a_lone_block_allocated_and_freed_again_and_again_keeps_its_span() {
        let allocator = Allocator::new(1, 1).unwrap();
        let mut a = SpanCache::new(&allocator);
        let span = allocator.alloc(&mut a, 8, 8).unwrap();
        allocator.free(a.shard(), span, 8).unwrap();
        let kept = state_of_span(&allocator, 0);
        for round in 0..1000 {
            let again = allocator.alloc(&mut a, 8, 8).unwrap();
            assert_eq!(again, span, "round {round}");
            allocator.free(a.shard(), again, 8).unwrap();
            let state = state_of_span(&allocator, 0);
            assert_eq!(
                (generation(state), state & (RETIRED | KEPT)),
                (generation(kept), KEPT),
                "round {round}: the span was retired and remade"
            );
        }
        allocator.unpin_all(&mut a);
        assert_ne!(state_of_span(&allocator, 0) & RETIRED, 0);
        assert_eq!(allocator.kept_spans.load(Ordering::Relaxed), 0);
    }

    /// At most `KEPT_SPANS` empty spans stay (S4): the next one emptied
    /// goes back to the pool at once, and every kept one once its handle
    /// drops its pin.
    #[test]
    fn at_most_kept_spans_empty_spans_stay_committed() {
        // Room for a whole 4 KiB span per handle: none takes a block of
        // another's span.
        let allocator = Allocator::new(2, 2).unwrap();
        let handles = KEPT_SPANS as usize + 1;
        let mut caches: Vec<_> = (0..handles).map(|_| SpanCache::new(&allocator)).collect();
        let blocks: Vec<_> = caches
            .iter_mut()
            .map(|cache| allocator.alloc(cache, 8, 8).unwrap())
            .collect();
        for (cache, block) in caches.iter().zip(blocks) {
            allocator.free(cache.shard(), block, 8).unwrap();
        }
        let states: Vec<_> = (0..handles as u32)
            .map(|desc| state_of_span(&allocator, desc) & (RETIRED | KEPT))
            .collect();
        let mut expected = alloc::vec![KEPT; KEPT_SPANS as usize];
        expected.push(RETIRED);
        assert_eq!(states, expected);
        assert_eq!(allocator.kept_spans.load(Ordering::Relaxed), KEPT_SPANS);
        for cache in &mut caches {
            allocator.unpin_all(cache);
        }
        assert_eq!(allocator.kept_spans.load(Ordering::Relaxed), 0);
        for desc in 0..handles as u32 {
            assert_ne!(state_of_span(&allocator, desc) & RETIRED, 0);
        }
    }
}
