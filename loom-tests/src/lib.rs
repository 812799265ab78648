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
//! configuration, with stealing) and a thread's home shard is its loom
//! thread number masked: the model's main thread (0) and the second
//! spawned thread (2) share shard 0, the first spawned thread (1) has
//! shard 1. Fresh slots of a small arena all start on shard 0.
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
use std::time::Instant;

use slotarena::{BufferDescriptor, Message, MessageHeader, Payload};

/// Runs `f` under loom with the preemption bound from `LOOM_MAX_PREEMPTIONS`
/// (default 2), so a forgotten environment variable cannot make CI explode.
///
/// Prints the model's name, the bound, the number of explored executions and
/// the time (shown with `--nocapture`), so a model that explores only one
/// execution, or suddenly millions, is visible.
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let bound = builder.preemption_bound;
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
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
