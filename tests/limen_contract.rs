//! limen-core's memory-manager contract, as limen-core's traits state it,
//! checked on `LimenConcurrentManager` and on limen-core's own
//! `ConcurrentMemoryManager` side by side; then what the adapter does
//! differently (generation bits, free with live guards, poison) and the
//! conversions between the two crates' types.
#![cfg(feature = "limen")]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use limen_core::errors::MemoryError as LimenError;
use limen_core::memory::BufferDescriptor;
use limen_core::memory::MemoryClass as LimenClass;
use limen_core::memory::concurrent_manager::ConcurrentMemoryManager;
use limen_core::memory::header_store::HeaderStore;
use limen_core::memory::manager::{MemoryManager, ScopedManager};
use limen_core::message::payload::Payload;
use limen_core::message::{Message, MessageHeader};
use limen_core::types::{MessageToken as LimenToken, QoSClass, SequenceNumber};
use slotarena::compat::limen::LimenConcurrentManager;
use slotarena::{MemoryClass, MemoryError, QosClass};

const CAPACITY: usize = 4;

fn msg(value: u32) -> Message<u32> {
    let mut header = MessageHeader::empty();
    header.set_sequence(SequenceNumber::new(value.into()));
    Message::new(header, value)
}

/// A payload that counts its drops.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Payload for Counted {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(8)
    }
}

fn counted(drops: &Arc<AtomicUsize>) -> Message<Counted> {
    Message::new(MessageHeader::empty(), Counted(drops.clone()))
}

/// What limen-core's traits promise, for any manager built by `make`.
macro_rules! contract {
    ($suite:ident, $manager:ident) => {
        mod $suite {
            use super::*;

            fn manager() -> $manager<u32> {
                $manager::new(CAPACITY)
            }

            #[test]
            fn store_read_write_peek_and_free_round_trip() {
                let mut m = manager();
                let token = m.store(msg(5)).unwrap();
                assert_eq!(*m.read(token).unwrap().payload(), 5);
                *m.read_mut(token).unwrap().payload_mut() = 6;
                assert_eq!(*m.read(token).unwrap().payload(), 6);
                let header = m.peek_header(token).unwrap();
                assert_eq!(*header.sequence(), SequenceNumber::new(5));
                assert_eq!(*header.payload_size_bytes(), 4);
                drop(header);
                m.free(token).unwrap();
                assert_eq!(m.available(), CAPACITY);
            }

            #[test]
            fn capacity_is_exact_and_a_free_slot_is_reused() {
                let mut m = manager();
                assert_eq!((m.capacity(), m.available()), (CAPACITY, CAPACITY));
                let tokens: Vec<LimenToken> = (0..CAPACITY as u32)
                    .map(|i| m.store(msg(i)).unwrap())
                    .collect();
                assert_eq!(m.available(), 0);
                assert_eq!(m.store(msg(9)).err(), Some(LimenError::NoFreeSlots));
                m.free(tokens[1]).unwrap();
                assert_eq!(m.available(), 1);
                let again = m.store(msg(10)).unwrap();
                assert_eq!(*m.read(again).unwrap().payload(), 10);
                assert_eq!(m.available(), 0);
                for (i, &token) in tokens.iter().enumerate().filter(|&(i, _)| i != 1) {
                    assert_eq!(*m.read(token).unwrap().payload(), i as u32);
                }
            }

            #[test]
            fn a_freed_token_answers_not_allocated_until_its_slot_is_reused() {
                let mut m = manager();
                let token = m.store(msg(1)).unwrap();
                m.free(token).unwrap();
                assert_eq!(m.free(token).err(), Some(LimenError::NotAllocated));
                assert_eq!(m.read(token).err(), Some(LimenError::NotAllocated));
                assert_eq!(m.read_mut(token).err(), Some(LimenError::NotAllocated));
                assert_eq!(m.peek_header(token).err(), Some(LimenError::NotAllocated));
            }

            #[test]
            fn tokens_of_no_slot_are_bad() {
                let mut m = manager();
                // 7 is past the last slot whether the whole `u32` is the
                // index (limen-core) or only its low 3 bits (the adapter).
                for token in [LimenToken::new(7), LimenToken::INVALID] {
                    assert_eq!(m.read(token).err(), Some(LimenError::BadToken));
                    assert_eq!(m.read_mut(token).err(), Some(LimenError::BadToken));
                    assert_eq!(m.peek_header(token).err(), Some(LimenError::BadToken));
                    assert_eq!(m.free(token).err(), Some(LimenError::BadToken));
                }
            }

            #[test]
            fn memory_class_defaults_to_host_and_is_configurable() {
                assert_eq!(manager().memory_class(), LimenClass::Host);
                let m = $manager::<u32>::with_memory_class(CAPACITY, LimenClass::Device(3));
                assert_eq!(MemoryManager::memory_class(&m), LimenClass::Device(3));
            }

            #[test]
            fn clones_and_scoped_handles_share_the_messages() {
                let m = manager();
                let token = m.store_shared(msg(7)).unwrap();
                let mut handle = m.scoped_handle();
                assert_eq!(*handle.read(token).unwrap().payload(), 7);
                handle.free(token).unwrap();
                let clone = m.clone();
                assert_eq!(
                    clone.read_shared(token).err(),
                    Some(LimenError::NotAllocated)
                );
                assert_eq!(clone.available(), CAPACITY);
            }

            #[test]
            fn dropping_the_last_handle_drops_every_message_once() {
                let drops = Arc::new(AtomicUsize::new(0));
                let m = $manager::<Counted>::new(CAPACITY);
                let handle = m.clone();
                for _ in 0..3 {
                    m.store_shared(counted(&drops)).unwrap();
                }
                drop(m);
                assert_eq!(drops.load(Ordering::SeqCst), 0, "a handle is still alive");
                drop(handle);
                assert_eq!(drops.load(Ordering::SeqCst), 3);
            }
        }
    };
}

