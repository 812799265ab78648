//! [`LinearMemoryController`]: one thread's or task's handle on a memory.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::future::Future;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;

use super::allocator::{Allocator, SpanCache};
use super::region::Claim;
use super::{AsyncMemoryController, LinearMemoryError, MemoryController, SharedLinearMemory};
use crate::wait_queue::{Look, Patience};
use core::time::Duration;

/// Bytes of the `[u32 len][bytes]` prefix that `transfer`/`receive` use.
const PREFIX: u32 = 4;

/// A handle that allocates in, frees in and hands out bytes of a
/// [`SharedLinearMemory`]. Make one per thread or task.
///
/// [`mut_mem`](MemoryController::mut_mem) claims the allocation it reads
/// from and keeps the claim until this handle's next call, its
/// [`release`](Self::release), or its drop; meanwhile any other handle
/// asking for bytes of that allocation, or freeing it, gets
/// [`LinearMemoryError::Busy`] at once. Every call that takes `&mut self`
/// releases it first, a refused one too; an async form releases it when
/// called, before its future is first polled.
///
/// A handle also keeps one partly used span per size class to allocate
/// small blocks from without contention; other handles take free blocks
/// from it before the memory grows, and dropping the handle hands it back.
/// A span whose last block is freed goes back to the memory's pool, but
/// for at most 16 per memory that stay with the handles that pin them (so
/// a lone block's alloc and free do not make and retire a span each
/// time; see [`SharedLinearMemory`] for what stays resident).
///
/// # Examples
///
/// ```
/// use slotarena::linear::{LinearMemoryController, LinearMemoryError, SharedLinearMemory};
///
/// let memory = SharedLinearMemory::new(1, 16).unwrap();
/// let mut guest = LinearMemoryController::new(&memory);
/// let mut host = LinearMemoryController::new(&memory);
///
/// let ptr = guest.alloc(100).unwrap();
/// guest.mut_mem(ptr, 5).unwrap().copy_from_slice(b"hello");
/// assert_eq!(host.mut_mem(ptr, 5).err(), Some(LinearMemoryError::Busy));
/// guest.free(ptr, 100).unwrap(); // the guest's next call releases its claim
/// assert_eq!(host.mut_mem(ptr, 5).err(), Some(LinearMemoryError::UnknownPointer));
/// ```
pub struct LinearMemoryController {
    memory: SharedLinearMemory,
    held: Option<Claim>,
    spans: SpanCache,
    policy: WaitPolicy,
}

/// What a [`LinearMemoryController`]'s [`AsyncMemoryController`] `alloc`
/// and `free` do when they cannot finish at once (and, with the
/// `surrealism` feature, those of surrealism-types' `AsyncMemoryController`
/// too, so its `AsyncTransfer` waits for room under [`WaitPolicy::Wait`]).
///
/// # Examples
///
/// ```
/// use slotarena::linear::{SharedLinearMemory, WaitPolicy};
///
/// let memory = SharedLinearMemory::new(1, 1).unwrap();
/// let controller = memory.controller().with_wait_policy(WaitPolicy::Wait);
/// assert_eq!(controller.wait_policy(), WaitPolicy::Wait);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitPolicy {
    /// Answer at once: `OutOfMemory` when the memory is full at its
    /// maximum, `Busy` when another handle claims the allocation (the
    /// surrealism-style behaviour, and the default).
    #[default]
    Immediate,
    /// Await room: `alloc` waits for free bytes at the maximum size, `free`
    /// waits for another handle's claim to end.
    Wait,
}

impl core::fmt::Debug for LinearMemoryController {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinearMemoryController")
            .field("memory", &self.memory)
            .field("held", &self.held)
            .finish()
    }
}

impl LinearMemoryController {
    /// A handle on `memory`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{LinearMemoryController, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(1, 4).unwrap();
    /// let mut controller = LinearMemoryController::new(&memory);
    /// let ptr = controller.alloc(8).unwrap();
    /// assert_eq!(memory.allocated_bytes(), 8);
    /// controller.free(ptr, 8).unwrap();
    /// ```
    pub fn new(memory: &SharedLinearMemory) -> LinearMemoryController {
        LinearMemoryController {
            memory: memory.clone(),
            held: None,
            spans: SpanCache::new(&memory.allocator),
            policy: WaitPolicy::Immediate,
        }
    }

