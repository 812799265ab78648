//! The concurrent slot arena: the one core under [`SlotArena`], the
//! concurrent message manager and the linear memory.
//!
//! # Design
//!
//! Each slot is one lifecycle word plus the value's storage (`slot.rs`,
//! `word.rs`). The word is generation, state, reader count and writer bit
//! at once, so it is the slot's reader-writer lock, and a guard is taken by
//! one compare-and-swap that also checks the token's generation: a stale
//! token's CAS cannot succeed, so it never waits on the slot's new owner.
//! Threads wait for a writer, or for readers, by parking on the word's
//! address with `parking_lot_core` after a short spin.
//!
//! ```text
//!             pop (lock-free)                        remove / take
//!  [free list] ───────────────▶ VACANT ──fill──▶ PRESENT ───────────▶ REMOVING / TAKING
//!       ▲                      (owned)  (one                (guards live: the last guard,
//!       │                               Release              or the waiting taker, reclaims)
//!       │                               store)                         │
//!       └──── push (lock-free) ◀── vacant, generation + 1 ◀── reclaim ─┘
//! ```
//!
//! - Allocation pops an index from the `FreePool` (per-thread shards of
//!   ABA-tagged free lists, two per shard so that another thread drains
//!   one as a batch while the shard's frees gather on the other; invariant
//!   F1 in `free_pool.rs`); the popper owns the slot, fills it and
//!   publishes it with one Release store.
//! - `remove` never waits: it marks the value `REMOVING`, which kills every
//!   token at once; the value is dropped now if no guard holds it, else by
//!   the last guard's unlock. `take` marks it `TAKING` and waits for the
//!   guards to go; `try_take` answers `BorrowActive` instead.
//! - A removed value is dropped in place while its slot is still held; a
//!   guard then pushes it back (the push writes its vacant word), also when the
//!   value's `Drop` panics, so a panicking `Drop` cannot lose the slot. A
//!   taken value is moved out and its slot pushed back before the caller
//!   gets it.
//! - A slot whose value had the last generation (`u32::MAX`) is retired
//!   when the value leaves instead of going back on a list (`slot.rs`, S4;
//!   `Recycle::recycle` counts it), so no key ever names a later value.
//! - A vacant entry (`entry.rs`) is a popped slot the caller owns before the
//!   value exists; dropping it abandons the slot (generation moved on) and
//!   recycles it.
//! - Exclusive access (`exclusive.rs`) needs the only handle
//!   (`Arc::get_mut`); it reads words with plain loads and lends plain
//!   references, and `drain`/`clear` move values out with `Slot::evict`.
//! - Growth (the cold path) adds a segment under a mutex; segments never
//!   move and are freed only with the arena, so a `&Slot` stays valid for
//!   the arena's life and no reclamation scheme (such as epochs) is needed.
//! - `M` is per-slot metadata that outlives the values (the manager keeps
//!   its generation-tagged share counts there); [`SlotArena`] has none.

#![allow(unsafe_code)]

mod entry;
mod exclusive;
mod free_list;
mod free_pool;
mod guards;
mod iter;
mod owned;
mod pinned;
mod pins;
mod poison;
mod segments;
#[cfg(feature = "serde")]
mod serde_impl;
mod slot;
mod waiting;
mod word;

use core::fmt;
use core::marker::PhantomData;

use crate::sync::{Arc, AtomicUsize, Backoff, Mutex, Ordering};
pub(crate) use crate::wait_queue::Patience;
use crate::wait_queue::WaitQueue;
use crate::{Key, MemoryError, MessageToken};
use free_list::Links;
use free_pool::FreePool;
use guards::Held;
use pins::Pins;
use segments::Segments;
use slot::Slot;

pub use entry::VacantEntry;
pub use exclusive::{Drain, Exclusive, ExclusiveIter, IntoIter, IterMut};
pub use guards::{ReadGuard, WriteGuard};
pub use iter::Iter;
pub use owned::{OwnedReadGuard, OwnedWriteGuard};
pub use pinned::{PinnedRef, Reader};

#[cfg(loom)]
#[doc(hidden)]
pub use free_list::{FreeList, Links as FreeListLinks, NIL};

/// Frees slots by index; what a guard's drop needs of its arena when it
/// turns out to be the last guard on a removed value.
pub(crate) trait Recycle {
    /// Pushes the vacant slot `index`, which the caller owns, onto a free list.
    fn recycle(&self, index: u32);

    /// [`recycle`](Self::recycle) for the reclaimer of slot `index`, whose
    /// `Slot::vacate_dropping` answered `vacant`, the word the slot takes
    /// (it stored it only if the slot retired: the push writes it).
    fn recycle_dropped(&self, index: u32, vacant: u64);

    /// Whether a pinned reader holds the value of slot `index`, asked by a
    /// thread that just took that value exclusively (pins.rs, P1).
    fn pinned(&self, index: u32) -> bool;
}

/// A slot plus its value-independent metadata.
pub(crate) struct Place<T, M> {
    slot: Slot<T>,
    meta: M,
}

impl<T, M: Default> Default for Place<T, M> {
    fn default() -> Self {
        Place {
            slot: Slot::default(),
            meta: M::default(),
        }
    }
}

/// The arena proper, shared behind an `Arc` by every handle.
pub(crate) struct Core<T, M = ()> {
    places: Segments<Place<T, M>>,
    free: FreePool,
    /// Slots created so far; changes only under `growth`.
    capacity: AtomicUsize,
    /// Slots retired so far (their generations ran out: `slot.rs`, S4).
    retired: AtomicUsize,
    /// Vacant entries outstanding: slots popped for a value that does not
    /// exist yet, on no free list and not counted by `len`.
    entries: AtomicUsize,
    /// Serialises growth (the cold path only).
    growth: Mutex<()>,
    /// Threads and tasks waiting for a free slot.
    room: WaitQueue,
    /// The records of pinned readers (`pins.rs`).
    pins: Pins,
}

impl<T, M> Links for Core<T, M> {
    #[inline]
    fn next(&self, index: u32) -> u32 {
        self.slot_at(index).next_free()
    }

    #[inline]
    fn set_next(&self, index: u32, next: u32) {
        self.slot_at(index).set_next_free(next);
    }
}

impl<T, M> Recycle for Core<T, M> {
    #[inline]
    fn recycle(&self, index: u32) {
        self.recycle_slot(self.slot_at(index), index);
    }

    #[inline]
    fn recycle_dropped(&self, index: u32, vacant: u64) {
        self.recycle_vacant(self.slot_at(index), index, vacant);
    }

    #[inline]
    fn pinned(&self, index: u32) -> bool {
        self.pins.pinned(index)
    }
}

