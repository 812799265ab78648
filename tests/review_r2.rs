//! Review R2: reproducers of defects found in an adversarial review of the
//! linear memory's clients (the wasm binding, the surrealism adapter).
//! Each test failed on the code before its fix.

/// wasmtime guests (`src/wasm/engine.rs`).
#[cfg(all(feature = "wasmtime", unix))]
mod wasm {
    use slotarena::linear::LinearMemoryError;
    use slotarena::wasm::{GuestMemories, GuestMemory};
    use wasmtime::{Config, Engine, Linker, Module, Store};

    fn bind(memories: &GuestMemories, memory: &GuestMemory, wat: &str) -> Store<()> {
        let engine = Engine::new(memories.configure(&mut Config::new())).unwrap();
        let module = Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let mut store = Store::new(&engine, ());
        memories
            .instantiate(memory, &mut store, &Linker::new(&engine), &module)
            .unwrap();
        store
    }

    /// A module whose minimum is the whole 4 GiB: its own bytes end at
    /// 2^32, which `as u32` made 0, so `guest_bytes()` said "not bound" and
    /// a host freed the guest's stack and data ("left: Ok(())").
    #[test]
    fn a_guest_of_the_whole_4_gib_keeps_its_own_bytes() {
        let memories = GuestMemories::new();
        let memory = memories.memory(1, 65_536).unwrap();
        let store = bind(
            &memories,
            &memory,
            r#"(module (memory (export "memory") 65536 65536))"#,
        );
        let own = u32::MAX - 255; // all but the first 256 bytes
        assert_eq!(memory.allocated_bytes(), u64::from(own));
        assert_eq!(memory.guest_bytes(), u32::MAX);
        let mut host = memory.controller();
        assert_eq!(
            host.free(256, own),
            Err(LinearMemoryError::UnknownPointer),
            "a host freed the guest's own bytes"
        );
        drop(store);
        assert_eq!(memory.guest_bytes(), 0);
        assert_eq!(memory.allocated_bytes(), 0);
    }
}
