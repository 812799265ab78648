//! [`HeapMemoryManager`]: a fixed number of slots chosen at run time.

use alloc::boxed::Box;

use super::sequential::{Slot, SlotTable, impl_single_owner_manager};
use crate::{MemoryClass, MessageToken};

/// A manager whose capacity is chosen at run time, in one boxed slice.
///
/// Guards are plain references; use
/// [`ConcurrentMemoryManager`](crate::ConcurrentMemoryManager) to share
/// messages between threads.
///
/// # Examples
///
/// ```
/// use slotarena::{HeapMemoryManager, MemoryError, MemoryManager, Message, MessageHeader};
///
/// let mut manager = HeapMemoryManager::new(1);
/// let old = manager.store(Message::new(MessageHeader::empty(), "first")).unwrap();
/// manager.free(old).unwrap();
/// let new = manager.store(Message::new(MessageHeader::empty(), "second")).unwrap();
/// assert_eq!(old.index(), new.index());
/// assert_eq!(manager.read(old).err(), Some(MemoryError::StaleToken));
/// ```
pub struct HeapMemoryManager<P> {
    table: SlotTable<P, Box<[Slot<P>]>>,
    class: MemoryClass,
}

impl<P> HeapMemoryManager<P> {
    /// An empty manager of `capacity` slots in [`MemoryClass::Host`].
    ///
    /// # Panics
    ///
    /// If `capacity` exceeds [`MessageToken::MAX_INDEX`] + 1.
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        Self::with_memory_class(capacity, MemoryClass::Host)
    }

    /// An empty manager of `capacity` slots that reports `class`.
    ///
    /// # Panics
    ///
    /// If `capacity` exceeds [`MessageToken::MAX_INDEX`] + 1.
    #[track_caller]
    pub fn with_memory_class(capacity: usize, class: MemoryClass) -> Self {
        assert!(
            capacity <= MessageToken::MAX_INDEX + 1,
            "capacity {capacity} exceeds the token index range"
        );
        let slots = (0..capacity).map(|_| Slot::unused()).collect();
        HeapMemoryManager {
            table: SlotTable::new(slots),
            class,
        }
    }
}

impl_single_owner_manager!(HeapMemoryManager);
