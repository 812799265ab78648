//! A concurrent generational slot arena for multithreaded pipelines:
//! lock-free slot allocation, a reader-writer lock per slot, and
//! generational tokens: a token whose value was freed never reaches a
//! value stored in its slot later (a slot whose generation would wrap is
//! retired, never reused).
//!
//! Pipeline stages pass small `Copy` [`MessageToken`]s to each other while
//! the messages themselves live in a memory manager, keyed by token. Any
//! thread can read, mutate or free a message through guards.
//!
//! The concurrent core is public as [`SlotArena<T>`]: a generational slab of
//! any `T` for users who would otherwise reach for sharded-slab, a slab
//! behind a mutex, or dashmap, with typed keys ([`new_key_type!`]), plain
//! `&mut` access for the only handle ([`SlotArena::exclusive`]), vacant
//! entries, and (feature `serde`) saving and loading with keys intact.
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use slotarena::{MemoryError, SlotArena};
//!
//! let arena = SlotArena::new(1024);
//! let token = arena.insert(String::from("frame")).unwrap();
//! arena.get_mut(token).unwrap().push_str(" #1");
//! assert_eq!(*arena.get(token).unwrap(), "frame #1");
//! arena.remove(token).unwrap();
//! assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
//! # }
//! ```
//!
//! ```
//! # #[cfg(feature = "alloc")] { // `HeapMemoryManager` and `Vec` need `alloc`
//! use slotarena::{HeaderStore, HeapMemoryManager, MemoryError, MemoryManager, Message, MessageHeader};
//!
//! let mut manager = HeapMemoryManager::new(16);
//! let token = manager.store(Message::new(MessageHeader::empty(), vec![1u8, 2, 3])).unwrap();
//! manager.read_mut(token).unwrap().payload_mut().push(4);
//! assert_eq!(manager.read(token).unwrap().payload(), &[1, 2, 3, 4]);
//! assert_eq!(manager.peek_header(token).unwrap().payload_size_bytes(), 3);
//! manager.free(token).unwrap();
//! assert_eq!(manager.read(token).err(), Some(MemoryError::NotAllocated));
//! # }
//! ```
//!
//! # Choosing a manager
//!
//! All managers implement [`MemoryManager`] and answer errors identically.
//!
//! - [`StaticMemoryManager<P, N>`]: `N` slots inline; `no_std`, no allocation.
//! - [`HeapMemoryManager<P>`]: capacity chosen at run time (feature `alloc`).
//! - [`ConcurrentMemoryManager<P>`]: a cheap `Clone` handle shared by threads,
//!   lock-free slot allocation, one lock per slot, optional growth, queue
//!   shares for fan-out, and blocking/async stores that wait for room
//!   (feature `std`). A thin layer over [`SlotArena`].
//!
//! Beside the managers, [`linear`] is a shared linear memory: one byte
//! space of 64 KiB pages handed out by `u32` offset, WASM-style, on the
//! same slot arena.
//!
//! # Safety and correctness
//!
//! `#![deny(unsafe_code)]` holds at the crate root; `unsafe` is allowed
//! only in the modules that need it, each block with its `SAFETY` argument
//! citing numbered invariants: the arena's slot, guards and core
//! (`arena/{slot,guards,owned,exclusive,mod}.rs`: the value storage behind
//! the lifecycle word), `sync` (parking, and loom's lazily initialised cell),
//! the linear memory's byte region (`linear/region.rs`), and guest memories
//! (`wasm/{bytes,engine,imports}.rs`: byte-wise atomic copies, wasmtime's
//! memory traits, slices while a guest is paused). The concurrent protocols are
//! model-checked with loom (`loom-tests/`), the unsafe core runs under
//! Miri, every manager and the linear memory are tested against reference
//! models with proptest and fuzzing, and stress tests run real threads.
//!
//! # Performance
//!
//! Slot allocation takes indexes from per-thread shards of ABA-tagged free
//! lists, so threads that store and free on their own never touch a shared
//! list head, and a thread that stores what another frees (a producer and
//! its consumer) takes those slots in batches; fresh slots are dealt to the shards in runs of adjacent
//! indexes, so threads working from their own shards rarely share a cache
//! line, without padding every slot (a slot costs 8 bytes beyond its value,
//! 16 at most with alignment). The README carries the benchmark
//! table against sharded-slab, `Mutex<slab::Slab>`, limen-core and dashmap
//! (and offset-allocator, talc and the system allocator for the linear
//! memory), made by `cargo run --release -p slotarena-bench --bin bench_report`.
//!
//! # Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | yes (via `std`) | `HeapMemoryManager` |
//! | `std` | yes | `SlotArena`, the concurrent manager, the `linear` memory, the waiting forms |
//! | `limen` | no | `compat::limen`: a memory manager for limen-core 0.1.0-alpha.1 graphs and runtimes |
//! | `surrealism` | no | surrealism-types 0.1.1's own `MemoryController`/`AsyncMemoryController` for `LinearMemoryController` |
//! | `wasmtime` | no | `wasm::{GuestMemories, GuestImports}`: a [`wasm::GuestMemory`] as a wasmtime 48 guest's memory (Unix), and imports through which the guest allocates from the host's allocator |
//!
//! With no features the crate is `no_std` and allocation-free.

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

#[cfg(feature = "std")]
pub mod arena;
#[cfg(feature = "limen")]
pub mod compat;
mod error;
mod key;
#[cfg(feature = "std")]
pub mod linear;
mod manager;
mod message;
mod payload;
#[cfg(feature = "std")]
mod sync;
mod token;
mod traits;
#[cfg(feature = "std")]
mod wait_queue;
#[cfg(feature = "std")]
pub mod wasm;

#[cfg(feature = "std")]
pub use arena::{InsertError, SlotArena, TakeError};
pub use error::MemoryError;
#[doc(hidden)]
pub use key::__fmt_key;
pub use key::Key;
#[cfg(feature = "std")]
pub use manager::ConcurrentMemoryManager;
#[cfg(feature = "alloc")]
pub use manager::HeapMemoryManager;
pub use manager::StaticMemoryManager;
pub use message::{MemoryClass, Message, MessageHeader, QosClass};
pub use payload::{BufferDescriptor, Payload};
/// serde, for the impls `new_key_type!` writes (feature `serde`).
#[cfg(feature = "serde")]
#[doc(hidden)]
pub use serde as __serde;
pub use token::MessageToken;
pub use traits::{HeaderStore, MemoryManager};

/// The README's examples run as doctests, so they cannot rot. They use
/// the concurrent manager, hence `std`.
#[cfg(all(doctest, feature = "std"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Internals that the loom models in `loom-tests/` drive directly. Exists
/// only in `--cfg loom` builds, so it never becomes API.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::arena::{FreeList, FreeListLinks, NIL};

    /// Moves the calling model thread to the next shard, as a thread that
    /// met another on its shard does, so a model can start two threads on
    /// one shard.
    pub fn rehome() {
        crate::sync::rehome();
    }
}

/// Guard types of [`ConcurrentMemoryManager`].
#[cfg(feature = "std")]
pub mod guards {
    pub use crate::manager::{HeaderGuard, ReadGuard, WriteGuard};
}
