//! The allocator of a linear memory.
//!
//! # Design
//!
//! - **Block words.** Every block (a place in a span, or a large block)
//!   has one lifecycle word (`block.rs`): its allocation's start, length,
//!   and live and claimed flags. Publishing the word is an allocation's
//!   commit point, the compare-and-swap that marks it freed the free's,
//!   and a claim is one more compare-and-swap on it, so alloc, free,
//!   claim and release each touch one word of the block, like a slot of
//!   the crate's arenas. The word describes itself, so no record or token
//!   is needed to check a stale lookup.
//! - **Small blocks** (up to 512 bytes) come in 20 size classes, four per
//!   power of two (`classes.rs`). A class's blocks live in *spans*: runs of
//!   granules (about 1 KiB, 2 to 32 blocks) taken from the common pool. A
//!   span's free blocks are a bitmap in its state word, so taking or
//!   returning a block is one compare-and-swap on it. Each controller
//!   *pins* one span per class and allocates from it; any thread may free
//!   into any span. A span that empties goes back to the pool at once
//!   (unless a controller has it pinned; those go when unpinned, or when
//!   the pool runs dry). Spans with free blocks that nobody pins wait on
//!   their class's partial list.
//! - **Large blocks** (over 512 bytes, or aligned beyond 8 bytes) take whole
//!   granules from the pool directly: best fit with coalescing, behind a
//!   mutex (`pool.rs`).
//! - **Metadata is out of band**: the block words, the granule directory,
//!   the span and large-block descriptors live in the heap, grow with the
//!   memory's use, and nothing a guest writes into a block can reach them.
//! - **Offset 0 is never handed out**: granule 0 is never in the pool.
//!
//! # Span states
//!
//! A span descriptor's `state` word is `generation << 40 | flags | free`,
//! where bit `i` of `free` says block `i` is free. The generation changes
//! each time the descriptor starts a new span, so a controller's pin
//! `(descriptor, generation)` does not reach the next span that reuses the
//! descriptor (a pin is only a preference: two controllers allocating from
//! one span would still take distinct bits).
//!
//! - S1: a block is taken by the compare-and-swap that clears its bit, and
//!   given back by the one that sets it, after its word was marked freed.
//! - S2: a span is retired (`RETIRED`, its granules back in the pool) only
//!   by the compare-and-swap that sees every block free; nothing takes a
//!   block of a retired span, so its granules hold no live block.
//! - S3: generation 0 means "never published" (a descriptor being made);
//!   every published span has a generation in `1..2^24`, wrapping past 0,
//!   so reclaiming and taking from any span never skip a published one.
//!
//! # Claims (exclusive `mut_mem`)
//!
//! - C1: a claim sets the `claimed` flag of a live block's word with a
//!   compare-and-swap from a word whose range holds the claimed bytes; one
//!   claim at a time per allocation.
//! - C2: a free is a compare-and-swap from a live, unclaimed word, so a
//!   claimed allocation is never freed and its bytes never go to another
//!   allocation (S1, S2) until the claim ends.
//! - C3: live allocations never overlap (spans and large blocks are
//!   disjoint runs of granules, blocks within a span disjoint), so two
//!   claims never cover the same byte.
//!
//! # Lookups
//!
//! - L1: the directory maps each granule to the span or large block that
//!   last took it (a new span's entries are written before its state is
//!   published, so nothing can retire it and hand its granules on before
//!   they name it); the descriptor gives the block word of the place that
//!   holds a byte. Words of freed blocks keep their range until their
//!   descriptor is remade (L3), so freeing one again answers `DoubleFree`,
//!   and a place never allocated has a `NEVER` word (`UnknownPointer`).
//!   Before a freed block's granules go back to the pool (its span
//!   retiring, or it being large), the directory marks its start, which
//!   answers for it once another owner has its granules (L4).
//! - L3: a descriptor is remade only once its span or block is gone and
//!   no granule of the directory names it any more (`Names`: the assign
//!   that takes a granule over counts the previous owner down), so a freed
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

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::block::{Block, BlockId, BlockWord, Place};
use super::classes::{
    CLASS_COUNT, GRANULE, SMALL_MAX, block_size, class_of, granules_for, span_blocks,
};
use super::directory::{Directory, Owner, Stable};
use super::pool::{PAGE_GRANULES, Pool};
use super::region::{Claim, Region};
use super::{LinearMemoryError, PAGE_SIZE};
use crate::sync::{AtomicU32, AtomicU64, CachePadded, Mutex, Ordering, thread_hint};
use crate::wait_queue::{Look, Patience, WaitQueue};

