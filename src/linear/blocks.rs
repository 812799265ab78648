//! The allocator of a linear memory, built on the concurrent slot arena.
//!
//! # Design
//!
//! - **Size classes.** Blocks of 8 B to 32 KiB come in power-of-two classes.
//!   Each class is an [`Arena`] of [`Block`] records whose slot `i` *is*
//!   block `i` of the class: the arena grows one segment per 64 KiB page the
//!   class receives, so the arena's lock-free free list is the class's free
//!   list and its per-slot locks guard the records. A 4 KiB request uses a
//!   4 KiB block, 16 to a page, with no header in the managed bytes.
//! - **Large blocks** (over 32 KiB) take whole contiguous pages from the
//!   page pool; their records live in one more arena.
//! - **Metadata is out of band.** Records, the page table and the page pool
//!   live in ordinary heap memory; nothing a guest writes into a block can
//!   reach them.
//! - **Offset 0 is never handed out**: if page 0 goes to a size class, the
//!   block at offset 0 is kept allocated forever; large blocks never start
//!   at page 0.
//!
//! # Claims (exclusive `mut_mem`)
//!
//! A controller that hands out bytes of an allocation first *claims* it:
//! - C1: a claim sets `Block::claimed` with a compare-and-swap made while
//!   holding the record's read lock, and only on a live record;
//! - C2: `free` runs under the record's write lock and refuses (`Busy`)
//!   while `claimed` is set, so a claimed allocation is never freed and its
//!   bytes never go to another allocation;
//! - C3: allocations never overlap (classes own whole pages, blocks within
//!   a page are disjoint, large blocks own whole page runs), so two claims
//!   never cover the same byte.

use alloc::boxed::Box;

use super::memory::{Region, Space};
use super::pages::{PageOwner, PagePool, PageTable};
use super::v1_arena::{Arena, Geometry, Poison};
use super::{LinearMemoryError, PAGE_SIZE};
use crate::sync::{
    AtomicBool, AtomicU32, AtomicU64, CachePadded, Ordering, shard_count, spin_loop, thread_hint,
};
use crate::{MemoryError, MessageToken};

/// Smallest block: 8 bytes, so every block is 8-byte aligned.
const MIN_CLASS_SHIFT: u32 = 3;
/// Largest class block: 32 KiB (two per page). Larger requests take pages.
const MAX_CLASS_SHIFT: u32 = 15;
const CLASS_COUNT: usize = (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1) as usize;

/// The size class (0 = 8 bytes) of a request of `bytes`, if it has one.
fn class_of(bytes: u32) -> Option<u8> {
    let shift = bytes
        .max(1)
        .checked_next_power_of_two()?
        .trailing_zeros()
        .max(MIN_CLASS_SHIFT);
    (shift <= MAX_CLASS_SHIFT).then(|| (shift - MIN_CLASS_SHIFT) as u8)
}

const fn block_size(class: u8) -> u32 {
    1 << (class as u32 + MIN_CLASS_SHIFT)
}

const fn blocks_per_page(class: u8) -> u32 {
    PAGE_SIZE / block_size(class)
}

/// The record of one allocation.
pub(super) struct Block {
    /// Requested length; `free` must name it exactly.
    len: u32,
    /// First page of a large block (0 for class blocks, whose place follows
    /// from their slot index).
    first_page: u32,
    /// Set while a controller hands out this allocation's bytes (C1, C2).
    claimed: AtomicBool,
}

impl Block {
    fn new(len: u32, first_page: u32) -> Block {
        Block {
            len,
            first_page,
            claimed: AtomicBool::new(false),
        }
    }
}

/// One size class: its blocks, and which page backs each of its segments.
struct SizeClass {
    blocks: Arena<Block>,
    segment_pages: Box<[AtomicU32]>,
}

/// Which arena a claimed allocation's record lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    Class(u8),
    Large,
}

/// Proof that the caller holds an allocation exclusively (C1): the bytes
/// `start..start + len` may be handed out until [`Allocator::release`].
/// Deliberately neither `Clone` nor `Copy`: one claim, one user.
#[derive(Debug)]
pub(super) struct Claim {
    owner: Owner,
    token: MessageToken,
    start: u32,
    len: u32,
}

impl Claim {
    pub(super) fn start(&self) -> u32 {
        self.start
    }

    pub(super) fn len(&self) -> u32 {
        self.len
    }
}

/// Why one free attempt did not finish.
enum Attempt {
    Refused(LinearMemoryError),
    /// A transient read lock (another claim or release in progress) or a
    /// racing free+reuse: look the pointer up again.
    Retry,
}

