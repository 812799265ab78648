//! The reserved bytes of a memory, and the one piece of `unsafe` in the
//! crate's linear memory: handing out `&mut [u8]` of them.
//!
//! On Unix the whole maximum size is reserved as one anonymous mapping with
//! no access and no swap reservation (`PROT_NONE`, `MAP_NORESERVE`): it
//! costs address space, not memory. Growing the memory makes the new pages
//! readable and writable (`mprotect`); the OS commits each page on first
//! touch. Pages that become wholly free can be handed back to the OS
//! ([`Region::decommit_clean`]): they stay mapped and read as zero afterwards, as
//! fresh pages do.
//!
//! Elsewhere (and under Miri, which cannot run raw system calls) the region
//! is one zeroed heap allocation of the maximum size, which the system
//! allocator maps lazily for large sizes; decommitting then does nothing.
//!
//! Invariants:
//! - R1: `base` points to `len` bytes that stay mapped, at the same address,
//!   until the region drops; nothing ever moves them.
//! - R2: every byte below the committed size ([`Region::commit`]) is
//!   readable, writable and initialised (zero when fresh, then only ever
//!   written as `u8`); bytes above it are never accessed.
//! - R3: callers of [`Region::slice_mut`] hold the claim on a live
//!   allocation that contains the range (`allocator/claims.rs`, C1–C3), so no two
//!   live slices overlap.

#![allow(unsafe_code)]

use core::ptr::NonNull;

use super::block::BlockId;
use super::pool::CleanPages;
use super::{LinearMemoryError, PAGE_SIZE};

/// Proof that the holder has an allocation's bytes `start..start + len`
/// exclusively (R3): made only by `Allocator::claim_word` right after it
/// set the claim flag of the allocation's block word (or field), or by
/// `Allocator::alloc_claimed` for the allocation it published claimed
/// (`allocator/claims.rs`, C1); given back only through `Allocator::release`. Deliberately neither `Clone` nor `Copy`: one
/// claim, one user.
///
/// Two aligned `u64`s: the range is one word, not two `u32` fields, so a
/// `Result<Claim, _>` moves as two whole words. With two fields after the
/// block's niche, the compiler copied the result in overlapping 1- and
/// 4-byte pieces, and each read of those pieces waited for the stores it
/// straddled (`perf annotate`: 13% of the L1 workload's time in
/// `mut_mem`).
#[derive(Debug)]
pub(super) struct Claim {
    block: BlockId,
    /// `start | len << 32`.
    range: u64,
}

impl Claim {
    /// See the type's docs for the one place that may call this.
    pub(super) fn new(block: BlockId, start: u32, len: u32) -> Claim {
        Claim {
            block,
            range: u64::from(start) | (u64::from(len) << 32),
        }
    }

    /// The claimed allocation's block.
    pub(super) fn block(&self) -> BlockId {
        self.block
    }

    /// The first claimed byte.
    pub(super) fn start(&self) -> u32 {
        self.range as u32
    }

    /// How many bytes are claimed.
    pub(super) fn len(&self) -> u32 {
        (self.range >> 32) as u32
    }
}

/// The reserved bytes of one memory (see the module docs).
pub(super) struct Region {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: `Region` owns its mapping like a `Box<[u8]>` owns its bytes, and a
// `Box<[u8]>` is `Send`.
unsafe impl Send for Region {}
// SAFETY: `&Region` reaches the bytes only through `slice_mut`/`slice`, whose
// callers must hold an exclusive claim on the range (R3), and through
// `commit`/`decommit_clean`, whose callers guarantee nobody references the range,
// so sharing a `Region` between threads creates no aliasing `&mut`. The raw
// pointers of `base`/`claimed_ptr` make no reference; they serve guest
// memories (`crate::wasm`), whose handles reach the bytes only by atomic
// copies under a claim, or as slices while the guest is paused.
unsafe impl Sync for Region {}

impl Region {
    /// Reserves `bytes` of address space (nothing is committed yet).
    ///
    /// # Errors
    ///
    /// `OutOfMemory` if `bytes` does not fit this target's address space or
    /// the OS refuses the reservation.
    pub(super) fn reserve(bytes: u64) -> Result<Region, LinearMemoryError> {
        let len = usize::try_from(bytes).map_err(|_| LinearMemoryError::OutOfMemory)?;
        if len == 0 {
            return Ok(Region {
                base: NonNull::dangling(),
                len: 0,
            });
        }
        let base = os::reserve(len).ok_or(LinearMemoryError::OutOfMemory)?;
        Ok(Region { base, len })
    }

    /// Start of `start..start + len`, checked in debug builds.
    fn at(&self, start: usize, len: usize) -> *mut u8 {
        debug_assert!(
            start.checked_add(len).is_some_and(|end| end <= self.len),
            "{start}+{len} > {}",
            self.len
        );
        self.base.as_ptr().wrapping_add(start)
    }

