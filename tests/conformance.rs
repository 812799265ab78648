//! DESIGN.md's error table, checked against every manager by one suite.
//! Each manager's suite runs under the feature that provides the manager,
//! so `cargo test --no-default-features` still checks `StaticMemoryManager`.

mod support;

#[cfg(feature = "std")]
use slotarena::ConcurrentMemoryManager;
#[cfg(feature = "alloc")]
use slotarena::HeapMemoryManager;
use slotarena::{
    HeaderStore, MemoryClass, MemoryError, MemoryManager, MessageToken, StaticMemoryManager,
};
use support::{DropCounter, msg};

/// Instantiates the suite for a manager. `$make` is a closure from a memory
/// class to a fresh manager of exactly four slots, for any payload `P`.
macro_rules! conformance {
    ($suite:ident, |$class:ident| $make:expr) => {
        mod $suite {
            use super::*;

            const CAPACITY: usize = 4;

            fn manager_in<P: slotarena::Payload>($class: MemoryClass) -> impl MemoryManager<P> {
                $make
            }

            fn manager<P: slotarena::Payload>() -> impl MemoryManager<P> {
                manager_in(MemoryClass::Host)
            }

            #[test]
            fn store_read_write_peek_and_free_round_trip() {
                let mut m = manager::<u64>();
                let token = m.store(msg(5)).unwrap();
                assert_eq!(*m.read(token).unwrap().payload(), 5);
                {
                    let mut guard = m.read_mut(token).unwrap();
                    *guard.payload_mut() = 6;
                    guard.header_mut().set_sequence(9);
                }
                assert_eq!(*m.read(token).unwrap().payload(), 6);
                let header = m.peek_header(token).unwrap();
                assert_eq!(
                    (
                        header.trace_id(),
                        header.sequence(),
                        header.payload_size_bytes()
                    ),
                    (5, 9, 8)
                );
                drop(header);
                m.free(token).unwrap();
                assert_eq!(m.available(), CAPACITY);
            }

            #[test]
            fn capacity_and_available_are_exact() {
                let mut m = manager::<u64>();
                assert_eq!((m.capacity(), m.available()), (CAPACITY, CAPACITY));
                let tokens: Vec<_> = (0..3).map(|i| m.store(msg(i)).unwrap()).collect();
                assert_eq!((m.capacity(), m.available()), (CAPACITY, 1));
                m.free(tokens[1]).unwrap();
                assert_eq!((m.capacity(), m.available()), (CAPACITY, 2));
            }

            #[test]
            fn a_full_manager_refuses_and_drops_the_rejected_message() {
                let counter = DropCounter::default();
                let mut m = manager();
                let tokens: Vec<_> = (0..CAPACITY as u64)
                    .map(|i| m.store(counter.message(i)).unwrap())
                    .collect();
                assert_eq!(
                    m.store(counter.message(99)).err(),
                    Some(MemoryError::NoFreeSlots)
                );
                assert_eq!(
                    counter.drops(),
                    1,
                    "the rejected message is dropped, nothing else"
                );
                assert_eq!(m.available(), 0);
                for (i, token) in tokens.iter().enumerate() {
                    assert_eq!(
                        m.read(*token).unwrap().payload().id,
                        i as u64,
                        "no other slot disturbed"
                    );
                }
            }

            #[test]
            fn double_free_answers_not_allocated() {
                let mut m = manager::<u64>();
                let token = m.store(msg(1)).unwrap();
                m.free(token).unwrap();
                assert_eq!(m.free(token), Err(MemoryError::NotAllocated));
                assert_eq!(m.read(token).err(), Some(MemoryError::NotAllocated));
                assert_eq!(m.read_mut(token).err(), Some(MemoryError::NotAllocated));
                assert_eq!(m.peek_header(token).err(), Some(MemoryError::NotAllocated));
                assert_eq!(m.available(), CAPACITY);
            }

            #[test]
            fn stale_token_is_rejected_after_reuse_by_every_method() {
                let mut m = manager::<u64>();
                let mut tokens: Vec<_> = (0..CAPACITY as u64)
                    .map(|i| m.store(msg(i)).unwrap())
                    .collect();
                let old = tokens.remove(2);
                m.free(old).unwrap();
                let new = m.store(msg(100)).unwrap(); // the only free slot: reused
                assert_eq!(new.index(), old.index());
                assert_ne!(new, old);
                assert_eq!(m.read(old).err(), Some(MemoryError::StaleToken));
                assert_eq!(m.read_mut(old).err(), Some(MemoryError::StaleToken));
                assert_eq!(m.peek_header(old).err(), Some(MemoryError::StaleToken));
                assert_eq!(m.free(old), Err(MemoryError::StaleToken));
                assert_eq!(
                    *m.read(new).unwrap().payload(),
                    100,
                    "the new message is untouched"
                );
            }

            #[test]
            fn bad_tokens_are_rejected_everywhere() {
                let mut m = manager::<u64>();
                m.store(msg(1)).unwrap();
                for token in [
                    MessageToken::INVALID,
                    MessageToken::new(CAPACITY as u32, 0),
                    MessageToken::from_bits(u64::MAX - 1),
                ] {
                    assert_eq!(
                        m.read(token).err(),
                        Some(MemoryError::BadToken),
                        "{token:?}"
                    );
                    assert_eq!(
                        m.read_mut(token).err(),
                        Some(MemoryError::BadToken),
                        "{token:?}"
                    );
                    assert_eq!(
                        m.peek_header(token).err(),
                        Some(MemoryError::BadToken),
                        "{token:?}"
                    );
                    assert_eq!(m.free(token), Err(MemoryError::BadToken), "{token:?}");
                }
                assert_eq!(m.available(), CAPACITY - 1);
            }

            #[test]
            fn memory_class_is_reported() {
                for class in [
                    MemoryClass::PinnedHost,
                    MemoryClass::Device(3),
                    MemoryClass::Shared,
                ] {
                    assert_eq!(manager_in::<u8>(class).memory_class(), class);
                }
                assert_eq!(manager::<u8>().memory_class(), MemoryClass::Host);
            }

            #[test]
            fn every_message_is_dropped_exactly_once() {
                let counter = DropCounter::default();
                let mut m = manager();
                let a = m.store(counter.message(1)).unwrap();
                let _b = m.store(counter.message(2)).unwrap();
                let _c = m.store(counter.message(3)).unwrap();
                m.free(a).unwrap();
                assert_eq!(counter.drops(), 1);
                m.store(counter.message(4)).unwrap();
                drop(m);
                assert_eq!(counter.drops(), 4);
            }
        }
    };
}

#[cfg(feature = "alloc")]
conformance!(heap, |class| HeapMemoryManager::<P>::with_memory_class(
    CAPACITY, class
));
conformance!(fixed, |class| {
    StaticMemoryManager::<P, CAPACITY>::with_memory_class(class)
});
#[cfg(feature = "std")]
conformance!(concurrent, |class| {
    ConcurrentMemoryManager::<P>::with_memory_class(CAPACITY, class)
});
