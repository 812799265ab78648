//! The wasmtime binding: a `MemoryCreator` whose memories are
//! [`GuestMemory`]s, each tied to the one the embedder named when
//! instantiating.
//!
//! wasmtime asks its creator for every memory a module defines (not for
//! `Memory::new`/`SharedMemory::new` on the host, which bypass it). One
//! creator serves the whole engine, so it cannot tell from its arguments
//! which memory the embedder meant; [`GuestMemories::instantiate`] names it
//! in a thread-local slot for the length of the (synchronous)
//! instantiation, and the creator takes it from there. A module-defined
//! memory with nothing named fails to instantiate with a message saying so.
//!
//! Invariants the JIT code relies on (wasmtime's `LinearMemory` contract):
//! - W1: the mapping starts page aligned and never moves: it is the
//!   `SharedLinearMemory`'s region (R1), kept alive by the handle inside
//!   the `LinearMemory` for as long as wasmtime holds it.
//! - W2: the bytes below `byte_size` are mapped read-write and zero-filled
//!   when bound (a fresh memory: nothing was ever handed out); from
//!   `byte_size` to the end of the reservation and its guard the mapping is
//!   inaccessible, so an out-of-bounds access traps instead of reaching
//!   anything else. The mapping covers the largest of the reservation, the
//!   module's maximum and minimum, plus the guard (checked at bind time).
//! - W3: `byte_size` never shrinks and never passes `byte_capacity`, the
//!   memory's maximum, which the module's own maximum bounds.

#![allow(unsafe_code)]

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use core::cell::RefCell;
use std::thread_local;

use wasmtime::{
    AsContextMut, Config, Extern, Instance, LinearMemory, Linker, MemoryCreator, MemoryType,
    Module, Store,
};

use super::GuestMemory;
use crate::linear::{LinearMemoryController, LinearMemoryError, PAGE_SIZE, SharedLinearMemory};
use crate::sync::{Arc, Ordering};

/// Address space every memory of [`GuestMemories::configure`]d engines
/// reserves: the whole 32-bit space, so the engine's code needs no bounds
/// checks (wasmtime's default on 64-bit hosts).
pub const RESERVATION_BYTES: u64 = 1 << 32;

/// Inaccessible bytes after the reservation (wasmtime's default guard).
pub const GUARD_BYTES: u64 = 32 << 20;

/// Bytes below this offset are never handed out by the allocator (its
/// first granule), so a guest's own bytes start as one allocation here.
const FIRST_HANDED_OUT: u32 = 256;

thread_local! {
    /// The memory the current instantiation on this thread should get, and
    /// the creator it is meant for.
    static PENDING: RefCell<Option<(usize, GuestMemory)>> = const { RefCell::new(None) };
}

/// The memory creator of an engine whose guests run on [`GuestMemory`]s.
/// A cheap `Clone` handle.
///
/// # Examples
///
/// ```
/// use slotarena::wasm::GuestMemories;
/// use wasmtime::{Config, Engine, Linker, Module, Store};
///
/// let memories = GuestMemories::new();
/// let engine = Engine::new(memories.configure(&mut Config::new())).unwrap();
/// let wasm = wat::parse_str(r#"(module (memory (export "memory") 1)
///     (func (export "grow") (result i32) (memory.grow (i32.const 1))))"#).unwrap();
/// let module = Module::new(&engine, &wasm).unwrap();
/// let memory = memories.memory(1, 4).unwrap();
/// let mut store = Store::new(&engine, ());
/// let instance = memories.instantiate(&memory, &mut store, &Linker::new(&engine), &module).unwrap();
/// let grow = instance.get_typed_func::<(), i32>(&mut store, "grow").unwrap();
/// assert_eq!(grow.call(&mut store, ()).unwrap(), 1); // the old size
/// assert_eq!(memory.size_pages(), 2); // one growth, seen by the host
/// ```
#[derive(Clone)]
pub struct GuestMemories {
    creator: Arc<Creator>,
}

impl core::fmt::Debug for GuestMemories {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GuestMemories").finish_non_exhaustive()
    }
}

impl Default for GuestMemories {
    fn default() -> Self {
        GuestMemories::new()
    }
}

impl GuestMemories {
    /// A creator; hand it to an engine with [`configure`](Self::configure).
    pub fn new() -> GuestMemories {
        GuestMemories {
            creator: Arc::new(Creator { _unique: 0 }),
        }
    }