    /// Makes `start..start + len` readable and writable: the memory grew
    /// over it. Fresh pages read as zero.
    ///
    /// # Errors
    ///
    /// `OutOfMemory` if the OS refuses.
    ///
    /// # Panics
    ///
    /// In debug builds, if the range leaves the region.
    pub(super) fn commit(&self, start: usize, len: usize) -> Result<(), LinearMemoryError> {
        if len == 0 {
            return Ok(());
        }
        let ptr = self.at(start, len);
        // SAFETY: the range lies inside our mapping (debug-checked above;
        // callers pass pages below the maximum size, which `reserve` mapped).
        // Changing protection from none to read-write invalidates nothing:
        // no reference to bytes above the committed size exists (R2).
        if unsafe { os::commit(ptr, len) } {
            Ok(())
        } else {
            Err(LinearMemoryError::OutOfMemory)
        }
    }

    /// Hands the pages the pool just marked clean back to the OS; they
    /// read as zero afterwards. Inline: almost always there are none, and
    /// the caller holds the pool's lock.
    #[inline]
    pub(super) fn decommit_clean(&self, pages: CleanPages<'_>) {
        let page = PAGE_SIZE as usize;
        for &(first, count) in pages.runs() {
            let (start, len) = (first as usize * page, count as usize * page);
            let ptr = self.at(start, len);
            // SAFETY: the pool marks a page clean only when all its granules
            // are free (pool.rs, P3), so the page belongs to no live
            // allocation and no claim or slice covers it (R3); `pages`
            // borrows the pool, so nobody can take any of it until we are
            // done. The page lies below the pool's size, hence inside our
            // mapping and committed (R2); 64 KiB pages are OS-page aligned.
            unsafe { os::decommit(ptr, len) }
        }
    }

    /// The bytes `start..start + len`.
    ///
    /// # Safety
    ///
    /// - `start + len` does not pass the committed size;
    /// - no other reference to any of these bytes is live while the returned
    ///   slice is: the caller holds the claim on the allocation that
    ///   contains the range (R3) for that long.
    #[allow(clippy::mut_from_ref)] // exclusivity comes from the claim, not from `&mut self`
    unsafe fn slice_mut(&self, start: usize, len: usize) -> &mut [u8] {
        // SAFETY: the range is committed (first obligation), hence mapped
        // (R1) and initialised (R2), and stays so while `self` is borrowed;
        // nothing else references it (second obligation).
        unsafe { core::slice::from_raw_parts_mut(self.at(start, len), len) }
    }

    /// The bytes `start..start + len`, read-only.
    ///
    /// # Safety
    ///
    /// - `start + len` does not pass the committed size;
    /// - no `&mut` to any of these bytes is live while the returned slice is.
    unsafe fn slice(&self, start: usize, len: usize) -> &[u8] {
        // SAFETY: committed, mapped and initialised as in `slice_mut`; no
        // `&mut` aliases it (second obligation).
        unsafe { core::slice::from_raw_parts(self.at(start, len), len) }
    }
}

impl Region {
    /// Start of the whole mapping (offset 0 of the memory).
    pub(super) fn base(&self) -> *mut u8 {
        self.base.as_ptr()
    }

    /// Bytes of the whole mapping: the maximum size and any guard region
    /// after it.
    #[cfg(all(feature = "wasmtime", unix))]
    pub(super) fn mapping_len(&self) -> usize {
        self.len
    }

    /// Start of the claimed bytes, for copies that must not make a
    /// reference (bytes a running guest may write; `crate::wasm`). The
    /// claim keeps other handles off the range (C1–C3); the pointer is
    /// valid for `claim`'s length while the claim is held (R1, R2).
    pub(super) fn claimed_ptr(&self, claim: &Claim) -> *mut u8 {
        self.at(claim.start() as usize, claim.len() as usize)
    }

    /// The claimed bytes. Borrowing the claim mutably for as long as the
    /// slice lives makes the slice unique: claims are neither `Clone` nor
    /// forgeable and an allocation has at most one claim at a time
    /// (`allocator/claims.rs`, C1–C3), so no two live slices overlap.
    pub(super) fn bytes_mut<'a>(&'a self, claim: &'a mut Claim) -> &'a mut [u8] {
        // SAFETY: a claim covers part of a live allocation, which lies below
        // the committed size; it is exclusive (C1–C3) and borrowed mutably
        // for `'a`, so nothing else references these bytes for `'a` (R3).
        unsafe { self.slice_mut(claim.start() as usize, claim.len() as usize) }
    }

