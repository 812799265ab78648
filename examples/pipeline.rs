//! The main job: a multistage pipeline that passes tokens, not messages.
//!
//! ```text
//! producers ──▶ transformers ──▶ fan-out ──┬──▶ sink A
//!  (store)      (write guard)   (retain 2) └──▶ sink B   (read, release)
//! ```
//!
//! Every stage has several threads; tokens travel over bounded channels.
//! At the end it prints throughput and an accounting line, and exits
//! non-zero if any message leaked, was lost or was corrupted.
//!
//! `cargo run --release --example pipeline [messages]` (default 400000).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use slotarena::{
    BufferDescriptor, ConcurrentMemoryManager, MemoryError, Message, MessageHeader, MessageToken,
    Payload,
};

const CAPACITY: usize = 1024;
const PRODUCERS: usize = 2;
const TRANSFORMERS: usize = 2;
const FANOUTS: usize = 1;
const SINK_THREADS: usize = 2;
const CHANNEL_DEPTH: usize = 128;

/// A 48-byte frame whose checksum each stage keeps honest.
struct Frame {
    data: [u8; 48],
    checksum: u64,
    transformed: u32,
    drops: Arc<AtomicUsize>,
}

impl Frame {
    fn new(seed: u64, drops: Arc<AtomicUsize>) -> Frame {
        let mut data = [0u8; 48];
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = (seed.wrapping_mul(31).wrapping_add(i as u64)) as u8;
        }
        Frame {
            checksum: checksum(&data),
            data,
            transformed: 0,
            drops,
        }
    }

    fn is_intact(&self) -> bool {
        self.checksum == checksum(&self.data) && self.transformed == 1
    }
}

fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl Drop for Frame {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

impl Payload for Frame {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(self.data.len())
    }
}

/// A stage's input: one receiver shared by the stage's threads.
type Inbox = Arc<Mutex<Receiver<MessageToken>>>;

fn stage(depth: usize) -> (SyncSender<MessageToken>, Inbox) {
    let (tx, rx) = sync_channel(depth);
    (tx, Arc::new(Mutex::new(rx)))
}

fn next(inbox: &Inbox) -> Option<MessageToken> {
    inbox.lock().unwrap().recv().ok()
}

#[derive(Default)]
struct Tally {
    stored: AtomicU64,
    corrupt: AtomicU64,
    sunk: [AtomicU64; 2],
}

fn main() -> ExitCode {
    let messages: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400_000);
    let manager = ConcurrentMemoryManager::<Frame>::new(CAPACITY);
    let drops = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally::default());
    let (to_transform, transform_in) = stage(CHANNEL_DEPTH);
    let (to_fanout, fanout_in) = stage(CHANNEL_DEPTH);
    let (to_sink_a, sink_a_in) = stage(CHANNEL_DEPTH);
    let (to_sink_b, sink_b_in) = stage(CHANNEL_DEPTH);
    let started = Instant::now();
    let mut threads = Vec::new();

    for p in 0..PRODUCERS as u64 {
        let (m, out, drops, tally) = (
            manager.clone(),
            to_transform.clone(),
            drops.clone(),
            tally.clone(),
        );
        threads.push(thread::spawn(move || {
            for seq in (p..messages).step_by(PRODUCERS) {
                let mut header = MessageHeader::empty();
                header.set_sequence(seq).set_trace_id(p);
                let message = Message::new(header, Frame::new(seq, drops.clone()));
                // Full: back-pressure. The producer sleeps until a sink's
                // last release frees a slot (no retry loop).
                let token = m.store_wait(message).expect("store: capacity is not zero");
                tally.stored.fetch_add(1, Ordering::Relaxed);
                out.send(token).unwrap();
            }
        }));
    }
    drop(to_transform);

    for _ in 0..TRANSFORMERS {
        let (m, inbox, out) = (manager.clone(), transform_in.clone(), to_fanout.clone());
        threads.push(thread::spawn(move || {
            while let Some(token) = next(&inbox) {
                {
                    let mut guard = m.read_mut_shared(token).expect("transform: live token");
                    let frame = guard.payload_mut();
                    for byte in &mut frame.data {
                        *byte = byte.wrapping_add(1);
                    }
                    frame.checksum = checksum(&frame.data);
                    frame.transformed += 1;
                }
                out.send(token).unwrap();
            }
        }));
    }
    drop(to_fanout);

    for _ in 0..FANOUTS {
        let (m, inbox, a, b) = (
            manager.clone(),
            fanout_in.clone(),
            to_sink_a.clone(),
            to_sink_b.clone(),
        );
        threads.push(thread::spawn(move || {
            while let Some(token) = next(&inbox) {
                m.retain_shared(token, 2).expect("fan-out: live token");
                a.send(token).unwrap();
                b.send(token).unwrap();
            }
        }));
    }
    drop((to_sink_a, to_sink_b));

    for (sink, inbox) in [sink_a_in, sink_b_in].into_iter().enumerate() {
        for _ in 0..SINK_THREADS {
            let (m, inbox, tally) = (manager.clone(), inbox.clone(), tally.clone());
            threads.push(thread::spawn(move || {
                while let Some(token) = next(&inbox) {
                    {
                        let guard = m.read_shared(token).expect("sink: live token");
                        if !guard.payload().is_intact() {
                            tally.corrupt.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // The last release frees the message; it may meet the
                    // other sink's read guard for a moment, so retry.
                    loop {
                        match m.release_shared(token) {
                            Ok(_) => break,
                            Err(MemoryError::BorrowActive) => thread::yield_now(),
                            Err(e) => panic!("sink release: {e}"),
                        }
                    }
                    tally.sunk[sink].fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }

    for t in threads {
        t.join().expect("a pipeline thread panicked");
    }
    let elapsed = started.elapsed();
    let stored = tally.stored.load(Ordering::Relaxed);
    let sunk = [
        tally.sunk[0].load(Ordering::Relaxed),
        tally.sunk[1].load(Ordering::Relaxed),
    ];
    let corrupt = tally.corrupt.load(Ordering::Relaxed);
    let available = manager.available();
    drop(manager);
    let dropped = drops.load(Ordering::Relaxed) as u64;

    println!(
        "{messages} messages through 5 stages ({} threads) in {:.3} s: {:.0} messages/s",
        PRODUCERS + TRANSFORMERS + FANOUTS + 2 * SINK_THREADS,
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64(),
    );
    println!(
        "accounting: stored {stored}, sink A {}, sink B {}, dropped {dropped}, corrupt {corrupt}, free slots {available}/{CAPACITY}",
        sunk[0], sunk[1]
    );
    let ok = stored == messages
        && sunk == [messages, messages]
        && dropped == messages
        && corrupt == 0
        && available == CAPACITY;
    if ok {
        println!("ok: nothing leaked, lost or corrupted");
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: the accounting does not balance");
        ExitCode::FAILURE
    }
}
