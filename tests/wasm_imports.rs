//! The guest imports: a guest allocates from the host's allocator, and
//! whatever it passes answers an error code, never a panic or a wait.
#![cfg(all(feature = "wasmtime", unix))]

use slotarena::linear::{LinearMemoryError, PAGE_SIZE};
use slotarena::wasm::{GuestImports, GuestMemories, GuestMemory, error_code};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, TypedFunc};

const GUEST: &str = r#"(module
    (import "slotarena" "alloc" (func $alloc (param i32 i32) (result i64)))
    (import "slotarena" "free" (func $free (param i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "alloc") (param i32 i32) (result i64) (call $alloc (local.get 0) (local.get 1)))
    (func (export "free") (param i32 i32) (result i32) (call $free (local.get 0) (local.get 1)))
    (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
    (func (export "size") (result i32) (memory.size))
    (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0))))"#;

struct Guest {
    store: Store<GuestImports>,
    instance: Instance,
    alloc: TypedFunc<(i32, i32), i64>,
    free: TypedFunc<(i32, i32), i32>,
}

impl Guest {
    fn start(memories: &GuestMemories, memory: &GuestMemory) -> Guest {
        let engine = Engine::new(memories.configure(&mut Config::new())).unwrap();
        let module = Module::new(&engine, wat::parse_str(GUEST).unwrap()).unwrap();
        let mut linker = Linker::new(&engine);
        GuestImports::add_to_linker(&mut linker, |imports| imports).unwrap();
        let mut store = Store::new(&engine, GuestImports::new(memory));
        let instance = memories
            .instantiate(memory, &mut store, &linker, &module)
            .unwrap();
        let alloc = instance.get_typed_func(&mut store, "alloc").unwrap();
        let free = instance.get_typed_func(&mut store, "free").unwrap();
        Guest {
            store,
            instance,
            alloc,
            free,
        }
    }

    fn alloc(&mut self, len: i32, align: i32) -> i64 {
        self.alloc.call(&mut self.store, (len, align)).unwrap()
    }

    fn free(&mut self, ptr: i32, len: i32) -> i32 {
        self.free.call(&mut self.store, (ptr, len)).unwrap()
    }
}

fn code(error: LinearMemoryError) -> i64 {
    i64::from(error_code(error))
}

#[test]
fn the_guest_allocates_from_the_host_allocator() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 4).unwrap();
    let mut guest = Guest::start(&memories, &memory);
    let own = memory.allocated_bytes();
    let ptr = guest.alloc(100, 8);
    assert!(ptr >= i64::from(memory.guest_bytes()), "{ptr}");
    assert_eq!(ptr % 8, 0);
    assert_eq!(memory.allocated_bytes(), own + 100);
    // The host reads what the guest's memory holds there, and frees it.
    let mut host = memory.controller();
    host.write(ptr as u32, b"from the host").unwrap();
    let load8 = guest
        .instance
        .get_typed_func::<i32, i32>(&mut guest.store, "load8")
        .unwrap();
    assert_eq!(
        load8.call(&mut guest.store, ptr as i32).unwrap(),
        i32::from(b'f')
    );
    host.free(ptr as u32, 100).unwrap();
    assert_eq!(memory.allocated_bytes(), own);
    // A host block, freed by the guest.
    let ptr = host.transfer(b"for the guest").unwrap();
    assert_eq!(guest.free(ptr as i32, 13), 0);
    assert_eq!(memory.allocated_bytes(), own);
    let aligned = guest.alloc(10, 4096);
    assert_eq!(aligned % 4096, 0);
    assert_eq!(guest.free(aligned as i32, 10), 0);
}

#[test]
fn every_bad_argument_answers_its_code_and_changes_nothing() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 4).unwrap();
    let mut guest = Guest::start(&memories, &memory);
    let live = guest.alloc(64, 8);
    let before = memory.allocated_bytes();
    assert_eq!(guest.alloc(0, 8), -code(LinearMemoryError::ZeroLength));
    assert_eq!(guest.alloc(-1, 8), -code(LinearMemoryError::LengthTooLarge));
    assert_eq!(guest.alloc(8, 3), -code(LinearMemoryError::BadAlignment));
    assert_eq!(guest.alloc(8, -8), -code(LinearMemoryError::BadAlignment));
    assert_eq!(
        guest.alloc(3 * PAGE_SIZE as i32 + 1, 8),
        -code(LinearMemoryError::OutOfMemory)
    );
    let free_code = |guest: &mut Guest, ptr, len| i64::from(guest.free(ptr, len));
    assert_eq!(
        free_code(&mut guest, 0, 8),
        code(LinearMemoryError::UnknownPointer)
    );
    assert_eq!(
        free_code(&mut guest, -1, 8),
        code(LinearMemoryError::UnknownPointer)
    );
    assert_eq!(
        free_code(&mut guest, live as i32 + 8, 8),
        code(LinearMemoryError::UnknownPointer)
    );
    assert_eq!(
        free_code(&mut guest, live as i32, 65),
        code(LinearMemoryError::LengthMismatch)
    );
    // The guest's own bytes (stack, static data) are not its to free.
    let own_len = PAGE_SIZE as i32 - 256;
    assert_eq!(
        free_code(&mut guest, 256, own_len),
        code(LinearMemoryError::UnknownPointer)
    );
    assert_eq!(memory.allocated_bytes(), before);
    assert_eq!(guest.free(live as i32, 64), 0);
    assert_eq!(
        free_code(&mut guest, live as i32, 64),
        code(LinearMemoryError::DoubleFree)
    );
    assert_eq!(memory.allocated_bytes(), before - 64);
}