    /// The claimed bytes, read-only. While `claim` is borrowed shared, no
    /// `bytes_mut` of it can be live, and no other claim overlaps (C3).
    pub(super) fn bytes<'a>(&'a self, claim: &'a Claim) -> &'a [u8] {
        // SAFETY: as in `bytes_mut`, the range is committed and no other
        // claim covers it; the only way to get `&mut` to these bytes is
        // `bytes_mut` with `&mut` to this very claim, which cannot coexist
        // with the shared borrow held for `'a`.
        unsafe { self.slice(claim.start() as usize, claim.len() as usize) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: `base`/`len` are exactly what `os::reserve` returned,
            // and `&mut self` means no slice of the region is live.
            unsafe { os::release(self.base, self.len) }
        }
    }
}

/// Unix: one anonymous mapping, reserved without access, committed by
/// `mprotect`, decommitted by `madvise(MADV_DONTNEED)` (Linux) or by mapping
/// fresh zero pages over the range (other Unixes).
#[cfg(all(unix, not(miri)))]
mod os {
    use core::ffi::c_void;
    use core::ptr::NonNull;

    use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};

    /// Flags of the reservation and of every remapping.
    fn map_flags() -> MapFlags {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            MapFlags::PRIVATE | MapFlags::NORESERVE
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            MapFlags::PRIVATE
        }
    }

    pub(super) fn reserve(len: usize) -> Option<NonNull<u8>> {
        // SAFETY: a new anonymous mapping at an address of the kernel's
        // choosing (null hint, no MAP_FIXED) overlaps nothing that exists.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(core::ptr::null_mut(), len, ProtFlags::empty(), map_flags())
        }
        .ok()?;
        NonNull::new(ptr.cast())
    }

    /// # Safety
    ///
    /// `ptr..ptr + len` lies inside a mapping made by `reserve`, and no
    /// reference to those bytes exists.
    pub(super) unsafe fn commit(ptr: *mut u8, len: usize) -> bool {
        // SAFETY: the caller's obligations; mprotect only changes access.
        unsafe {
            rustix::mm::mprotect(
                ptr.cast::<c_void>(),
                len,
                MprotectFlags::READ | MprotectFlags::WRITE,
            )
        }
        .is_ok()
    }

    /// # Safety
    ///
    /// `ptr..ptr + len` lies inside a mapping made by `reserve`, is
    /// committed, page aligned, and unreferenced.
    pub(super) unsafe fn decommit(ptr: *mut u8, len: usize) {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: the caller's obligations. MADV_DONTNEED on a private
            // anonymous mapping frees the pages; later reads see zeros.
            let done =
                unsafe { rustix::mm::madvise(ptr.cast(), len, rustix::mm::Advice::LinuxDontNeed) };
            debug_assert!(done.is_ok(), "madvise: {done:?}");
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            // SAFETY: the caller's obligations. MAP_FIXED replaces exactly
            // this range of our own mapping with fresh zero pages.
            let done = unsafe {
                rustix::mm::mmap_anonymous(
                    ptr.cast(),
                    len,
                    ProtFlags::READ | ProtFlags::WRITE,
                    map_flags() | MapFlags::FIXED,
                )
            };
            debug_assert!(done.is_ok(), "mmap: {done:?}");
        }
    }

    /// # Safety
    ///
    /// `ptr`/`len` came from `reserve`, and nothing references the mapping.
    pub(super) unsafe fn release(ptr: NonNull<u8>, len: usize) {
        // SAFETY: the caller's obligations.
        let done = unsafe { rustix::mm::munmap(ptr.as_ptr().cast(), len) };
        debug_assert!(done.is_ok(), "munmap: {done:?}");
    }
}

/// Elsewhere, and under Miri: one zeroed heap allocation.
#[cfg(any(not(unix), miri))]
mod os {
    use alloc::alloc::{Layout, alloc_zeroed, dealloc};
    use core::ptr::NonNull;

    fn layout(len: usize) -> Option<Layout> {
        Layout::from_size_align(len, 16).ok()
    }

    pub(super) fn reserve(len: usize) -> Option<NonNull<u8>> {
        let layout = layout(len)?;
        // SAFETY: `len > 0` (the caller handles empty regions).
        NonNull::new(unsafe { alloc_zeroed(layout) })
    }

    /// # Safety
    ///
    /// None beyond the caller's range checks: the heap bytes are always
    /// accessible.
    pub(super) unsafe fn commit(_ptr: *mut u8, _len: usize) -> bool {
        true
    }

    /// # Safety
    ///
    /// None: the bytes are left as they are (a heap allocation cannot give
    /// single pages back).
    pub(super) unsafe fn decommit(_ptr: *mut u8, _len: usize) {}

    /// # Safety
    ///
    /// `ptr`/`len` came from `reserve`, and nothing references the bytes.
    pub(super) unsafe fn release(ptr: NonNull<u8>, len: usize) {
        let layout = layout(len).expect("the layout was valid at reserve");
        // SAFETY: allocated in `reserve` with this layout (the caller's
        // obligation), and unreferenced.
        unsafe { dealloc(ptr.as_ptr(), layout) }
    }
}