    /// Sets `config` up for guests on [`GuestMemory`]s: this creator for
    /// module-defined memories, the reservation and guard the memories
    /// made by [`memory`](Self::memory) have, and no copy-on-write
    /// initialisation (which wasmtime supports only for its own mappings,
    /// wasmtime issue 10740). Set nothing of this on `config` afterwards.
    pub fn configure<'c>(&self, config: &'c mut Config) -> &'c mut Config {
        let creator: Arc<dyn MemoryCreator> = self.creator.clone();
        config
            .with_host_memory(creator)
            .memory_init_cow(false)
            .memory_reservation(RESERVATION_BYTES)
            .memory_guard_size(GUARD_BYTES)
    }

    /// A guest memory of `initial_pages` that may grow to `max_pages`, in a
    /// mapping with this engine's reservation and guard. Bind it to a guest
    /// with [`instantiate`](Self::instantiate); it grows to the module's
    /// minimum size then.
    ///
    /// # Errors
    ///
    /// As [`SharedLinearMemory::new`].
    pub fn memory(
        &self,
        initial_pages: u32,
        max_pages: u32,
    ) -> Result<GuestMemory, LinearMemoryError> {
        let memory = SharedLinearMemory::with_mapping(
            initial_pages,
            max_pages,
            RESERVATION_BYTES + GUARD_BYTES,
        )?;
        Ok(GuestMemory::from_shared(memory))
    }

    /// Instantiates `module` in `store` with `memory` as the memory the
    /// module defines. The store owns the binding from then on; the bytes
    /// stay mapped while any handle of `memory` lives.
    ///
    /// # Errors
    ///
    /// wasmtime's instantiation errors, and these, with a message: the
    /// module defines no memory (or more than one), `memory` was bound
    /// before or has been allocated from, it was not made by
    /// [`memory`](Self::memory) of an engine configured as above, the
    /// module's minimum passes the memory's maximum, or the module's
    /// maximum is below the memory's (the host could grow the memory past
    /// what the module allows).
    pub fn instantiate<T: 'static>(
        &self,
        memory: &GuestMemory,
        store: &mut Store<T>,
        linker: &Linker<T>,
        module: &Module,
    ) -> wasmtime::Result<Instance> {
        let id = self.id();
        if PENDING.with(|pending| pending.borrow().is_some()) {
            wasmtime::bail!("a guest memory is already being bound on this thread");
        }
        PENDING.with(|pending| *pending.borrow_mut() = Some((id, memory.clone())));
        let named = Named;
        let instance = linker.instantiate(&mut *store, module);
        let unused = named.take();
        let instance = instance?;
        if unused.is_some() {
            wasmtime::bail!("the module defines no memory: import none, define one");
        }
        Ok(instance)
    }

    /// Tells `instance` the memory's current size, after host handles grew
    /// it: the guest's code sees grown pages at once, but wasmtime checks
    /// `memory.size` and bulk copies (`memory.copy`, `memory.fill`) against
    /// the size it last saw, which only a growth through wasmtime updates.
    /// Call it before passing the guest a pointer that a host handle may
    /// have grown the memory for. The guest imports do it themselves. Needs the
    /// memory exported as `"memory"`; without that export it does nothing.
    ///
    /// # Errors
    ///
    /// wasmtime's, from a growth by zero pages (none is expected).
    pub fn sync_size(mut store: impl AsContextMut, instance: &Instance) -> wasmtime::Result<()> {
        match instance.get_export(&mut store, "memory") {
            Some(Extern::Memory(memory)) => memory.grow(&mut store, 0).map(drop),
            Some(Extern::SharedMemory(memory)) => memory.grow(0).map(drop),
            _ => Ok(()),
        }
    }

    fn id(&self) -> usize {
        Arc::as_ptr(&self.creator) as usize
    }
}

/// The name in [`PENDING`] for one instantiation: taken back when done,
/// or on drop if the instantiation panicked, so no later one on this
/// thread finds it.
struct Named;

impl Named {
    /// The memory, if the creator left it unused.
    fn take(self) -> Option<(usize, GuestMemory)> {
        PENDING.with(|pending| pending.borrow_mut().take())
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        PENDING.with(|pending| pending.borrow_mut().take());
    }
}

/// The `MemoryCreator` itself; its address tells creators apart.
struct Creator {
    /// Keeps the type non-zero-sized, so two creators never share an address.
    _unique: u8,
}

// SAFETY: every memory this creator returns is a `Bound`, which keeps
// W1–W3 (module docs): a page-aligned mapping that never moves, mapped
// read-write and zeroed below its size, inaccessible from there to the end
// of the reservation wasmtime asked for plus its guard, checked below
// before a memory is handed over. Host handles write its bytes only by
// copies that are sound under the guest's racing writes, or through
// slices while the store is borrowed mutably (`super` module docs).
unsafe impl MemoryCreator for Creator {
    fn new_memory(
        &self,
        ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let me = self as *const Creator as usize;
        let memory = PENDING
            .with(|pending| {
                let mut pending = pending.borrow_mut();
                match pending.as_ref() {
                    Some((id, _)) if *id == me => pending.take().map(|(_, memory)| memory),
                    _ => None,
                }
            })
            .ok_or_else(|| {
                "no guest memory named for this memory: instantiate with \
                 GuestMemories::instantiate, once per module-defined memory"
                    .to_string()
            })?;
        bind(
            &memory,
            &ty,
            minimum,
            maximum,
            reserved_size_in_bytes,
            guard_size_in_bytes,
        )
        .map(|bound| Box::new(bound) as Box<dyn LinearMemory>)
    }
}

