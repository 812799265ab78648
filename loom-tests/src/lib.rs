//! Shared helpers for the loom models in `tests/`.
//!
//! Every model is tiny (1–3 slots, 2–3 threads) so that loom can explore all
//! interleavings within a preemption bound. Run them with
//!
//! ```text
//! CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg loom -C debug-assertions=on" \
//!     LOOM_MAX_PREEMPTIONS=2 cargo test -p slotarena-loom-tests --release
//! ```
//!
//! Under loom the arena has two free-list shards (the smallest sharded
//! configuration, with stealing; `SLOTARENA_LOOM_SHARDS=4` gives the four
//! every build ships at least, as `.ci/loom.sh` runs the free pool's
//! models) and a thread's home shard is its loom thread number, plus its
//! moves, masked: with two shards the model's main thread (0) and the
//! second spawned thread (2) share shard 0, the first spawned thread (1)
//! has shard 1. A thread moves to the next shard whenever the free pool
//! says it met a thread sharing its shard. Fresh slots of a small arena
//! all start on shard 0, on its hot list (each shard has two; see
//! `free_pool.rs`).
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::time::Instant;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use slotarena::{BufferDescriptor, Message, MessageHeader, Payload};

/// Runs `f` under loom with the preemption bound from `LOOM_MAX_PREEMPTIONS`
/// (default 2), so a forgotten environment variable cannot make CI explode.
///
/// Prints the model's name, the bound, the number of explored executions and
/// the time (shown with `--nocapture`), so a model that explores only one
/// execution, or suddenly millions, is visible.
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    model_with_branches(loom::model::Builder::new().max_branches, f);
}

/// [`model`] allowing at least `max_branches` branches per execution: a
/// linear memory's set-up (directory leaves, descriptors and their block
/// words) is a few hundred atomic operations before the threads even
/// start, as in tokio's loom runs (`LOOM_MAX_BRANCHES=10000`).
pub fn model_with_branches(max_branches: usize, f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.max_branches = builder.max_branches.max(max_branches);
    let bound = builder.preemption_bound;
    let executions = std::sync::Arc::new(StdAtomicUsize::new(0));
    let counter = executions.clone();
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        f();
    });
    let name = std::thread::current().name().unwrap_or("model").to_owned();
    println!(
        "loom: {name}: {} executions at preemption bound {}, {:.2} s",
        executions.load(StdOrdering::Relaxed),
        bound.map_or("none".to_owned(), |b| b.to_string()),
        start.elapsed().as_secs_f64()
    );
}

/// A payload tracked by loom's leak checker: a message that is never
/// dropped fails the model.
#[derive(Debug)]
pub struct Tracked(pub loom::alloc::Track<u32>);

impl Tracked {
    /// A message carrying `value`, with `value` as its trace id.
    pub fn message(value: u32) -> Message<Tracked> {
        let mut header = MessageHeader::empty();
        header.set_trace_id(value as u64);
        Message::new(header, Tracked(loom::alloc::Track::new(value)))
    }

    /// The carried value.
    pub fn value(&self) -> u32 {
        *self.0.get_ref()
    }
}

impl Payload for Tracked {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(4)
    }
}

/// Bit of [`Probe`]'s access word held while a writer is inside.
const WRITING: usize = 1 << 16;

/// What a model keeps of a [`Probe`] to check it after the fact.
#[derive(Debug)]
pub struct ProbeState {
    /// Readers inside the value, plus [`WRITING`] while a writer is.
    access: AtomicUsize,
    /// Times the value was dropped.
    drops: AtomicUsize,
}

impl ProbeState {
    /// Times the value has been dropped so far.
    pub fn drops(&self) -> usize {
        self.drops.load(Ordering::Relaxed)
    }
}

/// A value that checks how the arena hands it out.
///
/// Readers and writers announce themselves in a shared word for the length
/// of each access, with read-modify-writes (which always see the latest
/// value, and synchronise nothing, so they hide no ordering bug of the code
/// under test): a writer overlapping anyone, an access to a dropped value,
/// and a drop during an access all panic. Drops are counted, and the value
/// carries a `loom::alloc::Track`, so a value never dropped fails the model
/// as a leak.
///
/// Each access also touches `data`, a loom `UnsafeCell` (read for a read,
/// written for a write): loom then checks that every write happens before
/// the next access on another thread, i.e. that the lock's Release unlock
/// and Acquire lock order the value, which the overlap check cannot see.
#[derive(Debug)]
pub struct Probe {
    id: u32,
    state: Arc<ProbeState>,
    data: UnsafeCell<u32>,
    _leak: loom::alloc::Track<()>,
}

impl Probe {
    /// A probe with `id`, and the state a model checks afterwards.
    pub fn new(id: u32) -> (Probe, Arc<ProbeState>) {
        let state = Arc::new(ProbeState {
            access: AtomicUsize::new(0),
            drops: AtomicUsize::new(0),
        });
        let probe = Probe {
            id,
            state: state.clone(),
            data: UnsafeCell::new(0),
            _leak: loom::alloc::Track::new(()),
        };
        (probe, state)
    }

    /// A shared access: checks no writer is inside and the value is live.
    /// Returns the id.
    pub fn read(&self) -> u32 {
        let before = self.state.access.fetch_add(1, Ordering::Relaxed);
        assert_eq!(
            before & WRITING,
            0,
            "probe {}: a reader overlapped a writer",
            self.id
        );
        assert_eq!(
            self.live_drops(),
            0,
            "probe {}: read after its drop",
            self.id
        );
        // SAFETY: only `write`, through `&mut self`, writes `data`; loom
        // reports any access of it that is not ordered after that write.
        self.data.with(|data| unsafe { *data });
        self.state.access.fetch_sub(1, Ordering::Relaxed);
        self.id
    }

    /// An exclusive access: checks nobody else is inside and the value is
    /// live. Returns the id.
    pub fn write(&mut self) -> u32 {
        let before = self.state.access.fetch_add(WRITING, Ordering::Relaxed);
        assert_eq!(
            before, 0,
            "probe {}: a writer overlapped another access",
            self.id
        );
        assert_eq!(
            self.live_drops(),
            0,
            "probe {}: written after its drop",
            self.id
        );
        // SAFETY: `&mut self`; loom reports any access not ordered with it.
        self.data.with_mut(|data| unsafe { *data += 1 });
        self.state.access.fetch_sub(WRITING, Ordering::Relaxed);
        self.id
    }

    /// The id, without an access check.
    pub fn id(&self) -> u32 {
        self.id
    }

    fn live_drops(&self) -> usize {
        // An RMW reads the latest value, unlike a load.
        self.state.drops.fetch_add(0, Ordering::Relaxed)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let inside = self.state.access.fetch_add(0, Ordering::Relaxed);
        assert_eq!(inside, 0, "probe {}: dropped during an access", self.id);
        let before = self.state.drops.fetch_add(1, Ordering::Relaxed);
        assert_eq!(before, 0, "probe {}: dropped twice", self.id);
    }
}

impl Payload for Probe {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(4)
    }
}

/// A message whose payload is a [`Probe`].
pub fn probe_message(id: u32) -> (Message<Probe>, Arc<ProbeState>) {
    let (probe, state) = Probe::new(id);
    (Message::new(MessageHeader::empty(), probe), state)
}
