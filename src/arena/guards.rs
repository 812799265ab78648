//! Guards that borrow the arena: [`ReadGuard`] and [`WriteGuard`].

#![allow(unsafe_code)]

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use super::Recycle;
use super::poison::Holder;
use super::slot::Slot;
use crate::{Key, MessageToken};

/// The lock a guard holds, and what its drop needs to give it back.
pub(super) struct Held<'a, T> {
    pub(super) slot: &'a Slot<T>,
    pub(super) recycle: &'a dyn Recycle,
    /// The key of the value locked: its slot's index and its generation.
    pub(super) token: MessageToken,
}

impl<T> Clone for Held<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Held<'_, T> {}

impl<T> Held<'_, T> {
    /// The slot's index.
    #[inline]
    pub(super) fn index(&self) -> u32 {
        self.token.index() as u32
    }

    /// Gives back a read lock; the last reader of a removed value drops it
    /// and frees the slot. Inlined, it is one compare-and-swap from the
    /// word a lone reader of this generation leaves (`Slot::unlock_read`);
    /// the rest is out of line.
    #[inline]
    pub(super) fn unlock_read(&self) {
        if let Err(before) = self.slot.unlock_read(self.token.generation()) {
            Self::last_reader(self.slot, self.recycle, self.index(), before);
        }
    }

    /// [`unlock_read`](Self::unlock_read)'s rare work, with the parts of
    /// `Held` as arguments (see `reclaim_removed`).
    #[cold]
    #[inline(never)]
    fn last_reader(slot: &Slot<T>, recycle: &dyn Recycle, index: u32, before: u64) {
        if let Some(generation) = slot.after_last_reader(before) {
            Self::reclaim_removed(slot, recycle, index, generation);
        }
    }

    /// Reclaims the slot after an unlock answered `Some(generation)`:
    /// drops the value in place and frees the slot (even if the value's
    /// `Drop` panics).
    ///
    /// Inlined, it is one test: every guard's drop calls it, and only the
    /// last guard of a removed value has work to do, out of line.
    #[inline]
    pub(super) fn reclaim(&self, generation: Option<u32>) {
        if let Some(generation) = generation {
            Self::reclaim_removed(self.slot, self.recycle, self.index(), generation);
        }
    }

    /// [`reclaim`](Self::reclaim)'s work, taking the parts of `Held` as
    /// arguments: a `&Held` would make every guard's drop build one in
    /// memory.
    #[cold]
    #[inline(never)]
    fn reclaim_removed(slot: &Slot<T>, recycle: &dyn Recycle, index: u32, generation: u32) {
        if slot.keep_for_pinned(|| recycle.pinned(index)) {
            // The last pinned reader drops it (pins.rs, P3).
            return;
        }
        // SAFETY: the unlock that returned `generation` handed this thread
        // the slot for reclaiming (`Slot::vacate`'s contract), and no
        // pinned reader holds the value (P1).
        unsafe {
            slot.vacate_dropping(generation, |vacant| {
                recycle.recycle_dropped(index, vacant);
            });
        }
    }
}

/// Shared access to a value of a [`SlotArena`](crate::SlotArena) (or a
/// part of it, after [`map`](Self::map)); holds the value's read lock.
/// `K` is the arena's key type, which [`key`](Self::key) answers.
///
/// Made by [`SlotArena::get`](crate::SlotArena::get) and
/// [`SlotArena::try_get`](crate::SlotArena::try_get). While any guard is
/// live, writers wait and the value stays in place even if it is removed
/// (then it is dropped when the last guard drops).
#[must_use = "if unused the value unlocks at once"]
#[clippy::has_significant_drop]
pub struct ReadGuard<'a, T, U: ?Sized = T, K = MessageToken> {
    held: Held<'a, T>,
    value: NonNull<U>,
    _borrow: PhantomData<&'a U>,
    /// `fn() -> K`: the key type never changes where the guard may travel.
    _key: PhantomData<fn() -> K>,
}

// SAFETY: the guard gives `&U` to whichever thread holds it, and its drop
// may drop the arena's `T` there (a deferred removal). `Held`'s references
// point into an arena core, which is `Sync` when `T: Send + Sync` (its
// per-slot metadata is always `Sync`).
unsafe impl<T: Send + Sync, U: ?Sized + Sync, K> Send for ReadGuard<'_, T, U, K> {}
// SAFETY: sharing the guard shares only `&U`.
unsafe impl<T: Send + Sync, U: ?Sized + Sync, K> Sync for ReadGuard<'_, T, U, K> {}

