//! Guards that own a handle to the arena: [`OwnedReadGuard`] and
//! [`OwnedWriteGuard`], `'static` and `Send`, so an async task can hold one
//! across `.await`.

#![allow(unsafe_code)]

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use super::guards::Held;
use super::poison::Holder;
use super::slot::Slot;
use crate::{Key, MessageToken, SlotArena};

/// What an owned guard keeps: the arena alive, and the slot it locked.
struct Lease<T, K> {
    arena: SlotArena<T, K>,
    /// Points into `arena`'s segments, which never move or get freed
    /// before the arena drops (and `arena` keeps it alive).
    slot: NonNull<Slot<T>>,
    /// The key of the value locked.
    token: MessageToken,
}

impl<T, K> Lease<T, K> {
    fn held(&self) -> Held<'_, T> {
        Held {
            // SAFETY: `slot` points into `arena`'s never-moving segments,
            // which live as long as `self.arena` (see the field's doc).
            slot: unsafe { self.slot.as_ref() },
            recycle: self.arena.core(),
            token: self.token,
        }
    }
}

/// [`ReadGuard`](super::ReadGuard) that owns a handle to its arena; `K`
/// is the arena's key type, which [`key`](Self::key) answers.
///
/// Made by [`SlotArena::get_owned`] and [`SlotArena::try_get_owned`].
///
/// # Examples
///
/// ```
/// use slotarena::SlotArena;
///
/// let arena = SlotArena::new(4);
/// let token = arena.insert(String::from("kept")).unwrap();
/// let guard = arena.get_owned(token).unwrap();
/// let reader = std::thread::spawn(move || guard.len());
/// assert_eq!(reader.join().unwrap(), 4);
/// ```
#[must_use = "if unused the value unlocks at once"]
#[clippy::has_significant_drop]
pub struct OwnedReadGuard<T, U: ?Sized = T, K = MessageToken> {
    lease: Lease<T, K>,
    value: NonNull<U>,
}

// SAFETY: as for `ReadGuard`: `&U` to the holder, and a possible drop of
// `T` (and of the arena handle) on the holder's thread.
unsafe impl<T: Send + Sync, U: ?Sized + Sync, K> Send for OwnedReadGuard<T, U, K> {}
// SAFETY: sharing the guard shares only `&U`.
unsafe impl<T: Send + Sync, U: ?Sized + Sync, K> Sync for OwnedReadGuard<T, U, K> {}

impl<T, K> OwnedReadGuard<T, T, K> {
    /// Wraps a read lock the caller just took on `slot` of `arena` for
    /// `token`.
    pub(super) fn new(arena: SlotArena<T, K>, slot: &Slot<T>, token: MessageToken) -> Self {
        let value = NonNull::new(slot.value_ptr().cast_mut()).expect("slots are never null");
        OwnedReadGuard {
            lease: Lease {
                slot: NonNull::from(slot),
                arena,
                token,
            },
            value,
        }
    }
}

impl<T, U: ?Sized, K> OwnedReadGuard<T, U, K> {
    /// Narrows the guard to a part of the value, keeping the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::OwnedReadGuard};
    ///
    /// let arena = SlotArena::new(1);
    /// let token = arena.insert((7u8, String::from("name"))).unwrap();
    /// let name = OwnedReadGuard::map(arena.get_owned(token).unwrap(), |pair| &pair.1);
    /// assert_eq!(*name, "name");
    /// ```
    pub fn map<V: ?Sized>(this: Self, f: impl FnOnce(&U) -> &V) -> OwnedReadGuard<T, V, K> {
        // `f` runs before `this` is forgotten, so if it panics the guard
        // drops and unlocks as usual.
        // SAFETY: the read lock is held (S2) while the guard lives.
        let value = NonNull::from(f(unsafe { this.value.as_ref() }));
        let this = core::mem::ManuallyDrop::new(this);
        // SAFETY: `this` is never dropped, so its lease moves out exactly once.
        let lease = unsafe { core::ptr::read(&this.lease) };
        OwnedReadGuard { lease, value }
    }

