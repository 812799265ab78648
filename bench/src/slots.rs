//! W1–W6: the message-store workloads, over every implementation.
//!
//! Every implementation stores the same 64-byte-payload message type
//! (slotarena's `Message<[u8; 64]>`) in a store of 1024 slots.

use std::hint::black_box;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use slotarena::{ConcurrentMemoryManager, Message, MessageHeader, MessageToken, SlotArena};

use crate::XorShift;

/// Slots of every store.
pub const SLOTS: usize = 1024;
/// The payload every implementation stores.
pub type Payload = [u8; 64];
/// The message every implementation stores.
pub type Msg = Message<Payload>;

/// The message for `seed`: its sequence and every payload byte come from it.
pub fn msg(seed: u64) -> Msg {
    let mut header = MessageHeader::empty();
    header.set_sequence(seed);
    Message::new(header, [seed as u8; 64])
}

/// What the workloads need from a concurrent keyed store.
pub trait Store: Send + Sync + 'static {
    /// What names an entry.
    type Key: Copy + Send + Sync + 'static;
    /// The name used in benchmark ids and tables.
    const NAME: &'static str;
    /// An empty store of `capacity` entries (a hint for stores that grow).
    fn new(capacity: usize) -> Self;
    /// `unique` is a key no live entry uses; stores that make their own
    /// keys ignore it.
    fn insert(&self, unique: u64, message: Msg) -> Self::Key;
    /// Reads one payload byte and the header's sequence through the read path.
    fn read(&self, key: Self::Key) -> u64;
    /// Changes the payload through the write path.
    fn write(&self, key: Self::Key, byte: u8);
    /// Removes (and drops) the entry.
    fn remove(&self, key: Self::Key);
}

/// slotarena's concurrent manager.
pub struct Ours(ConcurrentMemoryManager<Payload>);

impl Store for Ours {
    type Key = MessageToken;
    const NAME: &'static str = "slotarena";
    fn new(capacity: usize) -> Self {
        Ours(ConcurrentMemoryManager::new(capacity))
    }
    #[inline]
    fn insert(&self, _: u64, message: Msg) -> MessageToken {
        self.0.store_shared(message).expect("room")
    }
    #[inline]
    fn read(&self, key: MessageToken) -> u64 {
        let guard = self.0.read_shared(key).expect("live");
        guard.payload()[7] as u64 + guard.header().sequence()
    }
    #[inline]
    fn write(&self, key: MessageToken, byte: u8) {
        self.0.read_mut_shared(key).expect("live").payload_mut()[3] = byte;
    }
    #[inline]
    fn remove(&self, key: MessageToken) {
        self.0.free_shared(key).expect("live");
    }
}

/// slotarena's generic arena, `SlotArena<T>`, storing the same message.
pub struct Arena(SlotArena<Msg>);

impl Arena {
    /// A pinned-read handle, for W6's pinned row.
    pub fn reader(&self) -> slotarena::arena::Reader<Msg> {
        self.0.reader()
    }
}

impl Store for Arena {
    type Key = MessageToken;
    const NAME: &'static str = "slotarena SlotArena<T>";
    fn new(capacity: usize) -> Self {
        Arena(SlotArena::new(capacity))
    }
    #[inline]
    fn insert(&self, _: u64, message: Msg) -> MessageToken {
        self.0.insert(message).expect("room")
    }
    #[inline]
    fn read(&self, key: MessageToken) -> u64 {
        let message = self.0.get(key).expect("live");
        message.payload()[7] as u64 + message.header().sequence()
    }
    #[inline]
    fn write(&self, key: MessageToken, byte: u8) {
        self.0.get_mut(key).expect("live").payload_mut()[3] = byte;
    }
    #[inline]
    fn remove(&self, key: MessageToken) {
        self.0.remove(key).expect("live");
    }
}

/// limen-core's concurrent manager (std `RwLock` per slot), in the two ways
/// a user builds limen's messages: with `HEADER`, each insert builds a limen
/// header carrying the message's sequence and each read reads it back, the
/// header work every other row does on slotarena's header; without it, the
/// message goes in with limen's empty header and a read looks only at the
/// payload. The gap between the two rows is what limen's own header costs,
/// so slotarena's ratio to limen-core is quoted against both.
pub struct Limen<const HEADER: bool>(
    limen_core::memory::concurrent_manager::ConcurrentMemoryManager<Payload>,
);

/// limen-core, building and reading a sequenced header.
pub type LimenHeader = Limen<true>;
/// limen-core with its empty header, payload only.
pub type LimenBare = Limen<false>;

type LimenMessage = limen_core::message::Message<Payload>;

