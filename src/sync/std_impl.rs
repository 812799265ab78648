//! The real backend: `core` atomics, `std::sync::Arc`, `parking_lot`'s
//! mutex and `parking_lot_core`'s parking lot.

pub(crate) use core::hint::spin_loop;
pub(crate) use core::sync::atomic::{
    AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};
pub(crate) use std::sync::{Arc, OnceLock};

pub(crate) use parking_lot::Mutex;

/// Spins, then yields, before a waiter parks: slot critical sections are
/// short, so a waiter usually gets in without a system call.
pub(crate) use crossbeam_utils::Backoff;

/// An `UnsafeCell` with loom's closure API, so loom can track every access.
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(core::cell::UnsafeCell::new(value))
    }

    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Sleeps until [`unpark_all`] is called with the same `key`, unless
/// `validate` (run under the parking lot's lock) answers `false`.
///
/// `key` is the address of the atomic the waiter watches.
#[cold]
pub(crate) fn park(key: usize, validate: impl FnOnce() -> bool) {
    // SAFETY: `parking_lot_core::park` requires that `validate` and
    // `before_sleep` neither panic nor call into the parking lot; ours is a
    // single atomic load, and `before_sleep`/`timed_out` do nothing.
    unsafe {
        parking_lot_core::park(
            key,
            validate,
            || {},
            |_, _| {},
            parking_lot_core::DEFAULT_PARK_TOKEN,
            None,
        );
    }
}

/// Wakes every thread parked on `key`, and every task waiting in
/// [`listen_for_unpark`] (of any key: tasks re-check what they wait for).
#[cold]
pub(crate) fn unpark_all(key: usize) {
    // SAFETY: `unpark_all` has no safety requirement beyond a key; it is an
    // `unsafe fn` only because waking threads in a callback is forbidden,
    // and we call it from no callback.
    unsafe {
        parking_lot_core::unpark_all(key, parking_lot_core::DEFAULT_UNPARK_TOKEN);
    }
    UNPARKED.notify(usize::MAX);
}

/// Tasks waiting for a slot's lock, for every arena: the async twin of
/// the parking lot, notified by every [`unpark_all`].
static UNPARKED: event_listener::Event = event_listener::Event::new();

/// A listener for the next [`unpark_all`]; register it before marking the
/// word `PARKED`, so an unpark in between is not missed.
pub(crate) fn listen_for_unpark() -> event_listener::EventListener {
    UNPARKED.listen()
}

/// Per-thread shards per arena: two per core, so every core has its own
/// with room for oversubscription; a power of two so a hint maps to a shard
/// with a mask. Computed once: asking the OS for the core count is slow.
pub(crate) fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(4, |cores| cores.get())
            .clamp(2, 32)
            .next_power_of_two()
            * 2
    })
}
