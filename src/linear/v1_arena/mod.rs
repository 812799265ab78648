//! TEMPORARY: the v1 slot arena, kept only for the v1 linear allocator
//! until linear memory v2 (issue 10) moves it onto `SlotArena`; deleted then.
//!
//! The concurrent slot arena: the one core under the concurrent manager and
//! the linear memory.
//!
//! An `Arena<T>` is a table of slots, each holding an `Option<T>` behind its
//! own reader-writer lock, plus a lock-free free list of empty slots.
//! Values are named by generational [`MessageToken`]s.
//!
//! # Protocol
//!
//! ```text
//!            pop (lock-free)            free / take (try_write, never waits)
//!  [free list] ──────────▶ [owned: write value, publish OCCUPIED|gen] ──▶ ...
//!       ▲                                                                  │
//!       └──────── push (lock-free) ◀── [state = gen+1, empty] ◀────────────┘
//! ```
//!
//! - Allocation pops an index from the [`FreePool`] (per-thread shards of
//!   ABA-tagged free lists); the popper owns the slot exclusively, so no
//!   other thread can store into it. Frees go to the freeing thread's
//!   shard, so a thread that stores and frees reuses its own slots.
//! - Every access first checks the state word without locking (so a stale
//!   token never waits on, or deadlocks against, the slot's new owner), then
//!   takes the lock and checks again, since the slot may have been freed in
//!   between (invariant S1 in `slot.rs` makes the second check exact).
//! - `remove` takes the write lock with `try_write`: a live guard anywhere,
//!   even on the calling thread, yields `BorrowActive` at once.
//! - The value is dropped after the slot is back on the free list, so a
//!   panicking `Drop` cannot lose the slot.
//! - Growth (the cold path) adds a segment under a mutex and publishes its
//!   slots to the pool's shared list; segments never move. Retirement
//!   (used by the linear memory) drains the pool under the same mutex and
//!   takes fully free segments out of service until growth reuses them.

#![allow(dead_code)]

mod free_list;
mod free_pool;
mod guards;
mod segments;
mod slot;

use alloc::vec::Vec;

type RwLock<T> = parking_lot::RecursiveRwLock<T>;
type RwLockReadGuard<'a, T> = parking_lot::RecursiveRwLockReadGuard<'a, T>;
type RwLockWriteGuard<'a, T> = parking_lot::RecursiveRwLockWriteGuard<'a, T>;

use self::free_pool::FreePool;
use crate::sync::{AtomicUsize, Mutex, Ordering};
use crate::{MemoryError, MessageToken};

pub(crate) use guards::{ReadGuard, WriteGuard};
pub(crate) use segments::Geometry;
use segments::Segments;
use slot::{OCCUPIED, POISONED, Slot, check, generation};

/// A value removed from the arena, and whether a writer had poisoned it.
pub(crate) struct Removed<T> {
    pub(crate) value: T,
    pub(crate) poisoned: bool,
}

/// Whether an access may return a poisoned value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poison {
    /// Answer `Poisoned` (reads and writes).
    Refuse,
    /// Hand the value out anyway (share bookkeeping, which only counts).
    Allow,
}

/// The concurrent slot arena.
pub(crate) struct Arena<T> {
    segments: Segments<T>,
    free: FreePool,
    /// Slots in service (created and not retired); changes only under
    /// `growth`.
    capacity: AtomicUsize,
    /// Serialises growth and retirement (the cold paths only).
    growth: Mutex<Growth>,
}

/// Segment bookkeeping behind the growth lock.
struct Growth {
    /// Indexes created so far: the next new segment starts here.
    created: usize,
    /// Later segments whose slots were all free and were taken out of
    /// service; growth reuses them before creating new ones.
    retired: Vec<usize>,
}

