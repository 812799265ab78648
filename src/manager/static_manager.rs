//! [`StaticMemoryManager`]: a fixed number of slots inline, no allocation.

use super::sequential::{Slot, SlotTable, impl_single_owner_manager};
use crate::MemoryClass;

/// A manager of exactly `N` slots stored inline: no allocation, `no_std`.
///
/// Guards are plain references, so the borrow checker enforces the borrow
/// rules and `free` can never meet a live guard.
///
/// # Examples
///
/// ```
/// use slotarena::{MemoryError, MemoryManager, Message, MessageHeader, StaticMemoryManager};
///
/// let mut manager = StaticMemoryManager::<u32, 2>::new();
/// let token = manager.store(Message::new(MessageHeader::empty(), 7)).unwrap();
/// assert_eq!(*manager.read(token).unwrap().payload(), 7);
/// manager.free(token).unwrap();
/// assert_eq!(manager.free(token), Err(MemoryError::NotAllocated));
/// ```
pub struct StaticMemoryManager<P, const N: usize> {
    table: SlotTable<P, [Slot<P>; N]>,
    class: MemoryClass,
}

impl<P, const N: usize> StaticMemoryManager<P, N> {
    /// An empty manager of `N` slots in [`MemoryClass::Host`].
    ///
    /// `N` must be at most [`MessageToken::MAX_INDEX`](crate::MessageToken::MAX_INDEX) + 1;
    /// a larger `N` fails to compile.
    ///
    /// # Examples
    ///
    /// `new` is a `const fn`: a manager can be a `static`, built at compile
    /// time with no allocator (put it in a `Mutex` to store into it).
    ///
    /// ```
    /// use slotarena::{MemoryManager, StaticMemoryManager};
    ///
    /// static MESSAGES: StaticMemoryManager<u32, 8> = StaticMemoryManager::new();
    ///
    /// assert_eq!(MESSAGES.capacity(), 8);
    /// assert_eq!(MESSAGES.available(), 8);
    /// ```
    pub const fn new() -> Self {
        Self::with_memory_class(MemoryClass::Host)
    }

    /// An empty manager of `N` slots that reports `class`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryClass, MemoryManager, StaticMemoryManager};
    ///
    /// const PINNED: StaticMemoryManager<u64, 4> =
    ///     StaticMemoryManager::with_memory_class(MemoryClass::PinnedHost);
    ///
    /// let manager = PINNED; // every use of a `const` is a fresh manager
    /// assert_eq!(manager.memory_class(), MemoryClass::PinnedHost);
    /// ```
    pub const fn with_memory_class(class: MemoryClass) -> Self {
        const {
            assert!(
                N <= crate::MessageToken::MAX_INDEX + 1,
                "too many slots for a token index"
            )
        };
        StaticMemoryManager {
            table: SlotTable::new([const { Slot::unused() }; N]),
            class,
        }
    }
}

impl<P, const N: usize> Default for StaticMemoryManager<P, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl_single_owner_manager!(StaticMemoryManager, const N: usize);
