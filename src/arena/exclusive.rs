//! Exclusive access: [`Exclusive`], a view of an arena whose handle is the
//! only one, and the iterators that need no guard and wait for nothing.
//!
//! `&mut SlotArena` alone does not exclude other threads: clones of the
//! handle (and owned guards, which hold one) reach the same values. So the
//! view is handed out only when the handle's `Arc` is unique
//! (`Arc::get_mut`), and it borrows the handle mutably, which excludes the
//! borrowed guards of this handle too. With that proof, values are reached
//! by plain loads of their words and plain references: no read-modify-write,
//! no lock, no wait.

#![allow(unsafe_code)]

use core::fmt;
use core::marker::PhantomData;

use super::word::{self, POISONED, PRESENT};
use super::{Core, MAX_CAPACITY, Recycle};
use crate::sync::Arc;
use crate::{Key, MemoryError, MessageToken, SlotArena};

/// Exclusive access to every value of a [`SlotArena`] whose handle is the
/// only one: plain `&T`/`&mut T` with no guard and no waiting, under the
/// names slotmap and slab use. Made by [`SlotArena::exclusive`].
///
/// Poisoned values answer [`MemoryError::Poisoned`] to [`get`](Self::get)
/// and [`get_mut`](Self::get_mut) and are skipped by the iterators, as
/// [`SlotArena::iter`] skips them; [`drain`](Self::drain) and
/// [`clear`](Self::clear) drop them.
///
/// # Examples
///
/// ```
/// use slotarena::SlotArena;
///
/// let mut arena = SlotArena::new(4);
/// let a = arena.insert(1).unwrap();
/// arena.insert(2).unwrap();
/// let mut all = arena.exclusive().expect("no other handle");
/// *all.get_mut(a).unwrap() += 10;
/// for value in all.values_mut() {
///     *value *= 2;
/// }
/// let mut values: Vec<i32> = all.values().copied().collect();
/// values.sort();
/// assert_eq!(values, [4, 22]);
/// ```
pub struct Exclusive<'a, T, K = MessageToken> {
    core: &'a Core<T>,
    /// The view stands for `&'a mut` of the arena (`SlotArena::exclusive`
    /// got it from `Arc::get_mut`), so it is neither `Copy` nor covariant.
    _exclusive: PhantomData<&'a mut Core<T>>,
    _key: PhantomData<fn(K) -> K>,
}

impl<T, K: Key> SlotArena<T, K> {
    /// Exclusive access to every value, if this handle is the only one (no
    /// clone and no owned guard exists); `None` otherwise. The `&mut`
    /// borrow excludes this handle's own guards.
    ///
    /// This is where slotmap's and slab's `&mut self` methods live:
    /// `get_mut` with no lock is `exclusive()?.get_mut(key)` (the arena's
    /// own [`get_mut`](Self::get_mut) takes `&self` and a write lock).
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::SlotArena;
    ///
    /// let mut arena = SlotArena::new(2);
    /// let token = arena.insert(String::from("a")).unwrap();
    /// let other = arena.clone();
    /// assert!(arena.exclusive().is_none(), "another handle exists");
    /// drop(other);
    /// arena.exclusive().unwrap().get_mut(token).unwrap().push('b');
    /// assert_eq!(*arena.get(token).unwrap(), "ab");
    /// ```
    pub fn exclusive(&mut self) -> Option<Exclusive<'_, T, K>> {
        // Mutation `exclusive_ignores_other_handles`: the view without the
        // proof that no other handle exists.
        if cfg!(slotarena_mutation = "exclusive_ignores_other_handles") {
            return Some(Exclusive {
                core: &*self.core,
                _exclusive: PhantomData,
                _key: PhantomData,
            });
        }
        Arc::get_mut(&mut self.core).map(|core| Exclusive {
            core: &*core,
            _exclusive: PhantomData,
            _key: PhantomData,
        })
    }
}