impl From<MemoryError> for Attempt {
    fn from(error: MemoryError) -> Self {
        match error {
            MemoryError::BorrowActive | MemoryError::StaleToken => Attempt::Retry,
            MemoryError::NotAllocated => Attempt::Refused(LinearMemoryError::DoubleFree),
            _ => Attempt::Refused(LinearMemoryError::UnknownPointer),
        }
    }
}

impl From<LinearMemoryError> for Attempt {
    fn from(error: LinearMemoryError) -> Self {
        Attempt::Refused(error)
    }
}

/// The whole allocator state of one memory.
pub(super) struct Allocator {
    /// The bytes, the page pool and the published size.
    space: Space,
    max_pages: u32,
    pages: PageTable,
    classes: Box<[SizeClass]>,
    large: Arena<Block>,
    /// Bytes of live allocations, per thread shard: a shared counter would
    /// be one more contended cache line on every alloc and free.
    allocated: Box<[CachePadded<AtomicU64>]>,
}

impl Allocator {
    pub(super) fn new(region: Region, initial_pages: u32, max_pages: u32) -> Allocator {
        let classes = (0..CLASS_COUNT as u8)
            .map(|class| {
                let per_page = blocks_per_page(class) as usize;
                SizeClass {
                    blocks: Arena::new(
                        0,
                        max_pages as usize * per_page,
                        Geometry::Fixed { len: per_page },
                    ),
                    segment_pages: (0..max_pages).map(|_| AtomicU32::new(0)).collect(),
                }
            })
            .collect();
        let allocator = Allocator {
            space: Space::new(region, max_pages),
            max_pages,
            pages: PageTable::new(max_pages),
            classes,
            large: Arena::new(0, max_pages as usize, Geometry::Doubling { base: 1 }),
            allocated: (0..shard_count())
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        };
        // Through the pool, so the initial pages are zeroed like any others.
        let grown = allocator.grow(initial_pages);
        debug_assert_eq!(grown, Ok(0), "initial <= max was checked by the caller");
        allocator
    }

    pub(super) fn space(&self) -> &Space {
        &self.space
    }

    pub(super) fn size_pages(&self) -> u32 {
        self.space.size_pages()
    }

    pub(super) fn max_pages(&self) -> u32 {
        self.max_pages
    }

    pub(super) fn allocated_bytes(&self) -> u64 {
        // Relaxed: a statistic.
        // Shards may each have wrapped (a block freed on another thread's
        // shard than it was allocated on); the wrapping sum is exact.
        self.allocated.iter().fold(0u64, |sum, shard| {
            sum.wrapping_add(shard.load(Ordering::Relaxed))
        })
    }

    /// The calling thread's shard of the allocated-bytes counter.
    #[inline]
    fn allocated_here(&self) -> &AtomicU64 {
        &self.allocated[thread_hint() % self.allocated.len()]
    }

    fn with_pool<R>(&self, f: impl FnOnce(&mut PagePool) -> R) -> R {
        self.space.with_pool(f)
    }

    pub(super) fn grow(&self, delta: u32) -> Result<u32, LinearMemoryError> {
        self.with_pool(|pool| pool.grow(delta))
            .ok_or(LinearMemoryError::GrowBeyondMaximum)
    }

    /// Allocates `len` bytes aligned to `align` (a power of two ≤ a page).
    pub(super) fn alloc(&self, len: u32, align: u32) -> Result<u32, LinearMemoryError> {
        if len == 0 {
            return Err(LinearMemoryError::ZeroLength);
        }
        if !align.is_power_of_two() || align > PAGE_SIZE {
            return Err(LinearMemoryError::BadAlignment);
        }
        let align = align.max(1 << MIN_CLASS_SHIFT);
        if len as u64 > self.max_pages as u64 * PAGE_SIZE as u64 {
            return Err(LinearMemoryError::LengthTooLarge);
        }
        let start = match class_of(len.max(align)) {
            Some(class) => self.alloc_small(class, len)?,
            None => self.alloc_large(len)?,
        };
        // Relaxed: a statistic.
        self.allocated_here()
            .fetch_add(len as u64, Ordering::Relaxed);
        Ok(start)
    }

