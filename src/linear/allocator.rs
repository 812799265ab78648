//! The allocator of a linear memory.
//!
//! # Design
//!
//! - **Block words and fields.** A large block has one lifecycle word
//!   (`block.rs`): its allocation's start, length, and live and claimed
//!   flags. A small block has a packed field of a few bits (`fields.rs`):
//!   never/freed/live/claimed and its length within its class; its start
//!   follows from its span and index. Making the word or field live is an
//!   allocation's commit point, the compare-and-swap that marks it freed
//!   the free's, and a claim is one more compare-and-swap on it, so alloc,
//!   free, claim and release each touch one word of the block, like a
//!   slot of the crate's arenas. A lookup acts on a small block's field
//!   only while it pins the block's span (L2).
//! - **Small blocks** (`spans.rs`, up to 512 bytes) come in 21 size
//!   classes, four per power of two, and two for 8-byte blocks (lengths
//!   1–7 and exactly 8) (`classes.rs`). A class's blocks live in *spans*:
//!   runs of granules taken from the common pool, 1 KiB for a class's
//!   first span, 2 KiB for its second, then 4 KiB (blocks up to 32 bytes)
//!   or 2 KiB, at most 512 blocks. A span's state word counts its free
//!   blocks, so reserving a block is one compare-and-swap on it, and
//!   taking a free field one more. Each controller
//!   *pins* one span per class and allocates from it; any thread may free
//!   into any span, and a handle that needs a new span takes a free block
//!   of a span another handle pins before the memory grows. A span that
//!   empties goes back to the pool at once, but for at most 16 that their
//!   handles pin (kept for them, so a lone block's alloc and free do not
//!   make and retire a span each time; taken back before the memory
//!   grows). Spans with free blocks that nobody pins wait on their class's
//!   partial list.
//! - **Large blocks** (over 512 bytes, or aligned beyond 8 bytes) take whole
//!   granules from the pool directly (`large.rs`): best fit with
//!   coalescing, behind a mutex (`pool.rs`).
//! - **Per-handle caches** (`cache.rs`): the spans a controller pins and
//!   its latest allocation.
//! - **Lookups** (`lookup.rs`): pointer → block word, and the exact
//!   `UnknownPointer`/`DoubleFree` answers (L1–L4).
//! - **Frees** (`free.rs`): one directory read, then the block's field
//!   under its span's pin (a small block) or its word (a large one).
//! - **Claims** (`claims.rs`): exclusive `mut_mem` (C1–C3).
//! - **Room in transit** (`transit.rs`): a span being made or retiring is
//!   in no list for a moment; an allocation that found no room looks again
//!   until no such move overlapped its look (T1–T2).
//! - **Metadata is out of band**: the block words, the granule directory,
//!   the span and large-block descriptors live in the heap, grow with the
//!   memory's use (descriptors with the most spans of each class, and
//!   large blocks, it ever held at once: they are kept for reuse), and
//!   nothing a guest writes into a block can reach them.
//! - **Offset 0 is never handed out**: granule 0 is never in the pool.
//!
//! The invariants are numbered in the files that keep them: S1–S6 in
//! `spans.rs`, C1–C3 in `claims.rs`, L1–L4 in `lookup.rs`, T1–T2 in
//! `transit.rs`.

mod cache;
mod claims;
mod free;
mod large;
mod lookup;
mod spans;
mod transit;

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::block::BlockId;
use super::classes::{CLASS_COUNT, GRANULE, SMALL_MAX, class_of};
use super::directory::{Directory, Stable};
use super::pool::{PAGE_GRANULES, Pool};
use super::region::{Claim, Region};
use super::{LinearMemoryError, PAGE_SIZE};
use crate::sync::{AtomicU32, AtomicU64, Backoff, CachePadded, Mutex, Ordering, thread_hint};
use crate::wait_queue::{Look, Patience, WaitQueue};
pub(super) use cache::SpanCache;
use large::{LargeDesc, PoolState};
use spans::{Class, ClassLists};

/// Whether taking granules may grow the memory (and take back empty
/// spans) when the pool has no room as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Growth {
    No,
    Yes,
}

/// `Err(())` for an answer worth waiting on (another handle's claim).
fn not_busy<R>(answer: Result<R, LinearMemoryError>) -> Result<Result<R, LinearMemoryError>, ()> {
    match answer {
        Err(LinearMemoryError::Busy) => Err(()),
        done => Ok(done),
    }
}

/// One thread shard's counters, on one cache line.
#[derive(Default)]
struct Shard {
    /// Bytes of live allocations: the net change counted on this shard.
    allocated: AtomicU64,
    /// Moves of room between the pool and spans (`transit.rs`, T1).
    transit: AtomicU64,
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
    /// An array, not a slice: a class index checked against it is known
    /// to be in bounds for the classes' own tables too.
    classes: Box<[Class; CLASS_COUNT]>,
    large: Stable<LargeDesc>,
    /// Per-thread counters: a shared counter would be one more contended
    /// cache line on every alloc and free.
    shards: Box<[CachePadded<Shard>]>,
    /// Allocations waiting for free bytes at the maximum size (Q1: every
    /// free ends with an AcqRel update of an `allocated` shard).
    bytes_room: WaitQueue,
    /// Claims (and frees) waiting for another handle's claim to end (Q1:
    /// every claim attempt ends with a read-modify-write of the block's
    /// word, and so does every release).
    claims_room: WaitQueue,
    /// Empty spans kept for the handles that pin them (S4, `spans.rs`).
    kept_spans: AtomicU32,
}