    /// This handle with `policy` for its [`AsyncMemoryController`] methods.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{SharedLinearMemory, WaitPolicy};
    ///
    /// let memory = SharedLinearMemory::new(1, 1).unwrap();
    /// let controller = memory.controller().with_wait_policy(WaitPolicy::Wait);
    /// assert_eq!(controller.wait_policy(), WaitPolicy::Wait);
    /// ```
    pub fn with_wait_policy(mut self, policy: WaitPolicy) -> LinearMemoryController {
        self.release();
        self.policy = policy;
        self
    }

    /// Sets the policy of this handle's [`AsyncMemoryController`] methods
    /// (and releases the claim left by the last `mut_mem`, as every call
    /// does).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{SharedLinearMemory, WaitPolicy};
    ///
    /// let memory = SharedLinearMemory::new(1, 1).unwrap();
    /// let mut controller = memory.controller();
    /// assert_eq!(controller.wait_policy(), WaitPolicy::Immediate);
    /// controller.set_wait_policy(WaitPolicy::Wait);
    /// ```
    pub fn set_wait_policy(&mut self, policy: WaitPolicy) {
        self.release();
        self.policy = policy;
    }

    /// The policy of this handle's [`AsyncMemoryController`] methods.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{SharedLinearMemory, WaitPolicy};
    ///
    /// let memory = SharedLinearMemory::new(1, 1).unwrap();
    /// assert_eq!(memory.controller().wait_policy(), WaitPolicy::Immediate); // the default
    /// ```
    pub fn wait_policy(&self) -> WaitPolicy {
        self.policy
    }

    /// [`alloc`](Self::alloc), waiting for free bytes when the memory is
    /// out of them at its maximum size: the thread sleeps until a free (by
    /// any handle) makes room. Every free wakes every waiter to look again.
    ///
    /// # Errors
    ///
    /// As `alloc`, except `OutOfMemory`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::thread;
    /// use slotarena::linear::SharedLinearMemory;
    ///
    /// let memory = SharedLinearMemory::new(1, 1).unwrap();
    /// let mut first = memory.controller();
    /// let big = first.alloc(40_000).unwrap();
    /// let waiter = {
    ///     let memory = memory.clone();
    ///     thread::spawn(move || memory.controller().alloc_wait(40_000).unwrap())
    /// };
    /// first.free(big, 40_000).unwrap(); // wakes the waiter
    /// waiter.join().unwrap();
    /// ```
    pub fn alloc_wait(&mut self, len: u32) -> Result<u32, LinearMemoryError> {
        self.release();
        self.memory
            .allocator
            .alloc_wait(&mut self.spans, len, 8, Patience::Forever)
    }

    /// [`alloc_wait`](Self::alloc_wait) for at most `timeout`.
    ///
    /// # Errors
    ///
    /// As `alloc`: `OutOfMemory` when no room came in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use slotarena::linear::{LinearMemoryError, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(1, 1).unwrap();
    /// let mut controller = memory.controller();
    /// controller.alloc(40_000).unwrap();
    /// let late = controller.alloc_timeout(40_000, Duration::from_millis(5));
    /// assert_eq!(late, Err(LinearMemoryError::OutOfMemory));
    /// ```
    pub fn alloc_timeout(&mut self, len: u32, timeout: Duration) -> Result<u32, LinearMemoryError> {
        self.release();
        self.memory
            .allocator
            .alloc_wait(&mut self.spans, len, 8, Patience::timeout(timeout))
    }

