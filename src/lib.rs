//! A lock-free concurrent slot arena for multithreaded pipelines.
//!
//! Pipeline stages pass small `Copy` [`MessageToken`]s to each other while
//! the messages themselves live in a memory manager, keyed by token. Any
//! thread can read, mutate or free a message through guards, and a token
//! whose message was freed can never reach the message stored after it.
//!
//! ```
//! use slotarena::{HeaderStore, HeapMemoryManager, MemoryError, MemoryManager, Message, MessageHeader};
//!
//! let mut manager = HeapMemoryManager::new(16);
//! let token = manager.store(Message::new(MessageHeader::empty(), vec![1u8, 2, 3])).unwrap();
//! manager.read_mut(token).unwrap().payload_mut().push(4);
//! assert_eq!(manager.read(token).unwrap().payload(), &[1, 2, 3, 4]);
//! assert_eq!(manager.peek_header(token).unwrap().payload_size_bytes(), 3);
//! manager.free(token).unwrap();
//! assert_eq!(manager.read(token).err(), Some(MemoryError::NotAllocated));
//! ```
//!
//! # Choosing a manager
//!
//! All managers implement [`MemoryManager`] and answer errors identically.
//!
//! - [`StaticMemoryManager<P, N>`]: `N` slots inline; `no_std`, no allocation.
//! - [`HeapMemoryManager<P>`]: capacity chosen at run time (feature `alloc`).
//! - [`ConcurrentMemoryManager<P>`]: a cheap `Clone` handle shared by threads,
//!   lock-free slot allocation, one lock per slot, optional growth
//!   (feature `std`).
//!
//! Beside the managers, [`linear`] is a shared linear memory: one byte
//! space of 64 KiB pages handed out by `u32` offset, WASM-style, on the
//! same slot arena.
//!
//! # Safety and correctness
//!
//! The only `unsafe` code lives in `sync` (loom's lazily initialised cell),
//! the arena's slots and guards, and `linear/region.rs` (reserving the
//! memory's address space and handing out bytes of it), each
//! block with its `SAFETY` argument; `#![deny(unsafe_code)]` holds
//! everywhere else. The concurrent protocols are model-checked with loom
//! (`loom-tests/`), every manager and the linear memory are tested against
//! reference models with proptest, and stress tests run real threads.
//!
//! # Performance
//!
//! Slot allocation takes indexes from per-thread shards of ABA-tagged free
//! lists, so threads that store and free on their own never touch a shared
//! cache line, and slots are cache-line aligned so neighbours used by
//! different threads do not share one. The README carries the benchmark
//! table against sharded-slab, `Mutex<slab::Slab>`, limen-core and dashmap
//! (and offset-allocator, talc and the system allocator for the linear
//! memory), made by `cargo run --release --example bench_report`.
//!
//! # Cargo features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `alloc` | yes (via `std`) | `HeapMemoryManager` |
//! | `std` | yes | the concurrent arena and manager, `linear` memory |
//!
//! With no features the crate is `no_std` and allocation-free.

#![no_std]
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

#[cfg(feature = "std")]
pub mod arena;
mod error;
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
pub use arena::{InsertError, SlotArena};
pub use error::MemoryError;
#[cfg(feature = "std")]
pub use manager::ConcurrentMemoryManager;
#[cfg(feature = "alloc")]
pub use manager::HeapMemoryManager;
pub use manager::StaticMemoryManager;
pub use message::{MemoryClass, Message, MessageHeader, QosClass};
pub use payload::{BufferDescriptor, Payload};
pub use token::MessageToken;
pub use traits::{HeaderStore, MemoryManager};

/// The README's examples run as doctests, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Internals that the loom models in `loom-tests/` drive directly. Exists
/// only in `--cfg loom` builds, so it never becomes API.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::arena::{FreeList, FreeListLinks, NIL};
}

/// Guard types of [`ConcurrentMemoryManager`].
#[cfg(feature = "std")]
pub mod guards {
    pub use crate::manager::{HeaderGuard, ReadGuard, WriteGuard};
}