#[test]
fn a_guest_allocation_that_grows_the_memory_is_usable_at_once() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 8).unwrap();
    let mut guest = Guest::start(&memories, &memory);
    let len = 3 * PAGE_SIZE as i32;
    let ptr = guest.alloc(len, 8);
    assert!(ptr > 0, "{ptr}");
    assert!(memory.size_pages() >= 4);
    let size = guest
        .instance
        .get_typed_func::<(), i32>(&mut guest.store, "size")
        .unwrap();
    assert_eq!(
        size.call(&mut guest.store, ()).unwrap() as u32,
        memory.size_pages()
    );
    // A bulk fill over all of it: checked against the size wasmtime saw.
    let fill = guest
        .instance
        .get_typed_func::<(i32, i32, i32), ()>(&mut guest.store, "fill")
        .unwrap();
    fill.call(&mut guest.store, (ptr as i32, 0xab, len))
        .unwrap();
    let mut host = memory.controller();
    let tail = host.read_vec(ptr as u32 + len as u32 - 4, 4).unwrap();
    assert_eq!(tail, [0xab; 4]);
    assert_eq!(guest.free(ptr as i32, len), 0);
}

#[test]
fn paused_bytes_need_the_store_and_this_memory() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 4).unwrap();
    let mut guest = Guest::start(&memories, &memory);
    let ptr = guest.alloc(8, 8) as u32;
    let wasm_memory = guest
        .instance
        .get_memory(&mut guest.store, "memory")
        .unwrap();
    let mut host = memory.controller();
    {
        let mut bytes = host.paused(&mut guest.store, &wasm_memory, ptr, 8).unwrap();
        bytes.copy_from_slice(b"slice ok");
    }
    let load8 = guest
        .instance
        .get_typed_func::<i32, i32>(&mut guest.store, "load8")
        .unwrap();
    assert_eq!(
        load8.call(&mut guest.store, ptr as i32 + 6).unwrap(),
        i32::from(b'o')
    );
    // Another guest memory's controller refuses this store's memory.
    let other = memories.memory(1, 4).unwrap();
    let mut stranger = other.controller();
    assert_eq!(
        stranger
            .paused(&mut guest.store, &wasm_memory, ptr, 8)
            .err(),
        Some(LinearMemoryError::UnknownPointer)
    );
    // Outside the allocation: refused as by `write`.
    assert_eq!(
        host.paused(&mut guest.store, &wasm_memory, ptr, 9).err(),
        Some(LinearMemoryError::OutOfBounds)
    );
    assert_eq!(guest.free(ptr as i32, 8), 0);
}

#[test]
fn a_guest_free_racing_a_host_copy_frees_or_answers_busy_without_waiting() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 4).unwrap();
    let mut guest = Guest::start(&memories, &memory);
    for _ in 0..20 {
        let mut host = memory.controller();
        let ptr = host.transfer(&[7; 4096]).unwrap();
        let writer = std::thread::spawn(move || {
            loop {
                match host.write(ptr, &[1; 4096]) {
                    Ok(()) => continue,
                    Err(error) => {
                        assert!(
                            matches!(
                                error,
                                LinearMemoryError::DoubleFree | LinearMemoryError::UnknownPointer
                            ),
                            "{error:?}"
                        );
                        break;
                    }
                }
            }
        });
        loop {
            match i64::from(guest.free(ptr as i32, 4096)) {
                0 => break,
                busy if busy == code(LinearMemoryError::Busy) => std::thread::yield_now(),
                other => panic!("free answered {other}"),
            }
        }
        writer.join().unwrap();
    }
    assert_eq!(
        memory.allocated_bytes(),
        u64::from(memory.guest_bytes() - 256)
    );
}

#[test]
fn a_shared_guest_memory_allocates_through_the_imports_and_sees_growth() {
    let memories = GuestMemories::new();
    let mut config = Config::new();
    memories
        .configure(&mut config)
        .wasm_threads(true)
        .shared_memory(true);
    let engine = Engine::new(&config).unwrap();
    let wat = GUEST.replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 1 8 shared)",
    );
    let module = Module::new(&engine, wat::parse_str(&wat).unwrap()).unwrap();
    let mut linker = Linker::new(&engine);
    GuestImports::add_to_linker(&mut linker, |imports| imports).unwrap();
    let memory = memories.memory(1, 8).unwrap();
    let mut store = Store::new(&engine, GuestImports::new(&memory));
    let instance = memories
        .instantiate(&memory, &mut store, &linker, &module)
        .unwrap();
    let alloc = instance
        .get_typed_func::<(i32, i32), i64>(&mut store, "alloc")
        .unwrap();
    let len = 3 * PAGE_SIZE as i32;
    let ptr = alloc.call(&mut store, (len, 8)).unwrap();
    assert!(ptr > 0, "{ptr}");
    let size = instance
        .get_typed_func::<(), i32>(&mut store, "size")
        .unwrap();
    assert_eq!(
        size.call(&mut store, ()).unwrap() as u32,
        memory.size_pages()
    );
    let fill = instance
        .get_typed_func::<(i32, i32, i32), ()>(&mut store, "fill")
        .unwrap();
    fill.call(&mut store, (ptr as i32, 1, len)).unwrap();
    let free = instance
        .get_typed_func::<(i32, i32), i32>(&mut store, "free")
        .unwrap();
    assert_eq!(free.call(&mut store, (ptr as i32, len)).unwrap(), 0);
    // No slice of a shared memory: it is no `wasmtime::Memory` at all.
    assert!(instance.get_memory(&mut store, "memory").is_none());
}