contract!(adapter, LimenConcurrentManager);
contract!(limen_own, ConcurrentMemoryManager);

#[test]
fn the_adapter_is_send_and_sync_like_limens_manager() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LimenConcurrentManager<u32>>();
    send_sync::<ConcurrentMemoryManager<u32>>();
}

#[test]
fn a_freed_token_never_reaches_a_later_message_of_its_slot() {
    let m = LimenConcurrentManager::<u32>::new(1);
    let mut old = Vec::new();
    let mut current = m.store_shared(msg(0)).unwrap();
    for i in 1..2_000 {
        m.free_shared(current).unwrap();
        old.push(current);
        current = m.store_shared(msg(i)).unwrap();
        assert_eq!(*m.read_shared(current).unwrap().payload(), i);
    }
    for &token in &old {
        assert_ne!(token, current);
        assert_eq!(m.read_shared(token).err(), Some(LimenError::BadToken));
        assert_eq!(m.read_mut_shared(token).err(), Some(LimenError::BadToken));
        assert_eq!(m.peek_header(token).err(), Some(LimenError::BadToken));
        assert_eq!(m.free_shared(token).err(), Some(LimenError::BadToken));
    }
    assert_eq!(*m.read_shared(current).unwrap().payload(), 1_999);
}

#[test]
fn limens_own_manager_lets_a_freed_token_reach_the_next_message() {
    // The mismatch the generation bits resolve.
    let m = ConcurrentMemoryManager::<u32>::new(1);
    let old = m.store_shared(msg(1)).unwrap();
    m.free_shared(old).unwrap();
    m.store_shared(msg(2)).unwrap();
    assert_eq!(*m.read_shared(old).unwrap().payload(), 2);
}

#[test]
fn the_token_index_is_the_packed_u32_not_the_slot() {
    let m = LimenConcurrentManager::<u32>::new(1);
    let first = m.store_shared(msg(1)).unwrap();
    assert_eq!(first.index(), 0);
    m.free_shared(first).unwrap();
    let second = m.store_shared(msg(2)).unwrap();
    // Slot 0 again, one generation on: the generation sits above the one
    // index bit a one-slot manager needs.
    assert_eq!(second.index(), 1 << 1);
}

#[test]
fn a_forged_token_is_checked_like_any_other() {
    // limen-core's own manager reads 99 as an index past its 4 slots. The
    // adapter reads its low 3 bits as slot 3 and the rest as generation
    // bits, which must match slot 3's message (and, while the slot is
    // empty, not be ahead of its generation: see `bad_token_detected`).
    let forged = LimenToken::new(99);
    assert_eq!(forged.index() & 0b111, 3);
    let m = LimenConcurrentManager::<u32>::new(CAPACITY);
    assert_eq!(m.read_shared(forged).err(), Some(LimenError::BadToken));
    let tokens: Vec<LimenToken> = (0..4).map(|i| m.store_shared(msg(i)).unwrap()).collect();
    assert_eq!(m.read_shared(forged).err(), Some(LimenError::BadToken));
    assert_eq!(m.free_shared(forged).err(), Some(LimenError::BadToken));
    for (i, &token) in tokens.iter().enumerate() {
        assert_eq!(*m.read_shared(token).unwrap().payload(), i as u32);
    }
}

