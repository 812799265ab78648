//! Reserve, then fill: [`VacantEntry`], a slot that knows its key before
//! the value exists.

use core::fmt;
use core::marker::PhantomData;

use super::word;
use super::{Core, Recycle};
use crate::{Key, MemoryError, MessageToken, SlotArena};

/// A free slot reserved for a value that does not exist yet; its key is
/// known now, so the value can contain its own key. Made by
/// [`SlotArena::vacant_entry`].
///
/// Until [`insert`](Self::insert), the key answers `NotAllocated`, as for
/// an empty slot, and no other insert can take the slot (it is not counted
/// by [`len`](SlotArena::len), but [`reserve`](SlotArena::reserve) and
/// [`try_reserve`](SlotArena::try_reserve) count it as taken). Dropping
/// the entry gives the slot back and moves its generation on, so the key
/// never names a later value. An entry passed to `mem::forget` keeps its
/// slot until the arena is cleared with
/// [`Exclusive::clear`](crate::arena::Exclusive::clear).
///
/// # Examples
///
/// ```
/// use slotarena::{MemoryError, MessageToken, SlotArena};
///
/// struct Node {
///     me: MessageToken,
/// }
///
/// let arena = SlotArena::new(2);
/// let entry = arena.vacant_entry().unwrap();
/// let key = entry.key();
/// assert_eq!(arena.get(key).err(), Some(MemoryError::NotAllocated));
/// assert_eq!(entry.insert(Node { me: key }), key);
/// assert_eq!(arena.get(key).unwrap().me, key);
///
/// let dropped = arena.vacant_entry().unwrap().key();
/// assert_eq!(arena.get(dropped).err(), Some(MemoryError::NotAllocated));
/// assert_ne!(arena.insert(Node { me: key }).unwrap(), dropped);
/// ```
#[must_use = "dropping the entry gives its slot back"]
pub struct VacantEntry<'a, T, K = MessageToken> {
    core: &'a Core<T>,
    index: u32,
    _key: PhantomData<fn() -> K>,
}

impl<T, K: Key> SlotArena<T, K> {
    /// Reserves a free slot (growing a growable arena if needed) and
    /// returns it with its key, before the value exists. Never waits,
    /// except for the growth lock.
    ///
    /// # Errors
    ///
    /// `NoFreeSlots` when the arena is full at its maximum capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(1);
    /// let entry = arena.vacant_entry().unwrap();
    /// let key = entry.key();
    /// entry.insert(format!("I am {key:?}"));
    /// assert_eq!(*arena.get(key).unwrap(), format!("I am {key:?}"));
    /// ```
    pub fn vacant_entry(&self) -> Result<VacantEntry<'_, T, K>, MemoryError> {
        let index = self.core.pop_or_grow().ok_or(MemoryError::NoFreeSlots)?;
        self.core.entry_opened();
        Ok(VacantEntry {
            core: &self.core,
            index,
            _key: PhantomData,
        })
    }

    /// Inserts the value `make` builds from its own key (slotmap's
    /// `insert_with_key`). If `make` panics, the slot is given back.
    ///
    /// # Errors
    ///
    /// `NoFreeSlots` when the arena is full at its maximum capacity
    /// (`make` is not called).
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(1);
    /// let key = arena.insert_with_key(|key| (key, "me")).unwrap();
    /// assert_eq!(arena.get(key).unwrap().0, key);
    /// ```
    pub fn insert_with_key(&self, make: impl FnOnce(K) -> T) -> Result<K, MemoryError> {
        let entry = self.vacant_entry()?;
        let value = make(entry.key());
        Ok(entry.insert(value))
    }

    /// Grows a growable arena so that `additional` more values fit beside
    /// those present now, as far as its maximum allows.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::<u8>::growable(0, 1000);
    /// arena.reserve(40);
    /// assert!(arena.capacity() >= 40);
    /// arena.reserve(5000); // clamped to the maximum
    /// assert_eq!(arena.capacity(), 1000);
    /// ```
    pub fn reserve(&self, additional: usize) {
        self.core.reserve(additional);
    }

    /// [`reserve`](Self::reserve) that says whether the values fit.
    ///
    /// # Errors
    ///
    /// `NoFreeSlots` if `additional` more values would pass the maximum
    /// capacity; nothing grows then.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena};
    ///
    /// let arena = SlotArena::<u8>::growable(0, 100);
    /// assert_eq!(arena.try_reserve(101), Err(MemoryError::NoFreeSlots));
    /// assert_eq!(arena.capacity(), 0);
    /// assert_eq!(arena.try_reserve(64), Ok(()));
    /// assert!(arena.capacity() >= 64);
    /// ```
    pub fn try_reserve(&self, additional: usize) -> Result<(), MemoryError> {
        if self.core.taken().saturating_add(additional) > self.max_capacity() {
            return Err(MemoryError::NoFreeSlots);
        }
        if self.core.reserve(additional) {
            Ok(())
        } else {
            Err(MemoryError::NoFreeSlots)
        }
    }
}

impl<T, K: Key> VacantEntry<'_, T, K> {
    /// The key the value will have.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(1);
    /// let entry = arena.vacant_entry().unwrap();
    /// let key = entry.key();
    /// assert_eq!(entry.insert(7), key);
    /// ```
    pub fn key(&self) -> K {
        // The entry owns the vacant slot (S3): its word is ours and still
        // holds the generation `fill` will give the value.
        let word = self.core.slot_at(self.index).word();
        K::from_token(MessageToken::new(self.index, word::generation(word)))
    }

    /// Stores `value` under [`key`](Self::key) and returns the key.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(1);
    /// let key = arena.vacant_entry().unwrap().insert('v');
    /// assert_eq!(*arena.get(key).unwrap(), 'v');
    /// ```
    pub fn insert(self, value: T) -> K {
        let this = core::mem::ManuallyDrop::new(self);
        let key = K::from_token(this.core.fill(this.index, value).0);
        this.core.entry_closed();
        key
    }
}

impl<T, K> Drop for VacantEntry<'_, T, K> {
    /// Gives the slot back, its generation moved on.
    fn drop(&mut self) {
        self.core.slot_at(self.index).abandon();
        self.core.entry_closed();
        self.core.recycle(self.index);
    }
}

impl<T, K: Key> fmt::Debug for VacantEntry<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VacantEntry")
            .field("key", &self.key())
            .finish()
    }
}
