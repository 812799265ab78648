//! limen-core's memory-manager family on slotarena (feature `limen`).
//!
//! [limen-core] 0.1.0-alpha.1 builds graphs whose nodes, edges and runtimes
//! are generic over a memory manager. [`LimenConcurrentManager<P>`]
//! implements limen-core's own [`HeaderStore`], [`MemoryManager<P>`] and
//! [`ScopedManager<P>`] traits and has the inherent API of limen-core's
//! `ConcurrentMemoryManager<P>` (`new`, `with_memory_class`,
//! `store_shared`, `read_shared`, `read_mut_shared`, `free_shared`,
//! `available`, `capacity`, `memory_class`, `Clone`), so a limen graph or
//! runtime moves to slotarena by changing that one type name. Messages are
//! limen-core's own [`Message<P>`], stored directly in a
//! [`SlotArena`]: one header per message, limen's.
//!
//! ```
//! use limen_core::memory::manager::MemoryManager;
//! use limen_core::message::{Message, MessageHeader};
//! use slotarena::compat::limen::LimenConcurrentManager;
//!
//! // Was: limen_core::memory::concurrent_manager::ConcurrentMemoryManager::new(16)
//! let mut manager = LimenConcurrentManager::<u32>::new(16);
//! let token = manager.store(Message::new(MessageHeader::empty(), 7)).unwrap();
//! assert_eq!(*manager.read(token).unwrap().payload(), 7);
//! manager.free(token).unwrap();
//! assert_eq!(manager.available(), 16);
//! ```
//!
//! # Where it differs from limen-core's manager
//!
//! **`free` never waits and never leaks.** limen-core frees with
//! `let _ = manager.free(token)`, ignoring the answer, and its own
//! manager's `free` waits for the message's readers. Answering
//! `BorrowActive` instead, as slotarena's [`ConcurrentMemoryManager`]
//! does, would leak every message limen frees while another thread still
//! reads it; waiting would deadlock a thread that frees a message it
//! reads itself. So `free` is [`SlotArena::remove`]: the token dies at
//! once (every later use answers an error) and the message is dropped when
//! the last guard on it drops, by whichever thread drops it. `free` never
//! answers `BorrowActive`, and its slot comes back when that guard drops.
//!
//! **Tokens carry generation bits.** limen-core's token is a bare `u32`
//! that its own manager reads as a slot index, so a token kept after
//! `free` reaches the next message stored in its slot. Here the low bits
//! hold the slot index, as few as the capacity needs, and the remaining
//! high bits ([`generation_bits`](LimenConcurrentManager::generation_bits):
//! 29 for 4 slots, 21 for 1024, never fewer than 6) hold the low bits of
//! the slot's generation, which moves on at every free. A token whose
//! message was freed answers `NotAllocated` while its slot is empty and
//! limen's `BadToken` (limen-core has no stale-token error) once the slot
//! holds a newer message, until the slot has been reused a multiple of
//! 2<sup>generation bits</sup> times: only then do the bits match again
//! and the old token reaches the new message. A `u32` this manager never
//! handed out is checked the same way: its low bits pick a slot, which
//! may be a real one, and its high bits must match that slot's message;
//! high bits ahead of every generation the slot has reached answer
//! `BadToken` even while the slot is empty (limen-core's own
//! `bad_token_detected`: `MessageToken::new(99)` on 4 slots is bad).
//! As a consequence, limen's `MessageToken::index()` is the whole packed
//! `u32`, not the slot index.
//!
//! **Poison does not lose the slot.** A write guard dropped by a panic
//! poisons its message: reads answer `Poisoned`, and `free` still releases
//! the slot (limen-core's own manager answers `Poisoned` to `free` as
//! well, so a poisoned slot there is never reused).
//!
//! # Conversions
//!
//! `From` impls convert between the two crates' errors, memory classes and
//! QoS classes, both ways. They lose information only where limen-core has
//! fewer variants:
//!
//! | slotarena | limen-core |
//! |---|---|
//! | `MemoryError::StaleToken` | `MemoryError::BadToken` (no stale variant) |
//! | `MemoryError::QueueOwned` | `MemoryError::BorrowActive` (no queue shares) |
//! | `MemoryError::NotShared` | `MemoryError::NotAllocated` (no queue shares) |
//! | `MemoryError::TooManyShares` | `MemoryError::NoFreeSlots` (no queue shares) |
//! | `MemoryError::TooManyReaders` | `MemoryError::AlreadyBorrowed` (no reader limit) |
//! | `QosClass::BestEffort` | `QoSClass::Background` |
//! | `QosClass::Standard` (the default) | `QoSClass::BestEffort` (the default) |
//! | `QosClass::LatencySensitive`, `QosClass::Critical` | `QoSClass::LatencyCritical` |
//!
//! Every other error, and every memory class, maps to its namesake. From
//! limen-core to slotarena nothing is lost: `LatencyCritical` becomes
//! `LatencySensitive`, and converting back gives what you started from.
//!
//! Message headers are not converted: the adapter stores limen-core's
//! header as it is, with its nanosecond deadline and its payload size.
//!
//! [limen-core]: https://docs.rs/limen-core/0.1.0-alpha.1
//! [`ConcurrentMemoryManager`]: crate::ConcurrentMemoryManager