#[test]
fn generation_bits_follow_the_capacity() {
    let bits = |capacity| LimenConcurrentManager::<u32>::new(capacity).generation_bits();
    assert_eq!(
        [bits(0), bits(1), bits(4), bits(35), bits(1024)],
        [31, 31, 29, 26, 21]
    );
}

#[test]
fn free_with_a_live_guard_kills_the_token_and_drops_with_the_last_guard() {
    let drops = Arc::new(AtomicUsize::new(0));
    let mut m = LimenConcurrentManager::<Counted>::new(CAPACITY);
    let token = m.store(counted(&drops)).unwrap();
    let guard = m.read_shared(token).unwrap();
    let header = m.peek_header(token).unwrap();
    // limen-core's usage: the answer is ignored, so it must not be an error.
    assert_eq!(m.clone().free(token), Ok(()));
    assert_eq!(m.read_shared(token).err(), Some(LimenError::NotAllocated));
    assert_eq!(m.free_shared(token).err(), Some(LimenError::NotAllocated));
    assert_eq!(
        drops.load(Ordering::SeqCst),
        0,
        "dropped under a live guard"
    );
    assert_eq!(
        m.available(),
        CAPACITY - 1,
        "the guards still hold the slot"
    );
    assert_eq!(*header.payload_size_bytes(), 8);
    drop(guard);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(header);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(m.available(), CAPACITY);
}

#[test]
fn a_thread_may_free_the_message_it_is_writing() {
    let drops = Arc::new(AtomicUsize::new(0));
    let m = LimenConcurrentManager::<Counted>::new(CAPACITY);
    let token = m.store_shared(counted(&drops)).unwrap();
    let mut guard = m.read_mut_shared(token).unwrap();
    m.free_shared(token).unwrap();
    guard.header_mut().set_sequence(SequenceNumber::new(3));
    drop(guard);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn a_freed_message_is_dropped_by_the_reader_that_holds_it_last() {
    let drops = Arc::new(AtomicUsize::new(0));
    let m = LimenConcurrentManager::<Counted>::new(CAPACITY);
    let token = m.store_shared(counted(&drops)).unwrap();
    let (freed_tx, freed_rx) = std::sync::mpsc::channel();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let reader = {
        let m = m.clone();
        let drops = drops.clone();
        thread::spawn(move || {
            let guard = m.read_shared(token).unwrap();
            held_tx.send(()).unwrap();
            freed_rx.recv().unwrap();
            assert_eq!(drops.load(Ordering::SeqCst), 0);
            drop(guard);
            assert_eq!(drops.load(Ordering::SeqCst), 1);
        })
    };
    held_rx.recv().unwrap();
    m.free_shared(token).unwrap();
    freed_tx.send(()).unwrap();
    reader.join().unwrap();
    assert_eq!(m.available(), CAPACITY);
}

#[test]
fn a_poisoned_message_refuses_reads_but_is_still_freed() {
    let m = LimenConcurrentManager::<u32>::new(1);
    let token = m.store_shared(msg(1)).unwrap();
    let writer = m.clone();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let _guard = writer.read_mut_shared(token).unwrap();
        panic!("writer dies holding the message");
    }));
    assert!(panicked.is_err());
    assert_eq!(m.read_shared(token).err(), Some(LimenError::Poisoned));
    assert_eq!(m.peek_header(token).err(), Some(LimenError::Poisoned));
    m.free_shared(token).unwrap();
    let next = m.store_shared(msg(2)).unwrap();
    assert_eq!(*m.read_shared(next).unwrap().payload(), 2);
}

#[test]
fn limens_own_manager_cannot_free_a_poisoned_message() {
    let m = ConcurrentMemoryManager::<u32>::new(1);
    let token = m.store_shared(msg(1)).unwrap();
    let writer = m.clone();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let _guard = writer.read_mut_shared(token).unwrap();
        panic!("writer dies holding the message");
    }));
    assert!(panicked.is_err());
    assert_eq!(m.free_shared(token).err(), Some(LimenError::Poisoned));
    assert_eq!(m.available(), 0, "the slot is lost");
}

// === conversions ===

const LIMEN_ERRORS: [LimenError; 6] = [
    LimenError::NoFreeSlots,
    LimenError::BadToken,
    LimenError::NotAllocated,
    LimenError::AlreadyBorrowed,
    LimenError::BorrowActive,
    LimenError::Poisoned,
];

#[test]
fn limen_errors_convert_to_their_namesakes_and_back() {
    let ours = LIMEN_ERRORS.map(MemoryError::from);
    assert_eq!(
        ours,
        [
            MemoryError::NoFreeSlots,
            MemoryError::BadToken,
            MemoryError::NotAllocated,
            MemoryError::AlreadyBorrowed,
            MemoryError::BorrowActive,
            MemoryError::Poisoned,
        ]
    );
    assert_eq!(ours.map(LimenError::from), LIMEN_ERRORS);
}