    fn alloc_small(&self, class: u8, len: u32) -> Result<u32, LinearMemoryError> {
        let size_class = &self.classes[class as usize];
        loop {
            let inserted = size_class
                .blocks
                .insert_growing(Block::new(len, 0), |segment, _| {
                    self.give_page(class, segment)
                });
            let Ok(token) = inserted else {
                // No page left: take back fully free pages from every class
                // and try again, or give up if there were none.
                if self.reclaim_pages() == 0 {
                    return Err(LinearMemoryError::OutOfMemory);
                }
                continue;
            };
            let start = self.class_block_start(class, token.index());
            if start != 0 {
                return Ok(start);
            }
            // The block at offset 0 stays allocated forever: 0 is never a pointer.
        }
    }

    /// Returns to the page pool every class page whose blocks are all free;
    /// the number of pages returned. Runs only when the pool is empty.
    #[cold]
    fn reclaim_pages(&self) -> usize {
        (0..CLASS_COUNT as u8)
            .map(|class| {
                let size_class = &self.classes[class as usize];
                // Draining a class's free list is only worth it when its free
                // blocks add up to at least a page.
                if size_class.blocks.available() < blocks_per_page(class) as usize {
                    return 0;
                }
                size_class.blocks.retire_free_segments(|segment| {
                    // Relaxed: written under this class's growth lock, which
                    // `retire_free_segments` holds now.
                    let page = size_class.segment_pages[segment].load(Ordering::Relaxed);
                    // Lookups by pointer must no longer reach the segment,
                    // which may come back later on another page.
                    self.pages.set(page, PageOwner::Unassigned);
                    self.with_pool(|pool| pool.give_back(page, 1));
                })
            })
            .sum()
    }

    /// Hands a fresh page to segment `segment` of `class` (under that
    /// class's growth lock); `false` when the memory is full.
    fn give_page(&self, class: u8, segment: usize) -> bool {
        let Some(page) = self.with_pool(|pool| pool.take(1, true)) else {
            return false;
        };
        // Relaxed: read only after popping one of this segment's slots,
        // whose push (Release) follows this store.
        self.classes[class as usize].segment_pages[segment].store(page, Ordering::Relaxed);
        self.pages.set(
            page,
            PageOwner::Class {
                class,
                segment: segment as u32,
            },
        );
        true
    }

    fn class_block_start(&self, class: u8, index: usize) -> u32 {
        let per_page = blocks_per_page(class) as usize;
        // Relaxed: see `give_page`.
        let page =
            self.classes[class as usize].segment_pages[index / per_page].load(Ordering::Relaxed);
        page * PAGE_SIZE + (index % per_page) as u32 * block_size(class)
    }

    fn alloc_large(&self, len: u32) -> Result<u32, LinearMemoryError> {
        let pages = len.div_ceil(PAGE_SIZE);
        let first = match self.with_pool(|pool| pool.take(pages, false)) {
            Some(first) => first,
            None if self.reclaim_pages() > 0 => self
                .with_pool(|pool| pool.take(pages, false))
                .ok_or(LinearMemoryError::OutOfMemory)?,
            None => return Err(LinearMemoryError::OutOfMemory),
        };
        let token = match self.large.insert(Block::new(len, first)) {
            Ok(token) => token,
            Err(_) => {
                self.with_pool(|pool| pool.give_back(first, pages));
                return Err(LinearMemoryError::OutOfMemory);
            }
        };
        for page in first..first + pages {
            self.pages.set(
                page,
                PageOwner::Large {
                    record: token.index() as u32,
                },
            );
        }
        Ok(first * PAGE_SIZE)
    }

    /// Where the allocation containing byte `ptr` has its record, and its
    /// start offset (`None`: no allocation can contain `ptr`).
    fn locate(&self, ptr: u32) -> Option<(Owner, usize, u32)> {
        let page = ptr / PAGE_SIZE;
        if ptr == 0 || page >= self.size_pages() {
            return None;
        }
        match self.pages.get(page) {
            PageOwner::Unassigned => None,
            PageOwner::Class { class, segment } => {
                let in_page = (ptr % PAGE_SIZE) / block_size(class);
                let start = page * PAGE_SIZE + in_page * block_size(class);
                let index = segment as usize * blocks_per_page(class) as usize + in_page as usize;
                (start != 0).then_some((Owner::Class(class), index, start))
            }
            PageOwner::Large { record } => Some((Owner::Large, record as usize, 0)),
        }
    }

    /// Where the live block `block`, at slot `index` of `owner`, starts.
    /// Call with the record locked, so its segment cannot change pages.
    fn block_start(&self, owner: Owner, index: usize, block: &Block) -> u32 {
        match owner {
            Owner::Class(class) => self.class_block_start(class, index),
            Owner::Large => block.first_page * PAGE_SIZE,
        }
    }

