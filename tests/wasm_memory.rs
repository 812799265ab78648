//! A `GuestMemory` as a wasmtime guest's memory: one mapping, one growth,
//! guards that trap, bindings that are refused with a clear message.
#![cfg(all(feature = "wasmtime", unix))]

use slotarena::linear::PAGE_SIZE;
use slotarena::wasm::{GuestMemories, GuestMemory};
use wasmtime::{Config, Engine, Instance, Linker, Module, Store};

const GUEST: &str = r#"(module
    (memory (export "memory") 2)
    (data (i32.const 16) "static")
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
    (func (export "size") (result i32) (memory.size))
    (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
    (func (export "store8") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
    (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2))))"#;

fn engine(memories: &GuestMemories) -> Engine {
    Engine::new(memories.configure(&mut Config::new())).unwrap()
}

fn start(memories: &GuestMemories, memory: &GuestMemory, wat: &str) -> (Store<()>, Instance) {
    let engine = engine(memories);
    let module = Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = memories
        .instantiate(memory, &mut store, &Linker::new(&engine), &module)
        .unwrap();
    (store, instance)
}

fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    store: &mut Store<()>,
    instance: &Instance,
    name: &str,
    params: P,
) -> wasmtime::Result<R> {
    instance
        .get_typed_func::<P, R>(&mut *store, name)
        .unwrap()
        .call(&mut *store, params)
}

#[test]
fn guest_grow_and_host_grow_are_one_growth() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 8).unwrap();
    let (mut store, instance) = start(&memories, &memory, GUEST);
    assert_eq!(memory.size_pages(), 2, "grown to the module's minimum");
    assert_eq!(
        call::<i32, i32>(&mut store, &instance, "grow", 1).unwrap(),
        2
    );
    assert_eq!(memory.size_pages(), 3);
    assert_eq!(memory.grow(2), Ok(3));
    // The guest's next growth starts from the host's.
    assert_eq!(
        call::<i32, i32>(&mut store, &instance, "grow", 1).unwrap(),
        5
    );
    assert_eq!(
        call::<(), i32>(&mut store, &instance, "size", ()).unwrap(),
        6
    );
    // Past the maximum: -1 and nothing changes.
    assert_eq!(
        call::<i32, i32>(&mut store, &instance, "grow", 3).unwrap(),
        -1
    );
    assert_eq!(memory.size_pages(), 6);
    assert_eq!(
        call::<i32, i32>(&mut store, &instance, "grow", 2).unwrap(),
        6
    );
    assert_eq!(memory.size_pages(), 8);
}

#[test]
fn host_growth_reaches_the_guest_after_a_sync() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 8).unwrap();
    let (mut store, instance) = start(&memories, &memory, GUEST);
    memory.grow(1).unwrap();
    let last = 3 * PAGE_SIZE as i32 - 1;
    // Plain stores see the new page at once (it is mapped in place) ...
    call::<(i32, i32), ()>(&mut store, &instance, "store8", (last, 7)).unwrap();
    // ... bulk fills are checked against the size wasmtime last saw.
    assert!(call::<(i32, i32, i32), ()>(&mut store, &instance, "fill", (last, 1, 1)).is_err());
    GuestMemories::sync_size(&mut store, &instance).unwrap();
    call::<(i32, i32, i32), ()>(&mut store, &instance, "fill", (last, 1, 1)).unwrap();
    assert_eq!(
        call::<(), i32>(&mut store, &instance, "size", ()).unwrap(),
        3
    );
    assert_eq!(
        call::<i32, i32>(&mut store, &instance, "load8", last).unwrap(),
        1
    );
}

#[test]
fn memory_starts_zeroed_with_the_data_segments() {
    let memories = GuestMemories::new();
    let memory = memories.memory(0, 4).unwrap();
    let (mut store, instance) = start(&memories, &memory, GUEST);
    let byte = |store: &mut Store<()>, at| call::<i32, i32>(store, &instance, "load8", at).unwrap();
    assert_eq!(byte(&mut store, 16), i32::from(b's'));
    assert_eq!(byte(&mut store, 21), i32::from(b'c'));
    for at in [0, 15, 22, 1000, 2 * PAGE_SIZE as i32 - 1] {
        assert_eq!(byte(&mut store, at), 0, "byte {at}");
    }
}

#[test]
fn accesses_past_the_size_trap() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 4).unwrap();
    let (mut store, instance) = start(&memories, &memory, GUEST);
    for at in [2 * PAGE_SIZE as i32, 4 * PAGE_SIZE as i32, -1] {
        let trap = call::<i32, i32>(&mut store, &instance, "load8", at).unwrap_err();
        assert_eq!(
            trap.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::MemoryOutOfBounds),
            "load at {at}"
        );
    }
    // The guest survives its traps.
    assert_eq!(
        call::<(), i32>(&mut store, &instance, "size", ()).unwrap(),
        2
    );
}

#[test]
fn host_and_guest_see_the_same_bytes() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 4).unwrap();
    let (mut store, instance) = start(&memories, &memory, GUEST);
    let mut host = memory.controller();
    let ptr = host.transfer(b"host").unwrap();
    assert!(
        ptr >= memory.guest_bytes(),
        "host blocks sit above the guest's own bytes"
    );
    assert_eq!(
        call::<i32, i32>(&mut store, &instance, "load8", ptr as i32 + 3).unwrap(),
        i32::from(b't')
    );
    call::<(i32, i32), ()>(
        &mut store,
        &instance,
        "store8",
        (ptr as i32, i32::from(b'g')),
    )
    .unwrap();
    assert_eq!(host.read_vec(ptr, 4).unwrap(), b"gost");
    host.free(ptr, 4).unwrap();
}