impl<T, M: Default> Core<T, M> {
    /// `initial` slots now, growing on demand up to `max`.
    ///
    /// # Panics
    ///
    /// If `initial > max` or `max` exceeds [`SlotArena::MAX_CAPACITY`].
    #[track_caller]
    pub(crate) fn new(initial: usize, max: usize) -> Self {
        assert!(
            initial <= max,
            "initial capacity {initial} exceeds the maximum {max}"
        );
        assert!(
            max <= MAX_CAPACITY,
            "capacity {max} exceeds SlotArena::MAX_CAPACITY ({MAX_CAPACITY})"
        );
        let core = Core::unlisted(initial, max);
        core.free.push_fresh(0, initial, &core);
        core
    }

    /// `initial` vacant slots of generation 0 on no free list yet.
    fn unlisted(initial: usize, max: usize) -> Self {
        Core {
            places: Segments::new(initial, max),
            free: FreePool::new(),
            capacity: AtomicUsize::new(initial),
            retired: AtomicUsize::new(0),
            entries: AtomicUsize::new(0),
            growth: Mutex::new(()),
            room: WaitQueue::default(),
            pins: Pins::default(),
        }
    }

    /// Stores `value` in a free slot, growing if there is none; returns the
    /// value when full at the maximum.
    ///
    /// Inlined is only one try at the slot this thread freed last (the
    /// whole of a thread that frees what it stores, with no retry loop
    /// keeping registers busy); the rest of the pop is out of line.
    #[inline]
    pub(crate) fn insert(&self, value: T) -> Result<(MessageToken, &M), T> {
        // Read before popping, as in `pop_or_grow`.
        let seen = self.created();
        let popped = self.free.try_pop_home(|index| {
            let place = self.place_at(index);
            (place, place.slot.next_free())
        });
        let (index, place) = match popped {
            Ok(popped) => popped,
            Err(missed) => match self.free.pop_missed(missed, self) {
                Some(index) => (index, self.place_at(index)),
                None => match self.grow_and_pop(seen) {
                    Some(index) => (index, self.place_at(index)),
                    None => return Err(value),
                },
            },
        };
        Ok(Self::fill_place(index, place, value))
    }

    /// Pops a free slot, growing if there is none; `None` when full at the
    /// maximum. The caller owns the slot (S3): it fills it, or abandons it
    /// (`Slot::abandon`) and recycles it.
    #[inline]
    pub(crate) fn pop_or_grow(&self) -> Option<u32> {
        // Read before popping: if the pop misses the slots of a growth
        // that lands meanwhile, `grow` sees the capacity moved from `seen`
        // and we look again. Read after, it could already be the grown
        // capacity, and at the maximum the store would answer "full" with
        // the new slots free.
        let seen = self.created();
        match self.free.pop(self) {
            Some(index) => Some(index),
            None => self.grow_and_pop(seen),
        }
    }

    /// [`pop_or_grow`](Self::pop_or_grow) after its pop found every list
    /// empty with the capacity at `seen`: out of line, so that an insert
    /// inlines only the pop.
    #[cold]
    #[inline(never)]
    fn grow_and_pop(&self, seen: usize) -> Option<u32> {
        // Mutation `insert_reads_capacity_after_pop`: the race above.
        let mut seen = if cfg!(slotarena_mutation = "insert_reads_capacity_after_pop") {
            self.created()
        } else {
            seen
        };
        loop {
            if !self.grow(seen) {
                return None;
            }
            seen = self.created();
            if let Some(index) = self.free.pop(self) {
                return Some(index);
            }
        }
    }

    /// Grows until `additional` more values fit beside those present now,
    /// or to the maximum. Returns whether they fit.
    #[cold]
    pub(crate) fn reserve(&self, additional: usize) -> bool {
        let target = self.taken().saturating_add(additional);
        loop {
            let seen = self.created();
            if seen - self.retired.load(Ordering::Relaxed) >= target {
                return true;
            }
            if !self.grow(seen) {
                return false;
            }
        }
    }

    /// Fills the slot `index`, which the caller popped.
    #[inline]
    fn fill(&self, index: u32, value: T) -> (MessageToken, &M) {
        Self::fill_place(index, self.place_at(index), value)
    }

    /// Fills `place`, the place of slot `index`, which the caller popped.
    #[inline]
    fn fill_place(index: u32, place: &Place<T, M>, value: T) -> (MessageToken, &M) {
        let generation = place.slot.fill(value);
        (MessageToken::of_slot(index, generation), &place.meta)
    }

    /// Grows by one segment unless the capacity moved away from `seen`
    /// (someone else grew: retry the free lists). Returns whether there may
    /// be new room.
    #[cold]
    fn grow(&self, seen: usize) -> bool {
        if seen >= self.places.max() {
            // Full at the maximum when the caller looked: no lock to take
            // (the caller read `seen` before its pop, so a growth that
            // landed meanwhile cannot be missed: it would have changed it).
            return false;
        }
        let _growth = self.growth.lock();
        // Relaxed: `capacity` only changes under `growth`, which we hold.
        let capacity = self.capacity.load(Ordering::Relaxed);
        if capacity != seen {
            return true;
        }
        let Some((first, len)) = self.places.add(capacity) else {
            return false;
        };
        self.free.push_fresh(first, len, self);
        // Release pairs with `created()`'s Acquire (segment visible first).
        self.capacity.store(first + len, Ordering::Release);
        true
    }
}

impl<T, M> Core<T, M> {
    /// [`Recycle::recycle`] for a caller that has the slot at hand: pushes
    /// the slot back, unless it just retired (S4): then it stays off every
    /// list for good, and the capacity shrinks by one.
    #[inline]
    fn recycle_slot(&self, slot: &Slot<T>, index: u32) {
        self.recycle_vacant(slot, index, slot.word());
    }

    /// [`recycle_slot`](Self::recycle_slot) for a caller that knows the
    /// word the slot takes, `vacant`: the slot's word, or the one
    /// `Slot::vacate_dropping` answered, which the push writes.
    #[inline]
    fn recycle_vacant(&self, slot: &Slot<T>, index: u32, vacant: u64) {
        // Mutation `recycle_ignores_retired`: a retired slot goes back on a
        // free list.
        if vacant == word::RETIRED_WORD && !cfg!(slotarena_mutation = "recycle_ignores_retired") {
            self.retire();
            return;
        }
        self.free
            .push_with(index, |top| slot.link_vacant(vacant, top));
        self.room.notify_one();
    }

    #[inline]
    fn place_at(&self, index: u32) -> &Place<T, M> {
        match self.places.get(index as usize) {
            Some(place) => place,
            None => no_slot(index),
        }
    }

    #[inline]
    fn slot_at(&self, index: u32) -> &Slot<T> {
        &self.place_at(index).slot
    }

    /// The place `token` names, or `BadToken` if it names no slot.
    #[inline]
    pub(crate) fn place(&self, token: MessageToken) -> Result<(&Slot<T>, &M), MemoryError> {
        self.places
            .get(token.index())
            .map(|place| (&place.slot, &place.meta))
            .ok_or(MemoryError::BadToken)
    }

