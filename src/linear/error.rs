//! [`LinearMemoryError`]: why a linear-memory call was refused.

/// Why a [`SharedLinearMemory`](super::SharedLinearMemory) or controller
/// call was refused. A refused call changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum LinearMemoryError {
    /// `alloc` was asked for zero bytes.
    #[error("zero-length allocation; ask for at least one byte")]
    ZeroLength,
    /// The length can never fit this memory, even empty at its maximum
    /// size: it is longer than the maximum size less the first 256 bytes
    /// (never handed out), or than what is left at its alignment. Every
    /// form answers it at once; the waiting ones never wait for it.
    #[error("length exceeds what this memory can ever hold; ask for less")]
    LengthTooLarge,
    /// An alignment that is not a power of two, or is above `PAGE_SIZE`.
    #[error("alignment must be a power of two no larger than the page size")]
    BadAlignment,
    /// No room, and the memory is already at its maximum size.
    #[error("out of memory: the memory is at its maximum size; free blocks or build it larger")]
    OutOfMemory,
    /// The pointer does not name a live allocation (for `free`: the start of
    /// one; for `mut_mem`: a byte inside one). Pointer 0 is never valid.
    #[error("pointer names no live allocation; use a pointer that alloc returned")]
    UnknownPointer,
    /// `free` named a live allocation with a length other than its own.
    #[error("length does not match the allocation; free with the exact length that was allocated")]
    LengthMismatch,
    /// `free` named the start of an allocation that was already freed
    /// (and that no live allocation starts at now), whatever has taken its
    /// bytes since.
    #[error("double free: the block is already free; drop the pointer")]
    DoubleFree,
    /// The range leaves the allocation that contains its start, or
    /// `ptr + len` overflows.
    #[error("range leaves its allocation; stay within the bytes that were allocated")]
    OutOfBounds,
    /// Another controller holds the allocation exclusively right now.
    #[error("allocation is held by another controller; retry after it makes its next call")]
    Busy,
    /// `new` got `initial_pages > max_pages` or `max_pages > 65536`.
    #[error("invalid page counts: need initial <= max <= 65536 pages")]
    InvalidPageCount,
    /// `grow` would pass the maximum size.
    #[error("cannot grow past the maximum size; the memory is unchanged")]
    GrowBeyondMaximum,
}
