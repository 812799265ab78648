//! `StaticMemoryManager` needs no allocator and no set-up at run time:
//! `new` and `with_memory_class` are `const fn`, so a manager can live in a
//! `static` or a `const`. These tests run under every feature set,
//! `--no-default-features` included.

use std::sync::Mutex;
use std::thread;

use slotarena::{
    HeaderStore, MemoryClass, MemoryError, MemoryManager, Message, MessageHeader, MessageToken,
    StaticMemoryManager,
};

/// Built at compile time and only ever read.
static EMPTY: StaticMemoryManager<u32, 4> = StaticMemoryManager::new();

/// Built at compile time and written by several threads: `Mutex::new` is a
/// `const fn` too.
static SHARED: Mutex<StaticMemoryManager<u32, 4>> = Mutex::new(StaticMemoryManager::new());

/// Every use of a `const` is a fresh manager.
const DEVICE: StaticMemoryManager<u32, 2> =
    StaticMemoryManager::with_memory_class(MemoryClass::Device(1));

fn msg(value: u32) -> Message<u32> {
    Message::new(MessageHeader::empty(), value)
}

#[test]
fn a_static_manager_answers_read_only_queries() {
    let manager = &EMPTY;
    assert_eq!((manager.capacity(), manager.available()), (4, 4));
    assert_eq!(manager.memory_class(), MemoryClass::Host);
    assert_eq!(
        manager.read(MessageToken::new(0, 0)).err(),
        Some(MemoryError::NotAllocated)
    );
    assert_eq!(
        manager.peek_header(MessageToken::new(4, 0)).err(),
        Some(MemoryError::BadToken)
    );
    assert_eq!(
        manager.peek_header(MessageToken::INVALID).err(),
        Some(MemoryError::BadToken)
    );
}

#[test]
fn a_const_manager_is_a_fresh_manager_at_every_use() {
    let mut first = DEVICE;
    let second = DEVICE;
    let token = first.store(msg(1)).unwrap();
    assert_eq!((first.available(), second.available()), (1, 2));
    assert_eq!(second.read(token).err(), Some(MemoryError::NotAllocated));
    assert_eq!(first.memory_class(), MemoryClass::Device(1));
    assert_eq!(first.take(token).unwrap().into_parts().1, 1);
}

#[test]
fn a_static_manager_behind_a_mutex_is_shared_by_threads() {
    const THREADS: u32 = 4;
    const ROUNDS: u32 = 100;
    thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                for round in 0..ROUNDS {
                    let value = t * ROUNDS + round;
                    let token = SHARED.lock().unwrap().store(msg(value)).unwrap();
                    // Other threads store and free in between; the token
                    // still names this thread's message.
                    assert_eq!(
                        *SHARED.lock().unwrap().read(token).unwrap().payload(),
                        value
                    );
                    SHARED.lock().unwrap().free(token).unwrap();
                }
            });
        }
    });
    let manager = SHARED.lock().unwrap();
    assert_eq!((manager.capacity(), manager.available()), (4, 4));
}