    fn held(&self, token: MessageToken) -> Result<Held<'_, T>, MemoryError> {
        let (slot, _) = self.place(token)?;
        Ok(Held {
            slot,
            recycle: self,
            token,
        })
    }

    /// Whether `token` names a live value: `Ok` with the word, or the
    /// error any access would answer.
    #[inline]
    pub(crate) fn check(&self, token: MessageToken) -> Result<u64, MemoryError> {
        self.place(token)?.0.check(token)
    }

    /// Shared access; waits for a writer if `blocking`. `K` is the key
    /// type the guard answers.
    #[inline]
    pub(crate) fn read<K>(
        &self,
        token: MessageToken,
        blocking: bool,
    ) -> Result<ReadGuard<'_, T, T, K>, MemoryError> {
        let held = self.held(token)?;
        held.slot.lock_read(token, blocking)?;
        Ok(ReadGuard::new(held))
    }

    /// Exclusive access; waits for every guard if `blocking`. `K` is the
    /// key type the guard answers.
    #[inline]
    pub(crate) fn write<K>(
        &self,
        token: MessageToken,
        blocking: bool,
    ) -> Result<WriteGuard<'_, T, T, K>, MemoryError> {
        let held = self.held(token)?;
        self.lock_exclusive(held, blocking)?;
        Ok(WriteGuard::new(held))
    }

    /// Takes the value of `held` exclusively: its word's write lock with no
    /// pinned reader on it (pins.rs, P1); waits for both if `blocking`,
    /// else answers `AlreadyBorrowed`.
    ///
    /// It never holds the lock while it waits for pinned readers: a thread
    /// that holds a pin may read the value again (a guard, or another pin),
    /// as it may while a writer waits for read guards, and a held lock would
    /// deadlock it. It also looks for pins before it locks, so that a
    /// refusal leaves the word as it found it for other readers (unless a
    /// pin lands between that look, which does not fence, and the lock).
    #[inline]
    fn lock_exclusive(&self, held: Held<'_, T>, blocking: bool) -> Result<(), MemoryError> {
        loop {
            if self.pins.any_pinned(held.index()) {
                if !blocking {
                    return Err(MemoryError::AlreadyBorrowed);
                }
                self.spin_until_unpinned(held.index());
            }
            held.slot.lock_write(held.token, blocking)?;
            match self.unpinned_after_lock(held) {
                Err(MemoryError::AlreadyBorrowed) if blocking => continue,
                done => return done,
            }
        }
    }

    /// The pinned readers' part of a write lock `held` just took (pins.rs,
    /// P1), before anything touches the value: if a reader is pinned on it,
    /// unlocks again (reclaiming the value if a remove landed meanwhile)
    /// and answers `AlreadyBorrowed`.
    #[inline]
    fn unpinned_after_lock(&self, held: Held<'_, T>) -> Result<(), MemoryError> {
        if !self.pins.pinned(held.index()) {
            return Ok(());
        }
        held.reclaim(held.slot.unlock_write(false));
        Err(MemoryError::AlreadyBorrowed)
    }

    /// For a thread that just took the value of slot `index` exclusively
    /// (its read-modify-write on the word is done): whether no pinned
    /// reader holds it (pins.rs, P1), waiting for them to unpin if
    /// `blocking`. Pinned readers are not parked on anything, so this spins
    /// and then yields.
    #[inline]
    fn wait_unpinned(&self, index: u32, blocking: bool) -> bool {
        if !self.pins.pinned(index) {
            return true;
        }
        if blocking {
            self.spin_until_unpinned(index);
        }
        blocking
    }

    #[cold]
    fn spin_until_unpinned(&self, index: u32) {
        let backoff = Backoff::new();
        while self.pins.pinned(index) {
            backoff.snooze();
        }
    }

    /// Kills `token` at once; drops the value now or with its last guard.
    #[inline]
    pub(crate) fn remove(&self, token: MessageToken) -> Result<(), MemoryError> {
        let (slot, _) = self.place(token)?;
        if let Some(generation) = slot.remove(token)? {
            self.reclaim(slot, token, generation);
        }
        Ok(())
    }

    /// Drops the value of a slot held for reclaiming and frees the slot.
    #[inline]
    fn reclaim(&self, slot: &Slot<T>, token: MessageToken, generation: u32) {
        let index = token.index() as u32;
        // `move`: closures that borrowed `index` put it in memory.
        if slot.keep_for_pinned(move || self.pins.pinned(index)) {
            // The last pinned reader drops it (pins.rs, P3).
            return;
        }
        // SAFETY: the caller got `generation` from `Slot::remove` or
        // `Slot::begin_take`: it holds the slot for reclaiming, and no
        // pinned reader holds the value (P1).
        unsafe {
            slot.vacate_dropping(generation, move |vacant| {
                self.recycle_vacant(slot, index, vacant);
            });
        };
    }

    /// Moves the value out, waiting for its guards if `blocking` (else
    /// `BorrowActive`), and frees its slot; also says whether the value was
    /// poisoned (the caller decides what that means). A retained value
    /// answers `QueueOwned`.
    #[inline]
    pub(crate) fn take(
        &self,
        token: MessageToken,
        blocking: bool,
    ) -> Result<(T, bool), MemoryError> {
        let (slot, _) = self.place(token)?;
        let index = token.index() as u32;
        let word = if blocking {
            let word = slot.begin_take(token, true, false)?;
            self.wait_unpinned(index, true);
            word
        } else {
            // Refusing must change nothing, so the token dies only after
            // the look for pinned readers.
            slot.lock_for_take(token)?;
            let held = Held {
                slot,
                recycle: self,
                token,
            };
            if self.pins.pinned(index) {
                held.reclaim(slot.unlock_write(false));
                return Err(MemoryError::BorrowActive);
            }
            match slot.take_locked() {
                Ok(word) => word,
                Err(generation) => {
                    // A remove won the race; as its last guard, we drop it.
                    held.reclaim(Some(generation));
                    return Err(MemoryError::NotAllocated);
                }
            }
        };
        // SAFETY: `begin_take` or `take_locked` gave us the slot for
        // reclaiming, and no pinned reader holds the value (P1).
        let value = unsafe { slot.vacate(word::generation(word)) };
        self.recycle_slot(slot, index);
        Ok((value, word & word::POISONED != 0))
    }

    /// Drops the value now, without waiting: `BorrowActive` while a guard
    /// is live, `QueueOwned` while it is retained, unless `last_share`
    /// (the caller releases the last share, clearing the mark).
    #[inline]
    pub(crate) fn free(&self, token: MessageToken, last_share: bool) -> Result<(), MemoryError> {
        let (slot, _) = self.place(token)?;
        let word = slot.begin_take(token, false, last_share)?;
        self.reclaim(slot, token, word::generation(word));
        Ok(())
    }

    /// Marks the value retained (see [`word::RETAINED`]); returns whether
    /// this call set the mark.
    pub(crate) fn retain(&self, token: MessageToken) -> Result<bool, MemoryError> {
        self.place(token)?.0.retain(token)
    }

    /// Whether the live value `token` names is retained; the error any
    /// access would answer otherwise.
    pub(crate) fn is_retained(&self, token: MessageToken) -> Result<bool, MemoryError> {
        self.check(token).map(|word| word & word::RETAINED != 0)
    }

    /// Slots created so far, retired ones included: every index below it
    /// has a slot.
    #[inline]
    pub(crate) fn created(&self) -> usize {
        // Acquire pairs with the Release in `grow`: a caller that sees the
        // new capacity also sees the new segment.
        self.capacity.load(Ordering::Acquire)
    }

    /// Slots that can hold a value: those created, less the retired.
    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        // Relaxed: a count, exact when no operation is in flight.
        self.created() - self.retired.load(Ordering::Relaxed)
    }

    /// The most values the arena may ever hold at once: the slots it may
    /// grow to, less the retired.
    pub(crate) fn max_capacity(&self) -> usize {
        // SeqCst: pairs with `retire`, for a waiter that looks after it
        // started listening.
        self.places.max() - self.retired.load(Ordering::SeqCst)
    }

    /// Counts a slot that just retired (S4); it is on no free list. Wakes
    /// every waiter for room: if that was the last slot there could ever
    /// be, they give up instead of sleeping for ever.
    #[cold]
    fn retire(&self) {
        self.retired.fetch_add(1, Ordering::SeqCst);
        self.room.notify_all_listeners();
    }

    /// Values present (including removed ones whose guards are still live,
    /// which hold their slots): exact when no operation is in flight.
    ///
    /// It counts the slots instead of keeping a shared counter, which would
    /// put two contended read-modify-writes on every insert/remove pair;
    /// the price is that this call is O(slots created).
    pub(crate) fn len(&self) -> usize {
        self.places
            .all()
            .filter(|place| word::state(place.slot.word()) != word::VACANT)
            .count()
    }

    /// Slots not free for an insert: values present plus vacant entries
    /// outstanding. Exact when no operation is in flight.
    pub(crate) fn taken(&self) -> usize {
        self.len() + self.entries.load(Ordering::Relaxed)
    }

    /// A slot the caller popped now stands for a vacant entry.
    pub(super) fn entry_opened(&self) {
        self.entries.fetch_add(1, Ordering::Relaxed);
    }

    /// A vacant entry was filled or given back.
    pub(super) fn entry_closed(&self) {
        self.entries.fetch_sub(1, Ordering::Relaxed);
    }

    /// Puts every vacant slot that has not retired back on a free list,
    /// and forgets every vacant entry: after a `mem::forget` of an entry,
    /// its slot was on no list, and only a holder of the whole arena can
    /// tell that no other entry holds it.
    ///
    /// # Safety
    ///
    /// The caller holds the arena exclusively: no other thread or guard,
    /// entry or future of it exists (as `Arc::get_mut` proves), so no slot
    /// is being popped, filled or pushed meanwhile.
    pub(super) unsafe fn relist_vacant(&self) {
        let vacant: alloc::vec::Vec<u32> = (0..self.created())
            .filter(|&index| {
                let slot = &self.place_at(index as u32).slot;
                word::state(slot.word()) == word::VACANT && !slot.is_retired()
            })
            .map(|index| index as u32)
            .collect();
        self.free.relist(&vacant, self);
        self.entries.store(0, Ordering::Relaxed);
    }

    /// The token and slot at `index`, if a live value is there now.
    pub(super) fn live_at(&self, index: usize) -> Option<(MessageToken, &Slot<T>)> {
        let slot = &self.places.get(index)?.slot;
        let word = slot.word();
        (word::state(word) == word::PRESENT).then(|| {
            (
                MessageToken::new(index as u32, word::generation(word)),
                slot,
            )
        })
    }
}