/// `Err(())` for an answer worth waiting on (another handle's claim).
fn not_busy<R>(answer: Result<R, LinearMemoryError>) -> Result<Result<R, LinearMemoryError>, ()> {
    match answer {
        Err(LinearMemoryError::Busy) => Err(()),
        done => Ok(done),
    }
}

// === span descriptors ===

/// The free-block bitmap in a span's state word.
const FREE_MASK: u64 = 0xffff_ffff;
/// On its class's partial list (has free blocks, nobody pins it).
const LISTED: u64 = 1 << 32;
/// A controller allocates from it.
const PINNED: u64 = 1 << 33;
/// Its granules went back to the pool (S2).
const RETIRED: u64 = 1 << 34;
const GENERATION_SHIFT: u32 = 40;
/// The largest generation: the state word's top 24 bits.
const GENERATION_MAX: u32 = u32::MAX >> (GENERATION_SHIFT - 32);

fn generation(state: u64) -> u32 {
    (state >> GENERATION_SHIFT) as u32
}

/// The generation of the next span a descriptor of generation `previous`
/// starts: `1..=GENERATION_MAX`, wrapping past 0, which only a descriptor
/// never published has (S3).
fn next_generation(previous: u32) -> u32 {
    if previous >= GENERATION_MAX {
        1
    } else {
        previous + 1
    }
}

fn free_bits(state: u64) -> u64 {
    state & FREE_MASK
}

/// One span of a size class (or a retired one, waiting for reuse).
struct SpanDesc {
    state: AtomicU64,
    /// Byte offset of the span's first block.
    start: AtomicU32,
    /// The free bits of this span when empty: one per block it holds (a
    /// span may hold fewer blocks than its class's whole span).
    all_free: AtomicU64,
    /// Each block's word (L1).
    blocks: Box<[BlockWord]>,
    /// Which granules still name it in the directory (L3).
    names: Names,
}

impl SpanDesc {
    fn new(blocks: u32) -> SpanDesc {
        SpanDesc {
            state: AtomicU64::new(0),
            start: AtomicU32::new(0),
            all_free: AtomicU64::new(0),
            blocks: (0..blocks).map(|_| BlockWord::default()).collect(),
            names: Names::default(),
        }
    }

    /// Takes the lowest free block with the compare-and-swap that clears
    /// its bit (S1), as long as `usable` accepts the span's state; else
    /// the state that stopped it (no free block, or not usable).
    #[inline]
    fn take_free_block(&self, usable: impl Fn(u64) -> bool) -> Result<u32, u64> {
        // Relaxed: the compare-and-swap below decides, with Acquire.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let free = free_bits(state);
            if free == 0 || !usable(state) {
                return Err(state);
            }
            let index = free.trailing_zeros();
            // Acquire pairs with the Release of the free that set the bit:
            // its accesses to the block happen before ours.
            match self.state.compare_exchange_weak(
                state,
                state & !(1u64 << index),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(index),
                Err(now) => state = now,
            }
        }
    }

    /// Whether `state` has every block of this span free. Relaxed: written
    /// before the span was published, and read by whoever got its state
    /// with an Acquire or under its class's lock.
    fn is_empty(&self, state: u64) -> bool {
        free_bits(state) == self.all_free.load(Ordering::Relaxed)
    }
}