impl<T> Arena<T> {
    /// An arena of `initial` slots that may grow to `max` slots.
    ///
    /// The caller guarantees `initial <= max <= MessageToken::MAX_INDEX + 1`.
    pub(crate) fn new(initial: usize, max: usize, geometry: Geometry) -> Arena<T> {
        debug_assert!(
            initial <= max && max <= MessageToken::MAX_INDEX + 1,
            "{initial} / {max}"
        );
        let arena = Arena {
            segments: Segments::new(initial, max, geometry),
            free: FreePool::new(),
            capacity: AtomicUsize::new(initial),
            growth: Mutex::new(Growth {
                created: initial,
                retired: Vec::new(),
            }),
        };
        if initial > 0 {
            arena
                .free
                .push_chain(0, initial as u32 - 1, |i| &arena.slot_at(i).next_free);
        }
        arena
    }

    /// The slot at `index` of an index that is known to exist (it came off
    /// the free list or from a linked chain).
    #[inline]
    fn slot_at(&self, index: u32) -> &Slot<T> {
        match self.segments.get(index as usize) {
            Some(slot) => slot,
            None => unreachable!("index {index} on the free list has no slot"),
        }
    }

    #[inline]
    fn slot(&self, token: MessageToken) -> Result<&Slot<T>, MemoryError> {
        self.segments
            .get(token.index())
            .ok_or(MemoryError::BadToken)
    }

    /// Slots that exist now.
    pub(crate) fn capacity(&self) -> usize {
        // Acquire pairs with the Release in `grow_with`: a caller that sees
        // the new capacity also sees the new segment.
        self.capacity.load(Ordering::Acquire)
    }

    /// The most slots the arena may grow to.
    pub(crate) fn max_capacity(&self) -> usize {
        self.segments.max()
    }

    /// Empty slots among those in service: exact when no operation is in
    /// flight, never above [`capacity`](Self::capacity).
    ///
    /// It counts occupied slots (retired slots are never occupied) instead
    /// of keeping a shared counter, which would add two contended atomic
    /// read-modify-writes to every store/free pair; the price is that this
    /// call is O(slots created).
    pub(crate) fn available(&self) -> usize {
        let occupied = self
            .segments
            .all()
            .filter(|slot| slot.state() & OCCUPIED != 0)
            .count();
        self.capacity().saturating_sub(occupied)
    }

    /// Stores `value`, growing by one segment if the free list is empty.
    ///
    /// On `NoFreeSlots` the value is handed back.
    #[inline]
    pub(crate) fn insert(&self, value: T) -> Result<MessageToken, (MemoryError, T)> {
        self.insert_growing(value, |_, _| true)
    }

    /// [`insert`](Self::insert), with `on_segment` consulted (see
    /// [`grow_with`](Self::grow_with)) whenever a new segment is needed.
    #[inline]
    pub(crate) fn insert_growing(
        &self,
        value: T,
        mut on_segment: impl FnMut(usize, usize) -> bool,
    ) -> Result<MessageToken, (MemoryError, T)> {
        loop {
            if let Some(index) = self.free.pop(|i| &self.slot_at(i).next_free) {
                return Ok(self.fill(index, value));
            }
            let seen = self.capacity();
            if !self.grow_with(seen, &mut on_segment) {
                // `grow_with` may have waited for `retire_free_segments`,
                // which empties the pool for a moment and pushes back what
                // stays in service: look once more before giving up.
                return match self.free.pop(|i| &self.slot_at(i).next_free) {
                    Some(index) => Ok(self.fill(index, value)),
                    None => Err((MemoryError::NoFreeSlots, value)),
                };
            }
        }
    }

    /// Puts `value` into the slot the caller just popped (and so owns).
    #[inline]
    fn fill(&self, index: u32, value: T) -> MessageToken {
        let slot = self.slot_at(index);
        // A reader holding a stale token may hold the lock for a moment
        // (it re-checks and leaves), so this `write` waits at most for that.
        let mut guard = slot.value.write();
        let state = generation(slot.state()) as u64;
        *guard = Some(value);
        // Relaxed: written under the lock (S1); the unlock publishes it.
        slot.state
            .store((state << 32) | OCCUPIED, Ordering::Relaxed);
        MessageToken::new(index, state as u32)
    }

