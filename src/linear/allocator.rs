//! The allocator of a linear memory, layered on [`SlotArena`].
//!
//! # Design
//!
//! - **Records.** Every live allocation is one [`Record`] (start, length,
//!   where its block lives, claim flag) in a `SlotArena<Record>`: inserting
//!   it is the allocation's commit point, removing it the free's.
//! - **Small blocks** (up to 1 KiB) come in 24 size classes, four per power
//!   of two (`classes.rs`). A class's blocks live in *spans*: runs of a few
//!   granules (about 1 KiB, at most 64 blocks) taken from the common pool.
//!   A span's free blocks are one bitmap word. Each controller *pins* one
//!   span per class and allocates from it alone, lock-free; any thread may
//!   free into any span. A span that empties goes back to the pool at once
//!   (unless a controller has it pinned; those go when unpinned, or when the
//!   pool runs dry). Spans with free blocks that nobody pins wait on their
//!   class's partial list.
//! - **Large blocks** (over 1 KiB, or aligned beyond 8 bytes) take whole
//!   granules from the pool directly: best fit with coalescing, behind a
//!   mutex (`pool.rs`).
//! - **Metadata is out of band**: records, the granule directory, the span
//!   and large-block descriptors live in the heap, grow with the memory's
//!   use, and nothing a guest writes into a block can reach them.
//! - **Offset 0 is never handed out**: granule 0 is never in the pool.
//!
//! # Span states
//!
//! A span descriptor's `state` word is `generation << 32 | flags | used`.
//! The generation changes each time the descriptor starts a new span, so a
//! controller's cached `(descriptor, generation)` can never reach the next
//! span that reuses the descriptor.
//!
//! - S1: only the controller that pinned a span (`PINNED`) clears bits of
//!   its bitmap, and it first raises `used` by a compare-and-swap on the
//!   current generation. A free sets its block's bit *before* lowering
//!   `used`, so a raise that succeeded always finds a set bit.
//! - S2: a span is retired (`RETIRED`, its granules back in the pool) only
//!   by the compare-and-swap that sees `used == 0`; nothing raises `used`
//!   on a retired span, so its granules hold no live block.
//!
//! # Claims (exclusive `mut_mem`)
//!
//! - C1: a claim sets its record's `claimed` flag with a compare-and-swap
//!   made under the record's read lock, only on a live record; one claim at
//!   a time per allocation.
//! - C2: `free` runs under the record's write lock and refuses (`Busy`)
//!   while `claimed` is set, so a claimed allocation is never freed and its
//!   bytes never go to another allocation.
//! - C3: live allocations never overlap (spans and large blocks are
//!   disjoint runs of granules, blocks within a span disjoint), so two
//!   claims never cover the same byte.
//!
//! Claims are a flag rather than a write guard held in the controller so
//! that a panic unwinding through a controller cannot poison the record
//! (the record is never written through a claim; poisoning would only make
//! the allocation unfreeable), and so that taking one touches no shared
//! reference count.
//!
//! # Lookups
//!
//! - L1: the directory maps each granule to the span or large block that
//!   last took it, and a descriptor maps a block to its record's token;
//!   tokens of freed blocks stay until their place is reused, so freeing
//!   one again answers `DoubleFree`, and a place never allocated has no
//!   token (`UnknownPointer`).
//! - L2: a lookup that raced a reuse reads a stale but well-formed token;
//!   every answer is decided by the record the token names (its start and
//!   length), read under its lock.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::classes::{
    CLASS_COUNT, GRANULE, SMALL_MAX, block_size, class_of, span_blocks, span_granules,
};
use super::directory::{Directory, Owner, Stable};
use super::pool::{PAGE_GRANULES, Pool};
use super::region::{Claim, Region};
use super::{LinearMemoryError, PAGE_SIZE};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, CachePadded, Mutex, Ordering, thread_hint};
use crate::wait_queue::{Look, Patience, WaitQueue};

/// `Err(())` for an answer worth waiting on (another handle's claim).
fn not_busy<R>(answer: Result<R, LinearMemoryError>) -> Result<Result<R, LinearMemoryError>, ()> {
    match answer {
        Err(LinearMemoryError::Busy) => Err(()),
        done => Ok(done),
    }
}
use crate::{MemoryError, MessageToken, SlotArena};

/// A token slot that names no record.
const NO_TOKEN: u64 = MessageToken::INVALID.to_bits();

/// Where a live allocation's block lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Block `index` of span descriptor `desc` of `class`.
    Span { class: u8, desc: u32, index: u8 },
    /// Large-block descriptor `desc`, `granules` granules long.
    Large { desc: u32, granules: u32 },
}