impl<const HEADER: bool> Store for Limen<HEADER> {
    type Key = limen_core::types::MessageToken;
    const NAME: &'static str = if HEADER {
        "limen-core, sequenced header"
    } else {
        "limen-core, empty header"
    };
    fn new(capacity: usize) -> Self {
        Limen(limen_core::memory::concurrent_manager::ConcurrentMemoryManager::new(capacity))
    }
    #[inline]
    fn insert(&self, _: u64, message: Msg) -> Self::Key {
        let mut header = limen_core::message::MessageHeader::empty();
        if HEADER {
            header.set_sequence(limen_core::types::SequenceNumber::new(
                message.header().sequence(),
            ));
        }
        let (_, payload) = message.into_parts();
        self.0
            .store_shared(LimenMessage::new(header, payload))
            .expect("room")
    }
    #[inline]
    fn read(&self, key: Self::Key) -> u64 {
        let guard = self.0.read_shared(key).expect("live");
        let sequence = if HEADER {
            *guard.header().sequence().as_u64()
        } else {
            0
        };
        guard.payload()[7] as u64 + sequence
    }
    #[inline]
    fn write(&self, key: Self::Key, byte: u8) {
        self.0.read_mut_shared(key).expect("live").payload_mut()[3] = byte;
    }
    #[inline]
    fn remove(&self, key: Self::Key) {
        self.0.free_shared(key).expect("live");
    }
}

/// sharded-slab. Its entries are immutable once inserted, so the write
/// path wraps each message in a `parking_lot::RwLock`, as a user who needs
/// mutation would.
pub struct Sharded(sharded_slab::Slab<RwLock<Msg>>);

impl Store for Sharded {
    type Key = usize;
    const NAME: &'static str = "sharded-slab";
    fn new(_: usize) -> Self {
        Sharded(sharded_slab::Slab::new())
    }
    #[inline]
    fn insert(&self, _: u64, message: Msg) -> usize {
        self.0.insert(RwLock::new(message)).expect("room")
    }
    #[inline]
    fn read(&self, key: usize) -> u64 {
        let entry = self.0.get(key).expect("live");
        let message = entry.read();
        message.payload()[7] as u64 + message.header().sequence()
    }
    #[inline]
    fn write(&self, key: usize, byte: u8) {
        self.0.get(key).expect("live").write().payload_mut()[3] = byte;
    }
    #[inline]
    fn remove(&self, key: usize) {
        assert!(self.0.remove(key));
    }
}

/// `parking_lot::Mutex<slab::Slab<_>>`: one lock around a plain slab.
pub struct MutexSlab(Mutex<slab::Slab<Msg>>);

impl Store for MutexSlab {
    type Key = usize;
    const NAME: &'static str = "Mutex<slab>";
    fn new(capacity: usize) -> Self {
        MutexSlab(Mutex::new(slab::Slab::with_capacity(capacity)))
    }
    #[inline]
    fn insert(&self, _: u64, message: Msg) -> usize {
        self.0.lock().insert(message)
    }
    #[inline]
    fn read(&self, key: usize) -> u64 {
        let slab = self.0.lock();
        let message = &slab[key];
        message.payload()[7] as u64 + message.header().sequence()
    }
    #[inline]
    fn write(&self, key: usize, byte: u8) {
        self.0.lock()[key].payload_mut()[3] = byte;
    }
    #[inline]
    fn remove(&self, key: usize) {
        self.0.lock().remove(key);
    }
}

/// dashmap keyed by caller-chosen unique `u64`s.
pub struct Dash(dashmap::DashMap<u64, Msg>);

impl Store for Dash {
    type Key = u64;
    const NAME: &'static str = "dashmap";
    fn new(capacity: usize) -> Self {
        Dash(dashmap::DashMap::with_capacity(capacity))
    }
    #[inline]
    fn insert(&self, unique: u64, message: Msg) -> u64 {
        self.0.insert(unique, message);
        unique
    }
    #[inline]
    fn read(&self, key: u64) -> u64 {
        let message = self.0.get(&key).expect("live");
        message.payload()[7] as u64 + message.header().sequence()
    }
    #[inline]
    fn write(&self, key: u64, byte: u8) {
        self.0.get_mut(&key).expect("live").payload_mut()[3] = byte;
    }
    #[inline]
    fn remove(&self, key: u64) {
        self.0.remove(&key).expect("live");
    }
}

/// W1 body: `iters` rounds of store + read + free on one thread.
#[inline(never)]
pub fn w1_round<S: Store>(store: &S, thread: u64, iters: u64) {
    for i in 0..iters {
        let key = store.insert((thread << 40) | i, msg(i));
        black_box(store.read(key));
        store.remove(key);
    }
}

/// W1: store + read + free on one thread.
pub fn w1<S: Store>(store: &S, iters: u64) -> Duration {
    let start = Instant::now();
    w1_round(store, 0, iters);
    start.elapsed()
}

/// Fills a store with `SLOTS` messages and returns their keys.
pub fn prefill<S: Store>(store: &S) -> Vec<S::Key> {
    (0..SLOTS as u64).map(|i| store.insert(i, msg(i))).collect()
}

/// W2: random reads of a prefilled store on one thread.
pub fn w2<S: Store>(store: &S, keys: &[S::Key], iters: u64) -> Duration {
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    let picks: Vec<usize> = (0..iters.min(1 << 16))
        .map(|_| rng.below(keys.len()))
        .collect();
    let start = Instant::now();
    for i in 0..iters as usize {
        black_box(store.read(keys[picks[i % picks.len()]]));
    }
    start.elapsed()
}