    fn arena(&self, owner: Owner) -> &Arena<Block> {
        match owner {
            Owner::Class(class) => &self.classes[class as usize].blocks,
            Owner::Large => &self.large,
        }
    }

    /// Frees the allocation that starts at `ptr` and is `len` bytes long.
    pub(super) fn free(&self, ptr: u32, len: u32) -> Result<(), LinearMemoryError> {
        let (owner, index, class_start) =
            self.locate(ptr).ok_or(LinearMemoryError::UnknownPointer)?;
        if owner != Owner::Large && class_start != ptr {
            return Err(LinearMemoryError::UnknownPointer); // inside a block, not its start
        }
        let arena = self.arena(owner);
        loop {
            let token = arena
                .token_at(index)
                .map_err(|_| LinearMemoryError::DoubleFree)?;
            let removed = arena.remove(token, |block: &Block| {
                // Under the write lock the record cannot move; check that it
                // really is the block at `ptr` (the page may have changed
                // hands since `locate`).
                if self.block_start(owner, index, block) != ptr {
                    return Err(Attempt::Refused(LinearMemoryError::UnknownPointer));
                }
                if block.len != len {
                    return Err(Attempt::Refused(LinearMemoryError::LengthMismatch));
                }
                // Acquire pairs with `release`'s Release: the last holder's
                // writes happen before the block's next owner gets it.
                if block.claimed.load(Ordering::Acquire) {
                    return Err(Attempt::Refused(LinearMemoryError::Busy));
                }
                Ok(())
            });
            match removed {
                Ok(removed) => {
                    let block = removed.value;
                    if owner == Owner::Large {
                        self.with_pool(|pool| {
                            pool.give_back(block.first_page, block.len.div_ceil(PAGE_SIZE))
                        });
                    }
                    // Relaxed: a statistic.
                    self.allocated_here()
                        .fetch_sub(len as u64, Ordering::Relaxed);
                    return Ok(());
                }
                Err(Attempt::Refused(error)) => return Err(error),
                Err(Attempt::Retry) => spin_loop(),
            }
        }
    }

    /// Claims the allocation containing `ptr..ptr + len` (C1).
    pub(super) fn claim(&self, ptr: u32, len: u32) -> Result<Claim, LinearMemoryError> {
        let end = ptr as u64 + len as u64;
        let (owner, index, class_start) =
            self.locate(ptr).ok_or(LinearMemoryError::UnknownPointer)?;
        let arena = self.arena(owner);
        let token = arena
            .token_at(index)
            .map_err(|_| LinearMemoryError::UnknownPointer)?;
        let block = arena
            .read(token, Poison::Allow)
            .map_err(|_| LinearMemoryError::UnknownPointer)?;
        let start = self.block_start(owner, index, &block);
        if owner != Owner::Large && start != class_start {
            // The page changed hands since `locate`.
            return Err(LinearMemoryError::UnknownPointer);
        }
        if ptr < start || ptr as u64 >= start as u64 + block.len.max(1) as u64 {
            return Err(LinearMemoryError::UnknownPointer);
        }
        if end > start as u64 + block.len as u64 {
            return Err(LinearMemoryError::OutOfBounds);
        }
        // Acquire pairs with `release`'s Release (the previous holder's
        // writes are visible to us). Failure: someone else holds it.
        block
            .claimed
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .map_err(|_| LinearMemoryError::Busy)?;
        Ok(Claim {
            owner,
            token,
            start: ptr,
            len,
        })
    }

    /// Gives a claim up; its bytes must no longer be referenced.
    pub(super) fn release(&self, claim: Claim) {
        // The record cannot be freed while claimed (C2), so this succeeds.
        if let Ok(block) = self.arena(claim.owner).read(claim.token, Poison::Allow) {
            // Release pairs with the Acquire of the next claim or free.
            block.claimed.store(false, Ordering::Release);
        } else {
            debug_assert!(false, "claimed record {:?} vanished", claim.token);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two_from_eight_bytes() {
        assert_eq!(class_of(1), Some(0));
        assert_eq!(class_of(8), Some(0));
        assert_eq!(class_of(9), Some(1));
        assert_eq!(class_of(4096).map(block_size), Some(4096));
        assert_eq!(class_of(32 * 1024).map(block_size), Some(32 * 1024));
        assert_eq!(class_of(32 * 1024 + 1), None);
        assert_eq!(class_of(u32::MAX), None);
    }
}
