//! Growth racing stores, and fan-out share counts racing releases.
#![cfg(loom)]

use loom::thread;
use slotarena::{ConcurrentMemoryManager, MemoryError};
use slotarena_loom_tests::{Tracked, model};

#[test]
fn racing_stores_grow_once_and_get_distinct_slots() {
    model(|| {
        let m = ConcurrentMemoryManager::growable(1, 3);
        let held = m.store_shared(Tracked::message(0)).unwrap();
        let other = {
            let m = m.clone();
            thread::spawn(move || m.store_shared(Tracked::message(1)).unwrap())
        };
        let mine = m.store_shared(Tracked::message(2)).unwrap();
        let theirs = other.join().unwrap();
        assert!(
            mine.index() != theirs.index()
                && mine.index() != held.index()
                && theirs.index() != held.index()
        );
        assert_eq!(m.capacity(), 3);
        assert_eq!(m.read_shared(theirs).unwrap().payload().value(), 1);
        assert_eq!(m.read_shared(held).unwrap().payload().value(), 0);
        assert_eq!(m.available(), 0);
    });
}

#[test]
fn racing_releases_free_exactly_once() {
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let token = m.store_shared(Tracked::message(3)).unwrap();
        m.retain_shared(token, 2).unwrap();
        let other = {
            let m = m.clone();
            thread::spawn(move || m.release_shared(token))
        };
        let mine = m.release_shared(token);
        let theirs = other.join().unwrap();
        let mut results = [mine, theirs];
        results.sort_by_key(|r| format!("{r:?}"));
        // A last release may meet the other's short read lock: BorrowActive,
        // nothing changed, and retrying frees it.
        match results {
            [Ok(0), Ok(1)] => {}
            [Err(MemoryError::BorrowActive), Ok(1)] | [Ok(1), Err(MemoryError::BorrowActive)] => {
                assert_eq!(m.release_shared(token), Ok(0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.available(), 1);
        assert_eq!(m.free_shared(token), Err(MemoryError::NotAllocated));
    });
}

#[test]
fn free_racing_retain_is_refused_or_the_retain_fails() {
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let token = m.store_shared(Tracked::message(4)).unwrap();
        let retainer = {
            let m = m.clone();
            thread::spawn(move || m.retain_shared(token, 1))
        };
        let freed = m.free_shared(token);
        let retained = retainer.join().unwrap();
        match (freed, retained) {
            (Ok(()), Err(MemoryError::NotAllocated)) => {}
            (Err(MemoryError::QueueOwned | MemoryError::BorrowActive), Ok(1)) => {
                assert_eq!(m.release_shared(token), Ok(0));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.available(), 1);
    });
}

#[test]
fn a_release_is_never_blocked_by_a_writer_on_another_thread() {
    // Main holds a write guard across the join: a release that waited for
    // the guard would deadlock, and loom reports a deadlock.
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let token = m.store_shared(Tracked::message(5)).unwrap();
        m.retain_shared(token, 2).unwrap();
        let releaser = {
            let m = m.clone();
            thread::spawn(move || (m.release_shared(token), m.release_shared(token)))
        };
        let writer = m.read_mut_shared(token);
        let (first, last) = releaser.join().unwrap();
        assert_eq!(first, Ok(1));
        match writer {
            Ok(guard) => {
                // The last release met the writer: refused, nothing changed.
                assert_eq!(last, Err(MemoryError::BorrowActive));
                assert_eq!(m.shares(token), Ok(1));
                drop(guard);
                assert_eq!(m.release_shared(token), Ok(0));
            }
            Err(e) => {
                // The last release freed the message before the write.
                assert_eq!(e, MemoryError::NotAllocated);
                assert_eq!(last, Ok(0));
            }
        }
        assert_eq!(m.available(), 1);
    });
}

// Issue 18: the first message of a slot (generation 0) once found its share
// word "open, no shares" between a retain's mark and its count, so a racing
// release freed it and a racing retain was overwritten. Mutation
// `share_word_starts_open` brings that fresh word back.

#[test]
fn a_release_racing_the_first_retain_of_a_fresh_message_never_frees_it() {
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let token = m.store_shared(Tracked::message(6)).unwrap();
        assert_eq!(token.generation(), 0);
        let retainer = {
            let m = m.clone();
            thread::spawn(move || m.retain_shared(token, 2))
        };
        let released = m.release_shared(token);
        assert_eq!(retainer.join().unwrap(), Ok(2));
        // Before the mark the message has no share; after it, the release
        // waits for the count and takes one of the two.
        let left = match released {
            Err(MemoryError::NotShared) => 2,
            Ok(1) => 1,
            other => panic!("a release racing the first retain answered {other:?}"),
        };
        assert_eq!(m.shares(token), Ok(left));
        assert_eq!(m.free_shared(token), Err(MemoryError::QueueOwned));
    });
}

#[test]
fn two_first_retains_of_a_fresh_message_both_count() {
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let token = m.store_shared(Tracked::message(7)).unwrap();
        let other = {
            let m = m.clone();
            thread::spawn(move || m.retain_shared(token, 1))
        };
        let mine = m.retain_shared(token, 1);
        let theirs = other.join().unwrap();
        let mut totals = [mine.unwrap(), theirs.unwrap()];
        totals.sort_unstable();
        assert_eq!(totals, [1, 2], "two retains counted as one");
        assert_eq!(m.shares(token), Ok(2), "two retains counted as one");
        assert_eq!(m.release_shared(token), Ok(1));
        assert_eq!(m.release_shared(token), Ok(0));
        assert_eq!(m.available(), 1);
    });
}
