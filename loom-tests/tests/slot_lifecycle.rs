//! Store/read/free/take races on the concurrent manager, with stale tokens.
#![cfg(loom)]

use loom::thread;
use slotarena::{ConcurrentMemoryManager, MemoryError};
use slotarena_loom_tests::{Tracked, model};

#[test]
fn a_reader_racing_free_and_reuse_never_reaches_the_new_message() {
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let old = m.store_shared(Tracked::message(1)).unwrap();
        let reader = {
            let m = m.clone();
            thread::spawn(move || match m.read_shared(old) {
                Ok(guard) => assert_eq!(
                    guard.payload().value(),
                    1,
                    "stale token reached a newer message"
                ),
                Err(e) => assert!(
                    matches!(e, MemoryError::NotAllocated | MemoryError::StaleToken),
                    "{e:?}"
                ),
            })
        };
        // Free may meet the reader's guard; then the message stays.
        if m.free_shared(old).is_ok() {
            let new = m.store_shared(Tracked::message(2)).unwrap();
            assert_eq!(new.index(), old.index());
            reader.join().unwrap();
            assert_eq!(m.take_shared(new).unwrap().payload().value(), 2);
        } else {
            reader.join().unwrap();
            m.free_shared(old).unwrap();
        }
        assert_eq!(m.available(), 1);
    });
}

#[test]
fn racing_takes_of_one_token_succeed_exactly_once() {
    model(|| {
        let m = ConcurrentMemoryManager::new(2);
        let token = m.store_shared(Tracked::message(7)).unwrap();
        let other = {
            let m = m.clone();
            thread::spawn(move || m.take_shared(token).map(|msg| msg.payload().value()))
        };
        let mine = m.take_shared(token).map(|msg| msg.payload().value());
        let theirs = other.join().unwrap();
        let results = [mine, theirs];
        assert_eq!(
            results.iter().filter(|r| **r == Ok(7)).count(),
            1,
            "{results:?}"
        );
        assert!(results.iter().all(|r| matches!(
            r,
            Ok(7) | Err(MemoryError::NotAllocated | MemoryError::BorrowActive)
        )));
        assert_eq!(m.available(), 2);
    });
}

#[test]
fn two_threads_store_and_free_on_two_slots_without_loss() {
    model(|| {
        let m = ConcurrentMemoryManager::new(2);
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let m = m.clone();
                thread::spawn(move || {
                    let token = m.store_shared(Tracked::message(i)).unwrap();
                    assert_eq!(m.read_shared(token).unwrap().payload().value(), i);
                    m.free_shared(token).unwrap();
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(m.available(), 2);
    });
}

#[test]
fn a_full_manager_refuses_until_a_racing_free_lands() {
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let first = m.store_shared(Tracked::message(1)).unwrap();
        let freer = {
            let m = m.clone();
            thread::spawn(move || m.free_shared(first).unwrap())
        };
        match m.store_shared(Tracked::message(2)) {
            Ok(token) => {
                assert_ne!(token, first);
                freer.join().unwrap();
                m.free_shared(token).unwrap();
            }
            Err(e) => {
                assert_eq!(e, MemoryError::NoFreeSlots);
                freer.join().unwrap();
            }
        }
        assert_eq!(m.available(), 1);
    });
}
