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
    fn store(&mut self, value: Message<P>) -> Result<MessageToken, MemoryError>;

    /// Borrows a message for reading.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    fn read(&self, token: MessageToken) -> Result<Self::ReadGuard<'_>, MemoryError>;

    /// Borrows a message for writing.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    fn read_mut(&mut self, token: MessageToken) -> Result<Self::WriteGuard<'_>, MemoryError>;

    /// Frees a message (dropping it) and makes its slot reusable.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated` (double free), `StaleToken`,
    /// `BorrowActive` (a guard is live), `QueueOwned` (shares outstanding).
    fn free(&mut self, token: MessageToken) -> Result<(), MemoryError>;

    /// Number of free slots among the [`capacity`](Self::capacity) slots the
    /// manager has now. Exact whenever no operation is in flight.
    fn available(&self) -> usize;

    /// Number of slots the manager has now.
    fn capacity(&self) -> usize;

    /// Where this manager's messages live.
    fn memory_class(&self) -> MemoryClass;
}
