//! The real backend: `core` atomics, `std` `Arc`/`OnceLock`, `parking_lot` locks.

pub(crate) use core::hint::spin_loop;
pub(crate) use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
pub(crate) use std::sync::{Arc, OnceLock};

pub(crate) use parking_lot::Mutex;

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
