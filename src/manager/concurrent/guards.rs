//! The guards `ConcurrentMemoryManager` hands out: thin wrappers over the
//! arena's slot-lock guards that show the message, not the share count.

use core::ops::{Deref, DerefMut};

use super::Entry;
use crate::arena;
use crate::{Message, MessageHeader};

/// Shared access to a message, created by
/// [`read_shared`](super::ConcurrentMemoryManager::read_shared) and
/// [`try_read_shared`](super::ConcurrentMemoryManager::try_read_shared).
///
/// While it lives, writers of the same message wait and `free_shared`
/// answers `BorrowActive`. It is not `Send`: drop it on the thread that
/// made it.
#[must_use = "if unused the slot unlocks at once"]
#[clippy::has_significant_drop]
pub struct ReadGuard<'a, P> {
    pub(super) inner: arena::ReadGuard<'a, Entry<P>>,
}

impl<P> Deref for ReadGuard<'_, P> {
    type Target = Message<P>;

    #[inline]
    fn deref(&self) -> &Message<P> {
        &self.inner.message
    }
}

/// Exclusive access to a message, created by
/// [`read_mut_shared`](super::ConcurrentMemoryManager::read_mut_shared) and
/// [`try_read_mut_shared`](super::ConcurrentMemoryManager::try_read_mut_shared).
///
/// If its thread panics while it is held, the message is marked poisoned:
/// reads answer `Poisoned` until it is freed.
#[must_use = "if unused the slot unlocks at once"]
#[clippy::has_significant_drop]
pub struct WriteGuard<'a, P> {
    pub(super) inner: arena::WriteGuard<'a, Entry<P>>,
}

impl<P> Deref for WriteGuard<'_, P> {
    type Target = Message<P>;

    #[inline]
    fn deref(&self) -> &Message<P> {
        &self.inner.message
    }
}

impl<P> DerefMut for WriteGuard<'_, P> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Message<P> {
        &mut self.inner.message
    }
}

/// Shared access to a message's header, created by
/// [`peek_header_shared`](super::ConcurrentMemoryManager::peek_header_shared).
/// It holds the slot's read lock like a [`ReadGuard`].
#[must_use = "if unused the slot unlocks at once"]
#[clippy::has_significant_drop]
pub struct HeaderGuard<'a, P> {
    pub(super) inner: arena::ReadGuard<'a, Entry<P>>,
}

impl<P> Deref for HeaderGuard<'_, P> {
    type Target = MessageHeader;

    #[inline]
    fn deref(&self) -> &MessageHeader {
        self.inner.message.header()
    }
}