    /// [`alloc_wait`](Self::alloc_wait) as a future, for any async runtime.
    /// Cancel-safe: nothing is allocated unless it completes. The claim
    /// left by the last `mut_mem` ends when this is called, not when the
    /// future is first polled.
    ///
    /// # Errors
    ///
    /// As [`alloc_wait`](Self::alloc_wait).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 1).unwrap();
    /// let ptr = memory.controller().alloc_async(64).await.unwrap();
    /// assert!(ptr > 0);
    /// # });
    /// ```
    pub fn alloc_async(
        &mut self,
        len: u32,
    ) -> impl Future<Output = Result<u32, LinearMemoryError>> + Send + '_ {
        self.release();
        let (allocator, spans) = (&*self.memory.allocator, &mut self.spans);
        allocator.alloc_async(spans, len, 8)
    }

    /// [`lock`](Self::lock), waiting while another handle claims the
    /// allocation: the thread sleeps until that claim ends.
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `OutOfBounds`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::thread;
    /// use slotarena::linear::SharedLinearMemory;
    ///
    /// let memory = SharedLinearMemory::new(1, 1).unwrap();
    /// let mut guest = memory.controller();
    /// let ptr = guest.alloc(8).unwrap();
    /// guest.mut_mem(ptr, 8).unwrap().fill(7); // the guest keeps its claim
    /// let host = {
    ///     let memory = memory.clone();
    ///     thread::spawn(move || memory.controller().lock_wait(ptr, 8).unwrap()[0])
    /// };
    /// guest.release(); // wakes the host
    /// assert_eq!(host.join().unwrap(), 7);
    /// ```
    pub fn lock_wait(&mut self, ptr: u32, len: u32) -> Result<BytesGuard<'_>, LinearMemoryError> {
        self.release();
        let allocator = self.allocator();
        let claim = allocator.wait_for_claims(Patience::Forever, |_| allocator.claim(ptr, len))?;
        Ok(BytesGuard {
            allocator,
            claim: Some(claim),
        })
    }

    /// [`lock_wait`](Self::lock_wait) as a future. Cancel-safe: no claim is
    /// taken unless it completes. The claim left by the last `mut_mem`
    /// ends when this is called, not when the future is first polled.
    ///
    /// # Errors
    ///
    /// As [`lock_wait`](Self::lock_wait).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 1).unwrap();
    /// let mut controller = memory.controller();
    /// let ptr = controller.alloc(4).unwrap();
    /// controller.lock_async(ptr, 4).await.unwrap().copy_from_slice(b"abcd");
    /// # });
    /// ```
    pub fn lock_async(
        &mut self,
        ptr: u32,
        len: u32,
    ) -> impl Future<Output = Result<BytesGuard<'_>, LinearMemoryError>> + Send + '_ {
        self.release();
        let allocator = self.allocator();
        async move {
            let claim = allocator
                .wait_for_claims_async(|_| allocator.claim(ptr, len))
                .await?;
            Ok(BytesGuard {
                allocator,
                claim: Some(claim),
            })
        }
    }

    /// [`free`](Self::free), awaiting the end of another handle's claim on
    /// the allocation instead of answering `Busy`. Cancel-safe: nothing is
    /// freed unless it completes. The claim left by the last `mut_mem`
    /// ends when this is called, not when the future is first polled.
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `LengthMismatch`, `DoubleFree`.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 1).unwrap();
    /// let mut controller = memory.controller();
    /// let ptr = controller.alloc(4).unwrap();
    /// controller.free_async(ptr, 4).await.unwrap();
    /// # });
    /// ```
    pub fn free_async(
        &mut self,
        ptr: u32,
        len: u32,
    ) -> impl Future<Output = Result<(), LinearMemoryError>> + Send + '_ {
        self.release();
        let shard = self.spans.shard();
        let allocator = self.allocator();
        allocator.wait_for_claims_async(move |look| match look {
            Look::First => allocator.free(shard, ptr, len),
            // A registered waiter reads the block's word with a
            // read-modify-write (Q1).
            Look::Registered => allocator.free_touching(shard, ptr, len),
        })
    }

    /// [`free`](Self::free), sleeping while another handle claims the
    /// allocation instead of answering `Busy`: how a guest memory frees
    /// the guest's own bytes when its instance goes, while a host copy may
    /// still be in them (`wasm::engine`); copies are short, and nothing
    /// else can hold that claim then.
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `LengthMismatch`, `DoubleFree`.
    #[cfg(all(feature = "wasmtime", unix))]
    pub(crate) fn free_wait(&mut self, ptr: u32, len: u32) -> Result<(), LinearMemoryError> {
        self.release();
        let shard = self.spans.shard();
        let allocator = self.allocator();
        allocator.wait_for_claims(Patience::Forever, |look| match look {
            Look::First => allocator.free(shard, ptr, len),
            // A registered waiter reads the block's word with a
            // read-modify-write (Q1).
            Look::Registered => allocator.free_touching(shard, ptr, len),
        })
    }

    /// The memory this handle works on.
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 4).unwrap();
    /// let controller = memory.controller();
    /// controller.memory().grow(1).unwrap(); // the same memory, shared
    /// assert_eq!(memory.size_pages(), 2);
    /// ```
    pub fn memory(&self) -> &SharedLinearMemory {
        &self.memory
    }

    fn allocator(&self) -> &Allocator {
        &self.memory.allocator
    }

    /// Gives up the claim left by the last `mut_mem`, if any, so that other
    /// handles can reach that allocation before this one's next call.
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 4).unwrap();
    /// let (mut guest, mut host) = (memory.controller(), memory.controller());
    /// let ptr = guest.alloc(4).unwrap();
    /// guest.mut_mem(ptr, 4).unwrap().copy_from_slice(b"ping");
    /// assert!(host.mut_mem(ptr, 4).is_err()); // Busy: the guest still claims it
    /// guest.release();
    /// assert_eq!(host.mut_mem(ptr, 4).unwrap(), b"ping");
    /// ```
    pub fn release(&mut self) {
        if let Some(claim) = self.held.take() {
            self.memory.allocator.release(claim);
        }
    }

    /// Allocates `len` bytes aligned to `align`, a power of two up to
    /// [`PAGE_SIZE`](super::PAGE_SIZE) (alignment of the offset).
    ///
    /// # Errors
    ///
    /// `ZeroLength`, `BadAlignment`, `LengthTooLarge`, `OutOfMemory`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{LinearMemoryError, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(1, 4).unwrap();
    /// let mut controller = memory.controller();
    /// assert_eq!(controller.alloc_aligned(10, 256).unwrap() % 256, 0);
    /// assert_eq!(controller.alloc_aligned(10, 3), Err(LinearMemoryError::BadAlignment));
    /// ```
    pub fn alloc_aligned(&mut self, len: u32, align: u32) -> Result<u32, LinearMemoryError> {
        self.release();
        self.memory.allocator.alloc(&mut self.spans, len, align)
    }

    /// Claims `ptr..ptr + len` and returns a guard over those bytes; the
    /// claim ends when the guard drops (unlike `mut_mem`, whose claim lasts
    /// until the handle's next call).
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `OutOfBounds`, `Busy`.
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 4).unwrap();
    /// let (mut guest, mut host) = (memory.controller(), memory.controller());
    /// let ptr = guest.alloc(4).unwrap();
    /// let mut bytes = guest.lock(ptr, 4).unwrap();
    /// bytes.copy_from_slice(b"abcd");
    /// drop(bytes); // the claim ends with the guard
    /// assert_eq!(&*host.lock(ptr, 4).unwrap(), b"abcd");
    /// ```
    pub fn lock(&mut self, ptr: u32, len: u32) -> Result<BytesGuard<'_>, LinearMemoryError> {
        self.release();
        let claim = self
            .memory
            .allocator
            .claim_hinted(ptr, len, self.spans.hint(ptr))?;
        Ok(BytesGuard {
            allocator: self.allocator(),
            claim: Some(claim),
        })
    }

    /// Copies `bytes` into a new allocation as `[u32 little-endian len][bytes]`
    /// and returns its pointer: the way hosts pass values to a guest.
    ///
    /// # Errors
    ///
    /// `LengthTooLarge`, `OutOfMemory`.
    ///
    /// # Examples
    ///
    /// ```
    /// let memory = slotarena::linear::SharedLinearMemory::new(1, 4).unwrap();
    /// let mut host = memory.controller();
    /// let ptr = host.transfer(b"hi").unwrap();
    /// assert_eq!(host.mut_mem(ptr, 6).unwrap(), [2, 0, 0, 0, b'h', b'i']);
    /// ```
    pub fn transfer(&mut self, bytes: &[u8]) -> Result<u32, LinearMemoryError> {
        // First, like every call: a refused transfer releases too.
        self.release();
        let len = u32::try_from(bytes.len()).map_err(|_| LinearMemoryError::LengthTooLarge)?;
        let total = len
            .checked_add(PREFIX)
            .ok_or(LinearMemoryError::LengthTooLarge)?;
        // Claimed as it is published: no other handle can see the block
        // before the value is in it (or make this fail and leak it).
        let claim = self
            .memory
            .allocator
            .alloc_claimed(&mut self.spans, total, 8)?;
        let ptr = claim.start();
        let mut guard = BytesGuard {
            allocator: self.allocator(),
            claim: Some(claim),
        };
        guard[..PREFIX as usize].copy_from_slice(&len.to_le_bytes());
        guard[PREFIX as usize..].copy_from_slice(bytes);
        Ok(ptr)
    }

    /// Reads a `[u32 len][bytes]` value written by [`transfer`](Self::transfer)
    /// (or a guest), frees its allocation and returns the bytes.
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `OutOfBounds` (the prefix claims more bytes than
    /// the allocation holds), `Busy`, `LengthMismatch` (the allocation is
    /// longer than the prefix says; nothing is freed), and `DoubleFree` when
    /// another handle frees or receives the allocation during the call.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{LinearMemoryError, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(1, 4).unwrap();
    /// let mut host = memory.controller();
    /// let ptr = host.transfer(b"value").unwrap();
    /// assert_eq!(host.receive(ptr).unwrap(), b"value");
    /// assert_eq!(host.receive(ptr), Err(LinearMemoryError::UnknownPointer)); // freed
    /// ```
    pub fn receive(&mut self, ptr: u32) -> Result<Vec<u8>, LinearMemoryError> {
        let len = {
            let prefix = self.lock(ptr, PREFIX)?;
            u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]])
        };
        let total = len
            .checked_add(PREFIX)
            .ok_or(LinearMemoryError::OutOfBounds)?;
        let value = self.lock(ptr, total)?[PREFIX as usize..].to_vec();
        self.free(ptr, total)?;
        Ok(value)
    }

    /// Allocates `len` bytes, 8-byte aligned, never at offset 0. The same
    /// as [`MemoryController::alloc`]; inherent so that calls need neither
    /// trait in scope nor disambiguation when both are.
    ///
    /// # Errors
    ///
    /// `ZeroLength`, `LengthTooLarge`, `OutOfMemory`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{LinearMemoryError, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(1, 4).unwrap();
    /// let mut controller = memory.controller();
    /// let ptr = controller.alloc(12).unwrap();
    /// assert!(ptr > 0 && ptr % 8 == 0);
    /// assert_eq!(controller.alloc(0), Err(LinearMemoryError::ZeroLength));
    /// ```
    pub fn alloc(&mut self, len: u32) -> Result<u32, LinearMemoryError> {
        self.alloc_aligned(len, 8)
    }

    /// Allocates `len` bytes like [`alloc`](Self::alloc) and returns them
    /// with the new allocation's pointer, claimed as
    /// [`mut_mem`](Self::mut_mem)`(ptr, len)` would claim them, until this
    /// handle's next call or drop. The claim is taken by the same store
    /// that publishes the allocation, so no other handle can claim or free
    /// it before its bytes are written, and no lookup is made: the way for
    /// a host to fill a value it is about to hand over.
    ///
    /// # Errors
    ///
    /// `ZeroLength`, `LengthTooLarge`, `OutOfMemory`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{LinearMemoryError, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(1, 4).unwrap();
    /// let (mut host, mut guest) = (memory.controller(), memory.controller());
    /// let (ptr, bytes) = host.alloc_mut(4).unwrap();
    /// bytes.copy_from_slice(b"ping");
    /// assert_eq!(guest.mut_mem(ptr, 4).err(), Some(LinearMemoryError::Busy));
    /// host.release();
    /// assert_eq!(guest.mut_mem(ptr, 4).unwrap(), b"ping");
    /// ```
    pub fn alloc_mut(&mut self, len: u32) -> Result<(u32, &mut [u8]), LinearMemoryError> {
        self.release();
        let claim = self
            .memory
            .allocator
            .alloc_claimed(&mut self.spans, len, 8)?;
        let ptr = claim.start();
        // Held like `mut_mem`'s claim: every later call, which needs
        // `&mut self` and so ends the returned borrow, releases it first.
        let claim = self.held.insert(claim);
        Ok((ptr, self.memory.allocator.bytes_mut(claim)))
    }

    /// Frees the allocation at `ptr` of exactly `len` bytes
    /// ([`MemoryController::free`]).
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `LengthMismatch`, `DoubleFree`, `Busy` (another
    /// handle holds it).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{LinearMemoryError, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(1, 4).unwrap();
    /// let mut controller = memory.controller();
    /// let ptr = controller.alloc(12).unwrap();
    /// assert_eq!(controller.free(ptr, 13), Err(LinearMemoryError::LengthMismatch));
    /// controller.free(ptr, 12).unwrap();
    /// assert_eq!(memory.allocated_bytes(), 0);
    /// ```
    pub fn free(&mut self, ptr: u32, len: u32) -> Result<(), LinearMemoryError> {
        self.release();
        self.memory.allocator.free(self.spans.shard(), ptr, len)
    }

    /// Exclusive access to `ptr..ptr + len` inside one live allocation
    /// ([`MemoryController::mut_mem`]); the claim lasts until this handle's
    /// next call or drop.
    ///
    /// # Errors
    ///
    /// `UnknownPointer`, `OutOfBounds` (also when `ptr + len` overflows),
    /// `Busy` (another handle holds the allocation).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::linear::{LinearMemoryError, SharedLinearMemory};
    ///
    /// let memory = SharedLinearMemory::new(1, 4).unwrap();
    /// let mut controller = memory.controller();
    /// let ptr = controller.alloc(4).unwrap();
    /// controller.mut_mem(ptr, 4).unwrap().copy_from_slice(&[1, 2, 3, 4]);
    /// assert_eq!(controller.mut_mem(ptr + 2, 2).unwrap(), [3, 4]);
    /// assert_eq!(controller.mut_mem(ptr, 5).err(), Some(LinearMemoryError::OutOfBounds));
    /// ```
    pub fn mut_mem(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], LinearMemoryError> {
        self.release();
        let claim = self
            .memory
            .allocator
            .claim_hinted(ptr, len, self.spans.hint(ptr))?;
        // The claim stays in `held` until this handle's next call or drop,
        // each of which needs `&mut self` and so ends the returned borrow.
        let claim = self.held.insert(claim);
        Ok(self.memory.allocator.bytes_mut(claim))
    }
}