#[test]
fn errors_limen_lacks_become_their_nearest_limen_error() {
    assert_eq!(
        LimenError::from(MemoryError::StaleToken),
        LimenError::BadToken
    );
    assert_eq!(
        LimenError::from(MemoryError::QueueOwned),
        LimenError::BorrowActive
    );
    assert_eq!(
        LimenError::from(MemoryError::NotShared),
        LimenError::NotAllocated
    );
    assert_eq!(
        LimenError::from(MemoryError::TooManyShares),
        LimenError::NoFreeSlots
    );
    assert_eq!(
        LimenError::from(MemoryError::TooManyReaders),
        LimenError::AlreadyBorrowed
    );
}

#[test]
fn memory_classes_convert_losslessly_both_ways() {
    let ours = [
        MemoryClass::Host,
        MemoryClass::PinnedHost,
        MemoryClass::Device(0),
        MemoryClass::Device(255),
        MemoryClass::Shared,
    ];
    let limen = ours.map(LimenClass::from);
    assert_eq!(
        limen,
        [
            LimenClass::Host,
            LimenClass::PinnedHost,
            LimenClass::Device(0),
            LimenClass::Device(255),
            LimenClass::Shared,
        ]
    );
    assert_eq!(limen.map(MemoryClass::from), ours);
    assert_eq!(
        LimenClass::from(MemoryClass::default()),
        LimenClass::default()
    );
}

#[test]
fn qos_classes_keep_order_and_defaults() {
    let limen = [
        QoSClass::Background,
        QoSClass::BestEffort,
        QoSClass::LatencyCritical,
    ];
    let ours = limen.map(QosClass::from);
    assert_eq!(
        ours,
        [
            QosClass::BestEffort,
            QosClass::Standard,
            QosClass::LatencySensitive
        ]
    );
    assert!(ours.is_sorted() && limen.is_sorted());
    assert_eq!(
        ours.map(QoSClass::from),
        limen,
        "limen → slotarena → limen is lossless"
    );
    assert_eq!(QosClass::from(QoSClass::default()), QosClass::default());

    let all = [
        QosClass::BestEffort,
        QosClass::Standard,
        QosClass::LatencySensitive,
        QosClass::Critical,
    ];
    let down = all.map(QoSClass::from);
    assert!(down.is_sorted(), "order is kept, ties allowed: {down:?}");
    assert_eq!(
        QoSClass::from(QosClass::Critical),
        QoSClass::LatencyCritical
    );
    assert_eq!(QoSClass::from(QosClass::default()), QoSClass::default());
}

/// Review finding: a token of an older message answered `NotAllocated`
/// instead of limen's stale answer (`BadToken`) while the slot's newer
/// message was freed but still held by a guard.
#[test]
fn an_older_token_stays_bad_while_the_reused_slots_message_is_freed_under_a_guard() {
    let manager = LimenConcurrentManager::<u32>::new(1);
    let old = manager
        .store_shared(Message::new(MessageHeader::empty(), 1))
        .unwrap();
    manager.free_shared(old).unwrap();
    let new = manager
        .store_shared(Message::new(MessageHeader::empty(), 2))
        .unwrap();
    assert_eq!(manager.read_shared(old).err(), Some(LimenError::BadToken));
    let guard = manager.read_shared(new).unwrap();
    manager.free_shared(new).unwrap(); // deferred: `guard` still holds it
    assert_eq!(manager.read_shared(old).err(), Some(LimenError::BadToken));
    assert_eq!(
        manager.read_shared(new).err(),
        Some(LimenError::NotAllocated)
    );
    drop(guard);
}

/// Issue 21, item 9: limen-core's own `bad_token_detected`: a token this
/// manager never handed out, whose slot bits name a real but empty slot
/// and whose generation bits are ahead of that slot's, is a bad token.
#[test]
fn bad_token_detected() {
    let manager = LimenConcurrentManager::<u32>::new(CAPACITY);
    let forged = LimenToken::new(99);
    assert_eq!(
        manager.read_shared(forged).err(),
        Some(LimenError::BadToken)
    );
    assert_eq!(
        manager.peek_header(forged).err(),
        Some(LimenError::BadToken)
    );
    assert_eq!(
        manager.free_shared(forged).err(),
        Some(LimenError::BadToken)
    );
    // The slot's own past stays as it was: a freed token is not bad.
    let token = manager.store_shared(msg(1)).unwrap();
    manager.free_shared(token).unwrap();
    assert_eq!(
        manager.read_shared(token).err(),
        Some(LimenError::NotAllocated)
    );
}
