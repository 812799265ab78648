//! Seeing a thread's shard from outside, for the tests of shard hints
//! (`tests/shard_hints.rs`, `tests/review_r8.rs`).
//!
//! A fresh arena deals its slots to the shards in runs of 16 adjacent
//! indexes (run `r` to shard `r % shards`), and a thread's first insert
//! pops the head of its home shard's list, index `16 × home`. With 1024
//! slots (16 × the 64-shard bound) the first index / 16 is the home shard
//! itself. Such a look is alone on its arena: it meets nobody and moves
//! nobody.
//!
//! Hints are process-wide, so every test that looks takes [`serial`].

use std::sync::{Mutex, MutexGuard};
use std::thread;

use slotarena::SlotArena;

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time: hints are process-wide.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The crate's shard count (`sync::shard_count`): two per core, a power
/// of two, the core count clamped to 2..=32.
pub fn shard_count() -> usize {
    thread::available_parallelism()
        .map_or(4, |cores| cores.get())
        .clamp(2, 32)
        .next_power_of_two()
        * 2
}

/// The calling thread's home shard now. The first arena use of a thread
/// takes its hint.
pub fn home_shard() -> usize {
    let arena = SlotArena::<u8>::new(16 * 64);
    arena.insert(0).unwrap().index() / 16
}