/// The record of one live allocation.
#[derive(Debug)]
pub(super) struct Record {
    start: u32,
    /// Requested length; `free` must name it exactly.
    len: u32,
    place: Place,
    /// Set while a controller hands out this allocation's bytes (C1, C2).
    claimed: AtomicBool,
}

impl Record {
    fn end(&self) -> u64 {
        u64::from(self.start) + u64::from(self.len)
    }
}

// === span descriptors ===

const USED_MASK: u64 = 0xffff;
/// On its class's partial list (has free blocks, nobody pins it).
const LISTED: u64 = 1 << 29;
/// A controller allocates from it (S1).
const PINNED: u64 = 1 << 30;
/// Its granules went back to the pool (S2).
const RETIRED: u64 = 1 << 31;

fn generation(state: u64) -> u32 {
    (state >> 32) as u32
}

fn used(state: u64) -> u32 {
    (state & USED_MASK) as u32
}

/// One span of a size class (or a retired one, waiting for reuse).
struct SpanDesc {
    state: AtomicU64,
    /// Byte offset of the span's first block.
    start: AtomicU32,
    /// Bit `i` set: block `i` is free.
    free: AtomicU64,
    /// Token of the record of each block's latest allocation (L1).
    tokens: Box<[AtomicU64]>,
}

impl SpanDesc {
    fn new(blocks: u32) -> SpanDesc {
        SpanDesc {
            state: AtomicU64::new(0),
            start: AtomicU32::new(0),
            free: AtomicU64::new(0),
            tokens: (0..blocks).map(|_| AtomicU64::new(NO_TOKEN)).collect(),
        }
    }
}

/// A controller's pin on a span: which descriptor, in which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SpanRef {
    desc: u32,
    generation: u32,
}

/// The spans one controller pins, one per class at most, and its latest
/// allocation.
#[derive(Debug)]
pub(super) struct SpanCache {
    pinned: [Option<SpanRef>; CLASS_COUNT],
    /// Start and record of the latest allocation made through this cache:
    /// a hint that lets the usual `mut_mem` right after `alloc` skip the
    /// directory. Only a hint: the record decides (L2).
    last: Option<(u32, MessageToken)>,
}

impl Default for SpanCache {
    fn default() -> Self {
        SpanCache {
            pinned: [None; CLASS_COUNT],
            last: None,
        }
    }
}

impl SpanCache {
    /// The record of the latest allocation, if it started at `ptr`.
    #[inline]
    pub(super) fn hint(&self, ptr: u32) -> Option<MessageToken> {
        self.last
            .filter(|&(start, _)| start == ptr)
            .map(|(_, token)| token)
    }
}

/// What is under a class's lock.
struct ClassLists {
    /// Spans with free blocks that nobody pins, by `(desc, generation)`;
    /// entries whose span changed since are skipped.
    partial: Vec<(u32, u32)>,
    /// Retired descriptors, for reuse.
    spare: Vec<u32>,
    /// Descriptors made so far.
    made: u32,
}

struct Class {
    descs: Stable<SpanDesc>,
    lists: Mutex<ClassLists>,
    /// Mirror of `lists.made` for lock-free scans.
    made: AtomicU32,
}

/// Outcome of taking a block from a pinned span.
enum Take {
    Block(u32),
    Full,
    /// Retired or reused since it was pinned.
    Gone,
}

/// What a free must do after lowering a span's count.
enum AfterFree {
    Nothing,
    List(u32),
    Retire,
}

// === large blocks and the pool ===

/// One large block (or a freed one, waiting for reuse).
#[derive(Default)]
struct LargeDesc {
    start: AtomicU32,
    token: AtomicU64,
}

/// What is under the pool's lock.
struct PoolState {
    pool: Pool,
    large_spare: Vec<u32>,
    large_made: u32,
}

/// The whole allocator state of one memory.
pub(super) struct Allocator {
    region: Region,
    max_pages: u32,
    /// Mirror of the pool's size for lock-free reads.
    size_pages: AtomicU32,
    /// Mirror of the pool's high-water mark, in granules.
    high_water: AtomicU32,
    pool: Mutex<PoolState>,
    directory: Directory,
    classes: Box<[Class]>,
    large: Stable<LargeDesc>,
    records: SlotArena<Record>,
    /// Bytes of live allocations, per thread shard: a shared counter would
    /// be one more contended cache line on every alloc and free.
    allocated: Box<[CachePadded<AtomicU64>]>,
    /// Allocations waiting for free bytes at the maximum size (Q1: every
    /// free ends with an AcqRel update of an `allocated` shard).
    bytes_room: WaitQueue,
    /// Claims (and frees) waiting for another handle's claim to end (Q1:
    /// every claim attempt and every release is a read-modify-write of the
    /// record's `claimed` flag).
    claims_room: WaitQueue,
}

