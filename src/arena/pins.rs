//! The registry of pinned readers: one record per [`Reader`](super::Reader),
//! naming the slot whose value that reader holds pinned, if any.
//!
//! A pinned read writes only its reader's own record (a plain store) and
//! loads the value's lifecycle word; it never writes the word. Writers do
//! the extra work instead: every thread that takes a value exclusively (to
//! write it, move it out or drop it) first takes the word with its usual
//! read-modify-write, then looks through these records.
//!
//! # The protocol (invariants P1–P4, cited elsewhere)
//!
//! ```text
//!  reader (pin)                        writer (get_mut, take, a drop, …)
//!  record := index + 1   (Relaxed)     RMW on the word: WRITER or REMOVING
//!  fence(SeqCst)                       fence(SeqCst)
//!  load word (Acquire)                 load every record (Acquire)
//!  present, this generation, no        a record names the slot: wait for it
//!  WRITER, not poisoned: read;         to clear (or refuse, or leave the
//!  else clear the record, fall back    drop to the last reader, P3)
//! ```
//!
//! - P1 (Dekker): the two SeqCst fences are ordered one way or the other.
//!   If the reader's comes first, the writer's loads after its own fence
//!   see the record (or a later value of it); if the writer's comes first,
//!   the reader's load of the word sees the writer's read-modify-write (or
//!   a later value), so the reader backs off. At least one sees the other:
//!   a writer never works on a value a pinned reader reads. A record
//!   claimed after the writer looked is covered too: the claim happens
//!   before its first pin.
//! - P2: a reader clears its record with a Release store, and a writer that
//!   sees it clear read it with Acquire, so the reader's accesses to the
//!   value happen before the writer's.
//! - P3 (deferred drop): a thread that holds a removed value for dropping
//!   (`Slot::keep_for_pinned`) and finds it pinned leaves it "drop
//!   pending" (`REMOVING`, no `WRITER`, and `word::DROP_PENDING` where
//!   the count of read guards goes: a word nothing else makes, not even
//!   the last read guard's unlock for the instant before it takes the
//!   slot), with a Release store, then looks at the records again
//!   after a SeqCst fence. A reader that unpins clears its record, fences,
//!   and loads the word (Acquire): by P1 between the two, either the
//!   dropper's second look sees the record clear or the reader sees the
//!   pending word. Whoever sees the other at rest claims the drop with a
//!   compare-and-swap that sets `WRITER`, so exactly one thread drops.
//! - P4: an unpinning reader that sees the pending word looks at the
//!   records after it (read-read coherence through the Acquire load): it
//!   sees every reader the dropper saw, pinned or cleared, so it claims
//!   only when none is left. Readers that pinned after the removal saw it
//!   and never touched the value. A record names a slot, not a value: a
//!   pin that finds its key stale may still have held up the drop of the
//!   slot's newer value, so an unpinning reader claims a pending drop of
//!   whatever generation the slot holds.
//!
//! Records live in chunks pushed on a lock-free list and freed only with
//! the arena, so a record reference stays valid for the arena's life; a
//! dropped `Reader` gives its record back for the next one.

#![allow(unsafe_code)]

use alloc::boxed::Box;
use core::ptr::{self, NonNull};

use crate::sync::{AtomicPtr, AtomicUsize, CachePadded, Ordering, fence};

/// Records per chunk: small, so an arena with one reader scans little.
const CHUNK: usize = 4;

/// What a record holds when its reader pins nothing.
const NOTHING: usize = 0;

/// One reader's record, on a cache line of its own: its reader is the only
/// thread that writes it while it is claimed.
#[derive(Default)]
pub(super) struct Record {
    /// `index + 1` of the slot whose value the reader holds pinned (or is
    /// trying to pin), or [`NOTHING`].
    pinned: AtomicUsize,
    /// 1 while a `Reader` owns the record, else 0.
    claimed: AtomicUsize,
}

