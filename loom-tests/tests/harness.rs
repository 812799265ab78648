//! Checks on the model checker itself: the loom the models run on must
//! explore what they rely on.
//!
//! Stock loom 0.7.2 fails both models here: its DPOR remembers only the most
//! recent access to an atomic, so a thread that loads and then stores hides
//! another thread's earlier load, and the store is never tried before it
//! (loom issues #166, #392). `.ci/loom.sh` runs the models on loom with
//! `loom-tests/loom-0.7.2-dpor.patch`, which fixes that.
#![cfg(loom)]

use std::sync::Mutex;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;
use slotarena::SlotArena;
use slotarena_loom_tests::model;

/// Runs `f` as a model and returns the set of outcomes it produced.
fn outcomes<T: Ord + Send + 'static>(f: impl Fn() -> T + Sync + Send + 'static) -> Vec<T> {
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    model(move || {
        let outcome = f();
        let mut seen = sink.lock().unwrap();
        if !seen.contains(&outcome) {
            seen.push(outcome);
        }
    });
    let mut seen = std::mem::take(&mut *seen.lock().unwrap());
    seen.sort();
    seen
}

#[test]
fn a_load_then_cas_on_another_thread_is_tried_before_a_plain_load() {
    // loom issue #392, in the shape of every lock-word operation.
    let seen = outcomes(|| {
        let word = Arc::new(AtomicU64::new(0));
        let other = {
            let word = word.clone();
            thread::spawn(move || {
                let now = word.load(Ordering::Relaxed);
                word.compare_exchange(now, 1, Ordering::Acquire, Ordering::Relaxed)
                    .unwrap();
            })
        };
        let mine = word.load(Ordering::Relaxed);
        other.join().unwrap();
        mine
    });
    assert_eq!(seen, [0, 1], "the loom in use misses interleavings");
}

#[test]
fn an_insert_racing_a_remove_on_a_full_arena_sees_both_outcomes() {
    // A full arena of one slot: the insert succeeds exactly when the other
    // thread's remove lands first. Stock loom only ever runs it after.
    let seen = outcomes(|| {
        let arena = SlotArena::new(1);
        let first = arena.insert(1u8).unwrap();
        let remover = {
            let arena = arena.clone();
            thread::spawn(move || arena.remove(first).unwrap())
        };
        let inserted = arena.insert(2).is_ok();
        remover.join().unwrap();
        inserted
    });
    assert_eq!(seen, [false, true], "the loom in use misses interleavings");
}
