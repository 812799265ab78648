//! The host imports a guest allocates through, and slices of guest memory
//! while the guest is known to be paused.
//!
//! Imports (module [`IMPORT_MODULE`], pointers and lengths as `i32` read as
//! `u32`):
//!
//! | import | returns |
//! |---|---|
//! | `alloc(len: i32, align: i32) -> i64` | the pointer (> 0), or `-code` |
//! | `free(ptr: i32, len: i32) -> i32` | 0, or `code` |
//!
//! with `code` from [`error_code`]. Whatever a guest passes, an import
//! answers a code: it never panics, never waits (another handle's claim
//! answers `Busy`), and a refused call changes nothing.

#![allow(unsafe_code)]

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use wasmtime::{AsContextMut, Caller, Extern, Linker};

use super::{GuestController, GuestMemory};
use crate::linear::{LinearMemoryError, RawClaim};

/// The module name of the guest imports.
pub const IMPORT_MODULE: &str = "slotarena";

/// The code an import answers for `error` (always > 0):
///
/// | code | error |
/// |---|---|
/// | 1 | `ZeroLength` |
/// | 2 | `LengthTooLarge` |
/// | 3 | `BadAlignment` |
/// | 4 | `OutOfMemory` |
/// | 5 | `UnknownPointer` |
/// | 6 | `LengthMismatch` |
/// | 7 | `DoubleFree` |
/// | 8 | `OutOfBounds` |
/// | 9 | `Busy` |
/// | 10 | any other |
///
/// # Examples
///
/// ```
/// use slotarena::linear::LinearMemoryError;
/// assert_eq!(slotarena::wasm::error_code(LinearMemoryError::DoubleFree), 7);
/// ```
pub fn error_code(error: LinearMemoryError) -> i32 {
    match error {
        LinearMemoryError::ZeroLength => 1,
        LinearMemoryError::LengthTooLarge => 2,
        LinearMemoryError::BadAlignment => 3,
        LinearMemoryError::OutOfMemory => 4,
        LinearMemoryError::UnknownPointer => 5,
        LinearMemoryError::LengthMismatch => 6,
        LinearMemoryError::DoubleFree => 7,
        LinearMemoryError::OutOfBounds => 8,
        LinearMemoryError::Busy => 9,
        _ => 10,
    }
}

/// What a store's data holds to serve the guest imports: a host handle on
/// the guest's memory (the guest allocates from the same allocator as
/// every host handle).
#[derive(Debug)]
pub struct GuestImports {
    controller: GuestController,
    /// The memory size the instance was last told of, in pages.
    synced_pages: u32,
}

impl GuestImports {
    /// Imports served on `memory`.
    pub fn new(memory: &GuestMemory) -> GuestImports {
        GuestImports {
            controller: memory.controller(),
            synced_pages: memory.size_pages(),
        }
    }

    /// The host handle the imports use (a host may use it too while it
    /// holds the store).
    pub fn controller(&mut self) -> &mut GuestController {
        &mut self.controller
    }

    /// Defines `alloc` and `free` in [`IMPORT_MODULE`] of `linker`, served
    /// by the `GuestImports` that `get` finds in the store's data.
    ///
    /// # Errors
    ///
    /// wasmtime's, if the names are defined already.
    pub fn add_to_linker<T: 'static>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut GuestImports,
    ) -> wasmtime::Result<()> {
        linker.func_wrap(
            IMPORT_MODULE,
            "alloc",
            move |mut caller: Caller<'_, T>, len: i32, align: i32| -> i64 {
                let imports = get(caller.data_mut());
                let answer = imports
                    .controller
                    .alloc_aligned(len as u32, (align as u32).max(1));
                let grown = imports.controller.memory().size_pages() != imports.synced_pages;
                if grown {
                    resync(&mut caller, get);
                }
                match answer {
                    Ok(ptr) => i64::from(ptr),
                    Err(error) => -i64::from(error_code(error)),
                }
            },
        )?;
        linker.func_wrap(
            IMPORT_MODULE,
            "free",
            move |mut caller: Caller<'_, T>, ptr: i32, len: i32| -> i32 {
                let imports = get(caller.data_mut());
                match imports.controller.free(ptr as u32, len as u32) {
                    Ok(()) => 0,
                    Err(error) => error_code(error),
                }
            },
        )?;
        Ok(())
    }
}

/// [`GuestMemories::sync_size`](super::GuestMemories::sync_size) from
/// inside an import.
fn resync<T: 'static>(caller: &mut Caller<'_, T>, get: fn(&mut T) -> &mut GuestImports) {
    let pages = get(caller.data_mut()).controller.memory().size_pages();
    // A growth by zero pages cannot fail; should it, the guest keeps its
    // old size and its bulk copies into the new pages trap, which harms
    // only the guest.
    let _ = match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => memory.grow(&mut *caller, 0).map(drop),
        Some(Extern::SharedMemory(memory)) => memory.grow(0).map(drop),
        _ => Ok(()),
    };
    get(caller.data_mut()).synced_pages = pages;
}

impl GuestController {
    /// `ptr..ptr + len` of one live allocation as a slice, while the guest
    /// is known to be paused: `store` is borrowed mutably for as long as
    /// the slice lives, so no code of the store runs on `memory` (a
    /// non-shared memory belongs to one store), and the allocation's claim
    /// keeps other host handles off it. `memory` is the guest's memory as
    /// wasmtime exports it (`instance.get_memory(&mut store, "memory")`),
    /// in `store` (inside an import, `store` is the `Caller`).
    ///
    /// # Errors
    ///
    /// `UnknownPointer` if `memory` is not this handle's guest memory, or
    /// as [`write`](Self::write).
    ///
    /// # Panics
    ///
    /// If `memory` belongs to another store (wasmtime's own check).
    pub fn paused<'a, S: AsContextMut>(
        &'a mut self,
        store: &'a mut S,
        memory: &wasmtime::Memory,
        ptr: u32,
        len: u32,
    ) -> Result<PausedBytes<'a>, LinearMemoryError> {
        if memory.data_ptr(&*store) != self.memory.shared().base_ptr() {
            return Err(LinearMemoryError::UnknownPointer);
        }
        let claim = self.memory.shared().claim_raw(ptr, len)?;
        Ok(PausedBytes {
            claim,
            _store: PhantomData,
        })
    }
}

/// Guest bytes as a slice while the guest is paused; made by
/// [`GuestController::paused`]. Holds the allocation's claim and the
/// store's borrow until dropped.
#[must_use = "the slice is the only use of the claim"]
pub struct PausedBytes<'a> {
    claim: RawClaim<'a>,
    /// The store's mutable borrow: no guest code runs on the memory.
    _store: PhantomData<&'a mut ()>,
}

impl core::fmt::Debug for PausedBytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PausedBytes")
            .field("len", &self.claim.len())
            .finish_non_exhaustive()
    }
}

impl Deref for PausedBytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the claim covers these committed bytes (`RawClaim::ptr`)
        // and keeps every other host handle off them; the guest is paused
        // for `'a` (the store is borrowed mutably, and the memory is not
        // shared: `paused` checked it is the store's own memory), so
        // nothing writes them while the slice lives.
        unsafe { core::slice::from_raw_parts(self.claim.ptr(), self.claim.len()) }
    }
}

impl DerefMut for PausedBytes<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`; `&mut self` makes the slice unique.
        unsafe { core::slice::from_raw_parts_mut(self.claim.ptr(), self.claim.len()) }
    }
}
