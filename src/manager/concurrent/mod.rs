//! [`ConcurrentMemoryManager`]: messages shared by every thread of a pipeline.

mod shares;

use crate::arena::{self, Core, Patience};
use crate::sync::Arc;
use crate::{
    HeaderStore, MemoryClass, MemoryError, MemoryManager, Message, MessageHeader, MessageToken,
    Payload,
};

use shares::Shares;

/// The per-slot share word, for the arena's memory test.
#[cfg(test)]
pub(crate) type ShareWord = Shares;

/// Shared access to a message of a [`ConcurrentMemoryManager`]: a
/// [`SlotArena`](crate::SlotArena) read guard.
pub type ReadGuard<'a, P> = arena::ReadGuard<'a, Message<P>>;
/// Exclusive access to a message of a [`ConcurrentMemoryManager`]; poisons
/// the message if dropped by a panic.
pub type WriteGuard<'a, P> = arena::WriteGuard<'a, Message<P>>;
/// Shared access to a message's header: a read guard mapped to it.
pub type HeaderGuard<'a, P> = arena::ReadGuard<'a, Message<P>, MessageHeader>;

/// A message manager that any number of threads share through cheap
/// `Clone` handles: a thin layer over the crate's [`SlotArena`] core.
///
/// - Slot allocation is lock-free (per-thread ABA-tagged free lists);
///   while nobody waits, no path takes a lock except adding a segment to a
///   growable manager. Waiters bring locks to the paths that wake them:
///   with a thread or task waiting for room, every free notifies it
///   through the wait queue's internal mutex; with a thread or task parked
///   on one slot's lock, the unlock that wakes it takes a bucket lock of
///   `parking_lot_core` and the mutex of the crate-wide event that async
///   lock waiters share. Each is held for the wake-up only.
/// - Each slot's lifecycle word is its reader-writer lock, and the guards
///   are [`SlotArena`] guards (`read_shared` waits for a writer; `try_*`
///   never wait: `AlreadyBorrowed`). A stale token never waits: the
///   generation is checked in the same compare-and-swap that locks.
/// - `free_shared`/`take_shared` never wait either (with or without
///   waiters registered): a live guard on the message, even one held by
///   the calling thread, gives `BorrowActive`.
/// - A write guard dropped by a panic poisons its message: reads answer
///   `Poisoned`, free/take still release the slot.
/// - Fan-out: [`retain_shared`](Self::retain_shared) adds queue shares;
///   `free` answers `QueueOwned` while any is outstanding and the last
///   [`release_shared`](Self::release_shared) frees the message. Share
///   counts live beside the slot, not under its lock, so they never wait
///   for a guard and never make a free see one.
/// - Built with [`growable`](Self::growable), capacity grows in segments up
///   to a maximum; slots never move, so guards and tokens stay valid.
///
/// Dropping the last handle drops every remaining message exactly once.
///
/// A thread that holds a [`WriteGuard`] and calls a blocking read or write
/// on the *same* message waits for itself forever, as with any lock; use
/// the `try_*` forms when that can happen.
///
/// [`SlotArena`]: crate::SlotArena
///
/// # Examples
///
/// ```
/// use std::thread;
/// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
///
/// let manager = ConcurrentMemoryManager::new(64);
/// let token = manager.store_shared(Message::new(MessageHeader::empty(), 1u64)).unwrap();
/// let worker = manager.clone();
/// thread::spawn(move || {
///     *worker.read_mut_shared(token).unwrap().payload_mut() += 1;
/// })
/// .join()
/// .unwrap();
/// assert_eq!(manager.take_shared(token).unwrap().into_parts().1, 2);
/// assert_eq!(manager.available(), 64);
/// ```
pub struct ConcurrentMemoryManager<P> {
    shared: Arc<Shared<P>>,
}

struct Shared<P> {
    core: Core<Message<P>, Shares>,
    class: MemoryClass,
}

