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
//!   (`alloc_aligned` up to a page). The first 256 bytes of a memory are
//!   never handed out.
//! - Any mix of sizes fits any memory that has the free bytes: small blocks
//!   of every size class share pages, large blocks take best-fit runs, and
//!   a 1-page memory holds blocks of 8, 64, 100, 4096 and 16384 bytes at
//!   once.
//! - Nothing a handle keeps is hidden from the others. A handle pins one
//!   span of small blocks per size class to allocate from, but from a
//!   quiescent state (no call in progress on other handles) `alloc`
//!   answers `OutOfMemory`, and `alloc_wait` sleeps, only when no span of
//!   the request's class has a free block, whichever handle pins it, and
//!   no aligned run of free granules (256 bytes each) holds the request,
//!   even at the maximum size (for a small block, the granules of a
//!   one-block span). A free granule is one that no live large block and
//!   no span covers; a span whose last block is freed goes back at once,
//!   so every span holds a live block. The memory grows only for a
//!   request that nothing free in it can serve as it is: before it grows
//!   for a new span, a handle takes a free block of its class from a span
//!   another handle pins, or a smaller span from the free granules.
//! - Room in transit is still room. While other calls run, `alloc`
//!   answers `OutOfMemory` only after a look that found no room as above
//!   and that no move of room between the pool and a span overlapped: a
//!   span another call is making (its granules out of the pool, its free
//!   blocks not yet published) or retiring (its blocks gone, its granules
//!   not yet back in the pool) is looked for again once it has arrived.
//!   So when room for a request exists at every instant of its call, as
//!   free granules or a span's free blocks, and the other calls only move
//!   it between the two (or take none of it), `alloc` does not answer
//!   `OutOfMemory`. It never waits for a free: it looks again (spinning,
//!   then yielding) only while another call's move visibly overlapped
//!   its last look, and each move is a few steps that wait for nothing
//!   but the pool's lock. What a look that walks the spans one by one can
//!   still miss: a block freed in a span it has passed while another call
//!   takes the last free block of a span it has yet to reach.
//! - `free` must name a live allocation's start with its exact length.
//!   A pointer that was never allocated answers `UnknownPointer`, never
//!   `DoubleFree`; one that was allocated and already freed answers
//!   `DoubleFree`, even once other allocations have taken its bytes
//!   (unless one of them now starts there: then it is that allocation's
//!   pointer); a wrong length answers `LengthMismatch`. A refused call
//!   changes nothing.
//! - `mut_mem` accepts any sub-range of one live allocation, including the
//!   empty range at its end (`ptr + len, 0`); anything else (an overflowing
//!   `ptr + len` included) is refused. Its slice is exclusive: no other
//!   handle can get bytes of that allocation, or free it, until this
//!   handle's next call, its `release()`, or its drop (`Busy`, never a
//!   wait).
//! - A request that can never fit, even in the empty memory at its
//!   maximum size (longer than `max_pages` × 64 KiB less the first 256
//!   bytes, or than what its alignment leaves), answers `LengthTooLarge`
//!   at once, from the waiting forms too: nothing waits for the
//!   impossible.
//! - When space runs out the memory grows, up to `max_pages`; then `alloc`
//!   answers `OutOfMemory`. Freed space is reused, and pages that become
//!   wholly free go back to the OS, but for the two newest (128 KiB per
//!   memory, kept committed for reuse without a page fault) and those
//!   under the at most 16 empty spans of small blocks the memory keeps for
//!   the handles that pin them (so a lone block's alloc and free do not
//!   make and retire a span each time).
//! - No header lives in the managed bytes: a 4 KiB block costs exactly
//!   4 KiB, so all but the first 4 KiB of a memory can hold 4 KiB blocks.
//!   Bookkeeping lives in the heap and grows with the pages in use: under
//!   10% of the bytes in use for blocks whose length fills their size
//!   class (8, 16, 24, … 512 bytes), 8-byte ones included, and for large
//!   blocks (a small block's state is a field of 2 to 8 bits).
//! - All size arithmetic is done in `u64` or checked, so 32-bit targets
//!   behave the same (within their address space).
//!
//! The allocator's design and invariants are described in the source of
//! its `allocator` module.
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

mod allocator;
mod block;
mod classes;
mod controller;
mod directory;
mod error;
mod fields;
mod memory;
mod pool;
mod region;
#[cfg(feature = "surrealism")]
pub mod surrealism;
mod traits;

pub use controller::{BytesGuard, LinearMemoryController, WaitPolicy};
pub use error::LinearMemoryError;
pub(crate) use memory::RawClaim;
pub use memory::{MAX_PAGES, SharedLinearMemory};
pub use traits::{AsyncMemoryController, MemoryController};

/// Bytes per page, as in WebAssembly.
pub const PAGE_SIZE: u32 = 64 * 1024;
