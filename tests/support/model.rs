//! The reference model every manager is checked against.
//!
//! The model does not predict which slot a store picks (that is each
//! manager's business); it records the tokens the manager returned and
//! derives every other answer from them: which tokens are live, what they
//! hold, and which error a dead, stale or forged token must get. The
//! proptest suites and the fuzz targets (through `#[path]`) share this file.

use std::collections::HashMap;

#[cfg(feature = "std")]
use slotarena::ConcurrentMemoryManager;
#[cfg(feature = "alloc")]
use slotarena::HeapMemoryManager;
use slotarena::{
    MemoryError, MemoryManager, Message, MessageHeader, MessageToken, StaticMemoryManager,
};

/// One step of an operation sequence. `usize` operands pick a token among
/// every token issued so far (live, freed or stale), modulo their number.
#[derive(Debug, Clone)]
pub enum Op {
    Store(u64),
    Read(usize),
    TryRead(usize),
    Write(usize, u64),
    Peek(usize),
    Free(usize),
    Take(usize),
    Forged(u64),
}

/// A manager seen through the operations the model knows, with `u64`
/// payloads whose header trace id equals the payload.
pub trait Subject {
    fn store(&mut self, value: u64) -> Result<MessageToken, MemoryError>;
    fn read(&mut self, token: MessageToken) -> Result<u64, MemoryError>;
    /// The non-blocking read where the manager has one (nothing else can
    /// hold a guard here, so it answers like `read`).
    fn try_read(&mut self, token: MessageToken) -> Result<u64, MemoryError>;
    fn write(&mut self, token: MessageToken, value: u64) -> Result<(), MemoryError>;
    fn peek(&mut self, token: MessageToken) -> Result<u64, MemoryError>;
    fn free(&mut self, token: MessageToken) -> Result<(), MemoryError>;
    fn take(&mut self, token: MessageToken) -> Result<u64, MemoryError>;
    fn available(&self) -> usize;
    fn capacity(&self) -> usize;
}

fn message(value: u64) -> Message<u64> {
    let mut header = MessageHeader::empty();
    header.set_trace_id(value);
    Message::new(header, value)
}

/// Implements [`Subject`] through `MemoryManager` plus the manager's own
/// take method and non-blocking read (a closure over `&Self` and a token).
macro_rules! subject {
    ($ty:ty, $take:ident, $try_read:expr) => {
        impl Subject for $ty {
            fn store(&mut self, value: u64) -> Result<MessageToken, MemoryError> {
                MemoryManager::store(self, message(value))
            }
            fn read(&mut self, token: MessageToken) -> Result<u64, MemoryError> {
                MemoryManager::read(self, token).map(|m| *m.payload())
            }
            fn try_read(&mut self, token: MessageToken) -> Result<u64, MemoryError> {
                let try_read = $try_read;
                try_read(self, token)
            }
            fn write(&mut self, token: MessageToken, value: u64) -> Result<(), MemoryError> {
                #[allow(unused_mut)] // a plain `&mut` guard needs no `mut` binding; lock guards do
                let mut guard = MemoryManager::read_mut(self, token)?;
                *guard.payload_mut() = value;
                guard.header_mut().set_trace_id(value);
                Ok(())
            }
            fn peek(&mut self, token: MessageToken) -> Result<u64, MemoryError> {
                slotarena::HeaderStore::peek_header(self, token).map(|h| h.trace_id())
            }
            fn free(&mut self, token: MessageToken) -> Result<(), MemoryError> {
                MemoryManager::free(self, token)
            }
            fn take(&mut self, token: MessageToken) -> Result<u64, MemoryError> {
                self.$take(token).map(|m| *m.payload())
            }
            fn available(&self) -> usize {
                MemoryManager::available(self)
            }
            fn capacity(&self) -> usize {
                MemoryManager::capacity(self)
            }
        }
    };
}

// Each manager exists under its slotarena feature (the fuzz crate turns
// the same-named features of its own on, so it sees all three).
#[cfg(feature = "alloc")]
subject!(HeapMemoryManager<u64>, take, |m: &Self, t| {
    MemoryManager::read(m, t).map(|g| *g.payload())
});
subject!(StaticMemoryManager<u64, 8>, take, |m: &Self, t| MemoryManager::read(m, t).map(|g| *g.payload()));
#[cfg(feature = "std")]
subject!(ConcurrentMemoryManager<u64>, take_shared, |m: &Self, t| m
    .try_read_shared(t)
    .map(|g| *g.payload()));