impl Drop for LinearMemoryController {
    fn drop(&mut self) {
        self.release();
        self.memory.allocator.unpin_all(&mut self.spans);
    }
}

impl MemoryController for LinearMemoryController {
    fn alloc(&mut self, len: u32) -> Result<u32, LinearMemoryError> {
        LinearMemoryController::alloc(self, len)
    }

    fn free(&mut self, ptr: u32, len: u32) -> Result<(), LinearMemoryError> {
        LinearMemoryController::free(self, ptr, len)
    }

    fn mut_mem(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], LinearMemoryError> {
        LinearMemoryController::mut_mem(self, ptr, len)
    }
}

/// The boxed future of an [`AsyncMemoryController`] method, as
/// `#[async_trait]` declares it.
type BoxedAnswer<'a, T> = Pin<Box<dyn Future<Output = Result<T, LinearMemoryError>> + Send + 'a>>;

/// `alloc` and `free` follow the handle's [`WaitPolicy`]: by default they
/// answer at once; with [`WaitPolicy::Wait`] they await room (free bytes at
/// the maximum size, the end of another handle's claim). Both release the
/// claim left by the last `mut_mem` when called, not when first polled
/// (written out rather than with `#[async_trait]`, whose bodies run only
/// when polled); nothing is allocated or freed unless the future is.
impl AsyncMemoryController for LinearMemoryController {
    fn alloc<'life0, 'async_trait>(&'life0 mut self, len: u32) -> BoxedAnswer<'async_trait, u32>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.release();
        match self.policy {
            WaitPolicy::Immediate => {
                Box::pin(async move { LinearMemoryController::alloc(self, len) })
            }
            WaitPolicy::Wait => Box::pin(self.alloc_async(len)),
        }
    }