impl<P> Clone for ConcurrentMemoryManager<P> {
    /// Another handle to the same messages.
    fn clone(&self) -> Self {
        ConcurrentMemoryManager {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<P> core::fmt::Debug for ConcurrentMemoryManager<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ConcurrentMemoryManager")
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .field("max_capacity", &self.max_capacity())
            .field("memory_class", &self.shared.class)
            .finish()
    }
}

impl<P> ConcurrentMemoryManager<P> {
    /// A manager of exactly `capacity` slots in [`MemoryClass::Host`].
    ///
    /// # Panics
    ///
    /// If `capacity` exceeds [`SlotArena::MAX_CAPACITY`](crate::SlotArena::MAX_CAPACITY).
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = slotarena::ConcurrentMemoryManager::<u8>::new(8);
    /// assert_eq!((manager.capacity(), manager.available()), (8, 8));
    /// ```
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        Self::growable_with_memory_class(capacity, capacity, MemoryClass::Host)
    }

    /// A manager of exactly `capacity` slots that reports `class`.
    ///
    /// # Panics
    ///
    /// As for [`new`](Self::new).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryClass};
    ///
    /// let manager = ConcurrentMemoryManager::<u8>::with_memory_class(8, MemoryClass::Device(1));
    /// assert_eq!(manager.memory_class(), MemoryClass::Device(1));
    /// ```
    #[track_caller]
    pub fn with_memory_class(capacity: usize, class: MemoryClass) -> Self {
        Self::growable_with_memory_class(capacity, capacity, class)
    }

    /// A manager of `initial` slots that grows on demand up to `max`.
    ///
    /// Each growth adds a segment as large as everything before it (at
    /// least 32 slots), clamped to `max`.
    ///
    /// # Panics
    ///
    /// If `initial > max` or `max` exceeds
    /// [`SlotArena::MAX_CAPACITY`](crate::SlotArena::MAX_CAPACITY).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::growable(1, 3);
    /// let first = manager.store_shared(Message::new(MessageHeader::empty(), 1u8)).unwrap();
    /// let guard = manager.read_shared(first).unwrap();
    /// manager.store_shared(Message::new(MessageHeader::empty(), 2u8)).unwrap();
    /// assert_eq!(manager.capacity(), 3);
    /// assert_eq!(*guard.payload(), 1); // growth never moves a live message
    /// ```
    #[track_caller]
    pub fn growable(initial: usize, max: usize) -> Self {
        Self::growable_with_memory_class(initial, max, MemoryClass::Host)
    }

    /// [`growable`](Self::growable) with a memory class.
    ///
    /// # Panics
    ///
    /// As for [`growable`](Self::growable).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryClass};
    ///
    /// let manager = ConcurrentMemoryManager::<u8>::growable_with_memory_class(0, 64, MemoryClass::Shared);
    /// assert_eq!((manager.capacity(), manager.max_capacity()), (0, 64));
    /// ```
    #[track_caller]
    pub fn growable_with_memory_class(initial: usize, max: usize, class: MemoryClass) -> Self {
        ConcurrentMemoryManager {
            shared: Arc::new(Shared {
                core: Core::new(initial, max),
                class,
            }),
        }
    }