/// Runs `body(thread_index)` on two threads released together and returns
/// the wall time until both finish.
pub fn on_two_threads(body: impl Fn(u64) + Send + Sync + 'static) -> Duration {
    let body = Arc::new(body);
    let barrier = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (body, barrier) = (body.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                body(t);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join().expect("bench thread");
    }
    start.elapsed()
}

/// W3: W1 on two threads sharing one store; `iters` rounds per thread.
pub fn w3<S: Store>(store: &Arc<S>, iters: u64) -> Duration {
    let store = store.clone();
    on_two_threads(move |t| w1_round(&*store, t + 1, iters))
}

/// W4: random reads on two threads sharing a prefilled store, 1% of the
/// operations writing through the write path; `iters` operations per thread.
pub fn w4<S: Store>(store: &Arc<S>, keys: &Arc<Vec<S::Key>>, iters: u64) -> Duration {
    let (store, keys) = (store.clone(), keys.clone());
    on_two_threads(move |t| {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
        for _ in 0..iters {
            let key = keys[rng.below(keys.len())];
            if rng.below(100) == 0 {
                store.write(key, t as u8);
            } else {
                black_box(store.read(key));
            }
        }
    })
}

/// W5: a producer stores messages and sends their keys over a bounded
/// channel; a consumer reads and frees them. `iters` messages.
pub fn w5<S: Store>(store: &Arc<S>, iters: u64) -> Duration {
    let consumer_store = store.clone();
    let store = store.clone();
    hand_off(
        iters,
        move |i| store.insert(i, msg(i)),
        move |key| {
            black_box(consumer_store.read(key));
            consumer_store.remove(key);
        },
    )
}

/// W5 with no store: the producer makes each message as W5 does but sends
/// only its sequence number, which the consumer drops. Every W5 row pays
/// this hand-off through the channel; a row's time above it is what its
/// store costs.
pub fn w5_channel_only(iters: u64) -> Duration {
    hand_off(
        iters,
        |i| black_box(msg(i)).header().sequence(),
        |sequence| {
            black_box(sequence);
        },
    )
}

/// A producer (this thread) sends `produce(i)` for each of `iters`
/// messages over a channel of 256 to a consumer thread that runs
/// `consume` on each; the time until the consumer is done.
fn hand_off<K: Send + 'static>(
    iters: u64,
    mut produce: impl FnMut(u64) -> K,
    mut consume: impl FnMut(K) + Send + 'static,
) -> Duration {
    let (tx, rx) = sync_channel::<K>(256);
    let consumer = thread::spawn(move || rx.into_iter().for_each(&mut consume));
    let start = Instant::now();
    for i in 0..iters {
        tx.send(produce(i)).expect("consumer alive");
    }
    drop(tx);
    consumer.join().expect("consumer");
    start.elapsed()
}

/// Values W6 reads.
pub const HOT: usize = 8;

/// Stores the `HOT` values W6 reads and returns their keys.
pub fn hot_keys<S: Store>(store: &S) -> Vec<S::Key> {
    (0..HOT as u64).map(|i| store.insert(i, msg(i))).collect()
}

/// One thread's W6: `iters` operations on the hot values, one in a
/// thousand a write through the write path, the rest reads through `read`
/// (the thread's read path).
#[inline(never)]
pub fn w6_round<S: Store>(
    store: &S,
    keys: &[S::Key],
    thread: u64,
    iters: u64,
    mut read: impl FnMut(S::Key) -> u64,
) {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d ^ (thread + 1));
    for _ in 0..iters {
        let key = keys[rng.below(HOT)];
        if rng.below(1000) == 0 {
            store.write(key, thread as u8);
        } else {
            black_box(read(key));
        }
    }
}

/// W6: two threads read the same `HOT` values, 0.1% of the operations
/// writing; `iters` operations per thread.
pub fn w6<S: Store>(store: &Arc<S>, keys: &Arc<Vec<S::Key>>, iters: u64) -> Duration {
    let (store, keys) = (store.clone(), keys.clone());
    on_two_threads(move |t| w6_round(&*store, &keys, t, iters, |key| store.read(key)))
}

/// The name of W6's pinned-read row.
pub const PINNED: &str = "slotarena SlotArena<T>, pinned Reader";

/// The name of W5's row without a store.
pub const CHANNEL_ONLY: &str = "no store: the channel alone";

/// W6 for `SlotArena<T>` reading through pinned reads: each thread reads
/// through its own [`slotarena::arena::Reader`]; writes take `get_mut`.
pub fn w6_pinned(store: &Arc<Arena>, keys: &Arc<Vec<MessageToken>>, iters: u64) -> Duration {
    let (store, keys) = (store.clone(), keys.clone());
    on_two_threads(move |t| {
        let mut reader = store.reader();
        w6_round(&*store, &keys, t, iters, |key| {
            pinned_read(&mut reader, key)
        })
    })
}

/// A pinned read of the same bytes `Store::read` reads.
#[inline]
pub fn pinned_read(reader: &mut slotarena::arena::Reader<Msg>, key: MessageToken) -> u64 {
    let message = reader.get(key).expect("live");
    message.payload()[7] as u64 + message.header().sequence()
}