/// A controller's pin on a span: which descriptor, in which generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SpanRef {
    desc: u32,
    generation: u32,
}

/// The spans one controller pins, one per class at most, its latest
/// allocation, and the shard of the byte counters it updates.
#[derive(Debug)]
pub(super) struct SpanCache {
    pinned: [Option<SpanRef>; CLASS_COUNT],
    /// Start and block of the latest allocation made through this cache:
    /// a hint that lets the usual `mut_mem` right after `alloc` skip the
    /// directory. Only a hint: the block's word decides (L2).
    last: Option<(u32, BlockId)>,
    /// Index into `Allocator::allocated`, chosen once from the creating
    /// thread (looking the thread up on every call costs more than the
    /// rare sharing of a shard by two controllers).
    shard: usize,
}

impl SpanCache {
    /// A cache with nothing pinned, for a controller of `allocator`.
    pub(super) fn new(allocator: &Allocator) -> SpanCache {
        SpanCache {
            pinned: [None; CLASS_COUNT],
            last: None,
            shard: thread_hint() % allocator.allocated.len(),
        }
    }

    /// The shard of the byte counters this controller updates.
    pub(super) fn shard(&self) -> usize {
        self.shard
    }

    /// The block of the latest allocation, if it started at `ptr`.
    #[inline]
    pub(super) fn hint(&self, ptr: u32) -> Option<BlockId> {
        self.last
            .filter(|&(start, _)| start == ptr)
            .map(|(_, block)| block)
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

impl ClassLists {
    /// Lists a retired descriptor for reuse (L3: exactly once).
    fn make_spare(&mut self, desc: u32) {
        debug_assert!(!self.spare.contains(&desc), "L3: {desc} made spare twice");
        self.spare.push(desc);
    }
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

/// What a lookup found: the block's word, and where the block lives.
struct Found<'a> {
    word: &'a BlockWord,
    place: FoundPlace<'a>,
}

enum FoundPlace<'a> {
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
    fn block(&self) -> BlockId {
        match self.place {
            FoundPlace::Small {
                class, desc, index, ..
            } => BlockId::small(class, desc, index),
            FoundPlace::Large { desc, .. } => BlockId::large(desc),
        }
    }
}

/// What a free must do after giving its block back.
enum AfterFree {
    Nothing,
    List(u32),
    Retire,
}

// === large blocks and the pool ===

/// One large block (or a freed one, waiting for reuse).
#[derive(Default)]
struct LargeDesc {
    word: BlockWord,
    /// Which granules still name it in the directory (L3).
    names: Names,
}

/// How many granules the directory maps to a descriptor, and whether its
/// span or block is gone (retired, freed): `granules << 1 | GONE`. The
/// descriptor can be remade only when both say so (L3), and exactly one
/// thread sees that happen: the one whose read-modify-write completes it.
#[derive(Default)]
struct Names(AtomicU32);

const GONE: u32 = 1;
const NAMED: u32 = 2;

impl Names {
    /// A descriptor taken for a new span or block of `granules` granules;
    /// only its taker writes it now (it came from no list, or from the
    /// spare list, which only unnamed, gone descriptors reach).
    fn taken(&self, granules: u32) {
        self.0.store(granules * NAMED, Ordering::Relaxed);
    }

    /// Its span or block is gone; true if no granule names it any more
    /// (the caller makes it spare).
    fn gone(&self) -> bool {
        // AcqRel: ordered with `unnamed` on other threads (one of the two
        // sees both facts).
        self.0.fetch_or(GONE, Ordering::AcqRel) == 0
    }

