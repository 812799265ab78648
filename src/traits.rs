//! [`HeaderStore`] and [`MemoryManager`]: the contract every manager obeys.

use core::ops::{Deref, DerefMut};

use crate::{MemoryClass, MemoryError, Message, MessageHeader, MessageToken, Payload};

/// Read access to message headers without touching payloads.
pub trait HeaderStore {
    /// Borrow of a header; holding it counts as a live guard on the message.
    type HeaderGuard<'a>: Deref<Target = MessageHeader>
    where
        Self: 'a;

    /// Borrows the header of the message `token` names.
    ///
    /// # Errors
    ///
    /// `BadToken` (index out of range or reserved), `NotAllocated` (slot
    /// empty), `StaleToken` (slot reused), `Poisoned` (a writer panicked).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{HeaderStore, MemoryManager, Message, MessageHeader, StaticMemoryManager};
    ///
    /// let mut manager = StaticMemoryManager::<[u8; 32], 4>::new();
    /// let mut header = MessageHeader::empty();
    /// header.set_trace_id(7);
    /// let token = manager.store(Message::new(header, [0; 32])).unwrap();
    ///
    /// let header = manager.peek_header(token).unwrap();
    /// assert_eq!((header.trace_id(), header.payload_size_bytes()), (7, 32));
    /// ```
    fn peek_header(&self, token: MessageToken) -> Result<Self::HeaderGuard<'_>, MemoryError>;
}

/// A store of messages keyed by generational [`MessageToken`]s.
///
/// Every implementation answers errors the same way; when several apply the
/// first in this order wins: `BadToken` (index out of range or reserved) →
/// `NotAllocated` (slot empty: a double free, or a use after free until the
/// slot is reused) → `StaleToken` (the slot holds a newer message) →
/// `AlreadyBorrowed` → `BorrowActive` → `QueueOwned` → `Poisoned`.
/// A refused call changes nothing.
///
/// # Examples
///
/// Code written against the trait works with every manager:
///
/// ```
/// use slotarena::{MemoryError, MemoryManager, Message, MessageHeader, MessageToken, StaticMemoryManager};
///
/// fn bump<M: MemoryManager<u64>>(manager: &mut M, token: MessageToken) -> Result<u64, MemoryError> {
///     let mut message = manager.read_mut(token)?;
///     *message.payload_mut() += 1;
///     Ok(*message.payload())
/// }
///
/// let mut manager = StaticMemoryManager::<u64, 4>::new();
/// let token = manager.store(Message::new(MessageHeader::empty(), 41)).unwrap();
/// assert_eq!(bump(&mut manager, token), Ok(42));
/// manager.free(token).unwrap();
/// assert_eq!(bump(&mut manager, token), Err(MemoryError::NotAllocated));
/// ```
pub trait MemoryManager<P: Payload>: HeaderStore {
    /// Shared borrow of a message.
    type ReadGuard<'a>: Deref<Target = Message<P>>
    where
        Self: 'a;
    /// Exclusive borrow of a message.
    type WriteGuard<'a>: DerefMut<Target = Message<P>>
    where
        Self: 'a;

    /// Stores a message and returns its token.
    ///
    /// # Errors
    ///
    /// `NoFreeSlots` when every slot is taken (and the manager cannot grow);
    /// the rejected message is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, MemoryManager, Message, MessageHeader, StaticMemoryManager};
    ///
    /// let mut manager = StaticMemoryManager::<u64, 1>::new();
    /// let token = manager.store(Message::new(MessageHeader::empty(), 1)).unwrap();
    /// assert_eq!(*manager.read(token).unwrap().payload(), 1);
    /// assert_eq!(
    ///     manager.store(Message::new(MessageHeader::empty(), 2)),
    ///     Err(MemoryError::NoFreeSlots)
    /// );
    /// ```
    fn store(&mut self, value: Message<P>) -> Result<MessageToken, MemoryError>;