    fn free<'life0, 'async_trait>(
        &'life0 mut self,
        ptr: u32,
        len: u32,
    ) -> BoxedAnswer<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.release();
        match self.policy {
            WaitPolicy::Immediate => {
                Box::pin(async move { LinearMemoryController::free(self, ptr, len) })
            }
            WaitPolicy::Wait => Box::pin(self.free_async(ptr, len)),
        }
    }

    fn mut_mem(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], LinearMemoryError> {
        LinearMemoryController::mut_mem(self, ptr, len)
    }
}

/// Exclusive bytes of one allocation, created by
/// [`LinearMemoryController::lock`]; the claim ends when it drops.
#[must_use = "if unused the claim ends at once"]
pub struct BytesGuard<'a> {
    allocator: &'a Allocator,
    /// Always `Some` until `drop` hands it back.
    claim: Option<Claim>,
}

impl core::fmt::Debug for BytesGuard<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BytesGuard")
            .field("claim", &self.claim)
            .finish()
    }
}

impl BytesGuard<'_> {
    fn bytes(&mut self) -> &mut [u8] {
        match &mut self.claim {
            Some(claim) => self.allocator.bytes_mut(claim),
            None => &mut [],
        }
    }
}

impl Deref for BytesGuard<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.claim {
            Some(claim) => self.allocator.bytes(claim),
            None => &[],
        }
    }
}

impl DerefMut for BytesGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.bytes()
    }
}

impl Drop for BytesGuard<'_> {
    fn drop(&mut self) {
        if let Some(claim) = self.claim.take() {
            self.allocator.release(claim);
        }
    }
}