impl<T, M> Drop for Core<T, M> {
    /// Drops every remaining value once. If one value's `Drop` panics, the
    /// others are still dropped (while unwinding), as std's collections do.
    fn drop(&mut self) {
        struct DropTheRest<I: Iterator>(I)
        where
            I::Item: DropValue;
        impl<I: Iterator> Drop for DropTheRest<I>
        where
            I::Item: DropValue,
        {
            fn drop(&mut self) {
                self.0.by_ref().for_each(DropValue::drop_value);
            }
        }
        let mut rest = DropTheRest(self.places.all_mut());
        // On a panic, `rest` drops the places this loop has not reached.
        for place in rest.0.by_ref() {
            place.drop_value();
        }
    }
}

/// `Core::place_at`'s panic, out of line and taking the index by value: a
/// message formatted in place made every caller keep the index in memory.
#[cold]
#[inline(never)]
fn no_slot(index: u32) -> ! {
    unreachable!("index {index} came off a free list but has no slot")
}

/// A place whose value (if any) the arena's drop drops.
trait DropValue {
    fn drop_value(self);
}

impl<T, M> DropValue for &mut Place<T, M> {
    fn drop_value(self) {
        self.slot.drop_in_place();
    }
}

/// The largest capacity any arena may have: the lifecycle word keeps a
/// free slot's link in 26 bits.
const MAX_CAPACITY: usize = word::NIL as usize;

// `MessageToken::of_slot` masks indexes to 31 bits, a no-op only while
// every index is below 2^31.
const _: () = assert!(MAX_CAPACITY <= 1 << 31);