    /// `granules` granules name another owner now; true if none names it
    /// any more and it is gone (the caller makes it spare).
    fn unnamed(&self, granules: u32) -> bool {
        let before = self.0.fetch_sub(granules * NAMED, Ordering::AcqRel);
        debug_assert!(before >= granules * NAMED, "L3: every naming is counted");
        before == (granules * NAMED) | GONE
    }
}

/// What is under the pool's lock.
struct PoolState {
    pool: Pool,
    large_spare: Vec<u32>,
    large_made: u32,
}

impl PoolState {
    /// Lists a freed large block's descriptor for reuse (L3: exactly once).
    fn make_spare(&mut self, desc: u32) {
        debug_assert!(
            !self.large_spare.contains(&desc),
            "L3: {desc} made spare twice"
        );
        self.large_spare.push(desc);
    }
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
    /// Bytes of live allocations, per thread shard: a shared counter would
    /// be one more contended cache line on every alloc and free.
    allocated: Box<[CachePadded<AtomicU64>]>,
    /// Allocations waiting for free bytes at the maximum size (Q1: every
    /// free ends with an AcqRel update of an `allocated` shard).
    bytes_room: WaitQueue,
    /// Claims (and frees) waiting for another handle's claim to end (Q1:
    /// every claim attempt ends with a read-modify-write of the block's
    /// word, and so does every release).
    claims_room: WaitQueue,
}

impl Allocator {
    pub(super) fn new(initial_pages: u32, max_pages: u32) -> Result<Allocator, LinearMemoryError> {
        let bytes = u64::from(max_pages) * u64::from(PAGE_SIZE);
        let region = Region::reserve(bytes)?;
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
            classes: (0..CLASS_COUNT)
                .map(|_| Class {
                    descs: Stable::new(max_granules),
                    lists: Mutex::new(ClassLists {
                        partial: Vec::new(),
                        spare: Vec::new(),
                        made: 0,
                    }),
                    made: AtomicU32::new(0),
                })
                .collect(),
            large: Stable::new(max_granules),
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

    fn count_allocated(&self, shard: usize, delta: u64, add: bool) {
        let shard = &self.allocated[shard];
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
        self.take_granules_then(granules, align, |_, _| Ok(()))
            .map(|(start, ())| start)
    }

    /// [`take_granules`](Self::take_granules), then `then` on the granules
    /// taken under the same hold of the pool's lock (one lock a large
    /// allocation instead of two). If `then` fails, the granules go back.
    fn take_granules_then<R>(
        &self,
        granules: u32,
        align: u32,
        then: impl FnOnce(&mut PoolState, u32) -> Result<R, LinearMemoryError>,
    ) -> Result<(u32, R), LinearMemoryError> {
        loop {
            {
                let mut state = self.pool.lock();
                let mut start = state.pool.take(granules, align);
                if start.is_none()
                    && let Some(target) = state.pool.growth_for(granules, align)
                {
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
        if !self.can_ever_fit(len, align) {
            return Err(LinearMemoryError::LengthTooLarge);
        }
        let (start, block) = if len <= SMALL_MAX && align <= 8 {
            self.alloc_small(cache, class_of(len), len, claimed)?
        } else {
            self.alloc_large(len, align, claimed)?
        };
        cache.last = Some((start, block));
        self.count_allocated(cache.shard, u64::from(len), true);
        Ok((start, block))
    }

    /// Whether `len` bytes aligned to `align` fit an empty memory at its
    /// maximum size: nothing starts in the first granule (offset 0 is never
    /// handed out), a small block needs a span of at least its own
    /// granules, and a large block whole granules at a multiple of its
    /// alignment. A request that fails this can never succeed, so it gets
    /// `LengthTooLarge` at once instead of `OutOfMemory` (or a wait).
    #[inline]
    fn can_ever_fit(&self, len: u32, align: u32) -> bool {
        let granules = if len <= SMALL_MAX && align <= 8 {
            granules_for(class_of(len), 1)
        } else {
            len.div_ceil(GRANULE)
        };
        let first = u64::from(align.max(GRANULE));
        first + u64::from(granules) * u64::from(GRANULE)
            <= u64::from(self.max_pages) * u64::from(PAGE_SIZE)
    }

    #[inline]
    fn alloc_small(
        &self,
        cache: &mut SpanCache,
        class: usize,
        len: u32,
        claimed: bool,
    ) -> Result<(u32, BlockId), LinearMemoryError> {
        let (desc_index, index) = loop {
            if let Some(span) = cache.pinned[class] {
                match self.take_block(class, span) {
                    Take::Block(index) => break (span.desc, index),
                    Take::Full => self.unpin(class, span),
                    Take::Gone => {}
                }
                cache.pinned[class] = None;
            }
            match self.acquire_span(class) {
                Ok(span) => cache.pinned[class] = Some(span),
                Err(LinearMemoryError::OutOfMemory) => {
                    break self
                        .take_any_block(class)
                        .ok_or(LinearMemoryError::OutOfMemory)?;
                }
                Err(error) => return Err(error),
            }
        };
        let desc = self.span_desc(class, desc_index);
        // Relaxed: set before the span was published, which the Acquire of
        // the CAS that took the block ordered before us.
        let start = desc.start.load(Ordering::Relaxed) + index * block_size(class);
        desc.blocks[index as usize].publish(Block::live(start, len).claimed_if(claimed));
        let block = BlockId::small(class as u8, desc_index, index as u8);
        Ok((start, block))
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
        let pinned = |state: u64| generation(state) == span.generation && state & RETIRED == 0;
        match self.span_desc(class, span.desc).take_free_block(pinned) {
            Ok(index) => Take::Block(index),
            Err(state) if pinned(state) => Take::Full,
            Err(_) => Take::Gone,
        }
    }

    /// For a memory out of granules: a free block of `class` in any span,
    /// pinned by another controller or not, as `(descriptor, index)`. A pin
    /// is only a preference; the compare-and-swap that clears the block's
    /// bit decides who gets it (S1), and a retired span is never taken
    /// from (S2). Without this, free blocks in spans other controllers pin
    /// could not serve this one until they unpinned.
    #[cold]
    fn take_any_block(&self, class: usize) -> Option<(u32, u32)> {
        let class_state = &self.classes[class];
        // Acquire pairs with `acquire_span`'s Release.
        let made = class_state.made.load(Ordering::Acquire);
        for desc in 0..made {
            let Some(span) = class_state.descs.get(desc) else {
                continue;
            };
            let live = |state: u64| generation(state) != 0 && state & RETIRED == 0;
            if let Ok(index) = span.take_free_block(live) {
                return Some((desc, index));
            }
        }
        None
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
        let (start, blocks) = self.take_span_granules(class)?;
        let granules = granules_for(class, blocks);
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
        let Some(span_desc) = class_state
            .descs
            .get_or_make(desc, || SpanDesc::new(span_blocks(class)))
        else {
            drop(lists);
            self.give_granules(start, granules);
            return Err(LinearMemoryError::OutOfMemory);
        };
        drop(lists);
        // Nobody else writes a retired or fresh descriptor (S2): its state
        // says retired (or was never published), so no free, unpin,
        // reclaim or partial-list entry acts on it; stale readers only
        // read, and every word they act on names its own range (L2).
        let generation = next_generation(generation(span_desc.state.load(Ordering::Relaxed)));
        let all_free = u64::MAX >> (u64::BITS - blocks);
        // Release (and `reset`'s): a lookup that sees the remade span is
        // ordered after the marks of the blocks it had before (L4).
        span_desc.start.store(start * GRANULE, Ordering::Release);
        span_desc.all_free.store(all_free, Ordering::Relaxed);
        for word in &span_desc.blocks {
            word.reset();
        }
        // L1: the directory names the span before its state is published.
        // Published first, the empty span could be retired by another
        // thread's `reclaim_empty_spans` and its granules handed to another
        // block before this assign, which would then point that block's
        // granules back at this descriptor (its lookups lost for good).
        span_desc.names.taken(granules);
        // The directory's Release publishes the fields above to lookups.
        self.assign(
            start,
            granules,
            Owner::Span {
                class: class as u8,
                desc,
            },
        );
        // Release publishes them to whoever acquires the state.
        span_desc.state.store(
            (u64::from(generation) << GENERATION_SHIFT) | PINNED | all_free,
            Ordering::Release,
        );
        Ok(SpanRef { desc, generation })
    }

    /// Granules for a new span of `class`, and how many blocks it holds: a
    /// whole span if the memory has room for one, else the most blocks
    /// (halving) that fit, so a small memory can still use its last bytes.
    fn take_span_granules(&self, class: usize) -> Result<(u32, u32), LinearMemoryError> {
        let mut blocks = span_blocks(class);
        loop {
            match self.take_granules(granules_for(class, blocks), 1) {
                Ok(start) => return Ok((start, blocks)),
                Err(LinearMemoryError::OutOfMemory) if blocks > 1 => blocks /= 2,
                Err(error) => return Err(error),
            }
        }
    }

    /// Gives up the pin on `span`: it goes back to the pool if empty, on
    /// the partial list if it has free blocks.
    fn unpin(&self, class: usize, span: SpanRef) {
        let desc = self.span_desc(class, span.desc);
        let mut state = desc.state.load(Ordering::Relaxed);
        loop {
            if generation(state) != span.generation || state & RETIRED != 0 {
                return; // taken back by `reclaim_empty_spans`
            }
            let mut next = state & !PINNED;
            if desc.is_empty(state) {
                next |= RETIRED;
            } else if free_bits(state) != 0 {
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
        let blocks = span_desc.all_free.load(Ordering::Relaxed).count_ones();
        // Every block is free (S2); their starts must outlive the span (L1).
        for word in &span_desc.blocks[..blocks as usize] {
            let block = word.load();
            if block.was_allocated() {
                self.directory.mark_freed_start(block.start());
            }
        }
        self.give_granules(start, granules_for(class, blocks));
        if span_desc.names.gone() {
            self.classes[class].lists.lock().make_spare(desc);
        }
    }

    /// Makes `owner` the owner of granules `start..start + granules` in the
    /// directory, and makes spare every gone descriptor that no granule
    /// names any more (L3).
    fn assign(&self, start: u32, granules: u32, owner: Owner) {
        self.directory
            .assign(start, granules, owner, |previous, count| match previous {
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
            });
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
                // Acquire: `is_empty` reads the span's fields.
                let mut state = span_desc.state.load(Ordering::Acquire);
                while generation(state) != 0 && state & RETIRED == 0 && span_desc.is_empty(state) {
                    match span_desc.state.compare_exchange_weak(
                        state,
                        state | RETIRED,
                        Ordering::AcqRel,
                        Ordering::Acquire,
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

    /// Gives block `index` of span `desc` (`span_desc`) back (its word
    /// already says freed), listing or retiring the span as needed (S1, S2).
    fn put_block(&self, class: usize, desc: u32, span_desc: &SpanDesc, index: u32) {
        let bit = 1u64 << index;
        let mut state = span_desc.state.load(Ordering::Relaxed);
        loop {
            debug_assert!(state & bit == 0, "S1: a live block's bit is clear");
            let mut next = state | bit;
            let mut after = AfterFree::Nothing;
            if state & (PINNED | RETIRED) == 0 {
                if span_desc.is_empty(next) {
                    next |= RETIRED;
                    after = AfterFree::Retire;
                } else if state & LISTED == 0 {
                    next |= LISTED;
                    after = AfterFree::List(generation(state));
                }
            }
            // Release pairs with `take_block`'s Acquire.
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
    fn alloc_large(
        &self,
        len: u32,
        align: u32,
        claimed: bool,
    ) -> Result<(u32, BlockId), LinearMemoryError> {
        let granules = len.div_ceil(GRANULE);
        let (start, (desc, large)) =
            self.take_granules_then(granules, (align / GRANULE).max(1), |state, _| {
                // A spare descriptor, else a new one; taken only once it exists.
                let desc = state.large_spare.last().copied();
                let desc = desc.unwrap_or(state.large_made);
                let large = self
                    .large
                    .get_or_make(desc, LargeDesc::default)
                    .ok_or(LinearMemoryError::OutOfMemory)?;
                if state.large_spare.pop().is_none() {
                    state.large_made += 1;
                }
                large.names.taken(granules);
                Ok((desc, large))
            })?;
        let offset = start * GRANULE;
        large
            .word
            .publish(Block::live(offset, len).claimed_if(claimed));
        // The directory's Release publishes the word to lookups (L1).
        self.assign(start, granules, Owner::Large { desc });
        Ok((offset, BlockId::large(desc)))
    }

    // === lookups, free, claims ===

    /// The block whose place holds byte `ptr` (L1), and its word, which
    /// decides (L2).
    #[inline]
    fn lookup(&self, ptr: u32) -> Option<Found<'_>> {
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

    /// The word of `block`; `None` only for a lookup's descriptor that
    /// does not exist (never for a block someone allocated).
    #[inline]
    fn word(&self, block: BlockId) -> Option<&BlockWord> {
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

    /// Frees the allocation that starts at `ptr` and is `len` bytes long,
    /// counting it on byte-counter `shard`.
    pub(super) fn free(&self, shard: usize, ptr: u32, len: u32) -> Result<(), LinearMemoryError> {
        self.free_checked(shard, ptr, len, false)
    }

    /// [`free`](Self::free) for a registered claim waiter: reads the block's
    /// word with a read-modify-write (Q1) instead of a load.
    pub(super) fn free_touching(
        &self,
        shard: usize,
        ptr: u32,
        len: u32,
    ) -> Result<(), LinearMemoryError> {
        self.free_checked(shard, ptr, len, true)
    }

    fn free_checked(
        &self,
        shard: usize,
        ptr: u32,
        len: u32,
        touch: bool,
    ) -> Result<(), LinearMemoryError> {
        let Some(Found { word, place }) = self.lookup(ptr) else {
            return Err(self.not_a_start(ptr));
        };
        let mut seen = if touch { word.touch() } else { word.load() };
        loop {
            if !seen.was_allocated() || seen.start() != ptr {
                // Never allocated here, inside a block, or a block whose
                // place went to another owner.
                return Err(self.not_a_start(ptr));
            }
            if !seen.is_live() {
                return Err(LinearMemoryError::DoubleFree);
            }
            if seen.len() != len {
                return Err(LinearMemoryError::LengthMismatch);
            }
            if seen.is_claimed() {
                return Err(LinearMemoryError::Busy);
            }
            match word.free(seen) {
                Ok(()) => break,
                Err(now) => seen = now,
            }
        }
        // The word was live, so its place is the block we looked up (L2)
        // and its span or descriptor is still this block's (S2).
        match place {
            FoundPlace::Small {
                class,
                desc,
                span,
                index,
            } => {
                self.put_block(usize::from(class), desc, span, u32::from(index));
            }
            FoundPlace::Large { desc, large } => {
                // Its start must outlive its granules (L1).
                self.directory.mark_freed_start(ptr);
                let mut state = self.pool.lock();
                self.region
                    .decommit_clean(state.pool.give_back(ptr / GRANULE, len.div_ceil(GRANULE)));
                if large.names.gone() {
                    state.make_spare(desc);
                }
            }
        }
        self.count_allocated(shard, u64::from(len), false);
        self.bytes_room.notify_all();
        Ok(())
    }

    /// The answer to a free of `ptr`, where no allocation, live or freed,
    /// starts in the directory's view: `DoubleFree` if one started there
    /// and was freed before its place went to another owner (L1).
    #[cold]
    fn not_a_start(&self, ptr: u32) -> LinearMemoryError {
        if self.directory.is_freed_start(ptr) {
            LinearMemoryError::DoubleFree
        } else {
            LinearMemoryError::UnknownPointer
        }
    }

    /// Claims `ptr..ptr + len` inside one live allocation (C1); `len == 0`
    /// also accepts the empty range at an allocation's end.
    pub(super) fn claim(&self, ptr: u32, len: u32) -> Result<Claim, LinearMemoryError> {
        let end = u64::from(ptr) + u64::from(len);
        let at = self.claim_in(ptr, ptr, end);
        if let Ok(Some(claim)) = at {
            return Ok(claim);
        }
        // An empty range is also the end of the allocation before `ptr`,
        // which serves when the one starting at `ptr` is missing or claimed.
        if len == 0
            && ptr > 0
            && let Some(claim) = self.claim_in(ptr - 1, ptr, end)?
        {
            return Ok(claim);
        }
        at?.ok_or(LinearMemoryError::UnknownPointer)
    }

    /// [`claim`](Self::claim), trying first `hint` (the caller's latest
    /// allocation); the answer is the same, since a live word that holds
    /// `ptr` describes the one allocation the directory would lead to (C3).
    #[inline]
    pub(super) fn claim_hinted(
        &self,
        ptr: u32,
        len: u32,
        hint: Option<BlockId>,
    ) -> Result<Claim, LinearMemoryError> {
        if let Some(block) = hint {
            let end = u64::from(ptr) + u64::from(len);
            // Any other answer is the full lookup's to give (an empty
            // range may belong to the allocation before `ptr`).
            if let Ok(Some(claim)) = self.claim_block(block, ptr, end) {
                return Ok(claim);
            }
        }
        self.claim(ptr, len)
    }

    /// Claims `ptr..end` in the allocation whose place holds byte `probe`;
    /// `None` if no live allocation there holds `ptr`.
    fn claim_in(&self, probe: u32, ptr: u32, end: u64) -> Result<Option<Claim>, LinearMemoryError> {
        match self.lookup(probe) {
            Some(found) => Self::claim_word(found.block(), found.word, ptr, end),
            None => Ok(None),
        }
    }

    /// Claims `ptr..end` in the allocation of `block`; `None` if that
    /// block is not live or does not hold `ptr`.
    #[inline]
    fn claim_block(
        &self,
        block: BlockId,
        ptr: u32,
        end: u64,
    ) -> Result<Option<Claim>, LinearMemoryError> {
        match self.word(block) {
            Some(word) => Self::claim_word(block, word, ptr, end),
            None => Ok(None),
        }
    }

    /// Claims `ptr..end` in the allocation of `block`, whose word is `word`.
    #[inline]
    fn claim_word(
        block: BlockId,
        word: &BlockWord,
        ptr: u32,
        end: u64,
    ) -> Result<Option<Claim>, LinearMemoryError> {
        let mut seen = word.load();
        loop {
            if !seen.is_live() || !seen.holds(ptr, end) {
                return Ok(None);
            }
            if end > seen.end() {
                return Err(LinearMemoryError::OutOfBounds);
            }
            if seen.is_claimed() {
                // A read-modify-write before answering, so a claim
                // waiter's last look never misses a release (Q1).
                let now = word.touch();
                if now == seen {
                    return Err(LinearMemoryError::Busy);
                }
                seen = now;
                continue;
            }
            match word.claim(seen) {
                // C1 holds: we set the flag on a live word that holds the range.
                Ok(()) => return Ok(Some(Claim::new(block, ptr, (end - u64::from(ptr)) as u32))),
                Err(now) => seen = now,
            }
        }
    }

    /// Gives a claim up; its bytes must no longer be referenced.
    pub(super) fn release(&self, claim: Claim) {
        // A claimed block cannot be freed (C2), so its word is still there.
        match self.word(claim.block()) {
            Some(word) => word.release(),
            None => debug_assert!(false, "claimed block {:?} vanished", claim.block()),
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
    use super::*;

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
        let desc = allocator.classes[0]
            .descs
            .get_or_make(0, || SpanDesc::new(span_blocks(0)))
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
}