mod convert;
mod layout;

use core::fmt;

use limen_core::errors::MemoryError as LimenError;
use limen_core::memory::MemoryClass as LimenClass;
use limen_core::memory::header_store::HeaderStore;
use limen_core::memory::manager::{MemoryManager, ScopedManager};
use limen_core::message::payload::Payload;
use limen_core::message::{Message, MessageHeader};
use limen_core::types::MessageToken as LimenToken;

use crate::{MemoryError, MessageToken, SlotArena, arena};
use layout::Layout;

/// Shared access to a message of a [`LimenConcurrentManager`]; dereferences
/// to limen-core's [`Message<P>`].
pub type ReadGuard<'a, P> = arena::ReadGuard<'a, Message<P>>;
/// Exclusive access to a message of a [`LimenConcurrentManager`]; poisons
/// the message if dropped by a panic.
pub type WriteGuard<'a, P> = arena::WriteGuard<'a, Message<P>>;
/// Shared access to a message's limen-core [`MessageHeader`].
pub type HeaderGuard<'a, P> = arena::ReadGuard<'a, Message<P>, MessageHeader>;

/// A drop-in replacement for limen-core's `ConcurrentMemoryManager<P>`,
/// storing limen-core messages in a [`SlotArena`].
///
/// A cheap `Clone` handle (one `Arc`), `Send + Sync` when `P` is. The
/// `*_shared` methods take `&self` for use from many threads; the limen
/// trait methods delegate to them. See the [module docs](self) for how it
/// differs from limen-core's own manager.
///
/// # Examples
///
/// A token kept after `free` never reaches the message stored after it:
///
/// ```
/// use limen_core::errors::MemoryError;
/// use limen_core::message::{Message, MessageHeader};
/// use slotarena::compat::limen::LimenConcurrentManager;
///
/// let manager = LimenConcurrentManager::<u32>::new(1);
/// let old = manager.store_shared(Message::new(MessageHeader::empty(), 1)).unwrap();
/// manager.free_shared(old).unwrap();
/// let new = manager.store_shared(Message::new(MessageHeader::empty(), 2)).unwrap();
/// assert_eq!(manager.read_shared(old).err(), Some(MemoryError::BadToken));
/// assert_eq!(*manager.read_shared(new).unwrap().payload(), 2);
/// ```
pub struct LimenConcurrentManager<P: Payload> {
    arena: SlotArena<Message<P>>,
    layout: Layout,
    class: LimenClass,
}

impl<P: Payload> Clone for LimenConcurrentManager<P> {
    /// Another handle to the same messages.
    fn clone(&self) -> Self {
        LimenConcurrentManager {
            arena: self.arena.clone(),
            layout: self.layout,
            class: self.class,
        }
    }
}

impl<P: Payload> fmt::Debug for LimenConcurrentManager<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimenConcurrentManager")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .field("generation_bits", &self.generation_bits())
            .field("memory_class", &self.class)
            .finish()
    }
}

