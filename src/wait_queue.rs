//! [`WaitQueue`]: where threads and tasks wait for room (a free slot, free
//! bytes, a claim's end), woken by whatever makes it.
//!
//! The protocol every user follows (invariant Q1):
//! - a waiter [`register`](WaitQueue::register)s, starts
//!   [`listen`](WaitQueue::listen)ing, then performs a read-modify-write on
//!   every atomic location a freer's last read-modify-write could target
//!   (a free-list head, a per-thread byte counter, a claim flag), and only
//!   then tries again and sleeps or awaits;
//! - a freer ends with a read-modify-write with Release (and Acquire)
//!   ordering on one of those locations, then calls
//!   [`notify_one`](WaitQueue::notify_one) or
//!   [`notify_all`](WaitQueue::notify_all), which cost one relaxed load
//!   when nobody waits.
//!
//! For the location a freer targets, either the waiter's read-modify-write
//! comes first in its modification order — then the freer's reads it,
//! synchronises with it, and so sees the registration — or the freer's
//! comes first, and the waiter's then sees the room it made. Either way no
//! wake-up is lost; the loom models in `loom-tests/tests/waiting.rs` check
//! it for the arena.
//!
//! Listeners are notified in the order they started listening; one that is
//! dropped after its notification (a cancelled future, a timed-out wait)
//! passes it on.

use std::time::{Duration, Instant};

use event_listener::{Event, EventListener, IntoNotification};

use crate::sync::{AtomicUsize, Ordering};

/// Threads and tasks waiting for one kind of room.
#[derive(Default)]
pub(crate) struct WaitQueue {
    event: Event,
    /// Registered waiters (see the module docs).
    waiters: AtomicUsize,
}

impl WaitQueue {
    /// Wakes one more waiter, if any is registered: one relaxed load when
    /// none is. Call it after the freeing read-modify-write (Q1).
    #[inline]
    pub(crate) fn notify_one(&self) {
        // Relaxed: ordered after the freer's read-modify-write by Q1.
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.event.notify(1.additional());
        }
    }

    /// Wakes every registered waiter: for room that several may share (free
    /// bytes of any size, a claim any waiter may take). One relaxed load
    /// when nobody waits.
    #[inline]
    pub(crate) fn notify_all(&self) {
        // Relaxed: as in `notify_one`.
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.event.notify(usize::MAX);
        }
    }

    /// Wakes every listener, without the shortcut on the count of
    /// registered waiters: for a rare change that a waiter checks after it
    /// starts listening (room that can never come). event-listener's
    /// `notify` is fenced against `listen`, so a waiter that starts
    /// listening after this call sees the change in its next look.
    #[cold]
    pub(crate) fn notify_all_listeners(&self) {
        self.event.notify(usize::MAX);
    }

    /// Whether anyone waits: a newcomer then queues behind them instead of
    /// taking room first.
    fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::Relaxed) != 0
    }

    /// Registers a waiter until the returned value drops (also when a
    /// future is cancelled).
    fn register(&self) -> Registration<'_> {
        // Relaxed: published to freers by the read-modify-writes that
        // follow (Q1).
        self.waiters.fetch_add(1, Ordering::Relaxed);
        Registration(self)
    }

    /// A listener for the next notification; take it before the last look
    /// for room.
    fn listen(&self) -> EventListener {
        self.event.listen()
    }
}

/// Which look for room an attempt is making.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Look {
    /// Before registering: the plain fast path.
    First,
    /// After registering and listening: must end with the read-modify-
    /// writes of Q1, so a racing freer is not missed.
    Registered,
}

impl WaitQueue {
    /// Runs `attempt` until it finds room (`Ok`), waiting between looks as
    /// long as `patience` allows; `state` (the value to store, say) goes
    /// from look to look and comes back when the patience runs out.
    /// `queue` makes a newcomer wait behind registered waiters instead of
    /// taking room first (only for room handed out one at a time).
    pub(crate) fn wait<S, R>(
        &self,
        patience: Patience,
        queue: bool,
        state: S,
        attempt: impl FnMut(S, Look) -> Result<R, S>,
    ) -> Result<R, S> {
        self.wait_while(patience, queue, state, || true, attempt)
    }

    /// [`wait`](Self::wait) that also gives up, with `state`, once
    /// `possible` answers `false` after a look: room that can never come.
    /// Whoever makes it impossible calls
    /// [`notify_all_listeners`](Self::notify_all_listeners) afterwards.
    pub(crate) fn wait_while<S, R>(
        &self,
        patience: Patience,
        queue: bool,
        state: S,
        possible: impl Fn() -> bool,
        mut attempt: impl FnMut(S, Look) -> Result<R, S>,
    ) -> Result<R, S> {
        let mut state = if queue && self.has_waiters() {
            state
        } else {
            match attempt(state, Look::First) {
                Ok(found) => return Ok(found),
                Err(state) => state,
            }
        };
        let _registered = self.register();
        loop {
            let listener = self.listen();
            state = match attempt(state, Look::Registered) {
                Ok(found) => return Ok(found),
                Err(state) => state,
            };
            if !possible() {
                return Err(state);
            }
            if !patience.wait(listener) {
                // One last look: room may have come with the deadline.
                return attempt(state, Look::Registered);
            }
        }
    }

    /// [`wait`](Self::wait) as a future, waiting without a time limit.
    /// Cancel-safe as long as `attempt` changes nothing when it fails:
    /// dropping the future drops `state` and unregisters, and a
    /// notification it had received passes to the next listener.
    pub(crate) async fn wait_async<S, R>(
        &self,
        queue: bool,
        state: S,
        attempt: impl FnMut(S, Look) -> Result<R, S>,
    ) -> Result<R, S> {
        self.wait_async_while(queue, state, || true, attempt).await
    }

    /// [`wait_async`](Self::wait_async) that gives up as
    /// [`wait_while`](Self::wait_while) does.
    pub(crate) async fn wait_async_while<S, R>(
        &self,
        queue: bool,
        state: S,
        possible: impl Fn() -> bool,
        mut attempt: impl FnMut(S, Look) -> Result<R, S>,
    ) -> Result<R, S> {
        let mut state = if queue && self.has_waiters() {
            state
        } else {
            match attempt(state, Look::First) {
                Ok(found) => return Ok(found),
                Err(state) => state,
            }
        };
        let _registered = self.register();
        loop {
            let listener = self.listen();
            state = match attempt(state, Look::Registered) {
                Ok(found) => return Ok(found),
                Err(state) => state,
            };
            if !possible() {
                return Err(state);
            }
            listener.await;
        }
    }
}

/// A waiter's registration; see [`WaitQueue::register`].
struct Registration<'a>(&'a WaitQueue);

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long a blocking wait lasts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Patience {
    Forever,
    Until(Instant),
}

impl Patience {
    /// Until `timeout` from now (forever if that instant is not
    /// representable).
    pub(crate) fn timeout(timeout: Duration) -> Patience {
        Instant::now()
            .checked_add(timeout)
            .map_or(Patience::Forever, Patience::Until)
    }

    /// Blocks on `listener` as long as the patience allows; `false` when it
    /// ran out first.
    fn wait(self, listener: EventListener) -> bool {
        use event_listener::Listener;
        match self {
            Patience::Forever => {
                listener.wait();
                true
            }
            Patience::Until(deadline) => listener.wait_deadline(deadline).is_some(),
        }
    }
}
