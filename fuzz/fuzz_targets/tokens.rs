//! Arbitrary `u64` token bits used against populated managers: no call
//! panics, and a call succeeds only for a token that names a live message,
//! reaching exactly that message.
#![no_main]
#![allow(unused_mut)] // `read_mut` guards are `&mut` for two managers, lock guards for one

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use slotarena::{
    ConcurrentMemoryManager, HeapMemoryManager, MemoryManager, Message, MessageHeader, MessageToken,
    StaticMemoryManager,
};

fn message(value: u64) -> Message<u64> {
    let mut header = MessageHeader::empty();
    header.set_trace_id(value);
    Message::new(header, value)
}

/// Fills `manager`, frees every third message and refills some slots so
/// stale tokens exist, then throws every token from `data` at it.
fn exercise<M: MemoryManager<u64>>(mut manager: M, data: &[u8]) {
    let mut live: HashMap<MessageToken, u64> = HashMap::new();
    let mut next = 0u64;
    while let Ok(token) = manager.store(message(next)) {
        live.insert(token, next);
        next += 1;
    }
    let mut tokens: Vec<_> = live.keys().copied().collect();
    tokens.sort_unstable();
    for token in tokens.iter().step_by(3) {
        manager.free(*token).unwrap();
        live.remove(token);
    }
    for _ in 0..tokens.len() / 6 {
        let token = manager.store(message(next)).unwrap();
        live.insert(token, next);
        next += 1;
    }
    for chunk in data.chunks_exact(9) {
        let token = MessageToken::from_bits(u64::from_le_bytes(chunk[..8].try_into().unwrap()));
        let expected = live.get(&token).copied();
        match chunk[8] % 4 {
            0 => {
                let got = manager.read(token).map(|m| (*m.payload(), m.header().trace_id())).ok();
                assert_eq!(got, expected.map(|v| (v, v)), "{token:?}");
            }
            1 => assert_eq!(manager.peek_header(token).map(|h| h.trace_id()).ok(), expected, "{token:?}"),
            2 => {
                let got = manager.read_mut(token).map(|mut m| {
                    m.header_mut().set_sequence(1);
                    *m.payload()
                });
                assert_eq!(got.ok(), expected, "{token:?}");
            }
            _ => {
                assert_eq!(manager.free(token).is_ok(), expected.is_some(), "{token:?}");
                live.remove(&token);
            }
        }
    }
    assert_eq!(manager.available(), manager.capacity() - live.len());
}

fuzz_target!(|data: &[u8]| {
    exercise(HeapMemoryManager::new(16), data);
    exercise(StaticMemoryManager::<u64, 16>::new(), data);
    exercise(ConcurrentMemoryManager::new(16), data);
});