    /// Borrows a message for reading.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, MemoryManager, Message, MessageHeader, StaticMemoryManager};
    ///
    /// let mut manager = StaticMemoryManager::<u64, 1>::new();
    /// let old = manager.store(Message::new(MessageHeader::empty(), 1)).unwrap();
    /// assert_eq!(*manager.read(old).unwrap().payload(), 1);
    ///
    /// manager.free(old).unwrap();
    /// assert_eq!(manager.read(old).err(), Some(MemoryError::NotAllocated));
    /// let new = manager.store(Message::new(MessageHeader::empty(), 2)).unwrap();
    /// assert_eq!(manager.read(old).err(), Some(MemoryError::StaleToken));
    /// assert_eq!(*manager.read(new).unwrap().payload(), 2);
    /// ```
    fn read(&self, token: MessageToken) -> Result<Self::ReadGuard<'_>, MemoryError>;

    /// Borrows a message for writing.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryManager, Message, MessageHeader, StaticMemoryManager};
    ///
    /// let mut manager = StaticMemoryManager::<[u8; 4], 2>::new();
    /// let token = manager.store(Message::new(MessageHeader::empty(), [0; 4])).unwrap();
    /// {
    ///     let message = manager.read_mut(token).unwrap();
    ///     message.payload_mut()[0] = 9;
    ///     message.header_mut().set_sequence(1);
    /// }
    /// let message = manager.read(token).unwrap();
    /// assert_eq!((message.payload()[0], message.header().sequence()), (9, 1));
    /// ```
    fn read_mut(&mut self, token: MessageToken) -> Result<Self::WriteGuard<'_>, MemoryError>;

    /// Frees a message (dropping it) and makes its slot reusable.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated` (double free), `StaleToken`,
    /// `BorrowActive` (a guard is live), `QueueOwned` (shares outstanding).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, MemoryManager, Message, MessageHeader, StaticMemoryManager};
    ///
    /// let mut manager = StaticMemoryManager::<u64, 2>::new();
    /// let token = manager.store(Message::new(MessageHeader::empty(), 1)).unwrap();
    /// assert_eq!(manager.available(), 1);
    /// manager.free(token).unwrap();
    /// assert_eq!(manager.available(), 2);
    /// assert_eq!(manager.free(token), Err(MemoryError::NotAllocated));
    /// ```
    fn free(&mut self, token: MessageToken) -> Result<(), MemoryError>;

    /// Number of free slots among the [`capacity`](Self::capacity) slots the
    /// manager has now. Exact whenever no operation is in flight.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryManager, Message, MessageHeader, StaticMemoryManager};
    ///
    /// let mut manager = StaticMemoryManager::<u64, 3>::new();
    /// assert_eq!(manager.available(), 3);
    /// manager.store(Message::new(MessageHeader::empty(), 1)).unwrap();
    /// assert_eq!(manager.available(), 2);
    /// ```
    fn available(&self) -> usize;

    /// Number of slots the manager has now.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryManager, Message, MessageHeader, StaticMemoryManager};
    ///
    /// let mut manager = StaticMemoryManager::<u64, 3>::new();
    /// manager.store(Message::new(MessageHeader::empty(), 1)).unwrap();
    /// assert_eq!(manager.capacity(), 3); // free or not, every slot counts
    /// ```
    fn capacity(&self) -> usize;

    /// Where this manager's messages live.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryClass, MemoryManager, StaticMemoryManager};
    ///
    /// let host = StaticMemoryManager::<u64, 1>::new();
    /// assert_eq!(host.memory_class(), MemoryClass::Host);
    /// let pinned = StaticMemoryManager::<u64, 1>::with_memory_class(MemoryClass::PinnedHost);
    /// assert_eq!(pinned.memory_class(), MemoryClass::PinnedHost);
    /// ```
    fn memory_class(&self) -> MemoryClass;
}