    /// The arena the guard keeps alive.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::OwnedReadGuard};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// let guard = arena.get_owned(token).unwrap();
    /// drop(arena); // the guard still holds the arena
    /// assert!(OwnedReadGuard::arena(&guard).contains(token));
    /// ```
    pub fn arena(this: &Self) -> &SlotArena<T, K> {
        &this.lease.arena
    }
}

impl<T, U: ?Sized, K> Deref for OwnedReadGuard<T, U, K> {
    type Target = U;

    #[inline]
    fn deref(&self) -> &U {
        // SAFETY: the read lock is held (S2) until `drop`.
        unsafe { self.value.as_ref() }
    }
}

impl<T, U: ?Sized, K> Drop for OwnedReadGuard<T, U, K> {
    fn drop(&mut self) {
        let held = self.lease.held();
        held.unlock_read();
    }
}

impl<T, U: ?Sized + fmt::Debug, K> fmt::Debug for OwnedReadGuard<T, U, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedReadGuard").field(&&**self).finish()
    }
}

/// [`WriteGuard`](super::WriteGuard) that owns a handle to its arena; `K`
/// is the arena's key type, which [`key`](Self::key) answers.
///
/// Made by [`SlotArena::get_mut_owned`] and
/// [`SlotArena::try_get_mut_owned`]. Poisons the value by the same rule as
/// [`WriteGuard`](super::WriteGuard): when the thread that drops it is
/// unwinding, unless the guard is known to have reached that thread only
/// after its panic began.
///
/// # Examples
///
/// ```
/// use slotarena::SlotArena;
///
/// let arena = SlotArena::new(4);
/// let token = arena.insert(vec![1u8]).unwrap();
/// let mut guard = arena.get_mut_owned(token).unwrap();
/// std::thread::spawn(move || guard.push(2)).join().unwrap();
/// assert_eq!(*arena.get(token).unwrap(), [1, 2]);
/// ```
///
/// The guard is invariant in the type it shows, so it cannot be used to
/// store a reference that lives shorter than the arena's values:
///
/// ```compile_fail
/// use slotarena::{SlotArena, arena::OwnedWriteGuard};
///
/// let arena: SlotArena<&'static str> = SlotArena::new(1);
/// let token = arena.insert("static").unwrap();
/// let guard: OwnedWriteGuard<&'static str> = arena.get_mut_owned(token).unwrap();
/// let local = String::from("short-lived");
/// let mut shorter: OwnedWriteGuard<&'static str, &str> = guard; // error: invariant
/// *shorter = local.as_str();
/// ```
///
/// while the same assignment of a `'static` value compiles:
///
/// ```
/// use slotarena::{SlotArena, arena::OwnedWriteGuard};
///
/// let arena: SlotArena<&'static str> = SlotArena::new(1);
/// let token = arena.insert("static").unwrap();
/// let mut guard: OwnedWriteGuard<&'static str, &'static str> = arena.get_mut_owned(token).unwrap();
/// *guard = "also static";
/// ```
#[must_use = "if unused the value unlocks at once"]
#[clippy::has_significant_drop]
pub struct OwnedWriteGuard<T, U: ?Sized = T, K = MessageToken> {
    lease: Lease<T, K>,
    value: NonNull<U>,
    /// Decides whether dropping the guard poisons the value.
    holder: Holder,
    /// Invariance in `U`, as `&mut U` needs: a covariant guard could be
    /// coerced to a shorter-lived `U` and store a short-lived reference
    /// into the arena (the `Send`/`Sync` impls below are written by hand).
    _invariant: PhantomData<*mut U>,
}

// SAFETY: as for `WriteGuard`.
unsafe impl<T: Send + Sync, U: ?Sized + Send, K> Send for OwnedWriteGuard<T, U, K> {}
// SAFETY: sharing the guard shares only `&U`.
unsafe impl<T: Send + Sync, U: ?Sized + Sync, K> Sync for OwnedWriteGuard<T, U, K> {}

impl<T, K> OwnedWriteGuard<T, T, K> {
    /// Wraps the write lock the caller just took on `slot` of `arena` for
    /// `token`.
    pub(super) fn new(arena: SlotArena<T, K>, slot: &Slot<T>, token: MessageToken) -> Self {
        let value = NonNull::new(slot.value_mut_ptr()).expect("slots are never null");
        OwnedWriteGuard {
            lease: Lease {
                slot: NonNull::from(slot),
                arena,
                token,
            },
            value,
            holder: Holder::now(),
            _invariant: PhantomData,
        }
    }
}

