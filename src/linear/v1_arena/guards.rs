//! Guards over one arena slot's value.

use core::ops::{Deref, DerefMut};

use super::slot::POISONED;
use super::{RwLockReadGuard, RwLockWriteGuard};
use crate::sync::{AtomicU64, Ordering};

/// The value of a slot that a guard holds; guards exist only on occupied
/// slots (S2), so `None` cannot happen.
#[inline]
fn occupied<T>(value: &Option<T>) -> &T {
    match value {
        Some(value) => value,
        None => unreachable!("guards exist only on occupied slots (S2)"),
    }
}

/// Shared access to an arena value; holds the slot's read lock.
#[must_use = "if unused the slot unlocks at once"]
#[clippy::has_significant_drop]
pub(crate) struct ReadGuard<'a, T> {
    guard: RwLockReadGuard<'a, Option<T>>,
}

impl<'a, T> ReadGuard<'a, T> {
    /// Wraps a read lock whose slot the caller checked to be occupied (S2).
    pub(super) fn new(guard: RwLockReadGuard<'a, Option<T>>) -> Self {
        debug_assert!(guard.is_some(), "read guard on an empty slot");
        ReadGuard { guard }
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        occupied(&self.guard)
    }
}

/// Exclusive access to an arena value; holds the slot's write lock and
/// poisons the slot if dropped by a panic that began while it was held.
#[must_use = "if unused the slot unlocks at once"]
#[clippy::has_significant_drop]
pub(crate) struct WriteGuard<'a, T> {
    guard: RwLockWriteGuard<'a, Option<T>>,
    state: &'a AtomicU64,
    panicking_at_start: bool,
}

impl<'a, T> WriteGuard<'a, T> {
    /// Wraps a write lock whose slot the caller checked to be occupied (S2).
    pub(super) fn new(guard: RwLockWriteGuard<'a, Option<T>>, state: &'a AtomicU64) -> Self {
        debug_assert!(guard.is_some(), "write guard on an empty slot");
        WriteGuard {
            guard,
            state,
            panicking_at_start: std::thread::panicking(),
        }
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        occupied(&self.guard)
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        match &mut *self.guard {
            Some(value) => value,
            None => unreachable!("guards exist only on occupied slots (S2)"),
        }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // Like std's poison flag: only a panic that started while this guard
        // was held can have left the value half-updated.
        if !self.panicking_at_start && std::thread::panicking() {
            // Relaxed: the write lock is still held (S1); its release orders
            // this for the next locker.
            self.state.fetch_or(POISONED, Ordering::Relaxed);
        }
    }
}