impl Allocator {
    pub(super) fn new(initial_pages: u32, max_pages: u32) -> Result<Allocator, LinearMemoryError> {
        let bytes = u64::from(max_pages) * u64::from(PAGE_SIZE);
        Allocator::with_mapping(initial_pages, max_pages, bytes)
    }

    /// [`new`](Self::new) in a mapping of `mapping_bytes` (at least the
    /// maximum size): the bytes past the maximum stay reserved and
    /// inaccessible, the guard region a wasmtime guest's code relies on.
    pub(super) fn with_mapping(
        initial_pages: u32,
        max_pages: u32,
        mapping_bytes: u64,
    ) -> Result<Allocator, LinearMemoryError> {
        let bytes = u64::from(max_pages) * u64::from(PAGE_SIZE);
        let region = Region::reserve(bytes.max(mapping_bytes))?;
        // Every span and large block holds at least one granule: at most
        // this many descriptors of each kind (2^24 for a 4 GiB memory).
        let max_granules = max_pages.saturating_mul(PAGE_GRANULES);
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
            directory: Directory::new(u64::from(max_granules)),
            classes: Box::new(core::array::from_fn(|_| Class {
                descs: Stable::new(max_granules),
                lists: Mutex::new(ClassLists {
                    partial: Vec::new(),
                    pinned: Vec::new(),
                    spare: Vec::new(),
                    made: 0,
                }),
                made: AtomicU32::new(0),
            })),
            large: Stable::new(max_granules),
            shards: (0..crate::sync::shard_count())
                .map(|_| CachePadded::new(Shard::default()))
                .collect(),
            bytes_room: WaitQueue::default(),
            claims_room: WaitQueue::default(),
            kept_spans: AtomicU32::new(0),
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

    /// The sum of the byte counters, within `0..=` the memory's size.
    pub(super) fn allocated_bytes(&self) -> u64 {
        // Relaxed: a statistic. Each shard is the net change of the bytes
        // counted on it (a block freed on another shard than it was
        // allocated on leaves one shard below zero), so each is read as
        // signed. Read one after another while others allocate and free,
        // the sum may count a free but not its allocation (below zero) or
        // an allocation but not a later free (above what is live): it is
        // clamped to what the memory can hold.
        let sum = self.shards.iter().fold(0i128, |sum, shard| {
            sum + i128::from(shard.allocated.load(Ordering::Relaxed).cast_signed())
        });
        // Read after the shards: no allocation during the sum ended past it.
        let size = u64::from(self.size_pages()) * u64::from(PAGE_SIZE);
        u64::try_from(sum).map_or(0, |sum| sum.min(size))
    }

    fn count_allocated(&self, shard: usize, delta: u64, add: bool) {
        let shard = &self.shards[shard].allocated;
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
    /// given back): the same
    /// read-modify-write a free ends with, then the wake-up.
    fn made_room(&self) {
        let shard = &self.shards[thread_hint() % self.shards.len()];
        shard.allocated.fetch_add(0, Ordering::AcqRel);
        self.bytes_room.notify_all();
    }

    /// A registered waiter's read-modify-write of every `allocated` shard
    /// before its last look for bytes (Q1).
    fn touch_counters(&self) {
        for shard in self.shards.iter() {
            shard.allocated.fetch_add(0, Ordering::AcqRel);
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
    /// must end in a read-modify-write of the block's word when the
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

    /// Grows to at least `target` pages and returns the old size (a
    /// wasmtime guest's `grow_to`: a host growth that came first counts).
    #[cfg(all(feature = "wasmtime", unix))]
    pub(super) fn grow_to(&self, target: u32) -> Result<u32, LinearMemoryError> {
        if target > self.max_pages {
            return Err(LinearMemoryError::GrowBeyondMaximum);
        }
        let mut state = self.pool.lock();
        let old = state.pool.size();
        self.grow_locked(&mut state, target)?;
        drop(state);
        if target > old {
            self.made_room();
        }
        Ok(old)
    }

    /// The reserved bytes, for raw access under a claim.
    pub(super) fn region(&self) -> &Region {
        &self.region
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

    /// Takes `granules` granules aligned to `align` granules from the pool
    /// (with `Growth::Yes` taking back the spans kept for their handles,
    /// then growing the memory after a settled look (T2), then taking back
    /// every empty span, if needed), then runs `then` on them under the same hold of the pool's
    /// lock (one lock a large allocation instead of two; a span's transit
    /// starts there, T1). If `then` fails, the granules go back.
    fn take_granules_then<R>(
        &self,
        granules: u32,
        align: u32,
        growth: Growth,
        then: impl FnOnce(&mut PoolState, u32) -> Result<R, LinearMemoryError>,
    ) -> Result<(u32, R), LinearMemoryError> {
        let mut kept_taken_back = false;
        // The transit words after the last look that would have grown the
        // memory (T2).
        let mut growth_look = None;
        let backoff = Backoff::new();
        loop {
            {
                let mut state = self.pool.lock();
                let mut start = state.pool.take(granules, align);
                // S4: a kept span's granules are room; the memory grows
                // only for what no such room can serve (S5).
                if start.is_none()
                    && growth == Growth::Yes
                    && !kept_taken_back
                    && self.has_kept_spans()
                {
                    drop(state);
                    kept_taken_back = true;
                    self.reclaim_kept_spans();
                    continue;
                }
                if start.is_none()
                    && growth == Growth::Yes
                    && let Some(target) = state.pool.growth_for(granules, align)
                {
                    // T2: room in transit (a kept span retiring) is room,
                    // so the memory grows only after a settled look. The
                    // transit words are read under the pool's lock, which
                    // orders this look before any new span's transit.
                    if !self.settled_since(&mut growth_look) {
                        drop(state);
                        backoff.snooze();
                        continue;
                    }
                    self.grow_locked(&mut state, target)?;
                    start = state.pool.take(granules, align);
                    debug_assert!(start.is_some(), "grew for {granules} granules");
                }
                if let Some(start) = start {
                    self.note_high_water(&state);
                    let done = then(&mut state, start);
                    if done.is_err() {
                        self.region
                            .decommit_clean(state.pool.give_back(start, granules));
                    }
                    return done.map(|done| (start, done));
                }
            }
            if growth == Growth::No || self.reclaim_empty_spans() == 0 {
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
        self.alloc_block(cache, len, align, false)
            .map(|(start, _)| start)
    }

    /// [`alloc`](Self::alloc), and the claim of the whole new allocation,
    /// taken in the same store that publishes it: no other handle can
    /// claim (or free) it before the caller has written it (C1).
    pub(super) fn alloc_claimed(
        &self,
        cache: &mut SpanCache,
        len: u32,
        align: u32,
    ) -> Result<Claim, LinearMemoryError> {
        self.alloc_block(cache, len, align, true)
            .map(|(start, block)| Claim::new(block, start, len))
    }

    /// Inline, so that a caller's constant alignment (`alloc_mut`'s 8)
    /// checks nothing at run time.
    #[inline]
    fn alloc_block(
        &self,
        cache: &mut SpanCache,
        len: u32,
        align: u32,
        claimed: bool,
    ) -> Result<(u32, BlockId), LinearMemoryError> {
        if len == 0 {
            return Err(LinearMemoryError::ZeroLength);
        }
        if !align.is_power_of_two() || align > PAGE_SIZE {
            return Err(LinearMemoryError::BadAlignment);
        }
        self.alloc_valid(cache, len, align, claimed)
    }

    /// [`alloc_block`](Self::alloc_block) of a nonzero `len` and an
    /// alignment that is a power of two up to a page.
    fn alloc_valid(
        &self,
        cache: &mut SpanCache,
        len: u32,
        align: u32,
        claimed: bool,
    ) -> Result<(u32, BlockId), LinearMemoryError> {
        // A request that can never fit gets `LengthTooLarge` at once,
        // never `OutOfMemory` (or a wait).
        let (start, block) = if len <= SMALL_MAX && align <= 8 {
            // A one-block span (two granules at most) fits any memory of a
            // page, the never-handed-out first granule aside.
            if self.max_pages == 0 {
                return Err(LinearMemoryError::LengthTooLarge);
            }
            let class = class_of(len);
            match self.alloc_small(cache, class, len, claimed) {
                // Room may have been in transit (T2).
                Err(LinearMemoryError::OutOfMemory) => {
                    self.alloc_small_settled(cache, class, len, claimed)?
                }
                answer => answer?,
            }
        } else {
            if !self.large_can_ever_fit(len, align) {
                return Err(LinearMemoryError::LengthTooLarge);
            }
            match self.alloc_large(len, align, claimed) {
                Err(LinearMemoryError::OutOfMemory) => {
                    self.alloc_large_settled(len, align, claimed)?
                }
                answer => answer?,
            }
        };
        cache.last = Some((start, block));
        self.count_allocated(cache.shard, u64::from(len), true);
        Ok((start, block))
    }

    /// Whether a large block of `len` bytes aligned to `align` fits an
    /// empty memory at its maximum size: whole granules at a multiple of
    /// its alignment, and nothing starts in the first granule (offset 0 is
    /// never handed out).
    fn large_can_ever_fit(&self, len: u32, align: u32) -> bool {
        let first = u64::from(align.max(GRANULE));
        first + u64::from(len.div_ceil(GRANULE)) * u64::from(GRANULE)
            <= u64::from(self.max_pages) * u64::from(PAGE_SIZE)
    }
}