impl<T, K: Key> Exclusive<'_, T, K> {
    /// The value `token` names.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(1);
    /// let token = arena.insert(5).unwrap();
    /// assert_eq!(arena.exclusive().unwrap().get(token), Ok(&5));
    /// ```
    pub fn get(&self, key: K) -> Result<&T, MemoryError> {
        let ptr = self.value(key.to_token())?;
        // SAFETY: the view holds the arena exclusively (no guard, no other
        // handle), and `&self` lends the value only shared.
        Ok(unsafe { &*ptr })
    }

    /// The value `token` names, mutably: no lock, no waiting.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(1);
    /// let token = arena.insert(5).unwrap();
    /// *arena.exclusive().unwrap().get_mut(token).unwrap() = 6;
    /// assert_eq!(*arena.get(token).unwrap(), 6);
    /// ```
    pub fn get_mut(&mut self, key: K) -> Result<&mut T, MemoryError> {
        let ptr = self.value(key.to_token())?;
        // SAFETY: the view holds the arena exclusively, and `&mut self`
        // makes this the only reference it lends.
        Ok(unsafe { &mut *ptr })
    }

    fn value(&self, token: MessageToken) -> Result<*mut T, MemoryError> {
        let (slot, ()) = self.core.place(token)?;
        let word = slot.check(token)?;
        if word & POISONED != 0 {
            return Err(MemoryError::Poisoned);
        }
        Ok(slot.value_mut_ptr())
    }

    /// Whether `token` names a live value (poisoned values included).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(1);
    /// let token = arena.insert(5).unwrap();
    /// assert!(arena.exclusive().unwrap().contains(token));
    /// ```
    pub fn contains(&self, key: K) -> bool {
        self.core.check(key.to_token()).is_ok()
    }

    /// The number of values (exact: nothing else runs).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(2);
    /// arena.insert(5).unwrap();
    /// assert_eq!(arena.exclusive().unwrap().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether [`len`](Self::len) is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::<u8>::new(2);
    /// assert!(arena.exclusive().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every value with its token, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert('x').unwrap();
    /// let all = arena.exclusive().unwrap();
    /// assert_eq!(all.iter().collect::<Vec<_>>(), [(token, &'x')]);
    /// ```
    pub fn iter(&self) -> ExclusiveIter<'_, T, K> {
        ExclusiveIter {
            walk: Walk::new(self.core),
            _values: PhantomData,
            _key: PhantomData,
        }
    }

    /// Every value mutably with its token, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// for (_, value) in arena.exclusive().unwrap().iter_mut() {
    ///     *value += 1;
    /// }
    /// assert_eq!(*arena.get(token).unwrap(), 2);
    /// ```
    pub fn iter_mut(&mut self) -> IterMut<'_, T, K> {
        IterMut {
            walk: Walk::new(self.core),
            _values: PhantomData,
            _key: PhantomData,
        }
    }

    /// Every token, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// assert_eq!(arena.exclusive().unwrap().keys().collect::<Vec<_>>(), [token]);
    /// ```
    pub fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.iter().map(|(token, _)| token)
    }

    /// Every value, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(2);
    /// arena.insert(1).unwrap();
    /// assert_eq!(arena.exclusive().unwrap().values().sum::<i32>(), 1);
    /// ```
    pub fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.iter().map(|(_, value)| value)
    }

    /// Every value mutably, in slot order.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// arena.exclusive().unwrap().values_mut().for_each(|value| *value = 7);
    /// assert_eq!(*arena.get(token).unwrap(), 7);
    /// ```
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.iter_mut().map(|(_, value)| value)
    }

    /// Removes every value, yielding each healthy one with its token;
    /// poisoned values are dropped. Values the iterator did not reach
    /// (it was dropped early) are removed and dropped too, except while a
    /// panic unwinds: then they stay in the arena (and drop with it), so
    /// a second panicking `Drop` cannot abort the process. Every token of
    /// a removed value answers `NotAllocated` afterwards.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(4);
    /// let token = arena.insert(1).unwrap();
    /// let drained: Vec<_> = arena.exclusive().unwrap().drain().collect();
    /// assert_eq!(drained, [(token, 1)]);
    /// assert!(arena.is_empty());
    /// ```
    pub fn drain(&mut self) -> Drain<'_, T, K> {
        Drain {
            core: self.core,
            next: 0,
            _exclusive: PhantomData,
            _key: PhantomData,
        }
    }

    /// Removes and drops every value (poisoned ones included) and frees
    /// every slot, also the slot of a vacant entry passed to
    /// `mem::forget`. If a value's `Drop` panics, the values not yet
    /// dropped stay in the arena (and are dropped with it).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut arena = slotarena::SlotArena::new(4);
    /// let token = arena.insert(1).unwrap();
    /// arena.exclusive().unwrap().clear();
    /// assert!(arena.is_empty() && !arena.contains(token));
    /// assert_eq!(arena.capacity(), 4);
    /// ```
    pub fn clear(&mut self) {
        self.drain().for_each(drop);
        // SAFETY: the view holds the arena exclusively (`Arc::get_mut`
        // and `&mut self`): no guard, entry or other handle exists.
        unsafe { self.core.relist_vacant() };
    }
}