#[test]
fn the_guest_keeps_its_own_bytes_until_its_store_goes() {
    let memories = GuestMemories::new();
    let memory = memories.memory(1, 4).unwrap();
    let (store, _instance) = start(&memories, &memory, GUEST);
    assert_eq!(memory.guest_bytes(), 2 * PAGE_SIZE);
    assert_eq!(memory.allocated_bytes(), u64::from(2 * PAGE_SIZE - 256));
    let mut host = memory.controller();
    assert_eq!(
        host.free(256, 2 * PAGE_SIZE - 256),
        Err(slotarena::linear::LinearMemoryError::UnknownPointer)
    );
    drop(store);
    // The mapping outlives the store for the host handles that remain.
    assert_eq!(memory.guest_bytes(), 0);
    assert_eq!(memory.allocated_bytes(), 0);
    let ptr = host.transfer(b"after").unwrap();
    assert_eq!(host.read_vec(ptr, 5).unwrap(), b"after");
    host.free(ptr, 5).unwrap();
}

#[test]
fn bindings_that_cannot_work_are_refused_with_a_reason() {
    let memories = GuestMemories::new();
    let engine = engine(&memories);
    let module = Module::new(&engine, wat::parse_str(GUEST).unwrap()).unwrap();
    let linker = Linker::new(&engine);
    let reason = |memory: &GuestMemory| {
        let mut store = Store::new(&engine, ());
        let error = memories
            .instantiate(memory, &mut store, &linker, &module)
            .unwrap_err();
        format!("{error:?}")
    };
    // No guard region: made without the creator.
    let plain = GuestMemory::new(1, 4).unwrap();
    assert!(reason(&plain).contains("GuestMemories::memory"));
    // Used before its guest came.
    let used = memories.memory(1, 4).unwrap();
    let ptr = used.controller().alloc(8).unwrap();
    assert!(reason(&used).contains("bind it fresh"));
    used.controller().free(ptr, 8).unwrap();
    // Bound twice.
    let once = memories.memory(1, 4).unwrap();
    let mut store = Store::new(&engine, ());
    memories
        .instantiate(&once, &mut store, &linker, &module)
        .unwrap();
    assert!(reason(&once).contains("bound to a guest already"));
    // Smaller maximum than the memory's in the module.
    let small_max = wat::parse_str(r#"(module (memory 1 2))"#).unwrap();
    let small_max = Module::new(&engine, small_max).unwrap();
    let memory = memories.memory(1, 4).unwrap();
    let mut store = Store::new(&engine, ());
    let error = memories
        .instantiate(&memory, &mut store, &linker, &small_max)
        .unwrap_err();
    assert!(format!("{error:?}").contains("module's maximum"));
    // A module whose minimum passes the memory's maximum.
    let big_min = Module::new(&engine, wat::parse_str("(module (memory 5))").unwrap()).unwrap();
    let memory = memories.memory(1, 4).unwrap();
    let mut store = Store::new(&engine, ());
    let error = memories
        .instantiate(&memory, &mut store, &linker, &big_min)
        .unwrap_err();
    assert!(format!("{error:?}").contains("passes the memory's maximum"));
    // A module-defined memory with no guest memory named.
    let mut store = Store::new(&engine, ());
    let error = linker.instantiate(&mut store, &module).unwrap_err();
    assert!(format!("{error:?}").contains("GuestMemories::instantiate"));
    // A module without a memory.
    let no_memory = Module::new(&engine, wat::parse_str("(module)").unwrap()).unwrap();
    let memory = memories.memory(1, 4).unwrap();
    let mut store = Store::new(&engine, ());
    let error = memories
        .instantiate(&memory, &mut store, &linker, &no_memory)
        .unwrap_err();
    assert!(error.to_string().contains("defines no memory"));
}

#[test]
fn a_shared_guest_memory_is_served_too() {
    let memories = GuestMemories::new();
    let mut config = Config::new();
    memories
        .configure(&mut config)
        .wasm_threads(true)
        .shared_memory(true);
    let engine = Engine::new(&config).unwrap();
    let wat = r#"(module (memory (export "memory") 1 4 shared)
        (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
        (func (export "load8") (param i32) (result i32) (i32.atomic.load8_u (local.get 0))))"#;
    let module = Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
    let memory = memories.memory(1, 4).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = memories
        .instantiate(&memory, &mut store, &Linker::new(&engine), &module)
        .unwrap();
    let mut host = memory.controller();
    let ptr = host.transfer(b"shared").unwrap();
    let load8 = instance
        .get_typed_func::<i32, i32>(&mut store, "load8")
        .unwrap();
    assert_eq!(load8.call(&mut store, ptr as i32).unwrap(), i32::from(b's'));
    let grow = instance
        .get_typed_func::<i32, i32>(&mut store, "grow")
        .unwrap();
    let before = memory.size_pages();
    assert_eq!(grow.call(&mut store, 1).unwrap(), before as i32);
    assert_eq!(memory.size_pages(), before + 1);
    host.free(ptr, 6).unwrap();
}
