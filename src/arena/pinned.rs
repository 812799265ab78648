//! [`Reader`] and [`PinnedRef`]: reads of a value that take no
//! read-modify-write on the value's word, so threads reading the same hot
//! values do not bounce its cache line between cores. The protocol and its
//! invariants (P1–P4) are in `pins.rs`.

#![allow(unsafe_code)]

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

use super::pins::Record;
use super::slot::Slot;
use super::{Core, SlotArena};
use crate::{Key, MemoryError, MessageToken};

/// A thread's handle for pinned reads of a [`SlotArena`], made by
/// [`SlotArena::reader`]: one value at a time, with no read-modify-write
/// on anything another thread writes.
///
/// A pinned read ([`try_get`](Self::try_get), [`get`](Self::get)) stores
/// the slot's index in the reader's own record (a cache line no other
/// thread writes), fences, and loads the value's lifecycle word: no
/// compare-and-swap, no counter. Writers pay instead: every thread that
/// takes a value exclusively ([`get_mut`](SlotArena::get_mut) and the
/// other write forms, [`take`](SlotArena::take), and the drop after a
/// [`remove`](SlotArena::remove)) looks through the records of the arena's
/// readers after locking, and
///
/// - a blocking writer (`get_mut`, `get_mut_owned`, `take`, `retain`)
///   waits, spinning then yielding, until no reader holds the value pinned;
/// - a `try_` form answers as it does for a read guard
///   (`AlreadyBorrowed`, or `BorrowActive` for `try_take`), changing
///   nothing; an async write lock yields to its executor and tries again;
/// - [`remove`](SlotArena::remove) never waits: the key dies at once and
///   the value is dropped by whichever of the remover, its last guard and
///   its last pinned reader is the last to let go, exactly once.
///
/// A [`PinnedRef`] is a read lock, as a read guard is: holding one while
/// the same thread asks for [`get_mut`](SlotArena::get_mut) or
/// [`take`](SlotArena::take) of that value waits for ever (use the `try_`
/// forms there), as it does with a read guard.
///
/// The reader keeps a handle to the arena (so
/// [`exclusive`](SlotArena::exclusive) answers `None` while it lives) and
/// owns a record of it until dropped; make one per thread and reuse it. It
/// is `Send` but not `Sync`.
///
/// # Examples
///
/// ```
/// use slotarena::SlotArena;
///
/// let arena = SlotArena::new(8);
/// let key = arena.insert((1u64, 1u64)).unwrap();
/// let hot = arena.clone();
/// let reader_thread = std::thread::spawn(move || {
///     let mut reader = hot.reader();
///     for _ in 0..1000 {
///         let pair = reader.get(key).unwrap();
///         assert_eq!(pair.0, pair.1); // a writer never runs beside a pinned read
///     }
/// });
/// for n in 2..100 {
///     *arena.get_mut(key).unwrap() = (n, n);
/// }
/// reader_thread.join().unwrap();
/// ```
pub struct Reader<T, K = MessageToken> {
    arena: SlotArena<T, K>,
    /// Ours until drop; lives as long as the arena's core, which `arena`
    /// keeps alive.
    record: NonNull<Record>,
}

// SAFETY: a reader hands `&T` to its thread and may drop a removed `T`
// there (as a read guard may), so it needs what the arena handle needs;
// its record is atomics. Not `Sync`: one thread pins at a time.
unsafe impl<T: Send + Sync, K> Send for Reader<T, K> {}

impl<T, K: Key> SlotArena<T, K> {
    /// A [`Reader`] for pinned reads of this arena's values.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(2);
    /// let key = arena.insert(7).unwrap();
    /// let mut reader = arena.reader();
    /// assert_eq!(*reader.try_get(key).unwrap(), 7);
    /// ```
    pub fn reader(&self) -> Reader<T, K> {
        Reader {
            record: self.core.pins.claim(),
            arena: self.clone(),
        }
    }
}

