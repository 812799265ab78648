//! The loom backend: the same names and signatures as `std_impl`, built on
//! loom's model-checked primitives.

use alloc::boxed::Box;
use alloc::format;
use core::ptr;

pub(crate) use loom::cell::UnsafeCell;
pub(crate) use loom::hint::spin_loop;
pub(crate) use loom::sync::Arc;
pub(crate) use loom::sync::atomic::{
    AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

/// `crossbeam_utils::Backoff` for loom: done at once, so a waiter parks
/// without spinning (every spin is a branch loom would explore, and
/// crossbeam's spin loop is invisible to loom).
#[derive(Debug, Default)]
pub(crate) struct Backoff;

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff
    }

    pub(crate) fn snooze(&self) {
        spin_loop();
    }

    pub(crate) fn is_completed(&self) -> bool {
        true
    }
}

loom::lazy_static! {
    /// The parking lot of a model: one lock and one condition variable for
    /// every key (waking too many waiters is allowed; losing one is not).
    static ref PARKING_LOT: (loom::sync::Mutex<()>, loom::sync::Condvar) =
        (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
}

/// `parking_lot_core::park`'s contract: `validate` runs under the lot's
/// lock, and the waiter sleeps only if it answers `true`.
pub(crate) fn park(_key: usize, validate: impl FnOnce() -> bool) {
    let (lock, condvar) = &*PARKING_LOT;
    let guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if validate() {
        drop(condvar.wait(guard));
    }
}

/// Wakes every parked thread (the key is ignored: waiters re-check), and
/// every task waiting in [`listen_for_unpark`].
pub(crate) fn unpark_all(_key: usize) {
    let (lock, condvar) = &*PARKING_LOT;
    let guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    condvar.notify_all();
    drop(guard);
    UNPARKED.notify(usize::MAX);
}

loom::lazy_static! {
    /// Tasks waiting for a slot's lock (see `std_impl`).
    static ref UNPARKED: event_listener::Event = event_listener::Event::new();
}

/// A listener for the next [`unpark_all`].
pub(crate) fn listen_for_unpark() -> event_listener::EventListener {
    UNPARKED.listen()
}

/// The loom thread's number (0 for the model's main thread, then 1, 2, …
/// in spawn order) plus the times it moved ([`rehome`]), so each model
/// thread starts on its own home shard, the same in every explored
/// execution, and moves as a real thread does.
pub(crate) fn thread_hint() -> usize {
    thread_identity() + MOVES.with(core::cell::Cell::get)
}

loom::thread_local! {
    /// How many times this model thread moved its home.
    static MOVES: core::cell::Cell<usize> = core::cell::Cell::new(0);
}

/// Moves the calling model thread's home to the next shard, at every
/// meeting the free pool reports: more often than a build, which moves a
/// thread only where that evens the shards out (`sync/threads.rs`), so
/// the models explore a thread's home changing under the free pool's
/// protocol wherever a build could change it.
pub(crate) fn rehome() {
    MOVES.with(|moves| moves.set(moves.get() + 1));
}

/// The loom thread's number: loom threads never share one.
pub(crate) fn thread_identity() -> usize {
    let id = format!("{:?}", loom::thread::current().id());
    id.trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .unwrap_or(0)
}

/// Two shards unless `SLOTARENA_LOOM_SHARDS` says otherwise: two is the
/// smallest count that steals between shards, and keeps the models that
/// grow an arena or fill it quick to explore; every build ships at least
/// four (two per core, at least two cores counted: `std_impl::shard_count`),
/// and `.ci/loom.sh` runs the free pool's models at four too.
pub(crate) fn shard_count() -> usize {
    std::env::var("SLOTARENA_LOOM_SHARDS")
        .ok()
        .and_then(|shards| shards.parse().ok())
        .unwrap_or(2)
}

/// loom's `Mutex` in `parking_lot`'s shape.
#[derive(Debug)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex(loom::sync::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> loom::sync::MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `std::sync::OnceLock` rebuilt on a loom `AtomicPtr`, so loom sees the
/// publication of every lazily created segment.
///
/// Initialisers may race (the linear memory makes its freed-start bitmaps
/// without a lock): the compare-and-swap publishes one value and the losers'
/// values are dropped, so every caller gets the same one, as with std.
#[derive(Debug)]
pub(crate) struct OnceLock<T> {
    value: AtomicPtr<T>,
}

impl<T> OnceLock<T> {
    pub(crate) fn new() -> OnceLock<T> {
        OnceLock {
            value: AtomicPtr::new(ptr::null_mut()),
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        // Acquire pairs with the Release CAS in `get_or_init`, so the value's
        // initialisation is visible before it is read.
        let value = self.value.load(Ordering::Acquire);
        // SAFETY: a non-null pointer was made by `Box::into_raw` in
        // `get_or_init`, is never replaced once set, and is freed only in
        // `drop`, which needs `&mut self`, so it outlives `&self`.
        unsafe { value.as_ref() }
    }

    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        let value = self.value.with_mut(|value| *value);
        // SAFETY: as in `get`; `&mut self` makes the access exclusive.
        unsafe { value.as_mut() }
    }

    pub(crate) fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let fresh = Box::into_raw(Box::new(init()));
        // Release publishes the initialised value to `get`'s Acquire load.
        match self.value.compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: `fresh` came from `Box::into_raw` and is now owned by
            // `self` until `drop` (see `get`).
            Ok(_) => unsafe { &*fresh },
            Err(existing) => {
                // SAFETY: `fresh` was never shared; reclaim it.
                drop(unsafe { Box::from_raw(fresh) });
                // SAFETY: `existing` is non-null and owned by `self` (see `get`).
                unsafe { &*existing }
            }
        }
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        let value = self.value.with_mut(|value| *value);
        if !value.is_null() {
            // SAFETY: `value` came from `Box::into_raw` and `&mut self` means
            // no reference from `get` is live.
            drop(unsafe { Box::from_raw(value) });
        }
    }
}
