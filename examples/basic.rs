//! Store, read, mutate and free with each manager, and watch a stale token
//! get refused. `cargo run --example basic`.

use slotarena::{
    ConcurrentMemoryManager, HeapMemoryManager, MemoryError, MemoryManager, Message, MessageHeader,
    StaticMemoryManager,
};

/// The same steps through the `MemoryManager` trait, for any manager with
/// room for exactly one message.
fn walk_through<M: MemoryManager<String>>(name: &str, mut manager: M) {
    let mut header = MessageHeader::empty();
    header.set_trace_id(1);
    let token = manager
        .store(Message::new(header, String::from("hello")))
        .unwrap();
    manager
        .read_mut(token)
        .unwrap()
        .payload_mut()
        .push_str(", world");
    println!(
        "{name}: {token:?} holds {:?}",
        manager.read(token).unwrap().payload()
    );

    manager.free(token).unwrap();
    let reused = manager
        .store(Message::new(MessageHeader::empty(), String::from("next")))
        .unwrap();
    assert_eq!(reused.index(), token.index());
    assert_eq!(manager.read(token).err(), Some(MemoryError::StaleToken));
    println!(
        "{name}: the old token is refused: {}",
        MemoryError::StaleToken
    );
}

fn main() {
    walk_through("static", StaticMemoryManager::<String, 1>::new());
    walk_through("heap", HeapMemoryManager::new(1));
    walk_through("concurrent", ConcurrentMemoryManager::new(1));
}