impl Record {
    /// Announces a pin of slot `index`, then fences (P1). The caller loads
    /// the slot's word next.
    #[inline]
    pub(super) fn pin(&self, index: u32) {
        // Relaxed: the SeqCst fence right after orders it before the load
        // of the word (P1).
        self.pinned.store(index as usize + 1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Withdraws the pin, then fences (P2, P3). The caller loads the slot's
    /// word next, to see whether the drop of a removed value is now its job.
    #[inline]
    pub(super) fn unpin(&self) {
        // Release pairs with a writer's Acquire scan (P2).
        self.pinned.store(NOTHING, Ordering::Release);
        fence(Ordering::SeqCst);
    }

    /// Gives the record back when its `Reader` drops (it pins nothing).
    pub(super) fn release(&self) {
        debug_assert_eq!(self.pinned.load(Ordering::Relaxed), NOTHING);
        // Release: the next owner's Acquire claim comes after our use.
        self.claimed.store(0, Ordering::Release);
    }

    fn try_claim(&self) -> bool {
        self.claimed.load(Ordering::Relaxed) == 0
            && self
                .claimed
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }
}

/// A run of records; never moves, freed with the registry.
struct Chunk {
    records: [CachePadded<Record>; CHUNK],
    /// The chunk pushed before this one; set before this one is published
    /// and never changed after.
    next: *mut Chunk,
}

/// Every reader record of one arena.
pub(super) struct Pins {
    /// The newest chunk, or null while the arena never had a reader.
    head: AtomicPtr<Chunk>,
}

// SAFETY: the chunks are reached only through `&Pins` as atomics, and
// freed only by `Drop` (`&mut`); the raw pointers are links between them.
unsafe impl Send for Pins {}
// SAFETY: as above.
unsafe impl Sync for Pins {}

impl Default for Pins {
    fn default() -> Self {
        Pins {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

impl Pins {
    /// Claims a free record, adding a chunk if every one is taken. The
    /// record stays valid as long as `self`.
    pub(super) fn claim(&self) -> NonNull<Record> {
        // Acquire pairs with the Release push: a chunk's records are
        // initialised before we see it.
        let mut head = self.head.load(Ordering::Acquire);
        for record in self.records_from(head) {
            if record.try_claim() {
                return NonNull::from(record);
            }
        }
        let chunk = Box::into_raw(Box::new(Chunk {
            records: Default::default(),
            next: head,
        }));
        // SAFETY: `chunk` is ours until the push below publishes it.
        let first = unsafe { &(*chunk).records[0] };
        first.claimed.store(1, Ordering::Relaxed);
        loop {
            match self
                .head
                .compare_exchange_weak(head, chunk, Ordering::Release, Ordering::Acquire)
            {
                Ok(_) => return NonNull::from(&**first),
                Err(now) => {
                    head = now;
                    // SAFETY: not published yet (the push failed), so still ours.
                    unsafe { (*chunk).next = now };
                }
            }
        }
    }

    /// The writer's side of P1: after its read-modify-write on the word of
    /// slot `index`, whether a reader has that slot pinned.
    #[inline]
    pub(super) fn pinned(&self, index: u32) -> bool {
        fence(Ordering::SeqCst);
        // Mutation `pinned_writer_skips_readers`: a writer that never waits
        // for pinned readers (nor leaves a drop to them).
        if cfg!(slotarena_mutation = "pinned_writer_skips_readers") {
            return false;
        }
        self.any_pinned(index)
    }

    /// Whether a record names slot `index` now. The caller has fenced since
    /// its last change to the slot's word or to its own record (P1, P4).
    #[inline]
    pub(super) fn any_pinned(&self, index: u32) -> bool {
        let wanted = index as usize + 1;
        // Acquire: see `claim`. Each record with Acquire (P2).
        self.records_from(self.head.load(Ordering::Acquire))
            .any(|record| record.pinned.load(Ordering::Acquire) == wanted)
    }

    /// The records of the chunk `head` and of every chunk before it.
    fn records_from(&self, head: *mut Chunk) -> impl Iterator<Item = &Record> + '_ {
        let mut chunk = head;
        core::iter::from_fn(move || {
            // SAFETY: chunks are published by `claim` fully built and freed
            // only by `Drop`, which `&self` excludes; `next` never changes
            // after publication.
            let this = unsafe { chunk.as_ref() }?;
            chunk = this.next;
            Some(this.records.iter().map(|record| &**record))
        })
        .flatten()
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        // Acquire: `&mut self` already orders every push before us; this
        // keeps loom's view the same.
        let mut chunk = self.head.load(Ordering::Acquire);
        while !chunk.is_null() {
            // SAFETY: every chunk came from `Box::into_raw` in `claim` and is
            // on the list once; `&mut self` means no record is in use.
            let owned = unsafe { Box::from_raw(chunk) };
            chunk = owned.next;
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn a_released_record_is_claimed_again_and_a_full_chunk_adds_one() {
        let pins = Pins::default();
        let first = pins.claim();
        // SAFETY: records live as long as `pins`.
        unsafe { first.as_ref() }.release();
        assert_eq!(pins.claim(), first, "a free record is reused");
        let more: Vec<_> = (0..CHUNK).map(|_| pins.claim()).collect();
        assert!(!more.contains(&first));
        let mut all = more.clone();
        all.push(first);
        all.sort();
        all.dedup();
        assert_eq!(all.len(), CHUNK + 1, "every claim got its own record");
    }

    #[test]
    fn a_writer_sees_a_pin_until_it_is_withdrawn() {
        let pins = Pins::default();
        // SAFETY: records live as long as `pins`.
        let record = unsafe { pins.claim().as_ref() };
        assert!(!pins.pinned(3));
        record.pin(3);
        assert!(pins.pinned(3) && !pins.pinned(4));
        record.unpin();
        assert!(!pins.pinned(3));
    }
}