impl<T: fmt::Debug, K: Key> fmt::Debug for Exclusive<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'b, T, K: Key> IntoIterator for &'b Exclusive<'_, T, K> {
    type Item = (K, &'b T);
    type IntoIter = ExclusiveIter<'b, T, K>;

    fn into_iter(self) -> ExclusiveIter<'b, T, K> {
        self.iter()
    }
}

impl<'b, T, K: Key> IntoIterator for &'b mut Exclusive<'_, T, K> {
    type Item = (K, &'b mut T);
    type IntoIter = IterMut<'b, T, K>;

    fn into_iter(self) -> IterMut<'b, T, K> {
        self.iter_mut()
    }
}

/// Slot indexes in order, yielding the healthy values of an arena held
/// exclusively.
struct Walk<'a, T> {
    core: &'a Core<T>,
    next: usize,
}

impl<'a, T> Walk<'a, T> {
    fn new(core: &'a Core<T>) -> Self {
        Walk { core, next: 0 }
    }

    /// The next healthy value's token and a pointer to it.
    fn next(&mut self) -> Option<(MessageToken, *mut T)> {
        while self.next < self.core.created() {
            let index = self.next;
            self.next += 1;
            let slot = &self.core.places.get(index)?.slot;
            let word = slot.word();
            if word::state(word) == PRESENT && word & POISONED == 0 {
                let token = MessageToken::new(index as u32, word::generation(word));
                return Some((token, slot.value_mut_ptr()));
            }
        }
        None
    }
}

/// The values of an [`Exclusive`] view with their tokens, shared; made by
/// [`Exclusive::iter`].
pub struct ExclusiveIter<'a, T, K = MessageToken> {
    walk: Walk<'a, T>,
    _values: PhantomData<&'a T>,
    _key: PhantomData<fn() -> K>,
}

impl<'a, T, K: Key> Iterator for ExclusiveIter<'a, T, K> {
    type Item = (K, &'a T);

    fn next(&mut self) -> Option<Self::Item> {
        let (token, ptr) = self.walk.next()?;
        // SAFETY: the iterator borrows the exclusive view shared for 'a, so
        // nothing writes the value meanwhile.
        Some((K::from_token(token), unsafe { &*ptr }))
    }
}

impl<T, K> fmt::Debug for ExclusiveIter<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExclusiveIter")
            .field("next", &self.walk.next)
            .finish()
    }
}

/// The values of an [`Exclusive`] view with their tokens, mutably; made
/// by [`Exclusive::iter_mut`].
pub struct IterMut<'a, T, K = MessageToken> {
    walk: Walk<'a, T>,
    _values: PhantomData<&'a mut T>,
    _key: PhantomData<fn() -> K>,
}

impl<'a, T, K: Key> Iterator for IterMut<'a, T, K> {
    type Item = (K, &'a mut T);

    fn next(&mut self) -> Option<Self::Item> {
        let (token, ptr) = self.walk.next()?;
        // SAFETY: the iterator borrows the exclusive view mutably for 'a
        // and visits each slot once, so the `&mut` it lends never alias.
        Some((K::from_token(token), unsafe { &mut *ptr }))
    }
}

impl<T, K> fmt::Debug for IterMut<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterMut")
            .field("next", &self.walk.next)
            .finish()
    }
}

/// Takes every value out of an arena held exclusively, in slot order;
/// made by [`Exclusive::drain`]. Dropping it removes the rest, unless a
/// panic is unwinding (then the rest stay in the arena).
pub struct Drain<'a, T, K = MessageToken> {
    core: &'a Core<T>,
    next: usize,
    _exclusive: PhantomData<&'a mut Core<T>>,
    _key: PhantomData<fn() -> K>,
}

impl<T, K: Key> Iterator for Drain<'_, T, K> {
    type Item = (K, T);

    fn next(&mut self) -> Option<Self::Item> {
        // SAFETY: the drain borrows the exclusive view mutably.
        let (token, value) = unsafe { evict_next(self.core, &mut self.next) }?;
        Some((K::from_token(token), value))
    }
}

impl<T, K> Drop for Drain<'_, T, K> {
    fn drop(&mut self) {
        // A value's `Drop` (here or in the caller's loop) is unwinding:
        // dropping more values could panic again and abort. Those left
        // stay in the arena, which drops them with itself.
        if std::thread::panicking() {
            return;
        }
        // SAFETY: as for `next`.
        while unsafe { evict_next(self.core, &mut self.next) }.is_some() {}
    }
}

impl<T, K> fmt::Debug for Drain<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain").field("next", &self.next).finish()
    }
}