impl<'a, T, K> ReadGuard<'a, T, T, K> {
    /// Wraps a read lock the caller just took on `held.slot`.
    pub(super) fn new(held: Held<'a, T>) -> Self {
        let value = NonNull::new(held.slot.value_ptr().cast_mut()).expect("slots are never null");
        ReadGuard {
            held,
            value,
            _borrow: PhantomData,
            _key: PhantomData,
        }
    }
}

impl<'a, T, U: ?Sized, K> ReadGuard<'a, T, U, K> {
    /// Narrows the guard to a part of the value, keeping the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::ReadGuard};
    ///
    /// let arena = SlotArena::new(4);
    /// let token = arena.insert((1u8, String::from("two"))).unwrap();
    /// let name = ReadGuard::map(arena.get(token).unwrap(), |pair| &pair.1);
    /// assert_eq!(&*name, "two");
    /// ```
    pub fn map<V: ?Sized>(this: Self, f: impl FnOnce(&U) -> &V) -> ReadGuard<'a, T, V, K> {
        // `f` runs before `this` is forgotten, so if it panics the guard
        // drops and unlocks as usual.
        // SAFETY: the read lock is held (S2), so `value` is valid for `'a`.
        let value = NonNull::from(f(unsafe { this.value.as_ref() }));
        let this = core::mem::ManuallyDrop::new(this);
        ReadGuard {
            held: this.held,
            value,
            _borrow: PhantomData,
            _key: PhantomData,
        }
    }
}

impl<T, U: ?Sized, K> Deref for ReadGuard<'_, T, U, K> {
    type Target = U;

    #[inline]
    fn deref(&self) -> &U {
        // SAFETY: the read lock is held (S2) until `drop`.
        unsafe { self.value.as_ref() }
    }
}

impl<T, U: ?Sized, K> Drop for ReadGuard<'_, T, U, K> {
    #[inline]
    fn drop(&mut self) {
        self.held.unlock_read();
    }
}

impl<T, U: ?Sized + fmt::Debug, K> fmt::Debug for ReadGuard<'_, T, U, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadGuard").field(&&**self).finish()
    }
}

/// Exclusive access to a value of a [`SlotArena`](crate::SlotArena) (or a
/// part of it, after [`map`](Self::map)); holds the value's write lock.
/// `K` is the arena's key type, which [`key`](Self::key) answers.
///
/// Made by [`SlotArena::get_mut`](crate::SlotArena::get_mut) and
/// [`SlotArena::try_get_mut`](crate::SlotArena::try_get_mut). If a panic
/// interrupts a thread while it holds the guard, the value is poisoned:
/// later reads and writes answer [`MemoryError::Poisoned`](crate::MemoryError).
///
/// The guard is `Send`, so the panic that counts is the one in flight on
/// the thread that drops it. It poisons unless the guard is known to have
/// reached that thread only after its panic began: that thread made it, or
/// reached the value through it (`DerefMut`, [`map`](Self::map)), only
/// while already unwinding. So a task that moves to another worker at an
/// `.await` and panics there mid-update poisons the value, and a guard
/// that an unwinding thread makes or takes over and finishes with does
/// not. (A guard handed untouched to an unwinding thread cannot be told
/// from the task case, and poisons.)
#[must_use = "if unused the value unlocks at once"]
#[clippy::has_significant_drop]
pub struct WriteGuard<'a, T, U: ?Sized = T, K = MessageToken> {
    held: Held<'a, T>,
    value: NonNull<U>,
    /// Decides whether dropping the guard poisons the value.
    holder: Holder,
    _borrow: PhantomData<&'a mut U>,
    /// As for `ReadGuard`.
    _key: PhantomData<fn() -> K>,
}

// SAFETY: the guard gives `&mut U` to whichever thread holds it, and its
// drop may drop the arena's `T` there. `Held` as for `ReadGuard`.
unsafe impl<T: Send + Sync, U: ?Sized + Send, K> Send for WriteGuard<'_, T, U, K> {}
// SAFETY: sharing the guard shares only `&U`.
unsafe impl<T: Send + Sync, U: ?Sized + Sync, K> Sync for WriteGuard<'_, T, U, K> {}

