//! [`SharedLinearMemory`]: the memory that controllers share.

use super::allocator::Allocator;
use super::region::Claim;
use super::{LinearMemoryController, LinearMemoryError, PAGE_SIZE};
use crate::sync::Arc;

/// The largest memory: 65536 pages of 64 KiB, the whole `u32` space.
pub const MAX_PAGES: u32 = 65_536;

/// One contiguous byte space of 64 KiB pages, shared by many threads.
///
/// The maximum size is reserved up front as address space only, so growing
/// never moves bytes that an allocation points at, and memory is committed
/// page by page as it is used. Pages that become wholly free go back to the
/// OS at once, however small the memory, whether or not idle handles
/// exist — all but the two newest wholly free pages of the memory (128
/// KiB), kept committed so that freeing and taking blocks on one page costs
/// no system call and no page fault each time, and the pages under at most
/// 16 empty spans of small blocks (at most 4 KiB each, on at most 32
/// pages) that the
/// memory keeps for the handles that pin them, so that a handle churning
/// a lone block does not make and retire a span each time; every other
/// span of small blocks goes back to the memory as soon as its last block
/// is freed. They read as zero when used again, as pages the memory grows over do. The
/// bytes of a new allocation are otherwise unspecified: they may hold what
/// a freed block left there.
///
/// Allocation happens through [`LinearMemoryController`] handles, one per
/// thread or task. Cloning is cheap: clones share the memory.
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
            .field("allocated_bytes", &self.allocated_bytes())
            .finish()
    }
}

impl SharedLinearMemory {
    /// A memory of `initial_pages` that may grow to `max_pages` (at most
    /// [`MAX_PAGES`], the whole 4 GiB `u32` space).
    ///
    /// Only address space is reserved for `max_pages`; memory for the
    /// bookkeeping grows with the pages in use, and with the most blocks of
    /// each size the memory ever held at once (their descriptors are kept
    /// for reuse while it lives).
    ///
    /// # Errors
    ///
    /// `InvalidPageCount` if `initial_pages > max_pages` or
    /// `max_pages > MAX_PAGES`; `OutOfMemory` if the address space for
    /// `max_pages` cannot be reserved (on 32-bit targets, 4 GiB never can).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{LinearMemoryError, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(2, 8).unwrap();
    /// assert_eq!((memory.size_pages(), memory.max_pages()), (2, 8));
    /// assert_eq!(SharedLinearMemory::new(9, 8).err(), Some(LinearMemoryError::InvalidPageCount));
    /// ```
    pub fn new(
        initial_pages: u32,
        max_pages: u32,
    ) -> Result<SharedLinearMemory, LinearMemoryError> {
        if initial_pages > max_pages || max_pages > MAX_PAGES {
            return Err(LinearMemoryError::InvalidPageCount);
        }
        Ok(SharedLinearMemory {
            allocator: Arc::new(Allocator::new(initial_pages, max_pages)?),
        })
    }

