//! The real backend: `core` atomics, `std` `Arc`/`OnceLock`, `parking_lot` locks.

pub(crate) use core::hint::spin_loop;
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
pub(crate) use std::sync::{Arc, OnceLock};

pub(crate) use parking_lot::Mutex;

/// A small number that stays the same for the calling thread and differs
/// between threads (assigned in order of first use), so per-thread shards
/// can be picked without hashing or locking.
#[inline]
pub(crate) fn thread_hint() -> usize {
    use core::cell::Cell;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    std::thread_local! {
        static HINT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    HINT.with(|hint| match hint.get() {
        usize::MAX => {
            // Relaxed: only uniqueness matters, not ordering.
            let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
            hint.set(fresh);
            fresh
        }
        known => known,
    })
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

/// `parking_lot`'s reader-writer lock in its recursive mode.
///
/// The plain `RwLock` queues a new reader behind a waiting writer, so a
/// thread that holds a read guard and asks for a second one deadlocks as
/// soon as a writer waits in between. Pipeline code does hold two guards on
/// one message (a header guard and a read guard, say), so here `read` waits
/// only for a writer that holds the lock, never for one that is queued.
pub(crate) type RwLock<T> = parking_lot::RecursiveRwLock<T>;
pub(crate) type RwLockReadGuard<'a, T> = parking_lot::RecursiveRwLockReadGuard<'a, T>;
pub(crate) type RwLockWriteGuard<'a, T> = parking_lot::RecursiveRwLockWriteGuard<'a, T>;
