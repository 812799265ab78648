//! [`SharedLinearMemory`] and the one piece of `unsafe` in the crate's
//! linear memory: handing out `&mut [u8]` from the reserved byte region.

#![allow(unsafe_code)]

use alloc::alloc::{Layout, alloc, dealloc};
use core::ptr::NonNull;

use super::blocks::{Allocator, Claim};
use super::pages::PagePool;
use super::{LinearMemoryError, PAGE_SIZE};
use crate::sync::{Arc, AtomicU32, Mutex, Ordering};

/// The largest memory: 65536 pages of 64 KiB, the whole `u32` space.
pub const MAX_PAGES: u32 = 65_536;

/// The reserved bytes of a memory: the maximum size, allocated once.
///
/// Invariants:
/// - R1: `base` points to `layout.size()` bytes that stay allocated, at the
///   same address, until the region drops; growing the memory never moves
///   them.
/// - R2: the bytes of every page below the memory's current size are
///   initialised: a page is zeroed by [`zero`](Self::zero) when the memory
///   grows over it, before its size is published, and is only ever written
///   as `u8` afterwards. Pages above the size are never read.
/// - R3: callers of [`slice_mut`](Self::slice_mut) hold a claim that makes
///   the range exclusive (see `blocks.rs`, C1–C3).
pub(super) struct Region {
    base: NonNull<u8>,
    /// `None` for an empty region, which owns no allocation.
    layout: Option<Layout>,
}

// SAFETY: `Region` owns its allocation like a `Box<[u8]>`, which is `Send`.
unsafe impl Send for Region {}
// SAFETY: `&Region` hands out bytes only through `slice_mut`/`slice`, whose
// callers must hold an exclusive claim on the range (R3), and writes through
// `zero` only to pages nobody can reach yet, so shared use across threads
// creates no aliasing `&mut`.
unsafe impl Sync for Region {}

/// Alignment of the reservation: the system allocator's own minimum on
/// 64-bit targets, so a large request becomes a lazily committed `calloc`
/// (an anonymous mapping) instead of an eager `memset`.
const REGION_ALIGN: usize = 16;

impl Region {
    /// Reserves `len` zeroed bytes. The OS commits pages on first touch.
    fn new(len: usize) -> Result<Region, LinearMemoryError> {
        if len == 0 {
            return Ok(Region {
                base: NonNull::dangling(),
                layout: None,
            });
        }
        let layout = Layout::from_size_align(len, REGION_ALIGN)
            .map_err(|_| LinearMemoryError::OutOfMemory)?;
        // SAFETY: `layout` has a non-zero size (checked above).
        let base = unsafe { alloc(layout) };
        let base = NonNull::new(base).ok_or(LinearMemoryError::OutOfMemory)?;
        Ok(Region {
            base,
            layout: Some(layout),
        })
    }

    fn len(&self) -> usize {
        self.layout.map_or(0, |layout| layout.size())
    }

    /// Start of the range `start..start + len`, checked in debug builds.
    fn at(&self, start: usize, len: usize) -> *mut u8 {
        debug_assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len()),
            "{start}+{len} > {}",
            self.len()
        );
        self.base.as_ptr().wrapping_add(start)
    }

    /// The bytes `start..start + len`.
    ///
    /// Callers outside this module go through [`Space::bytes_mut`].
    ///
    /// # Safety
    ///
    /// - `start + len <= self.len()`;
    /// - no other reference to any of these bytes is live while the returned
    ///   slice is: the caller holds the claim on the allocation that
    ///   contains the range (blocks.rs, C1–C3) for that long.
    #[allow(clippy::mut_from_ref)] // exclusivity comes from the claim, not from `&mut self`
    unsafe fn slice_mut(&self, start: usize, len: usize) -> &mut [u8] {
        // SAFETY: the range lies inside the allocation (first obligation)
        // and stays allocated while `self` is borrowed (R1); a claimed range
        // lies below the memory's size, so its bytes are initialised (R2);
        // nothing else references them (second obligation).
        unsafe { core::slice::from_raw_parts_mut(self.at(start, len), len) }
    }

    /// Zeroes `start..start + len`, making those bytes initialised (R2).
    ///
    /// # Safety
    ///
    /// - `start + len <= self.len()`;
    /// - no reference to any of these bytes exists or can be made while
    ///   this runs.
    unsafe fn zero(&self, start: usize, len: usize) {
        // SAFETY: inside the allocation (first obligation) and unaliased
        // (second obligation); `u8` has no invalid bit patterns.
        unsafe { self.at(start, len).write_bytes(0, len) }
    }

    /// The bytes `start..start + len`, read-only.
    ///
    /// # Safety
    ///
    /// - `start + len <= self.len()`;
    /// - no `&mut` to any of these bytes is live while the returned slice is.
    unsafe fn slice(&self, start: usize, len: usize) -> &[u8] {
        // SAFETY: inside the allocation, allocated and initialised as in
        // `slice_mut`; no `&mut` aliases it (second obligation).
        unsafe { core::slice::from_raw_parts(self.at(start, len), len) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: `base` was allocated in `new` with exactly `layout`,
            // and `&mut self` means no slice of it is live.
            unsafe { dealloc(self.base.as_ptr(), layout) }
        }
    }
}

/// The region together with what decides which of its pages are in use:
/// the page pool and the published size. Keeping them in one place lets the
/// zeroing of new pages (R2) be argued here, next to the region.
///
/// Invariant P1: pages at or above the published size are never handed out
/// and never reachable by a claim (`Allocator::locate` rejects them).
pub(super) struct Space {
    region: Region,
    pool: Mutex<PagePool>,
    /// Mirror of the pool's size for lock-free reads.
    size_pages: AtomicU32,
}

