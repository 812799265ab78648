//! A shared linear memory: one contiguous byte space of 64 KiB pages,
//! handed out by `u32` offset the way a WASM host hands out regions of a
//! guest's memory, on the same slot machinery as the message managers.
//!
//! - [`SharedLinearMemory`]: the memory, a cheap `Clone` handle. Its
//!   maximum size is reserved up front, so growth never moves bytes.
//! - [`LinearMemoryController`]: a per-thread (or per-task) handle that
//!   implements [`MemoryController`] and [`AsyncMemoryController`].
//!
//! # Contract
//!
//! - `alloc` never returns 0 and aligns every block to at least 8 bytes
//!   (`alloc_aligned` up to a page).
//! - `free` must name a live allocation's start with its exact length;
//!   unknown pointers, wrong lengths and double frees are distinct errors
//!   and change nothing.
//! - `mut_mem` must stay inside one live allocation (an overflowing
//!   `ptr + len` included) and its slice is exclusive: no other handle can
//!   get bytes of that allocation, or free it, until this handle's next call
//!   or drop (`Busy`, never a wait).
//! - When space runs out the memory grows, up to `max_pages`; then `alloc`
//!   answers `OutOfMemory`. Freed space is reused.
//! - No header lives in the managed bytes: a 4 KiB block costs exactly
//!   4 KiB, so 4 KiB allocations can use all but the first block of a
//!   memory (offset 0 is never handed out).
//!
//! The allocator's design is described in the `blocks` module source.
//!
//! # Examples
//!
//! ```
//! use slotarena::linear::{LinearMemoryController, SharedLinearMemory};
//!
//! let memory = SharedLinearMemory::new(1, 8).unwrap();
//! let mut host = LinearMemoryController::new(&memory);
//! let ptr = host.transfer(b"a value for the guest").unwrap();
//! let mut guest = LinearMemoryController::new(&memory);
//! assert_eq!(guest.receive(ptr).unwrap(), b"a value for the guest");
//! assert_eq!(memory.allocated_bytes(), 0);
//! ```

mod blocks;
mod controller;
mod error;
mod memory;
mod pages;
mod traits;
mod v1_arena;

pub use controller::{BytesGuard, LinearMemoryController};
pub use error::LinearMemoryError;
pub use memory::{MAX_PAGES, SharedLinearMemory};
pub use traits::{AsyncMemoryController, MemoryController};

/// Bytes per page, as in WebAssembly.
pub const PAGE_SIZE: u32 = 64 * 1024;