impl<P: Payload> LimenConcurrentManager<P> {
    /// A manager of `capacity` slots in limen-core's `MemoryClass::Host`.
    ///
    /// # Panics
    ///
    /// If `capacity` exceeds [`SlotArena::MAX_CAPACITY`].
    ///
    /// # Examples
    ///
    /// ```
    /// use limen_core::memory::MemoryClass;
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// let manager = LimenConcurrentManager::<u32>::new(16);
    /// assert_eq!((manager.capacity(), manager.available()), (16, 16));
    /// assert_eq!(manager.memory_class(), MemoryClass::Host);
    /// ```
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        Self::with_memory_class(capacity, LimenClass::Host)
    }

    /// A manager of `capacity` slots that reports `class`.
    ///
    /// # Panics
    ///
    /// If `capacity` exceeds [`SlotArena::MAX_CAPACITY`].
    ///
    /// # Examples
    ///
    /// ```
    /// use limen_core::memory::MemoryClass;
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// let manager = LimenConcurrentManager::<u32>::with_memory_class(8, MemoryClass::PinnedHost);
    /// assert_eq!(manager.memory_class(), MemoryClass::PinnedHost);
    /// ```
    #[track_caller]
    pub fn with_memory_class(capacity: usize, class: LimenClass) -> Self {
        LimenConcurrentManager {
            arena: SlotArena::new(capacity),
            layout: Layout::for_capacity(capacity),
            class,
        }
    }

    /// How many bits of each token hold generation bits: a freed message's
    /// token is refused until its slot has been reused a multiple of
    /// 2<sup>`generation_bits`</sup> times. Fixed by the capacity: 32 minus
    /// the bits that `capacity` itself needs (at least one).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// assert_eq!(LimenConcurrentManager::<u32>::new(4).generation_bits(), 29);
    /// assert_eq!(LimenConcurrentManager::<u32>::new(1024).generation_bits(), 21);
    /// ```
    pub fn generation_bits(&self) -> u32 {
        self.layout.generation_bits()
    }

    /// Stores `value` and returns its token. Never waits.
    ///
    /// # Errors
    ///
    /// `NoFreeSlots` when every slot holds a message (or a freed message
    /// that a guard still holds); `value` is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use limen_core::errors::MemoryError;
    /// use limen_core::message::{Message, MessageHeader};
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// let manager = LimenConcurrentManager::<u32>::new(1);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 7)).unwrap();
    /// assert_eq!(*manager.read_shared(token).unwrap().payload(), 7);
    /// let full = manager.store_shared(Message::new(MessageHeader::empty(), 8));
    /// assert_eq!(full.err(), Some(MemoryError::NoFreeSlots));
    /// ```
    pub fn store_shared(&self, value: Message<P>) -> Result<LimenToken, LimenError> {
        match self.arena.insert(value) {
            Ok(token) => Ok(self.layout.pack(token)),
            Err(full) => Err(full.error().into()),
        }
    }

    /// Shared access to the message `token` names; waits while a writer
    /// holds it.
    ///
    /// # Errors
    ///
    /// `BadToken` for a token of no slot, of an older message of a slot
    /// now reused, or of a generation its slot has not reached,
    /// `NotAllocated` once the message is freed and before its
    /// slot is reused, `Poisoned` if a writer panicked while holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// use limen_core::errors::MemoryError;
    /// use limen_core::message::{Message, MessageHeader};
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// let manager = LimenConcurrentManager::<u32>::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 7)).unwrap();
    /// assert_eq!(*manager.read_shared(token).unwrap().payload(), 7);
    /// manager.free_shared(token).unwrap();
    /// assert_eq!(manager.read_shared(token).err(), Some(MemoryError::NotAllocated));
    /// ```
    pub fn read_shared(&self, token: LimenToken) -> Result<ReadGuard<'_, P>, LimenError> {
        Ok(self.arena.get(self.resolve(token)?)?)
    }

    /// Exclusive access to the message `token` names; waits while any guard
    /// holds it.
    ///
    /// # Errors
    ///
    /// As for [`read_shared`](Self::read_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// use limen_core::message::{Message, MessageHeader};
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// let manager = LimenConcurrentManager::<u32>::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 7)).unwrap();
    /// *manager.read_mut_shared(token).unwrap().payload_mut() += 1;
    /// assert_eq!(*manager.read_shared(token).unwrap().payload(), 8);
    /// ```
    pub fn read_mut_shared(&self, token: LimenToken) -> Result<WriteGuard<'_, P>, LimenError> {
        Ok(self.arena.get_mut(self.resolve(token)?)?)
    }

    /// Frees the message `token` names. Never waits: the token is dead at
    /// once, and the message is dropped now or, if guards hold it, when the
    /// last of them drops.
    ///
    /// # Errors
    ///
    /// `BadToken` and `NotAllocated` as for [`read_shared`](Self::read_shared),
    /// so a second free of the same token answers `NotAllocated` (or
    /// `BadToken` once the slot is reused). A poisoned message is freed.
    ///
    /// # Examples
    ///
    /// ```
    /// use limen_core::message::{Message, MessageHeader};
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// let manager = LimenConcurrentManager::<u32>::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 7)).unwrap();
    /// let reader = manager.read_shared(token).unwrap();
    /// manager.free_shared(token).unwrap(); // never waits for the reader
    /// assert_eq!((*reader.payload(), manager.available()), (7, 1));
    /// drop(reader); // the last guard gives the slot back
    /// assert_eq!(manager.available(), 2);
    /// ```
    pub fn free_shared(&self, token: LimenToken) -> Result<(), LimenError> {
        Ok(self.arena.remove(self.resolve(token)?)?)
    }

    /// Slots free right now: exact when no operation is in flight. A freed
    /// message that a guard still holds keeps its slot until that guard
    /// drops.
    ///
    /// # Examples
    ///
    /// ```
    /// use limen_core::message::{Message, MessageHeader};
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// let manager = LimenConcurrentManager::<u32>::new(4);
    /// manager.store_shared(Message::new(MessageHeader::empty(), 7)).unwrap();
    /// assert_eq!(manager.available(), 3);
    /// ```
    pub fn available(&self) -> usize {
        self.arena.capacity() - self.arena.len()
    }

    /// The number of slots.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// assert_eq!(LimenConcurrentManager::<u32>::new(10).capacity(), 10);
    /// ```
    pub fn capacity(&self) -> usize {
        self.arena.capacity()
    }

    /// The memory class this manager reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use limen_core::memory::MemoryClass;
    /// use slotarena::compat::limen::LimenConcurrentManager;
    ///
    /// let manager = LimenConcurrentManager::<u32>::with_memory_class(2, MemoryClass::Device(3));
    /// assert_eq!(manager.memory_class(), MemoryClass::Device(3));
    /// ```
    pub fn memory_class(&self) -> LimenClass {
        self.class
    }

    /// The arena token of the message a limen token names, checked against
    /// the slot's current message.
    fn resolve(&self, token: LimenToken) -> Result<MessageToken, MemoryError> {
        let (index, bits) = self.layout.unpack(token);
        let (current, occupied) = self.arena.slot_at(index).ok_or(MemoryError::BadToken)?;
        if self.layout.ahead(current, bits) {
            return Err(MemoryError::BadToken);
        }
        if !occupied {
            return Err(MemoryError::NotAllocated);
        }
        if self.layout.matches(current, bits) {
            Ok(current)
        } else {
            Err(MemoryError::StaleToken)
        }
    }
}