/// A concurrent generational slab of `T`: lock-free slot allocation,
/// per-slot reader-writer locks, and values named by keys: [`MessageToken`]s,
/// or keys of a type of the arena's own (`SlotArena<T, K>`, with `K` made
/// by [`new_key_type!`](crate::new_key_type) and the arena by
/// [`with_key`](Self::with_key)), so one arena's key cannot name another's
/// value by accident.
///
/// A cheap `Clone` handle (one `Arc`); `Send + Sync` when `T` is.
///
/// - [`insert`](Self::insert) pops a free slot from per-thread lock-free
///   lists; it hands the value back when the arena is full.
/// - [`get`](Self::get)/[`get_mut`](Self::get_mut) lock the one slot, by
///   one compare-and-swap that also checks the token's generation; they
///   wait (spin, then park) only for an incompatible guard on the same
///   value. [`try_get`](Self::try_get)/[`try_get_mut`](Self::try_get_mut)
///   answer `AlreadyBorrowed` instead.
/// - [`remove`](Self::remove) never waits and never fails because of a
///   guard: the token dies at once and the value is dropped with its last
///   guard. [`take`](Self::take) waits for the guards and returns the
///   value; [`try_take`](Self::try_take) answers `BorrowActive` instead.
/// - Capacity is exact: from a quiescent state with `k` free slots, any one
///   thread can insert `k` values, whichever threads freed them.
/// - A token of a removed value never reaches a value stored in its slot
///   later: a slot whose 32-bit generation would wrap is retired instead
///   of reused ([`capacity`](Self::capacity) shrinks by one).
///
/// - [`reader`](Self::reader) makes a [`Reader`] for pinned reads: a read
///   that writes nothing another thread writes (its own record, a fence,
///   a load of the value's word), for values many threads read at once;
///   writers then wait for the pinned readers instead.
///
/// Reads are not lock-free: a guard is a lock, and a writer excludes
/// readers. What is lock-free is slot allocation and the token check.
///
/// # `iter_mut`, `values_mut` and `for … in &mut arena`
///
/// The arena has no `iter_mut`/`values_mut` and no `IntoIterator` for
/// `&mut SlotArena`, on purpose: the handle is a cheap `Clone`, so
/// `&mut` of one handle does not exclude its clones (or owned guards) on
/// other threads, and plain `&mut T` to every value would not be
/// exclusive. [`exclusive`](Self::exclusive) checks that this handle is
/// the only one and gives [`Exclusive`], which
/// has slotmap's `&mut self` methods and `IntoIterator` for `&mut`;
/// `&arena` iterates with read guards ([`iter`](Self::iter)).
///
/// ```compile_fail,E0277
/// let mut arena = slotarena::SlotArena::new(2);
/// arena.insert(1).unwrap();
/// for (_, value) in &mut arena { // error: `&mut SlotArena` is not an iterator
///     *value += 1;
/// }
/// ```
///
/// ```
/// let mut arena = slotarena::SlotArena::new(2);
/// let key = arena.insert(1).unwrap();
/// for (_, value) in &mut arena.exclusive().expect("no other handle") {
///     *value += 1;
/// }
/// assert_eq!(*arena.get(key).unwrap(), 2);
/// ```
///
/// # Examples
///
/// ```
/// use std::thread;
/// use slotarena::{MemoryError, SlotArena};
///
/// let arena = SlotArena::new(64);
/// let token = arena.insert(String::from("hello")).unwrap();
/// let worker = arena.clone();
/// thread::spawn(move || worker.get_mut(token).unwrap().push_str(", world"))
///     .join()
///     .unwrap();
/// assert_eq!(*arena.get(token).unwrap(), "hello, world");
/// assert_eq!(arena.take(token).unwrap(), "hello, world");
/// assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
/// ```
pub struct SlotArena<T, K = MessageToken> {
    core: Arc<Core<T>>,
    /// The arena's key type; `fn(K) -> K` keeps the handle `Send + Sync`
    /// whatever `K` is.
    _key: PhantomData<fn(K) -> K>,
}

impl<T, K> SlotArena<T, K> {
    /// The shared core, for owned guards (whose drop knows no `K: Key`).
    pub(super) fn core(&self) -> &Core<T> {
        &self.core
    }
}

impl<T, K> Clone for SlotArena<T, K> {
    /// Another handle to the same values.
    fn clone(&self) -> Self {
        SlotArena {
            core: Arc::clone(&self.core),
            _key: PhantomData,
        }
    }
}

impl<T, K: Key> fmt::Debug for SlotArena<T, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotArena")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("max_capacity", &self.max_capacity())
            .finish()
    }
}

impl<T> SlotArena<T> {
    /// An arena of exactly `capacity` slots.
    ///
    /// # Panics
    ///
    /// If `capacity` exceeds [`MAX_CAPACITY`](Self::MAX_CAPACITY).
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::<u64>::new(16);
    /// assert_eq!((arena.capacity(), arena.len()), (16, 0));
    /// ```
    #[track_caller]
    pub fn new(capacity: usize) -> Self {
        Self::growable(capacity, capacity)
    }

    /// An arena of `initial` slots that grows on demand up to `max`.
    ///
    /// Each growth adds a segment as large as everything before it (at
    /// least 32 slots), clamped to `max`. Existing slots never move, so
    /// guards and tokens stay valid across growth.
    ///
    /// # Panics
    ///
    /// If `initial > max` or `max` exceeds [`MAX_CAPACITY`](Self::MAX_CAPACITY).
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::growable(0, 1000);
    /// let token = arena.insert(7u8).unwrap();
    /// assert_eq!(arena.capacity(), 32);
    /// assert_eq!(*arena.get(token).unwrap(), 7);
    /// ```
    #[track_caller]
    pub fn growable(initial: usize, max: usize) -> Self {
        Self::growable_with_key(initial, max)
    }
}

impl<T, K: Key> SlotArena<T, K> {
    /// The largest capacity an arena may have (2²⁶ − 1 slots).
    pub const MAX_CAPACITY: usize = MAX_CAPACITY;

    /// The most read guards one value can have at once (2²⁶ − 2). One more
    /// answers [`MemoryError::TooManyReaders`], never a panic.
    pub const MAX_READERS: usize = word::MAX_READERS as usize;

    /// [`new`](SlotArena::new) for an arena whose keys are `K` (made with
    /// [`new_key_type!`](crate::new_key_type)); slotmap's `with_key`.
    ///
    /// # Panics
    ///
    /// As for [`new`](SlotArena::new).
    ///
    /// # Examples
    ///
    /// ```
    /// slotarena::new_key_type! { struct Id; }
    ///
    /// let arena: slotarena::SlotArena<u8, Id> = slotarena::SlotArena::with_key(4);
    /// let id: Id = arena.insert(1).unwrap();
    /// assert_eq!(*arena.get(id).unwrap(), 1);
    /// ```
    #[track_caller]
    pub fn with_key(capacity: usize) -> Self {
        Self::growable_with_key(capacity, capacity)
    }

    /// [`growable`](SlotArena::growable) for an arena whose keys are `K`.
    ///
    /// # Panics
    ///
    /// As for [`growable`](SlotArena::growable).
    ///
    /// # Examples
    ///
    /// ```
    /// slotarena::new_key_type! { struct Id; }
    ///
    /// let arena = slotarena::SlotArena::<u8, Id>::growable_with_key(0, 64);
    /// assert_eq!(arena.max_capacity(), 64);
    /// ```
    #[track_caller]
    pub fn growable_with_key(initial: usize, max: usize) -> Self {
        SlotArena {
            core: Arc::new(Core::new(initial, max)),
            _key: PhantomData,
        }
    }

    /// Stores `value` and returns its token; hands the value back when the
    /// arena is full at its maximum capacity. Never waits, except for the
    /// growth lock when a growable arena adds a segment.
    ///
    /// # Errors
    ///
    /// [`InsertError`] (full), carrying `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(1);
    /// arena.insert('a').unwrap();
    /// assert_eq!(arena.insert('b').unwrap_err().into_inner(), 'b');
    /// ```
    #[inline]
    pub fn insert(&self, value: T) -> Result<K, InsertError<T>> {
        self.core
            .insert(value)
            .map(|(token, ())| K::from_token(token))
            .map_err(|value| InsertError { value })
    }

