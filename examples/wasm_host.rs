//! Host threads pass values into a running guest's memory; the guest (a
//! Rust crate whose `#[global_allocator]` is the host's allocator) reads,
//! transforms and frees them; the host checks every answer and, at the
//! end, that nothing leaked. With feature `surrealism` too, a quarter of
//! the values are surrealism-types values in its `Transfer` layout
//! (`support/transfer.rs`), which the guest echoes back in the same layout.
//!
//! `cargo run --release --features wasmtime --example wasm_host` (builds
//! `guests/guest` for wasm32-unknown-unknown first: the target must be
//! installed, `rustup target add wasm32-unknown-unknown`).

#[path = "support/guest.rs"]
mod guest;
#[cfg(feature = "surrealism")]
#[path = "support/transfer.rs"]
mod transfer;

use std::error::Error;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use slotarena::wasm::{GuestImports, GuestMemories};
use wasmtime::{Config, Engine, Linker, Module, Store};

const THREADS: usize = 4;
const VALUES_PER_THREAD: usize = 20_000;

fn expected(value: &[u8]) -> Vec<u8> {
    value.iter().rev().map(u8::to_ascii_uppercase).collect()
}

/// A value a host thread passed to the guest: its block, and what the
/// host expects back.
enum Sent {
    Bytes(u32, Vec<u8>),
    #[cfg(feature = "surrealism")]
    Typed(u32, transfer::Typed),
}

fn main() -> Result<(), Box<dyn Error>> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let wasm = guest::build_guest(repo, guest::GuestAllocator::Host)?;

    let memories = GuestMemories::new();
    let engine = Engine::new(memories.configure(&mut Config::new()))?;
    let module = Module::new(&engine, &wasm)?;
    let mut linker = Linker::new(&engine);
    GuestImports::add_to_linker(&mut linker, |imports| imports)?;
    // Up to 64 MiB; the guest's stack and static data take its minimum.
    let memory = memories.memory(0, 1024)?;
    let mut store = Store::new(&engine, GuestImports::new(&memory));
    let instance = memories.instantiate(&memory, &mut store, &linker, &module)?;
    let transform = instance.get_typed_func::<(u32, u32), u64>(&mut store, "transform")?;
    #[cfg(feature = "surrealism")]
    let echo_transfer = instance.get_typed_func::<u32, u32>(&mut store, "echo_transfer")?;
    println!(
        "guest: {} KiB of module, {} KiB of its own stack and data",
        wasm.len() / 1024,
        memory.guest_bytes() / 1024
    );

    let started = Instant::now();
    let (values, received) = mpsc::sync_channel::<Sent>(1024);
    let producers: Vec<_> = (0..THREADS)
        .map(|thread_id| {
            let (memory, values) = (memory.clone(), values.clone());
            thread::spawn(move || {
                let mut host = memory.controller();
                for i in 0..VALUES_PER_THREAD {
                    let value = format!(
                        "value {i} of host thread {thread_id}: {}",
                        "x".repeat(i % 200)
                    );
                    // Copied in while the guest runs on the same memory.
                    let ptr = host.transfer(value.as_bytes()).expect("room for the value");
                    values
                        .send(Sent::Bytes(ptr, value.into_bytes()))
                        .expect("the guest thread runs");
                    #[cfg(feature = "surrealism")]
                    if i % 4 == 0 {
                        let typed = transfer::Typed::nth(thread_id, i / 4);
                        let ptr = typed.transfer(&mut host).expect("room for the value");
                        values
                            .send(Sent::Typed(ptr, typed))
                            .expect("the guest thread runs");
                    }
                }
            })
        })
        .collect();
    drop(values);

    // The store's thread: the guest takes each value, frees it, and hands
    // back a new block of its own, which the host reads and frees.
    let mut host = memory.controller();
    let (mut synced_pages, mut checked, mut bytes) = (memory.size_pages(), 0usize, 0usize);
    #[cfg(feature = "surrealism")]
    let mut typed = 0usize;
    for sent in received {
        if memory.size_pages() != synced_pages {
            // Producers grew the memory: wasmtime's bulk copies check
            // against the size it last saw.
            synced_pages = memory.size_pages();
            GuestMemories::sync_size(&mut store, &instance)?;
        }
        let (ptr, value) = match sent {
            Sent::Bytes(ptr, value) => (ptr, value),
            #[cfg(feature = "surrealism")]
            Sent::Typed(ptr, value) => {
                let out_ptr = echo_transfer.call(&mut store, ptr)?;
                let back = value
                    .receive_like(&mut host, out_ptr)
                    .map_err(|error| error.to_string())?;
                assert_eq!(back, value, "the guest's echo of {ptr}");
                typed += 1;
                continue;
            }
        };
        let answer = transform.call(&mut store, (ptr, value.len() as u32))?;
        let (out_ptr, out_len) = ((answer >> 32) as u32, answer as u32);
        let out = host.read_vec(out_ptr, out_len)?;
        assert_eq!(out, expected(&value), "the guest's answer to {ptr}");
        host.free(out_ptr, out_len)?;
        checked += 1;
        bytes += value.len();
    }
    for producer in producers {
        producer.join().expect("a producer panicked");
    }
    let elapsed = started.elapsed();
    assert_eq!(checked, THREADS * VALUES_PER_THREAD);
    #[cfg(feature = "surrealism")]
    {
        assert_eq!(typed, THREADS * VALUES_PER_THREAD.div_ceil(4));
        println!("{typed} surrealism values echoed in its Transfer layout and received intact");
    }
    let guest_own = u64::from(memory.guest_bytes().saturating_sub(256));
    assert_eq!(
        memory.allocated_bytes(),
        guest_own,
        "only the guest's own bytes are live"
    );
    println!(
        "{checked} values ({} KiB) from {THREADS} host threads, transformed and freed by the guest \
         in {:.1} ms ({:.0} values/s); memory grew to {} pages",
        bytes / 1024,
        elapsed.as_secs_f64() * 1e3,
        checked as f64 / elapsed.as_secs_f64(),
        memory.size_pages()
    );
    drop(store); // the instance goes, and with it the guest's own bytes
    assert_eq!(memory.allocated_bytes(), 0);
    println!("allocated_bytes() == 0 after the guest: nothing leaked, every answer checked");
    Ok(())
}