impl<T, U: ?Sized, K> OwnedWriteGuard<T, U, K> {
    /// Narrows the guard to a part of the value, keeping the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::OwnedWriteGuard};
    ///
    /// let arena = SlotArena::new(1);
    /// let token = arena.insert((0u8, vec![1u8])).unwrap();
    /// let mut list = OwnedWriteGuard::map(arena.get_mut_owned(token).unwrap(), |pair| &mut pair.1);
    /// list.push(2);
    /// drop(list);
    /// assert_eq!(arena.get(token).unwrap().1, [1, 2]);
    /// ```
    pub fn map<V: ?Sized>(
        this: Self,
        f: impl FnOnce(&mut U) -> &mut V,
    ) -> OwnedWriteGuard<T, V, K> {
        // `f` runs before `this` is forgotten, so if it panics the guard
        // drops as usual: it unlocks, and poisons the value.
        let mut this = this;
        this.holder.touch();
        // SAFETY: the write lock is held (S2) while the guard lives.
        let value = NonNull::from(f(unsafe { this.value.as_mut() }));
        let this = core::mem::ManuallyDrop::new(this);
        // SAFETY: `this` is never dropped, so its lease moves out exactly once.
        let lease = unsafe { core::ptr::read(&this.lease) };
        OwnedWriteGuard {
            lease,
            value,
            holder: this.holder,
            _invariant: PhantomData,
        }
    }

    /// The arena the guard keeps alive.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena, arena::OwnedWriteGuard};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// let guard = arena.get_mut_owned(token).unwrap();
    /// let held = OwnedWriteGuard::arena(&guard).try_get(token).err();
    /// assert_eq!(held, Some(MemoryError::AlreadyBorrowed));
    /// ```
    pub fn arena(this: &Self) -> &SlotArena<T, K> {
        &this.lease.arena
    }
}

impl<T, U: ?Sized, K> Deref for OwnedWriteGuard<T, U, K> {
    type Target = U;

    #[inline]
    fn deref(&self) -> &U {
        // SAFETY: the write lock is held (S2) until `drop`.
        unsafe { self.value.as_ref() }
    }
}

impl<T, U: ?Sized, K> DerefMut for OwnedWriteGuard<T, U, K> {
    #[inline]
    fn deref_mut(&mut self) -> &mut U {
        self.holder.touch();
        // SAFETY: the write lock is held (S2) until `drop`; `&mut self`
        // makes this the only reference.
        unsafe { self.value.as_mut() }
    }
}

impl<T, U: ?Sized, K> Drop for OwnedWriteGuard<T, U, K> {
    fn drop(&mut self) {
        let poison = self.holder.poisons_on_drop();
        let held = self.lease.held();
        held.reclaim(held.slot.unlock_write(poison));
    }
}

impl<T, U: ?Sized + fmt::Debug, K> fmt::Debug for OwnedWriteGuard<T, U, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("OwnedWriteGuard").field(&&**self).finish()
    }
}

// === key() ===

impl<T, U: ?Sized, K: Key> OwnedReadGuard<T, U, K> {
    /// The key of the value the guard holds; see
    /// [`ReadGuard::key`](super::ReadGuard::key).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::OwnedReadGuard};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// assert_eq!(OwnedReadGuard::key(&arena.get_owned(token).unwrap()), token);
    /// ```
    pub fn key(this: &Self) -> K {
        K::from_token(this.lease.held().key())
    }
}

impl<T, U: ?Sized, K: Key> OwnedWriteGuard<T, U, K> {
    /// The key of the value the guard holds; see
    /// [`ReadGuard::key`](super::ReadGuard::key).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{SlotArena, arena::OwnedWriteGuard};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// assert_eq!(OwnedWriteGuard::key(&arena.get_mut_owned(token).unwrap()), token);
    /// ```
    pub fn key(this: &Self) -> K {
        K::from_token(this.lease.held().key())
    }
}
