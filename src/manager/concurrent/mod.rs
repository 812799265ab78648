//! [`ConcurrentMemoryManager`]: messages shared by every thread of a pipeline.

mod guards;

use crate::arena::{Arena, Geometry, Poison};
use crate::sync::{Arc, AtomicU32, Ordering};
use crate::{HeaderStore, MemoryClass, MemoryError, MemoryManager, Message, MessageToken, Payload};

pub use guards::{HeaderGuard, ReadGuard, WriteGuard};

/// What one arena slot holds: the message and its queue-share count.
pub(crate) struct Entry<P> {
    message: Message<P>,
    /// Outstanding fan-out shares (see `retain_shared`). Changed under the
    /// slot's read lock, checked by `free`/`take` under its write lock, so
    /// no share can appear while a free decides.
    shares: AtomicU32,
}

/// A message manager that any number of threads share through cheap
/// `Clone` handles.
///
/// - Slot allocation is lock-free (an ABA-tagged free list); there is no
///   global lock on any path except growth.
/// - Each slot has its own `parking_lot` reader-writer lock. Guards wrap
///   that lock's guards; `read_shared` waits for a writer, `try_*` never
///   waits (`AlreadyBorrowed`).
/// - `free_shared`/`take_shared` never wait either: a live guard on the
///   message, even one held by the calling thread, gives `BorrowActive`.
/// - A write guard dropped by a panic poisons its message: reads answer
///   `Poisoned`, free/take still release the slot.
/// - Fan-out: [`retain_shared`](Self::retain_shared) adds queue shares;
///   `free` answers `QueueOwned` while any is outstanding and the last
///   [`release_shared`](Self::release_shared) frees the message.
/// - Built with [`growable`](Self::growable), capacity grows in segments up
///   to a maximum; slots never move, so guards and tokens stay valid.
///
/// Dropping the last handle drops every remaining message exactly once.
///
/// A thread that holds a [`WriteGuard`] and calls a blocking read or write
/// on the *same* message waits for itself forever, as with any lock; use
/// the `try_*` forms when that can happen.
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
    arena: Arena<Entry<P>>,
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
    /// If `capacity` exceeds [`MessageToken::MAX_INDEX`] + 1.
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        Self::growable_with_memory_class(capacity, capacity, MemoryClass::Host)
    }

    /// A manager of exactly `capacity` slots that reports `class`.
    ///
    /// # Panics
    ///
    /// If `capacity` exceeds [`MessageToken::MAX_INDEX`] + 1.
    #[track_caller]
    pub fn with_memory_class(capacity: usize, class: MemoryClass) -> Self {
        Self::growable_with_memory_class(capacity, capacity, class)
    }

    /// A manager of `initial` slots that grows on demand up to `max`.
    ///
    /// Each growth adds a segment as large as everything before it (so at
    /// most about 32 segments for any maximum), clamped to `max`.
    ///
    /// # Panics
    ///
    /// If `initial > max` or `max` exceeds [`MessageToken::MAX_INDEX`] + 1.
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
    /// assert_eq!(manager.capacity(), 2);
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
    #[track_caller]
    pub fn growable_with_memory_class(initial: usize, max: usize, class: MemoryClass) -> Self {
        assert!(
            initial <= max,
            "initial capacity {initial} exceeds the maximum {max}"
        );
        assert!(
            max <= MessageToken::MAX_INDEX + 1,
            "capacity {max} exceeds the token index range"
        );
        let geometry = Geometry::Doubling {
            base: initial.max(1),
        };
        ConcurrentMemoryManager {
            shared: Arc::new(Shared {
                arena: Arena::new(initial, max, geometry),
                class,
            }),
        }
    }

    /// Slots the manager has now (grows up to [`max_capacity`](Self::max_capacity)).
    pub fn capacity(&self) -> usize {
        self.shared.arena.capacity()
    }

    /// The most slots the manager may grow to.
    pub fn max_capacity(&self) -> usize {
        self.shared.arena.max_capacity()
    }

    /// Free slots among [`capacity`](Self::capacity); never more than it,
    /// exact whenever no operation is in flight.
    ///
    /// This counts the slots (O(capacity)) rather than keeping a shared
    /// counter that every store and free would have to update: it is meant
    /// for monitoring, not for a hot loop.
    pub fn available(&self) -> usize {
        self.shared.arena.available()
    }

    /// The memory class this manager reports.
    pub fn memory_class(&self) -> MemoryClass {
        self.shared.class
    }

    /// Stores a message and returns its token. Never waits; grows by a
    /// segment when full and growable.
    ///
    /// # Errors
    ///
    /// `NoFreeSlots` when full at the maximum capacity; the message is
    /// dropped (use [`try_store_shared`](Self::try_store_shared) to keep it).
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
    pub fn try_store_shared(&self, message: Message<P>) -> Result<MessageToken, Message<P>> {
        let entry = Entry {
            message,
            shares: AtomicU32::new(0),
        };
        self.shared
            .arena
            .insert(entry)
            .map_err(|(_, entry)| entry.message)
    }

    /// Borrows a message for reading; waits while a writer holds it.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    pub fn read_shared(&self, token: MessageToken) -> Result<ReadGuard<'_, P>, MemoryError> {
        let inner = self.shared.arena.read(token, Poison::Refuse)?;
        Ok(ReadGuard { inner })
    }

    /// Borrows a message for reading without waiting.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `AlreadyBorrowed` (a writer
    /// holds it), `Poisoned`.
    pub fn try_read_shared(&self, token: MessageToken) -> Result<ReadGuard<'_, P>, MemoryError> {
        let inner = self.shared.arena.try_read(token, Poison::Refuse)?;
        Ok(ReadGuard { inner })
    }

    /// Borrows a message's header; waits while a writer holds the message.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    pub fn peek_header_shared(
        &self,
        token: MessageToken,
    ) -> Result<HeaderGuard<'_, P>, MemoryError> {
        let inner = self.shared.arena.read(token, Poison::Refuse)?;
        Ok(HeaderGuard { inner })
    }

    /// Borrows a message for writing; waits while any guard holds it.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    pub fn read_mut_shared(&self, token: MessageToken) -> Result<WriteGuard<'_, P>, MemoryError> {
        let inner = self.shared.arena.write(token)?;
        Ok(WriteGuard { inner })
    }

    /// Borrows a message for writing without waiting.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `AlreadyBorrowed` (any
    /// guard holds it), `Poisoned`.
    pub fn try_read_mut_shared(
        &self,
        token: MessageToken,
    ) -> Result<WriteGuard<'_, P>, MemoryError> {
        let inner = self.shared.arena.try_write(token)?;
        Ok(WriteGuard { inner })
    }

    /// Frees a message, dropping it. Never waits. A poisoned message is
    /// freed like any other.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated` (double free), `StaleToken`,
    /// `BorrowActive` (a guard is live, on any thread), `QueueOwned`
    /// (shares outstanding).
    pub fn free_shared(&self, token: MessageToken) -> Result<(), MemoryError> {
        self.remove_unshared(token).map(drop)
    }

    /// Frees a message and returns it. Never waits.
    ///
    /// # Errors
    ///
    /// As [`free_shared`](Self::free_shared), plus `Poisoned`: the slot is
    /// released and the possibly half-updated message dropped.
    pub fn take_shared(&self, token: MessageToken) -> Result<Message<P>, MemoryError> {
        match self.remove_unshared(token)? {
            (message, false) => Ok(message),
            (message, true) => {
                drop(message);
                Err(MemoryError::Poisoned)
            }
        }
    }

    /// Removes a message that has no outstanding share; returns it and
    /// whether it was poisoned.
    fn remove_unshared(&self, token: MessageToken) -> Result<(Message<P>, bool), MemoryError> {
        let removed = self.shared.arena.remove(token, |entry: &Entry<P>| {
            // Relaxed: read under the write lock, which excludes every
            // share change (they happen under the read lock).
            match entry.shares.load(Ordering::Relaxed) {
                0 => Ok(()),
                _ => Err(MemoryError::QueueOwned),
            }
        })?;
        Ok((removed.value.message, removed.poisoned))
    }

    /// Adds `count` queue shares to a message (fan-out to `count` queues)
    /// and returns the new total. While shares are outstanding, `free` and
    /// `take` answer `QueueOwned`; each queue calls
    /// [`release_shared`](Self::release_shared) when done.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`, and
    /// `TooManyShares` if the total would overflow `u32`.
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
        let entry = self.shared.arena.read(token, Poison::Refuse)?;
        // Relaxed: a count, protected from frees by the read lock we hold.
        entry
            .shares
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                n.checked_add(count)
            })
            .map(|old| old + count)
            .map_err(|_| MemoryError::TooManyShares)
    }

    /// Releases one queue share and returns how many remain; releasing the
    /// last one frees the message (also when it is poisoned). Never waits
    /// for a writer when it is not the last share.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`; `NotShared` if no share
    /// is outstanding; for the last share, `BorrowActive` if a guard is
    /// live (nothing changes: drop the guard and release again).
    pub fn release_shared(&self, token: MessageToken) -> Result<u32, MemoryError> {
        loop {
            {
                let entry = self.shared.arena.read(token, Poison::Allow)?;
                // Relaxed throughout: a count; the lock orders the message.
                let mut shares = entry.shares.load(Ordering::Relaxed);
                while shares > 1 {
                    match entry.shares.compare_exchange_weak(
                        shares,
                        shares - 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return Ok(shares - 1),
                        Err(current) => shares = current,
                    }
                }
                if shares == 0 {
                    return Err(MemoryError::NotShared);
                }
            }
            // Ours looks like the last share: free under the write lock, where
            // no share can change, unless one was retained meanwhile.
            let removed = self.shared.arena.remove(token, |entry: &Entry<P>| {
                match entry.shares.load(Ordering::Relaxed) {
                    1 => Ok(()),
                    0 => Err(LastShare::Gone(MemoryError::NotShared)),
                    _ => Err(LastShare::Retained),
                }
            });
            match removed {
                Ok(removed) => {
                    drop(removed);
                    return Ok(0);
                }
                Err(LastShare::Gone(error)) => return Err(error),
                Err(LastShare::Retained) => continue,
            }
        }
    }

    /// Outstanding queue shares of a message.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`.
    pub fn shares(&self, token: MessageToken) -> Result<u32, MemoryError> {
        let entry = self.shared.arena.read(token, Poison::Allow)?;
        Ok(entry.shares.load(Ordering::Relaxed))
    }
}

/// Why the last-share free in `release_shared` did not happen.
enum LastShare {
    Gone(MemoryError),
    /// Someone retained between our read and our write lock; try again.
    Retained,
}

impl From<MemoryError> for LastShare {
    fn from(error: MemoryError) -> Self {
        LastShare::Gone(error)
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