impl Allocator {
    pub(super) fn new(initial_pages: u32, max_pages: u32) -> Result<Allocator, LinearMemoryError> {
        let bytes = u64::from(max_pages) * u64::from(PAGE_SIZE);
        let region = Region::reserve(bytes)?;
        let allocator = Allocator {
            region,
            max_pages,
            size_pages: AtomicU32::new(0),
            high_water: AtomicU32::new(0),
            pool: Mutex::new(PoolState {
                pool: Pool::new(max_pages),
                large_spare: Vec::new(),
                large_made: 0,
            }),
            directory: Directory::new(u64::from(max_pages) * u64::from(PAGE_GRANULES)),
            classes: (0..CLASS_COUNT)
                .map(|_| Class {
                    descs: Stable::new(),
                    lists: Mutex::new(ClassLists {
                        partial: Vec::new(),
                        spare: Vec::new(),
                        made: 0,
                    }),
                    made: AtomicU32::new(0),
                })
                .collect(),
            large: Stable::new(),
            records: SlotArena::growable(0, SlotArena::<Record>::MAX_CAPACITY),
            allocated: (0..crate::sync::shard_count())
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
            bytes_room: WaitQueue::default(),
            claims_room: WaitQueue::default(),
        };
        allocator.grow(initial_pages)?;
        Ok(allocator)
    }

    pub(super) fn size_pages(&self) -> u32 {
        // Acquire pairs with the Release in `grow_locked`.
        self.size_pages.load(Ordering::Acquire)
    }

    pub(super) fn max_pages(&self) -> u32 {
        self.max_pages
    }

    pub(super) fn high_water_bytes(&self) -> u64 {
        // Relaxed: a statistic.
        u64::from(self.high_water.load(Ordering::Relaxed)) * u64::from(GRANULE)
    }

    pub(super) fn allocated_bytes(&self) -> u64 {
        // Relaxed: a statistic. Shards may each have wrapped (a block freed
        // on another thread's shard than it was allocated on); the wrapping
        // sum is exact.
        self.allocated.iter().fold(0u64, |sum, shard| {
            sum.wrapping_add(shard.load(Ordering::Relaxed))
        })
    }

    fn count_allocated(&self, delta: u64, add: bool) {
        let shard = &self.allocated[thread_hint() % self.allocated.len()];
        if add {
            // Relaxed: a statistic.
            shard.fetch_add(delta, Ordering::Relaxed);
        } else {
            // AcqRel: the last read-modify-write of every free, so a waiter
            // for bytes never misses it (Q1, see `wait_queue`).
            shard.fetch_sub(delta, Ordering::AcqRel);
        }
    }

    /// Room may have appeared without a free (a growth, a handle's spans
    /// given back): the same read-modify-write a free ends with, then the
    /// wake-up.
    fn made_room(&self) {
        let shard = &self.allocated[thread_hint() % self.allocated.len()];
        shard.fetch_add(0, Ordering::AcqRel);
        self.bytes_room.notify_all();
    }

    /// A registered waiter's read-modify-write of every `allocated` shard
    /// before its last look for bytes (Q1).
    fn touch_counters(&self) {
        for shard in self.allocated.iter() {
            shard.fetch_add(0, Ordering::AcqRel);
        }
    }

    /// [`alloc`](Self::alloc), waiting for free bytes as long as
    /// `patience` allows when the memory is out of them at its maximum.
    pub(super) fn alloc_wait(
        &self,
        cache: &mut SpanCache,
        len: u32,
        align: u32,
        patience: Patience,
    ) -> Result<u32, LinearMemoryError> {
        self.bytes_room
            .wait(patience, false, cache, |cache, look| {
                self.alloc_look(cache, len, align, look)
            })
            .unwrap_or(Err(LinearMemoryError::OutOfMemory))
    }

    /// [`alloc_wait`](Self::alloc_wait) as a future; cancel-safe (nothing
    /// is allocated until it completes).
    pub(super) async fn alloc_async(
        &self,
        cache: &mut SpanCache,
        len: u32,
        align: u32,
    ) -> Result<u32, LinearMemoryError> {
        self.bytes_room
            .wait_async(false, cache, |cache, look| {
                self.alloc_look(cache, len, align, look)
            })
            .await
            .unwrap_or(Err(LinearMemoryError::OutOfMemory))
    }

