//! A host and a guest sharing one linear memory: one thread writes
//! length-prefixed values (`[u32 len][bytes]`) into it, another reads and
//! frees them. Prints throughput and checks that all space came back.
//!
//! `cargo run --release --example linear [values]` (default 200000).

use std::process::ExitCode;
use std::sync::mpsc::sync_channel;
use std::thread;
use std::time::Instant;

use slotarena::linear::{LinearMemoryController, LinearMemoryError, SharedLinearMemory};

/// The value number `i`: a few bytes to a few KiB, derived from `i` so the
/// reader can check it without a copy.
fn value(i: u64) -> Vec<u8> {
    let len = match i % 10 {
        0 => 2048 + (i % 2048),
        1..=3 => 256 + (i % 256),
        _ => 8 + (i % 120),
    } as usize;
    (0..len)
        .map(|j| (i as usize).wrapping_mul(7).wrapping_add(j) as u8)
        .collect()
}

fn main() -> ExitCode {
    let values: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let memory = SharedLinearMemory::new(1, 256).expect("a 16 MiB maximum is valid");
    let (to_guest, from_host) = sync_channel::<(u64, u32)>(1024);
    let started = Instant::now();

    let host = {
        let memory = memory.clone();
        thread::spawn(move || {
            let mut host = LinearMemoryController::new(&memory);
            let mut bytes = 0u64;
            for i in 0..values {
                let value = value(i);
                let ptr = loop {
                    match host.transfer(&value) {
                        Ok(ptr) => break ptr,
                        Err(LinearMemoryError::OutOfMemory) => thread::yield_now(), // the guest is behind
                        Err(e) => panic!("transfer: {e}"),
                    }
                };
                bytes += value.len() as u64;
                to_guest.send((i, ptr)).unwrap();
            }
            bytes
        })
    };
    let guest = {
        let memory = memory.clone();
        thread::spawn(move || {
            let mut guest = LinearMemoryController::new(&memory);
            let mut corrupt = 0u64;
            for (i, ptr) in from_host {
                if guest.receive(ptr).expect("receive") != value(i) {
                    corrupt += 1;
                }
            }
            corrupt
        })
    };

    let bytes = host.join().expect("host thread");
    let corrupt = guest.join().expect("guest thread");
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{values} values ({:.1} MiB) host → guest in {elapsed:.3} s: {:.0} values/s, {:.0} MiB/s",
        bytes as f64 / (1 << 20) as f64,
        values as f64 / elapsed,
        bytes as f64 / (1 << 20) as f64 / elapsed,
    );
    println!(
        "memory: {} of {} pages used at most; {} bytes still allocated; {corrupt} corrupt values",
        memory.size_pages(),
        memory.max_pages(),
        memory.allocated_bytes()
    );
    if memory.allocated_bytes() == 0 && corrupt == 0 {
        println!("ok: every value arrived intact and all space was returned");
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED");
        ExitCode::FAILURE
    }
}