    /// Grows by one segment unless the capacity already moved away from
    /// `seen` (someone else grew or retired; retry the free list). A retired
    /// segment is put back in service before a new one is created.
    /// `on_segment(k, first_index)` runs before the slots are published and
    /// may veto the growth. Returns whether there may be new room.
    #[cold]
    pub(crate) fn grow_with(
        &self,
        seen: usize,
        on_segment: impl FnOnce(usize, usize) -> bool,
    ) -> bool {
        let mut growth = self.growth.lock();
        // Relaxed: `capacity` only changes under `growth`, which we hold.
        let capacity = self.capacity.load(Ordering::Relaxed);
        if capacity != seen {
            return true;
        }
        let (segment, reused) = match growth.retired.last() {
            Some(&segment) => (segment, true),
            None => match self.segments.add(growth.created) {
                Some(segment) => (segment, false),
                None => return false,
            },
        };
        let (first, len) = self.segments.range(segment);
        if !on_segment(segment, first) {
            return false;
        }
        if reused {
            growth.retired.pop();
            // The retired slots' links were scattered by `retire_free_segments`.
            self.link_chain(first..first + len);
        } else {
            growth.created = first + len;
        }
        // Release pairs with `capacity()`'s Acquire (segment visible first).
        self.capacity.store(capacity + len, Ordering::Release);
        self.free
            .push_chain(first as u32, (first + len - 1) as u32, |i| {
                &self.slot_at(i).next_free
            });
        true
    }

    /// Links owned free slots `indexes` into a chain in iteration order.
    fn link_chain(&self, indexes: impl Iterator<Item = usize> + Clone) {
        for (index, next) in indexes.clone().zip(indexes.skip(1)) {
            // Relaxed: the slots are owned; `push_chain`'s Release publishes.
            self.slot_at(index as u32)
                .next_free
                .store(next as u32, Ordering::Relaxed);
        }
    }

    /// Takes out of service every later segment whose slots are all free
    /// right now, calling `on_retire(k)` for each, and returns how many.
    ///
    /// It drains the free list (so it briefly looks empty to concurrent
    /// inserts, which then wait on the growth lock and retry), counts the
    /// free slots of each segment, and pushes back the slots of segments
    /// that stay in service. Retired slots keep their generations, so no
    /// old token matches them when they return.
    #[cold]
    pub(crate) fn retire_free_segments(&self, mut on_retire: impl FnMut(usize)) -> usize {
        let mut growth = self.growth.lock();
        let mut drained: Vec<usize> = self
            .free
            .drain(|i| &self.slot_at(i).next_free)
            .into_iter()
            .map(|i| i as usize)
            .collect();
        // Keep the pushed-back chain in index order: lower slots first.
        drained.sort_unstable();
        let mut free_per_segment = alloc::collections::BTreeMap::<usize, usize>::new();
        for &index in &drained {
            if let Some(segment) = self.segments.segment_of(index) {
                *free_per_segment.entry(segment).or_default() += 1;
            }
        }
        let retiring: alloc::collections::BTreeSet<usize> = free_per_segment
            .into_iter()
            .filter(|&(segment, free)| free == self.segments.range(segment).1)
            .map(|(segment, _)| segment)
            .collect();
        for &segment in &retiring {
            on_retire(segment);
            growth.retired.push(segment);
            // Relaxed: under `growth`; a snapshot for `available`.
            self.capacity
                .fetch_sub(self.segments.range(segment).1, Ordering::Relaxed);
        }
        drained.retain(|&index| {
            self.segments
                .segment_of(index)
                .is_none_or(|s| !retiring.contains(&s))
        });
        if let (Some(&first), Some(&last)) = (drained.first(), drained.last()) {
            self.link_chain(drained.iter().copied());
            self.free
                .push_chain(first as u32, last as u32, |i| &self.slot_at(i).next_free);
        }
        retiring.len()
    }