    /// Whether `token` names a live value (poisoned values included).
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// assert!(arena.contains(token));
    /// arena.remove(token).unwrap();
    /// assert!(!arena.contains(token));
    /// ```
    pub fn contains(&self, key: K) -> bool {
        let token = key.to_token();
        self.core.check(token).is_ok()
    }

    /// Slot `index` right now, if the arena has it: the token of its
    /// generation (that of the value occupying it, live or removed while
    /// guards still hold it; for an empty slot, the generation its next
    /// value gets), and whether a value occupies it. A snapshot for layers
    /// whose keys carry fewer generation bits than a token
    /// (`compat::limen`); every use of the token is checked again, and
    /// answers `NotAllocated` for a removed value.
    #[cfg(feature = "limen")]
    pub(crate) fn slot_at(&self, index: usize) -> Option<(MessageToken, bool)> {
        let word = self.core.places.get(index)?.slot.word();
        Some((
            MessageToken::new(index as u32, word::generation(word)),
            word::state(word) != word::VACANT,
        ))
    }

    /// Values in the arena, counting removed values whose last guard has
    /// not dropped yet (they still hold their slots). Exact when no
    /// operation is in flight; O(capacity).
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(4);
    /// arena.insert(()).unwrap();
    /// assert_eq!(arena.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether [`len`](Self::len) is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(slotarena::SlotArena::<u8>::new(4).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots that exist now (free or not), less the retired ones: a slot
    /// whose value had the last of its 2³² generations is retired when
    /// that value leaves, so no old token can ever name a later value.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(slotarena::SlotArena::<u8>::growable(8, 64).capacity(), 8);
    /// ```
    pub fn capacity(&self) -> usize {
        self.core.capacity()
    }

    /// The most slots the arena may grow to, less the retired ones (see
    /// [`capacity`](Self::capacity)).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(slotarena::SlotArena::<u8>::growable(8, 64).max_capacity(), 64);
    /// ```
    pub fn max_capacity(&self) -> usize {
        self.core.max_capacity()
    }

    /// Removes the value `token` names. Never waits and never fails because
    /// of a guard: the token is dead at once (every later access answers
    /// `NotAllocated`), and the value is dropped now, or when the last
    /// guard on it drops.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated` (already removed), `StaleToken`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(String::from("x")).unwrap();
    /// let guard = arena.get(token).unwrap();
    /// arena.remove(token).unwrap(); // does not wait for `guard`
    /// assert_eq!(arena.get(token).err(), Some(MemoryError::NotAllocated));
    /// assert_eq!(*guard, "x"); // still readable; dropped with the guard
    /// ```
    #[inline]
    pub fn remove(&self, key: K) -> Result<(), MemoryError> {
        let token = key.to_token();
        self.core.remove(token)
    }

    /// Removes the value `token` names and returns it, waiting for the live
    /// guards on it to drop. The token is dead from the start of the wait.
    ///
    /// A thread that holds a guard on the value and calls `take` on it
    /// waits for itself forever; use [`try_take`](Self::try_take) there.
    ///
    /// # Errors
    ///
    /// [`TakeError::Refused`] with `BadToken`, `NotAllocated` or
    /// `StaleToken`, changing nothing. [`TakeError::Poisoned`] if a writer
    /// panicked while holding the value: it is taken all the same (the
    /// token is dead, the slot free) and handed back inside the error, as
    /// std's `PoisonError::into_inner` hands back a poisoned lock's data,
    /// so the caller decides whether a half-updated value is usable.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(vec![1, 2]).unwrap();
    /// assert_eq!(arena.take(token).unwrap(), [1, 2]);
    /// ```
    ///
    /// A poisoned value is not lost:
    ///
    /// ```
    /// use std::panic::{AssertUnwindSafe, catch_unwind};
    /// use slotarena::{MemoryError, SlotArena};
    ///
    /// let arena = SlotArena::new(1);
    /// let token = arena.insert(vec![1]).unwrap();
    /// let _ = catch_unwind(AssertUnwindSafe(|| {
    ///     let mut guard = arena.get_mut(token).unwrap();
    ///     guard.push(2);
    ///     panic!("before the update was complete");
    /// }));
    /// assert_eq!(arena.get(token).err(), Some(MemoryError::Poisoned));
    /// let error = arena.take(token).unwrap_err();
    /// assert_eq!(error.error(), MemoryError::Poisoned);
    /// assert_eq!(error.into_inner(), Some(vec![1, 2]));
    /// assert!(arena.is_empty()); // the slot is free again
    /// ```
    pub fn take(&self, key: K) -> Result<T, TakeError<T>> {
        let token = key.to_token();
        TakeError::of(self.core.take(token, true))
    }

    /// [`take`](Self::take) without waiting: `BorrowActive` while any guard
    /// is live, changing nothing.
    ///
    /// # Errors
    ///
    /// As `take`, plus `Refused(BorrowActive)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena, TakeError};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(5).unwrap();
    /// let guard = arena.get(token).unwrap();
    /// assert_eq!(arena.try_take(token), Err(TakeError::Refused(MemoryError::BorrowActive)));
    /// drop(guard);
    /// assert_eq!(arena.try_take(token), Ok(5));
    /// ```
    pub fn try_take(&self, key: K) -> Result<T, TakeError<T>> {
        let token = key.to_token();
        TakeError::of(self.core.take(token, false))
    }

    /// Removes every value present for the whole call, the way
    /// [`remove`](Self::remove) does: each token dies at once, and each
    /// value is dropped now or when its last guard drops. Never waits.
    /// Weakly consistent, like [`iter`](Self::iter): a value inserted
    /// meanwhile may stay. With `&mut` access and no other handle,
    /// [`exclusive`](Self::exclusive)`()?.clear()` does it without atomics.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(4);
    /// let kept = arena.insert(1).unwrap();
    /// arena.insert(2).unwrap();
    /// let guard = arena.get(kept).unwrap();
    /// arena.clear();
    /// assert_eq!(arena.len(), 1); // the removed value holds its slot for `guard`
    /// assert!(!arena.contains(kept));
    /// assert_eq!(*guard, 1);
    /// drop(guard);
    /// assert!(arena.is_empty());
    /// ```
    pub fn clear(&self) {
        for index in 0..self.core.created() {
            if let Some((token, _)) = self.core.live_at(index) {
                // A racing remove or take may win; the value is gone either way.
                let _ = self.core.remove(token);
            }
        }
    }

