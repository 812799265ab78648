//! Helpers shared by the integration tests: message builders, a payload
//! that counts its drops, and the adapter every manager is tested through.
#![allow(dead_code)] // each test file uses its own subset

#[cfg(feature = "std")]
pub mod linear_model;
pub mod model;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use slotarena::{BufferDescriptor, Message, MessageHeader, Payload};

/// A `u64` message whose header trace id repeats the payload, so a header
/// read can be checked against the payload it belongs to.
pub fn msg(value: u64) -> Message<u64> {
    let mut header = MessageHeader::empty();
    header.set_trace_id(value);
    Message::new(header, value)
}

/// A payload that bumps a shared counter when dropped.
#[derive(Debug)]
pub struct Counted {
    pub id: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

impl Payload for Counted {
    fn buffer_descriptor(&self) -> BufferDescriptor {
        BufferDescriptor::new(8)
    }
}

/// Makes [`Counted`] payloads that all bump one counter.
#[derive(Clone, Default)]
pub struct DropCounter(Arc<AtomicUsize>);

impl DropCounter {
    pub fn message(&self, id: u64) -> Message<Counted> {
        let mut header = MessageHeader::empty();
        header.set_trace_id(id);
        Message::new(
            header,
            Counted {
                id,
                drops: self.0.clone(),
            },
        )
    }

    pub fn drops(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `f` on a thread and fails the test if it has not finished within
/// `limit`, so a deadlock or a call that spins for ever fails instead of
/// hanging the suite.
pub fn within<R: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    wait.recv_timeout(limit)
        .expect("the operation did not finish: it waited, spun or deadlocked")
}
