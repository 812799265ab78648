//! Guards against free, and the non-blocking `try_*` forms.
#![cfg(loom)]

use loom::thread;
use slotarena::{ConcurrentMemoryManager, MemoryError};
use slotarena_loom_tests::{Tracked, model};

#[test]
fn free_racing_a_reader_either_waits_for_nothing_or_frees() {
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let token = m.store_shared(Tracked::message(1)).unwrap();
        let reader = {
            let m = m.clone();
            thread::spawn(move || m.read_shared(token).map(|g| g.payload().value()))
        };
        let freed = m.free_shared(token);
        let read = reader.join().unwrap();
        match freed {
            Ok(()) => assert!(
                matches!(read, Ok(1) | Err(MemoryError::NotAllocated)),
                "{read:?}"
            ),
            Err(e) => {
                assert_eq!(e, MemoryError::BorrowActive);
                assert_eq!(read, Ok(1));
                m.free_shared(token).unwrap();
            }
        }
        assert_eq!(m.available(), 1);
    });
}

#[test]
fn try_forms_never_wait_and_writers_exclude_readers() {
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let token = m.store_shared(Tracked::message(1)).unwrap();
        let writer = {
            let m = m.clone();
            thread::spawn(move || {
                if let Ok(mut guard) = m.try_read_mut_shared(token) {
                    guard.header_mut().set_sequence(5);
                    true
                } else {
                    false
                }
            })
        };
        let read = m.try_read_shared(token).map(|g| g.header().sequence());
        let wrote = writer.join().unwrap();
        match read {
            Ok(sequence) => assert!(sequence == 0 || (wrote && sequence == 5)),
            Err(e) => assert_eq!(e, MemoryError::AlreadyBorrowed),
        }
        m.free_shared(token).unwrap();
    });
}

#[test]
fn free_with_a_guard_on_the_same_thread_returns_instead_of_blocking() {
    model(|| {
        let m = ConcurrentMemoryManager::new(1);
        let token = m.store_shared(Tracked::message(1)).unwrap();
        let other = {
            let m = m.clone();
            thread::spawn(move || {
                let guard = m.read_mut_shared(token).unwrap();
                assert_eq!(m.free_shared(token), Err(MemoryError::BorrowActive));
                drop(guard);
            })
        };
        other.join().unwrap();
        m.free_shared(token).unwrap();
    });
}