    /// Retains only the values for which `keep` answers `true`, visiting
    /// each value present for the whole call once, under its write lock
    /// (waiting for other threads' guards; a value whose guard the calling
    /// thread holds would wait forever). Poisoned values are skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(8);
    /// for n in 0..8 {
    ///     arena.insert(n).unwrap();
    /// }
    /// arena.retain(|_, n| *n % 2 == 0);
    /// assert_eq!(arena.len(), 4);
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(K, &mut T) -> bool) {
        for index in 0..self.core.created() {
            let Some((token, _)) = self.core.live_at(index) else {
                continue;
            };
            let Ok(mut guard) = self.core.write::<K>(token, true) else {
                continue;
            };
            if !keep(K::from_token(token), &mut guard) {
                // We hold the write lock, so the value is dropped when
                // `guard` drops, right after this.
                let removed = self.core.remove(token);
                debug_assert!(removed.is_ok(), "{removed:?}");
            }
        }
    }

    /// Shared access to the value `token` names; waits while a writer
    /// holds it.
    ///
    /// A thread that holds a write guard on the value and calls `get` on
    /// it waits for itself forever; use [`try_get`](Self::try_get) there.
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`; `TooManyReaders`
    /// when the value already has [`MAX_READERS`](Self::MAX_READERS) read
    /// guards (it never waits for one to drop).
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(3u8).unwrap();
    /// let (a, b) = (arena.get(token).unwrap(), arena.get(token).unwrap());
    /// assert_eq!(*a + *b, 6);
    /// ```
    #[inline]
    pub fn get(&self, key: K) -> Result<ReadGuard<'_, T, T, K>, MemoryError> {
        let token = key.to_token();
        self.core.read(token, true)
    }

    /// Exclusive access to the value `token` names; waits while any guard
    /// holds it, or a [`Reader`] holds it pinned.
    ///
    /// This is a write lock taken through `&self`. With `&mut` access to
    /// the only handle, [`exclusive`](Self::exclusive)`()?.get_mut(token)`
    /// gives a plain `&mut T` without one (slotmap's `get_mut`).
    ///
    /// # Errors
    ///
    /// `BadToken`, `NotAllocated`, `StaleToken`, `Poisoned`.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(3u8).unwrap();
    /// *arena.get_mut(token).unwrap() += 1;
    /// assert_eq!(*arena.get(token).unwrap(), 4);
    /// ```
    #[inline]
    pub fn get_mut(&self, key: K) -> Result<WriteGuard<'_, T, T, K>, MemoryError> {
        let token = key.to_token();
        self.core.write(token, true)
    }

    /// [`get`](Self::get) without waiting: `AlreadyBorrowed` while a writer
    /// holds the value.
    ///
    /// # Errors
    ///
    /// As `get`, plus `AlreadyBorrowed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// let writer = arena.get_mut(token).unwrap();
    /// assert_eq!(arena.try_get(token).err(), Some(MemoryError::AlreadyBorrowed));
    /// drop(writer);
    /// assert!(arena.try_get(token).is_ok());
    /// ```
    #[inline]
    pub fn try_get(&self, key: K) -> Result<ReadGuard<'_, T, T, K>, MemoryError> {
        let token = key.to_token();
        self.core.read(token, false)
    }

    /// [`get_mut`](Self::get_mut) without waiting: `AlreadyBorrowed` while
    /// any guard holds the value, or a [`Reader`] holds it pinned.
    ///
    /// # Errors
    ///
    /// As `get_mut`, plus `AlreadyBorrowed`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(1).unwrap();
    /// let reader = arena.get(token).unwrap();
    /// assert_eq!(arena.try_get_mut(token).err(), Some(MemoryError::AlreadyBorrowed));
    /// drop(reader);
    /// assert!(arena.try_get_mut(token).is_ok());
    /// ```
    #[inline]
    pub fn try_get_mut(&self, key: K) -> Result<WriteGuard<'_, T, T, K>, MemoryError> {
        let token = key.to_token();
        self.core.write(token, false)
    }

    /// [`get`](Self::get) for a guard that owns a handle to the arena:
    /// `'static` and `Send`, so a task can hold it across `.await`.
    ///
    /// # Errors
    ///
    /// As `get`.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(9).unwrap();
    /// let guard = arena.get_owned(token).unwrap();
    /// drop(arena);
    /// assert_eq!(*guard, 9);
    /// ```
    pub fn get_owned(&self, key: K) -> Result<OwnedReadGuard<T, T, K>, MemoryError> {
        let token = key.to_token();
        self.owned_read(token, true)
    }

    /// [`get_owned`](Self::get_owned) without waiting (`AlreadyBorrowed`).
    ///
    /// # Errors
    ///
    /// As `try_get`.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(9).unwrap();
    /// assert_eq!(*arena.try_get_owned(token).unwrap(), 9);
    /// ```
    pub fn try_get_owned(&self, key: K) -> Result<OwnedReadGuard<T, T, K>, MemoryError> {
        let token = key.to_token();
        self.owned_read(token, false)
    }

    /// [`get_mut`](Self::get_mut) for a guard that owns a handle to the
    /// arena: `'static` and `Send`.
    ///
    /// # Errors
    ///
    /// As `get_mut`.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(9).unwrap();
    /// *arena.get_mut_owned(token).unwrap() = 10;
    /// assert_eq!(*arena.get(token).unwrap(), 10);
    /// ```
    pub fn get_mut_owned(&self, key: K) -> Result<OwnedWriteGuard<T, T, K>, MemoryError> {
        let token = key.to_token();
        self.owned_write(token, true)
    }

    /// [`get_mut_owned`](Self::get_mut_owned) without waiting
    /// (`AlreadyBorrowed`).
    ///
    /// # Errors
    ///
    /// As `try_get_mut`.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena};
    ///
    /// let arena = SlotArena::new(2);
    /// let token = arena.insert(9).unwrap();
    /// let claim = arena.try_get_mut_owned(token).unwrap();
    /// assert_eq!(arena.try_get_mut_owned(token).err(), Some(MemoryError::AlreadyBorrowed));
    /// drop(claim);
    /// ```
    pub fn try_get_mut_owned(&self, key: K) -> Result<OwnedWriteGuard<T, T, K>, MemoryError> {
        let token = key.to_token();
        self.owned_write(token, false)
    }

    /// Test hook, not API: takes `count` read locks on the value `token`
    /// names that are never given back, the same as taking `count` read
    /// guards and passing each to `mem::forget` (which safe code may do),
    /// but in one step, so a test can bring a value near its reader limit
    /// without holding millions of guards.
    ///
    /// # Errors
    ///
    /// As [`try_get`](Self::try_get); `TooManyReaders` if `count` more
    /// readers would pass the limit.
    #[doc(hidden)]
    pub fn __forget_read_locks(&self, key: K, count: u64) -> Result<(), MemoryError> {
        let token = key.to_token();
        self.core.place(token)?.0.forget_read_locks(token, count)
    }

    /// Test hook, not API: moves the free slot `index` forward to the
    /// generation `generation` for its next value, so a test can bring a
    /// slot near the end of its generations without 2³² reuses. Answers
    /// `false` (and changes nothing) unless this is the arena's only handle
    /// (no clone, no owned guard), the slot is free, and its generation is
    /// not past `generation` (never backward: an old key would match again).
    #[doc(hidden)]
    pub fn __set_free_generation(&mut self, index: usize, generation: u32) -> bool {
        let Some(core) = Arc::get_mut(&mut self.core) else {
            return false;
        };
        core.places
            .get(index)
            .is_some_and(|place| place.slot.set_free_generation(generation))
    }

    fn owned_read(
        &self,
        token: MessageToken,
        blocking: bool,
    ) -> Result<OwnedReadGuard<T, T, K>, MemoryError> {
        let (slot, ()) = self.core.place(token)?;
        slot.lock_read(token, blocking)?;
        Ok(OwnedReadGuard::new(self.clone(), slot, token))
    }

    fn owned_write(
        &self,
        token: MessageToken,
        blocking: bool,
    ) -> Result<OwnedWriteGuard<T, T, K>, MemoryError> {
        let held = self.core.held(token)?;
        self.core.lock_exclusive(held, blocking)?;
        Ok(OwnedWriteGuard::new(self.clone(), held.slot, token))
    }

    /// Every value present for the whole iteration, each with its token and
    /// a read guard; values inserted or removed meanwhile may or may not
    /// appear. Never waits: values locked for writing, poisoned, or at
    /// their [reader limit](Self::MAX_READERS) are skipped.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(4);
    /// arena.insert(1).unwrap();
    /// arena.insert(2).unwrap();
    /// let sum: i32 = arena.iter().map(|(_, value)| *value).sum();
    /// assert_eq!(sum, 3);
    /// ```
    pub fn iter(&self) -> Iter<'_, T, K> {
        Iter::new(&self.core)
    }
}

