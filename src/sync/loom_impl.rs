//! The loom backend: the same names and signatures as `std_impl`, built on
//! loom's model-checked primitives.

use alloc::boxed::Box;
use core::ptr;

pub(crate) use loom::hint::spin_loop;
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
pub(crate) use loom::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

/// The loom thread's identity, hashed: loom runs every model thread on one
/// OS thread, so a real thread-local would give them all the same hint.
pub(crate) fn thread_hint() -> usize {
    use core::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    loom::thread::current().id().hash(&mut hasher);
    hasher.finish() as usize
}

/// One shard. With two, loom 0.7.2 trips its own internal consistency
/// assertion (`match_rmw_to_stores` in `rt/atomic.rs`, the known loom issues
/// #252 and #389) before checking anything of ours. With one shard the
/// models still run every pool path (home pop, shared pop, whole-chain
/// `take_all` and its push back); stealing between distinct shards is
/// exercised by the multi-threaded stress tests instead.
pub(crate) fn shard_count() -> usize {
    1
}

/// loom's `RwLock` in `parking_lot`'s shape: no `LockResult` layer (the
/// crate never relies on lock poisoning; it tracks poison itself).
#[derive(Debug)]
pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> RwLock<T> {
        RwLock(loom::sync::RwLock::new(value))
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        match self.0.try_read() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    pub(crate) fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        match self.0.try_write() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
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
/// Initialisation is serialised by the caller (the arena's growth mutex);
/// a racing second initialiser would lose its value (dropped), as with std.
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