/// What the model knows: the capacity, every live token's value, and each
/// used slot's generation (its value's, or its next value's once freed).
pub struct Model {
    capacity: usize,
    live: HashMap<usize, (MessageToken, u64)>,
    issued: Vec<MessageToken>,
    generations: HashMap<usize, u32>,
}

impl Model {
    pub fn new(capacity: usize) -> Model {
        Model {
            capacity,
            live: HashMap::new(),
            issued: Vec::new(),
            generations: HashMap::new(),
        }
    }

    fn pick(&self, choice: usize) -> MessageToken {
        if self.issued.is_empty() {
            MessageToken::INVALID
        } else {
            self.issued[choice % self.issued.len()]
        }
    }

    /// The answer the contract requires for `token`: its value if live,
    /// otherwise the error, in the contract's order.
    fn lookup(&self, token: MessageToken) -> Result<u64, MemoryError> {
        if !token.is_valid() || token.index() >= self.capacity {
            return Err(MemoryError::BadToken);
        }
        // Every slot starts at generation 0 and moves on by one per free.
        let reached = self.generations.get(&token.index()).copied().unwrap_or(0);
        if token.generation() > reached {
            return Err(MemoryError::BadToken); // never handed out
        }
        match self.live.get(&token.index()) {
            None => Err(MemoryError::NotAllocated),
            Some((live, _)) if *live != token => Err(MemoryError::StaleToken),
            Some((_, value)) => Ok(*value),
        }
    }

    /// Applies `op` to `subject` and to the model, panicking with the step
    /// on the first disagreement.
    pub fn step(&mut self, subject: &mut dyn Subject, op: &Op) {
        match *op {
            Op::Store(value) => {
                let got = subject.store(value);
                if self.live.len() == self.capacity {
                    assert_eq!(
                        got,
                        Err(MemoryError::NoFreeSlots),
                        "{op:?} on a full manager"
                    );
                } else {
                    let token = got.unwrap_or_else(|e| panic!("{op:?} failed with {e:?}"));
                    assert!(
                        token.index() < self.capacity,
                        "{op:?} gave out-of-range {token:?}"
                    );
                    assert!(
                        !self.live.contains_key(&token.index()),
                        "{op:?} reused live slot {token:?}"
                    );
                    assert!(
                        !self.issued.contains(&token),
                        "{op:?} repeated an old token {token:?}"
                    );
                    self.live.insert(token.index(), (token, value));
                    self.generations.insert(token.index(), token.generation());
                    self.issued.push(token);
                }
            }
            Op::Read(choice) => {
                let token = self.pick(choice);
                assert_eq!(subject.read(token), self.lookup(token), "{op:?} {token:?}");
            }
            Op::TryRead(choice) => {
                let token = self.pick(choice);
                assert_eq!(
                    subject.try_read(token),
                    self.lookup(token),
                    "{op:?} {token:?}"
                );
            }
            Op::Peek(choice) => {
                let token = self.pick(choice);
                assert_eq!(subject.peek(token), self.lookup(token), "{op:?} {token:?}");
            }
            Op::Write(choice, value) => {
                let token = self.pick(choice);
                let expected = self.lookup(token).map(drop);
                assert_eq!(subject.write(token, value), expected, "{op:?} {token:?}");
                if expected.is_ok() {
                    self.live.insert(token.index(), (token, value));
                }
            }
            Op::Free(choice) => {
                let token = self.pick(choice);
                let expected = self.lookup(token).map(drop);
                assert_eq!(subject.free(token), expected, "{op:?} {token:?}");
                if expected.is_ok() {
                    self.live.remove(&token.index());
                    self.generations
                        .insert(token.index(), token.generation() + 1);
                }
            }
            Op::Take(choice) => {
                let token = self.pick(choice);
                let expected = self.lookup(token);
                assert_eq!(subject.take(token), expected, "{op:?} {token:?}");
                if expected.is_ok() {
                    self.live.remove(&token.index());
                    self.generations
                        .insert(token.index(), token.generation() + 1);
                }
            }
            Op::Forged(bits) => {
                // Aim most forgeries at real slots so they exercise the
                // generation check, not just the range check.
                let token = if self.capacity == 0 {
                    MessageToken::from_bits(bits)
                } else {
                    let index = (bits as u32) % (self.capacity as u32 + 1);
                    MessageToken::new(index, (bits >> 32) as u32 % 4)
                };
                assert_eq!(subject.read(token), self.lookup(token), "{op:?} {token:?}");
            }
        }
        assert_eq!(subject.capacity(), self.capacity, "capacity after {op:?}");
        assert_eq!(
            subject.available(),
            self.capacity - self.live.len(),
            "available after {op:?}"
        );
    }
}
