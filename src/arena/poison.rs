//! Which panic poisons a value: one in flight on the thread that drops a
//! write guard, unless that thread is known to have got the guard only
//! after its panic began.
//!
//! std's `MutexGuard` is `!Send`, so std can compare "panicking when the
//! guard was made" with "panicking when it drops" on one thread. Our write
//! guards are `Send` (an owned guard crosses `.await` points, and a
//! work-stealing runtime resumes the task on another thread), so those two
//! facts may belong to different threads (issue 18). A guard cannot see
//! itself move between threads; it sees only the threads that make it or
//! reach the value mutably through it (`DerefMut`, `map`). So it remembers
//! the last such thread, and whether that thread was ever seen holding it
//! while *not* panicking.
//!
//! Dropped by a panicking thread, the guard poisons unless that thread is
//! the one it last saw and was seen holding it only while already
//! panicking: the guard reached it during the unwinding, and everything
//! it did to the value then ran to completion (a second panic would have
//! aborted). In every other case the panic may have interrupted an update:
//! the thread held the guard healthy before it panicked, or the guard moved
//! to it unseen (a task resumed on another worker, holding `&mut` from
//! before its `.await`), and poisoning is the safe answer.
//!
//! What no rule without a hook on moves can tell apart: a guard handed,
//! untouched, to a thread that is already unwinding looks like a task
//! resumed on another worker; it poisons (a false alarm, recoverable).
//! And a guard that leaves a panicking thread for a healthy one that drops
//! it does not poison, as no panic is in flight where it drops.

use crate::sync::thread_identity;

/// The last thread seen holding a write guard, and whether it was ever
/// seen holding it while not panicking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Holder {
    thread: usize,
    seen_healthy: bool,
}

impl Holder {
    /// For a guard the calling thread has just taken.
    #[inline]
    pub(crate) fn now() -> Self {
        Holder {
            thread: thread_identity(),
            seen_healthy: !std::thread::panicking(),
        }
    }

    /// The calling thread reaches the value mutably through the guard.
    #[inline]
    pub(crate) fn touch(&mut self) {
        let healthy = !std::thread::panicking();
        let thread = thread_identity();
        if thread == self.thread {
            // Once seen healthy, a later panic on the same thread began
            // while it held the guard.
            self.seen_healthy |= healthy;
        } else {
            *self = Holder {
                thread,
                seen_healthy: healthy,
            };
        }
    }

    /// Whether dropping the guard on the calling thread poisons the value.
    #[inline]
    pub(crate) fn poisons_on_drop(&self) -> bool {
        std::thread::panicking() && (self.seen_healthy || self.thread != thread_identity())
    }
}