/// Checks that `memory` can be the memory wasmtime asks for, then grows it
/// to the module's minimum and gives the guest its own bytes.
fn bind(
    memory: &GuestMemory,
    ty: &MemoryType,
    minimum: usize,
    maximum: Option<usize>,
    reserved: Option<usize>,
    guard: usize,
) -> Result<Bound, String> {
    let page = u64::from(PAGE_SIZE);
    if ty.is_64() || ty.page_size() != page {
        return Err("only 32-bit memories of 64 KiB pages can be guest memories".to_string());
    }
    let shared = memory.shared();
    let to_u64 = |n: usize| n as u64; // usize is at most 64 bits wide
    let needed = to_u64(reserved.unwrap_or(0))
        .max(maximum.map_or(0, to_u64))
        .max(to_u64(minimum))
        .saturating_add(to_u64(guard));
    if shared.mapping_bytes() < needed {
        return Err(format!(
            "the guest memory maps {} bytes, the engine needs {needed} (reservation + guard): \
             make it with GuestMemories::memory on an engine set up by GuestMemories::configure",
            shared.mapping_bytes()
        ));
    }
    let max_bytes = u64::from(shared.max_pages()) * page;
    if let Some(module_max) = maximum
        && to_u64(module_max) < max_bytes
    {
        return Err(format!(
            "the module's maximum ({module_max} bytes) is below the guest memory's ({max_bytes}): \
             make the memory with at most the module's maximum pages"
        ));
    }
    let min_pages = u32::try_from(to_u64(minimum) / page)
        .ok()
        .filter(|&pages| pages <= shared.max_pages())
        .ok_or_else(|| {
            format!("the module's minimum ({minimum} bytes) passes the memory's maximum")
        })?;
    // AcqRel: of two bindings racing, exactly one sees 0.
    if memory.state.bound.swap(1, Ordering::AcqRel) == 1 {
        return Err("this guest memory is bound to a guest already".to_string());
    }
    if shared.high_water_bytes() != 0 {
        return Err(
            "the guest memory was allocated from before its guest came: bind it fresh".to_string(),
        );
    }
    shared
        .grow_to(min_pages)
        .map_err(|error| format!("growing to the module's minimum: {error}"))?;
    let guest_end = u64::from(min_pages) * page;
    let own = if guest_end > u64::from(FIRST_HANDED_OUT) {
        let len = (guest_end - u64::from(FIRST_HANDED_OUT)) as u32; // below 4 GiB
        let mut controller = LinearMemoryController::new(shared);
        let ptr = controller
            .alloc(len)
            .map_err(|error| format!("reserving the guest's own bytes: {error}"))?;
        if ptr != FIRST_HANDED_OUT {
            // Cannot happen on a memory nothing was handed out from (checked
            // above); should it, the block goes back and binding fails.
            let _ = controller.free(ptr, len);
            return Err(format!(
                "the guest's own bytes landed at {ptr}, not {FIRST_HANDED_OUT}"
            ));
        }
        // A minimum of the whole 4 GiB ends at 2^32, past every `u32`:
        // `u32::MAX` still lies above every start a block can have
        // (`as u32` made it 0, and the guest's bytes anybody's to free).
        memory.set_guest_bytes(u32::try_from(guest_end).unwrap_or(u32::MAX));
        Some(len)
    } else {
        None
    };
    Ok(Bound {
        memory: memory.clone(),
        own,
    })
}

/// A guest memory as wasmtime's `LinearMemory`.
struct Bound {
    memory: GuestMemory,
    /// Length of the guest's own bytes' allocation at `FIRST_HANDED_OUT`.
    own: Option<u32>,
}

// SAFETY: W1–W3 (module docs): `as_ptr` is the region's base, page aligned
// (an mmap) and fixed for the mapping's life, which this handle extends;
// `byte_size` is the committed size, read-write below and inaccessible
// above up to the checked reservation and guard; growth commits pages in
// place and never passes `byte_capacity`.
unsafe impl LinearMemory for Bound {
    fn byte_size(&self) -> usize {
        (u64::from(self.memory.size_pages()) * u64::from(PAGE_SIZE)) as usize
    }

    fn byte_capacity(&self) -> usize {
        (u64::from(self.memory.max_pages()) * u64::from(PAGE_SIZE)) as usize
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        let pages = u32::try_from((new_size as u64).div_ceil(u64::from(PAGE_SIZE)))
            .map_err(|_| wasmtime::format_err!("memory growth past 4 GiB"))?;
        self.memory
            .shared()
            .grow_to(pages)
            .map(drop)
            .map_err(|error| wasmtime::format_err!("{error}"))
    }

    fn as_ptr(&self) -> *mut u8 {
        self.memory.shared().base_ptr()
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        // The instance is gone: its own bytes are the allocator's again.
        self.memory.set_guest_bytes(0);
        if let Some(len) = self.own {
            let mut controller = LinearMemoryController::new(self.memory.shared());
            // A host copy into these bytes may hold their claim right now:
            // a plain `free` answered `Busy` and left them allocated for
            // good. Copies end (a slice of them needs this store, now
            // gone), so this waits for the one in flight. Fails only if a
            // host freed the block in the instant since the line above;
            // then it is free already.
            let _ = controller.free_wait(FIRST_HANDED_OUT, len);
        }
    }
}