/// Moves out the values at `*next` and on until a healthy one, which it
/// returns with its token; frees each slot before its value can drop (a
/// panicking `Drop` loses no slot).
///
/// # Safety
///
/// - The caller holds `core` exclusively (as [`Slot::evict`](super::slot::Slot::evict) requires).
unsafe fn evict_next<T>(core: &Core<T>, next: &mut usize) -> Option<(MessageToken, T)> {
    while *next < core.created() {
        let index = *next;
        *next += 1;
        let slot = &core.places.get(index)?.slot;
        // SAFETY: the caller holds the arena exclusively.
        let Some((word, value)) = (unsafe { slot.evict() }) else {
            continue;
        };
        core.recycle(index as u32);
        if word::state(word) == PRESENT && word & POISONED == 0 {
            let token = MessageToken::new(index as u32, word::generation(word));
            return Some((token, value));
        }
        // Poisoned, or removed under a guard that was forgotten: dropped.
        drop(value);
    }
    None
}

/// Every value of an arena with its token, by value; made by
/// `SlotArena::into_iter` (see its [`IntoIterator`] impl).
pub struct IntoIter<T, K = MessageToken> {
    /// The arena, if the consumed handle was its only one.
    core: Option<Arc<Core<T>>>,
    next: usize,
    _key: PhantomData<fn() -> K>,
}

impl<T, K: Key> Iterator for IntoIter<T, K> {
    type Item = (K, T);

    fn next(&mut self) -> Option<Self::Item> {
        let core = self.core.as_ref()?;
        // SAFETY: `into_iter` kept the core only if its handle was the only
        // one, and this iterator owns it without handing out clones.
        let (token, value) = unsafe { evict_next(core, &mut self.next) }?;
        Some((K::from_token(token), value))
    }
}

impl<T, K> fmt::Debug for IntoIter<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("next", &self.next)
            .finish()
    }
}

/// Consumes the handle. If it was the arena's only handle, yields every
/// healthy value with its token (poisoned values are dropped, as with
/// [`Exclusive::drain`]); otherwise the values stay with the other handles
/// and the iterator is empty, as dropping the handle would leave them.
///
/// # Examples
///
/// ```
/// use slotarena::SlotArena;
///
/// let arena = SlotArena::new(2);
/// let token = arena.insert("x").unwrap();
/// let other = arena.clone();
/// assert_eq!(arena.into_iter().count(), 0); // `other` still holds it
/// assert_eq!(other.into_iter().collect::<Vec<_>>(), [(token, "x")]);
/// ```
impl<T, K: Key> IntoIterator for SlotArena<T, K> {
    type Item = (K, T);
    type IntoIter = IntoIter<T, K>;

    fn into_iter(mut self) -> IntoIter<T, K> {
        let unique = Arc::get_mut(&mut self.core).is_some();
        IntoIter {
            core: unique.then_some(self.core),
            next: 0,
            _key: PhantomData,
        }
    }
}

/// A growable arena sized to the values, holding each of them (their
/// tokens come from [`iter`](SlotArena::iter) or the arena's `IntoIterator`).
///
/// # Panics
///
/// If there are more than [`SlotArena::MAX_CAPACITY`] values.
///
/// # Examples
///
/// ```
/// use slotarena::SlotArena;
///
/// let arena: SlotArena<u32> = (1..=3).collect();
/// assert_eq!((arena.len(), arena.capacity()), (3, 3));
/// ```
impl<T, K: Key> FromIterator<T> for SlotArena<T, K> {
    #[track_caller]
    fn from_iter<I: IntoIterator<Item = T>>(values: I) -> Self {
        let values: alloc::vec::Vec<T> = values.into_iter().collect();
        let mut arena = SlotArena::growable_with_key(values.len(), MAX_CAPACITY);
        arena.extend(values);
        arena
    }
}

/// Inserts every value, growing a growable arena as needed.
///
/// # Panics
///
/// If the arena is full at its maximum capacity: `extend` cannot hand a
/// value back. Use [`insert`](SlotArena::insert) to get it back instead.
///
/// # Examples
///
/// ```
/// let mut arena = slotarena::SlotArena::growable(0, 64);
/// arena.extend([1, 2, 3]);
/// assert_eq!(arena.len(), 3);
/// ```
impl<T, K: Key> Extend<T> for SlotArena<T, K> {
    #[track_caller]
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        for value in values {
            if self.insert(value).is_err() {
                panic!(
                    "SlotArena::extend: the arena is full at its maximum capacity ({})",
                    self.max_capacity()
                );
            }
        }
    }
}
