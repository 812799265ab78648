//! `free` racing readers under limen-core's usage, which ignores its
//! result (`let _ = manager.free(token)`): nothing may leak. A payload
//! counts its drops; at the end every message stored has been dropped
//! exactly once and every slot is free again. limen-core's own manager
//! runs the same race as the reference.
#![cfg(feature = "limen")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::thread;

use limen_core::memory::BufferDescriptor;
use limen_core::memory::concurrent_manager::ConcurrentMemoryManager;
use limen_core::memory::header_store::HeaderStore;
use limen_core::memory::manager::{MemoryManager, ScopedManager};
use limen_core::message::payload::Payload;
use limen_core::message::{Message, MessageHeader};
use limen_core::types::{MessageToken, SequenceNumber};
use slotarena::compat::limen::LimenConcurrentManager;

const CAPACITY: usize = 8;
const READERS: usize = 2;

/// Rounds for the adapter.
fn rounds() -> u32 {
    if cfg!(miri) { 50 } else { 5_000 }
}

/// Rounds for limen-core's own manager, whose `free` waits for the
/// readers: few, to keep the test quick.
const LIMEN_ROUNDS: u32 = 50;

/// A payload that counts its drops and remembers its round.
struct Counted {
    round: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

impl Payload for Counted {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(4)
    }
}

/// Yields a reader holds its guard for, so frees land on live guards.
const HOLD: u32 = 16;
/// Yields the writer waits, at most, for a reader to seize its message.
const WAIT: u32 = 1_000;

/// One writer stores a message per round, publishes its token, waits
/// (briefly) until a reader holds a guard on it, and frees it, ignoring
/// the answer as limen-core does. Readers read whatever token is
/// published and hold the guard a little; they also free now and then,
/// so frees race frees too. Returns how many reads found their message.
fn free_races_readers<M>(manager: M, rounds: u32) -> usize
where
    M: ScopedManager<Counted>,
{
    let drops = Arc::new(AtomicUsize::new(0));
    let published = AtomicU32::new(MessageToken::INVALID.index() as u32);
    // One past the latest round whose message a reader has seized.
    let seized = AtomicU32::new(0);
    let done = AtomicBool::new(false);
    let hits = AtomicUsize::new(0);
    let running = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..READERS {
            let mut handle = manager.scoped_handle();
            let (published, seized, done, hits, running) =
                (&published, &seized, &done, &hits, &running);
            scope.spawn(move || {
                running.fetch_add(1, Ordering::SeqCst);
                while !done.load(Ordering::SeqCst) {
                    let token = MessageToken::new(published.load(Ordering::SeqCst));
                    if let Ok(guard) = handle.read(token) {
                        let round = guard.payload().round;
                        seized.fetch_max(round + 1, Ordering::SeqCst);
                        for _ in 0..HOLD {
                            thread::yield_now();
                            assert_eq!(guard.payload().round, round);
                        }
                        assert_eq!(
                            *guard.header().sequence(),
                            SequenceNumber::new(round.into())
                        );
                        hits.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Ok(header) = handle.peek_header(token) {
                        assert_eq!(*header.payload_size_bytes(), 4);
                    }
                    // Readers free too; limen ignores the answer here as
                    // everywhere, so a double free must be harmless.
                    if token.index().is_multiple_of(7) {
                        let _ = handle.free(token);
                    }
                }
            });
        }
        let mut writer = manager.scoped_handle();
        // Race readers that are already reading, not ones still waking up.
        while running.load(Ordering::SeqCst) < READERS {
            thread::yield_now();
        }
        for round in 0..rounds {
            let mut header = MessageHeader::empty();
            header.set_sequence(SequenceNumber::new(round.into()));
            let counted = Counted {
                round,
                drops: drops.clone(),
            };
            let token = writer
                .store(Message::new(header, counted))
                .expect("frees keep up");
            published.store(token.index() as u32, Ordering::SeqCst);
            for _ in 0..WAIT {
                if seized.load(Ordering::SeqCst) > round {
                    break;
                }
                thread::yield_now();
            }
            let _ = writer.free(token);
        }
        done.store(true, Ordering::SeqCst);
    });
    assert_eq!(
        drops.load(Ordering::SeqCst),
        rounds as usize,
        "every message stored is dropped exactly once"
    );
    assert_eq!(manager.available(), CAPACITY, "every slot is free again");
    let hits = hits.load(Ordering::Relaxed);
    assert!(hits > 0, "no read ever raced a free");
    hits
}

#[test]
fn free_racing_readers_leaks_nothing_on_the_adapter() {
    let hits = free_races_readers(LimenConcurrentManager::<Counted>::new(CAPACITY), rounds());
    eprintln!("adapter: {hits} reads found their message");
}

#[test]
fn free_racing_readers_leaks_nothing_on_limens_own_manager() {
    let hits = free_races_readers(
        ConcurrentMemoryManager::<Counted>::new(CAPACITY),
        LIMEN_ROUNDS,
    );
    eprintln!("limen-core: {hits} reads found their message");
}
