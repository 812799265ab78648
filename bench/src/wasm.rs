//! T1 and T2: values between a host and a wasmtime guest (feature
//! `wasmtime` of this crate).
//!
//! - T1: pass a 1 KiB value from the host into the guest, which reads
//!   (sums) and frees it. (a) surrealism's way: the host calls the guest's
//!   exported `__sr_alloc`, writes the value through wasmtime, and the
//!   guest frees it with std's allocator; (b) ours: a `GuestController`
//!   allocates straight into the guest's memory (written through a
//!   slice while the store is held, or by byte-wise atomic copies), and
//!   the guest frees through the `slotarena.free` import.
//! - T2: the guest's own `Vec`/`String` churn, with std's allocator
//!   against the host-import allocator.

#[path = "../../examples/support/guest.rs"]
mod guest;

use std::path::Path;
use std::time::{Duration, Instant};

use slotarena::wasm::{GuestController, GuestImports, GuestMemories, GuestMemory};
use wasmtime::{Config, Engine, Linker, Memory, Module, Store, TypedFunc};

use guest::{GuestAllocator, build_guest};

/// Bytes of a T1 value.
pub const VALUE: usize = 1024;

fn value() -> [u8; VALUE] {
    core::array::from_fn(|i| (i % 251) as u8)
}

fn value_sum() -> u32 {
    value().iter().map(|&b| u32::from(b)).sum()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ sits in the repository")
}

/// (a): a guest with std's allocator on wasmtime's own memory, fed through
/// its exported allocator.
pub struct Surrealism {
    store: Store<()>,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    consume: TypedFunc<(u32, u32), u32>,
    churn: TypedFunc<u32, u32>,
}

impl Surrealism {
    /// Builds the std-allocator guest and instantiates it.
    pub fn start() -> Surrealism {
        let wasm = build_guest(repo(), GuestAllocator::Std).expect("the guest builds");
        let engine = Engine::new(&Config::new()).expect("an engine");
        let module = Module::new(&engine, wasm).expect("the guest compiles");
        let mut store = Store::new(&engine, ());
        let instance = Linker::new(&engine)
            .instantiate(&mut store, &module)
            .expect("the guest instantiates");
        Surrealism {
            memory: instance.get_memory(&mut store, "memory").expect("memory"),
            alloc: instance
                .get_typed_func(&mut store, "__sr_alloc")
                .expect("alloc"),
            consume: instance
                .get_typed_func(&mut store, "consume")
                .expect("consume"),
            churn: instance.get_typed_func(&mut store, "churn").expect("churn"),
            store,
        }
    }

    /// T1 `n` times.
    pub fn t1(&mut self, n: u64) -> Duration {
        let (value, sum) = (value(), value_sum());
        let start = Instant::now();
        for _ in 0..n {
            let ptr = self
                .alloc
                .call(&mut self.store, VALUE as u32)
                .expect("alloc");
            self.memory
                .write(&mut self.store, ptr as usize, &value)
                .expect("in bounds");
            let got = self
                .consume
                .call(&mut self.store, (ptr, VALUE as u32))
                .expect("consume");
            assert_eq!(got, sum);
        }
        start.elapsed()
    }

    /// T2: `rounds` rounds of the guest's churn.
    pub fn churn(&mut self, rounds: u32) -> Duration {
        let start = Instant::now();
        std::hint::black_box(self.churn.call(&mut self.store, rounds).expect("churn"));
        start.elapsed()
    }
}

/// (b): a guest whose allocator is the host's, on a `GuestMemory`.
pub struct Shared {
    store: Store<GuestImports>,
    memory: GuestMemory,
    wasm_memory: Memory,
    host: GuestController,
    consume: TypedFunc<(u32, u32), u32>,
    churn: TypedFunc<u32, u32>,
}

impl Shared {
    /// Builds the host-import guest and instantiates it on a guest memory.
    pub fn start() -> Shared {
        let wasm = build_guest(repo(), GuestAllocator::Host).expect("the guest builds");
        let memories = GuestMemories::new();
        let engine = Engine::new(memories.configure(&mut Config::new())).expect("an engine");
        let module = Module::new(&engine, wasm).expect("the guest compiles");
        let mut linker = Linker::new(&engine);
        GuestImports::add_to_linker(&mut linker, |imports| imports).expect("imports");
        let memory = memories.memory(0, 1024).expect("a memory");
        let mut store = Store::new(&engine, GuestImports::new(&memory));
        let instance = memories
            .instantiate(&memory, &mut store, &linker, &module)
            .expect("the guest instantiates");
        Shared {
            wasm_memory: instance.get_memory(&mut store, "memory").expect("memory"),
            consume: instance
                .get_typed_func(&mut store, "consume")
                .expect("consume"),
            churn: instance.get_typed_func(&mut store, "churn").expect("churn"),
            host: memory.controller(),
            memory,
            store,
        }
    }

    /// T1 `n` times, the value written through a slice while the store
    /// is held (the guest is paused).
    pub fn t1_paused(&mut self, n: u64) -> Duration {
        let (value, sum) = (value(), value_sum());
        let start = Instant::now();
        for _ in 0..n {
            let ptr = self.host.alloc(VALUE as u32).expect("alloc");
            self.host
                .paused(&mut self.store, &self.wasm_memory, ptr, VALUE as u32)
                .expect("the block")
                .copy_from_slice(&value);
            let got = self
                .consume
                .call(&mut self.store, (ptr, VALUE as u32))
                .expect("consume");
            assert_eq!(got, sum);
        }
        start.elapsed()
    }

    /// T1 `n` times, the value written by byte-wise atomic copies (what a
    /// host thread does while the guest runs).
    pub fn t1_copied(&mut self, n: u64) -> Duration {
        let (value, sum) = (value(), value_sum());
        let start = Instant::now();
        for _ in 0..n {
            let ptr = self.host.transfer(&value).expect("transfer");
            let got = self
                .consume
                .call(&mut self.store, (ptr, VALUE as u32))
                .expect("consume");
            assert_eq!(got, sum);
        }
        start.elapsed()
    }

    /// T2: `rounds` rounds of the guest's churn.
    pub fn churn(&mut self, rounds: u32) -> Duration {
        let start = Instant::now();
        std::hint::black_box(self.churn.call(&mut self.store, rounds).expect("churn"));
        start.elapsed()
    }

    /// Bytes live beyond the guest's own (0 between runs: nothing leaks).
    pub fn leaked_bytes(&self) -> u64 {
        let own = u64::from(self.memory.guest_bytes().saturating_sub(256));
        self.memory.allocated_bytes() - own
    }
}