impl<'a, T, K: Key> IntoIterator for &'a SlotArena<T, K> {
    type Item = (K, ReadGuard<'a, T, T, K>);
    type IntoIter = Iter<'a, T, K>;

    fn into_iter(self) -> Iter<'a, T, K> {
        self.iter()
    }
}

/// An [`insert`](SlotArena::insert) into a full arena; carries the value
/// back.
#[derive(Clone, PartialEq, Eq)]
pub struct InsertError<T> {
    value: T,
}

impl<T> InsertError<T> {
    /// The value that was not inserted.
    ///
    /// # Examples
    ///
    /// ```
    /// let arena = slotarena::SlotArena::new(0);
    /// assert_eq!(arena.insert(4).unwrap_err().into_inner(), 4);
    /// ```
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The error without the value: always [`MemoryError::NoFreeSlots`].
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena};
    ///
    /// let arena = SlotArena::new(0);
    /// assert_eq!(arena.insert(4).unwrap_err().error(), MemoryError::NoFreeSlots);
    /// ```
    pub fn error(&self) -> MemoryError {
        MemoryError::NoFreeSlots
    }
}

impl<T> fmt::Debug for InsertError<T> {
    /// Like std's `TrySendError`: prints without needing `T: Debug`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InsertError { .. }")
    }
}

impl<T> fmt::Display for InsertError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&MemoryError::NoFreeSlots, f)
    }
}

impl<T> core::error::Error for InsertError<T> {}

impl<T> From<InsertError<T>> for MemoryError {
    fn from(_: InsertError<T>) -> MemoryError {
        MemoryError::NoFreeSlots
    }
}

/// Why a [`take`](SlotArena::take) or [`try_take`](SlotArena::try_take)
/// did not hand back a healthy value.
///
/// Like std's `PoisonError`, a poisoned value still comes back: the caller
/// decides whether it is usable. Prints without needing `T: Debug`.
#[derive(Clone, PartialEq, Eq)]
pub enum TakeError<T> {
    /// Nothing was taken and nothing changed; the error says why.
    Refused(MemoryError),
    /// The value was taken (its token is dead, its slot free), but a writer
    /// panicked while holding it, so it may be half-updated.
    Poisoned(T),
}

impl<T> TakeError<T> {
    fn of(taken: Result<(T, bool), MemoryError>) -> Result<T, TakeError<T>> {
        match taken {
            Ok((value, false)) => Ok(value),
            Ok((value, true)) => Err(TakeError::Poisoned(value)),
            Err(error) => Err(TakeError::Refused(error)),
        }
    }

    /// The error without the value: the refusal's, or
    /// [`MemoryError::Poisoned`].
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, SlotArena};
    ///
    /// let arena = SlotArena::<u8>::new(1);
    /// let token = slotarena::MessageToken::new(0, 0);
    /// assert_eq!(arena.take(token).unwrap_err().error(), MemoryError::NotAllocated);
    /// ```
    pub fn error(&self) -> MemoryError {
        match self {
            TakeError::Refused(error) => *error,
            TakeError::Poisoned(_) => MemoryError::Poisoned,
        }
    }

    /// The poisoned value, taken all the same (std's
    /// `PoisonError::into_inner`); `None` for a refusal.
    ///
    /// # Examples
    ///
    /// ```
    /// use slotarena::{MemoryError, TakeError};
    ///
    /// assert_eq!(TakeError::Poisoned(3).into_inner(), Some(3));
    /// assert_eq!(TakeError::<u8>::Refused(MemoryError::StaleToken).into_inner(), None);
    /// ```
    pub fn into_inner(self) -> Option<T> {
        match self {
            TakeError::Poisoned(value) => Some(value),
            TakeError::Refused(_) => None,
        }
    }
}

impl<T> fmt::Debug for TakeError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TakeError::Refused(error) => f.debug_tuple("Refused").field(error).finish(),
            TakeError::Poisoned(_) => f.write_str("Poisoned(..)"),
        }
    }
}

impl<T> fmt::Display for TakeError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error(), f)
    }
}

impl<T> core::error::Error for TakeError<T> {}

impl<T> From<TakeError<T>> for MemoryError {
    fn from(error: TakeError<T>) -> MemoryError {
        error.error()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use core::mem::{align_of, size_of};

    /// The slot's own cost beyond `T` (rounded up to `T`'s alignment).
    fn overhead<T, M>() -> usize {
        size_of::<Place<T, M>>() - size_of::<T>().next_multiple_of(align_of::<T>())
    }

    /// Issue 9's memory bound: at most 16 bytes per slot beyond the value,
    /// with no per-slot padding (neighbouring threads are kept apart by
    /// dealing slots to shards in runs instead).
    #[test]
    fn a_slot_costs_at_most_sixteen_bytes_beyond_its_value() {
        assert_eq!(size_of::<Place<u64, ()>>(), 16);
        assert_eq!(size_of::<Place<u8, ()>>(), 16);
        assert!(overhead::<[u8; 3], ()>() <= 16);
        assert!(overhead::<u128, ()>() <= 16);
        assert!(overhead::<std::string::String, ()>() <= 16);
        type Manager = Place<crate::Message<u8>, crate::manager::ShareWord>;
        assert!(
            overhead::<crate::Message<u8>, crate::manager::ShareWord>() <= 16,
            "{} bytes per Message<u8> slot",
            size_of::<Manager>()
        );
    }
}
