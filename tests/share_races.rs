//! Regression tests for issue 18: queue share counts on a slot's first
//! message (generation 0). The share-count word beside a slot used to start
//! at 0, which is also "open, generation 0, no shares", so in the window
//! between `retain_shared` marking a fresh message retained and publishing
//! its count, a racing release freed the message, a racing retain was
//! overwritten, and a late count store could land beside the slot's next
//! message and make its share calls spin for ever.
//!
//! Each test runs two threads in lockstep over many fresh slots, so the
//! window is hit thousands of times per run; each is run pinned to one core
//! too (`taskset -c 0 cargo test --test share_races`), where the window
//! opens whenever the scheduler preempts a retainer inside it.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use std::thread;
use std::time::Duration;

use slotarena::{ConcurrentMemoryManager, MemoryError, Message, MessageHeader, MessageToken};
use support::within;

const MESSAGES: usize = if cfg!(miri) { 200 } else { 200_000 };

fn message(value: u64) -> Message<u64> {
    Message::new(MessageHeader::empty(), value)
}

/// Lines two threads up before each round, so both enter their share call
/// on the same message at the same moment. It spins, yielding now and then
/// so that it also makes progress pinned to one core.
struct Lockstep(AtomicUsize);

impl Lockstep {
    fn new() -> Self {
        Lockstep(AtomicUsize::new(0))
    }

    /// Returns once both threads have called `meet` for `round` (0, 1, …).
    fn meet(&self, round: usize) {
        self.0.fetch_add(1, Ordering::AcqRel);
        let mut spins = 0u32;
        while self.0.load(Ordering::Acquire) < 2 * (round + 1) {
            spins += 1;
            if spins.is_multiple_of(64) {
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

/// `MESSAGES` fresh messages, each in a slot that never held one before.
fn fresh_messages() -> (ConcurrentMemoryManager<u64>, Vec<MessageToken>) {
    let manager = ConcurrentMemoryManager::new(MESSAGES);
    let tokens: Vec<MessageToken> = (0..MESSAGES as u64)
        .map(|i| manager.store_shared(message(i)).unwrap())
        .collect();
    assert!(tokens.iter().all(|token| token.generation() == 0));
    (manager, tokens)
}

/// Releases `token`'s share as soon as it has one: `NotShared` until the
/// racing retain has marked it, then whatever the release answers.
fn release_once_shared(
    manager: &ConcurrentMemoryManager<u64>,
    token: MessageToken,
) -> Result<u32, MemoryError> {
    loop {
        match manager.release_shared(token) {
            Err(MemoryError::NotShared) => thread::yield_now(),
            answer => return answer,
        }
    }
}

#[test]
fn a_release_racing_the_first_retain_never_frees_the_message() {
    // Failed before the fix: a debug build panicked in shares.rs ("an open
    // count word of a retained message, left: 0, right: 1"); a release
    // build answered Ok(0) and freed messages retained with 2 shares.
    within(Duration::from_secs(120), || {
        let (manager, tokens) = fresh_messages();
        let lockstep = Lockstep::new();
        thread::scope(|s| {
            s.spawn(|| {
                for (round, &token) in tokens.iter().enumerate() {
                    lockstep.meet(round);
                    assert_eq!(manager.retain_shared(token, 2), Ok(2));
                }
            });
            s.spawn(|| {
                for (round, &token) in tokens.iter().enumerate() {
                    lockstep.meet(round);
                    let released = release_once_shared(&manager, token);
                    assert_eq!(released, Ok(1), "a release freed a message retained twice");
                }
            });
        });
        for (value, &token) in (0u64..).zip(&tokens) {
            assert_eq!(manager.shares(token), Ok(1));
            assert_eq!(manager.read_shared(token).unwrap().payload(), &value);
        }
        assert_eq!(manager.available(), 0);
    });
}

#[test]
fn two_first_retains_of_a_fresh_message_both_count() {
    // Failed before the fix: the second retainer found the fresh word "open
    // with no shares", added its share there, and the first retainer's
    // late store overwrote it; 1 share instead of 2 for thousands of the
    // 200 000 messages.
    within(Duration::from_secs(120), || {
        let (manager, tokens) = fresh_messages();
        let lockstep = Lockstep::new();
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for (round, &token) in tokens.iter().enumerate() {
                        lockstep.meet(round);
                        assert!(matches!(manager.retain_shared(token, 1), Ok(1 | 2)));
                    }
                });
            }
        });
        let lost = tokens
            .iter()
            .filter(|&&token| manager.shares(token) != Ok(2))
            .count();
        assert_eq!(lost, 0, "messages whose two retains counted as one");
    });
}

#[test]
fn the_next_message_of_a_slot_keeps_its_own_count() {
    // Failed before the fix: a release that freed the first message under a
    // racing retain let that retain's late count store (generation 0) land
    // beside the slot's next message, whose share calls then spun for ever
    // (this test's time limit). A debug build panicked in shares.rs first.
    //
    // Each round one thread stores a fresh message; both meet; the other
    // retains it once while the first releases that share as soon as it
    // exists (freeing the message), then at once stores the slot's next
    // message, retains and counts it, and keeps it so that the next round
    // gets a fresh slot. At the end every kept message's last release must
    // free it.
    within(Duration::from_secs(120), || {
        let manager = ConcurrentMemoryManager::new(2 * MESSAGES);
        let published = AtomicU64::new(MessageToken::INVALID.to_bits());
        let lockstep = Lockstep::new();
        thread::scope(|s| {
            s.spawn(|| {
                for round in 0..MESSAGES {
                    lockstep.meet(round);
                    let token = MessageToken::from_bits(published.load(Ordering::Relaxed));
                    assert_eq!(manager.retain_shared(token, 1), Ok(1));
                }
            });
            s.spawn(|| {
                let mut kept = Vec::with_capacity(MESSAGES);
                for round in 0..MESSAGES {
                    let first = manager.store_shared(message(round as u64)).unwrap();
                    assert_eq!(
                        first.generation(),
                        0,
                        "round {round} did not get a fresh slot"
                    );
                    // Relaxed: `meet` orders it for the other thread.
                    published.store(first.to_bits(), Ordering::Relaxed);
                    lockstep.meet(round);
                    assert_eq!(release_once_shared(&manager, first), Ok(0));
                    let next = manager.store_shared(message(round as u64)).unwrap();
                    assert_eq!(manager.retain_shared(next, 1), Ok(1));
                    assert_eq!(manager.shares(next), Ok(1));
                    kept.push(next);
                }
                for next in kept {
                    assert_eq!(manager.release_shared(next), Ok(0));
                }
            });
        });
        assert_eq!(manager.available(), manager.capacity());
    });
}