    /// A new controller on this memory: the same as
    /// [`LinearMemoryController::new(&memory)`](LinearMemoryController::new).
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 4).unwrap();
    /// let mut controller = memory.controller();
    /// let ptr = controller.alloc(16).unwrap();
    /// assert_eq!(memory.allocated_bytes(), 16);
    /// controller.free(ptr, 16).unwrap();
    /// ```
    pub fn controller(&self) -> LinearMemoryController {
        LinearMemoryController::new(self)
    }

    /// Grows by `delta_pages` and returns the old size in pages (WASM
    /// `memory.grow`); the new pages read as zero. Allocation also grows
    /// the memory on demand.
    ///
    /// # Errors
    ///
    /// `GrowBeyondMaximum` if the new size would pass `max_pages`;
    /// `OutOfMemory` if the OS refuses the pages. The size is then
    /// unchanged.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{LinearMemoryError, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(1, 4).unwrap();
    /// assert_eq!(memory.grow(2), Ok(1)); // the old size in pages
    /// assert_eq!(memory.size_pages(), 3);
    /// assert_eq!(memory.grow(2), Err(LinearMemoryError::GrowBeyondMaximum));
    /// assert_eq!(memory.size_pages(), 3);
    /// ```
    pub fn grow(&self, delta_pages: u32) -> Result<u32, LinearMemoryError> {
        self.allocator.grow(delta_pages)
    }

    /// Current size in pages.
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 4).unwrap();
    /// memory.grow(1).unwrap();
    /// assert_eq!(memory.size_pages(), 2);
    /// ```
    pub fn size_pages(&self) -> u32 {
        self.allocator.size_pages()
    }

    /// Current size in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{PAGE_SIZE, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(2, 4).unwrap();
    /// assert_eq!(memory.size_bytes(), 2 * u64::from(PAGE_SIZE));
    /// ```
    pub fn size_bytes(&self) -> u64 {
        u64::from(self.size_pages()) * u64::from(PAGE_SIZE)
    }

    /// Maximum size in pages.
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 16).unwrap();
    /// assert_eq!(memory.max_pages(), 16);
    /// assert!(memory.grow(16).is_err()); // 17 pages would pass it
    /// ```
    pub fn max_pages(&self) -> u32 {
        self.allocator.max_pages()
    }

    /// Bytes of live allocations, as requested (not rounded to blocks).
    ///
    /// Exact once every allocation and free the caller is ordered after
    /// has returned and none is in flight. While other threads allocate
    /// and free, it is a statistic: each thread's count is read at its own
    /// moment, so the answer may miss or double an allocation that runs
    /// meanwhile, but it is never more than the memory's size (in bytes)
    /// when it returns, and never wraps below zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 4).unwrap();
    /// let mut controller = memory.controller();
    /// let ptr = controller.alloc(100).unwrap();
    /// assert_eq!(memory.allocated_bytes(), 100); // as requested, not rounded up
    /// controller.free(ptr, 100).unwrap();
    /// assert_eq!(memory.allocated_bytes(), 0);
    /// ```
    pub fn allocated_bytes(&self) -> u64 {
        self.allocator.allocated_bytes()
    }

    /// The highest end of anything ever handed out (blocks, or spans that
    /// hold small blocks), in bytes: how much of the memory its use has
    /// spread over. Never shrinks.
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 4).unwrap();
    /// let mut controller = memory.controller();
    /// let ptr = controller.alloc(100).unwrap();
    /// controller.free(ptr, 100).unwrap();
    /// assert!(memory.high_water_bytes() >= u64::from(ptr) + 100); // never shrinks
    /// ```
    pub fn high_water_bytes(&self) -> u64 {
        self.allocator.high_water_bytes()
    }

    // === hooks for guest memories (`crate::wasm`) ===

    /// [`new`](Self::new) in a mapping of `mapping_bytes`: the bytes past
    /// `max_pages` stay reserved and inaccessible (a wasmtime guard region).
    #[cfg(all(feature = "wasmtime", unix))]
    pub(crate) fn with_mapping(
        initial_pages: u32,
        max_pages: u32,
        mapping_bytes: u64,
    ) -> Result<SharedLinearMemory, LinearMemoryError> {
        if initial_pages > max_pages || max_pages > MAX_PAGES {
            return Err(LinearMemoryError::InvalidPageCount);
        }
        Ok(SharedLinearMemory {
            allocator: Arc::new(Allocator::with_mapping(
                initial_pages,
                max_pages,
                mapping_bytes,
            )?),
        })
    }

    /// Offset 0 of the memory. Bytes below [`size_bytes`](Self::size_bytes)
    /// are mapped read-write, the rest of the mapping is inaccessible; the
    /// mapping never moves while any handle lives.
    pub(crate) fn base_ptr(&self) -> *mut u8 {
        self.allocator.region().base()
    }

    /// Bytes of the whole mapping, guard region included.
    #[cfg(all(feature = "wasmtime", unix))]
    pub(crate) fn mapping_bytes(&self) -> u64 {
        self.allocator.region().mapping_len() as u64
    }

    /// Grows to at least `target_pages`; returns the old size in pages.
    #[cfg(all(feature = "wasmtime", unix))]
    pub(crate) fn grow_to(&self, target_pages: u32) -> Result<u32, LinearMemoryError> {
        self.allocator.grow_to(target_pages)
    }

    /// Claims `ptr..ptr + len` inside one live allocation, without waiting
    /// (`Busy` if another handle holds it), for access by raw pointer.
    pub(crate) fn claim_raw(&self, ptr: u32, len: u32) -> Result<RawClaim<'_>, LinearMemoryError> {
        let claim = self.allocator.claim(ptr, len)?;
        Ok(RawClaim {
            memory: self,
            claim: Some(claim),
        })
    }
}

/// An exclusive claim on part of one live allocation, reached by raw
/// pointer only (no reference to the bytes is ever made here): while it
/// lives, no other handle can claim, reference or free those bytes
/// (`allocator/claims.rs`, C1–C3). Released on drop.
pub(crate) struct RawClaim<'a> {
    memory: &'a SharedLinearMemory,
    /// `Some` until dropped.
    claim: Option<Claim>,
}

impl RawClaim<'_> {
    /// The first claimed byte: valid for [`len`](Self::len) bytes of reads
    /// and writes while the claim lives (`region.rs`, R1, R2).
    pub(crate) fn ptr(&self) -> *mut u8 {
        match &self.claim {
            Some(claim) => self.memory.allocator.region().claimed_ptr(claim),
            None => unreachable!("a claim is only taken by drop"),
        }
    }

    /// How many bytes are claimed.
    pub(crate) fn len(&self) -> usize {
        self.claim.as_ref().map_or(0, |claim| claim.len() as usize)
    }
}

impl Drop for RawClaim<'_> {
    fn drop(&mut self) {
        if let Some(claim) = self.claim.take() {
            self.memory.allocator.release(claim);
        }
    }
}
