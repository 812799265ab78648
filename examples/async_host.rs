//! Tokio tasks sharing a message manager and a linear memory through the
//! async waiting forms: producers `store_async` into a small manager and
//! hand tokens to consumers; guests `alloc` (with the wait policy) in a
//! linear memory too small for all of them at once, write, read back and
//! free. Both stores are kept full, so every task keeps waiting for room;
//! at the end the example checks that nothing leaked.
//!
//! `cargo run --release --example async_host [messages]` (default 100000).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use slotarena::linear::{AsyncMemoryController, SharedLinearMemory, WaitPolicy};
use slotarena::{BufferDescriptor, ConcurrentMemoryManager, Message, MessageHeader, Payload};

const SLOTS: usize = 64;
const PRODUCERS: u64 = 4;
const CONSUMERS: usize = 4;
const GUESTS: u64 = 4;
/// Two of these fit in the one-page memory at once, four guests want one.
const BLOCK: u32 = 24 * 1024;

/// A payload that counts its drops, so the leak check sees every message.
struct Counted {
    value: u64,
    drops: Arc<AtomicUsize>,
}

impl Payload for Counted {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(core::mem::size_of::<u64>())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() -> ExitCode {
    let messages: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime");
    let manager = ConcurrentMemoryManager::<Counted>::new(SLOTS);
    let memory = SharedLinearMemory::new(1, 1).expect("a one-page memory");
    let drops = Arc::new(AtomicUsize::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let guest_rounds = messages / 50;
    let started = Instant::now();

    runtime.block_on(async {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut tasks = Vec::new();
        for p in 0..PRODUCERS {
            let (manager, tx, drops) = (manager.clone(), tx.clone(), drops.clone());
            tasks.push(tokio::spawn(async move {
                for value in (p..messages).step_by(PRODUCERS as usize) {
                    let payload = Counted {
                        value,
                        drops: drops.clone(),
                    };
                    // Waits (without blocking a worker thread) while all
                    // slots are taken.
                    let token = manager
                        .store_async(Message::new(MessageHeader::empty(), payload))
                        .await
                        .expect("store: the manager has slots");
                    tx.send(token).expect("a consumer is alive");
                }
            }));
        }
        drop(tx);
        for _ in 0..CONSUMERS {
            let (manager, rx, consumed) = (manager.clone(), rx.clone(), consumed.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let next = rx.lock().await.recv().await;
                    let Some(token) = next else { return };
                    let message = manager.take_shared(token).expect("take: a live token");
                    consumed.fetch_add(message.payload().value, Ordering::Relaxed);
                }
            }));
        }
        for g in 0..GUESTS {
            let memory = memory.clone();
            tasks.push(tokio::spawn(async move {
                let mut guest = memory.controller().with_wait_policy(WaitPolicy::Wait);
                for round in 0..guest_rounds {
                    let stamp = (g << 32 | round).to_le_bytes();
                    let ptr = AsyncMemoryController::alloc(&mut guest, BLOCK)
                        .await
                        .expect("alloc: the block fits the memory");
                    let bytes = AsyncMemoryController::mut_mem(&mut guest, ptr, BLOCK)
                        .expect("mut_mem: our own block");
                    bytes[..8].copy_from_slice(&stamp);
                    bytes[BLOCK as usize - 8..].copy_from_slice(&stamp);
                    tokio::task::yield_now().await;
                    let bytes = AsyncMemoryController::mut_mem(&mut guest, ptr, BLOCK)
                        .expect("mut_mem: our own block");
                    assert_eq!(bytes[..8], stamp, "a guest's bytes changed under it");
                    assert_eq!(bytes[BLOCK as usize - 8..], stamp);
                    AsyncMemoryController::free(&mut guest, ptr, BLOCK)
                        .await
                        .expect("free: our own block");
                }
            }));
        }
        for task in tasks {
            task.await.expect("a task panicked");
        }
    });
    let elapsed = started.elapsed();
    let expected_sum = messages * (messages - 1) / 2;
    let consumed = consumed.load(Ordering::Relaxed);
    let available = manager.available();
    drop(manager);
    let dropped = drops.load(Ordering::Relaxed) as u64;
    let allocated = memory.allocated_bytes();

    println!(
        "{messages} messages through {PRODUCERS} producer and {CONSUMERS} consumer tasks ({SLOTS} slots), \
         and {GUESTS} guests × {guest_rounds} rounds of {BLOCK}-byte blocks in a one-page memory, \
         on 2 worker threads in {:.3} s",
        elapsed.as_secs_f64()
    );
    println!(
        "accounting: payload sum {consumed} (expected {expected_sum}), dropped {dropped}/{messages}, \
         free slots {available}/{SLOTS}, linear bytes still allocated {allocated}"
    );
    if consumed == expected_sum && dropped == messages && available == SLOTS && allocated == 0 {
        println!("ok: nothing leaked or lost");
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: the accounting does not balance");
        ExitCode::FAILURE
    }
}