    /// One look for free bytes: `Err` hands the span cache back when the
    /// memory is out of them (the only answer worth waiting on). A
    /// registered waiter first touches every byte counter (Q1).
    fn alloc_look<'c>(
        &self,
        cache: &'c mut SpanCache,
        len: u32,
        align: u32,
        look: Look,
    ) -> Result<Result<u32, LinearMemoryError>, &'c mut SpanCache> {
        if look == Look::Registered {
            self.touch_counters();
        }
        match self.alloc(cache, len, align) {
            Err(LinearMemoryError::OutOfMemory) => Err(cache),
            done => Ok(done),
        }
    }

    /// Retries `attempt` while it answers `Busy` (another handle's claim),
    /// waiting as long as `patience` allows for a claim to end. `attempt`
    /// must end in a read-modify-write of the record's claim flag when the
    /// look is `Registered` (Q1).
    pub(super) fn wait_for_claims<R>(
        &self,
        patience: Patience,
        mut attempt: impl FnMut(Look) -> Result<R, LinearMemoryError>,
    ) -> Result<R, LinearMemoryError> {
        self.claims_room
            .wait(patience, false, (), |(), look| not_busy(attempt(look)))
            .unwrap_or(Err(LinearMemoryError::Busy))
    }

    /// [`wait_for_claims`](Self::wait_for_claims) as a future; cancel-safe
    /// when `attempt` changes nothing unless it succeeds.
    pub(super) async fn wait_for_claims_async<R>(
        &self,
        mut attempt: impl FnMut(Look) -> Result<R, LinearMemoryError>,
    ) -> Result<R, LinearMemoryError> {
        self.claims_room
            .wait_async(false, (), |(), look| not_busy(attempt(look)))
            .await
            .unwrap_or(Err(LinearMemoryError::Busy))
    }

    // === growth and the pool ===

    /// WASM `memory.grow`: returns the old size in pages.
    pub(super) fn grow(&self, delta: u32) -> Result<u32, LinearMemoryError> {
        let mut state = self.pool.lock();
        let old = state.pool.size();
        let target = old
            .checked_add(delta)
            .filter(|&target| target <= self.max_pages)
            .ok_or(LinearMemoryError::GrowBeyondMaximum)?;
        self.grow_locked(&mut state, target)?;
        drop(state);
        self.made_room();
        Ok(old)
    }

    /// Grows to `target` pages: makes them accessible and their directory
    /// leaves, then publishes the size.
    fn grow_locked(&self, state: &mut PoolState, target: u32) -> Result<(), LinearMemoryError> {
        let old = state.pool.size();
        if target <= old {
            return Ok(());
        }
        let page = PAGE_SIZE as usize;
        self.region
            .commit(old as usize * page, (target - old) as usize * page)?;
        self.directory
            .cover(u64::from(target) * u64::from(PAGE_GRANULES));
        let grown = state.pool.grow(target - old);
        debug_assert_eq!(grown, Some(old));
        // Release pairs with `size_pages`'s Acquire.
        self.size_pages.store(target, Ordering::Release);
        Ok(())
    }

    /// Takes `granules` granules aligned to `align` granules from the pool,
    /// growing the memory, then taking back empty pinned spans, if needed.
    fn take_granules(&self, granules: u32, align: u32) -> Result<u32, LinearMemoryError> {
        loop {
            {
                let mut state = self.pool.lock();
                if let Some(start) = state.pool.take(granules, align) {
                    self.note_high_water(&state);
                    return Ok(start);
                }
                if let Some(target) = state.pool.growth_for(granules, align) {
                    self.grow_locked(&mut state, target)?;
                    let start = state.pool.take(granules, align);
                    debug_assert!(start.is_some(), "grew for {granules} granules");
                    if let Some(start) = start {
                        self.note_high_water(&state);
                        return Ok(start);
                    }
                }
            }
            if self.reclaim_empty_spans() == 0 {
                return Err(LinearMemoryError::OutOfMemory);
            }
        }
    }

    fn note_high_water(&self, state: &PoolState) {
        // Relaxed: a statistic, written under the pool lock.
        self.high_water
            .store(state.pool.high_water(), Ordering::Relaxed);
    }

    /// Returns granules to the pool, handing wholly free pages back to the OS.
    fn give_granules(&self, start: u32, granules: u32) {
        let mut state = self.pool.lock();
        self.region
            .decommit_clean(state.pool.give_back(start, granules));
    }

    // === alloc ===

    /// Allocates `len` bytes aligned to `align` (a power of two up to a
    /// page), pinning spans in `cache`.
    pub(super) fn alloc(
        &self,
        cache: &mut SpanCache,
        len: u32,
        align: u32,
    ) -> Result<u32, LinearMemoryError> {
        if len == 0 {
            return Err(LinearMemoryError::ZeroLength);
        }
        if !align.is_power_of_two() || align > PAGE_SIZE {
            return Err(LinearMemoryError::BadAlignment);
        }
        if u64::from(len) > u64::from(self.max_pages) * u64::from(PAGE_SIZE) {
            return Err(LinearMemoryError::LengthTooLarge);
        }
        let (start, token) = if len <= SMALL_MAX && align <= 8 {
            self.alloc_small(cache, class_of(len), len)?
        } else {
            self.alloc_large(len, align)?
        };
        cache.last = Some((start, token));
        self.count_allocated(u64::from(len), true);
        Ok(start)
    }

    #[inline]
    fn alloc_small(
        &self,
        cache: &mut SpanCache,
        class: usize,
        len: u32,
    ) -> Result<(u32, MessageToken), LinearMemoryError> {
        let (span, index) = loop {
            if let Some(span) = cache.pinned[class] {
                match self.take_block(class, span) {
                    Take::Block(index) => break (span, index),
                    Take::Full => self.unpin(class, span),
                    Take::Gone => {}
                }
                cache.pinned[class] = None;
            }
            cache.pinned[class] = Some(self.acquire_span(class)?);
        };
        let desc = self.span_desc(class, span.desc);
        // Relaxed: set before the span was published to us (its pin).
        let start = desc.start.load(Ordering::Relaxed) + index * block_size(class);
        let record = Record {
            start,
            len,
            place: Place::Span {
                class: class as u8,
                desc: span.desc,
                index: index as u8,
            },
            claimed: AtomicBool::new(false),
        };
        match self.records.insert(record) {
            Ok(token) => {
                // Release pairs with `lookup`'s Acquire (L1).
                desc.tokens[index as usize].store(token.to_bits(), Ordering::Release);
                Ok((start, token))
            }
            Err(_) => {
                self.put_block(class, span.desc, index);
                Err(LinearMemoryError::OutOfMemory)
            }
        }
    }

    fn span_desc(&self, class: usize, desc: u32) -> &SpanDesc {
        self.classes[class]
            .descs
            .get(desc)
            .expect("a pinned or recorded span's descriptor exists")
    }

    /// Takes a free block of the pinned `span` (S1).
    #[inline]
    fn take_block(&self, class: usize, span: SpanRef) -> Take {
        let desc = self.span_desc(class, span.desc);
        let capacity = span_blocks(class);
        // Acquire pairs with the Release of frees that lowered the count, so
        // the bits they set are visible below.
        let mut state = desc.state.load(Ordering::Acquire);
        loop {
            if generation(state) != span.generation || state & RETIRED != 0 {
                return Take::Gone;
            }
            if used(state) >= capacity {
                return Take::Full;
            }
            match desc.state.compare_exchange_weak(
                state,
                state + 1,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        // Acquire pairs with the freeing thread's Release `fetch_or`: its
        // accesses to the block happen before ours.
        let free = desc.free.load(Ordering::Acquire);
        debug_assert!(free != 0, "S1: a raised count finds a free block");
        let index = free.trailing_zeros();
        // Only we clear bits of this span (S1), so the bit is still set.
        desc.free.fetch_and(!(1u64 << index), Ordering::Relaxed);
        Take::Block(index)
    }

    /// Pins a span of `class` for the caller: one from the partial list, or
    /// a new one from the pool.
    #[cold]
    fn acquire_span(&self, class: usize) -> Result<SpanRef, LinearMemoryError> {
        let class_state = &self.classes[class];
        {
            let mut lists = class_state.lists.lock();
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
        let granules = span_granules(class);
        let start = self.take_granules(granules, 1)?;
        let mut lists = class_state.lists.lock();
        let desc = match lists.spare.pop() {
            Some(desc) => desc,
            None => {
                let desc = lists.made;
                lists.made += 1;
                // Release pairs with `reclaim_empty_spans`' Acquire.
                class_state.made.store(lists.made, Ordering::Release);
                desc
            }
        };
        let blocks = span_blocks(class);
        let Some(span_desc) = class_state
            .descs
            .get_or_make(desc, || SpanDesc::new(blocks))
        else {
            drop(lists);
            self.give_granules(start, granules);
            return Err(LinearMemoryError::OutOfMemory);
        };
        // Nobody else writes a retired or fresh descriptor (S2); stale
        // readers only read (L2).
        let generation = generation(span_desc.state.load(Ordering::Relaxed)).wrapping_add(1);
        span_desc.start.store(start * GRANULE, Ordering::Relaxed);
        for token in &span_desc.tokens {
            token.store(NO_TOKEN, Ordering::Relaxed);
        }
        span_desc
            .free
            .store(u64::MAX >> (u64::BITS - blocks), Ordering::Relaxed);
        // Release publishes the fields above to whoever acquires the state.
        span_desc
            .state
            .store((u64::from(generation) << 32) | PINNED, Ordering::Release);
        drop(lists);
        self.directory.assign(
            start,
            granules,
            Owner::Span {
                class: class as u8,
                desc,
            },
        );
        Ok(SpanRef { desc, generation })
    }

    /// Gives up the pin on `span`: it goes back to the pool if empty, on
    /// the partial list if it has free blocks.
    fn unpin(&self, class: usize, span: SpanRef) {
        let desc = self.span_desc(class, span.desc);
        let capacity = span_blocks(class);
        let mut state = desc.state.load(Ordering::Relaxed);
        loop {
            if generation(state) != span.generation || state & RETIRED != 0 {
                return; // taken back by `reclaim_empty_spans`
            }
            let mut next = state & !PINNED;
            if used(state) == 0 {
                next |= RETIRED;
            } else if used(state) < capacity {
                next |= LISTED;
            }
            // Release: our allocations' effects before whoever takes it next.
            match desc
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
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

    /// Unpins every span in `cache`.
    pub(super) fn unpin_all(&self, cache: &mut SpanCache) {
        for (class, pinned) in cache.pinned.iter_mut().enumerate() {
            if let Some(span) = pinned.take() {
                self.unpin(class, span);
            }
        }
        // The spans' free blocks are now everyone's.
        self.made_room();
    }

    /// Returns a retired span's granules and descriptor (S2: the caller's
    /// compare-and-swap retired it).
    fn retire(&self, class: usize, desc: u32) {
        let span_desc = self.span_desc(class, desc);
        // Relaxed: written before the span was published; we retired it.
        let start = span_desc.start.load(Ordering::Relaxed) / GRANULE;
        self.give_granules(start, span_granules(class));
        self.classes[class].lists.lock().spare.push(desc);
    }

    /// Retires every empty span, pinned or not, for a pool that ran dry;
    /// returns how many. A controller whose pin is taken finds its span
    /// `Gone` at its next allocation.
    #[cold]
    fn reclaim_empty_spans(&self) -> usize {
        let mut reclaimed = 0;
        for (class, class_state) in self.classes.iter().enumerate() {
            // Acquire pairs with `acquire_span`'s Release.
            let made = class_state.made.load(Ordering::Acquire);
            for desc in 0..made {
                let Some(span_desc) = class_state.descs.get(desc) else {
                    continue;
                };
                let mut state = span_desc.state.load(Ordering::Relaxed);
                while used(state) == 0 && state & RETIRED == 0 && generation(state) != 0 {
                    match span_desc.state.compare_exchange_weak(
                        state,
                        state | RETIRED,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => {
                            self.retire(class, desc);
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

    /// Puts block `index` of span `desc` back and lowers its count, listing
    /// or retiring the span as needed (S1, S2).
    fn put_block(&self, class: usize, desc: u32, index: u32) {
        let span_desc = self.span_desc(class, desc);
        // Release pairs with `take_block`'s Acquire load of the bitmap.
        span_desc.free.fetch_or(1u64 << index, Ordering::Release);
        let mut state = span_desc.state.load(Ordering::Relaxed);
        loop {
            debug_assert!(used(state) > 0, "S1: a live block is counted");
            let mut next = state - 1;
            let mut after = AfterFree::Nothing;
            if state & (PINNED | RETIRED) == 0 {
                if used(next) == 0 {
                    next |= RETIRED;
                    after = AfterFree::Retire;
                } else if state & LISTED == 0 {
                    next |= LISTED;
                    after = AfterFree::List(generation(state));
                }
            }
            // Release pairs with `take_block`'s Acquire on the state.
            match span_desc.state.compare_exchange_weak(
                state,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    match after {
                        AfterFree::Nothing => {}
                        AfterFree::List(generation) => self.classes[class]
                            .lists
                            .lock()
                            .partial
                            .push((desc, generation)),
                        AfterFree::Retire => self.retire(class, desc),
                    }
                    return;
                }
                Err(now) => state = now,
            }
        }
    }

    #[cold]
    fn alloc_large(&self, len: u32, align: u32) -> Result<(u32, MessageToken), LinearMemoryError> {
        let granules = len.div_ceil(GRANULE);
        let start = self.take_granules(granules, (align / GRANULE).max(1))?;
        let offset = start * GRANULE;
        let desc = {
            let mut state = self.pool.lock();
            let desc = state.large_spare.pop().unwrap_or_else(|| {
                state.large_made += 1;
                state.large_made - 1
            });
            if self.large.get_or_make(desc, LargeDesc::default).is_none() {
                state.large_spare.push(desc);
                self.region
                    .decommit_clean(state.pool.give_back(start, granules));
                return Err(LinearMemoryError::OutOfMemory);
            }
            desc
        };
        let record = Record {
            start: offset,
            len,
            place: Place::Large { desc, granules },
            claimed: AtomicBool::new(false),
        };
        let Ok(token) = self.records.insert(record) else {
            self.free_large_place(start, granules, desc);
            return Err(LinearMemoryError::OutOfMemory);
        };
        let large = self.large.get(desc).expect("made above");
        // Relaxed: published by the directory's Release store below.
        large.start.store(offset, Ordering::Relaxed);
        large.token.store(token.to_bits(), Ordering::Relaxed);
        self.directory
            .assign(start, granules, Owner::Large { desc });
        Ok((offset, token))
    }

    fn free_large_place(&self, start: u32, granules: u32, desc: u32) {
        let mut state = self.pool.lock();
        state.large_spare.push(desc);
        self.region
            .decommit_clean(state.pool.give_back(start, granules));
    }

    // === lookups, free, claims ===

    /// The token of the latest allocation of the block that holds byte
    /// `ptr`, and that block's start (L1); to be checked against the record.
    #[inline]
    fn lookup(&self, ptr: u32) -> Option<(MessageToken, u32)> {
        let (token, start) = match self.directory.owner_of(ptr) {
            Owner::Nobody => return None,
            Owner::Span { class, desc } => {
                let class = class as usize;
                let span_desc = self.classes.get(class)?.descs.get(desc)?;
                // Relaxed: the directory's Acquire ordered it (L2 covers
                // a racing reuse).
                let span_start = span_desc.start.load(Ordering::Relaxed);
                let index = ptr.checked_sub(span_start)? / block_size(class);
                // Acquire pairs with `alloc_small`'s Release.
                let token = span_desc
                    .tokens
                    .get(index as usize)?
                    .load(Ordering::Acquire);
                (token, span_start + index * block_size(class))
            }
            Owner::Large { desc } => {
                let large = self.large.get(desc)?;
                // Relaxed: ordered by the directory's Acquire.
                (
                    large.token.load(Ordering::Relaxed),
                    large.start.load(Ordering::Relaxed),
                )
            }
        };
        (token != NO_TOKEN).then_some((MessageToken::from_bits(token), start))
    }

    /// Frees the allocation that starts at `ptr` and is `len` bytes long.
    pub(super) fn free(&self, ptr: u32, len: u32) -> Result<(), LinearMemoryError> {
        self.free_checked(ptr, len, false)
    }

    /// [`free`](Self::free) for a registered claim waiter: reads the claim
    /// flag with a read-modify-write (Q1) instead of a load.
    pub(super) fn free_touching(&self, ptr: u32, len: u32) -> Result<(), LinearMemoryError> {
        self.free_checked(ptr, len, true)
    }

    fn free_checked(&self, ptr: u32, len: u32, touch: bool) -> Result<(), LinearMemoryError> {
        let (token, start) = self.lookup(ptr).ok_or(LinearMemoryError::UnknownPointer)?;
        if start != ptr {
            return Err(LinearMemoryError::UnknownPointer); // inside a block, not its start
        }
        // Waits only for another thread's momentary read lock (a claim being
        // taken or given up): no lock on a record is held across user code.
        let record = self.records.get_mut(token).map_err(|error| match error {
            MemoryError::NotAllocated | MemoryError::StaleToken => LinearMemoryError::DoubleFree,
            _ => LinearMemoryError::UnknownPointer,
        })?;
        if record.start != ptr {
            // The place was reused by a block that starts elsewhere (L2).
            return Err(LinearMemoryError::UnknownPointer);
        }
        if record.len != len {
            return Err(LinearMemoryError::LengthMismatch);
        }
        // Acquire pairs with `release`'s Release: the last holder's writes
        // happen before the block's next owner gets it (C2).
        let claimed = if touch {
            record.claimed.fetch_or(false, Ordering::AcqRel)
        } else {
            record.claimed.load(Ordering::Acquire)
        };
        if claimed {
            return Err(LinearMemoryError::Busy);
        }
        let place = record.place;
        // We hold the write lock, so the record is ours to remove; it is
        // dropped with our guard.
        let removed = self.records.remove(token);
        debug_assert_eq!(removed, Ok(()));
        drop(record);
        match place {
            Place::Span { class, desc, index } => {
                self.put_block(class as usize, desc, u32::from(index));
            }
            Place::Large { desc, granules } => {
                self.free_large_place(ptr / GRANULE, granules, desc);
            }
        }
        self.count_allocated(u64::from(len), false);
        self.bytes_room.notify_all();
        Ok(())
    }

    /// Claims `ptr..ptr + len` inside one live allocation (C1); `len == 0`
    /// also accepts the empty range at an allocation's end.
    pub(super) fn claim(&self, ptr: u32, len: u32) -> Result<Claim, LinearMemoryError> {
        let end = u64::from(ptr) + u64::from(len);
        match self.claim_in(ptr, ptr, end)? {
            Some(claim) => Ok(claim),
            // The empty range at the end of the allocation before `ptr`.
            None if len == 0 && ptr > 0 => self
                .claim_in(ptr - 1, ptr, end)?
                .ok_or(LinearMemoryError::UnknownPointer),
            None => Err(LinearMemoryError::UnknownPointer),
        }
    }

    /// [`claim`](Self::claim), trying first the record `hint` names (the
    /// caller's latest allocation); the answer is the same, since a live
    /// record that holds `ptr` is the one the directory would name (C3).
    #[inline]
    pub(super) fn claim_hinted(
        &self,
        ptr: u32,
        len: u32,
        hint: Option<MessageToken>,
    ) -> Result<Claim, LinearMemoryError> {
        if let Some(token) = hint {
            let end = u64::from(ptr) + u64::from(len);
            if let Some(claim) = self.claim_record(token, ptr, end)? {
                return Ok(claim);
            }
        }
        self.claim(ptr, len)
    }

    /// Claims `ptr..end` in the allocation whose block holds byte `probe`;
    /// `None` if no live allocation there holds `ptr`.
    fn claim_in(&self, probe: u32, ptr: u32, end: u64) -> Result<Option<Claim>, LinearMemoryError> {
        let Some((token, _)) = self.lookup(probe) else {
            return Ok(None);
        };
        self.claim_record(token, ptr, end)
    }

    /// Claims `ptr..end` in the allocation of record `token`; `None` if
    /// that record is gone or does not hold `ptr`.
    #[inline]
    fn claim_record(
        &self,
        token: MessageToken,
        ptr: u32,
        end: u64,
    ) -> Result<Option<Claim>, LinearMemoryError> {
        // Waits only for a momentary write lock (a free deciding).
        let Ok(record) = self.records.get(token) else {
            return Ok(None);
        };
        let inside = record.start <= ptr
            && (u64::from(ptr) < record.end() || (end == u64::from(ptr) && end == record.end()));
        if !inside {
            return Ok(None);
        }
        if end > record.end() {
            return Err(LinearMemoryError::OutOfBounds);
        }
        // Acquire pairs with `release`'s Release (the previous holder's
        // writes are visible to us). A read-modify-write even when it finds
        // the flag set (then it changes nothing), so a claim waiter's last
        // look never misses a release (Q1).
        if record.claimed.fetch_or(true, Ordering::AcqRel) {
            return Err(LinearMemoryError::Busy);
        }
        // C1 holds: we just set the flag on a live record that holds the range.
        Ok(Some(Claim::new(token, ptr, (end - u64::from(ptr)) as u32)))
    }

    /// Gives a claim up; its bytes must no longer be referenced.
    pub(super) fn release(&self, claim: Claim) {
        // A claimed record cannot be freed (C2); this waits only for a free
        // that is deciding to refuse.
        if let Ok(record) = self.records.get(claim.token()) {
            // Release pairs with the Acquire of the next claim or free; a
            // read-modify-write so that claim waiters see it (Q1).
            record.claimed.swap(false, Ordering::AcqRel);
        } else {
            debug_assert!(false, "claimed record {:?} vanished", claim.token());
        }
        self.claims_room.notify_all();
    }

    /// The claimed bytes, exclusive while `claim` is borrowed mutably.
    pub(super) fn bytes_mut<'a>(&'a self, claim: &'a mut Claim) -> &'a mut [u8] {
        self.region.bytes_mut(claim)
    }

    /// The claimed bytes, read-only.
    pub(super) fn bytes<'a>(&'a self, claim: &'a Claim) -> &'a [u8] {
        self.region.bytes(claim)
    }
}
