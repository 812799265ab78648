//! [`Iter`]: a weakly consistent walk over an arena's values.

use core::fmt;
use core::marker::PhantomData;

use super::Core;
use super::guards::{Held, ReadGuard};
use crate::{Key, MessageToken};

/// Iterator over the values of a [`SlotArena`](crate::SlotArena), made by
/// [`SlotArena::iter`](crate::SlotArena::iter).
///
/// Weakly consistent: it yields every value present for the whole
/// iteration, and may or may not yield values inserted or removed
/// meanwhile. It never waits: a value locked for writing, poisoned, or at
/// its reader limit is skipped.
pub struct Iter<'a, T, K = MessageToken> {
    core: &'a Core<T>,
    next: usize,
    _key: PhantomData<fn() -> K>,
}

impl<'a, T, K> Iter<'a, T, K> {
    pub(super) fn new(core: &'a Core<T>) -> Self {
        Iter {
            core,
            next: 0,
            _key: PhantomData,
        }
    }
}

impl<'a, T, K: Key> Iterator for Iter<'a, T, K> {
    type Item = (K, ReadGuard<'a, T, T, K>);

    fn next(&mut self) -> Option<Self::Item> {
        // The capacity is read each step, so segments added by growth
        // during the walk are visited too.
        while self.next < self.core.created() {
            let index = self.next;
            self.next += 1;
            let Some((token, slot)) = self.core.live_at(index) else {
                continue;
            };
            if slot.lock_read(token, false).is_ok() {
                let held = Held {
                    slot,
                    recycle: self.core,
                    token,
                };
                return Some((K::from_token(token), ReadGuard::new(held)));
            }
        }
        None
    }
}

impl<T, K> fmt::Debug for Iter<'_, T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("next", &self.next).finish()
    }
}