impl<T, K: Key> Reader<T, K> {
    /// Pins the value `key` names and reads it through the returned
    /// reference, without waiting: answers as
    /// [`try_get`](SlotArena::try_get) would (`AlreadyBorrowed` while a
    /// writer holds the value).
    ///
    /// It writes nothing another thread writes: one store to this reader's
    /// record, a fence, one load of the value's word.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`,
    /// `AlreadyBorrowed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena};
    ///
    /// let arena = SlotArena::new(2);
    /// let key = arena.insert(1).unwrap();
    /// let mut reader = arena.reader();
    /// let writer = arena.get_mut(key).unwrap();
    /// assert_eq!(reader.try_get(key).err(), Some(MemoryError::AlreadyBorrowed));
    /// drop(writer);
    /// assert_eq!(*reader.try_get(key).unwrap(), 1);
    /// ```
    #[inline]
    pub fn try_get(&mut self, key: K) -> Result<PinnedRef<'_, T, K>, MemoryError> {
        let token = key.to_token();
        let slot = self.pin(token)?;
        Ok(self.pinned_ref(slot, token))
    }

    /// [`try_get`](Self::try_get), waiting while a writer holds the value
    /// (as [`get`](SlotArena::get) does: spinning, then parked on the
    /// value's word), then pinning again.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`; and, from the
    /// read lock it waits with, `TooManyReaders`.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(2);
    /// let key = arena.insert(String::from("hot")).unwrap();
    /// let mut reader = arena.reader();
    /// assert_eq!(reader.get(key).unwrap().len(), 3);
    /// arena.remove(key).unwrap();
    /// assert_eq!(reader.get(key).err(), Some(slotarena::MemoryError::NotAllocated));
    /// ```
    #[inline]
    pub fn get(&mut self, key: K) -> Result<PinnedRef<'_, T, K>, MemoryError> {
        let token = key.to_token();
        let slot = loop {
            match self.pin(token) {
                // Wait for the writer with a read lock (it parks), let go,
                // and pin again.
                Err(MemoryError::AlreadyBorrowed) => drop(self.arena.core.read::<K>(token, true)?),
                pinned => break pinned?,
            }
        };
        Ok(self.pinned_ref(slot, token))
    }

    fn record(&self) -> &Record {
        // SAFETY: `claim` gave this reader the record, which lives in the
        // arena's core (freed only with it), and `self.arena` keeps the
        // core alive.
        unsafe { self.record.as_ref() }
    }

    /// The pin itself (pins.rs, P1): the record names the slot, then the
    /// word must show the value readable; else the record is cleared again.
    #[inline]
    fn pin(&self, token: MessageToken) -> Result<&Slot<T>, MemoryError> {
        let core = &*self.arena.core;
        let (slot, ()) = core.place(token)?;
        let record = self.record();
        record.pin(token.index() as u32);
        match slot.pinned_check(token) {
            Ok(()) => Ok(slot),
            Err(error) => {
                core.unpin(record, slot, token);
                Err(error)
            }
        }
    }

    fn pinned_ref<'r>(&'r self, slot: &'r Slot<T>, token: MessageToken) -> PinnedRef<'r, T, K> {
        PinnedRef {
            core: &self.arena.core,
            record: self.record(),
            slot,
            token,
            _value: PhantomData,
            _key: PhantomData,
        }
    }
}

impl<T, K> Drop for Reader<T, K> {
    fn drop(&mut self) {
        // SAFETY: as in `record()`; no `PinnedRef` is live (they borrow
        // the reader), so the record pins nothing.
        unsafe { self.record.as_ref() }.release();
    }
}

impl<T, K> fmt::Debug for Reader<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader").finish_non_exhaustive()
    }
}

impl<T, M> Core<T, M> {
    /// Withdraws a pin of slot `token.index()`, and drops the slot's value
    /// if it was removed and this was its last pinned reader (pins.rs, P3).
    #[inline]
    fn unpin(&self, record: &Record, slot: &Slot<T>, token: MessageToken) {
        record.unpin();
        let index = token.index() as u32;
        if let Some(generation) = slot.claim_pending(|| self.pins.any_pinned(index)) {
            self.drop_unpinned(slot, index, generation);
        }
    }

    /// The last pinned reader's drop of a removed value (P3).
    #[cold]
    fn drop_unpinned(&self, slot: &Slot<T>, index: u32, generation: u32) {
        // SAFETY: `claim_pending` gave us the slot for reclaiming, and no
        // reader holds the value pinned any more (P4).
        unsafe {
            slot.vacate_dropping(generation, |vacant| {
                super::Recycle::recycle_dropped(self, index, vacant);
            });
        }
    }
}

/// Shared access to a value through a [`Reader`], made by
/// [`Reader::get`] and [`Reader::try_get`]; it borrows the reader, so a
/// reader pins one value at a time.
///
/// Like a [`ReadGuard`](super::ReadGuard), it keeps writers out while it
/// lives and keeps a removed value in place until it drops (then the last
/// one drops the value).
#[must_use = "if unused the value is unpinned at once"]
#[clippy::has_significant_drop]
pub struct PinnedRef<'r, T, K = MessageToken> {
    core: &'r Core<T>,
    record: &'r Record,
    slot: &'r Slot<T>,
    token: MessageToken,
    _value: PhantomData<&'r T>,
    /// The arena's key type; `fn(K) -> K` keeps auto traits off `K`.
    _key: PhantomData<fn(K) -> K>,
}

impl<T, K: Key> PinnedRef<'_, T, K> {
    /// The key of the pinned value. An associated function, so it never
    /// hides a method of `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::PinnedRef};
    ///
    /// let arena = SlotArena::new(2);
    /// let key = arena.insert(1).unwrap();
    /// let mut reader = arena.reader();
    /// assert_eq!(PinnedRef::key(&reader.get(key).unwrap()), key);
    /// ```
    pub fn key(this: &Self) -> K {
        K::from_token(this.token)
    }
}

impl<T, K> Deref for PinnedRef<'_, T, K> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the pin succeeded and lasts until `drop`: no writer works
        // on the value meanwhile and it is not dropped (P1, P3), and the
        // word showed it present (S1).
        unsafe { &*self.slot.value_ptr() }
    }
}

impl<T, K> Drop for PinnedRef<'_, T, K> {
    #[inline]
    fn drop(&mut self) {
        self.core.unpin(self.record, self.slot, self.token);
    }
}

impl<T: fmt::Debug, K> fmt::Debug for PinnedRef<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PinnedRef").field(&&**self).finish()
    }
}