impl<P: Payload> HeaderStore for LimenConcurrentManager<P> {
    type HeaderGuard<'a>
        = HeaderGuard<'a, P>
    where
        Self: 'a;

    /// The header of the message `token` names; errors as for
    /// [`LimenConcurrentManager::read_shared`].
    fn peek_header(&self, token: LimenToken) -> Result<HeaderGuard<'_, P>, LimenError> {
        Ok(arena::ReadGuard::map(
            self.read_shared(token)?,
            Message::header,
        ))
    }
}

impl<P: Payload> MemoryManager<P> for LimenConcurrentManager<P> {
    type ReadGuard<'a>
        = ReadGuard<'a, P>
    where
        Self: 'a;

    type WriteGuard<'a>
        = WriteGuard<'a, P>
    where
        Self: 'a;

    /// [`LimenConcurrentManager::store_shared`].
    fn store(&mut self, value: Message<P>) -> Result<LimenToken, LimenError> {
        self.store_shared(value)
    }

    /// [`LimenConcurrentManager::read_shared`].
    fn read(&self, token: LimenToken) -> Result<ReadGuard<'_, P>, LimenError> {
        self.read_shared(token)
    }

    /// [`LimenConcurrentManager::read_mut_shared`].
    fn read_mut(&mut self, token: LimenToken) -> Result<WriteGuard<'_, P>, LimenError> {
        self.read_mut_shared(token)
    }

    /// [`LimenConcurrentManager::free_shared`].
    fn free(&mut self, token: LimenToken) -> Result<(), LimenError> {
        self.free_shared(token)
    }

    fn available(&self) -> usize {
        LimenConcurrentManager::available(self)
    }

    fn capacity(&self) -> usize {
        LimenConcurrentManager::capacity(self)
    }

    fn memory_class(&self) -> LimenClass {
        self.class
    }
}

impl<P: Payload + Send + Sync> ScopedManager<P> for LimenConcurrentManager<P> {
    /// Every worker gets a clone of the handle, as with limen-core's own
    /// manager.
    type Handle<'a>
        = LimenConcurrentManager<P>
    where
        Self: 'a;

    fn scoped_handle<'a>(&'a self) -> Self::Handle<'a>
    where
        Self: 'a,
    {
        self.clone()
    }
}
