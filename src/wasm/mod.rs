//! Guest memories: a [`SharedLinearMemory`] whose bytes a guest (a
//! WebAssembly instance, or any foreign code) may write at any time, and
//! host handles that stay sound while it does.
//!
//! # The rule for host access
//!
//! A running guest can write any byte of its memory at any moment, so
//! **no `&[u8]` or `&mut [u8]` may point into guest memory unless the guest
//! is known to be paused**. Otherwise bytes move only by copies that stay
//! sound under a racing writer (byte-wise atomic copies, `atomic-memcpy`):
//! a racing guest can tear the value it races with, never the host.
//!
//! The types keep the rule:
//!
//! - A [`GuestMemory`] never hands out its [`SharedLinearMemory`] or a
//!   [`LinearMemoryController`], so
//!   `mut_mem`, `lock` and `BytesGuard` (which make references) cannot
//!   reach its bytes.
//! - A [`GuestController`] allocates, frees, and copies:
//!   [`write`](GuestController::write), [`read`](GuestController::read),
//!   [`transfer`](GuestController::transfer). Each copy holds the
//!   allocation's claim for its duration, so host handles never race each
//!   other and a concurrent `free` answers `Busy`.
//! - A slice is handed out only with proof that the guest is paused
//!   (feature `wasmtime`: `GuestController::paused`, which takes the
//!   store mutably; a store borrowed mutably runs no code on its
//!   non-shared memory). Shared memories (`(memory … shared)`) have no
//!   such proof: other threads may run the guest, so they get copies only.
//!
//! # Platforms
//!
//! The wasmtime binding (feature `wasmtime`) is for Unix hosts: the guard
//! region after a memory must be inaccessible, which the memory's mmap
//! reservation gives there and its heap fallback elsewhere cannot.
//!
//! # The guest's own bytes
//!
//! A guest keeps its stack and static data at the bottom of its memory, up
//! to its module's minimum size. When a memory is bound to a guest, those
//! bytes become one allocation that the guest holds (see
//! [`guest_bytes`](GuestMemory::guest_bytes)); host handles and guest
//! imports cannot free it, and it is freed when the guest's instance goes.
//! Everything above is the shared allocator's: a guest allocates there
//! through the host imports, and pages its `memory.grow` adds join the
//! same pool (guest and host growth are one growth).
//!
//! # Examples
//!
//! ```
//! use slotarena::wasm::GuestMemory;
//!
//! let memory = GuestMemory::new(1, 4).unwrap();
//! let mut host = memory.controller();
//! let ptr = host.transfer(b"for the guest").unwrap(); // copied, never referenced
//! let mut back = [0u8; 13];
//! host.read(ptr, &mut back).unwrap();
//! assert_eq!(&back, b"for the guest");
//! host.free(ptr, 13).unwrap();
//! assert_eq!(memory.allocated_bytes(), 0);
//! ```
//!
//! A guest memory's handles have no method that makes a reference:
//!
//! ```compile_fail,E0599
//! let memory = slotarena::wasm::GuestMemory::new(1, 4).unwrap();
//! let mut host = memory.controller();
//! let ptr = host.alloc(4).unwrap();
//! let bytes: &mut [u8] = host.mut_mem(ptr, 4).unwrap(); // no such method
//! ```

mod bytes;
#[cfg(all(feature = "wasmtime", unix))]
mod engine;
#[cfg(all(feature = "wasmtime", unix))]
mod imports;

use alloc::vec;
use alloc::vec::Vec;

#[cfg(all(feature = "wasmtime", unix))]
pub use engine::{GUARD_BYTES, GuestMemories, RESERVATION_BYTES};
#[cfg(all(feature = "wasmtime", unix))]
pub use imports::{GuestImports, IMPORT_MODULE, PausedBytes, error_code};

use crate::linear::{LinearMemoryController, LinearMemoryError, SharedLinearMemory};
use crate::sync::{Arc, AtomicU32, Ordering};

/// A memory that a guest may write at any time: a [`SharedLinearMemory`]
/// reached only through copies, or through slices while the guest is
/// paused (see the [module docs](self)). A cheap `Clone` handle.
#[derive(Clone, Debug)]
pub struct GuestMemory {
    memory: SharedLinearMemory,
    state: Arc<GuestState>,
}

/// What the handles of one guest memory share.
#[derive(Debug, Default)]
struct GuestState {
    /// End of the guest's own bytes (stack and static data): `0..guest_end`
    /// is not the allocator's to hand out or free. Written once, when the
    /// memory is bound (Release), before any guest or import can see it.
    guest_end: AtomicU32,
    /// 1 once bound to a wasmtime guest: a memory is bound at most once.
    #[cfg(all(feature = "wasmtime", unix))]
    bound: AtomicU32,
}