impl Space {
    pub(super) fn new(region: Region, max_pages: u32) -> Space {
        debug_assert!(max_pages as usize * PAGE_SIZE as usize <= region.len());
        Space {
            region,
            pool: Mutex::new(PagePool::new(max_pages)),
            size_pages: AtomicU32::new(0),
        }
    }

    pub(super) fn size_pages(&self) -> u32 {
        // Acquire pairs with the Release in `with_pool`: whoever sees a size
        // also sees the zeroed pages below it.
        self.size_pages.load(Ordering::Acquire)
    }

    /// Runs `f` on the page pool, zeroes the pages it grew the memory by,
    /// and publishes the new size.
    pub(super) fn with_pool<R>(&self, f: impl FnOnce(&mut PagePool) -> R) -> R {
        let mut pool = self.pool.lock();
        let old = pool.size();
        let result = f(&mut pool);
        let new = pool.size();
        if new > old {
            let page = PAGE_SIZE as usize;
            // SAFETY: the pool never grows past the maximum the region was
            // sized for, so the range is inside it; the new pages lie at or
            // above the published size, so no claim reaches them (P1), and
            // we hold the pool lock, so nobody can be handed them before the
            // size below is published.
            unsafe {
                self.region
                    .zero(old as usize * page, (new - old) as usize * page)
            };
        }
        // Release pairs with `size_pages`'s Acquire.
        self.size_pages.store(new, Ordering::Release);
        result
    }

    /// The claimed bytes. Borrowing the claim mutably for as long as the
    /// slice lives makes the slice unique: claims are neither `Clone` nor
    /// forgeable (only `Allocator::claim` makes them) and an allocation has
    /// at most one claim at a time (C1–C3), so no two live slices overlap.
    pub(super) fn bytes_mut<'a>(&'a self, claim: &'a mut Claim) -> &'a mut [u8] {
        // SAFETY: a claim covers a live allocation below the published size,
        // which is inside the region; it is exclusive (C1–C3) and borrowed
        // mutably for `'a`, so nothing else references these bytes for `'a`.
        unsafe {
            self.region
                .slice_mut(claim.start() as usize, claim.len() as usize)
        }
    }

    /// The claimed bytes, read-only. While `claim` is borrowed shared, no
    /// `bytes_mut` of it can be live, and no other claim overlaps (C3).
    pub(super) fn bytes<'a>(&'a self, claim: &'a Claim) -> &'a [u8] {
        // SAFETY: as in `bytes_mut`, the range is inside the region and no
        // other claim covers it; the only way to get `&mut` to these bytes
        // is `bytes_mut` with `&mut` to this very claim, which cannot
        // coexist with the shared borrow held for `'a`.
        unsafe {
            self.region
                .slice(claim.start() as usize, claim.len() as usize)
        }
    }
}

/// One contiguous byte space of 64 KiB pages, shared by many threads.
///
/// The maximum size is reserved up front (the OS commits pages lazily), so
/// growing never moves bytes that an allocation points at. Allocation
/// happens through [`LinearMemoryController`](super::LinearMemoryController)
/// handles, one per thread or task. Cloning is cheap: clones share the memory.
///
/// # Examples
///
/// ```
/// use slotarena::linear::{SharedLinearMemory, PAGE_SIZE};
///
/// let memory = SharedLinearMemory::new(1, 4).unwrap();
/// assert_eq!(memory.grow(2), Ok(1)); // returns the old size, like memory.grow
/// assert_eq!(memory.size_bytes(), 3 * PAGE_SIZE as u64);
/// assert!(memory.grow(2).is_err()); // past the maximum: unchanged
/// ```
#[derive(Clone)]
pub struct SharedLinearMemory {
    pub(super) allocator: Arc<Allocator>,
}

impl core::fmt::Debug for SharedLinearMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SharedLinearMemory")
            .field("size_pages", &self.size_pages())
            .field("max_pages", &self.max_pages())
            .finish()
    }
}

impl SharedLinearMemory {
    /// A memory of `initial_pages` that may grow to `max_pages` (at most
    /// [`MAX_PAGES`], the whole 4 GiB `u32` space).
    ///
    /// # Errors
    ///
    /// `InvalidPageCount` if `initial_pages > max_pages` or
    /// `max_pages > MAX_PAGES`; `OutOfMemory` if the address space for
    /// `max_pages` cannot be reserved.
    pub fn new(
        initial_pages: u32,
        max_pages: u32,
    ) -> Result<SharedLinearMemory, LinearMemoryError> {
        if initial_pages > max_pages || max_pages > MAX_PAGES {
            return Err(LinearMemoryError::InvalidPageCount);
        }
        let region = Region::new(max_pages as usize * PAGE_SIZE as usize)?;
        let allocator = Allocator::new(region, initial_pages, max_pages);
        Ok(SharedLinearMemory {
            allocator: Arc::new(allocator),
        })
    }

    /// Grows by `delta_pages` and returns the old size in pages (WASM
    /// `memory.grow`). Allocation also grows the memory on demand.
    ///
    /// # Errors
    ///
    /// `GrowBeyondMaximum` if the new size would pass `max_pages`; the size
    /// is then unchanged.
    pub fn grow(&self, delta_pages: u32) -> Result<u32, LinearMemoryError> {
        self.allocator.grow(delta_pages)
    }

    /// Current size in pages.
    pub fn size_pages(&self) -> u32 {
        self.allocator.size_pages()
    }

    /// Current size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size_pages() as u64 * PAGE_SIZE as u64
    }

    /// Maximum size in pages.
    pub fn max_pages(&self) -> u32 {
        self.allocator.max_pages()
    }

    /// Bytes of live allocations, as requested (not rounded to blocks).
    pub fn allocated_bytes(&self) -> u64 {
        self.allocator.allocated_bytes()
    }
}