impl<'a, T, K> WriteGuard<'a, T, T, K> {
    /// Wraps the write lock the caller just took on `held.slot`.
    pub(super) fn new(held: Held<'a, T>) -> Self {
        let value = NonNull::new(held.slot.value_mut_ptr()).expect("slots are never null");
        WriteGuard {
            held,
            value,
            holder: Holder::now(),
            _borrow: PhantomData,
            _key: PhantomData,
        }
    }
}

impl<'a, T, U: ?Sized, K> WriteGuard<'a, T, U, K> {
    /// Narrows the guard to a part of the value, keeping the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::WriteGuard};
    ///
    /// let arena = SlotArena::new(4);
    /// let token = arena.insert((1u8, vec![2u8])).unwrap();
    /// WriteGuard::map(arena.get_mut(token).unwrap(), |pair| &mut pair.1).push(3);
    /// assert_eq!(arena.get(token).unwrap().1, [2, 3]);
    /// ```
    pub fn map<V: ?Sized>(this: Self, f: impl FnOnce(&mut U) -> &mut V) -> WriteGuard<'a, T, V, K> {
        // `f` runs before `this` is forgotten, so if it panics the guard
        // drops as usual: it unlocks, and poisons the value.
        let mut this = this;
        this.holder.touch();
        // SAFETY: the write lock is held (S2), so `value` is valid and
        // exclusive for `'a`.
        let value = NonNull::from(f(unsafe { this.value.as_mut() }));
        let this = core::mem::ManuallyDrop::new(this);
        WriteGuard {
            held: this.held,
            value,
            holder: this.holder,
            _borrow: PhantomData,
            _key: PhantomData,
        }
    }
}

impl<T, U: ?Sized, K> Deref for WriteGuard<'_, T, U, K> {
    type Target = U;

    #[inline]
    fn deref(&self) -> &U {
        // SAFETY: the write lock is held (S2) until `drop`.
        unsafe { self.value.as_ref() }
    }
}

impl<T, U: ?Sized, K> DerefMut for WriteGuard<'_, T, U, K> {
    #[inline]
    fn deref_mut(&mut self) -> &mut U {
        self.holder.touch();
        // SAFETY: the write lock is held (S2) until `drop`; `&mut self`
        // makes this the only reference.
        unsafe { self.value.as_mut() }
    }
}

impl<T, U: ?Sized, K> Drop for WriteGuard<'_, T, U, K> {
    #[inline]
    fn drop(&mut self) {
        // Only a panic that began while this thread held the guard can have
        // left the value half-updated (see `poison`).
        let poison = self.holder.poisons_on_drop();
        let generation = self.held.slot.unlock_write(poison);
        self.held.reclaim(generation);
    }
}

impl<T, U: ?Sized + fmt::Debug, K> fmt::Debug for WriteGuard<'_, T, U, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WriteGuard").field(&&**self).finish()
    }
}

// === key() ===

impl<T> Held<'_, T> {
    /// The key of the value whose lock this is: the one the lock checked,
    /// whose generation cannot move while a guard holds the value (S4: it
    /// moves when the value leaves, after the last guard).
    pub(super) fn key(&self) -> MessageToken {
        self.token
    }
}

impl<T, U: ?Sized, K: Key> ReadGuard<'_, T, U, K> {
    /// The key of the value the guard holds (sharded-slab's
    /// `Entry::key`), in the arena's key type, also after a
    /// [`map`](Self::map). An associated function, like `map`, so it never
    /// hides a method of `U`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::ReadGuard};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert((1, 2)).unwrap();
    /// let second = ReadGuard::map(arena.get(token).unwrap(), |pair| &pair.1);
    /// assert_eq!(ReadGuard::key(&second), token);
    /// ```
    pub fn key(this: &Self) -> K {
        K::from_token(this.held.key())
    }
}

impl<T, U: ?Sized, K: Key> WriteGuard<'_, T, U, K> {
    /// The key of the value the guard holds; see [`ReadGuard::key`].
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::WriteGuard};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// assert_eq!(WriteGuard::key(&arena.get_mut(token).unwrap()), token);
    /// ```
    pub fn key(this: &Self) -> K {
        K::from_token(this.held.key())
    }
}