impl GuestMemory {
    /// A guest memory of `initial_pages` that may grow to `max_pages`, as
    /// [`SharedLinearMemory::new`]. For a wasmtime guest, make it with
    /// `GuestMemories::memory` instead, which reserves the guard region
    /// the engine's code needs.
    ///
    /// # Errors
    ///
    /// As [`SharedLinearMemory::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::wasm::GuestMemory::new(1, 4).unwrap();
    /// assert_eq!((memory.size_pages(), memory.max_pages()), (1, 4));
    /// ```
    pub fn new(initial_pages: u32, max_pages: u32) -> Result<GuestMemory, LinearMemoryError> {
        Ok(GuestMemory::from_shared(SharedLinearMemory::new(
            initial_pages,
            max_pages,
        )?))
    }

    fn from_shared(memory: SharedLinearMemory) -> GuestMemory {
        GuestMemory {
            memory,
            state: Arc::new(GuestState::default()),
        }
    }

    /// A new host handle on this memory.
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::wasm::GuestMemory::new(1, 4).unwrap();
    /// let ptr = memory.controller().alloc(16).unwrap();
    /// assert_eq!(memory.allocated_bytes(), 16);
    /// # memory.controller().free(ptr, 16).unwrap();
    /// ```
    pub fn controller(&self) -> GuestController {
        GuestController {
            inner: LinearMemoryController::new(&self.memory),
            memory: self.clone(),
        }
    }

    /// Grows by `delta_pages` and returns the old size in pages, as
    /// [`SharedLinearMemory::grow`]. A wasmtime guest's code sees the new
    /// pages at once; its `memory.size` counts them from its next
    /// `memory.grow` (wasmtime caches the size per instance).
    ///
    /// # Errors
    ///
    /// As [`SharedLinearMemory::grow`].
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::wasm::GuestMemory::new(1, 4).unwrap();
    /// assert_eq!(memory.grow(1), Ok(1));
    /// ```
    pub fn grow(&self, delta_pages: u32) -> Result<u32, LinearMemoryError> {
        self.memory.grow(delta_pages)
    }

    /// Current size in pages.
    pub fn size_pages(&self) -> u32 {
        self.memory.size_pages()
    }

    /// Maximum size in pages.
    pub fn max_pages(&self) -> u32 {
        self.memory.max_pages()
    }

    /// Bytes of live allocations, the guest's own bytes included while it
    /// is bound (see [`guest_bytes`](Self::guest_bytes)).
    pub fn allocated_bytes(&self) -> u64 {
        self.memory.allocated_bytes()
    }

    /// End of the guest's own bytes (its stack and static data, up to its
    /// module's minimum size), which no host handle or import can free:
    /// 0 until the memory is bound to a guest, and `u32::MAX` for a guest
    /// whose minimum is the whole 4 GiB (an end no `u32` holds).
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::wasm::GuestMemory::new(1, 4).unwrap();
    /// assert_eq!(memory.guest_bytes(), 0);
    /// ```
    pub fn guest_bytes(&self) -> u32 {
        // Acquire pairs with the Release in `set_guest_bytes`.
        self.state.guest_end.load(Ordering::Acquire)
    }

    #[cfg(all(feature = "wasmtime", unix))]
    fn set_guest_bytes(&self, end: u32) {
        self.state.guest_end.store(end, Ordering::Release);
    }

    /// Offset 0 of the memory, where a guest's code finds its bytes: the
    /// mapping never moves while any handle lives, and the bytes below
    /// [`size_pages`](Self::size_pages) are readable and writable. Getting
    /// the pointer is safe; what writes through it is the guest (foreign
    /// code, or a runtime that compiles it). Host code in Rust goes
    /// through a [`GuestController`] instead.
    pub fn base_ptr(&self) -> *mut u8 {
        self.memory.base_ptr()
    }

    /// The memory behind this handle, for the wasmtime binding only.
    #[cfg(all(feature = "wasmtime", unix))]
    fn shared(&self) -> &SharedLinearMemory {
        &self.memory
    }

    /// Whether `ptr` lies in the guest's own bytes (never freed by a host
    /// handle or an import).
    fn is_guest_own(&self, ptr: u32) -> bool {
        ptr < self.guest_bytes()
    }
}

/// A host handle on a [`GuestMemory`]: allocation, and copies in and out
/// that stay sound while a guest writes the same bytes. One per thread or
/// task, like [`LinearMemoryController`].
#[derive(Debug)]
pub struct GuestController {
    inner: LinearMemoryController,
    memory: GuestMemory,
}

impl GuestController {
    /// The memory this handle serves.
    pub fn memory(&self) -> &GuestMemory {
        &self.memory
    }