    /// Slots the manager has now (grows up to [`max_capacity`](Self::max_capacity)),
    /// less those retired because their generations ran out (as in
    /// [`SlotArena::capacity`](crate::SlotArena::capacity)).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::growable(0, 64);
    /// assert_eq!(manager.capacity(), 0);
    /// manager.store_shared(Message::new(MessageHeader::empty(), 1u8)).unwrap();
    /// assert_eq!(manager.capacity(), 32); // the first segment: at least 32 slots
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.core.capacity()
    }

    /// The most slots the manager may grow to, less the retired ones.
    ///
    /// # Examples
    ///
    /// ```
    /// let manager = slotarena::ConcurrentMemoryManager::<u8>::growable(4, 100);
    /// assert_eq!((manager.capacity(), manager.max_capacity()), (4, 100));
    /// ```
    pub fn max_capacity(&self) -> usize {
        self.shared.core.max_capacity()
    }

    /// Free slots among [`capacity`](Self::capacity); never more than it,
    /// exact whenever no operation is in flight.
    ///
    /// This counts the slots (O(capacity)) rather than keeping a shared
    /// counter that every store and free would have to update: it is meant
    /// for monitoring, not for a hot loop.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(4);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 1u8)).unwrap();
    /// assert_eq!(manager.available(), 3);
    /// manager.free_shared(token).unwrap();
    /// assert_eq!(manager.available(), 4);
    /// ```
    pub fn available(&self) -> usize {
        let core = &self.shared.core;
        core.capacity().saturating_sub(core.len())
    }

    /// The memory class this manager reports.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryClass};
    ///
    /// assert_eq!(ConcurrentMemoryManager::<u8>::new(1).memory_class(), MemoryClass::Host);
    /// ```
    pub fn memory_class(&self) -> MemoryClass {
        self.shared.class
    }

    /// Stores a message and returns its token. Never waits, except for the
    /// growth lock when a growable manager adds a segment.
    ///
    /// # Errors
    ///
    /// `NoFreeSlots` when full at the maximum capacity; the message is
    /// dropped (use [`try_store_shared`](Self::try_store_shared) to keep it).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(1);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 1u8)).unwrap();
    /// assert_eq!(*manager.read_shared(token).unwrap().payload(), 1);
    /// let full = manager.store_shared(Message::new(MessageHeader::empty(), 2u8));
    /// assert_eq!(full, Err(MemoryError::NoFreeSlots));
    /// ```
    #[inline]
    pub fn store_shared(&self, message: Message<P>) -> Result<MessageToken, MemoryError> {
        self.try_store_shared(message)
            .map_err(|_| MemoryError::NoFreeSlots)
    }

    /// Stores a message, or hands it back when the manager is full at its
    /// maximum capacity (the only way a store can fail), so a producer can
    /// apply back-pressure and retry without losing it.
    ///
    /// # Errors
    ///
    /// The message itself, meaning `NoFreeSlots`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(0);
    /// let back = manager.try_store_shared(Message::new(MessageHeader::empty(), 5u8)).unwrap_err();
    /// assert_eq!(*back.payload(), 5);
    /// ```
    #[inline]
    pub fn try_store_shared(&self, message: Message<P>) -> Result<MessageToken, Message<P>> {
        self.shared.core.insert(message).map(|(token, _)| token)
    }

    /// [`store_shared`](Self::store_shared), waiting for a free slot when
    /// the manager is full at its maximum capacity: back-pressure instead
    /// of an error. The thread sleeps until a free, take or last release
    /// makes room; waiters are served roughly first come, first served.
    ///
    /// # Errors
    ///
    /// `NoFreeSlots` only for a manager whose maximum capacity is zero, or
    /// drops to zero while it waits (its last slots retired).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::thread;
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(1);
    /// let first = manager.store_shared(Message::new(MessageHeader::empty(), 1u8)).unwrap();
    /// let sink = manager.clone();
    /// let consumer = thread::spawn(move || sink.free_shared(first));
    /// let second = manager.store_wait(Message::new(MessageHeader::empty(), 2u8)).unwrap();
    /// consumer.join().unwrap().unwrap();
    /// assert_eq!(*manager.read_shared(second).unwrap().payload(), 2);
    /// ```
    pub fn store_wait(&self, message: Message<P>) -> Result<MessageToken, MemoryError> {
        self.shared
            .core
            .insert_wait(message, Patience::Forever)
            .map(|(token, _)| token)
            .map_err(|_| MemoryError::NoFreeSlots)
    }

    /// [`store_wait`](Self::store_wait) for at most `timeout`.
    ///
    /// # Errors
    ///
    /// `NoFreeSlots` when no slot freed up in time; the message is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(0);
    /// let late = manager.store_timeout(Message::new(MessageHeader::empty(), ()), Duration::from_millis(5));
    /// assert_eq!(late, Err(MemoryError::NoFreeSlots));
    /// ```
    pub fn store_timeout(
        &self,
        message: Message<P>,
        timeout: core::time::Duration,
    ) -> Result<MessageToken, MemoryError> {
        self.shared
            .core
            .insert_wait(message, Patience::timeout(timeout))
            .map(|(token, _)| token)
            .map_err(|_| MemoryError::NoFreeSlots)
    }

    /// [`store_wait`](Self::store_wait) as a future, for any async runtime.
    /// Cancel-safe: dropping the future drops the message and holds no slot.
    ///
    /// # Errors
    ///
    /// As [`store_wait`](Self::store_wait).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(4);
    /// let token = manager.store_async(Message::new(MessageHeader::empty(), 7u8)).await.unwrap();
    /// assert_eq!(*manager.read_shared(token).unwrap().payload(), 7);
    /// # });
    /// ```
    pub async fn store_async(&self, message: Message<P>) -> Result<MessageToken, MemoryError> {
        self.shared
            .core
            .insert_async(message)
            .await
            .map(|(token, _)| token)
            .map_err(|_| MemoryError::NoFreeSlots)
    }

    /// Borrows a message for reading; waits while a writer holds it.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`, `TooManyReaders`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 5u8)).unwrap();
    /// let (first, second) = (manager.read_shared(token).unwrap(), manager.read_shared(token).unwrap());
    /// assert_eq!(*first.payload() + *second.payload(), 10); // readers share the message
    /// ```
    #[inline]
    pub fn read_shared(&self, token: MessageToken) -> Result<ReadGuard<'_, P>, MemoryError> {
        self.shared.core.read(token, true)
    }

    /// Borrows a message for reading without waiting.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `AlreadyBorrowed` (a writer
    /// holds it), `Poisoned`, `TooManyReaders`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 5u8)).unwrap();
    /// let writer = manager.read_mut_shared(token).unwrap();
    /// assert_eq!(manager.try_read_shared(token).err(), Some(MemoryError::AlreadyBorrowed));
    /// drop(writer);
    /// assert!(manager.try_read_shared(token).is_ok());
    /// ```
    pub fn try_read_shared(&self, token: MessageToken) -> Result<ReadGuard<'_, P>, MemoryError> {
        self.shared.core.read(token, false)
    }

    /// Borrows a message's header; waits while a writer holds the message.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`, `TooManyReaders`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let mut header = MessageHeader::empty();
    /// header.set_trace_id(42);
    /// let manager = ConcurrentMemoryManager::new(2);
    /// let token = manager.store_shared(Message::new(header, [0u8; 16])).unwrap();
    /// assert_eq!(manager.peek_header_shared(token).unwrap().trace_id(), 42);
    /// ```
    pub fn peek_header_shared(
        &self,
        token: MessageToken,
    ) -> Result<HeaderGuard<'_, P>, MemoryError> {
        let guard = self.shared.core.read(token, true)?;
        Ok(arena::ReadGuard::map(guard, Message::header))
    }

    /// Borrows a message for writing; waits while any guard holds it.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), vec![1u8])).unwrap();
    /// manager.read_mut_shared(token).unwrap().payload_mut().push(2);
    /// assert_eq!(manager.read_shared(token).unwrap().payload(), &[1, 2]);
    /// ```
    #[inline]
    pub fn read_mut_shared(&self, token: MessageToken) -> Result<WriteGuard<'_, P>, MemoryError> {
        self.shared.core.write(token, true)
    }

    /// Borrows a message for writing without waiting.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `AlreadyBorrowed` (any
    /// guard holds it), `Poisoned`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 5u8)).unwrap();
    /// let reader = manager.read_shared(token).unwrap();
    /// assert_eq!(manager.try_read_mut_shared(token).err(), Some(MemoryError::AlreadyBorrowed));
    /// drop(reader);
    /// assert!(manager.try_read_mut_shared(token).is_ok());
    /// ```
    pub fn try_read_mut_shared(
        &self,
        token: MessageToken,
    ) -> Result<WriteGuard<'_, P>, MemoryError> {
        self.shared.core.write(token, false)
    }

    /// Frees a message, dropping it. Never waits. A poisoned message is
    /// freed like any other.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated` (double free), `StaleToken`,
    /// `BorrowActive` (a guard is live, on any thread), `QueueOwned`
    /// (shares outstanding).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 5u8)).unwrap();
    /// let reader = manager.read_shared(token).unwrap();
    /// assert_eq!(manager.free_shared(token), Err(MemoryError::BorrowActive));
    /// drop(reader);
    /// assert_eq!(manager.free_shared(token), Ok(()));
    /// assert_eq!(manager.free_shared(token), Err(MemoryError::NotAllocated));
    /// ```
    #[inline]
    pub fn free_shared(&self, token: MessageToken) -> Result<(), MemoryError> {
        self.shared.core.free(token, false)
    }

    /// Frees a message and returns it. Never waits.
    ///
    /// # Errors
    ///
    /// As [`free_shared`](Self::free_shared), plus `Poisoned`: the slot is
    /// released and the possibly half-updated message dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 'x')).unwrap();
    /// assert_eq!(*manager.take_shared(token).unwrap().payload(), 'x');
    /// assert_eq!(manager.take_shared(token).err(), Some(MemoryError::NotAllocated));
    /// ```
    pub fn take_shared(&self, token: MessageToken) -> Result<Message<P>, MemoryError> {
        match self.shared.core.take(token, false)? {
            (message, false) => Ok(message),
            // The slot is already free; the message drops here.
            (_, true) => Err(MemoryError::Poisoned),
        }
    }

    /// Adds `count` queue shares to a message (fan-out to `count` queues)
    /// and returns the new total. While shares are outstanding, `free` and
    /// `take` answer `QueueOwned`; each queue calls
    /// [`release_shared`](Self::release_shared) when done. Never waits for
    /// a guard.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`, and
    /// `TooManyShares` if the total would exceed 2³¹ − 1.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(4);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 9u32)).unwrap();
    /// manager.retain_shared(token, 2).unwrap();
    /// assert_eq!(manager.free_shared(token), Err(MemoryError::QueueOwned));
    /// assert_eq!(manager.release_shared(token), Ok(1));
    /// assert_eq!(manager.release_shared(token), Ok(0)); // the last release frees it
    /// assert_eq!(manager.available(), 4);
    /// ```
    pub fn retain_shared(&self, token: MessageToken, count: u32) -> Result<u32, MemoryError> {
        shares::retain(&self.shared.core, token, count)
    }

    /// Releases one queue share and returns how many remain; releasing the
    /// last one frees the message (also when it is poisoned). Never waits
    /// for a guard: a release that is not the last never looks at the
    /// message's lock. (It may spin for the instant another thread takes
    /// between marking the message shared and publishing its count.)
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`; `NotShared` if no share
    /// is outstanding; for the last share, `BorrowActive` if a guard is
    /// live (nothing changes: drop the guard and release again).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(2);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), 5u8)).unwrap();
    /// assert_eq!(manager.release_shared(token), Err(MemoryError::NotShared));
    /// manager.retain_shared(token, 1).unwrap();
    /// assert_eq!(manager.release_shared(token), Ok(0)); // the last share frees the message
    /// assert_eq!(manager.available(), 2);
    /// ```
    pub fn release_shared(&self, token: MessageToken) -> Result<u32, MemoryError> {
        shares::release(&self.shared.core, token)
    }

    /// Outstanding queue shares of a message. Never waits for a guard (it
    /// may spin for the instant of a concurrent retain or last release).
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{ConcurrentMemoryManager, Message, MessageHeader};
    ///
    /// let manager = ConcurrentMemoryManager::new(1);
    /// let token = manager.store_shared(Message::new(MessageHeader::empty(), ())).unwrap();
    /// manager.retain_shared(token, 3).unwrap();
    /// assert_eq!(manager.shares(token), Ok(3));
    /// ```
    pub fn shares(&self, token: MessageToken) -> Result<u32, MemoryError> {
        shares::count(&self.shared.core, token)
    }
}