    /// Blocking shared access; waits while a writer holds the value.
    #[inline]
    pub(crate) fn read(
        &self,
        token: MessageToken,
        poison: Poison,
    ) -> Result<ReadGuard<'_, T>, MemoryError> {
        let slot = self.slot(token)?;
        check(slot.state(), token)?;
        Self::admit_read(slot, token, poison, slot.value.read())
    }

    /// Non-blocking shared access: `AlreadyBorrowed` instead of waiting.
    #[inline]
    pub(crate) fn try_read(
        &self,
        token: MessageToken,
        poison: Poison,
    ) -> Result<ReadGuard<'_, T>, MemoryError> {
        let slot = self.slot(token)?;
        check(slot.state(), token)?;
        let guard = slot.value.try_read().ok_or(MemoryError::AlreadyBorrowed)?;
        Self::admit_read(slot, token, poison, guard)
    }

    fn admit_read<'a>(
        slot: &'a Slot<T>,
        token: MessageToken,
        poison: Poison,
        guard: RwLockReadGuard<'a, Option<T>>,
    ) -> Result<ReadGuard<'a, T>, MemoryError> {
        let state = slot.state();
        check(state, token)?;
        if poison == Poison::Refuse && state & POISONED != 0 {
            return Err(MemoryError::Poisoned);
        }
        Ok(ReadGuard::new(guard))
    }

    /// Blocking exclusive access; waits while any guard holds the value.
    #[inline]
    pub(crate) fn write(&self, token: MessageToken) -> Result<WriteGuard<'_, T>, MemoryError> {
        let slot = self.slot(token)?;
        check(slot.state(), token)?;
        Self::admit_write(slot, token, slot.value.write())
    }

    /// Non-blocking exclusive access: `AlreadyBorrowed` instead of waiting.
    #[inline]
    pub(crate) fn try_write(&self, token: MessageToken) -> Result<WriteGuard<'_, T>, MemoryError> {
        let slot = self.slot(token)?;
        check(slot.state(), token)?;
        let guard = slot.value.try_write().ok_or(MemoryError::AlreadyBorrowed)?;
        Self::admit_write(slot, token, guard)
    }

    fn admit_write<'a>(
        slot: &'a Slot<T>,
        token: MessageToken,
        guard: RwLockWriteGuard<'a, Option<T>>,
    ) -> Result<WriteGuard<'a, T>, MemoryError> {
        let state = slot.state();
        check(state, token)?;
        if state & POISONED != 0 {
            return Err(MemoryError::Poisoned);
        }
        Ok(WriteGuard::new(guard, &slot.state))
    }

    /// Removes the value `token` names, unless a guard is live
    /// (`BorrowActive`, never a wait) or `veto` objects. `veto` sees the
    /// value under the write lock, so nothing can change it meanwhile.
    pub(crate) fn remove<E: From<MemoryError>>(
        &self,
        token: MessageToken,
        veto: impl FnOnce(&T) -> Result<(), E>,
    ) -> Result<Removed<T>, E> {
        let slot = self.slot(token)?;
        check(slot.state(), token)?;
        let mut guard = slot.value.try_write().ok_or(MemoryError::BorrowActive)?;
        let state = slot.state();
        check(state, token)?;
        match &*guard {
            Some(value) => veto(value)?,
            None => unreachable!("occupied slot holds a value (S2)"),
        }
        let Some(value) = guard.take() else {
            unreachable!("checked just above")
        };
        // Relaxed: under the lock (S1). The new generation retires every
        // token of the removed value (S3).
        let next_generation = generation(state).wrapping_add(1) as u64;
        slot.state.store(next_generation << 32, Ordering::Relaxed);
        drop(guard);
        self.free
            .push(token.index() as u32, |i| &self.slot_at(i).next_free);
        Ok(Removed {
            value,
            poisoned: state & POISONED != 0,
        })
    }

    /// The token of the value at `index` right now, if any. A snapshot for
    /// layers that key values by something other than tokens; every use of
    /// the token is checked again.
    pub(crate) fn token_at(&self, index: usize) -> Result<MessageToken, MemoryError> {
        let slot = self.segments.get(index).ok_or(MemoryError::BadToken)?;
        let state = slot.state();
        if state & OCCUPIED == 0 {
            return Err(MemoryError::NotAllocated);
        }
        Ok(MessageToken::new(index as u32, generation(state)))
    }
}