    /// Allocates `len` bytes (8-byte aligned), as
    /// [`LinearMemoryController::alloc`].
    ///
    /// # Errors
    ///
    /// `ZeroLength`, `LengthTooLarge`, `OutOfMemory`.
    pub fn alloc(&mut self, len: u32) -> Result<u32, LinearMemoryError> {
        self.inner.alloc(len)
    }

    /// Allocates `len` bytes aligned to `align` (a power of two up to a
    /// page).
    ///
    /// # Errors
    ///
    /// As [`alloc`](Self::alloc), and `BadAlignment`.
    pub fn alloc_aligned(&mut self, len: u32, align: u32) -> Result<u32, LinearMemoryError> {
        self.inner.alloc_aligned(len, align)
    }

    /// Frees the allocation at `ptr` of exactly `len` bytes, as
    /// [`LinearMemoryController::free`]. The guest's own bytes are not an
    /// allocation a host may free: `UnknownPointer`.
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `LengthMismatch`, `DoubleFree`, `Busy`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::LinearMemoryError;
    ///
    /// let memory = slotarena::wasm::GuestMemory::new(1, 4).unwrap();
    /// let mut host = memory.controller();
    /// let ptr = host.alloc(8).unwrap();
    /// host.free(ptr, 8).unwrap();
    /// assert_eq!(host.free(ptr, 8), Err(LinearMemoryError::DoubleFree));
    /// ```
    pub fn free(&mut self, ptr: u32, len: u32) -> Result<(), LinearMemoryError> {
        if self.memory.is_guest_own(ptr) {
            return Err(LinearMemoryError::UnknownPointer);
        }
        self.inner.free(ptr, len)
    }

    /// Copies `bytes` to `ptr..ptr + bytes.len()`, inside one live
    /// allocation, by byte-wise atomic stores: sound while a guest writes
    /// the same bytes (which may then hold a mix of both).
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `OutOfBounds` (a length past `u32` included),
    /// `Busy` (another handle is copying into or out of it right now).
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::wasm::GuestMemory::new(1, 4).unwrap();
    /// let mut host = memory.controller();
    /// let ptr = host.alloc(4).unwrap();
    /// host.write(ptr, b"abcd").unwrap();
    /// assert_eq!(host.read_vec(ptr, 4).unwrap(), b"abcd");
    /// # host.free(ptr, 4).unwrap();
    /// ```
    pub fn write(&mut self, ptr: u32, bytes: &[u8]) -> Result<(), LinearMemoryError> {
        let len = u32::try_from(bytes.len()).map_err(|_| LinearMemoryError::OutOfBounds)?;
        let claim = self.memory.memory.claim_raw(ptr, len)?;
        bytes::write_claimed(&claim, bytes);
        Ok(())
    }

    /// Copies `ptr..ptr + out.len()`, inside one live allocation, into
    /// `out` by byte-wise atomic loads: sound while a guest writes those
    /// bytes (the copy may then mix old and new bytes).
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write).
    pub fn read(&mut self, ptr: u32, out: &mut [u8]) -> Result<(), LinearMemoryError> {
        let len = u32::try_from(out.len()).map_err(|_| LinearMemoryError::OutOfBounds)?;
        let claim = self.memory.memory.claim_raw(ptr, len)?;
        bytes::read_claimed(&claim, out);
        Ok(())
    }

    /// [`read`](Self::read) into a new `Vec` of `len` bytes.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    pub fn read_vec(&mut self, ptr: u32, len: u32) -> Result<Vec<u8>, LinearMemoryError> {
        // The claim first: it checks `len` against the allocation, so a
        // length a guest made up answers an error before anything is
        // allocated (a `Vec` of `u32::MAX` bytes panics with "capacity
        // overflow" on 32-bit targets, and asks the OS for 4 GiB on others).
        let claim = self.memory.memory.claim_raw(ptr, len)?;
        let mut out = vec![0u8; claim.len()];
        bytes::read_claimed(&claim, &mut out);
        Ok(out)
    }

    /// Allocates `bytes.len()` bytes and copies `bytes` there; returns the
    /// pointer (free it with the same length).
    ///
    /// # Errors
    ///
    /// `ZeroLength`, `LengthTooLarge`, `OutOfMemory`.
    pub fn transfer(&mut self, bytes: &[u8]) -> Result<u32, LinearMemoryError> {
        let len = u32::try_from(bytes.len()).map_err(|_| LinearMemoryError::LengthTooLarge)?;
        let ptr = self.alloc(len)?;
        // Fails only if a guest freed the new block first (it can name any
        // pointer): then nothing of ours is left to free.
        self.write(ptr, bytes)?;
        Ok(ptr)
    }
}