impl<P> HeaderStore for ConcurrentMemoryManager<P> {
    type HeaderGuard<'a>
        = HeaderGuard<'a, P>
    where
        Self: 'a;

    fn peek_header(&self, token: MessageToken) -> Result<HeaderGuard<'_, P>, MemoryError> {
        self.peek_header_shared(token)
    }
}

impl<P: Payload> MemoryManager<P> for ConcurrentMemoryManager<P> {
    type ReadGuard<'a>
        = ReadGuard<'a, P>
    where
        Self: 'a;
    type WriteGuard<'a>
        = WriteGuard<'a, P>
    where
        Self: 'a;

    fn store(&mut self, value: Message<P>) -> Result<MessageToken, MemoryError> {
        self.store_shared(value)
    }

    fn read(&self, token: MessageToken) -> Result<ReadGuard<'_, P>, MemoryError> {
        self.read_shared(token)
    }

    fn read_mut(&mut self, token: MessageToken) -> Result<WriteGuard<'_, P>, MemoryError> {
        self.read_mut_shared(token)
    }

    fn free(&mut self, token: MessageToken) -> Result<(), MemoryError> {
        self.free_shared(token)
    }

    fn available(&self) -> usize {
        ConcurrentMemoryManager::available(self)
    }

    fn capacity(&self) -> usize {
        ConcurrentMemoryManager::capacity(self)
    }

    fn memory_class(&self) -> MemoryClass {
        ConcurrentMemoryManager::memory_class(self)
    }
}
