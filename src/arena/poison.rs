//! Which panic poisons a value: the one in flight on the thread that drops
//! a write guard, if it began while that thread held the guard.
//!
//! std's `MutexGuard` is `!Send`, so std can compare "panicking when the
//! guard was made" with "panicking when it drops" on one thread. Our write
//! guards are `Send` (an owned guard may cross `.await` points and
//! threads), so those two facts may belong to different threads: a guard
//! made by a thread that was already unwinding, sent to a healthy thread
//! that then panics halfway through an update, must poison; a guard made
//! by a healthy thread and dropped, untouched, by a thread that was already
//! unwinding when it got the guard must not (issue 18).
//!
//! A guard cannot see itself move between threads, so it remembers the
//! last thread that held it while *not* panicking, as far as it can see:
//! the thread that created it and every thread that reached the value
//! through `DerefMut` (the only way to change the value through the guard).
//! It poisons when dropped by that same thread while that thread panics:
//! the panic then began after the thread last held the guard healthy, so
//! it may have interrupted an update. A thread that is handed a guard and
//! panics before touching the value has not changed it, and does not
//! poison it.

use crate::sync::thread_hint;

/// No healthy holder seen yet (the guard was made during unwinding).
const NOBODY: usize = usize::MAX;

/// The last thread seen holding a write guard while not panicking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HealthyHolder(usize);

impl HealthyHolder {
    /// For a guard the calling thread has just taken.
    #[inline]
    pub(crate) fn now() -> Self {
        let mut holder = HealthyHolder(NOBODY);
        holder.touch();
        holder
    }

    /// The calling thread reaches the value mutably through the guard.
    #[inline]
    pub(crate) fn touch(&mut self) {
        if !std::thread::panicking() {
            self.0 = thread_hint();
        }
    }

    /// Whether dropping the guard on the calling thread poisons the value.
    #[inline]
    pub(crate) fn poisons_on_drop(&self) -> bool {
        std::thread::panicking() && self.0 == thread_hint()
    }
}
