//! Real threads hammering one manager: exact drop accounting, stale tokens
//! never reaching newer messages, `available <= capacity` throughout.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;

use slotarena::{ConcurrentMemoryManager, MemoryError, MessageToken};
use support::{Counted, DropCounter};

const THREADS: u64 = 4;
const ROUNDS: u64 = if cfg!(miri) { 200 } else { 100_000 };

/// A tiny deterministic generator so failures replay.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Checks that `token` still reaches message `id`, through every read path.
fn check_reaches(m: &ConcurrentMemoryManager<Counted>, token: MessageToken, id: u64) {
    let guard = m.read_shared(token).expect("a live token reads");
    assert_eq!(guard.payload().id, id);
    assert_eq!(guard.header().trace_id(), id);
}

fn worker(
    m: ConcurrentMemoryManager<Counted>,
    counter: DropCounter,
    thread_id: u64,
    handoff_out: mpsc::Sender<(MessageToken, u64)>,
    handoff_in: mpsc::Receiver<(MessageToken, u64)>,
    stores: Arc<AtomicUsize>,
) {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15 ^ (thread_id + 1));
    let mut live: Vec<(MessageToken, u64)> = Vec::new();
    let mut dead: Vec<(MessageToken, u64)> = Vec::new();
    for round in 0..ROUNDS {
        while let Ok(received) = handoff_in.try_recv() {
            live.push(received);
        }
        let id = (thread_id << 32) | round;
        match rng.next() % 8 {
            0..=2 => match m.store_shared(counter.message(id)) {
                Ok(token) => {
                    stores.fetch_add(1, Ordering::Relaxed);
                    live.push((token, id));
                }
                Err(MemoryError::NoFreeSlots) => {
                    stores.fetch_add(1, Ordering::Relaxed); // the rejected message is dropped
                }
                Err(e) => panic!("store: {e:?}"),
            },
            3 if !live.is_empty() => {
                let (token, id) = live[rng.next() as usize % live.len()];
                check_reaches(&m, token, id);
            }
            4 if !live.is_empty() => {
                let (token, id) = live[rng.next() as usize % live.len()];
                let mut guard = m.read_mut_shared(token).unwrap();
                assert_eq!(guard.payload().id, id);
                guard.header_mut().set_sequence(round);
            }
            5 if !live.is_empty() => {
                let (token, id) = live.swap_remove(rng.next() as usize % live.len());
                let message = m.take_shared(token).unwrap();
                assert_eq!(message.payload().id, id, "take returned another message");
                dead.push((token, id));
            }
            6 if !dead.is_empty() => {
                let (token, _) = dead[rng.next() as usize % dead.len()];
                match m.read_shared(token) {
                    Err(MemoryError::StaleToken | MemoryError::NotAllocated) => {}
                    Err(e) => panic!("stale read: unexpected {e:?}"),
                    Ok(guard) => panic!("stale token reached message {}", guard.payload().id),
                }
                assert!(matches!(
                    m.free_shared(token),
                    Err(MemoryError::StaleToken | MemoryError::NotAllocated)
                ));
            }
            7 if !live.is_empty() => {
                // Hand a message to the next thread, which will free it.
                let handed = live.swap_remove(rng.next() as usize % live.len());
                if let Err(mpsc::SendError((token, id))) = handoff_out.send(handed) {
                    // The next thread already finished; free it here.
                    assert_eq!(m.take_shared(token).unwrap().payload().id, id);
                }
            }
            _ => {}
        }
    }
    for (token, id) in live {
        assert_eq!(m.take_shared(token).unwrap().payload().id, id);
    }
    // Messages handed to us after our last round stay stored; dropping the
    // manager at the end must drop them exactly once.
    drop(handoff_in);
}

#[test]
fn four_threads_account_for_every_message() {
    let counter = DropCounter::default();
    let m = ConcurrentMemoryManager::new(256);
    let stores = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let m = m.clone();
        let stop = stop.clone();
        thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let (available, capacity) = (m.available(), m.capacity());
                assert!(
                    available <= capacity,
                    "available {available} > capacity {capacity}"
                );
                samples += 1;
            }
            samples
        })
    };
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel()).unzip();
    let workers: Vec<_> = receivers
        .into_iter()
        .enumerate()
        .map(|(t, handoff_in)| {
            let handoff_out = senders[(t + 1) % THREADS as usize].clone();
            let (m, counter, stores) = (m.clone(), counter.clone(), stores.clone());
            thread::spawn(move || worker(m, counter, t as u64, handoff_out, handoff_in, stores))
        })
        .collect();
    // Keep our own receiving ends alive through `senders`; collect leftovers.
    for worker in workers {
        worker.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(sampler.join().unwrap() > 0);
    drop(senders);
    let leftover = m.capacity() - m.available();
    drop(m);
    assert_eq!(
        counter.drops(),
        stores.load(Ordering::Relaxed),
        "{leftover} left at the end were dropped once too"
    );
}

#[test]
fn readers_racing_free_and_reuse_never_see_a_newer_message() {
    let m = ConcurrentMemoryManager::<Counted>::new(2);
    let counter = DropCounter::default();
    let current = Arc::new(std::sync::Mutex::new(Vec::<(MessageToken, u64)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (m, current, stop) = (m.clone(), current.clone(), stop.clone());
            thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Some(&(token, id)) = current.lock().unwrap().last() {
                        seen.push((token, id));
                    }
                    for &(token, id) in seen.iter().rev().take(8) {
                        if let Ok(guard) = m.read_shared(token) {
                            assert_eq!(guard.payload().id, id, "{token:?} reached another message");
                        }
                    }
                    seen.truncate(64);
                }
            })
        })
        .collect();
    for id in 0..ROUNDS {
        let token = m.store_shared(counter.message(id)).unwrap();
        current.lock().unwrap().push((token, id));
        loop {
            match m.free_shared(token) {
                Ok(()) => break,
                Err(MemoryError::BorrowActive) => thread::yield_now(),
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    assert_eq!(counter.drops() as u64, ROUNDS);
}
