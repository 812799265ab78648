//! The controller traits a WASM-style host programs against.

use alloc::boxed::Box;

use super::LinearMemoryError;

/// Allocation and access in a linear memory, for synchronous hosts.
pub trait MemoryController {
    /// Allocates `len` bytes and returns their offset: never 0, aligned to
    /// at least 8 bytes.
    ///
    /// # Errors
    ///
    /// `ZeroLength`, `LengthTooLarge`, `OutOfMemory`.
    fn alloc(&mut self, len: u32) -> Result<u32, LinearMemoryError>;

    /// Frees the allocation at `ptr`, which must be `len` bytes long.
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `LengthMismatch`, `DoubleFree`, `Busy`.
    fn free(&mut self, ptr: u32, len: u32) -> Result<(), LinearMemoryError>;

    /// Exclusive access to `len` bytes at `ptr`, inside one live allocation.
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `OutOfBounds`, `Busy`.
    fn mut_mem(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], LinearMemoryError>;
}

/// [`MemoryController`] for async hosts; object safe (`&mut dyn
/// AsyncMemoryController`) and `Send`.
#[async_trait::async_trait]
pub trait AsyncMemoryController: Send {
    /// As [`MemoryController::alloc`].
    ///
    /// # Errors
    ///
    /// `ZeroLength`, `LengthTooLarge`, `OutOfMemory`.
    async fn alloc(&mut self, len: u32) -> Result<u32, LinearMemoryError>;

    /// As [`MemoryController::free`].
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `LengthMismatch`, `DoubleFree`, `Busy`.
    async fn free(&mut self, ptr: u32, len: u32) -> Result<(), LinearMemoryError>;

    /// As [`MemoryController::mut_mem`].
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `OutOfBounds`, `Busy`.
    fn mut_mem(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], LinearMemoryError>;
}
