//! Shared helpers for the loom models in `tests/`.
//!
//! Every model is tiny (2–4 slots, 2–3 threads) so that loom can explore all
//! interleavings within a preemption bound. Run them with
//!
//! ```text
//! CARGO_TARGET_DIR=target/loom RUSTFLAGS="--cfg loom -C debug-assertions=on" \
//!     LOOM_MAX_PREEMPTIONS=2 cargo test -p slotarena-loom-tests --release
//! ```
#![cfg(loom)]

use slotarena::{BufferDescriptor, Message, MessageHeader, Payload};

/// Runs `f` under loom with the preemption bound from `LOOM_MAX_PREEMPTIONS`
/// (default 2), so a forgotten environment variable cannot make CI explode.
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
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
